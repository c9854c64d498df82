/**
 * The coordinator's network edge: one HTTP server whose upgrade requests are authenticated (shared
 * token, constant-time compare; 401 and no WebSocket otherwise) before `ws` takes them, with a
 * frame size limit enforced by `ws` itself (maxPayload). Every inbound frame is decoded and
 * validated here; a bad one is answered with an `error` message carrying a stable code and never
 * reaches the training loop. Every frame in and out is reported to a WireObserver (metrics).
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { authorize } from '../shared/protocol/auth.js';
import { decodeMessage, encodeMessage, frameBytes } from '../shared/protocol/codec.js';
import { ProtocolError, type ErrorCode } from '../shared/protocol/errors.js';
import type { Message, MessageType } from '../shared/protocol/messages.js';
import type { Logger } from '../shared/util/log.js';
import { nullWireObserver, type WireObserver } from '../shared/metrics/common.js';

export interface Connection {
  readonly id: number;
  readonly remote: string;
  send(message: Message): void;
  /** Sends an already encoded frame (to encode a broadcast once) of a message of `type`. */
  sendFrame(frame: Buffer, type: MessageType): void;
  sendError(code: ErrorCode, message: string, step?: number): void;
  close(code: number, reason: string): void;
  /** Drops the connection at once, without waiting for the peer's close handshake (a frozen peer). */
  terminate(): void;
  readonly open: boolean;
}

export interface TransportHandlers {
  /** A WebSocket connection was accepted (authenticated and upgraded). */
  opened?(conn: Connection): void;
  message(conn: Connection, message: Message, bytes: number): void;
  closed(conn: Connection, code: number, reason: string): void;
  /** A frame that failed to decode or validate (already answered with an error). */
  rejected?(conn: Connection, error: ProtocolError): void;
  /** Plain HTTP requests (health, metrics); return false to answer 404. */
  http?(req: IncomingMessage, res: ServerResponse): boolean;
  /** An upgrade refused before any WebSocket existed. */
  refused?(reason: 'bad_token' | 'shutting_down'): void;
}

export interface TransportOptions {
  readonly host: string;
  readonly port: number;
  readonly token: string | null;
  readonly maxPayload: number;
  readonly logger: Logger;
  /** Told of every frame sent and received, and of frames that fail to decode. */
  readonly wire?: WireObserver;
  /**
   * How long a TCP connection may take to complete its HTTP request (an upgrade, or a plain
   * request for /metrics) and stay idle before one: past it the socket is destroyed. Default 10 s.
   */
  readonly handshakeTimeoutMs?: number;
}

export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

class WsConnection implements Connection {
  constructor(readonly id: number, readonly remote: string, private readonly ws: WebSocket, private readonly wire: WireObserver) {}
  get open(): boolean {
    return this.ws.readyState === this.ws.OPEN;
  }
  send(message: Message): void {
    if (this.open) this.sendFrame(encodeMessage(message), message.type);
  }
  sendFrame(frame: Buffer, type: MessageType): void {
    if (!this.open) return;
    this.ws.send(frame, { binary: true });
    this.wire.sent(type, frame.byteLength);
  }
  sendError(code: ErrorCode, message: string, step?: number): void {
    this.send(step === undefined ? { type: 'error', code, message } : { type: 'error', code, message, step });
  }
  close(code: number, reason: string): void {
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) this.ws.close(code, reason.slice(0, 120));
  }
  terminate(): void {
    this.ws.terminate();
  }
}

export class Transport {
  private readonly server: Server;
  private readonly wss: WebSocketServer;
  private readonly connections = new Set<WsConnection>();
  private nextId = 1;
  private closed = false;

