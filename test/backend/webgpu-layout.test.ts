// WebGPU reductions, layout and window kernels against the CPU reference kernels: sum and max over
// every subset of axes of random shapes (odd sizes, size-1 and size-0 dimensions, NaN and signed
// zeros), long rows and columns; permute, slice, pad, concat (many inputs, empty ones), gather and
// scatterAdd (repeated indices) along every axis; im2col, col2im and max pooling forward and
// backward over strides, padding and dilation, with ties and NaN. Everything but sums must be
// bit-identical to the reference; sums agree within 1e-5 of the sum of |x| per output.
// Skipped, with the reason printed, where no WebGPU adapter exists.
import { describe, expect, it } from 'vitest';
import type { DeviceBuffer, ReduceOp } from '../../shared/backend/backend.js';
import { cpu } from '../../shared/backend/cpu/cpu-backend.js';
import { windowSpec, type WindowSpec } from '../../shared/backend/conv-spec.js';
import { gpuSkipReason, webgpu } from './webgpu-helpers.js';

const suite = gpuSkipReason === null ? describe : describe.skip;

/** A seeded generator: ints in [0, n) and floats in [-1, 1). */
function rng(seed: number): { int: (n: number) => number; float: () => number } {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
  return { int: (n) => Math.floor(next() * n), float: () => next() * 2 - 1 };
}

function data(n: number, seed: number, specials = false): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = r.float();
  if (specials) {
    // Ties (a coarse grid), signed zeros and a few NaN.
    for (let i = 0; i < n; i++) {
      const k = r.int(10);
      if (k < 4) out[i] = Math.round(out[i] * 2) / 2;
      else if (k === 4) out[i] = r.int(2) ? 0 : -0;
    }
    if (n > 5) out[r.int(n)] = NaN;
  }
  return out;
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const host = (b: DeviceBuffer) => cpu.readSync(b)! as Float32Array;

interface Check {
  readonly label: string;
  readonly gpu: DeviceBuffer;
  readonly expected: Float32Array;
  /** Per-element absolute tolerance; exact (Object.is) when absent. */
  readonly tol?: Float64Array;
}

/** Reads every GPU result with one submit and compares each with its reference. */
async function verify(checks: readonly Check[]): Promise<void> {
  const got = await webgpu().readMany(checks.map((c) => c.gpu));
  checks.forEach((c, k) => {
    const g = got[k];
    expect(g.length, `${c.label}: length`).toBe(c.expected.length);
    for (let i = 0; i < g.length; i++) {
      const e = c.expected[i];
      const ok = c.tol === undefined ? Object.is(g[i], e) : Object.is(g[i], e) || Math.abs(g[i] - e) <= c.tol[i];
      if (!ok) expect.fail(`${c.label}: element ${i} is ${g[i]}, expected ${e}${c.tol ? ` ± ${c.tol[i]}` : ''}`);
    }
  });
}

function randomShape(r: ReturnType<typeof rng>, rank: number, maxDim: number, zeros = true): number[] {
  return Array.from({ length: rank }, () => {
    const k = r.int(8);
    if (k === 0) return 1;
    if (k === 1 && zeros) return 0;
    return 2 + r.int(maxDim - 1);
  });
}

