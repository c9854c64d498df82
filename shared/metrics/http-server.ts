/**
 * The small HTTP server both roles run beside their real work: `/metrics` (Prometheus text from
 * one injected registry), `/healthz` (the process can do its work: 200, or 503 with the reason
 * where the role reports one, e.g. a worker whose compute thread is stuck) and, where
 * the role has a notion of readiness, `/readyz` (200 when ready, 503 otherwise). Every other path
 * is answered 404. Plain node:http, GET and HEAD only.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface MetricsServerOptions {
  readonly host: string;
  /** 0 binds any free port. */
  readonly port: number;
  readonly registry: Registry;
  /** Answers /readyz; without it /readyz is 404 like any unknown path. */
  readonly ready?: () => boolean;
  /** Null while healthy, else the reason /healthz answers 503 with; without it /healthz is 200. */
  readonly unhealthy?: () => string | null;
}

function reply(res: ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' }).end(body);
}

export class MetricsServer {
  private closed = false;

  private constructor(private readonly server: Server, private readonly options: MetricsServerOptions) {}

  /** Binds and listens; a busy port fails with one line naming it (and `code` EADDRINUSE). */
  static async listen(options: MetricsServerOptions): Promise<MetricsServer> {
    const server = createServer();
    const m = new MetricsServer(server, options);
    server.on('request', (req, res) => void m.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        if (err.code === 'EADDRINUSE') reject(Object.assign(new Error(`metrics port ${options.port} on ${options.host} is already in use (--metrics-port; 0 picks a free port, --no-metrics disables the endpoint)`), { code: 'EADDRINUSE' }));
        else reject(new Error(`cannot serve metrics on ${options.host}:${options.port}: ${err.message}`));
      };
      server.once('error', onError);
      server.listen(options.port, options.host, () => {
        server.off('error', onError);
        resolve();
      });
    });
    return m;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** The base URL, with a loopback address in place of a wildcard one. */
  get url(): string {
    const host = this.options.host === '0.0.0.0' ? '127.0.0.1' : this.options.host === '::' ? '[::1]' : this.options.host.includes(':') ? `[${this.options.host}]` : this.options.host;
    return `http://${host}:${this.port}`;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return reply(res, 405, 'method not allowed\n');
    }
    try {
      if (path === '/metrics') return reply(res, 200, await this.options.registry.metrics(), this.options.registry.contentType);
      if (path === '/healthz') {
        const why = this.options.unhealthy?.() ?? null;
        return why === null ? reply(res, 200, 'ok\n') : reply(res, 503, `unhealthy: ${why}\n`);
      }
      if (path === '/readyz' && this.options.ready) return this.options.ready() ? reply(res, 200, 'ready\n') : reply(res, 503, 'not ready\n');
      return reply(res, 404, 'not found\n');
    } catch (err) {
      return reply(res, 500, `${err instanceof Error ? err.message : String(err)}\n`);
    }
  }

  /** Stops listening and drops open connections; safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
