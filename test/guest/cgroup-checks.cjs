// Runs inside a multi-NUMA QEMU guest (see test/cgroup.vm.test.ts): a real cgroup v2 hierarchy.
// Mounts cgroup2, moves this process into a child group, starts runtimes with workers 'auto'
// and rewrites the group's cpu.max and cpuset.cpus while they run. Collects, after each write,
// the 'parallelism' event, the stats, and each P's CPU and affinity as its own thread reports
// them (a task sent to it, test/fixtures/tasks/barrier-pins.mjs), plus the masks of every thread of the
// process (/proc/self/task) for the NativeRuntime. The node of each CPU comes from sysfs, not
// from hwsq. Prints one JSON object; the host test judges it.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '../..');
const hwsq = require(path.join(root, 'dist/index.js'));
const CG = '/sys/fs/cgroup';
const GROUP = path.join(CG, 'hwsq-follow');

function parseList(text) {
  const out = [];
  for (const part of text.trim().split(',').filter(Boolean)) {
    const [a, b] = part.split('-').map(Number);
    for (let c = a; c <= (b ?? a); c++) out.push(c);
  }
  return out;
}

function machine() {
  const base = '/sys/devices/system/node';
  const nodes = fs
    .readdirSync(base)
    .filter((d) => /^node\d+$/.test(d))
    .map((d) => ({ id: Number(d.slice(4)), cpus: parseList(fs.readFileSync(path.join(base, d, 'cpulist'), 'utf8')) }))
    .filter((n) => n.cpus.length > 0)
    .sort((a, b) => a.id - b.id);
  return { nodes, cpus: nodes.flatMap((n) => n.cpus).sort((a, b) => a - b) };
}

function enterGroup() {
  if (!fs.existsSync(path.join(CG, 'cgroup.controllers'))) {
    const m = spawnSync('mount', ['-t', 'cgroup2', 'none', CG], { encoding: 'utf8' });
    if (m.status !== 0) throw new Error(`mount cgroup2: ${m.stderr}`);
  }
  fs.writeFileSync(path.join(CG, 'cgroup.subtree_control'), '+cpu +cpuset');
  fs.mkdirSync(GROUP, { recursive: true });
  fs.writeFileSync(path.join(GROUP, 'cgroup.procs'), String(process.pid));
  const self = fs.readFileSync('/proc/self/cgroup', 'utf8').trim();
  return { self, controllers: fs.readFileSync(path.join(GROUP, 'cgroup.controllers'), 'utf8').trim() };
}

const write = (file, value) => fs.writeFileSync(path.join(GROUP, file), value);
const effective = () => parseList(fs.readFileSync(path.join(GROUP, 'cpuset.cpus.effective'), 'utf8'));

// A cpuset write that would not change the effective CPUs (a machine of one CPU per node, say)
// moves nothing and sends no event: such a step is left out.
const unchanged = (file, value) => file === 'cpuset.cpus' && JSON.stringify(parseList(value).sort((a, b) => a - b)) === JSON.stringify(effective());

// The next 'parallelism' event, or null after `ms` (a write that changes nothing sends none).
function nextEvent(rt, ms = 60_000) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      rt.off('parallelism', on);
      resolve(null);
    }, ms);
    const on = (e) => {
      clearTimeout(timer);
      resolve(e);
    };
    rt.once('parallelism', on);
  });
}

// The active Ps' view of themselves: as many tasks as active Ps, each holding its P until all
// have started (fixture barrier-pins.mjs), so each active P runs one (limited Ps take no shared
// work). Each reports after its P's re-pin check at the top of the round that took it.
async function perWorker(rt) {
  const n = rt.stats().activeWorkers;
  const counter = new Int32Array(new SharedArrayBuffer(4));
  const out = await Promise.all(Array.from({ length: n }, () => rt.spawn('arrive', [counter, n])));
  return out.sort((a, b) => a.worker - b.worker);
}

function snapshot(rt) {
  const s = rt.stats();
  return {
    parallelism: s.parallelism,
    activeWorkers: s.activeWorkers,
    source: s.parallelismSource,
    active: s.workers.map((w) => w.active),
  };
}

