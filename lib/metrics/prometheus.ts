// registerMetrics(runtime, { registry, prefix, labels }): the runtime's stats as Prometheus
// metrics through prom-client (an optional peer dependency, loaded on first use).
//
// As prom-client's own collectors do, nothing is updated between scrapes: each metric's collect()
// reads the stats snapshot, and every metric of one scrape reads the same snapshot (registry
// .metrics() calls all collect() callbacks in one synchronous pass; the snapshot is dropped in
// the next microtask). Counters are cumulative since the runtime started, in base units
// (seconds, not nanoseconds), named `_total`; histograms are rebuilt from the native
// histogram's fine buckets (<= 3.2% wide) into fixed Prometheus `le` buckets.
import { createRequire } from 'node:module';
import path from 'node:path';
import { ErrorCodes, codedError } from '../core/errors';
import { packageRoot } from '../core/native';
import type { ParallelismSource } from '../core/stats';
import { metricsOptions, metricsSource } from '../core/validation';
import { cpuListString, workerPlacement, type HistogramLike, type MetricsSource, type SchedulerStatsLike, type WorkerStatsLike } from './source';

/** The part of a prom-client `Registry` used here (prom-client's own Registry satisfies it). */
export interface PromRegistry {
  registerMetric(metric: never): void;
  removeSingleMetric(name: string): void;
  getSingleMetric(name: string): unknown;
  metrics(): Promise<string>;
  readonly contentType: string;
}

export interface RegisterMetricsOptions {
  /** Where to register (default: prom-client's global `register`). */
  registry?: PromRegistry;
  /** Prepended to every metric name (default 'hwsq_'). */
  prefix?: string;
  /** Constant labels added to every series (e.g. { runtime: 'ingest' } to tell runtimes apart). */
  labels?: Record<string, string>;
  /** `le` bounds in seconds of the two histograms (default: DEFAULT_LATENCY_BUCKETS). */
  latencyBuckets?: readonly number[];
  runTimeBuckets?: readonly number[];
}

export interface MetricsRegistration {
  /** Full names of the metrics registered. */
  readonly names: readonly string[];
  readonly registry: PromRegistry;
  /** Removes them from the registry (idempotent). */
  unregister(): void;
}

/** 1 us .. 10 s: scheduling latency spans spin-hits (us) to a saturated queue (s). */
export const DEFAULT_LATENCY_BUCKETS: readonly number[] = Object.freeze([
  1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);

// ------------------------------------------------------------------ prom-client, lazily

type PromClient = typeof import('prom-client');
let promClientModule: PromClient | undefined;

/** prom-client as resolved from this package (a peer dependency: the application's copy). */
export function promClient(): PromClient {
  // Stryker disable next-line ConditionalExpression: require() caches the module, so resolving it again returns the same one
  if (!promClientModule) {
    try {
      promClientModule = createRequire(path.join(packageRoot, 'package.json'))('prom-client') as PromClient;
      // Stryker disable all: prom-client is a devDependency, installed wherever the tests run, so its absence cannot be arranged in-process
    } catch (err) {
      throw codedError(ErrorCodes.MISSING_PEER_DEPENDENCY, 'hwsq metrics need the peer dependency prom-client: npm install prom-client', { cause: err });
    }
    // Stryker restore all
  }
  return promClientModule;
}

// ------------------------------------------------------------------ snapshot per scrape

/** One stats() call per scrape, shared by every metric's collect() of that scrape. */
class SnapshotCache {
  #snapshot: SchedulerStatsLike | undefined;
  constructor(private readonly source: MetricsSource) {}
  get(): SchedulerStatsLike {
    if (!this.#snapshot) {
      this.#snapshot = this.source.stats();
      queueMicrotask(() => (this.#snapshot = undefined));
    }
    return this.#snapshot;
  }
}

// ------------------------------------------------------------------ histograms

interface HistogramValue {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

/**
 * Cumulative `le` counts from the native histogram's per-bucket counts. A native bucket whose
 * range straddles a bound counts below it when its midpoint does (the native quantiles are
 * midpoints too), so a count is off by at most one native bucket (<= 3.2% relative width).
 */
export function cumulativeBuckets(h: HistogramLike, boundsSeconds: readonly number[]): number[] {
  // Stryker disable next-line ArrayDeclaration: the loops below assign every index < boundsSeconds.length
  const out = new Array<number>(boundsSeconds.length).fill(0);
  const b = h.buckets;
  let k = 0;
  let running = 0;
  // Stryker disable next-line EqualityOperator: one more bucket past the end has no bounds (midpoint 0, below every positive bound) and count 0
  for (let i = 0; i < b.counts.length; i++) {
    const mid = ((b.lowerNs[i] ?? 0) + (b.upperNs[i] ?? 0)) / 2e9;
    // Stryker disable next-line ConditionalExpression,EqualityOperator: past the last bound, mid > undefined is false and ends the loop as the length check does
    while (k < boundsSeconds.length && mid > boundsSeconds[k]!) out[k++] = running;
    running += b.counts[i] ?? 0;
  }
  while (k < boundsSeconds.length) out[k++] = running;
  return out;
}

/** prom-client's Metric shape for a histogram whose values come whole from a snapshot. */
class SnapshotDistribution {
  readonly aggregator = 'sum';
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'histogram',
    private readonly values: () => HistogramValue[],
  ) {}
  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: HistogramValue[] }> {
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.values() });
  }
  reset(): void {}
}

