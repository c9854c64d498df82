/**
 * A meshgrad worker: joins a coordinator over WebSocket, keeps a replica of the model, and answers
 * each assignment with the gradient of its shard. When the connection is lost it reconnects with
 * capped exponential back-off and joins again (receiving the current parameters); it stops when
 * the coordinator says the run is finished, or refuses it (bad token, protocol version).
 *
 * The model runs on a compute thread (compute-thread.ts): this thread only moves frames, answers
 * heartbeats and serves /metrics, so none of them waits for a long forward/backward pass.
 */

import { availableParallelism } from 'node:os';
import WebSocket from 'ws';
import { knownDatasets } from '../shared/data/registry.js';
import { decodeMessage, encodeMessage, frameBytes } from '../shared/protocol/codec.js';
import { ProtocolError } from '../shared/protocol/errors.js';
import { PROTOCOL_VERSION, type Message } from '../shared/protocol/messages.js';
import { withFields, type Logger } from '../shared/util/log.js';
import { backoffDelay } from './backoff.js';
import { createWorkerMetrics, type WorkerMetrics } from './metrics.js';
import type { BackendName } from '../cli/backend-options.js';
import { ComputeThread } from './compute-client.js';
import { loadModelFile } from '../shared/nn/user-model.js';
import type { ShardReport } from './trainer.js';

export interface WorkerConfig {
  readonly url: string;
  readonly token: string | null;
  readonly name?: string;
  /** The compute backend (default wasm) and its intra-op threads (default: the cores available). */
  readonly backend?: BackendName;
  readonly threads?: number;
  readonly dataDir?: string;
  /**
   * A module file defining the model in code (--module): loaded (and checked) before joining; the
   * join names its model, and the replica built from it must match the coordinator's parameters.
   */
  readonly module?: string;
  /** Whether this worker may load datasets itself (otherwise samples come over the wire). */
  readonly localData: boolean;
  /** User datasets (KIND:PATH) this worker can read itself (--dataset), offered with the bundled ones. */
  readonly userDatasets?: readonly string[];
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
  /** Give up after this long without a successful join (default: never). */
  readonly giveUpAfterMs?: number;
  /**
   * How long the WebSocket opening handshake (TCP connect and HTTP upgrade) may take before the
   * attempt counts as failed and is retried (default 10 s; shortened so --give-up-after is kept).
   */
  readonly handshakeTimeoutMs?: number;
  /** Largest frame accepted from the coordinator. */
  readonly maxPayload: number;
  /**
   * The least time the compute thread may leave requests unanswered before the worker counts it
   * as stuck (default 60 s; the limit grows to 10× the longest shard seen). A stuck worker fails
   * /healthz, tells the coordinator, and exits non-zero instead of rejoining.
   */
  readonly computeStallMs?: number;
  /** Test-only fault injection handed to the compute thread (MESHGRAD_FAILPOINT). */
  readonly failpoint?: string;
}

export type WorkerOutcome =
  | { readonly kind: 'finished'; readonly steps: number }
  | { readonly kind: 'refused'; readonly reason: string }
  | { readonly kind: 'stopped'; readonly steps: number }
  | { readonly kind: 'gave-up'; readonly reason: string }
  | { readonly kind: 'failed'; readonly reason: string };

/** The spec's name, for meshgrad_run_info (the compute thread validates the spec itself). */
function modelName(spec: unknown): string {
  const name = (spec as { name?: unknown } | null)?.name;
  return typeof name === 'string' ? name : 'unknown';
}

