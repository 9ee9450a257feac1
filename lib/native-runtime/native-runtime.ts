// NativeRuntime: the scheduler core (native/core/sched) driven from JS with the built-in native
// task kinds -- noop, spin(ns), touch(buffer), chase(buffer, steps) -- for probes, benchmarks
// and placement experiments. Thin: options and arguments are checked by validation.ts, the rest
// (placement on real nodes and CPUs) by the core; see native/napi/runtime_binding.cpp.
import { EventEmitter } from 'node:events';
import { ErrorCodes, codedError } from '../core/errors';
import { serveMetrics as serveRuntimeMetrics, type MetricsServer, type ServeMetricsOptions } from '../metrics/server';
import type { BufferLike } from '../numa/memory';
import { native } from '../core/native';
import { nearestNodes, nodeOfBuffer } from '../numa/memory-affinity';
import { abortError } from '../runtime/endpoint';
import { numaNodeFromEnv } from '../per-node/env';
import { publishConfig, warnIfNotPublished, type ShmPublishConfig } from '../shm/config';
import type { MemoryAffinityStats, ParallelismEvent, SchedulerStats } from '../core/stats';
import { DEFAULTS, integer, nativeSpawnArgs, normalizeNativeRuntimeOptions, taskBuffer, type SchedulerConfig } from '../core/validation';

export type NativeTaskKind = 'noop' | 'spin' | 'touch' | 'chase';
export type StealPolicy = 'hierarchical' | 'flat';
/** NativeRuntime's deprecated `pin` option ('node' = placement 'spread'); also the core's pin mode of each P. */
export type PinMode = 'node' | 'cpu' | 'none';
/**
 * Where the Ps of either runtime run: 'spread' over the NUMA nodes in proportion to their allowed
 * CPUs, each pinned to its node's CPUs; 'cpu': the same spread, each pinned to one CPU; 'none': not pinned.
 */
export type PlacementMode = 'spread' | 'cpu' | 'none';

/** One P of an explicit placement (both runtimes). */
export interface PlacementEntry {
  /** OS id of the NUMA node the P belongs to (its queues, steal order). */
  node: number;
  /** CPUs its thread is pinned to (non-empty: `[]` is ERR_HWSQ_EMPTY_CPUS); omitted: the node's allowed CPUs. */
  cpus?: readonly number[];
}

export interface NativeRuntimeOptions {
  /** Ps (worker threads). 'auto' (default): cgroup-aware `availableParallelism().value`. With an explicit placement, its length. */
  workers?: number | 'auto';
  /**
   * Where the Ps run, as for Runtime: 'spread' (default): over the NUMA nodes in proportion to
   * their allowed CPUs, each pinned to its node's CPUs; 'cpu': the same spread, each pinned to one
   * CPU (round-robin within the node); 'none': not pinned (any of the runtime's CPUs); or one
   * { node, cpus? } per P (`workers`, if given, must equal its length). With HWSQ_NUMA_NODE=k the
   * first three use node k only.
   */
  placement?: PlacementMode | readonly PlacementEntry[];
  /**
   * @deprecated The old spelling of placement's mode: 'node' = 'spread', 'cpu', 'none'. With an
   * explicit placement list it still picks the CPUs of the entries without `cpus` ('cpu': one
   * each). Not together with placement 'cpu' / 'none'.
   */
  pin?: PinMode;
  /**
   * The Ps spread over every CPU of the process (`topology().allowedCpus`), whatever the pin of
   * the thread creating the runtime (default false). true: only over the CPUs that thread may
   * run on now (e.g. inside `pinToNumaNode(1)`: node 1 only); 'auto' workers count those.
   */
  confineToCaller?: boolean;
  /** 'hierarchical' (default): per-node queues, steal within the node first, then nearest nodes. 'flat': one tier, node-blind. */
  stealPolicy?: StealPolicy;
  /** Counters beyond spawned/executed, clocks and histograms (default true). */
  stats?: boolean;
  /**
   * Time 1 task in 2^shift, picked at random, for the latency and run-time histograms (0..20,
   * default 8: 1 in 256; 0: every task). Their counts and sums are scaled back by 2^shift (unbiased
   * estimates); `executed` and every other counter stay exact.
   */
  timingSampleShift?: number;
  /** Run the monitor thread (hog detection; default true). */
  sysmon?: boolean;
  /**
   * Spinning instead of sleeping, in microseconds (default 50; 0 disables it; at most 100000):
   * before a P parks it keeps looking for work this long (at most half the Ps spin at once). A P
   * that runs dry between bursts of short tasks then gets the next task without the futex sleep
   * and wake-up at either end, for a little CPU after each burst.
   */
  idleSpinMicros?: number;
  /**
   * workers 'auto' (without a placement list) follow the cgroup: a P per allowed CPU is started
   * once, and every cgroupPollMs (default 1000; 10..3600000, 0: off) the CPU limit is re-read and
   * the Ps above it park (README "Following the cgroup"). Ignored with a number of workers, a
   * placement or a virtual topology (fixed).
   */
  cgroupPollMs?: number;
  /** A task running longer than this is a hog (default 10 ms). */
  hogThresholdMs?: number;
  /**
   * For tests of the NUMA logic on any machine: `nodes` x `workersPerNode` unpinned Ps on nodes
   * 0..nodes-1 at distances 10 + 10*|i-j|. Excludes `workers`, `placement`, `pin` and `confineToCaller`.
   */
  virtualTopology?: { nodes: number; workersPerNode: number };
  /**
   * Publish this runtime's stats in the process's shared-memory stats file, read by pid with
   * `hwsq ps | stats --pid | top --pid | metrics serve --pid` (default true; HWSQ_SHM=0 turns
   * it off for every runtime). Written by a native thread of the process, not the JS thread.
   */
  shm?: boolean;
  /**
   * spawnNative defaults to node: 'auto' (default false): touch/chase tasks run on the node that
   * holds params.buffer. An explicit node or worker wins.
   */
  memoryAffinity?: boolean;
}

