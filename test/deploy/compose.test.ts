/**
 * deploy/compose.yaml: valid for docker-compose (offline `config -q`), and wired as documented —
 * scalable workers, health checks on the metrics ports, the token as a secret file, Prometheus
 * finding every replica.
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { copyDeploy, DEPLOY, hasTool, run, titled, withTempDir } from './tools.js';

const COMPOSE = 'docker-compose';
const haveCompose = hasTool(COMPOSE);

/** `docker-compose config -q` on a copy of deploy/ (with the secret file it names), edited by `edit`. */
function composeConfig(edit: (yamlText: string) => string = (s) => s): ReturnType<typeof run> {
  return withTempDir((dir) => {
    const deploy = copyDeploy(dir);
    writeFileSync(join(deploy, 'secrets', 'token'), 'test-token\n');
    const file = join(deploy, 'compose.yaml');
    writeFileSync(file, edit(readFileSync(file, 'utf8')));
    // No .env or COMPOSE_* settings of the caller's shell leak in.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('COMPOSE_') && !k.startsWith('MESHGRAD_') && !k.startsWith('DOCKER_')));
    return run(COMPOSE, ['-f', file, 'config', '-q'], { cwd: deploy, env });
  });
}

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  entrypoint?: string[];
  command?: string[];
  environment?: Record<string, string>;
  secrets?: string[];
  ports?: string[];
  expose?: string[];
  container_name?: string;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  stop_grace_period?: string;
  restart?: string;
  volumes?: string[];
}
interface ComposeFile {
  services: Record<string, Service>;
  secrets: Record<string, { file: string }>;
  volumes: Record<string, unknown>;
}

const compose = parse(readFileSync(join(DEPLOY, 'compose.yaml'), 'utf8'), { merge: true }) as ComposeFile;
const { coordinator, worker, prometheus, grafana } = compose.services;

function seconds(duration: string): number {
  const m = /^(?:(\d+)m)?(?:(\d+)s)?$/.exec(duration);
  if (!m || (!m[1] && !m[2])) throw new Error(`unexpected duration ${duration}`);
  return Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0);
}

function healthUrl(service: Service): string {
  const script = service.healthcheck?.test.join(' ') ?? '';
  const url = /fetch\('([^']+)'\)/.exec(script)?.[1];
  if (!url) throw new Error(`no fetch() URL in the health check: ${script}`);
  return url;
}

