// `meshgrad train --checkpoint-dir / --checkpoint-every / --resume`, run as real processes from the
// built CLI: a run stopped (--max-steps) and resumed, twice, ends with the same bytes in --save and
// the same figures as a run that was never stopped (an MLP with BatchNorm and dropout, Adam: its
// moments and step count, the running statistics, the dropout streams, the epoch's permutation
// position and running loss all continue); --resume auto starts a new run on an empty directory;
// and what cannot resume is refused in one line naming the value, before any data is read.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../../shared/checkpoint/index.js';
import { runCli, type CliResult } from '../helpers/cli.js';

let dir = '';
let spec = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'meshgrad-train-resume-'));
  spec = join(dir, 'mlp-bn-dropout.json');
  const layers = [{ type: 'flatten' }, { type: 'linear', out: 32 }, { type: 'batchnorm1d' }, { type: 'relu' }, { type: 'dropout', p: 0.3 }, { type: 'linear', out: 10 }];
  writeFileSync(spec, JSON.stringify({ name: 'mlp-bn-dropout', input: [1, 28, 28], layers }));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** 256 samples in batches of 32: 8 steps an epoch, 16 in the 2 epochs. */
const base = (): string[] => ['train', '--model', spec, '--optimizer', 'adam', '--train-samples', '256', '--test-samples', '200', '--batch-size', '32', '--epochs', '2', '--threads', '1'];