export interface NativeTaskParams {
  /** spin: busy-wait this many nanoseconds (required). */
  ns?: number;
  /** touch / chase: the memory the tasks work on (at least 64 bytes); kept alive until they finish. */
  buffer?: BufferLike;
  /** chase: dependent loads per task (default: one per cache line of the buffer). */
  steps?: number;
}

export interface SpawnNativeOptions {
  /** Tasks to spawn (default 1). One promise for all of them. */
  count?: number;
  /**
   * NUMA node affinity (OS id): the tasks go to the node's queue and run on its Ps unless those
   * are saturated. 'auto': the node holding params.buffer (none for spin/noop, or a buffer with
   * no resident page: no affinity). Default: 'auto' with the runtime option memoryAffinity.
   */
  node?: number | 'auto';
  /** Send the tasks to this P's inbox: they run there and are never stolen (with `inside`: the root task only). */
  worker?: number;
  /**
   * Spawn from inside the runtime: one root task (on `worker`, on `node`, or anywhere) spawns
   * the `count` tasks into its P's local queue, as a parallel loop would (the fastest path).
   */
  inside?: boolean;
}

export interface SpawnNativeResult {
  count: number;
  /** From the spawnNative call to the completion of the last task (measured natively, before delivery to JS). */
  elapsedNs: number;
}

export interface NativeRuntimeTopology {
  policy: StealPolicy;
  pinned: boolean;
  statsEnabled: boolean;
  /** P index -> node and the CPUs it is pinned to ([] when not pinned). */
  workers: { worker: number; node: number; cpus: number[] }[];
  /** Nodes with Ps, in the scheduler's order; `distances[i]` is the distance to `nodes[i]`. */
  nodes: { node: number; workers: number[]; distances: number[] }[];
}

/** Where a P's thread actually was when asked (getcpu) and its affinity mask. */
export interface WorkerLocation {
  worker: number;
  /** The P's node (placement). */
  node: number;
  cpu: number;
  /** The node of `cpu`, as the kernel reports it. */
  cpuNode: number;
  affinity: number[];
}

// ------------------------------------------------------------------ binding

/** The normalized options handed to the addon: the scheduler config both runtimes share, plus NativeRuntime's own. */
export interface NativeRuntimeConfig extends SchedulerConfig {
  stats: boolean;
  timingSampleShift: number;
  sysmon: boolean;
  /** RuntimeOptions::idleSpinNs of the core (idleSpinMicros x 1000). */
  idleSpinNs: number;
  virtualNodes: number; // 0 = the machine's topology
  virtualWorkersPerNode: number;
  /** The checked `shm` option (the addon publishes only with a ShmPublishConfig). */
  shm?: boolean;
  /** Spawns default to node: 'auto' (JS only; the addon never sees it). */
  memoryAffinity?: boolean;
}

