// Bootstrap of one P's worker isolate (dist/worker.js). Waits for its init message, loads the
// task module, attaches to the P (the addon pins this thread to the P's CPUs), then lives in
// its event loop: the addon calls `dispatch` for each task the core hands to this P.
import { parentPort } from 'node:worker_threads';
import { asMoved, encodeError, encodeValue, decodeValue } from './codec';
import { Flags, jsBinding, Origin, type SpawnOptions } from './origin';
import { WORKER_HOOKS, type TaskContext, type WorkerHooks } from './task';
import { sabRegistry } from './sab';
import { argsListOf, argsOf, rejectionCount, spawnManyOptions, spawnOptions } from './validation';

interface Init {
  kind: 'hwsq:init';
  runtimeId: number;
  worker: number;
  url: string;
}

type TaskFn = (...args: unknown[]) => unknown;

// A CJS bundle would turn import() into require(); this keeps a real dynamic import (ESM + CJS).
const dynamicImport = new Function('u', 'return import(u)') as (u: string) => Promise<Record<string, unknown>>;

function collect(mod: Record<string, unknown>): { names: string[]; fns: TaskFn[]; nonFunctions: string[] } {
  const table = new Map<string, unknown>();
  for (const [k, v] of Object.entries(mod)) if (k !== 'module.exports') table.set(k, v);
  // CJS: module.exports's own properties are the tasks even when the ESM wrapper could not see them.
  const def = mod.default;
  if (def && typeof def === 'object') {
    for (const [k, v] of Object.entries(def as Record<string, unknown>)) if (!table.has(k)) table.set(k, v);
  }
  const names = [...table.keys()].filter((k) => typeof table.get(k) === 'function').sort();
  const nonFunctions = [...table.keys()].filter((k) => typeof table.get(k) !== 'function');
  return { names, fns: names.map((n) => table.get(n) as TaskFn), nonFunctions };
}

function errorMessage(err: unknown): { message: string; stack?: string; code?: string } {
  if (err instanceof Error) return { message: err.message, stack: err.stack, code: (err as { code?: string }).code };
  return { message: String(err) };
}

async function boot(init: Init): Promise<void> {
  const b = jsBinding();
  const origin = new Origin();
  let mod: Record<string, unknown>;
  try {
    mod = await dynamicImport(init.url);
  } catch (err) {
    parentPort!.postMessage({ kind: 'hwsq:load-error', ...errorMessage(err) });
    return;
  }
  sabRegistry().listen();
  const { names, fns, nonFunctions } = collect(mod);
  origin.setNames(names, nonFunctions);
  const io = origin.w;
  const aborts = new Map<number, AbortController>();
  let place = { node: -1, cpus: [] as number[] };
  let current: { handle: number; ctx: TaskContext | undefined } | undefined;
  const neverAborted = new AbortController().signal;

  // Encodes a result into io; returns the dispatcher code (len, or -2-len for an error). A result
  // too big for io is completed here with its own buffer (-4: already completed).
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
        value = err;
      }
    }
    if (!ok) encodeError(io, value);
    const len = io.pos;
    const code = ok ? len : -2 - len;
    if (io.spilled) {
      b.complete(handle, code, pending, io.buf.subarray(0, len));
      return -4;
    }
    return code;
  };

  const finishAsync = (handle: number, seq: number, flags: number, ok: boolean, value: unknown): void => {
    aborts.delete(handle);
    if (flags & Flags.LOCAL) {
      origin.settleLocal(seq, ok, asMoved(value)?.value ?? value);
      b.complete(handle, -3, true);
      return;
    }
    const code = encodeResult(handle, ok, value, true);
    if (code !== -4) b.complete(handle, code, true);
  };

  const dispatch = (handle: number, fnIndex: number, len: number, seq: number, flags: number, big?: Buffer): number => {
    let result: unknown;
    let ctl: AbortController | undefined;
    const prev = current;
    try {
      const args = (flags & Flags.BUFFER ? decodeValue(big!, 0, big!.length) : decodeValue(origin.inBuf, 0, len)) as unknown[];
      if (flags & Flags.ABORTABLE) {
        ctl = new AbortController();
        aborts.set(handle, ctl);
      }
      current = { handle, ctx: undefined };
      result = fns[fnIndex]!(...args);
    } catch (err) {
      current = prev;
      aborts.delete(handle);
      if (flags & Flags.LOCAL) {
        origin.settleLocal(seq, false, err);
        return -3;
      }
      return encodeResult(handle, false, err, false);
    }
    current = prev;
    if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
      (result as PromiseLike<unknown>).then(
        (v) => finishAsync(handle, seq, flags, true, v),
        (e) => finishAsync(handle, seq, flags, false, e),
      );
      return -1;
    }
    if (ctl) aborts.delete(handle);
    if (flags & Flags.LOCAL) {
      origin.settleLocal(seq, true, asMoved(result)?.value ?? result);
      return -3;
    }
    return encodeResult(handle, true, result, false);
  };

  const onAbort = (handle: number): void => {
    const ctl = aborts.get(handle);
    if (ctl) {
      aborts.delete(handle);
      ctl.abort();
    }
  };

  const hooks: WorkerHooks = {
    spawn(name, args, options: SpawnOptions) {
      let fn: number, node: number, len: number, signal: AbortSignal | undefined;
      try {
        // Checked before anything is queued (validation.ts); the addon refuses a node without Ps.
        const o = spawnOptions(options);
        ({ node, signal } = o);
        fn = origin.lookup(name);
        len = origin.encodeArgs(argsOf(args), o.transfer);
      } catch (err) {
        return Promise.reject(err);
      }
      const seq = ++origin.seq;
      const flags = signal ? Flags.ABORTABLE : 0;
      let handle: number;
      try {
        handle = io.spilled ? b.spawn(fn, seq, len, flags, node, io.buf.subarray(0, len)) : b.spawn(fn, seq, len, flags, node);
      } catch (err) {
        return Promise.reject(err);
      }
      const { promise, entry } = origin.track(seq, handle);
      if (signal) origin.wireAbort(seq, entry, signal, (h) => b.cancelChild(h));
      return promise;
    },
    spawnMany(name, argsList, options) {
      let fn: number, node: number, lists: unknown[][];
      try {
        lists = argsListOf(argsList);
        node = spawnManyOptions(options);
        fn = origin.lookup(name);
      } catch (err) {
        return Array.from({ length: rejectionCount(argsList) }, () => Promise.reject(err));
      }
      let submitted = 0;
      let seqs: number[];
      try {
        seqs = origin.encodeBatch(fn, lists, 0, node, (count) => ((submitted += count), b.spawnMany(count)), (seq, buf) => (submitted++, b.spawn(fn, seq, buf.length, 0, node, buf)));
      } catch (err) {
        // As Runtime.spawnMany: rejections when nothing was queued yet.
        if (submitted === 0) return lists.map(() => Promise.reject(err));
        throw err;
      }
      return seqs.map((seq) => origin.track(seq, 0).promise);
    },
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
    place = b.attach(init.runtimeId, init.worker, dispatch, origin.onCompletions, onAbort, origin.inBuf, origin.io);
  } catch (err) {
    parentPort!.postMessage({ kind: 'hwsq:load-error', ...errorMessage(err) });
    return;
  }
  parentPort!.postMessage({ kind: 'hwsq:ready', names, nonFunctions });
}

parentPort?.once('message', (msg: Init) => {
  if (msg?.kind === 'hwsq:init') void boot(msg);
});
