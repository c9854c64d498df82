// `meshgrad spec`: a preset printed as JSON, which `train --model FILE` accepts.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PRESETS, presetNames } from '../../shared/nn/presets.js';
import { parseModelSpec } from '../../shared/nn/spec.js';
import { runCli } from '../helpers/cli.js';

let dir = '';
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = '';
});

describe('meshgrad spec', () => {
  it('lists the presets without a name', async () => {
    const { code, stdout } = await runCli(['spec']);
    expect(code).toBe(0);
    for (const name of presetNames()) expect(stdout).toMatch(new RegExp(`^${name} `, 'm'));
  });

  it('prints each preset as JSON that parses back to the same spec', async () => {
    for (const name of presetNames()) {
      const { code, stdout } = await runCli(['spec', name]);
      expect(code, name).toBe(0);
      const json = JSON.parse(stdout) as unknown;
      expect(json).toEqual(PRESETS[name]);
      expect(parseModelSpec(json, name)).toEqual(PRESETS[name]);
    }
  });

  it('refuses an unknown preset in one line', async () => {
    const { code, stderr } = await runCli(['spec', 'resnet999']);
    expect(code).not.toBe(0);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/unknown preset 'resnet999'.*mlp/);
  });

  it('its output is a model file train --model accepts', async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgrad-spec-'));
    const printed = await runCli(['spec', 'mlp']);
    const file = join(dir, 'model.json');
    writeFileSync(file, printed.stdout);
    const { code, stderr, stdout } = await runCli(['train', '--model', file, '--max-steps', '1', '--train-samples', '256', '--test-samples', '64', '--threads', '1']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/1 steps/);
  });
});
