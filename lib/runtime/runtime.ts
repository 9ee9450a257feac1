// Runtime.start / spawn: JS tasks on NUMA-pinned worker isolates, scheduled by the native core.
//
// One P of the core = one worker_threads Worker, pinned to the P's CPUs when it attaches (before
// any task runs there). Tasks are the named exports of `filename`. The main thread encodes a
// task's arguments (codec.ts) into a scratch buffer shared with the addon and submits it to the
// core (GRQ / the node's HWSQ); a worker whose event loop is woken runs it through the core's
// runSome (inbox -> runnext -> LRQ -> HWSQ -> GRQ -> steal), and the result comes back through
// the main thread's completion queue, many per wake-up. See native/napi/js_runtime.h (which file
// holds which part of the addon's side).
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { MessageChannel, receiveMessageOnPort, Worker, type ResourceLimits, SHARE_ENV } from 'node:worker_threads';
import { ErrorCodes, codedError, rangeError, typeError } from '../core/errors';
import { serveMetrics as serveRuntimeMetrics, type MetricsServer, type ServeMetricsOptions } from '../metrics/server';
import { packageRoot } from '../core/native';
import { abortError, jsBinding, Endpoint, workerExitedError, type SpawnOptions } from './endpoint';
import { spawnBatch, spawnOne, type SpawnTarget } from './spawn';
import type { InitMessage } from './worker';
import { MemoryTally, nearestNodes } from '../numa/memory-affinity';
import { numaNodeFromEnv } from '../per-node/env';
import { sabRegistry } from './sab';
import { publishConfig, warnIfNotPublished } from '../shm/config';
import type { ParallelismEvent, SchedulerStats, WorkerStats } from '../core/stats';
import type { PlacementEntry, PlacementMode } from '../native-runtime/native-runtime';
import { DEFAULTS, runtimeConfig } from '../core/validation';

/** Runtime.start's key to the constructor. */
const startToken: unique symbol = Symbol('Runtime.start');

export type { SpawnOptions } from './endpoint';

/** @deprecated The same as PlacementEntry (one name for both runtimes). */
export type WorkerPlacementSpec = PlacementEntry;

