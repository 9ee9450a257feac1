// The JS-task Runtime against hostile tasks and task modules, worker restarts, destroy() and
// teardown. Synchronisation is explicit (Atomics on SharedArrayBuffers, counters), never a
// sleep. What could crash the process on a regression runs in a child process.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BroadcastChannel, receiveMessageOnPort } from 'node:worker_threads';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Runtime, type RuntimeOptions } from '../lib/index';
import { ensureDist, rejectionOf, root } from './helpers';

const fixture = (name: string) => path.join(root, 'test', 'fixtures', 'tasks', name);
const HOSTILE = fixture('hostile.mjs');

beforeAll(ensureDist, 120_000);

const open: Runtime[] = [];
async function start(options: Partial<RuntimeOptions> = {}): Promise<Runtime> {
  const rt = await Runtime.start({ filename: HOSTILE, workers: 1, ...options });
  open.push(rt);
  return rt;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((rt) => rt.destroy()));
});

/** An Int32Array over a fresh SharedArrayBuffer, for flags a task sets (Atomics). */
const flag = () => new Int32Array(new SharedArrayBuffer(8));
/** Blocks this thread until the task holding `f` set f[0] (it started): no event-loop turn in between. */
function waitStarted(f: Int32Array): void {
  expect(Atomics.wait(f, 0, 0, 20_000)).not.toBe('timed-out');
}

/** How a promise settled, in a comparable form. */
async function outcome(p: Promise<unknown>): Promise<unknown> {
  try {
    const v = await p;
    return { value: typeof v === 'string' && v.length > 100 ? `string of ${v.length}` : v };
  } catch (e) {
    if (typeof e === 'string') return { thrown: e.length > 100 ? `string of ${e.length}` : e };
    if (typeof e !== 'object' || e === null) return { thrown: e };
    const err = e as Error & { code?: unknown };
    return { error: err.constructor.name, code: err.code };
  }
}

describe('a task that throws, returns or rejects an exotic value fails alone', () => {
  it('its promise rejects with a stable code or the value itself; its worker and the tasks beside it carry on', async () => {
    const rt = await start();
    const exits: unknown[] = [];
    rt.on('workerExit', (e) => exits.push(e));
    const beside = rt.spawn('later', [100, 'beside']);  // async, in flight on the same worker throughout
    const clone = { error: 'TypeError', code: 'ERR_HWSQ_DATA_CLONE' };
    // What the host's structured clone makes of the fixture's cyclic Error (its cause is itself):
    // Node 22 and later clone it, Node 20 refuses it. A returned value must fare the same.
    const cyclicReturned = (() => {
      const e = new Error('cyclic') as Error & { self?: unknown };
      e.self = e;
      e.cause = e;
      try {
        return { value: structuredClone(e) };
      } catch {
        return clone;
      }
    })();
    const expected: Record<string, unknown> = {
      'throws proxy': clone,
      'throws revoked': clone,
      'throws symbol': clone,
      'throws unprintable': clone,
      'throws fn': clone,
      'throws getters': { error: 'Error', code: 'E_KEPT' },
      'throws bigint': { thrown: 10n },
      'throws cyclic': { error: 'Error', code: undefined },
      'throws unclonableCode': { error: 'TypeError', code: 'E_FN' },
      'throws hugeString': { thrown: `string of ${8 << 20}` },
      'returns proxy': clone,
      'returns revoked': clone,
      'returns symbol': clone,
      'returns unprintable': clone,
      'returns fn': clone,
      'returns cyclic': cyclicReturned,
      'returns bigint': { value: 10n },
      'returns hugeString': { value: `string of ${8 << 20}` },
      'rejects proxy': clone,
      'rejects revoked': clone,
      'rejects symbol': clone,
      'rejects unprintable': clone,
      'rejects getters': { error: 'Error', code: 'E_KEPT' },
      'rejects cyclic': { error: 'Error', code: undefined },
      'thenable getter': clone,
      'thenable throws': { error: 'Error', code: undefined },
      'thenable both': { value: 'first' },
      'thenable sync': { value: 'sync' },
    };
    const got: Record<string, unknown> = {};
    for (const name of Object.keys(expected)) {
      const [fn, kind] = name.split(' ');
      got[name] = await outcome(rt.spawn(fn!, [kind]));
    }
    expect(got).toEqual(expected);
    expect(await beside).toBe('beside');
    expect(await rt.spawn('add', [2, 3])).toBe(5);
    expect(exits).toEqual([]);
    expect(rt.workers[0]!.restarts).toBe(0);
    expect(rt.stats().tasks.workerExited).toBe(0);
  });

  it('what can be carried of an exotic error is: class, message, stack, readable own properties', async () => {
    const rt = await start();
    const err = (await rejectionOf(rt.spawn('throws', ['unclonableCode']))) as Error & { fn?: unknown };
    expect(err).toBeInstanceOf(TypeError);
    expect(err.message).toBe('with a function');
    expect(err.stack).toContain('hostile.mjs');
    expect(typeof err.fn).toBe('string');  // a function property travels as its source text
    const symbol = await rejectionOf(rt.spawn('throws', ['symbol']));
    expect(symbol.message).toContain('Symbol(s)');
    const getters = await rejectionOf(rt.spawn('throws', ['getters']));
    expect(getters.message).toBe('kept');
    expect('bad' in getters).toBe(false);  // its getter threw: left out
  });
});