  private constructor(private readonly options: TransportOptions, private readonly handlers: TransportHandlers) {
    const handshakeMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    // headersTimeout bounds a request whose headers trickle in (checked every
    // connectionsCheckingInterval); the socket idle timeout catches a connection that sends
    // nothing at all. Node stops both for a socket once it is upgraded (ws also clears the timeout).
    this.server = createServer({ headersTimeout: handshakeMs, requestTimeout: Math.max(handshakeMs, 300_000), connectionsCheckingInterval: Math.max(50, Math.min(handshakeMs / 2, 30_000)) }, (req, res) => {
      if (!handlers.http?.(req, res)) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      }
    });
    this.server.timeout = handshakeMs;
    this.wss = new WebSocketServer({ noServer: true, maxPayload: options.maxPayload });
    this.server.on('upgrade', (req, socket, head) => this.upgrade(req, socket, head));
  }

  static async listen(options: TransportOptions, handlers: TransportHandlers): Promise<Transport> {
    const t = new Transport(options, handlers);
    await new Promise<void>((resolve, reject) => {
      t.server.once('error', reject);
      t.server.listen(options.port, options.host, () => {
        t.server.off('error', reject);
        resolve();
      });
    });
    return t;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Open WebSocket connections, joined or not. */
  get connectionCount(): number {
    return this.connections.size;
  }

  get url(): string {
    const host = this.options.host.includes(':') ? `[${this.options.host}]` : this.options.host;
    return `ws://${host}:${this.port}`;
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.closed) {
      this.handlers.refused?.('shutting_down');
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n');
      return;
    }
    if (!authorize(req, this.options.token)) {
      this.options.logger.warn('connection refused: bad or missing token', { remote: req.socket.remoteAddress });
      this.handlers.refused?.('bad_token');
      const body = 'bad or missing token\n';
      socket.end(`HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req));
  }

  private accept(ws: WebSocket, req: IncomingMessage): void {
    const wire = this.options.wire ?? nullWireObserver;
    const conn = new WsConnection(this.nextId++, `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`, ws, wire);
    this.connections.add(conn);
    this.handlers.opened?.(conn);
    ws.on('message', (data, isBinary) => {
      const frame = frameBytes(data);
      let message: Message;
      try {
        if (!isBinary) throw new ProtocolError('UNDECODABLE', 'text frames are not part of the protocol; send binary msgpack');
        message = decodeMessage(frame);
      } catch (err) {
        const pe = err instanceof ProtocolError ? err : new ProtocolError('UNDECODABLE', String(err));
        wire.received('invalid', frame.byteLength);
        wire.decodeError(pe.code);
        this.options.logger.warn('rejected a frame', { connection: conn.id, code: pe.code, reason: pe.message });
        conn.sendError(pe.code, pe.message, pe.frame?.type === 'gradients' || pe.frame?.type === 'gradbucket' ? pe.frame.step : undefined);
        this.handlers.rejected?.(conn, pe);
        return;
      }
      wire.received(message.type, frame.byteLength);
      try {
        this.handlers.message(conn, message, frame.byteLength);
      } catch (err) {
        // A handler bug must not take the coordinator down with it; the peer learns of it.
        const pe = err instanceof ProtocolError ? err : null;
        if (pe) {
          conn.sendError(pe.code, pe.message);
          this.handlers.rejected?.(conn, pe);
        } else {
          this.options.logger.error('internal error handling a message', { connection: conn.id, error: String((err as Error).stack ?? err) });
          conn.sendError('UNEXPECTED', 'internal error handling this message');
        }
      }
    });
    ws.on('error', (err) => {
      // ws reports oversize frames (WS_ERR_UNSUPPORTED_MESSAGE_LENGTH) and protocol violations here,
      // then closes the socket with 1009 / 1002.
      const code = (err as { code?: string }).code;
      wire.decodeError(code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'TOO_LARGE' : 'UNDECODABLE');
      this.options.logger.warn('websocket error', { connection: conn.id, error: err.message, code });
    });
    ws.on('close', (code, reason) => {
      this.connections.delete(conn);
      this.handlers.closed(conn, code, reason.toString());
    });
  }

  /** Closes every connection and the server; safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.connections) c.close(1001, 'coordinator shutting down');
    const deadline = Date.now() + 2000;
    while (this.connections.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const c of this.connections) c.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    this.server.closeAllConnections?.();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
