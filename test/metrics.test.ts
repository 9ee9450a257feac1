// Observability: registerMetrics (prom-client), serveMetrics (HTTP: /metrics, /metrics/scheduler)
// and `hwsq metrics serve`, checked against real runtimes running known workloads.
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { Gauge, Registry, collectDefaultMetrics, register as globalRegistry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { createNativeRuntime, type NativeRuntime, type NativeRuntimeOptions } from '../lib/native-runtime/native-runtime';
import { Runtime } from '../lib/runtime/runtime';
import { DEFAULT_LATENCY_BUCKETS, cumulativeBuckets, registerMetrics } from '../lib/metrics/prometheus';
import { POD_ENV, schedulerJson, schedulerJsonFrom, type PodIdentity, type SchedulerJson, type SnapshotOrigin } from '../lib/metrics/scheduler-json';
import { Connections, serveMetrics, type MetricsServer } from '../lib/metrics/server';
import type { MetricsSource } from '../lib/metrics/source';
import { expectCode } from './helpers';

const root = path.resolve(__dirname, '..');

// ------------------------------------------------------------------ Prometheus text parsing

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
interface Scrape {
  samples: Sample[];
  types: Map<string, string>;
}

function parseProm(text: string): Scrape {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t) types.set(t[1]!, t[2]!);
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: m[3] === '+Inf' ? Infinity : Number(m[3]) });
  }
  return { samples, types };
}

const series = (s: Scrape, name: string, where: Record<string, string> = {}) =>
  s.samples.filter((x) => x.name === name && Object.entries(where).every(([k, v]) => x.labels[k] === v));
const total = (s: Scrape, name: string, where: Record<string, string> = {}) => series(s, name, where).reduce((a, x) => a + x.value, 0);
const one = (s: Scrape, name: string, where: Record<string, string> = {}) => {
  const found = series(s, name, where);
  expect(found, `${name} ${JSON.stringify(where)}`).toHaveLength(1);
  return found[0]!.value;
};

// ------------------------------------------------------------------ fixtures

const runtimes: NativeRuntime[] = [];
const servers: MetricsServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await Promise.all(runtimes.splice(0).map((rt) => rt.close()));
});

// Every task timed (timingSampleShift 0), so that histogram counts equal task counts exactly.
function runtime(options: NativeRuntimeOptions = { virtualTopology: { nodes: 2, workersPerNode: 2 }, timingSampleShift: 0 }): NativeRuntime {
  const rt = createNativeRuntime(options);
  runtimes.push(rt);
  return rt;
}

/** A known mix: external spawns, fan-outs from inside two workers (the others steal), 1 ms spins on node 1. */
async function knownWorkload(rt: NativeRuntime): Promise<{ tasks: number; external: number; spins: number }> {
  await Promise.all([
    rt.spawnNative('noop', {}, { count: 3000 }),
    rt.spawnNative('noop', {}, { count: 20_000, inside: true, worker: 0 }),
    rt.spawnNative('noop', {}, { count: 20_000, inside: true, worker: rt.size - 1 }),
    rt.spawnNative('spin', { ns: 1e6 }, { count: 100, node: rt.nodes[rt.nodes.length - 1]! }),
  ]);
  await rt.idle();
  // external: 3000 + 2 root tasks + 100 spins; the 40000 children are spawned from inside.
  return { tasks: 3000 + 2 + 40_000 + 100, external: 3102, spins: 100 };
}

const PER_WORKER = [
  'hwsq_tasks_completed_total',
  'hwsq_failed_steal_attempts_total',
  'hwsq_overflows_total',
  'hwsq_parks_total',
  'hwsq_wakeups_total',
  'hwsq_busy_seconds_total',
  'hwsq_spinning_seconds_total',
  'hwsq_hogs_total',
  'hwsq_worker_parked',
  'hwsq_worker_current_task_seconds',
];

