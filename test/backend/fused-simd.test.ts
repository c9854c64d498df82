// The wasm backend's float32 polynomial kernels (assembly/fused.ts) against the reference kernels,
// which use Math.exp / Math.tanh in float64 and round once: exp, tanh, sigmoid and erf elementwise
// over the whole float32 range (tiny, moderate, huge, ±∞, NaN), every tail length, both kernel
// builds; softmax rows, GELU and its gradient, ReLU, the LSTM / GRU cells; and the strided run
// copies behind permute (last axis kept), slice and pad, on random shapes of rank 2–5.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpu } from '../../shared/backend/cpu/cpu-backend.js';
import { WasmBackend } from '../../shared/backend/wasm/wasm-backend.js';
import type { UnaryOp } from '../../shared/backend/backend.js';
import { Rng } from '../../shared/util/random.js';

const backends: Array<[string, WasmBackend]> = [];
beforeAll(async () => {
  backends.push(['simd', await WasmBackend.create({ flavour: 'simd' })]);
  backends.push(['relaxed-simd', await WasmBackend.create({ flavour: 'relaxed-simd' })]);
});
afterAll(async () => {
  for (const [, b] of backends) await b.close();
});

/** |a − e| ≤ rel·|e| + abs for every element, NaN only where the reference is NaN; the worst index. */
function worst(actual: ArrayLike<number>, expected: ArrayLike<number>, rel: number, abs: number): { ok: boolean; at: number; a: number; e: number } {
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (a === e) continue; // equal infinities too
    if (Number.isNaN(e) ? !Number.isNaN(a) : !(Math.abs(a - e) <= rel * Math.abs(e) + abs)) return { ok: false, at: i, a, e };
  }
  return { ok: true, at: -1, a: 0, e: 0 };
}

function inputs(): Float32Array {
  const rng = new Rng(7);
  const values: number[] = [0, -0, 1e-30, -1e-30, 1e-7, -1e-7, 0.1, -0.1, 0.5, 0.62, 0.63, -0.625, 1, -1, 3, -3, 9, -9, 20, -20, 50, -50, 87, -87, 88.5, -88.5, 100, -100, 1e30, -1e30, Infinity, -Infinity, NaN];
  for (let i = 0; i < 400; i++) values.push((rng.uniform() - 0.5) * 2 * 10 ** (rng.uniform() * 3 - 1));
  return Float32Array.from(values);
}

describe('wasm transcendental kernels against Math (float32 results)', () => {
  const x = inputs();
  // sigmoid and exp near their huge / tiny ends are compared in absolute terms to float32's
  // smallest normal (the kernels clamp instead of returning denormals or ∞).
  const cases: Array<[UnaryOp, number, number]> = [
    ['exp', 3e-6, 1.2e-38],
    ['tanh', 3e-6, 1e-7],
    ['sigmoid', 3e-6, 1.2e-38],
    ['erf', 1e-6, 3e-7],
  ];
  for (const [op, rel, abs] of cases) {
    it(`${op}: every input, every tail length`, () => {
      for (const [name, b] of backends) {
        for (const n of [1, 2, 3, 4, 5, 7, 9, x.length]) {
          const part = x.subarray(0, n);
          const expected = cpu.readSync(cpu.unary(op, cpu.upload(Float32Array.from(part))))!;
          const got = b.readSync(b.unary(op, b.upload(Float32Array.from(part))));
          // exp clamps its input to 88.37 (e^88.37 ≈ 2.4e38, a normal float): above that it returns
          // that bound instead of the true value or ∞.
          const reference = Float32Array.from(expected, (v, i) => (op === 'exp' && part[i] > 88.37 && got[i] > 2.3e38 && got[i] <= v ? got[i] : v));
          const w = worst(got, reference, rel, abs);
          expect(w.ok, `${name} ${op}(${part[w.at]}) = ${w.a}, reference ${w.e}`).toBe(true);
        }
      }
    });
  }

  it('exp never overflows to ∞ or NaN for finite input, and is exact at 0', () => {
    for (const [, b] of backends) {
      const got = b.readSync(b.unary('exp', b.upload(Float32Array.from([0, 1e30, -1e30, 88.7, -88.7]))));
      expect(got[0]).toBe(1);
      for (const v of got) expect(Number.isFinite(v)).toBe(true);
      expect(got[2]).toBeGreaterThanOrEqual(0);
    }
  });
});

