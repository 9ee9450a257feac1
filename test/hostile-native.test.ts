// The native layer against a hostile or careless caller: JS memory native tasks and probes keep
// using after the call returns (resized, transferred, collected), calls after close()/destroy(),
// integers that do not fit the native types. Whatever crashes the process on a regression runs in
// a child process, so that the test fails instead of taking vitest down. Children load lib/
// bundled by esbuild into build-test/ (git-ignored), so these tests do not depend on dist/.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { buildSync } from 'esbuild';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { allocOnNode, createNativeRuntime, getAffinity, pageNodes, topology, type NativeRuntime, type NativeRuntimeOptions } from '../lib/index';
import { native } from '../lib/core/native';
import { nativeRuntimeBinding, type NativeRuntimeConfig } from '../lib/native-runtime/native-runtime';
import { expectCode, rejectionOf } from './helpers';

const root = path.resolve(__dirname, '..');
let bundle = '';

beforeAll(() => {
  bundle = path.join(root, 'build-test', `hostile-native-${process.pid}.cjs`);
  buildSync({ entryPoints: [path.join(root, 'lib', 'index.ts')], bundle: true, platform: 'node', format: 'cjs', target: 'node20', outfile: bundle, logLevel: 'error' });
  return () => fs.rmSync(bundle, { force: true });
});

const open: NativeRuntime[] = [];
function create(options: NativeRuntimeOptions = { virtualTopology: { nodes: 2, workersPerNode: 1 } }): NativeRuntime {
  const rt = createNativeRuntime(options);
  open.push(rt);
  return rt;
}
afterEach(() => {
  for (const rt of open.splice(0)) rt.destroy();
});

/** Runs a CommonJS script in a child process (hwsq as `lib`); returns its status, signal and output. */
function runChild(script: string, args: string[] = []) {
  const r = spawnSync(process.execPath, [...args, '-e', `const lib = require(process.env.HWSQ_BUNDLE);\n${script}`], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, HWSQ_BUNDLE: bundle, HWSQ_ROOT: root },
  });
  expect(r.error, r.stderr).toBeUndefined();
  return r;
}

function expectClean(r: ReturnType<typeof runChild>, stdout: string): void {
  expect({ status: r.status, signal: r.signal, stdout: r.stdout.trim(), stderr: r.stderr.trim() }).toEqual({ status: 0, signal: null, stdout, stderr: '' });
}

// ES2024 constructor options the TypeScript lib of this project does not declare yet.
type WithMax<T> = new (bytes: number, options: { maxByteLength: number }) => T;
const ResizableAb = ArrayBuffer as unknown as WithMax<ArrayBuffer>;
const GrowableSab = SharedArrayBuffer as unknown as WithMax<SharedArrayBuffer & { grow(bytes: number): void }>;

// The tasks queue behind a spin that keeps the only P busy, so JS changes the buffer while they wait.
const BLOCKED = `
  const rt = lib.createNativeRuntime({ virtualTopology: { nodes: 1, workersPerNode: 1 } });
  const blocker = rt.spawnNative('spin', { ns: 100e6 }, { worker: 0 });
`;

