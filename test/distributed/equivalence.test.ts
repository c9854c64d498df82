// Distributed equivalence: N workers on shards of each global batch train the same parameters as
// one process on the whole batch (no dropout), through the real CLI and real worker processes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../../shared/checkpoint/index.js';
import { runCli } from '../helpers/cli.js';
import { relativeDifference } from '../helpers/cluster.js';

const dir = mkdtempSync(join(tmpdir(), 'meshgrad-equiv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function params(file: string): Promise<Map<string, Float32Array>> {
  const ckpt = await loadCheckpoint(file);
  return new Map([...ckpt.params].map(([k, v]) => [k, v.value]));
}

async function run(args: string[], file: string): Promise<Map<string, Float32Array>> {
  const [command, ...rest] = args;
  const result = await runCli([command, '--seed', '3', '--max-steps', '50', '--save', join(dir, file), ...rest], { timeoutMs: 120_000 });
  if (result.code !== 0) throw new Error(`meshgrad ${args.join(' ')} failed (${result.code}):\n${result.stderr}\n${result.stdout}`);
  return params(join(dir, file));
}

describe('distributed equivalence', () => {
  it('train and local --workers 3 save parameters that agree within 1e-5 (relative)', async () => {
    const single = await run(['train', '--batch-size', '96'], 'train.safetensors');
    const three = await run(['local', '--workers', '3', '--batch-size', '96', '--balance', 'throughput'], 'local3.safetensors');
    expect(relativeDifference(three, single)).toBeLessThan(1e-5);
    // And they did train: the parameters moved away from the (shared) initialisation.
    const init = await run(['train', '--batch-size', '96', '--max-steps', '1'], 'init.safetensors');
    expect(relativeDifference(init, single)).toBeGreaterThan(1e-3);
  });
  it('--workers 1 and --workers 2 agree with a global batch that does not divide evenly', async () => {
    const one = await run(['local', '--workers', '1', '--batch-size', '101'], 'local1.safetensors');
    const two = await run(['local', '--workers', '2', '--batch-size', '101'], 'local2.safetensors');
    expect(relativeDifference(two, one)).toBeLessThan(1e-5);
  });
});
