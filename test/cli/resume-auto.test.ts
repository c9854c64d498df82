// `coordinator --resume auto` (for restarted containers): a new run on an empty checkpoint
// directory, a continued run where the directory holds a checkpoint; a bad mode fails in one line.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TOKEN } from '../helpers/cluster.js';
import { runCli } from '../helpers/cli.js';
import { Proc } from '../helpers/processes.js';

const procs: Proc[] = [];
let dir = '';
afterEach(async () => {
  await Promise.all(procs.splice(0).map((p) => p.stop()));
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = '';
});

const exited = (p: Proc): Promise<number | null> =>
  p.exited ? Promise.resolve(p.child.exitCode) : new Promise((resolve) => p.child.once('exit', (code) => resolve(code)));

/** A coordinator process (JSON logs) and one worker, run to the end; returns the coordinator. */
async function runTo(maxSteps: number, resume: { flag?: string; env?: string }): Promise<Proc> {
  const args = ['coordinator', '--host', '127.0.0.1', '--port', '0', '--metrics-port', '0', '--train-samples', '512', '--threads', '1', '--max-steps', String(maxSteps), '--checkpoint-dir', dir];
  if (resume.flag) args.push('--resume', resume.flag);
  const coordinator = Proc.meshgrad('coordinator', args, { MESHGRAD_TOKEN: TOKEN, ...(resume.env ? { MESHGRAD_RESUME: resume.env } : {}) });
  procs.push(coordinator);
  const url = String((await coordinator.waitForLog('coordinator listening')).url);
  const worker = Proc.meshgrad('worker', ['worker', '--connect', url, '--metrics-port', '0', '--threads', '1'], { MESHGRAD_TOKEN: TOKEN });
  procs.push(worker);
  expect(await exited(coordinator), coordinator.output).toBe(0);
  expect(await exited(worker), worker.output).toBe(0);
  return coordinator;
}

describe('coordinator --resume auto', () => {
  it('starts a new run on an empty directory, then continues it once a checkpoint exists', async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgrad-resume-auto-'));
    const first = await runTo(2, { flag: 'auto' });
    expect(first.logs.some((l) => l.msg === 'resumed from checkpoint')).toBe(false);
    expect(first.logs.find((l) => l.msg === 'summary')).toMatchObject({ steps: 2, interrupted: false });

    const second = await runTo(4, { env: 'auto' }); // the same, from MESHGRAD_RESUME
    expect(second.logs.find((l) => l.msg === 'resumed from checkpoint')).toMatchObject({ step: 2 });
    expect(second.logs.find((l) => l.msg === 'summary')).toMatchObject({ steps: 4, interrupted: false });
  });

  it('refuses an unknown mode in one line naming it', async () => {
    const { code, stderr } = await runCli(['coordinator', '--token', TOKEN, '--resume', 'sometimes']);
    expect(code).not.toBe(0);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/'sometimes' is not a resume mode/);
  });
});
