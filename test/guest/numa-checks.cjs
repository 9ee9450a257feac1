// Runs inside a multi-NUMA QEMU guest (see test/numa.vm.test.ts): exercises the NUMA layer and
// collects independent views (numactl -H, /proc/self/numa_maps, /proc status) for the host test
// to compare. Prints one JSON object.
'use strict';
const { execFileSync } = require('node:child_process');
const { readFileSync } = require('node:fs');
const { Worker } = require('node:worker_threads');
const path = require('node:path');
const hwsq = require(path.resolve(__dirname, '../../dist/index.js'));
const binding = require('node-gyp-build')(path.resolve(__dirname, '../..'));

const MiB = 1024 * 1024;

// Pin to node k, then sample getcpu a few times with yields in between: the scheduler may move
// the thread, but only within the new mask.
function pinSamples(k) {
  const pin = hwsq.pinToNumaNode(k);
  const samples = [];
  for (let i = 0; i < 20; i++) {
    const end = Date.now() + 2;
    while (Date.now() < end) { /* spin so migration can happen */ }
    samples.push({ cpu: hwsq.currentCpu(), node: hwsq.currentNode() });
  }
  const affinity = hwsq.getAffinity();
  const status = /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync('/proc/thread-self/status', 'utf8'))[1];
  pin.unpin();
  return { node: k, affinity, status, samples, after: hwsq.getAffinity() };
}

function inWorker(k) {
  return new Promise((resolve, reject) => {
    const w = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const hwsq = require(workerData.lib);
       const pin = hwsq.pinToNumaNode(workerData.k);
       const samples = [];
       for (let i = 0; i < 10; i++) samples.push({ cpu: hwsq.currentCpu(), node: hwsq.currentNode() });
       parentPort.postMessage({ node: workerData.k, affinity: hwsq.getAffinity(), samples });
       pin.unpin();`,
      { eval: true, workerData: { k, lib: path.resolve(__dirname, '../../dist/index.js') } },
    );
    w.once('message', (m) => { resolve(m); w.terminate(); });
    w.once('error', reject);
  });
}

function numaMapsLine(address) {
  const hex = address.toString(16);
  return readFileSync('/proc/self/numa_maps', 'utf8').split('\n').find((l) => l.startsWith(hex + ' ')) ?? null;
}

function memoryCheck(k, addressOf) {
  const buf = hwsq.allocOnNode(4 * MiB, k);
  const placement = hwsq.pageNodes(buf);
  return {
    node: k,
    byNode: placement.byNode,
    pages: placement.pages.length,
    local: hwsq.isMemoryLocal(buf, k),
    numaMaps: numaMapsLine(addressOf(buf)),
    keep: buf,
  };
}

async function main() {
  const topo = hwsq.topology();
  const addressOf = (buf) => binding.addressOf(new Uint8Array(buf));
  const cpuNodes = topo.nodes.filter((n) => n.cpus.length > 0).map((n) => n.id);
  const memNodes = topo.nodes.filter((n) => n.hasMemory).map((n) => n.id);
  const result = {
    topology: topo,
    numactl: execFileSync('numactl', ['-H'], { encoding: 'utf8' }),
    cli: execFileSync(process.execPath, [path.resolve(__dirname, '../../bin/hwsq.js'), 'topology'], { encoding: 'utf8' }),
    mainThread: cpuNodes.map(pinSamples),
    workers: [],
    memory: [],
    migrate: null,
    errors: {},
  };
  for (const k of cpuNodes) result.workers.push(await inWorker(k));
  const kept = [];
  for (const k of memNodes) {
    const m = memoryCheck(k, addressOf);
    kept.push(m.keep);
    delete m.keep;
    result.memory.push(m);
  }
  if (memNodes.length > 1) {
    const [from, to] = [memNodes[0], memNodes[memNodes.length - 1]];
    // 'preferred' keeps its VMA apart from the 'bind' buffers above (numa_maps is per VMA).
    const buf = hwsq.allocOnNode(2 * MiB, from, { policy: 'preferred' });
    const before = hwsq.pageNodes(buf).byNode;
    const after = hwsq.movePages(buf, to).byNode;
    result.migrate = { from, to, before, after, numaMaps: numaMapsLine(addressOf(buf)) };
    const inter = hwsq.allocInterleaved(4 * MiB);
    result.interleave = { byNode: hwsq.pageNodes(inter).byNode, numaMaps: numaMapsLine(addressOf(inter)) };
  }
  const cpuless = topo.nodes.find((n) => n.cpus.length === 0);
  for (const [name, fn] of [
    ['cpuless', () => cpuless && hwsq.pinToNumaNode(cpuless.id)],
    ['unknown', () => hwsq.pinToNumaNode(Math.max(...topo.nodes.map((n) => n.id)) + 1)],
  ]) {
    const before = hwsq.getAffinity();
    try { fn(); result.errors[name] = { threw: false }; } catch (e) {
      result.errors[name] = { threw: true, name: e.name, code: e.code, unchanged: JSON.stringify(before) === JSON.stringify(hwsq.getAffinity()) };
    }
  }
  process.stdout.write(JSON.stringify(result) + '\n');
}

main().catch((e) => { console.error(e); process.exit(1); });
