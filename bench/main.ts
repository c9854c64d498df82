/**
 * `npm run bench`: meshgrad (wasm backend with 1 and 2 threads, and the TypeScript cpu reference)
 * against TensorFlow.js (CPU and WASM backends) in one process run, the cost of a task in a piscina
 * pool against meshgrad's fork-join pool, meshgrad's distributed training against its
 * single-process training, and the training steps of the mlp, cnn, char-lstm and gpt-tiny presets
 * against PyTorch's (issue 12's acceptance comparison); and, on their own, distributed training over
 * an emulated network against PyTorch DDP over gloo (`--suite network`, root only, issue 13), and
 * the WebGPU backend (`--suite webgpu`, issue 14: it needs a WebGPU adapter).
 *
 *   node dist/bench/main.js [--quick] [--json FILE] [--suite all|mlp|matmul|pool|distributed|models|network|webgpu] [--isolate] [--plan]
 *
 * Suites: the MLP training step (bench/mlp-step.ts), square matmul GFLOPS (bench/matmul.ts), the
 * per-task cost of thread pools (bench/pool.ts), the distributed step (bench/distributed.ts:
 * `local --workers 2` against `train`, the step's communication time, the coordinator's
 * aggregation throughput) and the presets' steps against PyTorch with 1 and 2 threads, with the
 * 1-thread profile of each (bench/model-steps.ts; PyTorch runs as /usr/bin/python3
 * bench/torch_presets.py, and is left out, saying so, without python3-torch), in that order, in
 * this process (--isolate: each in a fresh child process). `all` is those five; the network suite
 * (bench/network.ts: network namespaces and tc, so root; skipped with the reason otherwise) runs
 * only when asked for by name, so `npm run bench` needs no root and no minutes of testbed runs; so
 * does the webgpu suite (the WebGPU backend's matmul GFLOPS, bench/webgpu-matmul.ts, then the
 * presets' training steps on meshgrad webgpu, meshgrad wasm on every core and tfjs-webgpu,
 * bench/webgpu-steps.ts), which without an adapter prints probeGpu()'s reason in one line and
 * succeeds. Prints a table per suite; --json writes
 * every figure (and the machine) to FILE. Exits with 1 when a sanity check fails (a loss that does
 * not go down, a tfjs leak, a wasm heap that grows, a wrong product or gradient sum, a PyTorch
 * model whose parameter count differs from meshgrad's). The speed targets are printed, not enforced.
 */

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { COMMUNICATION_NOTE, runDistributedSuite, type DistributedSuiteResult, type RunResult } from './distributed.js';
import { MATMUL_ENGINES, runMatmulSuite, type MatmulMeasurement, type MatmulSuiteResult } from './matmul.js';
import { REFERENCE_ENGINE, runMlpStepSuite, type MlpStepSuiteResult } from './mlp-step.js';
import { runPoolSuite, type CallStats, type MatmulTiming, type PoolSuiteResult } from './pool.js';
import { PROFILE_TOP_ROWS, runModelStepsSuite, type ModelStepsResult } from './model-steps.js';
import { runNetworkSuite, type NetworkSuiteResult } from './network.js';
import { networkTable } from './network-table.js';
import type { WebGpuMatmulSuiteResult } from './webgpu-matmul.js';
import type { WebGpuStepSuiteResult } from './webgpu-steps.js';
import { probeGpu, type AdapterSummary } from '../shared/backend/webgpu/gpu-loader.js';
import type { HeapStats } from '../shared/backend/wasm/heap.js';
import { describeMachine, fmt, fmtRatio, formatLoad, formatTable, loadAverage, machineInfo, sampleOtherCpuUse } from './report.js';

const USAGE = `usage: node dist/bench/main.js [--quick] [--json FILE] [--suite all|mlp|matmul|pool|distributed|models|network|webgpu] [--isolate] [--plan]
  --quick        fewer iterations (a smoke test, not figures to quote)
  --json FILE    also write the results as JSON to FILE
  --suite NAME   run only the 'mlp' (training step), 'matmul', 'pool', 'distributed', 'models', 'network' or 'webgpu' suite
                 (default: all, which is the first five);
                 'models': the mlp, cnn, char-lstm and gpt-tiny steps against PyTorch (/usr/bin/python3 with python3-torch), 1 and 2 threads;
                 'network': meshgrad (coordinator + 1 or 2 workers) and PyTorch DDP-gloo over an emulated network at 10000, 1000
                 and 100 Mbit/s (network namespaces + tc tbf: needs root, else skipped with the reason; not part of 'all');
                 'webgpu': the WebGPU backend's matmul, and the mlp, cnn, char-lstm and gpt-tiny steps on meshgrad webgpu, meshgrad
                 wasm with a thread per core and tfjs-webgpu (mlp, cnn) (needs a WebGPU adapter, else skipped with the reason;
                 not part of 'all')
  --isolate      run each suite in a fresh Node process (default: all in this one)
  --plan         print what these flags would run (suites, process, output file) and exit`;

