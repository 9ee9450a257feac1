// Encoding of task arguments, results and errors between isolates.
//
// Two formats behind one leading byte:
//   FAST (0): a tagged encoding of what most tasks pass -- undefined, null, booleans, numbers,
//     strings, plain arrays/objects of those (no holes, depth <= 32), ArrayBuffers, typed arrays,
//     DataViews and Buffers, SharedArrayBuffers and views of them. Encoding [1, 'a'] costs
//     ~100 ns where v8.serialize costs ~2.5 us (measured on Node 20), which is the difference
//     between a tiny-task runtime and a message-passing pool.
//   V8 (1): v8.serialize (structured clone) for everything else: Map, Set, Date, RegExp, BigInt,
//     cycles, holes, class instances, one ArrayBuffer reached twice (v8 keeps its identity).
// On both, a typed array, DataView or Buffer carries its own bytes only (as Node's v8.serialize
// does, so that a view into a large or pooled buffer does not send the rest): it arrives as a
// view of the same kind (a Buffer as a Uint8Array, as structured clone makes it) over a buffer of
// exactly its length. SharedArrayBuffers are passed by reference (the same memory on both sides)
// through sab.ts; `transfer` detaches the listed ArrayBuffers on the sending side after their
// bytes were cloned, and node-local memory from allocOnNode in a transfer list moves without a
// copy (node-memory registry in the addon).
//
// Errors travel as a plain record {name, message, stack, props, cause} so that the receiver gets
// an Error of the same class with the same own properties (code, errno, ...).
//
// Task code is hostile as far as this file is concerned: values may be Proxies whose traps
// throw, revoked Proxies, objects whose getters, toString or Symbol.toPrimitive throw, cycles.
// Encoding a value either succeeds or throws a TypeError ERR_HWSQ_DATA_CLONE (whatever went
// wrong inside); encoding a thrown value never throws (what cannot be carried is described).
// Builtins come from intrinsics.ts (a task module may replace the globals).
import v8 from 'node:v8';
import { ErrorCodes } from './errors';
import {
  ObjectPrototype,
  SafeArray,
  SafeArrayBuffer,
  SafeBuffer,
  SafeDataView,
  SafeError as ErrorCtor,
  SafeMap,
  SafeSet,
  SafeSharedArrayBuffer,
  SafeTypeError as TypeErrorCtor,
  SafeUint8Array,
  defineProperty,
  getOwnPropertyDescriptor,
  getPrototypeOf,
  isArray,
  isView,
  objectIs,
  objectKeys,
  safeString,
  safeStructuredClone as hostStructuredClone,
} from './intrinsics';
import { jsBinding } from './js-binding';
import type { MemoryTally } from '../numa/memory-affinity';
import { sabRegistry } from '../runtime/sab';

const { DefaultSerializer, DefaultDeserializer } = v8;

const FAST = 0;
const V8 = 1;

const T_UNDEFINED = 1;
const T_NULL = 2;
const T_TRUE = 3;
const T_FALSE = 4;
const T_INT = 5;
const T_DOUBLE = 6;
const T_STRING = 7;
const T_ARRAY = 8;
const T_OBJECT = 9;
const T_ARRAYBUFFER = 10;  // len, bytes (a copy)
const T_VIEW = 11;         // kind, len, bytes (a copy into a new ArrayBuffer)
const T_SAB = 12;          // registry id
const T_SABVIEW = 13;      // kind, registry id, byteOffset, length
const T_NODEMEM = 14;      // ticket (allocOnNode memory moved without a copy)
const T_NODEMEMVIEW = 15;  // kind, ticket, byteOffset, length

// Typed array / DataView constructors by kind byte.
const VIEW_KINDS = [
  Uint8Array, Int8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
  Float32Array, Float64Array, BigInt64Array, BigUint64Array, DataView,
] as const;
type AnyView = ArrayBufferView & { constructor: unknown };
function viewKind(v: ArrayBufferView): number {
  if (SafeBuffer.isBuffer(v)) return 0;  // structured clone turns a Buffer into a Uint8Array too
  const k = VIEW_KINDS.indexOf((v as AnyView).constructor as never);
  if (k < 0) throw BAIL;
  return k;
}
function viewLength(v: ArrayBufferView): number {
  return v instanceof SafeDataView ? v.byteLength : (v as unknown as { length: number }).length;
}