/** The config as the addon takes it: `shm` resolved to where and how often to publish (anything else: not published). */
export type NativeRuntimeAddonConfig = Omit<NativeRuntimeConfig, 'shm' | 'memoryAffinity'> & { shm?: ShmPublishConfig | boolean | null; onParallelism?: (event: ParallelismEvent) => void };

interface RawSpawnResult {
  count: number;
  executed: number;
  dropped: number;
  elapsedNs: number;
}

interface NativeRuntimeHandle {
  spawn(kind: string, spinNs: number, buffer: Uint8Array | undefined, steps: number, node: number, worker: number, count: number, inside: boolean): Promise<RawSpawnResult>;
  locate(): Promise<{ dropped: number; locations: WorkerLocation[] }>;
  idle(): Promise<void>;
  close(): Promise<void>;
  destroy(): void;
  stats(): SchedulerStats;
  topology(): NativeRuntimeTopology;
  isStopped(): boolean;
}

/** In-process figure of the C++ spawn loop (benchSpawn). */
export interface CppSpawnFigure {
  mode: 'external' | 'inside';
  tasks: number;
  reps: number;
  workers: number;
  nsPerTask: number;
  bestNsPerTask: number;
  /** The process's CPU time (every thread, spinning included) per task, median of the repetitions. */
  cpuNsPerTask: number;
  samplesNs: number[];
}

export interface NativeRuntimeBinding {
  NativeRuntime: new (config: NativeRuntimeAddonConfig) => NativeRuntimeHandle;
  prepareChase(view: Uint8Array, seed: number): void;
  /** warmupTasks: the untimed warm-up's size (default tasks / 10). */
  benchSpawn(config: NativeRuntimeAddonConfig, mode: 'external' | 'inside', tasks: number, reps: number, warmupTasks?: number): CppSpawnFigure;
}

export function nativeRuntimeBinding(): NativeRuntimeBinding {
  return native() as unknown as NativeRuntimeBinding;
}

// ------------------------------------------------------------------ errors

function closedError(): Error {
  return codedError(ErrorCodes.RUNTIME_CLOSED, 'this runtime is closed');
}

function droppedError(dropped: number, count: number): Error {
  const err = abortError();
  err.message = `destroy() dropped ${dropped} of ${count} tasks before they ran`;
  return err;
}

// ------------------------------------------------------------------ the runtime

/**
 * A scheduler runtime running native task kinds. Create with `createNativeRuntime(options)`.
 * Idle workers hold no reference on the event loop: a process that never closes its runtime
 * still exits, and a runtime that is garbage-collected without close() is destroyed.
 */
export interface NativeRuntime {
  /** The parallelism limit moved (workers 'auto' following the cgroup; README "Following the cgroup"). */
  on(event: 'parallelism', listener: (event: ParallelismEvent) => void): this;
  once(event: 'parallelism', listener: (event: ParallelismEvent) => void): this;
  off(event: 'parallelism', listener: (event: ParallelismEvent) => void): this;
  on(event: string | symbol, listener: (...args: never[]) => void): this;
  once(event: string | symbol, listener: (...args: never[]) => void): this;
  off(event: string | symbol, listener: (...args: never[]) => void): this;
}
export class NativeRuntime extends EventEmitter {
  /** Number of Ps (worker threads). */
  readonly size: number;
  /** OS ids of the NUMA nodes that have Ps. */
  readonly nodes: readonly number[];
  readonly stealPolicy: StealPolicy;
  readonly #handle: NativeRuntimeHandle;
  #closing: Promise<void> | undefined;
  #destroyed = false;
  readonly #memoryAffinity: boolean;
  #nearest: Map<number, number> | undefined;  // memory node -> node with Ps (node: 'auto')
  readonly #affinity: MemoryAffinityStats = { affineByMemory: 0, affineFallback: 0 };

  constructor(options: NativeRuntimeOptions = {}) {
    super();
    const { memoryAffinity, ...config } = normalizeNativeRuntimeOptions(options);
    this.#memoryAffinity = memoryAffinity ?? DEFAULTS.memoryAffinity;
    // The event comes from the core's watch thread through an unref'd thread-safe function,
    // which holds this callback: a weak reference, so that the runtime can still be collected.
    const self = new WeakRef(this);
    const onParallelism = (event: ParallelismEvent) => self.deref()?.emit('parallelism', event);
    this.#handle = new (nativeRuntimeBinding().NativeRuntime)({ ...config, shm: publishConfig(config.shm ?? DEFAULTS.shm), onParallelism });
    warnIfNotPublished();
    const topo = this.#handle.topology();
    this.size = topo.workers.length;
    this.nodes = Object.freeze(topo.nodes.map((n) => n.node));
    this.stealPolicy = topo.policy;
  }

