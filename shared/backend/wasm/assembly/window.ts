// AssemblyScript. Window kernels over NCHW float32 tensors: im2col / col2im and max pooling with its
// backward — the same loops as shared/backend/cpu/conv.ts, compiled to wasm, plus SIMD fast paths
// for the common windows (3x3 stride 1 padding 1 im2col / col2im, 2x2 stride 2 pooling). The fast
// paths give the same bits as the general loops: they visit the same elements in the same order,
// only several at a time.

/** True for the 3x3, stride-1, padding-1, undilated window of "same" convolutions. */
// @ts-ignore: decorator
@inline function isSame3x3(h: i32, w: i32, kh: i32, kw: i32, sh: i32, sw: i32, ph: i32, pw: i32, dh: i32, dw: i32, oh: i32, ow: i32): bool {
  return kh == 3 && kw == 3 && sh == 1 && sw == 1 && ph == 1 && pw == 1 && dh == 1 && dw == 1 && oh == h && ow == w;
}

/**
 * im2col for the 3x3 / stride 1 / padding 1 window. An output row (one position oy, ox) is c
 * groups of 3 kernel rows of 3 floats. Away from the left and right edges (1 <= ox <= w − 3) each
 * kernel row is one 4-float load x[iy][ox−1 .. ox+2] and one 4-float store at its slot: the 4th
 * float spills into the next slot, which the next store overwrites (the last slot of a row is
 * followed by the next row, and the very last row of the output is an edge position, so no store
 * leaves the buffer; no load leaves the image row). Edge positions take the bounds-checked loop.
 */
function im2col3x3(x: usize, n: i32, c: i32, h: i32, w: i32, out: usize): void {
  let o = out;
  const zero = f32x4.splat(0);
  const planeBytes = <usize>(h * w) << 2;
  const rowBytes = <usize>w << 2;
  for (let b = 0; b < n; b++) {
    const image = x + <usize>(b * c) * planeBytes;
    for (let oy = 0; oy < h; oy++) {
      const up = oy >= 1; // kernel row 0 (iy = oy − 1) inside the image
      const down = oy + 1 < h; // kernel row 2 (iy = oy + 1) inside the image
      for (let ox = 0; ox < w; ox++) {
        if (ox >= 1 && ox + 3 <= w) {
          // The middle kernel row starts at x[oy][ox − 1]; the other two are a row above and below.
          let s = image + (<usize>(oy * w + ox - 1) << 2);
          for (let ch = 0; ch < c; ch++) {
            v128.store(o, up ? v128.load(s - rowBytes) : zero);
            v128.store(o, v128.load(s), 12);
            v128.store(o, down ? v128.load(s + rowBytes) : zero, 24);
            o += 36;
            s += planeBytes;
          }
          continue;
        }
        let plane = image;
        for (let ch = 0; ch < c; ch++) {
          for (let ky = 0; ky < 3; ky++) {
            const iy = oy - 1 + ky;
            const rowOk = iy >= 0 && iy < h;
            for (let kx = 0; kx < 3; kx++) {
              const ix = ox - 1 + kx;
              store<f32>(o + (<usize>kx << 2), rowOk && ix >= 0 && ix < w ? load<f32>(plane + (<usize>(iy * w + ix) << 2)) : 0);
            }
            o += 12;
          }
          plane += planeBytes;
        }
      }
    }
  }
}

/**
 * col2im for the 3x3 / stride 1 / padding 1 window, the adjoint of im2col3x3, in the general loop's
 * order (so each image element receives its terms in the same order: same bits). Away from the
 * edges a kernel row is one 4-float read-add-write of x[iy][ox−1 .. ox+2], the 4th lane adding
 * −0.0, which leaves every float (−0, NaN included) unchanged. No load of `cols` leaves the buffer:
 * the 4-float read of the last slot of a row reads the next row, and the last row is an edge.
 */
function col2im3x3(cols: usize, n: i32, c: i32, h: i32, w: i32, out: usize): void {
  let o = cols;
  const planeBytes = <usize>(h * w) << 2;
  const rowBytes = <usize>w << 2;
  for (let b = 0; b < n; b++) {
    const image = out + <usize>(b * c) * planeBytes;
    for (let oy = 0; oy < h; oy++) {
      const up = oy >= 1;
      const down = oy + 1 < h;
      for (let ox = 0; ox < w; ox++) {
        if (ox >= 1 && ox + 3 <= w) {
          let d = image + (<usize>(oy * w + ox - 1) << 2);
          for (let ch = 0; ch < c; ch++) {
            if (up) v128.store(d - rowBytes, f32x4.add(v128.load(d - rowBytes), f32x4.replace_lane(v128.load(o), 3, -0.0)));
            v128.store(d, f32x4.add(v128.load(d), f32x4.replace_lane(v128.load(o, 12), 3, -0.0)));
            if (down) v128.store(d + rowBytes, f32x4.add(v128.load(d + rowBytes), f32x4.replace_lane(v128.load(o, 24), 3, -0.0)));
            o += 36;
            d += planeBytes;
          }
          continue;
        }
        let plane = image;
        for (let ch = 0; ch < c; ch++) {
          for (let ky = 0; ky < 3; ky++) {
            const iy = oy - 1 + ky;
            if (iy >= 0 && iy < h) {
              for (let kx = 0; kx < 3; kx++) {
                const ix = ox - 1 + kx;
                if (ix >= 0 && ix < w) {
                  const at = plane + (<usize>(iy * w + ix) << 2);
                  store<f32>(at, load<f32>(at) + load<f32>(o + (<usize>kx << 2)));
                }
              }
            }
            o += 12;
          }
          plane += planeBytes;
        }
      }
    }
  }
}

