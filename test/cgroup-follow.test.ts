// Following the cgroup (README "Following the cgroup"): with workers 'auto' both runtimes start a
// P per allowed CPU and re-read the CPU limit every cgroupPollMs from a cgroup tree under
// HWSQ_FSROOT, here a temp tree rewritten during the run: cpu.max (v2) or the CFS quota (v1) from
// none to one CPU and back.
// Asserted on the 'parallelism' event (waited for, never timed), the stats fields and the tasks
// (each runs exactly once); an explicit worker count stays fixed.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Runtime, createNativeRuntime, type NativeRuntime, type ParallelismEvent } from '../lib/index';
import { topology } from '../lib/numa/topology';
import { ensureDist, root } from './helpers';

const ESM = path.join(root, 'test', 'fixtures', 'tasks', 'basic.mjs');
const allowed = topology().allowedCpus.length;

beforeAll(ensureDist, 120_000);

// A cgroup v2 tree like test/fixtures/cgroup/v2-max, its cpu.max rewritten by the tests.
function cgroupTree(cpuMax: string): { dir: string; setCpuMax(v: string): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hwsq-cgroup-'));
  fs.mkdirSync(path.join(dir, 'proc', 'self'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'proc', 'self', 'mountinfo'), '26 23 0:24 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n');
  fs.writeFileSync(path.join(dir, 'proc', 'self', 'cgroup'), '0::/kubepods/pod1\n');
  const group = path.join(dir, 'sys', 'fs', 'cgroup', 'kubepods', 'pod1');
  fs.mkdirSync(group, { recursive: true });
  const setCpuMax = (v: string) => {
    // Rename over the file: the watch never reads a half-written one.
    fs.writeFileSync(path.join(group, 'cpu.max.tmp'), v);
    fs.renameSync(path.join(group, 'cpu.max.tmp'), path.join(group, 'cpu.max'));
  };
  setCpuMax(cpuMax);
  return { dir, setCpuMax };
}

