/**
 * `--metrics-port`, `--metrics-host`, `--no-metrics`: where a process serves its Prometheus
 * endpoint, and starting that endpoint (shared/metrics/http-server.ts) from the flags.
 */

import { Command, Option } from 'commander';
import { nonNegativeFloat } from './flags.js';
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
  /**
   * The port is the role's default, not asked for (neither --metrics-port nor
   * MESHGRAD_METRICS_PORT): when it is busy (a second worker on the same host), bind any free port
   * instead, with a warning naming it. An explicit port that is busy stays an error.
   */
  readonly fallback?: boolean;
}

export function addMetricsOptions(cmd: Command, defaultPort: number, paths: string): Command {
  return cmd
    .addOption(new Option('--metrics-port <n>', `serve ${paths} on this port (0: any free port)`).argParser(port).default(defaultPort).env('MESHGRAD_METRICS_PORT'))
    .addOption(new Option('--metrics-host <addr>', 'address the metrics endpoint listens on').default('0.0.0.0').env('MESHGRAD_METRICS_HOST'))
    .addOption(new Option('--no-metrics', 'do not serve the metrics endpoint').env('MESHGRAD_NO_METRICS'));
}

/** `--linger <seconds>`: keep /metrics up after the run ends, so Prometheus scrapes the final figures. */
export function lingerOption(): Option {
  return new Option('--linger <seconds>', 'after the run ends, keep serving /metrics this long so a last scrape sees the final figures (e.g. 2x the scrape interval)')
    .argParser(nonNegativeFloat)
    .default(0)
    .env('MESHGRAD_LINGER');
}

/** The endpoint from the flags; `cmd` (the command that parsed them) tells a default port from an explicit one. */
export function metricsEndpoint(flags: MetricsFlags, cmd?: Command): MetricsEndpoint | null {
  if (!flags.metrics) return null;
  return { host: flags.metricsHost, port: flags.metricsPort, fallback: cmd !== undefined && cmd.getOptionValueSource('metricsPort') === 'default' };
}

/** Starts the endpoint (or nothing, when disabled) and logs the port it bound. */
export async function serveMetrics(endpoint: MetricsEndpoint | null, registry: Registry, log: Logger, ready?: () => boolean, unhealthy?: () => string | null): Promise<MetricsServer | null> {
  if (!endpoint) return null;
  let server: MetricsServer;
  try {
    server = await MetricsServer.listen({ host: endpoint.host, port: endpoint.port, registry, ready, unhealthy });
  } catch (err) {
    if (!endpoint.fallback || endpoint.port === 0 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    server = await MetricsServer.listen({ host: endpoint.host, port: 0, registry, ready, unhealthy });
    log.warn(`default metrics port ${endpoint.port} is in use; serving on port ${server.port} instead (set --metrics-port to choose one)`, { defaultPort: endpoint.port, port: server.port });
  }
  log.info('metrics listening', { url: `${server.url}/metrics`, host: endpoint.host, port: server.port });
  return server;
}

/**
 * After the run: keeps `server` up for `seconds` (logged) so a last scrape sees the final
 * figures; SIGINT/SIGTERM cut the wait short. Nothing without a server or with 0 seconds.
 */
export async function lingerMetrics(server: MetricsServer | null, seconds: number, log: Logger): Promise<void> {
  if (!server || seconds <= 0) return;
  log.info('run over; serving metrics a while longer (--linger)', { url: `${server.url}/metrics`, seconds });
  await new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    const timer = setTimeout(done, seconds * 1000);
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}
