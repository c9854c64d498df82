/**
 * The examples in examples/ (compiled by the build into dist/examples/) run as a user would run
 * them: each exits 0 within a few seconds and every figure it prints (`name=value`) is finite.
 */

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const DIST = fileURLToPath(new URL('../../dist/examples/', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'meshgrad-examples-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function run(name: string, args: readonly string[] = []): { stdout: string; figures: Map<string, number> } {
  const file = join(DIST, `${name}.js`);
  if (!existsSync(file)) throw new Error(`${file} is missing: build first (npx tsc -p tsconfig.build.json)`);
  const r = spawnSync(process.execPath, [file, ...args], { encoding: 'utf8', timeout: 60_000 });
  expect(r.status, `${name} failed:\n${r.stdout}\n${r.stderr}`).toBe(0);
  const figures = new Map<string, number>();
  for (const [, key, value] of r.stdout.matchAll(/(\w+)=(-?[\d.]+(?:e[-+]?\d+)?|NaN|-?Infinity)(?=\s|$)/g)) figures.set(key, Number(value));
  return { stdout: r.stdout, figures };
}

function expectFinite(figures: Map<string, number>, keys: readonly string[]): void {
  for (const k of keys) expect(figures.has(k), `prints ${k}`).toBe(true);
  for (const [k, v] of figures) expect(Number.isFinite(v), `${k}=${v}`).toBe(true);
}

describe('examples', () => {
  it('custom-model: a Module subclass trained with train()', () => {
    const { figures } = run('custom-model');
    expectFinite(figures, ['steps', 'test_loss', 'test_accuracy', 'parameters']);
    expect(figures.get('test_accuracy')).toBeGreaterThan(0.6);
  });

  it('custom-loop: forward, loss, backward and optimizer.step by hand, then a checkpoint round trip', () => {
    const path = join(scratch, 'loop.safetensors');
    const { figures } = run('custom-loop', [path]);
    expectFinite(figures, ['first_loss', 'last_loss', 'max_difference']);
    expect(figures.get('last_loss')!).toBeLessThan(figures.get('first_loss')!);
    expect(existsSync(path)).toBe(true);
  });

  it('custom-dataset: a Dataset implementation trained with train() and scored with evaluate()', () => {
    const { figures } = run('custom-dataset');
    expectFinite(figures, ['steps', 'train_loss', 'test_accuracy_after', 'test_loss']);
    expect(figures.get('test_accuracy_after')).toBeGreaterThan(0.8);
  });
});
