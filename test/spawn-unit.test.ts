// The spawn path (lib/runtime/spawn.ts) and the endpoint's bookkeeping (lib/runtime/endpoint.ts)
// driven directly, in this process, through a recording SpawnTarget: what reaches the submit
// step (function index, seq, length, flags, node, the spilled buffer), in which order the steps
// refuse, and how completions settle the promises. The runtime suites prove the same path end to
// end with workers; these pin each step's exact effect (and run in milliseconds, so that the
// mutation run can afford them).
import { getEventListeners } from 'node:events';
import { BroadcastChannel } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { Writer, decodeValue, encodeValue, encodeError } from '../lib/core/codec';
import { Batch, Codes, Completion, Flags, Scratch } from '../lib/core/wire';
import type { MemoryTally } from '../lib/numa/memory-affinity';
import { Endpoint, abortError } from '../lib/runtime/endpoint';
import { sabRegistry } from '../lib/runtime/sab';
import { autoPlacement, closedError, spawnBatch, spawnOne, type SpawnTarget } from '../lib/runtime/spawn';
import { WORKER_HOOKS, currentTask, isTaskWorker, spawn as taskSpawn, spawnMany as taskSpawnMany, type WorkerHooks } from '../lib/runtime/task';

interface Submitted {
  fn: number;
  seq: number;
  len: number;
  flags: number;
  node: number;
  big: Buffer | undefined;
}

/** A tally whose choice is set by the test: records what the codec reported to it. */
function fakeTally(choice: () => number) {
  const added: ArrayBufferLike[] = [];
  let resets = 0;
  const tally = {
    reset: () => {
      resets++;
      added.length = 0;
    },
    add: (b: ArrayBufferLike) => added.push(b),
    choose: () => choice(),
  };
  return { tally: tally as unknown as MemoryTally, added, resets: () => resets };
}

function harness(over: Partial<SpawnTarget> & { choice?: () => number } = {}) {
  const ep = new Endpoint();
  ep.setNames(['add', 'echo'], ['config']);
  const submitted: Submitted[] = [];
  const batches: { count: number; records: { fn: number; flags: number; node: number; len: number; seq: number }[]; args: unknown[] }[] = [];
  const admitted: number[] = [];
  const cancelled: number[] = [];
  const terminated: number[] = [];
  let tracked = 0;
  let nextHandle = 100;
  const { tally, added } = fakeTally(over.choice ?? (() => -1));
  const t: SpawnTarget = {
    endpoint: ep,
    nodes: new Set([0, 1]),
    memoryAffinity: false,
    tally,
    closed: () => false,
    admit: (n) => {
      admitted.push(n);
    },
    submit: (fn, seq, len, flags, node, big) => {
      submitted.push({ fn, seq, len, flags, node, big: big && Buffer.from(big) });
      return nextHandle++;
    },
    submitMany: (count) => {
      const records = [];
      const args = [];
      let at = 0;
      for (let i = 0; i < count; i++) {
        const len = ep.io.readUInt32LE(at + Batch.LEN);
        records.push({ fn: ep.io.readUInt32LE(at + Batch.FN), flags: ep.io.readUInt32LE(at + Batch.FLAGS), node: ep.io.readInt32LE(at + Batch.NODE), len, seq: ep.io.readDoubleLE(at + Batch.SEQ) });
        args.push(decodeValue(ep.io, at + Batch.HEADER, at + Batch.HEADER + len));
        at += Batch.HEADER + len;
      }
      batches.push({ count, records, args });
      return count;
    },
    cancel: (h) => {
      cancelled.push(h);
      return -2;
    },
    terminate: (p) => {
      terminated.push(p);
    },
    tracked: () => {
      tracked++;
    },
    ...over,
  };
  return { t, ep, submitted, batches, admitted, cancelled, terminated, added, tracked: () => tracked };
}

/** Settles seq with `value` as a worker's OK result would. */
function settleOk(ep: Endpoint, seq: number, value: unknown): void {
  const w = new Writer(Buffer.alloc(64));
  encodeValue(w, value);
  ep.settle(seq, Codes.OK, w.buf, 0, w.pos);
}

