/**
 * The pure parts of `--suite network`: the coordinator's network wait, bytes per step, samples/s,
 * scaling efficiency, the timed-step summary, the coordinator flags the role passes through, and
 * the variant list. No processes, no timing.
 */

import { describe, expect, it } from 'vitest';
import { NETWORK_VARIANTS, withEfficiency, type NetworkRow } from '../../bench/network.js';
import { coordinatorFlagsOf, roleCommand } from '../../bench/network-role.js';
import { baseCoordinatorFlags, ddpEnvironment } from '../../bench/network-runs.js';
import { bytesPerStep, networkWaitMs, samplesPerSecond, scalingEfficiency, summariseSteps, type StepRecord } from '../../bench/network-stats.js';

const record = (at: number, stepMs: number, bytesIn: number, bytesOut: number): StepRecord => ({ at, stepMs, slowestComputeMs: 100, updateMs: 10, bytesIn, bytesOut, ifaceRx: bytesIn + 50, ifaceTx: null });

describe('network suite arithmetic', () => {
  it('network wait is step - slowest compute - update', () => {
    expect(networkWaitMs({ stepMs: 500, slowestComputeMs: 300, updateMs: 20 })).toBe(180);
  });

  it('bytes per step and samples/s over the timed interval', () => {
    expect(bytesPerStep(1000, 5000, 4)).toBe(1000);
    expect(bytesPerStep(0, 10, 0)).toBeNaN();
    expect(samplesPerSecond(128, 10, 2000)).toBe(640);
    expect(samplesPerSecond(128, 10, 0)).toBeNaN();
  });

  it('scaling efficiency = samples/s(N) / (N x samples/s(1))', () => {
    expect(scalingEfficiency(1600, 2, 1000)).toBeCloseTo(0.8, 12);
    expect(scalingEfficiency(2000, 2, 1000)).toBe(1);
    expect(scalingEfficiency(100, 2, 0)).toBeNaN();
  });

  it('with local updates an event stands for several steps: per-step figures divide by the step counter', () => {
    const at = (t: number, step: number, bytes: number): StepRecord => ({ ...record(t, 400, bytes, bytes), step });
    // Rounds of 4 steps, one of 2 at the end: 10 steps after the warm-up round, in 1.5 s.
    const r = summariseSteps([at(0, 4, 0), at(500, 8, 1000), at(1000, 12, 2000), at(1500, 14, 2500)], 1, 100);
    expect(r.timedSteps).toBe(10);
    expect(r.samplesPerSecond).toBeCloseTo((10 * 100) / 1.5, 6);
    expect(r.bytesReceivedPerStep).toBe(250);
    // Round times 400, 400, 400 ms over 4, 4 and 2 steps: 100, 100, 200 ms a step.
    expect(r.medianStepMs).toBe(100);
    expect(r.networkWaitMs).toEqual([72.5, 72.5, 145]);
  });

  it('summariseSteps counts only the steps after the warm-up', () => {
    // Step events at t = 0, 1000 (warm-up), then 1500, 2000, 2500 (timed); counters cumulative.
    const records = [record(0, 900, 100, 200), record(1000, 800, 200, 400), record(1500, 500, 1200, 1400), record(2000, 400, 2200, 2400), record(2500, 600, 3200, 3400)];
    const r = summariseSteps(records, 2, 128);
    expect(r.timedSteps).toBe(3);
    expect(r.stepMs).toEqual([500, 400, 600]);
    expect(r.medianStepMs).toBe(500);
    expect(r.networkWaitMs).toEqual([390, 290, 490]);
    expect(r.medianNetworkWaitMs).toBe(390);
    expect(r.samplesPerSecond).toBe((128 * 3 * 1000) / 1500);
    expect(r.bytesReceivedPerStep).toBe(1000);
    expect(r.bytesSentPerStep).toBe(1000);
    expect(r.ifaceRxPerStep).toBe(1000);
    expect(r.ifaceTxPerStep).toBeNull();
    expect(() => summariseSteps(records.slice(0, 2), 2, 128)).toThrow(/none after the 2 warm-up steps/);
    expect(() => summariseSteps(records, 0, 128)).toThrow(/at least 1 warm-up step/);
  });

  it('efficiency is filled in against the 1-worker row of the same model, system and bandwidth', () => {
    const row = (system: NetworkRow['system'], rateMbit: number, workers: number, sps: number | null): NetworkRow => ({
      model: 'cnn', rateMbit, system, config: `${workers}`, workers, flags: [], medianStepMs: null, samplesPerSecond: sps, bytesInPerStep: null, bytesOutPerStep: null,
      ifaceInPerStep: null, ifaceOutPerStep: null, medianNetworkWaitMs: null, scalingEfficiency: null, testAccuracy: null, error: null,
    });
    const rows = withEfficiency([row('meshgrad', 100, 1, 400), row('meshgrad', 100, 2, 600), row('meshgrad', 1000, 1, 500), row('meshgrad', 1000, 2, 900), row('ddp-gloo', 100, 2, 100), row('meshgrad', 10000, 2, null)]);
    expect(rows.map((r) => r.scalingEfficiency)).toEqual([null, 0.75, null, 0.9, null, null]);
  });
});