function sumAndCount(name: string, h: HistogramLike, count: number, labels: Record<string, string>): HistogramValue[] {
  return [
    { metricName: `${name}_sum`, labels: { ...labels }, value: h.sumNs / 1e9 },
    { metricName: `${name}_count`, labels: { ...labels }, value: count },
  ];
}

/** `le` buckets, _sum and _count of a histogram with native buckets. */
function histogramValues(name: string, h: HistogramLike, bounds: readonly number[], labels: Record<string, string>): HistogramValue[] {
  const counts = cumulativeBuckets(h, bounds);
  // _count is the +Inf bucket: the buckets' total, consistent with the `le` counts even when a
  // recording raced the snapshot.
  const count = h.buckets.counts.reduce((a, c) => a + c, 0);
  return [
    ...bounds.map((le, i) => ({ metricName: `${name}_bucket`, labels: { ...labels, le }, value: counts[i]! })),
    { metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: count },
    ...sumAndCount(name, h, count, labels),
  ];
}

// ------------------------------------------------------------------ registration

type Labels = Record<string, string>;
type Sample = [Labels, number];

interface Spec {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  labelNames: string[];
  samples: (s: SchedulerStatsLike) => Sample[];
}

const WORKER_LABELS = ['worker', 'numa_node', 'cpu'];
const PARALLELISM_SOURCES: readonly ParallelismSource[] = ['cgroup2', 'cgroup1', 'cpuset', 'fixed'];

/**
 * Publishes `runtime`'s stats in `registry` (default: prom-client's global registry). Metric
 * names are `prefix` + the names in docs (README "Observability"); per-P series carry `worker`,
 * `numa_node` and `cpu` (the P's pinned CPU list, e.g. "3" or "0-7"; absent when not pinned), so the cardinality is
 * bounded by the number of Ps. Two runtimes in one registry need different prefixes (or
 * registries). Throws if a name is already registered.
 */
