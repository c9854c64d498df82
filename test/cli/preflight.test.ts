// Bad input is caught before the work starts: each run below is refused before any training step
// (no `step N` progress line), with one line naming the flag or field and the value.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../helpers/cli.js';

let dir = '';
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'meshgrad-preflight-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A regular file in the temp directory: a path under it cannot be written. */
function regularFile(): string {
  const file = join(dir, 'a-file');
  writeFileSync(file, 'not a directory\n');
  return file;
}

function specFile(name: string, spec: unknown): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(spec));
  return file;
}

/** Refused before training: non-zero, one line on stderr matching every pattern, no step run. */
function expectRefused(result: CliResult, ...patterns: Array<RegExp | string>): void {
  expect(result.code, result.stderr).not.toBe(0);
  const lines = result.stderr.trim().split('\n');
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^(meshgrad|error): /);
  for (const p of patterns) {
    if (typeof p === 'string') expect(lines[0]).toContain(p);
    else expect(lines[0]).toMatch(p);
  }
  expect(result.stdout + result.stderr).not.toMatch(/\bstep \d/);
}

// Small runs, in case a check is missed: they would train a step or two, not an epoch.
const QUICK = ['--max-steps', '1', '--train-samples', '256', '--test-samples', '64', '--batch-size', '64', '--threads', '1'];
const COORDINATOR = ['coordinator', '--token', 'secret', '--host', '127.0.0.1', '--port', '0', '--no-metrics', ...QUICK];

