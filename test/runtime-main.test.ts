// The main thread's half of a Runtime (lib/runtime/runtime.ts) in this process, on one worker:
// when it holds the process open (the addon's handle ref'd while spawns are pending, observed on
// the binding), what its getters and stats() add to the core's figures, its events around a
// worker's exit, maxQueue 'auto', the failures of start(), and close()/destroy() bookkeeping.
// runtime.test.ts proves the behaviours end to end (some in child processes, which a mutation
// run cannot see); these pin the main-thread decisions behind them.
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { threadId as mainThreadId } from 'node:worker_threads';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Runtime, type RuntimeOptions } from '../lib/index';
import { jsBinding } from '../lib/core/js-binding';
import { DEFAULTS } from '../lib/core/validation';
import { ensureDist, root } from './helpers';

const fixture = (name: string) => path.join(root, 'test', 'fixtures', 'tasks', name);
const ESM = fixture('basic.mjs');

beforeAll(ensureDist, 120_000);

const open: Runtime[] = [];
async function start(options: Partial<RuntimeOptions> = {}): Promise<Runtime> {
  const rt = await Runtime.start({ filename: ESM, workers: 1, ...options });
  open.push(rt);
  return rt;
}
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(open.splice(0).map((rt) => rt.destroy()));
});

async function rejection(p: Promise<unknown>): Promise<Error & { code?: string; cause?: unknown }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}
const newSync = () => new Int32Array(new SharedArrayBuffer(16));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await sleep(1);  // a hang is a failure (the test's timeout)
}
function release(sync: Int32Array): void {
  Atomics.store(sync, 1, 1);
  Atomics.notify(sync, 1);
}
/** Lets queued microtasks and the completion callback run. */
const turn = () => new Promise((r) => setImmediate(r));

describe('Runtime (main thread): holding the process open', () => {
  it('the handle is ref\'d once when spawns become pending, unref\'d after the last result\'s microtasks, kept when a spawn follows at once', async () => {
    const rt = await start();
    const ref = vi.spyOn(jsBinding(), 'ref');
    const a = rt.spawn('add', [1, 2]);
    const b = rt.spawn('add', [3, 4]);
    expect(ref.mock.calls.map((c) => c[1])).toEqual([true]);
    expect(await Promise.all([a, b])).toEqual([3, 7]);
    await turn();
    expect(ref.mock.calls.map((c) => c[1])).toEqual([true, false]);
    // A caller that spawns again as soon as a result arrives: no unref/ref pair in between, and
    // never unref'd while a spawn is pending.
    ref.mockRestore();
    const binding = jsBinding();
    const original = binding.ref.bind(binding);
    const seen: [boolean, number][] = [];
    vi.spyOn(binding, 'ref').mockImplementation((h, on) => {
      seen.push([on, rt.pending]);
      original(h, on);
    });
    let chained = 0;
    await rt.spawn('add', [0, 0]).then(() => rt.spawn('add', [0, 1]).then(() => chained++));
    await turn();
    expect(chained).toBe(1);
    expect(seen).toEqual([
      [true, 1],
      [false, 0],
    ]);
  });

  it('close() with nested fire-and-forget tasks still live keeps the handle ref\'d until they finish', async () => {
    const rt = await start();
    const ref = vi.spyOn(jsBinding(), 'ref');
    const sync = newSync();
    await rt.spawn('fireAndForgetHeld', [2, sync]);
    await turn();
    ref.mockClear();
    let closed = false;
    const closing = rt.close().then(() => (closed = true));
    await until(() => ref.mock.calls.length > 0);
    expect(ref.mock.calls.map((c) => c[1])).toEqual([true]);
    await sleep(20);
    expect(closed).toBe(false);
    release(sync);
    await closing;
    expect(Atomics.load(sync, 0)).toBe(2);
  });
});

