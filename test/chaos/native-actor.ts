// The chaos soak's NativeRuntime actor: spawnNative (noop, spin, touch) with `count`, `node`,
// `worker` and `inside`, locate(), idle(), close() and destroy() at random points, and the
// accounting afterwards. Each call of touch tasks gets its own 64-byte line of the round's
// SharedArrayBuffer: touch adds 1 to the line's first word, so a call whose tasks run one after
// another (one P's inbox, or a single task) leaves exactly the number of tasks that ran there.
import { ErrorCodes, createNativeRuntime, type NativeRuntime, type NativeRuntimeOptions, type NativeTaskKind, type SchedulerStats, type SpawnNativeOptions } from '../../lib/index';
import { Actor, type Round, type Stop, type Tracked, describe, errCode, errName, track } from './common';

interface Call {
  label: string;
  kind: NativeTaskKind | 'locate';
  count: number;
  inside: boolean;
  /** The touch line, if a touch call. */
  line?: number;
  /** Its tasks run one at a time (one P's inbox, or one task): the line counts them exactly. */
  exact: boolean;
  afterStop: boolean;
  t: Tracked;
}

export class NativeActor extends Actor {
  readonly kind = 'NativeRuntime';
  private readonly calls: Call[] = [];
  private readonly idles: Tracked[] = [];
  /** 'abandon': never closed; once its spawns settled it is let go, and garbage collection must destroy it. */
  private readonly ending: Stop | 'abandon';
  private final: SchedulerStats | undefined;
  private held: NativeRuntime | undefined;
  private lastCounts: Record<'spawned' | 'external' | 'executed' | 'dropped' | 'rejected', number> | undefined;

  private constructor(
    round: Round,
    name: string,
    rt: NativeRuntime,
    private readonly opts: NativeRuntimeOptions,
    plannedOps: number,
  ) {
    super(round, name, plannedOps);
    this.held = rt;
    this.ending = round.rng.weighted({ close: 5, destroy: 3, both: 2, abandon: 1 });
  }

  static create(round: Round, name: string, plannedOps: number): NativeActor {
    const rng = round.rng;
    const opts: NativeRuntimeOptions = rng.chance(0.5)
      ? { virtualTopology: { nodes: rng.int(1, 3), workersPerNode: rng.int(1, 2) } }
      : { workers: rng.int(1, 3), pin: rng.pick(['node', 'none'] as const) };
    opts.stealPolicy = rng.pick(['hierarchical', 'flat'] as const);
    opts.stats = rng.chance(0.8);
    opts.sysmon = rng.chance(0.8);
    round.log(`${name} createNativeRuntime ${JSON.stringify(opts)}`);
    return new NativeActor(round, name, createNativeRuntime(opts), opts, plannedOps);
  }

  tracked(): readonly Tracked[] {
    return [...this.calls.map((c) => c.t), ...this.lifecycle, ...this.idles];
  }

  protected async operate(): Promise<void> {
    const round = this.round;
    const rng = round.rng;
    switch (rng.weighted({ spawn: 14, touch: 10, idle: 3, locate: 1, stats: 2 })) {
      case 'spawn': {
        const kind = rng.pick(['noop', 'spin'] as const);
        const count = rng.pick([1, 1, 7, 300, 5000, 20_000]);
        // At most ~50 ms of spinning per call.
        const params = kind === 'spin' ? { ns: Math.min(rng.pick([0, 1000, 20_000, 200_000]), Math.floor(50e6 / count)) } : undefined;
        const options = this.placement(count);
        this.spawn(kind, params, options, undefined, false);
        return;
      }
      case 'touch': {
        const line = round.line();
        if (!line) return;
        const count = rng.pick([1, 1, 2, 50, 1000]);
        const options = this.placement(count);
        const exact = count === 1 || (options.worker !== undefined && !options.inside);
        this.spawn('touch', { buffer: line.view }, options, line.index, exact);
        return;
      }
      case 'idle':
        round.log(`${this.name} idle()`);
        this.idles.push(track(`${this.name} idle()`, this.rt.idle()));
        return;
      case 'locate': {
        round.log(`${this.name} locate()`);
        this.calls.push({ label: `${this.name} locate()`, kind: 'locate', count: this.rt.size, inside: false, exact: false, afterStop: this.stopped, t: track(`${this.name} locate()`, this.rt.locate()) });
        return;
      }
      case 'stats': {
        // A snapshot taken while tasks run reads each counter at its own instant (spawned and
        // executed may disagree for a moment), but no counter ever goes back.
        const s = this.rt.stats();
        const now = { spawned: s.spawned, external: s.externalSubmitted, executed: s.executed, dropped: s.dropped, rejected: s.rejected };
        round.log(`${this.name} stats ${JSON.stringify(now)}`);
        const before = this.lastCounts;
        round.check(!before || (Object.keys(now) as (keyof typeof now)[]).every((k) => now[k] >= before[k]), () => `${this.name} stats: a counter went back: ${JSON.stringify(before)} -> ${JSON.stringify(now)}`);
        this.lastCounts = now;
        return;
      }
    }
  }

  private placement(count: number): SpawnNativeOptions {
    const rng = this.round.rng;
    const options: SpawnNativeOptions = { count };
    switch (rng.weighted({ anywhere: 3, node: 2, worker: 2, inside: 2 })) {
      case 'node':
        options.node = rng.pick(this.rt.nodes);
        break;
      case 'worker':
        options.worker = rng.int(0, this.rt.size - 1);
        break;
      case 'inside':
        options.inside = true;
        if (rng.chance(0.3)) options.worker = rng.int(0, this.rt.size - 1);
        else if (rng.chance(0.3)) options.node = rng.pick(this.rt.nodes);
        break;
    }
    return options;
  }

