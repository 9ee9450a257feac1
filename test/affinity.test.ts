import { describe, expect, it, afterEach } from 'vitest';
import { Worker } from 'node:worker_threads';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import {
  createNativeRuntime,
  currentCpu,
  currentNode,
  getAffinity,
  pinToCpus,
  pinToNumaNode,
  topology,
  unpin,
  ErrorCodes,
  Runtime,
  type NativeRuntime,
} from '../lib/index';
import { expectCode, rejectionOf } from './helpers';

const original = getAffinity();
afterEach(() => {
  while (unpin()) {
    /* unwind pins a failed test left behind */
  }
  expect(getAffinity()).toEqual(original);
});

// Cpus_allowed_list of one thread of this process, read from procfs (an independent source).
function threadAllowed(tid: number | 'self'): string {
  const status = readFileSync(tid === 'self' ? '/proc/thread-self/status' : `/proc/self/task/${tid}/status`, 'utf8');
  return /Cpus_allowed_list:\s*(\S+)/.exec(status)![1]!;
}

describe('pinning the calling thread', () => {
  const topo = topology();
  const nodeWithCpus = topo.nodes.find((n) => n.cpus.some((c) => topo.allowedCpus.includes(c)))!;

  it('pins to a NUMA node: affinity is the node CPUs and getcpu agrees', () => {
    const pin = pinToNumaNode(nodeWithCpus.id);
    const expected = nodeWithCpus.cpus.filter((c) => topo.allowedCpus.includes(c));
    expect(getAffinity()).toEqual(expected);
    expect(pin.cpus).toEqual(expected);
    expect(pin.previousCpus).toEqual(original);
    expect(currentNode()).toBe(nodeWithCpus.id);
    expect(expected).toContain(currentCpu());
    pin.unpin();
    expect(getAffinity()).toEqual(original);
  });

  it('pins to each allowed CPU and runs there', () => {
    for (const cpu of topo.allowedCpus) {
      const pin = pinToCpus([cpu]);
      expect(getAffinity()).toEqual([cpu]);
      expect(threadAllowed('self')).toBe(String(cpu));
      expect(currentCpu()).toBe(cpu);
      pin.unpin();
    }
  });

  it('nests pins and unpins in LIFO order', () => {
    const a = pinToNumaNode(nodeWithCpus.id);
    const b = pinToCpus([topo.allowedCpus[0]!]);
    expect(getAffinity()).toEqual([topo.allowedCpus[0]]);
    expect(unpin()).toBe(true);
    expect(getAffinity()).toEqual([...a.cpus]);
    a.unpin();
    expect(unpin()).toBe(false);
    expectCode(() => b.unpin(), RangeError, ErrorCodes.NOT_PINNED);
  });

  // On one node this cannot fail; test/multinode.vm.test.ts checks it on every node of the guests.
  it('sets the memory policy to prefer the node while pinned', async () => {
    const { native } = await import('../lib/core/native');
    if (!native().numaAvailable()) throw new Error('kernel without NUMA syscalls: cannot test memory policy');
    const before = native().getMemPolicy();
    const pin = pinToNumaNode(nodeWithCpus.id);
    expect(native().getMemPolicy()).toEqual({ policy: 'preferred', nodes: [nodeWithCpus.id] });
    pin.unpin();
    expect(native().getMemPolicy()).toEqual(before);
    const strict = pinToNumaNode(nodeWithCpus.id, { memory: 'bind' });
    expect(native().getMemPolicy()).toEqual({ policy: 'bind', nodes: [nodeWithCpus.id] });
    strict.unpin();
  });

  it('rejects bad input with typed errors and leaves the affinity unchanged', () => {
    const maxNode = Math.max(...topo.nodes.map((n) => n.id));
    expectCode(() => pinToNumaNode(maxNode + 1), RangeError, ErrorCodes.UNKNOWN_NODE);
    expectCode(() => pinToNumaNode(-1), RangeError, ErrorCodes.INVALID_ARG);
    expectCode(() => pinToNumaNode(0.5), RangeError, ErrorCodes.INVALID_ARG);
    expectCode(() => pinToNumaNode(Number.NaN), RangeError, ErrorCodes.INVALID_ARG);
    expectCode(() => pinToNumaNode('0' as unknown as number), TypeError, ErrorCodes.INVALID_ARG_TYPE);
    expectCode(() => pinToCpus([]), RangeError, ErrorCodes.EMPTY_CPUS);
    expectCode(() => pinToCpus([100_000]), RangeError, ErrorCodes.CPU_OUT_OF_RANGE);
    expectCode(() => pinToCpus([2 ** 32]), RangeError, ErrorCodes.CPU_OUT_OF_RANGE); // not wrapped to CPU 0
    expectCode(() => pinToCpus([-1]), RangeError, ErrorCodes.INVALID_ARG);
    expectCode(() => pinToCpus(3 as unknown as number[]), TypeError, ErrorCodes.INVALID_ARG_TYPE);
    expectCode(() => pinToNumaNode(nodeWithCpus.id, { scope: 'everything' as 'thread' }), RangeError, ErrorCodes.INVALID_ARG);
    expect(getAffinity()).toEqual(original);
  });

  it('pins only the calling thread, not the process', async () => {
    const pin = pinToCpus([topo.allowedCpus[0]!]);
    // A Worker started now inherits the mask at creation; pin it elsewhere and check both.
    const worker = new Worker(
      `const { parentPort } = require('node:worker_threads');
       const hwsq = require(${JSON.stringify(fileURLToPath(new URL('../dist/index.js', import.meta.url)))});
       const before = hwsq.getAffinity();
       const last = ${topo.allowedCpus[topo.allowedCpus.length - 1]};
       const pin = hwsq.pinToCpus([last]);
       parentPort.postMessage({ before, pinned: hwsq.getAffinity(), cpu: hwsq.currentCpu() });
       parentPort.once('message', () => { pin.unpin(); parentPort.postMessage({ after: hwsq.getAffinity() }); });`,
      { eval: true },
    );
    const first = await new Promise<{ before: number[]; pinned: number[]; cpu: number }>((resolve) => worker.once('message', resolve));
    const last = topo.allowedCpus[topo.allowedCpus.length - 1]!;
    expect(first.pinned).toEqual([last]);
    expect(first.cpu).toBe(last);
    expect(getAffinity()).toEqual([topo.allowedCpus[0]]); // main thread untouched by the worker's pin
    worker.postMessage('unpin');
    const second = await new Promise<{ after: number[] }>((resolve) => worker.once('message', resolve));
    expect(second.after).toEqual(first.before);
    await worker.terminate();
    pin.unpin();
  });

  it("scope 'process' pins every thread of the process", () => {
    const cpu = topo.allowedCpus[topo.allowedCpus.length - 1]!;
    const pin = pinToCpus([cpu], { scope: 'process' });
    const tids = readdirSync('/proc/self/task');
    expect(tids.length).toBeGreaterThan(1); // libuv and V8 threads exist
    for (const tid of tids) expect(threadAllowed(Number(tid))).toBe(String(cpu));
    pin.unpin();
    for (const tid of readdirSync('/proc/self/task')) {
      expect(threadAllowed(Number(tid))).toBe(threadAllowed('self'));
    }
  });
});

