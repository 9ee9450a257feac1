// The chaos soak's Runtime actor: JS tasks (test/fixtures/tasks/chaos.mjs) on worker isolates,
// driven at random -- spawn (one at a time and in bursts) and spawnMany with and without `node`,
// nested spawns (awaited, fire and forget, aborted), signal aborts before and while running
// ('signal' and 'terminate'), throwing tasks, tasks that kill their worker (with and without
// restartWorkers), arguments and results beyond the scratch buffers, SharedArrayBuffers in and out,
// maxQueue backpressure, close() and destroy() at random points -- and the accounting of every
// task afterwards.
import { ErrorCodes, Runtime, type RuntimeOptions, type RuntimeStatsSnapshot } from '../../lib/index';
import { Actor, type Round, type Stop, type Tracked, describe, errCode, errName, track } from './common';

interface Signal {
  ctl: AbortController;
  /** Aborted before spawn: rejected with nothing queued. */
  pre: boolean;
  terminate: boolean;
  aborted: boolean;
}

/** A task spawned from this thread (a root), and the nested tasks it spawns (its subtree). */
interface Root {
  id: number;
  task: string;
  /** Ids of the subtree, the root's first (nest), or just [id]. */
  ids: number[];
  /** The fulfilled value: a number or string, the SharedArrayBuffer view sent, or undefined (not checked). */
  expect: number | string | Int32Array | undefined;
  failing: boolean;
  /** The task kills its worker (exit): its rejection is ERR_HWSQ_WORKER_EXITED. */
  exits: boolean;
  signal?: Signal;
  /** Spawned after close() or destroy() was called. */
  afterStop: boolean;
  t: Tracked;
}

type Mode = 'await' | 'many' | 'forget' | 'abort';
const subtreeSize = (n: number, depth: number): number => (depth <= 0 ? 1 : 1 + n * subtreeSize(n, depth - 1));
const MAX_NEST_CHILDREN = 4;

export class JsActor extends Actor {
  readonly kind = 'Runtime';
  private readonly roots: Root[] = [];
  private readonly others: Tracked[] = [];
  private crashes = 0;
  private terminates = 0;
  private exits = 0;
  /** The task counts once quiescent before a clean close (ending 'check'). */
  private quiescent: RuntimeStatsSnapshot['tasks'] | undefined;
  private readonly ending: 'check' | 'close' | 'destroy' | 'both';
  private readonly nodes: number[];

  private constructor(
    round: Round,
    name: string,
    private readonly rt: Runtime,
    private readonly opts: RuntimeOptions,
    plannedOps: number,
  ) {
    super(round, name, plannedOps);
    const rng = round.rng;
    this.nodes = [...new Set(rt.workers.map((w) => w.node))];
    this.ending = rng.weighted({ check: 4, close: 3, destroy: 2, both: 1 });
    if (rng.chance(0.5)) rt.on('workerError', () => {});
    rt.on('workerExit', () => this.exits++);
  }

  /** restartWorkers: false and every worker exited: the runtime stopped itself. */
  private get allGone(): boolean {
    return this.opts.restartWorkers === false && this.exits >= this.rt.workers.length;
  }

  static async start(round: Round, name: string, filename: string, plannedOps: number): Promise<JsActor> {
    const rng = round.rng;
    const opts: RuntimeOptions = {
      filename,
      workers: rng.int(1, 3),
      placement: rng.pick(['none', 'spread'] as const),
      stealPolicy: rng.pick(['hierarchical', 'flat'] as const),
      idleSpinMicros: rng.pick([0, 50]),
      tasksPerTurn: rng.pick([1, 4, 64]),
      concurrentTasksPerWorker: rng.pick([1, 2, 16]),
    };
    if (rng.chance(0.3)) opts.maxQueue = rng.int(1, 48);
    if (rng.chance(0.15)) opts.restartWorkers = false;
    const { filename: _, ...shown } = opts;
    round.log(`${name} Runtime.start ${JSON.stringify(shown)}`);
    const rt = await Runtime.start(opts);
    round.log(`${name} started: ${rt.workers.map((w) => `P${w.worker}@${w.node}`).join(' ')}`);
    return new JsActor(round, name, rt, opts, plannedOps);
  }

  tracked(): readonly Tracked[] {
    return [...this.roots.map((r) => r.t), ...this.lifecycle, ...this.others];
  }

  private node(): number | undefined {
    return this.round.rng.chance(0.3) ? this.round.rng.pick(this.nodes) : undefined;
  }

