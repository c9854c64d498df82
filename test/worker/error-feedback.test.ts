// Error feedback: over many shards, what the coordinator decodes plus the residual left equals the
// sum of the gradients (nothing is lost), and the residual stays within one quantisation step.
import { describe, expect, it } from 'vitest';
import { fromWireFloat } from '../../shared/protocol/index.js';
import { Rng } from '../../shared/util/random.js';
import { ErrorFeedback } from '../../worker/error-feedback.js';

describe('error feedback', () => {
  for (const mode of ['fp16', 'bf16', 'int8'] as const) {
    it(`${mode}: the decoded gradients sum to the true ones to within the last residual`, () => {
      const rng = new Rng(5);
      const n = 500;
      const ef = new ErrorFeedback(mode, [n]);
      const truth = new Float64Array(n);
      const received = new Float64Array(n);
      const decoded = new Float32Array(n);
      let maxStep = 0;
      for (let step = 0; step < 200; step++) {
        // Gradients of mixed magnitudes, some far below the tensor's largest (int8 rounds those to 0).
        const g = Float32Array.from({ length: n }, (_, i) => (rng.uniform() * 2 - 1) * (i % 10 === 0 ? 1e-2 : 1e-5));
        for (let i = 0; i < n; i++) truth[i] += g[i];
        const t = ef.encode(0, g, [n]);
        if (t.scale !== undefined) maxStep = Math.max(maxStep, t.scale);
        fromWireFloat(t, 'g', mode, decoded);
        for (let i = 0; i < n; i++) received[i] += decoded[i];
      }
      // Without feedback int8 would deliver none of the 1e-5 entries; with it every entry arrives.
      const small = Array.from({ length: n }, (_, i) => i).filter((i) => i % 10 !== 0);
      const bound = mode === 'int8' ? maxStep : 1e-6;
      for (const i of small) expect(Math.abs(received[i] - truth[i])).toBeLessThanOrEqual(bound);
      const relative = Math.sqrt(small.reduce((s, i) => s + (received[i] - truth[i]) ** 2, 0) / small.reduce((s, i) => s + truth[i] ** 2, 0));
      expect(relative).toBeLessThan(mode === 'int8' ? 0.5 : 1e-2);
    });
  }
  it('an fp16 overflow goes out as Inf (refused downstream) and leaves no NaN behind', () => {
    const ef = new ErrorFeedback('fp16', [2]);
    const decoded = new Float32Array(2);
    fromWireFloat(ef.encode(0, Float32Array.from([1e6, 1]), [2]), 'g', 'fp16', decoded);
    expect(decoded[0]).toBe(Infinity);
    fromWireFloat(ef.encode(0, Float32Array.from([1, 1]), [2]), 'g', 'fp16', decoded);
    expect([...decoded]).toEqual([1, 1]);
  });
});