describe('wasm fused kernels against the reference kernels', () => {
  const rng = new Rng(3);
  const rand = (n: number, scale = 3): Float32Array => Float32Array.from({ length: n }, () => (rng.uniform() - 0.5) * 2 * scale);

  it('softmax rows, plain and causal, odd sizes', () => {
    for (const [name, b] of backends) {
      for (const [rows, cols, causal] of [[1, 1, false], [3, 7, false], [10, 5, true], [4, 4, true], [6, 33, false], [2, 1, true]] as const) {
        const x = rand(rows * cols, 20);
        const e = cpu.readSync(cpu.softmax(cpu.upload(Float32Array.from(x)), rows, cols, causal))!;
        const g = b.readSync(b.softmax(b.upload(Float32Array.from(x)), rows, cols, causal));
        const w = worst(g, e, 3e-6, 1e-9);
        expect(w.ok, `${name} [${rows}, ${cols}] causal ${causal}: at ${w.at} ${w.a} vs ${w.e}`).toBe(true);
        if (causal) for (let r = 0; r < rows; r++) for (let j = (r % cols) + 1; j < cols; j++) expect(g[r * cols + j]).toBe(0);
      }
    }
  });

  it('softmax backward, log-softmax and its backward, odd sizes and extreme logits', () => {
    for (const [name, b] of backends) {
      for (const [rows, cols] of [[1, 1], [3, 7], [5, 4], [6, 33], [17, 83], [2, 1001]] as const) {
        const x = rand(rows * cols, 30);
        x[0] = -Infinity; // a masked logit: probability 0, log-probability −∞
        if (x.length > 1) x[1] = 80;
        const gy = rand(rows * cols, 1);
        const up = (be: typeof cpu | typeof b, a: ArrayLike<number>) => be.upload(Float32Array.from(a));
        const eLog = cpu.readSync(cpu.logSoftmax(up(cpu, x), rows, cols))!;
        const gLog = b.readSync(b.logSoftmax(up(b, x), rows, cols));
        const wl = worst(gLog, eLog, 3e-6, 3e-6);
        expect(wl.ok, `${name} logSoftmax [${rows}, ${cols}] at ${wl.at}: ${wl.a} vs ${wl.e}`).toBe(true);
        // The backward kernels from the reference's outputs, so both start from the same y.
        const eLogB = cpu.readSync(cpu.logSoftmaxBackward(up(cpu, eLog), up(cpu, gy), rows, cols))!;
        const gLogB = b.readSync(b.logSoftmaxBackward(up(b, eLog), up(b, gy), rows, cols));
        const wlb = worst(gLogB, eLogB, 3e-6, 3e-6);
        expect(wlb.ok, `${name} logSoftmaxBackward [${rows}, ${cols}] at ${wlb.at}: ${wlb.a} vs ${wlb.e}`).toBe(true);
        const y = cpu.readSync(cpu.softmax(up(cpu, x), rows, cols, false))!;
        const eSB = cpu.readSync(cpu.softmaxBackward(up(cpu, y), up(cpu, gy), rows, cols))!;
        const gSB = b.readSync(b.softmaxBackward(up(b, y), up(b, gy), rows, cols));
        const wsb = worst(gSB, eSB, 3e-6, 1e-7);
        expect(wsb.ok, `${name} softmaxBackward [${rows}, ${cols}] at ${wsb.at}: ${wsb.a} vs ${wsb.e}`).toBe(true);
      }
    }
  });

  it('GELU and its gradient, exact and tanh forms', () => {
    for (const [name, b] of backends) {
      for (const approximate of ['none', 'tanh'] as const) {
        for (const n of [1, 3, 4, 9, 1001]) {
          const x = rand(n, 6);
          x[0] = n > 1 ? 1e4 : x[0];
          const gy = rand(n, 1);
          const e = cpu.readSync(cpu.gelu(cpu.upload(Float32Array.from(x)), approximate))!;
          const g = b.readSync(b.gelu(b.upload(Float32Array.from(x)), approximate));
          const w = worst(g, e, 3e-6, 3e-7);
          expect(w.ok, `${name} gelu ${approximate} at ${x[w.at]}: ${w.a} vs ${w.e}`).toBe(true);
          const eb = cpu.readSync(cpu.geluBackward(cpu.upload(Float32Array.from(x)), cpu.upload(Float32Array.from(gy)), approximate))!;
          const gb = b.readSync(b.geluBackward(b.upload(Float32Array.from(x)), b.upload(Float32Array.from(gy)), approximate));
          const wb = worst(gb, eb, 3e-6, 3e-7);
          expect(wb.ok, `${name} geluBackward ${approximate} at ${x[wb.at]}: ${wb.a} vs ${wb.e}`).toBe(true);
        }
      }
    }
  });

  it('LSTM and GRU forward cells, hidden sizes with and without a SIMD tail, with and without bias', () => {
    for (const [name, b] of backends) {
      for (const hidden of [1, 3, 4, 5, 8, 13]) {
        for (const withBias of [true, false]) {
          const batch = 3;
          const giRow = 2;
          const lstmGi = rand((giRow + batch + 1) * 4 * hidden);
          const lstmGh = rand(batch * 4 * hidden);
          const bias4 = withBias ? rand(4 * hidden) : null;
          const c = rand(batch * hidden);
          const up = (be: typeof cpu, a: Float32Array | null) => (a === null ? null : be.upload(Float32Array.from(a)));
          const re = cpu.lstmCell(up(cpu, lstmGi)!, giRow, up(cpu, lstmGh)!, up(cpu, bias4), up(cpu, c)!, batch, hidden);
          const rg = b.lstmCell(up(b, lstmGi)!, giRow, up(b, lstmGh)!, up(b, bias4), up(b, c)!, batch, hidden);
          for (const k of ['h', 'c', 'act'] as const) {
            const w = worst(b.readSync(rg[k]), cpu.readSync(re[k])!, 3e-6, 2e-7);
            expect(w.ok, `${name} lstm H=${hidden} bias ${withBias} ${k} at ${w.at}: ${w.a} vs ${w.e}`).toBe(true);
          }
          const gruGi = rand((giRow + batch) * 3 * hidden);
          const gruGh = rand(batch * 3 * hidden);
          const bias3 = withBias ? rand(3 * hidden) : null;
          const h = rand(batch * hidden);
          const ge = cpu.gruCell(up(cpu, gruGi)!, giRow, up(cpu, gruGh)!, up(cpu, bias3), up(cpu, h)!, batch, hidden);
          const gg = b.gruCell(up(b, gruGi)!, giRow, up(b, gruGh)!, up(b, bias3), up(b, h)!, batch, hidden);
          for (const k of ['h', 'act'] as const) {
            const w = worst(b.readSync(gg[k]), cpu.readSync(ge[k])!, 3e-6, 2e-7);
            expect(w.ok, `${name} gru H=${hidden} bias ${withBias} ${k} at ${w.at}: ${w.a} vs ${w.e}`).toBe(true);
          }
        }
      }
    }
  });

  it('relu and its gradient: bit-identical to the reference, NaN kept forward, no gradient through x ≤ 0', () => {
    for (const [name, b] of backends) {
      for (const n of [1, 3, 4, 7, 1001]) {
        const x = rand(n);
        if (n > 3) x.set([0, -0, NaN], 0);
        const gy = rand(n);
        if (n > 4) gy[4] = Infinity;
        const e = cpu.readSync(cpu.relu(cpu.upload(Float32Array.from(x))))!;
        const g = b.readSync(b.relu(b.upload(Float32Array.from(x))));
        expect(Array.from(g).map((v) => (v === 0 ? 0 : v)), name).toEqual(Array.from(e).map((v) => (v === 0 ? 0 : v)));
        const eb = cpu.readSync(cpu.reluBackward(cpu.upload(Float32Array.from(x)), cpu.upload(Float32Array.from(gy))))!;
        const gb = b.readSync(b.reluBackward(b.upload(Float32Array.from(x)), b.upload(Float32Array.from(gy))));
        expect(Array.from(gb).map((v) => (v === 0 ? 0 : v)), name).toEqual(Array.from(eb).map((v) => (v === 0 ? 0 : v)));
      }
    }
  });

  it('refuses cell arguments of the wrong size before reading memory', () => {
    const [, b] = backends[0];
    expect(() => b.lstmCell(b.fill('float32', 8, 0), 1, b.fill('float32', 8, 0), null, b.fill('float32', 2, 0), 2, 1)).toThrow(/lstmCell: rows 1 … 2 of gi are outside its 2 rows/);
    expect(() => b.gruCell(b.fill('float32', 6, 0), 0, b.fill('float32', 5, 0), null, b.fill('float32', 2, 0), 2, 1)).toThrow(/gruCell: gh has 5 elements, expected 6/);
  });
});