suite('webgpu reductions match the reference', () => {
  /** The reference result, with −∞ for a max over an empty axis (the reference throws there). */
  function expectedReduce(op: ReduceOp, x: Float32Array, shape: number[], axes: number[]): Float32Array {
    if (op === 'max' && axes.some((a) => shape[a] === 0)) return new Float32Array(size(shape.filter((_, d) => !axes.includes(d)))).fill(-Infinity);
    return host(cpu.reduce(op, cpu.upload(x), shape, axes));
  }

  function reduceCheck(op: ReduceOp, x: Float32Array, shape: number[], axes: number[], rel = 1e-5): Check {
    const g = webgpu();
    const expected = expectedReduce(op, x, shape, axes);
    const label = `${op} of [${shape.join(', ')}] over [${axes.join(', ')}]`;
    const gpu = g.reduce(op, g.upload(x), shape, axes);
    if (op === 'max') return { label, gpu, expected };
    const absSum = host(cpu.reduce('sum', cpu.unary('abs', cpu.upload(x)), shape, axes));
    return { label, gpu, expected, tol: Float64Array.from(absSum, (s) => rel * s + 1e-30) };
  }

  it('sum and max over every subset of axes of random shapes', async () => {
    const r = rng(7);
    const checks: Check[] = [];
    const shapes: number[][] = [[], [1], [0], [5], [3, 0, 2], [1, 1, 1], [2, 1, 3, 1]];
    for (let t = 0; t < 14; t++) shapes.push(randomShape(r, 1 + r.int(4), 9));
    shapes.forEach((shape, t) => {
      const rank = shape.length;
      const sumX = data(size(shape), 100 + t);
      const maxX = data(size(shape), 200 + t, true);
      for (let mask = 0; mask < 1 << rank; mask++) {
        const axes = Array.from({ length: rank }, (_, d) => d).filter((d) => mask & (1 << d));
        checks.push(reduceCheck('sum', sumX, shape, axes), reduceCheck('max', maxX, shape, axes));
      }
    });
    await verify(checks);
  });

  it('long rows, long columns and many short rows (every reduction plan, several passes)', async () => {
    const cases: Array<[number[], number[]]> = [
      [[3, 70001], [1]], // rows: two passes of 1024-value chunks
      [[70001, 3], [0]], // columns over a narrow inner dimension
      [[2, 20003, 67], [1]], // columns with a wide inner dimension: several passes
      [[5, 33, 130], [1]], // just past the plain loop
      [[4000, 40], [1]], // short rows: several rows per workgroup
      [[257, 3, 129], [0, 2]], // two runs
      [[9, 1, 11, 1, 5], [0, 2]], // runs joined across a size-1 axis
    ];
    const checks: Check[] = [];
    cases.forEach(([shape, axes], t) => {
      checks.push(reduceCheck('sum', data(size(shape), 300 + t), shape, axes));
      checks.push(reduceCheck('max', data(size(shape), 400 + t, true), shape, axes));
      checks.push(reduceCheck('max', data(size(shape), 500 + t), shape, axes));
    });
    await verify(checks);
  });

  it('a long all-positive sum stays accurate in float32 (blocked, not a running sum)', async () => {
    const g = webgpu();
    const n = (1 << 20) + 3;
    const x = new Float32Array(n);
    let s = 12345;
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      x[i] = s / 2 ** 32;
    }
    let exact = 0;
    let running = Math.fround(0);
    for (let i = 0; i < n; i++) {
      exact += x[i];
      running = Math.fround(running + x[i]);
    }
    const [got] = await g.read(g.reduce('sum', g.upload(x), [n], [0]));
    // A float32 running sum errs by 7e-6 here; the blocked sum by about one ulp of the total.
    const blockedError = Math.abs(got - exact) / exact;
    expect(blockedError).toBeLessThan(2e-7);
    expect(blockedError * 20).toBeLessThan(Math.abs(running - exact) / exact);
  });

  it('more than 65535 workgroups (a second grid dimension): a max over an empty axis', async () => {
    const g = webgpu();
    const rows = 17_000_000; // > 65535 · 256 outputs, one thread each
    const got = await g.read(g.reduce('max', g.upload(new Float32Array(0)), [rows, 0], [1]));
    expect(got.length).toBe(rows);
    expect(got.every((v) => v === -Infinity)).toBe(true);
  });

  it('works inside a scope (temporaries return to the pool) and gives the same bits every run', async () => {
    const g = webgpu();
    const x = data(3 * 5000, 9);
    const runs = await Promise.all([0, 1, 2].map(() => g.scope(() => g.read(g.reduce('sum', g.upload(x), [3, 5000], [1])))));
    expect(Array.from(runs[1])).toEqual(Array.from(runs[0]));
    expect(Array.from(runs[2])).toEqual(Array.from(runs[0]));
  });
});

