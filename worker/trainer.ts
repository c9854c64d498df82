/**
 * A worker's model replica: built from the spec the coordinator sends, its parameters overwritten
 * from every `welcome` / full `params` message (or advanced by a compressed delta, whole or one
 * bucket at a time), and asked for the mean gradient over an assigned shard, which it sends
 * bucket by bucket as backward finishes them, compressed when the run says so.
 */

import type { Batch, Dataset } from '../shared/data/dataset.js';
import { datasetFingerprint, fingerprintDifference } from '../shared/data/fingerprint.js';
import { openDataset } from '../shared/data/registry.js';
import { taskOfLoss, type Objective } from '../shared/train/objective.js';
import type { Module } from '../shared/nn/module.js';
import { buildModel, contextLength, imageSize, isModuleSpec, parseModelSpec } from '../shared/nn/spec.js';
import { manifestDifference, modelManifest, type Manifest } from '../shared/nn/manifest.js';
import { ProtocolError } from '../shared/protocol/errors.js';
import type { AssignMessage, GradBucketMessage, GradientsMessage, ParamsMessage, WelcomeMessage } from '../shared/protocol/messages.js';
import { bucketRange, validBucketPlan } from '../shared/protocol/buckets.js';
import type { Tensor } from '../shared/tensor/tensor.js';
import { addDelta, fromWireFloat, type CompressionMode } from '../shared/protocol/wire-compressed.js';
import { fromWireFloat32, fromWireInt32, toWire, type WireTensor } from '../shared/protocol/wire-tensor.js';
import { ErrorFeedback } from './error-feedback.js';
import { backendOf, computeGradients, onHost, recordGradients, settle, type GradientTiming, type StepFigures } from '../shared/train/classify.js';
import { readAll } from '../shared/train/device-state.js';
import type { FloatArray } from '../shared/tensor/dtype.js';
import { attachGrads, detachGrads, paramSlots } from '../shared/train/params.js';
import { createOptimizer } from '../shared/optim/factory.js';
import type { Optimizer, ParamSlot } from '../shared/optim/types.js';
import { derivedSeed, Rng } from '../shared/util/random.js';

/** Refuses a tensor whose shape is not the model's (BAD_SHAPE, naming `what`). */
function checkShape(t: WireTensor, shape: readonly number[], what: string): void {
  if (t.shape.length !== shape.length || t.shape.some((d, k) => d !== shape[k])) throw new ProtocolError('BAD_SHAPE', `${what}: shape [${t.shape.join(', ')}] differs from the model's [${shape.join(', ')}]`);
}

/** What computing one assignment took, for the worker's metrics. */
export interface ShardReport extends GradientTiming {
  readonly samples: number;
  loss: number;
  /** Gradients to wire tensors, the frame's encoding and the hand-off to the socket. */
  encodeSeconds: number;
}

/** What decides which samples an index names: the dataset string and how it is opened. */
function datasetKey(welcome: WelcomeMessage): string {
  return JSON.stringify([welcome.dataset, welcome.datasetOptions?.labelColumn ?? null, objectiveOf(welcome).loss]);
}