describe('wasm permute / slice / pad fast paths against the reference kernels (bit for bit)', () => {
  const rng = new Rng(11);
  const int = (lo: number, hi: number): number => lo + Math.floor(rng.uniform() * (hi - lo + 1));
  const shuffled = (n: number): number[] => {
    const a = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = int(0, i);
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  };

  it('on random shapes, permutations, windows and pads, runs short and long', () => {
    const [, b] = backends[0];
    for (let trial = 0; trial < 300; trial++) {
      const rank = int(2, 5);
      const shape = Array.from({ length: rank }, (_, i) => (i === rank - 1 ? int(1, 37) : int(1, 5)));
      const n = shape.reduce((x, y) => x * y, 1);
      const data = Float32Array.from({ length: n }, () => rng.uniform());
      // permute keeping the last axis (the fast path) or not (the reference path)
      const keep = trial % 3 !== 0;
      const perm = keep ? [...shuffled(rank - 1), rank - 1] : shuffled(rank);
      const pe = cpu.readSync(cpu.permute(cpu.upload(Float32Array.from(data)), shape, perm))!;
      const pg = b.readSync(b.permute(b.upload(Float32Array.from(data)), shape, perm));
      expect(Array.from(pg), `permute ${JSON.stringify(shape)} by ${JSON.stringify(perm)}`).toEqual(Array.from(pe));
      const begin = shape.map((d) => int(0, d - 1));
      const size = shape.map((d, i) => int(1, d - begin[i]));
      const se = cpu.readSync(cpu.slice(cpu.upload(Float32Array.from(data)), shape, begin, size))!;
      const sg = b.readSync(b.slice(b.upload(Float32Array.from(data)), shape, begin, size));
      expect(Array.from(sg), `slice ${JSON.stringify(shape)} at ${JSON.stringify(begin)} size ${JSON.stringify(size)}`).toEqual(Array.from(se));
      const outShape = shape.map((d) => d + int(0, 3));
      const at = shape.map((d, i) => int(0, outShape[i] - d));
      const de = cpu.readSync(cpu.pad(cpu.upload(Float32Array.from(data)), shape, outShape, at))!;
      // pad into recycled memory: the zeros must be written, not assumed
      const outSize = outShape.reduce((x, y) => x * y, 1);
      b.scope(() => b.fill('float32', outSize, NaN)); // released: the pad below gets this block back
      const dg = b.scope(() => {
        const src = b.upload(Float32Array.from(data));
        return Array.from(b.readSync(b.pad(src, shape, outShape, at)));
      });
      expect(dg, `pad ${JSON.stringify(shape)} into ${JSON.stringify(outShape)} at ${JSON.stringify(at)}`).toEqual(Array.from(de));
    }
  });
});