type SuiteName = 'all' | 'mlp' | 'matmul' | 'pool' | 'distributed' | 'models' | 'network' | 'webgpu';
/** The suites of `all`, in the order they run. */
const SUITES = ['mlp', 'matmul', 'pool', 'distributed', 'models'] as const;
/** Suites that run only when named: `network` needs root and several minutes of testbed runs, `webgpu` a WebGPU adapter. */
const NAMED_ONLY_SUITES = ['network', 'webgpu'] as const;
const ALL_SUITE_NAMES: readonly Exclude<SuiteName, 'all'>[] = [...SUITES, ...NAMED_ONLY_SUITES];

interface Args {
  readonly quick: boolean;
  readonly json: string | undefined;
  readonly suite: SuiteName;
  readonly isolate: boolean;
  /** Print the plan of the run these flags ask for and exit (the docs' commands are checked this way). */
  readonly plan: boolean;
  /** Internal: run as --isolate's child (no header, no CPU sample). */
  readonly child: boolean;
}

function parseCommandLine(argv: string[]): Args {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'string' },
      suite: { type: 'string', default: 'all' },
      isolate: { type: 'boolean', default: false },
      plan: { type: 'boolean', default: false },
      child: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const suite = values.suite ?? 'all';
  if (suite !== 'all' && !(ALL_SUITE_NAMES as readonly string[]).includes(suite)) throw new Error(`unknown --suite '${suite}' (all, mlp, matmul, pool, distributed, models, network or webgpu)`);
  return { quick: values.quick ?? false, json: values.json, suite: suite as SuiteName, isolate: (values.isolate ?? false) && !(values.child ?? false), plan: values.plan ?? false, child: values.child ?? false };
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

const mib = (bytes: number): string => `${fmt(bytes / 2 ** 20, 2)} MiB`;
const heapText = (h: HeapStats): string => `${mib(h.bytesInUse)} in use, ${mib(h.bytesFree)} free, ${mib(h.bytesReserved)} reserved`;
const metText = (met: boolean): string => (met ? 'MET' : 'NOT MET');

function mlpTable(r: MlpStepSuiteResult): string {
  const rows = r.engines.map((e) => [
    e.engine,
    e.description,
    fmt(e.timing.medianMs, 2),
    fmt(e.timing.meanMs, 2),
    fmt(e.samplesPerSecond, 0),
    fmtRatio(e.speedupVsTfjsWasm),
    fmt(e.initialLoss, 4),
    `${fmt(e.firstLoss, 3)} -> ${fmt(e.lastLoss, 3)}`,
    e.lossCheck.passed ? 'ok' : 'FAILED',
  ]);
  const table = formatTable(
    ['engine', 'backend', 'median ms/step', 'mean ms/step', 'samples/s', 'vs tfjs-wasm', 'step-0 loss', 'timed loss first -> last', 'loss down'],
    rows,
    new Set([2, 3, 4, 5, 6]),
  );
  const notes = r.engines.map((e) => {
    const leak = e.liveTensors ? `; live tfjs tensors ${e.liveTensors.before} -> ${e.liveTensors.after}${e.liveTensors.before === e.liveTensors.after ? ' (flat)' : ' (LEAK)'}` : '';
    const start = e.engine === REFERENCE_ENGINE ? '' : `; step-0 loss ${e.initialLossMatches ? 'matches' : 'DIFFERS FROM'} ${REFERENCE_ENGINE}'s, max |loss diff| over the timed steps ${e.maxLossDifference.toExponential(1)}`;
    return `  ${e.engine}: ${e.lossCheck.detail}${start}${leak}`;
  });
  const heaps = r.engines.flatMap((e) =>
    e.heap ? [`  ${e.engine} wasm heap: after warm-up ${heapText(e.heap.before)}; after the timed steps ${heapText(e.heap.after)} (${e.heap.flat ? 'flat' : 'GREW'})`] : [],
  );
  const t = r.targetCheck;
  const targets = t
    ? [
        `Targets (meshgrad wasm vs tfjs-wasm, median ms/step):`,
        `  1 thread:  ${fmt(t.oneThreadMs, 2)} ms, ${fmtRatio(t.oneThreadVsTfjsWasm)} tfjs-wasm's speed (target >= ${r.targets.oneThreadVsTfjsWasm}x and <= ${r.targets.oneThreadMaxMs} ms): ${metText(t.oneThreadMet)}`,
        `  2 threads: ${fmt(t.twoThreadsMs, 2)} ms, ${fmtRatio(t.twoThreadsVsTfjsWasm)} tfjs-wasm's speed, ${fmtRatio(t.twoThreadScaling)} the 1-thread speed (target > 1x): ${metText(t.twoThreadsMet)}`,
      ]
    : [];
  return [
    `MLP training step: ${r.model}, batch ${r.batchSize}, ${r.optimizer}, Fashion-MNIST; ${r.warmupSteps} warm-up + ${r.timedSteps} timed steps per engine`,
    `(a step = batch gather + forward + backward + Adam update, meshgrad's inside one backend.scope; vs tfjs-wasm = tfjs-wasm median ms / this engine's median ms, > 1 means faster than tfjs-wasm)`,
    '',
    table,
    '',
    ...notes,
    ...heaps,
    ...(targets.length > 0 ? ['', ...targets] : []),
  ].join('\n');
}

