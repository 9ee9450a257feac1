// Bootstrap of one P's worker isolate (dist/worker.js). Waits for its init message, loads the
// task module, catches up on the SharedArrayBuffers announced so far (sab.ts), attaches to the P
// (the addon pins this thread to the P's CPUs), then lives in its event loop: the addon calls
// `dispatch` for each task the core hands to this P.
//
// Task code may be hostile: it may throw or return anything (Proxies whose traps throw, revoked
// Proxies, getters that throw, thenables that misbehave), replace globals, export getters that
// throw. Whatever it does, only its own task fails: dispatch and the completion path never let
// an exception reach the addon (that would stop this worker and reject every task running on it
// with ERR_HWSQ_WORKER_EXITED). A task that exits the thread (process.exit()), runs out of heap
// or never returns takes its worker with it (the runtime replaces it); that cannot be caught.
import { parentPort, threadId, type MessagePort } from 'node:worker_threads';
import { asMoved, cloneError, describeThrown, encodeError, encodeValue, decodeValue } from '../core/codec';
import { jsBinding, Endpoint } from './endpoint';
import { spawnBatch, spawnOne, type SpawnTarget } from './spawn';
import { MemoryTally } from '../numa/memory-affinity';
import { Flags, Result, errorResult } from '../core/wire';
import { WORKER_HOOKS, type TaskContext, type WorkerHooks } from './task';
import { ErrorCodes, typeError } from '../core/errors';
import { SafeAbortController, SafeError, SafeMap, SafePromise, SafeUint8Array, nextTick, objectKeys, promiseThen, rejected } from '../core/intrinsics';
import { sabRegistry, type SabEntry } from './sab';

/** The message that boots a worker (runtime.ts startWorker). */
export interface InitMessage {
  kind: 'hwsq:init';
  /** This bootstrap's own channel to the runtime's thread (task code posts on parentPort). */
  control: MessagePort;
  runtimeId: number;
  worker: number;
  url: string;
  /** The runtime's memoryAffinity option, and memory node -> node with Ps (node: 'auto'). */
  memoryAffinity: boolean;
  nearest: [number, number][];
}

type TaskFn = (...args: unknown[]) => unknown;

// A CJS bundle would turn import() into require(); this keeps a real dynamic import (ESM + CJS).
const dynamicImport = new Function('u', 'return import(u)') as (u: string) => Promise<Record<string, unknown>>;

// The task table: exports that are functions. An export that cannot be read (a getter or Proxy
// trap that throws) is not a task.
function collect(mod: Record<string, unknown>): { names: string[]; fns: TaskFn[]; nonFunctions: string[] } {
  const table = new SafeMap<string, unknown>();
  const take = (o: object, skip: (k: string) => boolean): void => {
    let keys: string[] = [];
    try {
      keys = objectKeys(o);
    } catch {}
    for (const k of keys) {
      if (skip(k)) continue;
      try {
        table.set(k, (o as Record<string, unknown>)[k]);
      } catch {
        table.set(k, undefined);
      }
    }
  };
  take(mod, (k) => k === 'module.exports');
  // CJS: module.exports's own properties are the tasks even when the ESM wrapper could not see them.
  let def: unknown;
  try {
    def = mod.default;
  } catch {}
  if (def && typeof def === 'object') take(def, (k) => table.has(k));
  const names = [...table.keys()].filter((k) => typeof table.get(k) === 'function').sort();
  const nonFunctions = [...table.keys()].filter((k) => typeof table.get(k) !== 'function');
  return { names, fns: names.map((n) => table.get(n) as TaskFn), nonFunctions };
}

function errorMessage(err: unknown): { message: string; stack?: string; code?: string } {
  const message = describeThrown(err);
  try {
    if (err instanceof SafeError) {
      const { stack, code } = err as { stack?: unknown; code?: unknown };
      return { message, stack: typeof stack === 'string' ? stack : undefined, code: typeof code === 'string' ? code : undefined };
    }
  } catch {}
  return { message };
}

/**
 * Asks the runtime's thread for the SharedArrayBuffers announced before this thread listened;
 * `post` is the control port's postMessage, bound before any task code ran.
 */