export interface RuntimeOptions {
  /** Module (ESM or CJS; a path or file: URL) whose named exports are the task functions ('default' for the default export). */
  filename: string | URL;
  /** Number of Ps / worker isolates; 'auto' (default): the cgroup-aware available parallelism. */
  workers?: number | 'auto';
  /**
   * Where the Ps run: 'spread' (default): over the NUMA nodes in proportion to their allowed CPUs,
   * each pinned to its node's CPUs; 'cpu': the same spread, each pinned to one CPU; 'none': not
   * pinned (each may run on any of the runtime's CPUs); or an explicit list of { node, cpus? }
   * (one per P; `workers`, if given, must equal its length; `cpus` omitted: the node's allowed
   * CPUs, `[]`: ERR_HWSQ_EMPTY_CPUS). With HWSQ_NUMA_NODE=k set (as `hwsq run --per-node` and
   * forkPerNode do), the first three use node k only. The same option as NativeRuntime's.
   */
  placement?: PlacementMode | readonly PlacementEntry[];
  /**
   * The Ps spread over every CPU of the process (`topology().allowedCpus`), whatever the pin of
   * the thread calling start (default false). true: only over the CPUs that thread may run on
   * now (e.g. inside `pinToNumaNode(1)`: node 1 only); 'auto' workers count those.
   */
  confineToCaller?: boolean;
  /** 'hierarchical' (default): steal within the node first, then nearest nodes; 'flat': node-blind. */
  stealPolicy?: 'hierarchical' | 'flat';
  /** Most root tasks (spawned from this thread) queued and not started; beyond, spawn rejects with ERR_HWSQ_QUEUE_FULL. Default Infinity; 'auto': 1024 per worker. */
  maxQueue?: number | 'auto';
  /**
   * Async root tasks one worker runs at once (default 16): at the limit it takes no new root
   * tasks (they stay queued for other Ps). Tasks spawned from inside tasks are never limited
   * (their parents usually await them).
   */
  concurrentTasksPerWorker?: number;
  /**
   * Spinning instead of sleeping, in microseconds (default 50; 0 disables it): before a worker
   * parks it keeps looking for work this long (at most half the workers spin at once), and after
   * a spawn this thread polls for results this long instead of waiting for a wake-up. A quick
   * task then costs no thread wake-up at either end (round trip ~4 us instead of ~80 us on a
   * 2-CPU VM), for a little CPU after each burst.
   */
  idleSpinMicros?: number;
  /** Tasks a worker runs per event-loop turn before letting timers, I/O and microtasks in (default 64). */
  tasksPerTurn?: number;
  /**
   * workers 'auto' follow the cgroup: a worker per allowed CPU is started once, and every
   * cgroupPollMs (default 1000; 10..3600000, 0: off) the CPU limit is re-read and the workers
   * above it park (README "Following the cgroup"). Ignored with a number of workers or an
   * explicit placement (fixed).
   */
  cgroupPollMs?: number;
  /** Per-worker V8 heap limits (worker_threads ResourceLimits). */
  resourceLimits?: ResourceLimits;
  /** Environment of the workers (default: a copy of process.env; SHARE_ENV to share). */
  env?: NodeJS.Dict<string> | typeof SHARE_ENV;
  /** Available inside the workers as require('node:worker_threads').workerData. */
  workerData?: unknown;
  /** Node options of the workers. */
  execArgv?: string[];
  /**
   * Restart a worker that exits (default true). Its queued tasks are kept; its running ones reject
   * with ERR_HWSQ_WORKER_EXITED. false: the other Ps take its queued tasks; once no P has a worker,
   * the queued tasks reject with ERR_HWSQ_WORKER_EXITED and the runtime stops.
   */
  restartWorkers?: boolean;
  /** Task run time above which sysmon counts a hog (default 10 ms). */
  hogThresholdMs?: number;
  /**
   * Publish this runtime's stats in the process's shared-memory stats file, read by pid with
   * `hwsq ps | stats --pid | top --pid | metrics serve --pid` (default true; HWSQ_SHM=0 turns
   * it off for every runtime). Written by a native thread, so it shows progress while this
   * thread's event loop is blocked.
   */
  shm?: boolean;
  /**
   * Spawns (root and nested, spawn and spawnMany) default to node: 'auto': a task runs on the
   * node that holds the memory it uses in place (its SharedArrayBuffers, allocOnNode memory in
   * `transfer`); without such memory it is placed as usual. An explicit node wins. Default false.
   * `stats().memoryAffinity` counts the choices.
   */
  memoryAffinity?: boolean;
}

export interface WorkerInfo {
  /** P index. */
  worker: number;
  node: number;
  cpus: readonly number[];
  threadId: number;
  restarts: number;
}

interface Slot {
  /** Its one Worker alive (starting, ready or exiting), if any. */
  worker: Worker | undefined;
  /** No worker, and none will start (restartWorkers: false, or its replacement failed MAX_RESTARTS_IN_A_ROW times). */
  gone: boolean;
  restarts: number;
  node: number;
  cpus: number[];
}

type WorkerMessage =
  | { kind: 'hwsq:ready'; names: string[]; nonFunctions: string[] }
  | { kind: 'hwsq:sab-sync' }
  | { kind: 'hwsq:load-error'; message: string; stack?: string; code?: string };

const MAX_RESTARTS_IN_A_ROW = 5;

const sameNames = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((n, i) => n === b[i]);
/** What one table has and the other lacks (a few of each). */
function namesDifference(expected: readonly string[], got: readonly string[]): string {
  const list = (xs: string[]) => (xs.length ? xs.slice(0, 5).join(', ') + (xs.length > 5 ? `, and ${xs.length - 5} more` : '') : 'none');
  const [e, g] = [new Set(expected), new Set(got)];
  return `missing: ${list(expected.filter((n) => !g.has(n)))}; extra: ${list(got.filter((n) => !e.has(n)))}`;
}

