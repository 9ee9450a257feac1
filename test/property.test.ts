// Property-based tests (fast-check) over the inputs of every public function: for any input, a
// call either succeeds with a well-formed result, or it throws / rejects a TypeError or
// RangeError whose `code` is in ErrorCodes -- and a refused spawn leaves nothing queued, a refused
// runtime starts no thread. Inputs mix valid values with every JS type, edge numbers (NaN,
// +-Infinity, -0, 2**32, 2**53...), unknown option names and hostile objects (Proxies, revoked
// Proxies, getters that throw, frozen and null-prototype objects). Valid values are drawn from
// small ranges (a valid `workers: 4000` or `bytes: 2**31` would only cost time and memory).
// The `hwsq` command line likewise: any words in its arguments end in an exit code and a message.
// Seeded, with fixed run counts: the same inputs every run, bounded time (~30 s on a 2-CPU VM).
// A failure prints the seed, the path and the shrunk counterexample.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import v8 from 'node:v8';
import fc from 'fast-check';
import { Registry, register as globalRegistry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ErrorCodes,
  Runtime,
  allocOnNode,
  availableParallelism,
  createNativeRuntime,
  getAffinity,
  isMemoryLocal,
  movePages,
  numaNodeCount,
  pageNodes,
  pinToCpus,
  pinToNumaNode,
  podIdentity,
  prepareChaseBuffer,
  registerMetrics,
  schedulerJson,
  serveMetrics,
  topology,
  type NativeRuntime,
} from '../lib/index';
import { Writer, asMoved, decodeError, decodeValue, encodeError, encodeValue, move } from '../lib/core/codec';
import { ensureDist } from './helpers';

const SEED = 0x48575351; // "HWSQ"
const root = path.resolve(__dirname, '..');
const ESM = path.join(root, 'test', 'fixtures', 'tasks', 'basic.mjs');
const CODES = new Set<string>(Object.values(ErrorCodes));
const threadCount = () => fs.readdirSync('/proc/self/task').length;

beforeAll(ensureDist, 120_000);

// ------------------------------------------------------------------ the contract

type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

function attempt<T>(fn: () => T): Outcome<T> {
  try {
    return { ok: true, value: fn() };
  } catch (error) {
    return { ok: false, error };
  }
}

async function attemptAsync<T>(fn: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (error) {
    return { ok: false, error };
  }
}

function describeError(error: unknown): string {
  try {
    return error instanceof Error ? `${error.constructor.name} ${(error as { code?: string }).code ?? '(no code)'}: ${error.message}` : `a thrown ${typeof error}`;
  } catch {
    return 'an unprintable error';
  }
}

/** The failure is a TypeError or RangeError with a code from ErrorCodes. */
function expectTyped(error: unknown, what: string): void {
  const code = (error as { code?: unknown } | null)?.code;
  const ok = (error instanceof TypeError || error instanceof RangeError) && typeof code === 'string' && CODES.has(code);
  if (!ok) throw new Error(`${what}: not a typed error: ${describeError(error)}`, { cause: error });
}

const runs = (numRuns: number) => ({ seed: SEED, numRuns });

/**
 * The same structured-clone value: deep strict equality (typed arrays by their bytes), or the
 * same V8 serialization (isDeepStrictEqual finds two Invalid Dates different).
 */
function sameClone(a: unknown, b: unknown): boolean {
  if (isDeepStrictEqual(a, b)) return true;
  try {
    return v8.serialize(a).equals(v8.serialize(b));
  } catch {
    return false;
  }
}

/** Array.isArray that a revoked Proxy cannot make throw. */
function isList(v: unknown): v is unknown[] {
  try {
    return Array.isArray(v);
  } catch {
    return false;
  }
}

// ------------------------------------------------------------------ inputs

/**
 * A value made when the call is made, not when fast-check generates it: hostile objects (revoked
 * Proxies, throwing traps and getters) would break fast-check's own inspection of values, and
 * buffers must be fresh for every call (a transfer detaches them).
 */
class Lazy {
  constructor(
    readonly label: string,
    readonly make: () => unknown,
  ) {}
  [fc.toStringMethod](): string {
    return this.label;
  }
}

/** The real input: Lazy values made, arrays of inputs made element by element. */
function real(v: unknown): unknown {
  if (v instanceof Lazy) return v.make();
  if (Array.isArray(v) && v.some((x) => x instanceof Lazy || Array.isArray(x))) return v.map(real);
  return v;
}

function lazies(entries: [string, () => unknown][]): fc.Arbitrary<Lazy> {
  return fc.constantFrom(...entries).map(([label, make]) => new Lazy(label, make));
}

const edgeNumbers = fc.constantFrom(0, -0, 1, -1, 0.5, 1.5, NaN, Infinity, -Infinity, 2 ** 31, 2 ** 32, 2 ** 32 + 1, 2 ** 53, 2 ** 53 + 2, 1e12, -1e12, Number.MIN_VALUE, Number.MAX_VALUE);

/** Objects that break naive option reading. */
const hostileObjects = lazies([
  ['revoked Proxy', () => {
    const r = Proxy.revocable({}, {});
    r.revoke();
    return r.proxy;
  }],
  ['Proxy whose traps throw', () => new Proxy({}, { get: () => { throw new Error('get trap'); }, ownKeys: () => { throw new Error('ownKeys trap'); } })],
  ['Proxy { node: 0 } whose get throws', () => new Proxy({ node: 0 }, { get: () => { throw new Error('get trap'); } })],
  ['Proxy [] whose get throws', () => new Proxy([], { get: () => { throw new Error('get trap'); } })],
  ['frozen {}', () => Object.freeze({})],
  ['null-prototype {}', () => Object.create(null) as unknown],
  ['Invalid Date', () => new Date(NaN)],
  ['Map', () => new Map([[1, 2]])],
  ['function', () => function options() {}],
  ['symbol', () => Symbol('s')],
  ['10n', () => 10n],
  ['new Number(5)', () => new Number(5)],
  ["new String('spread')", () => new String('spread')],
  ['ArrayBuffer(8)', () => new ArrayBuffer(8)],
  ['Uint8Array(64)', () => new Uint8Array(64)],
  ['AbortSignal look-alike', () => Object.create(AbortSignal.prototype) as unknown],
  ['Proxy of a Uint8Array', () => new Proxy(new Uint8Array(128), {})],
]);

