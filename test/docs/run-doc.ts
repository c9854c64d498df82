/**
 * Runs the docs' commands (test/docs/rules.ts says how each one is run) and defines one vitest case
 * per command, named by its file and line. Commands of one doc file share a scratch directory,
 * in document order, so a later command finds what an earlier one wrote (`generate` reads the
 * checkpoint `local … --save gru.safetensors` wrote).
 *
 * The scratch directory mirrors the checkout's layout: a copy of package.json (for `npm start`) and
 * of deploy/ (the secrets steps write into it), links to bin/, dist/, docs/, data/, examples/ and bench/.
 * Commands run in bash, where `npx meshgrad` is this checkout's bin/meshgrad.js (what npx resolves
 * inside the checkout, which the `npx meshgrad --version` case checks by running npx itself), with
 * MESHGRAD_METRICS_PORT=0 so that runs beside other tests never contend for 9400/9401. Every
 * process is started in its own process group and killed with it, and every wait is bounded.
 */

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allDocCommands, REPO, where, type DocCommand } from './doc-commands.js';
import { groupOf, rewriteCommand, rulesFor, STEP_LIMIT, type ClusterRule, type DocGroup, type EngineRule, type Rule, type RunRule } from './rules.js';

const SHIM = `npx() { if [ "$1" = meshgrad ]; then shift; node "$MESHGRAD_CHECKOUT/bin/meshgrad.js" "$@"; else echo "doc runner: only 'npx meshgrad' is expected, got: npx $*" >&2; return 127; fi; }`;
const COMMAND_TIMEOUT_MS = 240_000;

export interface ShellResult {
  readonly code: number | null;
  readonly output: string;
  readonly stdout: string;
}

/** A bash process in its own process group; `result` settles when it exits or is killed. */
export class Shell {
  stdout = '';
  output = '';
  readonly result: Promise<ShellResult>;
  private readonly child: ChildProcess;
  private timer: NodeJS.Timeout;

