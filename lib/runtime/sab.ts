// SharedArrayBuffers by reference between the threads of hwsq runtimes. A SharedArrayBuffer in
// task arguments or results is announced on a process-wide BroadcastChannel (structured clone
// shares SABs) under an id; payloads carry only the id. The receiving thread resolves it from its
// table, or synchronously pulls pending announcements off the channel (receiveMessageOnPort),
// which is safe because an announcement is posted before the payload that names it is queued.
//
// No payload may name an id its receiver cannot resolve, or a task would fail to run:
// - Ids belong to the thread that sends: each thread gives its own id to every SAB it sends,
//   also one it received, and an id is released (on every thread) only when the sending thread's
//   object is garbage-collected. So an id is never released by a thread that is not the sender.
// - Senders pin: the SABs in a spawn's arguments are held by its pending entry (endpoint.ts) until
//   the task settles, so no id in a queued task's arguments is released.
// - Receivers defer: a released id stays resolvable until every task this thread's endpoints had
//   pending when the release arrived has settled (their results may name it: a task's result is
//   queued before its sender's SAB can be collected and released).
// - Late threads catch up: a BroadcastChannel reaches only channels that exist when a message is
//   posted, so a worker that (re)starts opens its channel, then asks the runtime's thread for its
//   table (snapshot()), which holds every id announced before, before it takes tasks.
// Identity: announcements carry the id the SAB's creator gave it, and a thread maps that to the
// one object it has for the SAB, so a SAB that comes back resolves to the same object.
import { BroadcastChannel, receiveMessageOnPort, threadId } from 'node:worker_threads';
import { SafeFinalizationRegistry, SafeMap, SafeSet, SafeWeakMap, SafeWeakRef } from '../core/intrinsics';

/** One announced SAB: its id, the SAB, and the id its creator gave it. */
export interface SabEntry {
  id: number;
  sab: SharedArrayBuffer;
  origin: number;
}
interface Announcement extends Partial<SabEntry> {
  id: number;
  release?: boolean;
}

/** What the registry needs to know of a thread's endpoints (endpoint.ts): its pending spawns by increasing seq. */
export interface PendingSource {
  readonly pending: ReadonlyMap<number, unknown>;
  seq: number;
}

class SabRegistry {
  private readonly ids = new SafeWeakMap<SharedArrayBuffer, number>();  // this thread's id of each SAB it sent
  private readonly own = new SafeMap<number, WeakRef<SharedArrayBuffer>>();
  private readonly originOf = new SafeWeakMap<SharedArrayBuffer, number>();  // its creator's id
  private readonly byOrigin = new SafeMap<number, WeakRef<SharedArrayBuffer>>();  // creator's id -> this thread's object
  private readonly foreign = new SafeMap<number, SharedArrayBuffer>();
  private readonly dying = new SafeMap<number, { sab: SharedArrayBuffer; marks: Map<PendingSource, number> }>();
  private readonly sources = new SafeSet<PendingSource>();
  private channel: BroadcastChannel | undefined;
  private next = 0;
  private readonly finalizer = new SafeFinalizationRegistry<number>((id) => {
    this.own.delete(id);
    this.open().postMessage({ id, release: true } satisfies Announcement);
  });
  private readonly originFinalizer = new SafeFinalizationRegistry<number>((origin) => {
    if (!this.byOrigin.get(origin)?.deref()) this.byOrigin.delete(origin);
  });

  /** Starts receiving announcements (runtime threads call this when they start, before they send or receive payloads). */
  listen(): void {
    this.open();
  }

  /** Released ids stay resolvable while a spawn of `source` pending at their release may still be settled with them. */
  watch(source: PendingSource): void {
    this.sources.add(source);
  }
  unwatch(source: PendingSource): void {
    this.sources.delete(source);
    this.sweep();
  }

  private open(): BroadcastChannel {
    if (!this.channel) {
      const ch = new BroadcastChannel('hwsq:shared-array-buffers');
      ch.onmessage = (ev) => this.absorb((ev as MessageEvent).data as Announcement);
      (ch as unknown as { unref(): void }).unref();
      this.channel = ch;
    }
    return this.channel;
  }