/** Any value at all. */
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.anything({ maxDepth: 2, maxKeys: 4, withBigInt: true, withNullPrototype: true, withBoxedValues: true, withMap: true, withSet: true, withTypedArray: true, withSparseArray: true, withDate: true }) },
  { weight: 2, arbitrary: edgeNumbers },
  { weight: 2, arbitrary: hostileObjects },
);

/** Integers in (limit, 2**30] are valid for some counts but only cost time: left to the small valid ranges. */
const notABigCount = (limit: number) => (v: unknown) => !(typeof v === 'number' && Number.isInteger(v) && v > limit && v <= 2 ** 30);

/** An input: mostly valid values, sometimes anything; `valid` draws valid values only. */
type Field = fc.Arbitrary<unknown> & { valid: fc.Arbitrary<unknown> };

/**
 * A field: 9 in 10 a value from `valid`, else anything (`invalid` adds wrong values of the right
 * type). Its `valid` is the valid values only (the valid part of `valid` when it is a Field too).
 */
function field(valid: fc.Arbitrary<unknown>, options: { bigLimit?: number; invalid?: fc.Arbitrary<unknown> } = {}): Field {
  const any = options.bigLimit === undefined ? anyValue : anyValue.filter(notABigCount(options.bigLimit));
  const wrong = options.invalid ? fc.oneof(any, options.invalid) : any;
  const mixed = fc.oneof({ weight: 9, arbitrary: valid }, { weight: 1, arbitrary: wrong });
  return Object.assign(mixed, { valid: (valid as Partial<Field>).valid ?? valid });
}

/** A list of `entry` (a Field): its `valid` is a list of valid entries. */
function listOf(entry: Field, constraints: fc.ArrayConstraints): Field {
  return Object.assign(fc.array(entry, constraints), { valid: fc.array(entry.valid, constraints) });
}

/** Each key an enumerable getter. */
function viaGetters(o: Record<string, unknown>): Record<string, unknown> {
  const out = {};
  for (const [k, v] of Object.entries(o)) Object.defineProperty(out, k, { get: () => v, enumerable: true });
  return out;
}

/** Wrappers of an options object: as is, frozen, a Proxy, null-prototype, getters, a getter that throws. */
type Wrapper = [string, (o: Record<string, unknown>) => unknown];
const readableWrappers = fc.constantFrom<Wrapper[]>(
  ['', (o) => o],
  ['frozen ', (o) => Object.freeze(o)],
  ['Proxy of ', (o) => new Proxy(o, {})],
  ['null-prototype ', (o) => Object.assign(Object.create(null) as object, o)],
  ['getters of ', viaGetters],
);
const wrappers = fc.oneof(
  { weight: 10, arbitrary: readableWrappers },
  {
    weight: 1,
    arbitrary: fc.constant<Wrapper>([
      'first getter throws in ',
      (o) => {
        const key = Object.keys(o)[0];
        if (key === undefined) return o;
        const out = { ...o };
        Object.defineProperty(out, key, { get: () => { throw new Error(`getter ${key}`); }, enumerable: true });
        return out;
      },
    ]),
  },
);

/**
 * An options argument: a partial record of `fields` (`required` ones always there), now and then
 * with an unknown name, wrapped (see wrappers); or anything; or undefined. A third of the objects
 * have valid values only (every field's `valid`) and a wrapper that reads fine, so that whole
 * calls succeed often enough to check their results. Its `valid` is those objects (or undefined).
 */
function optionsOf(fields: Record<string, fc.Arbitrary<unknown>>, required: string[] = []): Field {
  const make = (values: Record<string, fc.Arbitrary<unknown>>, extra: fc.Arbitrary<[string, unknown] | null>, wrap: fc.Arbitrary<Wrapper>) =>
    fc.tuple(fc.record(values, { requiredKeys: required }) as fc.Arbitrary<Record<string, unknown>>, extra, wrap).map(([o, x, [label, w]]) => {
      const entries = Object.entries(o);
      if (x && !(x[0] in fields)) entries.push(x);
      return new Lazy(`${label}${fc.stringify(Object.fromEntries(entries))}`, () => w(Object.fromEntries(entries.map(([k, v]) => [k, real(v)]))));
    });
  const validValues = Object.fromEntries(Object.entries(fields).map(([k, f]) => [k, (f as Partial<Field>).valid ?? f]));
  const clean = make(validValues, fc.constant(null), readableWrappers);
  const extra = fc.oneof({ weight: 10, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.tuple(fc.string({ minLength: 1, maxLength: 6 }), anyValue) });
  const mixed = fc.oneof(
    { weight: 8, arbitrary: clean },
    { weight: 14, arbitrary: make(fields, extra, wrappers) },
    { weight: 1, arbitrary: anyValue },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );
  return Object.assign(mixed, { valid: required.length ? clean : fc.oneof({ weight: 9, arbitrary: clean }, { weight: 1, arbitrary: fc.constant(undefined) }) });
}

const topo = topology();
const nodeIds = topo.nodes.map((n) => n.id);
const allowed = topo.allowedCpus;
const memNode = topo.nodes.find((n) => n.hasMemory)!;
const sysfsFixtures = fs.readdirSync(path.join(root, 'test', 'fixtures', 'sysfs')).map((d) => path.join(root, 'test', 'fixtures', 'sysfs', d));

/** Fresh buffers of every BufferLike kind (small). */
const buffers = lazies([
  ['ArrayBuffer(8192)', () => new ArrayBuffer(8192)],
  ['Uint8Array(4096)', () => new Uint8Array(4096)],
  ['Float64Array(512)', () => new Float64Array(512)],
  ['DataView(4096, 64, 1024)', () => new DataView(new ArrayBuffer(4096), 64, 1024)],
  ['Buffer(4096)', () => Buffer.alloc(4096, 1)],
  ['SharedArrayBuffer(4096)', () => new SharedArrayBuffer(4096)],
  ['ArrayBuffer(0)', () => new ArrayBuffer(0)],
  ['Uint8Array(16)', () => new Uint8Array(16)],
]);

// ------------------------------------------------------------------ NUMA functions

