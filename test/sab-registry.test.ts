// The SharedArrayBuffer registry (lib/runtime/sab.ts) of this thread, with a second
// BroadcastChannel of the same name standing in for the other threads: what it announces, how it
// resolves ids (its own, announced ones, ones still held for a pending spawn after their
// release), the identity of a SAB that comes back, and the snapshot a starting worker adopts.
// The runtime suites prove SABs travel end to end; these pin each rule of the file comment.
import v8 from 'node:v8';
import vm from 'node:vm';
import { BroadcastChannel, threadId } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { sabRegistry, type PendingSource } from '../lib/runtime/sab';

const peer = new BroadcastChannel('hwsq:shared-array-buffers');
const heard: unknown[] = [];
peer.onmessage = (ev) => heard.push((ev as MessageEvent).data);
(peer as unknown as { unref(): void }).unref();
afterAll(() => peer.close());

const registry = sabRegistry();
registry.listen();

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Lets the channels deliver what was posted. */
const settle = () => new Promise((r) => setTimeout(r, 20));

/** Ids another thread would use (its threadId in the high bits). */
let foreignIds = 0;
const foreignId = () => 7 * 2 ** 32 + ++foreignIds;

/** The registry's tables, to check that it keeps nothing of what is gone. */
const internals = () => registry as unknown as { own: Map<number, unknown>; byOrigin: Map<number, unknown> };

/** Two SABs share memory: a write through one is read through the other. */
function sameMemory(a: SharedArrayBuffer, b: SharedArrayBuffer): boolean {
  const x = new Int32Array(a);
  const y = new Int32Array(b);
  const before = y[0]!;
  x[0] = before + 1;
  return y[0] === before + 1;
}

describe('sab registry: listening', () => {
  // First in the file: nothing but listen() has opened the channel yet.
  it('after listen(), announcements reach it by the channel\'s own delivery, before anything is sent or resolved', async () => {
    const id = foreignId();
    peer.postMessage({ id, sab: new SharedArrayBuffer(4), origin: id });
    await settle();
    expect(registry.resolve(id)).toBeInstanceOf(SharedArrayBuffer);
  });

  it('a message that is neither an announcement nor a release is ignored', async () => {
    const id = foreignId();
    peer.postMessage({ id });
    expect(registry.resolve(id)).toBeUndefined();
    await settle();
    expect(registry.snapshot().some((e) => e.id === id)).toBe(false);
  });
});

describe('sab registry: this thread\'s SABs', () => {
  it('a SAB sent gets one id, its thread\'s (threadId in the high bits), announced once with itself as origin', async () => {
    heard.length = 0;
    const a = new SharedArrayBuffer(8);
    const b = new SharedArrayBuffer(8);
    const ia = registry.idOf(a);
    expect(registry.idOf(a)).toBe(ia);
    const ib = registry.idOf(b);
    expect(ib).toBe(ia + 1);
    expect(Math.floor(ia / 2 ** 32)).toBe(threadId);
    expect(registry.resolve(ia)).toBe(a);
    expect(registry.resolve(ib)).toBe(b);
    await settle();
    expect(heard).toHaveLength(2);
    const [m0, m1] = heard as { id: number; sab: SharedArrayBuffer; origin: number }[];
    expect([m0!.id, m0!.origin, m1!.id, m1!.origin]).toEqual([ia, ia, ib, ib]);
    expect(sameMemory(a, m0!.sab)).toBe(true);
    const snap = registry.snapshot();
    expect(snap.find((e) => e.id === ia)).toEqual({ id: ia, sab: a, origin: ia });
  });

  it('an id nobody announced resolves to undefined', () => {
    expect(registry.resolve(foreignId())).toBeUndefined();
  });

  it('a SAB of ours that is collected is released on every thread, and the registry keeps nothing of it', async () => {
    heard.length = 0;
    let id = 0;
    (() => {
      id = registry.idOf(new SharedArrayBuffer(8));
    })();
    const released = () => heard.some((m) => (m as { id: number; release?: boolean }).release === true && (m as { id: number }).id === id);
    for (let i = 0; i < 20 && !released(); i++) {
      gc();
      await settle();
    }
    expect(released()).toBe(true);
    expect(registry.resolve(id)).toBeUndefined();
    expect(registry.snapshot().some((e) => e.id === id)).toBe(false);
    expect(internals().own.has(id)).toBe(false);
    expect(internals().byOrigin.has(id)).toBe(false);
  });
});