  private spawn(kind: NativeTaskKind, params: { ns?: number; buffer?: Uint8Array } | undefined, options: SpawnNativeOptions, line: number | undefined, exact: boolean): void {
    const shown = { ...options, ...(params?.ns !== undefined ? { ns: params.ns } : {}), ...(line !== undefined ? { line } : {}) };
    const label = `${this.name} spawnNative#${this.calls.length} ${kind} ${JSON.stringify(shown)}`;
    this.round.log(label);
    const p = this.rt.spawnNative(kind, params, options);
    this.calls.push({ label, kind, count: options.count ?? 1, inside: !!options.inside, line, exact, afterStop: this.stopped, t: track(label, p) });
  }

  private get rt(): NativeRuntime {
    if (!this.held) throw new Error(`${this.name} was let go`);
    return this.held;
  }

  protected close(): Promise<void> {
    return this.rt.close();
  }
  protected destroy(): void {
    this.rt.destroy();  // synchronous: every thread joined, every spawn settled when it returns
  }

  async finish(): Promise<void> {
    if (!this.stopped && this.ending === 'abandon') {
      await Promise.all(this.tracked().map((t) => t.done));
      this.round.log(`${this.name} let go without close() (its threads must go with garbage collection)`);
      this.held = undefined;
      return;
    }
    if (!this.stopped) await this.stop(this.ending as Stop);
    await Promise.all(this.lifecycle.map((t) => t.done));
    // Stopped: every promise settles now, and idle() resolves at once.
    this.idles.push(track(`${this.name} idle() after stop`, this.rt.idle()));
    await Promise.all(this.tracked().map((t) => t.done));
    this.final = this.rt.stats();
  }

  verify(): void {
    const round = this.round;
    // Tasks each call ran, from its result (or its AbortError's count of dropped tasks).
    let ran = 0;
    let insideRootsMin = 0;
    let insideRootsMax = 0;
    for (const c of this.calls) {
      const fail = (what: string) => round.fail(`${c.label}: ${what}; ${describe(c.t.outcome)}${c.line !== undefined ? `, line ${round.touches(c.line)}` : ''}`);
      if (c.t.settled !== 1) {
        fail(`settled ${c.t.settled} times`);
        continue;
      }
      const o = c.t.outcome;
      let executed = -1;
      if (o.state === 'fulfilled') {
        const v = o.value as { count?: number } | unknown[];
        if (c.kind === 'locate') {
          if (!Array.isArray(v) || v.length !== c.count) fail('locate() did not answer for every P');
        } else if ((v as { count?: number }).count !== c.count) fail('wrong count');
        executed = c.count;
      } else if (o.state === 'rejected') {
        const err = o.error;
        const m = /dropped (\d+) of (\d+)/.exec(String((err as { message?: unknown } | null)?.message));
        if (errName(err) === 'AbortError' && m) {
          const dropped = Number(m[1]);
          if (!this.destroyCalled) fail('tasks dropped without destroy()');
          if (Number(m[2]) !== c.count || dropped < 1 || dropped > c.count) fail('a dropped count that does not fit the call');
          executed = c.count - dropped;
        } else if (errCode(err) === ErrorCodes.RUNTIME_CLOSED) {
          if (!c.afterStop) fail('RUNTIME_CLOSED before close()/destroy()');
          executed = 0;
          if (c.line !== undefined && round.touches(c.line) !== 0) fail('refused but touched');
          continue;  // nothing reached the core
        } else {
          fail('unexpected rejection');
          continue;
        }
      }
      ran += executed;
      if (c.inside) {
        insideRootsMax++;
        if (executed > 0) insideRootsMin++;
      }
      if (c.line !== undefined) {
        const touched = round.touches(c.line);
        if (c.exact ? touched !== executed : touched > executed || (executed > 0 && touched < 1)) fail(`${executed} tasks ran but the line counts ${touched}`);
      }
    }
    const s = this.final;
    if (!s) return;  // let go: the process's thread count says whether it was destroyed
    round.check(s.executed + s.rejected + s.dropped === s.spawned + s.externalSubmitted, () => `${this.name} executed ${s.executed} + rejected ${s.rejected} + dropped ${s.dropped} != spawned ${s.spawned} + external ${s.externalSubmitted}`);
    // The core also counts each `inside` call's root task, which ran unless destroy() dropped it.
    round.check(s.executed >= ran + insideRootsMin && s.executed <= ran + insideRootsMax, () => `${this.name} the core executed ${s.executed} tasks, the calls ran ${ran} (+ ${insideRootsMin}..${insideRootsMax} inside roots)`);
    if (!this.destroyCalled) round.check(s.dropped === 0, () => `${this.name} dropped ${s.dropped} tasks without destroy()`);
    this.verifyResolved(this.idles);
  }

  diagnose(): unknown {
    let stats: unknown;
    try {
      const s = this.rt.stats();  // throws once let go
      stats = { spawned: s.spawned, external: s.externalSubmitted, executed: s.executed, rejected: s.rejected, dropped: s.dropped, grq: s.globalQueueDepth, idle: s.idle, spinning: s.spinning, workers: s.workers.map((w) => ({ p: w.worker, parked: w.parked, lrq: w.queueDepth, running: w.runningForNs })), nodes: s.nodes.map((n) => ({ node: n.node, depth: n.queueDepth })) };
    } catch (err) {
      stats = `stats() threw ${String(err)}`;
    }
    return {
      name: this.name,
      kind: this.kind,
      options: this.opts,
      closeCalled: this.closeCalled,
      destroyCalled: this.destroyCalled,
      stats,
      unsettled: this.tracked().filter((t) => t.settled === 0).slice(0, 30).map((t) => t.label),
    };
  }
}
