/**
 * An emulated network on one Linux machine, for `--suite network`: a "switch" namespace holding a
 * bridge, and n node namespaces (node 0 = the coordinator, 1..n-1 = workers), each joined to the
 * bridge by a veth pair, `lo` up, the address 10.77.0.<i+1>/24 on its `eth0`. A `tbf` qdisc sits
 * on BOTH ends of every veth: the node-side egress caps the node's upload, the switch-side egress
 * its download; so the coordinator's link is one NIC that all the workers share, as on a real
 * cluster. Bandwidth only: no delay (this kernel has no netem). Needs root; never touches the root
 * namespace (every link is created inside a namespace of ours, so no route or interface outside
 * them changes), and deleting the namespaces deletes their veths.
 *
 * Names carry a prefix with this process's id (`mg<pid>s`, `mg<pid>n0`, …); a testbed's create
 * first removes namespaces of that scheme whose pid is dead (a killed earlier run). `destroy()`
 * kills the processes started in the testbed (`exec`) and deletes every namespace; it also runs on
 * SIGINT, SIGTERM and any exit (an uncaught exception included) while a testbed exists.
 *
 * tbf settings: burst = max(rate / HZ, 128 KiB) with HZ = 250 (this kernel's CONFIG_HZ, Debian's
 * default; 128 KiB holds two 64 KiB GSO segments), limit = burst + 20 ms of the rate. Measured on
 * the 2-core Debian 12 VM (kernel 6.18, HZ 250), one Node TCP stream between two namespaces
 * through the bridge, both ends shaped: 100 Mbit/s -> 95.7 Mbit/s of payload (50 MB), 1 Gbit/s ->
 * 957 Mbit/s (500 MB), 10 Gbit/s -> 8.3 Gbit/s (2 GB; unshaped, the same veth path gives 10.8
 * Gbit/s, so at 10 Gbit/s the 2 cores, not tbf, are the limit). Payload is ~95.7% of the line rate
 * at 1500-byte frames (TCP/IP/Ethernet headers), so the two lower rates are met exactly.
 */

import { stopProcesses } from '../shared/util/child-processes.js';
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync } from 'node:fs';

/** The kernel tick rate the tbf burst is sized for (burst must cover a tick's worth of bytes). */
export const TBF_HZ = 250;
/** Smallest tbf burst: two 64 KiB GSO segments (a packet larger than the burst is dropped). */
export const TBF_MIN_BURST = 128 * 1024;
/** Queue behind the bucket, as time at the rate. */
export const TBF_QUEUE_MS = 20;
/** The /24 every testbed uses (testbeds are separate namespaces, so two can use the same one). */
export const SUBNET = '10.77.0';
/** The node-side interface name (inside each node namespace). */
export const NODE_IFACE = 'eth0';

const NAME_PATTERN = /^mg(\d+)(s|n\d+)$/;

function findTool(name: string): string {
  for (const dir of ['/usr/sbin', '/sbin', '/usr/bin', '/bin']) if (existsSync(`${dir}/${name}`)) return `${dir}/${name}`;
  return name;
}
const IP = findTool('ip');
const TC = findTool('tc');

export interface TestbedNames {
  readonly prefix: string;
  readonly switchNs: string;
  readonly nodeNs: readonly string[];
  /** The switch-side end of node i's veth (in the switch namespace). */
  readonly switchPorts: readonly string[];
}

/** The namespace prefix of the testbeds of process `pid`. */
export function testbedPrefix(pid: number = process.pid): string {
  return `mg${pid}`;
}

export function testbedNames(nodes: number, prefix: string = testbedPrefix()): TestbedNames {
  if (!Number.isInteger(nodes) || nodes < 1) throw new Error(`a testbed needs at least 1 node, not ${nodes}`);
  return {
    prefix,
    switchNs: `${prefix}s`,
    nodeNs: Array.from({ length: nodes }, (_, i) => `${prefix}n${i}`),
    switchPorts: Array.from({ length: nodes }, (_, i) => `p${i}`),
  };
}

/** Node i's address (without the /24). */
export function nodeAddress(i: number): string {
  return `${SUBNET}.${i + 1}`;
}

/** The pid in a namespace name of our scheme, or null for any other name. */
export function pidOfNamespace(name: string): number | null {
  const m = NAME_PATTERN.exec(name);
  return m ? Number(m[1]) : null;
}

export interface TbfSettings {
  readonly rate: string;
  readonly burstBytes: number;
  readonly limitBytes: number;
}