export function im2col(x: usize, n: i32, c: i32, h: i32, w: i32, kh: i32, kw: i32, sh: i32, sw: i32, ph: i32, pw: i32, dh: i32, dw: i32, oh: i32, ow: i32, out: usize): void {
  if (isSame3x3(h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)) {
    im2col3x3(x, n, c, h, w, out);
    return;
  }
  let o = out;
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        for (let ch = 0; ch < c; ch++) {
          const plane = x + (<usize>((b * c + ch) * h * w) << 2);
          for (let ky = 0; ky < kh; ky++) {
            const iy = oy * sh - ph + ky * dh;
            if (iy < 0 || iy >= h) {
              memory.fill(o, 0, <usize>kw << 2);
              o += <usize>kw << 2;
              continue;
            }
            const src = plane + (<usize>(iy * w) << 2);
            const x0 = ox * sw - pw;
            if (dw == 1 && x0 >= 0 && x0 + kw <= w) {
              // A whole kernel row inside the image: a short contiguous copy (a call to
              // memory.copy costs more than a few loads for the usual 3- or 5-wide kernels).
              const from = src + (<usize>x0 << 2);
              if (kw <= 8) for (let kx = 0; kx < kw; kx++) store<f32>(o + (<usize>kx << 2), load<f32>(from + (<usize>kx << 2)));
              else memory.copy(o, from, <usize>kw << 2);
              o += <usize>kw << 2;
              continue;
            }
            for (let kx = 0; kx < kw; kx++) {
              const ix = x0 + kx * dw;
              store<f32>(o, ix >= 0 && ix < w ? load<f32>(src + (<usize>ix << 2)) : 0);
              o += 4;
            }
          }
        }
      }
    }
  }
}

export function col2im(cols: usize, n: i32, c: i32, h: i32, w: i32, kh: i32, kw: i32, sh: i32, sw: i32, ph: i32, pw: i32, dh: i32, dw: i32, oh: i32, ow: i32, out: usize): void {
  memory.fill(out, 0, <usize>(n * c * h * w) << 2);
  if (isSame3x3(h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)) {
    col2im3x3(cols, n, c, h, w, out);
    return;
  }
  let o = cols;
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        for (let ch = 0; ch < c; ch++) {
          const plane = out + (<usize>((b * c + ch) * h * w) << 2);
          for (let ky = 0; ky < kh; ky++) {
            const iy = oy * sh - ph + ky * dh;
            if (iy < 0 || iy >= h) {
              o += <usize>kw << 2;
              continue;
            }
            const dst = plane + (<usize>(iy * w) << 2);
            for (let kx = 0; kx < kw; kx++) {
              const ix = ox * sw - pw + kx * dw;
              if (ix >= 0 && ix < w) {
                const at = dst + (<usize>ix << 2);
                store<f32>(at, load<f32>(at) + load<f32>(o));
              }
              o += 4;
            }
          }
        }
      }
    }
  }
}

/** Max pooling; with grad != 0, the backward: scatters grad to each window's first maximum. */
export function maxPool(x: usize, planes: i32, h: i32, w: i32, kh: i32, kw: i32, sh: i32, sw: i32, ph: i32, pw: i32, dh: i32, dw: i32, oh: i32, ow: i32, grad: usize, out: usize): void {
  if (grad) memory.fill(out, 0, <usize>(planes * h * w) << 2);
  if (kh == 2 && kw == 2 && sh == 2 && sw == 2 && ph == 0 && pw == 0 && dh == 1 && dw == 1 && 2 * oh <= h && 2 * ow <= w) {
    maxPool2x2(x, planes, h, w, oh, ow, grad, out);
    return;
  }
  let o = 0;
  for (let p = 0; p < planes; p++) {
    const plane = <usize>(p * h * w);
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        let best: f32 = -Infinity;
        let at = -1;
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * sh - ph + ky * dh;
          if (iy < 0 || iy >= h) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ix = ox * sw - pw + kx * dw;
            if (ix < 0 || ix >= w) continue;
            const idx = <i32>plane + iy * w + ix;
            const v = load<f32>(x + (<usize>idx << 2));
            if (v > best || at < 0 || isNaN(v)) {
              best = v;
              at = idx;
            }
          }
        }
        if (grad) {
          if (at >= 0) {
            const dst = out + (<usize>at << 2);
            store<f32>(dst, load<f32>(dst) + load<f32>(grad + (<usize>o << 2)));
          }
        } else store<f32>(out + (<usize>o << 2), best);
        o++;
      }
    }
  }
}

