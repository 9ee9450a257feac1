// Scheduler statistics as returned by the addon (native/napi/stats_js.cpp, statsToJs). Base
// units: counts, nanoseconds (`...Ns`), microseconds (`...Us`). Counters are cumulative since the
// runtime started; depths and flags are the state at the time of the snapshot. The snapshot is
// taken without stopping anything: each counter is exact at some instant during the read.

/**
 * A latency histogram (log-linear buckets of at most 1/32 relative width, like HdrHistogram).
 * Quantiles are bucket midpoints, so accurate to about 1.6%.
 */
export interface HistogramStats {
  /**
   * Tasks counted. With timing sampling (`timingSampleShift` k > 0, the default) 1 task in 2^k is
   * timed and `count`, `sumNs` and the bucket counts are scaled by 2^k: unbiased estimates of
   * all tasks, multiples of 2^k. `executed` is the exact count.
   */
  count: number;
  sumNs: number;
  meanNs: number;
  p50Ns: number;
  p90Ns: number;
  p99Ns: number;
  maxNs: number;
  /**
   * The non-empty buckets, ascending: bucket i holds `counts[i]` values in
   * `[lowerNs[i], upperNs[i])` (counts are per bucket, not cumulative). Enough to rebuild
   * cumulative `le` buckets of any layout (Prometheus) by summing the buckets below each bound.
   */
  buckets: { lowerNs: number[]; upperNs: number[]; counts: number[] };
}

/** One P (worker thread). Counters other than `spawned`/`executed` need `stats: true`. */
export interface WorkerStats {
  worker: number;
  /** OS id of the P's NUMA node. */
  node: number;
  /** Tasks submitted by tasks running on this P. */
  spawned: number;
  /** Tasks run to completion on this P. */
  executed: number;
  /** Spawns that went to this P's local queue (LRQ ring or runnext). */
  localPushes: number;
  /** Tasks taken from runnext. */
  runnextHits: number;
  /** Tasks this P pushed to a node queue (HWSQ): overflow, affinity, prefetch. */
  hwsqPushes: number;
  /** Tasks this P took from its own node's HWSQ. */
  hwsqPops: number;
  /** Tasks this P took from the global queue. */
  grqPops: number;
  /** Tasks taken from this P's inbox (tasks sent to this P, never stolen). */
  inboxPops: number;
  /** Successful steals from Ps of the same node, and the tasks they moved. */
  stealsSameNode: number;
  stealsSameNodeTasks: number;
  /** Successful steals from other nodes' Ps or HWSQs, and the tasks they moved. */
  stealsRemote: number;
  stealsRemoteTasks: number;
  /** Victims probed without finding work. */
  failedSteals: number;
  /** LRQ overflows (half the ring moved to the HWSQ/GRQ), and the tasks moved. */
  overflows: number;
  overflowTasks: number;
  /** Times this P parked (slept for lack of work). */
  parks: number;
  /** Times another thread woke it. */
  wakeups: number;
  /** Time spent spinning (looking for work to steal). */
  spinningNs: number;
  /** Time spent running tasks (an estimate when timing is sampled). */
  busyNs: number;
  /** Tasks that ran longer than the hog threshold on this P (sysmon). */
  hogs: number;
  /** Tasks in this P's local queue now (ring + runnext). */
  queueDepth: number;
  /** Parked right now. */
  parked: boolean;
  /** Not parked by the parallelism limit (workers 'auto' following the cgroup CPU limit). */
  active: boolean;
  /** How long the current task has been running (0 when idle), as sysmon last saw it. */
  runningForNs: number;
}

/** One NUMA node with Ps: its queue (HWSQ) and the sums of its Ps' counters. */
export interface NodeStats {
  node: number;
  /** Ps on this node. */
  workers: number;
  /** Tasks in the node's HWSQ now, and its capacity (0 with the flat policy). */
  queueDepth: number;
  queueCapacity: number;
  /** GRQ -> HWSQ prefetches by this node's Ps, and the tasks moved. */
  prefetches: number;
  prefetchTasks: number;
  spawned: number;
  executed: number;
  hwsqPops: number;
  stealsSameNode: number;
  stealsSameNodeTasks: number;
  stealsRemote: number;
  stealsRemoteTasks: number;
  busyNs: number;
}

export interface SysmonStats {
  /** Tasks seen running longer than the hog threshold. */
  hogs: number;
  /** Longest such run (sampled: accurate to the sysmon period), and its P (-1: none). */
  longestHogNs: number;
  longestHogWorker: number;
  /** Ps inside one task longer than the threshold right now. */
  stuckWorkers: number;
  /** sysmon wake-ups so far, and its current sleep. */
  rounds: number;
  currentDelayUs: number;
}

/**
 * Tasks spawned with node 'auto' (spawn option, or the runtime option memoryAffinity), by the
 * choice made: on the node holding their memory, or placed as without a node (no buffer used in
 * place, or none of its pages resident).
 */
export interface MemoryAffinityStats {
  affineByMemory: number;
  affineFallback: number;
}

/** A snapshot of a scheduler runtime's counters (`NativeRuntime.stats()`). */
/**
 * What set a runtime's parallelism: 'cgroup2' (a cgroup v2 cpu.max), 'cgroup1' (a v1 CFS quota),
 * 'cpuset' (no CPU quota: the CPUs the runtime may use), 'fixed' (a number of workers or an
 * explicit placement, or following turned off with cgroupPollMs 0: never changes).
 */
export type ParallelismSource = 'cgroup2' | 'cgroup1' | 'cpuset' | 'fixed';

/** The `parallelism` event of both runtimes: the limit moved (the cgroup CPU limit or cpuset changed). */
export interface ParallelismEvent {
  previous: number;
  current: number;
  source: ParallelismSource;
}

export interface SchedulerStats {
  /** False when the runtime was created with `stats: false` (then only spawned/executed count). */
  statsEnabled: boolean;
  workers: WorkerStats[];
  nodes: NodeStats[];
  /** Tasks in the global queue now. */
  globalQueueDepth: number;
  /** Tasks submitted from threads outside the runtime (e.g. every `spawnNative` task). */
  externalSubmitted: number;
  /** Submissions refused because the runtime was closed. */
  rejected: number;
  /** Tasks dropped by destroy() without running. */
  dropped: number;
  /** Sums of the workers' counters. */
  spawned: number;
  executed: number;
  /** Ps spinning / parked right now. */
  spinning: number;
  idle: number;
  /** Ps allowed to take work now: min(the CPU limit, workers) when following the cgroup, else all. */
  parallelism: number;
  /** Ps not parked by that limit (equal to parallelism). */
  activeWorkers: number;
  /** What set the limit (README "Following the cgroup"). */
  parallelismSource: ParallelismSource;
  /** Times the limit changed since the runtime started. */
  parallelismChanges: number;
  /** Submit -> start of each task (of the timed ones when sampled), all Ps merged. */
  latency: HistogramStats;
  /** Start -> end of each task's function (of the timed ones when sampled), all Ps merged. */
  runTime: HistogramStats;
  sysmon: SysmonStats;
  /** node: 'auto' choices (absent from snapshots read from another process's shared-memory stats file). */
  memoryAffinity?: MemoryAffinityStats;
}
