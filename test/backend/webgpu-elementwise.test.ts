// WebGPU elementwise kernels against the CPU reference kernels: every unary and binary op over
// broadcasting patterns (same shape, scalar, rows, columns, odd sizes), where, fill, the fused
// activations and their backward rules; plus the backend's memory contract (scopes, reuse, use
// after a scope, float32 only). Skipped, with the reason printed, where no WebGPU adapter exists.
import { describe, expect, it } from 'vitest';
import { cpu } from '../../shared/backend/cpu/cpu-backend.js';
import type { BinaryOp, UnaryOp } from '../../shared/backend/backend.js';
import { gpuSkipReason, maxRelError, randomTensor, webgpu } from './webgpu-helpers.js';

const suite = gpuSkipReason === null ? describe : describe.skip;

async function read(b: ReturnType<typeof webgpu>, buf: Parameters<ReturnType<typeof webgpu>['read']>[0]): Promise<Float32Array> {
  return (await b.read(buf)) as Float32Array;
}

suite('webgpu elementwise kernels match the reference', () => {
  const shapes: Array<[number[], number[], number[]]> = [
    [[7, 13], [7, 13], [7, 13]],
    [[7, 13], [1], [7, 13]],
    [[1], [5, 3], [5, 3]],
    [[7, 13], [13], [7, 13]],
    [[7, 1], [1, 13], [7, 13]],
    [[2, 3, 5, 7], [3, 1, 7], [2, 3, 5, 7]],
    [[1000003], [1000003], [1000003]],
  ];
  const binary: BinaryOp[] = ['add', 'sub', 'mul', 'div', 'pow', 'gt', 'ge', 'eq'];
  it('binary ops over every broadcasting pattern', async () => {
    const g = webgpu();
    for (const [i, [as, bs, os]] of shapes.entries()) {
      const a = randomTensor(as, 11 + i, 3);
      const b = randomTensor(bs, 101 + i, 3);
      for (const op of binary) {
        // pow: positive bases with any exponent, and negative bases with integral exponents.
        const aData = op === 'pow' ? (a.dataSync() as Float32Array).map((v, j) => (j % 2 ? Math.abs(v) + 0.1 : -Math.abs(v))) : (a.dataSync() as Float32Array);
        const bData = op === 'pow' ? (b.dataSync() as Float32Array).map((v, j) => (j % 3 ? Math.round(v) : v)) : op === 'eq' ? (a.dataSync() as Float32Array).slice(0, b.size).map((v, j) => (j % 2 ? v : v + 1)) : (b.dataSync() as Float32Array);
        const bShape = op === 'eq' && b.size > a.size ? as : bs;
        const bUse = op === 'eq' && b.size > a.size ? (a.dataSync() as Float32Array) : bData;
        const expected = cpu.readSync(cpu.binary(op, cpu.upload(Float32Array.from(aData)), as, cpu.upload(Float32Array.from(bUse)), bShape, os))!;
        const got = await read(g, g.binary(op, g.upload(Float32Array.from(aData)), as, g.upload(Float32Array.from(bUse)), bShape, os));
        const err = maxRelError(got, expected);
        expect(err, `${op} ${JSON.stringify([as, bShape, os])}`).toBeLessThan(op === 'pow' ? 1e-5 : 1e-6);
      }
    }
  });

  it('unary ops, with large, tiny and special values', async () => {
    const g = webgpu();
    const ops: UnaryOp[] = ['neg', 'exp', 'log', 'sqrt', 'tanh', 'sigmoid', 'erf', 'abs', 'sign'];
    const x = randomTensor([4099], 5, 8).dataSync() as Float32Array;
    x.set([0, -0, 1e-30, 50, -50, 100, -100, 88, -88]);
    for (const op of ops) {
      const input = op === 'log' || op === 'sqrt' ? x.map((v) => Math.abs(v) + 1e-3) : x;
      const expected = cpu.readSync(cpu.unary(op, cpu.upload(Float32Array.from(input))))!;
      const got = await read(g, g.unary(op, g.upload(Float32Array.from(input))));
      let err = 0;
      for (let i = 0; i < got.length; i++) {
        const e = expected[i];
        if (Object.is(got[i], e)) continue;
        // Absolute for log (WGSL's is accurate to 2^-21 absolute near 1, where the result is near 0)
        // and erf (the A&S formula is 1.5e-7 absolute: near 0 it is 1 − (≈1), which cancels).
        const d = Math.abs(got[i] - e) / Math.max(Math.abs(e), op === 'log' || op === 'erf' ? 1 : 1e-6);
        err = Math.max(err, Number.isNaN(d) ? Infinity : d);
      }
      expect(err, op).toBeLessThan(op === 'exp' || op === 'erf' ? 2e-6 : 1e-6);
    }
  });

  it('where, fill, cast, and the fused activations forward and backward', async () => {
    const g = webgpu();
    const cond = randomTensor([6, 1, 5], 1).dataSync().map((v) => (v > 0 ? 1 : 0)) as Float32Array;
    const a = randomTensor([6, 4, 5], 2).dataSync() as Float32Array;
    const b = randomTensor([4, 1], 3).dataSync() as Float32Array;
    const w = await read(g, g.where(g.upload(cond), [6, 1, 5], g.upload(a), [6, 4, 5], g.upload(b), [4, 1], [6, 4, 5]));
    expect(Array.from(w)).toEqual(Array.from(cpu.readSync(cpu.where(cpu.upload(cond), [6, 1, 5], cpu.upload(a), [6, 4, 5], cpu.upload(b), [4, 1], [6, 4, 5]))!));
    expect(Array.from(await read(g, g.fill('float32', 5, 2.5)))).toEqual([2.5, 2.5, 2.5, 2.5, 2.5]);
    expect(Array.from(await read(g, g.cast(g.upload(b), 'float32')))).toEqual(Array.from(b));

    const x = randomTensor([3001], 9, 6).dataSync() as Float32Array;
    x.set([0, -0, 30, -30, NaN]);
    const gy = randomTensor([3001], 10).dataSync() as Float32Array;
    const pairs: Array<[string, Float32Array, Float32Array]> = [
      ['relu', await read(g, g.relu(g.upload(x))), cpu.readSync(cpu.relu(cpu.upload(x)))! as Float32Array],
      ['reluBackward', await read(g, g.reluBackward(g.upload(x), g.upload(gy))), cpu.readSync(cpu.reluBackward(cpu.upload(x), cpu.upload(gy)))! as Float32Array],
    ];
    for (const approx of ['none', 'tanh'] as const) {
      pairs.push([`gelu ${approx}`, await read(g, g.gelu(g.upload(x), approx)), cpu.readSync(cpu.gelu(cpu.upload(x), approx))! as Float32Array]);
      pairs.push([`geluBackward ${approx}`, await read(g, g.geluBackward(g.upload(x), g.upload(gy), approx)), cpu.readSync(cpu.geluBackward(cpu.upload(x), cpu.upload(gy), approx))! as Float32Array]);
    }
    for (const [name, got, expected] of pairs) {
      expect(Number.isNaN(got[4]), `${name} keeps NaN`).toBe(Number.isNaN(expected[4]));
      expect(maxRelError(got.subarray(0, 4), expected.subarray(0, 4)), name).toBeLessThan(1e-6);
      expect(maxRelError(got.subarray(5), expected.subarray(5)), name).toBeLessThan(1e-5);
    }
  });
});

