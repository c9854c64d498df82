/** A hand-driven WebSocket client for protocol tests: send any bytes, collect decoded replies. */

import WebSocket from 'ws';
import { decodeMessage, encodeMessage } from '../../shared/protocol/codec.js';
import type { Message } from '../../shared/protocol/messages.js';

export class RawClient {
  readonly received: Message[] = [];
  closeCode: number | null = null;
  private waiters: Array<() => void> = [];

  /** Answer the coordinator's heartbeats, as a real worker does (false: go silent). */
  answerHeartbeats = true;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const m = decodeMessage(data as Buffer);
      this.received.push(m);
      if (m.type === 'heartbeat' && this.answerHeartbeats && ws.readyState === ws.OPEN) ws.send(encodeMessage({ type: 'heartbeat', time: Date.now() }));
      this.notify();
    });
    ws.on('close', (code) => {
      this.closeCode = code;
      this.notify();
    });
    ws.on('error', () => {});
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
  }

  static connect(url: string, token: string | null): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers: token === null ? {} : { authorization: `Bearer ${token}` } });
      ws.once('open', () => resolve(new RawClient(ws)));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  send(message: Message): void {
    this.ws.send(encodeMessage(message));
  }

  sendRaw(bytes: Uint8Array | string, binary = true): void {
    this.ws.send(bytes, { binary });
  }

  /** Waits for the first received message (from `from` on) that matches. */
  async next<T extends Message['type']>(type: T, from = 0, timeoutMs = 10_000): Promise<Extract<Message, { type: T }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.received.slice(from).find((m) => m.type === type);
      if (found) return found as Extract<Message, { type: T }>;
      if (this.closeCode !== null) throw new Error(`closed (${this.closeCode}) while waiting for '${type}'`);
      if (Date.now() > deadline) throw new Error(`no '${type}' within ${timeoutMs} ms`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  async closed(timeoutMs = 10_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.closeCode === null) {
      if (Date.now() > deadline) throw new Error('still open');
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.closeCode;
  }

  close(): void {
    this.ws.terminate();
  }
}
