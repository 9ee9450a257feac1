// Runs inside a multi-NUMA QEMU guest (see test/memory-affinity.vm.test.ts): memory-affine
// spawns on real nodes. For every node with memory: a SharedArrayBuffer moved there (found by
// the page sample), allocOnNode memory in `transfer` (its recorded node), the same from inside a
// task (nested spawn, and a task that allocates and transfers), spawnMany, spawnNative touch;
// each task reports the node of the P it ran on. Then a runtime confined to one node, and the
// `hwsq bench compare --auto --rotate-memory` variant, and the same workload run as one process
// per node (`hwsq run --per-node`), for the README's trade-off figures. Prints one JSON object.
// TCG timings mean nothing: the host test checks placement and cross-NUMA traffic only.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '../..');
const hwsq = require(path.join(root, 'dist/index.js'));
const cli = path.join(root, 'bin', 'hwsq.js');
const TASKS = path.join(root, 'test/fixtures/tasks/affine.mjs');
const TRIALS = 6;  // spawns per case, one at a time: the node's P is never saturated, so none is stolen

// The node with Ps nearest a memory node, as the README states the rule (an oracle written
// apart from lib/numa/memory-affinity.ts): itself, else the smallest SLIT distance, ties to the lower id.
function expectedNode(topo, k) {
  const withPs = topo.nodes.filter((n) => n.cpus.length > 0).map((n) => n.id);
  if (withPs.includes(k)) return k;
  const from = topo.nodes.find((n) => n.id === k);
  const dist = (id) => from.distances[topo.nodes.findIndex((n) => n.id === id)];
  return [...withPs].sort((a, b) => dist(a) - dist(b) || a - b)[0];
}

function sabOn(node, bytes = 1 << 20) {
  const sab = new SharedArrayBuffer(bytes);
  new Uint8Array(sab).fill(1);
  hwsq.movePages(sab, node);
  return sab;
}

async function runtimeChecks(topo) {
  const memNodes = topo.nodes.filter((n) => n.hasMemory).map((n) => n.id);
  const rt = await hwsq.Runtime.start({ filename: TASKS });
  const out = { runtimeNodes: [...new Set(rt.workers.map((w) => w.node))], workersPerNode: {}, cases: [] };
  for (const w of rt.workers) out.workersPerNode[w.node] = (out.workersPerNode[w.node] ?? 0) + 1;
  try {
    for (const k of memNodes) {
      const sab = sabOn(k);
      const sabPages = hwsq.pageNodes(sab).byNode;
      // The parents of nested spawns run on another node than the child's: a node whose only P
      // runs the parent is saturated, and its queue may then be raided (the scheduler's spill rule).
      const parentNode = out.runtimeNodes.find((n) => n !== expectedNode(topo, k));
      const c = { memoryNode: k, sabPages, sab: [], transfer: [], nested: [], nestedTransfer: [], many: [], native: null, fallbacks: {} };
      const fallbacks = () => rt.stats().memoryAffinity.affineFallback;
      const kinds = {
        sab: async () => (await rt.spawn('whereWith', [new Int32Array(sab)], { node: 'auto' })).node,
        transfer: async () => {
          const buf = hwsq.allocOnNode(1 << 20, k);
          return (await rt.spawn('whereWith', [new Uint8Array(buf)], { node: 'auto', transfer: [buf] })).node;
        },
        nested: async () => (await rt.spawn('nested', [[sab], { node: 'auto' }], { node: parentNode })).node,
        nestedTransfer: async () => (await rt.spawn('allocAndSpawn', [1 << 16, k, { node: 'auto' }], { node: parentNode })).node,
      };
      for (const [kind, run] of Object.entries(kinds)) {
        const before = fallbacks();
        for (let i = 0; i < TRIALS; i++) c[kind].push(await run());
        c.fallbacks[kind] = fallbacks() - before;
      }
      const beforeMany = fallbacks();
      c.many = (await Promise.all(rt.spawnMany('whereWith', [[sab], [new Uint8Array(sab, 64, 64)]], { node: 'auto' }))).map((r) => r.node);
      c.fallbacks.many = fallbacks() - beforeMany;
      out.cases.push(c);
    }
    // No buffer: placed as usual (fallback).
    await rt.spawn('whereWith', [1, 2], { node: 'auto' });
    out.stats = rt.stats().memoryAffinity;
  } finally {
    await rt.close();
  }
  // NativeRuntime: touch tasks with node 'auto' run where their buffer is.
  const nrt = hwsq.createNativeRuntime({ memoryAffinity: true });
  try {
    for (const c of out.cases) {
      const before = nrt.stats().nodes.map((n) => ({ node: n.node, executed: n.executed }));
      const buf = hwsq.allocOnNode(1 << 16, c.memoryNode);
      for (let i = 0; i < TRIALS; i++) await nrt.spawnNative('touch', { buffer: buf });
      const after = nrt.stats().nodes;
      c.native = Object.fromEntries(after.map((n) => [n.node, n.executed - before.find((b) => b.node === n.node).executed]));
    }
    out.nativeStats = nrt.stats().memoryAffinity;
  } finally {
    await nrt.close();
  }
  return out;
}

