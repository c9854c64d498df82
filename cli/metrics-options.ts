/**
 * `--metrics-port`, `--metrics-host`, `--no-metrics`: where a process serves its Prometheus
 * endpoint, and starting that endpoint (shared/metrics/http-server.ts) from the flags.
 */

import { Command, Option } from 'commander';
import type { Registry } from 'prom-client';
import { MetricsServer } from '../shared/metrics/http-server.js';
import type { Logger } from '../shared/util/log.js';
import { port } from './flags.js';

export const COORDINATOR_METRICS_PORT = 9400;
export const WORKER_METRICS_PORT = 9401;

export interface MetricsFlags {
  /** False with --no-metrics. */
  metrics: boolean;
  metricsHost: string;
  metricsPort: number;
}

/** Where to serve, or null when disabled. */
export interface MetricsEndpoint {
  readonly host: string;
  readonly port: number;
}

export function addMetricsOptions(cmd: Command, defaultPort: number, paths: string): Command {
  return cmd
    .addOption(new Option('--metrics-port <n>', `serve ${paths} on this port (0: any free port)`).argParser(port).default(defaultPort).env('MESHGRAD_METRICS_PORT'))
    .addOption(new Option('--metrics-host <addr>', 'address the metrics endpoint listens on').default('0.0.0.0').env('MESHGRAD_METRICS_HOST'))
    .addOption(new Option('--no-metrics', 'do not serve the metrics endpoint').env('MESHGRAD_NO_METRICS'));
}

export function metricsEndpoint(flags: MetricsFlags): MetricsEndpoint | null {
  return flags.metrics ? { host: flags.metricsHost, port: flags.metricsPort } : null;
}

/** Starts the endpoint (or nothing, when disabled) and logs the port it bound. */
export async function serveMetrics(endpoint: MetricsEndpoint | null, registry: Registry, log: Logger, ready?: () => boolean, unhealthy?: () => string | null): Promise<MetricsServer | null> {
  if (!endpoint) return null;
  const server = await MetricsServer.listen({ ...endpoint, registry, ready, unhealthy });
  log.info('metrics listening', { url: `${server.url}/metrics`, host: endpoint.host, port: server.port });
  return server;
}