export function registerMetrics(runtime: MetricsSource, options: RegisterMetricsOptions = {}): MetricsRegistration {
  metricsSource(runtime);
  const checked = metricsOptions(options);
  const { prefix, labels: constLabels } = checked;
  const prom = promClient();
  const registry = checked.registry ?? (prom.register as unknown as PromRegistry);
  const cache = new SnapshotCache(runtime);
  const first = runtime.stats();

  // Per-P labels, fixed for the runtime's life: P index, node, pinned CPUs.
  const placement = new Map(workerPlacement(runtime).map((p) => [p.worker, p]));
  const workerLabels = new Map<number, Labels>();
  const wl = (w: WorkerStatsLike): Labels => {
    let l = workerLabels.get(w.worker);
    // Stryker disable next-line ConditionalExpression: a cache; building the labels again gives equal ones
    if (!l) {
      const cpu = cpuListString(placement.get(w.worker)?.cpus ?? []);
      l = { ...constLabels, worker: String(w.worker), numa_node: String(w.node), ...(cpu ? { cpu } : {}) };
      workerLabels.set(w.worker, l);
    }
    return l;
  };
  const nl = (node: number): Labels => ({ ...constLabels, numa_node: String(node) });
  const perWorker = (f: (w: WorkerStatsLike) => number) => (s: SchedulerStatsLike): Sample[] => s.workers.map((w) => [wl(w), f(w)]);
  const one = (f: (s: SchedulerStatsLike) => number) => (s: SchedulerStatsLike): Sample[] => [[constLabels, f(s)]];
  const workerCounter = (name: string, help: string, f: (w: WorkerStatsLike) => number): Spec => ({ name, help, type: 'counter', labelNames: WORKER_LABELS, samples: perWorker(f) });
  const byScope = (same: (w: WorkerStatsLike) => number, remote: (w: WorkerStatsLike) => number) => (s: SchedulerStatsLike): Sample[] =>
    s.workers.flatMap((w): Sample[] => [
      [{ ...wl(w), scope: 'same_node' }, same(w)],
      [{ ...wl(w), scope: 'remote_node' }, remote(w)],
    ]);

  const specs: Spec[] = [
    {
      name: 'tasks_spawned_total',
      help: 'Tasks submitted: origin="external" from threads outside the runtime (JS spawns), origin="worker" from tasks running on each worker; sum() is every task spawned.',
      type: 'counter',
      labelNames: ['origin', ...WORKER_LABELS],
      samples: (s) => [[{ ...constLabels, origin: 'external' }, s.externalSubmitted] as Sample, ...s.workers.map((w): Sample => [{ ...wl(w), origin: 'worker' }, w.spawned])],
    },
    workerCounter('tasks_completed_total', 'Tasks run to completion on each worker.', (w) => w.executed),
    { name: 'tasks_failed_total', help: 'Tasks whose function threw or rejected (JS-task runtimes; native task kinds cannot fail).', type: 'counter', labelNames: [], samples: one((s) => s.tasks?.failed ?? 0) },
    { name: 'tasks_dropped_total', help: 'Queued tasks dropped by destroy() without running.', type: 'counter', labelNames: [], samples: one((s) => s.dropped) },
    { name: 'steals_total', help: 'Successful steals by each worker, by scope: same_node (from a P of its NUMA node) or remote_node (from another node).', type: 'counter', labelNames: [...WORKER_LABELS, 'scope'], samples: byScope((w) => w.stealsSameNode, (w) => w.stealsRemote) },
    { name: 'stolen_tasks_total', help: 'Tasks moved by successful steals, by scope.', type: 'counter', labelNames: [...WORKER_LABELS, 'scope'], samples: byScope((w) => w.stealsSameNodeTasks, (w) => w.stealsRemoteTasks) },
    workerCounter('failed_steal_attempts_total', 'Steal attempts that found the victim empty.', (w) => w.failedSteals),
    workerCounter('overflows_total', "Local queue overflows (half of the worker's ring moved to the node or global queue).", (w) => w.overflows),
    workerCounter('parks_total', 'Times the worker parked (slept for lack of work).', (w) => w.parks),
    workerCounter('wakeups_total', 'Times another thread woke the worker.', (w) => w.wakeups),
    workerCounter('busy_seconds_total', 'Time spent running tasks (an estimate when timing is sampled).', (w) => w.busyNs / 1e9),
    workerCounter('spinning_seconds_total', 'Time spent spinning (looking for work to steal).', (w) => w.spinningNs / 1e9),
    workerCounter('hogs_total', 'Tasks that ran longer than the hog threshold on the worker (seen by sysmon).', (w) => w.hogs),
    {
      name: 'queue_depth',
      help: 'Tasks queued now: queue="local" per worker (ring + runnext), queue="node" per NUMA node (HWSQ), queue="global" (GRQ).',
      type: 'gauge',
      labelNames: ['queue', ...WORKER_LABELS],
      samples: (s) => [
        ...s.workers.map((w): Sample => [{ ...wl(w), queue: 'local' }, w.queueDepth]),
        ...s.nodes.map((n): Sample => [{ ...nl(n.node), queue: 'node' }, n.queueDepth]),
        [{ ...constLabels, queue: 'global' }, s.globalQueueDepth],
      ],
    },
    { name: 'node_queue_capacity', help: "Capacity of each NUMA node's queue (0 with the flat steal policy).", type: 'gauge', labelNames: ['numa_node'], samples: (s) => s.nodes.map((n): Sample => [nl(n.node), n.queueCapacity]) },
    { name: 'node_prefetches_total', help: "Global -> node queue prefetches by the node's workers.", type: 'counter', labelNames: ['numa_node'], samples: (s) => s.nodes.map((n): Sample => [nl(n.node), n.prefetches]) },
    { name: 'node_workers', help: 'Workers (Ps) on each NUMA node.', type: 'gauge', labelNames: ['numa_node'], samples: (s) => s.nodes.map((n): Sample => [nl(n.node), n.workers]) },
    { name: 'worker_parked', help: '1 while the worker is parked.', type: 'gauge', labelNames: WORKER_LABELS, samples: perWorker((w) => (w.parked ? 1 : 0)) },
    { name: 'worker_current_task_seconds', help: 'How long the current task has been running on the worker (0 when idle), as sysmon last saw it.', type: 'gauge', labelNames: WORKER_LABELS, samples: perWorker((w) => w.runningForNs / 1e9) },
    { name: 'workers_spinning', help: 'Workers spinning now.', type: 'gauge', labelNames: [], samples: one((s) => s.spinning) },
    { name: 'workers_parked', help: 'Workers parked now.', type: 'gauge', labelNames: [], samples: one((s) => s.idle) },
    { name: 'parallelism', help: "Workers allowed to take work now (workers 'auto' follow the cgroup CPU limit).", type: 'gauge', labelNames: [], samples: one((s) => s.parallelism) },
    { name: 'workers_active', help: 'Workers not parked by the parallelism limit.', type: 'gauge', labelNames: [], samples: one((s) => s.activeWorkers) },
    { name: 'worker_active', help: '1 while the worker is not parked by the parallelism limit.', type: 'gauge', labelNames: WORKER_LABELS, samples: perWorker((w) => (w.active ? 1 : 0)) },
    {
      name: 'parallelism_source',
      help: 'What set the parallelism: 1 for the current source (cgroup2 cpu.max, cgroup1 CFS quota, cpuset, fixed), 0 for the others.',
      type: 'gauge',
      labelNames: ['source'],
      samples: (s) => PARALLELISM_SOURCES.map((src): Sample => [{ ...constLabels, source: src }, s.parallelismSource === src ? 1 : 0]),
    },
    { name: 'parallelism_changes_total', help: 'Times the parallelism limit changed (cgroup CPU limit or cpuset resized).', type: 'counter', labelNames: [], samples: one((s) => s.parallelismChanges) },
    { name: 'stuck_workers', help: 'Workers inside one task longer than the hog threshold now.', type: 'gauge', labelNames: [], samples: one((s) => s.sysmon.stuckWorkers) },
    { name: 'longest_hog_seconds', help: 'Longest task run above the hog threshold so far (accurate to the sysmon period).', type: 'gauge', labelNames: [], samples: one((s) => s.sysmon.longestHogNs / 1e9) },
  ];
  if (first.workers.some((w) => w.overflowTasks !== undefined)) {
    specs.push(workerCounter('overflowed_tasks_total', 'Tasks moved out of the local queue by overflows.', (w) => w.overflowTasks ?? 0));
  }
  if (first.memoryAffinity !== undefined) {
    specs.push({
      name: 'memory_affinity_total',
      help: "Tasks spawned with node 'auto' (or memoryAffinity), by choice: choice=\"memory\" on the node holding their memory, choice=\"fallback\" placed as without a node.",
      type: 'counter',
      labelNames: ['choice'],
      samples: (s) => [
        [{ ...constLabels, choice: 'memory' }, s.memoryAffinity?.affineByMemory ?? 0],
        [{ ...constLabels, choice: 'fallback' }, s.memoryAffinity?.affineFallback ?? 0],
      ],
    });
  }
  if (first.rejected !== undefined) {
    specs.push({ name: 'tasks_rejected_total', help: 'Submissions refused because the runtime was closed.', type: 'counter', labelNames: [], samples: one((s) => s.rejected ?? 0) });
  }

  const constNames = Object.keys(constLabels);
  const names: string[] = [];
  const created: unknown[] = [];
  const register = (metric: { name: string }) => {
    registry.registerMetric(metric as never);
    names.push(metric.name);
  };
  const registration: MetricsRegistration = {
    names,
    registry,
    unregister() {
      // Stryker disable next-line ConditionalExpression: removeSingleMetric of an absent name is a no-op in prom-client
      for (const n of names.splice(0)) if (registry.getSingleMetric(n) !== undefined) registry.removeSingleMetric(n);
    },
  };
  try {
    for (const name of [...specs.map((s) => s.name), 'scheduling_latency_seconds', 'task_run_seconds']) {
      if (registry.getSingleMetric(prefix + name) !== undefined) {
        throw codedError(ErrorCodes.INVALID_STATE, `a metric named ${prefix + name} is already registered: use another prefix or registry`);
      }
    }
    for (const spec of specs) {
      const Ctor = spec.type === 'counter' ? prom.Counter : prom.Gauge;
      // registers: [] -- registered below, so that a failure leaves nothing behind.
      const metric = new Ctor({
        name: prefix + spec.name,
        help: spec.help,
        labelNames: [...spec.labelNames, ...constNames],
        registers: [],
        collect(this: { reset(): void; inc(l: Labels, v: number): void; set(l: Labels, v: number): void }) {
          const samples = spec.samples(cache.get());
          this.reset();
          for (const [l, v] of samples) {
            if (spec.type === 'counter') this.inc(l, Math.max(0, v));
            else this.set(l, v);
          }
        },
      } as never);
      created.push(metric);
    }
    const hist = (name: string, help: string, bounds: readonly number[], read: (s: SchedulerStatsLike) => HistogramLike) => {
      const full = prefix + name;
      const le = [...bounds];
      return new SnapshotDistribution(full, help, 'histogram', () => histogramValues(full, read(cache.get()), le, constLabels));
    };
    created.push(
      hist('scheduling_latency_seconds', 'Scheduling latency: from the submission of a task to its start on a worker.', checked.latencyBuckets ?? DEFAULT_LATENCY_BUCKETS, (s) => s.latency),
      hist('task_run_seconds', "Run time of tasks' functions, from start to end.", checked.runTimeBuckets ?? DEFAULT_LATENCY_BUCKETS, (s) => s.runTime),
    );
    for (const m of created) register(m as { name: string });
  } catch (err) {
    registration.unregister();
    throw err;
  }
  return registration;
}