function matmulTable(r: MatmulSuiteResult): string {
  const cell = (m: MatmulMeasurement): string => `${fmt(m.gflops, 1)} (${fmt(m.timing.medianMs, m.timing.medianMs < 10 ? 2 : 1)} ms${m.timing.runs < 5 ? `, ${m.timing.runs} run${m.timing.runs === 1 ? '' : 's'}` : ''})`;
  const rows = r.rows.map((row) => [String(row.n), ...MATMUL_ENGINES.map((e) => cell(row.results[e])), fmtRatio(row.wasm1VsTfjsWasm), fmtRatio(row.wasm2VsTfjsWasm), fmtRatio(row.twoThreadScaling)]);
  const table = formatTable(
    ['N', 'wasm 1 thread', 'wasm 2 threads', 'meshgrad cpu', 'tfjs-cpu', 'tfjs-wasm', '1t / tfjs-wasm', '2t / tfjs-wasm', '2t / 1t'],
    rows,
    new Set([0, 1, 2, 3, 4, 5, 6, 7, 8]),
  );
  const errors = r.rows.map((row) => `N=${row.n}: ${MATMUL_ENGINES.filter((e) => e !== 'meshgrad-cpu').map((e) => row.results[e].relError.toExponential(1)).join(' / ')}`).join('; ');
  const targets = r.rows.map(
    (row) =>
      `  N=${row.n}: 1 thread ${fmtRatio(row.wasm1VsTfjsWasm)} (target >= ${r.targets.oneThreadVsTfjsWasm}x): ${metText(row.wasm1VsTfjsWasm >= r.targets.oneThreadVsTfjsWasm)}; ` +
      `2 threads ${fmtRatio(row.wasm2VsTfjsWasm)} (target >= ${r.targets.twoThreadsVsTfjsWasm}x): ${metText(row.wasm2VsTfjsWasm >= r.targets.twoThreadsVsTfjsWasm)}`,
  );
  return [
    `Matmul: square float32 C = A*B; cells are GFLOPS = 2N^3 / median time (median ms); ratios = tfjs-wasm ms / meshgrad wasm ms (> 1: meshgrad faster)`,
    `  wasm kernel flavour: ${r.flavour}; meshgrad: ${r.descriptions['meshgrad-wasm-1t']}, ${r.descriptions['meshgrad-wasm-2t']}, ${r.descriptions['meshgrad-cpu']}`,
    `  tfjs-cpu: ${r.descriptions['tfjs-cpu']}; tfjs-wasm: ${r.descriptions['tfjs-wasm']}`,
    '',
    table,
    '',
    `  meshgrad cpu vs tfjs-cpu: ${r.rows.map((row) => `N=${row.n} ${fmtRatio(row.cpuVsTfjsCpu)}`).join(', ')}`,
    `  max relative difference from meshgrad cpu's product (wasm 1t / wasm 2t / tfjs-cpu / tfjs-wasm): ${errors}`,
    '',
    'Targets (meshgrad wasm vs tfjs-wasm, single-threaded SIMD):',
    ...targets,
  ].join('\n');
}

