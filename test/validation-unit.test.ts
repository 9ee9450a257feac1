// lib/core/validation.ts called directly, in this process: each checker's exact bounds (the last
// value accepted and the first refused on each side), the class and code of each refusal, what
// the message names, and what an accepted value becomes. validation.test.ts drives the same
// checks through the public API; this file pins each rule down where it is written.
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../lib/core/errors';
import * as v from '../lib/core/validation';

const { INVALID_ARG_TYPE, INVALID_OPTION } = ErrorCodes;

/** What `fn` threw: class, code and message; or the value it returned. */
function outcome(fn: () => unknown): { ok: true; value: unknown } | { ok: false; cls: string; code: unknown; message: string } {
  try {
    return { ok: true, value: fn() };
  } catch (err) {
    const e = err as Error & { code?: unknown };
    return { ok: false, cls: e.constructor.name, code: e.code, message: e.message };
  }
}
const ok = (value: unknown) => ({ ok: true, value });
function refused(fn: () => unknown, cls: 'TypeError' | 'RangeError', code: string, message?: string | RegExp): void {
  const r = outcome(fn);
  expect(r.ok, JSON.stringify(r)).toBe(false);
  if (r.ok) return;
  expect([r.cls, r.code]).toEqual([cls, code]);
  if (typeof message === 'string') expect(r.message).toBe(message);
  else if (message) expect(r.message).toMatch(message);
}

describe('validation primitives: exact bounds, class, code and message', () => {
  it('integer: [min, max] inclusive, integers only, -0 reads as 0, a non-number is a TypeError', () => {
    expect(outcome(() => v.integer(1, 'n', 1, 3))).toEqual(ok(1));
    expect(outcome(() => v.integer(3, 'n', 1, 3))).toEqual(ok(3));
    expect(Object.is(v.integer(-0, 'n', -1, 1), 0)).toBe(true);
    refused(() => v.integer(0, 'n', 1, 3), 'RangeError', INVALID_OPTION, 'n must be an integer in [1, 3], got 0');
    refused(() => v.integer(4, 'n', 1, 3), 'RangeError', INVALID_OPTION, 'n must be an integer in [1, 3], got 4');
    refused(() => v.integer(1.5, 'n', 1, 3), 'RangeError', INVALID_OPTION);
    refused(() => v.integer(NaN, 'n', 1, 3), 'RangeError', INVALID_OPTION);
    refused(() => v.integer(Infinity, 'n', 1, Infinity), 'RangeError', INVALID_OPTION);
    refused(() => v.integer(4, 'n', 1, 3, ErrorCodes.INVALID_WORKERS), 'RangeError', ErrorCodes.INVALID_WORKERS);
    refused(() => v.integer('2', 'n', 1, 3), 'TypeError', INVALID_ARG_TYPE, 'n must be a number, got "2"');
    refused(() => v.integer(2n, 'n', 1, 3), 'TypeError', INVALID_ARG_TYPE);
  });

  it('finite: [min, max] inclusive, fractions allowed, NaN and infinities refused', () => {
    expect(outcome(() => v.finite(0.001, 'f', 0.001, 2))).toEqual(ok(0.001));
    expect(outcome(() => v.finite(2, 'f', 0.001, 2))).toEqual(ok(2));
    expect(outcome(() => v.finite(1.5, 'f', 0.001, 2))).toEqual(ok(1.5));
    expect(Object.is(v.finite(-0, 'f', -1, 1), 0)).toBe(true);
    refused(() => v.finite(0.0009, 'f', 0.001, 2), 'RangeError', INVALID_OPTION, 'f must be a number in [0.001, 2], got 0.0009');
    refused(() => v.finite(2.0001, 'f', 0.001, 2), 'RangeError', INVALID_OPTION);
    refused(() => v.finite(NaN, 'f', 0, 2), 'RangeError', INVALID_OPTION);
    // Finite even where a bound is not.
    refused(() => v.finite(-Infinity, 'f', -Infinity, 2), 'RangeError', INVALID_OPTION, /got -Infinity$/);
    refused(() => v.finite(Infinity, 'f', 0, Infinity), 'RangeError', INVALID_OPTION);
    refused(() => v.finite(null, 'f', 0, 2), 'TypeError', INVALID_ARG_TYPE, 'f must be a number, got null');
  });

  it('boolean, choice and string', () => {
    expect([v.boolean(true, 'b'), v.boolean(false, 'b')]).toEqual([true, false]);
    refused(() => v.boolean(1, 'b'), 'TypeError', INVALID_ARG_TYPE, 'b must be a boolean, got 1');
    refused(() => v.boolean('true', 'b'), 'TypeError', INVALID_ARG_TYPE);
    expect(v.choice('b', 'c', ['a', 'b'])).toBe('b');
    refused(() => v.choice('x', 'c', ['a', 'b']), 'RangeError', INVALID_OPTION, `c must be one of 'a', 'b', got "x"`);
    refused(() => v.choice('x', 'c', ['a'], ErrorCodes.UNKNOWN_POLICY), 'RangeError', ErrorCodes.UNKNOWN_POLICY);
    refused(() => v.choice(1, 'c', ['a', 'b']), 'TypeError', INVALID_ARG_TYPE, "c must be one of 'a', 'b', got 1");
    expect(v.string('abc', 's', 3)).toBe('abc');
    expect(v.string('', 's', 3, true)).toBe('');
    refused(() => v.string('abcd', 's', 3), 'RangeError', INVALID_OPTION, 's must be a string of 1 to 3 characters, got 4');
    refused(() => v.string('', 's', 3), 'RangeError', INVALID_OPTION, 's must be a string of 1 to 3 characters, got 0');
    refused(() => v.string('abcd', 's', 3, true), 'RangeError', INVALID_OPTION, 's must be a string of 0 to 3 characters, got 4');
    expect(v.string('x'.repeat(v.LIMITS.nameLength), 's')).toHaveLength(v.LIMITS.nameLength);
    refused(() => v.string('x'.repeat(v.LIMITS.nameLength + 1), 's'), 'RangeError', INVALID_OPTION);
    refused(() => v.string(5, 's'), 'TypeError', INVALID_ARG_TYPE, 's must be a string, got 5');
  });

  it('list: a copy of [min, max] entries, each read once; getters that throw become typed errors', () => {
    const src = [1, 2];
    const copy = v.list(src, 'l', 1, 2);
    expect(copy).toEqual([1, 2]);
    expect(copy).not.toBe(src);
    refused(() => v.list([], 'l', 1, 2), 'RangeError', INVALID_OPTION, 'l must have 1 to 2 entries, got 0');
    refused(() => v.list([1, 2, 3], 'l', 1, 2), 'RangeError', INVALID_OPTION, 'l must have 1 to 2 entries, got 3');
    refused(() => v.list([1, 2, 3], 'l', 1, 2, ErrorCodes.INVALID_WORKERS), 'RangeError', ErrorCodes.INVALID_WORKERS);
    refused(() => v.list({ length: 1, 0: 1 }, 'l', 0, 2), 'TypeError', INVALID_ARG_TYPE, 'l must be an array, got an object');
    let reads = 0;
    const counted = [0];
    Object.defineProperty(counted, 0, { get: () => ++reads, enumerable: true });
    expect(v.list(counted, 'l', 0, 2)).toEqual([1]);
    expect(reads).toBe(1);
    const throwing: unknown[] = [];
    Object.defineProperty(throwing, 0, { get: () => { throw new Error('boom'); } });
    refused(() => v.list(throwing, 'l', 0, 2), 'TypeError', INVALID_ARG_TYPE, 'l[0] could not be read: boom');
    const revoked = Proxy.revocable([], {});
    revoked.revoke();
    refused(() => v.list(revoked.proxy, 'l', 0, 2), 'TypeError', INVALID_ARG_TYPE, /^l could not be read: /);
  });

  it('readOptions: undefined is {}, non-objects are TypeErrors, unknown names are listed (five at most), each known one read once', () => {
    expect(v.readOptions(undefined, 'o', ['a'])).toEqual({});
    for (const bad of [null, [], 5, 'x', () => {}]) refused(() => v.readOptions(bad, 'o', ['a']), 'TypeError', INVALID_ARG_TYPE, /^o must be an object, got /);
    refused(() => v.readOptions({ b: 1 }, 'o', ['a']), 'TypeError', ErrorCodes.UNKNOWN_OPTION, 'o: unknown option "b" (known: a)');
    refused(() => v.readOptions({ b: 1, c: 2, d: 3, e: 4, f: 5, g: 6 }, 'o', ['a', 'z']), 'TypeError', ErrorCodes.UNKNOWN_OPTION, 'o: unknown options "b", "c", "d", "e", "f" (known: a, z)');
    let reads = 0;
    const opts = { get a() { reads++; return 1; }, z: undefined };
    const out = v.readOptions(opts, 'o', ['a', 'z']);
    expect(out).toEqual({ a: 1 });
    expect(Object.keys(out)).toEqual(['a']);  // an undefined option is left out
    expect(reads).toBe(1);
    refused(() => v.readOptions({ get a() { throw new Error('getter'); } }, 'o', ['a']), 'TypeError', INVALID_ARG_TYPE, 'o.a could not be read: getter');
    refused(() => v.readOptions(new Proxy({}, { ownKeys: () => { throw 'keys'; } }), 'o', ['a']), 'TypeError', INVALID_ARG_TYPE, /^o could not be read: /);
    // A non-enumerable or inherited name is not an unknown option (and not read).
    expect(v.readOptions(Object.create({ b: 1 }), 'o', ['a'])).toEqual({});
  });

  it('guard: what a read throws becomes a TypeError naming it, with the original as cause', () => {
    const cause = new RangeError('inner');
    const r = outcome(() => v.guard('x.y', () => { throw cause; }));
    expect(r).toMatchObject({ ok: false, cls: 'TypeError', code: INVALID_ARG_TYPE, message: 'x.y could not be read: inner' });
    try {
      v.guard('x', () => { throw cause; });
    } catch (err) {
      expect((err as { cause?: unknown }).cause).toBe(cause);
    }
    expect(v.guard('x', () => 7)).toBe(7);
    // A thrown non-Error is shown; one that cannot be shown is 'an exception'.
    expect(outcome(() => v.guard('x', () => { throw 'text'; }))).toMatchObject({ message: 'x could not be read: "text"' });
    const unshowable = new Proxy({}, { get: () => { throw new Error('trap'); }, getPrototypeOf: () => { throw new Error('trap'); } });
    expect(outcome(() => v.guard('x', () => { throw unshowable; }))).toMatchObject({ ok: false, cls: 'TypeError', code: INVALID_ARG_TYPE, message: 'x could not be read: an exception' });
  });
});

