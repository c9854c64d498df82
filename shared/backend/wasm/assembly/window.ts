// AssemblyScript. Window kernels over NCHW float32 tensors: im2col / col2im and max pooling with its
// backward — the same loops as shared/backend/cpu/conv.ts, compiled to wasm.

export function im2col(x: usize, n: i32, c: i32, h: i32, w: i32, kh: i32, kw: i32, sh: i32, sw: i32, ph: i32, pw: i32, dh: i32, dw: i32, oh: i32, ow: i32, out: usize): void {
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
  if (kh == 2 && kw == 2 && sh == 2 && sw == 2 && ph == 0 && pw == 0 && dh == 1 && dw == 1) {
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

/** The common 2x2, stride-2, unpadded window: no bounds checks, four loads per output. */
function maxPool2x2(x: usize, planes: i32, h: i32, w: i32, oh: i32, ow: i32, grad: usize, out: usize): void {
  let o = 0;
  for (let p = 0; p < planes; p++) {
    const plane = p * h * w;
    for (let oy = 0; oy < oh; oy++) {
      const r0 = plane + 2 * oy * w;
      const r1 = r0 + w;
      for (let ox = 0; ox < ow; ox++) {
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