describe('construction', () => {
  it('new Runtime() from JS (private only in TypeScript) is a TypeError with a code, not a half-made runtime', () => {
    const Ctor = Runtime as unknown as new (...args: unknown[]) => unknown;
    for (const args of [[], [{ filename: HOSTILE, workers: 1 }], [{}, 0, [{ node: 0, cpus: [0] }], {}, 'file:///x.mjs']]) {
      let caught: unknown;
      try {
        new Ctor(...args);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(TypeError);
      expect((caught as { code?: string }).code).toBe('ERR_HWSQ_INVALID_ARG_TYPE');
    }
  });
});

describe('hostile task modules', () => {
  it('exports whose getters throw are not tasks; the other exports run', async () => {
    const rt = await start({ filename: fixture('hostile-getters.cjs') });
    expect(rt.tasks).toEqual(['add']);
    expect(await rt.spawn('add', [1, 2])).toBe(3);
    expect((await rejectionOf(rt.spawn('boom'))).code).toBe('ERR_HWSQ_TASK_NOT_FUNCTION');
  });

  it('a module that replaces globals the runtime uses still gets its arguments, results and errors', async () => {
    const rt = await start({ filename: fixture('hostile-globals.mjs') });
    const view = flag();
    expect(await rt.spawn('add', [1, 2])).toBe(3);
    expect(await rt.spawn('shape', [3, 4])).toEqual({ sum: 7, list: [3, 4], bytes: new Int8Array([3, 4]) });
    expect(await rt.spawn('sabAdd', [view])).toBe(0);
    expect(view[0]).toBe(1);
    // Fresh buffers, so that their announcements reach the worker as channel messages (Node 22+
    // built each message's event from code loaded on first use, after the module had replaced
    // the globals that code needs: the worker died on the first).
    for (let i = 0; i < 10; i++) {
      const fresh = flag();
      expect(await rt.spawn('sabAdd', [fresh])).toBe(0);
      expect(fresh[0]).toBe(1);
    }
    expect(await outcome(rt.spawn('fail', ['own']))).toEqual({ error: 'Error', code: 'E_OWN' });
    expect(rt.workers[0]!.restarts).toBe(0);
  });

  it("what task code posts on the worker's parentPort (forged runtime messages too) never reaches the runtime's control of that worker", async () => {
    // At load: forged 'ready' (names that are not an array, then other names), 'load-error',
    // 'sab-sync' and null; then postMessage itself replaced for every port. At run time the
    // same forgeries again. Before the bootstrap had a port of its own, the first threw on this
    // thread (an uncaught exception: a crashed service) and the second renamed the tasks.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hwsq-forge-'));
    const file = path.join(dir, 'forge.mjs');
    fs.writeFileSync(
      file,
      `import { parentPort, MessagePort } from 'node:worker_threads';
const forgeries = [{ kind: 'hwsq:ready', names: 5 }, { kind: 'hwsq:ready', names: ['zzz'], nonFunctions: [] }, { kind: 'hwsq:load-error', message: 'forged' }, { kind: 'hwsq:sab-sync' }, null];
const post = parentPort.postMessage.bind(parentPort);
for (const m of forgeries) post(m);
MessagePort.prototype.postMessage = function () {};
export function forgeAll() { for (const m of forgeries) post(m); return 'posted'; }
export function add(a, b) { return a + b; }
export function mul(a, b) { return a * b; }
`,
    );
    try {
      const rt = await start({ filename: file, workers: 2 });
      expect(rt.tasks).toEqual(['add', 'forgeAll', 'mul']);
      expect(await rt.spawn('forgeAll')).toBe('posted');
      expect(await Promise.all([rt.spawn('forgeAll'), rt.spawn('forgeAll')])).toEqual(['posted', 'posted']);
      // A turn for the forged messages to arrive (they go nowhere), then the table still holds.
      await new Promise((r) => setImmediate(r));
      expect(rt.tasks).toEqual(['add', 'forgeAll', 'mul']);
      expect(await Promise.all([rt.spawn('add', [2, 3]), rt.spawn('mul', [2, 3])])).toEqual([5, 6]);
      expect(rt.workers.map((w) => w.restarts)).toEqual([0, 0]);
      await rt.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('process.exit() in a task rejects it with ERR_HWSQ_WORKER_EXITED; every task queued behind it runs once on the replacement', async () => {
    const rt = await start();
    const counter = flag();
    const dying = rt.spawn('exit', [3]);
    const queued = Array.from({ length: 200 }, () => rt.spawn('sabAdd', [counter]));
    expect((await rejectionOf(dying)).code).toBe('ERR_HWSQ_WORKER_EXITED');
    expect((await Promise.all(queued)).sort((a, b) => Number(a) - Number(b))).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(counter[0]).toBe(200);
  });

  it('a task that never returns: destroy() still stops the runtime, and a pending close() settles with it', async () => {
    const rt = await start();
    const started = flag();
    const stuck = outcome(rt.spawn('blockForever', [started]));
    const queued = outcome(rt.spawn('add', [1, 1]));
    waitStarted(started);
    const closing = rt.close();
    await rt.destroy();
    await closing;
    expect(await stuck).toEqual({ error: 'Error', code: 'ABORT_ERR' });
    expect(await queued).toEqual({ error: 'Error', code: 'ABORT_ERR' });
  });
});

describe('SharedArrayBuffers across worker restarts and garbage collection', () => {
  it('tasks queued while their worker restarts run exactly once, old and new buffers alike', async () => {
    const rt = await start();
    const shared = flag();
    const dying = rt.spawn('exit', [1]);
    const fresh = Array.from({ length: 300 }, () => flag());
    const onShared = Array.from({ length: 300 }, () => rt.spawn('sabAdd', [shared]));
    const onFresh = fresh.map((f) => rt.spawn('sabAdd', [f]));
    await rejectionOf(dying);
    expect(await Promise.all(onFresh)).toEqual(Array(300).fill(0));
    expect(fresh.every((f) => f[0] === 1)).toBe(true);
    await Promise.all(onShared);
    expect(shared[0]).toBe(300);
    expect(rt.workers[0]!.restarts).toBe(1);
  });

  // Watches the registry's channel from this thread, synchronously (no event-loop turn).
  function registryWatch() {
    const ch = new BroadcastChannel('hwsq:shared-array-buffers');
    const announced: number[] = [];
    return {
      announced,
      /** Pulls messages until `id()` names a released id; false when none came within `polls` empty polls (about 1 ms each). */
      waitForRelease(id: () => number | undefined, polls = 20_000): boolean {
        for (let i = 0; i < polls; i++) {
          const m = receiveMessageOnPort(ch as never) as { message: { id: number; sab?: unknown; release?: boolean } } | undefined;
          if (!m) Atomics.wait(flag(), 0, 0, 1);
          else if (m.message.sab) announced.push(m.message.id);
          else if (m.message.release && m.message.id === id()) return true;
        }
        return false;
      },
      close: () => ch.close(),
    };
  }

  it('a buffer made in a task resolves here although its worker released its id before the result was read', async () => {
    // No polling for results: the completion then reaches this thread after the registry's messages.
    const rt = await start({ idleSpinMicros: 0 });
    const watch = registryWatch();
    try {
      const result = rt.spawn<SharedArrayBuffer>('makeSab', [64]);
      expect(watch.waitForRelease(() => watch.announced[0])).toBe(true);
      const sab = await result;
      expect(new Int32Array(sab)[0]).toBe(42);
    } finally {
      watch.close();
    }
  });

  it('a buffer received from a worker and passed on to tasks survives that worker releasing its id while they wait', async () => {
    const rt = await start({ workers: 2, concurrentTasksPerWorker: 1 });
    const watch = registryWatch();
    try {
      const made = await rt.spawn<SharedArrayBuffer>('makeSab', [16]);
      const madeId = watch.announced[0];
      // Both workers hold a root task, so the next ones stay queued while their event loops run.
      const gate = flag();
      const holders = [rt.spawn('awaitGate', [gate]), rt.spawn('awaitGate', [gate])];
      while (Atomics.load(gate, 1) < 2) Atomics.wait(gate, 1, Atomics.load(gate, 1), 20_000);
      const adds = Array.from({ length: 50 }, () => rt.spawn('sabAdd', [new Int32Array(made)]));
      // The worker that made it collects its object and releases its id now, unless passing it on
      // made that worker map the buffer to its object again (then it never releases it): give
      // the release a chance to reach the workers before the tasks run, without requiring it.
      watch.waitForRelease(() => madeId, 2000);
      Atomics.store(gate, 0, 1);
      expect(await Promise.all(holders)).toEqual(['opened', 'opened']);
      expect((await Promise.all(adds)).sort((a, b) => Number(a) - Number(b))).toEqual(Array.from({ length: 50 }, (_, i) => 42 + i));
    } finally {
      watch.close();
    }
  });

  it('a buffer keeps its identity through a round trip', async () => {
    const rt = await start({ workers: 2 });
    const mine = new SharedArrayBuffer(8);
    const back = await rt.spawn<Int32Array>('later', [0, new Int32Array(mine)]);
    expect(back.buffer).toBe(mine);
    const twice = await Promise.all([rt.spawn<SharedArrayBuffer>('later', [0, mine]), rt.spawn<SharedArrayBuffer>('later', [0, mine])]);
    expect(twice).toEqual([mine, mine]);
    expect(twice[0]).toBe(mine);
    expect(twice[1]).toBe(mine);
  });
});

describe('destroy()', () => {
  it('a task that completed delivers its result; one running and one never started reject with an AbortError', async () => {
    const rt = await start();
    const ran = flag();
    const done = rt.spawn('signalAndReturn', [ran, 'done']);
    waitStarted(ran);  // it ran; its result waits for this thread's next turn
    const holding = flag();
    const running = rejectionOf(rt.spawn('holdUntil', [holding]));
    waitStarted(holding);
    const queued = rejectionOf(rt.spawn('add', [1, 2]));
    await rt.destroy();
    expect(await done).toBe('done');
    const r = await running;
    expect([r.name, r.message]).toEqual(['AbortError', 'destroy() stopped this task while it ran']);
    const q = await queued;
    expect([q.name, q.message]).toEqual(['AbortError', 'destroy() dropped this task before it started']);
  });

  it('the handle of a destroyed runtime is refused by the addon (ERR_HWSQ_RUNTIME_CLOSED), never used', async () => {
    const rt = await start();
    await rt.destroy();
    const internals = rt as unknown as { b: { queued(h: object): number; stats(h: object): unknown }; rt: object };
    for (const call of [() => internals.b.queued(internals.rt), () => internals.b.stats(internals.rt)]) {
      let caught: unknown;
      try {
        call();
      } catch (err) {
        caught = err;
      }
      expect(caught).toMatchObject({ code: 'ERR_HWSQ_RUNTIME_CLOSED' });
    }
  });
});

describe('integers crossing into C++', () => {
  it('a nested spawn with node 2**32 is refused (ERR_HWSQ_UNKNOWN_NODE), not run on node 0', async () => {
    const rt = await start();
    expect(await rt.spawn('nestedNode', [2 ** 32])).toBe('RangeError ERR_HWSQ_UNKNOWN_NODE');
    expect(await rt.spawn('nestedNode', [2 ** 31])).toBe('RangeError ERR_HWSQ_UNKNOWN_NODE');
  });
});

describe('teardown', () => {
  const dist = JSON.stringify(path.join(root, 'dist', 'index.js'));
  const child = (script: string) => {
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(r.error, r.stderr).toBeUndefined();
    return r;
  };

  it('a Worker that owns a Runtime is terminated while tasks run: no crash, no thread left behind', () => {
    const r = child(`
      const fs = require('node:fs');
      const { Worker } = require('node:worker_threads');
      const threads = () => fs.readdirSync('/proc/self/task').length;
      (async () => {
        await fs.promises.readFile(__filename === '[eval]' ? '/proc/self/stat' : __filename);  // libuv's pool is up
        const first = new Worker('require("node:worker_threads").parentPort.postMessage(1)', { eval: true });
        await new Promise((r) => first.once('exit', r));
        const base = threads();
        for (let round = 0; round < 3; round++) {
          const w = new Worker(\`
            const { parentPort } = require('node:worker_threads');
            const { Runtime } = require(${dist});
            Runtime.start({ filename: ${JSON.stringify(HOSTILE)}, workers: 2 }).then((rt) => {
              for (let i = 0; i < 50; i++) rt.spawn('later', [5, i]).catch(() => {});
              parentPort.postMessage('running');
            });\`, { eval: true });
          await new Promise((r) => w.once('message', r));
          await w.terminate();
        }
        for (let i = 0; i < 200 && threads() > base; i++) await new Promise((r) => setTimeout(r, 10));
        console.log(JSON.stringify({ base, after: threads() }));
      })();`);
    expect({ status: r.status, signal: r.signal }).toEqual({ status: 0, signal: null });
    const out = JSON.parse(r.stdout.trim());
    expect(out.after).toBe(out.base);
  });

  it('process.exit() while JS tasks run exits with its code, no signal', () => {
    for (let i = 0; i < 3; i++) {
      const r = child(`
        const { Runtime } = require(${dist});
        Runtime.start({ filename: ${JSON.stringify(HOSTILE)}, workers: 2 }).then((rt) => {
          for (let i = 0; i < 200; i++) rt.spawn('later', [1, i]).catch(() => {});
          rt.spawn('add', [1, 2]).then(() => process.exit(5));
        });`);
      expect({ status: r.status, signal: r.signal, stderr: r.stderr }).toEqual({ status: 5, signal: null, stderr: '' });
    }
  });
});