describe('native tasks never touch memory JS freed or moved', () => {
  it('a resizable ArrayBuffer shrunk to 0 while touch and chase tasks are queued', () => {
    const r = runChild(`${BLOCKED}
      (async () => {
        const ab = new ArrayBuffer(16 << 20, { maxByteLength: 16 << 20 });
        const chase = new ArrayBuffer(1 << 20, { maxByteLength: 1 << 20 });
        lib.prepareChaseBuffer(chase, 3);
        const work = [rt.spawnNative('touch', { buffer: ab }, { count: 200 }), rt.spawnNative('chase', { buffer: chase }, { count: 20 })];
        ab.resize(0);
        chase.resize(0);
        await blocker;
        const done = await Promise.all(work);
        await rt.close();
        console.log(done.map((d) => d.count).join(','), ab.byteLength);
      })();`);
    expectClean(r, '200,20 0');
  });

  it('a buffer transferred away (structuredClone, a Worker that exits) and collected while its tasks wait', () => {
    const r = runChild(
      `${BLOCKED}
      const { Worker } = require('node:worker_threads');
      (async () => {
        let cloned = new ArrayBuffer(8 << 20);
        const a = rt.spawnNative('touch', { buffer: new Uint8Array(cloned, 64) }, { count: 100 });
        cloned = structuredClone(cloned, { transfer: [cloned] });  // the task's view is detached now
        cloned = null;
        const posted = new ArrayBuffer(8 << 20);
        const b = rt.spawnNative('touch', { buffer: posted }, { count: 100 });
        const w = new Worker('require("node:worker_threads").parentPort.once("message", () => process.exit(0))', { eval: true });
        w.postMessage(posted, [posted]);
        await new Promise((r) => w.once('exit', r));
        for (let i = 0; i < 5; i++) globalThis.gc();
        await blocker;
        await Promise.all([a, b]);
        await rt.close();
        console.log('ok', posted.byteLength);
      })();`,
      ['--expose-gc'],
    );
    expectClean(r, 'ok 0');
  });

  it('allocOnNode memory moved to another ArrayBuffer (as a task transfer does) and collected stays mapped until the touch tasks end', () => {
    const node = topology().nodes.find((n) => n.hasMemory)!.id;
    const r = runChild(
      `${BLOCKED}
      const js = require(require.resolve('node-gyp-build', { paths: [process.env.HWSQ_ROOT] }))(process.env.HWSQ_ROOT).jsRuntime;
      (async () => {
        let ab = lib.allocOnNode(8 << 20, ${node});
        const work = rt.spawnNative('touch', { buffer: ab }, { count: 100 });
        let moved = js.nodeMemoryAdopt(js.nodeMemoryTake(ab));  // ab is detached, moved holds the pages
        ab = null;
        moved = null;
        for (let i = 0; i < 5; i++) globalThis.gc();
        await new Promise((r) => setTimeout(r, 0));
        for (let i = 0; i < 5; i++) globalThis.gc();
        await blocker;
        console.log((await work).count);
        await rt.close();
      })();`,
      ['--expose-gc'],
    );
    expectClean(r, '100');
  });

  it('memory probes on the thread pool take only memory they can hold in place; allocOnNode memory collected meanwhile stays mapped', () => {
    const node = topology().nodes.find((n) => n.hasMemory)!.id;
    const r = runChild(
      `
      const probes = require(require.resolve('node-gyp-build', { paths: [process.env.HWSQ_ROOT] }))(process.env.HWSQ_ROOT).probes;
      (async () => {
        const out = [];
        const resizable = new ArrayBuffer(1 << 20, { maxByteLength: 1 << 20 });
        for (const call of [() => probes.prepareChase(new Uint8Array(resizable), 1), () => probes.latency({ view: new Uint8Array(resizable), cpu: -1, durationNs: 1e6, samples: 1 })]) {
          try { await call(); out.push('ran'); } catch (e) { out.push(e.name + ' ' + e.code); }
        }
        let ab = lib.allocOnNode(8 << 20, ${node});
        await probes.prepareChase(new Uint8Array(ab), 2);
        const lat = probes.latency({ view: new Uint8Array(ab), cpu: -1, durationNs: 50e6, samples: 2 });
        // Moved away (Node 20), or refused as untransferable while a probe holds it (Node 22+):
        // either way JS then lets it go while the probe still reads it.
        try { ab = structuredClone(ab, { transfer: [ab] }); } catch {}
        ab = null;
        for (let i = 0; i < 5; i++) globalThis.gc();
        out.push((await lat).nsPerLoad.length);
        const sab = new SharedArrayBuffer(1 << 20, { maxByteLength: 4 << 20 });
        out.push(await probes.prepareChase(new Uint8Array(sab), 3));
        console.log(out.join(','));
      })();`,
      ['--expose-gc'],
    );
    expectClean(r, `TypeError ERR_HWSQ_INVALID_ARG_TYPE,TypeError ERR_HWSQ_INVALID_ARG_TYPE,2,${(1 << 20) / 64}`);
  });

  it('a detached buffer has no bytes: a typed error for touch, an empty placement for pageNodes, nothing queued', async () => {
    const rt = create();
    const ab = new ArrayBuffer(4096);
    const view = new Uint32Array(ab, 64);
    structuredClone(ab, { transfer: [ab] });
    for (const buffer of [ab, view]) {
      const err = await rejectionOf(rt.spawnNative('touch', { buffer }));
      expect([err.name, err.code]).toEqual(['RangeError', 'ERR_HWSQ_BAD_SIZE']);
      expect(pageNodes(buffer).pages.length).toBe(0);
    }
    expect(rt.stats().externalSubmitted).toBe(0);
  });

  it('touch results land in the buffer: in place for SharedArrayBuffer (growable too) and allocOnNode memory, copied back for ArrayBuffer', async () => {
    // One P: touches racing on two Ps may lose +1s by design (touchBuffer writes, no RMW), and
    // the counts below are exact.
    const rt = create({ virtualTopology: { nodes: 1, workersPerNode: 1 } });
    const growable = new GrowableSab(64 * 4, { maxByteLength: 64 * 64 });
    const node = topology().nodes.find((n) => n.hasMemory)!.id;
    const buffers = [new SharedArrayBuffer(64 * 4), growable, allocOnNode(64 * 4, node), new ArrayBuffer(64 * 4), new ResizableAb(64 * 4, { maxByteLength: 64 * 8 })];
    for (const b of buffers) {
      await rt.spawnNative('touch', { buffer: b }, { count: 3 });
      const words = new BigUint64Array(b, 0, 32);
      expect([0, 1, 2, 3].map((line) => words[line * 8])).toEqual([3n, 3n, 3n, 3n]);
    }
    // A growable SAB that grows while its tasks run: they keep to the bytes they were given.
    const work = rt.spawnNative('touch', { buffer: growable }, { count: 50 });
    growable.grow(64 * 64);
    await work;
    expect(new BigUint64Array(growable)[0]).toBe(53n);
    expect(new BigUint64Array(growable)[8 * 8]).toBe(0n);
  });
});