/** The run's loss, from the welcome (absent: cross-entropy with its label smoothing). */
function objectiveOf(welcome: WelcomeMessage): Objective {
  return welcome.objective ?? { loss: 'cross-entropy', labelSmoothing: welcome.labelSmoothing };
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
  /** The first parameter of each gradient bucket (one bucket: whole-gradient messages). */
  private bucketStarts: number[] = [0];
  private bucketOfParam: Int32Array = new Int32Array(0);
  private readonly paramIndex: Map<Tensor, number>;
  /**
   * The next version's parameters as their buckets arrive: applied together once every bucket
   * has come, so a shard assigned meanwhile (a copy, or a redo of this version) still computes
   * with the version it names.
   */
  private staged: { version: number; arrived: Set<number>; values: Float32Array[]; buffers: readonly WireTensor[] | null } = { version: -1, arrived: new Set(), values: [], buffers: null };
  private readonly contextLength: number | undefined;
  /** images: datasets: the side the model reads (its [C, S, S] input). */
  private readonly imageSize: number | undefined;
  /** The run's --compress mode, from the welcome. */
  readonly compression: CompressionMode;
  /** Compressed gradients with their residuals (null: gradients go as float32). */
  private readonly uplink: ErrorFeedback | null;
  /** A delta's decoded values, per parameter: all are checked before any is applied. */
  private readonly deltaScratch: Float32Array[];
  /** Local updates (--sync-every): the inner optimizer's settings, from the welcome (null: synchronous). */
  private localSettings: WelcomeMessage['local'] | null = null;
  /** The inner optimizer, its state kept from one assignment to the next (a welcome resets it). */
  private inner: Optimizer | null = null;
  private innerSlots: ParamSlot[] | null = null;
  /** The parameters before an assignment's inner steps, and the change they made (reused). */
  private readonly localStart: Float32Array[] = [];
  private readonly localDelta: Float32Array[] = [];
  /** Whether the model lives on a device backend (WebGPU): then compute() is computeOnDevice(). */
  readonly onDevice: boolean;
  /** The parameters' and buffers' values on the host (on a host backend, their storage itself). */
  private readonly hostParams: Float32Array[];
  private readonly hostBuffers: Float32Array[];

  constructor(private welcome: WelcomeMessage, private readonly dataDir: string | undefined, workerSeed: number) {
    const spec = parseModelSpec(welcome.model, 'model spec from the coordinator');
    this.specJson = JSON.stringify(spec);
    // Initial values are replaced by the coordinator's right away; dropout's streams are
    // reseeded for every shard (see compute()).
    this.model = buildModel(spec, new Rng(workerSeed), { numClasses: welcome.numClasses }).model;
    this.contextLength = contextLength(spec);
    this.imageSize = imageSize(spec);
    this.params = this.model.namedParameters();
    this.paramIndex = new Map(this.params.map(([, p], i) => [p, i]));
    this.compression = welcome.compression;
    const lengths = this.params.map(([, p]) => p.shape.reduce((a, b) => a * b, 1));
    this.uplink = welcome.compression === 'none' ? null : new ErrorFeedback(welcome.compression, lengths);
    this.deltaScratch = welcome.compression === 'none' ? [] : lengths.map((n) => new Float32Array(n));
    this.version = welcome.version;
    // On a device backend the replica's values live in host mirrors, written to the device when a
    // version is complete; on the host the mirrors ARE the tensors' storage.
    const first = this.params[0]?.[1];
    this.onDevice = first !== undefined && !onHost(first);
    this.hostParams = this.params.map(([, p]) => (this.onDevice ? new Float32Array(p.size) : (p.dataSync() as Float32Array)));
    this.hostBuffers = this.model.namedBuffers().map(([, b]) => (this.onDevice ? new Float32Array(b.size) : (b.dataSync() as Float32Array)));
    this.welcomed(welcome);
  }

  /** Writes the host mirrors of the parameters to the device (nothing to do on a host backend). */
  private pushParams(): void {
    if (!this.onDevice) return;
    this.params.forEach(([, p], i) => p.backend.write(p.buffer, this.hostParams[i]));
  }

  /** Resets the model's buffers to the version's (every shard starts from them). */
  private resetBuffers(): void {
    this.model.namedBuffers().forEach(([, b], i) => {
      if (this.onDevice) b.backend.write(b.buffer, this.bufferStart[i]);
      else (b.dataSync() as Float32Array).set(this.bufferStart[i]);
    });
  }

  /** The parameters as this replica holds them, by name (copies). */
  parameters(): Map<string, Float32Array> {
    return new Map(this.params.map(([name], i) => [name, this.hostParams[i].slice()]));
  }

  /** Decodes (and so validates) the tensors of a delta for parameters start, start + 1, ... before any is applied. */
  private decodeDelta(tensors: readonly WireTensor[], start: number): Float32Array[] {
    return tensors.map((t, j) => {
      const [name, p] = this.params[start + j];
      checkShape(t, p.shape, `parameter ${name}`);
      return fromWireFloat(t, `parameter delta ${name}`, this.compression, this.deltaScratch[start + j] ?? new Float32Array(0));
    });
  }

  /** Takes a welcome's parameters and bucket plan (a new replica's, or a rejoin's). */
  welcomed(welcome: WelcomeMessage): void {
    this.checkManifest(welcome);
    // A rejoin (perhaps to a restarted coordinator): its seed, smoothing and dataset from now on.
    if (datasetKey(welcome) !== datasetKey(this.welcome)) this.dataset = null;
    this.welcome = welcome;
    this.checkDataset(welcome);
    const plan = welcome.buckets && welcome.buckets.length > 1 ? [...welcome.buckets] : [0];
    const problem = validBucketPlan(plan, this.params.length);
    if (problem) throw new ProtocolError('BAD_MESSAGE', `welcome: ${problem}`);
    this.bucketStarts = plan;
    this.bucketOfParam = new Int32Array(this.params.length);
    plan.forEach((start, k) => this.bucketOfParam.fill(k, start));
    this.staged.arrived.clear();
    this.staged.version = -1;
    this.localSettings = welcome.local ?? null;
    this.inner = null;
    this.load(welcome.params, welcome.version, welcome.buffers);
    // A new session: error feedback starts afresh.
    this.uplink?.reset();
  }

  /**
   * Refuses to compute for a coordinator whose model differs from the one built here (the
   * welcome names and shapes every parameter and buffer): a module file other than the
   * coordinator's would otherwise have its gradients summed into the wrong tensors.
   */
  private checkManifest(welcome: WelcomeMessage): void {
    const there: Manifest = {
      parameters: welcome.params.map((t, i) => ({ name: welcome.paramNames?.[i] ?? this.params[i]?.[0] ?? `#${i}`, shape: t.shape })),
      buffers: (welcome.buffers ?? []).map((t, i) => ({ name: welcome.bufferNames?.[i] ?? this.model.namedBuffers()[i]?.[0] ?? `#${i}`, shape: t.shape })),
    };
    const difference = manifestDifference(modelManifest(this.model), there, 'here', "at the coordinator");
    if (difference) {
      const spec = parseModelSpec(welcome.model, 'model spec from the coordinator');
      const hint = isModuleSpec(spec) ? ` (--module must be the coordinator's file, ${spec.module}, or build the same parameters)` : '';
      throw new Error(`the model built here differs from the coordinator's '${spec.name}': ${difference}${hint}`);
    }
  }

  /** A `params` message: the whole next version, or one bucket of it. */
  applyParams(msg: ParamsMessage): void {
    if (msg.bucket === undefined) {
      this.staged.arrived.clear();
      if (!msg.delta) return this.load(msg.params, msg.version, msg.buffers);
      if (msg.version !== this.version + 1) throw new ProtocolError('STALE_STEP', `a parameter delta for version ${msg.version}, this worker holds version ${this.version} (a delta applies to the version before it)`);
      if (msg.params.length !== this.params.length) throw new ProtocolError('BAD_SHAPE', `expected ${this.params.length} parameter tensors, got ${msg.params.length}`);
      const decoded = this.decodeDelta(msg.params, 0);
      this.loadBuffers(msg.buffers ?? []);
      decoded.forEach((d, i) => addDelta(this.hostParams[i], d));
      this.pushParams();
      this.version = msg.version;
      return;
    }
    const count = this.bucketStarts.length;
    if (count <= 1 || msg.bucket >= count) throw new ProtocolError('BAD_MESSAGE', `parameters for bucket ${msg.bucket}; this run has ${count === 1 ? 'no buckets' : `buckets 0..${count - 1}`}`);
    if (msg.version !== this.version + 1) throw new ProtocolError('STALE_STEP', `parameter bucket for version ${msg.version}, this worker holds version ${this.version}`);
    const st = this.staged;
    if (st.version !== msg.version) {
      st.version = msg.version;
      st.arrived.clear();
      st.buffers = null;
    }
    const { start, end } = bucketRange(this.bucketStarts, this.params.length, msg.bucket);
    if (msg.params.length !== end - start) throw new ProtocolError('BAD_SHAPE', `bucket ${msg.bucket} has ${end - start} parameter tensors, got ${msg.params.length}`);
    if (msg.delta) {
      // The bucket's next values are the version held plus the delta, staged until the version is whole.
      this.decodeDelta(msg.params, start).forEach((d, j) => {
        const held = this.hostParams[start + j];
        const next = st.values[start + j]?.length === held.length ? st.values[start + j] : new Float32Array(held.length);
        next.set(held);
        addDelta(next, d);
        st.values[start + j] = next;
      });
    } else {
      msg.params.forEach((t, j) => {
        const [name, p] = this.params[start + j];
        checkShape(t, p.shape, `parameter ${name}`);
        st.values[start + j] = fromWireFloat32(t, `parameter ${name}`, st.values[start + j]);
      });
    }
    st.arrived.add(msg.bucket);
    if (msg.buffers) st.buffers = msg.buffers;
    if (st.arrived.size < count) return;
    this.loadBuffers(st.buffers ?? []);
    this.hostParams.forEach((values, i) => values.set(st.values[i]));
    this.pushParams();
    this.version = msg.version;
    st.arrived.clear();
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
      checkShape(t, p.shape, `parameter ${name}`);
      fromWireFloat32(t, `parameter ${name}`, this.hostParams[i]);
    });
    this.pushParams();
    this.version = version;
  }

  private loadBuffers(buffers: readonly WireTensor[]): void {
    const own = this.model.namedBuffers();
    if (buffers.length !== own.length) throw new ProtocolError('BAD_SHAPE', `expected ${own.length} buffer tensors, got ${buffers.length}`);
    buffers.forEach((t, i) => {
      const [name, b] = own[i];
      checkShape(t, b.shape, `buffer ${name}`);
      fromWireFloat32(t, `buffer ${name}`, this.hostBuffers[i]);
    });
    this.bufferStart = this.hostBuffers.map((values) => Float32Array.from(values));
  }

  /**
   * Local updates: the shard cut into `lrs.length` contiguous pieces, one inner step of the inner
   * optimizer on each (its mean gradient, the piece's own dropout masks), then the parameter
   * change Δ = θ_start − θ_end, scaled by samples / batchSize so that the coordinator's sum over
   * shards is the sample-weighted mean change. The replica goes back to θ_start: the coordinator's
   * parameters are the ones that count (and, with compression, the ones deltas apply to).
   */
  private computeLocal(assign: AssignMessage, lrs: readonly number[], batch: Batch, started: number, send: (message: GradientsMessage) => void): ShardReport {
    const settings = this.localSettings;
    if (!settings) throw new ProtocolError('BAD_MESSAGE', 'an assignment with local steps in a run without --sync-every');
    if (lrs.length > settings.syncEvery) throw new ProtocolError('BAD_MESSAGE', `${lrs.length} local steps in one assignment; the run syncs every ${settings.syncEvery}`);
    if (this.onDevice) throw new ProtocolError('BAD_MESSAGE', '--sync-every (local updates) runs on CPU workers only; this worker computes on webgpu');
    const model = this.model;
    const slots = (this.innerSlots ??= paramSlots(model));
    const backend = backendOf(model);
    this.inner ??= createOptimizer(settings.optimizer, slots, {
      lr: settings.lr,
      ...(settings.momentum !== undefined ? { momentum: settings.momentum } : {}),
      ...(settings.nesterov !== undefined ? { nesterov: settings.nesterov } : {}),
      ...(settings.weightDecay !== undefined ? { weightDecay: settings.weightDecay } : {}),
      vectorOps: backend.vectorOps?.(),
    });
    const inner = this.inner;
    slots.forEach((slot, i) => (this.localStart[i]?.length === slot.value.length ? this.localStart[i] : (this.localStart[i] = new Float32Array(slot.value.length))).set(slot.value));
    this.resetBuffers();
    const indices = fromWireInt32(assign.indices, 'indices');
    const n = batch.size;
    const perSample = batch.x.length / Math.max(n, 1);
    const labels = batch.y.length / Math.max(n, 1);
    const report: ShardReport = { samples: n, loss: NaN, forwardSeconds: 0, backwardSeconds: 0, encodeSeconds: 0 };
    const timing: GradientTiming = { forwardSeconds: 0, backwardSeconds: 0 };
    let lossSum = 0;
    let correct = 0;
    let offset = 0;
    for (let j = 0; j < lrs.length; j++) {
      const size = Math.floor(n / lrs.length) + (j < n % lrs.length ? 1 : 0);
      if (size === 0) continue;
      const targetsPer = batch.targets ? batch.targets.length / Math.max(n, 1) : 0;
      const piece = {
        x: batch.x.subarray(offset * perSample, (offset + size) * perSample),
        y: batch.y.subarray(offset * labels, (offset + size) * labels),
        ...(batch.targets ? { targets: batch.targets.subarray(offset * targetsPer, (offset + size) * targetsPer) } : {}),
        size,
        sampleShape: [...batch.sampleShape],
      };
      model.reseedRandomStreams(derivedSeed(this.welcome.seed, assign.step + j, indices[offset] ?? 0));
      backend.scope(() => {
        const r = computeGradients(model, piece, objectiveOf(this.welcome), size, timing);
        attachGrads(model, slots);
        inner.lr = lrs[j];
        inner.step();
        lossSum += r.loss * size;
        correct += r.correct;
      });
      detachGrads(model, slots);
      report.forwardSeconds += timing.forwardSeconds;
      report.backwardSeconds += timing.backwardSeconds;
      offset += size;
    }
    const encodeStart = performance.now();
    const scale = n / assign.batchSize;
    const grads = slots.map((slot, i) => {
      const start = this.localStart[i];
      const d = this.localDelta[i]?.length === start.length ? this.localDelta[i] : (this.localDelta[i] = new Float32Array(start.length));
      const v = slot.value;
      for (let k = 0; k < d.length; k++) d[k] = (start[k] - v[k]) * scale;
      v.set(start);
      const shape = this.params[i][1].shape;
      return this.uplink ? this.uplink.encode(i, d, shape) : toWire(d, shape);
    });
    report.loss = lossSum / Math.max(n, 1);
    send({
      type: 'gradients',
      step: assign.step,
      version: assign.version,
      shard: assign.shard,
      samples: n,
      loss: report.loss,
      correct,
      computeMs: performance.now() - started,
      grads,
      buffers: model.namedBuffers().map(([, b]) => toWire(b.dataSync() as Float32Array, b.shape)),
    });
    report.encodeSeconds = (performance.now() - encodeStart) / 1000;
    return report;
  }

  private localDataset(): Dataset {
    if (!this.dataset) {
      const { dataset, datasetOptions } = this.welcome;
      this.dataset = openDataset(dataset, { dataDir: this.dataDir, contextLength: this.contextLength, imageSize: this.imageSize, labelColumn: datasetOptions?.labelColumn, task: taskOfLoss(objectiveOf(this.welcome).loss) }).train;
    }
    return this.dataset;
  }

  /**
   * A worker that reads its samples itself must read the coordinator's: its copy's fingerprint
   * (size, shape, classes, a hash of spread samples) must equal the welcome's, or it refuses to
   * compute (the indices it is sent would name other samples here).
   */
  private checkDataset(welcome: WelcomeMessage): void {
    if (welcome.sendSamples || welcome.datasetCheck === undefined) return;
    let ds: Dataset;
    try {
      ds = this.localDataset();
    } catch (err) {
      throw new Error(`cannot read the run's dataset ${welcome.dataset} here: ${(err as Error).message}`);
    }
    const difference = fingerprintDifference(datasetFingerprint(ds), welcome.datasetCheck);
    if (difference) throw new Error(`the dataset ${welcome.dataset} read here differs from the coordinator's: ${difference} (give this worker the same data, or leave --dataset out so that samples come over the wire)`);
  }


  /** The shard's samples: sent with the assignment, or read from the local dataset by index. */
  private shardBatch(assign: AssignMessage): Batch {
    let batch;
    if (assign.samples) {
      const x = fromWireFloat32(assign.samples.x, 'samples.x');
      const y = fromWireInt32(assign.samples.y, 'samples.y');
      const [n, ...sampleShape] = assign.samples.x.shape;
      if (assign.samples.y.shape[0] !== n) throw new ProtocolError('BAD_SHAPE', `samples.x has ${n} samples, samples.y ${assign.samples.y.shape[0]}`);
      const t = assign.samples.t;
      if (t !== undefined && t.shape[0] !== n) throw new ProtocolError('BAD_SHAPE', `samples.x has ${n} samples, samples.t ${t.shape[0]}`);
      batch = t === undefined ? { x, y, size: n, sampleShape } : { x, y, targets: fromWireFloat32(t, 'samples.t'), size: n, sampleShape };
    } else {
      const indices = fromWireInt32(assign.indices, 'indices');
      const ds = this.localDataset();
      for (const i of indices) if (i < 0 || i >= ds.size) throw new ProtocolError('BAD_SHAPE', `sample index ${i} is outside the dataset (${ds.size} samples)`);
      batch = ds.batch(indices, this.buffers);
    }
    if (batch.size > assign.batchSize) throw new ProtocolError('BAD_MESSAGE', `a shard of ${batch.size} samples in a step of ${assign.batchSize}`);
    return batch;
  }

  /** Seeds dropout for the shard. */
  private reseedFor(assign: AssignMessage): void {
    // Dropout masks come from the run's seed, the step and the piece's first sample, not from
    // this worker: whichever worker computes a piece (a redone or speculatively copied shard)
    // gets the same bits, so timing never enters a --balance even run.
    this.model.reseedRandomStreams(derivedSeed(this.welcome.seed, assign.step, assign.indices.data.byteLength >= 4 ? new DataView(assign.indices.data.buffer, assign.indices.data.byteOffset, 4).getInt32(0, true) : 0));
  }

  /**
   * Backward's leaf hook for bucketed gradients: `onBucket(k, start, end)` as soon as backward has
   * finished every parameter of bucket k, except for the bucket finished last, whose number
   * `last()` gives afterwards (it travels in the `gradients` message that ends the shard). With
   * one bucket there is no hook and `last()` is -1.
   */
  private bucketHook(onBucket: (k: number, start: number, end: number) => void): { readonly onLeafReady?: (leaf: Tensor) => void; last(): number } {
    const count = this.bucketStarts.length;
    let last = -1;
    if (count <= 1) return { last: () => last };
    const remaining = this.bucketStarts.map((_, k) => bucketRange(this.bucketStarts, this.params.length, k)).map((r) => r.end - r.start);
    let ready = 0;
    const onLeafReady = (leaf: Tensor): void => {
      const i = this.paramIndex.get(leaf);
      if (i === undefined) return;
      const k = this.bucketOfParam[i];
      if (--remaining[k] > 0) return;
      if (++ready === count) {
        last = k;
        return;
      }
      const { start, end } = bucketRange(this.bucketStarts, this.params.length, k);
      onBucket(k, start, end);
    };
    return { onLeafReady, last: () => last };
  }

  /**
   * `compute` for a model on a device (WebGPU): forward and backward are recorded on the device;
   * each gradient bucket is read back as soon as backward has recorded its last parameter (the
   * read submits what is recorded, so the device computes the rest of backward while the bucket
   * travels), and the shard's figures, the last bucket and the buffers in one final read. Only
   * the gradients, the loss, the correct count and the buffers come back to the host.
   */
  async computeOnDevice(assign: AssignMessage, send: (message: GradientsMessage) => void, sendBucket?: (message: GradBucketMessage) => void): Promise<ShardReport> {
    if (assign.version !== this.version) {
      throw new ProtocolError('STALE_STEP', `assignment for parameter version ${assign.version}, this worker holds version ${this.version}`);
    }
    if (assign.local) throw new ProtocolError('BAD_MESSAGE', '--sync-every (local updates) runs on CPU workers only; this worker computes on webgpu');
    const started = performance.now();
    const batch = this.shardBatch(assign);
    this.reseedFor(assign);
    this.resetBuffers();
    const backend = backendOf(this.model);
    const report: ShardReport = { samples: batch.size, loss: NaN, forwardSeconds: 0, backwardSeconds: 0, encodeSeconds: 0 };
    const encode = (start: number, values: readonly FloatArray[]): WireTensor[] =>
      values.map((v, j) => {
        const g = v as Float32Array;
        const shape = this.params[start + j][1].shape;
        return this.uplink ? this.uplink.encode(start + j, g, shape) : toWire(g, shape);
      });
    const gradBuffers = (start: number, end: number) =>
      this.params.slice(start, end).map(([name, p]) => {
        if (!p.grad) throw new Error(`internal: no gradient for ${name}`);
        return p.grad.buffer;
      });
    const count = this.bucketStarts.length;
    // Buckets are sent in the order backward finished them, and all before the final message.
    let sent: Promise<void> = Promise.resolve();
    const hook = this.bucketHook((k, start, end) => {
      const read = readAll(backend, gradBuffers(start, end));
      sent = Promise.all([sent, read]).then(([, values]) => {
        const t0 = performance.now();
        sendBucket?.({ type: 'gradbucket', step: assign.step, version: assign.version, shard: assign.shard, bucket: k, grads: encode(start, values) });
        report.encodeSeconds += (performance.now() - t0) / 1000;
      });
    });
    let figures: StepFigures | null = null;
    let finalGrads: Promise<FloatArray[]> = Promise.resolve([]);
    let buffers: Promise<FloatArray[]> = Promise.resolve([]);
    let range = { start: 0, end: this.params.length };
    backend.scope(() => {
      figures = recordGradients(this.model, batch, objectiveOf(this.welcome), assign.batchSize, report, hook.onLeafReady ? { onLeafReady: hook.onLeafReady } : undefined);
      const last = hook.last();
      if (count > 1 && last < 0) throw new Error('internal: backward did not finish every gradient bucket');
      if (count > 1) range = bucketRange(this.bucketStarts, this.params.length, last);
      finalGrads = readAll(backend, gradBuffers(range.start, range.end));
      buffers = readAll(backend, this.model.namedBuffers().map(([, b]) => b.buffer));
    });
    this.model.zeroGrad();
    if (figures === null) throw new Error('internal: no step figures');
    const [result, grads, bufferValues] = await Promise.all([settle(figures), finalGrads, buffers, sent]);
    const encodeStart = performance.now();
    report.loss = result.loss;
    const own = this.model.namedBuffers();
    send({
      type: 'gradients',
      step: assign.step,
      version: assign.version,
      shard: assign.shard,
      samples: result.size,
      loss: result.loss,
      correct: result.correct,
      computeMs: performance.now() - started,
      grads: encode(range.start, grads),
      ...(count > 1 ? { bucket: hook.last() } : {}),
      buffers: bufferValues.map((v, i) => toWire(v as Float32Array, own[i][1].shape)),
    });
    report.encodeSeconds += (performance.now() - encodeStart) / 1000;
    return report;
  }

  /**
   * Computes the shard's gradient and hands the message that carries it to `send` (which must
   * encode it at once: the gradient memory is recycled when this returns).
   */
  compute(assign: AssignMessage, send: (message: GradientsMessage) => void, sendBucket?: (message: GradBucketMessage) => void): ShardReport {
    if (assign.version !== this.version) {
      throw new ProtocolError('STALE_STEP', `assignment for parameter version ${assign.version}, this worker holds version ${this.version}`);
    }
    const started = performance.now();
    const batch = this.shardBatch(assign);
    if (assign.local) return this.computeLocal(assign, assign.local.lrs, batch, started, send);
    this.reseedFor(assign);
    const input = batch;
    this.resetBuffers();
    const report: ShardReport = { samples: batch.size, loss: NaN, forwardSeconds: 0, backwardSeconds: 0, encodeSeconds: 0 };
    const wireGrads = (start: number, end: number): WireTensor[] =>
      this.params.slice(start, end).map(([name, p], j) => {
        if (!p.grad) throw new Error(`internal: no gradient for ${name}`);
        const g = p.grad.dataSync() as Float32Array;
        return this.uplink ? this.uplink.encode(start + j, g, p.shape) : toWire(g, p.shape);
      });
    const count = this.bucketStarts.length;
    let bucketSeconds = 0;
    // Each bucket leaves as soon as backward has finished all its parameters.
    const hook = this.bucketHook((k, start, end) => {
      const t0 = performance.now();
      sendBucket?.({ type: 'gradbucket', step: assign.step, version: assign.version, shard: assign.shard, bucket: k, grads: wireGrads(start, end) });
      bucketSeconds += (performance.now() - t0) / 1000;
    });
    backendOf(this.model).scope(() => {
      const result = computeGradients(this.model, input, objectiveOf(this.welcome), assign.batchSize, report, hook.onLeafReady ? { onLeafReady: hook.onLeafReady } : undefined);
      const encodeStart = performance.now();
      report.loss = result.loss;
      const last = hook.last();
      if (count > 1 && last < 0) throw new Error('internal: backward did not finish every gradient bucket');
      const range = count > 1 ? bucketRange(this.bucketStarts, this.params.length, last) : { start: 0, end: this.params.length };
      const grads = wireGrads(range.start, range.end);
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
        ...(count > 1 ? { bucket: hook.last() } : {}),
        buffers: this.model.namedBuffers().map(([, b]) => toWire(b.dataSync() as Float32Array, b.shape)),
      });
      report.encodeSeconds = (performance.now() - encodeStart) / 1000 + bucketSeconds;
    });
    this.model.zeroGrad();
    return report;
  }
}
