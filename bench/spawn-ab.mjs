#!/usr/bin/env node
// Two builds of the addon, A and B, on the in-process C++ spawn loop of `hwsq bench spawn`
// (benchSpawn: 10^6 no-op tasks, external batches of 256 or one task spawning all), in ONE
// process: both are loaded (each .node file is its own module, with its own task pool and
// thread-locals) and called in alternating order, one repetition each per round, so that the
// host's load drifts over both alike. How the spawn-path changes of issue 16 were judged on a
// machine whose figures move by 3x within minutes.
//   cp build/Release/hwsq.node /tmp/a.node   # before the change
//   ... rebuild ...
//   node bench/spawn-ab.mjs /tmp/a.node build/Release/hwsq.node [--mode inside|external] [--rounds 30] [--workers 2] [--processes]
// Prints each build's best and median ns/task and the median of the per-round B/A ratios
// (< 1: B is faster). --processes: each repetition in a child process of its own instead (the
// two builds then share no heap: builds whose allocation patterns differ disturb each other's
// figures in one process, by up to 4x once the light tasks of 2026-12-03 changed them). Options: NativeRuntime's defaults (stats on, 1 task in 256 timed, idle
// spin 50 us), unpinned, no stats file; a build older than an option ignores it.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    mode: { type: 'string', default: 'inside' }, rounds: { type: 'string', default: '30' }, workers: { type: 'string', default: '2' },
    tasks: { type: 'string', default: '1000000' }, processes: { type: 'boolean', default: false }, child: { type: 'boolean', default: false },
  },
});
if (positionals.length !== (values.child ? 1 : 2) || !['inside', 'external'].includes(values.mode)) {
  console.error('usage: node bench/spawn-ab.mjs <a.node> <b.node> [--mode inside|external] [--rounds N] [--workers N] [--tasks N] [--processes]');
  process.exit(1);
}
const rounds = Number(values.rounds);
const tasks = Number(values.tasks);
const config = {
  workers: Number(values.workers), placement: 'none', pin: 'none', confineToCaller: false, policy: 'hierarchical',
  hogThresholdNs: 10_000_000, numaNode: -1, cgroupPollMs: 0, cgroupFsroot: '', stats: true, timingSampleShift: 8,
  sysmon: true, idleSpinNs: 50_000, virtualNodes: 0, virtualWorkersPerNode: 0, shm: false,
};
const load = (file) => {
  const m = { exports: {} };
  process.dlopen(m, path.resolve(file));
  return m.exports.benchSpawn;
};
if (values.child) {  // one repetition (after a warm-up) of one build, printed for the parent
  const benchSpawn = load(positionals[0]);
  benchSpawn(config, values.mode, Math.max(1, Math.floor(tasks / 5)), 1);
  console.log(benchSpawn(config, values.mode, tasks, 1).nsPerTask);
  process.exit(0);
}
const self = fileURLToPath(import.meta.url);
const builds = positionals.map((file) => {
  if (!values.processes) return { file, run: load(file), ns: [] };
  const args = [self, file, '--child', '--mode', values.mode, '--workers', values.workers, '--tasks', String(tasks)];
  return { file, run: () => ({ nsPerTask: Number(execFileSync(process.execPath, args, { encoding: 'utf8' }).trim()) }), ns: [] };
});
if (!values.processes) for (const b of builds) b.run(config, values.mode, Math.max(1, Math.floor(tasks / 5)), 1);  // warm-up
for (let r = 0; r < rounds; r++) {
  for (let i = 0; i < 2; i++) {
    const b = builds[(r + i) % 2];
    b.ns.push(b.run(config, values.mode, tasks, 1).nsPerTask);
  }
}
const median = (xs) => [...xs].sort((x, y) => x - y)[xs.length >> 1];
for (const [name, b] of [['A', builds[0]], ['B', builds[1]]]) {
  console.log(`${name} ${b.file}: ${values.mode}, best ${Math.min(...b.ns).toFixed(1)} ns/task, median ${median(b.ns).toFixed(1)}`);
}
const ratios = builds[1].ns.map((x, r) => x / builds[0].ns[r]);
console.log(`B/A per round: median ${median(ratios).toFixed(3)} (${Math.min(...ratios).toFixed(3)}..${Math.max(...ratios).toFixed(3)}) over ${rounds} rounds`);