/** OK completion records in `in`, as the addon writes them for onCompletions. */
function writeCompletions(ep: Endpoint, records: readonly (readonly [number, unknown])[]): void {
  let off = 0;
  for (const [seq, value] of records) {
    const w = new Writer(Buffer.alloc(64));
    encodeValue(w, value);
    ep.inBuf.writeDoubleLE(seq, off + Completion.SEQ);
    ep.inBuf.writeInt32LE(Codes.OK, off + Completion.CODE);
    ep.inBuf.writeUInt32LE(w.pos, off + Completion.LEN);
    w.buf.copy(ep.inBuf, off + Completion.HEADER, 0, w.pos);
    off += Completion.HEADER + w.pos;
  }
}

async function rejection(p: Promise<unknown>): Promise<{ code?: string; name?: string; message?: string }> {
  try {
    await p;
  } catch (err) {
    return err as { code?: string; name?: string };
  }
  throw new Error('expected a rejection');
}

const encodedLength = (args: unknown[]): number => {
  const w = new Writer(Buffer.alloc(64));
  encodeValue(w, args);
  return w.pos;
};

// First in the file: no other endpoint (with spawns pending) watches the registry yet.
describe('Endpoint: the SAB registry', () => {
  it('an endpoint with spawns pending keeps a SAB id released meanwhile resolvable (it watches the registry)', async () => {
    const peer = new BroadcastChannel('hwsq:shared-array-buffers');
    (peer as unknown as { unref(): void }).unref();
    try {
      const registry = sabRegistry();
      registry.listen();
      const ep = new Endpoint();
      ep.seq = 1;
      ep.track(1, 0);
      const id = 9 * 2 ** 32 + 1;
      peer.postMessage({ id, sab: new SharedArrayBuffer(4), origin: id });
      const sab = registry.resolve(id);
      expect(sab).toBeInstanceOf(SharedArrayBuffer);
      peer.postMessage({ id, release: true });
      await new Promise((r) => setTimeout(r, 20));
      expect(registry.resolve(id)).toBe(sab);
      settleOk(ep, 1, 0);
      registry.sweep();
      expect(registry.resolve(id)).toBeUndefined();
    } finally {
      peer.close();
    }
  });

});

