// The codec's two paths, seen from outside: which values the fast path carries (first byte FAST)
// and which it leaves to v8's serializer (first byte V8), what each keeps of a value, and the
// writer's growth past its scratch buffer. A value sent the slow way still round trips, so only
// the first byte shows a fast path that gave up on what it should carry.
import { describe, expect, it } from 'vitest';
import { Writer, cloneError, decodeError, decodeValue, describeThrown, encodeError, encodeValue } from '../lib/core/codec';
import { allocOnNode } from '../lib/index';
import { ErrorCodes } from '../lib/core/errors';

const FAST = 0;
const V8 = 1;

function encode(value: unknown, transfer?: unknown[], scratch = 64 * 1024): { w: Writer; path: number; back: unknown } {
  const w = new Writer(Buffer.alloc(scratch));
  encodeValue(w, value, transfer);
  return { w, path: w.buf[0]!, back: decodeValue(w.buf, 0, w.pos) };
}
const pathOf = (value: unknown) => encode(value).path;
/** What `fn` threw (undefined when it returned). */
function thrownBy(fn: () => unknown): (Error & { code?: string; cause?: unknown }) | undefined {
  try {
    fn();
  } catch (err) {
    return err as Error & { code?: string; cause?: unknown };
  }
  return undefined;
}
/** An array nested `depth` levels below the outermost one, holding 1 at the bottom. */
const nestedArrays = (depth: number): unknown => {
  let v: unknown = 1;
  for (let i = 0; i <= depth; i++) v = [v];
  return v;
};
const nestedObjects = (depth: number): unknown => {
  let v: unknown = 1;
  for (let i = 0; i <= depth; i++) v = { v };
  return v;
};

