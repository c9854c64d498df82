/**
 * A worker's model replica: built from the spec the coordinator sends, its parameters overwritten
 * from every `welcome` / full `params` message (or advanced by a compressed delta), and asked for
 * the mean gradient over an assigned shard, which it sends compressed when the run says so.
 */

import type { Dataset } from '../shared/data/dataset.js';
import { openDataset } from '../shared/data/registry.js';
import type { Module } from '../shared/nn/module.js';
import { buildModel, contextLength, parseModelSpec } from '../shared/nn/spec.js';
import { ProtocolError } from '../shared/protocol/errors.js';
import type { AssignMessage, GradientsMessage, ParamsMessage, WelcomeMessage } from '../shared/protocol/messages.js';
import { addDelta, fromWireFloat, type CompressionMode } from '../shared/protocol/wire-compressed.js';
import { fromWireFloat32, fromWireInt32, toWire, type WireTensor } from '../shared/protocol/wire-tensor.js';
import { ErrorFeedback } from './error-feedback.js';
import { backendOf, computeGradients, type GradientTiming } from '../shared/train/classify.js';
import { Rng } from '../shared/util/random.js';

/** What computing one assignment took, for the worker's metrics. */
export interface ShardReport extends GradientTiming {
  readonly samples: number;
  loss: number;
  /** Gradients to wire tensors, the frame's encoding and the hand-off to the socket. */
  encodeSeconds: number;
}

export class Replica {
  private readonly model: Module;
  private readonly params: ReturnType<Module['namedParameters']>;
  private dataset: Dataset | null = null;
  private readonly buffers = { x: new Float32Array(0), y: new Int32Array(0) };
  /**
   * The model buffers (BatchNorm's running statistics) as the coordinator sent them for this
   * version: every shard starts from them, so a worker that computes two shards of one step (one
   * reassigned to it) reports each as one update of the step's statistics, not the second on top
   * of the first.
   */
  private bufferStart: Float32Array[] = [];
  version: number;
  readonly specJson: string;
  /** The run's --compress mode, from the welcome. */
  readonly compression: CompressionMode;
  private readonly contextLength: number | undefined;
  /** Compressed gradients with their residuals (null: gradients go as float32). */
  private readonly uplink: ErrorFeedback | null;
  /** A delta's decoded values, per parameter: all are checked before any is applied. */
  private readonly deltaScratch: Float32Array[];

  constructor(private readonly welcome: WelcomeMessage, private readonly dataDir: string | undefined, workerSeed: number) {
    const spec = parseModelSpec(welcome.model, 'model spec from the coordinator');
    this.specJson = JSON.stringify(spec);
    // Initial values are replaced by the coordinator's right away; the seed only drives dropout.
    this.model = buildModel(spec, new Rng(workerSeed), { numClasses: welcome.numClasses }).model;
    this.contextLength = contextLength(spec);
    this.params = this.model.namedParameters();
    this.compression = welcome.compression;
    const lengths = this.params.map(([, p]) => p.shape.reduce((a, b) => a * b, 1));
    this.uplink = welcome.compression === 'none' ? null : new ErrorFeedback(welcome.compression, lengths);
    this.deltaScratch = welcome.compression === 'none' ? [] : lengths.map((n) => new Float32Array(n));
    this.version = welcome.version;
    this.load(welcome.params, welcome.version, welcome.buffers);
  }

  /** A new session of the same run setup: the welcome's parameters, and error feedback starts afresh. */
  rejoin(welcome: WelcomeMessage): void {
    this.load(welcome.params, welcome.version, welcome.buffers);
    this.uplink?.reset();
  }

  /** Applies a `params` message: the full parameters, or a delta on the version held. */
  update(msg: ParamsMessage): void {
    if (!msg.delta) return this.load(msg.params, msg.version, msg.buffers);
    if (msg.version !== this.version + 1) throw new ProtocolError('STALE_STEP', `a parameter delta for version ${msg.version}, this worker holds version ${this.version} (a delta applies to the version before it)`);
    if (msg.params.length !== this.params.length) throw new ProtocolError('BAD_SHAPE', `expected ${this.params.length} parameter tensors, got ${msg.params.length}`);
    // Decode (and so validate) every tensor before touching the parameters: a bad one changes nothing.
    const decoded = msg.params.map((t, i) => {
      const [name, p] = this.params[i];
      this.checkShape(t, p.shape, `parameter ${name}`);
      return fromWireFloat(t, `parameter delta ${name}`, this.compression, this.deltaScratch[i] ?? new Float32Array(0));
    });
    this.loadBuffers(msg.buffers ?? []);
    decoded.forEach((d, i) => addDelta(this.params[i][1].dataSync() as Float32Array, d));
    this.version = msg.version;
  }

  /** The parameters as this replica holds them, by name (copies). */
  parameters(): Map<string, Float32Array> {
    return new Map(this.params.map(([name, p]) => [name, (p.dataSync() as Float32Array).slice()]));
  }