const MAX_DEPTH = 32;

class Bail extends Error {}
const BAIL = new Bail('not fast-encodable');
// Stryker disable next-line ConditionalExpression: Node always has SharedArrayBuffer; the check is for embedders without it
const isSab = (x: unknown): x is SharedArrayBuffer => SafeSharedArrayBuffer !== undefined && x instanceof SafeSharedArrayBuffer;

/** A growable byte writer that starts in a fixed scratch buffer (shared with the addon). */
export class Writer {
  buf: Buffer;
  pos = 0;
  /** ArrayBuffers copied by the fast path in the current value: a second reference bails to v8, which keeps their identity (a view carries its own bytes only, on either path). */
  // Stryker disable next-line ArrayDeclaration: encodeValue empties it first
  seen: ArrayBufferLike[] = [];
  /** SharedArrayBuffers in the current value (the sender holds them until the task settles: sab.ts). */
  // Stryker disable next-line ArrayDeclaration: encodeValue replaces a non-empty list first
  sabs: SharedArrayBuffer[] = [];
  /** The current value's transfer list, and where the tickets of node-local buffers in it go. */
  transfer: Set<unknown> | undefined;
  tickets = new SafeMap<ArrayBuffer, number[]>();
  /** Set for one value by a spawn with node: 'auto': told of the memory the task will use in place (numa/memory-affinity.ts). */
  memory: MemoryTally | undefined;
  constructor(readonly scratch: Buffer) {
    this.buf = scratch;
  }
  reset(at = 0): void {
    this.buf = this.scratch;
    this.pos = at;
  }
  /** True when the bytes no longer fit the scratch buffer (the caller must pass `buf`). */
  get spilled(): boolean {
    return this.buf !== this.scratch;
  }
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = SafeBuffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n + 1024));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }
  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v, this.pos);
    this.pos += 4;
  }
  i32(v: number): void {
    this.ensure(4);
    this.buf.writeInt32LE(v, this.pos);
    this.pos += 4;
  }
  f64(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  str(s: string): void {
    // UTF-8 needs at most 3 bytes per UTF-16 unit.
    this.ensure(4 + s.length * 3);
    const n = this.buf.write(s, this.pos + 4, 'utf8');
    this.buf.writeUInt32LE(n, this.pos);
    this.pos += 4 + n;
  }
}

function isPlainObject(v: object): boolean {
  const proto = getPrototypeOf(v);
  return proto === ObjectPrototype || proto === null;
}

// allocOnNode memory named in the transfer list moves without a copy (node_memory.cpp).
function isMovableNodeMemory(w: Writer, b: ArrayBufferLike): boolean {
  return w.transfer !== undefined && w.transfer.has(b) && b instanceof SafeArrayBuffer && jsBinding().nodeMemoryOwned(b);
}
function ticketSlot(w: Writer, b: ArrayBuffer): void {
  const slots = w.tickets.get(b) ?? [];
  slots.push(w.pos);
  w.tickets.set(b, slots);
  w.f64(0);  // filled in once the whole value is encoded (taking a ticket detaches the buffer)
}

function sabId(w: Writer, sab: SharedArrayBuffer): number {
  w.sabs.push(sab);
  w.memory?.add(sab);
  return sabRegistry().idOf(sab);
}