describe('sab registry: SABs other threads announce', () => {
  it('resolves an announced id at once (pulled synchronously), to one object per origin, and a SAB of ours that comes back to the very same object', async () => {
    const s = new SharedArrayBuffer(8);
    const id1 = foreignId();
    peer.postMessage({ id: id1, sab: s, origin: id1 });
    const got = registry.resolve(id1)!;
    expect(got).toBeInstanceOf(SharedArrayBuffer);
    expect(sameMemory(s, got)).toBe(true);
    // The same SAB re-sent by a third thread under its own id: the same object here.
    const id2 = foreignId();
    peer.postMessage({ id: id2, sab: s, origin: id1 });
    expect(registry.resolve(id2)).toBe(got);
    // Ours, sent back under the peer's id: our own object.
    const mine = new SharedArrayBuffer(4);
    const myId = registry.idOf(mine);
    const back = foreignId();
    peer.postMessage({ id: back, sab: mine, origin: myId });
    expect(registry.resolve(back)).toBe(mine);
    // Re-sent by us: announced under our id with its creator's origin; the snapshot says the same.
    heard.length = 0;
    const ours = registry.idOf(got);
    expect(ours).not.toBe(id1);
    const snap = registry.snapshot();
    expect(snap.find((e) => e.id === ours)).toEqual({ id: ours, sab: got, origin: id1 });
    expect(snap.find((e) => e.id === id2)).toEqual({ id: id2, sab: got, origin: id1 });
    expect(snap.every((e) => e.sab instanceof SharedArrayBuffer && typeof e.id === 'number')).toBe(true);
    // snapshot() takes what is queued first.
    const late = foreignId();
    peer.postMessage({ id: late, sab: new SharedArrayBuffer(4), origin: late });
    expect(registry.snapshot().some((e) => e.id === late)).toBe(true);
    // An announcement without origin is its own origin.
    const id3 = foreignId();
    peer.postMessage({ id: id3, sab: new SharedArrayBuffer(4) });
    const third = registry.resolve(id3)!;
    expect(registry.snapshot().find((e) => e.id === id3)).toEqual({ id: id3, sab: third, origin: id3 });
    await settle();
    expect(heard).toContainEqual(expect.objectContaining({ id: ours, origin: id1 }));
  });

  it('a released SAB of another thread, once collected here, leaves nothing behind', async () => {
    const id = foreignId();
    peer.postMessage({ id, sab: new SharedArrayBuffer(4), origin: id });
    expect(registry.resolve(id)).toBeDefined();
    peer.postMessage({ id, release: true });
    await settle();
    for (let i = 0; i < 20 && internals().byOrigin.has(id); i++) {
      gc();
      await settle();
    }
    expect(internals().byOrigin.has(id)).toBe(false);
  });

  it('a released id goes at once when no spawn is pending; otherwise it stays until every spawn pending at the release settled', async () => {
    const gone = foreignId();
    peer.postMessage({ id: gone, sab: new SharedArrayBuffer(4), origin: gone });
    expect(registry.resolve(gone)).toBeDefined();
    peer.postMessage({ id: gone, release: true });
    await settle();
    expect(registry.resolve(gone)).toBeUndefined();

    const source: PendingSource & { pending: Map<number, unknown> } = { pending: new Map([[5, {}], [6, {}]]), seq: 6 };
    const idle: PendingSource = { pending: new Map(), seq: 9 };
    registry.watch(source);
    registry.watch(idle);
    const held = foreignId();
    const sab = new SharedArrayBuffer(4);
    peer.postMessage({ id: held, sab, origin: held });
    const obj = registry.resolve(held)!;
    peer.postMessage({ id: held, release: true });
    // A release of an id never announced here is ignored, even with spawns pending.
    const stranger = foreignId();
    peer.postMessage({ id: stranger, release: true });
    await settle();
    expect(registry.snapshot().some((e) => e.id === stranger)).toBe(false);
    expect(registry.resolve(held)).toBe(obj);  // spawns 5 and 6 may be settled with it
    expect(registry.snapshot().some((e) => e.id === held && e.sab === obj)).toBe(true);
    source.pending.delete(5);
    registry.sweep();
    expect(registry.resolve(held)).toBe(obj);  // 6 still pending
    source.pending.delete(6);
    source.pending.set(7, {});  // spawned after the release: cannot name it
    registry.sweep();
    expect(registry.resolve(held)).toBeUndefined();

    // Announced again while dying: alive again.
    source.pending.set(8, {});
    source.seq = 8;
    const again = foreignId();
    peer.postMessage({ id: again, sab: new SharedArrayBuffer(4), origin: again });
    const o2 = registry.resolve(again)!;
    peer.postMessage({ id: again, release: true });
    await settle();
    peer.postMessage({ id: again, sab: o2, origin: again });
    await settle();
    source.pending.clear();
    registry.sweep();
    expect(registry.resolve(again)).toBe(o2);

    // unwatch: the source no longer holds anything.
    source.pending.set(9, {});
    source.seq = 9;
    const last = foreignId();
    peer.postMessage({ id: last, sab: new SharedArrayBuffer(4), origin: last });
    expect(registry.resolve(last)).toBeDefined();
    peer.postMessage({ id: last, release: true });
    await settle();
    expect(registry.resolve(last)).toBeDefined();
    registry.unwatch(source);
    registry.unwatch(idle);
    expect(registry.resolve(last)).toBeUndefined();
  });
});
