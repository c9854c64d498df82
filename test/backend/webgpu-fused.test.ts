// WebGPU fused kernels against the CPU reference kernels: softmax (plain and causal), log-softmax,
// LayerNorm, and the LSTM / GRU / Elman RNN cells, each forward and backward, on odd sizes (rows of
// 1, 3, 257, 1000 and more columns than a workgroup has threads), with large logits, NaN in masked
// causal positions, constant rows, every weight / bias and null-gradient pattern, and row offsets
// into a whole sequence. Skipped, with the reason printed, where no WebGPU adapter exists.
import { describe, expect, it } from 'vitest';
import { cpu } from '../../shared/backend/cpu/cpu-backend.js';
import type { DeviceBuffer } from '../../shared/backend/backend.js';
import { gpuSkipReason, maxRelError, randomTensor, webgpu } from './webgpu-helpers.js';

const suite = gpuSkipReason === null ? describe : describe.skip;
/** Relative to the data's scale (maxRelError): float32 sums against the float64 reference. */
const TOL = 1e-5;

function rand(n: number, seed: number, scale = 1): Float32Array {
  return Float32Array.from(randomTensor([n], seed, scale).dataSync());
}

function ref(b: DeviceBuffer): Float32Array {
  return cpu.readSync(b) as Float32Array;
}

/** Reads GPU buffers in one submit. */
async function read(...buffers: DeviceBuffer[]): Promise<Float32Array[]> {
  return webgpu().readMany(buffers);
}

/**
 * max |a − e| / scale. For softmax's backward, whose y·(gy − Σ gy·y) cancels in float32 where a row
 * is peaked (the float64 reference does not), against the gradient's own scale max |gy|.
 */
function absError(actual: Float32Array, expected: Float32Array, scale: number): number {
  let err = 0;
  for (let i = 0; i < expected.length; i++) err = Math.max(err, Math.abs(actual[i] - expected[i]));
  return err / scale;
}

function maxAbs(a: Float32Array): number {
  return a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}

/** The same host data on both backends: [cpu, gpu]. */
function both(data: Float32Array): [DeviceBuffer, DeviceBuffer] {
  return [cpu.upload(data), webgpu().upload(data)];
}

/** Either backend's copy of an optional input. */
function pick(pair: [DeviceBuffer, DeviceBuffer] | null, side: 0 | 1): DeviceBuffer | null {
  return pair === null ? null : pair[side];
}

/** Every on/off combination of `n` optional inputs. */
function patterns(n: number): boolean[][] {
  return Array.from({ length: 1 << n }, (_, m) => Array.from({ length: n }, (_, k) => ((m >> k) & 1) === 1));
}

/**
 * Comparisons recorded while the GPU kernels are queued, then read back with one submit (a software
 * adapter pays a round trip per read). By default: no NaN, and maxRelError below TOL.
 */
class Checks {
  private readonly items: Array<{ label: string; gpu: DeviceBuffer; expected: Float32Array; check?: (got: Float32Array) => void }> = [];
  add(label: string, gpu: DeviceBuffer, expected: Float32Array, check?: (got: Float32Array) => void): void {
    this.items.push({ label, gpu, expected, check });
  }
  async verify(): Promise<void> {
    const got = await read(...this.items.map((item) => item.gpu));
    this.items.forEach(({ label, expected, check }, k) => {
      expect(got[k].some(Number.isNaN), `${label}: NaN`).toBe(false);
      expect(maxRelError(got[k], expected), label).toBeLessThan(TOL);
      check?.(got[k]);
    });
    this.items.length = 0;
  }
}

