/**
 * Image classification from a directory of the user's own pictures (`--dataset images:DIR`,
 * `images-gray:DIR`): one sub-folder per class, the class names being the sub-folders' names,
 * sorted (by code unit); in each, PNG and JPEG files, chosen by extension (.png, .jpg, .jpeg, any
 * case; other files and dot-files are skipped), read in sorted order. PNGs are decoded by pngjs
 * and JPEGs by jpeg-js (both pure JS, so no native build), each to 8-bit RGBA. The alpha channel
 * is dropped (not composited); a grayscale image gives three equal channels, and `images-gray:`
 * turns RGB into one luma channel (ITU-R BT.601: 0.299 R + 0.587 G + 0.114 B). Every image is
 * resized to IMAGE_FOLDER_SIZE x IMAGE_FOLDER_SIZE (32x32) by bilinear interpolation, written
 * here because it is a dozen lines and needs no image library: pixel centres are aligned (as
 * OpenCV's INTER_LINEAR and PyTorch's align_corners=false), so a uniform image stays that colour;
 * a large downscale is not low-pass filtered first, and so may alias. Samples are [C, H, W]
 * (C = 3, or 1 for `images-gray:`) scaled to [0, 1]; a seeded 20 % of the images (HOLD_OUT, as
 * for a CSV file) is held out as the test split. Every failure is one line naming the file or
 * directory at fault.
 */

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import jpeg from 'jpeg-js';
import pngjs from 'pngjs';
import { HOLD_OUT, holdOutIndices, ImageClassificationDataset, SubsetDataset } from './dataset.js';
import { DataFormatError } from './errors.js';

/** The height and width every image is resized to. */
export const IMAGE_FOLDER_SIZE = 32;

export const IMAGE_EXTENSIONS: readonly string[] = Object.freeze(['.png', '.jpg', '.jpeg']);

export interface ImageFolderOptions {
  /** 3 (RGB, the default) or 1 (luma). */
  readonly channels?: 1 | 3;
  /** The side images are resized to (default IMAGE_FOLDER_SIZE). */
  readonly size?: number;
}

/** The classes of an image folder and their files, listed without decoding any image. */
export interface ImageFolderListing {
  readonly dir: string;
  /** Sub-folder names, sorted: class id order. */
  readonly classNames: readonly string[];
  /** Per class, its image files (absolute paths), sorted. */
  readonly files: readonly (readonly string[])[];
}

function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Lists the class sub-folders of `dir` and their image files; refuses a missing directory, one without sub-folders, an empty class. */
export function listImageFolder(dir: string): ImageFolderListing {
  const root = resolve(dir);
  if (!existsSync(root)) throw new Error(`image directory not found: ${root}; expected a directory with one sub-folder of PNG/JPEG images per class`);
  if (!statSync(root).isDirectory()) throw new Error(`${root}: not a directory; expected a directory with one sub-folder of PNG/JPEG images per class`);
  const entries = readdirSync(root, { withFileTypes: true }).filter((e) => !e.name.startsWith('.'));
  const classNames = entries.filter((e) => e.isDirectory() || (e.isSymbolicLink() && statSync(join(root, e.name)).isDirectory())).map((e) => e.name).sort(byCodeUnit);
  if (classNames.length === 0) throw new Error(`${root}: has no sub-folders; expected one sub-folder of PNG/JPEG images per class (its name is the class name)`);
  const files = classNames.map((name) => {
    const folder = join(root, name);
    const images = readdirSync(folder)
      .filter((f) => !f.startsWith('.') && IMAGE_EXTENSIONS.includes(extname(f).toLowerCase()))
      .sort(byCodeUnit)
      .map((f) => join(folder, f))
      .filter((p) => statSync(p).isFile());
    if (images.length === 0) throw new Error(`${folder}: the class folder '${name}' holds no images (${IMAGE_EXTENSIONS.join(', ')} files)`);
    return images;
  });
  return { dir: root, classNames, files };
}

