// `generate --module`: a character language model written in code (defineModel with tokens: true)
// trains with `train --module` and samples text from its checkpoint when given the same file; a
// checkpoint of such a model without --module is refused, naming the file it needs.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'meshgrad-generate-module-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const LIB = pathToFileURL(resolve('dist/lib/index.js')).href;
const MODULE = join(dir, 'tiny-lm.mjs');
writeFileSync(
  MODULE,
  `import { defineModel, Module, nn } from '${LIB}';
class TinyLm extends Module {
  constructor(vocabulary, rng) { super(); this.embed = this.registerModule('embed', new nn.Embedding(vocabulary, 16, rng)); this.head = this.registerModule('head', new nn.Linear(16, vocabulary, rng)); }
  forward(x) { return this.head.forward(this.embed.forward(x)); }
}
export default defineModel({ name: 'tiny-lm', input: [12], tokens: true, create: ({ numClasses, rng }) => new TinyLm(numClasses, rng) });
`,
);

describe('generate --module', () => {
  it('samples from a checkpoint of a language model written in code', async () => {
    const ckpt = join(dir, 'lm.safetensors');
    const t = await runCli(['train', '--module', MODULE, '--dataset', 'text:examples/data/loomings.txt', '--batch-size', '8', '--max-steps', '5', '--test-samples', '16', '--save', ckpt]);
    expect(t.code, t.stderr).toBe(0);
    const g = await runCli(['generate', '--checkpoint', ckpt, '--module', MODULE, '--prompt', 'Call me', '--length', '30', '--seed', '3']);
    expect(g.code, g.stderr).toBe(0);
    expect(g.stdout.trim().length).toBeGreaterThanOrEqual(30);
    expect(g.stdout.startsWith('Call me')).toBe(true);
    const bare = await runCli(['generate', '--checkpoint', ckpt]);
    expect(bare.code).not.toBe(0);
    expect(bare.stderr).toContain(`${ckpt}: its model 'tiny-lm' is defined in code (tiny-lm.mjs): pass --module FILE, the file it was trained with`);
  });
});
