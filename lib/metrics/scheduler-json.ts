// The JSON document served at /metrics/scheduler (and read by `hwsq top`): one stats snapshot
// in snake_case, base counters cumulative since the runtime started, plus who is serving it --
// the pod identity from the Kubernetes downward API when the pod exposes it as env vars.
import os from 'node:os';
import type { ParallelismSource } from '../core/stats';
import { identityVar, metricsSource } from '../core/validation';
import { version } from '../core/version';
import { cpuListString, workerPlacement, type HistogramLike, type MetricsSource, type SchedulerStatsLike, type WorkerPlacement } from './source';

/**
 * Environment variables read for the pod identity (set them with the downward API, see
 * docs/kubernetes.md): POD_NAME (metadata.name), POD_UID (metadata.uid), POD_NAMESPACE
 * (metadata.namespace), NODE_NAME (spec.nodeName), CPU_LIMIT (resources.limits.cpu).
 */
export const POD_ENV = { name: 'POD_NAME', uid: 'POD_UID', namespace: 'POD_NAMESPACE', nodeName: 'NODE_NAME', cpuLimit: 'CPU_LIMIT' } as const;

export interface PodIdentity {
  /** POD_NAME, else HOSTNAME (Kubernetes sets it to the pod name), else os.hostname(). */
  pod_id: string;
  pod_uid: string | null;
  namespace: string | null;
  node_name: string | null;
  /** CPU_LIMIT as given (with `divisor: 1`, whole CPUs rounded up). */
  cpu_limit: string | null;
}