function fastValue(w: Writer, v: unknown, depth: number): void {
  switch (typeof v) {
    case 'number':
      if ((v | 0) === v && !objectIs(v, -0)) {
        w.u8(T_INT);
        w.i32(v);
      } else {
        w.u8(T_DOUBLE);
        w.f64(v);
      }
      return;
    case 'string':
      w.u8(T_STRING);
      w.str(v);
      return;
    case 'boolean':
      w.u8(v ? T_TRUE : T_FALSE);
      return;
    case 'undefined':
      w.u8(T_UNDEFINED);
      return;
    case 'object': {
      if (v === null) {
        w.u8(T_NULL);
        return;
      }
      if (depth >= MAX_DEPTH) throw BAIL;
      if (isView(v)) {
        const kind = viewKind(v);
        if (isMovableNodeMemory(w, v.buffer)) {
          w.u8(T_NODEMEMVIEW);
          w.u8(kind);
          ticketSlot(w, v.buffer as ArrayBuffer);
          w.u32(v.byteOffset);
          w.u32(viewLength(v));
          return;
        }
        if (isSab(v.buffer)) {
          w.u8(T_SABVIEW);
          w.u8(kind);
          w.f64(sabId(w, v.buffer));
          w.u32(v.byteOffset);
          w.u32(viewLength(v));
          return;
        }
        w.u8(T_VIEW);
        w.u8(kind);
        w.u32(v.byteLength);
        w.bytes(new SafeUint8Array(v.buffer, v.byteOffset, v.byteLength));
        return;
      }
      if (v instanceof SafeArrayBuffer) {
        if (isMovableNodeMemory(w, v)) {
          w.u8(T_NODEMEM);
          ticketSlot(w, v);
          return;
        }
        if (w.seen.includes(v)) throw BAIL;
        w.seen.push(v);
        w.u8(T_ARRAYBUFFER);
        w.u32(v.byteLength);
        w.bytes(new SafeUint8Array(v));
        return;
      }
      if (isSab(v)) {
        w.u8(T_SAB);
        w.f64(sabId(w, v));
        return;
      }
      if (isArray(v)) {
        w.u8(T_ARRAY);
        w.u32(v.length);
        for (let i = 0; i < v.length; i++) {
          if (!(i in v)) throw BAIL;  // holes: v8 keeps them
          fastValue(w, v[i], depth + 1);
        }
        return;
      }
      if (!isPlainObject(v)) throw BAIL;
      const keys = objectKeys(v);
      w.u8(T_OBJECT);
      w.u32(keys.length);
      for (const k of keys) {
        w.str(k);
        fastValue(w, (v as Record<string, unknown>)[k], depth + 1);
      }
      return;
    }
    default:
      throw BAIL;  // bigint, symbol, function
  }
}

class Reader {
  pos: number;
  private adopted: Map<number, ArrayBuffer> | undefined;
  private adopt(ticket: number): ArrayBuffer {
    this.adopted ??= new SafeMap();
    let ab = this.adopted.get(ticket);
    if (!ab) {
      ab = jsBinding().nodeMemoryAdopt(ticket);
      this.adopted.set(ticket, ab);
    }
    return ab;
  }
  constructor(
    readonly buf: Buffer,
    start: number,
  ) {
    this.pos = start;
  }
  value(): unknown {
    const b = this.buf;
    const tag = b[this.pos++];
    switch (tag) {
      case T_INT: {
        const v = b.readInt32LE(this.pos);
        this.pos += 4;
        return v;
      }
      case T_DOUBLE: {
        const v = b.readDoubleLE(this.pos);
        this.pos += 8;
        return v;
      }
      case T_STRING:
        return this.str();
      case T_TRUE:
        return true;
      case T_FALSE:
        return false;
      case T_NULL:
        return null;
      case T_UNDEFINED:
        return undefined;
      case T_ARRAY: {
        const n = b.readUInt32LE(this.pos);
        this.pos += 4;
        const out = new SafeArray(n);
        for (let i = 0; i < n; i++) out[i] = this.value();
        return out;
      }
      case T_OBJECT: {
        const n = b.readUInt32LE(this.pos);
        this.pos += 4;
        const out: Record<string, unknown> = {};
        for (let i = 0; i < n; i++) {
          const k = this.str();
          out[k] = this.value();
        }
        return out;
      }
      case T_ARRAYBUFFER: {
        const n = b.readUInt32LE(this.pos);
        const ab = new SafeArrayBuffer(n);
        new SafeUint8Array(ab).set(b.subarray(this.pos + 4, this.pos + 4 + n));
        this.pos += 4 + n;
        return ab;
      }
      case T_VIEW: {
        const kind = b[this.pos]!;
        const n = b.readUInt32LE(this.pos + 1);
        const ab = new SafeArrayBuffer(n);
        new SafeUint8Array(ab).set(b.subarray(this.pos + 5, this.pos + 5 + n));
        this.pos += 5 + n;
        const Ctor = VIEW_KINDS[kind]! as unknown as new (b: ArrayBuffer) => unknown;
        return new Ctor(ab);
      }
      case T_SAB: {
        const id = b.readDoubleLE(this.pos);
        this.pos += 8;
        return resolveSab(id);
      }
      case T_SABVIEW: {
        const kind = b[this.pos]!;
        const sab = resolveSab(b.readDoubleLE(this.pos + 1));
        const off = b.readUInt32LE(this.pos + 9);
        const len = b.readUInt32LE(this.pos + 13);
        this.pos += 17;
        const Ctor = VIEW_KINDS[kind]! as unknown as { new (b: SharedArrayBuffer, o: number, l: number): unknown };
        return new Ctor(sab, off, len);
      }
      case T_NODEMEM: {
        const ab = this.adopt(b.readDoubleLE(this.pos));
        this.pos += 8;
        return ab;
      }
      case T_NODEMEMVIEW: {
        const kind = b[this.pos]!;
        const ab = this.adopt(b.readDoubleLE(this.pos + 1));
        const off = b.readUInt32LE(this.pos + 9);
        const len = b.readUInt32LE(this.pos + 13);
        this.pos += 17;
        const Ctor = VIEW_KINDS[kind]! as unknown as { new (b: ArrayBuffer, o: number, l: number): unknown };
        return new Ctor(ab, off, len);
      }
      default:
        throw new ErrorCtor(`hwsq codec: bad tag ${tag}`);
    }
  }
  str(): string {
    const n = this.buf.readUInt32LE(this.pos);
    const s = this.buf.toString('utf8', this.pos + 4, this.pos + 4 + n);
    this.pos += 4 + n;
    return s;
  }
}