function poolTable(r: PoolSuiteResult): string {
  const us = (ms: number, digits = 1): string => fmt(ms * 1000, digits);
  const spread = (c: CallStats, digits = 1): string => `${us(c.medianMs, digits)} (${us(c.p10Ms, digits)}-${us(c.p90Ms, digits)})`;
  const p = r.piscina;
  const f = r.forkJoin;
  const gap = `after ${us(r.gapMs, 0)} us of work`;
  const costs = formatTable(
    ['operation (2 threads)', 'back to back: median us (p10-p90)', `${gap}: median us (p10-p90)`, 'calls'],
    [
      [`piscina ${p.version}: one empty task, await pool.run(x)`, spread(p.roundTrip.backToBack), spread(p.roundTrip.afterWork), String(p.roundTrip.backToBack.runs)],
      ['piscina: two empty tasks at once, Promise.all', spread(p.fanOut.backToBack), spread(p.fanOut.afterWork), String(p.fanOut.backToBack.runs)],
      ['fork-join: empty split (ThreadPool.gemm)', spread(f.empty.backToBack), spread(f.empty.afterWork), String(f.empty.backToBack.runs)],
      ['fork-join: 16x16x16 gemm split 8 + 8 columns', spread(f.tinyTwoThreads.backToBack), spread(f.tinyTwoThreads.afterWork), String(f.tinyTwoThreads.backToBack.runs)],
      ['16x16x16 gemm on this thread alone (no pool)', spread(f.tinyOneThread, 2), '-', String(f.tinyOneThread.runs)],
    ],
    new Set([1, 2, 3]),
  );
  const forkJoin = f.empty.afterWork.medianMs;
  const piscina = p.roundTrip.afterWork.medianMs;
  const products = [r.threshold, ...r.mlpMatmuls];
  const row = (t: MatmulTiming): string[] => [
    t.name,
    `${t.m}x${t.k}x${t.n}`,
    fmt(t.macs / 1e6, 2),
    t.split ? 'yes' : 'no',
    us(t.oneThread.medianMs, 0),
    us(t.twoThreads.medianMs, 0),
    fmtRatio(t.oneThread.medianMs / t.twoThreads.medianMs),
    `${fmt((100 * forkJoin) / t.oneThread.medianMs, 1)}%`,
    `${fmt((100 * piscina) / t.oneThread.medianMs, 1)}%`,
  ];
  const matmuls = formatTable(
    ['product (wasm backend)', 'm x k x n', 'M MACs', 'split', '1 thread us', '2 threads us', '2t speed-up', 'fork-join / 1t', 'piscina / 1t'],
    products.map(row),
    new Set([2, 4, 5, 6, 7, 8]),
  );
  const split = r.mlpMatmuls.filter((t) => t.split);
  const oneThreadTotal = r.mlpMatmuls.reduce((s, t) => s + t.oneThread.medianMs, 0);
  const twoThreadTotal = r.mlpMatmuls.reduce((s, t) => s + t.twoThreads.medianMs, 0);
  const fc1 = r.mlpMatmuls[0];
  const fc2 = r.mlpMatmuls[1];
  const share = (overhead: number, t: MatmulTiming): string => `${fmt((100 * overhead) / t.oneThread.medianMs, 1)}%`;
  return [
    `Thread pools: the per-task cost of piscina (atomics '${p.atomics}') against meshgrad's fork-join pool (SharedArrayBuffer + Atomics, ${f.flavour} kernels), ${r.threads} threads`,
    `(every call timed on its own; rounds separated by a pause; "${gap}" = the calling thread busy for ${us(r.gapMs, 0)} us before each call, as between two products of a step)`,
    '',
    costs,
    '',
    `  piscina round trip / fork-join empty split (medians): ${fmtRatio(r.piscinaOverForkJoin.backToBack)} back to back, ${fmtRatio(r.piscinaOverForkJoin.afterWork)} ${gap}`,
    `  the 16x16x16 split ${f.tinyMatches ? 'matches' : 'DIFFERS FROM'} the one-thread product`,
    '',
    `The MLP step's matrix products (batch 128) on the wasm backend, back to back (median per call); shares = the ${gap} median of`,
    `an empty fork-join split (${us(forkJoin, 1)} us) or a piscina round trip (${us(piscina, 1)} us) / the product's 1-thread time:`,
    '',
    matmuls,
    '',
    `  typical layer products: fc1 forward ${us(fc1.oneThread.medianMs, 0)} us (fork-join ${share(forkJoin, fc1)}, piscina ${share(piscina, fc1)}), ` +
      `fc2 forward ${us(fc2.oneThread.medianMs, 0)} us (fork-join ${share(forkJoin, fc2)}, piscina ${share(piscina, fc2)})`,
    `  per step: ${split.length} of ${r.mlpMatmuls.length} products are split: ${us(split.length * forkJoin, 0)} us of fork-join against ${us(split.length * piscina, 0)} us of piscina round trips; ` +
      `all ${r.mlpMatmuls.length} products take ${us(oneThreadTotal, 0)} us on 1 thread, ${us(twoThreadTotal, 0)} us on 2`,
  ].join('\n');
}

