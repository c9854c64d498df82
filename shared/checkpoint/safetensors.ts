/**
 * Reads and writes the safetensors format (https://github.com/huggingface/safetensors), so
 * checkpoints load in PyTorch with safetensors.torch.load_file:
 *
 *   [8 bytes] N, the header length, little-endian uint64
 *   [N bytes] UTF-8 JSON: { "<name>": { "dtype", "shape", "data_offsets": [begin, end] }, ...,
 *             "__metadata__": { string: string } }, padded with spaces to a multiple of 8
 *   [rest]    the data section; offsets are relative to its start, tensors are little-endian,
 *             contiguous, non-overlapping and cover it exactly.
 *
 * Decoding trusts nothing in the file: every field is checked and any inconsistency throws a
 * CheckpointFormatError naming the file.
 */

import { endianness } from 'node:os';
import { CheckpointFormatError } from './errors.js';

export { CheckpointFormatError } from './errors.js';

export type SafeDtype = 'F32' | 'F64' | 'I32' | 'I64' | 'U8';
export type SafeArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;

export interface SafeTensor {
  readonly dtype: SafeDtype;
  readonly shape: readonly number[];
  readonly data: SafeArray;
}

interface DtypeInfo {
  readonly size: number;
  readonly make: (buffer: ArrayBuffer, length: number) => SafeArray;
  readonly is: (data: SafeArray) => boolean;
}

const DTYPES: Readonly<Record<SafeDtype, DtypeInfo>> = {
  F32: { size: 4, make: (b, n) => new Float32Array(b, 0, n), is: (d) => d instanceof Float32Array },
  F64: { size: 8, make: (b, n) => new Float64Array(b, 0, n), is: (d) => d instanceof Float64Array },
  I32: { size: 4, make: (b, n) => new Int32Array(b, 0, n), is: (d) => d instanceof Int32Array },
  I64: { size: 8, make: (b, n) => new BigInt64Array(b, 0, n), is: (d) => d instanceof BigInt64Array },
  U8: { size: 1, make: (b, n) => new Uint8Array(b, 0, n), is: (d) => d instanceof Uint8Array },
};

/** Dtypes of the safetensors spec that meshgrad does not read (a clearer error than "unknown"). */
const OTHER_SPEC_DTYPES = new Set(['BOOL', 'I8', 'I16', 'U16', 'U32', 'U64', 'F16', 'BF16', 'F8_E4M3', 'F8_E5M2']);

/** The reference implementation's limit; a larger header is a corrupt length, not a real header. */
const MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = '__metadata__';

const BIG_ENDIAN_HOST = endianness() === 'BE';

/** Reverses the bytes of each element in place (little-endian file ↔ big-endian host). */
function swapBytes(bytes: Uint8Array, size: number): void {
  if (size === 1) return;
  for (let at = 0; at < bytes.length; at += size) bytes.subarray(at, at + size).reverse();
}

function isDtype(value: string): value is SafeDtype {
  return Object.hasOwn(DTYPES, value);
}

function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isShape(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((d) => Number.isSafeInteger(d) && d >= 0);
}

/**
 * Encodes tensors (and optional string metadata) as a safetensors file. Tensors are laid out by
 * element size, largest first, then by name, as the reference writer does, so every tensor starts
 * at an offset aligned to its element size.
 */
export function encodeSafetensors(
  tensors: ReadonlyMap<string, SafeTensor> | Readonly<Record<string, SafeTensor>>,
  metadata?: Readonly<Record<string, string>>,
): Uint8Array {
  const entries: [string, SafeTensor][] = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  for (const [name, t] of entries) {
    if (name === METADATA_KEY) throw new RangeError(`encodeSafetensors: '${METADATA_KEY}' cannot be a tensor name`);
    if (!isDtype(t.dtype)) throw new RangeError(`encodeSafetensors: tensor '${name}' has unsupported dtype '${String(t.dtype)}' (supported: ${Object.keys(DTYPES).join(', ')})`);
    if (!DTYPES[t.dtype].is(t.data)) {
      throw new TypeError(`encodeSafetensors: tensor '${name}' has dtype ${t.dtype} but its data is a ${t.data?.constructor?.name ?? typeof t.data}`);
    }
    if (!isShape(t.shape)) throw new RangeError(`encodeSafetensors: tensor '${name}' has invalid shape [${String(t.shape)}]`);
    if (product(t.shape) !== t.data.length) {
      throw new RangeError(`encodeSafetensors: tensor '${name}' has shape [${t.shape.join(', ')}] (${product(t.shape)} elements) but ${t.data.length} data elements`);
    }
  }
  if (metadata !== undefined) {
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== 'string') throw new TypeError(`encodeSafetensors: metadata '${key}' must be a string, got ${typeof value}`);
    }
  }
  entries.sort(([na, a], [nb, b]) => DTYPES[b.dtype].size - DTYPES[a.dtype].size || (na < nb ? -1 : na > nb ? 1 : 0));

  const header: Record<string, unknown> = {};
  if (metadata !== undefined && Object.keys(metadata).length > 0) header[METADATA_KEY] = { ...metadata };
  let offset = 0;
  for (const [name, t] of entries) {
    const end = offset + t.data.byteLength;
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, end] };
    offset = end;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLength = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let at = 8 + headerLength;
  for (const [, t] of entries) {
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    out.set(bytes, at);
    if (BIG_ENDIAN_HOST) swapBytes(out.subarray(at, at + bytes.length), DTYPES[t.dtype].size);
    at += bytes.length;
  }
  return out;
}