describe('validation ids', () => {
  it('nodeId: 0..LIMITS.nodeId; above, ERR_HWSQ_UNKNOWN_NODE; negatives, fractions and 2^32 are ERR_HWSQ_INVALID_ARG', () => {
    expect([v.nodeId(0), v.nodeId(v.LIMITS.nodeId)]).toEqual([0, v.LIMITS.nodeId]);
    expect(Object.is(v.nodeId(-0), 0)).toBe(true);
    refused(() => v.nodeId(v.LIMITS.nodeId + 1), 'RangeError', ErrorCodes.UNKNOWN_NODE, `node: no NUMA node ${v.LIMITS.nodeId + 1} (node ids are at most ${v.LIMITS.nodeId})`);
    refused(() => v.nodeId(2 ** 32), 'RangeError', ErrorCodes.UNKNOWN_NODE);
    refused(() => v.nodeId(2 ** 53), 'RangeError', ErrorCodes.INVALID_ARG, 'node must be a non-negative integer, got 9007199254740992');
    refused(() => v.nodeId(-1, 'where'), 'RangeError', ErrorCodes.INVALID_ARG, /^where/);
    refused(() => v.nodeId(0.5), 'RangeError', ErrorCodes.INVALID_ARG);
    refused(() => v.nodeId('0'), 'TypeError', INVALID_ARG_TYPE);
  });

  it('cpuId and cpuList: 0..LIMITS.cpuId, ERR_HWSQ_CPU_OUT_OF_RANGE above; an empty list is ERR_HWSQ_EMPTY_CPUS unless allowed', () => {
    expect([v.cpuId(0), v.cpuId(v.LIMITS.cpuId)]).toEqual([0, v.LIMITS.cpuId]);
    expect(Object.is(v.cpuId(-0), 0)).toBe(true);
    expect(v.cpuList(Array.from({ length: v.LIMITS.cpuId + 1 }, (_, i) => i))).toHaveLength(v.LIMITS.cpuId + 1);
    refused(() => v.cpuId(v.LIMITS.cpuId + 1), 'RangeError', ErrorCodes.CPU_OUT_OF_RANGE, `cpu: no CPU ${v.LIMITS.cpuId + 1} (CPU ids are at most ${v.LIMITS.cpuId})`);
    expect(v.cpuList([3, 0])).toEqual([3, 0]);
    expect(v.cpuList([], 'cpus', true)).toEqual([]);
    refused(() => v.cpuList([]), 'RangeError', ErrorCodes.EMPTY_CPUS, 'cpus must not be empty');
    refused(() => v.cpuList([0, -1]), 'RangeError', ErrorCodes.INVALID_ARG, /^cpus\[1\]/);
    refused(() => v.cpuList([0, v.LIMITS.cpuId + 1], 'set'), 'RangeError', ErrorCodes.CPU_OUT_OF_RANGE, /^set\[1\]: no CPU/);
    refused(() => v.cpuList('0-3'), 'TypeError', INVALID_ARG_TYPE, 'cpus must be an array of CPU ids, got "0-3"');
    refused(() => v.cpuList(new Array(v.LIMITS.cpuId + 2).fill(0)), 'RangeError', INVALID_OPTION);
  });

  it('workerIndex and runtimeNode: within the runtime only', () => {
    expect([v.workerIndex(0, 2), v.workerIndex(1, 2)]).toEqual([0, 1]);
    expect(Object.is(v.workerIndex(-0, 2), 0)).toBe(true);
    refused(() => v.workerIndex(2, 2), 'RangeError', ErrorCodes.UNKNOWN_WORKER, 'worker: no worker 2 (this runtime has 2)');
    refused(() => v.workerIndex(2 ** 32 + 1, 2), 'RangeError', ErrorCodes.UNKNOWN_WORKER);
    refused(() => v.workerIndex(-1, 2), 'RangeError', ErrorCodes.INVALID_ARG);
    expect(v.runtimeNode(3, [1, 3])).toBe(3);
    expect(v.runtimeNode(1, new Set([1]))).toBe(1);
    refused(() => v.runtimeNode(2, [1, 3]), 'RangeError', ErrorCodes.UNKNOWN_NODE, 'no worker of this runtime is on node 2 (nodes: 1, 3)');
    refused(() => v.runtimeNode(0, new Set([1])), 'RangeError', ErrorCodes.UNKNOWN_NODE, 'no worker of this runtime is on node 0 (nodes: 1)');
  });
});

