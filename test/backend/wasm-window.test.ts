// The wasm window kernels (assembly/window.ts) against the reference CPU kernels, bit for bit: im2col,
// col2im, max pooling forward and backward, on odd sizes, strides, paddings and dilations. Both the
// SIMD fast paths (3x3 / stride 1 / padding 1 im2col and col2im; 2x2 / stride 2 pooling, with
// widths that leave a scalar tail) and the general loops are covered. Pooling inputs are drawn from
// a few values, −0 and +0 among them, so ties are frequent and the first-maximum rule is exercised
// (NaN inputs are left out: the reference and the wasm loops may pick different NaN positions).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpu } from '../../shared/backend/cpu/cpu-backend.js';
import { WasmBackend } from '../../shared/backend/wasm/wasm-backend.js';
import { windowSpec, type WindowSpec } from '../../shared/backend/conv-spec.js';
import type { Shape } from '../../shared/tensor/shape.js';
import { Rng } from '../../shared/util/random.js';

let wasm: WasmBackend;
beforeAll(async () => {
  wasm = await WasmBackend.create({ flavour: 'simd' });
});
afterAll(async () => {
  await wasm.close();
});

function randn(n: number, rng: Rng): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

/** Values with many ties, both zeros included. */
function ties(n: number, rng: Rng): Float32Array {
  const pick = [-2, -1, -0, 0, 1, 2, 0.5];
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = pick[rng.int(pick.length)];
  return a;
}

/** The first index whose bits differ, or -1. */
function firstBitDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return 0;
  const fa = Float32Array.from(a);
  const fb = Float32Array.from(b);
  const ua = new Uint32Array(fa.buffer);
  const ub = new Uint32Array(fb.buffer);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return i;
  return -1;
}

type Op = 'im2col' | 'col2im' | 'maxPool2d' | 'maxPool2dBackward';

function run(op: Op, shape: Shape, spec: WindowSpec, rng: Rng): { actual: ArrayLike<number>; expected: ArrayLike<number> } {
  const [n, c, h, w] = shape;
  const pool = op === 'maxPool2d' || op === 'maxPool2dBackward';
  const x = pool ? ties(n * c * h * w, rng) : randn(n * c * h * w, rng);
  const cols = randn(n * spec.oh * spec.ow * c * spec.kh * spec.kw, rng);
  const g = randn(n * c * spec.oh * spec.ow, rng);
  const on = (be: typeof cpu | WasmBackend): ArrayLike<number> => {
    const X = be.upload(op === 'col2im' ? cols : x);
    const out =
      op === 'im2col' ? be.im2col(X, shape, spec) : op === 'col2im' ? be.col2im(X, shape, spec) : op === 'maxPool2d' ? be.maxPool2d(X, shape, spec) : be.maxPool2dBackward(X, shape, be.upload(g), spec);
    return Float32Array.from(be.readSync(out)!);
  };
  return { expected: on(cpu), actual: wasm.scope(() => on(wasm)) };
}

function check(op: Op, shape: Shape, spec: WindowSpec, rng: Rng): void {
  const { actual, expected } = run(op, shape, spec, rng);
  const at = firstBitDifference(actual, expected);
  if (at >= 0) {
    const s = `${spec.kh}x${spec.kw} stride ${spec.sh}x${spec.sw} pad ${spec.ph}x${spec.pw} dil ${spec.dh}x${spec.dw}`;
    expect.fail(`${op} [${shape.join(',')}] ${s}: element ${at} is ${actual[at]}, expected ${expected[at]}`);
  }
}

describe('wasm window kernels equal the reference bit for bit', () => {
  it('im2col and col2im, 3x3 stride 1 padding 1 (the SIMD path) on every small size', () => {
    const rng = new Rng(21);
    for (const [n, c] of [[1, 1], [2, 3], [1, 5]]) {
      for (const h of [1, 2, 3, 6]) {
        for (const w of [1, 2, 3, 4, 5, 7, 13]) {
          const spec = windowSpec(h, w, [3, 3], [1, 1], [1, 1], [1, 1]);
          check('im2col', [n, c, h, w], spec, rng);
          check('col2im', [n, c, h, w], spec, rng);
        }
      }
    }
  });
  it('im2col and col2im, general windows: odd kernels, strides, paddings, dilations', () => {
    const rng = new Rng(22);
    for (let trial = 0; trial < 60; trial++) {
      const kh = 1 + rng.int(4);
      const kw = 1 + rng.int(4);
      const sh = 1 + rng.int(3);
      const sw = 1 + rng.int(3);
      const ph = rng.int(3);
      const pw = rng.int(3);
      const dh = 1 + rng.int(2);
      const dw = 1 + rng.int(2);
      const h = dh * (kh - 1) + 1 + rng.int(9);
      const w = dw * (kw - 1) + 1 + rng.int(9);
      const shape: Shape = [1 + rng.int(2), 1 + rng.int(4), h, w];
      const spec = windowSpec(h, w, [kh, kw], [sh, sw], [ph, pw], [dh, dw]);
      check('im2col', shape, spec, rng);
      check('col2im', shape, spec, rng);
    }
    // Near misses of the fast path: 3x3 with stride 2, padding 0 or 2, dilation 2.
    for (const [s, p, d] of [[2, 1, 1], [1, 0, 1], [1, 2, 1], [1, 1, 2]]) {
      const spec = windowSpec(9, 11, [3, 3], [s, s], [p, p], [d, d]);
      check('im2col', [2, 3, 9, 11], spec, rng);
      check('col2im', [2, 3, 9, 11], spec, rng);
    }
  });
  it('max pooling 2x2 stride 2 (the SIMD path, with scalar tails and odd sizes), forward and backward', () => {
    const rng = new Rng(23);
    for (const h of [2, 3, 4, 7]) {
      for (const w of [2, 3, 7, 8, 9, 10, 16, 17, 19]) {
        const spec = windowSpec(h, w, [2, 2], [2, 2], [0, 0], [1, 1]);
        check('maxPool2d', [2, 3, h, w], spec, rng);
        check('maxPool2dBackward', [2, 3, h, w], spec, rng);
      }
    }
  });
  it('max pooling, general windows: strides, paddings, dilations', () => {
    const rng = new Rng(24);
    for (let trial = 0; trial < 40; trial++) {
      const kh = 1 + rng.int(3);
      const kw = 1 + rng.int(3);
      const ph = rng.int(Math.floor(kh / 2) + 1);
      const pw = rng.int(Math.floor(kw / 2) + 1);
      const dh = 1 + rng.int(2);
      const dw = 1 + rng.int(2);
      const h = dh * (kh - 1) + 1 + rng.int(8);
      const w = dw * (kw - 1) + 1 + rng.int(8);
      const spec = windowSpec(h, w, [kh, kw], [1 + rng.int(3), 1 + rng.int(3)], [ph, pw], [dh, dw]);
      check('maxPool2d', [1 + rng.int(2), 1 + rng.int(3), h, w], spec, rng);
      check('maxPool2dBackward', [1 + rng.int(2), 1 + rng.int(3), h, w], spec, rng);
    }
  });
});
