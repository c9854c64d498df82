// bench/soak.sh, the script behind the recorded soak runs in docs/benchmarks.md, run as written
// with a tiny command: two 2-thread runs beside its CPU hog must finish and save the same bits.
// Its usage errors are checked too, so the recorded command cannot rot unnoticed.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'meshgrad-soak-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('bench/soak.sh', () => {
  it('runs a command twice beside a CPU hog and finds one distinct result', { timeout: 240_000 }, () => {
    const out = spawnSync('bash', ['bench/soak.sh', '2', '200', dir, '--', 'meshgrad', 'train', '--model', 'mlp', '--max-steps', '4', '--test-samples', '32', '--threads', '2'], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, MESHGRAD_METRICS_PORT: '0' },
    });
    expect(out.status, out.stdout + out.stderr).toBe(0);
    expect(out.stdout).toMatch(/^run 1: \d+\.\d s, [0-9a-f]{16}$/m);
    expect(out.stdout).toMatch(/^soak: 2 runs, 0 hangs, 0 failures, 1 distinct results, \d+\.\d s per run \(median\)$/m);
  });

  it('refuses a command that is not meshgrad, naming it', () => {
    const out = spawnSync('bash', ['bench/soak.sh', '1', '10', dir, '--', 'rm', '-rf', '/'], { cwd: root, encoding: 'utf8' });
    expect(out.status).toBe(2);
    expect(out.stderr.trim()).toBe("soak.sh: the command must start with meshgrad, got 'rm'");
  });
});
