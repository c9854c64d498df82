/**
 * deploy/k8s: `kubectl kustomize` renders it, every object validates against the Kubernetes
 * (and Prometheus Operator) schemas of kubernetes-models, and the pieces are wired together:
 * probes, ports, the token Secret, scraping, non-root, graceful termination.
 * Set KUBECTL to test another kubectl (e.g. Debian 12's 1.20 with kustomize v2.0.3).
 */

import { beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { IPodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor';
import { hasTool, run, titled } from './tools.js';

const KUBECTL = process.env.KUBECTL || 'kubectl';
const haveKubectl = hasTool(KUBECTL);

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/** The schema-checked model class of each kind deploy/k8s may contain. */
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/StatefulSet': StatefulSet,
  'apps/v1/Deployment': Deployment,
  'monitoring.coreos.com/v1/PodMonitor': PodMonitor,
};

/** Throws with the schema errors when `obj` does not validate. */
function validate(obj: K8sObject): void {
  const Model = MODELS[`${obj.apiVersion}/${obj.kind}`];
  if (!Model) throw new Error(`no schema for ${obj.apiVersion} ${obj.kind} (add it to MODELS)`);
  try {
    new Model(obj as never).validate();
  } catch (err) {
    throw new Error(`${obj.kind}/${obj.metadata?.name}: ${(err as Error).message}`);
  }
}

function kustomize(dir: string): K8sObject[] {
  const r = run(KUBECTL, ['kustomize', dir]);
  if (r.status !== 0) throw new Error(`${KUBECTL} kustomize ${dir} failed:\n${r.output}`);
  const docs = parseAllDocuments(r.stdout);
  for (const d of docs) if (d.errors.length) throw new Error(`unparsable output: ${d.errors[0].message}`);
  return docs.map((d) => d.toJS() as K8sObject).filter((o) => o !== null);
}

let objects: K8sObject[] = [];
let monitoring: K8sObject[] = [];
beforeAll(() => {
  if (!haveKubectl) return;
  objects = kustomize('deploy/k8s');
  monitoring = kustomize('deploy/k8s/monitoring');
});

function one<T = K8sObject>(kind: string, name?: string): T {
  const found = [...objects, ...monitoring].filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  expect(found, `${kind} ${name ?? ''}`).toHaveLength(1);
  return found[0] as unknown as T;
}

type Workload = K8sObject & { spec: { template: IPodTemplateSpec; selector: { matchLabels: Record<string, string> } } };

function podSpec(w: Workload): IPodSpec {
  return w.spec.template.spec as IPodSpec;
}

function container(w: Workload): IContainer {
  const cs = podSpec(w).containers;
  expect(cs).toHaveLength(1);
  return cs[0];
}

/** The container port a probe (or anything naming a port by name or number) points at. */
function containerPort(c: IContainer, port: string | number | undefined): number | undefined {
  if (typeof port === 'number') return c.ports?.find((p) => p.containerPort === port)?.containerPort;
  return c.ports?.find((p) => p.name === port)?.containerPort;
}

function probe(c: IContainer, kind: 'readinessProbe' | 'livenessProbe'): { path: string; port: number | undefined } {
  const p = c[kind] as IProbe | undefined;
  expect(p?.httpGet, `${c.name} ${kind}`).toBeDefined();
  return { path: p!.httpGet!.path!, port: containerPort(c, p!.httpGet!.port as string | number) };
}

const skip = !haveKubectl;
const t = (title: string): string => titled(title, KUBECTL, haveKubectl);

describe('deploy/k8s', () => {
  it.skipIf(skip)(t('renders with kubectl kustomize'), () => {
    expect(objects.map((o) => `${o.kind}/${o.metadata.name.replace(/-[a-z0-9]{10}$/, '-<hash>')}`).sort()).toEqual([
      'Deployment/meshgrad-worker',
      'Namespace/meshgrad',
      'Secret/meshgrad-token-<hash>',
      'Service/meshgrad-coordinator',
      'StatefulSet/meshgrad-coordinator',
    ]);
    expect(monitoring.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(['PodMonitor/meshgrad']);
    for (const o of [...objects, ...monitoring]) {
      if (o.kind !== 'Namespace') expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe('meshgrad');
      expect(o.metadata.labels?.['app.kubernetes.io/part-of']).toBe('meshgrad');
    }
  });

  it.skipIf(skip)(t('validates every object against the Kubernetes and Prometheus Operator schemas'), () => {
    for (const o of [...objects, ...monitoring]) validate(o);
  });

  it.skipIf(skip)(t('and the validation rejects broken objects'), () => {
    const sts = structuredClone(one<Workload>('StatefulSet'));
    (sts.spec as Record<string, unknown>).replicas = 'one';
    expect(() => validate(sts)).toThrow(/replicas/);
    const dep = structuredClone(one<Workload>('Deployment'));
    delete (container(dep).livenessProbe!.httpGet as { port?: unknown }).port;
    expect(() => validate(dep)).toThrow(/port/);
    const pm = structuredClone(one('PodMonitor')) as K8sObject & { spec: { podMetricsEndpoints: unknown } };
    pm.spec.podMetricsEndpoints = 'metrics';
    expect(() => validate(pm)).toThrow(/podMetricsEndpoints/);
    expect(() => validate({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' } })).toThrow(/no schema/);
  });

  it.skipIf(skip)(t('wires the coordinator probes to /readyz and /healthz on its metrics port'), () => {
    const c = container(one<Workload>('StatefulSet', 'meshgrad-coordinator'));
    expect(probe(c, 'readinessProbe')).toEqual({ path: '/readyz', port: 9400 });
    expect(probe(c, 'livenessProbe')).toEqual({ path: '/healthz', port: 9400 });
    expect(c.ports?.map((p) => [p.name, p.containerPort])).toEqual([['ws', 7070], ['metrics', 9400]]);
    expect(c.env).toEqual(expect.arrayContaining([{ name: 'MESHGRAD_METRICS_PORT', value: '9400' }, { name: 'MESHGRAD_PORT', value: '7070' }, { name: 'MESHGRAD_LINGER', value: '30' }]));
  });

  it.skipIf(skip)(t('wires the worker liveness probe to /healthz on its metrics port'), () => {
    const c = container(one<Workload>('Deployment', 'meshgrad-worker'));
    expect(probe(c, 'livenessProbe')).toEqual({ path: '/healthz', port: 9401 });
    expect(c.ports?.map((p) => [p.name, p.containerPort])).toEqual([['metrics', 9401]]);
    expect(c.env).toEqual(expect.arrayContaining([{ name: 'MESHGRAD_METRICS_PORT', value: '9401' }, { name: 'MESHGRAD_LINGER', value: '30' }]));
  });

  it.skipIf(skip)(t('points workers at the coordinator Service, which selects the coordinator pod'), () => {
    const svc = one<K8sObject & { spec: { selector: Record<string, string>; ports: { name: string; port: number; targetPort: string }[]; clusterIP?: string } }>('Service', 'meshgrad-coordinator');
    const sts = one<Workload & { spec: { serviceName: string } }>('StatefulSet', 'meshgrad-coordinator');
    expect(sts.spec.serviceName).toBe(svc.metadata.name);
    expect(sts.spec.template.metadata?.labels).toMatchObject(svc.spec.selector);
    expect(sts.spec.template.metadata?.labels).toMatchObject(sts.spec.selector.matchLabels);
    const c = container(sts);
    for (const p of svc.spec.ports) expect(containerPort(c, p.targetPort), p.name).toBe(p.port);
    const worker = container(one<Workload>('Deployment', 'meshgrad-worker'));
    expect(worker.args).toContain(`--connect=ws://${svc.metadata.name}:7070`);
    expect(svc.spec.ports.find((p) => p.port === 7070)).toBeDefined();
  });

  it.skipIf(skip)(t('mounts the generated token Secret as a file in both roles'), () => {
    const secrets = new Map(objects.filter((o) => o.kind === 'Secret').map((o) => [o.metadata.name, o as K8sObject & { data?: Record<string, string> }]));
    for (const w of [one<Workload>('StatefulSet'), one<Workload>('Deployment')]) {
      const c = container(w);
      const file = c.env?.find((e) => e.name === 'MESHGRAD_TOKEN_FILE')?.value;
      expect(file, w.metadata.name).toBeDefined();
      expect(c.env?.find((e) => e.name === 'MESHGRAD_TOKEN')).toBeUndefined();
      const mount = c.volumeMounts?.find((m) => file!.startsWith(`${m.mountPath}/`));
      expect(mount?.readOnly).toBe(true);
      const volume = podSpec(w).volumes?.find((v) => v.name === mount!.name);
      const secret = secrets.get(volume?.secret?.secretName ?? '');
      expect(secret, `Secret ${volume?.secret?.secretName}`).toBeDefined();
      expect(Object.keys(secret!.data ?? {})).toContain(file!.slice(mount!.mountPath.length + 1));
    }
  });

  it.skipIf(skip)(t('annotates pods for scraping on the port their container serves metrics on'), () => {
    for (const w of [one<Workload>('StatefulSet'), one<Workload>('Deployment')]) {
      const a = w.spec.template.metadata?.annotations ?? {};
      expect(a['prometheus.io/scrape']).toBe('true');
      expect(a['prometheus.io/path']).toBe('/metrics');
      expect(containerPort(container(w), 'metrics')).toBe(Number(a['prometheus.io/port']));
    }
  });

  it.skipIf(skip)(t("has the PodMonitor select both roles' pods by a port name their containers declare"), () => {
    const pm = one<K8sObject & { spec: { selector: { matchLabels: Record<string, string> }; podMetricsEndpoints: { port: string; path: string }[] } }>('PodMonitor');
    for (const w of [one<Workload>('StatefulSet'), one<Workload>('Deployment')]) {
      expect(w.spec.template.metadata?.labels).toMatchObject(pm.spec.selector.matchLabels);
      for (const e of pm.spec.podMetricsEndpoints) {
        expect(containerPort(container(w), e.port), `${w.metadata.name} port ${e.port}`).toBeDefined();
        expect(e.path).toBe('/metrics');
      }
    }
  });

  it.skipIf(skip)(t('runs as non-root, with resources, and lets the coordinator checkpoint on SIGTERM'), () => {
    for (const w of [one<Workload>('StatefulSet'), one<Workload>('Deployment')]) {
      expect(podSpec(w).securityContext?.runAsNonRoot, w.metadata.name).toBe(true);
      const c = container(w);
      expect(c.securityContext?.allowPrivilegeEscalation).toBe(false);
      expect(c.resources?.requests).toHaveProperty('cpu');
      expect(c.resources?.requests).toHaveProperty('memory');
      expect(c.resources?.limits).toHaveProperty('memory');
    }
    const sts = one<Workload & { spec: { replicas: number; volumeClaimTemplates: { metadata: { name: string } }[] } }>('StatefulSet');
    expect(sts.spec.replicas).toBe(1);
    // Finishing the step in flight may take up to --step-timeout (30 s), then the checkpoint.
    expect(podSpec(sts).terminationGracePeriodSeconds).toBeGreaterThanOrEqual(60);
    const c = container(sts);
    expect(c.command).toEqual(['tini', '--', 'meshgrad-coordinator']);
    const dir = c.env?.find((e) => e.name === 'MESHGRAD_CHECKPOINT_DIR')?.value;
    expect(c.volumeMounts?.find((m) => m.mountPath === dir)?.name).toBe(sts.spec.volumeClaimTemplates[0].metadata.name);
    expect(c.env?.find((e) => e.name === 'MESHGRAD_SUMMARY_JSON')?.value).toBe(`${dir}/summary.json`);
    expect(c.env?.find((e) => e.name === 'MESHGRAD_RESUME')?.value).toBe('auto');
  });
});