export interface DecodedSafetensors {
  readonly tensors: Map<string, SafeTensor>;
  readonly metadata: Record<string, string>;
}

/** Decodes a safetensors file, copying each tensor into its own aligned typed array. */
export function decodeSafetensors(bytes: Uint8Array, file = '<buffer>'): DecodedSafetensors {
  const fail = (detail: string): never => {
    throw new CheckpointFormatError(file, detail);
  };
  if (bytes.length < 8) fail(`too short for a safetensors file (${bytes.length} bytes, need at least 8)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const declared = view.getBigUint64(0, true);
  if (declared > BigInt(MAX_HEADER_BYTES)) fail(`header length ${declared} is implausibly large (limit ${MAX_HEADER_BYTES})`);
  const headerLength = Number(declared);
  if (8 + headerLength > bytes.length) fail(`header length ${headerLength} runs past the end of the file (${bytes.length} bytes)`);

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength));
  } catch {
    return fail('header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (error) {
    return fail(`header is not valid JSON (${(error as Error).message})`);
  }
  if (!isPlainObject(header)) return fail('header JSON is not an object');

  const metadata: Record<string, string> = {};
  const rawMetadata = header[METADATA_KEY];
  if (rawMetadata !== undefined) {
    if (!isPlainObject(rawMetadata)) fail(`'${METADATA_KEY}' is not an object`);
    for (const [key, value] of Object.entries(rawMetadata as Record<string, unknown>)) {
      if (typeof value !== 'string') fail(`metadata '${key}' is not a string`);
      metadata[key] = value as string;
    }
  }

  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const layout: { name: string; dtype: SafeDtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === METADATA_KEY) continue;
    if (!isPlainObject(entry)) fail(`tensor '${name}' entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
    if (typeof dtype !== 'string') return fail(`tensor '${name}' has no string dtype`);
    if (!isDtype(dtype)) {
      return fail(OTHER_SPEC_DTYPES.has(dtype)
        ? `tensor '${name}' has dtype ${dtype}, which meshgrad does not read (supported: ${Object.keys(DTYPES).join(', ')})`
        : `tensor '${name}' has unknown dtype '${dtype}'`);
    }
    if (!isShape(shape)) return fail(`tensor '${name}' has invalid shape ${JSON.stringify(shape)}`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      return fail(`tensor '${name}' has invalid data_offsets ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) fail(`tensor '${name}' has data_offsets [${begin}, ${end}] with begin after end`);
    if (end > dataLength) fail(`tensor '${name}' data_offsets [${begin}, ${end}] run past the data section (${dataLength} bytes)`);
    const elements = product(shape);
    if (!Number.isSafeInteger(elements * DTYPES[dtype].size) || elements * DTYPES[dtype].size !== end - begin) {
      fail(`tensor '${name}' has shape [${shape.join(', ')}] of ${dtype} (${elements * DTYPES[dtype].size} bytes) but data_offsets span ${end - begin} bytes`);
    }
    layout.push({ name, dtype, shape, begin, end });
  }

  // The tensors must tile the data section exactly: sorted by begin, each starts where the last ended.
  const sorted = [...layout].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  for (const t of sorted) {
    if (t.begin < covered) fail(`tensor '${t.name}' data_offsets [${t.begin}, ${t.end}] overlap another tensor`);
    if (t.begin > covered) fail(`data section bytes [${covered}, ${t.begin}) belong to no tensor`);
    covered = t.end;
  }
  if (covered !== dataLength) fail(`data section has ${dataLength} bytes but the tensors cover only ${covered}`);

  const tensors = new Map<string, SafeTensor>();
  for (const t of layout) {
    // Copy into a fresh ArrayBuffer so the typed array starts at offset 0 (aligned): a view into
    // `bytes` could sit at an offset that is not a multiple of the element size. Not bytes.slice():
    // on a Node Buffer (what readFile returns) slice() is a view, not a copy.
    const copy = new Uint8Array(t.end - t.begin);
    copy.set(bytes.subarray(dataStart + t.begin, dataStart + t.end));
    const info = DTYPES[t.dtype];
    if (BIG_ENDIAN_HOST) swapBytes(copy, info.size);
    tensors.set(t.name, { dtype: t.dtype, shape: t.shape, data: info.make(copy.buffer, (t.end - t.begin) / info.size) });
  }
  return { tensors, metadata };
}