describe('network suite configuration', () => {
  it('starts with the plain synchronous variant, each variant a name and flags', () => {
    expect(NETWORK_VARIANTS[0]).toEqual({ name: 'sync', flags: [] });
    for (const v of NETWORK_VARIANTS) expect(Array.isArray(v.flags)).toBe(true);
  });

  it('the role separates its own --role-* flags from the coordinator flags it passes through', () => {
    const argv = ['--role-result', '/tmp/r.json', '--role-skip-steps=3', '--host', '10.77.0.1', '--role-iface', 'eth0', '--balance', 'even', '--lr', '0.01'];
    expect(coordinatorFlagsOf(argv)).toEqual(['--host', '10.77.0.1', '--balance', 'even', '--lr', '0.01']);
    const cmd = roleCommand();
    cmd.action(() => {});
    cmd.parse(argv, { from: 'user' });
    const opts = cmd.opts<{ roleResult: string; roleSkipSteps: number; roleIface: string; balance: string; lr: number; host: string }>();
    expect(opts).toMatchObject({ roleResult: '/tmp/r.json', roleSkipSteps: 3, roleIface: 'eth0', balance: 'even', lr: 0.01, host: '10.77.0.1' });
  });

  it('a run\'s coordinator flags: the node address, port 0, 1 thread, steps = warm-up + timed', () => {
    const flags = baseCoordinatorFlags({ model: 'cnn', workers: 2, warmupSteps: 3, timedSteps: 20, extraFlags: [], timeoutMs: 1 }, '10.77.0.1');
    const value = (name: string): string | undefined => flags[flags.indexOf(name) + 1];
    expect(value('--host')).toBe('10.77.0.1');
    expect(value('--port')).toBe('0');
    expect(value('--min-workers')).toBe('2');
    expect(value('--max-steps')).toBe('23');
    expect(value('--threads')).toBe('1');
    expect(value('--batch-size')).toBe('128');
  });

  it('DDP ranks get PyTorch\'s fair-comparison environment and gloo on the testbed interface', () => {
    const env = ddpEnvironment({ OPENBLAS_CORETYPE: 'Haswell', PATH: '/bin' });
    expect(env.OPENBLAS_CORETYPE).toBeUndefined();
    expect(env.OMP_NUM_THREADS).toBe('1');
    expect(env.LD_LIBRARY_PATH).toMatch(/^\/usr\/lib\/x86_64-linux-gnu\/openblas-openmp/);
    expect(env.GLOO_SOCKET_IFNAME).toBe('eth0');
  });
});
