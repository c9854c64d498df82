// A model written in code (--module) across real processes: `local --workers 2 --module` trains
// the example module to the parameters `train --module` gives, and a coordinator refuses workers
// that cannot build its model (no --module, a file defining another model) while a worker whose
// file builds other shapes stops itself before computing, naming the first parameter that differs.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../../shared/checkpoint/index.js';
import { runCli } from '../helpers/cli.js';
import { relativeDifference, TOKEN } from '../helpers/cluster.js';
import { Proc } from '../helpers/processes.js';

const dir = mkdtempSync(join(tmpdir(), 'meshgrad-user-module-'));
const procs: Proc[] = [];
afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  rmSync(dir, { recursive: true, force: true });
});

const MODULE = resolve('dist/examples/iris-module.js');
const DATA = ['--dataset', 'csv:examples/data/iris.csv', '--label', 'species'];
const LIB = pathToFileURL(resolve('dist/lib/index.js')).href;

/** A module file in the test directory: `name`'s model, a linear layer `embed` of `width` and a head. */
function otherModule(file: string, name: string, width: number): string {
  const path = join(dir, file);
  writeFileSync(
    path,
    `import { defineModel, Module, nn, ops } from '${LIB}';
class Net extends Module {
  constructor(classes, rng) { super(); this.embed = this.registerModule('embed', new nn.Linear(4, ${width}, rng)); this.head = this.registerModule('head', new nn.Linear(${width}, classes, rng)); }
  forward(x) { return this.head.forward(ops.relu(this.embed.forward(x))); }
}
export default defineModel({ name: '${name}', input: [4], create: ({ numClasses, rng }) => new Net(numClasses, rng) });
`,
  );
  return path;
}

async function params(file: string): Promise<Map<string, Float32Array>> {
  return new Map([...(await loadCheckpoint(file)).params].map(([k, v]) => [k, v.value]));
}

describe('--module across processes', () => {
  it('local --workers 2 --module trains the parameters train --module does', async () => {
    const run = async (args: string[], file: string): Promise<Map<string, Float32Array>> => {
      const r = await runCli([...args, '--module', MODULE, ...DATA, '--epochs', '3', '--seed', '3', '--threads', '1', '--save', join(dir, file)], { timeoutMs: 120_000 });
      if (r.code !== 0) throw new Error(`meshgrad ${args.join(' ')} failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
      return params(join(dir, file));
    };
    const single = await run(['train'], 'train.safetensors');
    const two = await run(['local', '--workers', '2', '--balance', 'even'], 'local.safetensors');
    expect([...single.keys()].sort()).toEqual(['block.bias', 'block.weight', 'embed.bias', 'embed.weight', 'head.bias', 'head.weight', 'input_scale']);
    expect(relativeDifference(two, single)).toBeLessThan(1e-5);
    // It did train: one step leaves the parameters far from three epochs.
    const runOne = await runCli(['train', '--module', MODULE, ...DATA, '--max-steps', '1', '--seed', '3', '--save', join(dir, 'one.safetensors')]);
    expect(runOne.code).toBe(0);
    expect(relativeDifference(await params(join(dir, 'one.safetensors')), single)).toBeGreaterThan(1e-3);
  });

  it('refuses workers that cannot build the model, and trains with the one that can', async () => {
    const coordinator = Proc.meshgrad('coordinator', ['coordinator', '--host', '127.0.0.1', '--port', '0', '--metrics-port', '0', '--module', MODULE, ...DATA, '--epochs', '2', '--threads', '1', '--summary-json', join(dir, 'summary.json')], { MESHGRAD_TOKEN: TOKEN });
    procs.push(coordinator);
    const url = String((await coordinator.waitForLog('coordinator listening')).url);
    const worker = async (name: string, extra: string[]): Promise<Proc> => {
      const p = Proc.meshgrad(name, ['worker', '--connect', url, '--name', name, '--metrics-port', '0', '--threads', '1', '--give-up-after', '60', ...extra], { MESHGRAD_TOKEN: TOKEN });
      procs.push(p);
      await new Promise<void>((done) => (p.exited ? done() : p.child.once('exit', () => done())));
      return p;
    };
    const bare = await worker('bare', []);
    expect(bare.child.exitCode).toBe(1);
    expect(bare.output).toContain("this run trains 'residual-iris', a model defined in code (iris-module.js): start the worker with --module FILE");
    const other = await worker('other', ['--module', otherModule('other.mjs', 'other-net', 16)]);
    expect(other.child.exitCode).toBe(1);
    expect(other.output).toContain("this run trains 'residual-iris' (iris-module.js) but the worker's --module file defines 'other-net'");
    const narrow = await worker('narrow', ['--module', otherModule('narrow.mjs', 'residual-iris', 8)]);
    expect(narrow.child.exitCode).toBe(1);
    expect(narrow.output).toContain("the model built here differs from the coordinator's 'residual-iris': parameter 0 is 'embed.weight' here but 'input_scale' at the coordinator");
    expect(coordinator.exited).toBe(false);
    const good = await worker('good', ['--module', MODULE]);
    expect(good.child.exitCode).toBe(0);
    await new Promise<void>((done) => (coordinator.exited ? done() : coordinator.child.once('exit', () => done())));
    expect(coordinator.child.exitCode).toBe(0);
    const refusals = coordinator.logs.filter((l) => l.msg === 'worker refused').map((l) => l.worker);
    expect(refusals).toEqual(['bare', 'other']);
  });
});
