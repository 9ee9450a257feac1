// SharedArrayBuffers by reference between the threads of hwsq runtimes. A SharedArrayBuffer in
// task arguments or results is sent once on a process-wide BroadcastChannel (structured clone
// shares SABs) under an id; payloads carry only the id. The receiving thread resolves it from
// its table, or synchronously pulls pending announcements off the channel
// (receiveMessageOnPort), which is safe because the announcement is posted before the payload
// that names it is queued. A BroadcastChannel only reaches channels that exist when a message
// is posted, so every runtime thread listens from its start, and a SAB is announced again after
// a worker (re)started since its last announcement (the addon counts attaches). Ids are released
// on every thread when the announcing thread's SAB object is garbage-collected.
import { BroadcastChannel, receiveMessageOnPort, threadId } from 'node:worker_threads';
import { jsBinding } from './js-binding';

interface Announcement {
  id: number;
  sab?: SharedArrayBuffer;
  release?: boolean;
}

class SabRegistry {
  private readonly ids = new WeakMap<SharedArrayBuffer, number>();
  private readonly announced = new WeakMap<SharedArrayBuffer, number>();  // attach generation of the last announcement
  private readonly own = new Map<number, WeakRef<SharedArrayBuffer>>();
  private readonly foreign = new Map<number, SharedArrayBuffer>();
  private channel: BroadcastChannel | undefined;
  private next = 0;
  private readonly finalizer = new FinalizationRegistry<number>((id) => {
    this.own.delete(id);
    this.open().postMessage({ id, release: true } satisfies Announcement);
  });

  /** Starts receiving announcements (runtime threads call this when they start). */
  listen(): void {
    this.open();
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

  private absorb(msg: Announcement): void {
    if (msg.release) this.foreign.delete(msg.id);
    else if (msg.sab) {
      this.foreign.set(msg.id, msg.sab);
      this.ids.set(msg.sab, msg.id);
    }
  }

  idOf(sab: SharedArrayBuffer): number {
    const gen = jsBinding().attachGeneration();
    let id = this.ids.get(sab);
    if (id === undefined) {
      id = threadId * 2 ** 32 + ++this.next;
      this.ids.set(sab, id);
      this.own.set(id, new WeakRef(sab));
      this.finalizer.register(sab, id);
    } else if (this.announced.get(sab) === gen) {
      return id;
    }
    this.announced.set(sab, gen);
    this.open().postMessage({ id, sab } satisfies Announcement);
    return id;
  }

  resolve(id: number): SharedArrayBuffer {
    for (;;) {
      const sab = this.own.get(id)?.deref() ?? this.foreign.get(id);
      if (sab) return sab;
      const msg = receiveMessageOnPort(this.open() as never) as { message: Announcement } | undefined;
      if (!msg) throw new Error(`hwsq: unknown SharedArrayBuffer id ${id}`);
      this.absorb(msg.message);
    }
  }
}

let registry: SabRegistry | undefined;

export function sabRegistry(): SabRegistry {
  return (registry ??= new SabRegistry());
}
