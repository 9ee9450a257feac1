// Runtime.start / spawn: JS tasks on pinned worker isolates scheduled by the native core.
// The workers run dist/worker.js and the fixtures import 'hwsq' (dist/), so dist is rebuilt
// first when a lib/ source is newer.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Runtime, createNativeRuntime, type NativeRuntimeOptions, type RuntimeOptions } from '../lib/index';
import { getAffinity } from '../lib/numa/affinity';
import { allocOnNode } from '../lib/numa/memory';
import { native } from '../lib/core/native';
import { ensureDist, root } from './helpers';

const fixture = (name: string) => path.join(root, 'test', 'fixtures', 'tasks', name);
const ESM = fixture('basic.mjs');
const CJS = fixture('basic.cjs');

beforeAll(ensureDist, 120_000);

const open: Runtime[] = [];
async function start(options: Partial<RuntimeOptions> = {}): Promise<Runtime> {
  const rt = await Runtime.start({ filename: ESM, workers: 2, ...options });
  open.push(rt);
  return rt;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((rt) => rt.destroy()));
});

async function rejection(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Explicit synchronisation with the fixture tasks (holdUntilReleased, holdAsync, waitForAbort):
// they count their starts in sync[0]; a non-zero sync[1] releases them.
const newSync = () => new Int32Array(new SharedArrayBuffer(16));
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await sleep(1); // a hang is a failure (the test's timeout)
}
const started = (sync: Int32Array, n = 1) => until(() => Atomics.load(sync, 0) >= n);
function release(sync: Int32Array): void {
  Atomics.store(sync, 1, 1);
  Atomics.notify(sync, 1);
}

describe('Runtime: tasks', () => {
  it('runs named exports, the default export, sync and async tasks (ESM, file URL)', async () => {
    const rt = await start({ filename: pathToFileURL(ESM) });
    expect(await rt.spawn('add', [1, 2])).toBe(3);
    expect(await rt.spawn('default', ['x'])).toBe('hello x');
    expect(await rt.spawn('addLater', [3, 4])).toBe(7);
    expect(rt.tasks).toContain('fib');
    expect(rt.tasks).not.toContain('notAFunction');
  });

  it('loads CommonJS task modules (path), nested spawn included', async () => {
    const rt = await start({ filename: CJS });
    expect(await rt.spawn('mul', [6, 7])).toBe(42);
    expect(await rt.spawn('nested', [5])).toBe(11);
    expect(await rt.spawn('later', ['x'])).toBe('x');
  });

  it('pins each worker thread before tasks run: currentCpu() is within the P cpus', async () => {
    const rt = await start();
    const allowed = getAffinity();
    for (const w of rt.workers) {
      expect(w.cpus.length).toBeGreaterThan(0);
      for (const c of w.cpus) expect(allowed).toContain(c);
    }
    const seen = new Set<number>();
    for (let i = 0; i < 40 && seen.size < rt.workers.length; i++) {
      const r = await rt.spawn<{ cpu: number; worker: number; node: number; cpus: number[] }>('where');
      seen.add(r.worker);
      expect(r.cpus).toEqual(rt.workers[r.worker]!.cpus);
      expect(r.cpus).toContain(r.cpu);
      expect(r.node).toBe(rt.workers[r.worker]!.node); // one node here: test/sched.vm.test.ts checks it per node
    }
  });

  it("placement 'cpu' pins each P to one CPU; explicit placement is honoured", async () => {
    const allowed = getAffinity();
    const rt = await start({ placement: 'cpu', workers: Math.min(2, allowed.length) });
    for (const w of rt.workers) expect(w.cpus).toHaveLength(1);
    const r = await rt.spawn<{ cpu: number; worker: number }>('where');
    expect(rt.workers[r.worker]!.cpus).toEqual([r.cpu]);
    const one = await start({ workers: 1, placement: [{ node: rt.workers[0]!.node, cpus: [allowed[0]!] }] });  // workers must equal a list's length
    expect(one.workers).toHaveLength(1);
    expect((await one.spawn<{ cpu: number }>('where')).cpu).toBe(allowed[0]);
  });

  it('parallel fib with nested spawns is correct and spreads over every P by stealing', async () => {
    const rt = await start({ workers: 2 });
    expect(await rt.spawn('fib', [15])).toBe(610);
    const before = rt.stats();
    const r = await rt.spawn<{ value: number; ps: number[] }>('fibWhere', [27]);
    expect(r.value).toBe(196418);
    expect(r.ps.sort()).toEqual([0, 1]);
    const s = rt.stats();
    const steals = s.workers.reduce((a, w) => a + w.stealsSameNode + w.stealsRemote, 0) - before.workers.reduce((a, w) => a + w.stealsSameNode + w.stealsRemote, 0);
    expect(steals).toBeGreaterThan(0);
    for (const w of s.workers) expect(w.executed).toBeGreaterThan(before.workers[w.worker]!.executed);
    expect(s.spawned).toBeGreaterThan(100);  // nested spawns are counted on the Ps that made them
  });

  it('spawnMany submits a batch; nested spawnMany too', async () => {
    const rt = await start();
    const results = await Promise.all(rt.spawnMany<number>('add', Array.from({ length: 5000 }, (_, i) => [i, 1])));
    expect(results[0]).toBe(1);
    expect(results[4999]).toBe(5000);
    expect(await rt.spawn('sumChildren', [100])).toBe(5050);
    // A batch bigger than the scratch buffer is split.
    const big = 'x'.repeat(100_000);
    const echoed = await Promise.all(rt.spawnMany<string[]>('echo', [[big], [big], [big], ['small']]));
    expect(echoed.map((e) => e[0]!.length)).toEqual([100_000, 100_000, 100_000, 5]);
  });
});