function resolveSab(id: number): SharedArrayBuffer {
  const sab = sabRegistry().resolve(id);
  if (!sab) throw cloneError(`SharedArrayBuffer ${id} is not known on this thread`);
  return sab;
}

// ------------------------------------------------------------------ v8 path

const SAB_ONLY_FAST = 'a SharedArrayBuffer is shared only inside plain objects, arrays and typed-array views, not inside Map, Set or class instances';
// Node's typings leave out the hook a DefaultSerializer subclass overrides.
const HostObjectSerializer = DefaultSerializer as unknown as new () => InstanceType<typeof DefaultSerializer> & { _writeHostObject(view: ArrayBufferView): void };
/**
 * Node 20's deserializer cannot take SharedArrayBuffers back: the fast path carries them. A view
 * of one is refused too: the v8 path would copy its bytes, and a task would write to a copy
 * where it meant shared memory.
 */
class HwsqSerializer extends HostObjectSerializer {
  _getSharedArrayBufferId(): number {
    throw new ErrorCtor(SAB_ONLY_FAST);
  }
  override _writeHostObject(view: ArrayBufferView): void {
    if (isSab(view.buffer)) throw new ErrorCtor(SAB_ONLY_FAST);
    super._writeHostObject(view);
  }
}

function v8Encode(w: Writer, value: unknown): void {
  const s = new HwsqSerializer();
  s.writeHeader();
  s.writeValue(value);
  w.u8(V8);
  w.bytes(s.releaseBuffer());
}

/**
 * Node's deserializer returns a typed array as a view into the whole payload (the other
 * arguments' bytes included), and a Buffer as a Buffer: each view gets a buffer of its own, of
 * exactly its length, as the fast path gives it.
 */
// Node's typings leave out the hook a DefaultDeserializer subclass overrides.
const HostObjectDeserializer = DefaultDeserializer as unknown as new (b: Uint8Array) => InstanceType<typeof DefaultDeserializer> & { _readHostObject(): unknown };
class HwsqDeserializer extends HostObjectDeserializer {
  override _readHostObject(): unknown {
    const view = super._readHostObject() as ArrayBufferView;
    const own = new SafeArrayBuffer(view.byteLength);
    new SafeUint8Array(own).set(new SafeUint8Array(view.buffer, view.byteOffset, view.byteLength));
    const Ctor = (SafeBuffer.isBuffer(view) ? SafeUint8Array : (view as AnyView).constructor) as new (b: ArrayBuffer) => unknown;
    return new Ctor(own);
  }
}