describe('codec: the fast path carries plain data, v8 the rest', () => {
  it('numbers, strings, booleans, undefined, null, arrays, plain and null-prototype objects: fast', () => {
    const nullProto = Object.assign(Object.create(null) as object, { a: 1 });
    const values = [0, -1, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, 0.5, -0, NaN, Infinity, 'text', '', 'héllo ✓', true, false, undefined, null, [1, 'a', [null]], { a: { b: [true] } }, nullProto];
    values.forEach((v, i) => {
      const { path, back } = encode(v);
      expect(path, `value ${i}`).toBe(FAST);
      expect(Object.is(back, v) || JSON.stringify(back) === JSON.stringify(v), `value ${i}`).toBe(true);
    });
    // -0 stays -0 (a double), and an int32 stays an int.
    expect(Object.is(encode(-0).back, -0)).toBe(true);
    expect(encode(2 ** 31).back).toBe(2 ** 31);
  });

  it('every typed-array kind, a Buffer, a DataView, an ArrayBuffer, a SharedArrayBuffer and views of one: fast, with their bytes, offsets and lengths', () => {
    const kinds = [Uint8Array, Int8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array];
    for (const K of kinds) {
      const ab = new ArrayBuffer(64);
      new Uint8Array(ab).forEach((_, i, a) => (a[i] = i + 1));
      const view = new K(ab, 8, 3);
      // A field after the view: the reader must land exactly past its bytes.
      const { path, back } = encode({ view, after: 'end' });
      expect(path, K.name).toBe(FAST);
      const got = (back as { view: ArrayBufferView; after: string });
      expect(got.view.constructor, K.name).toBe(K);
      expect([...new Uint8Array(got.view.buffer, got.view.byteOffset, got.view.byteLength)], K.name).toEqual([...new Uint8Array(ab, 8, 3 * K.BYTES_PER_ELEMENT)]);
      expect(got.after).toBe('end');
    }
    const buf = Buffer.from('bytes');
    const fromBuffer = encode([buf, 7]);
    expect(fromBuffer.path).toBe(FAST);
    // As structured clone makes it: a Buffer arrives as a Uint8Array.
    expect((fromBuffer.back as unknown[])[0]).toEqual(new Uint8Array(buf));
    expect((fromBuffer.back as unknown[])[1]).toBe(7);
    const dv = new DataView(new ArrayBuffer(16), 4, 6);
    dv.setUint8(0, 9);
    const fromDv = encode({ dv, n: 1 });
    expect(fromDv.path).toBe(FAST);
    const backDv = (fromDv.back as { dv: DataView; n: number });
    expect([backDv.dv.constructor, backDv.dv.byteLength, backDv.dv.getUint8(0), backDv.n]).toEqual([DataView, 6, 9, 1]);

    const ab = new Uint8Array([5, 6, 7]).buffer;
    const fromAb = encode({ ab, n: 2 });
    expect(fromAb.path).toBe(FAST);
    expect([[...new Uint8Array((fromAb.back as { ab: ArrayBuffer }).ab)], (fromAb.back as { n: number }).n]).toEqual([[5, 6, 7], 2]);

    const sab = new SharedArrayBuffer(32);
    const fromSab = encode({ sab, view: new Int32Array(sab, 8, 2), after: 3 });
    expect(fromSab.path).toBe(FAST);
    const backSab = fromSab.back as { sab: SharedArrayBuffer; view: Int32Array; after: number };
    expect(backSab.sab).toBe(sab);
    expect([backSab.view.buffer, backSab.view.byteOffset, backSab.view.length, backSab.after]).toEqual([sab, 8, 2, 3]);
    expect(fromSab.w.sabs).toEqual([sab, sab]);
  });

  it('what the fast path cannot keep goes to v8: Map, Date, BigInt, holes, class instances, subclassed views, one ArrayBuffer twice', () => {
    class Point {
      x = 1;
    }
    class Bytes extends Uint8Array {}
    const shared = new ArrayBuffer(4);
    for (const v of [new Map([[1, 2]]), new Date(0), 10n, [1, , 3], new Point(), new Bytes(2), [shared, shared], { a: shared, b: { c: shared } }]) {
      expect(pathOf(v), String(v)).toBe(V8);
    }
    // What v8 keeps: the hole, and one buffer reached twice.
    const holes = encode([1, , 3]).back as unknown[];
    expect([holes.length, 1 in holes]).toEqual([3, false]);
    const twice = encode([shared, shared]).back as ArrayBuffer[];
    expect(twice[0]).toBe(twice[1]);
    expect(encode(new Bytes(2)).back).toBeInstanceOf(Uint8Array);
  });

  it('a view carries its own bytes only, on either path: a buffer of exactly its length, a Buffer as a Uint8Array', () => {
    const big = new ArrayBuffer(1024);
    new Uint8Array(big).fill(3);
    const views = (): ArrayBufferView[] => [new Uint8Array(big, 100, 4), new Float64Array(big, 8, 2), new DataView(big, 10, 5), Buffer.from('buffer')];
    // Two views of one buffer travel fast (each its own bytes); with a Map, the v8 path.
    for (const [value, expectedPath] of [[views(), FAST], [[...views(), new Map()], V8]] as const) {
      const { path, back } = encode(value);
      expect(path).toBe(expectedPath);
      const got = back as ArrayBufferView[];
      views().forEach((sent, i) => {
        const v = got[i]!;
        const kind = Buffer.isBuffer(sent) ? Uint8Array : sent.constructor;
        expect([v.constructor, v.byteOffset, v.byteLength, v.buffer.byteLength], `${expectedPath}:${i}`).toEqual([kind, 0, sent.byteLength, sent.byteLength]);
        expect([...new Uint8Array(v.buffer)]).toEqual([...new Uint8Array(sent.buffer, sent.byteOffset, sent.byteLength)]);
      });
    }
  });

  it(`nesting: 32 levels below the top travel fast, deeper goes to v8 (arrays and objects alike)`, () => {
    expect(pathOf(nestedArrays(31))).toBe(FAST);
    expect(pathOf(nestedArrays(32))).toBe(V8);
    expect(pathOf(nestedObjects(31))).toBe(FAST);
    expect(pathOf(nestedObjects(32))).toBe(V8);
    expect(encode(nestedArrays(40)).back).toEqual(nestedArrays(40));
    // The depth counts levels, not siblings: a wide value stays fast.
    expect(pathOf(Array.from({ length: 100 }, () => nestedObjects(20)))).toBe(FAST);
  });
});

