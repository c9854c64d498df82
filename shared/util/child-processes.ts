/**
 * Stopping child processes within a bound: the `local` launcher's workers, the network
 * benchmark's coordinator, workers and DDP ranks. Each child is sent `signal` (none: it has been
 * told to stop some other way, e.g. the coordinator's `leave`), and any still running after
 * `graceMs` is killed (SIGKILL); resolves once every one has exited.
 */

import type { ChildProcess } from 'node:child_process';

export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

export async function stopProcesses(children: Iterable<ChildProcess>, graceMs: number, signal: NodeJS.Signals | null = 'SIGTERM'): Promise<void> {
  const running = [...children].filter((c) => !hasExited(c));
  await Promise.all(
    running.map(
      (c) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => c.kill('SIGKILL'), graceMs);
          c.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          // It may have exited between the filter and the listener.
          if (hasExited(c)) {
            clearTimeout(timer);
            resolve();
          } else if (signal !== null) c.kill(signal);
        }),
    ),
  );
}
