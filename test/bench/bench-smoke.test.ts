/**
 * Smoke test of the benchmark's step functions: meshgrad's (wasm backend with 1 and 2 threads, cpu
 * reference backend) and TensorFlow.js's (CPU and WASM) MLP training steps run, give finite losses
 * that agree at the first step (same weights, same batch), tfjs does not leak tensors and the wasm
 * heap stays flat; the matmul suite computes the same product in every engine, with a product big
 * enough to be split across the 2-thread pool; the pool suite runs piscina and the fork-join pool;
 * the distributed suite runs a few steps with real worker processes, sums gradients correctly, and
 * leaves no process behind; the models suite (issue 12) runs a few steps of each preset on meshgrad's
 * wasm backend with 1 and 2 threads (finite, falling losses, a flat heap, the 1-thread profile) and,
 * where /usr/bin/python3 has torch, in PyTorch with a parameter count equal to meshgrad's model's
 * (the guard that the architectures match); without torch those tests are skipped, saying why. No timing here: timing belongs in `npm run bench`. The wasm and pool
 * code paths need the build output (dist/wasm, dist/bench/pool-task.js): `npm test` builds first.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openMeshgradEngine, type MeshgradEngine, type MeshgradEngineId } from '../../bench/backends.js';
import {
  checkLossDecrease,
  createMeshgradStep,
  createTfjsStep,
  heapFlat,
  loadMlpBenchData,
  runMlpStepSuite,
  type MlpBenchData,
  type TrainStep,
} from '../../bench/mlp-step.js';
import { MATMUL_ENGINES, runMatmulSuite } from '../../bench/matmul.js';
import { runPoolSuite } from '../../bench/pool.js';
import { runAggregationBench, runDistributedSuite } from '../../bench/distributed.js';
import {
  MODEL_PRESETS,
  OPENBLAS_OPENMP_DIR,
  PROFILE_TOP_ROWS,
  engineIdFor,
  meshgradParamCount,
  openPresetData,
  presetSetting,
  runMeshgradPreset,
  runModelStepsSuite,
  runTorchPreset,
  torchAvailability,
  torchEnvironment,
} from '../../bench/model-steps.js';

describe('bench: MLP training-step functions', () => {
  let data: MlpBenchData;
  const firstLosses = new Map<string, number>();
  const open: TrainStep[] = [];
  const engines: MeshgradEngine[] = [];

  beforeAll(() => {
    data = loadMlpBenchData();
  });

  afterAll(async () => {
    for (const s of open) s.dispose();
    for (const e of engines) await e.close();
  });

  async function threeSteps(create: () => TrainStep | Promise<TrainStep>): Promise<[number, number, number]> {
    const trainStep = await create();
    open.push(trainStep);
    const before = trainStep.liveTensors();
    const first = trainStep.step();
    const afterOne = trainStep.liveTensors();
    const heapOne = trainStep.memoryStats();
    const second = trainStep.step();
    const third = trainStep.step();
    const afterThree = trainStep.liveTensors();
    const heapThree = trainStep.memoryStats();
    if (before !== null) {
      // The first step creates Adam's moment variables; after that the count must stay flat.
      expect(afterThree).toBe(afterOne);
    }
    if (heapOne !== null && heapThree !== null) {
      // Every step allocates the same blocks inside its scope, and gets them back when it ends.
      expect(heapFlat(heapOne, heapThree)).toBe(true);
      expect(heapThree.bytesInUse).toBe(heapOne.bytesInUse);
    }
    trainStep.dispose();
    open.pop();
    firstLosses.set(trainStep.engine, first);
    return [first, second, third];
  }

  async function meshgrad(id: MeshgradEngineId): Promise<TrainStep> {
    const engine = await openMeshgradEngine(id);
    engines.push(engine);
    return createMeshgradStep(data, engine);
  }

  it('meshgrad (cpu backend) runs steps with finite losses near ln 10 at the start', async () => {
    const [a, b, c] = await threeSteps(() => createMeshgradStep(data));
    expect([a, b, c].every(Number.isFinite)).toBe(true);
    expect(a).toBeGreaterThan(1.5);
    expect(a).toBeLessThan(3.5);
  });

  it('meshgrad (wasm backend, 1 thread) runs steps in a scope, with a flat heap', async () => {
    const [a, b, c] = await threeSteps(() => meshgrad('meshgrad-wasm-1t'));
    expect([a, b, c].every(Number.isFinite)).toBe(true);
    expect(engines.at(-1)?.memoryStats()).not.toBeNull();
  });

  it('meshgrad (wasm backend, 2 threads) runs steps in a scope, with a flat heap', async () => {
    const [a, b, c] = await threeSteps(() => meshgrad('meshgrad-wasm-2t'));
    expect([a, b, c].every(Number.isFinite)).toBe(true);
    expect(engines.at(-1)?.threads).toBe(2);
  });

  it('tfjs (cpu backend) runs steps with finite losses', async () => {
    const [a, b, c] = await threeSteps(() => createTfjsStep(data, 'cpu'));
    expect([a, b, c].every(Number.isFinite)).toBe(true);
  });

  it('tfjs (wasm backend, loaded from node_modules) runs steps with finite losses', async () => {
    const [a, b, c] = await threeSteps(() => createTfjsStep(data, 'wasm'));
    expect([a, b, c].every(Number.isFinite)).toBe(true);
  });

  it('all engines see the same first batch and weights, so their first losses agree', () => {
    const m = firstLosses.get('meshgrad-cpu');
    expect(m).toBeDefined();
    for (const engine of ['meshgrad-wasm-1t', 'meshgrad-wasm-2t', 'tfjs-cpu', 'tfjs-wasm']) expect(firstLosses.get(engine)).toBeCloseTo(m as number, 4);
  });

  it('the suite measures every meshgrad engine, checks the wasm heap and works out the targets', async () => {
    const r = await runMlpStepSuite({ warmupSteps: 1, timedSteps: 2, engines: ['meshgrad-cpu', 'meshgrad-wasm-1t', 'meshgrad-wasm-2t', 'tfjs-wasm'] });
    expect(r.engines.map((e) => e.engine)).toEqual(['meshgrad-cpu', 'meshgrad-wasm-1t', 'meshgrad-wasm-2t', 'tfjs-wasm']);
    for (const e of r.engines) {
      expect(e.initialLossMatches).toBe(true);
      expect(e.losses.every(Number.isFinite)).toBe(true);
      expect(Number.isFinite(e.speedupVsTfjsWasm)).toBe(true);
    }
    const wasm = r.engines.filter((e) => e.engine.startsWith('meshgrad-wasm'));
    for (const e of wasm) expect(e.heap?.flat).toBe(true);
    expect(r.engines.find((e) => e.engine === 'meshgrad-cpu')?.heap).toBeNull();
    expect(r.targetCheck).not.toBeNull();
    expect(Number.isFinite(r.targetCheck?.twoThreadScaling)).toBe(true);
  });
});

describe('bench: helpers', () => {
  it('checkLossDecrease compares quarter means, or the step-0 loss for short windows', () => {
    expect(checkLossDecrease(2.3, [1.2, 1.1, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5]).passed).toBe(true);
    expect(checkLossDecrease(2.3, [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2]).passed).toBe(false);
    expect(checkLossDecrease(2.3, [1.5, 1.4]).passed).toBe(true);
    expect(checkLossDecrease(2.3, [1.5, NaN]).passed).toBe(false);
  });

  it('the matmul suite computes the same product in every engine (67^3 MACs: split across the 2-thread pool)', async () => {
    const r = await runMatmulSuite({ sizes: [67], budgetMs: 0, maxReps: 1 });
    expect(r.ok).toBe(true);
    expect(['relaxed-simd', 'simd']).toContain(r.flavour);
    for (const e of MATMUL_ENGINES) expect(r.rows[0].results[e].gflops).toBeGreaterThan(0);
    expect(Number.isFinite(r.rows[0].wasm1VsTfjsWasm) && Number.isFinite(r.rows[0].wasm2VsTfjsWasm)).toBe(true);
    expect(r.descriptions['meshgrad-wasm-2t']).toMatch(/2 threads/);
  });

  it('the pool suite runs piscina and the fork-join pool, and their products check out', async () => {
    const r = await runPoolSuite({ rounds: 1, callsPerRound: 5, budgetMs: 1 });
    expect(r.ok).toBe(true);
    expect(r.piscina.roundTrip.backToBack.runs).toBe(5);
    expect(r.forkJoin.empty.afterWork.runs).toBe(5);
    expect(r.forkJoin.tinyMatches).toBe(true);
    expect(r.mlpMatmuls).toHaveLength(8);
    expect(r.threshold.split).toBe(true);
    expect(r.splitsPerStep).toBe(5);
    expect(Number.isFinite(r.piscinaOverForkJoin.backToBack) && Number.isFinite(r.piscinaOverForkJoin.afterWork)).toBe(true);
  });
});

describe('bench: distributed suite', () => {
  const small = { workers: 3, tensors: 2, paramsPerTensor: 1000, reps: 1 };

  function alive(pid: number): boolean {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }

  it('the aggregation receive path (decode + validate + sumInto) gives sumInto\'s result', () => {
    const r = runAggregationBench(small);
    expect(r.receivePathMatches).toBe(true);
    expect(r.maxAbsError).toBeLessThan(1e-7);
    expect(r.ok).toBe(true);
    expect(r.parameters).toBe(2000);
  });

  it('runs train and local --workers 2 from the same start, and stops every worker process', async () => {
    const r = await runDistributedSuite({ warmupSteps: 2, timedSteps: 4, aggregation: small });
    expect(r.initialLossMatches).toBe(true);
    expect(r.train.losses).toHaveLength(4);
    expect(r.local.losses).toHaveLength(4);
    expect(r.local.breakdown.communicationMs.runs).toBe(4);
    expect(r.local.losses.every(Number.isFinite)).toBe(true);
    expect(r.local.workerPids).toHaveLength(2);
    for (const pid of r.local.workerPids) expect(alive(pid)).toBe(false);
  });

  it('fails (instead of waiting for workers forever) when the worker processes die', async () => {
    await expect(runDistributedSuite({ warmupSteps: 1, timedSteps: 1, aggregation: small, bin: '/nonexistent/meshgrad.js' })).rejects.toThrow(/worker w\d exited/);
  });
});

describe('bench: models suite (meshgrad against PyTorch, issue 12)', () => {
  const torch = torchAvailability();
  const torchReason = torch.available ? `PyTorch ${torch.version ?? ''}` : `skipped: ${torch.reason}`;
  if (!torch.available) console.warn(`bench models suite: PyTorch tests ${torchReason}`);

  it('each preset has the batch, optimizer and clipping the comparison names', () => {
    expect(MODEL_PRESETS).toEqual(['mlp', 'cnn', 'char-lstm', 'gpt-tiny']);
    expect(MODEL_PRESETS.map((p) => presetSetting(p).batchSize)).toEqual([128, 128, 32, 32]);
    expect(presetSetting('char-lstm')).toMatchObject({ context: 64, optimizer: 'adam', clipNorm: 1 });
    expect(presetSetting('gpt-tiny')).toMatchObject({ context: 64, optimizer: 'adamw', weightDecay: 0.01, clipNorm: null });
  });

  it("PyTorch's child gets the OpenMP OpenBLAS, OMP_NUM_THREADS and no OPENBLAS_CORETYPE", () => {
    const env = torchEnvironment(2, { OPENBLAS_CORETYPE: 'Haswell', LD_LIBRARY_PATH: '/opt/lib', PATH: '/bin' });
    expect(env.OPENBLAS_CORETYPE).toBeUndefined();
    expect(env.LD_LIBRARY_PATH).toBe(`${OPENBLAS_OPENMP_DIR}:/opt/lib`);
    expect(env.OMP_NUM_THREADS).toBe('2');
    expect(env.PATH).toBe('/bin');
    expect(torchEnvironment(1, {}).LD_LIBRARY_PATH).toBe(OPENBLAS_OPENMP_DIR);
  });

  for (const preset of MODEL_PRESETS) {
    it(`meshgrad runs ${preset}'s training step on wasm (1 thread), with a finite, falling loss and a flat heap`, async () => {
      const { openMeshgradEngine } = await import('../../bench/backends.js');
      const engine = await openMeshgradEngine(engineIdFor(1));
      try {
        const data = openPresetData(preset);
        const r = runMeshgradPreset(preset, engine, data, { warmup: 1, timed: 2 });
        expect(r.losses).toHaveLength(2);
        expect([r.initialLoss, ...r.losses].every(Number.isFinite)).toBe(true);
        expect(r.lossCheck.passed).toBe(true);
        expect(r.heap?.flat).toBe(true);
        expect(r.params).toBe(meshgradParamCount(preset, data.numClasses));
      } finally {
        await engine.close();
      }
    });
  }

  it('the suite runs 1 and 2 threads, profiles at 1 thread and says why PyTorch is missing', async () => {
    const r = await runModelStepsSuite({ presets: ['mlp'], steps: { warmup: 1, timed: 2 }, profileSteps: 1, python: '/nonexistent/python3', rounds: 2 });
    expect(r.ok).toBe(true);
    expect(r.torch.available).toBe(false);
    expect(r.torch.reason).toMatch(/\/nonexistent\/python3 not found/);
    expect(r.notes.some((n) => n.startsWith('PyTorch not measured'))).toBe(true);
    expect(r.rows.map((x) => x.threads)).toEqual([1, 2]);
    for (const row of r.rows) {
      expect(row.meshgrad?.threads).toBe(row.threads);
      expect(row.torch).toBeNull();
      expect(row.ratio).toBeNull();
      expect(row.met).toBeNull();
      expect(row.rounds).toEqual([]);
    }
    expect(r.rows[0].target).toBe(1);
    expect(r.rows[1].target).toBe(0.8);
    expect(r.scaling).toHaveLength(1);
    expect(Number.isFinite(r.scaling[0].meshgrad)).toBe(true);
    expect(r.profiles).toHaveLength(1);
    expect(r.profiles[0].profile?.rows.length).toBeGreaterThan(0);
    expect(r.profiles[0].profile?.rows.length).toBeLessThanOrEqual(PROFILE_TOP_ROWS);
  });

  for (const preset of MODEL_PRESETS) {
    it.skipIf(!torch.available)(`PyTorch runs ${preset} with meshgrad's parameter count (${torchReason})`, () => {
      const vocab = openPresetData(preset).numClasses;
      const r = runTorchPreset(preset, 1, { warmup: 0, timed: 1, vocab });
      expect(r.params).toBe(meshgradParamCount(preset, vocab));
      expect(r.threads).toBe(1);
      expect(Number.isFinite(r.timing.medianMs)).toBe(true);
      expect(Number.isFinite(r.firstLoss)).toBe(true);
    });
  }

  it.skipIf(!torch.available)(`the suite compares with PyTorch: parameter guard, ratios, targets (${torchReason})`, async () => {
    const r = await runModelStepsSuite({ presets: ['mlp'], steps: { warmup: 1, timed: 2 }, profile: false, rounds: 3 });
    expect(r.ok).toBe(true);
    expect(r.torch.available).toBe(true);
    for (const row of r.rows) {
      expect(row.paramsMatch).toBe(true);
      expect(row.torch?.threads).toBe(row.threads);
      expect(Number.isFinite(row.ratio)).toBe(true);
      expect(typeof row.met).toBe('boolean');
      // Three rounds of meshgrad-then-PyTorch; the reported ratio and runs are the median round's.
      expect(row.rounds).toHaveLength(3);
      const sorted = row.rounds.map((q) => q.ratio).sort((a, b) => a - b);
      expect(row.ratio).toBe(sorted[1]);
      const median = row.rounds.find((q) => q.ratio === row.ratio)!;
      expect(row.meshgrad?.timing.medianMs).toBe(median.meshgradMs);
      expect(row.torch?.timing.medianMs).toBe(median.torchMs);
    }
    expect(Number.isFinite(r.scaling[0].torch)).toBe(true);
    expect(r.profiles).toHaveLength(0);
  });
});