// Every thread's allowed CPUs (procfs, the kernel's view).
function threadMasks() {
  const out = [];
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      const status = fs.readFileSync(`/proc/self/task/${tid}/status`, 'utf8');
      out.push(parseList(/Cpus_allowed_list:\s*(\S+)/.exec(status)[1]));
    } catch {
      // the thread exited meanwhile
    }
  }
  return out;
}

async function jsRuntime(m) {
  const steps = [];
  const rt = await hwsq.Runtime.start({ filename: path.join(root, 'test/fixtures/tasks/barrier-pins.mjs'), workers: 'auto', placement: 'cpu', cgroupPollMs: 20 });
  const workers = rt.workers.map((w) => ({ worker: w.worker, node: w.node, cpus: w.cpus }));
  const step = async (name, file, value) => {
    if (unchanged(file, value)) return;
    const event = nextEvent(rt);
    write(file, value);
    const e = await event;
    steps.push({ name, file, value, effective: effective(), event: e, stats: snapshot(rt), threads: await perWorker(rt) });
  };
  steps.push({ name: 'start', effective: effective(), event: null, stats: snapshot(rt), threads: await perWorker(rt) });
  await step('cpu.max one CPU', 'cpu.max', '100000 100000');
  await step('cpu.max unlimited', 'cpu.max', 'max 100000');
  const last = m.nodes[m.nodes.length - 1];
  await step('cpuset: the last node only', 'cpuset.cpus', last.cpus.join(','));
  // One CPU per node, never a node's first: the Ps that stay active lost their own CPU (none
  // such on a machine of one CPU per node: that cpuset would be every CPU).
  if (m.nodes.some((n) => n.cpus.length > 1)) {
    const onePerNode = m.nodes.map((n) => n.cpus[n.cpus.length - 1]);
    await step('cpuset: one CPU per node, the last', 'cpuset.cpus', onePerNode.join(','));
  }
  await step('cpuset: every CPU again', 'cpuset.cpus', m.cpus.join(','));
  await rt.close();
  return { workers, steps };
}

async function nativeRuntime(m) {
  const rt = hwsq.createNativeRuntime({ workers: 'auto', placement: 'cpu', cgroupPollMs: 20 });
  const topo = rt.topology();
  const workers = topo.workers.map((w) => ({ worker: w.worker, node: w.node, cpus: w.cpus }));
  const steps = [];
  // Tasks on every P (spawned at each worker), so that each runs a round and re-pins.
  const roundOnEveryP = async () => {
    for (let w = 0; w < workers.length; w++) await rt.spawnNative('noop', {}, { worker: w, count: 4 });
  };
  const step = async (name, file, value) => {
    if (unchanged(file, value)) return;
    const event = nextEvent(rt);
    write(file, value);
    const e = await event;
    await roundOnEveryP();
    steps.push({ name, file, value, effective: effective(), event: e, stats: snapshot(rt), masks: threadMasks() });
  };
  await roundOnEveryP();
  steps.push({ name: 'start', effective: effective(), event: null, stats: snapshot(rt), masks: threadMasks() });
  const last = m.nodes[m.nodes.length - 1];
  await step('cpuset: the last node only', 'cpuset.cpus', last.cpus.join(','));
  await step('cpuset: every CPU again', 'cpuset.cpus', m.cpus.join(','));
  await rt.close();
  return { workers, steps };
}

(async () => {
  // It rewrites the machine's cgroup tree: only where asked to (the guest's command line).
  if (!process.argv.includes('--in-guest')) throw new Error('cgroup-checks.cjs changes the cgroup tree: run it in a test guest (test/cgroup.vm.test.ts) with --in-guest');
  const m = machine();
  const group = enterGroup();
  write('cpuset.cpus', m.cpus.join(','));
  const uname = spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim();
  const js = await jsRuntime(m);
  const native = await nativeRuntime(m);
  console.log(JSON.stringify({ kernel: uname, machine: m, group, js, native }));
})().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
