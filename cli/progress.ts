/**
 * How a training run shows progress: a live bar (cli-progress) on a terminal, plain log lines
 * otherwise (CI logs, files, pipes), so that non-interactive output stays readable line by line.
 */

import cliProgress from 'cli-progress';
import type { EvalResult } from '../shared/train/classify.js';
import type { EpochEvent, StepEvent, TrainReporter } from '../shared/train/single-process.js';

export interface Output {
  write(line: string): void;
}

/** A split's second figure: its accuracy, or for regression its RMSE. */
function figure(r: EvalResult): string {
  return r.rmse !== undefined ? `rmse ${r.rmse.toPrecision(5)}` : `acc ${(r.accuracy * 100).toFixed(2)}%`;
}

function epochLine(e: EpochEvent): string {
  const rss = e.rssBytes === undefined ? '' : ` | rss ${(e.rssBytes / 2 ** 20).toFixed(0)} MiB`;
  const val = e.val ? ` | val loss ${e.val.loss.toFixed(4)} ${figure(e.val)}` : '';
  const train = Number.isNaN(e.trainAccuracy) && e.test.rmse !== undefined ? '' : ` acc ${(e.trainAccuracy * 100).toFixed(2)}%`;
  return `epoch ${e.epoch + 1}: train loss ${e.trainLoss.toFixed(4)}${train}${val} | test loss ${e.test.loss.toFixed(4)} ${figure(e.test)} | ${e.seconds.toFixed(1)} s${rss}`;
}

class LineReporter implements TrainReporter {
  private lastLog = 0;
  constructor(private readonly out: Output, private readonly everyMs: number) {}
  step(e: StepEvent): void {
    const now = Date.now();
    if (now - this.lastLog < this.everyMs && e.step !== e.totalSteps) return;
    this.lastLog = now;
    this.out.write(`step ${e.step}/${e.totalSteps} epoch ${e.epoch + 1} loss ${e.loss.toFixed(4)} lr ${e.lr.toExponential(2)} ${Math.round(e.samplesPerSecond)} samples/s`);
  }
  epoch(e: EpochEvent): void {
    this.out.write(epochLine(e));
  }
}

class BarReporter implements TrainReporter {
  private readonly bar = new cliProgress.SingleBar(
    { format: 'epoch {epoch} [{bar}] {value}/{total} steps | loss {loss} | {rate} samples/s | eta {eta_formatted}', hideCursor: true, etaBuffer: 50 },
    cliProgress.Presets.shades_classic,
  );
  private started = false;
  constructor(private readonly out: Output) {}
  step(e: StepEvent): void {
    const payload = { epoch: e.epoch + 1, loss: e.loss.toFixed(4), rate: Math.round(e.samplesPerSecond) };
    if (!this.started) {
      this.bar.start(e.totalSteps, e.step, payload);
      this.started = true;
    } else this.bar.update(e.step, payload);
  }
  epoch(e: EpochEvent): void {
    if (this.started) {
      this.bar.stop();
      this.started = false;
    }
    this.out.write(epochLine(e));
  }
}

export function createReporter(out: Output, interactive: boolean): TrainReporter {
  return interactive ? new BarReporter(out) : new LineReporter(out, 5000);
}
