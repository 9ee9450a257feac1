// forkPerNode: one node:cluster worker per NUMA node, each confined to its node's CPUs and
// memory from its first instruction (see nodes.ts), with HWSQ_NUMA_NODE set. HTTP servers in
// the workers share one port, as with any cluster.
import cluster, { type Worker } from 'node:cluster';
import { EventEmitter } from 'node:events';
import { ErrorCodes, codedError, rangeError, typeError } from '../core/errors';
import { NUMA_NODE_ENV, numaNodeFromEnv } from './env';
import { memoryPolicyEffective, perNodeTargets, type PerNodeMemory } from './nodes';
import { Supervisor, type SupervisedExit } from './supervisor';

export type { PerNodeMemory } from './nodes';

export interface ForkPerNodeOptions {
  /** NUMA nodes to fork a worker on (default: every node with CPUs this process may use). */
  nodes?: readonly number[];
  /** 'bind' (default): a worker allocates only on its node; 'preferred': its node first. */
  memory?: PerNodeMemory;
  /** Fork again for a worker that dies with a non-zero code or a signal (default false). */
  restart?: boolean;
  /** Restarts per node before it is left down (default 5); a worker up for 30 s starts a fresh count. */
  maxRestarts?: number;
  /** Added to the workers' environment (process.env is inherited). */
  env?: Readonly<Record<string, string>>;
}

/** The end of a worker (or a failed fork). */
export type PerNodeExit = SupervisedExit;

export interface PerNodeCloseOptions {
  /** How long workers may take to disconnect before they are killed (default 10000 ms). */
  timeoutMs?: number;
}

export interface PerNodeEvents {
  /** A worker started (a restart too). */
  online: [node: number, worker: Worker];
  /** A worker ended; `willRestart` says whether another is forked for its node. */
  exit: [exit: PerNodeExit];
  /** No worker runs and none will be restarted; `status` is the worst exit status (0: all fine). */
  done: [status: number];
}

/**
 * What forkPerNode returns. In the primary: the workers and their events. In a worker: its node.
 */
export class PerNodeCluster extends EventEmitter<PerNodeEvents> {
  readonly isPrimary: boolean;
  /** In a worker: the NUMA node it runs on. In the primary: undefined. */
  readonly node: number | undefined;
  /** The nodes that have (or had) a worker; in a worker, its own node. */
  readonly nodes: readonly number[];
  readonly #workers: Map<number, Worker>;
  readonly #supervisor: Supervisor | undefined;
  #closing: Promise<void> | undefined;
  #status: number | undefined;

  /** @internal use forkPerNode() */
  constructor(supervisor: Supervisor | undefined, workers: Map<number, Worker>, nodes: readonly number[], node: number | undefined) {
    super();
    this.#workers = workers;
    this.isPrimary = supervisor !== undefined;
    this.node = node;
    this.nodes = Object.freeze([...nodes]);
    this.#supervisor = supervisor;
    supervisor?.on('exit', (exit: PerNodeExit) => {
      this.#workers.delete(exit.node);
      this.emit('exit', exit);
    });
    supervisor?.once('done', (status: number) => {
      this.#status = status;
      if (active === this) active = undefined;
      this.emit('done', status);
    });
  }

  /** The running worker of each node (primary only; empty in a worker). */
  get workers(): ReadonlyMap<number, Worker> {
    return this.#workers;
  }

  /** The worst exit status once 'done' was emitted, else undefined. */
  get status(): number | undefined {
    return this.#status;
  }

  /**
   * Primary: stops restarting, disconnects every worker (its servers stop accepting, it exits
   * when idle), kills those still running after `timeoutMs`, and resolves once all have exited.
   * Worker: disconnects this worker from the primary (it exits when idle).
   */
  close(options: PerNodeCloseOptions = {}): Promise<void> {
    if (options === null || typeof options !== 'object') throw typeError(ErrorCodes.INVALID_ARG_TYPE, 'options must be an object');
    const timeoutMs = options.timeoutMs ?? 10_000;
    if (typeof timeoutMs !== 'number') throw typeError(ErrorCodes.INVALID_ARG_TYPE, `timeoutMs must be a number, got type ${typeof timeoutMs}`);
    if (!(timeoutMs >= 0) || !Number.isFinite(timeoutMs)) throw rangeError(ErrorCodes.INVALID_OPTION, `timeoutMs must be a finite number >= 0, got ${timeoutMs}`);
    if (this.#closing) return this.#closing;
    const supervisor = this.#supervisor;
    if (!supervisor) {
      this.#closing = new Promise((resolve) => {
        const worker = cluster.worker;
        if (!worker || !worker.isConnected()) return resolve();
        worker.process.once('disconnect', () => resolve());
        worker.disconnect();
      });
      return this.#closing;
    }
    this.#closing = new Promise((resolve) => {
      if (this.#status !== undefined) return resolve();
      const timer = setTimeout(() => {
        for (const w of this.#workers.values()) w.process.kill('SIGKILL');
      }, timeoutMs);
      this.once('done', () => {
        clearTimeout(timer);
        resolve();
      });
      supervisor.stop();
      for (const w of this.#workers.values()) {
        if (w.isConnected()) w.disconnect();
        else w.process.kill('SIGTERM');
      }
    });
    return this.#closing;
  }
}