describe('property: topology, pinning and memory functions', () => {
  it('topology / numaNodeCount / availableParallelism: a well-formed topology or a typed error', () => {
    const options = optionsOf({ fsroot: field(fc.constantFrom('', ...sysfsFixtures), { invalid: fc.constantFrom('/nonexistent/hwsq', 'a\0b', ESM) }) });
    fc.assert(
      fc.property(options, (o) => {
        const t = attempt(() => topology(real(o) as never));
        if (!t.ok) expectTyped(t.error, 'topology');
        else {
          expect(t.value.nodes.length).toBeGreaterThan(0);
          expect(t.value.parallelism.value).toBeGreaterThanOrEqual(1);
          for (const n of t.value.nodes) expect(n.distances).toHaveLength(t.value.nodes.length);
        }
        const count = attempt(() => numaNodeCount(real(o) as never));
        if (!count.ok) expectTyped(count.error, 'numaNodeCount');
        else expect(Number.isInteger(count.value) && count.value >= 1).toBe(true);
        const par = attempt(() => availableParallelism(real(o) as never));
        if (!par.ok) expectTyped(par.error, 'availableParallelism');
        else expect(par.value.value).toBeGreaterThanOrEqual(1);
      }),
      runs(120),
    );
  });

  it('pinToNumaNode / pinToCpus: a pin that unpins back to the same affinity, or a typed error and no change', () => {
    const before = getAffinity();
    const pinOptions = optionsOf({ scope: field(fc.constantFrom('thread', 'process')), memory: field(fc.constantFrom('preferred', 'bind', 'none')) });
    const cpus = fc.oneof(fc.subarray(allowed, { minLength: 1 }), listOf(field(fc.constantFrom(...allowed)), { maxLength: 4 }), anyValue);
    fc.assert(
      fc.property(field(fc.constantFrom(...nodeIds)), cpus, pinOptions, (node, list, o) => {
        for (const [what, pin] of [
          ['pinToNumaNode', () => pinToNumaNode(real(node) as number, real(o) as never)],
          ['pinToCpus', () => pinToCpus(real(list) as number[], real(o) as never)],
        ] as const) {
          const r = attempt(pin);
          if (r.ok) {
            expect(r.value.cpus.length).toBeGreaterThan(0);
            expect(r.value.cpus.every((c) => allowed.includes(c))).toBe(true);
            r.value.unpin();
          } else {
            expectTyped(r.error, what);
          }
          expect(getAffinity()).toEqual(before);
        }
      }),
      runs(150),
    );
  });

  it('allocOnNode / pageNodes / isMemoryLocal / movePages: placed memory and placements, or typed errors', () => {
    const bytes = fc.oneof(fc.integer({ min: 1, max: 1 << 16 }), fc.constant(memNode.memoryBytes + 4096), anyValue.filter(notABigCount(1 << 16)));
    const node = fc.oneof(field(fc.constantFrom(...nodeIds)), listOf(field(fc.constantFrom(...nodeIds)), { maxLength: 3 }));
    const allocOptions = optionsOf({ policy: field(fc.constantFrom('bind', 'preferred', 'interleave')) });
    fc.assert(
      fc.property(bytes, node, allocOptions, fc.oneof(buffers, anyValue), field(fc.constantFrom(...nodeIds)), (size, where, o, bufferRecipe, target) => {
        const buffer = real(bufferRecipe);
        const a = attempt(() => allocOnNode(real(size) as number, real(where) as number, real(o) as never));
        if (a.ok) {
          expect(a.value).toBeInstanceOf(ArrayBuffer);
          expect(a.value.byteLength).toBeGreaterThan(0);
        } else expectTyped(a.error, 'allocOnNode');
        const p = attempt(() => pageNodes(buffer as ArrayBuffer));
        if (p.ok) {
          expect(p.value.pages).toBeInstanceOf(Int32Array);
          expect(p.value.notPresent).toBeLessThanOrEqual(p.value.pages.length);
          expect(p.value.pageSize).toBeGreaterThan(0);
        } else expectTyped(p.error, 'pageNodes');
        const local = attempt(() => isMemoryLocal(buffer as ArrayBuffer, real(target) as number));
        if (local.ok) expect(typeof local.value).toBe('boolean');
        else expectTyped(local.error, 'isMemoryLocal');
        const moved = attempt(() => movePages(buffer as ArrayBuffer, real(target) as number));
        if (moved.ok) expect(moved.value.pages).toBeInstanceOf(Int32Array);
        else expectTyped(moved.error, 'movePages');
      }),
      runs(150),
    );
  });
});

// ------------------------------------------------------------------ NativeRuntime

