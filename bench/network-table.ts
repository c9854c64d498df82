/** The text table of `--suite network` (bench/network.ts), as bench/main.ts prints it. */

import type { NetworkSuiteResult } from './network.js';
import { fmt, formatTable } from './report.js';

const num = (v: number | null, digits: number): string => (v === null ? '-' : fmt(v, digits));
const mb = (v: number | null): string => (v === null ? '-' : fmt(v / 1e6, 2));

export function networkTable(r: NetworkSuiteResult): string {
  if (r.skipped !== null) return `Network testbed: SKIPPED (${r.skipped})`;
  const rows = r.rows.map((x) => [
    x.model,
    String(x.rateMbit),
    x.system,
    x.config,
    String(x.workers),
    x.error !== null ? 'FAILED' : num(x.medianStepMs, 1),
    num(x.samplesPerSecond, 0),
    mb(x.bytesInPerStep),
    mb(x.bytesOutPerStep),
    num(x.medianNetworkWaitMs, 1),
    x.scalingEfficiency === null ? '-' : fmt(x.scalingEfficiency, 2),
    x.testAccuracy === null ? '-' : `${fmt(x.testAccuracy * 100, 1)}%`,
  ]);
  const table = formatTable(
    ['model', 'Mbit/s', 'system', 'config', 'workers', 'median ms/step', 'samples/s', 'MB in/step', 'MB out/step', 'net wait ms', 'efficiency', 'test acc'],
    rows,
    new Set([1, 4, 5, 6, 7, 8, 9, 10, 11]),
  );
  const steps = Object.entries(r.steps).map(([m, s]) => `${m} ${s.warmup} warm-up + ${s.timed} timed steps`).join(', ');
  const failures = r.rows.filter((x) => x.error !== null).map((x) => `  ${x.model} ${x.rateMbit} Mbit/s ${x.system} ${x.config}: ${x.error!.split('\n')[0]}`);
  return [
    `Network testbed: namespaces on a bridge, tbf on both ends of every link (bandwidth only, no delay); global batch 128, 1 thread per process; ${steps}`,
    '(meshgrad: a coordinator node + worker nodes, bytes = protocol frames at the coordinator, all workers together, in = gradients, out = assign + parameters;',
    ' DDP-gloo: ranks in the worker nodes, bytes = rank 0\'s interface; net wait = coordinator stepMs - slowest compute - update, median;',
    ' efficiency = samples/s(N) / (N x samples/s(1)) at the same bandwidth; DDP world 1 is measured once per model (no communication))',
    ...(r.ddpSkipped !== null ? [`  DDP-gloo NOT MEASURED: ${r.ddpSkipped}`] : []),
    `  meshgrad variants (2 workers): ${r.variants.map((v) => `${v.name}${v.flags.length > 0 ? ` (${v.flags.join(' ')})` : ' (no extra flags)'}`).join(', ')}`,
    '',
    table,
    ...failures,
  ].join('\n');
}
