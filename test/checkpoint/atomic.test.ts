/** writeFileAtomic: creates, replaces, cleans up its temp file on failure, creates directories. */

import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../shared/checkpoint/index.js';

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
    await expect(writeFileAtomic(join(dir, 'file', 'sub', 'ckpt.bin'), Uint8Array.of(1))).rejects.toMatchObject({ code: expect.stringMatching(/ENOTDIR|EEXIST/) });
    expect(await readdir(dir)).toEqual(['file']);
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