suite('webgpu memory', () => {
  it('a scope returns its buffers to the pool and the next scope reuses them', async () => {
    const g = webgpu();
    const step = () => g.scope(() => g.binary('add', g.fill('float32', 1000, 1), [1000], g.fill('float32', 1000, 2), [1000], [1000]));
    step();
    const created = g.ctx.stats.buffersCreated;
    for (let i = 0; i < 5; i++) step();
    expect(g.ctx.stats.buffersCreated).toBe(created);
    await g.idle();
  });

  it('a buffer used after its scope ended is an error; float64 is refused', () => {
    const g = webgpu();
    const escaped = g.scope(() => g.fill('float32', 4, 1));
    expect(() => g.unary('neg', escaped)).toThrow(/after the scope/);
    expect(() => g.upload(new Float64Array(2))).toThrow(/float32 only/);
    expect(g.readSync()).toBeNull();
  });

  it('reads see exactly the kernels recorded before them', async () => {
    const g = webgpu();
    const p = g.upload(Float32Array.of(1, 2, 3));
    const before = g.read(p);
    g.write(p, Float32Array.of(7, 8, 9));
    expect(Array.from((await before) as Float32Array)).toEqual([1, 2, 3]);
    expect(Array.from((await g.read(p)) as Float32Array)).toEqual([7, 8, 9]);
  });
});
