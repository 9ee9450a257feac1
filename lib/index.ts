export { topology, numaNodeCount, availableParallelism } from './numa/topology';
export type { Topology, TopologyOptions, NumaNode, Cpu, Parallelism } from './numa/topology';
export { pinToNumaNode, pinToCpus, unpin, getAffinity, currentCpu, currentNode } from './numa/affinity';
export type { PinOptions, Pinning } from './numa/affinity';
export { allocOnNode, allocInterleaved, pageNodes, isMemoryLocal, movePages } from './numa/memory';
export type { AllocOptions, MemoryPolicy, BufferLike, PagePlacement } from './numa/memory';
export { ErrorCodes } from './core/errors';
export type { ErrorCode, HwsqError } from './core/errors';
export { Runtime } from './runtime/runtime';
export type { RuntimeOptions, WorkerPlacementSpec, WorkerInfo, RuntimeStatsSnapshot, WorkerStatsSnapshot, JsTaskCounts, SpawnOptions } from './runtime/runtime';
export { spawn, spawnMany, currentTask, isTaskWorker, move } from './runtime/task';
export type { TaskContext } from './runtime/task';
export { NativeRuntime, createNativeRuntime, prepareChaseBuffer } from './native-runtime/native-runtime';
export type {
  NativeRuntimeOptions,
  NativeTaskKind,
  NativeTaskParams,
  SpawnNativeOptions,
  SpawnNativeResult,
  NativeRuntimeTopology,
  PlacementEntry,
  PlacementMode,
  PinMode,
  WorkerLocation,
} from './native-runtime/native-runtime';
export type { SchedulerStats, WorkerStats, NodeStats, HistogramStats, SysmonStats, ParallelismEvent, ParallelismSource } from './core/stats';
export { registerMetrics, DEFAULT_LATENCY_BUCKETS } from './metrics/prometheus';
export type { RegisterMetricsOptions, MetricsRegistration, PromRegistry } from './metrics/prometheus';
export { serveMetrics } from './metrics/server';
export type { ServeMetricsOptions, MetricsServer } from './metrics/server';
export { schedulerJson, podIdentity } from './metrics/scheduler-json';
export type { SchedulerJson, SchedulerJsonNode, SchedulerJsonWorker, PodIdentity, LatencySummaryMs } from './metrics/scheduler-json';
export type { MetricsSource, SchedulerStatsLike } from './metrics/source';
export { forkPerNode } from './per-node/fork';
export type { ForkPerNodeOptions, PerNodeCluster, PerNodeEvents, PerNodeExit, PerNodeMemory, PerNodeCloseOptions } from './per-node/fork';
