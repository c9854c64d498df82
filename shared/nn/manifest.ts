/**
 * A model's manifest: its parameters' and buffers' names and shapes, in order. Every replica of a
 * run must build the same one as the coordinator (which sends its own in the welcome), or the
 * gradients it sends would be summed into the wrong tensors.
 */

import { formatShape } from '../tensor/shape.js';
import type { Module } from './module.js';

export interface ManifestEntry {
  readonly name: string;
  readonly shape: readonly number[];
}

export interface Manifest {
  readonly parameters: readonly ManifestEntry[];
  readonly buffers: readonly ManifestEntry[];
}

export function modelManifest(model: Module): Manifest {
  return {
    parameters: model.namedParameters().map(([name, t]) => ({ name, shape: t.shape })),
    buffers: model.namedBuffers().map(([name, t]) => ({ name, shape: t.shape })),
  };
}

function firstDifference(kind: string, here: readonly ManifestEntry[], there: readonly ManifestEntry[], hereName: string, thereName: string): string | null {
  for (let i = 0; i < Math.max(here.length, there.length); i++) {
    const a = here[i];
    const b = there[i];
    if (!a) return `${thereName} has ${kind} ${i} '${b.name}' ${formatShape(b.shape)}, ${hereName} has only ${here.length} ${kind}s`;
    if (!b) return `${hereName} has ${kind} ${i} '${a.name}' ${formatShape(a.shape)}, ${thereName} has only ${there.length} ${kind}s`;
    if (a.name !== b.name) return `${kind} ${i} is '${a.name}' ${hereName} but '${b.name}' ${thereName}`;
    if (a.shape.length !== b.shape.length || a.shape.some((d, j) => d !== b.shape[j])) return `${kind} '${a.name}' is ${formatShape(a.shape)} ${hereName} but ${formatShape(b.shape)} ${thereName}`;
  }
  return null;
}

/** The first difference between two manifests, in one phrase (e.g. "parameter 'out.weight' is [3, 32] here but [3, 16] at the coordinator"), or null. */
export function manifestDifference(here: Manifest, there: Manifest, hereName = 'here', thereName = 'there'): string | null {
  return firstDifference('parameter', here.parameters, there.parameters, hereName, thereName) ?? firstDifference('buffer', here.buffers, there.buffers, hereName, thereName);
}