describe('deploy/compose.yaml', () => {
  it.skipIf(!haveCompose)(titled('passes docker-compose config -q', COMPOSE, haveCompose), () => {
    const r = composeConfig();
    expect(r.output).toBe('');
    expect(r.status).toBe(0);
  });

  it.skipIf(!haveCompose)(titled('and the check fails on a broken copy', COMPOSE, haveCompose), () => {
    const r = composeConfig((s) => s.replace('    restart: on-failure\n', '    restart: on-failure\n    not_a_compose_option: true\n'));
    expect(r.status).not.toBe(0);
    expect(r.output).toMatch(/not_a_compose_option/);
  });

  it('runs both roles from the one image built by deploy/Dockerfile', () => {
    for (const s of [coordinator, worker]) {
      expect(s.image).toBe(coordinator.image);
      expect(s.build).toEqual({ context: '..', dockerfile: 'deploy/Dockerfile' });
    }
    expect(coordinator.entrypoint).toEqual(['tini', '--', 'meshgrad-coordinator']);
    expect(worker.command?.[0]).toBe('worker');
    expect(worker.command).toContain('--connect=ws://coordinator:7070');
    expect(coordinator.environment?.MESHGRAD_PORT).toBe('7070');
  });

  it('lets workers scale: no container name, no host ports, started once the coordinator is healthy', () => {
    expect(worker.container_name).toBeUndefined();
    expect(worker.ports).toBeUndefined();
    expect(coordinator.ports).toBeUndefined();
    expect(worker.depends_on).toEqual({ coordinator: { condition: 'service_healthy' } });
  });

  it('checks health on the metrics ports: /readyz for the coordinator, /healthz for workers', () => {
    expect(coordinator.environment?.MESHGRAD_METRICS_PORT).toBe('9400');
    expect(worker.environment?.MESHGRAD_METRICS_PORT).toBe('9401');
    // Two scrape intervals (prometheus.yml: 5 s) of /metrics after the run, for the final figures.
    expect(coordinator.environment?.MESHGRAD_LINGER).toBe('10');
    expect(worker.environment?.MESHGRAD_LINGER).toBe('10');
    expect(healthUrl(coordinator)).toBe('http://127.0.0.1:9400/readyz');
    expect(healthUrl(worker)).toBe('http://127.0.0.1:9401/healthz');
    expect(coordinator.expose).toEqual(expect.arrayContaining(['7070', '9400']));
    expect(worker.expose).toEqual(['9401']);
  });

  it('passes the token as a secret file, never in the environment or the image', () => {
    expect(compose.secrets.meshgrad_token.file).toBe('./secrets/token');
    for (const s of [coordinator, worker]) {
      expect(s.secrets).toEqual(['meshgrad_token']);
      expect(s.environment?.MESHGRAD_TOKEN_FILE).toBe('/run/secrets/meshgrad_token');
      expect(s.environment?.MESHGRAD_TOKEN).toBeUndefined();
      expect(JSON.stringify(s.command ?? [])).not.toMatch(/--token[= ]/);
    }
    expect(readFileSync(join(DEPLOY, 'secrets', '.gitignore'), 'utf8')).toMatch(/^\/token$/m);
    expect(readFileSync(join(DEPLOY, 'secrets', 'token.example'), 'utf8').trim()).not.toBe('');
  });

  it('keeps checkpoints on a named volume and gives the coordinator time to checkpoint on stop', () => {
    expect(coordinator.environment?.MESHGRAD_CHECKPOINT_DIR).toBe('/var/lib/meshgrad');
    // A restart resumes from the checkpoint (--resume auto); meshgrad-coordinator never reruns a finished run.
    expect(coordinator.environment?.MESHGRAD_RESUME).toBe('auto');
    expect(coordinator.environment?.MESHGRAD_SUMMARY_JSON).toBe('/var/lib/meshgrad/summary.json');
    expect(coordinator.volumes).toContain('checkpoints:/var/lib/meshgrad');
    expect(compose.volumes).toHaveProperty('checkpoints');
    // Finishing a step may take up to --step-timeout (30 s) before the checkpoint is written.
    expect(seconds(coordinator.stop_grace_period ?? '10s')).toBeGreaterThanOrEqual(60);
    expect(coordinator.restart).toBe('on-failure');
  });

  it('mounts the Prometheus configuration and the Grafana provisioning that exist in deploy/', () => {
    expect(prometheus.volumes).toContain('./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro');
    expect(grafana.volumes).toContain('./grafana/provisioning:/etc/grafana/provisioning:ro');
    expect(grafana.volumes).toContain('./grafana/dashboards:/var/lib/grafana/dashboards:ro');
    const provider = parse(readFileSync(join(DEPLOY, 'grafana/provisioning/dashboards/meshgrad.yaml'), 'utf8')) as { providers: { type: string; options: { path: string } }[] };
    expect(provider.providers[0]).toMatchObject({ type: 'file', options: { path: '/var/lib/grafana/dashboards' } });
    expect(grafana.environment?.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH).toBe('/var/lib/grafana/dashboards/meshgrad.json');
    const datasources = parse(readFileSync(join(DEPLOY, 'grafana/provisioning/datasources/prometheus.yaml'), 'utf8')) as { datasources: { uid: string; url: string }[] };
    expect(datasources.datasources[0]).toMatchObject({ uid: 'prometheus', url: 'http://prometheus:9090' });
  });
});
