/** The geometry of a 2-D window op (convolution, pooling) over an NCHW tensor. */

export interface WindowSpec {
  readonly kh: number;
  readonly kw: number;
  readonly sh: number;
  readonly sw: number;
  readonly ph: number;
  readonly pw: number;
  readonly dh: number;
  readonly dw: number;
  /** Output height and width. */
  readonly oh: number;
  readonly ow: number;
}

/** out = floor((in + 2·pad − dilation·(kernel − 1) − 1) / stride) + 1, as in PyTorch. */
export function windowSpec(h: number, w: number, kernel: readonly [number, number], stride: readonly [number, number], padding: readonly [number, number], dilation: readonly [number, number]): WindowSpec {
  const [kh, kw] = kernel;
  const [sh, sw] = stride;
  const [ph, pw] = padding;
  const [dh, dw] = dilation;
  for (const [name, v, min] of [['kernel', kh, 1], ['kernel', kw, 1], ['stride', sh, 1], ['stride', sw, 1], ['padding', ph, 0], ['padding', pw, 0], ['dilation', dh, 1], ['dilation', dw, 1]] as const) {
    if (!Number.isInteger(v) || v < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${v}`);
  }
  const oh = Math.floor((h + 2 * ph - dh * (kh - 1) - 1) / sh) + 1;
  const ow = Math.floor((w + 2 * pw - dw * (kw - 1) - 1) / sw) + 1;
  if (oh <= 0 || ow <= 0) {
    throw new RangeError(`a ${kh}x${kw} window (stride ${sh}x${sw}, padding ${ph}x${pw}, dilation ${dh}x${dw}) does not fit a ${h}x${w} input`);
  }
  return { kh, kw, sh, sw, ph, pw, dh, dw, oh, ow };
}
