// Heavy training must not starve the event loop: while a worker computes shards that each take
// longer than the heartbeat interval (cnn, 1,024 samples per step, one thread) and while the
// coordinator evaluates the 10,000 test images, /metrics scrapes of both processes keep being
// answered, and no worker is dropped for silence. What is counted is scrapes answered *during* one
// shard (the same step count seen again and again) and during the evaluation — not how fast they
// were, which depends on how busy the machine is: a loop blocked by the shard answers at most one
// or two scrapes per shard (one before it, the queued one after), a free loop one every ~50 ms.
import { afterAll, describe, expect, it } from 'vitest';
import { TOKEN } from '../helpers/cluster.js';
import { get, Proc, sampleValue } from '../helpers/processes.js';

// Half a second: shards take ~1.4 s here (so ~3x the interval), scrapes ~0.05–0.2 s (3x under it).
const HEARTBEAT_SECONDS = 0.5;
const procs: Proc[] = [];
afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
});

interface Scrapes {
  slowestMs: number;
  count: number;
  /** Scrapes answered per value of the step counter (for the worker: per shard in progress). */
  readonly perStep: Map<number, number>;
  /** The body of the latest answer. */
  last: string;
}

/** Scrapes `proc`'s `url` every 50 ms until `done()` or the process ends; the slowest answer counts. */
async function scrapeUntil(proc: Proc, url: string, done: () => boolean, onScrape: (s: Scrapes) => void = () => {}): Promise<Scrapes> {
  const s: Scrapes = { slowestMs: 0, count: 0, last: '', perStep: new Map() };
  while (!done() && !proc.exited) {
    const started = performance.now();
    let res;
    try {
      res = await get(url);
    } catch (err) {
      // The run ended: the process closes its endpoint just before it exits.
      for (let i = 0; i < 40 && !proc.exited; i++) await new Promise((r) => setTimeout(r, 50));
      if (proc.exited) break;
      throw err;
    }
    expect(res.status).toBe(200);
    s.slowestMs = Math.max(s.slowestMs, performance.now() - started);
    s.count++;
    s.last = res.body;
    onScrape(s);
    await new Promise((r) => setTimeout(r, 50));
  }
  return s;
}

describe('responsiveness under load', () => {
  it('answers every scrape within the heartbeat interval while shards take longer than it', async () => {
    const coordinator = Proc.meshgrad('coordinator', [
      'coordinator', '--host', '127.0.0.1', '--port', '0', '--metrics-host', '127.0.0.1', '--metrics-port', '0',
      '--model', 'cnn', '--train-samples', '3072', '--batch-size', '1024', '--epochs', '1', '--threads', '1',
      '--heartbeat', String(HEARTBEAT_SECONDS),
    ], { MESHGRAD_TOKEN: TOKEN });
    procs.push(coordinator);
    const coordinatorMetrics = `http://127.0.0.1:${String((await coordinator.waitForLog('metrics listening')).port)}/metrics`;
    const url = String((await coordinator.waitForLog('coordinator listening')).url);
    const worker = Proc.meshgrad('worker', ['worker', '--connect', url, '--metrics-host', '127.0.0.1', '--metrics-port', '0', '--threads', '1'], { MESHGRAD_TOKEN: TOKEN });
    procs.push(worker);
    const workerMetrics = `http://127.0.0.1:${String((await worker.waitForLog('metrics listening')).port)}/metrics`;

    // Scrape the worker until it has computed all 3 shards, and the coordinator until its run
    // ends, which includes its evaluation of the test set after the last step.
    let workerSteps = 0;
    let scrapesDuringEvaluation = 0;
    const [w, c] = await Promise.all([
      scrapeUntil(worker, workerMetrics, () => workerSteps >= 3, (s) => {
        workerSteps = sampleValue(s.last, 'meshgrad_worker_steps_total') ?? 0;
        s.perStep.set(workerSteps, (s.perStep.get(workerSteps) ?? 0) + 1);
      }),
      scrapeUntil(coordinator, coordinatorMetrics, () => false, (s) => {
        if (sampleValue(s.last, 'meshgrad_steps_total') === 3 && sampleValue(s.last, 'meshgrad_loss{split="test"}') === undefined) scrapesDuringEvaluation++;
      }),
    ]);
    const workerBody = w.last;

    // The load was real: a shard's forward + backward took longer than the heartbeat interval.
    const forward = sampleValue(workerBody, 'meshgrad_worker_compute_seconds_sum{phase="forward"}') ?? 0;
    const backward = sampleValue(workerBody, 'meshgrad_worker_compute_seconds_sum{phase="backward"}') ?? 0;
    expect((forward + backward) / 3).toBeGreaterThan(HEARTBEAT_SECONDS);
    // Scrapes were answered while a shard was being computed: for the shards after the first
    // (whose count includes start-up), many answers saw the same step count.
    const duringShards = [1, 2].map((k) => w.perStep.get(k) ?? 0);
    const seen = `scrapes per shard ${duringShards.join(', ')}; slowest scrape ${w.slowestMs.toFixed(0)} ms (worker), ${c.slowestMs.toFixed(0)} ms (coordinator)`;
    expect(Math.max(...duringShards), seen).toBeGreaterThanOrEqual(5);
    expect(scrapesDuringEvaluation, seen).toBeGreaterThanOrEqual(5);
    expect(coordinator.output).not.toMatch(/worker dropped/);
  }, 600_000);
});
