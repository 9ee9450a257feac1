// Runs inside a multi-NUMA QEMU guest (see test/numa.vm.test.ts): exercises the NUMA layer and
// collects independent views (numactl -H, /proc/self/numa_maps, /proc status) for the host test
// to compare. Prints one JSON object.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const { readFileSync } = fs;
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

// ---- the pinning model: pins name the process's CPUs whatever the caller's pin ----

const sample = () => ({ cpu: hwsq.currentCpu(), node: hwsq.currentNode() });

// Pin to each node in turn without unpinning in between; the first pin's unpin undoes them all.
function pinInTurn(cpuNodes) {
  const pins = [];
  const steps = cpuNodes.map((k) => {
    const pin = hwsq.pinToNumaNode(k);
    pins.push(pin);
    return { node: k, cpus: [...pin.cpus], affinity: hwsq.getAffinity(), sample: sample() };
  });
  pins[0].unpin();
  return { steps, after: hwsq.getAffinity() };
}

// A Worker started by a thread pinned to node `from` pins itself to node `to`.
function workerFromPinned(from, to) {
  const pin = hwsq.pinToNumaNode(from);
  return new Promise((resolve, reject) => {
    const w = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const hwsq = require(workerData.lib);
       const inherited = hwsq.getAffinity();
       const pin = hwsq.pinToNumaNode(workerData.to);
       const samples = [];
       for (let i = 0; i < 10; i++) samples.push({ cpu: hwsq.currentCpu(), node: hwsq.currentNode() });
       parentPort.postMessage({ inherited, cpus: [...pin.cpus], affinity: hwsq.getAffinity(), samples });`,
      { eval: true, workerData: { to, lib: path.resolve(__dirname, '../../dist/index.js') } },
    );
    w.once('message', (m) => {
      pin.unpin();
      resolve({ from, to, ...m });
      w.terminate();
    });
    w.once('error', reject);
  });
}

// Runtimes created by a thread pinned to node `from`: where their Ps are placed and run.
async function runtimesFromPinned(from) {
  const pin = hwsq.pinToNumaNode(from);
  const locate = async (rt) => (await rt.locate()).map((l) => ({ node: l.node, cpuNode: l.cpuNode, cpu: l.cpu, affinity: l.affinity }));
  const spread = hwsq.createNativeRuntime({ pin: 'node' });
  const confined = hwsq.createNativeRuntime({ pin: 'node', confineToCaller: true });
  const result = { from, spread: await locate(spread), confined: await locate(confined) };
  await Promise.all([spread.close(), confined.close()]);
  // The JS Runtime: getcpu from inside tasks, until every P ran one.
  const rt = await hwsq.Runtime.start({ filename: path.resolve(__dirname, '../fixtures/tasks/pins.mjs') });
  const seen = new Map();
  for (let i = 0; i < 200 && seen.size < rt.workers.length; i++) {
    for (const r of await Promise.all(rt.spawnMany('threadInfo', rt.workers.map(() => [])))) seen.set(r.worker, r);
  }
  result.js = { workers: rt.workers.map((w) => ({ node: w.node, cpus: w.cpus })), tasks: [...seen.values()] };
  await rt.close();
  pin.unpin();
  return result;
}

// A process-scope pin and unpin while a runtime runs: its Ps keep their pins.
async function processPinUnderRuntime(cpu) {
  const rt = hwsq.createNativeRuntime({ pin: 'node' });
  const where = async () => (await rt.locate()).map((l) => l.affinity);
  const before = await where();
  const pin = hwsq.pinToCpus([cpu], { scope: 'process' });
  const during = await where();
  const mainDuring = hwsq.getAffinity();
  pin.unpin();
  const after = await where();
  await rt.close();
  return { before, during, after, mainDuring, mainAfter: hwsq.getAffinity() };
}

// A child process in a cgroup v2 cpuset of one CPU, which it then grows to every CPU and shrinks
// to the last: the process's CPUs follow the cpuset both ways.
function cpusetChild(all) {
  const cg = '/tmp/hwsq-cgroup';
  fs.mkdirSync(cg, { recursive: true });
  execFileSync('mount', ['-t', 'cgroup2', 'none', cg]);
  const dir = path.join(cg, 'pins');
  try {
    fs.writeFileSync(path.join(cg, 'cgroup.subtree_control'), '+cpuset');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'cpuset.cpus'), String(all[0]));
    // The shell moves itself into the cgroup, then becomes node: hwsq loads inside the cpuset.
    const out = execFileSync('/bin/sh', ['-c', `echo $$ > ${dir}/cgroup.procs && exec "$0" "$@"`, process.execPath,
      path.resolve(__dirname, '../fixtures/pin-model.cjs'), 'cpuset', String(all[0]), dir, all.join(',')], { encoding: 'utf8' });
    return JSON.parse(out);
  } finally {
    try { fs.rmdirSync(dir); } catch { /* still busy: the umount below fails too, harmless in a guest */ }
    try { execFileSync('umount', [cg]); } catch { /* idem */ }
  }
}

// A child process started under `taskset -c <cpu>`.
function tasksetChild(cpu) {
  const out = execFileSync('taskset', ['-c', String(cpu), process.execPath, path.resolve(__dirname, '../fixtures/pin-model.cjs'), 'taskset', String(cpu)], { encoding: 'utf8' });
  return { cpu, ...JSON.parse(out) };
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
  const firstCpu = topo.allowedCpus[0];
  result.pinModel = {
    inTurn: pinInTurn(cpuNodes),
    workerFromPinned: await workerFromPinned(cpuNodes[0], cpuNodes[cpuNodes.length - 1]),
    runtimes: await runtimesFromPinned(cpuNodes[0]),
    processPin: await processPinUnderRuntime(firstCpu),
    taskset: tasksetChild(firstCpu),
    cpuset: cpusetChild(topo.allowedCpus),
  };
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
