// Runs inside a multi-NUMA QEMU guest (see test/multinode.vm.test.ts): the checks that cannot
// fail on a one-node machine.
//  1. The native test binaries (build-native-plain/, built on the host by the native stage) with
//     HWSQ_EXPECT_NODES set, so their multi-node cases run -- or fail -- instead of returning
//     early as they do on one node.
//  2. JS counterparts of unit checks that only see node 0 on the host (test/affinity.test.ts'
//     memory policy while pinned, test/memory.test.ts' first touch, isMemoryLocal's default
//     node and the preferred policy): every node in turn, with numactl -H as the reference.
// Prints one JSON object for the host test to assert on.
//   node test/guest/multinode-checks.cjs <nodes QEMU was given> <binary>[=<case filter>]...
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '../..');
const hwsq = require(path.join(root, 'dist/index.js'));
const binding = require('node-gyp-build')(root);
const MiB = 1024 * 1024;

// Each entry: a binary, or binary=filter to run only the cases whose name contains filter.
function nativeTests(binaries, expectNodes) {
  return binaries.map((entry) => {
    const [name, filter] = entry.split('=');
    const t0 = Date.now();
    const r = spawnSync(path.join(root, 'build-native-plain', name), filter ? [filter] : [], {
      encoding: 'utf8',
      env: { ...process.env, HWSQ_EXPECT_NODES: String(expectNodes) },
      timeout: 240_000,
    });
    return { name, filter: filter ?? null, ms: Date.now() - t0, status: r.status, signal: r.signal, error: r.error ? String(r.error) : null, stdout: r.stdout, stderr: r.stderr };
  });
}

// pinToNumaNode(k): the thread's policy prefers k while pinned (and is restored after); plain
// memory this thread first-touches lands on k; pageNodes/isMemoryLocal see it there.
function pinnedMemory(k) {
  const before = binding.getMemPolicy();
  const pin = hwsq.pinToNumaNode(k);
  const during = binding.getMemPolicy();
  // Not allocOnNode: the thread policy decides. 40 MiB: above glibc's largest mmap threshold,
  // so these are fresh pages, not heap memory touched earlier on another node.
  const plain = new ArrayBuffer(40 * MiB);
  const u8 = new Uint8Array(plain);
  for (let i = 0; i < u8.length; i += 4096) u8[i] = 1;
  u8[u8.length - 1] = 1; // the buffer need not start on a page: touch the last page too
  const placement = hwsq.pageNodes(plain);
  const cpuNode = hwsq.currentNode();
  const localDefault = hwsq.isMemoryLocal(plain); // no node given: the node this thread runs on
  pin.unpin();
  const after = binding.getMemPolicy();
  const strict = hwsq.pinToNumaNode(k, { memory: 'bind' });
  const bound = binding.getMemPolicy();
  strict.unpin();
  return { node: k, before, during, after, bound, firstTouch: placement.byNode, firstTouchPages: placement.pages.length, cpuNode, localDefault };
}

// allocOnNode with the preferred policy, on each node with memory.
function preferred(k) {
  const buf = hwsq.allocOnNode(2 * MiB, k, { policy: 'preferred' });
  const p = hwsq.pageNodes(buf);
  return { node: k, byNode: p.byNode, pages: p.pages.length, local: hwsq.isMemoryLocal(buf, k) };
}

function main() {
  const [expectNodes, ...binaries] = process.argv.slice(2);
  const topo = hwsq.topology();
  const numactl = execFileSync('numactl', ['-H'], { encoding: 'utf8' });
  const result = {
    numactl,
    nodes: topo.nodes.map((n) => ({ id: n.id, cpus: n.cpus, hasMemory: n.hasMemory })),
    native: nativeTests(binaries, Number(expectNodes)),
    pinned: topo.nodes.filter((n) => n.cpus.length > 0).map((n) => pinnedMemory(n.id)),
    preferred: topo.nodes.filter((n) => n.hasMemory).map((n) => preferred(n.id)),
  };
  process.stdout.write(JSON.stringify(result) + '\n');
}

main();
