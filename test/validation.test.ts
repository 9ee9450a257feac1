// Input validation of every entry point (lib/core/validation.ts): typed errors with stable codes,
// nothing started or queued after a refusal, each option read once, bounds on ids and counts,
// hostile option objects, environment variables and CLI arguments. test/property.test.ts
// checks the same contracts over generated inputs.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes, Runtime, allocOnNode, createNativeRuntime, pinToCpus, pinToNumaNode, podIdentity, registerMetrics, serveMetrics, spawn, spawnMany, currentTask, isTaskWorker, topology, type NativeRuntime } from '../lib/index';
import { runTop } from '../lib/cli/top';
import { expectCode, ensureDist, rejectionOf } from './helpers';

const root = path.resolve(__dirname, '..');
const fixture = (name: string) => path.join(root, 'test', 'fixtures', 'tasks', name);
const ESM = fixture('basic.mjs');
const CODES = new Set<string>(Object.values(ErrorCodes));

beforeAll(ensureDist, 120_000);

/** The error a synchronous call throws (undefined when it returns). */
function thrown(fn: () => unknown): (Error & { code?: string }) | undefined {
  try {
    fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  return undefined;
}

/** The error Runtime.start rejects with; a runtime that starts anyway is destroyed and fails the test. */
async function startError(options: unknown): Promise<Error & { code?: string }> {
  let rt: Runtime | undefined;
  try {
    rt = await Runtime.start(options as never);
  } catch (err) {
    return err as Error & { code?: string };
  }
  await rt.destroy();
  throw new Error(`Runtime.start accepted ${String(options)}`);
}

describe('Runtime.start: every option is checked before anything starts', () => {
  it('hogThresholdMs, idleSpinMicros and the other numbers: type, NaN, +-Infinity, negative, huge', async () => {
    const cases: [Record<string, unknown>, ErrorConstructor, string][] = [
      [{ hogThresholdMs: NaN }, RangeError, 'ERR_HWSQ_INVALID_OPTION'],
      [{ hogThresholdMs: 'x' }, TypeError, 'ERR_HWSQ_INVALID_ARG_TYPE'],
      [{ hogThresholdMs: -1 }, RangeError, 'ERR_HWSQ_INVALID_OPTION'],
      [{ hogThresholdMs: Infinity }, RangeError, 'ERR_HWSQ_INVALID_OPTION'],
      [{ hogThresholdMs: 0 }, RangeError, 'ERR_HWSQ_INVALID_OPTION'],
      [{ idleSpinMicros: 1e12 }, RangeError, 'ERR_HWSQ_INVALID_OPTION'],
      [{ idleSpinMicros: 100_001 }, RangeError, 'ERR_HWSQ_INVALID_OPTION'],
      [{ concurrentTasksPerWorker: 2 ** 31 }, RangeError, 'ERR_HWSQ_INVALID_OPTION'],
      [{ tasksPerTurn: -Infinity }, RangeError, 'ERR_HWSQ_INVALID_OPTION'],
      [{ maxQueue: -1 }, RangeError, 'ERR_HWSQ_INVALID_OPTION'],
      [{ maxQueue: 'lots' }, RangeError, 'ERR_HWSQ_INVALID_OPTION'],
      [{ workers: 1e9 }, RangeError, 'ERR_HWSQ_INVALID_WORKERS'],
      [{ workers: 2 ** 32 + 1 }, RangeError, 'ERR_HWSQ_INVALID_WORKERS'],
      [{ placement: [{ node: 2 ** 32 }] }, RangeError, 'ERR_HWSQ_UNKNOWN_NODE'],
      [{ placement: [{ node: 0, cpus: [2 ** 32] }] }, RangeError, 'ERR_HWSQ_CPU_OUT_OF_RANGE'],
      [{ placement: [{ node: 0, extra: 1 }] }, TypeError, 'ERR_HWSQ_UNKNOWN_OPTION'],
      [{ restartWorkers: 'no' }, TypeError, 'ERR_HWSQ_INVALID_ARG_TYPE'],
      [{ execArgv: '--no-warnings' }, TypeError, 'ERR_HWSQ_INVALID_ARG_TYPE'],
      [{ execArgv: [42] }, TypeError, 'ERR_HWSQ_INVALID_ARG_TYPE'],
      [{ env: { A: 1 } }, TypeError, 'ERR_HWSQ_INVALID_ARG_TYPE'],
      [{ env: 'A=1' }, TypeError, 'ERR_HWSQ_INVALID_ARG_TYPE'],
      [{ resourceLimits: { maxOldGenerationSizeMb: -5 } }, RangeError, 'ERR_HWSQ_INVALID_OPTION'],
      [{ resourceLimits: { heap: 5 } }, TypeError, 'ERR_HWSQ_UNKNOWN_OPTION'],
      [{ workerData: { f: () => 1 } }, TypeError, 'ERR_HWSQ_DATA_CLONE'],
      [{ workers: 1, hogTreshold: 5 }, TypeError, 'ERR_HWSQ_UNKNOWN_OPTION'],
    ];
    for (const [options, klass, code] of cases) {
      const err = await startError({ filename: ESM, workers: 1, ...options });
      expect(err, JSON.stringify(options)).toBeInstanceOf(klass);
      expect(err.code, JSON.stringify(options)).toBe(code);
    }
  });

  it('filename: a path or a file: URL; other URLs and types get typed errors', async () => {
    for (const filename of ['http://example.com/tasks.mjs', new URL('https://example.com/t.mjs'), 'data:text/javascript,export const a = 1', 'file://remote-host/tasks.mjs', '']) {
      const err = await startError({ filename });
      expect(err, String(filename)).toBeInstanceOf(RangeError);
      expect(err.code, String(filename)).toBe('ERR_HWSQ_INVALID_OPTION');
    }
    for (const filename of [undefined, 42, null, {}, ['x']]) {
      const err = await startError({ filename });
      expect(err, String(filename)).toBeInstanceOf(TypeError);
      expect(err.code).toBe('ERR_HWSQ_INVALID_ARG_TYPE');
    }
    expect((await startError(undefined)).code).toBe('ERR_HWSQ_INVALID_ARG_TYPE');
    expect((await startError(null)).code).toBe('ERR_HWSQ_INVALID_ARG_TYPE');
  });

  it('an execArgv flag the workers refuse is an ERR_HWSQ_INVALID_OPTION, and no worker is left behind', async () => {
    const threads = fs.readdirSync('/proc/self/task').length;
    const err = await startError({ filename: ESM, workers: 1, execArgv: ['--not-a-node-flag'] });
    expect(err).toBeInstanceOf(RangeError);
    expect(err.code).toBe('ERR_HWSQ_INVALID_OPTION');
    expect(fs.readdirSync('/proc/self/task').length).toBe(threads);
  });
});

describe('Runtime spawn / spawnMany: refused with nothing queued', () => {
  let rt: Runtime;
  let hostile: Runtime;
  beforeAll(async () => {
    rt = await Runtime.start({ filename: ESM, workers: 2 });
    hostile = await Runtime.start({ filename: fixture('hostile-spawn.mjs'), workers: 2 });
  }, 60_000);
  afterAll(async () => {
    await rt?.destroy();
    await hostile?.destroy();
  });

  /** Spawns, the queue and the pending promises: all must stay as they were. */
  const counts = (r: Runtime) => ({ submitted: r.stats().externalSubmitted, pending: r.pending, queued: r.queueSize, live: r.stats().tasks.live });

  it('signal: {} rejects with a typed error (it threw after queuing the task, and the task ran)', async () => {
    const before = counts(rt);
    let p: Promise<unknown> | undefined;
    expect(() => (p = rt.spawn('add', [1, 2], { signal: {} as AbortSignal }))).not.toThrow();
    const err = await rejectionOf(p!);
    expect(err).toBeInstanceOf(TypeError);
    expect(err.code).toBe('ERR_HWSQ_INVALID_ARG_TYPE');
    expect(counts(rt)).toEqual(before);
    // A look-alike of an AbortSignal is refused too (its `aborted` getter checks the receiver).
    const fake = Object.create(AbortSignal.prototype) as AbortSignal;
    expect((await rejectionOf(rt.spawn('add', [1, 2], { signal: fake }))).code).toBe('ERR_HWSQ_INVALID_ARG_TYPE');
    expect(counts(rt)).toEqual(before);
  });

  it('transfer: entries that are not ArrayBuffers, duplicates and detached buffers', async () => {
    const before = counts(rt);
    const ab = new ArrayBuffer(16);
    const detached = new ArrayBuffer(8);
    structuredClone(detached, { transfer: [detached] });
    const cases: [unknown, ErrorConstructor, string][] = [
      [[1], TypeError, 'ERR_HWSQ_INVALID_ARG_TYPE'],
      [[new Uint8Array(4)], TypeError, 'ERR_HWSQ_INVALID_ARG_TYPE'],
      [[new SharedArrayBuffer(8)], TypeError, 'ERR_HWSQ_INVALID_ARG_TYPE'],
      [[ab, ab], RangeError, 'ERR_HWSQ_INVALID_ARG'],
      [[detached], RangeError, 'ERR_HWSQ_INVALID_ARG'],
      ['not a list', TypeError, 'ERR_HWSQ_INVALID_ARG_TYPE'],
    ];
    for (const [transfer, klass, code] of cases) {
      const err = await rejectionOf(rt.spawn('bytes', [new Uint8Array(ab)], { transfer: transfer as ArrayBuffer[] }));
      expect(err, String(transfer)).toBeInstanceOf(klass);
      expect(err.code, String(transfer)).toBe(code);
    }
    expect(ab.byteLength).toBe(16); // not detached by a refused spawn
    expect(counts(rt)).toEqual(before);
  });

  it('node ids are checked in range before they reach the addon (2**32 was read as node 0)', async () => {
    const before = counts(rt);
    for (const node of [2 ** 32, 2 ** 32 + 1, -1, 0.5, NaN, Infinity]) {
      const err = await rejectionOf(rt.spawn('add', [1, 2], { node }));
      expect(err, String(node)).toBeInstanceOf(RangeError);
      expect(CODES.has(err.code!)).toBe(true);
    }
    expect((await rejectionOf(rt.spawn('add', [1, 2], { node: '0' as unknown as number }))).code).toBe('ERR_HWSQ_INVALID_ARG_TYPE');
    expect(await rt.spawn('add', [1, 2], { node: -0 })).toBe(3);
    expect(counts(rt).submitted).toBe(before.submitted + 1);
  });

  it('option objects: unknown names, null, getters that throw, revoked Proxies; each option read once', async () => {
    const before = counts(rt);
    const revocable = Proxy.revocable({}, {});
    revocable.revoke();
    const cases: [unknown, ErrorConstructor, string][] = [
      [{ nodes: 0 }, TypeError, 'ERR_HWSQ_UNKNOWN_OPTION'],
      [null, TypeError, 'ERR_HWSQ_INVALID_ARG_TYPE'],
      [[], TypeError, 'ERR_HWSQ_INVALID_ARG_TYPE'],
      [{ get node() { throw new Error('boom'); } }, TypeError, 'ERR_HWSQ_INVALID_ARG_TYPE'],
      [revocable.proxy, TypeError, 'ERR_HWSQ_INVALID_ARG_TYPE'],
      [new Proxy({}, { ownKeys: () => { throw new Error('trap'); } }), TypeError, 'ERR_HWSQ_INVALID_ARG_TYPE'],
      [{ abort: 'kill' }, RangeError, 'ERR_HWSQ_INVALID_OPTION'],
    ];
    for (const [options, klass, code] of cases) {
      const err = await rejectionOf(rt.spawn('add', [1, 2], options as never));
      expect(err, code).toBeInstanceOf(klass);
      expect(err.code).toBe(code);
    }
    expect((await rejectionOf(rt.spawn('add', 5 as never))).code).toBe('ERR_HWSQ_INVALID_ARG_TYPE');
    expect(counts(rt)).toEqual(before);
    // A getter that answers a valid node once, then garbage: the value checked is the value used.
    let reads = 0;
    const tricky = { get node() { return reads++ === 0 ? rt.workers[0]!.node : 2 ** 32; } };
    expect(await rt.spawn('add', [2, 3], tricky)).toBe(5);
    expect(reads).toBe(1);
    expect(await rt.spawn('add', [2, 3], Object.freeze({ node: rt.workers[0]!.node }))).toBe(5);
  });

  it('spawnMany: a bad list entry queues none of the lists before it; never throws', async () => {
    const before = counts(rt);
    const out = rt.spawnMany('add', [[1, 2], [3, 4], 5 as never, [6, 7]]);
    expect(out).toHaveLength(4);
    for (const p of out) expect((await rejectionOf(p)).code).toBe('ERR_HWSQ_INVALID_ARG_TYPE');
    for (const bad of [7, null, 'abc', { length: 2 }]) {
      let ps: Promise<unknown>[] = [];
      expect(() => (ps = rt.spawnMany('add', bad as never))).not.toThrow();
      expect(ps).toHaveLength(1);
      expect((await rejectionOf(ps[0]!)).code).toBe('ERR_HWSQ_INVALID_ARG_TYPE');
    }
    expect((await rejectionOf(rt.spawnMany('add', [[1, 2]], { node: 2 ** 32 })[0]!)).code).toBe('ERR_HWSQ_UNKNOWN_NODE');
    // A list the codec cannot clone: rejections (it threw), none of the lists queued.
    let unclonable: Promise<unknown>[] = [];
    expect(() => (unclonable = rt.spawnMany('add', [[1, 2], [Symbol('x')], [3, 4]]))).not.toThrow();
    expect(unclonable).toHaveLength(3);
    for (const p of unclonable) expect((await rejectionOf(p)).code).toBe('ERR_HWSQ_DATA_CLONE');
    expect((await rejectionOf(rt.spawnMany('add', [[1, 2]], { nodes: 1 } as never)[0]!)).code).toBe('ERR_HWSQ_UNKNOWN_OPTION');
    expect(counts(rt)).toEqual(before);
  });

  it('inside a task: the same checks before a nested task is queued (node 2**32 ran on node 0)', async () => {
    const expected: Record<string, { value?: unknown; name?: string; code?: string }> = {
      'node 2**32': { name: 'RangeError', code: 'ERR_HWSQ_UNKNOWN_NODE' },
      'node 2**32+1': { name: 'RangeError', code: 'ERR_HWSQ_UNKNOWN_NODE' },
      'node -0': { value: 3 },
      'signal {}': { name: 'TypeError', code: 'ERR_HWSQ_INVALID_ARG_TYPE' },
      'transfer [1]': { name: 'TypeError', code: 'ERR_HWSQ_INVALID_ARG_TYPE' },
      'options null': { name: 'TypeError', code: 'ERR_HWSQ_INVALID_ARG_TYPE' },
      'unknown option': { name: 'TypeError', code: 'ERR_HWSQ_UNKNOWN_OPTION' },
      'args not an array': { name: 'TypeError', code: 'ERR_HWSQ_INVALID_ARG_TYPE' },
      'throwing getter': { name: 'TypeError', code: 'ERR_HWSQ_INVALID_ARG_TYPE' },
      'spawnMany bad list': { name: 'TypeError', code: 'ERR_HWSQ_INVALID_ARG_TYPE' },
      'spawnMany not a list': { name: 'TypeError', code: 'ERR_HWSQ_INVALID_ARG_TYPE' },
      'spawnMany node 2**32': { name: 'RangeError', code: 'ERR_HWSQ_UNKNOWN_NODE' },
      'spawnMany unclonable': { name: 'TypeError', code: 'ERR_HWSQ_DATA_CLONE' },
    };
    expect((await hostile.spawn<string[]>('caseNames')).sort()).toEqual(Object.keys(expected).sort());
    for (const [name, want] of Object.entries(expected)) {
      const before = hostile.stats().spawned;
      const got = await hostile.spawn<Record<string, unknown>>('nested', [name]);
      if ('value' in want) {
        expect(got, name).toEqual({ value: want.value });
      } else {
        expect(got, name).toEqual({ rejected: true, name: want.name, code: want.code });
        // Nothing was queued from inside the task.
        expect(hostile.stats().spawned, name).toBe(before);
      }
    }
  });

  it('spawnMany outside a task: one rejection, no throw, for a non-array', async () => {
    let ps: Promise<unknown>[] = [];
    expect(() => (ps = spawnMany('add', 5 as never))).not.toThrow();
    expect(ps).toHaveLength(1);
    expect((await rejectionOf(ps[0]!)).code).toBe('ERR_HWSQ_NOT_IN_TASK');
  });

  it('the task API outside a task: spawn rejects, spawnMany one rejection per list, no task context', async () => {
    expect(isTaskWorker()).toBe(false);
    expect(currentTask()).toBeUndefined();
    const err = await rejectionOf(spawn('add', [1, 2]));
    expect(err.code).toBe('ERR_HWSQ_NOT_IN_TASK');
    expect(err.message).toMatch(/^spawn\(\) is for code running inside an hwsq task/);
    const ps = spawnMany('add', [[1], [2], [3]]);
    expect(ps).toHaveLength(3);
    for (const p of ps) expect((await rejectionOf(p)).code).toBe('ERR_HWSQ_NOT_IN_TASK');
    expect((await rejectionOf(ps[0]!)).message).toMatch(/^spawnMany\(\)/);
  });
});

describe('NativeRuntime: ids and counts in range before they cross to native code', () => {
  let rt: NativeRuntime;
  beforeAll(() => {
    rt = createNativeRuntime({ virtualTopology: { nodes: 2, workersPerNode: 1 } });
  });
  afterAll(() => rt?.destroy());

  it('worker 2**32+1 ran on worker 1 and node 2**32 was accepted: now UNKNOWN_WORKER / UNKNOWN_NODE, nothing spawned', async () => {
    await rt.idle();
    const before = rt.stats().externalSubmitted;
    const cases: [Record<string, unknown>, ErrorConstructor, string][] = [
      [{ worker: 2 ** 32 + 1 }, RangeError, 'ERR_HWSQ_UNKNOWN_WORKER'],
      [{ worker: 2 }, RangeError, 'ERR_HWSQ_UNKNOWN_WORKER'],
      [{ worker: -1 }, RangeError, 'ERR_HWSQ_INVALID_ARG'],
      [{ node: 2 ** 32 }, RangeError, 'ERR_HWSQ_UNKNOWN_NODE'],
      [{ node: 7 }, RangeError, 'ERR_HWSQ_UNKNOWN_NODE'],
      [{ count: 2 ** 31 }, RangeError, 'ERR_HWSQ_INVALID_COUNT'],
      [{ count: 0 }, RangeError, 'ERR_HWSQ_INVALID_COUNT'],
      [{ inside: 1 }, TypeError, 'ERR_HWSQ_INVALID_ARG_TYPE'],
      [{ nodes: 1 }, TypeError, 'ERR_HWSQ_UNKNOWN_OPTION'],
    ];
    for (const [options, klass, code] of cases) {
      const err = await rejectionOf(rt.spawnNative('noop', {}, options));
      expect(err, JSON.stringify(options)).toBeInstanceOf(klass);
      expect(err.code, JSON.stringify(options)).toBe(code);
    }
    const params: [string, Record<string, unknown>, string][] = [
      ['spin', { ns: 1e12 }, 'ERR_HWSQ_INVALID_ARG'],
      ['spin', { ns: NaN }, 'ERR_HWSQ_INVALID_ARG'],
      ['noop', { ns: 5 }, 'ERR_HWSQ_INVALID_ARG'],
      ['chase', { buffer: new ArrayBuffer(4096), steps: 2 ** 53 }, 'ERR_HWSQ_INVALID_ARG'],
      ['touch', { buffer: new Proxy(new Uint8Array(4096), {}) }, 'ERR_HWSQ_INVALID_ARG_TYPE'],
      ['walk', {}, 'ERR_HWSQ_UNKNOWN_TASK_KIND'],
    ];
    for (const [kind, p, code] of params) expect((await rejectionOf(rt.spawnNative(kind as 'noop', p))).code, kind).toBe(code);
    await rt.idle();
    expect(rt.stats().externalSubmitted).toBe(before);
  });

  it('createNativeRuntime: unknown option names, throwing getters, hogThresholdMs bounds', () => {
    expectCode(() => createNativeRuntime({ worker: 2 } as never), TypeError, 'ERR_HWSQ_UNKNOWN_OPTION');
    expectCode(() => createNativeRuntime({ virtualTopology: { nodes: 1, workersPerNode: 1, extra: 1 } } as never), TypeError, 'ERR_HWSQ_UNKNOWN_OPTION');
    expectCode(() => createNativeRuntime({ get workers(): number { throw new Error('boom'); } }), TypeError, 'ERR_HWSQ_INVALID_ARG_TYPE');
    expectCode(() => createNativeRuntime({ hogThresholdMs: 1e300 }), RangeError, 'ERR_HWSQ_INVALID_OPTION');
    expectCode(() => createNativeRuntime({ placement: [{ node: 2 ** 32 }] }), RangeError, 'ERR_HWSQ_UNKNOWN_NODE');
    expectCode(() => createNativeRuntime({ virtualTopology: { nodes: 2 ** 32, workersPerNode: 1 } }), RangeError, 'ERR_HWSQ_INVALID_WORKERS');
  });
});

describe('NUMA functions and environment variables', () => {
  it('option objects of pinning and allocation functions are checked (null read a property of null)', () => {
    expectCode(() => pinToNumaNode(0, null as never), TypeError, 'ERR_HWSQ_INVALID_ARG_TYPE');
    expectCode(() => pinToNumaNode(0, { scpoe: 'thread' } as never), TypeError, 'ERR_HWSQ_UNKNOWN_OPTION');
    expectCode(() => pinToNumaNode(2 ** 32), RangeError, 'ERR_HWSQ_UNKNOWN_NODE');
    expectCode(() => pinToCpus([0], 5 as never), TypeError, 'ERR_HWSQ_INVALID_ARG_TYPE');
    expectCode(() => pinToCpus([2 ** 32]), RangeError, 'ERR_HWSQ_CPU_OUT_OF_RANGE');
    expectCode(() => allocOnNode(4096, 0, null as never), TypeError, 'ERR_HWSQ_INVALID_ARG_TYPE');
    expectCode(() => allocOnNode(4096, [0, 0]), RangeError, 'ERR_HWSQ_INVALID_ARG');
    expectCode(() => allocOnNode(4096, 2 ** 32), RangeError, 'ERR_HWSQ_UNKNOWN_NODE');
    const mem = topology().nodes.find((n) => n.hasMemory)!;
    expectCode(() => allocOnNode(mem.memoryBytes + 4096, mem.id), RangeError, 'ERR_HWSQ_BAD_SIZE');
  });

  it('topology({ fsroot }) and HWSQ_FSROOT: a directory, else a typed error', () => {
    expectCode(() => topology({ fsroot: 5 as never }), TypeError, 'ERR_HWSQ_INVALID_ARG_TYPE');
    expectCode(() => topology(null as never), TypeError, 'ERR_HWSQ_INVALID_ARG_TYPE');
    expectCode(() => topology({ fsroot: '/nonexistent/hwsq' }), RangeError, 'ERR_HWSQ_INVALID_OPTION');
    expectCode(() => topology({ fsroot: path.join(root, 'package.json') }), RangeError, 'ERR_HWSQ_INVALID_OPTION');
    expectCode(() => topology({ fsroot: 'a\0b' }), RangeError, 'ERR_HWSQ_INVALID_OPTION');
    const saved = process.env.HWSQ_FSROOT;
    try {
      process.env.HWSQ_FSROOT = '/nonexistent/hwsq';
      expectCode(() => topology(), RangeError, 'ERR_HWSQ_INVALID_ENV');
      // An explicit fsroot wins over the variable.
      expect(topology({ fsroot: '' }).nodes.length).toBeGreaterThan(0);
    } finally {
      if (saved === undefined) delete process.env.HWSQ_FSROOT;
      else process.env.HWSQ_FSROOT = saved;
    }
  });

  it('pod identity variables: no control characters (they reach terminals through hwsq top), bounded length', () => {
    expect(podIdentity({ POD_NAME: 'api-1', POD_NAMESPACE: 'prod' })).toMatchObject({ pod_id: 'api-1', namespace: 'prod' });
    expectCode(() => podIdentity({ POD_NAME: 'x\x1b[2Jy' }), RangeError, 'ERR_HWSQ_INVALID_ENV');
    expectCode(() => podIdentity({ POD_NAMESPACE: 'n'.repeat(5000) }), RangeError, 'ERR_HWSQ_INVALID_ENV');
  });
});

describe('metrics: options', () => {
  let rt: NativeRuntime;
  beforeAll(() => {
    rt = createNativeRuntime({ virtualTopology: { nodes: 1, workersPerNode: 1 } });
  });
  afterAll(() => rt?.destroy());

  it('registerMetrics and serveMetrics: unknown names, hostile objects, bounds; nothing registered or listening after a refusal', async () => {
    const { Registry } = await import('prom-client');
    const registry = new Registry();
    expectCode(() => registerMetrics(rt, { registry, prefx: 'a_' } as never), TypeError, 'ERR_HWSQ_UNKNOWN_OPTION');
    expectCode(() => registerMetrics(rt, { registry: {} as never }), TypeError, 'ERR_HWSQ_INVALID_ARG_TYPE');
    expectCode(() => registerMetrics(rt, { registry, labels: { app: 5 as never } }), TypeError, 'ERR_HWSQ_INVALID_ARG_TYPE');
    expectCode(() => registerMetrics(rt, { registry, latencyBuckets: [NaN] }), RangeError, 'ERR_HWSQ_INVALID_OPTION');
    expectCode(() => registerMetrics(rt, { registry, latencyBuckets: ['1' as never] }), TypeError, 'ERR_HWSQ_INVALID_ARG_TYPE');
    expectCode(() => registerMetrics(null as never), TypeError, 'ERR_HWSQ_INVALID_ARG_TYPE');
    expect(registry.getMetricsAsArray()).toHaveLength(0);
    const bad: [unknown, string][] = [
      [{ port: -1 }, 'ERR_HWSQ_INVALID_OPTION'],
      [{ port: 1.5 }, 'ERR_HWSQ_INVALID_OPTION'],
      [{ port: '80' }, 'ERR_HWSQ_INVALID_ARG_TYPE'],
      [{ host: '' }, 'ERR_HWSQ_INVALID_OPTION'],
      [{ maxConnections: 0 }, 'ERR_HWSQ_INVALID_OPTION'],
      [{ maxConnections: Infinity }, 'ERR_HWSQ_INVALID_OPTION'],
      [{ idleTimeoutMs: 1e12 }, 'ERR_HWSQ_INVALID_OPTION'],
      [{ registry, timeout: 5 }, 'ERR_HWSQ_UNKNOWN_OPTION'],
      [null, 'ERR_HWSQ_INVALID_ARG_TYPE'],
    ];
    for (const [options, code] of bad) {
      const err = await rejectionOf(serveMetrics(rt, options as never));
      expect(err.code, JSON.stringify(options)).toBe(code);
    }
    expect(registry.getMetricsAsArray()).toHaveLength(0);
  });

  it('runTop: url, interval and count are checked (a huge interval became 1 ms in setTimeout)', () => {
    expectCode(() => runTop({ url: 'http://127.0.0.1:1', intervalMs: 1e15 }), RangeError, 'ERR_HWSQ_INVALID_OPTION');
    expectCode(() => runTop({ url: 'file:///etc/passwd' }), RangeError, 'ERR_HWSQ_INVALID_OPTION');
    expectCode(() => runTop({ url: 'not a url' }), RangeError, 'ERR_HWSQ_INVALID_OPTION');
    expectCode(() => runTop({ url: 'http://127.0.0.1:1', count: 0 }), RangeError, 'ERR_HWSQ_INVALID_OPTION');
  });
});

describe('CLI: hostile arguments get a message and exit code 1, never a stack trace or a hang', () => {
  const hwsq = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    spawnSync(process.execPath, [path.join(root, 'bin', 'hwsq.js'), ...args], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, ...env } });

  it.each([
    [['bench', 'spawn', '--tasks', '-1']],
    [['bench', 'spawn', '--tasks', '1e99']],
    [['bench', 'spawn', '--workers', 'NaN']],
    [['bench', 'spawn', '--reps', '99999999']],
    [['bench', 'spawn', '--frobnicate']],
    [['bench', 'memory', '--duration', '99999999999s']],
    [['bench', 'memory', '--size', '99999T']],
    [['bench', 'memory', '--quick', '--size', '900G']], // beyond half a node's free memory: refused before allocating
    [['bench', 'compare', '--quick', '--buffer', '900G']],
    [['bench', 'latency', '--bursts', '1,,2']],
    [['bench', 'latency', '--round-trips', '0x10']],
    [['bench', 'compare', '--tasks', '']],
    [['metrics', 'serve', '--port', '99999']],
    [['metrics', 'serve', '--virtual', '100000x1']],
    [['top', '--url', 'file:///etc/passwd']],
    [['top', '--url', 'http://127.0.0.1:1', '--interval', '1e15']],
    [['top', '--url', 'http://127.0.0.1:1', '--count', '-3']],
    [['topology', '--fsroot', '/nonexistent/hwsq']],
  ])('hwsq %j', (args) => {
    const r = hwsq(args);
    expect(r.error).toBeUndefined();
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr.trim().length).toBeGreaterThan(0);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('environment variables: HWSQ_FSROOT that is not a directory, HWSQ_BENCH_DIR likewise', () => {
    const fsroot = hwsq(['topology'], { HWSQ_FSROOT: '/nonexistent/hwsq' });
    expect(fsroot.status).toBe(1);
    expect(fsroot.stderr).toMatch(/HWSQ_FSROOT.*\(ERR_HWSQ_INVALID_ENV\)/);
    const file = path.join(os.tmpdir(), `hwsq-not-a-dir-${process.pid}`);
    fs.writeFileSync(file, '');
    try {
      const bench = hwsq(['bench', 'spawn', '--quick', '--tasks', '1000', '--reps', '1', '--no-go', '--json'], { HWSQ_BENCH_DIR: file });
      expect(bench.status).toBe(1);
      expect(bench.stderr).toMatch(/HWSQ_BENCH_DIR.*\(ERR_HWSQ_INVALID_ENV\)/);
    } finally {
      fs.rmSync(file, { force: true });
    }
  });
});