async function train(args: string[]): Promise<CliResult> {
  const r = await runCli([...base(), ...args]);
  expect(r.code, `${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(0);
  expect(r.stderr).toBe('');
  return r;
}

interface Summary {
  testAccuracy: number;
  testLoss: number;
  trainLoss: number;
  steps: number;
  samples: number;
  history: Array<Record<string, unknown>>;
}

/** The summary's figures and history, without the timings. */
function figures(path: string): Omit<Summary, 'history'> & { history: unknown[] } {
  const s = JSON.parse(readFileSync(path, 'utf8')) as Summary;
  return { testAccuracy: s.testAccuracy, testLoss: s.testLoss, trainLoss: s.trainLoss, steps: s.steps, samples: s.samples, history: s.history.map(({ seconds: _, ...rest }) => rest) };
}

describe('meshgrad train: checkpoints and resume', () => {
  it('a run stopped and resumed ends bit for bit where the uninterrupted run does', async () => {
    await train(['--save', join(dir, 'full.safetensors'), '--summary-json', join(dir, 'full.json')]);

    const ckpt = join(dir, 'ckpt');
    // auto on an empty directory: a new run; stopped mid-epoch 1 (periodic checkpoint at step 3, the final one at 5).
    const first = await train(['--checkpoint-dir', ckpt, '--checkpoint-every', '3', '--resume', 'auto', '--max-steps', '5']);
    expect(first.stdout).not.toMatch(/resumed from/);
    expect(first.stdout).toContain(`checkpoint: ${join(ckpt, 'latest.safetensors')}`);
    const atFive = await loadCheckpoint(join(ckpt, 'latest.safetensors'));
    expect(atFive.meta.cursor).toMatchObject({ epoch: 0, batch: 5, step: 5, samples: 160 });
    expect(atFive.optimizer?.step).toBe(5);
    expect([...atFive.params.keys()]).toContain('2.running_mean');
    copyFileSync(join(ckpt, 'latest.safetensors'), join(dir, 'step5.safetensors'));

    // --resume alone: from the directory's checkpoint, on to the middle of epoch 2.
    const second = await train(['--checkpoint-dir', ckpt, '--checkpoint-every', '3', '--resume', '--max-steps', '11']);
    expect(second.stdout).toMatch(/resumed from \S+latest\.safetensors at step 5 \(epoch 1, batch 5\)/);
    // auto with a checkpoint there: resumes it, to the end.
    const third = await train(['--checkpoint-dir', ckpt, '--checkpoint-every', '3', '--resume', 'auto', '--save', join(dir, 'resumed.safetensors'), '--summary-json', join(dir, 'resumed.json')]);
    expect(third.stdout).toMatch(/resumed from \S+ at step 11 \(epoch 2, batch 3\)/);

    expect(readFileSync(join(dir, 'resumed.safetensors')).equals(readFileSync(join(dir, 'full.safetensors')))).toBe(true);
    // The figures too: the last epoch's training loss continued its running sum; the history (history.json) is whole.
    const full = figures(join(dir, 'full.json'));
    expect(full.history).toHaveLength(2);
    expect(figures(join(dir, 'resumed.json'))).toEqual(full);

    // A checkpoint file named by path, without --checkpoint-dir: the same end again.
    const fromFile = await train(['--resume', join(dir, 'step5.safetensors'), '--save', join(dir, 'from-file.safetensors')]);
    expect(fromFile.stdout).toMatch(/at step 5 /);
    expect(readFileSync(join(dir, 'from-file.safetensors')).equals(readFileSync(join(dir, 'full.safetensors')))).toBe(true);

    // Resuming a run that has ended trains nothing and reports the final parameters' figures.
    const again = await train(['--checkpoint-dir', ckpt, '--resume', '--summary-json', join(dir, 'again.json')]);
    expect(again.stdout).toMatch(/at step 16 /);
    expect(figures(join(dir, 'again.json'))).toMatchObject({ testLoss: full.testLoss, testAccuracy: full.testAccuracy, trainLoss: full.trainLoss, steps: 16 });
  });

  const refused: Array<[string, () => string[], RegExp]> = [
    ['an unwritable --checkpoint-dir', () => ['--checkpoint-dir', join(spec, 'ckpt')], /^meshgrad: --checkpoint-dir \S+mlp-bn-dropout\.json\/ckpt: cannot write there: \S+ is a file, not a directory$/],
    ['a missing --resume path', () => ['--resume', join(dir, 'nowhere')], /^meshgrad: --resume \S+nowhere: no such file or directory$/],
    ['--resume alone without --checkpoint-dir', () => ['--resume'], /^meshgrad: --resume needs --checkpoint-dir/],
    ['--resume of an empty directory', () => ['--checkpoint-dir', join(dir, 'empty'), '--resume'], /^meshgrad: --resume: no checkpoint at \S+empty\/latest\.safetensors/],
    ['a checkpoint of another model', () => ['--model', 'mlp', '--resume', join(dir, 'step5.safetensors')], /^meshgrad: --resume \S+step5\.safetensors: written with a different model spec: name: "mlp-bn-dropout" vs "mlp" \(checkpoint vs this run\)$/],
    ['a checkpoint of other data', () => ['--train-samples', '128', '--resume', join(dir, 'ckpt')], /^meshgrad: --resume \S+ckpt \(\S+latest\.safetensors\): written with --train-samples 256, this run has 128$/],
    ['a --save file (the model alone)', () => ['--resume', join(dir, 'full.safetensors')], /^meshgrad: --resume \S+full\.safetensors: not a training checkpoint/],
    ['--checkpoint-every without a directory', () => ['--checkpoint-every', '3'], /^meshgrad: --checkpoint-every 3: needs --checkpoint-dir/],
    ['a device backend', () => ['--backend', 'webgpu', '--checkpoint-dir', join(dir, 'gpu')], /^meshgrad: --backend webgpu: checkpoints .* need a host backend/],
  ];
  for (const [what, args, message] of refused) {
    it(`refuses ${what} in one line, before reading any data`, async () => {
      const { code, stdout, stderr } = await runCli([...base(), ...args()]);
      expect(code).toBe(1);
      expect(stdout).toBe('');
      expect(stderr.trim().split('\n')).toHaveLength(1);
      expect(stderr.trim()).toMatch(message);
    });
  }

  it('--checkpoint-failure stop: a checkpoint that cannot be written stops the run, writes --save and exits 1', async () => {
    const ckpt = join(dir, 'full-disk');
    // A directory where the file goes: the atomic rename fails as a full disk's write would.
    mkdirSync(join(ckpt, 'latest.safetensors'), { recursive: true });
    const save = join(dir, 'stopped.safetensors');
    const { code, stdout, stderr } = await runCli([...base(), '--checkpoint-dir', ckpt, '--checkpoint-every', '3', '--checkpoint-failure', 'stop', '--save', save]);
    expect(code).toBe(1);
    expect(stdout).toMatch(/^stopped after 3 steps$/m);
    expect(stderr).toMatch(/warning: checkpoint at step 3 failed: could not write \S+latest\.safetensors: EISDIR.*stopping the run \(--checkpoint-failure stop\)/);
    expect(stderr.trim().split('\n').at(-1)).toMatch(/^meshgrad: checkpoint at step 3 failed/);
    expect(existsSync(save)).toBe(true);
    expect((await loadCheckpoint(save)).meta.steps).toBe(3);
  });
});