describe('spawnOne: the steps in order, and what reaches submit', () => {
  it('a spawn submits the function index, a fresh seq, the encoded length, no flags and the node given; the result settles it', async () => {
    const h = harness();
    const p = spawnOne(h.t, 'echo', [1, 'two'], { node: 1 });
    expect(h.submitted).toEqual([{ fn: 1, seq: 1, len: encodedLength([1, 'two']), flags: 0, node: 1, big: undefined }]);
    expect(h.admitted).toEqual([1]);
    expect(h.tracked()).toBe(1);
    expect([...h.ep.pending.keys()]).toEqual([1]);
    expect(h.ep.pending.get(1)!.handle).toBe(100);
    settleOk(h.ep, 1, 'done');
    await expect(p).resolves.toBe('done');
    expect(h.ep.pending.size).toBe(0);
    // The next spawn gets the next seq.
    void spawnOne(h.t, 'add', [], {});
    expect(h.submitted[1]).toMatchObject({ fn: 0, seq: 2, node: -1, flags: 0 });
  });

  it('refuses in order: options, then closed, then the name, then an aborted signal, then admission, with nothing submitted', async () => {
    const closed = harness({ closed: () => true });
    // A bad option wins over closed.
    expect((await rejection(spawnOne(closed.t, 'add', [], { node: -5 }))).code).toBe('ERR_HWSQ_INVALID_ARG');
    // Closed wins over an unknown name and an aborted signal.
    expect((await rejection(spawnOne(closed.t, 'nope', [], { signal: AbortSignal.abort() }))).code).toBe('ERR_HWSQ_RUNTIME_CLOSED');
    const h = harness({
      admit: () => {
        throw Object.assign(new RangeError('full'), { code: 'ERR_HWSQ_QUEUE_FULL' });
      },
    });
    expect((await rejection(spawnOne(h.t, 'nope', [], { signal: AbortSignal.abort() }))).code).toBe('ERR_HWSQ_UNKNOWN_TASK');
    expect((await rejection(spawnOne(h.t, 'config', [], {}))).code).toBe('ERR_HWSQ_TASK_NOT_FUNCTION');
    expect((await rejection(spawnOne(h.t, 'add', [], { signal: AbortSignal.abort() }))).name).toBe('AbortError');
    expect((await rejection(spawnOne(h.t, 'add', [() => 1], {}))).code).toBe('ERR_HWSQ_QUEUE_FULL');  // admission before encoding
    expect((await rejection(spawnOne(harness().t, 'add', [() => 1], {}))).code).toBe('ERR_HWSQ_DATA_CLONE');
    expect((await rejection(spawnOne(h.t, 'add', 'x' as never, {}))).code).toBe('ERR_HWSQ_INVALID_ARG_TYPE');
    for (const x of [closed, h]) {
      expect(x.submitted).toEqual([]);
      expect(x.ep.pending.size).toBe(0);
      expect(x.tracked()).toBe(0);
    }
  });

  it('a target without admit, tracked or terminate (a worker\'s) spawns alike', async () => {
    const h = harness({ admit: undefined, tracked: undefined, terminate: undefined });
    const ac = new AbortController();
    const p = spawnOne(h.t, 'add', [1], { signal: ac.signal, abort: 'terminate' });
    expect(h.submitted).toHaveLength(1);
    const q = spawnBatch(h.t, 'add', [[1], [2]], {});
    expect(h.batches).toHaveLength(1);
    ac.abort();
    expect((await rejection(p)).name).toBe('AbortError');
    settleOk(h.ep, 2, 3);
    settleOk(h.ep, 3, 4);
    expect(await Promise.all(q)).toEqual([3, 4]);
  });

  it('submit throwing rejects with its error and tracks nothing; submit returning 0 (closed meanwhile) rejects RUNTIME_CLOSED', async () => {
    const boom = new RangeError('refused');
    const h = harness({
      submit: () => {
        throw boom;
      },
    });
    expect(await rejection(spawnOne(h.t, 'add', [1], {}))).toBe(boom);
    const z = harness({ submit: () => 0 });
    expect((await rejection(spawnOne(z.t, 'add', [1], {}))).code).toBe('ERR_HWSQ_RUNTIME_CLOSED');
    for (const x of [h, z]) {
      expect(x.ep.pending.size).toBe(0);
      expect(x.tracked()).toBe(0);
    }
  });

  it('a signal sets ABORTABLE; aborting cancels by handle, rejects at once, and terminates only with abort: \'terminate\' and a running task', async () => {
    const cancelled: number[] = [];
    const h = harness({
      cancel: (handle) => {
        cancelled.push(handle);
        return handle === 101 ? 3 : -2;
      },
    });
    const a = new AbortController();
    const pa = spawnOne(h.t, 'add', [], { signal: a.signal });  // handle 100: dequeued (-2)
    const b = new AbortController();
    const pb = spawnOne(h.t, 'add', [], { signal: b.signal, abort: 'terminate' });  // handle 101: runs on P 3
    const c = new AbortController();
    const pc = spawnOne(h.t, 'add', [], { signal: c.signal });  // handle 102: left to settle
    expect(h.submitted.map((s) => s.flags)).toEqual([Flags.ABORTABLE, Flags.ABORTABLE, Flags.ABORTABLE]);
    a.abort('why');
    const ea = await rejection(pa);
    expect(ea.name).toBe('AbortError');
    expect((ea as Error).cause).toBe('why');
    expect(h.terminated).toEqual([]);
    b.abort();
    expect((await rejection(pb)).name).toBe('AbortError');
    expect(h.terminated).toEqual([3]);
    settleOk(h.ep, 3, 'kept');
    await expect(pc).resolves.toBe('kept');
    c.abort();  // after it settled: nothing to cancel
    expect(cancelled).toEqual([100, 101]);
    // abort: 'signal' on a running task never terminates.
    const r = harness({ cancel: () => 0 });
    const d = new AbortController();
    const pd = spawnOne(r.t, 'add', [], { signal: d.signal });
    d.abort();
    await rejection(pd);
    expect(r.terminated).toEqual([]);
  });

  it("node: 'auto' (or memoryAffinity) places by the tally; an explicit node never asks it", async () => {
    const sab = new SharedArrayBuffer(16);
    const on1 = harness({ choice: () => 1 });
    void spawnOne(on1.t, 'add', [sab], { node: 'auto' });
    expect(on1.added).toEqual([sab]);  // the codec reported the memory used in place
    expect(on1.submitted[0]).toMatchObject({ node: 1, flags: Flags.AFFINE_MEMORY });
    expect(on1.ep.pending.get(1)!.keep).toEqual([sab]);
    const none = harness({ choice: () => -1, memoryAffinity: true });
    void spawnOne(none.t, 'add', [1], {});
    expect(none.submitted[0]).toMatchObject({ node: -1, flags: Flags.AFFINE_FALLBACK });
    let asked = 0;
    const explicit = harness({
      memoryAffinity: true,
      choice: () => {
        asked++;
        return 1;
      },
    });
    void spawnOne(explicit.t, 'add', [sab], { node: 0 });
    expect(explicit.submitted[0]).toMatchObject({ node: 0, flags: 0 });
    expect(explicit.added).toEqual([]);
    expect(asked).toBe(0);
    expect(autoPlacement(fakeTally(() => 0).tally)).toEqual({ node: 0, flags: Flags.AFFINE_MEMORY });
  });

  it('arguments larger than io go spilled: submit gets them as a buffer of exactly their bytes', async () => {
    const h = harness();
    const big = 'x'.repeat(Scratch.BYTES + 10);
    const p = spawnOne(h.t, 'echo', [big], {});
    const s = h.submitted[0]!;
    expect(s.big).toBeInstanceOf(Buffer);
    expect(s.big!.length).toBe(s.len);
    expect(s.len).toBe(encodedLength([big]));
    settleOk(h.ep, s.seq, 1);
    await expect(p).resolves.toBe(1);
    // A small one after it is in io again.
    void spawnOne(h.t, 'echo', [1], {});
    expect(h.submitted[1]!.big).toBeUndefined();
  });
});