describe('validation of scheduler options', () => {
  it('workerCount: undefined and auto are 0, else 1..LIMITS.workers (ERR_HWSQ_INVALID_WORKERS)', () => {
    expect([v.workerCount(undefined), v.workerCount('auto'), v.workerCount(1), v.workerCount(v.LIMITS.workers)]).toEqual([0, 0, 1, v.LIMITS.workers]);
    refused(() => v.workerCount(0), 'RangeError', ErrorCodes.INVALID_WORKERS);
    refused(() => v.workerCount(v.LIMITS.workers + 1), 'RangeError', ErrorCodes.INVALID_WORKERS);
    refused(() => v.workerCount('2'), 'TypeError', INVALID_ARG_TYPE, `workers must be a number or 'auto', got "2"`);
  });

  it('stealPolicy, hogThresholdNs and cgroupPollMs: defaults, bounds and conversion', () => {
    expect([v.stealPolicy(undefined), v.stealPolicy('flat'), v.stealPolicy('hierarchical')]).toEqual([v.DEFAULTS.stealPolicy, 'flat', 'hierarchical']);
    refused(() => v.stealPolicy('random'), 'RangeError', ErrorCodes.UNKNOWN_POLICY);
    expect(v.hogThresholdNs(undefined)).toBe(v.DEFAULTS.hogThresholdMs * 1e6);
    expect([v.hogThresholdNs(0.001), v.hogThresholdNs(2.5), v.hogThresholdNs(3_600_000)]).toEqual([1000, 2_500_000, 3.6e12]);
    expect(v.hogThresholdNs(0.0015)).toBe(1500);
    refused(() => v.hogThresholdNs(0.0009), 'RangeError', INVALID_OPTION);
    refused(() => v.hogThresholdNs(3_600_001), 'RangeError', INVALID_OPTION);
    expect([v.cgroupPollMs(undefined, true), v.cgroupPollMs(0, true), v.cgroupPollMs(10, true), v.cgroupPollMs(3_600_000, true)]).toEqual([v.DEFAULTS.cgroupPollMs, 0, 10, 3_600_000]);
    // Checked even when the runtime does not follow the cgroup; 0 goes to the addon then.
    expect([v.cgroupPollMs(undefined, false), v.cgroupPollMs(50, false)]).toEqual([0, 0]);
    refused(() => v.cgroupPollMs(9, false), 'RangeError', INVALID_OPTION);
    refused(() => v.cgroupPollMs(3_600_001, true), 'RangeError', INVALID_OPTION);
    refused(() => v.cgroupPollMs(true, true), 'TypeError', INVALID_ARG_TYPE);
  });

  it('placementList: 1..LIMITS.workers entries of { node, cpus? }; cpus omitted is null', () => {
    expect(v.placementList([{ node: 1 }, { node: 0, cpus: [2, 3] }])).toEqual([{ node: 1, cpus: null }, { node: 0, cpus: [2, 3] }]);
    refused(() => v.placementList([]), 'RangeError', ErrorCodes.INVALID_WORKERS);
    refused(() => v.placementList([{}]), 'TypeError', INVALID_ARG_TYPE, 'placement[0].node is required');
    refused(() => v.placementList([{ node: 0, cpus: [] }]), 'RangeError', ErrorCodes.EMPTY_CPUS, 'placement[0].cpus must not be empty');
    refused(() => v.placementList([{ node: 0 }, { node: 0, cpu: 1 }]), 'TypeError', ErrorCodes.UNKNOWN_OPTION, /^placement\[1\]: unknown option "cpu"/);
    refused(() => v.placementList([{ node: 2000 }]), 'RangeError', ErrorCodes.UNKNOWN_NODE, /^placement\[0\]\.node: no NUMA node 2000/);
  });
});