suite('webgpu softmax and log-softmax match the reference', () => {
  const shapes: Array<[number, number]> = [
    [1, 1],
    [3, 1],
    [2, 2],
    [5, 3],
    [7, 33],
    [7, 257],
    [3, 1000],
    [2, 3001],
  ];

  it('forward and backward, odd row lengths, large logits', async () => {
    const g = webgpu();
    for (const [s, [rows, cols]] of shapes.entries()) {
      const x = rand(rows * cols, 1 + s, 8);
      // The last row: logits of ±80 (exp overflows float32 past ≈ 88 without the max subtraction).
      if (rows > 1) for (let j = 0; j < cols; j++) x[(rows - 1) * cols + j] = j % 3 === 0 ? 80 : j % 3 === 1 ? -80 : 79.5;
      const gy = rand(rows * cols, 100 + s, 2);
      const [cx, gx] = both(x);
      const [cg, gg] = both(gy);
      const y = ref(cpu.softmax(cx, rows, cols, false));
      const ly = ref(cpu.logSoftmax(cx, rows, cols));
      const [cy, gyBuf] = both(y);
      const [cly, gly] = both(ly);
      const expected = [y, ly, ref(cpu.softmaxBackward(cy, cg, rows, cols)), ref(cpu.logSoftmaxBackward(cly, cg, rows, cols))];
      const got = await read(g.softmax(gx, rows, cols, false), g.logSoftmax(gx, rows, cols), g.softmaxBackward(gyBuf, gg, rows, cols), g.logSoftmaxBackward(gly, gg, rows, cols));
      ['softmax', 'logSoftmax', 'softmaxBackward', 'logSoftmaxBackward'].forEach((name, k) => {
        expect(got[k].some(Number.isNaN), `${name} [${rows}, ${cols}] NaN`).toBe(false);
        const err = name === 'softmaxBackward' ? absError(got[k], expected[k], maxAbs(gy)) : maxRelError(got[k], expected[k]);
        expect(err, `${name} [${rows}, ${cols}]`).toBeLessThan(TOL);
      });
      // Rows of a softmax sum to 1.
      for (let r = 0; r < rows; r++) {
        let sum = 0;
        for (let j = 0; j < cols; j++) sum += got[0][r * cols + j];
        expect(Math.abs(sum - 1)).toBeLessThan(1e-5);
      }
    }
  });

  it('more rows than one grid dimension holds (2-D grid)', async () => {
    const g = webgpu();
    const rows = 70_001;
    const cols = 2;
    const x = rand(rows * cols, 7, 4);
    const [cx, gx] = both(x);
    const [got] = await read(g.softmax(gx, rows, cols, false));
    expect(maxRelError(got, ref(cpu.softmax(cx, rows, cols, false)))).toBeLessThan(TOL);
  });

  it('causal softmax: masked keys are exactly 0 and never read (NaN, ±∞ there cannot leak)', async () => {
    const g = webgpu();
    for (const [s, T] of [1, 2, 5, 64, 300].entries()) {
      const blocks = 2;
      const rows = blocks * T;
      const x = rand(rows * T, 20 + s, 6);
      const poison = [NaN, Infinity, -Infinity, 1e30];
      for (let r = 0; r < rows; r++) for (let j = (r % T) + 1; j < T; j++) x[r * T + j] = poison[(r + j) % poison.length];
      const [cx, gx] = both(x);
      const expected = ref(cpu.softmax(cx, rows, T, true));
      const gy = rand(rows * T, 40 + s);
      const [cg, gg] = both(gy);
      const [cy, gyBuf] = both(expected);
      const expectedBack = ref(cpu.softmaxBackward(cy, cg, rows, T));
      const [got, back] = await read(g.softmax(gx, rows, T, true), g.softmaxBackward(gyBuf, gg, rows, T));
      expect(got.some(Number.isNaN), `T ${T}: NaN leaked`).toBe(false);
      // Masked probabilities are +0 exactly; their gradients y·(gy − s) are ±0.
      const notZero: string[] = [];
      for (let r = 0; r < rows; r++) {
        for (let j = (r % T) + 1; j < T; j++) {
          if (!Object.is(got[r * T + j], 0)) notZero.push(`y(${r}, ${j}) = ${got[r * T + j]}`);
          if (back[r * T + j] !== 0) notZero.push(`gx(${r}, ${j}) = ${back[r * T + j]}`);
        }
      }
      expect(notZero.slice(0, 5), `T ${T} masked entries`).toEqual([]);
      expect(maxRelError(got, expected), `causal T ${T}`).toBeLessThan(TOL);
      expect(absError(back, expectedBack, maxAbs(gy)), `causal backward T ${T}`).toBeLessThan(TOL);
      // Equal, up to rounding, to the composed path: masked scores replaced by −1e9, unmasked softmax.
      const filled = x.map((v, k) => (k % T > Math.floor(k / T) % T ? -1e9 : v));
      const [composed] = await read(g.softmax(g.upload(filled), rows, T, false));
      expect(maxRelError(got, composed), `causal T ${T} vs −1e9 fill`).toBeLessThan(TOL);
    }
    expect(() => g.softmax(g.upload(new Float32Array(15)), 5, 3, true)).toThrow(RangeError);
  });
});