describe('property: createNativeRuntime and spawnNative', () => {
  it('createNativeRuntime: a runtime of the Ps asked for, or a typed error and no thread started', () => {
    const small = (max: number) => fc.integer({ min: 1, max });
    const placementEntry = optionsOf({ node: field(fc.constantFrom(...nodeIds)), cpus: field(fc.subarray(allowed, { minLength: 1 })) }, ['node']);
    const placementList = listOf(placementEntry, { minLength: 1, maxLength: 3 });
    const common = {
      stealPolicy: field(fc.constantFrom('hierarchical', 'flat')),
      stats: field(fc.boolean()),
      timingSampleShift: field(fc.integer({ min: 0, max: 20 })),
      sysmon: field(fc.boolean()),
      hogThresholdMs: field(fc.double({ min: 0.001, max: 1000, noNaN: true })),
    };
    const virtualTopology = field(optionsOf({ nodes: field(small(2), { bigLimit: 2 }), workersPerNode: field(small(2), { bigLimit: 2 }) }, ['nodes', 'workersPerNode']));
    // A virtual topology excludes workers, placement and pin: mostly apart, sometimes together.
    const options = fc.oneof(optionsOf({ ...common, virtualTopology }, ['virtualTopology']), optionsOf({
      workers: field(fc.oneof(small(3), fc.constant('auto')), { bigLimit: 8 }),
      placement: field(fc.oneof(fc.constant('spread'), placementList.valid), { invalid: fc.oneof(placementList, fc.constant([])) }),
      pin: field(fc.constantFrom('node', 'cpu', 'none')),
      ...common,
      virtualTopology: field(fc.constant(undefined), { invalid: virtualTopology }),
    }));
    fc.assert(
      fc.property(options, (o) => {
        const threads = threadCount();
        const r = attempt(() => createNativeRuntime(real(o) as never));
        if (!r.ok) {
          expectTyped(r.error, 'createNativeRuntime');
          // None started: no more threads than before (a thread of Node's own may exit meanwhile: CI once read 15 after 16).
          expect(threadCount()).toBeLessThanOrEqual(threads);
          return;
        }
        try {
          const t = r.value.topology();
          expect(r.value.size).toBe(t.workers.length);
          expect(r.value.size).toBeGreaterThanOrEqual(1);
          expect(r.value.size).toBeLessThanOrEqual(8);
          expect([...r.value.nodes].sort()).toEqual([...new Set(t.workers.map((w) => w.node))].sort());
        } finally {
          r.value.destroy();
        }
      }),
      runs(120),
    );
  });

  let rt: NativeRuntime;
  beforeAll(() => {
    rt = createNativeRuntime({ virtualTopology: { nodes: 2, workersPerNode: 1 } });
  });
  afterAll(() => rt?.destroy());

  it('prepareChaseBuffer: prepares a buffer of at least one cache line, or a typed error', () => {
    fc.assert(
      fc.property(fc.oneof(buffers, anyValue), field(fc.integer({ min: 0, max: 2 ** 31 })), (buffer, seed) => {
        const r = attempt(() => prepareChaseBuffer(real(buffer) as ArrayBuffer, real(seed) as number));
        if (r.ok) expect(r.value).toBeUndefined();
        else expectTyped(r.error, 'prepareChaseBuffer');
      }),
      runs(100),
    );
  });

  it('spawnNative: completes the tasks asked for, or rejects typed with nothing run', async () => {
    const ns = field(fc.integer({ min: 0, max: 20_000 }), { bigLimit: 1e6 });
    const buffer = field(buffers);
    const steps = field(fc.integer({ min: 1, max: 64 }), { bigLimit: 10_000 });
    // Mostly the params of the kind (each kind takes its own), sometimes any params for any kind.
    const kindAndParams = fc.oneof(
      fc.tuple(fc.constant('noop'), optionsOf({})),
      fc.tuple(fc.constant('spin'), optionsOf({ ns }, ['ns'])),
      fc.tuple(fc.constant('touch'), optionsOf({ buffer }, ['buffer'])),
      fc.tuple(fc.constant('chase'), optionsOf({ buffer, steps }, ['buffer'])),
      fc.tuple(field(fc.constantFrom('noop', 'spin', 'touch', 'chase')), optionsOf({ ns, buffer, steps })),
    );
    const options = optionsOf({
      count: field(fc.integer({ min: 1, max: 50 }), { bigLimit: 1000 }),
      node: field(fc.constantFrom(0, 1), { invalid: fc.constant(2) }),
      worker: field(fc.constantFrom(0, 1), { invalid: fc.constant(2) }),
      inside: field(fc.boolean()),
    });
    await fc.assert(
      fc.asyncProperty(kindAndParams, options, async ([k, p], o) => {
        await rt.idle();
        const before = rt.stats().executed;
        let call: Promise<unknown> | undefined;
        const sync = attempt(() => (call = rt.spawnNative(real(k) as 'noop', real(p) as never, real(o) as never)));
        expect(sync.ok, 'spawnNative never throws').toBe(true);
        const r = await attemptAsync(() => call!);
        await rt.idle();
        if (r.ok) {
          const v = r.value as { count: number; elapsedNs: number };
          expect(Number.isInteger(v.count) && v.count >= 1 && v.count <= 50).toBe(true);
          expect(v.elapsedNs).toBeGreaterThanOrEqual(0);
          expect(rt.stats().executed - before).toBeGreaterThanOrEqual(v.count);
        } else {
          expectTyped(r.error, 'spawnNative');
          expect(rt.stats().executed).toBe(before);
        }
      }),
      runs(150),
    );
  });
});

// ------------------------------------------------------------------ Runtime

