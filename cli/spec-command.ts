/** `meshgrad spec [PRESET]`: print a preset's model spec as JSON, a starting point for `--model FILE`. */

import { Command } from 'commander';
import { PRESETS, presetNames } from '../shared/nn/presets.js';
import type { Output } from './progress.js';

/** One line per preset: its name, input shape and number of layers. */
export function presetList(): string[] {
  const names = presetNames();
  const width = Math.max(...names.map((n) => n.length));
  return names.map((name) => {
    const spec = PRESETS[name]!;
    return `${name.padEnd(width)}  input [${spec.input.join(', ')}], ${spec.layers.length} layers`;
  });
}

export function specCommand(out: Output): Command {
  return new Command('spec')
    .description('print a model preset as a JSON spec (save it, edit it, pass it to --model FILE); without a name, list the presets')
    .argument('[preset]', `preset name (${presetNames().join(', ')})`)
    .action((preset: string | undefined) => {
      if (preset === undefined) {
        for (const line of presetList()) out.write(line);
        out.write('meshgrad spec NAME > model.json prints one; train --model model.json uses it');
        return;
      }
      const spec = PRESETS[preset];
      if (!spec) throw new Error(`unknown preset '${preset}' (${presetNames().join(', ')})`);
      out.write(JSON.stringify(spec, null, 2));
    });
}
