/** saveCheckpoint / loadCheckpoint: round trips, the PyTorch-readable layout, resumption, and errors. */

import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CheckpointFormatError, decodeSafetensors, encodeSafetensors, loadCheckpoint, saveCheckpoint } from '../../shared/checkpoint/index.js';
import { Adam, SGD, type ParamSlot } from '../../shared/optim/index.js';

let dir = '';

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshgrad-ckpt-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const SHAPES: Record<string, number[]> = { '0.weight': [3, 2], '0.bias': [3], '2.weight': [1, 3] };

function makeParams(): (ParamSlot & { shape: number[] })[] {
  return Object.entries(SHAPES).map(([name, shape], k) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const value = Float32Array.from({ length: n }, (_, i) => Math.sin(k * 10 + i) * 0.5);
    return { name, shape, value, grad: new Float32Array(n) };
  });
}

function feed(params: ParamSlot[], s: number): void {
  params.forEach((p, k) => p.grad?.forEach((_, i, g) => (g[i] = Math.cos(s * 1.1 + k * 2.3 + i * 0.7))));
}

describe('saveCheckpoint / loadCheckpoint', () => {
  it('round-trips parameters, optimizer state and meta', async () => {
    const params = makeParams();
    const opt = new SGD(params, { lr: 0.1, momentum: 0.9, weightDecay: 1e-4 });
    feed(params, 0);
    opt.step();
    const path = join(dir, 'ckpt.safetensors');
    const meta = { epoch: 3, rng: { s: [1, 2, 3, 4], spareNormal: null }, model: 'mlp' };
    await saveCheckpoint(path, { params, optimizer: opt.stateDict(), meta });

    const loaded = await loadCheckpoint(path);
    expect([...loaded.params.keys()].sort()).toEqual(Object.keys(SHAPES).sort());
    for (const p of params) {
      expect(loaded.params.get(p.name)?.shape).toEqual(p.shape);
      expect(loaded.params.get(p.name)?.value).toEqual(p.value);
    }
    expect(loaded.optimizer).toEqual(opt.stateDict());
    expect(loaded.meta).toEqual(meta);
  });

  it('lays the file out for safetensors.torch.load_file: own names, optimizer.* buffers, JSON metadata', async () => {
    const params = makeParams();
    const opt = new Adam(params, { lr: 1e-3 });
    feed(params, 0);
    opt.step();
    const path = join(dir, 'ckpt.safetensors');
    await saveCheckpoint(path, { params, optimizer: opt.stateDict(), meta: { epoch: 1 } });
    const { tensors, metadata } = decodeSafetensors(await readFile(path));
    expect(tensors.get('0.weight')).toMatchObject({ dtype: 'F32', shape: [3, 2] });
    expect(tensors.get('optimizer.0.exp_avg')).toMatchObject({ dtype: 'F32', shape: [6] });
    expect(tensors.get('optimizer.2.step')).toMatchObject({ dtype: 'F32', shape: [1] });
    expect(metadata.format).toBe('pt');
    expect(JSON.parse(metadata['meshgrad.optimizer'])).toEqual({ kind: 'adam', step: 1, hyper: { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 } });
    expect(JSON.parse(metadata['meshgrad.meta'])).toEqual({ epoch: 1 });
  });

  it('resumes Adam bit-identically through a checkpoint file', async () => {
    const straight = makeParams();
    const a = new Adam(straight, { lr: 0.01, weightDecay: 0.01 });
    for (let s = 0; s < 6; s++) {
      feed(straight, s);
      a.step();
    }

    const first = makeParams();
    const b = new Adam(first, { lr: 0.01, weightDecay: 0.01 });
    for (let s = 0; s < 2; s++) {
      feed(first, s);
      b.step();
    }
    const path = join(dir, 'resume.safetensors');
    await saveCheckpoint(path, { params: first, optimizer: b.stateDict() });

    const loaded = await loadCheckpoint(path);
    const resumed = makeParams().map((p) => ({ ...p, value: loaded.params.get(p.name)?.value ?? new Float32Array(0) }));
    const c = new Adam(resumed, { lr: 0.5 });
    if (loaded.optimizer === null) throw new Error('optimizer state missing');
    c.loadStateDict(loaded.optimizer);
    for (let s = 2; s < 6; s++) {
      feed(resumed, s);
      c.step();
    }
    resumed.forEach((p, k) => expect(Buffer.from(p.value.buffer).equals(Buffer.from(straight[k].value.buffer)), p.name).toBe(true));
  });

  it('without optimizer or meta loads null and {}', async () => {
    const path = join(dir, 'bare.safetensors');
    await saveCheckpoint(path, { params: makeParams() });
    const loaded = await loadCheckpoint(path);
    expect(loaded.optimizer).toBeNull();
    expect(loaded.meta).toEqual({});
  });

  it('replaces an existing checkpoint and leaves no temp files', async () => {
    const path = join(dir, 'ckpt.safetensors');
    const params = makeParams();
    await saveCheckpoint(path, { params, meta: { n: 1 } });
    await saveCheckpoint(path, { params, meta: { n: 2 } });
    expect((await loadCheckpoint(path)).meta).toEqual({ n: 2 });
    expect(await readdir(dir)).toEqual(['ckpt.safetensors']);
  });

  it('rejects bad parameters when saving, naming them', async () => {
    const path = join(dir, 'bad.safetensors');
    const p = { name: 'optimizer.x', shape: [1], value: Float32Array.of(1) };
    await expect(saveCheckpoint(path, { params: [p] })).rejects.toThrow(/'optimizer.x' clashes with the 'optimizer.' prefix/);
    const q = { name: 'w', shape: [1], value: Float32Array.of(1) };
    await expect(saveCheckpoint(path, { params: [q, q] })).rejects.toThrow(/'w' appears twice/);
    await expect(saveCheckpoint(path, { params: [{ ...q, shape: [2] }] })).rejects.toThrow(/tensor 'w' has shape \[2\]/);
    await expect(saveCheckpoint(path, { params: [q], meta: [] as unknown as Record<string, unknown> })).rejects.toThrow(/meta must be a JSON object/);
    expect(await readdir(dir)).toEqual([]);
  });

  describe('load errors name the file', () => {
    async function write(name: string, bytes: Uint8Array): Promise<string> {
      const path = join(dir, name);
      await writeFile(path, bytes);
      return path;
    }

    async function expectFormatError(path: string, message: RegExp): Promise<void> {
      const error: unknown = await loadCheckpoint(path).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CheckpointFormatError);
      expect((error as Error).message.startsWith(`${path}: `)).toBe(true);
      expect((error as Error).message).toMatch(message);
    }

    it('truncated file', async () => {
      const good = encodeSafetensors({ w: { dtype: 'F32', shape: [4], data: new Float32Array(4) } });
      await expectFormatError(await write('cut.safetensors', good.subarray(0, good.length - 3)), /data section has 13 bytes but the tensors cover only 16|run past the data section/);
    });

    it('a tensor that is not F32', async () => {
      await expectFormatError(await write('f64.safetensors', encodeSafetensors({ w: { dtype: 'F64', shape: [1], data: Float64Array.of(1) } })), /tensor 'w' has dtype F64, expected F32/);
    });

    it('optimizer buffers without optimizer metadata', async () => {
      const bytes = encodeSafetensors({ 'optimizer.0.exp_avg': { dtype: 'F32', shape: [1], data: Float32Array.of(1) } });
      await expectFormatError(await write('orphan.safetensors', bytes), /optimizer\.\*' tensors but no 'meshgrad.optimizer' metadata/);
    });

    it('corrupt optimizer or meta metadata', async () => {
      const w = { w: { dtype: 'F32', shape: [1], data: Float32Array.of(1) } } as const;
      await expectFormatError(await write('a.safetensors', encodeSafetensors(w, { 'meshgrad.optimizer': '{oops' })), /'meshgrad.optimizer' is not valid JSON/);
      await expectFormatError(await write('b.safetensors', encodeSafetensors(w, { 'meshgrad.optimizer': '{"kind":"lbfgs","step":0,"hyper":{}}' })), /optimizer kind "lbfgs" is not one of sgd, adam, adamw/);
      await expectFormatError(await write('c.safetensors', encodeSafetensors(w, { 'meshgrad.optimizer': '{"kind":"sgd","step":-2,"hyper":{}}' })), /optimizer step -2/);
      await expectFormatError(await write('d.safetensors', encodeSafetensors(w, { 'meshgrad.optimizer': '{"kind":"sgd","step":0,"hyper":{"lr":"x"}}' })), /optimizer hyper 'lr' is "x"/);
      await expectFormatError(await write('e.safetensors', encodeSafetensors(w, { 'meshgrad.meta': '[1]' })), /'meshgrad.meta' is not a JSON object/);
    });

    it('a missing file rejects with an error naming the path', async () => {
      const path = join(dir, 'nope.safetensors');
      await expect(loadCheckpoint(path)).rejects.toThrow(path);
    });
  });
});
