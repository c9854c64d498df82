// Whole runs of `meshgrad train` are bit-identical with --threads 1 and --threads 2 (the docs'
// promise): every preset family — mlp, cnn, char-gru, gpt-tiny — trains a few steps each way and
// the saved parameters and buffers are compared bit for bit. A pool thread that runs a slice late
// or twice (the bug in shared/backend/wasm/thread.ts's header) changes bits here.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../../shared/checkpoint/index.js';
import { runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'meshgrad-threads-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function trainAndSave(model: string, dataset: string, steps: number, threads: number): Promise<string> {
  const file = join(dir, `${model}-${threads}.safetensors`);
  const args = ['train', '--model', model, '--dataset', dataset, '--max-steps', String(steps), '--test-samples', '64', '--seed', '3', '--threads', String(threads), '--save', file];
  const { code, stderr } = await runCli(args, { timeoutMs: 240_000 });
  if (code !== 0) throw new Error(`meshgrad ${args.join(' ')} exited ${code}:\n${stderr}`);
  return file;
}

const runs: Array<[string, string, number]> = [
  ['mlp', 'fashion-mnist', 6],
  ['cnn', 'fashion-mnist', 3],
  ['char-gru', 'moby-dick', 3],
  ['gpt-tiny', 'moby-dick', 3],
];

describe('train gives the same bits with one thread and with two', () => {
  it.each(runs)('%s on %s, %i steps', { timeout: 300_000 }, async (model, dataset, steps) => {
    const [one, two] = await Promise.all([trainAndSave(model, dataset, steps, 1), trainAndSave(model, dataset, steps, 2)]);
    const a = await loadCheckpoint(one);
    const b = await loadCheckpoint(two);
    expect([...b.params.keys()]).toEqual([...a.params.keys()]);
    for (const [name, p] of a.params) {
      const q = b.params.get(name)!;
      const bitsA = new Uint32Array(p.value.buffer, p.value.byteOffset, p.value.length);
      const bitsB = new Uint32Array(q.value.buffer, q.value.byteOffset, q.value.length);
      const at = bitsA.findIndex((x, i) => x !== bitsB[i]);
      if (at >= 0) expect.fail(`${model}: ${name}[${at}] is ${p.value[at]} with 1 thread, ${q.value[at]} with 2`);
    }
  });
});