  /** Takes the announcements already queued for this thread. */
  private pull(): boolean {
    const msg = receiveMessageOnPort(this.open() as never) as { message: Announcement } | undefined;
    if (msg) this.absorb(msg.message);
    return msg !== undefined;
  }

  private absorb(msg: Announcement): void {
    if (msg.release) {
      const sab = this.foreign.get(msg.id);
      if (!sab) return;
      this.foreign.delete(msg.id);
      const marks = new SafeMap<PendingSource, number>();
      // Stryker disable next-line ConditionalExpression,EqualityOperator: a mark on a source with nothing pending never holds the id (sweep() finds its queue empty, and later spawns get seqs above the mark): only the dying entry's lifetime until the next sweep differs
      for (const s of this.sources) if (s.pending.size > 0) marks.set(s, s.seq);
      if (marks.size > 0) this.dying.set(msg.id, { sab, marks });
    } else if (msg.sab) {
      const origin = msg.origin ?? msg.id;
      let obj = this.byOrigin.get(origin)?.deref();
      if (!obj) {
        obj = msg.sab;
        this.byOrigin.set(origin, new SafeWeakRef(obj));
        this.originOf.set(obj, origin);
        this.originFinalizer.register(obj, origin);
      }
      this.foreign.set(msg.id, obj);
      this.dying.delete(msg.id);
    }
  }

  /** Forgets released ids no pending spawn can be settled with any more. */
  sweep(): void {
    for (const [id, d] of this.dying) {
      let done = true;
      for (const [s, mark] of d.marks) {
        const first = s.pending.keys().next();
        if (!first.done && (first.value as number) <= mark && this.sources.has(s)) done = false;
      }
      if (done) this.dying.delete(id);
    }
  }

  /** This thread's id for `sab`, announced the first time it is sent. */
  idOf(sab: SharedArrayBuffer): number {
    let id = this.ids.get(sab);
    if (id !== undefined) return id;
    id = threadId * 2 ** 32 + ++this.next;
    let origin = this.originOf.get(sab);
    if (origin === undefined) {  // created here
      origin = id;
      this.originOf.set(sab, id);
      this.byOrigin.set(id, new SafeWeakRef(sab));
      this.originFinalizer.register(sab, id);
    }
    this.ids.set(sab, id);
    this.own.set(id, new SafeWeakRef(sab));
    this.finalizer.register(sab, id);
    this.open().postMessage({ id, sab, origin } satisfies Announcement);
    return id;
  }

  /** The SAB a payload names; undefined when no announcement of it reached this thread. */
  resolve(id: number): SharedArrayBuffer | undefined {
    for (;;) {
      const sab = this.own.get(id)?.deref() ?? this.foreign.get(id) ?? this.dying.get(id)?.sab;
      if (sab) return sab;
      if (!this.pull()) return undefined;
    }
  }

  /** Every id this thread can resolve (for a worker that starts: see the file comment). */
  snapshot(): SabEntry[] {
    while (this.pull());
    const out: SabEntry[] = [];
    for (const [id, ref] of this.own) {
      const sab = ref.deref();
      if (sab) out.push({ id, sab, origin: this.originOf.get(sab) ?? id });
    }
    const add = (id: number, sab: SharedArrayBuffer): void => {
      out.push({ id, sab, origin: this.originOf.get(sab) ?? id });
    };
    for (const [id, sab] of this.foreign) add(id, sab);
    for (const [id, d] of this.dying) add(id, d.sab);
    return out;
  }

  /** Takes a snapshot() of the thread that started this one. */
  // Stryker disable all: runs only on a worker thread, and workers run dist/ (built from the unmutated lib/): a mutant here is invisible to in-process tests
  adopt(entries: readonly SabEntry[]): void {
    for (const e of entries) if (!this.own.has(e.id)) this.absorb(e);
  }
  // Stryker restore all
}

let registry: SabRegistry | undefined;

export function sabRegistry(): SabRegistry {
  return (registry ??= new SabRegistry());
}