describe('spawnBatch: all or nothing, one promise per list', () => {
  it('records carry the function, flags, node, length and seq; seqs continue those of single spawns; results settle in order', async () => {
    const h = harness();
    void spawnOne(h.t, 'add', [0], {});  // seq 1
    const ps = spawnBatch(h.t, 'echo', [[1], ['b'], []], { node: 1 });
    expect(h.admitted).toEqual([1, 3]);
    expect(h.batches).toEqual([
      {
        count: 3,
        records: [
          { fn: 1, flags: 0, node: 1, len: encodedLength([1]), seq: 2 },
          { fn: 1, flags: 0, node: 1, len: encodedLength(['b']), seq: 3 },
          { fn: 1, flags: 0, node: 1, len: encodedLength([]), seq: 4 },
        ],
        args: [[1], ['b'], []],
      },
    ]);
    expect(h.tracked()).toBe(2);
    settleOk(h.ep, 4, 'c');
    settleOk(h.ep, 2, 'a');
    settleOk(h.ep, 3, 'b');
    expect(await Promise.all(ps)).toEqual(['a', 'b', 'c']);
    void spawnOne(h.t, 'add', [0], {});
    expect(h.submitted.map((s) => s.seq)).toEqual([1, 5]);
  });

  it("node: 'auto' places each record by its own arguments' memory", () => {
    const a = new SharedArrayBuffer(8);
    const b = new SharedArrayBuffer(8);
    // The tally chooses node 1 when it was told of memory since its last reset.
    let h!: ReturnType<typeof harness>;
    h = harness({ choice: () => (h.added.length > 0 ? 1 : -1) });
    void spawnBatch(h.t, 'add', [[a], [2], [b, b]], { node: 'auto' });
    expect(h.batches[0]!.records.map((r) => [r.node, r.flags])).toEqual([
      [1, Flags.AFFINE_MEMORY],
      [-1, Flags.AFFINE_FALLBACK],
      [1, Flags.AFFINE_MEMORY],
    ]);
    expect(h.added).toEqual([b, b]);  // reset before each record: only the last one's memory is left
    const m = harness({ choice: () => 0, memoryAffinity: true });
    void spawnBatch(m.t, 'add', [[1]], {});
    expect(m.batches[0]!.records[0]).toMatchObject({ node: 0, flags: Flags.AFFINE_MEMORY });
  });

  it('refusals: a bad list or option, closed, an unknown name, admission; each list rejected, nothing submitted or tracked', async () => {
    const cases: [Partial<SpawnTarget>, string, unknown, object, string][] = [
      [{}, 'add', [[1], 'x'], {}, 'ERR_HWSQ_INVALID_ARG_TYPE'],
      [{}, 'add', [[1], [2]], { node: 7 }, 'ERR_HWSQ_UNKNOWN_NODE'],
      [{ closed: () => true }, 'nope', [[1], [2]], {}, 'ERR_HWSQ_RUNTIME_CLOSED'],
      [{}, 'nope', [[1], [2]], {}, 'ERR_HWSQ_UNKNOWN_TASK'],
      [{ admit: () => { throw Object.assign(new RangeError('full'), { code: 'ERR_HWSQ_QUEUE_FULL' }); } }, 'add', [[1], [2]], {}, 'ERR_HWSQ_QUEUE_FULL'],
      [{}, 'add', [[1], [() => 0]], {}, 'ERR_HWSQ_DATA_CLONE'],
    ];
    for (const [over, name, lists, options, code] of cases) {
      const h = harness(over);
      const ps = spawnBatch(h.t, name, lists as unknown[][], options);
      expect(ps).toHaveLength(2);
      for (const p of ps) expect((await rejection(p)).code).toBe(code);
      expect(h.batches).toEqual([]);
      expect(h.ep.pending.size).toBe(0);
      expect(h.tracked()).toBe(0);
    }
    // submitMany throwing (the addon refused the first chunk): every promise rejects with it.
    const boom = new RangeError('no');
    const t = harness({
      submitMany: () => {
        throw boom;
      },
    });
    const ps = spawnBatch(t.t, 'add', [[1], [2]], {});
    for (const p of ps) expect(await rejection(p)).toBe(boom);
    expect(t.ep.pending.size).toBe(0);
    expect(t.tracked()).toBe(0);
  });

  it('closed meanwhile (submitMany returns 0): every promise rejects RUNTIME_CLOSED and nothing stays pending', async () => {
    const h = harness({ submitMany: () => 0 });
    const ps = spawnBatch(h.t, 'add', [[1], [2]], {});
    for (const p of ps) expect((await rejection(p)).code).toBe('ERR_HWSQ_RUNTIME_CLOSED');
    expect(h.ep.pending.size).toBe(0);
    expect(h.tracked()).toBe(0);
  });

  it('a record larger than io goes alone through submit with its node and flags; the others in io-sized flushes', async () => {
    const h = harness({ choice: () => 1 });
    const big = 'y'.repeat(Scratch.BYTES);
    const mid = 'z'.repeat(Scratch.BYTES / 2);
    const ps = spawnBatch(h.t, 'echo', [[1], [big], [mid], [mid], [2]], { node: 'auto' });
    expect(h.submitted).toHaveLength(1);
    expect(h.submitted[0]).toMatchObject({ fn: 1, seq: 2, node: 1, flags: Flags.AFFINE_MEMORY, len: encodedLength([big]) });
    expect(h.submitted[0]!.big!.length).toBe(encodedLength([big]));
    expect(h.batches.map((b) => b.records.map((r) => r.seq))).toEqual([[1], [3], [4, 5]]);
    expect(h.batches.map((b) => b.args)).toEqual([[[1]], [[mid]], [[mid], [2]]]);
    expect(h.batches.flatMap((b) => b.records.map((r) => [r.fn, r.node, r.flags]))).toEqual(Array(4).fill([1, 1, Flags.AFFINE_MEMORY]));
    for (let seq = 1; seq <= 5; seq++) settleOk(h.ep, seq, seq);
    expect(await Promise.all(ps)).toEqual([1, 2, 3, 4, 5]);
  });
});