  private spawnRoot(task: string, ids: number[], args: unknown[], expect: Root['expect'], how: { failing?: boolean; exits?: boolean; signal?: Signal; node?: number; label?: string }): void {
    const id = ids[0]!;
    const options: { node?: number; signal?: AbortSignal; abort?: 'signal' | 'terminate' } = {};
    if (how.node !== undefined) options.node = how.node;
    if (how.signal) {
      options.signal = how.signal.ctl.signal;
      if (how.signal.terminate) options.abort = 'terminate';
    }
    this.round.log(`${this.name} spawn #${id} ${how.label ?? task} ${JSON.stringify(options.node ?? null)}${how.signal ? ` signal${how.signal.pre ? '(pre-aborted)' : ''}${how.signal.terminate ? ' terminate' : ''}` : ''}`);
    const p = this.rt.spawn(task, args, options);
    this.roots.push({ id, task, ids, expect, failing: !!how.failing, exits: !!how.exits, signal: how.signal, afterStop: this.stopped || this.rt.isClosed, t: track(`${this.name} #${id} ${how.label ?? task}`, p) });
  }

  /** A task of a batch (spawnMany, or a burst of spawn()). */
  private batchRoot(id: number, task: string, expect: number | string, p: Promise<unknown>): void {
    this.roots.push({ id, task, ids: [id], expect, failing: false, exits: false, afterStop: this.stopped || this.rt.isClosed, t: track(`${this.name} #${id} ${task} (batch)`, p) });
  }

