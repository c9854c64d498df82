/**
 * A whole recurrent layer (LSTM, GRU, Elman RNN) over a sequence as ONE recorded autograd node,
 * the way cuDNN runs it: per time step, forward is one matrix product h·W_hhᵀ plus one fused cell
 * kernel (RecurrentKernels, shared/backend/fused-recurrent.ts), and backward — back-propagation
 * through time, run by this node's rule itself — is one fused cell-backward kernel plus one
 * product dGates·W_hh. The weight gradient is ONE product over all steps after the loop, instead
 * of T small ones.
 *
 * The input half of the gates, W_ih·x + b_ih for every step, does not depend on the recurrence:
 * the caller computes it beforehand with one `linear` over all T·B rows (time-major) and passes it
 * as `inputProj`; its gradient flows back through that `linear` as usual.
 *
 * The node's value packs all results into one tensor (autograd nodes have one output):
 *   rows 0 … T·B − 1: h_1 … h_T (time-major: step t is rows t·B … t·B + B − 1); LSTM only:
 *   rows T·B … T·B + B − 1: c_T.
 * `output`, `hT` and `cT` are `narrow`s of it, so gradients reaching any of them meet in the
 * packed gradient that the rule reads.
 */

import type { DeviceBuffer, MatmulSpec } from '../backend/backend.js';
import type { RnnActivation } from '../backend/fused-recurrent.js';
import { formatShape, type Shape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { narrow } from './layout.js';
import { checkCompatible, record } from './record.js';

export type RecurrentCellMode = 'rnn_tanh' | 'rnn_relu' | 'lstm' | 'gru';

export interface RecurrentLayerResult {
  /** h_1 … h_T, time-major: [T·B, H]. */
  readonly output: Tensor;
  /** h_T [B, H]. */
  readonly hT: Tensor;
  /** c_T [B, H] (LSTM), else null. */
  readonly cT: Tensor | null;
}

const GATES: Record<RecurrentCellMode, number> = { rnn_tanh: 1, rnn_relu: 1, lstm: 4, gru: 3 };

function spec(m: number, n: number, k: number, transA: boolean, transB: boolean): MatmulSpec {
  return { batch: 1, m, n, k, transA, transB, aBroadcast: false, bBroadcast: false };
}

function checkShape(what: string, t: Tensor, want: Shape): void {
  if (t.rank !== want.length || t.shape.some((d, i) => d !== want[i])) {
    throw new RangeError(`recurrentLayer: ${what} must be ${formatShape(want)}, got ${formatShape(t.shape)}`);
  }
}

/**
 * Runs one recurrent layer over T steps.
 *   mode       'lstm' (gates i, f, g, o), 'gru' (r, z, n), 'rnn_tanh' or 'rnn_relu'; G gates
 *   inputProj  [T·B, G·H]  W_ih·x_t + b_ih for every step, time-major
 *   weightHh   [G·H, H]    W_hh (PyTorch layout)
 *   biasHh     [G·H]       b_hh, or null
 *   h0         [B, H]      the initial hidden state (may require grad: truncated BPTT, or a
 *                          state computed by another op)
 *   c0         [B, H]      the initial cell state, LSTM only (null otherwise)
 * The step math is PyTorch's (written out with each kernel in shared/backend/fused-recurrent.ts).
 */
export function recurrentLayer(
  mode: RecurrentCellMode,
  inputProj: Tensor,
  weightHh: Tensor,
  biasHh: Tensor | null,
  h0: Tensor,
  c0: Tensor | null,
): RecurrentLayerResult {
  const G = GATES[mode];
  if (G === undefined) throw new RangeError(`recurrentLayer: unknown mode '${String(mode)}'`);
  const lstm = mode === 'lstm';
  const gru = mode === 'gru';
  const activation: RnnActivation = mode === 'rnn_relu' ? 'relu' : 'tanh';
  if (weightHh.rank !== 2) throw new RangeError(`recurrentLayer: weightHh must be [${G}·hidden, hidden], got ${formatShape(weightHh.shape)}`);
  const H = weightHh.shape[1];
  const GH = G * H;
  checkShape('weightHh', weightHh, [GH, H]);
  if (h0.rank !== 2) throw new RangeError(`recurrentLayer: h0 must be [batch, ${H}], got ${formatShape(h0.shape)}`);
  const B = h0.shape[0];
  checkShape('h0', h0, [B, H]);
  if (inputProj.rank !== 2 || inputProj.shape[1] !== GH || B === 0 || inputProj.shape[0] % B !== 0 || inputProj.shape[0] === 0) {
    throw new RangeError(`recurrentLayer: inputProj must be [steps·${B}, ${GH}] with at least one step, got ${formatShape(inputProj.shape)}`);
  }
  const T = inputProj.shape[0] / B;
  if (biasHh) checkShape('biasHh', biasHh, [GH]);
  if (lstm && c0 === null) throw new RangeError('recurrentLayer: lstm needs c0');
  if (!lstm && c0 !== null) throw new RangeError(`recurrentLayer: ${mode} has no cell state, c0 must be null`);
  if (c0) checkShape('c0', c0, [B, H]);
  const inputs: Tensor[] = [inputProj, weightHh];
  const iBias = biasHh ? inputs.push(biasHh) - 1 : -1;
  const iH0 = inputs.push(h0) - 1;
  const iC0 = c0 ? inputs.push(c0) - 1 : -1;
  checkCompatible('recurrentLayer', inputs);

  const backend = inputProj.backend;
  const gi = inputProj.buffer;
  const w = weightHh.buffer;
  const bias = biasHh ? biasHh.buffer : null;
  const stateShape: Shape = [B, H];

  // ---- forward ------------------------------------------------------------------------------
  // hs[t] = h_t (hs[0] = h0), cs[t] = c_t; acts[t] = what step t's backward needs.
  //   gh_t = h_{t−1}·W_hhᵀ                          (one product, [B, G·H])
  //   (h_t, c_t, act_t) = cell(inputProj rows of t, gh_t, b_hh, h_{t−1} / c_{t−1})
  const hs: DeviceBuffer[] = [h0.buffer];
  const cs: DeviceBuffer[] = c0 ? [c0.buffer] : [];
  const acts: DeviceBuffer[] = [];
  // W_hh is transposed once for the whole sequence: every step's product then reads a plain
  // [H, G·H] operand instead of re-packing a transposed one T times (the same products, the same
  // summation order, so the same bits).
  const wT = T > 1 ? backend.permute(w, [GH, H], [1, 0]) : null;
  const forwardSpec = spec(B, GH, H, false, wT === null);
  for (let t = 0; t < T; t++) {
    const gh = backend.matmul(hs[t], wT ?? w, forwardSpec);
    if (lstm) {
      const r = backend.lstmCell(gi, t * B, gh, bias, cs[t], B, H);
      hs.push(r.h);
      cs.push(r.c);
      acts.push(r.act);
    } else if (gru) {
      const r = backend.gruCell(gi, t * B, gh, bias, hs[t], B, H);
      hs.push(r.h);
      acts.push(r.act);
    } else {
      hs.push(backend.rnnCell(activation, gi, t * B, gh, bias, B, H));
    }
  }
  const parts = lstm ? [...hs.slice(1), cs[T]] : hs.slice(1);
  const packedShape: Shape = [parts.length * B, H];
  const packed = backend.concat(parts, parts.map(() => stateShape), 0);

  // ---- backward (BPTT) ----------------------------------------------------------------------
  // g = dL/d(packed): rows of step t hold dL/dh_t from the output (and from hT, at t = T − 1);
  // the LSTM's last B rows hold dL/dc_T. Walking t = T − 1 … 0, with dh_t = g_t + (recurrent part):
  //   LSTM:  (dA_t, dc_{t−1}) = lstmCellBackward(act_t, c_{t−1}, g_t, dh^rec_t, dc_t)
  //          dh^rec_{t−1} = dA_t·W_hh
  //   GRU:   (dGi_t, dGh_t, dh^dir_{t−1}) = gruCellBackward(act_t, h_{t−1}, g_t, dh^rec_t, dh^dir_t)
  //          dh^rec_{t−1} = dGh_t·W_hh          (dh_{t−1} = g_{t−1} + dh^rec_{t−1} + dh^dir_{t−1})
  //   RNN:   dA_t = rnnCellBackward(h_t, g_t, dh^rec_t);  dh^rec_{t−1} = dA_t·W_hh
  // Then, with the per-step gate gradients stacked time-major into [T·B, G·H] (dGh = dA for LSTM
  // and RNN, where the input and recurrent projections enter the gates as a plain sum):
  //   d inputProj = dGi (GRU) or dA            (row block t is step t's rows, as in the forward)
  //   dW_hh = dGhᵀ·H_prev,  H_prev = [h_0; …; h_{T−1}]  [T·B, H]: ONE product over all steps
  //   db_hh = Σ_rows dGh
  //   dh_0  = dh^rec_0 (+ dh^dir_0 for GRU),   dc_0 = the last dc_{t−1}
  return packResult(
    lstm,
    T,
    B,
    record('recurrentLayer', inputs, packed, packedShape, (g, needed) => {
      const gOut = g.buffer;
      const needH0 = needed[iH0];
      const backSpec = spec(B, H, GH, false, false);
      let gradC: DeviceBuffer | null = lstm ? backend.slice(gOut, packedShape, [T * B, 0], [B, H]) : null;
      let gradH: DeviceBuffer | null = null;
      let gradDirect: DeviceBuffer | null = null;
      const dGh: DeviceBuffer[] = new Array<DeviceBuffer>(T);
      const dGi: DeviceBuffer[] = gru ? new Array<DeviceBuffer>(T) : [];
      for (let t = T - 1; t >= 0; t--) {
        if (lstm) {
          const r = backend.lstmCellBackward(acts[t], cs[t], gOut, t * B, gradH, gradC, B, H);
          dGh[t] = r.gGates;
          gradC = r.gc;
        } else if (gru) {
          const r = backend.gruCellBackward(acts[t], hs[t], gOut, t * B, gradH, gradDirect, B, H);
          dGi[t] = r.gGi;
          dGh[t] = r.gGh;
          gradDirect = r.gh;
        } else {
          dGh[t] = backend.rnnCellBackward(activation, hs[t + 1], gOut, t * B, gradH, B, H);
        }
        // The product into h_{t−1}; at t = 0 only when h0 wants a gradient.
        gradH = t > 0 || needH0 ? backend.matmul(dGh[t], w, backSpec) : null;
      }

      const rowsShape: Shape = [T * B, GH];
      const stepShapes = dGh.map(() => [B, GH] as Shape);
      const needX = needed[0];
      const needW = needed[1];
      const needB = iBias >= 0 && needed[iBias];
      const dGhAll = needW || needB || (needX && !gru) ? backend.concat(dGh, stepShapes, 0) : null;
      const grads: Array<Tensor | null> = inputs.map(() => null);
      if (needX) grads[0] = new Tensor(backend, gru ? backend.concat(dGi, stepShapes, 0) : dGhAll!, rowsShape);
      if (needW) {
        const hPrev = backend.concat(hs.slice(0, T), hs.slice(0, T).map(() => stateShape), 0);
        grads[1] = new Tensor(backend, backend.matmul(dGhAll!, hPrev, spec(GH, H, T * B, true, false)), [GH, H]);
      }
      if (needB) grads[iBias] = new Tensor(backend, backend.reduce('sum', dGhAll!, rowsShape, [0]), [GH]);
      if (needH0) {
        const dh0 = gru ? backend.binary('add', gradH!, stateShape, gradDirect!, stateShape, stateShape) : gradH!;
        grads[iH0] = new Tensor(backend, dh0, stateShape);
      }
      if (iC0 >= 0 && needed[iC0]) grads[iC0] = new Tensor(backend, gradC!, stateShape);
      return grads;
    }),
  );
}

/** output, hT (and cT) as views — `narrow`s — of the packed node value. */
function packResult(lstm: boolean, T: number, B: number, packed: Tensor): RecurrentLayerResult {
  const output = lstm ? narrow(packed, 0, 0, T * B) : packed;
  const hT = narrow(packed, 0, (T - 1) * B, B);
  const cT = lstm ? narrow(packed, 0, T * B, B) : null;
  return { output, hT, cT };
}