describe('output paths are checked before training', () => {
  it('train --save under a regular file names --save and the path', async () => {
    const save = join(regularFile(), 'model.safetensors');
    expectRefused(await runCli(['train', ...QUICK, '--save', save]), `--save ${save}`, 'is a file, not a directory');
  });

  it('train --summary-json into an unwritable place names --summary-json', async () => {
    const summary = join(regularFile(), 'runs', 'summary.json');
    expectRefused(await runCli(['train', ...QUICK, '--summary-json', summary]), `--summary-json ${summary}`);
  });

  it('train --save that is a directory names --save', async () => {
    expectRefused(await runCli(['train', ...QUICK, '--save', dir]), `--save ${dir}`, 'is a directory');
  });

  it('coordinator --checkpoint-dir that cannot be a directory names --checkpoint-dir', async () => {
    const file = regularFile();
    expectRefused(await runCli([...COORDINATOR, '--checkpoint-dir', file]), `--checkpoint-dir ${file}`);
    const under = join(file, 'ckpt');
    expectRefused(await runCli([...COORDINATOR, '--checkpoint-dir', under]), `--checkpoint-dir ${under}`);
  });

  it('coordinator --save and local --summary-json under a regular file name the flag', async () => {
    const save = join(regularFile(), 'model.safetensors');
    expectRefused(await runCli([...COORDINATOR, '--save', save]), `--save ${save}`);
    const summary = join(regularFile(), 'summary.json');
    expectRefused(await runCli(['local', '--workers', '1', ...QUICK, '--summary-json', summary]), `--summary-json ${summary}`);
  });

  it('creates a missing output directory as the write would, and leaves no probe file behind', async () => {
    const out = join(dir, 'new', 'runs');
    const summary = join(out, 'summary.json');
    const { code, stderr } = await runCli(['train', ...QUICK, '--summary-json', summary]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(readdirSync(out)).toEqual(['summary.json']);
    expect(JSON.parse(readFileSync(summary, 'utf8'))).toMatchObject({ steps: 1 });
  });
});

describe('a model that does not fit the dataset is refused before training', () => {
  it('char-gru on fashion-mnist names --model and --dataset', async () => {
    expectRefused(await runCli(['train', ...QUICK, '--model', 'char-gru', '--dataset', 'fashion-mnist']), '--model char-gru', '--dataset fashion-mnist', /token ids/);
  });

  it('cnn on moby-dick names --model and --dataset', async () => {
    expectRefused(await runCli(['train', ...QUICK, '--model', 'cnn', '--dataset', 'moby-dick']), '--model cnn', '--dataset moby-dick', /token ids \[64\]/);
  });

  it('the coordinator refuses the same before reading the data', async () => {
    expectRefused(await runCli([...COORDINATOR, '--model', 'char-gru', '--dataset', 'fashion-mnist']), '--model char-gru', '--dataset fashion-mnist');
  });

  it("a language model's output width is checked against the text's vocabulary once it is read, before a step", async () => {
    const file = specFile('lm.json', { name: 'lm', input: [16], layers: [{ type: 'embedding', dim: 8 }, { type: 'gru', hidden: 8 }, { type: 'linear', out: 7 }] });
    expectRefused(await runCli(['train', ...QUICK, '--model', file, '--dataset', 'moby-dick']), `--model ${file}`, "layer 2 (linear) 'out' is 7", /the dataset has \d+ characters in its vocabulary/);
  });

  it('an input shape other than the samples names both shapes', async () => {
    const file = specFile('flat.json', { name: 'flat', input: [784], layers: [{ type: 'linear', out: 10 }] });
    expectRefused(await runCli(['train', ...QUICK, '--model', file]), `--model ${file}`, '[784]', '[1, 28, 28]');
  });
});

describe('model specs', () => {
  it('a hidden linear layer without out is an error naming the layer and the field', async () => {
    const file = specFile('hidden.json', { name: 'h', input: [1, 28, 28], layers: [{ type: 'flatten' }, { type: 'linear' }, { type: 'relu' }, { type: 'linear', out: 10 }] });
    expectRefused(await runCli(['train', ...QUICK, '--model', file]), 'layer 1 (linear)', "'out'");
  });

  it('a last layer narrower than the classes is refused naming the layer, its out and the class count', async () => {
    const file = specFile('narrow.json', { name: 'n', input: [1, 28, 28], layers: [{ type: 'flatten' }, { type: 'linear', out: 32 }, { type: 'relu' }, { type: 'linear', out: 5 }] });
    expectRefused(await runCli(['train', ...QUICK, '--model', file]), "layer 3 (linear) 'out' is 5", '10 classes');
  });

  it("an unknown key (PyTorch's out_channels) is named, with the layer and the allowed keys", async () => {
    const file = specFile('torchy.json', { name: 't', input: [1, 28, 28], layers: [{ type: 'conv2d', out_channels: 8, kernel: 3 }, { type: 'flatten' }, { type: 'linear' }] });
    expectRefused(await runCli(['train', ...QUICK, '--model', file]), "unknown key 'out_channels'", 'layer 0 (conv2d)', /allowed keys: type, out, kernel/);
  });
});

describe('batch size and ports', () => {
  it('--batch-size larger than the training split names both numbers', async () => {
    expectRefused(await runCli(['train', '--max-steps', '1', '--train-samples', '100', '--batch-size', '128']), '--batch-size 128', 'training split of 100 samples');
    expectRefused(await runCli(['train', '--max-steps', '1', '--train-samples', '200', '--val-fraction', '0.5', '--batch-size', '128']), '--batch-size 128', '100 samples', '--val-fraction 0.5');
  });

  it('the coordinator refuses it too', async () => {
    expectRefused(await runCli(['coordinator', '--token', 'secret', '--port', '0', '--no-metrics', '--train-samples', '100', '--batch-size', '128']), '--batch-size 128', '100 samples');
  });

  it('--port 70000 is refused by the flag parser', async () => {
    expectRefused(await runCli(['coordinator', '--token', 'secret', '--port', '70000']), '--port', "'70000'", '65535');
    expectRefused(await runCli(['worker', '--connect', 'ws://127.0.0.1:1', '--token', 'secret', '--metrics-port', '65536']), '--metrics-port', "'65536'");
  });

  it('a port in use names --port and the port', async () => {
    const server: Server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as { port: number };
      const args = COORDINATOR.map((a, i) => (COORDINATOR[i - 1] === '--port' ? String(port) : a));
      expectRefused(await runCli(args), `--port ${port}`, 'already in use');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('meshgrad --version', () => {
  it("prints the package's version", async () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    const { code, stdout } = await runCli(['--version']);
    expect(code).toBe(0);
    expect(stdout.trim()).toBe(version);
  });
});
