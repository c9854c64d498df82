// Models written in code (shared/nn/user-model.ts): what a module file must export, the one-line
// errors naming the file when it does not, the build-time check of the output shape (one forward
// pass), and that a module spec builds the same bits from the same seed.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { buildModel, parseModelSpec } from '../../shared/nn/spec.js';
import { defineModel, loadModelFile, registerModel } from '../../shared/nn/user-model.js';
import { Linear } from '../../shared/nn/layers.js';
import { manifestDifference, modelManifest } from '../../shared/nn/manifest.js';
import { Rng } from '../../shared/util/random.js';

const dir = mkdtempSync(join(tmpdir(), 'meshgrad-user-model-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const lib = pathToFileURL(join(process.cwd(), 'shared/nn')).href;

/** A module file in the test directory (importing the engine from source, as vitest runs it). */
function moduleFile(name: string, body: string): string {
  const file = join(dir, name);
  writeFileSync(file, `import { defineModel } from '${lib}/user-model.ts';\nimport { Linear } from '${lib}/layers.ts';\n${body}\n`);
  return file;
}

describe('module files', () => {
  it('loads a default-exported definition and builds it from the seed, bit for bit', async () => {
    const file = moduleFile('linear.mjs', `export default defineModel({ name: 'plain-linear', input: [3], create: ({ input, numClasses, rng }) => new Linear(input[0], numClasses, rng) });`);
    const loaded = await loadModelFile(file);
    expect(loaded.spec).toEqual({ name: 'plain-linear', input: [3], module: 'linear.mjs' });
    // The spec travels as JSON and parses back to itself.
    expect(parseModelSpec(JSON.parse(JSON.stringify(loaded.spec)))).toEqual(loaded.spec);
    const a = buildModel(loaded.spec, new Rng(5), { numClasses: 4 });
    const b = buildModel(loaded.spec, new Rng(5), { numClasses: 4 });
    expect(a.outputShape).toEqual([4]);
    expect(modelManifest(a.model).parameters.map((p) => `${p.name}:${p.shape.join('x')}`)).toEqual(['weight:4x3', 'bias:4']);
    expect(a.model.parameters()[0].dataSync()).toEqual(b.model.parameters()[0].dataSync());
    expect(buildModel(loaded.spec, new Rng(6), { numClasses: 4 }).model.parameters()[0].dataSync()).not.toEqual(a.model.parameters()[0].dataSync());
  });

  it('names the file and the problem in one line', async () => {
    await expect(loadModelFile(join(dir, 'missing.js'))).rejects.toThrow(/^--module .*missing\.js: cannot import it: no such file$/);
    await expect(loadModelFile(join(dir, 'model.ts'))).rejects.toThrow(/model\.ts: a TypeScript file; compile it to JavaScript first/);
    const none = moduleFile('none.mjs', 'export const x = 1;');
    await expect(loadModelFile(none)).rejects.toThrow(/none\.mjs: exports no model: default-export defineModel/);
    const plain = join(dir, 'plain.mjs');
    writeFileSync(plain, "export default { name: 'p', input: [0], create: () => null };");
    await expect(loadModelFile(plain)).rejects.toThrow(/plain\.mjs: its export is not a model definition: 'input' must be one sample's shape.*\[0\]/);
    const broken = join(dir, 'broken.mjs');
    writeFileSync(broken, 'export default {;');
    await expect(loadModelFile(broken)).rejects.toThrow(/broken\.mjs: cannot import it: \S/);
    expect(() => defineModel({ name: '', input: [1], create: () => new Linear(1, 1, new Rng(1)) })).toThrow(/defineModel: 'name' must be a non-empty string/);
  });

  it('checks what create() builds before training: a Module, with parameters, with one score per class', () => {
    const notModule = registerModel({ name: 'not-a-module', input: [2], create: () => ({}) as never }, 'x.js');
    expect(() => buildModel(notModule, new Rng(1), { numClasses: 3 })).toThrow(/model 'not-a-module' \(x\.js\): create\(\) must return a Module.*got Object/);
    const narrow = registerModel({ name: 'narrow', input: [2], create: ({ rng }) => new Linear(2, 5, rng) }, 'narrow.js');
    expect(() => buildModel(narrow, new Rng(1), { numClasses: 3 })).toThrow(/model 'narrow' \(narrow\.js\): one sample \[1, 2\] gives \[1, 5\], but the dataset needs \[1, 3\]: one score per class/);
    const wrongInput = registerModel({ name: 'wrong-input', input: [7], create: ({ rng }) => new Linear(2, 3, rng) }, 'w.js');
    expect(() => buildModel(wrongInput, new Rng(1), { numClasses: 3 })).toThrow(/model 'wrong-input' \(w\.js\): forward failed on one sample \[1, 7\]: linear: input \[1, 7\] has 7 features/);
    const throws = registerModel({ name: 'throws', input: [2], create: () => { throw new Error('no GPU here'); } }, 't.js');
    expect(() => buildModel(throws, new Rng(1), { numClasses: 3 })).toThrow(/model 'throws' \(t\.js\): create\(\) failed: no GPU here/);
  });

  it('a module spec this process has not loaded says which flag is missing', () => {
    const spec = parseModelSpec({ name: 'elsewhere', input: [2], module: 'elsewhere.js' });
    expect(() => buildModel(spec, new Rng(1), { numClasses: 2 })).toThrow(/model 'elsewhere' \(elsewhere\.js\) is a module file's model, and this process loaded only .*: start it with --module FILE, the file that defines 'elsewhere'/);
    expect(() => parseModelSpec({ name: 'x', input: [2], module: 'x.js', layers: [] })).toThrow(/unknown key\(s\) 'layers'; allowed keys: name, input, module, tokens, defaults/);
  });

  it('manifests name the first parameter that differs', () => {
    const a = modelManifest(new Linear(4, 16, new Rng(1)));
    const b = modelManifest(new Linear(4, 8, new Rng(1)));
    expect(manifestDifference(a, a)).toBeNull();
    expect(manifestDifference(b, a, 'here', 'at the coordinator')).toBe("parameter 'weight' is [8, 4] here but [16, 4] at the coordinator");
    expect(manifestDifference({ parameters: a.parameters.slice(0, 1), buffers: [] }, a, 'here', 'there')).toBe("there has parameter 1 'bias' [16], here has only 1 parameters");
  });
});
