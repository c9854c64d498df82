/**
 * Crash-safe file replacement: after writeFileAtomic resolves, the target holds the new bytes;
 * if the process or machine dies before then, it holds the old ones (or does not exist) — never a
 * torn mixture. The bytes go to a temp file in the same directory (rename is only atomic within a
 * filesystem), which is fsynced before the rename so the rename cannot land ahead of the data; the
 * directory is fsynced afterwards so the rename itself survives a power loss.
 */

import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Directory fsync is unsupported on some platforms and filesystems (Windows, some network mounts). */
const DIR_SYNC_UNSUPPORTED = new Set(['EISDIR', 'EPERM', 'EINVAL', 'ENOTSUP', 'EBADF']);

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

/** Writes `bytes` to `path` atomically, creating the directory if missing. */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const temp = join(dir, `.${basename(path)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
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
}
