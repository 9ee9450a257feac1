// The JS side of an endpoint (native/napi/js_runtime.cpp): a thread that spawns tasks -- the
// main thread of a Runtime, or a worker spawning nested tasks. It owns the two scratch buffers
// shared with the addon (io: JS -> native arguments/results; in: native -> JS task arguments and
// completion records), the table of pending promises and the task-name table.
//
// The addon calls onCompletions from its uv callback: it never throws (an exception there would
// stop this thread's deliveries); what a listener of ours throws is rethrown on the next tick.
import { decodeError, decodeValue, encodeValue, Writer } from './codec';
import { ErrorCodes, codedError, rangeError, typeError } from './errors';
import { SafeBuffer, SafeMap, SafePromise, SafeSet, SafeError, defineProperty, isArray, nextTick } from './intrinsics';
import { jsBinding, type CompletionsFn } from './js-binding';
import type { MemoryTally } from './memory-affinity';
import { sabRegistry } from './sab';

export { jsBinding } from './js-binding';
export type { JsRuntimeBinding, DispatchFn, CompletionsFn } from './js-binding';

export const IO_BYTES = 256 * 1024;
export const IN_BYTES = 256 * 1024;

/** Task flags shared with the addon. */
export const Flags = { ROOT: 1, ABORTABLE: 2, LOCAL: 1 << 8, BUFFER: 1 << 9, AFFINE_MEMORY: 1 << 16, AFFINE_FALLBACK: 1 << 17 } as const;

/** A node: 'auto' spawn's node and flags: the node the tally chose, or none (-1) and the fallback flag. */
export function autoPlacement(tally: MemoryTally): { node: number; flags: number } {
  const node = tally.choose();
  return node >= 0 ? { node, flags: Flags.AFFINE_MEMORY } : { node: -1, flags: Flags.AFFINE_FALLBACK };
}
/** Completion codes. */
export const Codes = { OK: 0, ERROR: 1, EXITED: 2 } as const;

export interface Pending {
  resolve(value: unknown): void;
  reject(err: unknown): void;
  handle: number;
  dispose?: () => void;
  /** SharedArrayBuffers in the task's arguments: held until it settles, so their ids stay announced (sab.ts). */
  keep?: SharedArrayBuffer[];
}

/** One record of a batch: its seq (0: not submitted), the SharedArrayBuffers its arguments hold, or why it was refused. */
export interface BatchEntry {
  seq: number;
  keep: SharedArrayBuffer[] | undefined;
  error?: unknown;
}

/** Options of one spawn. */
export interface SpawnOptions {
  /**
   * Run on a P of this NUMA node (OS id); 'auto': on the node that holds the memory the task
   * uses in place (its SharedArrayBuffers, allocOnNode memory in `transfer`), else as without a
   * node. Default: the runtime's `memoryAffinity` ('auto' when true), else wherever there is room.
   */
  node?: number | 'auto';
  /** ArrayBuffers to transfer: detached here after their bytes went into the task (node-local memory moves without a copy). */
  transfer?: readonly unknown[];
  /** Aborts the task: a queued one is removed, a running one sees `currentTask().signal` abort. The promise rejects with an AbortError at once. */
  signal?: AbortSignal;
  /** What aborting a running task does: 'signal' (default, cooperative) or 'terminate' its worker (other tasks running there reject with ERR_HWSQ_WORKER_EXITED; queued ones survive). */
  abort?: 'signal' | 'terminate';
}

export function abortError(signal?: AbortSignal, message = 'The operation was aborted'): Error {
  const err = new SafeError(message, { cause: signal?.reason });
  err.name = 'AbortError';
  defineProperty(err, 'code', { value: 'ABORT_ERR', enumerable: true, writable: true, configurable: true });
  return err;
}

export function workerExitedError(): Error {
  return codedError(ErrorCodes.WORKER_EXITED, 'the worker running this task exited (crash, process.exit(), out of memory or terminate)');
}

/** Rethrows outside the addon's callback, as an uncaught exception (what an EventEmitter listener's throw would be). */
function rethrowLater(err: unknown): void {
  nextTick(() => {
    throw err;
  });
}

export class Origin {
  readonly io = SafeBuffer.alloc(IO_BYTES);
  readonly inBuf = SafeBuffer.alloc(IN_BYTES);
  readonly w = new Writer(this.io);
  readonly pending = new SafeMap<number, Pending>();
  seq = 0;
  private names = new SafeMap<string, number>();
  private nonFunctions = new SafeSet<string>();
  /** Called after each batch of completions (main: unref / drain bookkeeping). */
  afterCompletions: () => void = () => {};
  /** The rejection of a task whose worker went away while it ran (Runtime.destroy() makes it an AbortError). */
  exitedError: () => Error = workerExitedError;

