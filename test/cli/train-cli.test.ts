// The `meshgrad train` command, run as a real process from the built CLI.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Command } from 'commander';
import { addTrainingOptions } from '../../cli/train-command.js';
import { loadCheckpoint } from '../../shared/checkpoint/index.js';
import { runCli } from '../helpers/cli.js';

let dir = '';
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = '';
});

describe('meshgrad train', () => {
  it('--help lists every flag with its environment variable', async () => {
    const { code, stdout } = await runCli(['train', '--help']);
    expect(code).toBe(0);
    const flags = addTrainingOptions(new Command('x')).options.map((o) => o.long!);
    expect(flags.length).toBeGreaterThan(15);
    for (const flag of flags) expect(stdout).toContain(flag);
    expect(stdout).toContain('MESHGRAD_LR');
  });

  const bad: Array<[string[], RegExp]> = [
    [['--lr', 'fast'], /--lr.*'fast'/],
    [['--epochs', '0'], /--epochs.*'0'/],
    [['--batch-size', '12.5'], /--batch-size.*'12\.5'/],
    [['--optimizer', 'rmsprop'], /--optimizer.*'rmsprop'/],
    [['--label-smoothing', '1.5'], /--label-smoothing.*'1\.5'/],
    [['--no-such-flag'], /unknown option '--no-such-flag'/],
    [['--model', 'resnet999'], /unknown model 'resnet999'/],
    [['--momentum', '0.9'], /momentum.*does not apply to optimizer 'adam'/],
    [['--data-dir', '/nonexistent-dir'], /\/nonexistent-dir/],
  ];
  for (const [args, message] of bad) {
    it(`exits non-zero with a one-line reason for ${args.join(' ')}`, async () => {
      const { code, stderr } = await runCli(['train', '--max-steps', '1', ...args]);
      expect(code).not.toBe(0);
      expect(stderr.trim().split('\n')).toHaveLength(1);
      expect(stderr).toMatch(message);
    });
  }

  it('trains, saves safetensors with PyTorch names and writes the summary JSON', async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgrad-cli-'));
    const save = join(dir, 'model.safetensors');
    const summaryPath = join(dir, 'summary.json');
    const { code, stdout, stderr } = await runCli(['train', '--max-steps', '4', '--train-samples', '512', '--batch-size', '64', '--save', save, '--summary-json', summaryPath]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/test accuracy \d+\.\d+%/);
    const summary = JSON.parse(readFileSync(summaryPath, 'utf8')) as Record<string, number>;
    // The figures, then (issue 15) the configuration and the per-epoch history (test/cli/report.test.ts).
    expect(Object.keys(summary).sort()).toEqual(['config', 'history', 'samples', 'steps', 'testAccuracy', 'testLoss', 'trainLoss', 'wallSeconds']);
    expect(summary.steps).toBe(4);
    expect(summary.samples).toBe(256);
    const ckpt = await loadCheckpoint(save);
    expect([...ckpt.params.keys()].sort()).toEqual(['1.bias', '1.weight', '3.bias', '3.weight', '5.bias', '5.weight']);
    expect(ckpt.params.get('1.weight')!.shape).toEqual([256, 784]);
  });
});

describe('--max-steps and --epochs', () => {
  // 256 samples in batches of 128: 2 steps an epoch.
  const quick = ['train', '--model', 'mlp', '--train-samples', '256', '--batch-size', '128', '--test-samples', '64', '--threads', '1'];
  const stepsOf = async (args: string[]): Promise<number> => {
    dir ||= mkdtempSync(join(tmpdir(), 'meshgrad-steps-'));
    const summaryPath = join(dir, `summary-${args.join('_')}.json`);
    const { code, stderr } = await runCli([...quick, ...args, '--summary-json', summaryPath]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    return (JSON.parse(readFileSync(summaryPath, 'utf8')) as { steps: number }).steps;
  };

  it('--max-steps alone runs that many steps, over as many epochs as it takes', async () => {
    expect(await stepsOf(['--max-steps', '5'])).toBe(5);
  });

  it('with both, whichever ends first', async () => {
    expect(await stepsOf(['--max-steps', '5', '--epochs', '1'])).toBe(2);
    expect(await stepsOf(['--max-steps', '3', '--epochs', '4'])).toBe(3);
  });

  it('without either, one epoch', async () => {
    expect(await stepsOf([])).toBe(2);
  });
});

describe('language models from the command line', () => {
  it('trains a char-gru on Moby-Dick for a few steps and generates text from its checkpoint', async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgrad-lm-'));
    const save = join(dir, 'gru.safetensors');
    const trained = await runCli(['train', '--model', 'char-gru', '--dataset', 'moby-dick', '--max-steps', '3', '--save', save], { timeoutMs: 120_000 });
    expect(trained.stderr).toBe('');
    expect(trained.code).toBe(0);
    expect(trained.stdout).toMatch(/val loss \d/);
    const gen = await runCli(['generate', '--checkpoint', save, '--prompt', 'Call me', '--length', '40', '--seed', '3']);
    expect(gen.code).toBe(0);
    const text = gen.stdout.replace(/\n$/, '');
    expect(text.startsWith('Call me')).toBe(true);
    expect([...text].length).toBe('Call me'.length + 40);
    const again = await runCli(['generate', '--checkpoint', save, '--prompt', 'Call me', '--length', '40', '--seed', '3']);
    expect(again.stdout).toBe(gen.stdout);
  });
});