function distributedTable(r: DistributedSuiteResult): string {
  const runRow = (e: RunResult, speedup: string): string[] => [
    e.run === 'train' ? 'train' : `local --workers ${r.local.workers}`,
    e.run === 'train' ? '1 process' : `coordinator + ${r.local.workers} worker processes`,
    fmt(e.timing.medianMs, 2),
    fmt(e.timing.meanMs, 2),
    fmt(e.samplesPerSecond, 0),
    speedup,
    fmt(e.initialLoss, 4),
    `${fmt(e.firstLoss, 3)} -> ${fmt(e.lastLoss, 3)}`,
    e.lossCheck.passed ? 'ok' : 'FAILED',
  ];
  const runs = formatTable(
    ['run', 'processes', 'median ms/step', 'mean ms/step', 'samples/s', 'speed-up', 'step-0 loss', 'timed loss first -> last', 'loss down'],
    [runRow(r.train, '-'), runRow(r.local, fmtRatio(r.localSpeedup))],
    new Set([2, 3, 4, 5, 6]),
  );
  const b = r.local.breakdown;
  const step = r.local.timing.medianMs;
  const part = (name: string, t: { medianMs: number; meanMs: number }): string[] => [name, fmt(t.medianMs, 2), fmt(t.meanMs, 2), `${fmt((100 * t.medianMs) / step, 0)}%`];
  const parts = formatTable(
    ['part of a local step', 'median ms', 'mean ms', 'median / median step'],
    [
      part('step: dispatch -> new params sent (stepMs)', b.stepMs),
      part("slowest worker's compute", b.slowestComputeMs),
      part('update: gradient sum + Adam', b.updateMs),
      part('communication: step - compute - update', b.communicationMs),
    ],
    new Set([1, 2, 3]),
  );
  const a = r.aggregation;
  const mb = (bytes: number): string => `${fmt(bytes / 1e6, 2)} MB`;
  const op = (name: string, m: { timing: { medianMs: number; meanMs: number }; gbPerSecond: number }): string[] => [name, fmt(m.timing.medianMs, 2), fmt(m.timing.meanMs, 2), fmt(m.gbPerSecond, 2)];
  const agg = formatTable(
    ['coordinator operation', 'median ms', 'mean ms', 'GB/s'],
    [
      op(`sumInto (${a.workers} contributions), TypeScript loop`, a.aggregate),
      ...(a.aggregateSimd ? [op(`sumInto (${a.workers} contributions), wasm SIMD kernel (as the coordinator runs it)`, a.aggregateSimd)] : []),
      op(`decode + validate ${a.workers} frames (decodeMessage + decodeContribution)`, a.decode),
      op('receive path: decode + validate + sumInto', a.receivePath),
      op(`params broadcast: encodeMessage (${a.parameters.toLocaleString('en-US')} parameters)`, a.paramsEncode),
    ],
    new Set([1, 2, 3]),
  );
  return [
    `Distributed step: ${r.model}, global batch ${r.batchSize}, ${r.optimizer}, Fashion-MNIST; ${r.warmupSteps} warm-up + ${r.timedSteps} timed steps per run`,
    `(ms/step = interval between consecutive step events; local: in-process coordinator on 127.0.0.1, --balance ${r.local.balance};`,
    ` speed-up = train median ms / local median ms; > 1 means the ${r.local.workers} workers are faster)`,
    '',
    runs,
    '',
    `  train: ${r.train.lossCheck.detail}`,
    `  local: ${r.local.lossCheck.detail}; step-0 loss ${r.initialLossMatches ? 'matches' : 'DIFFERS FROM'} train's; max |local - train| loss over the timed steps ${r.maxTimedLossDifference.toExponential(1)}`,
    `  local start-up (coordinator started -> first step: workers spawned, dataset loaded, joined): ${fmt(r.local.startupSeconds, 1)} s`,
    '',
    `Where a local step's time goes (the coordinator's StepEvent timing, per timed step)`,
    '',
    parts,
    '',
    `  ${COMMUNICATION_NOTE}`,
    '',
    `Coordinator aggregation: ${a.workers} simulated workers x ${a.parameters.toLocaleString('en-US')} parameters (${a.tensors} x ${a.paramsPerTensor.toLocaleString('en-US')} float32),`,
    `${mb(a.gradientBytes)} of gradients per worker (${mb(a.frameBytes)} frames); median over ${a.reps} repetitions;`,
    `GB/s = ${a.workers} x ${mb(a.gradientBytes)} of gradients (params encode: ${mb(a.gradientBytes)} of parameters) / median time, 1 GB = 1e9 bytes`,
    '',
    agg,
    '',
    `  max |sumInto - float64 sum| ${a.maxAbsError.toExponential(1)}; receive path result ${a.receivePathMatches ? 'identical to' : 'DIFFERS FROM'} sumInto's; params frame ${mb(a.paramsEncode.frameBytes)}`,
  ].join('\n');
}

type SuiteResults = {
  mlp?: MlpStepSuiteResult;
  matmul?: MatmulSuiteResult;
  pool?: PoolSuiteResult;
  distributed?: DistributedSuiteResult;
  models?: ModelStepsResult;
  network?: NetworkSuiteResult;
  webgpu?: WebGpuSuiteResult;
};

/** `--suite webgpu`: skipped (with probeGpu()'s reason) where there is no WebGPU adapter. */
interface WebGpuSuiteResult {
  /** Null when the suite ran; else why it was skipped. */
  readonly skipped: string | null;
  readonly adapter: AdapterSummary | null;
  readonly matmul: WebGpuMatmulSuiteResult | null;
  readonly steps: WebGpuStepSuiteResult | null;
  readonly ok: boolean;
}

