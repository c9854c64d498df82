/**
 * Models written as code. A module file (JavaScript: compile TypeScript first, Node 20 does not
 * import .ts) default-exports `defineModel({ name, input, create })`; `meshgrad train|coordinator|
 * worker|local --module FILE` loads it. Every process loads the same file itself, as torchrun runs
 * the same script on every node: the code never travels, only its module spec (spec.ts) does, and
 * the coordinator's parameter names and shapes, which each worker's build must match (manifest.ts).
 *
 * Loaded definitions are kept in a per-process (per-thread) registry by name, so the synchronous
 * `buildModel(spec)` can build a module spec wherever a layer spec is built.
 */

import { basename, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Rng } from '../util/random.js';
import { ModelSpecError } from './model-error.js';
import type { Module } from './module.js';
import type { ModelDefaults, ModuleModelSpec } from './spec.js';

/** What `create` is given to build the model. */
export interface ModelContext {
  /** The dataset's number of classes (the vocabulary size for text): the output width. */
  readonly numClasses: number;
  /** One sample's shape (the definition's `input`). */
  readonly input: readonly number[];
  /** Draw every initial value from this generator: then the same seed gives the same bits. */
  readonly rng: Rng;
}

/** A model written as code, as a module file exports it. */
export interface ModelDefinition {
  /** The model's name, in logs, checkpoints and run records; every worker's file must define the same. */
  readonly name: string;
  /** One sample's shape, without the batch dimension ([features], [channels, height, width], or [time] for token ids). */
  readonly input: readonly number[];
  /** The model reads token ids [time] (a character language model). */
  readonly tokens?: boolean;
  /** Suggested hyper-parameters; CLI flags override them. */
  readonly defaults?: ModelDefaults;
  /** Builds the model: forward takes a batch [N, ...input] and returns scores [N, numClasses] ([N, time, numClasses] for tokens). */
  create(context: ModelContext): Module;
}

const registry = new Map<string, { readonly definition: ModelDefinition; readonly spec: ModuleModelSpec }>();
/** The spec of each module file loaded, by absolute path. */
const loadedFiles = new Map<string, ModuleModelSpec>();

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The problem with `value` as a model definition, or null when it is one. */
function definitionProblem(value: unknown): string | null {
  if (!isRecord(value)) return `expected an object { name, input, create }, got ${value === null ? 'null' : typeof value}`;
  if (typeof value.name !== 'string' || value.name.length === 0) return `'name' must be a non-empty string, got ${JSON.stringify(value.name)}`;
  const input = value.input;
  if (!Array.isArray(input) || input.length === 0 || !input.every((d) => Number.isInteger(d) && (d as number) > 0)) {
    return `'input' must be one sample's shape, a non-empty array of positive integers, got ${JSON.stringify(input)}`;
  }
  if (typeof value.create !== 'function') return `'create' must be a function ({ numClasses, input, rng }) => Module, got ${typeof value.create}`;
  if (value.tokens !== undefined && typeof value.tokens !== 'boolean') return `'tokens' must be a boolean, got ${JSON.stringify(value.tokens)}`;
  if (value.tokens === true && input.length !== 1) return `a model reading tokens takes input [time], got ${JSON.stringify(input)}`;
  if (value.defaults !== undefined && !isRecord(value.defaults)) return `'defaults' must be an object`;
  return null;
}

/**
 * Declares a model written as code (the default export of a module file). Checks the definition
 * at once, so a mistake is reported where it is made; returns it unchanged, typed.
 */
export function defineModel<D extends ModelDefinition>(definition: D): D {
  const problem = definitionProblem(definition);
  if (problem) throw new ModelSpecError(`defineModel: ${problem}`);
  return definition;
}

/**
 * Registers `definition` for this process (or thread) and returns the module spec that stands for
 * it (`file`: the module file, whose base name the spec records for messages).
 */
export function registerModel(definition: ModelDefinition, file = definition.name): ModuleModelSpec {
  const problem = definitionProblem(definition);
  if (problem) throw new ModelSpecError(`model definition from ${file}: ${problem}`);
  const spec: ModuleModelSpec = {
    name: definition.name,
    input: [...definition.input],
    module: basename(file),
    ...(definition.tokens ? { tokens: true } : {}),
    ...(definition.defaults ? { defaults: { ...definition.defaults } } : {}),
  };
  registry.set(definition.name, { definition, spec });
  return spec;
}

/** The definition registered under `name`, if this process loaded one. */
export function registeredModel(name: string): ModelDefinition | undefined {
  return registry.get(name)?.definition;
}

/** The names of the definitions this process has registered (for messages). */
export function registeredModelNames(): string[] {
  return [...registry.keys()];
}

export interface LoadedModelFile {
  readonly definition: ModelDefinition;
  readonly spec: ModuleModelSpec;
  /** The absolute path that was imported. */
  readonly path: string;
}

/**
 * Imports a module file and registers its model: the default export (or a named export `model`)
 * made by `defineModel`. Fails in one line naming the file when it cannot be imported or does not
 * define a model.
 */
export async function loadModelFile(file: string): Promise<LoadedModelFile> {
  const path = resolve(file);
  if (/\.(c|m)?tsx?$/.test(path)) {
    throw new ModelSpecError(`--module ${file}: a TypeScript file; compile it to JavaScript first (tsc), Node.js 20 imports .js/.mjs only`);
  }
  let exports: Record<string, unknown>;
  try {
    exports = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const reason = e.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes(path) ? 'no such file' : (e.message ?? String(err)).split('\n')[0];
    throw new ModelSpecError(`--module ${file}: cannot import it: ${reason}`);
  }
  const candidate = exports.default ?? exports.model;
  if (candidate === undefined) throw new ModelSpecError(`--module ${file}: exports no model: default-export defineModel({ name, input, create })`);
  const problem = definitionProblem(candidate);
  if (problem) throw new ModelSpecError(`--module ${file}: its export is not a model definition: ${problem}`);
  const definition = candidate as ModelDefinition;
  const spec = registerModel(definition, path);
  loadedFiles.set(path, spec);
  return { definition, spec, path };
}

/** The spec of a module file `loadModelFile` has loaded in this process (the CLI loads --module first thing). */
export function loadedModelSpec(file: string): ModuleModelSpec {
  const spec = loadedFiles.get(resolve(file));
  if (!spec) throw new Error(`internal: --module ${file} was not loaded before use`);
  return spec;
}