describe('property: Runtime.start, spawn and spawnMany', () => {
  it('Runtime.start: a runtime that runs a task, or a typed error and no worker started', async () => {
    const small = (max: number) => fc.integer({ min: 1, max });
    const placementEntry = optionsOf({ node: field(fc.constantFrom(...nodeIds)), cpus: field(fc.subarray(allowed)) }, ['node']);
    const placementList = listOf(placementEntry, { minLength: 1, maxLength: 2 });
    const options = optionsOf(
      {
      filename: field(fc.constantFrom(ESM, pathToFileURL(ESM), pathToFileURL(ESM).href), { invalid: fc.constantFrom('http://example.com/t.mjs', '') }),
      workers: field(fc.oneof(small(2), fc.constant('auto')), { bigLimit: 4 }),
      placement: field(fc.oneof(fc.constantFrom('spread', 'cpu', 'none'), placementList.valid), { invalid: placementList }),
      stealPolicy: field(fc.constantFrom('hierarchical', 'flat')),
      maxQueue: field(fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.constantFrom('auto', Infinity))),
      concurrentTasksPerWorker: field(small(64)),
      idleSpinMicros: field(fc.integer({ min: 0, max: 100 }), { bigLimit: 1000 }),
      tasksPerTurn: field(small(128)),
      resourceLimits: field(optionsOf({ maxOldGenerationSizeMb: field(fc.integer({ min: 64, max: 256 })), stackSizeMb: field(fc.integer({ min: 1, max: 8 })) })),
      env: field(fc.dictionary(fc.stringMatching(/^[A-Z_]{1,8}$/), fc.string({ maxLength: 8 }), { maxKeys: 3 })),
      workerData: field(fc.jsonValue({ maxDepth: 2 })),
      execArgv: field(fc.constantFrom([], ['--no-warnings']), { invalid: fc.constant(['--not-a-node-flag']) }),
      restartWorkers: field(fc.boolean()),
      hogThresholdMs: field(fc.double({ min: 0.001, max: 1000, noNaN: true })),
      },
      ['filename'],
    );
    await fc.assert(
      fc.asyncProperty(options, async (o) => {
        const threads = threadCount();
        const r = await attemptAsync(() => Runtime.start(real(o) as never));
        if (!r.ok) {
          expectTyped(r.error, 'Runtime.start');
          // None started: no more threads than before (a thread of Node's own may exit meanwhile: CI once read 15 after 16).
          expect(threadCount()).toBeLessThanOrEqual(threads);
          return;
        }
        try {
          expect(r.value.workers.length).toBeGreaterThanOrEqual(1);
          expect(r.value.tasks).toContain('add');
          expect(await r.value.spawn('add', [2, 3])).toBe(5);
        } finally {
          await r.value.destroy();
        }
      }),
      { ...runs(30), endOnFailure: true },
    );
  });

  let rt: Runtime;
  beforeAll(async () => {
    rt = await Runtime.start({ filename: ESM, workers: 2 });
  }, 60_000);
  afterAll(async () => rt?.destroy());

  const counts = () => ({ submitted: rt.stats().externalSubmitted, pending: rt.pending, queued: rt.queueSize });
  /**
   * What 'echo' (`(...args) => args`) must give back: the structured clone of the argument list,
   * spread (holes of the list itself become undefined), or a refusal when there is no clone.
   */
  const cloneOf = (v: unknown): Outcome<unknown> => attempt(() => [...(structuredClone(v) as unknown[])]);
  const argument = fc.oneof(
    { weight: 3, arbitrary: fc.anything({ maxDepth: 3, withBigInt: true, withNullPrototype: true, withBoxedValues: true, withMap: true, withSet: true, withTypedArray: true, withSparseArray: true, withDate: true }) },
    { weight: 1, arbitrary: edgeNumbers },
    { weight: 1, arbitrary: hostileObjects },
  );
  const transferLists = lazies([
    ['[ArrayBuffer(8)]', () => [new ArrayBuffer(8)]],
    ['[]', () => []],
  ]);
  const badTransferLists = lazies([
    ['[Uint8Array(8)]', () => [new Uint8Array(8)]],
    ['[1]', () => [1]],
    ['[ab, ab]', () => {
      const ab = new ArrayBuffer(8);
      return [ab, ab];
    }],
    ["'x'", () => 'x'],
  ]);
  const spawnOptions = optionsOf({
    node: field(fc.constantFrom(...nodeIds), { invalid: fc.constantFrom(nodeIds.length, 2 ** 32) }),
    transfer: field(transferLists, { invalid: badTransferLists }),
    signal: field(lazies([['a signal', () => new AbortController().signal]])),
    abort: field(fc.constantFrom('signal', 'terminate')),
  });
  const taskName = fc.oneof({ weight: 4, arbitrary: fc.constant('echo') }, { weight: 1, arbitrary: fc.constantFrom('notAFunction', 'nope') }, { weight: 1, arbitrary: anyValue });

  /** A settled spawn of 'echo': its arguments back, or a typed refusal and nothing queued. */
  function checkEcho(outcome: Outcome<unknown>, expected: Outcome<unknown> | undefined, what: string): void {
    if (outcome.ok) {
      if (!expected?.ok) throw new Error(`${what}: resolved, but structuredClone refuses the arguments`);
      if (!sameClone(outcome.value, expected.value)) throw new Error(`${what}: the round trip changed the arguments`);
    } else {
      expectTyped(outcome.error, what);
    }
  }

  it('spawn: the arguments round-trip through a task, or a typed rejection with nothing queued', async () => {
    await fc.assert(
      fc.asyncProperty(taskName, fc.oneof(fc.array(argument, { maxLength: 4 }), anyValue), spawnOptions, async (nameRecipe, argsRecipe, o) => {
        const name = real(nameRecipe);
        const args = real(argsRecipe);
        const before = counts();
        const expected = name === 'echo' && isList(args) ? cloneOf(args) : undefined;
        let call: Promise<unknown> | undefined;
        const sync = attempt(() => (call = rt.spawn(name as string, args as unknown[], real(o) as never)));
        expect(sync.ok, 'spawn never throws').toBe(true);
        const r = await attemptAsync(() => call!);
        checkEcho(r, expected, 'spawn');
        if (!r.ok) expect({ ...counts(), submitted: rt.stats().externalSubmitted }).toEqual(before);
        expect(rt.pending).toBe(0);
      }),
      runs(200),
    );
  });

  it('spawnMany: one result per argument list, or typed rejections with nothing queued', async () => {
    const argsList = fc.oneof({ weight: 3, arbitrary: fc.array(fc.oneof({ weight: 5, arbitrary: fc.array(argument, { maxLength: 3 }) }, { weight: 1, arbitrary: anyValue }), { maxLength: 5 }) }, { weight: 1, arbitrary: anyValue });
    const manyOptions = optionsOf({ node: field(fc.constantFrom(...nodeIds), { invalid: fc.constantFrom(nodeIds.length, 2 ** 32) }) });
    await fc.assert(
      fc.asyncProperty(taskName, argsList, manyOptions, async (nameRecipe, listsRecipe, o) => {
        const name = real(nameRecipe);
        const lists = real(listsRecipe);
        const before = counts();
        const r = attempt(() => rt.spawnMany(name as string, lists as unknown[][], real(o) as never));
        if (!r.ok) throw new Error(`spawnMany threw: ${describeError(r.error)}`);
        const settled = await Promise.all(r.value.map((p) => attemptAsync(() => p)));
        const length = attempt(() => (isList(lists) ? lists.length : -1));
        if (length.ok && length.value >= 0) expect(settled.length === length.value || (settled.length === 1 && !settled[0]!.ok)).toBe(true);
        else expect(settled).toHaveLength(1);
        if (settled.some((s) => !s.ok)) {
          for (const s of settled) expect(s.ok).toBe(false);
          for (const s of settled) if (!s.ok) expectTyped(s.error, 'spawnMany');
          expect(counts()).toEqual(before);
        } else {
          settled.forEach((s, i) => checkEcho(s, name === 'echo' ? cloneOf((lists as unknown[][])[i]) : undefined, `spawnMany[${i}]`));
        }
        expect(rt.pending).toBe(0);
      }),
      runs(150),
    );
  });
});

// ------------------------------------------------------------------ codec

describe('property: codec round trips', () => {
  it('any value: decode(encode(v)) equals structuredClone(v), or a DATA_CLONE TypeError', () => {
    const w = new Writer(Buffer.alloc(64 * 1024));
    fc.assert(
      fc.property(fc.oneof({ weight: 5, arbitrary: fc.anything({ maxDepth: 4, withBigInt: true, withNullPrototype: true, withBoxedValues: true, withMap: true, withSet: true, withTypedArray: true, withSparseArray: true, withDate: true }) }, { weight: 1, arbitrary: edgeNumbers }, { weight: 1, arbitrary: hostileObjects }), (recipe) => {
        const value = real(recipe);
        const expected = attempt(() => structuredClone(value));
        w.reset();
        const encoded = attempt(() => encodeValue(w, value));
        if (!encoded.ok) {
          expectTyped(encoded.error, 'encodeValue');
          expect((encoded.error as { code?: string }).code).toBe(ErrorCodes.DATA_CLONE);
          return;
        }
        if (!expected.ok) throw new Error('encodeValue accepted a value structuredClone refuses');
        const decoded = decodeValue(w.buf, 0, w.pos);
        if (!sameClone(decoded, expected.value)) throw new Error('the round trip changed the value');
      }),
      runs(400),
    );
  });
});