suite('webgpu layout kernels match the reference', () => {
  function permutations(n: number): number[][] {
    if (n === 0) return [[]];
    return permutations(n - 1).flatMap((p) => Array.from({ length: n }, (_, k) => [...p.slice(0, k), n - 1, ...p.slice(k)]));
  }

  it('permute: every permutation up to rank 4, random ones at rank 5 and 6', async () => {
    const g = webgpu();
    const r = rng(11);
    const checks: Check[] = [];
    const cases: Array<[number[], number[]]> = [];
    for (let rank = 1; rank <= 4; rank++) {
      for (let t = 0; t < 2; t++) {
        const shape = randomShape(r, rank, 7, t === 1);
        for (const perm of permutations(rank)) cases.push([shape, perm]);
      }
    }
    for (let t = 0; t < 6; t++) {
      const rank = 5 + (t % 2);
      const shape = randomShape(r, rank, 5, false);
      const perm = Array.from({ length: rank }, (_, d) => d);
      for (let d = rank - 1; d > 0; d--) {
        const k = r.int(d + 1);
        [perm[d], perm[k]] = [perm[k], perm[d]];
      }
      cases.push([shape, perm]);
    }
    cases.push([[64, 129], [1, 0]]);
    // Rank 0 (compared with the input: the reference's odometer writes 0 for a scalar).
    checks.push({ label: 'permute of a scalar', gpu: g.permute(g.upload(Float32Array.of(-2.5)), [], []), expected: Float32Array.of(-2.5) });
    cases.forEach(([shape, perm], t) => {
      const x = data(size(shape), 600 + t);
      checks.push({ label: `permute [${shape.join(', ')}] by [${perm.join(', ')}]`, gpu: g.permute(g.upload(x), shape, perm), expected: host(cpu.permute(cpu.upload(x), shape, perm)) });
    });
    await verify(checks);
  });

  it('slice and pad: random blocks, empty, full and single-element ones', async () => {
    const g = webgpu();
    const r = rng(12);
    const checks: Check[] = [];
    for (let t = 0; t < 40; t++) {
      const shape = randomShape(r, 1 + r.int(4), 8, t % 4 === 0);
      const size_ = shape.map((d) => (t % 7 === 0 ? d : r.int(d + 1)));
      const begin = shape.map((d, k) => r.int(d - size_[k] + 1));
      const x = data(size(shape), 700 + t);
      const label = `[${shape.join(', ')}] at [${begin.join(', ')}] size [${size_.join(', ')}]`;
      checks.push({ label: `slice ${label}`, gpu: g.slice(g.upload(x), shape, begin, size_), expected: host(cpu.slice(cpu.upload(x), shape, begin, size_)) });
      const small = data(size(size_), 800 + t);
      checks.push({ label: `pad ${label}`, gpu: g.pad(g.upload(small), size_, shape, begin), expected: host(cpu.pad(cpu.upload(small), size_, shape, begin)) });
    }
    // Rank 0 and single elements.
    checks.push({ label: 'slice of a scalar', gpu: g.slice(g.upload(Float32Array.of(3)), [], [], []), expected: Float32Array.of(3) });
    checks.push({ label: 'pad of a scalar', gpu: g.pad(g.upload(Float32Array.of(3)), [], [], []), expected: Float32Array.of(3) });
    const x = data(60, 1);
    checks.push({ label: 'slice one element', gpu: g.slice(g.upload(x), [3, 4, 5], [2, 1, 3], [1, 1, 1]), expected: Float32Array.of(x[2 * 20 + 1 * 5 + 3]) });
    await verify(checks);
  });

  it('concat along every axis, with many inputs (several dispatches) and empty ones', async () => {
    const g = webgpu();
    const r = rng(13);
    const checks: Check[] = [];
    for (let t = 0; t < 24; t++) {
      const rank = 1 + r.int(4);
      const axis = r.int(rank);
      const base = randomShape(r, rank, 6, t % 6 === 0);
      const count = t % 3 === 0 ? 7 + r.int(8) : 1 + r.int(5);
      const shapes = Array.from({ length: count }, () => base.map((d, k) => (k === axis ? (r.int(5) === 0 ? 0 : 1 + r.int(4)) : d)));
      const xs = shapes.map((s, k) => data(size(s), 900 + 20 * t + k));
      checks.push({
        label: `concat of ${count} along ${axis}: ${JSON.stringify(shapes)}`,
        gpu: g.concat(xs.map((x) => g.upload(x)), shapes, axis),
        expected: host(cpu.concat(xs.map((x) => cpu.upload(x)), shapes, axis)),
      });
    }
    // The same buffer several times.
    const x = data(12, 5);
    const b = g.upload(x);
    checks.push({ label: 'concat of one buffer with itself', gpu: g.concat([b, b, b], [[3, 4], [3, 4], [3, 4]], 1), expected: host(cpu.concat([x, x, x].map((v) => cpu.upload(v)), [[3, 4], [3, 4], [3, 4]], 1)) });
    await verify(checks);
  });

  it('gather and scatterAdd along every axis, with repeated, missing and no indices', async () => {
    const g = webgpu();
    const r = rng(14);
    const checks: Check[] = [];
    for (let t = 0; t < 30; t++) {
      const rank = 1 + r.int(4);
      const shape = randomShape(r, rank, 7, t % 5 === 0);
      const axis = r.int(rank);
      if (shape[axis] === 0) shape[axis] = 3;
      const dim = shape[axis];
      // Repeats: indices drawn from a few values; sometimes none at all.
      const count = t % 10 === 9 ? 0 : 1 + r.int(12);
      const hot = 1 + r.int(dim);
      const indices = Int32Array.from({ length: count }, () => r.int(hot));
      const label = `[${shape.join(', ')}] axis ${axis} indices [${indices.join(', ')}]`;
      const x = data(size(shape), 1500 + t);
      checks.push({ label: `gather ${label}`, gpu: g.gather(g.upload(x), shape, axis, indices), expected: host(cpu.gather(cpu.upload(x), shape, axis, indices)) });
      const gShape = shape.map((d, k) => (k === axis ? count : d));
      const gy = data(size(gShape), 1600 + t);
      checks.push({ label: `scatterAdd ${label}`, gpu: g.scatterAdd(g.upload(gy), gShape, axis, indices, shape), expected: host(cpu.scatterAdd(cpu.upload(gy), gShape, axis, indices, shape)) });
    }
    // An embedding-like case: many rows, a token repeated hundreds of times (long in-order sums).
    const vocab = 50;
    const indices = Int32Array.from({ length: 900 }, (_, i) => (i % 3 === 0 ? 7 : (i * 31) % vocab));
    const gy = data(900 * 33, 77);
    checks.push({ label: 'scatterAdd embedding', gpu: g.scatterAdd(g.upload(gy), [900, 33], 0, indices, [vocab, 33]), expected: host(cpu.scatterAdd(cpu.upload(gy), [900, 33], 0, indices, [vocab, 33])) });
    const table = data(vocab * 33, 78);
    checks.push({ label: 'gather embedding', gpu: g.gather(g.upload(table), [vocab, 33], 0, indices), expected: host(cpu.gather(cpu.upload(table), [vocab, 33], 0, indices)) });
    await verify(checks);
    expect(() => g.gather(g.upload(table), [vocab, 33], 0, Int32Array.of(vocab))).toThrow(RangeError);
  });

  it('gather and scatterAdd inside a scope', async () => {
    const g = webgpu();
    const x = data(40, 3);
    const idx = Int32Array.of(1, 1, 0, 3);
    const [a, b] = await g.scope(() => g.readMany([g.gather(g.upload(x), [4, 10], 0, idx), g.scatterAdd(g.upload(x), [4, 10], 0, idx, [5, 10])]));
    expect(Array.from(a)).toEqual(Array.from(host(cpu.gather(cpu.upload(x), [4, 10], 0, idx))));
    expect(Array.from(b)).toEqual(Array.from(host(cpu.scatterAdd(cpu.upload(x), [4, 10], 0, idx, [5, 10]))));
  });
});