function v8Decode(buf: Buffer, start: number, end: number): unknown {
  // A copy: `buf` is a reused wire slot, which must not be read after this returns.
  const d = new HwsqDeserializer(new SafeUint8Array(buf.subarray(start, end)));
  d.readHeader();
  return d.readValue();
}

/**
 * Whether `v` encodes and decodes on the v8 path, as a record holding it will have to: some
 * values serialize but do not deserialize (an Error in a cycle), or not here (a SharedArrayBuffer).
 */
function travels(v: unknown): boolean {
  try {
    const s = new HwsqSerializer();
    s.writeHeader();
    s.writeValue(v);
    const d = new HwsqDeserializer(s.releaseBuffer());
    d.readHeader();
    d.readValue();
    return true;
  } catch {
    return false;
  }
}

/** Detaches transferred ArrayBuffers (their bytes were already copied into the payload). */
function detach(list: readonly unknown[]): void {
  for (const x of list) {
    try {
      hostStructuredClone(undefined, { transfer: [x as ArrayBuffer] });
    } catch {
      // not transferable: a SharedArrayBuffer (shared, not moved), a buffer already detached (Node 22+ refuses it)
    }
  }
}

/** What went wrong, as text, whatever `err` is (a revoked Proxy, a throwing toString...). */
export function describeThrown(err: unknown): string {
  try {
    if (err instanceof ErrorCtor) return safeString(err.message);
  } catch {}
  try {
    return safeString(err);
  } catch {}
  try {
    return `a value of type ${typeof err}`;
  } catch {}
  return 'an indescribable value';
}

/** The TypeError ERR_HWSQ_DATA_CLONE for a value that cannot travel between threads. */
export function cloneError(message: string, cause?: unknown): TypeError {
  const e = new TypeErrorCtor(`hwsq: value could not be cloned: ${message}`);
  defineProperty(e, 'code', { value: ErrorCodes.DATA_CLONE, enumerable: true, writable: true, configurable: true });
  if (cause !== undefined) defineProperty(e, 'cause', { value: cause, writable: true, configurable: true });
  return e;
}

// ------------------------------------------------------------------ public helpers

/**
 * Encodes `value` after w.pos. Throws a TypeError ERR_HWSQ_DATA_CLONE (the original error as its
 * `cause`) when it cannot be cloned, whatever failed: a getter or Proxy trap that threw
 * included. w.sabs lists the SharedArrayBuffers in it.
 */
export function encodeValue(w: Writer, value: unknown, transfer?: readonly unknown[]): void {
  const start = w.pos;
  w.seen.length = 0;
  w.tickets.clear();
  // Stryker disable next-line ConditionalExpression: always a fresh [] equals the empty list kept (the false case is tested)
  if (w.sabs.length) w.sabs = [];  // (the caller may have kept the previous list)
  try {
    w.transfer = transfer && transfer.length ? new SafeSet(transfer) : undefined;
    w.u8(FAST);
    fastValue(w, value, 0);
    for (const [ab, slots] of w.tickets) {
      w.memory?.add(ab);  // before the take detaches it
      const ticket = jsBinding().nodeMemoryTake(ab);
      for (const pos of slots) w.buf.writeDoubleLE(ticket, pos);
    }
    w.tickets.clear();
    if (transfer && transfer.length) detach(transfer);
    return;
  } catch (err) {
    w.tickets.clear();
    w.pos = start;
    if (err !== BAIL) throw cloneError(describeThrown(err), err);
    // Stryker disable next-line ConditionalExpression: always a fresh [] equals the empty list kept
    if (w.sabs.length) w.sabs = [];
    w.memory?.reset();  // the v8 path copies everything: no memory used in place
  } finally {
    w.transfer = undefined;
    w.memory = undefined;
  }
  try {
    v8Encode(w, value);
    if (transfer && transfer.length) detach(transfer);
  } catch (err) {
    w.pos = start;
    throw cloneError(describeThrown(err), err);
  }
}

