/**
 * Crash-safe file replacement: after writeFileAtomic resolves, the target holds the new bytes;
 * if the process or machine dies before then, it holds the old ones (or does not exist) — never a
 * torn mixture. The bytes go to a temp file in the same directory (rename is only atomic within a
 * filesystem), which is fsynced before the rename so the rename cannot land ahead of the data; the
 * directory is fsynced afterwards so the rename itself survives a power loss.
 *
 * A failed write (a full disk, say) removes its temp file and rejects with an error that names
 * the target and the cause (`could not write PATH: ENOSPC: no space left on device, write`),
 * keeping the system error's `code`. A process killed mid-write leaves its temp file behind:
 * `.<name>.tmp-<pid>-<12 hex digits>`, which sweepTempFiles removes.
 */

import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Directory fsync is unsupported on some platforms and filesystems (Windows, some network mounts). */
const DIR_SYNC_UNSUPPORTED = new Set(['EISDIR', 'EPERM', 'EINVAL', 'ENOTSUP', 'EBADF']);

/** The names writeFileAtomic gives its temp files: `.<target name>.tmp-<pid>-<12 hex digits>`. */
export const TEMP_NAME = /^\.(.+)\.tmp-(\d+)-([0-9a-f]{12})$/;

function tempPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
}

async function syncDirectory(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (error) {
    if (!DIR_SYNC_UNSUPPORTED.has((error as NodeJS.ErrnoException).code ?? '')) throw error;
  } finally {
    await handle?.close();
  }
}

/** `error`, with a message that starts with what failed on which file; the system error's code stays. */
function naming(path: string, error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const e = error as NodeJS.ErrnoException;
  const out = new Error(`could not write ${path}: ${e.message}`, { cause: error }) as NodeJS.ErrnoException;
  if (e.code !== undefined) out.code = e.code;
  if (e.errno !== undefined) out.errno = e.errno;
  if (e.syscall !== undefined) out.syscall = e.syscall;
  out.path = path;
  return out;
}

/** Writes `bytes` to `path` atomically, creating the directory if missing. */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const dir = dirname(path);
  const temp = tempPath(path);
  try {
    await mkdir(dir, { recursive: true });
    try {
      // 'wx': fail rather than write through a file (or link) that already has the temp name.
      const handle = await open(temp, 'wx');
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, path);
    } catch (error) {
      await rm(temp, { force: true }).catch(() => undefined);
      throw error;
    }
    await syncDirectory(dir);
  } catch (error) {
    throw naming(path, error);
  }
}

/** Whether a process with this id exists (one we may not signal counts as existing). */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface SweepResult {
  /** Temp files removed (names within the directory). */
  readonly removed: string[];
  /** Temp files left alone: their writer's process id is a live process other than this one. */
  readonly kept: string[];
}

/**
 * Removes the temp files that writers killed mid-write left in `dir` (not its subdirectories):
 * only names of writeFileAtomic's own pattern (TEMP_NAME), and not those whose process id is a
 * live process other than this one (a writer that may still be at work). A missing directory has
 * nothing to sweep.
 */
export async function sweepTempFiles(dir: string): Promise<SweepResult> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { removed: [], kept: [] };
    throw error;
  }
  const removed: string[] = [];
  const kept: string[] = [];
  for (const entry of entries) {
    const match = TEMP_NAME.exec(entry.name);
    if (!match || !entry.isFile()) continue;
    const pid = Number(match[2]);
    if (pid !== process.pid && processExists(pid)) {
      kept.push(entry.name);
      continue;
    }
    await rm(join(dir, entry.name), { force: true });
    removed.push(entry.name);
  }
  return { removed, kept };
}