async function runWebGpuSuite(quick: boolean): Promise<WebGpuSuiteResult> {
  const probe = await probeGpu();
  if (probe.adapter === null) {
    const skipped = probe.reason ?? 'no WebGPU adapter';
    console.log(`WebGPU suite: SKIPPED (${skipped})\n`);
    return { skipped, adapter: null, matmul: null, steps: null, ok: true };
  }
  // Loaded here, not at start-up: the other suites' processes never load the WebGPU backend or tfjs-webgpu.
  const { runWebGpuMatmulSuite, webGpuMatmulTable } = await import('./webgpu-matmul.js');
  log(`  webgpu matmul (meshgrad webgpu, meshgrad wasm on every core, tfjs-webgpu) on ${probe.adapter.name}:`);
  const matmul = await runWebGpuMatmulSuite(quick, { log });
  console.log(`${webGpuMatmulTable(matmul)}\n`);
  const { runWebGpuStepSuite, webGpuStepTable } = await import('./webgpu-steps.js');
  log(`  webgpu steps (mlp, cnn, char-lstm, gpt-tiny: meshgrad webgpu, meshgrad wasm on every core, tfjs-webgpu) on ${probe.adapter.name}:`);
  const steps = await runWebGpuStepSuite(quick, { log });
  console.log(`${webGpuStepTable(steps)}\n`);
  return { skipped: null, adapter: probe.adapter, matmul, steps, ok: matmul.ok && steps.ok };
}

function modelsTable(r: ModelStepsResult): string {
  const ms = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '-' : fmt(v, v < 10 ? 2 : 1));
  const ratio = (v: number | null): string => (v === null ? '-' : fmtRatio(v));
  const verdict = (met: boolean | null): string => (met === null ? '-' : metText(met));
  const rows = r.rows.map((x) => [
    x.preset,
    String(x.threads),
    x.meshgrad ? ms(x.meshgrad.timing.medianMs) : 'FAILED',
    x.torch ? ms(x.torch.timing.medianMs) : '-',
    ratio(x.ratio),
    `>= ${x.target.toFixed(1)}x`,
    verdict(x.met),
    x.paramsMatch === null ? (x.meshgrad ? x.meshgrad.params.toLocaleString('en-US') : '-') : `${x.meshgrad?.params.toLocaleString('en-US')} ${x.paramsMatch ? '(= PyTorch)' : '(PyTorch DIFFERS)'}`,
    x.meshgrad ? `${fmt(x.meshgrad.firstLoss, 3)} -> ${fmt(x.meshgrad.lastLoss, 3)}${x.meshgrad.lossCheck.passed ? '' : ' (NOT DOWN)'}` : '-',
    x.rounds.length > 1 ? x.rounds.map((q) => fmt(q.ratio, 2)).join(' / ') : '-',
  ]);
  const table = formatTable(['preset', 'threads', 'meshgrad ms', 'PyTorch ms', 'ratio', 'target', '', 'parameters', 'meshgrad loss first -> last', 'each round'], rows, new Set([1, 2, 3, 4]));
  const scaling = formatTable(
    ['preset', 'meshgrad 2t / 1t', 'target', '', 'PyTorch 2t / 1t'],
    r.scaling.map((x) => [x.preset, ratio(x.meshgrad), `> ${r.targets.twoThreadScaling.toFixed(1)}x`, verdict(x.met), ratio(x.torch)]),
    new Set([1, 4]),
  );
  const verdicts = [...r.rows.map((x) => x.met), ...r.scaling.map((x) => x.met)];
  const judged = verdicts.filter((v) => v !== null);
  const presets = r.presets.map((p) => {
    const steps = r.steps[p.preset];
    const shape = p.context === null ? `batch ${p.batchSize}` : `batch ${p.batchSize} x ${p.context}`;
    const opt = `${p.optimizer} lr ${p.lr}${p.weightDecay !== null ? ` wd ${p.weightDecay}` : ''}${p.clipNorm !== null ? `, clip ${p.clipNorm}` : ''}`;
    return `  ${p.preset}: ${shape}, ${p.dataset}, ${opt}; ${steps ? `${steps.warmup} warm-up + ${steps.timed} timed steps per engine and round` : ''}`;
  });
  const failures = r.rows.flatMap((x) => [
    ...(x.meshgradError !== null ? [`${x.preset} ${x.threads}t: meshgrad FAILED: ${x.meshgradError}`] : []),
    ...(x.torchError !== null && r.torch.available ? [`${x.preset} ${x.threads}t: PyTorch FAILED: ${x.torchError}`] : []),
    ...(x.meshgrad?.heap && !x.meshgrad.heap.flat ? [`${x.preset} ${x.threads}t: meshgrad wasm heap GREW: ${heapText(x.meshgrad.heap.before)} -> ${heapText(x.meshgrad.heap.after)}`] : []),
  ]);
  const torchLine = r.torch.available
    ? `PyTorch ${r.torch.version ?? ''} (${r.torch.python} bench/torch_presets.py; LD_LIBRARY_PATH=${r.torchEnvironment.LD_LIBRARY_PATH}, OMP_NUM_THREADS=${r.torchEnvironment.OMP_NUM_THREADS}, OPENBLAS_CORETYPE ${r.torchEnvironment.OPENBLAS_CORETYPE})`
    : `PyTorch NOT MEASURED: ${r.torch.reason}; meshgrad's figures alone`;
  const profiles = r.profiles.flatMap((p) => {
    if (!p.profile) return [`  ${p.preset}: profile FAILED: ${p.error ?? ''}`, ''];
    const rowsOf = p.profile.rows.map((row) => [row.name, fmt(row.msPerStep, 2), `${fmt(row.share * 100, 1)}%`, row.callsPerStep > 0 ? fmt(row.callsPerStep, 0) : '']);
    const t = formatTable(['where', 'ms/step', 'share', 'calls/step'], rowsOf, new Set([1, 2, 3]));
    return [`  ${p.preset} (batch ${p.profile.batchSize}): ${fmt(p.profile.stepMs, 1)} ms/step over ${p.profile.steps} profiled steps (every backend call timed, so slower than above)`, ...t.split('\n').map((l) => `    ${l}`), ''];
  });
  return [
    'Model training steps, meshgrad (wasm) vs PyTorch, 1 and 2 threads',
    '(a step = batch gather + forward + cross-entropy + backward (+ clipping) + optimizer step; meshgrad as the trainer runs it, in one backend scope;',
    ' PyTorch on a fixed random batch of the same shape; ms = median ms/step; ratio = PyTorch ms / meshgrad ms, > 1 means meshgrad is faster;',
    ' each round times meshgrad and then PyTorch back to back; the ratio and the ms shown are the median round\'s)',
    ...presets,
    `  ${torchLine}`,
    '',
    table,
    '',
    'With 2 threads against 1 (1-thread median ms / 2-thread median ms, > 1: 2 threads faster):',
    '',
    scaling,
    '',
    `Targets (1 thread: mlp >= ${r.targets.oneThread.mlp}x, cnn / char-lstm / gpt-tiny >= ${r.targets.oneThread.cnn}x PyTorch; 2 threads: >= ${r.targets.twoThreads}x PyTorch and faster than 1 thread): ` +
      `${judged.filter((v) => v).length} of ${judged.length} met${judged.length < verdicts.length ? ` (${verdicts.length - judged.length} not judged: a figure is missing)` : ''}`,
    ...[...failures, ...r.notes].map((n) => `  ${n}`),
    ...(profiles.length > 0 ? ['', `Where meshgrad's 1-thread step goes (bench/profile.ts, top ${PROFILE_TOP_ROWS} rows per preset):`, '', ...profiles] : []),
  ].join('\n').trimEnd();
}