// The libnuma model: the CPUs a pin may name are the process's (the affinity it started with ∩
// online ∩ cgroup cpuset), whatever the calling thread is pinned to now. Needs two allowed CPUs.
describe('the process CPU set', () => {
  const topo = topology();
  const all = topo.allowedCpus;
  const first = all[0]!;
  const last = all[all.length - 1]!;
  const nodeOf = (cpu: number) => topo.nodes.find((n) => n.cpus.includes(cpu))!;
  const lib = fileURLToPath(new URL('../dist/index.js', import.meta.url));
  const runtimes: (NativeRuntime | Runtime)[] = [];
  afterEach(async () => {
    for (const rt of runtimes.splice(0)) await rt.destroy();
  });
  const twoCpus = () => expect(all.length, 'these tests need at least two allowed CPUs').toBeGreaterThanOrEqual(2);

  it('does not shrink to the calling thread pin: topology, node pins and CPU pins see every CPU', () => {
    twoCpus();
    const pin = pinToCpus([first]);
    expect(topology().allowedCpus).toEqual(all);
    const node = nodeOf(last);
    expect(pinToNumaNode(node.id).cpus).toEqual(node.cpus.filter((c) => all.includes(c)));
    pinToCpus([last]);
    expect(getAffinity()).toEqual([last]);
    expect(currentCpu()).toBe(last);
    pin.unpin();
    expect(getAffinity()).toEqual(original);
  });

  it('a Worker started by a pinned thread pins itself anywhere in the set', async () => {
    twoCpus();
    const pin = pinToCpus([first]);
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const hwsq = require(workerData.lib);
       const inherited = hwsq.getAffinity();
       const node = hwsq.pinToNumaNode(workerData.node);
       const cpu = hwsq.pinToCpus([workerData.last]);
       parentPort.postMessage({ inherited, node: [...node.cpus], cpu: hwsq.getAffinity(), allowed: hwsq.topology().allowedCpus });`,
      { eval: true, workerData: { lib, node: nodeOf(last).id, last } },
    );
    const r = await new Promise<{ inherited: number[]; node: number[]; cpu: number[]; allowed: number[] }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    pin.unpin();
    expect(r.inherited).toEqual([first]);
    expect(r.node).toEqual(nodeOf(last).cpus.filter((c) => all.includes(c)));
    expect(r.cpu).toEqual([last]);
    expect(r.allowed).toEqual(all);
  });

  it("scope 'process': unpin gives each thread its own previous mask back", async () => {
    twoCpus();
    // A Worker pinned (thread scope) to `last` reports its own mask and OS thread id on request.
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const fs = require('node:fs');
       const hwsq = require(workerData.lib);
       hwsq.pinToCpus([workerData.last]);
       const tid = Number(fs.readlinkSync('/proc/thread-self').split('/').pop());
       parentPort.on('message', () => parentPort.postMessage({ tid, affinity: hwsq.getAffinity() }));
       parentPort.postMessage({ tid, affinity: hwsq.getAffinity() });`,
      { eval: true, workerData: { lib, last } },
    );
    const ask = () => new Promise<{ tid: number; affinity: number[] }>((resolve) => worker.once('message', resolve));
    const pinned = await ask();
    expect(pinned.affinity).toEqual([last]);
    const othersBefore = new Map(readdirSync('/proc/self/task').map((t) => [Number(t), threadAllowed(Number(t))]));
    const pin = pinToCpus([first], { scope: 'process' });
    for (const tid of readdirSync('/proc/self/task')) expect(threadAllowed(Number(tid))).toBe(String(first));
    pin.unpin();
    worker.postMessage('where');
    const after = await ask();
    expect(after.affinity).toEqual([last]); // its own pin, not the caller's old mask
    expect(getAffinity()).toEqual(original);
    for (const [tid, mask] of othersBefore) {
      if (tid === pinned.tid) continue;
      let now: string;
      try {
        now = threadAllowed(tid);
      } catch {
        continue; // the thread exited meanwhile
      }
      expect(now, `thread ${tid}`).toBe(mask);
    }
    await worker.terminate();
  });

  it("scope 'process' leaves the Ps of a NativeRuntime pinned", async () => {
    twoCpus();
    const rt = createNativeRuntime({ pin: 'cpu' });
    runtimes.push(rt);
    const placed = rt.topology().workers.map((w) => w.cpus);
    expect((await rt.locate()).map((l) => l.affinity)).toEqual(placed);
    const pin = pinToCpus([first], { scope: 'process' });
    expect(getAffinity()).toEqual([first]);
    expect((await rt.locate()).map((l) => l.affinity)).toEqual(placed);
    pin.unpin();
    expect((await rt.locate()).map((l) => l.affinity)).toEqual(placed);
  });

  it("scope 'process' leaves the worker threads of a Runtime pinned", async () => {
    twoCpus();
    const rt = await Runtime.start({ filename: fileURLToPath(new URL('./fixtures/tasks/pins.mjs', import.meta.url)), workers: 2, placement: 'cpu' });
    runtimes.push(rt);
    // The OS thread of every P (sequential spawns land on both Ps sooner or later).
    const tids = new Map<number, { tid: number; cpus: number[] }>();
    for (let i = 0; i < 400 && tids.size < rt.workers.length; i++) {
      const batch = await Promise.all(rt.spawnMany<{ worker: number; tid: number; cpus: number[] }>('threadInfo', [[], [], [], []]));
      for (const r of batch) tids.set(r.worker, r);
    }
    expect(tids.size).toBe(rt.workers.length);
    const masks = () => [...tids.values()].map((t) => threadAllowed(t.tid));
    const placed = [...tids.values()].map((t) => t.cpus.join(','));
    expect(masks()).toEqual(placed);
    const pin = pinToCpus([first], { scope: 'process' });
    expect(masks()).toEqual(placed);
    pin.unpin();
    expect(masks()).toEqual(placed);
  });

  it('a runtime created by a pinned thread spreads over the whole set; confineToCaller keeps it there', async () => {
    twoCpus();
    const pin = pinToCpus([first]);
    const spread = createNativeRuntime({ pin: 'cpu' });
    const loose = createNativeRuntime({ workers: 2, pin: 'none' });
    const confined = createNativeRuntime({ pin: 'cpu', confineToCaller: true });
    runtimes.push(spread, loose, confined);
    expect(spread.topology().workers.map((w) => w.cpus)).toEqual(all.map((c) => [c]));
    expect((await spread.locate()).map((l) => l.affinity)).toEqual(all.map((c) => [c]));
    expect((await loose.locate()).map((l) => l.affinity)).toEqual([all, all]);
    expect(confined.topology().workers.map((w) => w.cpus)).toEqual([[first]]);
    expect((await confined.locate()).map((l) => l.affinity)).toEqual([[first]]);
    const js = await Runtime.start({ filename: fileURLToPath(new URL('./fixtures/tasks/pins.mjs', import.meta.url)), placement: 'cpu' });
    runtimes.push(js);
    expect(js.workers.map((w) => w.cpus)).toEqual(all.map((c) => [c]));
    const jsConfined = await Runtime.start({ filename: fileURLToPath(new URL('./fixtures/tasks/pins.mjs', import.meta.url)), placement: 'cpu', confineToCaller: true });
    runtimes.push(jsConfined);
    expect(jsConfined.workers.map((w) => w.cpus)).toEqual([[first]]);
    pin.unpin();
  });

  it('confineToCaller is validated', async () => {
    expectCode(() => createNativeRuntime({ confineToCaller: 'yes' as unknown as boolean }), TypeError, ErrorCodes.INVALID_ARG_TYPE);
    expectCode(() => createNativeRuntime({ virtualTopology: { nodes: 2, workersPerNode: 1 }, confineToCaller: true }), RangeError, ErrorCodes.INVALID_OPTION);
    const err = await rejectionOf(Runtime.start({ filename: fileURLToPath(new URL('./fixtures/tasks/pins.mjs', import.meta.url)), confineToCaller: 1 as unknown as boolean }));
    expect(err).toBeInstanceOf(TypeError);
    expect(err.code).toBe(ErrorCodes.INVALID_ARG_TYPE);
  });

  it('require() and import() of hwsq share one pin stack per thread', async () => {
    twoCpus();
    type PinApi = Pick<typeof import('../lib/index'), 'pinToCpus' | 'unpin'>;
    const cjs = createRequire(import.meta.url)('../dist/index.js') as PinApi;
    const esm = (await import('../dist/index.mjs')) as PinApi;
    const a = cjs.pinToCpus([last]);
    expect(esm.unpin()).toBe(true);
    expect(getAffinity()).toEqual(original);
    expectCode(() => a.unpin(), RangeError, ErrorCodes.NOT_PINNED);
    esm.pinToCpus([first]);
    const b = cjs.pinToCpus([last]);
    expect(unpin()).toBe(true); // this file's lib/ copy pops what dist/ pushed
    expect(getAffinity()).toEqual([first]);
    expectCode(() => b.unpin(), RangeError, ErrorCodes.NOT_PINNED);
    expect(cjs.unpin()).toBe(true);
    expect(esm.unpin()).toBe(false);
  });

  it('a process started under taskset -c gets ERR_HWSQ_CPU_NOT_ALLOWED for other CPUs', () => {
    twoCpus();
    const r = spawnSync('taskset', ['-c', String(first), process.execPath, fileURLToPath(new URL('./fixtures/pin-model.cjs', import.meta.url)), 'taskset', String(first)], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.allowedCpus).toEqual([first]);
    expect(out.parallelism).toBe(1);
    for (const p of out.pinEach) {
      if (p.cpu === first) expect(p).toMatchObject({ ok: true, affinity: [first] });
      else expect(p).toMatchObject({ ok: false, name: 'RangeError', code: 'ERR_HWSQ_CPU_NOT_ALLOWED', unchanged: true });
    }
    expect(out.pinNode).toMatchObject({ ok: true, cpus: [first] });
    expect(out.runtime).toEqual({ cpus: [[first]], affinity: [[first]] });
  });

  it('a main thread pinned before hwsq loads does not narrow the set (the other threads keep the start mask)', () => {
    twoCpus();
    const r = spawnSync(process.execPath, [fileURLToPath(new URL('./fixtures/pin-model.cjs', import.meta.url)), 'main-pinned', String(first)], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.mainAffinity).toEqual([first]);
    expect(out.allowedCpus).toEqual(all);
    for (const p of out.pinEach) expect(p).toMatchObject({ ok: true, affinity: [p.cpu] });
    expect(out.runtime.cpus).toEqual(all.map((c) => [c]));
    expect(out.runtime.affinity).toEqual(all.map((c) => [c]));
  });
});

describe('worker termination', () => {
  it('terminating a Worker in the middle of native calls never aborts the process', () => {
    // Before NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS, a call cut short by terminate() threw a
    // C++ exception out of node-addon-api's callback wrapper: "terminate called ... Napi::Error".
    const script = fileURLToPath(new URL('./fixtures/terminate-mid-call.cjs', import.meta.url));
    const r = spawnSync(process.execPath, [script, '150'], { encoding: 'utf8', timeout: 120_000 });
    expect(r.stderr).not.toMatch(/terminate called/);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('ok');
  }, 130_000);
});
