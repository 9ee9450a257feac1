// Memory-affine spawn (node: 'auto', option memoryAffinity): which memory counts, the page
// sample and its cache, the node choice, the fallback, the counters (stats, Prometheus,
// /metrics/scheduler) and the checks of the new option values. On this one-node machine every
// affine choice is node 0; the multi-node behaviour (a task given memory on node k runs on node
// k) is in test/memory-affinity.vm.test.ts, and the choice among nodes is tested here through the tally
// with recorded allocations.
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Runtime, createNativeRuntime, type NativeRuntime, type RuntimeOptions } from '../lib/index';
import { allocOnNode, movePages } from '../lib/numa/memory';
import { MAX_BUFFERS, MemoryTally, RESAMPLE_AFTER, SAMPLE_PAGES, nearestNodes, placementSamples, recordAllocation } from '../lib/numa/memory-affinity';
import { native } from '../lib/core/native';
import { registerMetrics } from '../lib/metrics/prometheus';
import { schedulerJson } from '../lib/metrics/scheduler-json';
import { topology } from '../lib/numa/topology';
import { ensureDist, expectCode, rejectionOf, root } from './helpers';

const AFFINE = path.join(root, 'test', 'fixtures', 'tasks', 'affine.mjs');
const sysfs = (name: string) => topology({ fsroot: path.join(root, 'test', 'fixtures', 'sysfs', name) }).nodes;

beforeAll(ensureDist, 120_000);

const open: Runtime[] = [];
const natives: NativeRuntime[] = [];
async function start(options: Partial<RuntimeOptions> = {}): Promise<Runtime> {
  const rt = await Runtime.start({ filename: AFFINE, workers: 2, ...options });
  open.push(rt);
  return rt;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((rt) => rt.destroy()));
  for (const n of natives.splice(0)) n.destroy();
});

/** A SharedArrayBuffer whose pages are all resident (written), on this machine's only node. */
function touchedSab(bytes = 1 << 20): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(bytes);
  new Uint8Array(sab).fill(1);
  return sab;
}

