import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  allocInterleaved,
  allocOnNode,
  isMemoryLocal,
  movePages,
  pageNodes,
  topology,
  ErrorCodes,
  currentNode,
} from '../lib/index';
import { expectCode } from './helpers';

const topo = topology();
const memNode = topo.nodes.find((n) => n.hasMemory)!;
const MiB = 1024 * 1024;

// On a one-node machine most placement checks here cannot fail. Their counterparts run where
// they can: test/numa.vm.test.ts (allocOnNode, movePages, interleave against numa_maps) and
// test/multinode.vm.test.ts (first touch, isMemoryLocal's default node, the preferred policy).
describe('node-local memory', () => {
  it('allocOnNode places every page on the node', () => {
    const buf = allocOnNode(8 * MiB, memNode.id);
    expect(buf).toBeInstanceOf(ArrayBuffer);
    expect(buf.byteLength).toBe(8 * MiB);
    const placement = pageNodes(buf);
    expect(placement.pages.length).toBe((8 * MiB) / placement.pageSize);
    expect(placement.byNode).toEqual({ [memNode.id]: placement.pages.length });
    expect(placement.notPresent).toBe(0);
    expect(isMemoryLocal(buf, memNode.id)).toBe(true);
  });

  it('memory is usable from JS without copying: writes through one view are seen by another', () => {
    const buf = allocOnNode(3 * 4096 + 17, memNode.id);
    expect(buf.byteLength).toBe(3 * 4096 + 17);
    const a = new Uint32Array(buf, 0, 1024);
    const b = new Uint8Array(buf);
    a.fill(0x01020304);
    expect(b[0]).toBe(4);
    b[b.length - 1] = 9;
    expect(new Uint8Array(buf)[b.length - 1]).toBe(9);
  });

  it('supports the preferred and interleave policies', () => {
    const preferred = allocOnNode(2 * MiB, memNode.id, { policy: 'preferred' });
    expect(pageNodes(preferred).byNode[memNode.id]).toBe(pageNodes(preferred).pages.length);
    const nodes = topo.nodes.filter((n) => n.hasMemory).map((n) => n.id);
    const inter = allocInterleaved(4 * MiB);
    const placement = pageNodes(inter);
    // Round-robin: each node holds its share of pages (exactly, give or take one page).
    for (const id of nodes) {
      expect(Math.abs(placement.byNode[id]! - placement.pages.length / nodes.length)).toBeLessThanOrEqual(1);
    }
  });

  it('pageNodes accepts every buffer kind and reports untouched pages', () => {
    const buf = allocOnNode(64 * 1024, memNode.id);
    expect(pageNodes(new Uint16Array(buf, 4096, 100)).pages.length).toBe(1);
    expect(pageNodes(new DataView(buf)).pages.length).toBe(16);
    expect(pageNodes(Buffer.alloc(10)).pages.length).toBeGreaterThanOrEqual(1);
    const sab = new SharedArrayBuffer(1 << 20);
    new Uint8Array(sab)[0] = 1; // first page touched, later ones maybe not
    const placement = pageNodes(sab);
    expect(placement.pages[0]).toBe(currentNode());
    expect(pageNodes(new ArrayBuffer(0)).pages.length).toBe(0);
    expectCode(() => pageNodes('abc' as unknown as ArrayBuffer), TypeError, ErrorCodes.INVALID_ARG_TYPE);
  });

  it('isMemoryLocal defaults to the node this thread runs on', () => {
    const buf = allocOnNode(MiB, currentNode());
    expect(isMemoryLocal(buf)).toBe(true);
    expect(isMemoryLocal(new ArrayBuffer(0))).toBe(false);
  });

  it('movePages migrates pages and returns the new placement', () => {
    const buf = allocOnNode(MiB, memNode.id, { policy: 'preferred' });
    const after = movePages(buf, memNode.id);
    expect(after.byNode[memNode.id]).toBe(after.pages.length);
    expectCode(() => movePages(buf, 9999), RangeError, ErrorCodes.UNKNOWN_NODE);
  });

  it('rejects bad sizes and nodes with typed errors', () => {
    expectCode(() => allocOnNode(0, memNode.id), RangeError, ErrorCodes.BAD_SIZE);
    expectCode(() => allocOnNode(-1, memNode.id), RangeError, ErrorCodes.BAD_SIZE);
    expectCode(() => allocOnNode(Number.NaN, memNode.id), RangeError, ErrorCodes.BAD_SIZE);
    expectCode(() => allocOnNode(1.5, memNode.id), RangeError, ErrorCodes.BAD_SIZE);
    expectCode(() => allocOnNode(2 ** 52, memNode.id), RangeError, ErrorCodes.BAD_SIZE);
    expectCode(() => allocOnNode('1' as unknown as number, memNode.id), TypeError, ErrorCodes.INVALID_ARG_TYPE);
    expectCode(() => allocOnNode(4096, 9999), RangeError, ErrorCodes.UNKNOWN_NODE);
    expectCode(() => allocOnNode(4096, -3), RangeError, ErrorCodes.INVALID_ARG);
    expectCode(() => allocOnNode(4096, []), RangeError, ErrorCodes.UNKNOWN_NODE);
    expectCode(() => allocOnNode(4096, memNode.id, { policy: 'nearby' as 'bind' }), RangeError, ErrorCodes.INVALID_ARG);
  });

  it('frees the memory when the ArrayBuffer is garbage-collected', () => {
    // 64 allocations of 64 MiB = 4 GiB in total: without unmapping on GC the RSS would grow past it.
    const script = `
      const hwsq = require(${JSON.stringify(fileURLToPath(new URL('../dist/index.js', import.meta.url)))});
      const rss = () => Number(/VmRSS:\\s*(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
      // N-API runs external-buffer finalizers from the event loop after GC, so yield once per round.
      (async () => {
        let peak = 0;
        for (let i = 0; i < 64; i++) {
          let b = hwsq.allocOnNode(64 * 1024 * 1024, ${memNode.id});
          new Uint8Array(b)[i] = 1;
          b = null;
          globalThis.gc();
          await new Promise((resolve) => setImmediate(resolve));
          peak = Math.max(peak, rss());
        }
        console.log(JSON.stringify({ peak }));
      })();`;
    const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const { peak } = JSON.parse(r.stdout) as { peak: number };
    expect(peak).toBeLessThan(1024 * MiB);
  });
});