suite('webgpu window kernels match the reference', () => {
  interface Case {
    readonly shape: number[];
    readonly spec: WindowSpec;
    readonly label: string;
  }
  function cases(): Case[] {
    const r = rng(21);
    const out: Case[] = [];
    const add = (shape: number[], k: [number, number], s: [number, number], p: [number, number], d: [number, number]) => {
      out.push({ shape, spec: windowSpec(shape[2], shape[3], k, s, p, d), label: `[${shape.join(', ')}] k${k} s${s} p${p} d${d}` });
    };
    add([2, 3, 8, 8], [3, 3], [1, 1], [1, 1], [1, 1]);
    add([1, 1, 5, 5], [1, 1], [1, 1], [0, 0], [1, 1]);
    add([2, 2, 9, 7], [2, 2], [2, 2], [0, 0], [1, 1]);
    add([1, 2, 6, 6], [3, 3], [1, 1], [3, 3], [1, 1]); // windows wholly in the padding
    add([3, 1, 1, 9], [1, 3], [1, 2], [0, 1], [1, 2]);
    while (out.length < 18) {
      const k: [number, number] = [1 + r.int(3), 1 + r.int(3)];
      const s: [number, number] = [1 + r.int(3), 1 + r.int(3)];
      const p: [number, number] = [r.int(3), r.int(3)];
      const d: [number, number] = [1 + r.int(2), 1 + r.int(2)];
      const shape = [1 + r.int(3), 1 + r.int(3), 1 + r.int(11), 1 + r.int(11)];
      try {
        add(shape, k, s, p, d);
      } catch {
        // The window does not fit: draw again.
      }
    }
    return out;
  }

  it('im2col and col2im over strides, padding and dilation', async () => {
    const g = webgpu();
    const checks: Check[] = [];
    cases().forEach(({ shape, spec, label }, t) => {
      const x = data(size(shape), 2000 + t);
      checks.push({ label: `im2col ${label}`, gpu: g.im2col(g.upload(x), shape, spec), expected: host(cpu.im2col(cpu.upload(x), shape, spec)) });
      const cols = data(shape[0] * spec.oh * spec.ow * shape[1] * spec.kh * spec.kw, 2100 + t);
      checks.push({ label: `col2im ${label}`, gpu: g.col2im(g.upload(cols), shape, spec), expected: host(cpu.col2im(cpu.upload(cols), shape, spec)) });
    });
    await verify(checks);
  });

  it('max pooling forward and backward, with ties, signed zeros and NaN', async () => {
    const g = webgpu();
    const checks: Check[] = [];
    cases().forEach(({ shape, spec, label }, t) => {
      for (const specials of [false, true]) {
        const x = data(size(shape), 2200 + 2 * t + (specials ? 1 : 0), specials);
        const gy = data(shape[0] * shape[1] * spec.oh * spec.ow, 2300 + t);
        checks.push({ label: `maxPool2d ${label}${specials ? ' specials' : ''}`, gpu: g.maxPool2d(g.upload(x), shape, spec), expected: host(cpu.maxPool2d(cpu.upload(x), shape, spec)) });
        checks.push({
          label: `maxPool2dBackward ${label}${specials ? ' specials' : ''}`,
          gpu: g.maxPool2dBackward(g.upload(x), shape, g.upload(gy), spec),
          expected: host(cpu.maxPool2dBackward(cpu.upload(x), shape, cpu.upload(gy), spec)),
        });
      }
    });
    // All equal: every window routes its gradient to its first position.
    const shape = [1, 1, 6, 6];
    const spec = windowSpec(6, 6, [3, 3], [1, 1], [1, 1], [1, 1]);
    const x = new Float32Array(36).fill(2);
    const gy = data(36, 5);
    checks.push({ label: 'maxPool2dBackward all ties', gpu: g.maxPool2dBackward(g.upload(x), shape, g.upload(gy), spec), expected: host(cpu.maxPool2dBackward(cpu.upload(x), shape, cpu.upload(gy), spec)) });
    await verify(checks);
  });
});
