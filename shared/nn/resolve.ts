/** Finds a model spec by preset name or JSON file path (what `--model` accepts). */

import { existsSync, readFileSync } from 'node:fs';
import { PRESETS, presetNames } from './presets.js';
import { ModelSpecError, parseModelSpec, type ModelSpec } from './spec.js';

export function resolveModelSpec(nameOrPath: string): ModelSpec {
  const preset = PRESETS[nameOrPath];
  if (preset) return preset;
  if (!nameOrPath.endsWith('.json') && !existsSync(nameOrPath)) {
    throw new ModelSpecError(`unknown model '${nameOrPath}': not a preset (${presetNames().join(', ')}) nor a JSON file`);
  }
  let text: string;
  try {
    text = readFileSync(nameOrPath, 'utf8');
  } catch (err) {
    throw new ModelSpecError(`cannot read model spec ${nameOrPath}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ModelSpecError(`${nameOrPath}: not valid JSON (${(err as Error).message})`);
  }
  return parseModelSpec(json, nameOrPath);
}