describe('registerMetrics: a real registry after a known workload', () => {
  it('publishes spawned = completed, steals by scope, queues, busy time and histograms consistent with stats()', async () => {
    const rt = runtime();
    const registry = new Registry();
    const reg = registerMetrics(rt, { registry });
    const known = await knownWorkload(rt);
    const scrape = parseProm(await registry.metrics());
    const s = rt.stats(); // the runtime is idle: task counters can no longer move

    // Tasks: every spawned task completed, and the split by origin is the one submitted.
    expect(total(scrape, 'hwsq_tasks_spawned_total')).toBe(known.tasks);
    expect(one(scrape, 'hwsq_tasks_spawned_total', { origin: 'external' })).toBe(known.external);
    expect(total(scrape, 'hwsq_tasks_spawned_total', { origin: 'worker' })).toBe(known.tasks - known.external);
    expect(total(scrape, 'hwsq_tasks_completed_total')).toBe(known.tasks);
    expect(one(scrape, 'hwsq_tasks_failed_total')).toBe(0);
    expect(one(scrape, 'hwsq_tasks_dropped_total')).toBe(0);
    expect(one(scrape, 'hwsq_tasks_rejected_total')).toBe(0);

    // Per worker: one series per P with its node; values are the P's own counters.
    for (const name of PER_WORKER) expect(series(scrape, name).map((x) => x.labels.worker).sort(), name).toEqual(['0', '1', '2', '3']);
    for (const w of s.workers) {
      const l = { worker: String(w.worker), numa_node: String(w.node) };
      expect(one(scrape, 'hwsq_tasks_completed_total', l)).toBe(w.executed);
      expect(one(scrape, 'hwsq_steals_total', { ...l, scope: 'same_node' })).toBe(w.stealsSameNode);
      expect(one(scrape, 'hwsq_steals_total', { ...l, scope: 'remote_node' })).toBe(w.stealsRemote);
      expect(one(scrape, 'hwsq_stolen_tasks_total', { ...l, scope: 'remote_node' })).toBe(w.stealsRemoteTasks);
      expect(one(scrape, 'hwsq_overflows_total', l)).toBe(w.overflows);
      expect(one(scrape, 'hwsq_busy_seconds_total', l)).toBeCloseTo(w.busyNs / 1e9, 9);
      expect(one(scrape, 'hwsq_hogs_total', l)).toBe(w.hogs);
      // Idle Ps may still spin, fail a steal and park after the scrape: never fewer later.
      expect(one(scrape, 'hwsq_failed_steal_attempts_total', l)).toBeLessThanOrEqual(w.failedSteals);
      expect(one(scrape, 'hwsq_parks_total', l)).toBeLessThanOrEqual(w.parks);
      expect(series(scrape, 'hwsq_tasks_completed_total', l)[0]!.labels.cpu).toBeUndefined(); // virtual Ps are not pinned
    }
    // The fan-outs were stolen from, within the node and across nodes.
    const same = total(scrape, 'hwsq_steals_total', { scope: 'same_node' });
    const remote = total(scrape, 'hwsq_steals_total', { scope: 'remote_node' });
    expect(same + remote).toBeGreaterThan(0);
    expect(remote).toBeGreaterThan(0);
    expect(same).toBe(s.workers.reduce((a, w) => a + w.stealsSameNode, 0));
    expect(total(scrape, 'hwsq_stolen_tasks_total')).toBeGreaterThanOrEqual(same + remote);
    // 100 spins of 1 ms: at least 0.1 s busy in all.
    expect(total(scrape, 'hwsq_busy_seconds_total')).toBeGreaterThanOrEqual(0.1);

    // Queue depths: local per worker, node per node, one global; all empty when idle.
    expect(series(scrape, 'hwsq_queue_depth', { queue: 'local' })).toHaveLength(4);
    expect(series(scrape, 'hwsq_queue_depth', { queue: 'node' }).map((x) => x.labels.numa_node).sort()).toEqual(['0', '1']);
    expect(one(scrape, 'hwsq_queue_depth', { queue: 'global' })).toBe(0);
    expect(total(scrape, 'hwsq_queue_depth')).toBe(0);
    expect(total(scrape, 'hwsq_node_workers')).toBe(4);
    expect(scrape.types.get('hwsq_queue_depth')).toBe('gauge');
    expect(scrape.types.get('hwsq_steals_total')).toBe('counter');

    // Histograms, in seconds, rebuilt from the native buckets: every task was timed.
    for (const [name, h] of [
      ['hwsq_scheduling_latency_seconds', s.latency],
      ['hwsq_task_run_seconds', s.runTime],
    ] as const) {
      expect(scrape.types.get(name)).toBe('histogram');
      const buckets = series(scrape, `${name}_bucket`);
      expect(buckets.map((b) => b.labels.le)).toEqual([...DEFAULT_LATENCY_BUCKETS.map(String), '+Inf']);
      for (let i = 1; i < buckets.length; i++) expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value);
      expect(one(scrape, `${name}_count`)).toBe(known.tasks);
      expect(buckets.at(-1)!.value).toBe(known.tasks);
      expect(one(scrape, `${name}_sum`)).toBeCloseTo(h.sumNs / 1e9, 6);
      // The buckets agree with the native median: half the tasks lie below the first bound past it.
      const le = (v: number) => buckets.find((b) => Number(b.labels.le) >= v)!.value;
      expect(le((h.p50Ns * 1.05) / 1e9)).toBeGreaterThanOrEqual(known.tasks / 2);
      const below = buckets.filter((b) => Number(b.labels.le) <= (h.p50Ns * 0.95) / 1e9).at(-1);
      if (below) expect(below.value).toBeLessThanOrEqual(known.tasks / 2);
    }
    // The 100 spins ran >= 1 ms each (a spin lasts at least its length): all above 0.5 ms. How
    // long the noops took is the machine's business, not a test's.
    const runOver = (le: string) => known.tasks - one(scrape, 'hwsq_task_run_seconds_bucket', { le });
    expect(runOver('0.0005')).toBeGreaterThanOrEqual(known.spins);
    reg.unregister();
    expect(await registry.metrics()).toBe('\n');
  });

  it('reads one stats snapshot per scrape, shared by every metric', async () => {
    const rt = runtime();
    let calls = 0;
    const counting: MetricsSource = { stats: () => (calls++, rt.stats()), topology: () => rt.topology() };
    const registry = new Registry();
    const reg = registerMetrics(counting, { registry });
    calls = 0;
    await rt.spawnNative('noop', {}, { count: 100 });
    await registry.metrics();
    expect(calls).toBe(1);
    await registry.metrics();
    expect(calls).toBe(2);
    await registry.getMetricsAsJSON();
    expect(calls).toBe(3);
    // Scrapes started in the same tick share it too.
    await Promise.all([registry.metrics(), registry.metrics()]);
    expect(calls).toBe(4);
    expect(reg.names.length).toBeGreaterThan(20);
  });

  it('labels pinned workers with their CPU and adds constant labels and a prefix', async () => {
    const rt = runtime({ workers: 2, pin: 'cpu' });
    const registry = new Registry();
    registerMetrics(rt, { registry, prefix: 'app_sched_', labels: { runtime: 'ingest' } });
    await rt.spawnNative('noop', {}, { count: 1000 });
    await rt.idle();
    const scrape = parseProm(await registry.metrics());
    expect(scrape.samples.length).toBeGreaterThan(20);
    expect(scrape.samples.every((x) => x.name.startsWith('app_sched_'))).toBe(true);
    expect(scrape.samples.every((x) => x.labels.runtime === 'ingest')).toBe(true);
    expect(total(scrape, 'app_sched_tasks_completed_total')).toBe(1000);
    for (const w of rt.topology().workers) {
      expect(w.cpus).toHaveLength(1);
      const [sample] = series(scrape, 'app_sched_tasks_completed_total', { worker: String(w.worker) });
      expect(sample!.labels).toMatchObject({ cpu: String(w.cpus[0]), numa_node: String(w.node), runtime: 'ingest' });
    }
  });

  it('registers in the global registry by default, refuses duplicates and bad options, unregisters', () => {
    const rt = runtime();
    const reg = registerMetrics(rt);
    try {
      expect(globalRegistry.getSingleMetric('hwsq_tasks_completed_total')).toBeDefined();
      expectCode(() => registerMetrics(rt), Error, 'ERR_HWSQ_INVALID_STATE');
    } finally {
      reg.unregister();
    }
    expect(globalRegistry.getSingleMetric('hwsq_tasks_completed_total')).toBeUndefined();
    const registry = new Registry();
    expectCode(() => registerMetrics(rt, { registry, prefix: '9bad' }), RangeError, 'ERR_HWSQ_INVALID_OPTION');
    expectCode(() => registerMetrics(rt, { registry, labels: { worker: 'x' } }), RangeError, 'ERR_HWSQ_INVALID_OPTION');
    expectCode(() => registerMetrics(rt, { registry, labels: { 'bad-name': 'x' } }), RangeError, 'ERR_HWSQ_INVALID_OPTION');
    expectCode(() => registerMetrics(rt, { registry, latencyBuckets: [0.1, 0.01] }), RangeError, 'ERR_HWSQ_INVALID_OPTION');
    expectCode(() => registerMetrics({} as MetricsSource, { registry }), TypeError, 'ERR_HWSQ_INVALID_ARG_TYPE');
    expect(registry.getMetricsAsArray()).toHaveLength(0); // nothing half-registered
  });

  it('rebuilds cumulative buckets from native ones at bucket midpoints', () => {
    const h = { count: 6, sumNs: 0, meanNs: 0, p50Ns: 0, p90Ns: 0, p99Ns: 0, maxNs: 0, buckets: { lowerNs: [900, 990, 2000, 5e9], upperNs: [950, 1020, 2100, 6e9], counts: [1, 2, 2, 1] } };
    // 990..1020 has its midpoint (1005 ns) above 1 us: it counts at 2 us.
    expect(cumulativeBuckets(h, [1e-6, 2e-6, 2.5e-6, 10])).toEqual([1, 3, 5, 6]);
    // A midpoint on a bound counts at that bound (le: less than or equal): 1000..3000 ns is 2 us.
    const onBound = { ...h, count: 3, buckets: { lowerNs: [1000, 3000], upperNs: [3000, 5000], counts: [2, 1] } };
    expect(cumulativeBuckets(onBound, [1e-6, 2e-6, 4e-6])).toEqual([0, 2, 3]);
  });

  it('also registers a JS-task Runtime (tasks_failed_total counts its failed tasks)', async () => {
    const fixture = path.join(root, 'test', 'fixtures', 'tasks', 'basic.mjs');
    if (!fs.existsSync(path.join(root, 'dist', 'worker.js'))) throw new Error('dist/worker.js is missing: run npx tsup');
    const rt = await Runtime.start({ filename: fixture, workers: 2 });
    try {
      const registry = new Registry();
      registerMetrics(rt, { registry });
      const results = await Promise.allSettled([...Array.from({ length: 20 }, (_, i) => rt.spawn('add', [i, 1])), ...Array.from({ length: 3 }, () => rt.spawn('fail', ['boom']))]);
      expect(results.filter((r) => r.status === 'rejected')).toHaveLength(3);
      // A task is counted just after its result is sent: wait for the 23 (a hang fails by the test's timeout).
      while (rt.stats().executed < 23) await new Promise((r) => setTimeout(r, 1));
      const s = rt.stats();
      expect(s.executed).toBe(23);
      const scrape = parseProm(await registry.metrics());
      expect(one(scrape, 'hwsq_tasks_failed_total')).toBe(3);
      expect(total(scrape, 'hwsq_tasks_completed_total')).toBe(s.executed);
      expect(total(scrape, 'hwsq_tasks_spawned_total')).toBe(s.externalSubmitted + s.spawned);
      expect(series(scrape, 'hwsq_tasks_completed_total').map((x) => x.labels.worker)).toEqual(['0', '1']);
      // JS tasks' latencies are Prometheus histograms too, rebuilt from the native buckets.
      expect(scrape.types.get('hwsq_scheduling_latency_seconds')).toBe('histogram');
      expect(one(scrape, 'hwsq_scheduling_latency_seconds_count')).toBe(s.latency.count);
      expect(s.latency.count).toBeGreaterThanOrEqual(23);
      expect(series(scrape, 'hwsq_scheduling_latency_seconds_bucket').find((x) => x.labels.le === '+Inf')?.value).toBe(s.latency.count);
    } finally {
      await rt.destroy();
    }
  });
});