// A runtime confined to the first node with CPUs, given memory on every other node with memory:
// it runs everything on its only node and counts it as affine (the nearest node with Ps).
async function confinedChecks(topo) {
  const first = topo.nodes.find((n) => n.cpus.length > 0).id;
  const rt = await hwsq.Runtime.start({ filename: TASKS, placement: [{ node: first }], memoryAffinity: true });
  try {
    const ran = [];
    for (const n of topo.nodes.filter((x) => x.hasMemory && x.id !== first)) ran.push((await rt.spawn('whereWith', [sabOn(n.id)])).node);
    return { node: first, ran, stats: rt.stats().memoryAffinity };
  } finally {
    await rt.close();
  }
}

const COMPARE = ['--quick', '--tasks', '2000', '--size', '16K', '--buffer', '2M', '--reps', '1'];

function compare() {
  const file = '/tmp/compare-auto.json';
  const text = execFileSync(process.execPath, [cli, 'bench', 'compare', ...COMPARE, '--auto', '--rotate-memory', '--json', file], { encoding: 'utf8', timeout: 150_000 });
  return { json: JSON.parse(fs.readFileSync(file, 'utf8')), text };
}

// The same workload as one process per node: each copy is confined to its node (hwsq run --per-node).
function perNode(topo) {
  const dir = fs.mkdtempSync('/tmp/affine-per-node-');
  const cmd = `${JSON.stringify(process.execPath)} ${JSON.stringify(cli)} bench compare ${COMPARE.join(' ')} --json ${dir}/compare-$HWSQ_NUMA_NODE.json > /dev/null`;
  execFileSync(process.execPath, [cli, 'run', '--per-node', '--', 'sh', '-c', cmd], { encoding: 'utf8', timeout: 240_000 });
  const copies = {};
  for (const n of topo.nodes.filter((x) => x.cpus.length > 0)) {
    const f = `${dir}/compare-${n.id}.json`;
    copies[n.id] = fs.existsSync(f) ? JSON.parse(fs.readFileSync(f, 'utf8')).results : null;
  }
  return copies;
}

async function main() {
  const topo = hwsq.topology();
  const result = {
    topology: { nodes: topo.nodes.map((n) => ({ id: n.id, cpus: n.cpus, hasMemory: n.hasMemory, distances: n.distances })) },
    runtime: await runtimeChecks(topo),
    confined: await confinedChecks(topo),
  };
  if (process.argv.includes('--bench')) {
    result.compare = compare();
    result.perNode = perNode(topo);
  }
  process.stdout.write(JSON.stringify(result) + '\n');
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