/**
 * One step of the first-maximum rule on 4 windows at once, as a lane mask: candidate v replaces
 * best where v > best, or where v is NaN and best is not (once best is NaN it stays).
 * bitselect moves bits, so best holds an input's exact bits, as the scalar loop does.
 */
// @ts-ignore: decorator
@inline function firstMax(best: v128, v: v128): v128 {
  return v128.or(f32x4.gt(v, best), v128.and(f32x4.ne(v, v), f32x4.eq(best, best)));
}

/**
 * The common 2x2, stride-2, unpadded window (2·oh <= h, 2·ow <= w). Four windows at a time: 8
 * floats of each of the two input rows, split into even and odd columns by shuffles, give the
 * four window positions as 4 vectors; firstMax picks each window's value and position. Forward
 * stores the 4 maxima; backward writes both input rows of the 4 windows at once, the gradient
 * (+0.0 added first, as the scalar 0 + g) at each window's position and +0 elsewhere — windows do
 * not overlap, so that equals the zero fill plus one addition. The last ow % 4 windows are scalar.
 */
function maxPool2x2(x: usize, planes: i32, h: i32, w: i32, oh: i32, ow: i32, grad: usize, out: usize): void {
  let o = 0;
  const zero = f32x4.splat(0);
  for (let p = 0; p < planes; p++) {
    const plane = p * h * w;
    for (let oy = 0; oy < oh; oy++) {
      const r0 = plane + 2 * oy * w;
      const r1 = r0 + w;
      let ox = 0;
      for (; ox + 4 <= ow; ox += 4) {
        const s0 = x + (<usize>(r0 + 2 * ox) << 2);
        const s1 = x + (<usize>(r1 + 2 * ox) << 2);
        const a0 = v128.load(s0), a1 = v128.load(s0, 16);
        const b0 = v128.load(s1), b1 = v128.load(s1, 16);
        const v0 = i32x4.shuffle(a0, a1, 0, 2, 4, 6);
        const v1 = i32x4.shuffle(a0, a1, 1, 3, 5, 7);
        const v2 = i32x4.shuffle(b0, b1, 0, 2, 4, 6);
        const v3 = i32x4.shuffle(b0, b1, 1, 3, 5, 7);
        let best = v0;
        let which = i32x4.splat(0);
        let take = firstMax(best, v1);
        best = v128.bitselect(v1, best, take);
        which = v128.bitselect(i32x4.splat(1), which, take);
        take = firstMax(best, v2);
        best = v128.bitselect(v2, best, take);
        which = v128.bitselect(i32x4.splat(2), which, take);
        take = firstMax(best, v3);
        best = v128.bitselect(v3, best, take);
        which = v128.bitselect(i32x4.splat(3), which, take);
        if (grad) {
          const g = f32x4.add(zero, v128.load(grad + (<usize>(o + ox) << 2)));
          const g0 = v128.and(g, i32x4.eq(which, i32x4.splat(0)));
          const g1 = v128.and(g, i32x4.eq(which, i32x4.splat(1)));
          const g2 = v128.and(g, i32x4.eq(which, i32x4.splat(2)));
          const g3 = v128.and(g, i32x4.eq(which, i32x4.splat(3)));
          const d0 = out + (<usize>(r0 + 2 * ox) << 2);
          const d1 = out + (<usize>(r1 + 2 * ox) << 2);
          v128.store(d0, i32x4.shuffle(g0, g1, 0, 4, 1, 5));
          v128.store(d0, i32x4.shuffle(g0, g1, 2, 6, 3, 7), 16);
          v128.store(d1, i32x4.shuffle(g2, g3, 0, 4, 1, 5));
          v128.store(d1, i32x4.shuffle(g2, g3, 2, 6, 3, 7), 16);
        } else v128.store(out + (<usize>(o + ox) << 2), best);
      }
      o += ox;
      for (; ox < ow; ox++) {
        const i0 = r0 + 2 * ox;
        const i1 = r1 + 2 * ox;
        // The first maximum in row-major window order, as PyTorch (NaN wins, as in the general path).
        let at = i0;
        let best = load<f32>(x + (<usize>i0 << 2));
        if (!isNaN(best)) {
          const v1 = load<f32>(x + (<usize>(i0 + 1) << 2));
          if (v1 > best || isNaN(v1)) { best = v1; at = i0 + 1; }
        }
        if (!isNaN(best)) {
          const v2 = load<f32>(x + (<usize>i1 << 2));
          if (v2 > best || isNaN(v2)) { best = v2; at = i1; }
        }
        if (!isNaN(best)) {
          const v3 = load<f32>(x + (<usize>(i1 + 1) << 2));
          if (v3 > best || isNaN(v3)) { best = v3; at = i1 + 1; }
        }
        if (grad) {
          const dst = out + (<usize>at << 2);
          store<f32>(dst, load<f32>(dst) + load<f32>(grad + (<usize>o << 2)));
        } else store<f32>(out + (<usize>o << 2), best);
        o++;
      }
    }
  }
}
