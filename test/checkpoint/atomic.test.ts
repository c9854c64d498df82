/**
 * writeFileAtomic: creates, replaces, cleans up its temp file on failure (a full disk included:
 * a real tmpfs, when this process may mount one), creates directories; sweepTempFiles removes
 * the temp files a killed writer left.
 */

import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sweepTempFiles, TEMP_NAME, writeFileAtomic } from '../../shared/checkpoint/index.js';
import { mountTmpfs, tmpfsUnavailable, type Tmpfs } from '../helpers/tmpfs.js';

let dir = '';

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshgrad-atomic-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('writes a new file, creating missing directories, and leaves no temp file', async () => {
    const target = join(dir, 'a', 'b', 'ckpt.bin');
    const bytes = new Uint8Array(1 << 20).map((_, i) => (i * 31) & 0xff);
    await writeFileAtomic(target, bytes);
    expect((await readFile(target)).equals(bytes)).toBe(true);
    expect(await readdir(join(dir, 'a', 'b'))).toEqual(['ckpt.bin']);
  });

  it('replaces an existing file', async () => {
    const target = join(dir, 'ckpt.bin');
    await writeFile(target, 'old contents that are longer than the new ones');
    await writeFileAtomic(target, new TextEncoder().encode('new'));
    expect(await readFile(target, 'utf8')).toBe('new');
    expect(await readdir(dir)).toEqual(['ckpt.bin']);
  });

  it('writes a view of a larger buffer, not the whole buffer', async () => {
    const target = join(dir, 'view.bin');
    await writeFileAtomic(target, Uint8Array.of(1, 2, 3, 4, 5).subarray(1, 3));
    expect([...(await readFile(target))]).toEqual([2, 3]);
  });

  it('removes the temp file and rethrows when the rename fails', async () => {
    const target = join(dir, 'occupied');
    await mkdir(join(target, 'child'), { recursive: true });
    await expect(writeFileAtomic(target, Uint8Array.of(1))).rejects.toThrow(/occupied/);
    expect(await readdir(dir)).toEqual(['occupied']);
    expect(await readdir(target)).toEqual(['child']);
  });

  it('rejects when the directory cannot be created', async () => {
    await writeFile(join(dir, 'file'), 'x');
    const target = join(dir, 'file', 'sub', 'ckpt.bin');
    await expect(writeFileAtomic(target, Uint8Array.of(1))).rejects.toMatchObject({ code: expect.stringMatching(/ENOTDIR|EEXIST/), message: expect.stringContaining(`could not write ${target}: `) });
    expect(await readdir(dir)).toEqual(['file']);
  });

  const noTmpfs = tmpfsUnavailable();
  let disk: Tmpfs | null = null;
  afterEach(() => {
    disk?.unmount();
    disk = null;
  });

  it.skipIf(noTmpfs !== '')(`on a full disk: rejects naming the file and ENOSPC, removes its temp file, keeps the old file${noTmpfs ? ` (skipped: ${noTmpfs})` : ''}`, async () => {
    disk = mountTmpfs(256 * 1024);
    const target = join(disk.dir, 'ckpt.bin');
    const old = new Uint8Array(100 * 1024).fill(7);
    await writeFileAtomic(target, old);
    // The new version fits alone, but not next to the old one: the atomic write needs both.
    await expect(writeFileAtomic(target, new Uint8Array(200 * 1024).fill(9))).rejects.toMatchObject({
      code: 'ENOSPC',
      message: expect.stringMatching(new RegExp(`^could not write ${target}: ENOSPC: no space left on device`)),
    });
    expect(await readdir(disk.dir)).toEqual(['ckpt.bin']);
    expect((await readFile(target)).equals(old)).toBe(true);
  });

  it('survives concurrent writers to the same path: one complete version wins', async () => {
    const target = join(dir, 'ckpt.bin');
    const versions = Array.from({ length: 8 }, (_, v) => new Uint8Array(64 * 1024).fill(v + 1));
    await Promise.all(versions.map((bytes) => writeFileAtomic(target, bytes)));
    const result = new Uint8Array(await readFile(target));
    expect(result.length).toBe(64 * 1024);
    expect(result.every((b) => b === result[0])).toBe(true);
    expect(await readdir(dir)).toEqual(['ckpt.bin']);
  });
});

describe('sweepTempFiles', () => {
  /** A process id that was in use a moment ago and is not any more. */
  function deadPid(): number {
    const r = spawnSync(process.execPath, ['-e', '']);
    return r.pid;
  }

  it("removes only writeFileAtomic's temp files, not those of a live writer nor anything else", async () => {
    const dead = deadPid();
    const ours = [`.latest.safetensors.tmp-${dead}-0123456789ab`, `.model.safetensors.tmp-${dead}-abcdef012345`, `.summary.json.tmp-${process.pid}-a1b2c3d4e5f6`];
    const live = `.latest.safetensors.tmp-${process.ppid}-00112233aabb`; // the writer may still be at work
    const others = ['latest.safetensors', 'notes.txt', `latest.safetensors.tmp-${dead}-0123456789ab`, '.latest.safetensors.tmp-x', `.latest.safetensors.tmp-${dead}-0123456789abc`, `.latest.safetensors.tmp-${dead}-0123456789AB`];
    for (const name of [...ours, live, ...others]) await writeFile(join(dir, name), 'x');
    await mkdir(join(dir, `.sub.tmp-${dead}-0123456789ab`)); // a directory, whatever its name
    for (const name of ours) expect(TEMP_NAME.test(name), name).toBe(true);
    for (const name of others) expect(TEMP_NAME.test(name), name).toBe(false);

    const result = await sweepTempFiles(dir);
    expect(result.removed.sort()).toEqual([...ours].sort());
    expect(result.kept).toEqual([live]);
    expect((await readdir(dir)).sort()).toEqual([live, ...others, `.sub.tmp-${dead}-0123456789ab`].sort());
  });

  it('a missing directory has nothing to sweep', async () => {
    expect(await sweepTempFiles(join(dir, 'nope'))).toEqual({ removed: [], kept: [] });
  });
});