describe("node: 'auto' on Runtime", () => {
  it('places a task with a resident SharedArrayBuffer by its memory and counts the choice', async () => {
    const rt = await start();
    const sab = touchedSab();
    const r = (await rt.spawn('whereWith', [new Int32Array(sab)], { node: 'auto' })) as { node: number };
    expect(r.node).toBe(0);
    expect(rt.stats().memoryAffinity).toEqual({ affineByMemory: 1, affineFallback: 0 });
  });

  it('falls back without a buffer, with a copied ArrayBuffer, and with memory never touched', async () => {
    const rt = await start();
    await rt.spawn('whereWith', [1, 'two', { three: [3] }], { node: 'auto' });
    // A copied buffer: the task reads a copy made where it runs, so it does not count.
    await rt.spawn('whereWith', [new Uint8Array(1 << 16).fill(1)], { node: 'auto' });
    // 64 MiB never written: no page resident, so on no node yet.
    const fresh = new SharedArrayBuffer(64 << 20);
    await rt.spawn('whereWith', [new Uint8Array(fresh)], { node: 'auto' });
    expect(rt.stats().memoryAffinity).toEqual({ affineByMemory: 0, affineFallback: 3 });
    // Once written, the same buffer has a node: an untouched sample was not cached.
    new Uint8Array(fresh).fill(7);
    await rt.spawn('whereWith', [new Uint8Array(fresh)], { node: 'auto' });
    expect(rt.stats().memoryAffinity).toEqual({ affineByMemory: 1, affineFallback: 3 });
  });

  it('counts allocOnNode memory moved by transfer (its recorded node, no page query)', async () => {
    const rt = await start();
    const buf = allocOnNode(1 << 20, 0);
    const before = placementSamples();
    const r = (await rt.spawn('whereWith', [new Uint8Array(buf)], { node: 'auto', transfer: [buf] })) as { node: number; pages: Record<number, number>[] };
    expect(placementSamples()).toBe(before);
    expect(r.node).toBe(0);
    expect(r.pages[0]).toEqual({ 0: 256 });
    expect(rt.stats().memoryAffinity!.affineByMemory).toBe(1);
  });

  it('memoryAffinity: true makes auto the default; an explicit node wins and is not counted', async () => {
    const rt = await start({ memoryAffinity: true });
    const sab = touchedSab();
    await rt.spawn('whereWith', [sab]);
    await rt.spawn('whereWith', []);
    await rt.spawn('whereWith', [sab], { node: 0 });
    await Promise.all(rt.spawnMany('whereWith', [[sab], [1], [new Uint8Array(sab, 8, 8)]]));
    expect(rt.stats().memoryAffinity).toEqual({ affineByMemory: 3, affineFallback: 2 });
    const off = await start();
    await off.spawn('whereWith', [sab]);
    expect(off.stats().memoryAffinity).toEqual({ affineByMemory: 0, affineFallback: 0 });
  });

  it('spawnMany chooses per task, big records included', async () => {
    const rt = await start();
    const sab = touchedSab();
    const big = 'x'.repeat(300 * 1024);  // one record larger than the io scratch: sent alone
    const out = await Promise.all(rt.spawnMany('whereWith', [[sab], [big], [sab, big], []], { node: 'auto' }));
    expect(out).toHaveLength(4);
    expect(rt.stats().memoryAffinity).toEqual({ affineByMemory: 2, affineFallback: 2 });
  });

  it('nested spawns inside tasks take node: auto and the runtime default, counted by the same runtime', async () => {
    const rt = await start();
    const sab = touchedSab();
    const child = (await rt.spawn('nested', [[sab], { node: 'auto' }])) as { node: number };
    expect(child.node).toBe(0);
    await rt.spawn('nested', [[1], { node: 'auto' }]);
    await rt.spawn('nestedMany', [[[sab], [2]], { node: 'auto' }]);
    await rt.spawn('allocAndSpawn', [1 << 16, 0, { node: 'auto' }]);
    expect(rt.stats().memoryAffinity).toEqual({ affineByMemory: 3, affineFallback: 2 });
    const byDefault = await start({ memoryAffinity: true });
    await byDefault.spawn('nested', [[sab], {}]);
    await byDefault.spawn('nested', [[3], {}]);
    // Root spawns and children alike: the SAB is in the first root's arguments and its child's.
    expect(byDefault.stats().memoryAffinity).toEqual({ affineByMemory: 2, affineFallback: 2 });
  });

  it('refuses bad values with typed errors and nothing queued', async () => {
    const rt = await start();
    for (const node of ['Auto', 'any', ''] as unknown as number[]) {
      const err = await rejectionOf(rt.spawn('whereWith', [], { node }));
      expect(err).toBeInstanceOf(TypeError);
      expect(err.code).toBe('ERR_HWSQ_INVALID_ARG_TYPE');
    }
    const many = rt.spawnMany('whereWith', [[1]], { node: 'near' as unknown as number });
    expect((await rejectionOf(many[0]!)).code).toBe('ERR_HWSQ_INVALID_ARG_TYPE');
    const inTask = await rejectionOf(rt.spawn('nested', [[], { node: 'nearest' }]));
    expect(inTask.code).toBe('ERR_HWSQ_INVALID_ARG_TYPE');
    expect(rt.stats().memoryAffinity).toEqual({ affineByMemory: 0, affineFallback: 0 });
    expect(rt.queueSize).toBe(0);
    for (const memoryAffinity of ['yes', 1, null]) {
      await expect(Runtime.start({ filename: AFFINE, workers: 1, memoryAffinity } as unknown as RuntimeOptions)).rejects.toMatchObject({
        name: 'TypeError',
        code: 'ERR_HWSQ_INVALID_ARG_TYPE',
      });
    }
  });

  it('publishes the counters in Prometheus and /metrics/scheduler', async () => {
    const rt = await start();
    await rt.spawn('whereWith', [touchedSab()], { node: 'auto' });
    await rt.spawn('whereWith', [], { node: 'auto' });
    await rt.spawn('whereWith', [], { node: 'auto' });
    const reg = registerMetrics(rt);
    const text = await reg.registry.metrics();
    expect(text).toMatch(/^hwsq_memory_affinity_total\{choice="memory"\} 1$/m);
    expect(text).toMatch(/^hwsq_memory_affinity_total\{choice="fallback"\} 2$/m);
    reg.unregister();
    expect(schedulerJson(rt).memory_affinity).toEqual({ affine_by_memory: 1, affine_fallback: 2 });
  });
});