describe('calls after close() and destroy()', () => {
  it('idle(), close() and spawns after close() or destroy() settle; nothing aborts', () => {
    const r = runChild(`
      (async () => {
        const out = [];
        const a = lib.createNativeRuntime({ virtualTopology: { nodes: 1, workersPerNode: 2 } });
        await a.spawnNative('noop', {}, { count: 100 });
        await a.close();
        await a.idle();
        await a.idle();
        await a.close();
        out.push(await a.spawnNative('noop').catch((e) => e.code));
        const b = lib.createNativeRuntime({ virtualTopology: { nodes: 1, workersPerNode: 2 } });
        const dropped = b.spawnNative('spin', { ns: 1e6 }, { count: 1000 }).catch((e) => e.name);
        b.destroy();
        await b.idle();
        await b.close();
        b.destroy();
        await b.idle();
        out.push(await dropped, await b.locate().catch((e) => e.code));
        console.log(out.join(' '));
      })();`);
    expectClean(r, 'ERR_HWSQ_RUNTIME_CLOSED AbortError ERR_HWSQ_RUNTIME_CLOSED');
  });

  it('idle() racing close() on many runtimes', () => {
    const r = runChild(`
      (async () => {
        for (let i = 0; i < 30; i++) {
          const rt = lib.createNativeRuntime({ virtualTopology: { nodes: 1, workersPerNode: 2 } });
          rt.spawnNative('spin', { ns: 1e5 }, { count: 50 }).catch(() => {});
          const waits = [rt.idle(), rt.close(), rt.idle()];
          if (i % 2) rt.destroy();
          await Promise.allSettled(waits);
          await rt.idle();
        }
        console.log('ok');
      })();`);
    expectClean(r, 'ok');
  });

  it('process.exit() while native tasks run exits with its code, no signal', () => {
    for (let i = 0; i < 3; i++) {
      const r = runChild(`
        const rt = lib.createNativeRuntime({ workers: 2 });
        rt.spawnNative('spin', { ns: 5e6 }, { count: 1000 });
        rt.idle();
        rt.close();
        setTimeout(() => process.exit(7), 20);`);
      expect({ status: r.status, signal: r.signal }).toEqual({ status: 7, signal: null });
    }
  });
});