describe('Endpoint: names, settling, completions', () => {
  it('lookup: the index of a task; a typed error for a non-string, a non-function export and an unknown name (listing the tasks)', () => {
    const ep = new Endpoint();
    ep.setNames(['a', 'b'], ['c']);
    expect(ep.lookup('b')).toBe(1);
    expect(ep.taskNames).toEqual(['a', 'b']);
    expect(() => ep.lookup(3 as never)).toThrow(expect.objectContaining({ code: 'ERR_HWSQ_INVALID_ARG_TYPE', name: 'TypeError' }));
    expect(() => ep.lookup('c')).toThrow(expect.objectContaining({ code: 'ERR_HWSQ_TASK_NOT_FUNCTION', name: 'TypeError' }));
    expect(() => ep.lookup('d')).toThrow(expect.objectContaining({ code: 'ERR_HWSQ_UNKNOWN_TASK', message: expect.stringContaining('tasks: a, b') }));
    expect(() => new Endpoint().lookup('d')).toThrow(expect.objectContaining({ message: expect.stringContaining('tasks: none') }));
  });

  it('settle: OK decodes the value, ERROR the error, anything else is the exited error; an unknown seq is ignored', async () => {
    const ep = new Endpoint();
    let disposed = 0;
    const ok = ep.track(1, 0);
    ok.entry.dispose = () => disposed++;
    const failed = ep.track(2, 0).promise;
    const exited = ep.track(3, 0).promise;
    settleOk(ep, 1, { x: [1, 2] });
    await expect(ok.promise).resolves.toEqual({ x: [1, 2] });
    expect(disposed).toBe(1);
    const w = new Writer(Buffer.alloc(64));
    encodeError(w, Object.assign(new TypeError('bad'), { code: 'E_X' }));
    ep.settle(2, Codes.ERROR, w.buf, 0, w.pos);
    await expect(failed).rejects.toMatchObject({ name: 'TypeError', message: 'bad', code: 'E_X' });
    ep.exitedError = () => abortError(undefined, 'destroyed');
    ep.settle(3, Codes.EXITED, Buffer.alloc(0), 0, 0);
    await expect(exited).rejects.toMatchObject({ name: 'AbortError', message: 'destroyed' });
    expect(() => ep.settle(99, Codes.OK, Buffer.alloc(0), 0, 0)).not.toThrow();
    expect(ep.pending.size).toBe(0);
    // A result that does not decode rejects with the codec's error.
    const bad = ep.track(4, 0).promise;
    ep.settle(4, Codes.OK, Buffer.from([0xff, 0xff]), 0, 2);
    await expect(bad).rejects.toMatchObject({ code: 'ERR_HWSQ_DATA_CLONE' });
    // The default exited error.
    const gone = new Endpoint();
    const p = gone.track(1, 0).promise;
    gone.settle(1, Codes.EXITED, Buffer.alloc(0), 0, 0);
    await expect(p).rejects.toMatchObject({ code: 'ERR_HWSQ_WORKER_EXITED' });
  });

  it('onCompletions reads every record of `in` in order, or one big result; then afterCompletions; a throw of it is rethrown later, the records still settled', async () => {
    const ep = new Endpoint();
    const ps = [1, 2, 3].map((s) => ep.track(s, 0).promise);
    let after = 0;
    ep.afterCompletions = () => {
      after++;
    };
    writeCompletions(ep, [[2, 'two'], [1, 'one']]);
    ep.onCompletions(2, undefined, undefined, undefined);
    expect(after).toBe(1);
    expect(await ps[0]).toBe('one');
    expect(await ps[1]).toBe('two');
    expect(ep.pending.size).toBe(1);
    const w = new Writer(Buffer.alloc(64));
    encodeValue(w, 'big');
    ep.onCompletions(Completion.BIG, 3, Codes.OK, Buffer.from(w.buf.subarray(0, w.pos)));
    expect(await ps[2]).toBe('big');
    expect(after).toBe(2);
    // A throwing afterCompletions: not thrown into the addon's callback, but on the next tick.
    const oops = new Error('listener');
    ep.afterCompletions = () => {
      throw oops;
    };
    const caught = new Promise((resolve) => process.once('uncaughtException', resolve));
    expect(() => ep.onCompletions(0, undefined, undefined, undefined)).not.toThrow();
    expect(await caught).toBe(oops);
  });

  it('encodeArgs refuses a non-array; takeSabs hands over the SABs once', () => {
    const ep = new Endpoint();
    expect(() => ep.encodeArgs('x' as never)).toThrow(expect.objectContaining({ code: 'ERR_HWSQ_INVALID_ARG_TYPE' }));
    const sab = new SharedArrayBuffer(4);
    expect(ep.encodeArgs([sab, 1])).toBe(encodedLength([sab, 1]));
    expect(ep.takeSabs()).toEqual([sab]);
    expect(ep.takeSabs()).toBeUndefined();
  });

  it('encodeBatch refuses a node beyond int32 before encoding anything', () => {
    const ep = new Endpoint();
    expect(() => ep.encodeBatch(0, [[1]], 0, 0x80000000, () => 1, () => 1)).toThrow(expect.objectContaining({ code: 'ERR_HWSQ_UNKNOWN_NODE' }));
    expect(ep.seq).toBe(0);
    expect(ep.encodeBatch(0, [[1]], 0, 0x7fffffff, () => 1, () => 1)).toEqual([{ seq: 1, keep: undefined }]);
  });

  it('encodeBatch: a list that is not an array, or does not clone, refuses the whole batch; the SABs of the lists before it are let go', () => {
    const ep = new Endpoint();
    const flushes: number[] = [];
    const sab = new SharedArrayBuffer(4);
    for (const [lists, code] of [[[[sab], 'x'], 'ERR_HWSQ_INVALID_ARG_TYPE'], [[[sab], [() => 0]], 'ERR_HWSQ_DATA_CLONE']] as const) {
      const out = ep.encodeBatch(0, lists as unknown as unknown[][], 0, -1, (n) => (flushes.push(n), n), () => 1);
      expect(out).toHaveLength(2);
      for (const e of out) expect(e).toMatchObject({ seq: 0, keep: undefined, error: expect.objectContaining({ code }) });
      ep.encodeArgs([1]);
      expect(ep.takeSabs()).toBeUndefined();
    }
    expect(flushes).toEqual([]);
    expect(ep.seq).toBe(0);
  });

  it('encodeBatch: a record exactly as long as io is copied, not sent alone; records that exactly fill io share one flush', () => {
    const overhead = encodedLength(['x'.repeat(50_000)]) - 50_000;  // the same for every length near it
    const sized = (total: number) => ['x'.repeat(total - Batch.HEADER - overhead)];
    expect(Batch.HEADER + encodedLength(sized(Scratch.BYTES))).toBe(Scratch.BYTES);
    const exact = harness();
    void spawnBatch(exact.t, 'echo', [[1], sized(Scratch.BYTES)], {});
    expect(exact.submitted).toEqual([]);
    expect(exact.batches.map((b) => b.count)).toEqual([1, 1]);
    expect(exact.batches[1]!.args).toEqual([sized(Scratch.BYTES)]);
    const fill = harness();
    void spawnBatch(fill.t, 'echo', [sized(Scratch.BYTES / 2), sized(Scratch.BYTES / 2), [2]], {});
    expect(fill.batches.map((b) => b.count)).toEqual([2, 1]);
    expect(fill.batches[1]!.args).toEqual([[2]]);
  });

  it('an aborted task: cancel by handle; terminate only with a P (>= 0) and abort: \'terminate\'; the listener is removed once settled', async () => {
    for (const [r, abort, terminated] of [[0, 'terminate', [0]], [-1, 'terminate', []], [-2, 'terminate', []], [0, 'signal', []]] as const) {
      const calls: number[] = [];
      const h = harness({ cancel: () => r, terminate: (p) => calls.push(p) });
      const ac = new AbortController();
      const p = spawnOne(h.t, 'add', [], { signal: ac.signal, abort });
      expect(getEventListeners(ac.signal, 'abort')).toHaveLength(1);
      ac.abort();
      await rejection(p);
      expect(calls).toEqual(terminated);
      expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    }
    const h = harness();
    const ac = new AbortController();
    const p = spawnOne(h.t, 'add', [], { signal: ac.signal });
    settleOk(h.ep, 1, 1);
    await p;
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });

  it('abortError: name AbortError, code ABORT_ERR (an own property: enumerable, writable, configurable), the reason as cause', () => {
    const ac = new AbortController();
    ac.abort('r');
    const err = abortError(ac.signal, 'm');
    expect(err).toMatchObject({ name: 'AbortError', message: 'm', cause: 'r' });
    expect(Object.getOwnPropertyDescriptor(err, 'code')).toEqual({ value: 'ABORT_ERR', enumerable: true, writable: true, configurable: true });
  });

  it('onCompletions reads exactly `count` records (what lies after them in `in` is stale); a settle that throws is rethrown later and the rest still settle', async () => {
    const ep = new Endpoint();
    const [p1, p2, p3] = [1, 2, 3].map((s) => ep.track(s, 0));
    const write = (records: [number, unknown][]) => writeCompletions(ep, records);
    write([[1, 'a'], [2, 'stale']]);
    ep.onCompletions(1, undefined, undefined, undefined);
    expect(await p1!.promise).toBe('a');
    expect(ep.pending.has(2)).toBe(true);
    const bug = new Error('dispose');
    p2!.entry.dispose = () => {
      throw bug;
    };
    write([[2, 'b'], [3, 'c']]);
    const caught = new Promise((resolve) => process.once('uncaughtException', resolve));
    expect(() => ep.onCompletions(2, undefined, undefined, undefined)).not.toThrow();
    expect(await p3!.promise).toBe('c');
    expect(await caught).toBe(bug);
  });

  it('closedError is RUNTIME_CLOSED', () => {
    expect(closedError()).toMatchObject({ code: 'ERR_HWSQ_RUNTIME_CLOSED' });
  });
});