// ------------------------------------------------------------------ HTTP

async function serve(rt: NativeRuntime, options: Parameters<typeof serveMetrics>[1] = {}): Promise<MetricsServer> {
  const server = await serveMetrics(rt, { port: 0, ...options });
  servers.push(server);
  return server;
}

function rawRequest(port: number, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(data));
    let out = '';
    socket.on('data', (d) => (out += d.toString()));
    socket.on('close', () => resolve(out));
    socket.on('error', reject);
  });
}

describe('serveMetrics: /metrics and /metrics/scheduler', () => {
  it('serves Prometheus text and the scheduler JSON of the same runtime, on 127.0.0.1 by default', async () => {
    const saved = Object.fromEntries(Object.values(POD_ENV).map((k) => [k, process.env[k]]));
    Object.assign(process.env, { POD_NAME: 'api-7d9f-x2k', POD_NAMESPACE: 'prod', POD_UID: 'uid-1', NODE_NAME: 'node-a', CPU_LIMIT: '4' });
    let server: MetricsServer;
    try {
      server = await serve(runtime());
    } finally {
      for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    expect(server.host).toBe('127.0.0.1');
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
    const rt = runtimes[0]!;
    const known = await knownWorkload(rt);

    const prom = await fetch(`${server.url}/metrics`);
    expect(prom.status).toBe(200);
    expect(prom.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const scrape = parseProm(await prom.text());
    expect(total(scrape, 'hwsq_tasks_completed_total')).toBe(known.tasks);

    const res = await fetch(`${server.url}/metrics/scheduler`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const doc = (await res.json()) as SchedulerJson;
    const s = rt.stats();
    expect(doc).toMatchObject({ pod_id: 'api-7d9f-x2k', namespace: 'prod', pod_uid: 'uid-1', node_name: 'node-a', cpu_limit: '4', workers_total: 4, pid: process.pid });
    expect(doc.runtime_version).toBe(JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version);
    expect(doc.tasks).toEqual({ spawned: known.tasks, submitted_external: known.external, completed: known.tasks, failed: 0, dropped: 0 });
    const same = s.workers.reduce((a, w) => a + w.stealsSameNode, 0);
    const remote = s.workers.reduce((a, w) => a + w.stealsRemote, 0);
    expect(doc.work_steal_count).toBe(same + remote);
    expect(doc.numa_steal_count).toBe(remote);
    expect(doc.work_steal_count).toBe(total(scrape, 'hwsq_steals_total'));
    expect(doc.scheduling_latency_ms.count).toBe(known.tasks);
    expect(doc.scheduling_latency_ms.p50).toBeCloseTo(s.latency.p50Ns / 1e6, 9);
    expect(doc.scheduling_latency_ms.p99).toBeCloseTo(s.latency.p99Ns / 1e6, 9);
    expect(doc.scheduling_latency_ms.max).toBeCloseTo(s.latency.maxNs / 1e6, 9);
    expect(doc.scheduling_latency_ms.p99).toBeGreaterThanOrEqual(doc.scheduling_latency_ms.p50);
    expect([doc.local_queue_depth, doc.node_queue_depth, doc.global_queue_depth]).toEqual([0, 0, 0]);
    expect(doc.nodes.map((n) => n.numa_node)).toEqual([0, 1]);
    expect(doc.nodes.reduce((a, n) => a + n.completed, 0)).toBe(known.tasks);
    expect(doc.workers.map((w) => [w.worker, w.numa_node])).toEqual(rt.topology().workers.map((w) => [w.worker, w.node]));
    expect(doc.workers.reduce((a, w) => a + w.busy_seconds, 0)).toBeGreaterThanOrEqual(0.1);
  });

  it('answers 404 for other paths, 405 for other methods, HEAD without a body, 400 for garbage', async () => {
    const server = await serve(runtime());
    for (const p of ['/', '/metricsx', '/metrics/scheduler/x', '/favicon.ico']) expect((await fetch(server.url + p)).status, p).toBe(404);
    expect((await fetch(`${server.url}/metrics?name[]=x`)).status).toBe(200);
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const r = await fetch(`${server.url}/metrics/scheduler`, { method, body: method === 'DELETE' ? undefined : 'x' });
      expect(r.status, method).toBe(405);
      expect(r.headers.get('allow')).toBe('GET, HEAD');
    }
    const head = await fetch(`${server.url}/metrics`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBeGreaterThan(1000);
    expect(await head.text()).toBe('');
    expect(await rawRequest(server.port, 'this is not HTTP\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect((await fetch(`${server.url}/metrics`)).status).toBe(200);
  });

  it('a stalled or silent client is cut off with 408, and other scrapes are answered while it stalls', async () => {
    // How soon the cut-off comes is a bench figure (bench/timing-goals.mjs), not a test.
    const rt = runtime();
    const closed = (socket: net.Socket) =>
      new Promise<{ answer: string }>((resolve) => {
        let answer = '';
        socket.on('data', (d) => (answer += d));
        socket.on('error', () => {});
        socket.on('close', () => resolve({ answer }));
      });
    const connect = (port: number, data: string) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.write(data));
      return socket;
    };
    // 1. While a client sits on half a request (the server's timeout far away), the runtime runs
    //    and other clients are answered; the stalled one is still connected afterwards.
    const patient = await serve(rt, { headersTimeoutMs: 600_000, idleTimeoutMs: 600_000 });
    const stalled = connect(patient.port, 'GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    let stalledClosed = false;
    const stalledDone = closed(stalled).then((r) => ((stalledClosed = true), r));
    await new Promise<void>((resolve) => stalled.once('connect', () => resolve()));
    for (let i = 0; i < 5; i++) {
      const [r] = await Promise.all([fetch(`${patient.url}/metrics/scheduler`), rt.spawnNative('noop', {}, { count: 10_000 })]);
      expect(r.status).toBe(200);
    }
    expect(stalledClosed).toBe(false);
    stalled.destroy();
    await stalledDone;
    // 2. With short timeouts: half a request line and headers, then nothing; a connection that
    //    never sends a byte: both get 408 and are closed. A complete request whose answer is
    //    never read, then silence (keep-alive), is closed too (seen once the socket is read).
    const strict = await serve(rt, { headersTimeoutMs: 300, idleTimeoutMs: 600 });
    const slowloris = closed(connect(strict.port, 'GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: '));
    const silent = closed(connect(strict.port, ''));
    const unread = new Promise<void>((resolve) => {
      const socket = net.connect(strict.port, '127.0.0.1', () => {
        socket.pause();
        socket.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n');
        setTimeout(() => socket.resume(), 2000); // a paused socket reports the server's FIN only once read
      });
      socket.on('error', () => {});
      socket.on('close', () => resolve());
    });
    for (const t of await Promise.all([slowloris, silent])) expect(t.answer).toMatch(/^HTTP\/1\.1 408 /);
    await unread;
    await rt.idle();
    expect(rt.stats().executed).toBe(50_000);
  });

  /** Slow clients: each has sent part of a request line and sends one more byte a second. */
  function slowClients(port: number) {
    const request = 'GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ';
    const open = new Set<net.Socket>();
    const timers: NodeJS.Timeout[] = [];
    let closedByServer = 0;
    let waiters: (() => void)[] = [];
    const one = () =>
      new Promise<void>((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => {
          let sent = 0;
          const drip = () => void (socket.destroyed || socket.write(sent < request.length ? request[sent++]! : 'a'));
          drip();
          const t = setInterval(drip, 1000);
          t.unref();
          timers.push(t);
          resolve();
        });
        open.add(socket);
        socket.on('error', () => {});
        socket.on('close', () => {
          if (open.delete(socket)) closedByServer++;
          const w = waiters;
          waiters = [];
          for (const f of w) f();
          resolve();
        });
      });
    return {
      /** Opens as many as are missing to reach `n` (counted once: no reconnect storm). */
      async topUp(n: number) {
        for (let missing = n - open.size; missing > 0; missing--) await one();
      },
      get closedByServer() {
        return closedByServer;
      },
      /** Resolves once the server has closed `n` of them. */
      async closed(n: number) {
        while (closedByServer < n) await new Promise<void>((r) => waiters.push(r));
      },
      stop() {
        for (const t of timers) clearInterval(t);
        const sockets = [...open];
        open.clear();
        for (const s of sockets) s.destroy();
      },
    };
  }

  /** One scrape on a connection of its own (or of `agent`): true when it got the metrics. */
  function scrape(port: number, agent: http.Agent | false = false): Promise<{ ok: boolean; reused: boolean }> {
    return new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/metrics', agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ ok: res.statusCode === 200 && body.includes('hwsq_tasks_completed_total'), reused: req.reusedSocket }));
        res.on('error', () => resolve({ ok: false, reused: req.reusedSocket }));
      });
      req.on('error', () => resolve({ ok: false, reused: req.reusedSocket }));
    });
  }

  it('slow clients holding every connection (the cap) do not lock scrapers out: each new scrape evicts one', async () => {
    const server = await serve(runtime()); // maxConnections: 64 (the default)
    const slow = slowClients(server.port);
    try {
      let ok = 0;
      for (let i = 0; i < 40; i++) {
        await slow.topUp(64);
        if ((await scrape(server.port)).ok) ok++;
      }
      // They were refused while the 64 slow sockets held the cap (1 of 40 got through).
      expect(ok).toBe(40);
      expect(slow.closedByServer).toBeGreaterThanOrEqual(40);
    } finally {
      slow.stop();
    }
  });

  it('at the cap, connections that never sent a whole request go first: a keep-alive scraper keeps its connection', async () => {
    const server = await serve(runtime(), { maxConnections: 8 });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const slow = slowClients(server.port);
    try {
      expect(await scrape(server.port, agent)).toEqual({ ok: true, reused: false });
      await slow.topUp(8); // the 8th slow client evicts the oldest slow one, not the scraper
      await slow.closed(1);
      expect(await scrape(server.port, agent)).toEqual({ ok: true, reused: true });
    } finally {
      slow.stop();
      agent.destroy();
    }
  });

  it('a request with a body is answered 413 and its connection closed; the body is never read', async () => {
    const server = await serve(runtime());
    const answer = await rawRequest(server.port, 'GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\nabc');
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer).toMatch(/connection: close/i);
    const chunked = await rawRequest(server.port, 'GET /metrics/scheduler HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
    expect(chunked).toMatch(/^HTTP\/1\.1 413 /);
    expect((await scrape(server.port)).ok).toBe(true);
  });

  it('serves a given registry with other metrics in it, and close() unregisters and stops listening', async () => {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    const server = await serve(runtime(), { registry, host: 'localhost' });
    const scrape = parseProm(await (await fetch(`${server.url}/metrics`)).text());
    expect(series(scrape, 'process_cpu_seconds_total')).toHaveLength(1);
    expect(series(scrape, 'hwsq_tasks_completed_total')).toHaveLength(4);
    await server.close();
    await server.close();
    expect(registry.getSingleMetric('hwsq_tasks_completed_total')).toBeUndefined();
    expect(registry.getSingleMetric('process_cpu_seconds_total')).toBeDefined();
    await expect(fetch(`${server.url}/metrics`)).rejects.toThrow();
  });

  it('a registry already holding these metrics is served as it is: nothing registered twice, and close() leaves them to their owner', async () => {
    const rt = runtime();
    const registry = new Registry();
    const reg = registerMetrics(rt, { registry });
    const server = await serve(rt, { registry });
    expect(series(parseProm(await (await fetch(`${server.url}/metrics`)).text()), 'hwsq_tasks_completed_total')).toHaveLength(4);
    await expect(server.close()).resolves.toBeUndefined();
    expect(registry.getSingleMetric('hwsq_tasks_completed_total')).toBeDefined();
    // The port is taken: the listen error itself, and the owner's metrics stay.
    const other = await serve(rt);
    await expect(serveMetrics(rt, { port: other.port, registry })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    expect(registry.getSingleMetric('hwsq_tasks_completed_total')).toBeDefined();
    reg.unregister();
  });

  it('latencyBuckets and runTimeBuckets set the two histograms\' le bounds', async () => {
    const server = await serve(runtime(), { registry: new Registry(), latencyBuckets: [0.25, 2], runTimeBuckets: [0.5, 4] });
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const bounds = (name: string) => [...new Set([...text.matchAll(new RegExp(`^${name}_bucket\\{[^}]*le="([^"]+)"`, 'gm'))].map((m) => m[1]))];
    expect(bounds('hwsq_scheduling_latency_seconds')).toEqual(['0.25', '2', '+Inf']);
    expect(bounds('hwsq_task_run_seconds')).toEqual(['0.5', '4', '+Inf']);
  });

  it('a request with Content-Length: 0 carries no body: it is answered', async () => {
    const server = await serve(runtime());
    expect(await rawRequest(server.port, 'GET /metrics/scheduler HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 200 /);
  });

  it('an IPv6 host is bracketed in the url', async () => {
    const server = await serve(runtime(), { host: '::1' });
    expect(server.host).toBe('::1');
    expect(server.url).toBe(`http://[::1]:${server.port}`);
    expect((await fetch(`${server.url}/metrics/scheduler`)).ok).toBe(true);
  });

  it('rejects bad options before listening', async () => {
    const rt = runtime();
    await expect(serveMetrics(rt, { port: 70_000 })).rejects.toMatchObject({ code: 'ERR_HWSQ_INVALID_OPTION' });
    await expect(serveMetrics(rt, { headersTimeoutMs: 0 })).rejects.toMatchObject({ code: 'ERR_HWSQ_INVALID_OPTION' });
    const server = await serve(rt);
    // The port is taken: EADDRINUSE, and nothing stays registered.
    const registry = new Registry();
    await expect(serveMetrics(rt, { port: server.port, registry })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    expect(registry.getMetricsAsArray()).toHaveLength(0);
  });
});

describe('serveMetrics: the connection cap, which connection makes room', () => {
  // Stand-ins for the sockets and responses: what Connections uses of them (once('close'), destroy()).
  class FakeSocket extends EventEmitter {
    destroyed = false;
    constructor(readonly name: string) {
      super();
    }
    destroy(): void {
      this.destroyed = true;
      this.emit('close');
    }
  }
  const sockets = (...names: string[]) => names.map((n) => new FakeSocket(n));
  const asSocket = (s: FakeSocket) => s as unknown as net.Socket;
  /** Serves one request on `s` and finishes it. */
  function serve(c: Connections, s: FakeSocket): void {
    const res = new EventEmitter();
    c.serving(asSocket(s), res as never);
    res.emit('close');
  }
  const destroyed = (all: FakeSocket[]) => all.filter((s) => s.destroyed).map((s) => s.name);

  it('under the cap every connection is admitted; at it, the oldest that never completed a request goes first, then the least recently served', () => {
    const c = new Connections(3);
    const all = sockets('a', 'b', 'c', 'd', 'e', 'f', 'g');
    const [a, b, cc, d, e, f, g] = all as [FakeSocket, FakeSocket, FakeSocket, FakeSocket, FakeSocket, FakeSocket, FakeSocket];
    for (const s of [a, b, cc]) expect(c.admit(asSocket(s))).toBe(true);
    expect(destroyed(all)).toEqual([]);
    serve(c, b);  // b served once
    serve(c, a);  // a served after b: b is the least recently served
    expect(c.admit(asSocket(d))).toBe(true);  // cc: the only never-served one
    expect(destroyed(all)).toEqual(['c']);
    expect(c.admit(asSocket(e))).toBe(true);  // d: never served, although newer than a and b
    expect(destroyed(all)).toEqual(['c', 'd']);
    serve(c, e);
    serve(c, b);  // now a is the least recently served
    expect(c.admit(asSocket(f))).toBe(true);
    expect(destroyed(all)).toEqual(['a', 'c', 'd']);
    // f never served: it goes before any served one however old.
    expect(c.admit(asSocket(g))).toBe(true);
    expect(destroyed(all)).toEqual(['a', 'c', 'd', 'f']);
  });

  it('of served connections the least recently served goes, by the order of answers, not of arrival', () => {
    const c = new Connections(2);
    const all = sockets('a', 'b', 'c');
    const [a, b, cc] = all as [FakeSocket, FakeSocket, FakeSocket];
    c.admit(asSocket(a));
    c.admit(asSocket(b));
    serve(c, b);
    serve(c, a);  // a answered last: b goes, although a arrived first
    expect(c.admit(asSocket(cc))).toBe(true);
    expect(destroyed(all)).toEqual(['b']);
  });

  it('a connection being answered is never evicted: with every one busy a newcomer is refused', () => {
    const c = new Connections(2);
    const all = sockets('a', 'b', 'c');
    const [a, b, cc] = all as [FakeSocket, FakeSocket, FakeSocket];
    c.admit(asSocket(a));
    c.admit(asSocket(b));
    const resA = new EventEmitter();
    const resB = new EventEmitter();
    c.serving(asSocket(a), resA as never);
    c.serving(asSocket(b), resB as never);
    expect(c.admit(asSocket(cc))).toBe(false);
    expect(destroyed(all)).toEqual([]);
    resB.emit('close');  // b done: it may go now, a (still busy) may not
    expect(c.admit(asSocket(cc))).toBe(true);
    expect(destroyed(all)).toEqual(['b']);
  });

  it('a closed connection leaves the count; serving an unknown socket is ignored; destroyAll ends every one', () => {
    const c = new Connections(2);
    const all = sockets('a', 'b', 'c', 'x');
    const [a, b, cc, x] = all as [FakeSocket, FakeSocket, FakeSocket, FakeSocket];
    c.admit(asSocket(a));
    c.admit(asSocket(b));
    a.emit('close');  // the client went away
    expect(c.admit(asSocket(cc))).toBe(true);
    expect(destroyed(all)).toEqual([]);
    expect(() => c.serving(asSocket(x), new EventEmitter() as never)).not.toThrow();
    c.destroyAll();
    expect(destroyed(all)).toEqual(['b', 'c']);
    // Nothing is tracked any more: two newcomers fit without evicting.
    const more = sockets('d', 'e');
    for (const s of more) expect(c.admit(asSocket(s))).toBe(true);
    expect(destroyed(more)).toEqual([]);
  });
});

describe('runtime.serveMetrics()', () => {
  it('NativeRuntime and Runtime serve their own metrics as methods', async () => {
    const nrt = runtime();
    const a = await nrt.serveMetrics({ port: 0 });
    servers.push(a);
    await nrt.spawnNative('noop', {}, { count: 500 });
    await nrt.idle();
    expect(a.host).toBe('127.0.0.1');
    expect(total(parseProm(await (await fetch(`${a.url}/metrics`)).text()), 'hwsq_tasks_completed_total')).toBe(500);

    const fixture = path.join(root, 'test', 'fixtures', 'tasks', 'basic.mjs');
    const rt = await Runtime.start({ filename: fixture, workers: 2 });
    try {
      const b = await rt.serveMetrics({ port: 0 });
      servers.push(b);
      await Promise.all(Array.from({ length: 30 }, (_, i) => rt.spawn('add', [i, 1])));
      // A JS task's result reaches this thread a moment before its P counts it as executed.
      const scrape = async () => (await (await fetch(`${b.url}/metrics/scheduler`)).json()) as SchedulerJson;
      let doc = await scrape();
      for (let i = 0; i < 200 && doc.tasks.completed < 30; i++) {
        await new Promise((r) => setTimeout(r, 5));
        doc = await scrape();
      }
      expect(doc.tasks.completed).toBe(30);
      expect(doc.workers.map((w) => w.worker)).toEqual([0, 1]);
      expect(doc.scheduling_latency_ms.count).toBe(rt.stats().latency.count);
      await b.close();
    } finally {
      await rt.destroy();
    }
  });
});

// ------------------------------------------------------------------ the CLI

describe('hwsq metrics serve', () => {
  it('starts a runtime with a demo workload, serves both endpoints, stops on SIGTERM', async () => {
    const child = spawn(process.execPath, ['bin/hwsq.js', 'metrics', 'serve', '--port', '0', '--virtual', '2x1', '--demo'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      let err = '';
      child.stderr.on('data', (d) => (err += d));
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (d) => {
          out += d;
          const m = /serving (http:\/\/127\.0\.0\.1:\d+)\/metrics /.exec(out);
          if (m) resolve(m[1]!);
        });
        child.on('exit', (code) => reject(new Error(`exited ${code}: ${out}${err}`)));
      });
      const get = async () => (await (await fetch(`${url}/metrics/scheduler`)).json()) as SchedulerJson;
      const first = await get();
      expect(first.workers_total).toBe(2);
      expect(first.nodes.map((n) => n.numa_node)).toEqual([0, 1]);
      await new Promise((r) => setTimeout(r, 600));
      const second = await get();
      expect(second.tasks.completed).toBeGreaterThan(first.tasks.completed);
      expect(second.tasks.spawned).toBeGreaterThanOrEqual(second.tasks.completed);
      const scrape = parseProm(await (await fetch(`${url}/metrics`)).text());
      expect(total(scrape, 'hwsq_tasks_completed_total')).toBeGreaterThanOrEqual(second.tasks.completed);
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(err).toBe('');
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('registerMetrics: exact figures from a snapshot', () => {
  // A real snapshot (2 nodes x 2 Ps) with the figures under test set to known values, and a
  // placement that pins P0 and P2 only.
  function source(edit: (s: ReturnType<NativeRuntime['stats']>) => object): MetricsSource {
    const base = runtime().stats();
    const snapshot = edit(base) as ReturnType<NativeRuntime['stats']>;
    const placement = [
      { worker: 0, node: 0, cpus: [3, 1, 2] },
      { worker: 2, node: 1, cpus: [7] },
    ];
    return { stats: () => snapshot, topology: () => ({ workers: placement }) };
  }
  const perP = (scrape: Scrape, name: string) => [0, 1, 2, 3].map((p) => one(scrape, name, { worker: String(p) }));

  it('per-P counters and gauges in seconds, the sysmon figures and the optional series, as hand-computed', async () => {
    const src = source((base) => ({
      ...base,
      rejected: 5,
      sysmon: { ...base.sysmon, longestHogNs: 1.5e9 },
      // overflowTasks on P0 only: the series exists as soon as one P reports it.
      workers: base.workers.map((w, i) => ({ ...w, wakeups: 10 + i, spinningNs: (i + 1) * 2.5e9, busyNs: i * 1e9, runningForNs: i * 0.25e9, overflowTasks: i === 0 ? 7 : undefined })),
    }));
    const registry = new Registry();
    registerMetrics(src, { registry });
    const scrape = parseProm(await registry.metrics());
    expect(perP(scrape, 'hwsq_wakeups_total')).toEqual([10, 11, 12, 13]);
    expect(perP(scrape, 'hwsq_spinning_seconds_total')).toEqual([2.5, 5, 7.5, 10]);
    expect(perP(scrape, 'hwsq_busy_seconds_total')).toEqual([0, 1, 2, 3]);
    expect(perP(scrape, 'hwsq_worker_current_task_seconds')).toEqual([0, 0.25, 0.5, 0.75]);
    expect(perP(scrape, 'hwsq_overflowed_tasks_total')).toEqual([7, 0, 0, 0]);
    expect(one(scrape, 'hwsq_longest_hog_seconds')).toBe(1.5);
    expect(one(scrape, 'hwsq_tasks_rejected_total')).toBe(5);
    // The cpu label: the pinned CPU list, absent for a P the placement does not name.
    expect([0, 1, 2, 3].map((p) => series(scrape, 'hwsq_wakeups_total', { worker: String(p) })[0]!.labels.cpu)).toEqual(['1-3', undefined, '7', undefined]);
  });

  it('parallelism source (1 for the current one, 0 for the others), its changes, and memory affinity by choice, as set', async () => {
    const registry = new Registry();
    registerMetrics(source((base) => ({ ...base, parallelismSource: 'cgroup1', parallelismChanges: 4, memoryAffinity: { affineByMemory: 6, affineFallback: 9 } })), { registry });
    const scrape = parseProm(await registry.metrics());
    const bySource = Object.fromEntries(series(scrape, 'hwsq_parallelism_source').map((x) => [x.labels.source, x.value]));
    expect(Object.values(bySource).sort()).toEqual([0, 0, 0, 1]);
    expect(bySource.cgroup1).toBe(1);
    expect(one(scrape, 'hwsq_parallelism_changes_total')).toBe(4);
    expect([one(scrape, 'hwsq_memory_affinity_total', { choice: 'memory' }), one(scrape, 'hwsq_memory_affinity_total', { choice: 'fallback' })]).toEqual([6, 9]);
    // Without memory-affinity figures in the snapshot, no such series.
    const bare = new Registry();
    registerMetrics(source((base) => {
      const { memoryAffinity: _m, ...rest } = base as typeof base & { memoryAffinity?: unknown };
      return rest;
    }), { registry: bare });
    expect(series(parseProm(await bare.metrics()), 'hwsq_memory_affinity_total')).toHaveLength(0);
  });

  it('no overflowed_tasks_total or tasks_rejected_total when the snapshot has no such figures', async () => {
    const src = source((base) => {
      const { rejected: _rejected, ...rest } = base;
      return { ...rest, workers: base.workers.map(({ overflowTasks: _o, ...w }) => w) };
    });
    const registry = new Registry();
    registerMetrics(src, { registry });
    const scrape = parseProm(await registry.metrics());
    expect(series(scrape, 'hwsq_wakeups_total')).toHaveLength(4);
    expect(series(scrape, 'hwsq_overflowed_tasks_total')).toHaveLength(0);
    expect(series(scrape, 'hwsq_tasks_rejected_total')).toHaveLength(0);
  });

  it('refuses a registry that already holds any one of its names, naming it, and leaves that registry as it was', () => {
    const registry = new Registry();
    new Gauge({ name: 'hwsq_wakeups_total', help: 'the application\'s own', registers: [registry] });
    expectCode(() => registerMetrics(runtime(), { registry }), Error, 'ERR_HWSQ_INVALID_STATE');
    expect(() => registerMetrics(runtime(), { registry })).toThrow(/a metric named hwsq_wakeups_total is already registered/);
    expect(registry.getMetricsAsArray().map((m) => m.name)).toEqual(['hwsq_wakeups_total']);
  });
});

describe('schedulerJsonFrom: exact figures from a snapshot', () => {
  it('per-node and overall queue depths, seconds and CPUs, statsEnabled and the origin, as hand-computed', () => {
    // A real snapshot (2 nodes x 2 Ps) with the figures under test set to known values.
    const base = runtime().stats();
    const depth = [3, 5, 7, 11]; // P0, P1 on node 0; P2, P3 on node 1
    const s = {
      ...base,
      statsEnabled: false,
      workers: base.workers.map((w, i) => ({ ...w, queueDepth: depth[i]!, spinningNs: (i + 1) * 2.5e9, stealsRemote: i, stealsSameNode: 10 * i })),
      nodes: base.nodes.map((n, i) => ({ ...n, queueDepth: 100 * (i + 1) })),
    };
    const placement = [
      { worker: 0, node: 0, cpus: [3, 1, 2] },
      { worker: 2, node: 1, cpus: [7] },
    ];
    const identity: PodIdentity = { pod_id: 'p', pod_uid: null, namespace: null, node_name: null, cpu_limit: null };
    const origin: SnapshotOrigin = { pid: 4242, timestamp: '2026-01-02T03:04:05.000Z', uptimeSeconds: 9, runtimeVersion: '9.9.9', identity };
    const doc = schedulerJsonFrom(s, placement, identity, origin);
    expect(doc.nodes.map((n) => [n.numa_node, n.local_queue_depth, n.queue_depth])).toEqual([
      [0, 3 + 5, 100],
      [1, 7 + 11, 200],
    ]);
    expect(doc.local_queue_depth).toBe(26);
    expect(doc.node_queue_depth).toBe(300);
    expect(doc.workers.map((w) => w.spinning_seconds)).toEqual([2.5, 5, 7.5, 10]);
    expect(doc.workers.map((w) => [w.cpus, w.cpu_list])).toEqual([
      [[3, 1, 2], '1-3'],
      [[], ''],
      [[7], '7'],
      [[], ''],
    ]);
    expect(doc.numa_steal_count).toBe(0 + 1 + 2 + 3);
    expect(doc.work_steal_count).toBe(6 + 60);
    expect(doc.stats_enabled).toBe(false);
    expect([doc.pid, doc.timestamp, doc.uptime_seconds, doc.runtime_version, doc.pod_id]).toEqual([4242, '2026-01-02T03:04:05.000Z', 9, '9.9.9', 'p']);
  });

  it('failed steals summed, statsEnabled true unless the snapshot says false, the identity given or the origin\'s', () => {
    const base = runtime().stats();
    const { statsEnabled: _e, ...rest } = base;
    // Without statsEnabled, as a MetricsSource written in JS may leave it.
    const s = { ...rest, workers: base.workers.map((w, i) => ({ ...w, failedSteals: 1 + 2 * i })) } as typeof base;
    const doc = schedulerJsonFrom(s, [], undefined, undefined);
    expect(doc.failed_steal_count).toBe(1 + 3 + 5 + 7);
    expect(doc.stats_enabled).toBe(true);
    const given: PodIdentity = { pod_id: 'given', pod_uid: null, namespace: null, node_name: null, cpu_limit: null };
    const theirs: PodIdentity = { ...given, pod_id: 'theirs' };
    const origin: SnapshotOrigin = { pid: 1, timestamp: '2026-01-02T03:04:05.000Z', uptimeSeconds: 1, runtimeVersion: '1.0.0', identity: theirs };
    expect(schedulerJson({ stats: () => s }, given).pod_id).toBe('given');
    expect(schedulerJson({ stats: () => s, snapshotOrigin: () => origin }).pod_id).toBe('theirs');
    expect(schedulerJson({ stats: () => s, snapshotOrigin: () => origin }, given).pod_id).toBe('given');
  });
});