/** How long an opening handshake may take by default. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

type SessionEnd = { kind: 'finished' } | { kind: 'refused'; reason: string } | { kind: 'lost'; reason: string; joined: boolean } | { kind: 'stopped' };

export class MeshWorker {
  private stopped = false;
  private socket: WebSocket | null = null;
  private compute: ComputeThread | null = null;
  /** The model name --module's file defines (sent in join), or null without --module. */
  private moduleName: string | null = null;
  /** Numbers connections, so that compute replies for a lost one are dropped. */
  private sessionId = 0;
  /** Set when the compute thread dies: the worker cannot go on. */
  private failure: string | null = null;
  private steps = 0;
  private wake: (() => void) | null = null;
  /** When the last gradients frame went to the socket (until the next params or assign arrives). */
  private gradientsSentAt: number | null = null;

  /** The id the coordinator gave this worker in its latest welcome (on every log line once known). */
  private workerId: string | null = null;
  private readonly log: Logger;

  constructor(
    private readonly config: WorkerConfig,
    log: Logger,
    readonly metrics: WorkerMetrics = createWorkerMetrics(),
  ) {
    this.log = withFields(log, () => (this.workerId === null ? {} : { workerId: this.workerId }));
  }

  /** Steps (shards) computed so far. */
  get stepsDone(): number {
    return this.steps;
  }

  /** Leaves the run: tells the coordinator (leave, reason shutdown), then closes the connection. */
  stop(): void {
    this.stopped = true;
    this.leave('worker stopping', 1000);
    this.wake?.();
  }

  /** Null while the worker can work; else why not (served as a failing /healthz). */
  health(): string | null {
    return this.failure;
  }

  /** Sends `leave` (so the coordinator counts a leave, not a failure) and closes the socket. */
  private leave(message: string, code: number): void {
    const ws = this.socket;
    if (!ws) return;
    if (ws.readyState === ws.OPEN) {
      const frame = encodeMessage({ type: 'leave', reason: 'shutdown', message });
      ws.send(frame, { binary: true });
      this.metrics.common.wire.sent('leave', frame.byteLength);
    }
    ws.close(code, message.slice(0, 120));
    // A peer that never answers the close handshake must not hold the worker.
    setTimeout(() => ws.terminate(), 2000).unref();
  }

  async run(): Promise<WorkerOutcome> {
    const module = this.config.module !== undefined ? await loadModelFile(this.config.module) : null;
    this.moduleName = module?.definition.name ?? null;
    this.compute = await ComputeThread.start(
      { backend: this.config.backend ?? 'wasm', threads: this.config.threads, dataDir: this.config.dataDir, module: module?.path, failpoint: this.config.failpoint },
      { stallAfterMs: this.config.computeStallMs ?? 60_000 },
    );
    this.log.info('compute thread started', { backend: this.compute.backend, device: this.compute.device, ...(this.compute.adapter ? { adapter: this.compute.adapter } : {}) });
    this.metrics.common.setDeviceInfo(this.compute.device, this.compute.adapter ?? 'none');
    try {
      return await this.loop();
    } finally {
      await this.compute.close();
      this.compute = null;
    }
  }

  private async loop(): Promise<WorkerOutcome> {
    let attempt = 0;
    let lastJoin = Date.now();
    for (;;) {
      // A coordinator that accepts TCP but never answers the upgrade must not outlast --give-up-after.
      const left = this.config.giveUpAfterMs === undefined ? Infinity : lastJoin + this.config.giveUpAfterMs - Date.now();
      const end = await this.session(Math.max(1, Math.min(this.config.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS, left + 1)));
      if (this.failure !== null) return { kind: 'failed', reason: this.failure };
      if (end.kind === 'finished') return { kind: 'finished', steps: this.steps };
      if (end.kind === 'refused') return end;
      if (end.kind === 'stopped' || this.stopped) return { kind: 'stopped', steps: this.steps };
      if (end.joined) {
        attempt = 0;
        lastJoin = Date.now();
      }
      if (this.config.giveUpAfterMs !== undefined && Date.now() - lastJoin >= this.config.giveUpAfterMs) {
        return { kind: 'gave-up', reason: `no coordinator at ${this.config.url} for ${this.config.giveUpAfterMs} ms (${end.reason})` };
      }
      const delay = backoffDelay(attempt++, { initialMs: this.config.backoffInitialMs, maxMs: this.config.backoffMaxMs });
      this.metrics.reconnects.inc();
      // A session that had joined lost its connection; one that never joined could not reach the
      // coordinator (not up yet, a wrong --connect, or a refused handshake).
      if (end.joined) this.log.info('connection lost; reconnecting', { reason: end.reason, inMs: delay });
      else this.log.info('cannot reach the coordinator; retrying', { url: this.config.url, reason: end.reason, inMs: delay });
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = null;
      if (this.stopped) return { kind: 'stopped', steps: this.steps };
    }
  }

  private record(report: ShardReport): void {
    const m = this.metrics;
    m.steps.inc();
    m.samples.inc(report.samples);
    m.compute.observe({ phase: 'forward' }, report.forwardSeconds);
    m.compute.observe({ phase: 'backward' }, report.backwardSeconds);
    m.compute.observe({ phase: 'encode' }, report.encodeSeconds);
    m.batchLoss.set(report.loss);
  }

  private session(handshakeTimeoutMs: number): Promise<SessionEnd> {
    this.gradientsSentAt = null;
    const session = ++this.sessionId;
    const compute = this.compute;
    if (!compute) throw new Error('internal: session without a compute thread');
    return new Promise<SessionEnd>((resolve) => {
      let joined = false;
      let settled = false;
      let silenceTimer: NodeJS.Timeout | null = null;
      let silenceMs = 30_000;
      const finish = (end: SessionEnd): void => {
        if (settled) return;
        settled = true;
        if (silenceTimer) clearTimeout(silenceTimer);
        resolve(end);
      };
      const headers: Record<string, string> = {};
      if (this.config.token !== null) headers.authorization = `Bearer ${this.config.token}`;
      const ws = new WebSocket(this.config.url, { headers, maxPayload: this.config.maxPayload, perMessageDeflate: false, handshakeTimeout: Math.ceil(handshakeTimeoutMs) });
      this.socket = ws;
      const wire = this.metrics.common.wire;
      const sendFrame = (type: Message['type'], frame: Uint8Array): boolean => {
        if (ws.readyState !== ws.OPEN) return false;
        ws.send(frame, { binary: true });
        wire.sent(type, frame.byteLength);
        return true;
      };
      const send = (m: Message): void => void sendFrame(m.type, encodeMessage(m));
      let welcome: { workerId: string; runId: string; version: number } | null = null;
      compute.listen(
        (reply) => {
          if (reply.session !== session) return; // computed for a connection that is gone
          switch (reply.kind) {
            case 'joined':
              this.log.info('joined', { runId: welcome?.runId, version: welcome?.version, parameters: reply.parameterCount });
              return;
            case 'gradients':
              if (!sendFrame('gradients', reply.frame)) return;
              this.record(reply.report);
              this.gradientsSentAt = performance.now();
              this.steps++;
              return;
            case 'bucket':
              sendFrame('gradbucket', reply.frame);
              return;
            case 'rejected':
              this.log.warn('bad message from the coordinator', { code: reply.code, reason: reply.message });
              send({ type: 'error', code: reply.code, message: reply.message, step: reply.step });
              return;
          }
        },
        (reason, stack) => {
          this.failure = reason;
          this.log.error('compute thread failed; stopping', { reason });
          if (stack) this.log.debug('compute thread stack', { stack });
          this.leave(`worker failed: ${reason}`, 1011);
          this.wake?.();
        },
      );
      // A coordinator that stops talking (half-open TCP, a frozen host) is treated as gone.
      const armSilence = (): void => {
        if (silenceTimer) clearTimeout(silenceTimer);
        silenceTimer = setTimeout(() => {
          this.log.warn('coordinator silent; dropping the connection', { silentMs: silenceMs });
          ws.terminate();
        }, silenceMs);
      };

      ws.on('unexpected-response', (_req, res) => {
        const reason = `coordinator refused the connection: HTTP ${res.statusCode}${res.statusCode === 401 ? ' (bad or missing token)' : ''}`;
        res.resume();
        ws.terminate();
        finish(res.statusCode === 401 ? { kind: 'refused', reason } : { kind: 'lost', reason, joined });
      });
      ws.on('open', () => {
        armSilence();
        send({
          type: 'join',
          protocol: PROTOCOL_VERSION,
          name: this.config.name,
          capabilities: {
            threads: this.config.threads ?? availableParallelism(),
            device: this.compute?.device ?? 'cpu',
            ...(this.compute?.adapter ? { adapter: this.compute.adapter } : {}),
            ...(this.moduleName !== null ? { module: this.moduleName } : {}),
            datasets: this.config.localData ? [...knownDatasets(), ...(this.config.userDatasets ?? [])] : [],
          },
        });
      });
      ws.on('message', (data) => {
        armSilence();
        let msg: Message;
        const frame = frameBytes(data);
        try {
          msg = decodeMessage(frame);
        } catch (err) {
          const pe = err as ProtocolError;
          wire.received('invalid', frame.byteLength);
          wire.decodeError(pe.code ?? 'UNDECODABLE');
          this.log.warn('undecodable frame from the coordinator', { code: pe.code, reason: pe.message });
          send({ type: 'error', code: pe.code ?? 'UNDECODABLE', message: pe.message });
          return;
        }
        wire.received(msg.type, frame.byteLength);
        if ((msg.type === 'params' || msg.type === 'assign') && this.gradientsSentAt !== null) {
          this.metrics.communication.observe((performance.now() - this.gradientsSentAt) / 1000);
          this.gradientsSentAt = null;
        }
        try {
          switch (msg.type) {
            case 'welcome':
              // The replica is built (or reloaded) on the compute thread; 'joined' comes back.
              compute.post({ kind: 'welcome', session, welcome: msg, workerSeed: msg.seed + 7919 * Number(msg.workerId.replace(/\D/g, '') || 0) });
              welcome = { workerId: msg.workerId, runId: msg.runId, version: msg.version };
              this.workerId = msg.workerId;
              joined = true;
              this.metrics.common.setRunInfo({ model: modelName(msg.model), dataset: msg.dataset, optimizer: 'unknown', compression: msg.compression });
              silenceMs = Math.max(4 * msg.heartbeatMs, 15_000);
              armSilence();
              return;
            case 'params':
              compute.post({ kind: 'params', session, params: msg });
              return;
            case 'assign':
              compute.post({ kind: 'assign', session, assign: msg });
              return;
            case 'heartbeat':
              send({ type: 'heartbeat', time: Date.now() });
              return;
            case 'error':
              this.log.warn('the coordinator rejected a message', { code: msg.code, message: msg.message, step: msg.step });
              return;
            case 'leave':
              if (msg.reason === 'finished') {
                this.log.info('run finished');
                finish({ kind: 'finished' });
              } else if (msg.reason === 'refused') finish({ kind: 'refused', reason: `coordinator refused this worker: ${msg.message ?? 'no reason given'}` });
              else finish({ kind: 'lost', reason: 'coordinator shutting down', joined });
              ws.close(1000, 'bye');
              return;
            default:
              throw new ProtocolError('UNEXPECTED', `a coordinator does not send '${msg.type}' messages`);
          }
        } catch (err) {
          if (err instanceof ProtocolError) {
            this.log.warn('bad message from the coordinator', { code: err.code, reason: err.message });
            send({ type: 'error', code: err.code, message: err.message });
          } else {
            this.log.error('failed to handle a message', { error: String((err as Error).stack ?? err) });
            ws.terminate();
          }
        }
      });
      ws.on('error', (err) => {
        this.log.debug('socket error', { error: err.message });
      });
      ws.on('close', (code, reason) => {
        this.socket = null;
        if (this.stopped) finish({ kind: 'stopped' });
        else finish({ kind: 'lost', reason: `closed (${code}${reason.length ? ` ${reason.toString()}` : ''})`, joined });
      });
    });
  }
}