/** Runs `suites` in this process, printing each table as it finishes. */
async function runInProcess(suites: readonly Exclude<SuiteName, 'all'>[], quick: boolean): Promise<SuiteResults> {
  const results: SuiteResults = {};
  for (const suite of suites) {
    if (suite === 'mlp') {
      log('MLP training step suite:');
      results.mlp = await runMlpStepSuite({ quick, log });
      console.log(`${mlpTable(results.mlp)}\n`);
    } else if (suite === 'matmul') {
      log('matmul suite:');
      results.matmul = await runMatmulSuite({ quick, log });
      console.log(`${matmulTable(results.matmul)}\n`);
    } else if (suite === 'pool') {
      log('pool suite:');
      results.pool = await runPoolSuite({ quick, log });
      console.log(`${poolTable(results.pool)}\n`);
    } else if (suite === 'models') {
      log('models suite (mlp, cnn, char-lstm, gpt-tiny vs PyTorch):');
      results.models = await runModelStepsSuite({ quick, log });
      console.log(`${modelsTable(results.models)}\n`);
    } else if (suite === 'network') {
      log('network suite (emulated network: meshgrad vs PyTorch DDP-gloo):');
      results.network = await runNetworkSuite({ quick, log });
      console.log(`${networkTable(results.network)}\n`);
    } else if (suite === 'webgpu') {
      log('webgpu suite (the WebGPU backend):');
      results.webgpu = await runWebGpuSuite(quick);
    } else {
      log('distributed suite:');
      results.distributed = await runDistributedSuite({ quick, log });
      console.log(`${distributedTable(results.distributed)}\n`);
    }
  }
  return results;
}

/**
 * Runs each suite in a fresh Node process (this script with --child): no suite then runs after
 * another has left JIT feedback and heap state behind, which measurably shifts the second suite's
 * figures (see docs/benchmarks.md).
 */