export function tbfSettings(rateMbit: number): TbfSettings {
  if (!(rateMbit > 0) || !Number.isFinite(rateMbit)) throw new Error(`the rate must be a positive number of Mbit/s, not ${rateMbit}`);
  const bytesPerSecond = (rateMbit * 1e6) / 8;
  const burstBytes = Math.max(Math.ceil(bytesPerSecond / TBF_HZ), TBF_MIN_BURST);
  return { rate: `${rateMbit}mbit`, burstBytes, limitBytes: burstBytes + Math.ceil((bytesPerSecond * TBF_QUEUE_MS) / 1000) };
}

/** `tc` arguments that shape `dev`'s egress in namespace `ns` to `rateMbit`. */
export function tbfArgs(ns: string, dev: string, rateMbit: number): string[] {
  const t = tbfSettings(rateMbit);
  return ['-n', ns, 'qdisc', 'add', 'dev', dev, 'root', 'tbf', 'rate', t.rate, 'burst', String(t.burstBytes), 'limit', String(t.limitBytes)];
}

/** One command of the set-up: the tool and its arguments. */
export interface SetupCommand {
  readonly tool: 'ip' | 'tc';
  readonly args: readonly string[];
}

/** Every `ip` / `tc` command that builds the testbed, in order (namespaces first). */
export function setupCommands(names: TestbedNames, rateMbit: number): SetupCommand[] {
  const ip = (...args: string[]): SetupCommand => ({ tool: 'ip', args });
  const s = names.switchNs;
  const cmds: SetupCommand[] = [ip('netns', 'add', s), ...names.nodeNs.map((ns) => ip('netns', 'add', ns))];
  cmds.push(ip('-n', s, 'link', 'set', 'lo', 'up'), ip('-n', s, 'link', 'add', 'br0', 'type', 'bridge'), ip('-n', s, 'link', 'set', 'br0', 'up'));
  names.nodeNs.forEach((ns, i) => {
    const port = names.switchPorts[i];
    cmds.push(
      // Created in the switch namespace with its peer straight in the node's: never in the root one.
      ip('-n', s, 'link', 'add', 'name', port, 'type', 'veth', 'peer', 'name', NODE_IFACE, 'netns', ns),
      ip('-n', s, 'link', 'set', port, 'master', 'br0'),
      ip('-n', s, 'link', 'set', port, 'up'),
      ip('-n', ns, 'link', 'set', 'lo', 'up'),
      ip('-n', ns, 'addr', 'add', `${nodeAddress(i)}/24`, 'dev', NODE_IFACE),
      ip('-n', ns, 'link', 'set', NODE_IFACE, 'up'),
      { tool: 'tc', args: tbfArgs(ns, NODE_IFACE, rateMbit) },
      { tool: 'tc', args: tbfArgs(s, port, rateMbit) },
    );
  });
  return cmds;
}

function toolPath(tool: SetupCommand['tool']): string {
  return tool === 'ip' ? IP : TC;
}

/** Runs a command; throws its stderr as one line when it fails. */
function runTool(cmd: SetupCommand): void {
  const r = spawnSync(toolPath(cmd.tool), cmd.args, { encoding: 'utf8', timeout: 10_000 });
  if (r.error) throw new Error(`${cmd.tool} ${cmd.args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd.tool} ${cmd.args.join(' ')}: ${(r.stderr || r.stdout).trim().split('\n')[0] || `exit status ${r.status}`}`);
}

/** The names `ip netns list` shows. */
export function listNamespaces(): string[] {
  const r = spawnSync(IP, ['netns', 'list'], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) return [];
  return r.stdout.split('\n').map((l) => l.trim().split(/\s+/)[0]).filter((n) => n !== undefined && n.length > 0);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** SIGKILLs whatever still runs in `ns`, then deletes it (its veths go with it). Never throws. */
function deleteNamespace(ns: string): void {
  const pids = spawnSync(IP, ['netns', 'pids', ns], { encoding: 'utf8', timeout: 10_000 });
  for (const p of (pids.stdout ?? '').split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(p), 'SIGKILL');
    } catch {
      // gone already
    }
  }
  spawnSync(IP, ['netns', 'del', ns], { timeout: 10_000 });
}

