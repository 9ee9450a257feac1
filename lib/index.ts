export { topology, numaNodeCount, availableParallelism } from './topology';
export type { Topology, TopologyOptions, NumaNode, Cpu, Parallelism } from './topology';
export { pinToNumaNode, pinToCpus, unpin, getAffinity, currentCpu, currentNode } from './affinity';
export type { PinOptions, Pinning } from './affinity';
export { allocOnNode, allocInterleaved, pageNodes, isMemoryLocal, movePages } from './memory';
export type { AllocOptions, MemoryPolicy, BufferLike, PagePlacement } from './memory';
export { ErrorCodes } from './errors';
export type { ErrorCode, HwsqError } from './errors';
export { Runtime } from './runtime';
export type { RuntimeOptions, WorkerPlacementSpec, WorkerInfo, RuntimeStatsSnapshot, WorkerStatsSnapshot, JsTaskCounts, SpawnOptions } from './runtime';
export { spawn, spawnMany, currentTask, isTaskWorker, move } from './task';
export type { TaskContext } from './task';
export { NativeRuntime, createNativeRuntime, prepareChaseBuffer } from './native-runtime';
export type {
  NativeRuntimeOptions,
  NativeTaskKind,
  NativeTaskParams,
  SpawnNativeOptions,
  SpawnNativeResult,
  NativeRuntimeTopology,
  PlacementEntry,
  WorkerLocation,
} from './native-runtime';
export type { SchedulerStats, WorkerStats, NodeStats, HistogramStats, SysmonStats, ParallelismEvent, ParallelismSource } from './stats';
export { registerMetrics, DEFAULT_LATENCY_BUCKETS } from './metrics/prometheus';
export type { RegisterMetricsOptions, MetricsRegistration, PromRegistry } from './metrics/prometheus';
export { serveMetrics } from './metrics/server';
export type { ServeMetricsOptions, MetricsServer } from './metrics/server';
export { schedulerJson, podIdentity } from './metrics/scheduler-json';
export type { SchedulerJson, SchedulerJsonNode, SchedulerJsonWorker, PodIdentity, LatencySummaryMs } from './metrics/scheduler-json';
export type { MetricsSource, SchedulerStatsLike } from './metrics/source';
export { forkPerNode } from './per-node/fork';
export type { ForkPerNodeOptions, PerNodeCluster, PerNodeEvents, PerNodeExit, PerNodeMemory, PerNodeCloseOptions } from './per-node/fork';