let active: PerNodeCluster | undefined;

function normalize(options: unknown): Required<Omit<ForkPerNodeOptions, 'nodes'>> & Pick<ForkPerNodeOptions, 'nodes'> {
  if (options === undefined) options = {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw typeError(ErrorCodes.INVALID_ARG_TYPE, 'options must be an object');
  const o = options as ForkPerNodeOptions;
  const memory = o.memory ?? 'bind';
  if (memory !== 'bind' && memory !== 'preferred') throw rangeError(ErrorCodes.INVALID_OPTION, `memory must be 'bind' or 'preferred', got ${String(memory)}`);
  const restart = o.restart ?? false;
  if (typeof restart !== 'boolean') throw typeError(ErrorCodes.INVALID_ARG_TYPE, `restart must be a boolean, got type ${typeof restart}`);
  const maxRestarts = o.maxRestarts ?? 5;
  if (typeof maxRestarts !== 'number') throw typeError(ErrorCodes.INVALID_ARG_TYPE, `maxRestarts must be a number, got type ${typeof maxRestarts}`);
  if (!Number.isSafeInteger(maxRestarts) || maxRestarts < 0) throw rangeError(ErrorCodes.INVALID_OPTION, `maxRestarts must be a non-negative integer, got ${maxRestarts}`);
  const env = o.env ?? {};
  if (env === null || typeof env !== 'object' || Array.isArray(env)) throw typeError(ErrorCodes.INVALID_ARG_TYPE, 'env must be an object of strings');
  for (const [k, v] of Object.entries(env)) {
    if (typeof v !== 'string') throw typeError(ErrorCodes.INVALID_ARG_TYPE, `env.${k} must be a string, got type ${typeof v}`);
  }
  if (o.nodes !== undefined && !Array.isArray(o.nodes)) throw typeError(ErrorCodes.INVALID_ARG_TYPE, 'nodes must be an array of NUMA node ids');
  return { nodes: o.nodes, memory, restart, maxRestarts, env };
}

/**
 * In the cluster primary: forks one worker per NUMA node (`options.nodes`, default every node
 * with CPUs this process may use), each started with its CPU affinity and memory policy already
 * set to its node and HWSQ_NUMA_NODE in its environment, and returns the handle to watch and
 * close them. In a worker forked this way: returns a handle whose `node` is the worker's node.
 *
 * Options are checked before anything is forked (TypeError/RangeError with a stable code).
 * Workers run `cluster.settings.exec` (default: this script), so call `cluster.setupPrimary()`
 * first to fork another file. Only one set of workers at a time (ERR_HWSQ_INVALID_STATE).
 */
export function forkPerNode(options?: ForkPerNodeOptions): PerNodeCluster {
  const o = normalize(options);
  if (!cluster.isPrimary) {
    const node = numaNodeFromEnv();
    if (node === undefined) throw codedError(ErrorCodes.INVALID_STATE, `forkPerNode() in a cluster worker that forkPerNode did not start (${NUMA_NODE_ENV} is not set)`);
    return new PerNodeCluster(undefined, new Map(), [node], node);
  }
  if (active) throw codedError(ErrorCodes.INVALID_STATE, 'forkPerNode() already has workers running; close() them first');
  const targets = perNodeTargets(o.nodes, o.memory);
  if (!memoryPolicyEffective()) process.emitWarning('this kernel refuses memory policies (set_mempolicy): the workers are only pinned to their nodes\' CPUs', { code: 'HWSQ_NO_MEMPOLICY' });
  const workers = new Map<number, Worker>();
  const supervisor = new Supervisor({
    targets,
    restart: o.restart,
    maxRestarts: o.maxRestarts,
    start: (target) => {
      const worker = cluster.fork({ ...o.env, [NUMA_NODE_ENV]: String(target.node) });
      workers.set(target.node, worker);
      worker.once('online', () => handle.emit('online', target.node, worker));
      // The Worker re-emits its process's 'error' (a failed fork): the supervisor reports that
      // as an exit; without a listener here it would be thrown.
      worker.on('error', () => {});
      return worker.process;
    },
  });
  const handle = new PerNodeCluster(supervisor, workers, targets.map((t) => t.node), undefined);
  active = handle;
  supervisor.start();
  return handle;
}
