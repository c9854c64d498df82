// The compressed downlink: a worker that applies every delta holds exactly the coordinator's view,
// bit for bit, and the view follows the exact parameters to within one quantisation step.
import { describe, expect, it } from 'vitest';
import { addDelta, decodeMessage, encodeMessage, fromWireFloat, type Message } from '../../shared/protocol/index.js';
import { Rng } from '../../shared/util/random.js';
import { ParamView } from '../../coordinator/downlink.js';

describe('parameter view and deltas', () => {
  for (const mode of ['fp16', 'bf16', 'int8'] as const) {
    it(`${mode}: 300 optimizer-like steps; the worker's copy equals the view bit for bit`, () => {
      const rng = new Rng(9);
      const shapes = [[40, 3], [40]];
      const params = shapes.map((s) => Float32Array.from({ length: s.reduce((a, b) => a * b, 1) }, () => rng.normal() * 0.1));
      const view = new ParamView(mode, params);
      const worker = params.map((p) => p.slice());
      const scratch = params.map((p) => new Float32Array(p.length));
      for (let step = 0; step < 300; step++) {
        for (const p of params) for (let i = 0; i < p.length; i++) p[i] -= 1e-3 * Math.sign(rng.normal()) * (i % 7 === 0 ? 1 : 0.01);
        // Through a real frame, as a worker receives it.
        const frame = encodeMessage({ type: 'params', version: step + 1, delta: true, params: view.delta(params, shapes) });
        const m = decodeMessage(frame) as Extract<Message, { type: 'params' }>;
        m.params.forEach((t, i) => addDelta(worker[i], fromWireFloat(t, 'p', mode, scratch[i])));
      }
      view.current.forEach((v, i) => expect(Buffer.from(worker[i].buffer).equals(Buffer.from(v.buffer))).toBe(true));
      // The view lags the parameters by what is still owed: at most about one step of the format.
      for (let k = 0; k < params.length; k++) {
        const p = params[k];
        const v = view.current[k];
        const largest = p.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
        for (let i = 0; i < p.length; i++) expect(Math.abs(p[i] - v[i])).toBeLessThanOrEqual(mode === 'int8' ? 2e-3 : largest * 2 ** -7);
      }
    });
  }
});