  protected async operate(): Promise<void> {
    const round = this.round;
    const rng = round.rng;
    const op = rng.weighted({
      leaf: 20,
      leafAsync: 8,
      fail: 5,
      many: 8,
      burst: 2,
      nest: 10,
      abortable: 8,
      abort: 6,
      sab: 3,
      big: 2,
      exit: 1,
      crashLater: 1,
      room: 2,
      stats: 2,
      gc: 1,
    });
    const acct = round.acct;
    switch (op) {
      case 'leaf':
      case 'leafAsync':
      case 'fail': {
        const id = round.ids(1);
        if (id === undefined) return;
        const task = op === 'fail' ? rng.pick(['fail', 'failAsync']) : op;
        const arg = op === 'leaf' ? rng.pick([0, 0, 20, 300]) : op === 'leafAsync' ? rng.int(0, 3) : 0;
        this.spawnRoot(task, [id], [acct, id, arg], op === 'fail' ? undefined : id, { failing: op === 'fail', node: this.node() });
        return;
      }
      case 'many': {
        const n = rng.int(1, 64);
        const first = round.ids(n);
        if (first === undefined) return;
        const node = this.node();
        round.log(`${this.name} spawnMany #${first}..#${first + n - 1} node ${node ?? '-'}`);
        const argsList = Array.from({ length: n }, (_, k) => [acct, first + k, rng.pick([0, 0, 50])]);
        const ps = this.rt.spawnMany('leaf', argsList, node === undefined ? {} : { node });
        round.check(ps.length === n, () => `${this.name} spawnMany of ${n} returned ${ps.length} promises`);
        ps.forEach((p, k) => this.batchRoot(first + k, 'leaf', first + k, p));
        return;
      }
      case 'burst': {
        // One spawn() per task, back to back: beyond a node queue's ring (4096) with `node`.
        const n = rng.pick([200, 1000, 5000]);
        const first = round.ids(n);
        if (first === undefined) return;
        const node = rng.chance(0.5) ? rng.pick(this.nodes) : undefined;
        round.log(`${this.name} burst of spawn() #${first}..#${first + n - 1} node ${node ?? '-'}`);
        for (let k = 0; k < n; k++) this.batchRoot(first + k, 'leaf', first + k, this.rt.spawn('leaf', [acct, first + k, 0], node === undefined ? {} : { node }));
        return;
      }
      case 'nest': {
        const n = rng.int(1, MAX_NEST_CHILDREN);
        const depth = rng.int(1, n > 2 ? 2 : 3);
        const mode = rng.pick(['await', 'many', 'forget', 'abort'] as const satisfies readonly Mode[]);
        const size = subtreeSize(n, depth);
        const first = round.ids(size);
        if (first === undefined) return;
        const ids = Array.from({ length: size }, (_, k) => first + k);
        const expect = mode === 'await' || mode === 'many' ? ids.reduce((a, b) => a + b, 0) : first;
        this.spawnRoot('nest', ids, [acct, first, n, depth, mode], expect, { node: this.node(), label: `nest(${n},${depth},${mode})` });
        return;
      }
      case 'abortable': {
        const id = round.ids(1);
        if (id === undefined) return;
        const signal: Signal = { ctl: new AbortController(), pre: rng.chance(0.1), terminate: rng.chance(0.3), aborted: false };
        if (signal.pre) {
          signal.aborted = true;
          signal.ctl.abort();
        }
        // Aborted or not, it returns its id (cooperatively) unless 'terminate' killed its worker.
        const task = rng.chance(0.7) ? 'untilAbort' : 'leaf';
        const args = task === 'untilAbort' ? [acct, id, rng.int(5, 150)] : [acct, id, rng.pick([0, 500])];
        this.spawnRoot(task, [id], args, id, { signal, node: this.node() });
        return;
      }
      case 'abort': {
        const open = this.roots.filter((r) => r.signal && !r.signal.aborted);
        if (!open.length) return;
        const r = rng.pick(open);
        const s = r.signal!;
        s.aborted = true;
        if (s.terminate) this.terminates++;  // it may be running: its worker is terminated
        round.log(`${this.name} abort #${r.id}${s.terminate ? ' (terminate)' : ''} while ${describe(r.t.outcome)}`);
        s.ctl.abort();
        return;
      }
      case 'sab': {
        const id = round.ids(1);
        if (id === undefined) return;
        const view = new Int32Array(new SharedArrayBuffer(64));
        this.spawnRoot('sabRoundTrip', [id], [acct, id, view], view, { node: this.node() });
        return;
      }
      case 'big': {
        // One payload beyond the scratch buffer, or a batch that outgrows it.
        const many = rng.chance(0.5);
        const n = many ? rng.int(2, 12) : 1;
        const first = round.ids(n);
        if (first === undefined) return;
        const payload = (k: number) => `${first + k}:`.padEnd(many ? rng.int(30_000, 90_000) : rng.int(200_000, 400_000), String.fromCharCode(97 + (k % 26)));
        if (!many) {
          const text = payload(0);
          this.spawnRoot('echo', [first], [acct, first, text], text, { node: this.node(), label: `echo(${text.length} chars)` });
          return;
        }
        const texts = Array.from({ length: n }, (_, k) => payload(k));
        round.log(`${this.name} spawnMany echo #${first}..#${first + n - 1} (${texts.reduce((a, t) => a + t.length, 0)} chars)`);
        const ps = this.rt.spawnMany('echo', texts.map((t, k) => [acct, first + k, t]));
        round.check(ps.length === n, () => `${this.name} spawnMany of ${n} returned ${ps.length} promises`);
        ps.forEach((p, k) => this.batchRoot(first + k, 'echo', texts[k]!, p));
        return;
      }
      case 'exit':
      case 'crashLater': {
        const id = round.ids(1);
        if (id === undefined) return;
        this.crashes++;
        if (op === 'exit') this.spawnRoot('exit', [id], [acct, id], undefined, { exits: true });
        else this.spawnRoot('crashLater', [id], [acct, id, rng.int(0, 10)], id, {});
        return;
      }
      case 'room':
        round.log(`${this.name} waitForRoom (queued ${this.stopped ? '-' : this.rt.queueSize})`);
        this.others.push(track(`${this.name} waitForRoom`, this.rt.waitForRoom()));
        return;
      case 'stats':
        this.statsProbe();
        return;
      case 'gc':
        round.log('gc');
        (globalThis as { gc?: () => void }).gc?.();
        return;
    }
  }

  private statsProbe(): void {
    let s: RuntimeStatsSnapshot;
    try {
      s = this.rt.stats();
    } catch (err) {
      const stopped = this.stopped || (this.allGone && this.rt.isClosed);
      this.round.check(stopped && errCode(err) === ErrorCodes.RUNTIME_CLOSED, () => `${this.name} stats() threw ${errCode(err)} ${String(err)} (stopped: ${stopped})`);
      return;
    }
    const t = s.tasks;
    this.round.log(`${this.name} stats live ${t.live} queued ${t.queued} completed ${t.completed} failed ${t.failed} exited ${t.workerExited} cancelled ${t.cancelled}`);
    this.round.check(t.live >= 0 && t.queued >= 0 && t.queued <= t.live, () => `${this.name} stats: live ${t.live} queued ${t.queued}`);
    this.round.check(s.workers.length === this.rt.workers.length, () => `${this.name} stats: ${s.workers.length} workers`);
  }

  protected close(): Promise<void> {
    return this.rt.close();
  }
  protected destroy(): Promise<void> {
    return this.rt.destroy();
  }

  async finish(): Promise<void> {
    if (!this.stopped) {
      if (this.ending === 'check') await this.checkQuiescent();
      await this.stop(this.ending === 'check' ? 'close' : (this.ending as Stop));
    }
    await Promise.all(this.lifecycle.map((t) => t.done));
  }

