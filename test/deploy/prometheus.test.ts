/** deploy/prometheus/prometheus.yml: valid for promtool and finding every compose replica. */

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DEPLOY, hasTool, run, titled, withTempDir } from './tools.js';

const PROMTOOL = 'promtool';
const havePromtool = hasTool(PROMTOOL);
const CONFIG = join(DEPLOY, 'prometheus', 'prometheus.yml');

interface ScrapeConfig {
  job_name: string;
  metrics_path?: string;
  dns_sd_configs?: { names: string[]; type: string; port: number }[];
}

describe('deploy/prometheus/prometheus.yml', () => {
  it.skipIf(!havePromtool)(titled('passes promtool check config', PROMTOOL, havePromtool), () => {
    const r = run(PROMTOOL, ['check', 'config', CONFIG]);
    expect(r.output).toMatch(/SUCCESS/);
    expect(r.status).toBe(0);
  });

  it.skipIf(!havePromtool)(titled('and the check fails on a broken copy', PROMTOOL, havePromtool), () => {
    withTempDir((dir) => {
      const broken = join(dir, 'prometheus.yml');
      writeFileSync(broken, readFileSync(CONFIG, 'utf8').replace('type: A', 'type: NOT_A_RECORD_TYPE'));
      const r = run(PROMTOOL, ['check', 'config', broken]);
      expect(r.status).not.toBe(0);
      expect(r.output).toMatch(/NOT_A_RECORD_TYPE/);
    });
  });

  it('looks up every replica of the compose services on their metrics ports', () => {
    const config = parse(readFileSync(CONFIG, 'utf8')) as { scrape_configs: ScrapeConfig[] };
    const jobs = new Map(config.scrape_configs.map((c) => [c.job_name, c]));
    expect(jobs.get('meshgrad-coordinator')?.dns_sd_configs).toEqual([expect.objectContaining({ names: ['coordinator'], type: 'A', port: 9400 })]);
    expect(jobs.get('meshgrad-worker')?.dns_sd_configs).toEqual([expect.objectContaining({ names: ['worker'], type: 'A', port: 9401 })]);
    for (const job of ['meshgrad-coordinator', 'meshgrad-worker']) expect(jobs.get(job)?.metrics_path ?? '/metrics').toBe('/metrics');
    // The names are the compose services.
    const compose = parse(readFileSync(join(DEPLOY, 'compose.yaml'), 'utf8'), { merge: true }) as { services: Record<string, unknown> };
    expect(Object.keys(compose.services)).toEqual(expect.arrayContaining(['coordinator', 'worker']));
  });
});
