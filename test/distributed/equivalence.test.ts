// Distributed equivalence: N workers on shards of each global batch train the same parameters as
// one process on the whole batch (no dropout), through the real CLI and real worker processes.
//
// The model is the mlp preset with tanh instead of ReLU. Sharding changes only the order of the
// floating-point sums, so the runs differ by rounding (~1e-7 per step); a smooth network keeps that
// difference at rounding size over 50 steps. With ReLU it can grow without any bug: measured with
// the mlp preset, batch 96, seed 3, a 3e-7 difference after 6 Adam steps moved a pre-activation
// across ReLU's kink at step 7, which changed the first layers' gradients by 1% and the parameters
// after 50 steps by 2.4% — any change of summation order (a new matrix kernel, other shard sizes)
// can do that. The ReLU preset itself is checked over one step, where no kink can be crossed twice.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../../shared/checkpoint/index.js';
import { runCli } from '../helpers/cli.js';
import { relativeDifference } from '../helpers/cluster.js';

const dir = mkdtempSync(join(tmpdir(), 'meshgrad-equiv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The mlp preset (784-256-128-10, Adam 1e-3) with tanh activations. */
const tanhMlp = join(dir, 'tanh-mlp.json');
writeFileSync(
  tanhMlp,
  JSON.stringify({
    name: 'tanh-mlp',
    input: [1, 28, 28],
    layers: [{ type: 'flatten' }, { type: 'linear', out: 256 }, { type: 'tanh' }, { type: 'linear', out: 128 }, { type: 'tanh' }, { type: 'linear', out: 10 }],
    defaults: { optimizer: 'adam', lr: 1e-3 },
  }),
);

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
    const single = await run(['train', '--model', tanhMlp, '--batch-size', '96'], 'train.safetensors');
    const three = await run(['local', '--model', tanhMlp, '--workers', '3', '--batch-size', '96', '--balance', 'throughput'], 'local3.safetensors');
    expect(relativeDifference(three, single)).toBeLessThan(1e-5);
    // And they did train: the parameters moved away from the (shared) initialisation.
    const init = await run(['train', '--model', tanhMlp, '--batch-size', '96', '--max-steps', '1'], 'init.safetensors');
    expect(relativeDifference(init, single)).toBeGreaterThan(1e-3);
  });
  it('the ReLU mlp preset: one step of train and local --workers 3 agree within 1e-5', async () => {
    const single = await run(['train', '--batch-size', '96', '--max-steps', '1'], 'relu-train.safetensors');
    const three = await run(['local', '--workers', '3', '--batch-size', '96', '--balance', 'throughput', '--max-steps', '1'], 'relu-local3.safetensors');
    expect(relativeDifference(three, single)).toBeLessThan(1e-5);
  });
  it('--workers 1 and --workers 2 agree with a global batch that does not divide evenly', async () => {
    const one = await run(['local', '--model', tanhMlp, '--workers', '1', '--batch-size', '101'], 'local1.safetensors');
    const two = await run(['local', '--model', tanhMlp, '--workers', '2', '--batch-size', '101'], 'local2.safetensors');
    expect(relativeDifference(two, one)).toBeLessThan(1e-5);
  });
});