  /**
   * Before a clean close: once every root settled and the fire-and-forget tasks ran, the
   * scheduler's counts balance and every JS task that was queued is accounted for once.
   */
  private async checkQuiescent(): Promise<void> {
    const round = this.round;
    await Promise.all(this.tracked().map((t) => t.done));
    const balanced = (x: RuntimeStatsSnapshot) => x.executed + x.rejected + x.dropped === x.spawned + x.externalSubmitted;
    let s: RuntimeStatsSnapshot | undefined;
    for (let i = 0; i < 4000 && !this.rt.isClosed; i++) {
      s = this.rt.stats();
      if (s.tasks.live === 0 && balanced(s)) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    if (!s || this.rt.isClosed) {
      round.check(this.allGone, () => `${this.name} closed itself while its workers were restarted`);
      round.log(`${this.name} stopped itself: every worker exited`);
      return;
    }
    const t = s.tasks;
    this.quiescent = t;
    round.log(`${this.name} quiescent: spawned ${s.spawned} external ${s.externalSubmitted} executed ${s.executed} rejected ${s.rejected} dropped ${s.dropped}; tasks ${JSON.stringify(t)}`);
    round.check(t.live === 0 && t.queued === 0, () => `${this.name} not quiescent after every task settled: ${JSON.stringify(t)}`);
    round.check(balanced(s), () => `${this.name} executed ${s.executed} + rejected ${s.rejected} + dropped ${s.dropped} != spawned ${s.spawned} + external ${s.externalSubmitted}`);
    const accepted = this.roots.filter((r) => !r.signal?.pre && !this.refused(r)).length;
    let nested = 0;
    let nestedMax = 0;
    for (const r of this.roots) {
      for (const id of r.ids.slice(1)) if (round.spawnedChild(id)) nested++;
      nestedMax += r.ids.length - 1;
    }
    const ended = t.completed + t.failed + t.workerExited + t.cancelled;
    // A terminate() can stop a parent between its spawn() and the mark after it: then more
    // nested tasks exist than marks say.
    const upper = this.terminates ? accepted + nestedMax : accepted + nested;
    round.check(ended >= accepted + nested && ended <= upper, () => `${this.name} completed + failed + workerExited + cancelled = ${ended}, expected ${accepted} roots + ${nested} nested${this.terminates ? ` (up to ${upper})` : ''}`);
  }

  /** Rejected at spawn with nothing queued. */
  private refused(r: Root): boolean {
    if (r.t.outcome.state !== 'rejected') return false;
    const code = errCode(r.t.outcome.error);
    return code === ErrorCodes.RUNTIME_CLOSED || code === ErrorCodes.QUEUE_FULL;
  }

  verify(): void {
    const round = this.round;
    const killed = this.crashes + this.terminates > 0;
    const fail = (r: Root, what: string) => round.fail(`${this.name} #${r.id} ${r.task}: ${what}; ${describe(r.t.outcome)}, ran ${round.runs(r.id)}`);
    for (const r of this.roots) {
      for (const id of r.ids) {
        const n = round.runs(id);
        if (n > 1) round.fail(`${this.name} task #${id} (of root #${r.id} ${r.task}) ran ${n} times`);
      }
      if (r.t.settled !== 1) {
        fail(r, `settled ${r.t.settled} times`);
        continue;
      }
      const runs = round.runs(r.id);
      const o = r.t.outcome;
      if (o.state === 'fulfilled') {
        if (r.failing || r.exits) fail(r, 'fulfilled');
        else if (r.expect instanceof Int32Array) {
          const v = o.value as Int32Array;
          if (!(v instanceof Int32Array) || v.buffer !== r.expect.buffer) fail(r, 'did not return the same SharedArrayBuffer');
        } else if (r.expect !== undefined && o.value !== r.expect) fail(r, `expected ${String(r.expect).slice(0, 40)}`);
        if (runs !== 1) fail(r, 'fulfilled without running once');
        if (r.task === 'nest' && o.value === r.expect && r.ids.length > 1 && r.expect !== r.id) {
          for (const id of r.ids) if (round.runs(id) !== 1) fail(r, `awaited subtree task #${id} ran ${round.runs(id)} times`);
        }
        continue;
      }
      if (o.state !== 'rejected') continue;
      const err = o.error;
      const code = errCode(err);
      const message = String((err as { message?: unknown } | null)?.message);
      if (code === 'CHAOS_TASK') {
        if (!r.failing) fail(r, 'failed with a task error it does not throw');
        else if (runs !== 1) fail(r, 'failed without running once');
        else if (!message.includes(`chaos task ${r.id} failed`)) fail(r, 'failed with the error of another task');
      } else if (code === ErrorCodes.WORKER_EXITED && message.includes('none is restarted')) {
        // Queued when the last worker exited for good.
        if (!this.allGone) fail(r, 'rejected for want of workers, but workers were left');
        else if (runs !== 0) fail(r, 'rejected for want of workers, but it ran');
      } else if (code === ErrorCodes.WORKER_EXITED) {
        // Its worker died while it ran; terminate() may stop the worker before the task's first line.
        if (!killed) fail(r, 'worker exited, but no task killed a worker');
        else if (runs !== 1 && !(this.terminates && runs === 0)) fail(r, 'worker exited under a task that did not run');
      } else if (errName(err) === 'AbortError') {
        if (r.signal?.aborted) {
          if (r.signal.pre && runs !== 0) fail(r, 'pre-aborted but ran');
        } else if (!this.destroyCalled) {
          fail(r, 'AbortError without an abort or destroy()');
        } else if (message.includes('before it started')) {
          if (runs !== 0) fail(r, 'destroy() reported it dropped before it started, but it ran');
        } else if (message.includes('while it ran')) {
          if (runs > 1) fail(r, 'ran twice');
        } else fail(r, 'an AbortError of unknown origin');
      } else if (code === ErrorCodes.RUNTIME_CLOSED) {
        if (!r.afterStop) fail(r, 'RUNTIME_CLOSED before close()/destroy()');
        if (runs !== 0) fail(r, 'refused but ran');
      } else if (code === ErrorCodes.QUEUE_FULL) {
        if (this.opts.maxQueue === undefined) fail(r, 'QUEUE_FULL without maxQueue');
        if (runs !== 0) fail(r, 'refused but ran');
      } else {
        fail(r, 'unexpected rejection');
      }
    }
    // Exactly once: after a close() that no destroy() cut short, every nested task that was
    // queued ran once (fire-and-forget ones included), unless its parent aborted it, or a worker
    // killed (terminate, exit, an uncaught exception) as the task started: handed to it and
    // its function called, then stopped before its first line counted the run. Like a root
    // killed so, it ended as exited (its promise, held by a parent, rejects), and the quiescent
    // counts say so: each is one of the workerExited that no root accounts for.
    if (!this.destroyCalled && !this.allGone) {
      let killedAtStart = 0;
      for (const r of this.roots)
        for (const id of r.ids.slice(1)) {
          if (!round.spawnedChild(id) || round.abortedChild(id) || round.runs(id) === 1) continue;
          if (round.runs(id) === 0 && killed) killedAtStart++;
          else round.fail(`${this.name} nested task #${id} (of root #${r.id}) was queued and ran ${round.runs(id)} times before close() resolved`);
        }
      if (killedAtStart) {
        round.log(`${this.name} ${killedAtStart} nested tasks ended with their worker as they started`);
        const q = this.quiescent;
        if (q) {
          const rootsExited = this.roots.filter((r) => r.t.outcome.state === 'rejected' && errCode(r.t.outcome.error) === ErrorCodes.WORKER_EXITED).length;
          round.check(killedAtStart <= q.workerExited - rootsExited, () => `${this.name} ${killedAtStart} nested tasks never ran, but only ${q.workerExited - rootsExited} tasks besides roots exited with their worker`);
        }
      }
    }
    this.verifyResolved(this.others);
  }

  diagnose(): unknown {
    let stats: unknown;
    try {
      const s = this.rt.stats();
      stats = { tasks: s.tasks, spawned: s.spawned, external: s.externalSubmitted, executed: s.executed, rejected: s.rejected, dropped: s.dropped, grq: s.globalQueueDepth, workers: s.workers.map((w) => ({ p: w.worker, attached: w.attached, parked: w.parked, lrq: w.queueDepth, running: w.runningForNs, restarts: w.restarts, threadId: w.threadId })), nodes: s.nodes.map((n) => ({ node: n.node, depth: n.queueDepth })) };
    } catch (err) {
      stats = `stats() threw ${String(err)}`;
    }
    return {
      name: this.name,
      kind: this.kind,
      options: { ...this.opts, filename: undefined },
      closeCalled: this.closeCalled,
      destroyCalled: this.destroyCalled,
      crashes: this.crashes,
      terminates: this.terminates,
      workerExits: this.exits,
      pending: this.rt.pending,
      stats,
      unsettled: this.tracked().filter((t) => t.settled === 0).slice(0, 30).map((t) => t.label),
    };
  }
}
