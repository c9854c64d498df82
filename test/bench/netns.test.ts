/**
 * bench/netns.ts: the names, the tbf arguments and the set-up commands (pure), and, where this
 * machine can build one (root, `ip netns`, tc tbf), a real 3-node testbed at 100 Mbit/s: a small
 * TCP transfer between two node namespaces, then destroy() leaves no namespace with its prefix.
 * Without root the real test is skipped with the reason in its name. Nothing here asserts on
 * throughput.
 */

import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import {
  NODE_IFACE,
  TBF_HZ,
  TBF_MIN_BURST,
  Testbed,
  listNamespaces,
  nodeAddress,
  pidOfNamespace,
  setupCommands,
  tbfArgs,
  tbfSettings,
  testbedNames,
  testbedPrefix,
  testbedUnavailable,
} from '../../bench/netns.js';

describe('testbed names and commands', () => {
  it('names carry the pid, and parse back to it', () => {
    const n = testbedNames(3, testbedPrefix(4242));
    expect(n.switchNs).toBe('mg4242s');
    expect(n.nodeNs).toEqual(['mg4242n0', 'mg4242n1', 'mg4242n2']);
    expect(pidOfNamespace('mg4242n12')).toBe(4242);
    expect(pidOfNamespace('mg4242s')).toBe(4242);
    expect(pidOfNamespace('mgxs')).toBeNull();
    expect(pidOfNamespace('other')).toBeNull();
    expect(nodeAddress(0)).toBe('10.77.0.1');
    expect(() => testbedNames(0)).toThrow(/at least 1 node/);
  });

  it('tbf: burst covers a tick at the rate and two GSO segments; the queue holds 20 ms more', () => {
    for (const rate of [10000, 1000, 100]) {
      const t = tbfSettings(rate);
      const bytesPerSecond = (rate * 1e6) / 8;
      expect(t.rate).toBe(`${rate}mbit`);
      expect(t.burstBytes).toBeGreaterThanOrEqual(bytesPerSecond / TBF_HZ);
      expect(t.burstBytes).toBeGreaterThanOrEqual(TBF_MIN_BURST);
      expect(t.limitBytes).toBe(t.burstBytes + Math.ceil(bytesPerSecond * 0.02));
    }
    expect(tbfSettings(10000).burstBytes).toBe(5_000_000);
    expect(tbfArgs('ns', 'eth0', 1000)).toEqual(['-n', 'ns', 'qdisc', 'add', 'dev', 'eth0', 'root', 'tbf', 'rate', '1000mbit', 'burst', '500000', 'limit', '3000000']);
    expect(() => tbfSettings(0)).toThrow(/positive/);
  });

  it('every command acts inside a namespace of the testbed, and both ends of every veth are shaped', () => {
    const names = testbedNames(3, 'mg7');
    const cmds = setupCommands(names, 100);
    const ours = new Set([names.switchNs, ...names.nodeNs]);
    for (const c of cmds) {
      const inNs = c.args[0] === '-n' ? c.args[1] : c.args[0] === 'netns' && c.args[1] === 'add' ? c.args[2] : null;
      expect(inNs !== null && ours.has(inNs), `${c.tool} ${c.args.join(' ')}`).toBe(true);
    }
    const shaped = cmds.filter((c) => c.tool === 'tc').map((c) => `${c.args[1]}/${c.args[5]}`);
    expect(shaped.sort()).toEqual([...names.nodeNs.map((ns) => `${ns}/${NODE_IFACE}`), ...names.switchPorts.map((p) => `${names.switchNs}/${p}`)].sort());
  });
});

const reason = testbedUnavailable();

describe('a real testbed', () => {
  it.skipIf(reason !== null)(`3 nodes at 100 Mbit/s: a transfer between namespaces, then nothing left${reason !== null ? ` (SKIPPED: ${reason})` : ''}`, async () => {
    const tb = Testbed.create({ nodes: 3, rateMbit: 100 });
    const prefix = tb.names.prefix;
    try {
      expect(listNamespaces().filter((n) => n.startsWith(prefix)).sort()).toEqual([tb.names.switchNs, ...tb.names.nodeNs].sort());
      const bytes = 256 * 1024;
      const server = tb.exec(0, [process.execPath, '-e', `const s=require('net').createServer(c=>{let n=0;c.on('data',d=>n+=d.length);c.on('end',()=>{console.log('got '+n);c.end();s.close();});});s.listen(0,'${tb.address(0)}',()=>console.log('port '+s.address().port));`], { stdio: ['ignore', 'pipe', 'inherit'] });
      const lines = createInterface({ input: server.stdout! });
      const seen: string[] = [];
      const port = await new Promise<number>((resolve) => lines.on('line', (l) => (l.startsWith('port ') ? resolve(Number(l.slice(5))) : seen.push(l))));
      const client = tb.exec(2, [process.execPath, '-e', `const c=require('net').connect(${port},'${tb.address(0)}',()=>c.end(Buffer.alloc(${bytes},1)));c.on('data',()=>{});`], { stdio: 'inherit' });
      const [code] = (await once(client, 'exit')) as [number | null];
      expect(code).toBe(0);
      if (server.exitCode === null) await once(server, 'exit');
      expect(seen).toContain(`got ${bytes}`);
    } finally {
      await tb.destroy();
    }
    expect(listNamespaces().filter((n) => n.startsWith(prefix))).toEqual([]);
    await expect(Promise.resolve().then(() => tb.exec(0, ['true']))).rejects.toThrow(/destroyed/);
  }, 20_000);
});
