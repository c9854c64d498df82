/**
 * Smoke test of the benchmark's step functions: meshgrad's and TensorFlow.js's (CPU and WASM)
 * MLP training steps run, give finite losses that agree at the first step (same weights, same
 * batch), and tfjs does not leak tensors; the distributed suite runs a few steps with real worker
 * processes, sums gradients correctly, and leaves no process behind. No timing here: timing belongs in
 * `npm run bench`.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLossDecrease, createMeshgradStep, createTfjsStep, loadMlpBenchData, type MlpBenchData, type TrainStep } from '../../bench/mlp-step.js';
import { runMatmulSuite } from '../../bench/matmul.js';
import { runAggregationBench, runDistributedSuite } from '../../bench/distributed.js';

describe('bench: MLP training-step functions', () => {
  let data: MlpBenchData;
  const firstLosses = new Map<string, number>();
  const open: TrainStep[] = [];

  beforeAll(() => {
    data = loadMlpBenchData();
  });

  afterAll(() => {
    for (const s of open) s.dispose();
  });

  async function twoSteps(create: () => TrainStep | Promise<TrainStep>): Promise<[number, number]> {
    const trainStep = await create();
    open.push(trainStep);
    const before = trainStep.liveTensors();
    const first = trainStep.step();
    const afterOne = trainStep.liveTensors();
    const second = trainStep.step();
    const afterTwo = trainStep.liveTensors();
    if (before !== null) {
      // The first step creates Adam's moment variables; after that the count must stay flat.
      expect(afterTwo).toBe(afterOne);
    }
    trainStep.dispose();
    open.pop();
    firstLosses.set(trainStep.engine, first);
    return [first, second];
  }

  it('meshgrad runs steps with finite losses near ln 10 at the start', async () => {
    const [a, b] = await twoSteps(() => createMeshgradStep(data));
    expect(Number.isFinite(a) && Number.isFinite(b)).toBe(true);
    expect(a).toBeGreaterThan(1.5);
    expect(a).toBeLessThan(3.5);
  });

  it('tfjs (cpu backend) runs steps with finite losses', async () => {
    const [a, b] = await twoSteps(() => createTfjsStep(data, 'cpu'));
    expect(Number.isFinite(a) && Number.isFinite(b)).toBe(true);
  });

  it('tfjs (wasm backend, loaded from node_modules) runs steps with finite losses', async () => {
    const [a, b] = await twoSteps(() => createTfjsStep(data, 'wasm'));
    expect(Number.isFinite(a) && Number.isFinite(b)).toBe(true);
  });

  it('all engines see the same first batch and weights, so their first losses agree', () => {
    const m = firstLosses.get('meshgrad');
    expect(m).toBeDefined();
    for (const engine of ['tfjs-cpu', 'tfjs-wasm']) expect(firstLosses.get(engine)).toBeCloseTo(m as number, 4);
  });
});

describe('bench: helpers', () => {
  it('checkLossDecrease compares quarter means, or the step-0 loss for short windows', () => {
    expect(checkLossDecrease(2.3, [1.2, 1.1, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5]).passed).toBe(true);
    expect(checkLossDecrease(2.3, [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2]).passed).toBe(false);
    expect(checkLossDecrease(2.3, [1.5, 1.4]).passed).toBe(true);
    expect(checkLossDecrease(2.3, [1.5, NaN]).passed).toBe(false);
  });

  it('the matmul suite computes the same product in every engine', async () => {
    const r = await runMatmulSuite({ sizes: [33], budgetMs: 0, maxReps: 1 });
    expect(r.ok).toBe(true);
    expect(r.rows[0].meshgrad.gflops).toBeGreaterThan(0);
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
