/**
 * Small tmpfs mounts for tests of a full disk: a real filesystem that answers ENOSPC once its
 * size is used up. Mounting needs root (CAP_SYS_ADMIN); `tmpfsUnavailable` says why it cannot be
 * done here, so tests skip with that reason instead of failing.
 */

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function mount(dir: string, bytes: number): string {
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0755`, 'tmpfs', dir], { encoding: 'utf8', timeout: 10_000 });
  if (r.error) return r.error.message;
  return r.status === 0 ? '' : (r.stderr || r.stdout || `mount exited ${r.status}`).trim();
}

function umount(dir: string): void {
  const r = spawnSync('umount', [dir], { encoding: 'utf8', timeout: 10_000 });
  // A process still holding a file there (it should not): detach it anyway.
  if (r.status !== 0) spawnSync('umount', ['-l', dir], { timeout: 10_000 });
}

let probed: string | null = null;

/** '' when this process can mount a tmpfs; else the reason (one line) it cannot. */
export function tmpfsUnavailable(): string {
  if (probed !== null) return probed;
  if (process.platform !== 'linux') return (probed = `tmpfs mounts need Linux (this is ${process.platform})`);
  if (process.getuid?.() !== 0) return (probed = 'mounting a tmpfs needs root');
  const dir = mkdtempSync(join(tmpdir(), 'meshgrad-tmpfs-probe-'));
  const error = mount(dir, 64 * 1024);
  if (error === '') umount(dir);
  rmSync(dir, { recursive: true, force: true });
  return (probed = error === '' ? '' : `cannot mount a tmpfs: ${error.split('\n')[0]}`);
}

export interface Tmpfs {
  readonly dir: string;
  /** Unmounts and removes the mount point; safe to call twice. */
  unmount(): void;
}

/** Mounts a tmpfs of `bytes` (rounded up to pages) on a fresh directory; throws if it cannot. */
export function mountTmpfs(bytes: number): Tmpfs {
  const dir = mkdtempSync(join(tmpdir(), 'meshgrad-tmpfs-'));
  const error = mount(dir, bytes);
  if (error !== '') {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`mount -t tmpfs ${dir}: ${error}`);
  }
  let mounted = true;
  return {
    dir,
    unmount(): void {
      if (!mounted) return;
      mounted = false;
      umount(dir);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
