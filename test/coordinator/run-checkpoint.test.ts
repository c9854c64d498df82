// Resuming with another model spec names the first difference, not both specs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { firstJsonDifference, loadRunCheckpoint, saveRunCheckpoint, type RunCursor } from '../../coordinator/run-checkpoint.js';
import { PRESETS } from '../../shared/nn/presets.js';
import { buildModel, type ModelSpec } from '../../shared/nn/spec.js';
import { createOptimizer } from '../../shared/optim/factory.js';
import { paramSlots } from '../../shared/train/params.js';
import { Rng } from '../../shared/util/random.js';

describe('firstJsonDifference', () => {
  it('is null for the same JSON', () => {
    expect(firstJsonDifference(PRESETS.mlp, JSON.parse(JSON.stringify(PRESETS.mlp)))).toBeNull();
    expect(firstJsonDifference({ a: 1, b: undefined }, { a: 1 })).toBeNull();
  });

  it('names the first differing path with both values', () => {
    const wider = { ...PRESETS.mlp, layers: PRESETS.mlp.layers.map((l, i) => (i === 3 ? { type: 'linear', out: 256 } : l)) };
    expect(firstJsonDifference(wider, PRESETS.mlp)).toBe('layers[3].out: 256 vs 128');
    expect(firstJsonDifference({ name: 'a' }, { name: 'b' })).toBe('name: "a" vs "b"');
    expect(firstJsonDifference({ d: { lr: 0.001 } }, { d: {} })).toBe('d.lr: 0.001 vs (absent)');
    expect(firstJsonDifference({ d: {} }, { d: { lr: 0.001 } })).toBe('d.lr: (absent) vs 0.001');
    expect(firstJsonDifference({ layers: [1, 2] }, { layers: [1, 2, 3] })).toBe('layers: 2 vs 3 entries');
    expect(firstJsonDifference([1], { a: 1 })).toBe('(the whole value): [1] vs {"a":1}');
  });

  it('cuts long values short', () => {
    const d = firstJsonDifference({ x: 'a'.repeat(500) }, { x: 1 })!;
    expect(d.length).toBeLessThan(120);
    expect(d).toMatch(/^x: "a+\.\.\. vs 1$/);
  });
});

let dir = '';
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = '';
});

describe('loadRunCheckpoint with another model spec', () => {
  it('refuses in one short line naming the difference', async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgrad-run-ckpt-'));
    const spec: ModelSpec = PRESETS.mlp!;
    const { model } = buildModel(spec, new Rng(1));
    const optimizer = createOptimizer('adam', paramSlots(model), { lr: 1e-3 });
    const cursor: RunCursor = { epoch: 0, batch: 1, step: 1, version: 1, samples: 128, epochLossSum: 0, epochCorrect: 0, epochSeen: 0 };
    const identity = { model: spec, dataset: 'fashion-mnist', seed: 1, batchSize: 128, optimizer: 'adam', trainSamples: null };
    await saveRunCheckpoint(dir, model, optimizer, cursor, { runId: 'r1', ...identity });
    const other = { ...spec, layers: spec.layers.map((l, i) => (i === 1 ? { type: 'linear', out: 512 } : l)) } as ModelSpec;
    const err = await loadRunCheckpoint(dir, model, optimizer, { ...identity, model: other }).then(() => null, (e: Error) => e);
    expect(err?.message).toMatch(/different model spec: layers\[1\]\.out: 256 vs 512 \(checkpoint vs this run\)$/);
    expect(err!.message.split('\n')).toHaveLength(1);
    expect(err!.message.length).toBeLessThan(200);
    // The same spec resumes.
    const resumed = await loadRunCheckpoint(dir, model, optimizer, identity);
    expect(resumed.runId).toBe('r1');
  });
});