  constructor() {
    sabRegistry().watch(this);
  }

  setNames(names: readonly string[], nonFunctions: readonly string[]): void {
    this.names = new SafeMap(names.map((n, i) => [n, i]));
    this.nonFunctions = new SafeSet(nonFunctions);
  }
  get taskNames(): string[] {
    return [...this.names.keys()];
  }

  /** Index of the task function `name`; throws the typed error for an unknown / non-function export. */
  lookup(name: string): number {
    const i = this.names.get(name);
    if (i !== undefined) return i;
    if (typeof name !== 'string') throw typeError(ErrorCodes.INVALID_ARG_TYPE, `task name must be a string, got ${typeof name}`);
    if (this.nonFunctions.has(name)) throw typeError(ErrorCodes.TASK_NOT_FUNCTION, `export '${name}' of the task module is not a function`);
    throw rangeError(ErrorCodes.UNKNOWN_TASK, `the task module has no export '${name}' (tasks: ${[...this.names.keys()].join(', ') || 'none'})`);
  }

  /**
   * Encodes an argument list into io (from 0). Returns the byte length; w.spilled says it is in
   * w.buf instead, and w.sabs lists the SharedArrayBuffers the task's entry must hold.
   */
  encodeArgs(args: readonly unknown[], transfer?: readonly unknown[], tally?: MemoryTally): number {
    if (!isArray(args)) throw typeError(ErrorCodes.INVALID_ARG_TYPE, 'args must be an array');
    this.w.reset();
    if (tally) {
      tally.reset();
      this.w.memory = tally;  // encodeValue tells it of the memory used in place, then unsets it
    }
    encodeValue(this.w, args, transfer);
    return this.w.pos;
  }
  /** The SharedArrayBuffers of the arguments just encoded, for track() (the writer lets go of them). */
  takeSabs(): SharedArrayBuffer[] | undefined {
    const sabs = this.w.sabs;
    this.w.sabs = [];
    return sabs.length ? sabs : undefined;
  }

  /**
   * Batch submission, all or nothing: encodes one record per argument list (first all of them,
   * so that a list that does not clone refuses the whole batch with nothing queued), then copies
   * them into io and calls flush(count) whenever io is full (and at the end); a record too big for
   * io goes alone through single(). With a tally (node: 'auto'), each record gets the node of its
   * own arguments' memory (or none) and its AFFINE_* flag. Returns each task's seq (0: refused by flush/single, i.e.
   * closed), or, when a list was not an array or did not clone, that error for every entry.
   */
  encodeBatch(
    fn: number,
    argsList: readonly (readonly unknown[])[],
    flags: number,
    node: number,
    flush: (count: number) => number,
    single: (seq: number, buf: Buffer, node: number, flags: number) => number,
    tally?: MemoryTally,
  ): BatchEntry[] {
    if (node > 0x7fffffff) throw rangeError(ErrorCodes.UNKNOWN_NODE, `no node ${node}`);
    const w = this.w;
    const starts: number[] = [];  // each record's header offset in w.buf; the payload follows it
    const keeps: (SharedArrayBuffer[] | undefined)[] = [];
    w.reset();
    for (const args of argsList) {
      const at = w.pos;
      try {
        if (!isArray(args)) throw typeError(ErrorCodes.INVALID_ARG_TYPE, 'every element of argsList must be an array');
        w.ensure(24);
        w.pos += 24;
        if (tally) {
          tally.reset();
          w.memory = tally;
        }
        encodeValue(w, args);
      } catch (err) {
        w.reset();
        w.sabs = [];
        return argsList.map(() => ({ seq: 0, keep: undefined, error: err }));
      }
      keeps.push(this.takeSabs());
      const buf = w.buf;
      const place = tally ? autoPlacement(tally) : undefined;
      buf.writeUInt32LE(fn, at);
      buf.writeUInt32LE(place ? flags | place.flags : flags, at + 4);
      buf.writeInt32LE(place ? place.node : node, at + 8);
      buf.writeUInt32LE(w.pos - at - 24, at + 12);
      starts.push(at);
    }
    const end = w.pos;
    const src = w.buf;
    const spilled = w.spilled;
    w.reset();
    const seqs: number[] = [];
    let count = 0;
    let first = 0;  // index in seqs of the first record in io
    let pos = 0;  // bytes of io in use
    const doFlush = (): void => {
      if (count && flush(count) === 0) for (let k = first; k < seqs.length; k++) seqs[k] = 0;
      count = 0;
      first = seqs.length;
      pos = 0;
    };
    const io = this.io;
    for (let i = 0; i < starts.length; i++) {
      const at = starts[i]!;
      const next = i + 1 < starts.length ? starts[i + 1]! : end;
      const seq = ++this.seq;
      if (spilled) {
        // The batch outgrew io while encoding: copy it in io-sized chunks.
        const len = next - at;
        if (len > io.length) {
          doFlush();
          seqs.push(single(seq, SafeBuffer.from(src.subarray(at + 24, next)), src.readInt32LE(at + 8), src.readUInt32LE(at + 4)) === 0 ? 0 : seq);
          first = seqs.length;
          continue;
        }
        if (pos + len > io.length) doFlush();
        src.copy(io, pos, at, next);
        io.writeDoubleLE(seq, pos + 16);
        pos += len;
      } else {
        io.writeDoubleLE(seq, at + 16);
      }
      seqs.push(seq);
      count++;
    }
    doFlush();
    return seqs.map((seq, i) => ({ seq, keep: keeps[i] }));
  }