describe('Runtime: arguments and results', () => {
  it('structured-clones values the fast path cannot carry (Map, Date, BigInt, cycles)', async () => {
    const rt = await start();
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const value = { m: new Map([[1, 'a']]), d: new Date(5), n: 10n, s: new Set([1]), cyclic, neg0: -0, nan: NaN, u: undefined, arr: [1, , 3] };
    const back = await rt.spawn<typeof value>('types', [value]);
    expect(back.m.get(1)).toBe('a');
    expect(back.d.getTime()).toBe(5);
    expect(back.n).toBe(10n);
    expect(back.cyclic.self).toBe(back.cyclic);
    expect(Object.is(back.neg0, -0)).toBe(true);
    expect(back.nan).toBeNaN();
    expect(1 in back.arr).toBe(false);
    expect(await rt.spawn('types', [{ s: 'ünïcødé ✓', big: 2 ** 40, f: 0.5, nested: [{ a: [true, null] }] }])).toEqual({
      s: 'ünïcødé ✓',
      big: 2 ** 40,
      f: 0.5,
      nested: [{ a: [true, null] }],
    });
  });

  it('typed arrays inside structured-cloned values own their bytes: a reused wire slot never changes them', async () => {
    // Node's deserializer hands back typed arrays as views into its input; when that input was
    // a reused message slot, the next message overwrote the view (seen: Int8Array [0] -> [36]).
    const rt = await start();
    const rounds = Array.from({ length: 300 }, (_, i) => [Int8Array.from([i & 0x7f]), new Boolean(i % 2 === 0)]);
    const back = await Promise.all(rt.spawnMany<unknown[]>('echo', [...rounds, ...rounds.map(() => [new Map()])]));
    rounds.forEach((args, i) => expect(back[i]).toEqual(args));
    const typed = back[0]![0] as Int8Array;
    await Promise.all(rt.spawnMany('echo', rounds));
    expect(typed[0]).toBe(0);
  });

  it('shares SharedArrayBuffers (same memory in the worker)', async () => {
    const rt = await start();
    const sab = new SharedArrayBuffer(16);
    const view = new Int32Array(sab);
    expect(await rt.spawn('sabWrite', [view, 2, 42])).toBe(42);
    expect(view[2]).toBe(42);
    const back = await rt.spawn<Int32Array>('types', [view]);
    expect(back.buffer).toBe(sab);  // the same SAB comes back
  });

  it('copies typed arrays; transfer detaches them here; move() transfers results back', async () => {
    const rt = await start();
    const u8 = new Uint8Array([1, 2, 3]);
    expect(await rt.spawn('bytes', [u8])).toEqual({ length: 3, first: 1, sum: 6, isU8: true });
    expect(u8.byteLength).toBe(3);
    const moved = new Uint8Array([4, 5]);
    expect(await rt.spawn('bytes', [moved], { transfer: [moved.buffer] })).toEqual({ length: 2, first: 4, sum: 9, isU8: true });
    expect(moved.byteLength).toBe(0);  // detached
    const made = await rt.spawn<Uint8Array>('makeBuffer', [1000]);
    expect(made.length).toBe(1000);
    expect(made[999]).toBe(7);
  });

  it('allocOnNode memory in a transfer list moves to the task and back without a copy', async () => {
    const rt = await start();
    const ab = allocOnNode(1 << 20, rt.workers[0]!.node);
    const u8 = new Uint8Array(ab);
    u8[0] = 9;
    const address = native().addressOf(u8);
    const r = await rt.spawn<{ u8: Uint8Array; address: string; first: number }>('nodeMem', [u8], { transfer: [ab] });
    expect(ab.byteLength).toBe(0);  // moved out of this isolate
    expect(BigInt(r.address)).toBe(address);  // the worker saw the same pages
    expect(r.first).toBe(9);
    expect(native().addressOf(r.u8)).toBe(address);  // and moved them back
    expect(r.u8[1]).toBe(5);
    expect(r.u8.length).toBe(1 << 20);
  });

  it('unserializable arguments: TypeError at spawn, nothing queued', async () => {
    const rt = await start();
    const before = rt.stats().externalSubmitted;
    const err = await rejection(rt.spawn('echo', [() => 1]));
    expect(err).toBeInstanceOf(TypeError);
    expect(err.code).toBe('ERR_HWSQ_DATA_CLONE');
    expect(rt.stats().externalSubmitted).toBe(before);
    expect(rt.pending).toBe(0);
    // An unclonable result rejects the task.
    expect((await rejection(rt.spawn('returnsUnclonable'))).code).toBe('ERR_HWSQ_DATA_CLONE');
  });
});