/** Decodes a payload; a payload that cannot be decoded here throws a TypeError ERR_HWSQ_DATA_CLONE. */
export function decodeValue(buf: Buffer, start: number, end: number): unknown {
  try {
    if (buf[start] === FAST) return new Reader(buf, start + 1).value();
    return v8Decode(buf, start + 1, end);
  } catch (err) {
    if ((err as { code?: unknown } | null)?.code === ErrorCodes.DATA_CLONE) throw err;
    throw cloneError(describeThrown(err), err);
  }
}

interface ErrorRecord {
  name: string;
  message: string;
  stack: string | undefined;
  props: Record<string, unknown>;
  cause?: unknown;
  thrown?: unknown;
  isError: boolean;
}

const MAX_CAUSE_DEPTH = 16;  // cause chains (cycles included) are cut here

const UNREADABLE = Symbol('unreadable');
/** o[k], or `otherwise` when reading it throws (a getter, a Proxy trap). */
function read(o: object, k: PropertyKey, otherwise: unknown = undefined): unknown {
  try {
    return (o as Record<PropertyKey, unknown>)[k];
  } catch {
    return otherwise;
  }
}
function isErrorObject(v: unknown): boolean {
  try {
    return v instanceof ErrorCtor;
  } catch {
    // a Proxy whose getPrototypeOf trap throws, a revoked Proxy
  }
  return false;
}
function textOf(v: unknown, fallback: string): string {
  // Stryker disable next-line ConditionalExpression: a fast path: String() of a string is that string
  if (typeof v === 'string') return v;
  if (v === undefined) return fallback;
  try {
    return safeString(v);
  } catch {
    // a throwing toString / Symbol.toPrimitive, a revoked Proxy
  }
  return fallback;
}

function toRecord(err: unknown, depth: number): ErrorRecord {
  if (!isErrorObject(err)) return { name: 'Error', message: '', stack: undefined, props: {}, thrown: err, isError: false };
  const e = err as object;
  const props: Record<string, unknown> = {};
  let keys: string[] = [];
  try {
    keys = objectKeys(e);
  } catch {}
  for (const k of keys) {
    const v = read(e, k, UNREADABLE);
    if (v === UNREADABLE) continue;
    let value = v;
    if (!travels(v)) {
      try {
        value = safeString(v);
      } catch {
        continue;  // not even as text: left out
      }
    }
    // Stryker disable next-line BooleanLiteral: writable/configurable of the record's properties are not serialized (enumerable is: a test checks the props arrive)
    defineProperty(props, k, { value, enumerable: true, writable: true, configurable: true });
  }
  const stack = read(e, 'stack');
  const rec: ErrorRecord = {
    name: textOf(read(e, 'name'), 'Error'),
    message: textOf(read(e, 'message'), ''),
    stack: typeof stack === 'string' ? stack : undefined,
    props,
    isError: true,
  };
  // Stryker disable next-line BooleanLiteral: when `in` throws, reading the cause throws too and read() gives undefined: no cause either way
  let hasCause = false;
  try {
    hasCause = 'cause' in e;
  } catch {}
  if (hasCause && depth < MAX_CAUSE_DEPTH) {
    const c = read(e, 'cause');
    // Stryker disable next-line ConditionalExpression: a cause set to undefined is one fromRecord() leaves out
    if (c !== undefined) rec.cause = isErrorObject(c) ? toRecord(c, depth + 1) : travels(c) ? c : describeThrown(c);
  }
  return rec;
}

/** The record of a TypeError ERR_HWSQ_DATA_CLONE saying what was thrown and could not be carried. */
function unclonableRecord(thrown: unknown): ErrorRecord {
  return {
    name: 'TypeError',
    message: `hwsq: value could not be cloned: the task threw ${describeThrown(thrown)}, which cannot be sent to another thread`,
    stack: undefined,
    props: { code: ErrorCodes.DATA_CLONE },
    isError: true,
  };
}