  private checkShape(t: WireTensor, shape: readonly number[], what: string): void {
    if (t.shape.length !== shape.length || t.shape.some((d, k) => d !== shape[k])) throw new ProtocolError('BAD_SHAPE', `${what}: shape [${t.shape.join(', ')}] differs from the model's [${shape.join(', ')}]`);
  }

  private loadBuffers(buffers: readonly WireTensor[]): void {
    const own = this.model.namedBuffers();
    if (buffers.length !== own.length) throw new ProtocolError('BAD_SHAPE', `expected ${own.length} buffer tensors, got ${buffers.length}`);
    buffers.forEach((t, i) => {
      const [name, b] = own[i];
      this.checkShape(t, b.shape, `buffer ${name}`);
      fromWireFloat32(t, `buffer ${name}`, b.dataSync() as Float32Array);
    });
    this.bufferStart = own.map(([, b]) => Float32Array.from(b.dataSync() as Float32Array));
  }

  get parameterCount(): number {
    return this.model.parameterCount();
  }

  /** Overwrites the parameters in place from wire tensors (validated against the local shapes). */
  load(tensors: readonly WireTensor[], version: number, buffers: readonly WireTensor[] = []): void {
    this.loadBuffers(buffers);
    if (tensors.length !== this.params.length) throw new ProtocolError('BAD_SHAPE', `expected ${this.params.length} parameter tensors, got ${tensors.length}`);
    tensors.forEach((t, i) => {
      const [name, p] = this.params[i];
      if (t.shape.length !== p.shape.length || t.shape.some((d, k) => d !== p.shape[k])) {
        throw new ProtocolError('BAD_SHAPE', `parameter ${name}: shape [${t.shape.join(', ')}] differs from the model's [${p.shape.join(', ')}]`);
      }
      fromWireFloat32(t, `parameter ${name}`, p.dataSync() as Float32Array);
    });
    this.version = version;
  }

  private localDataset(): Dataset {
    if (!this.dataset) this.dataset = openDataset(this.welcome.dataset, { dataDir: this.dataDir, contextLength: this.contextLength }).train;
    return this.dataset;
  }

  /**
   * Computes the shard's gradient and hands the message that carries it to `send` (which must
   * encode it at once: the gradient memory is recycled when this returns).
   */
  compute(assign: AssignMessage, send: (message: GradientsMessage) => void): ShardReport {
    if (assign.version !== this.version) {
      throw new ProtocolError('STALE_STEP', `assignment for parameter version ${assign.version}, this worker holds version ${this.version}`);
    }
    const started = performance.now();
    let batch;
    if (assign.samples) {
      const x = fromWireFloat32(assign.samples.x, 'samples.x');
      const y = fromWireInt32(assign.samples.y, 'samples.y');
      const [n, ...sampleShape] = assign.samples.x.shape;
      if (y.length !== n) throw new ProtocolError('BAD_SHAPE', `samples.x has ${n} samples, samples.y ${y.length}`);
      batch = { x, y, size: n, sampleShape };
    } else {
      const indices = fromWireInt32(assign.indices, 'indices');
      const ds = this.localDataset();
      for (const i of indices) if (i < 0 || i >= ds.size) throw new ProtocolError('BAD_SHAPE', `sample index ${i} is outside the dataset (${ds.size} samples)`);
      batch = ds.batch(indices, this.buffers);
    }
    if (batch.size > assign.batchSize) throw new ProtocolError('BAD_MESSAGE', `a shard of ${batch.size} samples in a step of ${assign.batchSize}`);
    const input = batch;
    this.model.namedBuffers().forEach(([, b], i) => (b.dataSync() as Float32Array).set(this.bufferStart[i]));
    const report: ShardReport = { samples: batch.size, loss: NaN, forwardSeconds: 0, backwardSeconds: 0, encodeSeconds: 0 };
    backendOf(this.model).scope(() => {
      const result = computeGradients(this.model, input, this.welcome.labelSmoothing, assign.batchSize, report);
      const encodeStart = performance.now();
      report.loss = result.loss;
      const grads = this.params.map(([name, p], i) => {
        if (!p.grad) throw new Error(`internal: no gradient for ${name}`);
        const g = p.grad.dataSync() as Float32Array;
        return this.uplink ? this.uplink.encode(i, g, p.shape) : toWire(g, p.shape);
      });
      send({
        type: 'gradients',
        step: assign.step,
        version: assign.version,
        shard: assign.shard,
        samples: result.size,
        loss: result.loss,
        correct: result.correct,
        computeMs: performance.now() - started,
        grads,
        buffers: this.model.namedBuffers().map(([, b]) => toWire(b.dataSync() as Float32Array, b.shape)),
      });
      report.encodeSeconds = (performance.now() - encodeStart) / 1000;
    });
    this.model.zeroGrad();
    return report;
  }
}