describe('codec: the writer', () => {
  it('grows past its scratch buffer (spilled), however far one write goes beyond it', () => {
    for (const size of [1, 17, 100, 5_000, 100_000]) {
      const big = 'x'.repeat(size);
      const { w, back } = encode({ before: 1, big, after: [2] }, undefined, 16);
      expect(back).toEqual({ before: 1, big, after: [2] });
      expect(w.spilled, String(size)).toBe(w.pos > 16);
    }
    const bytes = new Uint8Array(200_000).fill(7);
    const { back } = encode([bytes, bytes.length], undefined, 8);
    const [gotBytes, gotLength] = back as [Uint8Array, number];
    expect([gotBytes.constructor, gotLength, Buffer.compare(gotBytes, bytes)]).toEqual([Uint8Array, 200_000, 0]);
    // A value that fits leaves the scratch buffer in use.
    const small = new Writer(Buffer.alloc(64));
    encodeValue(small, { a: 1 });
    expect(small.spilled).toBe(false);
    expect(small.buf).toBe(small.scratch);
    small.reset();
    encodeValue(small, 'y'.repeat(1000));
    expect(small.spilled).toBe(true);
    small.reset();
    expect([small.spilled, small.pos]).toEqual([false, 0]);
  });

  it('transfer lists: ArrayBuffers are detached, what is not one (a SharedArrayBuffer, an already detached buffer) is left alone', () => {
    const sab = new SharedArrayBuffer(8);
    const ab = new ArrayBuffer(4);
    const gone = new ArrayBuffer(2);
    structuredClone(gone, { transfer: [gone] });
    expect(gone.byteLength).toBe(0);
    const { back } = encode({ sab, ab: new Uint8Array(ab) }, [sab, ab, gone]);
    expect(ab.byteLength).toBe(0);
    expect(sab.byteLength).toBe(8);
    expect((back as { sab: SharedArrayBuffer }).sab).toBe(sab);
    // The same on the v8 path (a Map makes the value slow).
    const ab2 = new ArrayBuffer(4);
    const slow = encode({ m: new Map([[1, new Uint8Array(ab2)]]) }, [ab2, sab]);
    expect(slow.path).toBe(V8);
    expect([ab2.byteLength, sab.byteLength]).toEqual([0, 8]);
  });

  it('a value nothing can clone: DATA_CLONE TypeError, the writer back where it started', () => {
    const w = new Writer(Buffer.alloc(64));
    w.pos = 5;
    const thrown = thrownBy(() => encodeValue(w, { ok: 1, f: () => {} }));
    expect(thrown).toBeInstanceOf(TypeError);
    expect((thrown as { code?: string }).code).toBe(ErrorCodes.DATA_CLONE);
    expect(w.pos).toBe(5);
  });
});

describe('codec: thrown values', () => {
  const roundTrip = (thrown: unknown): unknown => {
    const w = new Writer(Buffer.alloc(64));
    encodeError(w, thrown);
    return decodeError(w.buf, 0, w.pos);
  };

  it('a property that does not travel as it is (a SharedArrayBuffer, a function, an Error in a cycle) goes as its text; the others, code included, as they are', () => {
    const cyclic = new Error('c') as Error & { self?: unknown };
    cyclic.self = { cyclic };
    const err = Object.assign(new RangeError('m'), { code: 'E_CODE', shared: new SharedArrayBuffer(8), fn: () => 1, cyclic: { e: cyclic }, n: [1, 2] });
    const back = roundTrip(err) as RangeError & Record<string, unknown>;
    expect(back).toBeInstanceOf(RangeError);
    expect([back.message, back.code, back.n]).toEqual(['m', 'E_CODE', [1, 2]]);
    expect(back.shared).toBe('[object SharedArrayBuffer]');
    expect(back.fn).toBe('() => 1');
    expect(typeof back.cyclic === 'string' || typeof back.cyclic === 'object').toBe(true);
  });

  it('a cause that does not travel (a SharedArrayBuffer) goes as its text, the error as it is', () => {
    const back = roundTrip(Object.assign(new TypeError('t', { cause: new SharedArrayBuffer(4) }), { code: 'E' })) as TypeError & { code: string };
    expect([back.constructor, back.message, back.code, back.cause]).toEqual([TypeError, 't', 'E', '[object SharedArrayBuffer]']);
  });

  it('a thrown non-Error that does not travel (a SharedArrayBuffer inside a Map) is a DATA_CLONE TypeError naming it', () => {
    const back = roundTrip(new Map([[1, new SharedArrayBuffer(4)]])) as TypeError & { code: string };
    expect([back.constructor, back.code]).toEqual([TypeError, ErrorCodes.DATA_CLONE]);
    expect(back.message).toBe('hwsq: value could not be cloned: the task threw [object Map], which cannot be sent to another thread');
  });
});

