/**
 * Tests for `images:DIR` / `images-gray:DIR` (shared/data/image-folder.ts): small PNG and JPEG
 * files written here (by pngjs and jpeg-js, the decoders' own encoders) into temp directories,
 * one sub-folder per class: RGB, grayscale and RGBA PNGs, JPEGs, sizes other than 32x32 (resized
 * bilinearly), the one-line errors (a corrupt file, an empty class, no sub-folders, no directory),
 * what describeDataset tells before decoding, and one `meshgrad train` run through the CLI.
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import pngjs from 'pngjs';
import { afterEach, describe, expect, it } from 'vitest';
import { resizeBilinear } from '../../shared/data/image-folder.js';
import { describeDataset, openDataset } from '../../shared/data/registry.js';
import { runCli } from '../helpers/cli.js';
import { TempDirs } from './idx-fixtures.js';

const temps = new TempDirs();
afterEach(() => temps.cleanup());

const EXAMPLES = join(import.meta.dirname, '..', '..', 'examples', 'data');

type Rgba = [number, number, number, number];

/** A w x h RGBA buffer, each pixel from `at(x, y)`. */
function rgbaImage(w: number, h: number, at: (x: number, y: number) => Rgba): Buffer {
  const data = Buffer.alloc(w * h * 4);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.set(at(x, y), (y * w + x) * 4);
  return data;
}

/** A PNG: colorType 2 (RGB), 0 (grayscale) or 6 (RGBA); pngjs takes RGBA input for each. */
function png(w: number, h: number, at: (x: number, y: number) => Rgba, colorType: 0 | 2 | 6 = 2): Buffer {
  const image = new pngjs.PNG({ width: w, height: h });
  image.data = rgbaImage(w, h, at);
  return pngjs.PNG.sync.write(image, { colorType, inputHasAlpha: true });
}

function jpg(w: number, h: number, rgb: [number, number, number]): Buffer {
  return jpeg.encode({ width: w, height: h, data: rgbaImage(w, h, () => [...rgb, 255]) }, 95).data;
}

/** Writes `files` (class/name -> bytes) under a new temp directory and returns it. */
function folder(files: Record<string, Buffer | string>): string {
  const root = temps.make();
  for (const [path, bytes] of Object.entries(files)) {
    const parts = path.split('/');
    if (parts.length > 1) mkdirSync(join(root, ...parts.slice(0, -1)), { recursive: true });
    writeFileSync(join(root, ...parts), bytes);
  }
  return root;
}

const uniform = (rgb: [number, number, number], a = 255) => (): Rgba => [...rgb, a];

/** Every value of sample `i` of `ds`, channel by channel. */
function sample(ds: ReturnType<typeof openDataset>['train'], i: number): Float32Array {
  return Float32Array.from(ds.batch([i]).x);
}

