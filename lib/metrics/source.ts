// What the observability layer needs from a runtime: a stats snapshot and where its Ps run.
// Both NativeRuntime (stats(): SchedulerStats, topology()) and the JS-task Runtime
// (stats(): RuntimeStatsSnapshot extends SchedulerStats, workers) satisfy it structurally.
import type { HistogramStats, NodeStats, SchedulerStats, WorkerStats } from '../core/stats';
import type { SnapshotOrigin } from './scheduler-json';
import { formatCpuList } from '../numa/topology-report';

/** The snapshot fields the exporters read (both runtimes' stats() have all of them). */
export type HistogramLike = HistogramStats;
export type WorkerStatsLike = WorkerStats;
export type NodeStatsLike = NodeStats;
export interface SchedulerStatsLike extends SchedulerStats {
  /** JS-task runtimes: tasks whose function threw or rejected. */
  tasks?: { failed: number };
}

/** Where a P runs: its node and the CPUs its thread is pinned to ([] when not pinned). */
export interface WorkerPlacement {
  worker: number;
  node: number;
  cpus: readonly number[];
}

/**
 * What `registerMetrics`, `serveMetrics` and `schedulerJson` accept: `NativeRuntime`
 * (placement from `topology()`) or `Runtime` (placement from `workers`).
 */
export interface MetricsSource {
  stats(): SchedulerStatsLike;
  topology?(): { workers: readonly WorkerPlacement[] };
  readonly workers?: readonly WorkerPlacement[];
  /** Sources that read another process's stats (by pid): where the last stats() came from. */
  snapshotOrigin?(): SnapshotOrigin | undefined;
}

/** The Ps' placement, or [] when the source tells none. */
export function workerPlacement(source: MetricsSource): WorkerPlacement[] {
  const list = typeof source.topology === 'function' ? source.topology().workers : Array.isArray(source.workers) ? source.workers : [];
  return list.map((w) => ({ worker: w.worker, node: w.node, cpus: [...w.cpus] }));
}

/** A CPU list in the kernel's compact form: [0,1,2,5] -> "0-2,5" ("" for none). */
export function cpuListString(cpus: readonly number[]): string {
  return cpus.length ? formatCpuList([...new Set(cpus)].sort((a, b) => a - b)) : '';
}