/** Deletes the namespaces of our scheme whose process is dead; returns their names. */
export function sweepStaleNamespaces(): string[] {
  const stale = listNamespaces().filter((n) => {
    const pid = pidOfNamespace(n);
    return pid !== null && pid !== process.pid && !pidAlive(pid);
  });
  stale.forEach(deleteNamespace);
  return stale;
}

let unavailable: string | null | undefined;

/** Null when a testbed can be built here; else one line saying why not (the suite is then skipped). */
export function testbedUnavailable(): string | null {
  if (unavailable !== undefined) return unavailable;
  unavailable = probe();
  return unavailable;
}

function probe(): string | null {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'not root (network namespaces and tc need root)';
  const ns = `${testbedPrefix()}s`;
  const tries: SetupCommand[] = [
    { tool: 'ip', args: ['netns', 'add', ns] },
    { tool: 'ip', args: ['-n', ns, 'link', 'add', 'name', 'probe0', 'type', 'veth', 'peer', 'name', 'probe1'] },
    { tool: 'tc', args: tbfArgs(ns, 'probe0', 100) },
  ];
  try {
    for (const t of tries) runTool(t);
    return null;
  } catch (err) {
    return `no emulated network here: ${(err as Error).message}`;
  } finally {
    if (listNamespaces().includes(ns)) deleteNamespace(ns);
  }
}

export interface TestbedOptions {
  readonly nodes: number;
  readonly rateMbit: number;
}

const live = new Set<Testbed>();
let handlersInstalled = false;

function destroyAllSync(): void {
  for (const t of [...live]) t.destroySync();
}
function onSignal(signal: NodeJS.Signals): void {
  destroyAllSync();
  process.exit(signal === 'SIGINT' ? 130 : 143);
}

function track(t: Testbed): void {
  live.add(t);
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', destroyAllSync);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

function untrack(t: Testbed): void {
  live.delete(t);
  if (live.size > 0 || !handlersInstalled) return;
  handlersInstalled = false;
  process.off('exit', destroyAllSync);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
}

export class Testbed {
  private readonly children = new Set<ChildProcess>();
  private destroyed = false;

  private constructor(
    readonly names: TestbedNames,
    readonly rateMbit: number,
  ) {}

  /** Builds the testbed (sweeping dead runs' namespaces first); on a failure removes what it made and throws. */
  static create(options: TestbedOptions): Testbed {
    const reason = testbedUnavailable();
    if (reason !== null) throw new Error(reason);
    sweepStaleNamespaces();
    const names = testbedNames(options.nodes);
    const existing = new Set(listNamespaces());
    const clash = [names.switchNs, ...names.nodeNs].find((n) => existing.has(n));
    if (clash !== undefined) throw new Error(`namespace ${clash} exists already (another testbed of this process?)`);
    const t = new Testbed(names, options.rateMbit);
    track(t);
    try {
      for (const cmd of setupCommands(names, options.rateMbit)) runTool(cmd);
    } catch (err) {
      t.destroySync();
      throw err;
    }
    return t;
  }

  get nodes(): number {
    return this.names.nodeNs.length;
  }

  address(node: number): string {
    this.checkNode(node);
    return nodeAddress(node);
  }

  namespace(node: number): string {
    this.checkNode(node);
    return this.names.nodeNs[node];
  }

  /** Spawns argv inside node `node`'s namespace (`ip netns exec`, which execs argv: the pid is argv's). */
  exec(node: number, argv: readonly string[], options: SpawnOptions = {}): ChildProcess {
    if (this.destroyed) throw new Error('the testbed is destroyed');
    if (argv.length === 0) throw new Error('exec needs a command');
    const child = spawn(IP, ['netns', 'exec', this.namespace(node), ...argv], options);
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    child.once('error', () => this.children.delete(child));
    return child;
  }

  /** SIGTERM to the processes started here, SIGKILL after `graceMs`, then every namespace deleted. */
  async destroy(graceMs = 2000): Promise<void> {
    await stopProcesses(this.children, graceMs);
    this.destroySync();
  }

  /** Kills (SIGKILL) anything still running and deletes the namespaces, synchronously (exit and signal handlers). */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    this.children.clear();
    const existing = new Set(listNamespaces());
    for (const ns of [...this.names.nodeNs, this.names.switchNs]) if (existing.has(ns)) deleteNamespace(ns);
    untrack(this);
  }

  private checkNode(node: number): void {
    if (!Number.isInteger(node) || node < 0 || node >= this.nodes) throw new Error(`node ${node} is not in this testbed (0..${this.nodes - 1})`);
  }
}