describe('Runtime: errors', () => {
  it('a throwing task rejects with the original class, message, stack and own props', async () => {
    const rt = await start();
    const err = await rejection(rt.spawn('fail', ['boom', 'E_BOOM']));
    expect(err).toBeInstanceOf(RangeError);
    expect(err.message).toBe('boom');
    expect(err.code).toBe('E_BOOM');
    expect((err as unknown as { detail: unknown }).detail).toEqual({ x: 1 });
    expect(err.stack).toContain('basic.mjs');
    const asyncErr = await rejection(rt.spawn('failLater', ['later']));
    expect(asyncErr).toBeInstanceOf(TypeError);
    expect(asyncErr.message).toBe('later');
    await expect(rt.spawn('throwString')).rejects.toBe('just a string');
  });

  it('unknown task names and non-function exports are typed errors at spawn', async () => {
    const rt = await start();
    const unknown = await rejection(rt.spawn('nope'));
    expect(unknown).toBeInstanceOf(RangeError);
    expect(unknown.code).toBe('ERR_HWSQ_UNKNOWN_TASK');
    const notFn = await rejection(rt.spawn('notAFunction'));
    expect(notFn).toBeInstanceOf(TypeError);
    expect(notFn.code).toBe('ERR_HWSQ_TASK_NOT_FUNCTION');
    expect((await rejection(rt.spawn('add', [1], { node: 99 }))).code).toBe('ERR_HWSQ_UNKNOWN_NODE');
    expect(rt.stats().externalSubmitted).toBe(0);
  });

  it('a module that does not load or does not exist fails start with a typed error', async () => {
    // The worker posts why and exits at once: the reason must win over the exit, every time
    // (its message and its exit reach this thread in no set order).
    for (let i = 0; i < 12; i++) {
      const broken = await rejection(Runtime.start({ filename: fixture('broken.mjs'), workers: 1 }));
      expect(broken.code).toBe('ERR_HWSQ_TASK_MODULE_LOAD');
      expect(String((broken.cause as Error | undefined)?.message)).toContain('broken on purpose');
    }
    expect((await rejection(Runtime.start({ filename: fixture('missing.mjs'), workers: 1 }))).code).toBe('ERR_HWSQ_TASK_MODULE_LOAD');
  });

  it('process.exit() in a task: it rejects with ERR_HWSQ_WORKER_EXITED, the P restarts re-pinned, queued tasks survive', async () => {
    const rt = await start({ workers: 1 });
    const restarted = new Promise((r) => rt.once('workerRestart', r));
    const dying = rt.spawn('exitProcess', [3]);
    const queued = Array.from({ length: 20 }, (_, i) => rt.spawn('add', [i, 1]));
    expect((await rejection(dying)).code).toBe('ERR_HWSQ_WORKER_EXITED');
    expect(await Promise.all(queued)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    await restarted;
    expect(rt.workers[0]!.restarts).toBe(1);
    const r = await rt.spawn<{ cpu: number; cpus: number[] }>('where');
    expect(r.cpus).toContain(r.cpu);
  });

  it('restartWorkers: false: once every worker exited, queued tasks reject with ERR_HWSQ_WORKER_EXITED and close() resolves', async () => {
    const rt = await start({ workers: 1, restartWorkers: false });
    const exits: unknown[] = [];
    rt.on('workerExit', (e) => exits.push(e));
    const dying = rt.spawn('exitProcess', [3]);
    const queued = Array.from({ length: 5 }, (_, i) => rt.spawn('add', [i, 1]));
    expect((await rejection(dying)).code).toBe('ERR_HWSQ_WORKER_EXITED');
    // Nothing can run them any more: they fail instead of waiting forever, and so does a close().
    for (const q of queued) expect((await rejection(q)).code).toBe('ERR_HWSQ_WORKER_EXITED');
    await rt.close();
    expect(rt.isClosed).toBe(true);
    expect(exits).toEqual([{ worker: 0, exitCode: 3 }]);
    expect((await rejection(rt.spawn('add', [1, 1]))).code).toBe('ERR_HWSQ_RUNTIME_CLOSED');
  });

  it('an uncaught exception in a timer kills the worker: its running tasks reject, the runtime goes on', async () => {
    const rt = await start({ workers: 1 });
    const errors: unknown[] = [];
    rt.on('workerError', (e) => errors.push(e));
    const sync = newSync();
    const running = rt.spawn('holdAsync', [sync]);
    await started(sync);
    expect(await rt.spawn('crashLater', [20])).toBe('scheduled');
    expect((await rejection(running)).code).toBe('ERR_HWSQ_WORKER_EXITED');
    expect(await rt.spawn('add', [2, 2])).toBe(4);
    expect(errors.length).toBe(1);
    expect(rt.stats().tasks.workerExited).toBeGreaterThanOrEqual(1);
  });

  it('tasks queued for a worker that dies from a timer run once elsewhere: none is reported exited without running', async () => {
    // The worker's event loop still delivers the wake-up its pending spawns sent in the turn it
    // dies in: a task handed to it then never starts, and must go back to the queues.
    const rt = await start({ workers: 1 });
    rt.on('workerError', () => {});
    const gate = new Int32Array(new SharedArrayBuffer(4));
    const counts = new Int32Array(new SharedArrayBuffer(4 * 20));
    expect(await rt.spawn('crashWhenGated', [gate])).toBe('scheduled');
    while (Atomics.load(gate, 0) !== 1) await sleep(1);
    const queued = Array.from({ length: 20 }, (_, i) => rt.spawn('countRun', [counts, i]));
    Atomics.store(gate, 0, 2);
    const settled = await Promise.allSettled(queued);
    expect(settled.map((s) => (s.status === 'fulfilled' ? s.value : (s.reason as { code?: string }).code))).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect([...counts]).toEqual(Array(20).fill(1));
    expect(rt.stats().tasks.workerExited).toBe(0);
  });

  it('running out of heap under resourceLimits rejects with ERR_HWSQ_WORKER_EXITED and restarts', async () => {
    const rt = await start({ workers: 1, resourceLimits: { maxOldGenerationSizeMb: 24, maxYoungGenerationSizeMb: 4 } });
    rt.on('workerError', () => {});
    expect((await rejection(rt.spawn('allocate', [4000]))).code).toBe('ERR_HWSQ_WORKER_EXITED');
    expect(await rt.spawn('add', [1, 1])).toBe(2);
  });
});

describe('Runtime: abort, backpressure, lifecycle', () => {
  it('aborting a queued task removes it: AbortError, it never runs', async () => {
    const rt = await start({ workers: 1 });
    const sync = newSync();
    const blocker = rt.spawn('holdUntilReleased', [sync]);
    await started(sync); // the only worker is busy: the next task stays queued
    const ac = new AbortController();
    const queued = rt.spawn('add', [1, 2], { signal: ac.signal });
    ac.abort();
    const err = await rejection(queued);
    expect(err.name).toBe('AbortError');
    release(sync);
    expect(await blocker).toBe('released');
    const s = rt.stats();
    expect(s.tasks.cancelled).toBe(1);
    expect(s.tasks.completed).toBe(1);  // only the blocker ran
    // An already-aborted signal: nothing is queued.
    await expect(rt.spawn('add', [1, 2], { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('aborting a running task rejects at once and signals it inside the worker', async () => {
    const rt = await start({ workers: 1 });
    const ac = new AbortController();
    const sync = newSync();
    const p = rt.spawn('waitForAbort', [600_000, sync], { signal: ac.signal });
    await started(sync);
    ac.abort(new Error('stop'));
    const err = await rejection(p);
    expect(err.name).toBe('AbortError');
    expect((err.cause as Error).message).toBe('stop');
    // The worker saw the abort and finished the task (not its 10-minute timeout): the P is free.
    await until(() => Atomics.load(sync, 2) === 1);
    expect(await rt.spawn('add', [1, 1])).toBe(2);
    await until(() => rt.stats().tasks.live === 0);
    // abort: 'terminate' kills the worker instead (it restarts).
    const restarted = new Promise((r) => rt.once('workerRestart', r));
    const ac2 = new AbortController();
    const sync2 = newSync();
    const q = rt.spawn('holdUntilReleased', [sync2], { signal: ac2.signal, abort: 'terminate' });
    await started(sync2);
    ac2.abort();
    expect((await rejection(q)).name).toBe('AbortError');
    await restarted;
    expect(await rt.spawn('add', [2, 3])).toBe(5);
  });

  it("abort: 'terminate' of a task that already finished leaves its worker alone", async () => {
    const rt = await start({ workers: 1 });
    const exits: unknown[] = [];
    rt.on('workerExit', (e) => exits.push(e));
    const other = rt.spawn('hang', [300]);  // async: running on the same worker meanwhile
    const view = new Int32Array(new SharedArrayBuffer(4));
    const ac = new AbortController();
    const finished = rt.spawn('sabWrite', [view, 0, 1], { signal: ac.signal, abort: 'terminate' });
    // This thread blocks until the task ran and a moment more: its result is on its way here,
    // not delivered yet, when the abort comes.
    const cap = Date.now() + 10_000;
    while (Atomics.load(view, 0) === 0 && Date.now() < cap);
    const until = Date.now() + 50;
    while (Date.now() < until);
    ac.abort();
    expect((await rejection(finished)).name).toBe('AbortError');
    expect(await other).toBe('done');
    expect(exits).toEqual([]);
  });

  it('an abort that reaches the worker after its task finished never aborts a later task', async () => {
    // The abort of a task that is running is delivered to its worker later; by then the task may
    // have finished, its memory gone to a next task, which the worker spinning for work (100 ms
    // here) runs before it reads its aborts. Addresses are reused only now and then: 25 tries of
    // 8 next tasks.
    const rt = await start({ workers: 1, idleSpinMicros: 100_000 });
    const outcomes: string[] = [];
    for (let i = 0; i < 25; i++) {
      const gate = new Int32Array(new SharedArrayBuffer(4));
      const ac = new AbortController();
      const aborted = rt.spawn('spinUntilGate', [gate], { signal: ac.signal });
      while (Atomics.load(gate, 0) !== 1) await new Promise((r) => setImmediate(r));
      const completed = rt.stats().tasks.completed;
      ac.abort();
      Atomics.store(gate, 0, 2);
      expect((await rejection(aborted)).name).toBe('AbortError');
      while (rt.stats().tasks.completed === completed) await new Promise((r) => setImmediate(r));
      const next = Array.from({ length: 8 }, () => rt.spawn<string>('waitForAbort', [250], { signal: new AbortController().signal }));
      outcomes.push(...(await Promise.all(next)));
    }
    expect(outcomes).toEqual(Array(200).fill('timeout'));
  });

  it('maxQueue: spawn rejects with ERR_HWSQ_QUEUE_FULL; drain / waitForRoom say when there is room', async () => {
    const rt = await start({ workers: 1, maxQueue: 2 });
    const sync = newSync();
    const blocker = rt.spawn('holdUntilReleased', [sync]);
    await started(sync); // running, so no longer queued
    const a = rt.spawn('add', [1, 1]);
    const b = rt.spawn('add', [2, 2]);
    expect(rt.queueSize).toBe(2);
    expect((await rejection(rt.spawn('add', [3, 3]))).code).toBe('ERR_HWSQ_QUEUE_FULL');
    const drained = new Promise((r) => rt.once('drain', r));
    release(sync);
    await rt.waitForRoom();
    await drained;
    expect(await rt.spawn('add', [3, 3])).toBe(6);
    expect(await Promise.all([blocker, a, b])).toEqual(['released', 2, 4]);
  });

  it('concurrentTasksPerWorker limits async root tasks per worker; others stay queued', async () => {
    const rt = await start({ workers: 1, concurrentTasksPerWorker: 1 });
    const sync = newSync();
    const first = rt.spawn('holdAsync', [sync]);
    const second = rt.spawn('holdAsync', [sync]);
    await started(sync);
    expect(rt.queueSize).toBe(1);
    expect(Atomics.load(sync, 0)).toBe(1); // the first one waits on its event loop; the second did not start
    release(sync);
    expect(await Promise.all([first, second])).toEqual(['released', 'released']);
    expect(Atomics.load(sync, 0)).toBe(2);
  });

  it('close() waits for queued, running and fire-and-forget nested tasks; spawn after close rejects', async () => {
    const rt = await start();
    const results = Array.from({ length: 10 }, () => rt.spawn('hang', [30]));
    const sync = newSync();
    expect(await rt.spawn('fireAndForgetCounted', [5, sync, 30])).toBe(5);
    const closing = rt.close();
    expect((await rejection(rt.spawn('add', [1, 1]))).code).toBe('ERR_HWSQ_RUNTIME_CLOSED');
    await closing;
    expect(Atomics.load(sync, 0)).toBe(5); // the 5 nested tasks nobody awaits finished before close() resolved
    expect(await Promise.all(results)).toEqual(Array(10).fill('done'));
    expect(rt.isClosed).toBe(true);
  });

  it('destroy() rejects everything pending with AbortError', async () => {
    const rt = await start({ workers: 1 });
    const sync = newSync();
    const running = rejection(rt.spawn('holdUntilReleased', [sync]));
    const queued = rejection(rt.spawn('add', [1, 1]));
    await started(sync); // one running (never released: destroy terminates its worker), one queued
    await rt.destroy();
    expect((await running).name).toBe('AbortError');
    expect((await queued).name).toBe('AbortError');
  });

  it('a process that never calls close() exits when nothing is pending', () => {
    const script = `
      const { Runtime } = require(${JSON.stringify(path.join(root, 'dist', 'index.js'))});
      Runtime.start({ filename: ${JSON.stringify(ESM)}, workers: 2 }).then(async (rt) => {
        console.log(await rt.spawn('addLater', [20, 22, 30]));
      });`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(r.error).toBeUndefined();
    expect(r.stdout.trim()).toBe('42');
    expect(r.status).toBe(0);
  });

  it('passes workerData, env and execArgv to the workers', async () => {
    const rt = await start({ workers: 1, workerData: { hello: 'world' }, env: { HWSQ_TEST_VAR: 'yes' }, execArgv: ['--no-warnings'] });
    expect(await rt.spawn('getWorkerData')).toEqual({ hello: 'world' });
    expect(await rt.spawn('env', ['HWSQ_TEST_VAR'])).toBe('yes');
  });

  it('validates options with the same typed errors as createNativeRuntime, nothing started', async () => {
    const bad: [Partial<RuntimeOptions>, ErrorConstructor, string][] = [
      [{ workers: 0 }, RangeError, 'ERR_HWSQ_INVALID_WORKERS'],
      [{ workers: -2 }, RangeError, 'ERR_HWSQ_INVALID_WORKERS'],
      [{ workers: NaN }, RangeError, 'ERR_HWSQ_INVALID_WORKERS'],
      [{ workers: '2' as never }, TypeError, 'ERR_HWSQ_INVALID_ARG_TYPE'],
      [{ placement: [] }, RangeError, 'ERR_HWSQ_INVALID_WORKERS'],
      [{ placement: 'everywhere' as never }, RangeError, 'ERR_HWSQ_INVALID_OPTION'],
      [{ placement: [{ node: 999 }] }, RangeError, 'ERR_HWSQ_UNKNOWN_NODE'],
      [{ stealPolicy: 'nope' as never }, RangeError, 'ERR_HWSQ_UNKNOWN_POLICY'],
      [{ concurrentTasksPerWorker: 0 }, RangeError, 'ERR_HWSQ_INVALID_OPTION'],
      [{ idleSpinMicros: -1 }, RangeError, 'ERR_HWSQ_INVALID_OPTION'],
    ];
    for (const [options, type, code] of bad) {
      const err = await Runtime.start({ filename: ESM, ...options }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, JSON.stringify(options)).toBeInstanceOf(type);
      expect(err, JSON.stringify(options)).toMatchObject({ code });
      // The same option given to the native-task runtime fails the same way.
      if ('workers' in options || 'stealPolicy' in options || Array.isArray(options.placement)) {
        expect(() => createNativeRuntime(options as NativeRuntimeOptions), JSON.stringify(options)).toThrow(expect.objectContaining({ code }));
      }
    }
  });
});

describe('Runtime: stats', () => {
  it('counts JS tasks like native ones: latency and run-time histograms, per P and node, hogs, utilization', async () => {
    // A hog threshold of 1 s: on a loaded host a descheduled 'add' can outlast the default 10 ms.
    const rt = await start({ stealPolicy: 'flat', hogThresholdMs: 1000 });
    await Promise.all(rt.spawnMany('add', Array.from({ length: 200 }, (_, i) => [i, i])));
    // One task held inside its worker until sysmon has reported it as a hog.
    const sync = newSync();
    const hog = rt.spawn('holdUntilReleased', [sync]);
    await started(sync);
    await until(() => rt.stats().sysmon.stuckWorkers === 1);
    release(sync);
    expect(await hog).toBe('released');
    // A result reaches this thread from inside the task's fn, just before the P records the
    // task's run time and counts it: the counters may trail the promise by a moment.
    await until(() => rt.stats().runTime.count === 201);
    const s = rt.stats();
    expect(s.executed).toBe(201);
    expect(s.latency.count).toBe(201);
    expect(s.runTime.count).toBe(201);
    expect(s.runTime.maxNs).toBeGreaterThanOrEqual(s.runTime.p99Ns);
    expect(s.sysmon.hogs).toBe(1);
    expect(s.workers.reduce((a, w) => a + w.hogs, 0)).toBe(1);
    expect(s.workers).toHaveLength(2);
    expect(s.workers.some((w) => w.utilization > 0)).toBe(true);
    expect(s.workers.every((w) => w.attached && w.threadId > 0)).toBe(true);
    expect(s.nodes.reduce((a, n) => a + n.executed, 0)).toBe(s.executed);
    expect(s.tasks.completed).toBe(201);
    expect(s.tasks.live).toBe(0);
    expect(s.pending).toBe(0);
  });
});
