/**
 * An in-process worker for tests that need to look inside one: a RawClient that joins and drives
 * the real worker replica (worker/trainer.ts: the same parameter loading, delta application and
 * compressed gradients as a worker process), so a test can read the parameters it holds.
 */

import { decodeMessage, encodeMessage } from '../../shared/protocol/codec.js';
import { PROTOCOL_VERSION, type Message } from '../../shared/protocol/messages.js';
import { Replica } from '../../worker/trainer.js';
import { RawClient } from './raw-client.js';

export class ReplicaClient {
  replica: Replica | null = null;
  /** Parameter messages applied (full or delta). */
  updates = 0;
  /** A failure inside the replica (a test fails on it rather than hanging). */
  failure: Error | null = null;

  private constructor(readonly client: RawClient) {
    client.ws.on('message', (data) => {
      try {
        this.handle(decodeMessage(data as Buffer));
      } catch (err) {
        this.failure ??= err as Error;
      }
    });
  }

  static async connect(url: string, token: string): Promise<ReplicaClient> {
    const c = new ReplicaClient(await RawClient.connect(url, token));
    c.client.send({ type: 'join', protocol: PROTOCOL_VERSION, name: 'in-process', capabilities: { threads: 1, device: 'cpu', datasets: ['fashion-mnist'] } });
    await c.client.next('welcome');
    return c;
  }

  private handle(m: Message): void {
    switch (m.type) {
      case 'welcome':
        this.replica = new Replica(m, undefined, m.seed);
        return;
      case 'params':
        this.replica!.applyParams(m);
        this.updates++;
        return;
      case 'assign':
        this.replica!.compute(
          m,
          (g) => this.client.ws.send(encodeMessage(g)),
          (b) => this.client.ws.send(encodeMessage(b)),
        );
        return;
      default:
    }
  }

  close(): void {
    this.client.close();
  }
}