describe('validation of runtime options', () => {
  const file = new URL('./fixtures/tasks/basic.mjs', import.meta.url);

  it('schedulerConfig: placement modes map to pin modes; an explicit list sets workers 0, numaNode -1 and no cgroup following', () => {
    const base = v.schedulerConfig({}, undefined);
    expect(base).toMatchObject({ workers: 0, placement: null, pin: 'node', confineToCaller: false, policy: 'hierarchical', hogThresholdNs: 10e6, numaNode: -1, cgroupPollMs: v.DEFAULTS.cgroupPollMs });
    expect(v.schedulerConfig({ placement: 'cpu' }, 2)).toMatchObject({ pin: 'cpu', numaNode: 2 });
    expect(v.schedulerConfig({ placement: 'none' }, undefined).pin).toBe('none');
    expect(v.schedulerConfig({ placement: 'spread' }, undefined).pin).toBe('node');
    expect(v.schedulerConfig({ workers: 3, confineToCaller: true }, 1)).toMatchObject({ workers: 3, confineToCaller: true, numaNode: 1, cgroupPollMs: 0 });
    const listed = v.schedulerConfig({ workers: 2, placement: [{ node: 0 }, { node: 0, cpus: [1] }] }, 1);
    expect(listed).toMatchObject({ workers: 0, numaNode: -1, cgroupPollMs: 0, placement: [{ node: 0, cpus: null }, { node: 0, cpus: [1] }] });
    refused(() => v.schedulerConfig({ workers: 3, placement: [{ node: 0 }] }, undefined), 'RangeError', ErrorCodes.INVALID_WORKERS, "workers (3) must equal the placement's length (1)");
    refused(() => v.schedulerConfig({ placement: 'numa' }, undefined), 'RangeError', INVALID_OPTION);
    refused(() => v.schedulerConfig({ placement: 7 }, undefined), 'TypeError', INVALID_ARG_TYPE);
    refused(() => v.schedulerConfig({ placement: null }, undefined), 'TypeError', INVALID_ARG_TYPE, "placement must be one of 'spread', 'cpu', 'none', got null");
    refused(() => v.schedulerConfig({ placement: 7 }, undefined), 'TypeError', INVALID_ARG_TYPE, "placement must be one of 'spread', 'cpu', 'none', got 7");
    // pin: the deprecated spelling, alone or with an explicit list only.
    expect(v.schedulerConfig({ pin: 'cpu' }, undefined).pin).toBe('cpu');
    expect(v.schedulerConfig({ pin: 'none', placement: [{ node: 0 }] }, undefined).pin).toBe('none');
    refused(() => v.schedulerConfig({ pin: 'cpu', placement: 'cpu' }, undefined), 'RangeError', INVALID_OPTION, "give placement 'cpu' or pin, not both (pin is the deprecated spelling)");
    refused(() => v.schedulerConfig({ pin: 'spread' }, undefined), 'RangeError', INVALID_OPTION);
    refused(() => v.schedulerConfig({ confineToCaller: 1 }, undefined), 'TypeError', INVALID_ARG_TYPE);
  });

  it('normalizeNativeRuntimeOptions: defaults, virtualTopology bounds and what it excludes', () => {
    const d = v.normalizeNativeRuntimeOptions(undefined);
    expect(d).toMatchObject({ stats: true, timingSampleShift: 8, sysmon: true, idleSpinNs: 50_000, virtualNodes: 0, virtualWorkersPerNode: 0, shm: true, memoryAffinity: false });
    const set = v.normalizeNativeRuntimeOptions({ stats: false, timingSampleShift: 20, sysmon: false, shm: false, memoryAffinity: true });
    expect(set).toMatchObject({ stats: false, timingSampleShift: 20, sysmon: false, shm: false, memoryAffinity: true });
    expect(v.normalizeNativeRuntimeOptions({ timingSampleShift: 0 }).timingSampleShift).toBe(0);
    refused(() => v.normalizeNativeRuntimeOptions({ timingSampleShift: 21 }), 'RangeError', INVALID_OPTION);
    refused(() => v.normalizeNativeRuntimeOptions({ timingSampleShift: -1 }), 'RangeError', INVALID_OPTION);
    expect(v.normalizeNativeRuntimeOptions({ idleSpinMicros: 0 }).idleSpinNs).toBe(0);
    expect(v.normalizeNativeRuntimeOptions({ idleSpinMicros: 100_000 }).idleSpinNs).toBe(100_000_000);
    for (const bad of [-1, 100_001, 1.5, NaN]) refused(() => v.normalizeNativeRuntimeOptions({ idleSpinMicros: bad }), 'RangeError', INVALID_OPTION);
    refused(() => v.normalizeNativeRuntimeOptions({ idleSpinMicros: '50' }), 'TypeError', INVALID_ARG_TYPE);
    const virt = v.normalizeNativeRuntimeOptions({ virtualTopology: { nodes: 4, workersPerNode: 1024 } });
    expect(virt).toMatchObject({ virtualNodes: 4, virtualWorkersPerNode: 1024, cgroupPollMs: 0, numaNode: -1 });
    expect(v.normalizeNativeRuntimeOptions({ virtualTopology: { nodes: 1024, workersPerNode: 4 } }).virtualNodes).toBe(1024);
    refused(() => v.normalizeNativeRuntimeOptions({ virtualTopology: { nodes: 4, workersPerNode: 1025 } }), 'RangeError', ErrorCodes.INVALID_WORKERS);
    refused(() => v.normalizeNativeRuntimeOptions({ virtualTopology: { nodes: 1025, workersPerNode: 1 } }), 'RangeError', ErrorCodes.INVALID_WORKERS);
    refused(() => v.normalizeNativeRuntimeOptions({ virtualTopology: { nodes: 0, workersPerNode: 1 } }), 'RangeError', ErrorCodes.INVALID_WORKERS);
    refused(() => v.normalizeNativeRuntimeOptions({ virtualTopology: { nodes: 1 } }), 'TypeError', INVALID_ARG_TYPE);
    for (const extra of [{ workers: 2 }, { placement: 'cpu' }, { pin: 'cpu' }, { confineToCaller: false }]) {
      refused(() => v.normalizeNativeRuntimeOptions({ virtualTopology: { nodes: 1, workersPerNode: 1 }, ...extra }), 'RangeError', INVALID_OPTION, 'virtualTopology excludes workers, placement, pin and confineToCaller');
    }
    refused(() => v.normalizeNativeRuntimeOptions({ stats: 'yes' }), 'TypeError', INVALID_ARG_TYPE);
    refused(() => v.normalizeNativeRuntimeOptions({ sysmon: 0 }), 'TypeError', INVALID_ARG_TYPE);
    refused(() => v.normalizeNativeRuntimeOptions({ shm: 'off' }), 'TypeError', INVALID_ARG_TYPE);
    refused(() => v.normalizeNativeRuntimeOptions({ memoryAffinity: 1 }), 'TypeError', INVALID_ARG_TYPE);
  });

  it('runtimeConfig: defaults of every option, and each bound', () => {
    refused(() => v.runtimeConfig(undefined), 'TypeError', INVALID_ARG_TYPE, 'options must be an object with at least a filename');
    const c = v.runtimeConfig({ filename: file });
    expect(c.module.url).toBe(file.href);
    expect(c.native).toMatchObject({ concurrency: 16, budget: 64, spinNs: 50_000 });
    expect(c.options).toMatchObject({ workers: 'auto', maxQueue: Infinity, concurrentTasksPerWorker: 16, idleSpinMicros: 50, tasksPerTurn: 64, hogThresholdMs: 10, cgroupPollMs: 1000, shm: true, memoryAffinity: false, restartWorkers: true, confineToCaller: false, stealPolicy: 'hierarchical' });
    expect([c.options.resourceLimits, c.options.env, c.options.workerData, c.options.execArgv]).toEqual([undefined, undefined, undefined, undefined]);
    const set = v.runtimeConfig({ filename: file, workers: 2, maxQueue: 5, concurrentTasksPerWorker: 65536, tasksPerTurn: 1, idleSpinMicros: 0, restartWorkers: false, hogThresholdMs: 0.5, execArgv: ['--x'], workerData: { a: [1] } });
    expect(set.options).toMatchObject({ workers: 2, maxQueue: 5, concurrentTasksPerWorker: 65536, tasksPerTurn: 1, idleSpinMicros: 0, restartWorkers: false, hogThresholdMs: 0.5, execArgv: ['--x'], workerData: { a: [1] } });
    expect(set.native).toMatchObject({ concurrency: 65536, budget: 1, spinNs: 0, workers: 2 });
    expect(v.runtimeConfig({ filename: file, placement: [{ node: 0 }, { node: 0 }] }).options.workers).toBe(2);
    expect(v.runtimeConfig({ filename: file, maxQueue: 'auto' }).options.maxQueue).toBe('auto');
    expect(v.runtimeConfig({ filename: file, maxQueue: Infinity }).options.maxQueue).toBe(Infinity);
    expect(v.runtimeConfig({ filename: file, maxQueue: 2 ** 32 }).options.maxQueue).toBe(2 ** 32);
    expect(v.runtimeConfig({ filename: file, idleSpinMicros: 100_000 }).native.spinNs).toBe(100_000_000);
    refused(() => v.runtimeConfig({ filename: file, maxQueue: 0 }), 'RangeError', INVALID_OPTION);
    refused(() => v.runtimeConfig({ filename: file, maxQueue: 2 ** 32 + 1 }), 'RangeError', INVALID_OPTION);
    refused(() => v.runtimeConfig({ filename: file, maxQueue: 'many' }), 'RangeError', INVALID_OPTION, `maxQueue must be a number, Infinity or 'auto', got "many"`);
    refused(() => v.runtimeConfig({ filename: file, concurrentTasksPerWorker: 0 }), 'RangeError', INVALID_OPTION);
    refused(() => v.runtimeConfig({ filename: file, concurrentTasksPerWorker: 65537 }), 'RangeError', INVALID_OPTION);
    refused(() => v.runtimeConfig({ filename: file, tasksPerTurn: 0 }), 'RangeError', INVALID_OPTION);
    refused(() => v.runtimeConfig({ filename: file, tasksPerTurn: 65537 }), 'RangeError', INVALID_OPTION);
    refused(() => v.runtimeConfig({ filename: file, idleSpinMicros: 100_001 }), 'RangeError', INVALID_OPTION);
    refused(() => v.runtimeConfig({ filename: file, idleSpinMicros: -1 }), 'RangeError', INVALID_OPTION);
    refused(() => v.runtimeConfig({ filename: file, restartWorkers: 'no' }), 'TypeError', INVALID_ARG_TYPE);
    refused(() => v.runtimeConfig({ filename: file, execArgv: [1] }), 'TypeError', INVALID_ARG_TYPE, 'execArgv[0] must be a string, got 1');
    refused(() => v.runtimeConfig({ filename: file, execArgv: ['x'.repeat(v.LIMITS.pathLength + 1)] }), 'RangeError', INVALID_OPTION);
    refused(() => v.runtimeConfig({ filename: file, workerData: () => {} }), 'TypeError', ErrorCodes.DATA_CLONE, /^workerData cannot be cloned to the workers: /);
    try {
      v.runtimeConfig({ filename: file, workerData: () => {} });
    } catch (err) {
      expect((err as { cause?: { name?: string } }).cause?.name).toBe('DataCloneError');
    }
    refused(() => v.runtimeConfig({ filename: file, nope: 1 }), 'TypeError', ErrorCodes.UNKNOWN_OPTION);
  });

  it('taskModule: a path or a file: URL, string or URL, of 1..4096 characters without NUL', () => {
    expect(v.taskModule('/tmp/x.mjs')).toEqual({ url: 'file:///tmp/x.mjs', file: '/tmp/x.mjs' });
    expect(v.taskModule('file:///tmp/y.mjs')).toEqual({ url: 'file:///tmp/y.mjs', file: '/tmp/y.mjs' });
    expect(v.taskModule('FILE:///tmp/y.mjs').file).toBe('/tmp/y.mjs');
    expect(v.taskModule(new URL('file:///tmp/z.mjs')).file).toBe('/tmp/z.mjs');
    expect(v.taskModule('rel/a.mjs').file).toBe(`${process.cwd()}/rel/a.mjs`);
    // A one-letter scheme is a Windows drive, read as a path here.
    expect(v.taskModule('c:/a.mjs').file).toBe(`${process.cwd()}/c:/a.mjs`);
    // A scheme only at the start: a colon further in is part of a path.
    expect(v.taskModule('dir/https:x.mjs').file).toBe(`${process.cwd()}/dir/https:x.mjs`);
    refused(() => v.taskModule('https://example.com/t.mjs'), 'RangeError', INVALID_OPTION, 'filename must be a path or a file: URL, got a https: URL');
    refused(() => v.taskModule(new URL('data:text/javascript,1')), 'RangeError', INVALID_OPTION, 'filename must be a path or a file: URL, got a data: URL');
    refused(() => v.taskModule(''), 'RangeError', INVALID_OPTION, /^filename must be a path or a file: URL of 1 to 4096 characters without NUL bytes$/);
    refused(() => v.taskModule('/a\0b'), 'RangeError', INVALID_OPTION);
    expect(v.taskModule(`/${'a'.repeat(v.LIMITS.pathLength - 1)}`).file).toHaveLength(v.LIMITS.pathLength);
    refused(() => v.taskModule(`/${'a'.repeat(v.LIMITS.pathLength)}`), 'RangeError', INVALID_OPTION);
    refused(() => v.taskModule('file://host/x.mjs'), 'RangeError', INVALID_OPTION, /^filename is not a usable file: URL: /);
    try {
      v.taskModule('file://host/x.mjs');
    } catch (err) {
      expect((err as { cause?: { code?: string } }).cause?.code).toBe('ERR_INVALID_FILE_URL_HOST');
    }
    refused(() => v.taskModule(5), 'TypeError', INVALID_ARG_TYPE, 'filename must be a path or a file: URL, got 5');
    refused(() => v.taskModule({ href: 'file:///x' }), 'TypeError', INVALID_ARG_TYPE);
    refused(() => v.taskModule(null), 'TypeError', INVALID_ARG_TYPE, 'filename must be a path or a file: URL, got null');
  });

  it('resourceLimits and env', () => {
    const r = (resourceLimits: unknown) => v.runtimeConfig({ filename: file, resourceLimits }).options.resourceLimits;
    expect(r({})).toEqual({});
    expect(r({ maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 1 << 20, codeRangeSizeMb: 2.5, stackSizeMb: 1024 })).toEqual({ maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 1 << 20, codeRangeSizeMb: 2.5, stackSizeMb: 1024 });
    refused(() => r({ maxOldGenerationSizeMb: 0.5 }), 'RangeError', INVALID_OPTION, /^resourceLimits\.maxOldGenerationSizeMb/);
    refused(() => r({ codeRangeSizeMb: (1 << 20) + 1 }), 'RangeError', INVALID_OPTION);
    refused(() => r({ stackSizeMb: 1025 }), 'RangeError', INVALID_OPTION, /^resourceLimits\.stackSizeMb/);
    refused(() => r({ heap: 1 }), 'TypeError', ErrorCodes.UNKNOWN_OPTION);
    const env = (e: unknown) => v.runtimeConfig({ filename: file, env: e }).options.env;
    expect(env({ A: '1', B: undefined })).toEqual({ A: '1' });
    const { SHARE_ENV } = require('node:worker_threads') as typeof import('node:worker_threads');
    expect(env(SHARE_ENV)).toBe(SHARE_ENV);
    refused(() => env({ A: 1 }), 'TypeError', INVALID_ARG_TYPE, 'env.A must be a string, got 1');
    refused(() => env({ 'A=B': 'x' }), 'RangeError', INVALID_OPTION);
    refused(() => env({ 'A\0': 'x' }), 'RangeError', INVALID_OPTION);
    refused(() => env({ A: 'x\0' }), 'RangeError', INVALID_OPTION, "env.A: names and values cannot hold NUL bytes (nor names '=')");
    for (const bad of [null, ['A=1'], 'A=1']) refused(() => env(bad), 'TypeError', INVALID_ARG_TYPE, /^env must be an object of strings or SHARE_ENV/);
    const many = Object.fromEntries(Array.from({ length: v.LIMITS.listLength + 1 }, (_, i) => [`V${i}`, '']));
    refused(() => env(many), 'RangeError', INVALID_OPTION, `env must have at most ${v.LIMITS.listLength} variables, got ${v.LIMITS.listLength + 1}`);
    delete many[`V${v.LIMITS.listLength}`];
    expect(Object.keys(env(many) as object)).toHaveLength(v.LIMITS.listLength);
    refused(() => env({ get A() { throw new Error('no'); } }), 'TypeError', INVALID_ARG_TYPE, 'env.A could not be read: no');
  });
});

