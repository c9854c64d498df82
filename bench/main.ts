/**
 * `npm run bench`: meshgrad against TensorFlow.js (CPU and WASM backends) in one process run,
 * and meshgrad's distributed training against its single-process training.
 *
 *   node dist/bench/main.js [--quick] [--json FILE] [--suite all|mlp|matmul|distributed] [--isolate]
 *
 * Suites: the MLP training step (bench/mlp-step.ts), square matmul GFLOPS (bench/matmul.ts) and
 * the distributed step (bench/distributed.ts: `local --workers 2` against `train`, the step's
 * communication time, the coordinator's aggregation throughput), in that order, in this process
 * (--isolate: each in a fresh child process). Prints a table per suite; --json writes every
 * figure (and the machine) to FILE. Exits with 1 when a sanity check fails (a loss that does not
 * go down, a tfjs leak, a wrong product or gradient sum).
 */

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { COMMUNICATION_NOTE, runDistributedSuite, type DistributedSuiteResult, type RunResult } from './distributed.js';
import { runMatmulSuite, type MatmulSuiteResult } from './matmul.js';
import { runMlpStepSuite, type MlpStepSuiteResult } from './mlp-step.js';
import { describeMachine, fmt, fmtRatio, formatLoad, formatTable, loadAverage, machineInfo, sampleOtherCpuUse } from './report.js';

const USAGE = `usage: node dist/bench/main.js [--quick] [--json FILE] [--suite all|mlp|matmul|distributed] [--isolate]
  --quick        fewer iterations (a smoke test, not figures to quote)
  --json FILE    also write the results as JSON to FILE
  --suite NAME   run only the 'mlp' (training step), 'matmul' or 'distributed' suite (default: all)
  --isolate      run each suite in a fresh Node process (default: all in this one)`;

type SuiteName = 'all' | 'mlp' | 'matmul' | 'distributed';
const SUITES = ['mlp', 'matmul', 'distributed'] as const;

interface Args {
  readonly quick: boolean;
  readonly json: string | undefined;
  readonly suite: SuiteName;
  readonly isolate: boolean;
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
  if (suite !== 'all' && !(SUITES as readonly string[]).includes(suite)) throw new Error(`unknown --suite '${suite}' (all, mlp, matmul or distributed)`);
  return { quick: values.quick ?? false, json: values.json, suite: suite as SuiteName, isolate: (values.isolate ?? false) && !(values.child ?? false), child: values.child ?? false };
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

function mlpTable(r: MlpStepSuiteResult): string {
  const rows = r.engines.map((e) => [
    e.engine,
    e.description,
    fmt(e.timing.medianMs, 2),
    fmt(e.timing.meanMs, 2),
    fmt(e.samplesPerSecond, 0),
    e.engine === 'meshgrad' ? '-' : fmtRatio(e.meshgradSpeedup),
    fmt(e.initialLoss, 4),
    `${fmt(e.firstLoss, 3)} -> ${fmt(e.lastLoss, 3)}`,
    e.lossCheck.passed ? 'ok' : 'FAILED',
  ]);
  const table = formatTable(
    ['engine', 'backend', 'median ms/step', 'mean ms/step', 'samples/s', 'meshgrad speed-up', 'step-0 loss', 'timed loss first -> last', 'loss down'],
    rows,
    new Set([2, 3, 4, 5, 6]),
  );
  const notes = r.engines.map((e) => {
    const leak = e.liveTensors ? `; live tfjs tensors ${e.liveTensors.before} -> ${e.liveTensors.after}${e.liveTensors.before === e.liveTensors.after ? ' (flat)' : ' (LEAK)'}` : '';
    const start = e.engine === 'meshgrad' ? '' : `; step-0 loss ${e.initialLossMatches ? 'matches' : 'DIFFERS FROM'} meshgrad's`;
    return `  ${e.engine}: ${e.lossCheck.detail}${start}${leak}`;
  });
  return [
    `MLP training step: ${r.model}, batch ${r.batchSize}, ${r.optimizer}, Fashion-MNIST; ${r.warmupSteps} warm-up + ${r.timedSteps} timed steps per engine`,
    `(a step = batch gather + forward + backward + Adam update; speed-up = tfjs ms / meshgrad ms, median; > 1 means meshgrad is faster)`,
    '',
    table,
    '',
    ...notes,
  ].join('\n');
}

function matmulTable(r: MatmulSuiteResult): string {
  const cell = (m: { gflops: number; timing: { medianMs: number; runs: number } }): string => `${fmt(m.gflops, 2)} (${fmt(m.timing.medianMs, 1)} ms x${m.timing.runs})`;
  const rows = r.rows.map((row) => [
    String(row.n),
    cell(row.meshgrad),
    cell(row.tfjsCpu),
    cell(row.tfjsWasm),
    fmtRatio(row.speedupVsCpu),
    fmtRatio(row.speedupVsWasm),
  ]);
  const table = formatTable(
    ['N', 'meshgrad GFLOPS', 'tfjs-cpu GFLOPS', 'tfjs-wasm GFLOPS', 'meshgrad vs tfjs-cpu', 'meshgrad vs tfjs-wasm'],
    rows,
    new Set([0, 1, 2, 3, 4, 5]),
  );
  const errors = r.rows.map((row) => `N=${row.n}: ${row.tfjsCpu.relError.toExponential(1)} / ${row.tfjsWasm.relError.toExponential(1)}`).join(', ');
  return [
    `Matmul: square float32 C = A*B, GFLOPS = 2N^3 / median time (median ms x timed runs in brackets); ratio = tfjs ms / meshgrad ms`,
    `  meshgrad: ${r.descriptions.meshgrad}; tfjs-cpu: ${r.descriptions['tfjs-cpu']}; tfjs-wasm: ${r.descriptions['tfjs-wasm']}`,
    '',
    table,
    '',
    `  max relative difference from meshgrad's product (tfjs-cpu / tfjs-wasm): ${errors}`,
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
      op(`sumInto (${a.workers} contributions)`, a.aggregate),
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

type SuiteResults = { mlp?: MlpStepSuiteResult; matmul?: MatmulSuiteResult; distributed?: DistributedSuiteResult };

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
      const report = JSON.parse(readFileSync(file, 'utf8')) as { mlpStep: MlpStepSuiteResult | null; matmul: MatmulSuiteResult | null; distributed: DistributedSuiteResult | null };
      if (suite === 'mlp' && report.mlpStep) results.mlp = report.mlpStep;
      if (suite === 'matmul' && report.matmul) results.matmul = report.matmul;
      if (suite === 'distributed' && report.distributed) results.distributed = report.distributed;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}

async function main(): Promise<number> {
  const args = parseCommandLine(process.argv.slice(2));
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
  const suites = SUITES.filter((s) => args.suite === 'all' || args.suite === s);
  const results = args.isolate ? runIsolated(suites, args.quick) : await runInProcess(suites, args.quick);
  const ok = suites.every((s) => results[s]?.ok === true);

  const endLoad = loadAverage();
  if (!args.child) {
    console.log(`load average at end (1/5/15 min): ${formatLoad(endLoad)}`);
    if (!ok) console.log('SANITY CHECK FAILED: see the loss / leak / product / sum notes above');
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
      distributed: results.distributed ?? null,
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