// What a failed task's promise rejects with: the worker encodes the thrown value (encodeError),
// the spawner decodes it (decodeError). Both run here, in-process, on hand-built values.
describe('codec: thrown values round trip', () => {
  const roundTrip = (thrown: unknown): unknown => {
    const w = new Writer(Buffer.alloc(64));
    encodeError(w, thrown);
    return decodeError(w.buf, 0, w.pos);
  };
  const cloneErrorOf = (v: unknown): Error & { code?: string } => {
    expect(v).toBeInstanceOf(TypeError);
    expect((v as { code?: string }).code).toBe(ErrorCodes.DATA_CLONE);
    return v as Error & { code?: string };
  };

  it('an Error keeps its class, name, message, stack, own properties and cause chain', () => {
    const inner = new TypeError('inner', { cause: 42 });
    const err = Object.assign(new RangeError('outer', { cause: inner }), { code: 'E_X', n: 5, list: [1, 'two'] });
    const back = roundTrip(err) as RangeError & { code: string; n: number; list: unknown[]; cause: TypeError & { cause: unknown } };
    expect(back).toBeInstanceOf(RangeError);
    expect([back.name, back.message, back.stack]).toEqual(['RangeError', 'outer', err.stack]);
    expect([back.code, back.n, back.list]).toEqual(['E_X', 5, [1, 'two']]);
    expect(Object.keys(back).sort()).toEqual(['code', 'list', 'n']);
    expect(back.cause).toBeInstanceOf(TypeError);
    expect([back.cause.message, back.cause.cause]).toEqual(['inner', 42]);
    expect(roundTrip(new Error('no cause'))).not.toHaveProperty('cause');
    // Each class by its name; another name on an Error.
    for (const C of [Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError]) expect(roundTrip(new C('m'))).toBeInstanceOf(C);
    class AppError extends Error {
      override name = 'AppError';
    }
    const app = roundTrip(new AppError('m')) as Error;
    expect([Object.getPrototypeOf(app), app.name, app.message]).toEqual([Error.prototype, 'AppError', 'm']);
    expect(Object.getOwnPropertyDescriptor(app, 'name')?.enumerable).toBe(true);
  });

  it('an unreadable or unclonable property: left out, or sent as its string; odd names and messages as text', () => {
    const err = new Error('m') as Error & Record<string, unknown>;
    err.fn = function f() {};
    Object.defineProperty(err, 'boom', { enumerable: true, get: () => { throw new Error('getter'); } });
    Object.defineProperty(err, 'name', { value: undefined, enumerable: false });
    err.message = 7 as never;
    const back = roundTrip(err) as Error & Record<string, unknown>;
    expect(back.fn).toBe(String(err.fn));
    expect(back).not.toHaveProperty('boom');
    expect(back.name).toBe('Error');
    expect(back.message).toBe('7');
  });

  it('a cause chain (a cycle included) is cut after 16 links', () => {
    const err = new Error('loop');
    // As `new Error(m, { cause })` makes it: not enumerable (an enumerable one is also an own property to copy).
    Object.defineProperty(err, 'cause', { value: err, writable: true, configurable: true, enumerable: false });
    let links = 0;
    for (let e = roundTrip(err) as { cause?: unknown }; 'cause' in e; e = e.cause as { cause?: unknown }) links++;
    expect(links).toBe(16);
  });

  it('other values travel as they are; what cannot be cloned becomes a DATA_CLONE TypeError naming it', () => {
    expect(roundTrip(42)).toBe(42);
    expect(roundTrip('text')).toBe('text');
    expect(roundTrip(undefined)).toBeUndefined();
    expect(roundTrip({ a: [1, { b: null }] })).toEqual({ a: [1, { b: null }] });
    const sym = cloneErrorOf(roundTrip(Symbol('sym')));
    expect(sym.message).toBe('hwsq: value could not be cloned: the task threw Symbol(sym), which cannot be sent to another thread');
    const odd = cloneErrorOf(roundTrip({ f() {}, toString() { throw new Error('no'); } }));
    expect(odd.message).toContain('the task threw a value of type object,');
    const { proxy, revoke } = Proxy.revocable(new Error('revoked'), {});
    revoke();
    expect(cloneErrorOf(roundTrip(proxy)).message).toContain('the task threw ');
  });

  it('the properties of a decoded error have the attributes of a native Error\'s', () => {
    const attrs = (o: object, k: string) => {
      const d = Object.getOwnPropertyDescriptor(o, k)!;
      return [d.writable, d.configurable, d.enumerable];
    };
    const native = Object.assign(new TypeError('m', { cause: new Error('c') }), { code: 'E' });
    const back = roundTrip(native) as Error;
    for (const k of ['message', 'stack', 'cause', 'code']) expect(attrs(back, k), k).toEqual(attrs(native, k));
    const named = roundTrip(Object.defineProperty(new Error('m'), 'name', { value: 'Named' })) as Error;
    // As on a native error, the class's name and no own one.
    expect(Object.hasOwn(back, 'name')).toBe(false);
    // A stack that is not a string is not sent: the decoded error keeps its own.
    const noStack = roundTrip(Object.defineProperty(new Error('m'), 'stack', { value: 5 })) as Error;
    expect(typeof noStack.stack).toBe('string');
    // An error whose own keys cannot be listed (a Proxy): no properties, the rest as usual.
    const unlisted = roundTrip(new Proxy(new RangeError('m'), { ownKeys: () => { throw new Error('trap'); } })) as Error;
    expect([unlisted instanceof RangeError, unlisted.message, Object.keys(unlisted)]).toEqual([true, 'm', []]);
    expect(attrs(named, 'name')).toEqual([true, true, false]);
    // The DATA_CLONE TypeError of a value that does not clone: code as a coded error has it, cause as a native one.
    const w = new Writer(Buffer.alloc(64));
    const thrown = attempt(() => encodeValue(w, { f() {} }));
    expect(thrown.ok).toBe(false);
    const err = (thrown as { error: Error }).error;
    cloneErrorOf(err);
    expect(attrs(err, 'code')).toEqual([true, true, true]);
    expect(attrs(err, 'cause')).toEqual([true, true, false]);
  });

  it('a cause that does not clone travels as its text', () => {
    const fn = () => 1;
    const back = roundTrip(new Error('m', { cause: fn })) as Error;
    expect([back.message, back.cause]).toEqual(['m', String(fn)]);
  });

  it('a record that is not what encodeError writes: name and message as Error and empty text, no props', () => {
    const w = new Writer(Buffer.alloc(64));
    encodeValue(w, { name: 5, message: {}, stack: undefined, props: null, isError: true });
    const err = decodeError(w.buf, 0, w.pos) as Error;
    expect(err).toBeInstanceOf(Error);
    expect([err.name, err.message, Object.keys(err)]).toEqual(['Error', '', []]);
    w.reset();
    encodeValue(w, { isError: 'no' });
    expect(decodeError(w.buf, 0, w.pos)).toEqual({ isError: 'no' });
    w.reset();
    encodeValue(w, { name: 'RangeError', message: 'm', isError: true, props: 'ab' });
    expect(Object.keys(decodeError(w.buf, 0, w.pos) as object)).toEqual([]);
    w.reset();
    encodeValue(w, null);
    expect(decodeError(w.buf, 0, w.pos)).toBeNull();
  });

  it('bytes that do not decode: a DATA_CLONE TypeError whose cause is the decoder\'s error', () => {
    const bad = Buffer.from([1, 0xff, 0xff, 0xff]);
    const err = cloneErrorOf(decodeError(bad, 0, bad.length));
    expect(err.message).toMatch(/^hwsq: value could not be cloned: the task failed and its error could not be read back: /);
    expect(err.cause).toBeDefined();
  });
});