describe('codec: wire details', () => {
  const T_INT = 5;
  const T_DOUBLE = 6;
  const T_ARRAYBUFFER = 10;
  const T_SAB = 12;
  const T_NODEMEM = 14;
  const T_NODEMEMVIEW = 15;

  it('int32 numbers take 4 bytes, the rest 8; a value that fills the scratch buffer exactly stays in it; growth doubles', () => {
    const int = encode(-5);
    expect([int.w.buf[1], int.w.pos, int.back]).toEqual([T_INT, 6, -5]);
    for (const d of [0.5, 2 ** 31, -0]) {
      const dbl = encode(d);
      expect([dbl.w.buf[1], dbl.w.pos, Object.is(dbl.back, d)]).toEqual([T_DOUBLE, 10, true]);
    }
    const exact = new Writer(Buffer.alloc(6));
    encodeValue(exact, 7);
    expect([exact.pos, exact.spilled]).toEqual([6, false]);
    const grows = new Writer(Buffer.alloc(4096));
    encodeValue(grows, 'y'.repeat(1400));  // 4 + 3 * 1400 bytes reserved: past 4096, short of 8192
    expect([grows.spilled, grows.buf.length]).toEqual([true, 8192]);
  });

  it('allocOnNode memory listed in transfer moves without a copy (a ticket), views of it included; not listed, it is copied', () => {
    const ab = allocOnNode(4096, 0);
    new Uint8Array(ab).fill(9);
    const moved = encode({ whole: ab, view: new Float64Array(ab, 64, 2), after: 'x' }, [ab]);
    expect(ab.byteLength).toBe(0);  // taken: this side lets go of it
    const back = moved.back as { whole: ArrayBuffer; view: Float64Array; after: string };
    expect(back.whole.byteLength).toBe(4096);
    expect([back.view.buffer, back.view.byteOffset, back.view.length, back.after]).toEqual([back.whole, 64, 2, 'x']);
    expect(new Uint8Array(back.whole)[4095]).toBe(9);
    const top = encode(back.whole, [back.whole]);
    expect([top.w.buf[1], top.w.pos]).toEqual([T_NODEMEM, 10]);
    const topView = encode(new Uint8Array(top.back as ArrayBuffer, 8, 16), [top.back]);
    expect([topView.w.buf[1], topView.w.pos]).toEqual([T_NODEMEMVIEW, 19]);
    expect([(topView.back as Uint8Array).byteOffset, (topView.back as Uint8Array).length]).toEqual([8, 16]);
    const copied = allocOnNode(4096, 0);
    const copy = encode(copied);
    expect([copy.w.buf[1], copied.byteLength, (copy.back as ArrayBuffer).byteLength]).toEqual([T_ARRAYBUFFER, 4096, 4096]);
    // A plain ArrayBuffer in transfer is copied, then detached.
    const plain = new ArrayBuffer(8);
    const sent = encode(plain, [plain]);
    expect([sent.w.buf[1], plain.byteLength]).toEqual([T_ARRAYBUFFER, 0]);
  });

  it('a SharedArrayBuffer id this thread does not know: DATA_CLONE naming it', () => {
    const w = new Writer(Buffer.alloc(64));
    encodeValue(w, new SharedArrayBuffer(8));
    expect(w.buf[1]).toBe(T_SAB);
    w.buf.writeDoubleLE(987654321, 2);
    const thrown = thrownBy(() => decodeValue(w.buf, 0, w.pos));
    expect([thrown?.constructor, thrown?.code, thrown?.message]).toEqual([TypeError, ErrorCodes.DATA_CLONE, 'hwsq: value could not be cloned: SharedArrayBuffer 987654321 is not known on this thread']);
  });

  it('a SharedArrayBuffer, or a view of one, where only v8 can go (inside a Map): DATA_CLONE saying where it can be, not a silent copy', () => {
    const sab = new SharedArrayBuffer(8);
    for (const value of [new Map([[1, sab]]), new Map([[1, new Int32Array(sab)]]), [new Date(0), new Uint8Array(sab, 2, 2)]]) {
      const w = new Writer(Buffer.alloc(64));
      const thrown = thrownBy(() => encodeValue(w, value));
      expect([thrown?.constructor, thrown?.code]).toEqual([TypeError, ErrorCodes.DATA_CLONE]);
      expect(thrown?.message).toBe('hwsq: value could not be cloned: a SharedArrayBuffer is shared only inside plain objects, arrays and typed-array views, not inside Map, Set or class instances');
    }
  });

  it('a getter that throws is run once: its error is the DATA_CLONE cause, v8 does not try again', () => {
    let runs = 0;
    const boom = new Error('getter');
    const value = { get x() { runs++; throw boom; } };
    const w = new Writer(Buffer.alloc(64));
    const thrown = thrownBy(() => encodeValue(w, value));
    expect([runs, thrown?.cause, thrown?.message]).toEqual([1, boom, 'hwsq: value could not be cloned: getter']);
  });

  it('the memory tally of node: auto is told of the memory used in place, for one value only', () => {
    const added: unknown[] = [];
    let resets = 0;
    const tally = { add: (b: unknown) => added.push(b), reset: () => resets++ };
    const w = new Writer(Buffer.alloc(64));
    const sab = new SharedArrayBuffer(8);
    w.memory = tally as never;
    encodeValue(w, { s: sab, v: new Int32Array(sab) });
    expect([added, resets, w.memory]).toEqual([[sab, sab], 0, undefined]);
    encodeValue(w, { s: new SharedArrayBuffer(8) });  // no tally set for this one
    expect(added).toHaveLength(2);
    // A value that goes to v8 copies everything: nothing is used in place.
    w.memory = tally as never;
    encodeValue(w, [new Int32Array(8), new Map()]);
    expect(resets).toBe(1);
  });

  it('transfer: a zero-length buffer is detached too; one already detached is passed over', () => {
    const empty = new ArrayBuffer(0);
    const gone = new ArrayBuffer(4);
    structuredClone(gone, { transfer: [gone] });
    encode({ a: 1 }, [empty, gone]);
    expect((empty as ArrayBuffer & { detached?: boolean }).detached ?? true).toBe(true);
  });

  it('describeThrown and cloneError', () => {
    expect(describeThrown(new TypeError('only the message'))).toBe('only the message');
    expect(describeThrown('text')).toBe('text');
    expect(describeThrown(Symbol('s'))).toBe('Symbol(s)');
    expect(describeThrown({ toString() { throw new Error('x'); } })).toBe('a value of type object');
    expect(Object.hasOwn(cloneError('m'), 'cause')).toBe(false);
    expect(cloneError('m', 0).cause).toBe(0);
    expect(cloneError('m').message).toBe('hwsq: value could not be cloned: m');
  });

  it('thrown values: a cause chain keeps its Errors, the first cause that does not travel goes as text; a property not even text is left out', () => {
    const roundTrip = (thrown: unknown): unknown => {
      const w = new Writer(Buffer.alloc(64));
      encodeError(w, thrown);
      return decodeError(w.buf, 0, w.pos);
    };
    const inner = new RangeError('inner', { cause: () => 2 });
    const back = roundTrip(new Error('outer', { cause: inner })) as Error & { cause: RangeError & { cause: unknown } };
    expect(back.cause).toBeInstanceOf(RangeError);
    expect([back.cause.message, back.cause.cause]).toEqual(['inner', '() => 2']);
    const unprintable = { f() {}, toString() { throw new Error('no text'); } };
    const withProps = roundTrip(Object.assign(new Error('p'), { code: 'E', bad: unprintable })) as Error & Record<string, unknown>;
    expect([withProps.code, 'bad' in withProps]).toEqual(['E', false]);
  });
});
