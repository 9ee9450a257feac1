// Typing of the addon's jsRuntime object (native/napi/js_binding.cpp, node_memory.cpp).
import { native, type NativeBinding } from './native';

export interface JsRuntimeBinding {
  create(options: Record<string, unknown>): { runtime: object; id: number; workers: { node: number; cpus: number[] }[] };
  setMain(rt: object, onCompletions: CompletionsFn, inBuf: Uint8Array, io: Uint8Array): void;
  ref(rt: object, on: boolean): void;
  submit(rt: object, fn: number, seq: number, len: number, flags: number, node: number): number;
  submitBig(rt: object, fn: number, seq: number, buf: Uint8Array, flags: number, node: number): number;
  submitMany(rt: object, count: number): number;
  cancel(rt: object, handle: number): number;
  /** After the Worker of P `worker` (worker_threads id `threadId`) exited. */
  workerExited(rt: object, worker: number, threadId: number): void;
  queued(rt: object): number;
  live(rt: object): number;
  /** Until it happens, onCompletions(0) on the main thread once live reaches 0; returns live now. */
  notifyIdle(rt: object): number;
  stats(rt: object): unknown;
  destroy(rt: object): void;
  attach(
    id: number,
    worker: number,
    dispatch: DispatchFn,
    onCompletions: CompletionsFn,
    onAbort: (handle: number) => void,
    inBuf: Uint8Array,
    io: Uint8Array,
    started: Uint8Array,
    threadId: number,
  ): { node: number; cpus: number[] };
  spawn(fn: number, seq: number, len: number, flags: number, node: number, big?: Uint8Array): number;
  spawnMany(count: number): number;
  complete(handle: number, code: number, pending: boolean, big?: Uint8Array): void;
  cancelChild(handle: number): number;
  /** allocOnNode memory moving between isolates (node_memory.cpp). */
  nodeMemoryOwned(ab: ArrayBuffer): boolean;
  nodeMemoryTake(ab: ArrayBuffer): number;
  nodeMemoryAdopt(ticket: number): ArrayBuffer;
}
export type DispatchFn = (handle: number, fn: number, len: number, seq: number, flags: number, big?: Buffer) => number;
export type CompletionsFn = (count: number, seq?: number, code?: number, big?: Buffer) => void;

export function jsBinding(): JsRuntimeBinding {
  return (native() as NativeBinding & { jsRuntime: JsRuntimeBinding }).jsRuntime;
}