// A cgroup v1 tree (cpu,cpuacct controller mounted at its root, like test/fixtures/cgroup/v1-*),
// its CFS quota rewritten by the tests (-1: none).
function cgroupV1Tree(quotaUs: string): { dir: string; setQuota(v: string): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hwsq-cgroup1-'));
  fs.mkdirSync(path.join(dir, 'proc', 'self'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'proc', 'self', 'mountinfo'), '1201 1190 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime - cgroup cgroup rw,cpu,cpuacct\n');
  fs.writeFileSync(path.join(dir, 'proc', 'self', 'cgroup'), '5:cpu,cpuacct:/kubepods/pod1\n0::/\n');
  const group = path.join(dir, 'sys', 'fs', 'cgroup', 'cpu,cpuacct', 'kubepods', 'pod1');
  fs.mkdirSync(group, { recursive: true });
  fs.writeFileSync(path.join(group, 'cpu.cfs_period_us'), '100000\n');
  const setQuota = (v: string) => {
    fs.writeFileSync(path.join(group, 'cpu.cfs_quota_us.tmp'), v);
    fs.renameSync(path.join(group, 'cpu.cfs_quota_us.tmp'), path.join(group, 'cpu.cfs_quota_us'));
  };
  setQuota(quotaUs);
  return { dir, setQuota };
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

// HWSQ_FSROOT is read when a runtime is created (lib/core/validation.ts fsroot()).
function withFsroot<T>(dir: string, make: () => T): T {
  const before = process.env.HWSQ_FSROOT;
  process.env.HWSQ_FSROOT = dir;
  try {
    return make();
  } finally {
    if (before === undefined) delete process.env.HWSQ_FSROOT;
    else process.env.HWSQ_FSROOT = before;
  }
}

function nextEvent(rt: { once(event: 'parallelism', l: (e: ParallelismEvent) => void): unknown }): Promise<ParallelismEvent> {
  return new Promise((resolve) => rt.once('parallelism', resolve));
}

describe.runIf(allowed >= 2)('following the cgroup (a machine with 2+ CPUs)', () => {
  it('NativeRuntime: cpu.max falls to one CPU and rises back; the Ps follow, tasks keep running, none lost', async () => {
    const tree = cgroupTree('max 100000\n');
    cleanups.push(() => fs.rmSync(tree.dir, { recursive: true, force: true }));
    const rt: NativeRuntime = withFsroot(tree.dir, () => createNativeRuntime({ cgroupPollMs: 10, pin: 'none' }));
    cleanups.push(() => rt.destroy());
    expect(rt.size).toBe(allowed);
    let s = rt.stats();
    expect([s.parallelism, s.activeWorkers, s.parallelismSource]).toEqual([allowed, allowed, 'cpuset']);

    const falling = nextEvent(rt);
    tree.setCpuMax('100000 100000\n');
    const work = rt.spawnNative('spin', { ns: 20_000 }, { count: 2000 });
    expect(await falling).toEqual({ previous: allowed, current: 1, source: 'cgroup2' });
    s = rt.stats();
    expect([s.parallelism, s.activeWorkers, s.parallelismSource]).toEqual([1, 1, 'cgroup2']);
    expect(s.workers.filter((w) => w.active).length).toBe(1);
    await work;

    // Under the limit, new work runs on the one active P only.
    const before = rt.stats().workers.map((w) => w.executed);
    await rt.spawnNative('noop', {}, { count: 5000 });
    await rt.idle();  // a spawn settles just before its tasks are counted (README idle())
    const after = rt.stats().workers;
    const ranOn = after.filter((w, i) => w.executed > before[i]!).map((w) => w.worker);
    expect(ranOn).toEqual([after.find((w) => w.active)!.worker]);

    const rising = nextEvent(rt);
    tree.setCpuMax('max 100000\n');
    expect(await rising).toEqual({ previous: 1, current: allowed, source: 'cpuset' });
    await rt.spawnNative('noop', {}, { count: 1000 });
    await rt.idle();
    s = rt.stats();
    expect(s.activeWorkers).toBe(allowed);
    expect(s.executed).toBe(2000 + 5000 + 1000);
    await rt.close();
  });

  it('NativeRuntime: a cgroup v1 CFS quota set and lifted during the run moves the limit (source cgroup1)', async () => {
    const tree = cgroupV1Tree('-1\n');
    cleanups.push(() => fs.rmSync(tree.dir, { recursive: true, force: true }));
    const rt: NativeRuntime = withFsroot(tree.dir, () => createNativeRuntime({ cgroupPollMs: 10, pin: 'none' }));
    cleanups.push(() => rt.destroy());
    expect([rt.stats().parallelism, rt.stats().parallelismSource]).toEqual([allowed, 'cpuset']);
    const falling = nextEvent(rt);
    tree.setQuota('100000\n');
    expect(await falling).toEqual({ previous: allowed, current: 1, source: 'cgroup1' });
    const before = rt.stats().workers.map((w) => w.executed);
    await rt.spawnNative('noop', {}, { count: 3000 });
    await rt.idle();
    const after = rt.stats().workers;
    expect(after.filter((w, i) => w.executed > before[i]!).map((w) => w.worker)).toEqual([after.find((w) => w.active)!.worker]);
    const rising = nextEvent(rt);
    tree.setQuota('-1\n');
    expect(await rising).toEqual({ previous: 1, current: allowed, source: 'cpuset' });
    expect(rt.stats().activeWorkers).toBe(allowed);
    await rt.close();
  });

  it('NativeRuntime: an explicit number of workers stays fixed; cgroupPollMs is checked', async () => {
    const tree = cgroupTree('100000 100000\n');
    cleanups.push(() => fs.rmSync(tree.dir, { recursive: true, force: true }));
    const rt = withFsroot(tree.dir, () => createNativeRuntime({ workers: 2, cgroupPollMs: 10, pin: 'none' }));
    cleanups.push(() => rt.destroy());
    const s = rt.stats();
    expect([s.parallelism, s.activeWorkers, s.parallelismSource]).toEqual([2, 2, 'fixed']);
    // Following off: 'auto' is the limit's count, fixed.
    const off = withFsroot(tree.dir, () => createNativeRuntime({ cgroupPollMs: 0, pin: 'none' }));
    cleanups.push(() => off.destroy());
    expect(off.stats().parallelismSource).toBe('fixed');
    expect(off.stats().activeWorkers).toBe(off.size);
    const cases: [unknown, string, ErrorConstructor][] = [
      [5, 'ERR_HWSQ_INVALID_OPTION', RangeError],
      [-1, 'ERR_HWSQ_INVALID_OPTION', RangeError],
      [1.5, 'ERR_HWSQ_INVALID_OPTION', RangeError],
      [3_600_001, 'ERR_HWSQ_INVALID_OPTION', RangeError],
      ['1000', 'ERR_HWSQ_INVALID_ARG_TYPE', TypeError],
      [null, 'ERR_HWSQ_INVALID_ARG_TYPE', TypeError],
    ];
    for (const [bad, code, type] of cases) {
      const err = (() => {
        try {
          createNativeRuntime({ cgroupPollMs: bad as number });
        } catch (e) {
          return e as RangeError & { code?: string };
        }
        return undefined;
      })();
      expect(err).toBeInstanceOf(type);
      expect(err?.code).toBe(code);
    }
  });

  it('Runtime (JS workers): a worker per allowed CPU; the surplus parks at one CPU and takes no tasks; back at max', async () => {
    const tree = cgroupTree('max 100000\n');
    cleanups.push(() => fs.rmSync(tree.dir, { recursive: true, force: true }));
    const rt = await withFsroot(tree.dir, () => Runtime.start({ filename: ESM, cgroupPollMs: 10, placement: 'none' }));
    cleanups.push(() => rt.destroy());
    expect(rt.workers.length).toBe(allowed);
    expect(rt.stats().parallelismSource).toBe('cpuset');

    const falling = nextEvent(rt);
    tree.setCpuMax('100000 100000\n');
    expect(await falling).toEqual({ previous: allowed, current: 1, source: 'cgroup2' });
    const active = rt.stats().workers.filter((w) => w.active).map((w) => w.worker);
    expect(active.length).toBe(1);
    const where = await Promise.all(Array.from({ length: 200 }, () => rt.spawn('where') as Promise<{ worker: number }>));
    expect(new Set(where.map((w) => w.worker))).toEqual(new Set(active));

    const rising = nextEvent(rt);
    tree.setCpuMax('max 100000\n');
    expect(await rising).toEqual({ previous: 1, current: allowed, source: 'cpuset' });
    expect(rt.stats().activeWorkers).toBe(allowed);
    const sums = await Promise.all(Array.from({ length: 200 }, (_, i) => rt.spawn('add', [i, 1]) as Promise<number>));
    expect(sums).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    await rt.close();
  });

  it('a following runtime dropped without close() is still collected and destroyed (the event callback holds it weakly)', () => {
    // HWSQ_SHM=0: the process's stats publisher thread would outlive the runtime.
    const script = `
      const fs = require('node:fs');
      const { createNativeRuntime } = require(${JSON.stringify(path.join(root, 'dist', 'index.js'))});
      const threads = () => fs.readdirSync('/proc/self/task').length;
      const base = threads();
      (async () => {
        await (async () => {
          const rt = createNativeRuntime({ cgroupPollMs: 10, pin: 'none' });
          rt.on('parallelism', () => {});
          await rt.spawnNative('noop', {}, { count: 1000 });
        })();
        const started = threads();
        for (let i = 0; i < 200 && threads() > base; i++) {
          globalThis.gc();
          await new Promise((r) => setTimeout(r, 10));
        }
        console.log(JSON.stringify({ base, started, after: threads() }));
      })();`;
    const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, HWSQ_SHM: '0' } });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim()) as { base: number; started: number; after: number };
    expect(out.started).toBeGreaterThanOrEqual(out.base + allowed + 1);  // the Ps and the watch
    expect(out.after).toBe(out.base);
  });
});