  /** Registers a pending promise for seq (keep: what its arguments need alive until it settles). */
  track(seq: number, handle: number, keep?: SharedArrayBuffer[]): { promise: Promise<unknown>; entry: Pending } {
    let resolve!: (v: unknown) => void;
    let reject!: (e: unknown) => void;
    const promise = new SafePromise<unknown>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const entry: Pending = { resolve, reject, handle, keep };
    this.pending.set(seq, entry);
    return { promise, entry };
  }

  /** Wires an AbortSignal to a pending task. */
  wireAbort(seq: number, entry: Pending, signal: AbortSignal, cancel: (handle: number) => number, terminate?: (worker: number) => void): void {
    const onAbort = (): void => {
      if (this.pending.get(seq) !== entry) return;
      this.pending.delete(seq);
      try {
        const r = cancel(entry.handle);
        if (r >= 0 && terminate) terminate(r);
      } finally {
        entry.reject(abortError(signal));
        this.afterCompletions();
      }
    };
    signal.addEventListener('abort', onAbort, { once: true });
    entry.dispose = () => signal.removeEventListener('abort', onAbort);
  }

  settle(seq: number, code: number, buf: Buffer, start: number, end: number): void {
    const entry = this.pending.get(seq);
    if (!entry) return;  // aborted / destroyed meanwhile
    this.pending.delete(seq);
    entry.dispose?.();
    if (code === Codes.OK) {
      let value: unknown;
      try {
        value = decodeValue(buf, start, end);  // throws only ERR_HWSQ_DATA_CLONE
      } catch (err) {
        entry.reject(err);
        return;
      }
      entry.resolve(value);
    } else if (code === Codes.ERROR) {
      entry.reject(decodeError(buf, start, end));
    } else {
      entry.reject(this.exitedError());
    }
  }

  /** Settles a task run on this same thread, with its value as is. */
  settleLocal(seq: number, ok: boolean, value: unknown): void {
    const entry = this.pending.get(seq);
    if (!entry) return;
    this.pending.delete(seq);
    entry.dispose?.();
    if (ok) entry.resolve(value);
    else entry.reject(value);
  }

  /** The addon's completion callback: records [seq f64][code i32][len u32][bytes] in inBuf, or one big result. */
  readonly onCompletions: CompletionsFn = (count, seq, code, big) => {
    if (count < 0) {
      this.settleSafely(seq!, code!, big!, 0, big!.length);
    } else {
      const b = this.inBuf;
      let off = 0;
      for (let i = 0; i < count; i++) {
        const s = b.readDoubleLE(off);
        const c = b.readInt32LE(off + 8);
        const len = b.readUInt32LE(off + 12);
        this.settleSafely(s, c, b, off + 16, off + 16 + len);
        off += 16 + len;
      }
    }
    sabRegistry().sweep();
    try {
      this.afterCompletions();
    } catch (err) {
      rethrowLater(err);
    }
  };

  private settleSafely(seq: number, code: number, buf: Buffer, start: number, end: number): void {
    try {
      this.settle(seq, code, buf, start, end);
    } catch (err) {
      rethrowLater(err);  // a bug of ours; the other completions of the batch still settle
    }
  }
}