function catchUpOnSharedBuffers(control: MessagePort, post: (msg: unknown) => void): Promise<void> {
  return new SafePromise((resolve) => {
    control.once('message', (msg: { entries?: SabEntry[] }) => {
      sabRegistry().adopt(msg.entries ?? []);
      resolve();
    });
    post({ kind: 'hwsq:sab-sync' });
  });
}

async function boot(init: InitMessage): Promise<void> {
  const b = jsBinding();
  const control = init.control;
  const post = control.postMessage.bind(control) as (msg: unknown) => void;
  sabRegistry().listen();  // first: announcements from now on reach this thread (sab.ts)
  // Asked before the task module loads (that code can change what a later call would use).
  const caughtUp = catchUpOnSharedBuffers(control, post);
  // Node 22+ builds the BroadcastChannel's MessageEvent from undici, loaded on the first message:
  // load it now, before the task module can replace the globals undici's start-up code uses
  // (JSON, Map, String, ...); loaded later, that code throws and takes this thread down.
  void globalThis.MessageEvent;
  const endpoint = new Endpoint();
  let mod: Record<string, unknown>;
  try {
    mod = await dynamicImport(init.url);
  } catch (err) {
    post({ kind: 'hwsq:load-error', ...errorMessage(err) });
    return;
  }
  const { names, fns, nonFunctions } = collect(mod);
  endpoint.setNames(names, nonFunctions);
  await caughtUp;
  const io = endpoint.w;
  const aborts = new SafeMap<number, AbortController>();
  let place = { node: -1, cpus: [] as number[] };
  let current: { handle: number; ctx: TaskContext | undefined } | undefined;
  const neverAborted = new SafeAbortController().signal;
  // Set right before a task's function is called; the addon clears it before each dispatch. When
  // the dispatch fails because this thread is dying, it tells a task that never started (the
  // addon queues it again for another P) from one that did (it reports it exited).
  const started = new SafeUint8Array(1);

  // Encodes a result into io; returns the dispatcher code (len, or errorResult(len)). A result too
  // big for io is completed here with its own buffer (Result.COMPLETED_BY_JS). Never throws.
  const encodeResult = (handle: number, ok: boolean, value: unknown, pending: boolean): number => {
    io.reset();
    if (ok) {
      try {
        const moved = asMoved(value);
        if (moved) encodeValue(io, moved.value, moved.transfer);
        else encodeValue(io, value);
      } catch (err) {
        io.reset();
        ok = false;
        value = err;  // a TypeError ERR_HWSQ_DATA_CLONE: the result cannot be sent back
      }
    }
    if (!ok) encodeError(io, value);
    if (io.sabs.length) io.sabs = [];  // a result's SABs need no holding here (sab.ts: the receiver defers releases)
    const len = io.pos;
    const code = ok ? len : errorResult(len);
    if (io.spilled) {
      try {
        b.complete(handle, code, pending, io.buf.subarray(0, len));
      } catch {}
      return Result.COMPLETED_BY_JS;
    }
    return code;
  };

  // How a task ends, for the dispatcher's return value (sync) or complete() (async).
  const outcome = (handle: number, seq: number, flags: number, ok: boolean, value: unknown, pending: boolean): number => {
    aborts.delete(handle);
    if (flags & Flags.LOCAL) {
      endpoint.settleLocal(seq, ok, ok ? (asMoved(value)?.value ?? value) : value);
      return Result.SETTLED_LOCALLY;
    }
    return encodeResult(handle, ok, value, pending);
  };

  const finishAsync = (handle: number, seq: number, flags: number, ok: boolean, value: unknown): void => {
    try {
      const code = outcome(handle, seq, flags, ok, value, true);
      if (code !== Result.COMPLETED_BY_JS) b.complete(handle, code, true);
    } catch {}  // the addon refused (the worker is going away): its teardown reports the task
  };

  const dispatch = (handle: number, fnIndex: number, len: number, seq: number, flags: number, big?: Buffer): number => {
    let result: unknown;
    const prev = current;
    try {
      const args = (flags & Flags.BUFFER ? decodeValue(big!, 0, big!.length) : decodeValue(endpoint.inBuf, 0, len)) as unknown[];
      const fn = fns[fnIndex];
      if (typeof fn !== 'function') throw typeError(ErrorCodes.TASK_NOT_FUNCTION, `no task ${fnIndex} in the task module of this worker`);
      if (flags & Flags.ABORTABLE) aborts.set(handle, new SafeAbortController());
      current = { handle, ctx: undefined };
      started[0] = 1;  // from here on, a call that fails (this thread dying) ran the task
      result = fn(...args);
    } catch (err) {
      current = prev;
      return outcome(handle, seq, flags, false, err, false);
    }
    current = prev;
    let thenable = false;
    try {
      thenable = result !== null && (typeof result === 'object' || typeof result === 'function') && typeof (result as PromiseLike<unknown>).then === 'function';
    } catch (err) {
      // Its `then` cannot even be read (a getter or Proxy trap that throws, a revoked Proxy).
      return outcome(handle, seq, flags, false, cloneError(`the task returned a value that cannot be inspected: ${describeThrown(err)}`, err), false);
    }
    if (thenable) {
      // Adopted by a promise of our own: it settles once and later, whatever the thenable does
      // (calls both callbacks, calls one twice or synchronously, throws from then()).
      const adopted = new SafePromise<unknown>((resolve) => resolve(result));
      promiseThen.call(
        adopted,
        (v: unknown) => finishAsync(handle, seq, flags, true, v),
        (e: unknown) => finishAsync(handle, seq, flags, false, e),
      );
      return Result.PENDING;
    }
    return outcome(handle, seq, flags, true, result, false);
  };

  const safeDispatch: typeof dispatch = (...a) => {
    try {
      return dispatch(...a);
    } catch (err) {
      // Only a bug of ours gets here; the task still fails alone.
      return encodeResult(a[0], false, err, false);
    }
  };

  const onAbort = (handle: number): void => {
    const ctl = aborts.get(handle);
    if (ctl) {
      aborts.delete(handle);
      try {
        ctl.abort();
      } catch (err) {
        // An abort listener of the task threw: that is the task's problem, reported like a
        // throw in its own callback would be.
        nextTick(() => {
          throw err;
        });
      }
    }
  };

  // A task's submit step of the one spawn path (spawn.ts): children onto this P's local queue.
  // The addon checks a node without Ps (same code as the main thread) before queuing.
  const target: SpawnTarget = {
    endpoint,
    memoryAffinity: init.memoryAffinity,
    tally: new MemoryTally(new SafeMap(init.nearest)),
    closed: () => false,  // the addon refuses (handle 0) once the runtime stops
    submit: (fn, seq, len, flags, node, big) => (big ? b.spawn(fn, seq, len, flags, node, big) : b.spawn(fn, seq, len, flags, node)),
    submitMany: (count) => b.spawnMany(count),
    cancel: (handle) => b.cancelChild(handle),
  };

  const hooks: WorkerHooks = {
    spawn: (name, args, options) => spawnOne(target, name, args, options),
    spawnMany: (name, argsList, options) => spawnBatch(target, name, argsList, options),
    current() {
      const c = current;
      if (!c) return undefined;
      if (!c.ctx) {
        const signal = aborts.get(c.handle)?.signal ?? neverAborted;
        c.ctx = { signal, worker: init.worker, node: place.node, cpus: place.cpus };
      }
      return c.ctx;
    },
  };
  (globalThis as { [WORKER_HOOKS]?: WorkerHooks })[WORKER_HOOKS] = hooks;

  try {
    place = b.attach(init.runtimeId, init.worker, safeDispatch, endpoint.onCompletions, onAbort, endpoint.inBuf, endpoint.io, started, threadId);
  } catch (err) {
    post({ kind: 'hwsq:load-error', ...errorMessage(err) });
    return;
  }
  post({ kind: 'hwsq:ready', names, nonFunctions });
}

parentPort?.once('message', (msg: InitMessage) => {
  if (msg?.kind === 'hwsq:init') void boot(msg);
});