  /** True once close() or destroy() was called. */
  get closed(): boolean {
    return this.#closing !== undefined || this.#destroyed;
  }

  /**
   * Spawns `options.count` (default 1) tasks of a native kind; resolves when all of them have
   * completed. Rejects with RUNTIME_CLOSED after close()/destroy(), with an AbortError when
   * destroy() dropped some of them, and with TypeError/RangeError (stable `code`) for bad input.
   */
  spawnNative(kind: NativeTaskKind, params?: NativeTaskParams, options?: SpawnNativeOptions): Promise<SpawnNativeResult> {
    try {
      if (this.closed) throw closedError();
      const a = nativeSpawnArgs(kind, params, options, this.size, this.nodes, this.#memoryAffinity);
      let node = a.node;
      if (node === 'auto') {
        // touch/chase use their buffer in place: its node; spin/noop have no memory (fallback).
        node = a.view ? nodeOfBuffer(a.view.buffer, (this.#nearest ??= nearestNodes(this.nodes))) : -1;
      }
      const r = this.#handle.spawn(a.kind, a.spinNs, a.view, a.steps, node, a.worker, a.count, a.inside);
      if (a.node === 'auto') {
        if (node >= 0) this.#affinity.affineByMemory += a.count;
        else this.#affinity.affineFallback += a.count;
      }
      return r.then((r) => {
        if (r.dropped > 0) throw droppedError(r.dropped, r.count);
        return { count: r.count, elapsedNs: r.elapsedNs };
      });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Asks every P where its thread runs (one probe task in each P's inbox). */
  async locate(): Promise<WorkerLocation[]> {
    if (this.closed) throw closedError();
    const r = await this.#handle.locate();
    if (r.dropped > 0) throw droppedError(r.dropped, this.size);
    return r.locations;
  }

  /** Resolves when every task spawned so far has completed (then stats() counts all of them). */
  idle(): Promise<void> {
    return this.#handle.idle();
  }

  /** A snapshot of the scheduler's counters, depths and histograms (also after close). */
  stats(): SchedulerStats {
    const s = this.#handle.stats();
    s.memoryAffinity = { ...this.#affinity };
    return s;
  }

  /** Which P is on which node and CPUs, and the node distances the steal order follows. */
  topology(): NativeRuntimeTopology {
    return this.#handle.topology();
  }

  /**
   * Refuses new spawns, lets every spawned task complete, joins every thread. Pending spawn
   * promises resolve first. Idempotent: returns the same promise.
   */
  close(): Promise<void> {
    // One reaction hop, like spawnNative's results: pending spawns settle before close does.
    if (!this.#closing) this.#closing = this.#destroyed ? Promise.resolve() : this.#handle.close().then(() => undefined);
    return this.#closing;
  }

  /**
   * Stops now: running tasks finish, queued ones are dropped (their spawn promises reject with an
   * AbortError), every thread is joined before this returns. Idempotent.
   */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#handle.destroy();
  }

  /**
   * Serves this runtime's metrics over HTTP: `/metrics` (Prometheus text) and
   * `/metrics/scheduler` (JSON), on 127.0.0.1:9464 unless told otherwise. Same as
   * `serveMetrics(runtime, options)`; close the returned server before or after the runtime.
   */
  serveMetrics(options?: ServeMetricsOptions): Promise<MetricsServer> {
    return serveRuntimeMetrics(this, options);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Creates and starts a runtime; bad options throw (TypeError / RangeError with a stable `code`) with nothing started. */
export function createNativeRuntime(options: NativeRuntimeOptions = {}): NativeRuntime {
  return new NativeRuntime(options);
}

/** Prepares a buffer for 'chase' tasks: one random cycle through all its cache lines. */
export function prepareChaseBuffer(buffer: BufferLike, seed = 1): void {
  const view = taskBuffer(buffer, 'buffer');
  nativeRuntimeBinding().prepareChase(view, integer(seed, 'seed', 0, Number.MAX_SAFE_INTEGER, ErrorCodes.INVALID_ARG));
}