  constructor(command: string, cwd: string, env: NodeJS.ProcessEnv = {}, options: { timeoutMs?: number; realNpx?: boolean } = {}) {
    this.child = spawn('bash', ['-c', options.realNpx === true ? command : `${SHIM}\n${command}`], {
      cwd,
      env: { ...process.env, MESHGRAD_METRICS_PORT: '0', MESHGRAD_CHECKOUT: REPO, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    this.child.stdout?.on('data', (d: Buffer) => {
      this.stdout += d.toString();
      this.output += d.toString();
    });
    this.child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.timer = setTimeout(() => this.kill(), options.timeoutMs ?? COMMAND_TIMEOUT_MS);
    this.result = new Promise((resolve, reject) => {
      this.child.on('error', reject);
      this.child.on('close', (code) => {
        clearTimeout(this.timer);
        resolve({ code, output: this.output, stdout: this.stdout });
      });
    });
  }

  /** Kills the whole process group (bash, npm, node and the workers a command started). */
  kill(): void {
    if (this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }

  /** Waits until the output matches `pattern`, the process exits, or `timeoutMs` passes. */
  async waitFor(pattern: RegExp, timeoutMs = 120_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    void this.result.then(() => (exited = true));
    for (;;) {
      const m = this.output.match(pattern);
      if (m) return m;
      if (exited) throw new Error(`exited before printing ${pattern}:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`did not print ${pattern} within ${timeoutMs} ms:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

export function runShell(command: string, cwd: string, env: NodeJS.ProcessEnv = {}, realNpx = false): Promise<ShellResult> {
  return new Shell(command, cwd, env, { realNpx }).result;
}

/** A fresh scratch directory laid out like the checkout (see the header). */
export function makeScratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'meshgrad-docs-'));
  copyFileSync(join(REPO, 'package.json'), join(dir, 'package.json'));
  cpSync(join(REPO, 'deploy'), join(dir, 'deploy'), { recursive: true, filter: (src) => !src.endsWith('/secrets/token') });
  for (const name of ['bin', 'dist', 'docs', 'data', 'examples', 'bench', 'node_modules']) symlinkSync(join(REPO, name), join(dir, name));
  return dir;
}

/** The commands a group runs: every doc command of its files whose text did not occur earlier. */
export function commandsOf(group: DocGroup): { command: DocCommand; rule: Rule; firstAt?: string }[] {
  const seen = new Map<string, DocCommand>();
  const out: { command: DocCommand; rule: Rule; firstAt?: string }[] = [];
  for (const c of allDocCommands().commands) {
    const [rule] = rulesFor(c.text);
    if (rule === undefined) continue; // reported by test/docs/coverage.test.ts
    // The same command line (after its rewrites) runs once, where it first appears.
    const key = rule.kind === 'run' ? rewriteCommand(rule, c.text).text : c.text;
    const first = seen.get(key);
    if (first === undefined) seen.set(key, c);
    if (groupOf(c.file) !== group) continue;
    out.push({ command: c, rule, firstAt: first === undefined ? undefined : where(first) });
  }
  return out;
}

async function runRule(rule: RunRule, c: DocCommand, scratch: string): Promise<void> {
  const { text } = rewriteCommand(rule, c.text);
  // In the checkout, `npx` is npm's own: these cases prove that `npx meshgrad` is this checkout.
  const r = await runShell(text, rule.inCheckout === true ? REPO : scratch, {}, rule.inCheckout === true);
  const context = `${where(c)}: ${c.text}\nran: ${text}\n${r.output}`;
  expect(r.code, context).toBe(rule.exitCode ?? 0);
  if (rule.expect !== undefined) expect(rule.expect.test(rule.id === 'spec-to-file' ? r.stdout : r.output), `${context}\nexpected the output to match ${rule.expect}`).toBe(true);
  for (const f of rule.writes ?? []) expect(existsSync(join(scratch, f)), `${context}\nexpected ${f} to be written`).toBe(true);
}

/** No engine and no cluster: DOCKER_HOST and KUBECONFIG point where nothing answers. */
function noEngineEnv(scratch: string): NodeJS.ProcessEnv {
  const kubeconfig = join(scratch, 'kubeconfig-nowhere');
  writeFileSync(
    kubeconfig,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters: [{name: nowhere, cluster: {server: "https://127.0.0.1:9"}}]',
      'users: [{name: nobody, user: {token: nothing-here}}]',
      'contexts: [{name: nowhere, context: {cluster: nowhere, user: nobody}}]',
      'current-context: nowhere',
      '',
    ].join('\n'),
  );
  return { DOCKER_HOST: `unix://${join(scratch, 'no-docker.sock')}`, KUBECONFIG: kubeconfig };
}

const ENGINE_ABSENT = /Cannot connect to the Docker daemon|Error while fetching server API version|connect: connection refused|The connection to the server .* was refused|Unable to connect to the server/;
const USAGE_ERROR = /^Usage:|unknown (flag|shorthand flag|command)|No such service|must build at directory|error: unknown|accumulating resources|invalid argument/m;

function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', cmd], { encoding: 'utf8' }).status === 0;
}

/** The offline checks of the files an engine command names. */
function checkEngineFiles(rule: EngineRule, text: string, scratch: string): void {
  const compose = text.match(/^docker compose -f (\S+) (.*)$/);
  if (compose) {
    const config = spawnSync('docker-compose', ['-f', compose[1], 'config', '--services'], { cwd: scratch, encoding: 'utf8' });
    expect(config.status, `docker-compose -f ${compose[1]} config: ${config.stderr}`).toBe(0);
    const services = config.stdout.trim().split('\n');
    for (const m of compose[2].matchAll(/--scale (\w+)=\d+/g)) expect(services, `--scale ${m[1]}`).toContain(m[1]);
    const named = compose[2].match(/^(logs -f|restart|stop) (\w+)$/);
    if (named) expect(services).toContain(named[2]);
  }
  const dockerfile = text.match(/^docker build -f (\S+) .* (\S+)$/);
  if (dockerfile) {
    expect(existsSync(join(scratch, dockerfile[1])), dockerfile[1]).toBe(true);
    expect(dockerfile[2]).toBe('.');
  }
  const image = text.match(/^docker (?:run --rm|push) (\S+)/);
  if (image) {
    // The image these commands use is the one the README builds, at the package's version.
    const version = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
    expect(image[1].endsWith(`meshgrad:${version}`), `${image[1]} is not meshgrad:${version}`).toBe(true);
  }
  if (rule.tool === 'kubectl') {
    const dir = text.match(/-k (\S+)/)?.[1] ?? 'deploy/k8s';
    const built = spawnSync('kubectl', ['kustomize', dir], { cwd: scratch, encoding: 'utf8' });
    expect(built.status, `kubectl kustomize ${dir}: ${built.stderr}`).toBe(0);
    const ns = text.match(/^kubectl -n (\S+) /)?.[1];
    if (ns !== undefined) expect(built.stdout).toMatch(new RegExp(`kind: Namespace\\n(.*\\n)*?  name: ${ns}\\n`));
    const target = text.match(/ scale (\w+)\/(\S+)/);
    if (target) expect(built.stdout, `${target[1]}/${target[2]}`).toMatch(new RegExp(`kind: Deployment\\nmetadata:\\n(  .*\\n)*?  name: ${target[2]}\\n`));
  }
}

async function runEngine(rule: EngineRule, c: DocCommand, scratch: string): Promise<void> {
  checkEngineFiles(rule, c.text, scratch);
  // The Compose plugin is not in Debian 12; its v1 `docker-compose` reads the same file and flags.
  const text = c.text.replace(/^docker compose /, 'docker-compose ');
  const tool = text.split(' ')[0];
  if (!hasCommand(tool)) throw new Error(`${tool} is not installed (.ci/run installs it)`);
  const r = await runShell(`timeout 60 ${text}`, scratch, noEngineEnv(scratch));
  const context = `${where(c)}: ${c.text}\nran: ${text} (no engine, no cluster)\n${r.output}`;
  expect(USAGE_ERROR.test(r.output), `${context}\nthe command was refused before it reached the engine`).toBe(false);
  expect(ENGINE_ABSENT.test(r.output), `${context}\nexpected it to stop only at the missing engine or cluster`).toBe(true);
}

/** The README's by-hand recipe: the coordinator, then each worker command, all at once. */
async function runCluster(parts: { command: DocCommand; rule: ClusterRule }[], scratch: string): Promise<void> {
  const coordinator = parts.find((p) => p.rule.role === 'coordinator');
  const workers = parts.filter((p) => p.rule.role === 'worker');
  expect(coordinator, 'the recipe has a coordinator command').toBeDefined();
  expect(workers.length, 'the recipe has worker commands').toBeGreaterThanOrEqual(1);
  if (coordinator === undefined) return;
  // Tests never use fixed ports: the coordinator binds any free one and the workers are told it.
  const cmd = `${coordinator.command.text.replace(/--port 7070\b/, '--port 0')} ${STEP_LIMIT}`;
  const started: Shell[] = [];
  try {
    const coord = new Shell(cmd, scratch);
    started.push(coord);
    const listening = await coord.waitFor(/"msg":"coordinator listening".*?"url":"ws:\/\/[^:]+:(\d+)"/);
    const url = `ws://127.0.0.1:${listening[1]}`;
    const token = coordinator.command.text.match(/^MESHGRAD_TOKEN=(\S+) /)?.[1] ?? '';
    for (const w of workers) {
      const text = w.command.text.replace('ws://COORDINATOR:7070', url).replace(/--connect URL$/, `--connect ${url}`);
      started.push(new Shell(text, scratch, { MESHGRAD_TOKEN: token }));
    }
    const results = await Promise.all(started.map((s) => s.result));
    const context = results.map((r, i) => `--- ${i === 0 ? cmd : workers[i - 1].command.text}\n${r.output}`).join('\n');
    for (const r of results) expect(r.code, context).toBe(0);
    expect(existsSync(join(scratch, 'model.safetensors')), context).toBe(true);
    expect(existsSync(join(scratch, 'ckpt', 'latest.safetensors')), context).toBe(true);
  } finally {
    for (const s of started) s.kill();
  }
}

function clusterParts(): { command: DocCommand; rule: ClusterRule }[] {
  const seen = new Set<string>();
  const parts: { command: DocCommand; rule: ClusterRule }[] = [];
  for (const c of allDocCommands().commands) {
    const [rule] = rulesFor(c.text);
    if (rule?.kind !== 'cluster' || seen.has(c.text)) continue;
    seen.add(c.text);
    parts.push({ command: c, rule });
  }
  return parts;
}

/** One describe per doc file of the group, one case per command it owns. */
export function describeDocGroup(group: DocGroup): void {
  const owned = commandsOf(group);
  const files = [...new Set(owned.map((o) => o.command.file))];
  for (const file of files) {
    describe(file, () => {
      let scratch = '';
      beforeAll(() => {
        scratch = makeScratch();
      });
      afterAll(() => rmSync(scratch, { recursive: true, force: true }));
      const mine = owned.filter((o) => o.command.file === file);
      // The recipe's parts may sit in several files; it runs with the file of its coordinator.
      const cluster = clusterParts();
      let clusterDone = false;
      for (const { command: c, rule, firstAt } of mine) {
        const title = `${c.file}:${c.line} \`${c.text}\``;
        if (firstAt !== undefined) continue; // the same text ran where it first appears
        if (rule.kind === 'run') it(title, () => runRule(rule, c, scratch));
        else if (rule.kind === 'engine') it(title, () => runEngine(rule, c, scratch));
        else if (rule.kind === 'cluster' && rule.role === 'coordinator' && !clusterDone) {
          clusterDone = true;
          it(`the recipe ${cluster.map((p) => `${p.command.file}:${p.command.line}`).join(' + ')}`, () => runCluster(cluster, scratch));
        }
      }
    });
  }
}