// How destroy() rejects the tasks it stops.
const stoppedWhileRunning = () => abortError(undefined, 'destroy() stopped this task while it ran');
const droppedBeforeStart = () => abortError(undefined, 'destroy() dropped this task before it started');

function workerEntry(): string {
  return path.join(packageRoot, 'dist', 'worker.js');
}

/** Node errors of `new Worker` for options validation.ts cannot check ahead (execArgv flags a worker refuses). */
const WORKER_OPTION_ERRORS = new Set(['ERR_WORKER_INVALID_EXEC_ARGV', 'ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_VALUE', 'ERR_OUT_OF_RANGE']);

export interface Runtime {
  /** The parallelism limit moved (workers 'auto' following the cgroup; README "Following the cgroup"). */
  on(event: 'parallelism', listener: (event: ParallelismEvent) => void): this;
  once(event: 'parallelism', listener: (event: ParallelismEvent) => void): this;
  off(event: 'parallelism', listener: (event: ParallelismEvent) => void): this;
  on(event: string | symbol, listener: (...args: never[]) => void): this;
  once(event: string | symbol, listener: (...args: never[]) => void): this;
  off(event: string | symbol, listener: (...args: never[]) => void): this;
}
export class Runtime extends EventEmitter {
  private readonly b = jsBinding();
  private readonly endpoint = new Endpoint();
  private readonly slots: Slot[];
  private readonly maxQueue: number;
  private refusing = false;  // spawns are refused (close(), destroy(), or every worker gone)
  private destroyed = false;  // stop() began: no native call but destroy, no restart
  private closing: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private full = false;
  private refd = false;  // the main endpoint's uv handle keeps the process alive (tasks pending)
  private unrefQueued = false;
  private idleWaiters: (() => void)[] = [];
  private quiesceWaiters: (() => void)[] = [];  // close(): until the addon's live count is 0
  private roomWaiters: (() => void)[] = [];
  /** The task names of the first worker ready: spawns name tasks here, workers run them by index. */
  private taskTable: readonly string[] | undefined;
  private readonly nodes: Set<number>;
  private readonly memoryAffinity: boolean;
  /** Memory node -> node with Ps (node: 'auto'; the workers get a copy). */
  private readonly nearest: Map<number, number>;

  private constructor(
    token: typeof startToken,
    private readonly rt: object,
    private readonly id: number,
    placement: { node: number; cpus: number[] }[],
    private readonly opts: RuntimeOptions,
    private readonly moduleUrl: string,
  ) {
    super();
    // `new Runtime()` from JS (TypeScript's `private` does not stop it) would leave a runtime
    // with no native half.
    if (token !== startToken) throw typeError(ErrorCodes.INVALID_ARG_TYPE, 'a Runtime is created with Runtime.start(options), not new Runtime()');
    this.slots = placement.map((p) => ({ worker: undefined, gone: false, restarts: 0, node: p.node, cpus: p.cpus }));
    this.nodes = new Set(placement.map((p) => p.node));
    this.memoryAffinity = opts.memoryAffinity === true;
    this.nearest = nearestNodes([...this.nodes]);
    const mq = opts.maxQueue ?? Infinity;
    this.maxQueue = mq === 'auto' ? DEFAULTS.maxQueuePerWorker * placement.length : mq;
    this.b.setMain(rt, this.endpoint.onCompletions, this.endpoint.inBuf, this.endpoint.io);
    this.endpoint.afterCompletions = () => this.afterCompletions();
    this.target = {
      endpoint: this.endpoint,
      nodes: this.nodes,
      memoryAffinity: this.memoryAffinity,
      tally: new MemoryTally(this.nearest),
      closed: () => this.refusing,
      admit: (count) => {
        if (this.maxQueue !== Infinity && this.b.queued(this.rt) + count > this.maxQueue) {
          this.full = true;
          throw codedError(ErrorCodes.QUEUE_FULL, `the queue is full (maxQueue ${this.maxQueue}); wait for 'drain' or waitForRoom()`);
        }
      },
      submit: (fn, seq, len, flags, node, big) =>
        big ? this.b.submitBig(this.rt, fn, seq, big, flags, node) : this.b.submit(this.rt, fn, seq, len, flags, node),
      submitMany: (count) => this.b.submitMany(this.rt, count),
      cancel: (handle) => this.b.cancel(this.rt, handle),
      terminate: (p) => this.terminateWorker(p),
      tracked: () => this.keepAlive(),
    };
  }