suite('webgpu LayerNorm matches the reference', () => {
  const shapes: Array<[number, number]> = [
    [1, 1],
    [3, 3],
    [5, 257],
    [4, 1000],
    [3, 2049],
    [301, 67],
  ];
  const eps = 1e-5;

  /** Row 0 constant, row 1 with a large mean and a small spread (the E[x²] − μ² trap), the rest random. */
  function layerNormInput(rows: number, cols: number, seed: number): Float32Array {
    const x = rand(rows * cols, seed, 3);
    if (rows > 1) {
      x.fill(0.7, 0, cols);
      for (let j = 0; j < cols; j++) x[cols + j] = 1000 + x[cols + j] * 0.01;
    }
    return x;
  }

  it('forward with and without weight and bias; a constant row gives exactly the bias', async () => {
    const g = webgpu();
    const checks = new Checks();
    for (const [s, [rows, cols]] of shapes.entries()) {
      const x = layerNormInput(rows, cols, 1 + s);
      const [cx, gx] = both(x);
      const w = both(rand(cols, 50 + s, 2));
      const b = both(rand(cols, 60 + s));
      for (const [hasW, hasB] of patterns(2)) {
        const label = `[${rows}, ${cols}] weight ${hasW} bias ${hasB}`;
        const e = cpu.layerNorm(cx, hasW ? w[0] : null, hasB ? b[0] : null, rows, cols, eps);
        const r = g.layerNorm(gx, hasW ? w[1] : null, hasB ? b[1] : null, rows, cols, eps);
        const ey = ref(e.y);
        checks.add(`y ${label}`, r.y, ey, (y) => {
          if (rows < 2) return;
          expect(maxRelError(y.subarray(0, cols), ey.subarray(0, cols)), `constant row ${label}`).toBe(0);
          // The large-mean row against its own scale (x̂ is O(1) there, μ is 1000): a float32 μ would
          // be off by up to 3e-5 (≈ 2e-3 of x̂ here); the shifted mean keeps this row within TOL too.
          expect(maxRelError(y.subarray(cols, 2 * cols), ey.subarray(cols, 2 * cols)), `large-mean row ${label}`).toBeLessThan(TOL);
        });
        checks.add(`mean ${label}`, r.mean, ref(e.mean));
        checks.add(`rstd ${label}`, r.rstd, ref(e.rstd));
      }
    }
    await checks.verify();
  });

  it('backward: gx, and gWeight / gBias only when requested (column sums over rows)', async () => {
    const g = webgpu();
    const checks = new Checks();
    for (const [s, [rows, cols]] of shapes.entries()) {
      const x = layerNormInput(rows, cols, 1 + s);
      const [cx, gx] = both(x);
      const stats = cpu.layerNorm(cx, null, null, rows, cols, eps);
      const mean = both(ref(stats.mean));
      const rstd = both(ref(stats.rstd));
      const gy = both(rand(rows * cols, 70 + s, 2));
      const w = both(rand(cols, 80 + s, 2));
      for (const [hasW, wantW, wantB] of patterns(3)) {
        const label = `[${rows}, ${cols}] weight ${hasW} want ${wantW}/${wantB}`;
        const grads = { weight: wantW, bias: wantB };
        const e = cpu.layerNormBackward(gy[0], cx, mean[0], rstd[0], hasW ? w[0] : null, rows, cols, grads);
        const r = g.layerNormBackward(gy[1], gx, mean[1], rstd[1], hasW ? w[1] : null, rows, cols, grads);
        expect(r.gWeight === null, label).toBe(!wantW);
        expect(r.gBias === null, label).toBe(!wantB);
        checks.add(`gx ${label}`, r.gx, ref(e.gx));
        if (r.gWeight && e.gWeight) checks.add(`gWeight ${label}`, r.gWeight, ref(e.gWeight));
        if (r.gBias && e.gBias) checks.add(`gBias ${label}`, r.gBias, ref(e.gBias));
      }
    }
    await checks.verify();
  });

  it('empty shapes: no rows gives zero parameter gradients, no columns NaN statistics', async () => {
    const g = webgpu();
    const r = g.layerNormBackward(g.upload(new Float32Array(0)), g.upload(new Float32Array(0)), g.upload(new Float32Array(0)), g.upload(new Float32Array(0)), null, 0, 5, { weight: true, bias: true });
    const [gw, gb] = await read(r.gWeight!, r.gBias!);
    expect(Array.from(gw)).toEqual([0, 0, 0, 0, 0]);
    expect(Array.from(gb)).toEqual([0, 0, 0, 0, 0]);
    const f = g.layerNorm(g.upload(new Float32Array(0)), null, null, 3, 0, eps);
    const [mean, rstd] = await read(f.mean, f.rstd);
    expect(Array.from(mean).every(Number.isNaN) && Array.from(rstd).every(Number.isNaN)).toBe(true);
  });
});

