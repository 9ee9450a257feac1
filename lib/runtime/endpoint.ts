// The JS side of an endpoint (native/napi/js_endpoint.cpp; the origin of the tasks it spawns): a thread that spawns tasks -- the
// main thread of a Runtime, or a worker spawning nested tasks. It owns the two scratch buffers
// shared with the addon (io: JS -> native arguments/results; in: native -> JS task arguments and
// completion records), the table of pending promises and the task-name table.
//
// The addon calls onCompletions from its uv callback: it never throws (an exception there would
// stop this thread's deliveries); what a listener of ours throws is rethrown on the next tick.
import { decodeError, decodeValue, encodeValue, Writer } from '../core/codec';
import { ErrorCodes, codedError, rangeError, typeError } from '../core/errors';
import { SafeBuffer, SafeMap, SafePromise, SafeSet, SafeError, defineProperty, isArray, nextTick } from '../core/intrinsics';
import { jsBinding, type CompletionsFn } from '../core/js-binding';
import { Batch, Codes, Completion, Scratch } from '../core/wire';
import type { MemoryTally } from '../numa/memory-affinity';
import { sabRegistry } from './sab';

export { jsBinding } from '../core/js-binding';
export type { JsRuntimeBinding, DispatchFn, CompletionsFn } from '../core/js-binding';

export { Flags, Codes } from '../core/wire';

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

/** node: 'auto' for each record of a batch (spawn.ts): the tally the codec reports the record's memory to, then the node and flags chosen from it. */
export interface BatchPlacement {
  readonly tally: MemoryTally;
  place(): { node: number; flags: number };
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

export class Endpoint {
  readonly io = SafeBuffer.alloc(Scratch.BYTES);
  readonly inBuf = SafeBuffer.alloc(Scratch.BYTES);
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
   * io goes alone through single() (with that record's node and flags). With `place` (node:
   * 'auto', spawn.ts), each record's arguments report their memory to place.tally and the record
   * gets the node and flags of place.place() for its own memory. Returns each task's seq (0:
   * refused by flush/single, i.e. closed), or, when a list was not an array or did not clone, that
   * error for every entry.
   */
  encodeBatch(
    fn: number,
    argsList: readonly (readonly unknown[])[],
    flags: number,
    node: number,
    flush: (count: number) => number,
    single: (seq: number, buf: Buffer, node: number, flags: number) => number,
    place?: BatchPlacement,
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
        w.ensure(Batch.HEADER);
        w.pos += Batch.HEADER;
        if (place) {
          place.tally.reset();
          w.memory = place.tally;  // encodeValue tells it of this record's memory used in place, then unsets it
        }
        encodeValue(w, args);
      } catch (err) {
        w.reset();  // (encodeValue let go of the SABs it met; the earlier records' are in keeps)
        return argsList.map(() => ({ seq: 0, keep: undefined, error: err }));
      }
      keeps.push(this.takeSabs());
      const buf = w.buf;
      const chosen = place?.place();
      // Stryker disable next-line ArithmeticOperator: Batch.FN is 0
      buf.writeUInt32LE(fn, at + Batch.FN);
      buf.writeUInt32LE(chosen ? flags | chosen.flags : flags, at + Batch.FLAGS);
      buf.writeInt32LE(chosen ? chosen.node : node, at + Batch.NODE);
      buf.writeUInt32LE(w.pos - at - Batch.HEADER, at + Batch.LEN);
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
      // Stryker disable next-line ConditionalExpression: not spilled, src is io itself and no flush happens before the end, so the copy would be onto itself at the same offsets
      if (spilled) {
        // The batch outgrew io while encoding: copy it in io-sized chunks.
        const len = next - at;
        if (len > io.length) {
          doFlush();
          seqs.push(single(seq, SafeBuffer.from(src.subarray(at + Batch.HEADER, next)), src.readInt32LE(at + Batch.NODE), src.readUInt32LE(at + Batch.FLAGS)) === 0 ? 0 : seq);
          first = seqs.length;
          continue;
        }
        if (pos + len > io.length) doFlush();
        src.copy(io, pos, at, next);
        io.writeDoubleLE(seq, pos + Batch.SEQ);
        pos += len;
      } else {
        io.writeDoubleLE(seq, at + Batch.SEQ);
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
      // Stryker disable next-line ConditionalExpression: every path that settles or drops the entry disposes of this listener first (settle, settleLocal, Runtime.stop): a guard should one ever not
      if (this.pending.get(seq) !== entry) return;
      this.pending.delete(seq);
      try {
        const r = cancel(entry.handle);
        if (r >= 0 && terminate) terminate(r);  // r: the P running it (else Cancel.*)
      } finally {
        entry.reject(abortError(signal));
        this.afterCompletions();
      }
    };
    // Stryker disable next-line ObjectLiteral,BooleanLiteral: an AbortSignal fires 'abort' once, and dispose removes the listener
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
  // Stryker disable all: runs only on a worker thread, and workers run dist/ (built from the unmutated lib/): a mutant here is invisible to in-process tests
  settleLocal(seq: number, ok: boolean, value: unknown): void {
    const entry = this.pending.get(seq);
    if (!entry) return;
    this.pending.delete(seq);
    entry.dispose?.();
    if (ok) entry.resolve(value);
    else entry.reject(value);
  }
  // Stryker restore all

  /** The addon's completion callback: completion records (core/wire.ts) in inBuf, or one big result. */
  readonly onCompletions: CompletionsFn = (count, seq, code, big) => {
    if (count === Completion.BIG) {
      this.settleSafely(seq!, code!, big!, 0, big!.length);
    } else {
      const b = this.inBuf;
      let off = 0;
      for (let i = 0; i < count; i++) {
        // Stryker disable next-line ArithmeticOperator: Completion.SEQ is 0
        const s = b.readDoubleLE(off + Completion.SEQ);
        const c = b.readInt32LE(off + Completion.CODE);
        const len = b.readUInt32LE(off + Completion.LEN);
        const start = off + Completion.HEADER;
        this.settleSafely(s, c, b, start, start + len);
        off = start + len;
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
