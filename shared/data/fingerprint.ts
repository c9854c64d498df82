/**
 * A dataset's fingerprint: its size, sample shape, classes, and a SHA-256 over up to 64 samples
 * spread evenly across it (their float32 features and int32 labels, bit for bit). A worker that
 * reads its shard from its own copy of the data compares its fingerprint with the coordinator's
 * before computing anything: a different file, another label column or other feature scaling
 * would otherwise train on other samples than the indices name, silently.
 *
 * Reading 64 samples keeps the check cheap for any dataset size; a copy that differs only in
 * samples the spread skips goes unnoticed, which is why size, shape and classes are compared too.
 */

import { createHash } from 'node:crypto';
import type { Dataset } from './dataset.js';

export interface DatasetFingerprint {
  readonly size: number;
  readonly sampleShape: readonly number[];
  readonly numClasses: number;
  /** Hex SHA-256 of the sampled features and labels. */
  readonly digest: string;
}

/** Samples hashed at most. */
export const FINGERPRINT_SAMPLES = 64;

/** The indices hashed: min(64, size) of them, evenly spread from the first sample. */
export function fingerprintIndices(size: number): Int32Array {
  const k = Math.min(FINGERPRINT_SAMPLES, size);
  return Int32Array.from({ length: k }, (_, i) => Math.floor((i * size) / k));
}

export function datasetFingerprint(ds: Dataset): DatasetFingerprint {
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ size: ds.size, sampleShape: ds.sampleShape, numClasses: ds.numClasses, labelsPerSample: ds.labelsPerSample ?? 1 }));
  const indices = fingerprintIndices(ds.size);
  if (indices.length > 0) {
    const batch = ds.batch(indices);
    hash.update(new Uint8Array(batch.x.buffer, batch.x.byteOffset, batch.x.byteLength));
    hash.update(new Uint8Array(batch.y.buffer, batch.y.byteOffset, batch.y.byteLength));
  }
  return { size: ds.size, sampleShape: [...ds.sampleShape], numClasses: ds.numClasses, digest: hash.digest('hex') };
}

/** How `here` differs from `there` in words (null: the same data), for the worker's refusal. */
export function fingerprintDifference(here: DatasetFingerprint, there: DatasetFingerprint): string | null {
  if (here.size !== there.size) return `${here.size} training samples here, ${there.size} at the coordinator`;
  if (here.sampleShape.join('x') !== there.sampleShape.join('x')) return `samples of shape [${here.sampleShape.join(', ')}] here, [${there.sampleShape.join(', ')}] at the coordinator`;
  if (here.numClasses !== there.numClasses) return `${here.numClasses} classes here, ${there.numClasses} at the coordinator`;
  if (here.digest !== there.digest) return 'the same size and shape, but other values (another file, label column or feature scaling)';
  return null;
}