function runIsolated(suites: readonly Exclude<SuiteName, 'all'>[], quick: boolean): SuiteResults {
  const dir = mkdtempSync(join(tmpdir(), 'meshgrad-bench-'));
  const results: SuiteResults = {};
  try {
    for (const suite of suites) {
      const file = join(dir, `${suite}.json`);
      const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', '--suite', suite, '--json', file, ...(quick ? ['--quick'] : [])], {
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      if (child.error) throw child.error;
      if (!existsSync(file)) throw new Error(`the ${suite} suite's child process failed (exit status ${child.status ?? child.signal})`);
      const report = JSON.parse(readFileSync(file, 'utf8')) as {
        mlpStep: MlpStepSuiteResult | null;
        matmul: MatmulSuiteResult | null;
        pool: PoolSuiteResult | null;
        distributed: DistributedSuiteResult | null;
        models?: ModelStepsResult | null;
        network?: NetworkSuiteResult | null;
        webgpu?: WebGpuSuiteResult | null;
      };
      if (suite === 'mlp' && report.mlpStep) results.mlp = report.mlpStep;
      if (suite === 'matmul' && report.matmul) results.matmul = report.matmul;
      if (suite === 'pool' && report.pool) results.pool = report.pool;
      if (suite === 'distributed' && report.distributed) results.distributed = report.distributed;
      if (suite === 'models' && report.models) results.models = report.models;
      if (suite === 'network' && report.network) results.network = report.network;
      if (suite === 'webgpu' && report.webgpu) results.webgpu = report.webgpu;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}

/** `all`: the five suites that need no root and no GPU; a name: that suite alone. */
function selectedSuites(suite: SuiteName): Exclude<SuiteName, 'all'>[] {
  return suite === 'all' ? [...SUITES] : ALL_SUITE_NAMES.filter((s) => s === suite);
}

async function main(): Promise<number> {
  const args = parseCommandLine(process.argv.slice(2));
  if (args.plan) {
    const planned = selectedSuites(args.suite);
    const needs = planned.includes('webgpu') ? '; webgpu needs a WebGPU adapter (skipped with the reason where there is none)' : '';
    console.log(`plan: suites ${planned.join(', ')}; ${args.isolate ? 'a fresh Node process per suite' : 'all in this process'}; ${args.quick ? 'quick iteration counts' : 'full iteration counts'}; ${args.json === undefined ? 'no JSON file' : `JSON to ${resolve(args.json)}`}${needs}`);
    return 0;
  }
  const machine = machineInfo();
  const startedAt = new Date();
  let otherCpu = NaN;
  if (!args.child) {
    console.log(`meshgrad benchmarks${args.quick ? ' (--quick: smoke-test iteration counts, not figures to quote)' : ''}, ${startedAt.toISOString()}`);
    console.log(describeMachine(machine));
    otherCpu = await sampleOtherCpuUse(1000);
    console.log(`other CPU use just before the run (1 s sample, all cores): ${fmt(otherCpu * 100, 0)}%`);
    if (otherCpu > 0.2) {
      console.log(`warning: ${fmt(otherCpu * 100, 0)}% of the CPU is busy with other work; timings will be skewed (re-run on a quiet machine)`);
    }
    console.log(args.isolate ? 'each suite runs in its own fresh Node process (--isolate)\n' : 'all suites run in this process, in the order below (--isolate: a fresh process per suite)\n');
  }

  // The MLP step first: the headline figure is measured in a fresh process either way.
  const suites = selectedSuites(args.suite);
  const results = args.isolate ? runIsolated(suites, args.quick) : await runInProcess(suites, args.quick);
  const ok = suites.every((s) => results[s]?.ok === true);

  const endLoad = loadAverage();
  if (!args.child) {
    console.log(`load average at end (1/5/15 min): ${formatLoad(endLoad)}`);
    if (!ok) console.log('SANITY CHECK FAILED: see the loss / leak / heap / product / sum notes above');
  }

  if (args.json !== undefined) {
    const file = resolve(args.json);
    mkdirSync(dirname(file), { recursive: true });
    const report = {
      startedAt: startedAt.toISOString(),
      quick: args.quick,
      isolated: args.isolate,
      machine,
      otherCpuUseAtStart: Number.isFinite(otherCpu) ? otherCpu : null,
      loadAverageAtEnd: endLoad,
      ok,
      mlpStep: results.mlp ?? null,
      matmul: results.matmul ?? null,
      pool: results.pool ?? null,
      distributed: results.distributed ?? null,
      models: results.models ?? null,
      network: results.network ?? null,
      webgpu: results.webgpu ?? null,
    };
    writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
    if (!args.child) console.log(`results written to ${file}`);
  }
  return ok ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const code = (err as { code?: unknown } | null)?.code;
    const usageError = typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
    if (usageError || (err instanceof Error && err.message.startsWith('unknown --suite'))) console.error(`${(err as Error).message}\n${USAGE}`);
    else console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exitCode = 2;
  },
);