describe("the task API ('hwsq' inside a task): dispatch to the worker's hooks", () => {
  it('outside a task: NOT_IN_TASK rejections (one per list for spawnMany), no context, not a worker', async () => {
    expect(isTaskWorker()).toBe(false);
    expect(currentTask()).toBeUndefined();
    await expect(taskSpawn('x', [])).rejects.toMatchObject({ code: 'ERR_HWSQ_NOT_IN_TASK' });
    const many = taskSpawnMany('x', [[1], [2], [3]]);
    expect(many).toHaveLength(3);
    for (const p of many) await expect(p).rejects.toMatchObject({ code: 'ERR_HWSQ_NOT_IN_TASK' });
  });

  it('with the hooks installed, each call goes to them with its arguments and defaults', async () => {
    const calls: unknown[][] = [];
    const context = { signal: new AbortController().signal, worker: 2, node: 1, cpus: [4] };
    const hooks: WorkerHooks = {
      spawn: (...a) => {
        calls.push(['spawn', ...a]);
        return Promise.resolve('s');
      },
      spawnMany: (...a) => {
        calls.push(['spawnMany', ...a]);
        return [Promise.resolve('m')];
      },
      current: () => context,
    };
    const g = globalThis as { [WORKER_HOOKS]?: WorkerHooks };
    g[WORKER_HOOKS] = hooks;
    try {
      expect(isTaskWorker()).toBe(true);
      expect(currentTask()).toBe(context);
      await expect(taskSpawn('a', [1], { node: 1 })).resolves.toBe('s');
      await expect(taskSpawn('b')).resolves.toBe('s');
      await expect(Promise.all(taskSpawnMany('c', [[1]], { node: 'auto' }))).resolves.toEqual(['m']);
      await expect(Promise.all(taskSpawnMany('d', [[2]]))).resolves.toEqual(['m']);
      expect(calls).toEqual([
        ['spawn', 'a', [1], { node: 1 }],
        ['spawn', 'b', [], {}],
        ['spawnMany', 'c', [[1]], { node: 'auto' }],
        ['spawnMany', 'd', [[2]], {}],
      ]);
    } finally {
      delete g[WORKER_HOOKS];
    }
  });
});
