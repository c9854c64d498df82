/** Shared helpers of the deploy/ tests: paths, external tools, temporary copies. */

import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const DEPLOY = join(REPO, 'deploy');

export interface RunResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout and stderr together, for failure messages. */
  readonly output: string;
}

export function run(cmd: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): RunResult {
  const r: SpawnSyncReturns<string> = spawnSync(cmd, args, { cwd: options.cwd ?? REPO, env: options.env ?? process.env, encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, output: `${r.stdout}${r.stderr}` };
}

/** Whether `cmd` can be run (found on PATH or as a path). */
export function hasTool(cmd: string): boolean {
  const r = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', cmd], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() !== '';
}

/**
 * A test title that says why the test is skipped when `tool` is missing (vitest prints the title
 * of a skipped test, not a reason).
 */
export function titled(title: string, tool: string, present: boolean): string {
  return present ? title : `${title} [skipped: '${tool}' is not installed; CI installs it]`;
}

/** Runs `fn` with a fresh temporary directory that is removed afterwards, whatever happens. */
export function withTempDir<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'meshgrad-deploy-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Copies deploy/ into `dir`/deploy and returns that path. */
export function copyDeploy(dir: string): string {
  const target = join(dir, 'deploy');
  cpSync(DEPLOY, target, { recursive: true });
  return target;
}