  /** Starts the workers (each loads `filename` and pins itself) and resolves when all are ready. */
  static async start(options: RuntimeOptions): Promise<Runtime> {
    // Every option read once and checked (validation.ts); the checked copy is what is used.
    // HWSQ_NUMA_NODE: the default placement uses only that node.
    const config = runtimeConfig(options, numaNodeFromEnv());
    const mod = config.module;
    if (!fs.existsSync(mod.file)) {
      throw codedError(ErrorCodes.TASK_MODULE_LOAD, `task module ${mod.file} does not exist`);
    }
    sabRegistry().listen();  // SharedArrayBuffers announced by workers reach this thread
    const shm = publishConfig(config.options.shm);
    // The event comes from the core's watch thread through an unref'd thread-safe function,
    // which holds this callback: a weak reference, so that the runtime can still be collected.
    let target: WeakRef<Runtime> | undefined;
    const onParallelism = (event: ParallelismEvent) => target?.deref()?.emit('parallelism', event);
    const created = jsBinding().create({ ...config.native, ...(shm ? { shm } : {}), onParallelism });
    warnIfNotPublished();
    const rt = new Runtime(startToken, created.runtime, created.id, created.workers, config.options, mod.url);
    target = new WeakRef(rt);
    try {
      await Promise.all(rt.slots.map((_, p) => rt.startWorker(p)));
    } catch (err) {
      await rt.destroy().catch(() => {});
      const code = (err as { code?: unknown } | null)?.code;
      if (typeof code === 'string' && WORKER_OPTION_ERRORS.has(code)) {
        throw rangeError(ErrorCodes.INVALID_OPTION, `the workers refused their options: ${(err as Error).message}`, { cause: err });
      }
      throw err;
    }
    return rt;
  }

  /** The Ps: their node, CPUs and current worker thread. */
  get workers(): readonly WorkerInfo[] {
    return this.slots.map((s, worker) => ({ worker, node: s.node, cpus: s.cpus, threadId: s.worker?.threadId ?? -1, restarts: s.restarts }));
  }
  /** Task names (exports that are functions). */
  get tasks(): readonly string[] {
    return this.endpoint.taskNames;
  }
  /** Promises of this thread's spawns not yet settled. */
  get pending(): number {
    return this.endpoint.pending.size;
  }
  /** Root tasks queued and not started. */
  get queueSize(): number {
    return this.destroyed ? 0 : this.b.queued(this.rt);
  }
  /** True once close() or destroy() was called, or every worker is gone (the same name as NativeRuntime's). */
  get closed(): boolean {
    return this.refusing;
  }
  /** @deprecated Use `closed` (kept for compatibility). */
  get isClosed(): boolean {
    return this.closed;
  }