describe('integers crossing into C++ are refused, never wrapped', () => {
  it('spawnNative: { worker: 2**32 + 1 }, { node: 2**32 } and other ids beyond 32 bits, nothing queued', async () => {
    const rt = create();
    const cases: [object, string][] = [
      [{ worker: 2 ** 32 + 1 }, 'ERR_HWSQ_UNKNOWN_WORKER'],
      [{ worker: 2 ** 31 }, 'ERR_HWSQ_UNKNOWN_WORKER'],
      [{ worker: 2 ** 32, inside: true }, 'ERR_HWSQ_UNKNOWN_WORKER'],
      [{ node: 2 ** 32 }, 'ERR_HWSQ_UNKNOWN_NODE'],
      [{ node: 2 ** 32 + 1 }, 'ERR_HWSQ_UNKNOWN_NODE'],
      [{ node: Number.MAX_SAFE_INTEGER }, 'ERR_HWSQ_UNKNOWN_NODE'],
    ];
    for (const [options, code] of cases) {
      const err = await rejectionOf(rt.spawnNative('noop', {}, options));
      expect(err, JSON.stringify(options)).toBeInstanceOf(RangeError);
      expect(err.code, JSON.stringify(options)).toBe(code);
    }
    await rt.idle();
    expect(rt.stats().externalSubmitted).toBe(0);
  });

  it('the addon itself refuses what lib/ would let through: node and CPU ids, sizes, counts', async () => {
    const n = native() as unknown as Record<string, (...a: unknown[]) => unknown>;
    const u8 = new Uint8Array(allocOnNode(4096, topology().nodes.find((x) => x.hasMemory)!.id));
    expectCode(() => n.movePages!(u8, 2 ** 32), RangeError, 'ERR_HWSQ_UNKNOWN_NODE');
    expectCode(() => n.allocOnNodes!(4096, 'bind', [2 ** 32]), RangeError, 'ERR_HWSQ_UNKNOWN_NODE');
    expectCode(() => n.allocOnNodes!(-1, 'bind', [0]), RangeError, 'ERR_HWSQ_BAD_SIZE');
    expectCode(() => n.allocOnNodes!(NaN, 'bind', [0]), RangeError, 'ERR_HWSQ_BAD_SIZE');
    const before = getAffinity();
    expectCode(() => n.pin!([2 ** 32 + before[0]!], 'thread', 'none', -1), RangeError, 'ERR_HWSQ_CPU_OUT_OF_RANGE');
    expectCode(() => n.pin!([before[0]!], 'thread', 'bind', 2 ** 32), RangeError, 'ERR_HWSQ_UNKNOWN_NODE');
    expect(getAffinity()).toEqual(before);
    const { NativeRuntime } = nativeRuntimeBinding();
    const config: NativeRuntimeConfig = { workers: 0, placement: null, pin: 'none', policy: 'hierarchical', stats: true, timingSampleShift: 0, sysmon: false, idleSpinNs: 0, hogThresholdNs: null, virtualNodes: 1, virtualWorkersPerNode: 1, numaNode: -1, confineToCaller: false };
    expectCode(() => new NativeRuntime({ ...config, virtualNodes: 2 ** 32 + 1 }), RangeError, 'ERR_HWSQ_INVALID_WORKERS');
    expectCode(() => new NativeRuntime({ ...config, timingSampleShift: 2 ** 32 }), RangeError, 'ERR_HWSQ_INVALID_OPTION');
    for (const idleSpinNs of [-1, 1e8 + 1, NaN, Infinity]) expectCode(() => new NativeRuntime({ ...config, idleSpinNs }), RangeError, 'ERR_HWSQ_INVALID_OPTION');
    expectCode(() => new NativeRuntime({ ...config, virtualNodes: 0, placement: [{ node: 2 ** 32, cpus: null }] }), RangeError, 'ERR_HWSQ_UNKNOWN_NODE');
    const handle = new NativeRuntime(config);
    try {
      // spawn(kind, spinNs, buffer, steps, node, worker, count, inside)
      expectCode(() => handle.spawn('noop', 0, undefined, 0, -1, -1, 2 ** 53 + 2, false), RangeError, 'ERR_HWSQ_INVALID_COUNT');
      expectCode(() => handle.spawn('noop', 0, undefined, 0, -1, -1, 1.5, false), RangeError, 'ERR_HWSQ_INVALID_COUNT');
      expectCode(() => handle.spawn('spin', -1, undefined, 0, -1, -1, 1, false), RangeError, 'ERR_HWSQ_INVALID_ARG');
      expectCode(() => handle.spawn('noop', 0, undefined, 0, -2, -1, 1, false), RangeError, 'ERR_HWSQ_UNKNOWN_NODE');
      expectCode(() => handle.spawn('noop', 0, undefined, 0, -1, 2 ** 32, 1, false), RangeError, 'ERR_HWSQ_UNKNOWN_WORKER');
      expect(handle.stats().externalSubmitted).toBe(0);
    } finally {
      handle.destroy();
    }
  });

  it('benchSpawn (hwsq bench spawn) refuses bad modes, counts and warm-up sizes before building a runtime', () => {
    const { benchSpawn } = nativeRuntimeBinding();
    const config: NativeRuntimeConfig = { workers: 1, placement: null, pin: 'none', policy: 'hierarchical', stats: true, timingSampleShift: 7, sysmon: false, idleSpinNs: 0, hogThresholdNs: null, virtualNodes: 0, virtualWorkersPerNode: 0, numaNode: -1, confineToCaller: false };
    const bench = benchSpawn as unknown as (...a: unknown[]) => unknown;
    expectCode(() => bench(config, 'sideways', 100, 1), RangeError, 'ERR_HWSQ_INVALID_OPTION');
    for (const tasks of [0, -1, 1.5, NaN, 2 ** 53 + 2]) expectCode(() => bench(config, 'external', tasks, 1), RangeError, 'ERR_HWSQ_INVALID_COUNT');
    for (const reps of [0, 2 ** 20 + 1]) expectCode(() => bench(config, 'external', 100, reps), RangeError, 'ERR_HWSQ_INVALID_COUNT');
    for (const warmup of [0, -1, 0.5, NaN, Infinity, 2 ** 53 + 2]) expectCode(() => bench(config, 'inside', 100, 1, warmup), RangeError, 'ERR_HWSQ_INVALID_COUNT');
    expect(() => bench(config, 'inside', 100, 1, '100')).toThrow(TypeError);
    // A figure with the process's CPU time per task; an explicit warm-up size is taken as given.
    for (const mode of ['external', 'inside'] as const) {
      const f = benchSpawn(config, mode, 2000, 2, 2000);
      expect(f.mode).toBe(mode);
      expect(f.samplesNs).toHaveLength(2);
      expect(f.bestNsPerTask).toBeLessThanOrEqual(f.nsPerTask);
      expect(f.cpuNsPerTask).toBeGreaterThan(0);
      expect(Number.isFinite(f.cpuNsPerTask)).toBe(true);
    }
  });
});
