/**
 * The package as a user gets it: `npm pack` the built checkout, install the tarball into a fresh
 * TypeScript project ("type": "module"), and write the kind of program the README shows — a Module
 * subclass trained with `train` on a CSV file read through meshgrad/data, a checkpoint saved —
 * which must type-check with tsc (strict, NodeNext, through the package's `exports` and .d.ts
 * files) and run. The install reads the npm cache first (--prefer-offline) and the registry for
 * what the cache lacks; install scripts are skipped (--ignore-scripts: none is needed, and the
 * optional webgpu package's would fetch binaries). The build must exist (npm test's pretest).
 */

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const scratch = mkdtempSync(join(tmpdir(), 'meshgrad-package-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const PROGRAM = `
import { existsSync } from 'node:fs';
import { Module, nn, ops, optim, Rng, saveModel, train, type Tensor } from 'meshgrad';
import { openDataset, type Dataset } from 'meshgrad/data';
import { evaluate, type EpochEvent } from 'meshgrad/train';
import { loadModel } from 'meshgrad/engine';
import { startCoordinator } from 'meshgrad/distributed';

/** A user's own model: two layers and a learned input scale. */
class Net extends Module {
  private readonly scale: Tensor;
  private readonly hidden: nn.Linear;
  private readonly out: nn.Linear;
  constructor(inputs: number, classes: number, rng: Rng) {
    super();
    this.scale = this.registerParameter('scale', ops.ones([inputs]));
    this.hidden = this.registerModule('hidden', new nn.Linear(inputs, 16, rng));
    this.out = this.registerModule('out', new nn.Linear(16, classes, rng));
  }
  forward(x: Tensor): Tensor {
    return this.out.forward(ops.relu(this.hidden.forward(ops.mul(x, this.scale))));
  }
}

const [csv, checkpoint] = process.argv.slice(2);
const data = openDataset('csv:' + csv);
const trainSet: Dataset = data.train;
const model = new Net(trainSet.sampleShape[0], trainSet.numClasses, new Rng(1));
const epochs: EpochEvent[] = [];
const result = await train(model, { train: trainSet, test: data.test, epochs: 4, batchSize: 16, optimizer: 'adam', lr: 0.05, seed: 1, onEpoch: (e) => epochs.push(e) });
const schedule: optim.LrSchedule = optim.cosineLr(0.1, 10);
await saveModel(checkpoint, model, { classes: data.classNames ?? [] });
const copy = new Net(trainSet.sampleShape[0], trainSet.numClasses, new Rng(2));
await loadModel(checkpoint, copy);
const figures = { steps: result.steps, epochs: epochs.length, trainLoss: result.trainLoss, testAccuracy: evaluate(copy, data.test).accuracy, lr: schedule.lrAt(5), saved: existsSync(checkpoint), distributed: typeof startCoordinator };
console.log(JSON.stringify(figures));
`;

it('npm pack, install into a new TypeScript project, type-check and run a program using the library', () => {
  for (const f of ['dist/lib/index.js', 'dist/lib/index.d.ts']) if (!existsSync(join(ROOT, f))) throw new Error(`${f} is missing: build first (npx tsc -p tsconfig.build.json)`);
  const timings: Record<string, number> = {};
  const timed = <T>(what: string, f: () => T): T => {
    const t0 = performance.now();
    try {
      return f();
    } finally {
      timings[what] = Math.round(performance.now() - t0);
    }
  };
  // --ignore-scripts: `prepare` would rebuild (the build is there already).
  const packed = timed('pack', () => JSON.parse(execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', scratch], { cwd: ROOT, encoding: 'utf8' })) as Array<{ filename: string; files: Array<{ path: string }> }>);
  const files = packed[0].files.map((f) => f.path);
  expect(files).toContain('dist/lib/index.d.ts');
  expect(files).toContain('bin/meshgrad.js');
  expect(files.some((f) => f.startsWith('dist/examples/'))).toBe(false);
  const tarball = join(scratch, packed[0].filename);

  const app = join(scratch, 'app');
  mkdirSync(join(app, 'src'), { recursive: true });
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'meshgrad-user', version: '1.0.0', private: true, type: 'module' }));
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        skipLibCheck: true,
        types: ['node'],
        // @types/node from this checkout (a user's project has its own).
        typeRoots: [join(ROOT, 'node_modules', '@types')],
        rootDir: 'src',
        outDir: 'out',
      },
      include: ['src'],
    }),
  );
  writeFileSync(join(app, 'src', 'main.ts'), PROGRAM);
  const rows = ['x1,x2,label'];
  for (let i = 0; i < 80; i++) {
    const a = Math.sin(i * 1.7) * 2;
    const b = Math.cos(i * 0.9) * 2;
    rows.push(`${a.toFixed(3)},${b.toFixed(3)},${a + b > 0 ? 'up' : 'down'}`);
  }
  writeFileSync(join(app, 'points.csv'), rows.join('\n') + '\n');

  timed('install', () => execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel', 'error', tarball], { cwd: app, encoding: 'utf8', stdio: 'pipe' }));
  expect(JSON.parse(readFileSync(join(app, 'node_modules', 'meshgrad', 'package.json'), 'utf8')).name).toBe('meshgrad');

  timed('tsc', () => execFileSync(process.execPath, [TSC, '-p', 'tsconfig.json'], { cwd: app, encoding: 'utf8', stdio: 'pipe' }));
  const checkpoint = join(app, 'model.safetensors');
  const out = timed('run', () => execFileSync(process.execPath, ['out/main.js', 'points.csv', checkpoint], { cwd: app, encoding: 'utf8', timeout: 60_000 }));
  const figures = JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, unknown>;
  expect(figures.saved).toBe(true);
  expect(existsSync(checkpoint)).toBe(true);
  expect(figures.epochs).toBe(4);
  expect(figures.distributed).toBe('function');
  expect(Number.isFinite(figures.trainLoss)).toBe(true);
  expect(Number.isFinite(figures.testAccuracy)).toBe(true);

  // The bin still works from the installed package.
  const version = execFileSync(process.execPath, [join(app, 'node_modules', 'meshgrad', 'bin', 'meshgrad.js'), '--version'], { encoding: 'utf8' });
  expect(version.trim()).toBe(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
  console.log(`package test timings (ms): ${JSON.stringify(timings)}`);
}, 240_000);
