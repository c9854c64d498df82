/**
 * The `cnn` preset (shared/nn/presets.ts: conv 32@3x3 pad 1 - ReLU - maxpool 2 - conv 64@3x3 pad 1
 * - ReLU - maxpool 2 - fc 128 - ReLU - fc 10) written in TensorFlow.js, for the webgpu suite's
 * comparison with tfjs-webgpu (bench/webgpu-steps.ts). Written the way tf.layers' conv2d and dense
 * layers compute (tf.fused.conv2d and tf.fused.matMul with bias and ReLU, tf.maxPool), as trainable
 * variables for the step of bench/mlp-step.ts (`createTfjsAsyncStep(data, backend, options,
 * cnnTfjsModel)`), and started from meshgrad's seeded initial weights, moved to tfjs's layouts
 * (NHWC activations, [kh, kw, in, out] filters, [in, out] dense kernels; the first dense kernel's
 * rows reordered from meshgrad's channel-major flatten to tfjs's channel-last one), so that the
 * first loss equals meshgrad's: the check that both build the same network.
 */

import * as tf from '@tensorflow/tfjs';
import { cpu } from '../shared/backend/cpu/cpu-backend.js';
import { defaultBackend, setDefaultBackend } from '../shared/backend/default.js';
import { PRESETS } from '../shared/nn/presets.js';
import { buildModel } from '../shared/nn/spec.js';
import type { Tensor } from '../shared/tensor/tensor.js';
import { Rng } from '../shared/util/random.js';
import type { TfjsModel } from './mlp-step.js';

/** The preset's input: one 28x28 channel, NHWC for tfjs. */
const INPUT_SHAPE = [28, 28, 1] as const;
const CLASSES = 10;

/** meshgrad's [out, in, kh, kw] convolution weight as tfjs's [kh, kw, in, out] filter. */
function filterOf(w: Tensor): tf.Tensor4D {
  const [o, c, kh, kw] = w.shape;
  const src = w.dataSync();
  const dst = new Float32Array(src.length);
  for (let oi = 0; oi < o; oi++)
    for (let ci = 0; ci < c; ci++)
      for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) dst[((i * kw + j) * c + ci) * o + oi] = src[((oi * c + ci) * kh + i) * kw + j];
  return tf.tensor4d(dst, [kh, kw, c, o]);
}

/**
 * meshgrad's [out, in] linear weight as tfjs's [in, out] kernel. With `channels`, the input is a
 * flattened [channels, h, w] map (meshgrad's order) that tfjs flattens as [h, w, channels].
 */
function kernelOf(w: Tensor, channels = 1): tf.Tensor2D {
  const [o, n] = w.shape;
  const spatial = n / channels;
  const src = w.dataSync();
  const dst = new Float32Array(src.length);
  for (let oi = 0; oi < o; oi++)
    for (let c = 0; c < channels; c++) for (let p = 0; p < spatial; p++) dst[(p * channels + c) * o + oi] = src[oi * n + c * spatial + p];
  return tf.tensor2d(dst, [n, o]);
}

/** The cnn preset in tfjs, from meshgrad's initial weights for `seed` (Fashion-MNIST: 784 values a sample). */
export function cnnTfjsModel(seed: number, inputSize: number): TfjsModel {
  if (inputSize !== INPUT_SHAPE[0] * INPUT_SHAPE[1] * INPUT_SHAPE[2]) throw new RangeError(`the cnn preset takes 28x28 images, got ${inputSize} values a sample`);
  const previous = defaultBackend();
  setDefaultBackend(cpu);
  let params: Array<[string, Tensor]>;
  try {
    params = buildModel(PRESETS.cnn, new Rng(seed), { numClasses: CLASSES }).model.namedParameters();
  } finally {
    setDefaultBackend(previous);
  }
  const shapes = params.map(([, p]) => p.rank).join(',');
  if (params.length !== 8 || shapes !== '4,1,4,1,2,1,2,1') throw new Error(`internal: unexpected cnn parameters ${params.map(([n]) => n).join(', ')}`);
  const [[, w1], [, b1], [, w2], [, b2], [, w3], [, b3], [, w4], [, b4]] = params;
  const variable = (t: tf.Tensor, name: string): tf.Variable => tf.variable(t, true, `cnn/${name}`);
  const bias = (b: Tensor, name: string): tf.Variable => variable(tf.tensor1d(Float32Array.from(b.dataSync())), name);
  const conv1 = { w: variable(filterOf(w1), 'conv1/kernel'), b: bias(b1, 'conv1/bias') };
  const conv2 = { w: variable(filterOf(w2), 'conv2/kernel'), b: bias(b2, 'conv2/bias') };
  const fc1 = { w: variable(kernelOf(w3, w2.shape[0]), 'fc1/kernel'), b: bias(b3, 'fc1/bias') };
  const fc2 = { w: variable(kernelOf(w4), 'fc2/kernel'), b: bias(b4, 'fc2/bias') };
  return {
    inputShape: INPUT_SHAPE,
    variables: [conv1.w, conv1.b, conv2.w, conv2.b, fc1.w, fc1.b, fc2.w, fc2.b],
    lossOf(x: tf.Tensor, y: tf.Tensor2D): tf.Scalar {
      const conv = (h: tf.Tensor4D, l: { w: tf.Variable; b: tf.Variable }): tf.Tensor4D =>
        tf.maxPool(tf.fused.conv2d({ x: h, filter: l.w as tf.Tensor4D, strides: 1, pad: 'same', bias: l.b, activation: 'relu' }), 2, 2, 'valid');
      const features = conv(conv(x as tf.Tensor4D, conv1), conv2);
      const flat = tf.reshape(features, [features.shape[0], -1]) as tf.Tensor2D;
      const hidden = tf.fused.matMul({ a: flat, b: fc1.w as tf.Tensor2D, bias: fc1.b, activation: 'relu' });
      const logits = tf.fused.matMul({ a: hidden, b: fc2.w as tf.Tensor2D, bias: fc2.b });
      return tf.losses.softmaxCrossEntropy(y, logits);
    },
  };
}