describe('codec: what an encoding holds on to', () => {
  it('w.sabs lists the SharedArrayBuffers of the last encoding only, none after a refused one', () => {
    const w = new Writer(Buffer.alloc(64));
    const sab = new SharedArrayBuffer(8);
    encodeValue(w, { s: sab });
    expect(w.sabs).toEqual([sab]);
    encodeValue(w, { n: 1 });
    expect(w.sabs).toEqual([]);
    encodeValue(w, [sab]);
    expect(attempt(() => encodeValue(w, { s: sab, f() {} })).ok).toBe(false);
    expect(w.sabs).toEqual([]);
  });

  it('transfer: the listed ArrayBuffers are detached once their bytes are in the payload', () => {
    const w = new Writer(Buffer.alloc(64));
    const ab = new Uint8Array([1, 2, 3]).buffer;
    const kept = new Uint8Array([4]).buffer;
    encodeValue(w, { a: new Uint8Array(ab), b: new Uint8Array(kept) }, [ab]);
    expect([ab.byteLength, kept.byteLength]).toEqual([0, 1]);
    const back = decodeValue(w.buf, 0, w.pos) as { a: Uint8Array; b: Uint8Array };
    expect([[...back.a], [...back.b]]).toEqual([[1, 2, 3], [4]]);
  });
});

describe('codec: move() marks a task\'s result for transfer', () => {
  it('asMoved recognizes a move() from any copy of the module, and nothing else', () => {
    const buf = new ArrayBuffer(8);
    const value = { data: new Uint8Array(buf) };
    const moved = asMoved(move(value, [buf]));
    expect(moved).toBeDefined();
    expect(moved!.value).toBe(value);
    expect(moved!.transfer).toEqual([buf]);
    // Another copy of codec.ts (the ESM and CJS builds) marks it with the same registered symbol.
    const other = { [Symbol.for('hwsq.moved')]: true, value: 1, transfer: [] };
    expect(asMoved(other)).toBe(other);
    for (const v of [null, undefined, 0, 'x', {}, { [Symbol.for('hwsq.moved')]: 'yes' }, () => {}]) expect(asMoved(v)).toBeUndefined();
    const trap = new Proxy({}, { get: () => { throw new Error('trap'); } });
    expect(asMoved(trap)).toBeUndefined();
  });
});

// ------------------------------------------------------------------ metrics

