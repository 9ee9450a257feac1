// The one spawn path of JS tasks, for both kinds of spawner: the main thread's Runtime.spawn /
// spawnMany (runtime.ts) and a task's nested spawn / spawnMany (worker.ts, through task.ts).
// Each step happens here in the same order for both; only the submit step differs and is
// injected (SpawnTarget): the main thread submits root tasks to the shared queues (GRQ / the
// node's HWSQ), a worker pushes children onto its P's local queue.
//
// Order: check every option and argument (validation.ts, each read once) -> refuse when closed
// or the queue is full -> look up the task -> encode the arguments (codec.ts) into the endpoint's
// io scratch -> with node: 'auto' (or the runtime's memoryAffinity), place the task on the node
// holding the memory the encoding met (autoPlacement) -> submit (nothing is queued before this
// point) -> track the promise -> wire the AbortSignal.
import { ErrorCodes, codedError } from '../core/errors';
import { rejected } from '../core/intrinsics';
import { argsListOf, argsOf, rejectionCount, spawnManyOptions, spawnOptions } from '../core/validation';
import { Flags } from '../core/wire';
import type { MemoryTally } from '../numa/memory-affinity';
import { abortError, type BatchEntry, type Endpoint, type SpawnOptions } from './endpoint';

/** What differs between the main thread and a worker: where tasks go. */
export interface SpawnTarget {
  readonly endpoint: Endpoint;
  /** Nodes with Ps, when known here (main thread): a node without one is refused before queuing. */
  readonly nodes?: ReadonlySet<number>;
  /** The runtime's memoryAffinity option: a spawn without a node is a spawn with node: 'auto'. */
  readonly memoryAffinity: boolean;
  /** node: 'auto': the codec reports the memory a task uses in place to it (memory node -> node with Ps of this runtime). */
  readonly tally: MemoryTally;
  /** Spawns are refused (RUNTIME_CLOSED). */
  closed(): boolean;
  /** Throws when `count` more root tasks would not fit (QUEUE_FULL). */
  admit?(count: number): void;
  /** One task, arguments in io[0, len) or in `big` (spilled): its handle, 0 when the runtime refused it (closed). */
  submit(fn: number, seq: number, len: number, flags: number, node: number, big: Buffer | undefined): number;
  /** `count` batch records in io (Endpoint.encodeBatch): how many were queued (0: closed). */
  submitMany(count: number): number;
  /** Aborts a task by handle (wire.ts Cancel: p >= 0 when it runs on P p). */
  cancel(handle: number): number;
  /** abort: 'terminate': ends the worker of P p (main thread only). */
  terminate?(p: number): void;
  /** Called once promises were tracked (main: keep the process alive while they are pending). */
  tracked?(): void;
}

export function closedError(): Error {
  return codedError(ErrorCodes.RUNTIME_CLOSED, 'the runtime is closed');
}

/**
 * The placement step of node: 'auto', once the arguments were encoded with `tally`: the node with
 * Ps holding most of their memory and the AFFINE_MEMORY flag, or no node (-1) and AFFINE_FALLBACK
 * (the addon counts both: stats().memoryAffinity).
 */
export function autoPlacement(tally: MemoryTally): { node: number; flags: number } {
  const node = tally.choose();
  return node >= 0 ? { node, flags: Flags.AFFINE_MEMORY } : { node: -1, flags: Flags.AFFINE_FALLBACK };
}

/** spawn(name, args, options) through `t`. Never throws: every failure is a rejected promise, with nothing queued. */
export function spawnOne(t: SpawnTarget, name: string, args: readonly unknown[], options: SpawnOptions): Promise<unknown> {
  const ep = t.endpoint;
  let fn: number, node: number, len: number, signal: AbortSignal | undefined, abort: 'signal' | 'terminate';
  let flags = 0;
  try {
    const o = spawnOptions(options, t.nodes, t.memoryAffinity);
    const list = argsOf(args);
    if (t.closed()) return rejected(closedError());
    ({ signal, abort } = o);
    fn = ep.lookup(name);
    if (signal?.aborted) return rejected(abortError(signal));
    t.admit?.(1);
    const auto = o.node === 'auto';
    len = ep.encodeArgs(list, o.transfer, auto ? t.tally : undefined);
    if (auto) ({ node, flags } = autoPlacement(t.tally));
    else node = o.node as number;
  } catch (err) {
    return rejected(err);
  }
  const keep = ep.takeSabs();
  const seq = ++ep.seq;
  if (signal) flags |= Flags.ABORTABLE;
  let handle: number;
  try {
    handle = t.submit(fn, seq, len, flags, node, ep.w.spilled ? ep.w.buf.subarray(0, len) : undefined);
  } catch (err) {
    return rejected(err);  // refused by the addon: nothing queued
  }
  if (handle === 0) return rejected(closedError());
  const { promise, entry } = ep.track(seq, handle, keep);
  t.tracked?.();
  if (signal) {
    const terminate = abort === 'terminate' && t.terminate ? (p: number) => t.terminate!(p) : undefined;
    ep.wireAbort(seq, entry, signal, (h) => t.cancel(h), terminate);
  }
  return promise;
}

/** spawnMany(name, argsList, options) through `t`: one promise per list, in order; all or nothing queued. */
export function spawnBatch(t: SpawnTarget, name: string, argsList: readonly (readonly unknown[])[], options: { node?: number | 'auto' }): Promise<unknown>[] {
  const ep = t.endpoint;
  let fn: number, node: number | 'auto', lists: unknown[][];
  try {
    // Every list checked to be an array up front: a bad one cannot leave the ones before it queued.
    lists = argsListOf(argsList);
    node = spawnManyOptions(options, t.nodes, t.memoryAffinity);
    if (t.closed()) return lists.map(() => rejected(closedError()));
    fn = ep.lookup(name);
    t.admit?.(lists.length);
  } catch (err) {
    return Array.from({ length: rejectionCount(argsList) }, () => rejected(err));
  }
  let entries: BatchEntry[];
  try {
    // node: 'auto': each task is placed by its own arguments' memory (autoPlacement per record).
    const place = node === 'auto' ? { tally: t.tally, place: () => autoPlacement(t.tally) } : undefined;
    entries = ep.encodeBatch(
      fn,
      lists,
      0,
      // Stryker disable next-line ConditionalExpression,UnaryOperator: with node 'auto' every record takes place()'s node, so this one is never read
      node === 'auto' ? -1 : node,
      (count) => t.submitMany(count),
      (seq, buf, n, f) => t.submit(fn, seq, buf.length, f, n, buf),
      place,
    );
  } catch (err) {
    return lists.map(() => rejected(err));  // the addon refused the first chunk: nothing queued
  }
  const out = entries.map((e) => (e.error !== undefined ? rejected(e.error) : e.seq === 0 ? rejected(closedError()) : ep.track(e.seq, 0, e.keep).promise));
  if (ep.pending.size > 0) t.tracked?.();
  return out;
}