const errorClasses = new SafeMap<string, ErrorConstructor>([
  ['Error', Error],
  ['TypeError', TypeError],
  ['RangeError', RangeError],
  ['SyntaxError', SyntaxError],
  ['ReferenceError', ReferenceError],
  ['EvalError', EvalError],
  ['URIError', URIError],
]);

function isRecord(v: unknown): v is ErrorRecord {
  return v !== null && typeof v === 'object' && typeof (v as ErrorRecord).isError === 'boolean';
}

function fromRecord(rec: ErrorRecord): unknown {
  if (!rec.isError) return rec.thrown;
  const name = typeof rec.name === 'string' ? rec.name : 'Error';
  const Ctor = errorClasses.get(name) ?? ErrorCtor;
  const err = new Ctor(typeof rec.message === 'string' ? rec.message : '');
  if (err.name !== name) defineProperty(err, 'name', { value: name, writable: true, configurable: true, enumerable: false });
  if (rec.stack !== undefined) {
    // The stack property as the receiver's own errors have it: an own accessor from V8 12 (Node
    // 22+), whose setter keeps it one; a data property before.
    if (getOwnPropertyDescriptor(err, 'stack')?.set) err.stack = rec.stack;
    else defineProperty(err, 'stack', { value: rec.stack, writable: true, configurable: true, enumerable: false });
  }
  if (rec.props && typeof rec.props === 'object') {
    for (const k of objectKeys(rec.props)) defineProperty(err, k, { value: rec.props[k], writable: true, configurable: true, enumerable: true });
  }
  if (rec.cause !== undefined) {
    const cause = isRecord(rec.cause) ? fromRecord(rec.cause) : rec.cause;
    defineProperty(err, 'cause', { value: cause, writable: true, configurable: true, enumerable: false });
  }
  return err;
}

/**
 * Encodes a thrown value; never throws. An Error keeps its class, message, stack, the own
 * properties that clone (the others as strings) and its cause chain; any other value travels
 * as is when it clones, else becomes a TypeError ERR_HWSQ_DATA_CLONE describing it.
 */
export function encodeError(w: Writer, err: unknown): void {
  const start = w.pos;
  // An Error's record holds only what travels (toRecord checked every property and cause); a
  // thrown non-Error may not, and is described instead.
  try {
    v8Encode(w, toRecord(err, 0));
    v8Decode(w.buf, start + 1, w.pos);  // what the receiver will do: it must not fail there
    return;
  } catch {
    w.pos = start;
  }
  v8Encode(w, unclonableRecord(err));  // text only: it encodes
}

/** The rejection value of a failed task; a TypeError ERR_HWSQ_DATA_CLONE when it cannot be decoded here. */
export function decodeError(buf: Buffer, start: number, end: number): unknown {
  try {
    const rec = decodeValue(buf, start, end);
    return isRecord(rec) ? fromRecord(rec) : rec;
  } catch (err) {
    return cloneError(`the task failed and its error could not be read back: ${describeThrown(err)}`, err);
  }
}

const MOVED = Symbol.for('hwsq.moved');

/** A value returned from a task together with the buffers to transfer (not copy) back. */
export class Moved<T = unknown> {
  readonly [MOVED] = true;
  constructor(
    readonly value: T,
    readonly transfer: readonly unknown[],
  ) {}
}

/** Recognizes a Moved made by any copy of this module (ESM and CJS builds differ). */
export function asMoved(v: unknown): Moved | undefined {
  // Stryker disable next-line ConditionalExpression,LogicalOperator,EqualityOperator: a fast path: a primitive or function has no [MOVED] === true, and reading it off null throws into the catch below
  if (v === null || typeof v !== 'object') return undefined;
  try {
    if ((v as { [MOVED]?: boolean })[MOVED] === true) return v as Moved;
  } catch {
    // a Proxy whose get trap throws is not a Moved
  }
  return undefined;
}

/**
 * Marks a task's return value for transfer: `return move(result, [result.buffer])` moves the
 * listed ArrayBuffers to the caller instead of leaving a copy in the worker.
 */
export function move<T>(value: T, transfer: readonly unknown[]): T {
  return new Moved(value, transfer) as unknown as T;
}
