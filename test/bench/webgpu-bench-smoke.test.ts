/**
 * Smoke test of `npm run bench -- --suite webgpu` (issue 14): the built bench's `--plan` lists the
 * suite, and only when it is named (it is not part of `all`); where a WebGPU adapter exists, one
 * tiny quick step of the mlp preset runs on meshgrad's webgpu backend (bench/webgpu-steps.ts) and
 * its table prints a finite ms/step; where there is none, those tests are skipped with the reason
 * printed, and the suite itself prints that reason in one line and succeeds. No timing assertions:
 * timing belongs in `npm run bench`. The plan runs dist/bench/main.js: `npm test` builds first.
 */

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { probeGpu } from '../../shared/backend/webgpu/gpu-loader.js';

const MAIN = fileURLToPath(new URL('../../dist/bench/main.js', import.meta.url));
const probe = await probeGpu();
const noAdapter = probe.adapter === null;
if (noAdapter) console.warn(`bench webgpu suite: the step tests are skipped: ${probe.reason ?? 'no WebGPU adapter'}`);
const adapterNote = probe.adapter ? `adapter ${probe.adapter.name}` : `skipped: ${probe.reason ?? 'no WebGPU adapter'}`;

function bench(args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 240_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('bench: webgpu suite', () => {
  it('--plan lists the webgpu suite when it is named, and `all` leaves it out', () => {
    const named = bench(['--suite', 'webgpu', '--quick', '--plan']);
    expect(named.status, named.stderr).toBe(0);
    expect(named.stdout).toMatch(/^plan: suites webgpu;/m);
    expect(named.stdout).toMatch(/quick iteration counts/);
    expect(named.stdout).toMatch(/needs a WebGPU adapter/);
    const all = bench(['--plan']);
    expect(all.status, all.stderr).toBe(0);
    expect(all.stdout).toMatch(/^plan: suites mlp, matmul, pool, distributed, models;/m);
    expect(all.stdout).not.toMatch(/webgpu/);
  });

  it('--help names the suite', () => {
    const r = bench(['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/all\|mlp\|matmul\|pool\|distributed\|models\|network\|webgpu/);
  });

  it.skipIf(!noAdapter)('without an adapter the suite prints the reason in one line and succeeds', () => {
    const r = bench(['--suite', 'webgpu', '--quick']);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.split('\n').filter((l) => l.startsWith('WebGPU suite: SKIPPED'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(probe.reason ?? '');
  });

  it.skipIf(noAdapter)(`one quick mlp step on meshgrad webgpu runs and prints a finite figure (${adapterNote})`, async () => {
    const { runWebGpuStepSuite, webGpuStepTable } = await import('../../bench/webgpu-steps.js');
    const r = await runWebGpuStepSuite(true, { presets: ['mlp'], engines: ['meshgrad-webgpu'], steps: { warmup: 1, timed: 1 } });
    expect(r.rows).toHaveLength(1);
    const run = r.rows[0].runs['meshgrad-webgpu'];
    expect(run, r.rows[0].missing['meshgrad-webgpu']).not.toBeNull();
    expect(run!.losses).toHaveLength(1);
    expect(Number.isFinite(run!.initialLoss) && Number.isFinite(run!.losses[0])).toBe(true);
    expect(Number.isFinite(run!.timing.medianMs)).toBe(true);
    expect(r.rows[0].failed).toEqual([]);
    const table = webGpuStepTable(r);
    expect(table).toContain(r.adapter.name);
    if (r.adapter.software) expect(table).toMatch(/SOFTWARE adapter.*not GPU speed/);
    const row = table.split('\n').find((l) => l.startsWith('mlp '));
    expect(row).toBeDefined();
    const figure = Number(row!.trim().split(/\s+/)[2]);
    expect(Number.isFinite(figure)).toBe(true);
    expect(r.rows[0].runs['meshgrad-wasm']).toBeNull();
    expect(r.rows[0].missing['tfjs-webgpu']).toBe('not asked for');
  });
});
