// What task code imports from 'hwsq' inside a worker: spawn (nested tasks on the current P's
// local queue, like `go f()`), spawnMany, currentTask (signal, P, node) and move (transfer a
// result). The worker bootstrap (worker.ts) installs the implementation on a global symbol so
// that every copy of this module (ESM and CJS builds) in the worker finds it.
import { ErrorCodes, codedError } from '../core/errors';
import type { SpawnOptions } from './endpoint';
import { rejectionCount } from '../core/validation';

export { move } from '../core/codec';

export interface TaskContext {
  /** Aborts when the spawner aborts this task (only for tasks spawned with a signal; otherwise never). */
  readonly signal: AbortSignal;
  /** P index running the task. */
  readonly worker: number;
  /** NUMA node of that P. */
  readonly node: number;
  /** CPUs its thread is pinned to (empty: not pinned). */
  readonly cpus: readonly number[];
}

export interface WorkerHooks {
  spawn(name: string, args: readonly unknown[], options: SpawnOptions): Promise<unknown>;
  spawnMany(name: string, argsList: readonly (readonly unknown[])[], options: { node?: number | 'auto' }): Promise<unknown>[];
  current(): TaskContext | undefined;
}

export const WORKER_HOOKS = Symbol.for('hwsq.worker.hooks');

function hooks(): WorkerHooks | undefined {
  return (globalThis as { [WORKER_HOOKS]?: WorkerHooks })[WORKER_HOOKS];
}

function notInTask(what: string): Error {
  return codedError(ErrorCodes.NOT_IN_TASK, `${what}() is for code running inside an hwsq task; use runtime.${what}() elsewhere`);
}

/** Inside a task: runs task `name` of the same module as a child on this P's local queue (other Ps steal it). */
export function spawn<T = unknown>(name: string, args: readonly unknown[] = [], options: SpawnOptions = {}): Promise<T> {
  const h = hooks();
  if (!h) return Promise.reject(notInTask('spawn'));
  return h.spawn(name, args, options) as Promise<T>;
}

/** Inside a task: spawn for many argument lists as one batch. */
export function spawnMany<T = unknown>(name: string, argsList: readonly (readonly unknown[])[], options: { node?: number | 'auto' } = {}): Promise<T>[] {
  const h = hooks();
  if (!h) return Array.from({ length: rejectionCount(argsList) }, () => Promise.reject(notInTask('spawnMany')));
  return h.spawnMany(name, argsList, options) as Promise<T>[];
}

/** Inside a task (its synchronous part: capture it before the first await): its context. */
export function currentTask(): TaskContext | undefined {
  return hooks()?.current();
}

/** True on a worker thread of an hwsq runtime. */
export function isTaskWorker(): boolean {
  return hooks() !== undefined;
}