describe('images:DIR', () => {
  it('reads one class per sub-folder (sorted), PNG and JPEG of any case, resized to [3, 32, 32] in [0, 1]', () => {
    const dir = folder({
      'red/a.png': png(32, 32, uniform([255, 0, 0])),
      'red/b.PNG': png(10, 7, uniform([255, 0, 0])),
      'red/notes.txt': 'not an image',
      'blue/a.jpg': jpg(16, 16, [0, 0, 255]),
      'blue/b.JPEG': jpg(40, 24, [0, 0, 255]),
      'blue/.hidden.png': 'skipped',
      'green/a.png': png(64, 64, uniform([0, 255, 0])),
    });
    const data = openDataset(`images:${dir}`);
    expect(data.classNames).toEqual(['blue', 'green', 'red']);
    expect(data.train.size + data.test.size).toBe(5);
    expect(data.test.size).toBe(1);
    expect(data.train.sampleShape).toEqual([3, 32, 32]);
    expect(data.train.numClasses).toBe(3);
    const expected: Record<number, [number, number, number]> = { 0: [0, 0, 1], 1: [0, 1, 0], 2: [1, 0, 0] };
    for (const ds of [data.train, data.test]) {
      for (let i = 0; i < ds.size; i++) {
        const x = sample(ds, i);
        const label = ds.batch([i]).y[0];
        for (let c = 0; c < 3; c++) {
          for (let k = 0; k < 1024; k++) expect(Math.abs(x[c * 1024 + k] - expected[label][c])).toBeLessThan(0.02); // JPEG is lossy
        }
      }
    }
  });

  it('keeps a uniform colour exactly through resizing, drops alpha and expands grayscale', () => {
    const dir = folder({
      'a/odd.png': png(13, 50, uniform([200, 100, 50])),
      'b/rgba.png': png(20, 20, uniform([10, 20, 30], 0), 6),
      'c/gray.png': png(5, 9, uniform([77, 77, 77]), 0),
    });
    const data = openDataset(`images:${dir}`);
    const all = [data.train, data.test].flatMap((ds) => Array.from({ length: ds.size }, (_, i) => ({ x: sample(ds, i), label: ds.batch([i]).y[0] })));
    const want: Record<number, number[]> = { 0: [200, 100, 50], 1: [10, 20, 30], 2: [77, 77, 77] };
    expect(all.map((s) => s.label).sort()).toEqual([0, 1, 2]);
    for (const { x, label } of all) {
      expect(x.length).toBe(3 * 32 * 32);
      for (let c = 0; c < 3; c++) for (const k of [0, 31, 500, 1023]) expect(x[c * 1024 + k]).toBeCloseTo(want[label][c] / 255, 6);
    }
  });

  it('images-gray: one luma channel [1, 32, 32]', () => {
    const dir = folder({ 'a/x.png': png(8, 8, uniform([255, 255, 255])), 'b/y.png': png(8, 8, uniform([255, 0, 0])) });
    expect(describeDataset(`images-gray:${dir}`).sampleShape).toEqual([1, 32, 32]);
    const data = openDataset(`images-gray:${dir}`);
    expect(data.train.sampleShape).toEqual([1, 32, 32]);
    for (const ds of [data.train, data.test]) {
      const x = sample(ds, 0);
      expect(x.length).toBe(1024);
      expect(x[100]).toBeCloseTo(ds.batch([0]).y[0] === 0 ? 1 : Math.round(0.299 * 255) / 255, 6);
    }
  });

  it('resizes bilinearly with aligned pixel centres', () => {
    // A 2x1 ramp 0, 100 upscaled to 4: samples at -0.25 (clamped), 0.25, 0.75, 1.25 (clamped).
    const out = new Uint8Array(16);
    resizeBilinear([0, 100, 0, 100], 2, 2, 4, out);
    expect(Array.from(out.subarray(0, 4))).toEqual([0, 25, 75, 100]);
    // A horizontal gradient image: the resized left edge is dark, the right edge bright.
    const dir = folder({ 'a/g.png': png(64, 8, (x) => [x * 4, x * 4, x * 4, 255]), 'a/h.png': png(64, 8, (x) => [x * 4, x * 4, x * 4, 255]) });
    const x = sample(openDataset(`images:${dir}`).train, 0);
    // Output column i samples input column 2i + 0.5: halfway between values 8i and 8i + 4.
    for (const i of [0, 16, 31]) expect(x[i]).toBeCloseTo((8 * i + 2) / 255, 6);
  });

  it('describeDataset lists the classes without decoding', () => {
    const dir = folder({ 'cat/1.png': 'not decoded yet', 'dog/1.jpg': 'nor this' });
    expect(describeDataset(`images:${dir}`)).toMatchObject({ input: 'features', sampleShape: [3, 32, 32], labelsPerSample: 1, numClasses: 2, samples: 'images' });
  });

  it('refuses a corrupt image in one line naming the file', () => {
    const dir = folder({ 'a/good.png': png(4, 4, uniform([1, 2, 3])), 'b/bad.png': Buffer.from('this is no PNG'), 'c/bad.jpg': Buffer.from([0xff, 0xd8, 0xff, 0x00, 1, 2]) });
    expect(() => openDataset(`images:${dir}`)).toThrow(new RegExp(`^${escape(join(dir, 'b', 'bad.png'))}: cannot decode this PNG image: [^\\n]+$`));
    const jpgOnly = folder({ 'a/good.png': png(4, 4, uniform([1, 2, 3])), 'c/bad.jpg': Buffer.from([0xff, 0xd8, 0xff, 0x00, 1, 2]) });
    expect(() => openDataset(`images:${jpgOnly}`)).toThrow(new RegExp(`^${escape(join(jpgOnly, 'c', 'bad.jpg'))}: cannot decode this JPEG image: [^\\n]+$`));
  });

  it('refuses an empty class folder, a directory without sub-folders and a missing directory', () => {
    const empty = folder({ 'a/x.png': png(4, 4, uniform([0, 0, 0])), 'b/readme.txt': 'no images' });
    expect(() => describeDataset(`images:${empty}`)).toThrow(`${join(empty, 'b')}: the class folder 'b' holds no images (.png, .jpg, .jpeg files)`);
    expect(() => openDataset(`images:${empty}`)).toThrow(/the class folder 'b' holds no images/);
    const flat = folder({ 'x.png': png(4, 4, uniform([0, 0, 0])) });
    expect(() => openDataset(`images:${flat}`)).toThrow(`${flat}: has no sub-folders; expected one sub-folder of PNG/JPEG images per class (its name is the class name)`);
    const missing = join(temps.make(), 'nope');
    expect(() => describeDataset(`images:${missing}`)).toThrow(`image directory not found: ${missing}`);
    const one = folder({ 'a/x.png': png(4, 4, uniform([0, 0, 0])) });
    expect(() => openDataset(`images:${one}`)).toThrow(/holds 1 image\(s\); need at least 2/);
  });

  it('trains through the CLI: meshgrad train --dataset images:DIR', { timeout: 60_000 }, async () => {
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 6; i++) {
      files[`dark/${i}.png`] = png(20 + i, 24, uniform([20 + i, 30, 40]));
      files[`light/${i}.jpg`] = jpg(36, 30 + i, [220, 210 - i, 200]);
    }
    const dir = folder(files);
    const r = await runCli(['train', '--model', join(EXAMPLES, 'cifar10-mlp.json'), '--dataset', `images:${dir}`, '--epochs', '2', '--batch-size', '4', '--seed', '1'], { timeoutMs: 60_000 });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toMatch(/test accuracy/);
  });

  it("resizes to the model's input: a [1, 16, 16] model reads 16x16 images", { timeout: 60_000 }, async () => {
    const dir = folder({ 'a/x.png': png(40, 40, uniform([0, 0, 0])), 'a/y.png': png(40, 40, uniform([0, 0, 0])), 'b/z.png': png(9, 7, uniform([255, 255, 255])), 'b/w.png': png(9, 7, uniform([255, 255, 255])) });
    expect(describeDataset(`images-gray:${dir}`, { imageSize: 16 }).sampleShape).toEqual([1, 16, 16]);
    expect(openDataset(`images-gray:${dir}`, { imageSize: 16 }).train.sampleShape).toEqual([1, 16, 16]);
    const spec = join(dir, 'small.json');
    writeFileSync(spec, JSON.stringify({ name: 'small', input: [1, 16, 16], layers: [{ type: 'flatten' }, { type: 'linear', out: 8 }, { type: 'relu' }, { type: 'linear' }] }));
    const r = await runCli(['train', '--model', spec, '--dataset', `images-gray:${dir}`, '--epochs', '1', '--batch-size', '2'], { timeoutMs: 60_000 });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    // A non-square input has no side to resize to: the 32x32 default, refused against the model naming both shapes.
    writeFileSync(spec, JSON.stringify({ name: 'wide', input: [1, 16, 20], layers: [{ type: 'flatten' }, { type: 'linear' }] }));
    const wide = await runCli(['train', '--model', spec, '--dataset', `images-gray:${dir}`, '--epochs', '1', '--batch-size', '2']);
    expect(wide.code).not.toBe(0);
    expect(wide.stderr).toMatch(/\[1, 16, 20\][\s\S]*\[1, 32, 32\]|\[1, 32, 32\][\s\S]*\[1, 16, 20\]/);
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