suite('webgpu recurrent cells match the reference', () => {
  /** [batch, hidden, steps]: the step read is the last, so giRow and gradOutRow are > 0. */
  const sizes: Array<[number, number, number]> = [
    [1, 1, 2],
    [3, 5, 3],
    [4, 67, 2],
  ];

  /** Pre-activation data of scale 3 with a few saturating values (σ and tanh at ±40). */
  function preact(n: number, seed: number): Float32Array {
    const a = rand(n, seed, 3);
    for (let k = 0; k < n; k += 7) a[k] = k % 2 ? 40 : -40;
    return a;
  }

  it('LSTM forward and backward, with and without bias, every null gradient pattern', async () => {
    const g = webgpu();
    const checks = new Checks();
    for (const [s, [B, H, T]] of sizes.entries()) {
      const giRow = (T - 1) * B;
      const gi = both(preact(T * B * 4 * H, 1 + s));
      const gh = both(preact(B * 4 * H, 11 + s));
      const bias = both(rand(4 * H, 21 + s));
      const c = both(rand(B * H, 31 + s, 2));
      let act: [DeviceBuffer, DeviceBuffer] | null = null;
      for (const hasBias of [false, true]) {
        const label = `[${B}, ${H}] bias ${hasBias}`;
        const e = cpu.lstmCell(gi[0], giRow, gh[0], hasBias ? bias[0] : null, c[0], B, H);
        const r = g.lstmCell(gi[1], giRow, gh[1], hasBias ? bias[1] : null, c[1], B, H);
        checks.add(`h ${label}`, r.h, ref(e.h));
        checks.add(`c ${label}`, r.c, ref(e.c));
        checks.add(`act ${label}`, r.act, ref(e.act));
        act = both(ref(e.act));
      }
      const gradOut = both(rand(T * B * H, 41 + s));
      const gradH = both(rand(B * H, 51 + s));
      const gradC = both(rand(B * H, 61 + s));
      for (const [o, h, cc] of patterns(3)) {
        const label = `[${B}, ${H}] gradOut ${o} gradH ${h} gradC ${cc}`;
        const args = (side: 0 | 1) => [act![side], c[side], pick(o ? gradOut : null, side), B, pick(h ? gradH : null, side), pick(cc ? gradC : null, side), B, H] as const;
        const e = cpu.lstmCellBackward(...args(0));
        const r = g.lstmCellBackward(...args(1));
        checks.add(`gGates ${label}`, r.gGates, ref(e.gGates));
        checks.add(`gc ${label}`, r.gc, ref(e.gc));
      }
    }
    await checks.verify();
  });

  it('GRU forward and backward, with and without bias, every null gradient pattern', async () => {
    const g = webgpu();
    const checks = new Checks();
    for (const [s, [B, H, T]] of sizes.entries()) {
      const giRow = (T - 1) * B;
      const gi = both(preact(T * B * 3 * H, 101 + s));
      const gh = both(preact(B * 3 * H, 111 + s));
      const bias = both(rand(3 * H, 121 + s));
      const hPrev = both(rand(B * H, 131 + s));
      let act: [DeviceBuffer, DeviceBuffer] | null = null;
      for (const hasBias of [false, true]) {
        const label = `[${B}, ${H}] bias ${hasBias}`;
        const e = cpu.gruCell(gi[0], giRow, gh[0], hasBias ? bias[0] : null, hPrev[0], B, H);
        const r = g.gruCell(gi[1], giRow, gh[1], hasBias ? bias[1] : null, hPrev[1], B, H);
        checks.add(`h ${label}`, r.h, ref(e.h));
        checks.add(`act ${label}`, r.act, ref(e.act));
        act = both(ref(e.act));
      }
      const gradOut = both(rand(T * B * H, 141 + s));
      const gradH = both(rand(B * H, 151 + s));
      const gradHDirect = both(rand(B * H, 161 + s));
      for (const [o, h, d] of patterns(3)) {
        const label = `[${B}, ${H}] gradOut ${o} gradH ${h} gradHDirect ${d}`;
        const args = (side: 0 | 1) => [act![side], hPrev[side], pick(o ? gradOut : null, side), (T - 1) * B, pick(h ? gradH : null, side), pick(d ? gradHDirect : null, side), B, H] as const;
        const e = cpu.gruCellBackward(...args(0));
        const r = g.gruCellBackward(...args(1));
        checks.add(`gGi ${label}`, r.gGi, ref(e.gGi));
        checks.add(`gGh ${label}`, r.gGh, ref(e.gGh));
        checks.add(`gh ${label}`, r.gh, ref(e.gh));
      }
    }
    await checks.verify();
  });

  it('Elman RNN (tanh, ReLU) forward and backward, with and without bias, every null gradient pattern', async () => {
    const g = webgpu();
    const checks = new Checks();
    for (const [s, [B, H, T]] of sizes.entries()) {
      const giRow = (T - 1) * B;
      const gi = both(preact(T * B * H, 201 + s));
      const gh = both(preact(B * H, 211 + s));
      const bias = both(rand(H, 221 + s));
      const gradOut = both(rand(T * B * H, 231 + s));
      const gradH = both(rand(B * H, 241 + s));
      for (const activation of ['tanh', 'relu'] as const) {
        let hOut: [DeviceBuffer, DeviceBuffer] | null = null;
        for (const hasBias of [false, true]) {
          const label = `${activation} [${B}, ${H}] bias ${hasBias}`;
          const e = ref(cpu.rnnCell(activation, gi[0], giRow, gh[0], hasBias ? bias[0] : null, B, H));
          checks.add(`h ${label}`, g.rnnCell(activation, gi[1], giRow, gh[1], hasBias ? bias[1] : null, B, H), e);
          hOut = both(e);
        }
        for (const [o, h] of patterns(2)) {
          const label = `${activation} [${B}, ${H}] gradOut ${o} gradH ${h}`;
          const e = ref(cpu.rnnCellBackward(activation, hOut![0], pick(o ? gradOut : null, 0), giRow, pick(h ? gradH : null, 0), B, H));
          checks.add(`gradient ${label}`, g.rnnCellBackward(activation, hOut![1], pick(o ? gradOut : null, 1), giRow, pick(h ? gradH : null, 1), B, H), e);
        }
      }
    }
    await checks.verify();
  });
});
