import { describe, expect, it, afterEach } from 'vitest';
import { Worker } from 'node:worker_threads';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  currentCpu,
  currentNode,
  getAffinity,
  pinToCpus,
  pinToNumaNode,
  topology,
  unpin,
  ErrorCodes,
} from '../lib/index';
import { expectCode } from './helpers';

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
    const { native } = await import('../lib/native');
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