export interface LatencySummaryMs {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface SchedulerJsonWorker {
  worker: number;
  numa_node: number;
  /** CPUs the P's thread is pinned to ([] when not pinned), and the same as a list string. */
  cpus: number[];
  cpu_list: string;
  spawned: number;
  completed: number;
  steals_same_node: number;
  steals_remote_node: number;
  stolen_tasks_same_node: number;
  stolen_tasks_remote_node: number;
  failed_steals: number;
  overflows: number;
  parks: number;
  wakeups: number;
  busy_seconds: number;
  spinning_seconds: number;
  hogs: number;
  queue_depth: number;
  parked: boolean;
  /** Not parked by the parallelism limit. */
  active: boolean;
  running_for_ms: number;
}

export interface SchedulerJsonNode {
  numa_node: number;
  workers: number;
  /** Tasks in the node queue (HWSQ), its capacity, and the sum of its Ps' local queues. */
  queue_depth: number;
  queue_capacity: number;
  local_queue_depth: number;
  completed: number;
  steals_same_node: number;
  steals_remote_node: number;
  prefetches: number;
  busy_seconds: number;
}

export interface SchedulerJson extends PodIdentity {
  runtime_version: string;
  pid: number;
  /** Wall-clock time of the snapshot (ISO 8601) and the serving process's uptime (monotonic). */
  timestamp: string;
  uptime_seconds: number;
  stats_enabled: boolean;
  workers_total: number;
  tasks: { spawned: number; submitted_external: number; completed: number; failed: number; dropped: number };
  /** Tasks spawned with node 'auto', by choice (absent when the snapshot has no such counters: another process's shm file). */
  memory_affinity?: { affine_by_memory: number; affine_fallback: number };
  /** Submit -> start of each task, since the runtime started. */
  scheduling_latency_ms: LatencySummaryMs;
  /** Start -> end of each task's function. */
  run_time_ms: LatencySummaryMs;
  /** Successful steals of any scope, and the ones from another NUMA node. */
  work_steal_count: number;
  numa_steal_count: number;
  failed_steal_count: number;
  /** Sum of the Ps' local queues, of the node queues, and the global queue, now. */
  local_queue_depth: number;
  node_queue_depth: number;
  global_queue_depth: number;
  hogs: number;
  longest_hog_ms: number;
  stuck_workers: number;
  workers_spinning: number;
  workers_parked: number;
  /** The parallelism limit, the workers it leaves active, what set it (README "Following the cgroup"). */
  parallelism: number;
  workers_active: number;
  parallelism_source: ParallelismSource;
  parallelism_changes: number;
  nodes: SchedulerJsonNode[];
  workers: SchedulerJsonWorker[];
}

/**
 * Where a snapshot was taken when it is not this process's own: another process's
 * shared-memory stats file (lib/shm/), read by pid. The document then names that process.
 */
export interface SnapshotOrigin {
  pid: number;
  /** When it published the snapshot (ISO 8601), and its uptime then. */
  timestamp: string;
  uptimeSeconds: number;
  runtimeVersion: string;
  identity: PodIdentity;
}

/** The pod identity from the downward-API env vars (see POD_ENV). */
export function podIdentity(env: NodeJS.ProcessEnv = process.env): PodIdentity {
  return {
    pod_id: identityVar(env, POD_ENV.name) ?? identityVar(env, 'HOSTNAME') ?? os.hostname(),
    pod_uid: identityVar(env, POD_ENV.uid),
    namespace: identityVar(env, POD_ENV.namespace),
    node_name: identityVar(env, POD_ENV.nodeName),
    cpu_limit: identityVar(env, POD_ENV.cpuLimit),
  };
}

const ms = (ns: number) => ns / 1e6;
const seconds = (ns: number) => ns / 1e9;

function latencyMs(h: HistogramLike): LatencySummaryMs {
  return { count: h.count, mean: ms(h.meanNs), p50: ms(h.p50Ns), p90: ms(h.p90Ns), p99: ms(h.p99Ns), max: ms(h.maxNs) };
}

/** Tasks ever submitted: from outside the runtime plus from inside tasks on each P. */
export function totalSpawned(s: SchedulerStatsLike): number {
  return s.externalSubmitted + s.spawned;
}

/**
 * Builds the document from one snapshot (`placement`: the Ps' CPUs, read once by the caller).
 * `origin`: the snapshot is another process's (its pid, time and version; default: this process, now).
 */
export function schedulerJsonFrom(s: SchedulerStatsLike, placement: readonly WorkerPlacement[], identity: PodIdentity = podIdentity(), origin?: SnapshotOrigin): SchedulerJson {
  const cpusOf = new Map(placement.map((p) => [p.worker, [...p.cpus]]));
  const workers = s.workers.map((w): SchedulerJsonWorker => {
    const cpus = cpusOf.get(w.worker) ?? [];
    return {
      worker: w.worker,
      numa_node: w.node,
      cpus,
      cpu_list: cpuListString(cpus),
      spawned: w.spawned,
      completed: w.executed,
      steals_same_node: w.stealsSameNode,
      steals_remote_node: w.stealsRemote,
      stolen_tasks_same_node: w.stealsSameNodeTasks,
      stolen_tasks_remote_node: w.stealsRemoteTasks,
      failed_steals: w.failedSteals,
      overflows: w.overflows,
      parks: w.parks,
      wakeups: w.wakeups,
      busy_seconds: seconds(w.busyNs),
      spinning_seconds: seconds(w.spinningNs),
      hogs: w.hogs,
      queue_depth: w.queueDepth,
      parked: w.parked,
      active: w.active,
      running_for_ms: ms(w.runningForNs),
    };
  });
  const nodes = s.nodes.map(
    (n): SchedulerJsonNode => ({
      numa_node: n.node,
      workers: n.workers,
      queue_depth: n.queueDepth,
      queue_capacity: n.queueCapacity,
      local_queue_depth: s.workers.reduce((sum, w) => (w.node === n.node ? sum + w.queueDepth : sum), 0),
      completed: n.executed,
      steals_same_node: n.stealsSameNode,
      steals_remote_node: n.stealsRemote,
      prefetches: n.prefetches,
      busy_seconds: seconds(n.busyNs),
    }),
  );
  const sum = (f: (w: SchedulerStatsLike['workers'][number]) => number) => s.workers.reduce((acc, w) => acc + f(w), 0);
  const remote = sum((w) => w.stealsRemote);
  return {
    ...identity,
    runtime_version: origin ? origin.runtimeVersion : version,
    pid: origin ? origin.pid : process.pid,
    timestamp: origin ? origin.timestamp : new Date().toISOString(),
    uptime_seconds: origin ? origin.uptimeSeconds : process.uptime(),
    stats_enabled: s.statsEnabled ?? true,
    workers_total: s.workers.length,
    tasks: { spawned: totalSpawned(s), submitted_external: s.externalSubmitted, completed: s.executed, failed: s.tasks?.failed ?? 0, dropped: s.dropped },
    ...(s.memoryAffinity ? { memory_affinity: { affine_by_memory: s.memoryAffinity.affineByMemory, affine_fallback: s.memoryAffinity.affineFallback } } : {}),
    scheduling_latency_ms: latencyMs(s.latency),
    run_time_ms: latencyMs(s.runTime),
    work_steal_count: sum((w) => w.stealsSameNode) + remote,
    numa_steal_count: remote,
    failed_steal_count: sum((w) => w.failedSteals),
    local_queue_depth: sum((w) => w.queueDepth),
    node_queue_depth: s.nodes.reduce((acc, n) => acc + n.queueDepth, 0),
    global_queue_depth: s.globalQueueDepth,
    hogs: s.sysmon.hogs,
    longest_hog_ms: ms(s.sysmon.longestHogNs),
    stuck_workers: s.sysmon.stuckWorkers,
    workers_spinning: s.spinning,
    workers_parked: s.idle,
    parallelism: s.parallelism,
    workers_active: s.activeWorkers,
    parallelism_source: s.parallelismSource,
    parallelism_changes: s.parallelismChanges,
    nodes,
    workers,
  };
}

/** One snapshot of `runtime` as the /metrics/scheduler document. */
export function schedulerJson(runtime: MetricsSource, identity?: PodIdentity): SchedulerJson {
  metricsSource(runtime);
  const stats = runtime.stats();
  const origin = runtime.snapshotOrigin?.();
  return schedulerJsonFrom(stats, workerPlacement(runtime), identity ?? origin?.identity, origin);
}