describe('Runtime (main thread): what it reports', () => {
  it('workers, pending, queueSize, closed; stats() adds each P\'s threadId and restarts and the pending count', async () => {
    const rt = await start();
    const [w] = rt.workers;
    expect(w).toMatchObject({ worker: 0, restarts: 0 });
    expect(w!.threadId).toBeGreaterThan(mainThreadId);
    expect(rt.tasks).toContain('add');
    const sync = newSync();
    const held = rt.spawn('holdAsync', [sync]);
    await until(() => Atomics.load(sync, 0) >= 1);
    expect(rt.pending).toBe(1);
    const s = rt.stats();
    expect(s.pending).toBe(1);
    expect(s.workers).toHaveLength(1);
    expect(s.workers[0]).toMatchObject({ threadId: w!.threadId, restarts: 0 });
    expect(rt.queueSize).toBe(0);
    expect(rt.closed).toBe(false);
    expect(rt.isClosed).toBe(false);
    release(sync);
    await held;
    expect(rt.pending).toBe(0);
    await rt.destroy();
    expect(rt.closed).toBe(true);
    expect(rt.isClosed).toBe(true);
    expect(rt.queueSize).toBe(0);
    expect(rt.workers[0]!.threadId).toBe(-1);
    expect(() => rt.stats()).toThrow(expect.objectContaining({ code: 'ERR_HWSQ_RUNTIME_CLOSED' }));
  });

  it('a worker that exits: workerExit with its code, then workerRestart with the count; workers and stats() follow, the task names stay', async () => {
    const rt = await start();
    const before = rt.workers[0]!.threadId;
    const exits: unknown[] = [];
    rt.on('workerExit', (e) => exits.push(e));
    const restarted = once(rt, 'workerRestart');
    expect((await rejection(rt.spawn('exitProcess', [3]))).code).toBe('ERR_HWSQ_WORKER_EXITED');
    expect((await restarted)[0]).toEqual({ worker: 0, restarts: 1 });
    expect(exits).toEqual([{ worker: 0, exitCode: 3 }]);
    expect(rt.workers[0]!.restarts).toBe(1);
    expect(rt.workers[0]!.threadId).not.toBe(before);
    expect(rt.stats().workers[0]).toMatchObject({ restarts: 1, threadId: rt.workers[0]!.threadId });
    expect(rt.tasks).toContain('add');
    expect(await rt.spawn('add', [2, 2])).toBe(4);
  });

  it('an error of a worker after it was ready reaches workerError listeners; without one it is not thrown here', async () => {
    const rt = await start();
    const errors = once(rt, 'workerError');
    await rt.spawn('crashLater', [1]);
    const [e] = (await errors) as [{ worker: number; error: Error }];
    expect(e.worker).toBe(0);
    expect(e.error.message).toMatch(/uncaught in a timer/);
    await once(rt, 'workerRestart');
    rt.removeAllListeners('workerError');
    const restarted = once(rt, 'workerRestart');
    await rt.spawn('crashLater', [1]);
    await restarted;
    expect(await rt.spawn('add', [1, 1])).toBe(2);
  });

  it('restartWorkers: false: with a worker left the runtime goes on', async () => {
    const rt = await start({ restartWorkers: false, workers: 2 });
    const exits = once(rt, 'workerExit');
    expect((await rejection(rt.spawn('exitProcess', [0]))).code).toBe('ERR_HWSQ_WORKER_EXITED');
    await exits;
    expect(rt.closed).toBe(false);
    expect(await Promise.all(Array.from({ length: 8 }, (_, i) => rt.spawn('add', [i, 1])))).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('restartWorkers: false: the last worker gone closes the runtime and what waits rejects with WORKER_EXITED', async () => {
    const rt = await start({ restartWorkers: false });
    const sync = newSync();
    const held = rt.spawn('holdUntilReleased', [sync]);
    await until(() => Atomics.load(sync, 0) >= 1);
    // Each rejection is taken at once: they come while this test awaits something else.
    const exited = rejection(rt.spawn('exitProcess', [0]));
    const queued = rejection(rt.spawn('add', [1, 1]));  // behind it: never runs
    release(sync);
    await held;
    expect((await exited).code).toBe('ERR_HWSQ_WORKER_EXITED');
    const err = await queued;
    expect(err.code).toBe('ERR_HWSQ_WORKER_EXITED');
    expect(err.message).toMatch(/every worker of this runtime exited/);
    expect(rt.closed).toBe(true);
    expect((await rejection(rt.spawn('add', [1, 1]))).code).toBe('ERR_HWSQ_RUNTIME_CLOSED');
  });
});

describe('Runtime (main thread): queue limit', () => {
  it("maxQueue 'auto' is DEFAULTS.maxQueuePerWorker per worker: one more is QUEUE_FULL, then drain and waitForRoom once there is room", async () => {
    const rt = await start({ maxQueue: 'auto', workers: 2 });
    const sync = newSync();
    const held = Promise.all([rt.spawn('holdUntilReleased', [sync]), rt.spawn('holdUntilReleased', [sync])]);
    await until(() => Atomics.load(sync, 0) >= 2);
    const limit = DEFAULTS.maxQueuePerWorker * 2;
    const queued = rt.spawnMany('add', Array.from({ length: limit }, (_, i) => [i, 1]));
    expect(rt.queueSize).toBe(limit);
    expect((await rejection(rt.spawn('add', [0, 0]))).code).toBe('ERR_HWSQ_QUEUE_FULL');
    let drained = 0;
    rt.on('drain', () => drained++);
    let roomy = false;
    const room = rt.waitForRoom().then(() => (roomy = true));
    await sleep(10);
    expect(roomy).toBe(false);
    release(sync);
    await room;
    await held;
    await Promise.all(queued);
    expect(drained).toBeGreaterThanOrEqual(1);
    await expect(rt.waitForRoom()).resolves.toBeUndefined();
  });
});

describe("Runtime (main thread): 'drain'", () => {
  it("is emitted once per time the queue was full, to 'drain' listeners alone; never for a queue that was not", async () => {
    const rt = await start({ maxQueue: 2 });
    let drained = 0;
    rt.on('drain', () => drained++);
    // Never full: no 'drain', however many tasks complete.
    for (let i = 0; i < 5; i++) expect(await rt.spawn('add', [i, 1])).toBe(i + 1);
    expect(drained).toBe(0);
    // Full (the worker held, two queued, a third refused), with no waitForRoom() waiting.
    const sync = newSync();
    const held = rt.spawn('holdUntilReleased', [sync]);
    await until(() => Atomics.load(sync, 0) >= 1);
    const queued = [rt.spawn('add', [1, 1]), rt.spawn('add', [2, 1])];
    expect((await rejection(rt.spawn('add', [3, 1]))).code).toBe('ERR_HWSQ_QUEUE_FULL');
    release(sync);
    await held;
    expect(await Promise.all(queued)).toEqual([2, 3]);
    expect(drained).toBe(1);
    // Room all along since: completions emit nothing more.
    for (let i = 0; i < 3; i++) await rt.spawn('add', [i, 1]);
    expect(drained).toBe(1);
  });
});

describe('Runtime (main thread): start and stop', () => {
  it('start(): a missing module, a module that throws (its error as cause, stack and all), options the workers refuse', async () => {
    const missing = await rejection(Runtime.start({ filename: fixture('no-such-module.mjs'), workers: 1 }));
    expect(missing).toMatchObject({ code: 'ERR_HWSQ_TASK_MODULE_LOAD' });
    expect(missing.message).toContain('does not exist');
    const broken = await rejection(Runtime.start({ filename: fixture('broken.mjs'), workers: 1 }));
    expect(broken.code).toBe('ERR_HWSQ_TASK_MODULE_LOAD');
    const cause = broken.cause as Error;
    expect(cause.message).toBe('broken on purpose');
    expect(cause.stack).toContain('broken.mjs');
    const refused = await rejection(Runtime.start({ filename: ESM, workers: 1, execArgv: ['--no-such-node-flag'] }));
    expect(refused.code).toBe('ERR_HWSQ_INVALID_OPTION');
    expect((refused.cause as { code?: string }).code).toBe('ERR_WORKER_INVALID_EXEC_ARGV');
  });

  it('close() is one promise however often called; destroy() and close() after it resolve; spawns are refused from the first close()', async () => {
    const rt = await start();
    const p = rt.spawn('addLater', [1, 2, 20]);
    const c1 = rt.close();
    expect(rt.close()).toBe(c1);
    expect(rt.closed).toBe(true);
    expect((await rejection(rt.spawn('add', [1, 1]))).code).toBe('ERR_HWSQ_RUNTIME_CLOSED');
    expect(await p).toBe(3);
    await c1;
    await expect(rt.destroy()).resolves.toBeUndefined();
    await expect(rt.close()).resolves.toBeUndefined();
  });

  it('Symbol.asyncDispose closes it; workers stopped by destroy() or close() are not reported as exits or restarted', async () => {
    const rt = await start({ workers: 2 });
    const events: string[] = [];
    for (const e of ['workerExit', 'workerRestart', 'workerError']) rt.on(e, () => events.push(e));
    expect(await rt.spawn('add', [1, 2])).toBe(3);
    await rt[Symbol.asyncDispose]();
    expect(rt.closed).toBe(true);
    expect(rt.workers.map((w) => w.threadId)).toEqual([-1, -1]);
    await sleep(50);
    expect(events).toEqual([]);
    const other = await start({ workers: 2 });
    other.on('workerExit', () => events.push('workerExit'));
    await other.destroy();
    await sleep(50);
    expect(events).toEqual([]);
  });

  it('destroy() wakes every waiter: waitForRoom, a pending close(), and rejects the pending spawns', async () => {
    const rt = await start({ maxQueue: 1 });
    const sync = newSync();
    const held = rejection(rt.spawn('holdUntilReleased', [sync]));  // taken at once: it rejects while destroy() runs
    await until(() => Atomics.load(sync, 0) >= 1);
    const queued = rejection(rt.spawn('add', [1, 1]));
    const room = rt.waitForRoom();
    const closing = rt.close();
    const destroying = rt.destroy();
    release(sync);
    await destroying;
    await expect(room).resolves.toBeUndefined();
    await expect(closing).resolves.toBeUndefined();
    expect((await queued).name).toBe('AbortError');
    expect((await held).name).toBe('AbortError');
  });
});

describe('Runtime (main thread): workers that cannot start again', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });
  // Task modules written for the test: each load appends a line to `log`, and throws (or exits)
  // once `breakFile` exists.
  function tempModule(onBreak: string): { file: string; log: string; breakFile: string; loads: () => number } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hwsq-rt-main-'));
    dirs.push(dir);
    const file = path.join(dir, 'tasks.mjs');
    const log = path.join(dir, 'loads.log');
    const breakFile = path.join(dir, 'broken');
    fs.writeFileSync(
      file,
      `import fs from 'node:fs';\n` +
        `fs.appendFileSync(${JSON.stringify(log)}, 'load\\n');\n` +
        `if (fs.existsSync(${JSON.stringify(breakFile)})) { ${onBreak} }\n` +
        `export function add(a, b) { return a + b; }\n` +
        `export function exit(code) { process.exit(code); }\n`,
    );
    const loads = () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter(Boolean).length : 0);
    return { file, log, breakFile, loads };
  }

  it('a replacement that fails to load is retried, 5 tries in all; then workerError, the P is gone, and with it the last one the runtime closes', async () => {
    const m = tempModule("throw new Error('cannot load any more');");
    const rt = await start({ filename: m.file });
    expect(m.loads()).toBe(1);
    const errors: { worker: number; error: Error & { code?: string } }[] = [];
    rt.on('workerError', (e) => errors.push(e));
    fs.writeFileSync(m.breakFile, '');
    expect((await rejection(rt.spawn('exit', [0]))).code).toBe('ERR_HWSQ_WORKER_EXITED');
    await until(() => rt.closed);
    expect(m.loads()).toBe(1 + 5);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.worker).toBe(0);
    expect(errors[0]!.error.code).toBe('ERR_HWSQ_TASK_MODULE_LOAD');
    expect((errors[0]!.error.cause as Error).message).toBe('cannot load any more');
    expect((await rejection(rt.spawn('add', [1, 1]))).code).toBe('ERR_HWSQ_RUNTIME_CLOSED');
  });

  it('workers whose module exports other functions (per thread, per load) fail to start: a task never runs as another', async () => {
    // Tasks are named on this thread and run by index on the worker: a worker with another table
    // ran gamma for spawn('beta').
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hwsq-rt-main-'));
    dirs.push(dir);
    const perThread = path.join(dir, 'per-thread.mjs');
    fs.writeFileSync(
      perThread,
      `import { threadId } from 'node:worker_threads';
` +
        `export const alpha = threadId % 2 === 0 ? undefined : () => 'alpha';
` +
        `export function beta() { return 'beta'; }
` +
        `export function gamma() { return 'gamma'; }
`,
    );
    const err = await rejection(Runtime.start({ filename: perThread, workers: 2 }));
    expect(err.code).toBe('ERR_HWSQ_TASK_MODULE_LOAD');
    expect(err.message).toMatch(/exports other functions on worker [01] than on the others \((missing: alpha; extra: none|missing: none; extra: alpha)\)/);
    // A replacement that loads another table: retried like one that fails to load, then gone.
    const marker = path.join(dir, 'more');
    const perLoad = path.join(dir, 'per-load.mjs');
    fs.writeFileSync(
      perLoad,
      `import fs from 'node:fs';
` +
        `export const extra = fs.existsSync(${JSON.stringify(marker)}) ? () => 'extra' : undefined;
` +
        `export function add(a, b) { return a + b; }
` +
        `export function exit(code) { process.exit(code); }
`,
    );
    const rt = await start({ filename: perLoad });
    const errors: { worker: number; error: Error & { code?: string } }[] = [];
    rt.on('workerError', (e) => errors.push(e));
    fs.writeFileSync(marker, '');
    expect((await rejection(rt.spawn('exit', [0]))).code).toBe('ERR_HWSQ_WORKER_EXITED');
    await until(() => rt.closed);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.error.code).toBe('ERR_HWSQ_TASK_MODULE_LOAD');
    expect(errors[0]!.error.message).toContain('(missing: none; extra: extra)');
    expect(rt.tasks).toEqual(['add', 'exit']);
  });

  it("a module's load error keeps its code on the cause", async () => {
    const m = tempModule("throw Object.assign(new RangeError('coded'), { code: 'E_TASKS_CODED' });");
    fs.writeFileSync(m.breakFile, '');
    const err = await rejection(Runtime.start({ filename: m.file, workers: 1 }));
    expect(err.code).toBe('ERR_HWSQ_TASK_MODULE_LOAD');
    expect(err.cause).toMatchObject({ message: 'coded', code: 'E_TASKS_CODED' });
    const plain = tempModule("throw new Error('uncoded');");
    fs.writeFileSync(plain.breakFile, '');
    expect(((await rejection(Runtime.start({ filename: plain.file, workers: 1 }))).cause as { code?: string }).code).toBeUndefined();
  });

  it('a worker that exits while its module loads fails start() with the exit code', async () => {
    const m = tempModule('process.exit(7);');
    fs.writeFileSync(m.breakFile, '');
    const err = await rejection(Runtime.start({ filename: m.file, workers: 1 }));
    expect(err.code).toBe('ERR_HWSQ_TASK_MODULE_LOAD');
    expect(err.message).toMatch(/exited with code 7 before it was ready/);
  });
});