describe('validation of spawns', () => {
  it('spawnNode and spawnOptions: node, transfer, signal, abort', () => {
    expect([v.spawnNode(undefined, undefined, false), v.spawnNode(undefined, undefined, true), v.spawnNode('auto', undefined, false), v.spawnNode(5, undefined, false)]).toEqual([-1, 'auto', 'auto', 5]);
    refused(() => v.spawnNode('0', undefined, false), 'TypeError', INVALID_ARG_TYPE, `node must be a NUMA node id or 'auto', got "0"`);
    refused(() => v.spawnNode(5, new Set([0]), false), 'RangeError', ErrorCodes.UNKNOWN_NODE);
    expect(v.spawnNode(0, new Set([0]), false)).toBe(0);
    expect(v.spawnOptions(undefined)).toEqual({ node: -1, transfer: undefined, signal: undefined, abort: 'signal' });
    expect(v.spawnOptions(undefined, undefined, true).node).toBe('auto');
    expect(v.spawnOptions({ abort: 'terminate' }).abort).toBe('terminate');
    refused(() => v.spawnOptions({ abort: 'kill' }), 'RangeError', INVALID_OPTION);
    refused(() => v.spawnOptions({ worker: 0 }), 'TypeError', ErrorCodes.UNKNOWN_OPTION);
    expect(v.spawnManyOptions(undefined)).toBe(-1);
    expect(v.spawnManyOptions({ node: 'auto' })).toBe('auto');
    expect(v.spawnManyOptions(undefined, undefined, true)).toBe('auto');
    refused(() => v.spawnManyOptions({ transfer: [] }), 'TypeError', ErrorCodes.UNKNOWN_OPTION);
  });

  it('transferList: distinct, live ArrayBuffers only', () => {
    const a = new ArrayBuffer(1);
    const b = new ArrayBuffer(0);
    expect(v.transferList(undefined)).toBeUndefined();
    expect(v.transferList([a, b])).toEqual([a, b]);
    expect(v.transferList([])).toEqual([]);
    refused(() => v.transferList([a, a]), 'RangeError', ErrorCodes.INVALID_ARG, 'transfer[1] is listed twice');
    refused(() => v.transferList([new SharedArrayBuffer(1)]), 'TypeError', INVALID_ARG_TYPE, /^transfer\[0\] must be an ArrayBuffer \(SharedArrayBuffers are shared without a transfer\)/);
    refused(() => v.transferList([new Uint8Array(1)]), 'TypeError', INVALID_ARG_TYPE);
    const gone = new ArrayBuffer(4);
    structuredClone(gone, { transfer: [gone] });
    refused(() => v.transferList([a, gone], 'list'), 'RangeError', ErrorCodes.INVALID_ARG, 'list[1] is detached (already transferred)');
    refused(() => v.transferList(a), 'TypeError', INVALID_ARG_TYPE);
  });

  it('abortSignal: a real AbortSignal with the standard listener methods', () => {
    const c = new AbortController();
    expect(v.abortSignal(undefined)).toBeUndefined();
    expect(v.abortSignal(c.signal)).toBe(c.signal);
    refused(() => v.abortSignal({}), 'TypeError', INVALID_ARG_TYPE, 'signal must be an AbortSignal, got an object');
    refused(() => v.abortSignal(Object.create(AbortSignal.prototype)), 'TypeError', INVALID_ARG_TYPE, /^signal could not be read: /);
    const patched = new AbortController().signal;
    patched.addEventListener = () => {};
    refused(() => v.abortSignal(patched, 's'), 'TypeError', INVALID_ARG_TYPE, 's must be an AbortSignal with the standard addEventListener / removeEventListener');
    const patched2 = new AbortController().signal;
    patched2.removeEventListener = () => {};
    refused(() => v.abortSignal(patched2), 'TypeError', INVALID_ARG_TYPE);
  });

  it('argsOf, argsListOf and rejectionCount', () => {
    const args = [1];
    expect(v.argsOf(undefined)).toEqual([]);
    expect(v.argsOf(args)).toBe(args);
    refused(() => v.argsOf('x'), 'TypeError', INVALID_ARG_TYPE, 'args must be an array, got "x"');
    expect(v.argsListOf([[1], []])).toEqual([[1], []]);
    expect(v.argsListOf([])).toEqual([]);
    refused(() => v.argsListOf([[1], 2]), 'TypeError', INVALID_ARG_TYPE, 'argsList[1] must be an array, got 2');
    refused(() => v.argsListOf({}), 'TypeError', INVALID_ARG_TYPE, /^argsList must be an array of argument arrays/);
    expect([v.rejectionCount([[], []]), v.rejectionCount([]), v.rejectionCount('x'), v.rejectionCount(null)]).toEqual([2, 0, 1, 1]);
    const huge = new Array(v.LIMITS.spawnManyLists + 1);
    expect(v.rejectionCount(huge)).toBe(1);
    expect(v.rejectionCount(new Array(v.LIMITS.spawnManyLists))).toBe(v.LIMITS.spawnManyLists);
    refused(() => v.argsListOf(huge), 'RangeError', ErrorCodes.INVALID_COUNT);
    const { proxy, revoke } = Proxy.revocable([], {});
    revoke();
    expect(v.rejectionCount(proxy)).toBe(1);
  });

  it('bytesOf and taskBuffer: any BufferLike without a copy; detached is empty; at least a cache line for tasks', () => {
    const ab = new ArrayBuffer(128);
    const u8 = new Uint8Array(ab, 8, 64);
    expect(v.bytesOf(u8)).toBe(u8);
    const dv = v.bytesOf(new DataView(ab, 16, 32));
    expect([dv.buffer, dv.byteOffset, dv.byteLength]).toEqual([ab, 16, 32]);
    const whole = v.bytesOf(ab);
    expect([whole.buffer, whole.byteLength]).toEqual([ab, 128]);
    const sab = new SharedArrayBuffer(64);
    expect(v.bytesOf(sab).buffer).toBe(sab);
    const gone = new ArrayBuffer(64);
    const viewOfGone = new Float64Array(gone);
    structuredClone(gone, { transfer: [gone] });
    expect(v.bytesOf(gone).byteLength).toBe(0);
    expect(v.bytesOf(viewOfGone).byteLength).toBe(0);
    refused(() => v.bytesOf([1, 2], 'buf'), 'TypeError', INVALID_ARG_TYPE, /^buf must be an ArrayBuffer, SharedArrayBuffer, TypedArray, DataView or Buffer/);
    expect(v.taskBuffer(new ArrayBuffer(64), 'b').byteLength).toBe(64);
    refused(() => v.taskBuffer(new ArrayBuffer(63), 'b'), 'RangeError', ErrorCodes.BAD_SIZE, 'b must hold at least 64 bytes, got 63');
  });

  it('nativeSpawnArgs: each kind with its params, count, node, worker and inside', () => {
    const nodes = [0, 1];
    const buf = new ArrayBuffer(256);
    expect(v.nativeSpawnArgs('noop', undefined, undefined, 2, nodes)).toEqual({ kind: 'noop', spinNs: 0, view: undefined, steps: 0, node: -1, worker: -1, count: 1, inside: false });
    expect(v.nativeSpawnArgs('spin', { ns: 1.6 }, { count: 2 ** 30 }, 2, nodes)).toMatchObject({ spinNs: 2, count: 2 ** 30 });
    expect(v.nativeSpawnArgs('spin', { ns: 60e9 }, undefined, 2, nodes).spinNs).toBe(60e9);
    refused(() => v.nativeSpawnArgs('spin', { ns: 60e9 + 1 }, undefined, 2, nodes), 'RangeError', ErrorCodes.INVALID_ARG);
    refused(() => v.nativeSpawnArgs('spin', {}, undefined, 2, nodes), 'TypeError', INVALID_ARG_TYPE, 'spin tasks need params.ns (a number of nanoseconds)');
    refused(() => v.nativeSpawnArgs('noop', { ns: 1 }, undefined, 2, nodes), 'RangeError', ErrorCodes.INVALID_ARG, 'params.ns is for spin tasks, not noop');
    expect(v.nativeSpawnArgs('touch', { buffer: buf }, undefined, 2, nodes).view!.byteLength).toBe(256);
    refused(() => v.nativeSpawnArgs('touch', {}, undefined, 2, nodes), 'TypeError', INVALID_ARG_TYPE, 'touch tasks need params.buffer');
    refused(() => v.nativeSpawnArgs('spin', { ns: 1, buffer: buf }, undefined, 2, nodes), 'RangeError', ErrorCodes.INVALID_ARG, 'params.buffer is for touch and chase tasks, not spin');
    expect(v.nativeSpawnArgs('chase', { buffer: buf }, undefined, 2, nodes).steps).toBe(4);  // one per cache line
    expect(v.nativeSpawnArgs('chase', { buffer: buf, steps: 2 ** 32 }, undefined, 2, nodes).steps).toBe(2 ** 32);
    refused(() => v.nativeSpawnArgs('chase', { buffer: buf, steps: 0 }, undefined, 2, nodes), 'RangeError', ErrorCodes.INVALID_ARG);
    refused(() => v.nativeSpawnArgs('chase', { buffer: buf, steps: 2 ** 32 + 1 }, undefined, 2, nodes), 'RangeError', ErrorCodes.INVALID_ARG);
    refused(() => v.nativeSpawnArgs('touch', { buffer: buf, steps: 1 }, undefined, 2, nodes), 'RangeError', ErrorCodes.INVALID_ARG, 'params.steps is for chase tasks, not touch');
    refused(() => v.nativeSpawnArgs('sleep', {}, undefined, 2, nodes), 'RangeError', ErrorCodes.UNKNOWN_TASK_KIND);
    refused(() => v.nativeSpawnArgs('noop', {}, { count: 0 }, 2, nodes), 'RangeError', ErrorCodes.INVALID_COUNT);
    refused(() => v.nativeSpawnArgs('noop', {}, { count: 2 ** 30 + 1 }, 2, nodes), 'RangeError', ErrorCodes.INVALID_COUNT);
    expect(v.nativeSpawnArgs('noop', {}, { worker: 1 }, 2, nodes)).toMatchObject({ worker: 1, node: -1 });
    refused(() => v.nativeSpawnArgs('noop', {}, { worker: 2 }, 2, nodes), 'RangeError', ErrorCodes.UNKNOWN_WORKER);
    expect(v.nativeSpawnArgs('noop', {}, { node: 1 }, 2, nodes).node).toBe(1);
    refused(() => v.nativeSpawnArgs('noop', {}, { node: 2 }, 2, nodes), 'RangeError', ErrorCodes.UNKNOWN_NODE);
    refused(() => v.nativeSpawnArgs('noop', {}, { node: 1, worker: 0 }, 2, nodes), 'RangeError', ErrorCodes.INVALID_ARG, /^give node or worker, not both/);
    expect(v.nativeSpawnArgs('noop', {}, { node: 1, worker: 0, inside: true }, 2, nodes)).toMatchObject({ node: 1, worker: 0, inside: true });
    refused(() => v.nativeSpawnArgs('noop', {}, { inside: 1 }, 2, nodes), 'TypeError', INVALID_ARG_TYPE);
    // memoryAffinity: node 'auto' by default, but an explicit worker wins (unless inside).
    expect(v.nativeSpawnArgs('noop', {}, undefined, 2, nodes, true).node).toBe('auto');
    expect(v.nativeSpawnArgs('noop', {}, { worker: 0 }, 2, nodes, true).node).toBe(-1);
    expect(v.nativeSpawnArgs('noop', {}, { worker: 0, inside: true }, 2, nodes, true).node).toBe('auto');
    expect(v.nativeSpawnArgs('noop', {}, { worker: 0, inside: false }, 2, nodes, true).node).toBe(-1);
  });
});