describe('property: registerMetrics and serveMetrics options', () => {
  let rt: NativeRuntime;
  beforeAll(() => {
    rt = createNativeRuntime({ virtualTopology: { nodes: 1, workersPerNode: 1 } });
  });
  afterAll(() => rt?.destroy());

  const metricFields = {
    prefix: field(fc.oneof(fc.constantFrom('', 'hwsq_', 'app:x_'), fc.stringMatching(/^[a-z_][a-z0-9_]{0,7}$/)), { invalid: fc.string({ maxLength: 8 }) }),
    labels: field(fc.dictionary(fc.constantFrom('app', 'zone', 'team'), fc.string({ maxLength: 6 }), { maxKeys: 3 }), {
      invalid: fc.dictionary(fc.oneof(fc.constantFrom('worker', 'le', '__x'), fc.string({ maxLength: 6 })), anyValue, { minKeys: 1, maxKeys: 3 }),
    }),
    latencyBuckets: field(fc.constantFrom([0.001, 0.01, 0.1], [1e-6, 10]), { invalid: fc.array(fc.oneof(fc.double({ min: 1e-6, max: 10, noNaN: true }), edgeNumbers), { maxLength: 4 }) }),
    runTimeBuckets: field(fc.constantFrom([0.001, 0.01]), { invalid: fc.constantFrom([0.01, 0.001], []) }),
  };

  it('podIdentity / schedulerJson: a document, or a typed error', () => {
    const env = fc.oneof(
      fc.dictionary(fc.constantFrom('POD_NAME', 'POD_UID', 'POD_NAMESPACE', 'NODE_NAME', 'CPU_LIMIT', 'HOSTNAME'), fc.oneof(fc.string({ maxLength: 12 }), anyValue), { maxKeys: 4 }),
      anyValue,
    );
    fc.assert(
      fc.property(env, fc.oneof(fc.constant(rt as unknown), anyValue), (e, source) => {
        const id = attempt(() => podIdentity(real(e) as NodeJS.ProcessEnv));
        if (id.ok) expect(typeof id.value.pod_id).toBe('string');
        else expectTyped(id.error, 'podIdentity');
        const doc = attempt(() => schedulerJson(real(source) as NativeRuntime, id.ok ? id.value : undefined));
        if (doc.ok) expect(doc.value.workers_total).toBe(rt.size);
        else expectTyped(doc.error, 'schedulerJson');
      }),
      runs(150),
    );
  });

  it('registerMetrics: a registration that unregisters cleanly, or a typed error and nothing registered', () => {
    const options = optionsOf({ ...metricFields, registry: field(lazies([['a Registry', () => new Registry()]])) });
    fc.assert(
      fc.property(options, (o) => {
        // Without a registry option it registers in prom-client's global one.
        const global = globalRegistry.getMetricsAsArray().length;
        const r = attempt(() => registerMetrics(rt, real(o) as never));
        if (r.ok) {
          const names = [...r.value.names];
          expect(names.length).toBeGreaterThan(10);
          expect(names.every((n) => r.value.registry.getSingleMetric(n) !== undefined)).toBe(true);
          r.value.unregister();
          expect(names.some((n) => r.value.registry.getSingleMetric(n) !== undefined)).toBe(false);
        } else {
          expectTyped(r.error, 'registerMetrics');
        }
        expect(globalRegistry.getMetricsAsArray()).toHaveLength(global);
      }),
      runs(150),
    );
  });

  it('serveMetrics: a server that answers /metrics, or a typed rejection (or a listen error of the OS) and nothing listening', async () => {
    const options = optionsOf({
      ...metricFields,
      registry: field(lazies([['a Registry', () => new Registry()]])),
      port: field(fc.constant(0)),
      host: field(fc.constantFrom('127.0.0.1', 'localhost'), { invalid: fc.constantFrom('::1', '', 'no.such.host.invalid') }),
      headersTimeoutMs: field(fc.integer({ min: 1000, max: 10_000 }), { invalid: fc.integer({ min: -5, max: 99 }) }),
      idleTimeoutMs: field(fc.integer({ min: 1000, max: 10_000 }), { invalid: fc.integer({ min: -5, max: 99 }) }),
      maxConnections: field(fc.integer({ min: 1, max: 100 })),
    });
    await fc.assert(
      fc.asyncProperty(options, async (o) => {
        const r = await attemptAsync(() => serveMetrics(rt, real(o) as never));
        if (!r.ok) {
          // A host the OS cannot bind (no IPv6 here, say) fails in listen() with its own code.
          if ((r.error as { syscall?: string }).syscall === 'listen' || (r.error as { syscall?: string }).syscall === 'getaddrinfo') return;
          expectTyped(r.error, 'serveMetrics');
          return;
        }
        try {
          const res = await fetch(`${r.value.url}/metrics`);
          expect(res.status).toBe(200);
          await res.text();
        } finally {
          await r.value.close();
        }
      }),
      { ...runs(40), endOnFailure: true },
    );
  });
});

describe('property: the hwsq command line', () => {
  // Commands that end by themselves (no server, no benchmark, no `run` of a command), each with a
  // slot for an arbitrary word. Any argv ends in a while with an exit code (0, 1 or 4, as the
  // README gives them), a message on a failure, and no stack trace, signal or hang: before this
  // test, `hwsq report /dev/zero` read until memory ran out.
  const bin = path.join(root, 'bin', 'hwsq.js');
  const PATHS = ['../../../../etc/passwd', '/dev/zero', '/dev/null', '/dev/stdin', '/proc/self/mem', '/proc/self/status', '/tmp', '/', '/nonexistent/x', '', 'x'.repeat(5000)];
  const WORDS = ['-1', '0', '1', '1e400', 'NaN', '0x10', '99999999999999999999', '-0', '1.5', ' 2', 'Infinity', 'auto', '--', '-', '%s%n', 'http://127.0.0.1:1', '{"tool":"hwsq"}'];
  const word = fc.oneof({ arbitrary: fc.constantFrom(...PATHS, ...WORDS), weight: 3 }, { arbitrary: fc.string({ maxLength: 12 }).map((s) => s.replace(/\0/g, '')), weight: 1 });
  const COMMANDS = [
    ['topology'], ['topology', '--json'], ['topology', '--fsroot'], ['report'], ['report', '/dev/null', '-o'], ['ps'], ['ps', '--json'], ['stats', '--pid'],
    ['stats', '--json', '--runtime', '1', '--pid'], ['top', '--count', '1', '--pid'], ['top', '--count', '1', '--url'], ['top', '--pid', 'auto', '--interval'],
    ['help'], ['metrics', 'serve', '--pid'], ['bench'], ['bench', 'spawn', '--reps'], ['bench', 'spawn', '--workers'], [],
  ];

  let shmDir = '';
  beforeAll(() => {
    shmDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hwsq-cli-prop-'));  // no process publishes here
  });
  afterAll(() => fs.rmSync(shmDir, { recursive: true, force: true }));

  function expectOrderlyExit(args: string[]): void {
    // `bench spawn --reps 1` would run the benchmark: a word its parser accepts (intArg: decimal
    // digits, at least 1) is made invalid there.
    if (args[0] === 'bench' && args.length === 4 && /^\d{1,16}$/.test(args[3]!) && Number(args[3]) >= 1) args[3] = '0';
    // `metrics serve --pid auto` is a sidecar: it waits for a process to publish, by design.
    if (args[0] === 'metrics' && /^\s*auto\s*$/i.test(args[3]!)) args[3] = '-1';
    const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HWSQ_SHM_DIR: shmDir } });
    const where = `hwsq ${JSON.stringify(args).slice(0, 300)}: status ${r.status} signal ${r.signal}\n${r.stderr.slice(0, 1000)}`;
    expect(r.error, where).toBeUndefined();
    expect(r.signal, where).toBeNull();
    expect([0, 1, 4], where).toContain(r.status);
    expect(r.stderr, where).not.toMatch(/\n\s+at .+:\d+:\d+\)?\n/);
    if (r.status !== 0) expect(r.stderr.trim().length, where).toBeGreaterThan(0);
  }

  it('every command that reads a file, given each kind of path (devices, procfs, directories, nothing)', () => {
    for (const cmd of [['report'], ['topology', '--fsroot']]) for (const p of PATHS) expectOrderlyExit([...cmd, p]);
  }, 120_000);

  it('any argv: an exit code and a message, never a crash, a stack trace or a hang', () => {
    fc.assert(
      fc.property(fc.constantFrom(...COMMANDS), word, (cmd, w) => expectOrderlyExit([...cmd, w])),
      runs(80),
    );
  }, 180_000);
});