  // A P has at most one Worker alive: the promise of a worker that fails before it is ready
  // (an error, a load error, other exports, an exit) rejects only at its 'exit', and the next
  // worker for the P starts after that. Everything below acts on this worker only: its
  // messages, error and exit may arrive in any order (they travel on different ports), and a
  // late one must never touch the P's next worker.
  private startWorker(p: number): Promise<void> {
    const slot = this.slots[p]!;
    const o = this.opts;
    const worker = new Worker(workerEntry(), {
      workerData: o.workerData,
      resourceLimits: o.resourceLimits,
      env: o.env,
      execArgv: o.execArgv,
      name: `hwsq-${p}`,
    } as ConstructorParameters<typeof Worker>[1]);
    const threadId = worker.threadId;  // -1 once it exited: kept for workerExited()
    slot.worker = worker;
    // The worker's bootstrap talks to this thread over a port of its own: task code shares the
    // worker's parentPort, and what it posts there (anything, a forged 'hwsq:ready' included)
    // must not reach this listener. Closed once the worker is ready or gone.
    const { port1: control, port2 } = new MessageChannel();
    const init: InitMessage = { kind: 'hwsq:init', control: port2, runtimeId: this.id, worker: p, url: this.moduleUrl, memoryAffinity: this.memoryAffinity, nearest: [...this.nearest] };
    worker.postMessage(init, [port2]);
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      let failure: Error | undefined;  // why it failed before it was ready: rejected with at its 'exit'
      const fail = (err: Error) => {
        if (ready || failure) return;
        failure = err;
        control.close();
        void worker.terminate();
      };
      const onControl = (msg: WorkerMessage) => {
        if (ready || failure) return;
        if (msg.kind === 'hwsq:sab-sync') {
          // The worker listens now: give it every SharedArrayBuffer id announced before (sab.ts).
          control.postMessage({ kind: 'hwsq:sabs', entries: sabRegistry().snapshot() });
        } else if (msg.kind === 'hwsq:ready') {
          // A task runs by its index in the worker's table: a worker whose module exported other
          // functions (exports that depend on the thread, the time, randomness) would run the
          // wrong one. It is stopped and counts as a start that failed.
          if (this.taskTable === undefined) {
            this.taskTable = msg.names;
            this.endpoint.setNames(msg.names, msg.nonFunctions);
          } else if (!sameNames(this.taskTable, msg.names)) {
            fail(codedError(ErrorCodes.TASK_MODULE_LOAD, `task module ${this.moduleUrl} exports other functions on worker ${p} than on the others (${namesDifference(this.taskTable, msg.names)}): every worker must see the same task functions`));
            return;
          }
          control.close();
          ready = true;
          // Once ready (a 'message' listener refs the port, and start must keep the process up):
          // a process that never calls close() exits when nothing is pending.
          worker.unref();
          resolve();
        } else if (msg.kind === 'hwsq:load-error') {
          const err = codedError(ErrorCodes.TASK_MODULE_LOAD, `task module ${this.moduleUrl} failed to load: ${msg.message}`);
          const cause = new Error(msg.message);
          if (msg.stack) cause.stack = msg.stack;
          if (msg.code) Object.assign(cause, { code: msg.code });
          Object.defineProperty(err, 'cause', { value: cause, configurable: true, writable: true });
          fail(err);
        }
      };
      control.on('message', onControl);
      worker.on('error', (err) => {
        if (!ready) fail(codedError(ErrorCodes.TASK_MODULE_LOAD, `worker ${p} failed to start: ${err.message}`, { cause: err }));
        else this.emit('workerError', { worker: p, error: err });  // not 'error': no listener, no throw
      });
      worker.on('exit', (exitCode) => {
        // What the worker posted before it exited may not have been delivered yet (its port and
        // its exit are two channels, in no set order): why it failed (a load error) is read
        // from the port first, not lost to "exited before it was ready".
        for (let m; !ready && !failure && (m = receiveMessageOnPort(control)) !== undefined; ) onControl(m.message as WorkerMessage);
        control.close();
        if (slot.worker === worker) slot.worker = undefined;
        if (!ready) {
          try {
            this.b.workerExited(this.rt, p, threadId);
          } catch {}
          reject(failure ?? codedError(ErrorCodes.TASK_MODULE_LOAD, `worker ${p} exited with code ${exitCode} before it was ready`));
          return;
        }
        this.onWorkerExit(p, exitCode, threadId);
      });
    });
  }

  // A worker that was ready exited: report it, then replace it (restartWorkers) or give the P up.
  private onWorkerExit(p: number, exitCode: number, threadId: number): void {
    const slot = this.slots[p]!;
    if (this.destroyed) return;
    this.b.workerExited(this.rt, p, threadId);
    this.emit('workerExit', { worker: p, exitCode });
    if (this.opts.restartWorkers === false) {
      this.workerGone(p);
      return;
    }
    slot.restarts++;
    const attempt = (tries: number): void => {
      if (this.destroyed) return;
      this.startWorker(p).then(
        () => this.emit('workerRestart', { worker: p, restarts: slot.restarts }),
        (err) => {
          if (tries + 1 < MAX_RESTARTS_IN_A_ROW && !this.destroyed) setTimeout(() => attempt(tries + 1), 10 * 2 ** tries).unref();
          else {
            this.emit('workerError', { worker: p, error: err });
            this.workerGone(p);
          }
        },
      );
    };
    attempt(0);
  }

  // P p will not get a worker again. Other Ps still take what is queued (they steal from its
  // queues); once no P has a worker, nothing can run the queued tasks: they reject and the
  // runtime stops, instead of close() and their promises waiting forever.
  private workerGone(p: number): void {
    this.slots[p]!.gone = true;
    if (this.destroyed || !this.slots.every((s) => s.gone)) return;
    this.refusing = true;
    const noWorker = () =>
      codedError(ErrorCodes.WORKER_EXITED, 'every worker of this runtime exited and none is restarted (restartWorkers: false, or replacements failed to start): nothing can run this task');
    void this.stop(workerExitedError, noWorker);
  }

  private terminateWorker(p: number): void {
    void this.slots[p]?.worker?.terminate();
  }

  private afterCompletions(): void {
    if (this.endpoint.pending.size === 0) {
      // Unref after the microtasks that just got their results ran: a caller that spawns again
      // right away (one task at a time) keeps the handle ref'd without two native calls per task.
      if (this.refd && !this.unrefQueued && this.quiesceWaiters.length === 0) {
        this.unrefQueued = true;
        queueMicrotask(() => {
          this.unrefQueued = false;
          if (this.refd && this.endpoint.pending.size === 0 && !this.destroyed) {
            this.refd = false;
            this.b.ref(this.rt, false);
          }
        });
      }
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
    if (this.quiesceWaiters.length && !this.destroyed && this.b.live(this.rt) === 0) {
      const waiters = this.quiesceWaiters;
      this.quiesceWaiters = [];
      for (const w of waiters) w();
    }
    if ((this.full || this.roomWaiters.length) && !this.destroyed && this.b.queued(this.rt) < this.maxQueue) {
      this.full = false;
      const waiters = this.roomWaiters;
      this.roomWaiters = [];
      for (const w of waiters) w();
      this.emit('drain');
    }
  }

  private keepAlive(): void {
    if (!this.refd) {
      this.refd = true;
      this.b.ref(this.rt, true);
    }
  }

  // The main thread's submit step of the one spawn path (spawn.ts): root tasks into the shared queues.
  private readonly target: SpawnTarget;


  /**
   * Runs task `name` (an export of the task module) with `args` on some P and resolves with its
   * (awaited) return value. Arguments and result are structured-cloned (fast path for plain data;
   * SharedArrayBuffers shared; `transfer` moves ArrayBuffers).
   */
  spawn<T = unknown>(name: string, args: readonly unknown[] = [], options: SpawnOptions = {}): Promise<T> {
    return spawnOne(this.target, name, args, options) as Promise<T>;
  }

  /**
   * Spawns `name` once per argument list as one batch (one native call and one queue operation
   * per batch instead of per task). Returns one promise per task, in order.
   */
  spawnMany<T = unknown>(name: string, argsList: readonly (readonly unknown[])[], options: { node?: number | 'auto' } = {}): Promise<T>[] {
    return spawnBatch(this.target, name, argsList, options) as Promise<T>[];
  }

  /** Resolves when the queue has room again (immediately if it has). */
  waitForRoom(): Promise<void> {
    if (this.destroyed || this.b.queued(this.rt) < this.maxQueue) return Promise.resolve();
    this.full = true;
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /** Scheduler statistics: the core's counters and histograms for JS tasks, per P and per node. */
  stats(): RuntimeStatsSnapshot {
    if (this.destroyed) throw codedError(ErrorCodes.RUNTIME_CLOSED, 'the runtime is destroyed');
    const s = this.b.stats(this.rt) as RuntimeStatsSnapshot;
    s.workers.forEach((w, i) => {
      w.threadId = this.slots[i]?.worker?.threadId ?? -1;
      w.restarts = this.slots[i]?.restarts ?? 0;
    });
    s.pending = this.endpoint.pending.size;
    return s;
  }

  /** Refuses new spawns, waits for every queued and running task (nested ones too), then stops the workers. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.refusing = true;
    this.closing = (async () => {
      if (this.endpoint.pending.size > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      // Fire-and-forget tasks spawned inside tasks have no promise here: the addon tells this
      // thread when its live count reaches 0 (an empty completion batch).
      if (!this.destroyed && this.b.notifyIdle(this.rt) > 0) {
        this.keepAlive();  // the wait keeps the process up, as pending spawns do
        await new Promise<void>((resolve) => this.quiesceWaiters.push(resolve));
      }
      await this.stop(stoppedWhileRunning, droppedBeforeStart);  // nothing is pending by now
    })();
    return this.closing;
  }

  /**
   * Stops at once: the workers are terminated and queued tasks dropped. A task that completed
   * settles with its result; one that was running, or never started, rejects with an AbortError.
   */
  destroy(): Promise<void> {
    this.refusing = true;
    return this.stop(stoppedWhileRunning, droppedBeforeStart);
  }

  // Terminates every worker, then has the addon drop what is still queued and deliver the
  // completions already queued for this thread (tasks that were running come back as exited:
  // they reject with exited()); what is still pending then never started: dropped(). Idempotent.
  private stop(exited: () => Error, dropped: () => Error): Promise<void> {
    this.stopping ??= (async () => {
      this.destroyed = true;
      this.endpoint.exitedError = exited;
      // Workers are unref'd once ready, and terminate()'s own ref() does not always hold one
      // that is already on its way out (a crash): the event loop could run empty during this
      // await and the process end in the middle of it, the caller's code after it never run.
      const keepUp = setInterval(() => {}, 2 ** 30);
      try {
        await Promise.all(
          this.slots.map(async (s) => {
            const w = s.worker;
            s.worker = undefined;
            if (w) await w.terminate();
          }),
        );
      } finally {
        clearInterval(keepUp);
      }
      try {
        this.b.destroy(this.rt);
      } finally {
        sabRegistry().unwatch(this.endpoint);
        const pending = [...this.endpoint.pending.values()];
        this.endpoint.pending.clear();
        for (const e of pending) {
          e.dispose?.();
          e.reject(dropped());
        }
        const waiters = this.idleWaiters.concat(this.roomWaiters, this.quiesceWaiters);
        this.idleWaiters = [];
        this.quiesceWaiters = [];
        this.roomWaiters = [];
        for (const w of waiters) w();
      }
    })();
    return this.stopping;
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

/** One worker of a JS runtime: the core's per-P counters plus what the JS runtime knows. */
export interface WorkerStatsSnapshot extends WorkerStats {
  /** worker_threads threadId of the P's isolate (-1 while it restarts). */
  threadId: number;
  /** Times this P's isolate was replaced after it died. */
  restarts: number;
  /** An isolate is attached to the P right now. */
  attached: boolean;
  /** busyNs over the runtime's lifetime (0..1): time spent inside task functions. */
  utilization: number;
}

/** Per-task counts of a JS runtime (root and nested spawns). */
export interface JsTaskCounts {
  /** Spawned and not yet settled (queued or running). */
  live: number;
  /** Root spawns waiting in the queues (what maxQueue bounds). */
  queued: number;
  completed: number;
  failed: number;
  /** Rejected with ERR_HWSQ_WORKER_EXITED because their worker died. */
  workerExited: number;
  /** Removed from a queue by an AbortSignal. */
  cancelled: number;
  /** Nested tasks run later because their P was busy. */
  deferred: number;
}

/**
 * `Runtime.stats()`: the scheduler snapshot (same shape as NativeRuntime.stats(); `latency` is
 * spawn -> start in a worker, `runTime` the synchronous run time of task functions, an async
 * task's time until its first await) plus JS-task counts.
 */
export interface RuntimeStatsSnapshot extends SchedulerStats {
  workers: WorkerStatsSnapshot[];
  tasks: JsTaskCounts;
  /** Runtime lifetime so far. */
  elapsedNs: number;
  /** Spawn promises of this thread not settled yet. */
  pending: number;
}
