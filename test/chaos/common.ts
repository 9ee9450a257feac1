// What the chaos soak's actors (js-actor.ts, native-actor.ts) share: the seeded generator, the
// round (its accounting arrays, operation log and failures) and promise tracking.
import fs from 'node:fs';

/** sfc32: small, fast, and the same sequence for a seed on every platform. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 15; i++) this.u32();
  }
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + (this.u32() % (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.u32() / 2 ** 32 < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(0, xs.length - 1)]!;
  }
  /** A key of `weights` drawn in proportion to its weight. */
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K {
    const keys = Object.keys(weights) as K[];
    let x = this.u32() % keys.reduce((s, k) => s + weights[k], 0);
    for (const k of keys) {
      x -= weights[k];
      if (x < 0) return k;
    }
    return keys[keys.length - 1]!;
  }
}

/** The seed of round `r` of a soak seeded with `seed` (a round replays from its number alone). */
export function roundSeed(seed: number, r: number): number {
  let h = (seed ^ Math.imul(r + 1, 0x9e3779b9)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

export type Outcome = { state: 'pending' } | { state: 'fulfilled'; value: unknown } | { state: 'rejected'; error: unknown };

/** A promise under watch: how often it settled and how. `done` never rejects. */
export interface Tracked {
  label: string;
  settled: number;
  outcome: Outcome;
  done: Promise<void>;
}

export function track(label: string, p: Promise<unknown>): Tracked {
  const t: Tracked = { label, settled: 0, outcome: { state: 'pending' }, done: Promise.resolve() };
  t.done = p.then(
    (value) => {
      t.settled++;
      t.outcome = { state: 'fulfilled', value };
    },
    (error: unknown) => {
      t.settled++;
      t.outcome = { state: 'rejected', error };
    },
  );
  return t;
}

export function errCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
export function errName(err: unknown): string | undefined {
  const name = (err as { name?: unknown } | null)?.name;
  return typeof name === 'string' ? name : undefined;
}
export function describe(o: Outcome): string {
  if (o.state === 'pending') return 'pending';
  if (o.state === 'fulfilled') return `fulfilled ${short(o.value)}`;
  const e = o.error as { name?: unknown; message?: unknown } | null;
  return `rejected ${String(e?.name)} ${errCode(o.error) ?? ''} ${String(e?.message)}`;
}
function short(v: unknown): string {
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 80)}...` : s;
  } catch {
    return String(v);
  }
}

/** Accounting slots per round (see test/fixtures/tasks/chaos.mjs for the layout). */
export const TASK_IDS = 1 << 16;
/** 64-byte lines of the native touch buffer per round. */
export const TOUCH_LINES = 4096;

/** One round: its generator, accounting memory, operation log and failures. */
export class Round {
  readonly rng: Rng;
  /** [runs | spawned | aborted], TASK_IDS each. */
  readonly acct = new Int32Array(new SharedArrayBuffer(3 * TASK_IDS * 4));
  /** Native touch tasks: one 64-byte line per spawnNative call; touch adds 1 to its first word. */
  readonly lines = new SharedArrayBuffer(TOUCH_LINES * 64);
  private readonly words = new BigUint64Array(this.lines);
  readonly failures: string[] = [];
  private nextId = 1;
  private nextLine = 0;
  private readonly t0 = performance.now();

  constructor(
    readonly index: number,
    readonly seed: number,
    private readonly logFd: number | undefined,
  ) {
    this.rng = new Rng(seed);
  }

  /** Appends one line to the operation log: written through at once, so it survives a crash. */
  log(line: string): void {
    const text = `${(performance.now() - this.t0).toFixed(1).padStart(8)} ${line}\n`;
    if (this.logFd !== undefined) fs.writeSync(this.logFd, text);
  }
  fail(message: string): void {
    if (this.failures.length < 200) this.failures.push(message);
    this.log(`FAIL ${message}`);
  }
  check(ok: boolean, message: () => string): void {
    if (!ok) this.fail(message());
  }

  /** n consecutive task ids, or undefined when the round used them all. */
  ids(n: number): number | undefined {
    if (this.nextId + n > TASK_IDS) return undefined;
    const first = this.nextId;
    this.nextId += n;
    return first;
  }
  get idsUsed(): number {
    return this.nextId;
  }
  runs(id: number): number {
    return Atomics.load(this.acct, id);
  }
  spawnedChild(id: number): boolean {
    return Atomics.load(this.acct, TASK_IDS + id) === 1;
  }
  abortedChild(id: number): boolean {
    return Atomics.load(this.acct, 2 * TASK_IDS + id) === 1;
  }

  /** A fresh touch line (a view of the round's buffer), or undefined when all are used. */
  line(): { index: number; view: Uint8Array } | undefined {
    if (this.nextLine >= TOUCH_LINES) return undefined;
    const index = this.nextLine++;
    return { index, view: new Uint8Array(this.lines, index * 64, 64) };
  }
  touches(line: number): number {
    return Number(Atomics.load(this.words, line * 8));
  }

  /**
   * A pause between operations: none, a microtask, a macrotask, a few milliseconds, or a stall:
   * this thread blocked for a few milliseconds, so that what the workers send meanwhile (ready
   * reports, errors, exits, completions: on different ports) is read in one turn, in the order
   * the event loop picks.
   */
  async pause(): Promise<void> {
    switch (this.rng.weighted({ none: 5, micro: 3, immediate: 3, timer: 2, stall: 1 })) {
      case 'none':
        return;
      case 'micro':
        await null;
        return;
      case 'immediate':
        await new Promise((r) => setImmediate(r));
        return;
      case 'timer':
        await new Promise((r) => setTimeout(r, this.rng.int(0, 4)));
        return;
      case 'stall':
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, this.rng.int(1, 12));
    }
  }
}

export type Stop = 'close' | 'destroy' | 'both';

/**
 * One runtime of a round, driven at random. The part both kinds share: a stop (close(),
 * destroy() or both, a moment apart) planned at a random operation or left for the end, and the
 * promises of those calls, which must resolve.
 */
export abstract class Actor {
  abstract readonly kind: 'Runtime' | 'NativeRuntime';
  protected readonly lifecycle: Tracked[] = [];
  protected closeCalled = false;
  protected destroyCalled = false;
  private steps = 0;
  private readonly stopAt: number;

  constructor(
    protected readonly round: Round,
    readonly name: string,
    plannedOps: number,
  ) {
    this.stopAt = round.rng.chance(0.35) ? round.rng.int(0, plannedOps) : -1;
  }

  protected get stopped(): boolean {
    return this.closeCalled || this.destroyCalled;
  }

  /** One random operation. */
  async step(): Promise<void> {
    if (this.steps++ === this.stopAt) await this.stop(this.round.rng.pick(['close', 'destroy', 'both'] as const));
    else await this.operate();
  }
  protected abstract operate(): Promise<void>;

  protected abstract close(): Promise<void>;
  protected abstract destroy(): Promise<void> | void;
  protected async stop(how: Stop): Promise<void> {
    this.round.log(`${this.name} ${how === 'both' ? 'close + destroy' : how}()`);
    if (how !== 'destroy') {
      this.closeCalled = true;
      this.lifecycle.push(track(`${this.name} close()`, this.close()));
    }
    if (how === 'both') await this.round.pause();
    if (how !== 'close') {
      this.destroyCalled = true;
      let p: Promise<unknown>;
      try {
        p = Promise.resolve(this.destroy());
      } catch (err) {
        p = Promise.reject(err);
      }
      this.lifecycle.push(track(`${this.name} destroy()`, p));
    }
  }

  /** Every promise of close(), destroy() and `others` resolved, once. */
  protected verifyResolved(others: readonly Tracked[]): void {
    for (const t of [...this.lifecycle, ...others]) {
      if (t.settled !== 1 || t.outcome.state !== 'fulfilled') this.round.fail(`${t.label}: ${describe(t.outcome)} (settled ${t.settled} times)`);
    }
  }

  /** Ends the runtime (close, destroy, or both) unless it ended already; resolves when it did. */
  abstract finish(): Promise<void>;
  /** Every promise this actor handed out, for the final wait and the hang report. */
  abstract tracked(): readonly Tracked[];
  /** After finish() and every tracked promise settled: the accounting checks. */
  abstract verify(): void;
  /** For a hang report: state and stats, never throwing. */
  abstract diagnose(): unknown;
}

/** Threads of this process now (/proc/self/status), and their names. */
export function threads(): { count: number; names: string[] } {
  let count = -1;
  try {
    const m = /^Threads:\s+(\d+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) count = Number(m[1]);
  } catch {}
  const names: string[] = [];
  try {
    for (const t of fs.readdirSync('/proc/self/task')) {
      try {
        names.push(fs.readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim());
      } catch {}
    }
  } catch {}
  return { count, names: names.sort() };
}