describe('the page sample and its cache', () => {
  it('samples at most SAMPLE_PAGES pages, spread over the buffer, in one query', () => {
    const page = native().pageSize();
    // 128 MiB: beyond glibc's largest mmap threshold (32 MiB), so the memory is a fresh mapping
    // whatever this process freed before (a smaller buffer can reuse resident heap memory, as
    // in a Stryker dry run), and a transparent huge page of the written half never reaches the
    // sample of the other half nearest to it (4 MiB away).
    const sab = new SharedArrayBuffer(128 * 1024 * 1024);
    const u8 = new Uint8Array(sab);
    // Past its first 2 MiB (malloc's header is on the first page, a transparent huge page may hold it).
    expect([...native().pageNodes(u8.subarray(2 * 1024 * 1024))].every((s) => s < 0), 'a fresh 128 MiB mapping has no resident page').toBe(true);
    expect(native().samplePageNodes(u8, SAMPLE_PAGES)).toHaveLength(SAMPLE_PAGES);
    expect([...native().samplePageNodes(u8, SAMPLE_PAGES)].every((s) => s < 0)).toBe(true);
    // The second half written: the samples of the first half see no page, those of the second
    // half see node 0 (sample k sits in the middle of the k-th sixteenth).
    u8.fill(1, u8.length / 2);
    const after = [...native().samplePageNodes(u8, SAMPLE_PAGES)];
    expect(after.slice(0, 8).every((s) => s < 0)).toBe(true);
    expect(after.slice(8)).toEqual(new Array(8).fill(0));
    // Fewer pages than SAMPLE_PAGES: each page the range overlaps (3 or 4: the SAB may not start on a page).
    const small = new Uint8Array(sab, 0, 3 * page);
    expect([...native().samplePageNodes(small, SAMPLE_PAGES)]).toEqual([...native().pageNodes(small)]);
    expect(native().samplePageNodes(new Uint8Array(0), SAMPLE_PAGES)).toHaveLength(0);
  });

  it('caches per backing store, re-samples after movePages and after RESAMPLE_AFTER lookups', () => {
    const nearest = new Map([[0, 0]]);
    const tally = new MemoryTally(nearest);
    const sab = touchedSab(64 * 1024);
    const look = () => {
      tally.reset();
      tally.add(sab);
      return tally.choose();
    };
    const s0 = placementSamples();
    expect(look()).toBe(0);
    expect(placementSamples()).toBe(s0 + 1);
    for (let i = 0; i < 10; i++) look();
    // Views of the same memory share the entry; the same buffer twice in one spawn counts once.
    tally.reset();
    tally.add(sab);
    tally.add(sab);
    expect(placementSamples()).toBe(s0 + 1);
    movePages(new Uint8Array(sab), 0);
    look();
    expect(placementSamples()).toBe(s0 + 2);
    for (let i = 0; i < RESAMPLE_AFTER; i++) look();
    expect(placementSamples()).toBe(s0 + 2);
    look();
    expect(placementSamples()).toBe(s0 + 3);
  });

  it('movePages also forgets a recorded allocation (sampled from then on)', () => {
    const tally = new MemoryTally(new Map([[0, 0]]));
    const buf = allocOnNode(1 << 16, 0);
    const s0 = placementSamples();
    tally.add(buf);
    expect(placementSamples()).toBe(s0);
    movePages(buf, 0);
    tally.reset();
    tally.add(buf);
    expect(tally.choose()).toBe(0);
    expect(placementSamples()).toBe(s0 + 1);
  });
});

