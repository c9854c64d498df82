/** `meshgrad generate`: sample text from a trained character-level language model checkpoint. */

import { Command, Option } from 'commander';
import { loadCheckpoint } from '../shared/checkpoint/checkpoint.js';
import { CharVocabulary } from '../shared/data/text.js';
import { buildModel, contextLength, isModuleSpec, parseModelSpec } from '../shared/nn/spec.js';
import { loadModelFile, registeredModel } from '../shared/nn/user-model.js';
import { generateTextAsync } from '../shared/train/generate.js';
import { loadModelState } from '../shared/train/params.js';
import { Rng } from '../shared/util/random.js';
import { addBackendOptions, configureBackend, type BackendFlags } from './backend-options.js';
import { integer, nonNegativeFloat, positiveInt } from './flags.js';
import type { Output } from './progress.js';

interface GenerateFlags extends BackendFlags {
  checkpoint: string;
  /** The module file of a model written in code (defineModel), as given to train --module. */
  module?: string;
  prompt: string;
  length: number;
  temperature: number;
  seed: number;
}

export function generateCommand(out: Output): Command {
  const cmd = new Command('generate')
    .description('sample text from a trained language model (a --save or checkpoint file)')
    .addOption(new Option('--checkpoint <file>', 'safetensors file written by --save or a coordinator checkpoint').makeOptionMandatory().env('MESHGRAD_CHECKPOINT'))
    .addOption(new Option('--module <file>', "the JavaScript module file that defines the checkpoint's model in code (defineModel), as given to train --module").env('MESHGRAD_MODULE'))
    .addOption(new Option('--prompt <text>', 'text to continue').default('Call me').env('MESHGRAD_PROMPT'))
    .addOption(new Option('--length <n>', 'characters to generate').argParser(positiveInt).default(200).env('MESHGRAD_LENGTH'))
    .addOption(new Option('--temperature <t>', 'sampling temperature (0: always the most likely character)').argParser(nonNegativeFloat).default(0.8).env('MESHGRAD_TEMPERATURE'))
    .addOption(new Option('--seed <n>', 'seed of the sampling').argParser(integer).default(1).env('MESHGRAD_SEED'));
  addBackendOptions(cmd);
  cmd.action(async (flags: GenerateFlags) => {
    if (flags.module !== undefined) await loadModelFile(flags.module);
    const ckpt = await loadCheckpoint(flags.checkpoint);
    const meta = ckpt.meta as { model?: unknown; vocabulary?: unknown; numClasses?: number };
    if (!meta.model || !meta.vocabulary) throw new Error(`${flags.checkpoint} holds no language model (its metadata has no model spec and vocabulary)`);
    const spec = parseModelSpec(meta.model, `${flags.checkpoint} model spec`);
    if (isModuleSpec(spec) && registeredModel(spec.name) === undefined) {
      throw new Error(`${flags.checkpoint}: its model '${spec.name}' is defined in code (${spec.module}): pass --module FILE, the file it was trained with`);
    }
    const vocabulary = CharVocabulary.fromJSON(meta.vocabulary);
    const length = contextLength(spec);
    if (length === undefined) throw new Error(`${flags.checkpoint}: model '${spec.name}' is not a language model`);
    const active = await configureBackend(flags);
    try {
      const { model } = buildModel(spec, new Rng(0), { numClasses: vocabulary.size });
      // Parameters and buffers; a file without the model's buffers (an older BatchNorm checkpoint) is refused, naming them.
      loadModelState(model, ckpt, flags.checkpoint);
      out.write(await generateTextAsync(model, vocabulary, flags.prompt, { length: flags.length, temperature: flags.temperature, contextLength: length, rng: new Rng(flags.seed) }));
    } finally {
      await active.close();
    }
  });
  return cmd;
}