describe('validation of the NUMA functions, environment and metrics options', () => {
  it('fsroot and benchDir: a directory, from the option or the environment; NUL and length refused', () => {
    expect(v.fsroot(undefined, {})).toBe('');
    expect(v.fsroot({ fsroot: '' }, { HWSQ_FSROOT: '/nonexistent' })).toBe('');
    expect(v.fsroot({ fsroot: '/tmp' }, {})).toBe('/tmp');
    expect(v.fsroot(undefined, { HWSQ_FSROOT: '/tmp' })).toBe('/tmp');
    expect(v.fsroot(undefined, { HWSQ_FSROOT: '' })).toBe('');
    refused(() => v.fsroot({ fsroot: '/nonexistent-dir' }, {}), 'RangeError', INVALID_OPTION, 'fsroot must be a directory holding sys/ and proc/, got "/nonexistent-dir"');
    refused(() => v.fsroot({ fsroot: '/etc/hostname' }, {}), 'RangeError', INVALID_OPTION);
    refused(() => v.fsroot({ fsroot: '/tmp\0' }, {}), 'RangeError', INVALID_OPTION, 'fsroot cannot hold NUL bytes');
    refused(() => v.fsroot(undefined, { HWSQ_FSROOT: '/nonexistent-dir' }), 'RangeError', ErrorCodes.INVALID_ENV, /^HWSQ_FSROOT must be a directory/);
    refused(() => v.fsroot(undefined, { HWSQ_FSROOT: `/${'a'.repeat(v.LIMITS.pathLength)}` }), 'RangeError', ErrorCodes.INVALID_ENV, `HWSQ_FSROOT is longer than ${v.LIMITS.pathLength} characters`);
    // Exactly the limit is not too long (only not a directory).
    refused(() => v.fsroot(undefined, { HWSQ_FSROOT: `/${'a'.repeat(v.LIMITS.pathLength - 1)}` }), 'RangeError', ErrorCodes.INVALID_ENV, /^HWSQ_FSROOT must be a directory/);
    refused(() => v.benchDir({ HWSQ_BENCH_DIR: `/${'a'.repeat(v.LIMITS.pathLength - 1)}` }), 'RangeError', ErrorCodes.INVALID_ENV, /^HWSQ_BENCH_DIR must be a directory/);
    refused(() => v.fsroot({ fsroot: 1 }, {}), 'TypeError', INVALID_ARG_TYPE);
    expect([v.benchDir({}), v.benchDir({ HWSQ_BENCH_DIR: '' }), v.benchDir({ HWSQ_BENCH_DIR: '/tmp' })]).toEqual([undefined, undefined, '/tmp']);
    refused(() => v.benchDir({ HWSQ_BENCH_DIR: '/nonexistent-dir' }), 'RangeError', ErrorCodes.INVALID_ENV);
    refused(() => v.benchDir({ HWSQ_BENCH_DIR: `/${'a'.repeat(v.LIMITS.pathLength)}` }), 'RangeError', ErrorCodes.INVALID_ENV, `HWSQ_BENCH_DIR is longer than ${v.LIMITS.pathLength} characters`);
  });

  it('identityVar: unset or empty is null; printable text up to LIMITS.nameLength', () => {
    expect([v.identityVar({}, 'POD'), v.identityVar({ POD: '' }, 'POD'), v.identityVar({ POD: 'web-1' }, 'POD')]).toEqual([null, null, 'web-1']);
    expect(v.identityVar({ POD: 'x'.repeat(v.LIMITS.nameLength) }, 'POD')).toHaveLength(v.LIMITS.nameLength);
    refused(() => v.identityVar({ POD: 'x'.repeat(v.LIMITS.nameLength + 1) }, 'POD'), 'RangeError', ErrorCodes.INVALID_ENV);
    for (const bad of ['a\nb', 'a\u001fb', 'a\u007fb', 'a\u009fb', '\u0000']) refused(() => v.identityVar({ POD: bad }, 'POD'), 'RangeError', ErrorCodes.INVALID_ENV, /^POD must be at most 1024 printable characters/);
    expect(v.identityVar({ POD: 'a\u00a0b' }, 'POD')).toBe('a\u00a0b');
    refused(() => v.identityVar({ POD: 5 } as never, 'POD'), 'TypeError', INVALID_ARG_TYPE, 'env.POD must be a string, got 5');
    refused(() => v.identityVar(null as never, 'POD'), 'TypeError', INVALID_ARG_TYPE, 'env must be an object of strings, got null');
    refused(() => v.identityVar('POD=x' as never, 'POD'), 'TypeError', INVALID_ARG_TYPE, 'env must be an object of strings, got "POD=x"');
  });

  it('pinOptions and nodeIds', () => {
    expect(v.pinOptions(undefined)).toEqual({ scope: 'thread', memory: 'preferred' });
    expect(v.pinOptions({ scope: 'process', memory: 'bind' })).toEqual({ scope: 'process', memory: 'bind' });
    expect(v.pinOptions({ memory: 'none' }).memory).toBe('none');
    refused(() => v.pinOptions({ scope: 'all' }), 'RangeError', ErrorCodes.INVALID_ARG);
    refused(() => v.pinOptions({ memory: 'local' }), 'RangeError', ErrorCodes.INVALID_ARG);
    expect(v.nodeIds(3)).toEqual({ ids: [3], many: false });
    expect(v.nodeIds([2, 0])).toEqual({ ids: [2, 0], many: true });
    refused(() => v.nodeIds([]), 'RangeError', ErrorCodes.UNKNOWN_NODE, 'at least one node is needed');
    refused(() => v.nodeIds([1, 1]), 'RangeError', ErrorCodes.INVALID_ARG, 'node lists a node twice');
    refused(() => v.nodeIds([0, 'x']), 'TypeError', INVALID_ARG_TYPE, /^node\[1\]/);
    refused(() => v.nodeIds(new Array(v.LIMITS.nodeId + 2).fill(0)), 'RangeError', ErrorCodes.UNKNOWN_NODE);
    expect(v.nodeIds(Array.from({ length: v.LIMITS.nodeId + 1 }, (_, i) => i)).ids).toHaveLength(v.LIMITS.nodeId + 1);
  });

  it('metricsSource, metricsOptions and serveOptions', () => {
    expect(() => v.metricsSource({ stats() {} })).not.toThrow();
    expect(() => v.metricsSource(Object.assign(() => {}, { stats() {} }))).not.toThrow();
    for (const bad of [null, undefined, {}, { stats: 1 }, 'stats']) refused(() => v.metricsSource(bad), 'TypeError', INVALID_ARG_TYPE, 'runtime must have a stats() method (NativeRuntime or Runtime)');
    refused(() => v.metricsSource({ get stats() { throw new Error('x'); } }), 'TypeError', INVALID_ARG_TYPE, 'runtime could not be read: x');
    const d = v.metricsOptions(undefined);
    expect(d).toEqual({ registry: undefined, prefix: 'hwsq_', labels: {}, latencyBuckets: undefined, runTimeBuckets: undefined });
    expect(v.metricsOptions({ prefix: '' }).prefix).toBe('');
    expect(v.metricsOptions({ prefix: 'a:b_1' }).prefix).toBe('a:b_1');
    refused(() => v.metricsOptions({ prefix: '1a' }), 'RangeError', INVALID_OPTION, /^prefix must match/);
    refused(() => v.metricsOptions({ prefix: 'a-b' }), 'RangeError', INVALID_OPTION);
    expect(v.metricsOptions({ labels: { app: 'web', _x: '' } }).labels).toEqual({ app: 'web', _x: '' });
    refused(() => v.metricsOptions({ labels: { __x: 'a' } }), 'RangeError', INVALID_OPTION, 'label name "__x" is not a valid Prometheus label name');
    refused(() => v.metricsOptions({ labels: { '1a': 'a' } }), 'RangeError', INVALID_OPTION);
    refused(() => v.metricsOptions({ labels: { a: 1 } }), 'TypeError', INVALID_ARG_TYPE, 'labels.a must be a string, got 1');
    refused(() => v.metricsOptions({ labels: { worker: 'x' } }), 'RangeError', INVALID_OPTION, 'label worker is set by hwsq itself');
    for (const own of ['numa_node', 'cpu', 'scope', 'queue', 'origin', 'le', 'quantile']) refused(() => v.metricsOptions({ labels: { [own]: 'x' } }), 'RangeError', INVALID_OPTION);
    for (const bad of [['a'], null, 'a=b']) refused(() => v.metricsOptions({ labels: bad }), 'TypeError', INVALID_ARG_TYPE, /^labels must be an object of strings, got /);
    const longName = `l${'x'.repeat(v.LIMITS.nameLength - 1)}`;
    expect(Object.keys(v.metricsOptions({ labels: { [longName]: 'v' } }).labels)).toEqual([longName]);
    refused(() => v.metricsOptions({ labels: { [`${longName}x`]: 'v' } }), 'RangeError', INVALID_OPTION, /is not a valid Prometheus label name$/);
    const many = Object.fromEntries(Array.from({ length: v.LIMITS.metricsLabels + 1 }, (_, i) => [`l${i}`, '']));
    refused(() => v.metricsOptions({ labels: many }), 'RangeError', INVALID_OPTION, `labels: at most ${v.LIMITS.metricsLabels}, got ${v.LIMITS.metricsLabels + 1}`);
    expect(Object.keys(v.metricsOptions({ labels: Object.fromEntries(Array.from({ length: v.LIMITS.metricsLabels }, (_, i) => [`l${i}`, ''])) }).labels)).toHaveLength(v.LIMITS.metricsLabels);
    const b = v.metricsOptions({ latencyBuckets: [0.001, 0.01], runTimeBuckets: [1] });
    expect([b.latencyBuckets, b.runTimeBuckets, Object.isFrozen(b.latencyBuckets)]).toEqual([[0.001, 0.01], [1], true]);
    for (const bad of [[0], [-1], [1, 1], [2, 1], [Infinity], [NaN]]) refused(() => v.metricsOptions({ latencyBuckets: bad }), 'RangeError', INVALID_OPTION, 'latencyBuckets must be an ascending list of positive finite seconds');
    refused(() => v.metricsOptions({ runTimeBuckets: ['1'] }), 'TypeError', INVALID_ARG_TYPE, 'runTimeBuckets[0] must be a number of seconds, got "1"');
    refused(() => v.metricsOptions({ runTimeBuckets: [] }), 'RangeError', INVALID_OPTION);
    const fakeRegistry = { registerMetric() {}, removeSingleMetric() {}, getSingleMetric() {}, metrics() {}, contentType: 'text/plain' };
    expect(v.metricsOptions({ registry: fakeRegistry }).registry).toBe(fakeRegistry);
    refused(() => v.metricsOptions({ registry: { ...fakeRegistry, contentType: 1 } }), 'TypeError', INVALID_ARG_TYPE, /^registry must be a prom-client Registry/);
    refused(() => v.metricsOptions({ registry: { ...fakeRegistry, metrics: 1 } }), 'TypeError', INVALID_ARG_TYPE);
    for (const bad of [null, 'registry', () => {}]) refused(() => v.metricsOptions({ registry: bad }), 'TypeError', INVALID_ARG_TYPE, /^registry must be a prom-client Registry/);
    const s = v.serveOptions(undefined);
    expect(s).toMatchObject({ port: 9464, host: '127.0.0.1', headersTimeoutMs: 5000, idleTimeoutMs: 10_000, maxConnections: 64, prefix: 'hwsq_' });
    expect(v.serveOptions({ port: 0, headersTimeoutMs: 100, idleTimeoutMs: 3_600_000, maxConnections: 65536, host: 'h'.repeat(255) })).toMatchObject({ port: 0, headersTimeoutMs: 100, idleTimeoutMs: 3_600_000, maxConnections: 65536 });
    expect(v.serveOptions({ port: 65535 }).port).toBe(65535);
    refused(() => v.serveOptions({ port: 65536 }), 'RangeError', INVALID_OPTION);
    refused(() => v.serveOptions({ host: 'h'.repeat(256) }), 'RangeError', INVALID_OPTION);
    refused(() => v.serveOptions({ headersTimeoutMs: 99 }), 'RangeError', INVALID_OPTION);
    refused(() => v.serveOptions({ idleTimeoutMs: 3_600_001 }), 'RangeError', INVALID_OPTION);
    refused(() => v.serveOptions({ maxConnections: 0 }), 'RangeError', INVALID_OPTION);
    refused(() => v.serveOptions({ maxConnections: 65537 }), 'RangeError', INVALID_OPTION);
    refused(() => v.metricsOptions({ port: 1 }), 'TypeError', ErrorCodes.UNKNOWN_OPTION);
  });
});
