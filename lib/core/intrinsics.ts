// Builtins as they were when hwsq loaded. A task module runs in the same realm as its worker's
// own code (worker.ts, origin.ts, codec.ts, sab.ts) and may replace globals (globalThis.Map = ...,
// Object.keys = ..., globalThis.Buffer = undefined): that code uses these instead, taken before
// any task module is imported, so such a module breaks only its own tasks. Changes made to the
// builtins' prototypes cannot be guarded against this way.
export const SafeMap: MapConstructor = Map;
export const SafeSet: SetConstructor = Set;
export const SafeWeakMap: WeakMapConstructor = WeakMap;
export const SafeWeakRef: WeakRefConstructor = WeakRef;
export const SafeFinalizationRegistry: FinalizationRegistryConstructor = FinalizationRegistry;
export const SafePromise: PromiseConstructor = Promise;
export const promiseThen = Promise.prototype.then;
export const SafeArray: ArrayConstructor = Array;
export const SafeArrayBuffer: ArrayBufferConstructor = ArrayBuffer;
export const SafeSharedArrayBuffer: SharedArrayBufferConstructor | undefined = typeof SharedArrayBuffer === 'undefined' ? undefined : SharedArrayBuffer;
export const SafeUint8Array: Uint8ArrayConstructor = Uint8Array;
export const SafeDataView: DataViewConstructor = DataView;
export const SafeError: ErrorConstructor = Error;
export const SafeTypeError: TypeErrorConstructor = TypeError;
export const SafeAbortController: typeof AbortController = AbortController;
export const ObjectPrototype: object = Object.prototype;
export const { keys: objectKeys, getPrototypeOf, defineProperty, getOwnPropertyDescriptor, is: objectIs } = Object;
export const { isArray } = Array;
export const { isView } = ArrayBuffer;
export const safeString = String;
export const safeStructuredClone = structuredClone;
export const SafeBuffer = { isBuffer: Buffer.isBuffer, allocUnsafe: Buffer.allocUnsafe.bind(Buffer), alloc: Buffer.alloc.bind(Buffer), from: Buffer.from.bind(Buffer) as typeof Buffer.from };
export const nextTick: typeof process.nextTick = process.nextTick.bind(process);

/** A promise rejected with err (Promise.reject may have been replaced). */
export function rejected<T = never>(err: unknown): Promise<T> {
  return new SafePromise<T>((_, reject) => reject(err));
}
