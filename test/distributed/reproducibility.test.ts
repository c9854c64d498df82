// Which runs reproduce which, bit for bit (docs/training.md, "Reproducibility"): the same
// `local --balance even` run twice saves the same tensor bytes, and so do `train` and
// `local --workers 1`. Real CLI processes, real worker processes.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'meshgrad-repro-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const DROPOUT_SPEC = fileURLToPath(new URL('../../docs/models/mlp-regularized.json', import.meta.url));

interface SavedTensor {
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly bytes: Buffer;
}

/** The tensors of a safetensors file as raw bytes, by name (the metadata, which names the run, left out). */
function savedTensors(file: string): Map<string, SavedTensor> {
  const buf = readFileSync(file);
  const headerLength = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const data = buf.subarray(8 + headerLength);
  const out = new Map<string, SavedTensor>();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    out.set(name, { dtype: t.dtype, shape: t.shape, bytes: data.subarray(t.data_offsets[0], t.data_offsets[1]) });
  }
  return out;
}

/** Names of the tensors whose bytes differ (or that only one file has). */
function differing(a: Map<string, SavedTensor>, b: Map<string, SavedTensor>): string[] {
  const names = new Set([...a.keys(), ...b.keys()]);
  return [...names].filter((n) => {
    const x = a.get(n);
    const y = b.get(n);
    return !x || !y || x.dtype !== y.dtype || x.shape.join() !== y.shape.join() || !x.bytes.equals(y.bytes);
  });
}

async function run(args: readonly string[], file: string): Promise<Map<string, SavedTensor>> {
  const path = join(dir, file);
  const result = await runCli([...args, '--save', path], { timeoutMs: 240_000 });
  if (result.code !== 0) throw new Error(`meshgrad ${args.join(' ')} failed (${result.code}):\n${result.stderr}\n${result.stdout}`);
  return savedTensors(path);
}

describe('bit-for-bit reproducibility', () => {
  it('local --workers 2 --balance even, run twice with the same seed, saves identical tensors', { timeout: 480_000 }, async () => {
    const args = ['local', '--workers', '2', '--balance', 'even', '--seed', '5', '--max-steps', '12', '--batch-size', '101'];
    const first = await run(args, 'even-a.safetensors');
    const second = await run(args, 'even-b.safetensors');
    expect(first.size).toBeGreaterThan(0);
    expect(differing(first, second)).toEqual([]);
    // It trained: twelve steps end elsewhere than one.
    const init = await run(['train', '--seed', '5', '--max-steps', '1', '--batch-size', '101'], 'init.safetensors');
    expect(differing(first, init).length).toBe(first.size);
  });

  it('with dropout (each shard draws its masks from the seed, the step and its first sample) and three workers, too', { timeout: 480_000 }, async () => {
    const args = ['local', '--workers', '3', '--balance', 'even', '--model', DROPOUT_SPEC, '--seed', '2', '--max-steps', '8', '--batch-size', '100'];
    const first = await run(args, 'dropout-a.safetensors');
    const second = await run(args, 'dropout-b.safetensors');
    expect(differing(first, second)).toEqual([]);
  });

  it('train and local --workers 1 save identical tensors (one worker computes the whole batch)', { timeout: 480_000 }, async () => {
    const common = ['--seed', '4', '--max-steps', '12', '--batch-size', '96'];
    const single = await run(['train', ...common], 'train.safetensors');
    const one = await run(['local', '--workers', '1', ...common], 'local1.safetensors');
    expect(differing(single, one)).toEqual([]);
  });
});
