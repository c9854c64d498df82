/**
 * The metrics both roles export, declared once: build and run information, and the transport's
 * message counters, byte counters, frame-size histogram and decode errors; plus prom-client's
 * default process metrics. Always on an injected registry, never prom-client's global one.
 * Label values come from bounded sets only (message types, error codes, directions).
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { collectDefaultMetrics, Counter, exponentialBuckets, Gauge, Histogram, type Registry } from 'prom-client';
import type { ErrorCode } from '../protocol/errors.js';
import type { MessageType } from '../protocol/messages.js';
import { packageRoot } from '../util/paths.js';

export type Role = 'coordinator' | 'worker';
export type Direction = 'in' | 'out';
/** A message type, or `invalid` for an inbound frame that did not decode to a known message. */
export type WireType = MessageType | 'invalid';

/** What the transport of either role reports about every frame. */
export interface WireObserver {
  sent(type: MessageType, bytes: number): void;
  received(type: WireType, bytes: number): void;
  /** A frame that failed to decode or validate (answered with an `error` message). */
  decodeError(code: ErrorCode): void;
}

export const nullWireObserver: WireObserver = { sent() {}, received() {}, decodeError() {} };

export interface RunInfo {
  readonly model: string;
  readonly dataset: string;
  readonly optimizer: string;
  /** The run's --compress mode (none, fp16, bf16, int8). */
  readonly compression: string;
}

export interface CommonMetrics {
  readonly registry: Registry;
  readonly role: Role;
  readonly wire: WireObserver;
  readonly messages: Counter<'direction' | 'type'>;
  readonly messageBytes: Counter<'direction' | 'type'>;
  readonly messageSize: Histogram<'direction'>;
  readonly decodeErrors: Counter<'code'>;
  /** Sets meshgrad_run_info (replacing any earlier value). */
  setRunInfo(info: RunInfo): void;
  /** Sets meshgrad_device_info: what this process computes on (cpu or webgpu) and the GPU adapter. */
  setDeviceInfo(device: string, adapter: string): void;
}

/** 256 B, 1 KiB, … 1 GiB: frames range from a heartbeat to a large model's parameters. */
export const MESSAGE_SIZE_BUCKETS = exponentialBuckets(256, 4, 12);

let version: string | undefined;
function packageVersion(): string {
  if (version === undefined) {
    try {
      version = String((JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version?: unknown }).version ?? 'unknown');
    } catch {
      version = 'unknown';
    }
  }
  return version;
}

/**
 * prom-client's gauges that end in `_total` (promtool's lint rejects that for a non-counter); the
 * same counts by type remain as nodejs_active_handles, nodejs_active_requests, nodejs_active_resources.
 */
const LINT_FAILING_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/** prom-client's default process and Node.js metrics, less the ones promtool's lint rejects. */
function registerDefaultMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  for (const name of LINT_FAILING_DEFAULTS) registry.removeSingleMetric(name);
}

export function createCommonMetrics(registry: Registry, role: Role): CommonMetrics {
  const registers = [registry];
  registerDefaultMetrics(registry);
  const buildInfo = new Gauge({ name: 'meshgrad_build_info', help: 'Always 1; the labels say which meshgrad and Node.js this process runs.', labelNames: ['version', 'node_version'] as const, registers });
  buildInfo.set({ version: packageVersion(), node_version: process.version }, 1);
  const runInfo = new Gauge({ name: 'meshgrad_run_info', help: 'Always 1 once the run is known; the labels describe the run this process takes part in.', labelNames: ['role', 'model', 'dataset', 'optimizer', 'compression'] as const, registers });
  const deviceInfo = new Gauge({ name: 'meshgrad_device_info', help: 'Always 1; the labels say what this process computes on: device cpu or webgpu, and the GPU adapter (none on the CPU).', labelNames: ['device', 'adapter'] as const, registers });
  const messages = new Counter({ name: 'meshgrad_messages_total', help: 'Protocol messages sent (out) and received (in), by message type.', labelNames: ['direction', 'type'] as const, registers });
  const messageBytes = new Counter({ name: 'meshgrad_message_bytes_total', help: 'Bytes of protocol frames sent (out) and received (in), by message type.', labelNames: ['direction', 'type'] as const, registers });
  const messageSize = new Histogram({ name: 'meshgrad_message_size_bytes', help: 'Size of each protocol frame in bytes.', labelNames: ['direction'] as const, buckets: MESSAGE_SIZE_BUCKETS, registers });
  const decodeErrors = new Counter({ name: 'meshgrad_decode_errors_total', help: 'Inbound frames that failed to decode or validate, by protocol error code.', labelNames: ['code'] as const, registers });
  const record = (direction: Direction, type: WireType, bytes: number): void => {
    messages.inc({ direction, type });
    messageBytes.inc({ direction, type }, bytes);
    messageSize.observe({ direction }, bytes);
  };
  return {
    registry,
    role,
    messages,
    messageBytes,
    messageSize,
    decodeErrors,
    wire: {
      sent: (type, bytes) => record('out', type, bytes),
      received: (type, bytes) => record('in', type, bytes),
      decodeError: (code) => decodeErrors.inc({ code }),
    },
    setRunInfo(info) {
      runInfo.reset();
      runInfo.set({ role, model: info.model, dataset: info.dataset, optimizer: info.optimizer, compression: info.compression }, 1);
    },
    setDeviceInfo(device, adapter) {
      deviceInfo.reset();
      deviceInfo.set({ device, adapter }, 1);
    },
  };
}
