// examples/k8s: every manifest validates as its Kubernetes kind with kubernetes-models (the API
// server's OpenAPI schemas; for the Prometheus Operator kinds, the JSON schemas of its CRDs via
// @kubernetes-models/prometheus-operator), the validators reject broken variants (so they really
// check), and the manifests agree with what hwsq does: Guaranteed QoS with integer CPUs, the
// downward-API variables that /metrics/scheduler reads, scrape annotations pointing at a port
// and path that serve Prometheus text, and alerts that use metric names registerMetrics exports.
import fs from 'node:fs';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Service } from 'kubernetes-models/v1/Service';
import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { createNativeRuntime } from '../lib/native-runtime/native-runtime';
import { registerMetrics } from '../lib/metrics/prometheus';
import { POD_ENV } from '../lib/metrics/scheduler-json';
import { serveMetrics } from '../lib/metrics/server';

const root = path.resolve(__dirname, '..');
const dir = path.join(root, 'examples', 'k8s');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = any;
const MODELS: Record<string, new (data: Obj) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'v1/Service': Service,
  'monitoring.coreos.com/v1/PodMonitor': PodMonitor,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
};

function validate(doc: Obj): void {
  const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
  if (!Model) throw new Error(`no schema for ${doc.apiVersion} ${doc.kind}`);
  new Model(doc).validate();
}