/** Decodes a PNG or JPEG file (by extension) to 8-bit RGBA. */
export function decodeImage(file: string): { width: number; height: number; rgba: Uint8Array } {
  const bytes = readFileSync(file);
  const ext = extname(file).toLowerCase();
  try {
    if (ext === '.png') {
      const png = pngjs.PNG.sync.read(bytes);
      return { width: png.width, height: png.height, rgba: png.data };
    }
    const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true });
    if (!(img.width > 0 && img.height > 0) || img.data.length !== img.width * img.height * 4) throw new Error('no image data');
    return { width: img.width, height: img.height, rgba: img.data };
  } catch (err) {
    const message = String((err as Error)?.message ?? err).split('\n')[0];
    throw new DataFormatError(file, `cannot decode this ${ext === '.png' ? 'PNG' : 'JPEG'} image: ${message}`, { cause: err });
  }
}

/**
 * Bilinear resize of one channel plane (w x h bytes) to size x size, with aligned pixel centres:
 * output pixel i samples the input at (i + 0.5) * in / out - 0.5, clamped to the edge.
 */
export function resizeBilinear(src: ArrayLike<number>, w: number, h: number, size: number, out: Uint8Array, offset = 0): void {
  const sx = w / size;
  const sy = h / size;
  for (let y = 0; y < size; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), h - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, h - 1);
    const dy = fy - y0;
    for (let x = 0; x < size; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), w - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, w - 1);
      const dx = fx - x0;
      const top = src[y0 * w + x0] * (1 - dx) + src[y0 * w + x1] * dx;
      const bottom = src[y1 * w + x0] * (1 - dx) + src[y1 * w + x1] * dx;
      out[offset + y * size + x] = Math.round(top * (1 - dy) + bottom * dy);
    }
  }
}

/** One image file as C x size x size bytes (CHW). */
export function imageToChw(file: string, channels: 1 | 3, size: number): Uint8Array {
  const { width, height, rgba } = decodeImage(file);
  const n = width * height;
  const planes: Float32Array[] = [];
  if (channels === 3) {
    for (let c = 0; c < 3; c++) {
      const plane = new Float32Array(n);
      for (let i = 0; i < n; i++) plane[i] = rgba[i * 4 + c];
      planes.push(plane);
    }
  } else {
    const plane = new Float32Array(n);
    for (let i = 0; i < n; i++) plane[i] = 0.299 * rgba[i * 4] + 0.587 * rgba[i * 4 + 1] + 0.114 * rgba[i * 4 + 2];
    planes.push(plane);
  }
  const out = new Uint8Array(channels * size * size);
  planes.forEach((plane, c) => resizeBilinear(plane, width, height, size, out, c * size * size));
  return out;
}

export function imageFolderSampleShape(opts: ImageFolderOptions = {}): readonly number[] {
  const size = opts.size ?? IMAGE_FOLDER_SIZE;
  return Object.freeze([opts.channels ?? 3, size, size]);
}

/** Reads every image of `dir` and splits them (HOLD_OUT) into train and test. */
export function loadImageFolder(dir: string, opts: ImageFolderOptions = {}): { train: SubsetDataset; test: SubsetDataset; classNames: readonly string[] } {
  const channels = opts.channels ?? 3;
  const size = opts.size ?? IMAGE_FOLDER_SIZE;
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`image size must be a positive integer, got ${size}`);
  const listing = listImageFolder(dir);
  const total = listing.files.reduce((sum, f) => sum + f.length, 0);
  if (total < 2) throw new Error(`${listing.dir}: holds ${total} image(s); need at least 2 to hold a test split out`);
  const sampleSize = channels * size * size;
  const pixels = new Uint8Array(total * sampleSize);
  const labels = new Int32Array(total);
  let i = 0;
  listing.files.forEach((files, label) => {
    for (const file of files) {
      pixels.set(imageToChw(file, channels, size), i * sampleSize);
      labels[i++] = label;
    }
  });
  const name = channels === 1 ? 'images-gray' : 'images';
  const all = new ImageClassificationDataset({ name, pixels, labels, sampleShape: imageFolderSampleShape({ channels, size }), numClasses: listing.classNames.length });
  const split = holdOutIndices(total, HOLD_OUT.fraction, HOLD_OUT.seed);
  return { train: new SubsetDataset(all, split.train, `${name}/train`), test: new SubsetDataset(all, split.test, `${name}/test`), classNames: listing.classNames };
}