describe('the node choice', () => {
  it('several buffers: the node with the most bytes; ties to the first seen', () => {
    const nearest = new Map([[0, 0], [1, 1], [2, 2]]);
    const tally = new MemoryTally(nearest);
    const on = (bytes: number, node: number) => {
      const b = new ArrayBuffer(bytes);
      recordAllocation(b, node);
      return b;
    };
    const a = on(4096, 1);
    const b = on(3000, 2);
    const c = on(3000, 2);
    tally.add(a);
    tally.add(b);
    expect(tally.choose()).toBe(1);
    tally.add(c);
    expect(tally.choose()).toBe(2);  // 6000 bytes on node 2
    tally.reset();
    tally.add(on(100, 2));
    tally.add(on(100, 1));
    expect(tally.choose()).toBe(2);
    tally.reset();
    expect(tally.choose()).toBe(-1);
    tally.add(new ArrayBuffer(0));
    expect(tally.choose()).toBe(-1);
    // Only the first MAX_BUFFERS distinct backing stores are looked at.
    tally.reset();
    for (let i = 0; i < MAX_BUFFERS; i++) tally.add(on(10, 1));
    tally.add(on(1 << 20, 2));
    expect(tally.choose()).toBe(1);
  });

  it('a node without Ps maps to the nearest node with Ps by SLIT distance, else nothing', () => {
    // arm-cpuless: node 2 has memory and no CPUs, at 30 from both 0 and 1 (tie: the lower id).
    expect([...nearestNodes([0, 1], sysfs('arm-cpuless'))]).toEqual([[0, 0], [1, 1], [2, 0]]);
    expect(nearestNodes([1], sysfs('arm-cpuless')).get(2)).toBe(1);
    // amd-epyc-nps2: a runtime confined to node 3 (HWSQ_NUMA_NODE=3) and node 1's memory: 3.
    const epyc = nearestNodes([1, 3], sysfs('amd-epyc-nps2'));
    expect(epyc.get(0)).toBe(1);
    expect(epyc.get(2)).toBe(3);
    // ia64-memless: distances 21 (node 1) and 29 (node 2) from node 0.
    expect(nearestNodes([1, 2], sysfs('ia64-memless')).get(0)).toBe(1);
    // A memory node the topology does not know has no distance: not mapped (fallback).
    const tally = new MemoryTally(nearestNodes([0], sysfs('nonuma')));
    const b = new ArrayBuffer(64);
    recordAllocation(b, 5);
    tally.add(b);
    expect(tally.choose()).toBe(-1);
  });
});

describe("node: 'auto' on NativeRuntime.spawnNative", () => {
  it('runs touch/chase tasks on the node of their buffer; spin/noop fall back; worker wins over the default', async () => {
    const rt = createNativeRuntime({ virtualTopology: { nodes: 2, workersPerNode: 1 } });
    natives.push(rt);
    const buf = new ArrayBuffer(1 << 16);
    recordAllocation(buf, 1);  // as allocOnNode(…, 1) would on a two-node machine
    // One at a time: node 1's P is never saturated, so no other node may take its tasks.
    for (let i = 0; i < 8; i++) await rt.spawnNative('touch', { buffer: buf }, { node: 'auto' });
    await rt.idle();
    let s = rt.stats();
    expect(s.nodes.find((n) => n.node === 1)!.executed).toBe(8);
    expect(s.nodes.find((n) => n.node === 0)!.executed).toBe(0);
    await rt.spawnNative('spin', { ns: 1000 }, { node: 'auto', count: 2 });
    s = rt.stats();
    expect(s.memoryAffinity).toEqual({ affineByMemory: 8, affineFallback: 2 });
    expectCode(() => createNativeRuntime({ memoryAffinity: 'on' as unknown as boolean }), TypeError, 'ERR_HWSQ_INVALID_ARG_TYPE');
    await expect(rt.spawnNative('touch', { buffer: buf }, { node: 'auto', worker: 0 })).rejects.toMatchObject({ code: 'ERR_HWSQ_INVALID_ARG' });
    await expect(rt.spawnNative('touch', { buffer: buf }, { node: 'near' as unknown as number })).rejects.toMatchObject({ code: 'ERR_HWSQ_INVALID_ARG_TYPE' });
    const byDefault = createNativeRuntime({ virtualTopology: { nodes: 2, workersPerNode: 1 }, memoryAffinity: true });
    natives.push(byDefault);
    await byDefault.spawnNative('chase', { buffer: buf, steps: 4 });
    await byDefault.spawnNative('touch', { buffer: buf }, { worker: 0 });
    s = byDefault.stats();
    expect(s.memoryAffinity).toEqual({ affineByMemory: 1, affineFallback: 0 });
  });
});