const docs: { file: string; doc: Obj }[] = fs
  .readdirSync(dir)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort()
  .flatMap((file) =>
    parseAllDocuments(fs.readFileSync(path.join(dir, file), 'utf8')).map((d) => {
      if (d.errors.length) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`);
      return { file, doc: d.toJS() };
    }),
  );
const only = (kind: string) => {
  const found = docs.filter((d) => d.doc.kind === kind);
  expect(found, kind).toHaveLength(1);
  return found[0]!.doc;
};
const clone = (o: Obj): Obj => structuredClone(o);

const rt = createNativeRuntime({ workers: 1 });
afterAll(() => rt.close());

describe('examples/k8s manifests', () => {
  it('are the expected kinds, and each validates against its schema', () => {
    expect(docs.map((d) => `${d.file}: ${d.doc.kind}`)).toEqual(['deployment.yaml: Deployment', 'podmonitor.yaml: PodMonitor', 'prometheusrule.yaml: PrometheusRule', 'service.yaml: Service']);
    for (const { file, doc } of docs) expect(() => validate(doc), file).not.toThrow();
  });

  it('fail validation when broken (the validators check types, required fields and enums)', () => {
    const dep = only('Deployment');
    const broken: [Obj, (o: Obj) => void][] = [
      [dep, (o) => (o.spec.replicas = 'two')],
      [dep, (o) => delete o.spec.selector],
      [dep, (o) => (o.spec.template.spec.containers[0].ports[0].containerPort = 'metrics')],
      [dep, (o) => (o.spec.template.spec.containers[0].env[0].valueFrom.fieldRef = { path: 'metadata.name' })],
      [only('Service'), (o) => (o.spec.ports[0].protocol = 'ICMP')],
      [only('PodMonitor'), (o) => (o.spec.podMetricsEndpoints = 'metrics')],
      [only('PrometheusRule'), (o) => delete o.spec.groups[0].name],
      [only('PrometheusRule'), (o) => (o.spec.groups[0].rules[2].labels = { severity: 3 })],
    ];
    for (const [doc, breakIt] of broken) {
      const o = clone(doc);
      breakIt(o);
      expect(() => validate(o), `${doc.kind}: ${breakIt.toString()}`).toThrow();
    }
  });

  it('ask for Guaranteed QoS with whole CPUs, and pass the pod identity through the downward API', () => {
    const pod = only('Deployment').spec.template.spec;
    for (const c of pod.containers) {
      expect(c.resources.requests, c.name).toEqual(c.resources.limits);
      expect(Object.keys(c.resources.limits).sort()).toEqual(['cpu', 'memory']);
      expect(String(c.resources.limits.cpu)).toMatch(/^[1-9]\d*$/); // integer: exclusive CPUs
    }
    const app = pod.containers[0];
    const env = new Map<string, Obj>(app.env.map((e: Obj) => [e.name, e.valueFrom]));
    expect(env.get(POD_ENV.name)).toEqual({ fieldRef: { fieldPath: 'metadata.name' } });
    expect(env.get(POD_ENV.namespace)).toEqual({ fieldRef: { fieldPath: 'metadata.namespace' } });
    expect(env.get(POD_ENV.uid)).toEqual({ fieldRef: { fieldPath: 'metadata.uid' } });
    expect(env.get(POD_ENV.nodeName)).toEqual({ fieldRef: { fieldPath: 'spec.nodeName' } });
    expect(env.get(POD_ENV.cpuLimit)).toEqual({ resourceFieldRef: { containerName: app.name, resource: 'limits.cpu', divisor: '1' } });
  });

  it('point Prometheus (annotations, PodMonitor, Service) at a port and path that serve the metrics', async () => {
    const dep = only('Deployment');
    const app = dep.spec.template.spec.containers[0];
    const ann = dep.spec.template.metadata.annotations;
    const port = app.ports.find((p: Obj) => p.name === 'metrics');
    expect(ann['prometheus.io/scrape']).toBe('true');
    expect(Number(ann['prometheus.io/port'])).toBe(port.containerPort);
    // The container serves on that port, on all interfaces (the default is 127.0.0.1).
    const args: string[] = app.command;
    expect(args.slice(args.indexOf('--port'), args.indexOf('--port') + 2)).toEqual(['--port', String(port.containerPort)]);
    expect(args.slice(args.indexOf('--host'), args.indexOf('--host') + 2)).toEqual(['--host', '0.0.0.0']);
    const labels = dep.spec.template.metadata.labels;
    expect(dep.spec.selector.matchLabels).toEqual(labels);
    const pm = only('PodMonitor');
    expect(pm.spec.selector.matchLabels).toEqual(labels);
    expect(pm.spec.podMetricsEndpoints.map((e: Obj) => [e.port, e.path])).toEqual([['metrics', ann['prometheus.io/path']]]);
    const svc = only('Service');
    expect(svc.spec.selector).toEqual(labels);
    expect(svc.spec.ports[0]).toMatchObject({ port: port.containerPort, targetPort: 'metrics' });
    for (const probe of [app.readinessProbe, app.livenessProbe]) expect(probe.httpGet.port).toBe('metrics');

    // What is at those paths, from a real server.
    const server = await serveMetrics(rt, { port: 0 });
    try {
      const scrape = await fetch(server.url + ann['prometheus.io/path']);
      expect(scrape.status).toBe(200);
      expect(await scrape.text()).toContain('# TYPE hwsq_tasks_completed_total counter');
      expect((await fetch(server.url + app.readinessProbe.httpGet.path)).status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('alert on remote-node steals and p99 scheduling latency with metric names that are exported', async () => {
    const registry = new Registry();
    const reg = registerMetrics(rt, { registry });
    await rt.spawnNative('noop', {}, { count: 10 });
    const exported = new Set<string>();
    const labelValues = new Map<string, Set<string>>();
    for (const m of await registry.getMetricsAsJSON()) {
      for (const v of m.values as { metricName?: string; labels: Record<string, string | number> }[]) {
        exported.add(v.metricName ?? m.name);
        for (const [k, val] of Object.entries(v.labels)) (labelValues.get(k) ?? labelValues.set(k, new Set()).get(k)!).add(String(val));
      }
    }
    reg.unregister();
    const rules: Obj[] = only('PrometheusRule').spec.groups.flatMap((g: Obj) => g.rules);
    const alerts = new Map<string, string>(rules.filter((r) => r.alert).map((r) => [r.alert, r.expr]));
    expect([...alerts.keys()]).toEqual(expect.arrayContaining(['HwsqRemoteNodeStealsHigh', 'HwsqSchedulingLatencyP99High']));
    expect(alerts.get('HwsqRemoteNodeStealsHigh')).toContain('hwsq_steals_total{scope="remote_node"}');
    expect(alerts.get('HwsqSchedulingLatencyP99High')).toMatch(/histogram_quantile\(0\.99, .*hwsq_scheduling_latency_seconds_bucket/s);
    for (const r of rules) {
      const names = [...String(r.expr).matchAll(/\b(hwsq_[a-z0-9_]+)/g)].map((m) => m[1]!);
      expect(names.length, r.alert ?? r.record).toBeGreaterThan(0);
      for (const n of names) expect(exported, `${r.alert ?? r.record}: ${n}`).toContain(n);
      for (const [, label, value] of String(r.expr).matchAll(/([a-z_]+)="([^"]*)"/g)) expect(labelValues.get(label!), `${label}="${value}"`).toContain(value);
      // Balanced parentheses: a cheap guard against a mangled expression.
      let depth = 0;
      for (const ch of String(r.expr)) {
        depth += ch === '(' ? 1 : ch === ')' ? -1 : 0;
        expect(depth).toBeGreaterThanOrEqual(0);
      }
      expect(depth).toBe(0);
    }
  });

  it('are described in docs/kubernetes.md', () => {
    const doc = fs.readFileSync(path.join(root, 'docs', 'kubernetes.md'), 'utf8');
    for (const f of new Set(docs.map((d) => d.file))) expect(doc).toContain(`examples/k8s/${f}`);
    for (const name of Object.values(POD_ENV)) expect(doc).toContain(name);
    for (const s of ['single-numa-node', 'cpuManagerPolicy: static', 'Guaranteed', 'hwsq topology', 'hwsq_steals_total', 'hwsq_scheduling_latency_seconds_bucket']) expect(doc).toContain(s);
  });
});
