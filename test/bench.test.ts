// `hwsq bench memory | latency | compare` on this machine, through the CLI as a user runs it, and
// the helpers they share (lib/bench/common.ts). Behaviour only, never timings: the JSON has the
// documented shape, placement is verified, values are positive and finite and ordered where they
// must be (p50 <= p99 <= max), Ctrl-C stops a run and prints what finished.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  bucketize,
  describeMachine,
  formatTable,
  histogramDelta,
  loadSnapshot,
  mergeBuckets,
  otherCpus,
  parseDuration,
  parseSize,
  quantile,
  summarize,
  type BenchEnvelope,
} from '../lib/bench/common';
import { defaultMemorySize, type MemoryResults } from '../lib/bench/memory';
import type { LatencyResults } from '../lib/bench/latency';
import type { CompareResults, CompareRun } from '../lib/bench/compare';
import type { PoolsReport } from '../lib/bench/pools';
import { instructionCounts, type InstructionCounts, type PairedRatio, type SpawnBenchReport, type Spread } from '../lib/bench/spawn';
import type { HistogramStats } from '../lib/core/stats';
import { availableParallelism } from '../lib/index';
import { artifactDir, assertBuilt, hwsq, hwsqAsync, hwsqChild } from './bench-helpers';
import { numactlView } from './helpers';
import { describeWith, requirements } from './requirements';

const finitePositive = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v > 0;

// CPU time (user + system) a process has used so far, from /proc/<pid>/stat (clock ticks of 1/100 s).
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
let dir = '';

beforeAll(() => {
  assertBuilt();
  dir = artifactDir('bench');
});

describe('bench helpers', () => {
  it('parses sizes and durations', () => {
    expect(parseSize('64M')).toBe(64 * 2 ** 20);
    expect(parseSize('512KiB')).toBe(512 * 1024);
    expect(parseSize('1g')).toBe(2 ** 30);
    expect(parseSize('4096')).toBe(4096);
    expect(parseSize('12 parsecs')).toBeNaN();
    expect(parseDuration('200ms')).toBe(200);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('250')).toBe(250);
    expect(parseDuration('soon')).toBeNaN();
  });

  it('summarizes repetitions as median and spread', () => {
    const s = summarize([5, 1, 3, 2, 4]);
    expect(s).toMatchObject({ n: 5, median: 3, min: 1, max: 5, mean: 3 });
    expect(s.stdev).toBeCloseTo(Math.sqrt(2.5));
    expect(s.relSpread).toBeCloseTo(4 / 3);
    expect(summarize([7])).toMatchObject({ n: 1, median: 7, stdev: 0, relSpread: 0 });
    expect(summarize([]).n).toBe(0);
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
  });

  it('takes the difference of two histogram snapshots', () => {
    const h = (lower: number[], counts: number[], maxNs: number): HistogramStats => ({
      count: counts.reduce((a, b) => a + b, 0),
      sumNs: 0,
      meanNs: 0,
      p50Ns: 0,
      p90Ns: 0,
      p99Ns: 0,
      maxNs,
      buckets: { lowerNs: lower, upperNs: lower.map((l) => l + 10), counts },
    });
    const before = h([100, 200], [5, 1], 205);
    const after = h([100, 200, 1000], [5, 101, 1], 1004);
    const d = histogramDelta(before, after);
    expect(d.count).toBe(101);
    expect(d.buckets).toEqual({ lowerNs: [200, 1000], upperNs: [210, 1010], counts: [100, 1] });
    expect(d.p50Ns).toBe(205);
    expect(d.p99Ns).toBe(205);
    expect(d.maxNs).toBe(1004); // the snapshot's max lies in the delta's top bucket
    expect(histogramDelta(after, after).count).toBe(0);
  });

  it('buckets raw latencies for charts and merges bucket lists', () => {
    const b = bucketize([100, 100, 105, 1000, 1e6]);
    expect(b.counts.reduce((a, c) => a + c, 0)).toBe(5);
    b.lowerNs.forEach((lo, i) => expect(lo).toBeLessThan(b.upperNs[i]!));
    expect(mergeBuckets([b, b]).counts).toEqual(b.counts.map((c) => 2 * c));
  });

  it('formats tables', () => {
    expect(formatTable(['a', 'bb'], [['x', '1'], ['yyy', '22']]).split('\n')).toEqual(['a    bb', '---  --', 'x     1', 'yyy  22']);
  });

  it('sizes the memory buffer from the LLC and the free memory', () => {
    const MiB = 2 ** 20;
    expect(defaultMemorySize([64 * 1024 * MiB], 32 * MiB)).toBe(128 * MiB);
    expect(defaultMemorySize([64 * 1024 * MiB], 4 * MiB)).toBe(64 * MiB); // at least 64 MiB
    expect(defaultMemorySize([200 * MiB], 32 * MiB)).toBe(50 * MiB); // at most a quarter of the free memory
    expect(defaultMemorySize([64 * 1024 * MiB], null)).toBe(256 * MiB);
  });

  it('counts the CPUs other processes kept busy between two snapshots, leaving out this process and its children', () => {
    const before = { busy: 1000, total: 4000, own: 100 };
    // 300 busy ticks of 400 elapsed (2 CPUs, 200 each), 200 of them ours: 100 / 400 of the machine = 0.5 CPU.
    expect(otherCpus(before, { busy: 1300, total: 4400, own: 300 }, 2)).toBeCloseTo(0.5, 9);
    expect(otherCpus(before, { busy: 1300, total: 4400, own: 400 }, 2)).toBe(0); // ours and the machine's read at different instants
    expect(otherCpus(before, { busy: 1000, total: 4000, own: 100 }, 2)).toBeNull(); // no time passed
    expect(otherCpus(null, before, 2)).toBeNull();
    expect(otherCpus(before, null, 2)).toBeNull();
    const a = loadSnapshot();
    if (process.platform !== 'linux') return expect(a).toBeNull();
    expect(a).not.toBeNull();
    const until = Date.now() + 300;
    let x = 0;
    while (Date.now() < until) x += Math.sqrt(x + 1);
    const b = loadSnapshot()!;
    expect(x).toBeGreaterThan(0);
    expect(b.own).toBeGreaterThan(a!.own); // 300 ms of this thread's CPU, in ticks of 10 ms
    // The machine's busy time includes ours. /proc/stat counts it by sampling at each tick while
    // /proc/self/stat is exact, and a guest loses ticks (a CI run read 26 of 31): half is the bound.
    expect(b.busy - a!.busy).toBeGreaterThanOrEqual((b.own - a!.own) / 2);
    expect(otherCpus(a, b, os.cpus().length)).toBeGreaterThanOrEqual(0);
  });

  it('describes the machine it runs on', async () => {
    const m = await describeMachine(50);
    const numactl = numactlView();
    expect(m.cpuModel.length).toBeGreaterThan(0);
    expect(m.nodes.map((n) => n.id)).toEqual(numactl.nodes.map((n) => n.id));
    expect(m.allowedCpus).toEqual(numactl.allowedCpus);
    expect(m.kernel).toBe(os.release());
    expect(m.node).toBe(process.version);
    expect(m.cgroup.parallelism).toBe(availableParallelism().value);
    expect(Number.isFinite(m.load.loadavg1)).toBe(true);
    expect(m.load.busyCpus === null || m.load.busyCpus >= 0).toBe(true);
    expect(typeof m.load.otherLoadSeen).toBe('boolean');
  });
});

describe('hwsq bench memory', () => {
  it('writes the latency and bandwidth matrices with verified placement (--json <file>) and prints the table', () => {
    const file = path.join(dir, 'memory.json');
    const r = hwsq(['bench', 'memory', '--quick', '--size', '8M', '--duration', '10ms', '--reps', '2', '--json', file]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^machine: /);
    expect(r.stdout).toMatch(/idle latency, ns per dependent load/);
    expect(r.stdout).toMatch(/read bandwidth, GB\/s/);
    const e = JSON.parse(fs.readFileSync(file, 'utf8')) as BenchEnvelope<'memory', MemoryResults>;
    expect(e).toMatchObject({ tool: 'hwsq', kind: 'memory', interrupted: false });
    const res = e.results;
    const numactl = numactlView(); // the nodes this process may run on / allocate from
    expect(res.cpuNodes).toEqual(numactl.cpuNodes);
    expect(res.memNodes).toEqual(numactl.memNodes);
    expect(res.sizeBytes).toBe(8 * 2 ** 20);
    for (const m of [res.latencyNs, res.bandwidthBytesPerSec]) {
      expect(m).toHaveLength(res.cpuNodes.length);
      for (const row of m) {
        expect(row).toHaveLength(res.memNodes.length);
        for (const v of row) expect(finitePositive(v), String(v)).toBe(true);
      }
    }
    // One buffer per memory node. On one node these placement checks cannot fail; their
    // multi-node counterparts are in test/bench.vm.test.ts (a 3-node guest).
    expect(res.buffers.map((b) => b.memNode)).toEqual(res.memNodes);
    for (const b of res.buffers) {
      expect(b.placement.verified).toBe(true);
      expect(b.placement.byNode).toEqual({ [b.memNode]: b.placement.pages });
      expect(b.placement.pages).toBe(res.sizeBytes / 4096);
      expect(b.placementAfter?.verified).toBe(true);
    }
    expect(res.cells).toHaveLength(res.cpuNodes.length * res.memNodes.length);
    for (const c of res.cells) {
      expect(c.trusted).toBe(true);
      expect(c.latency!.samples).toHaveLength(2);
      expect(c.latency!.ranOnNode).toBe(c.cpuNode);
      expect(c.latency!.nsPerLoad.min).toBeLessThanOrEqual(c.latency!.nsPerLoad.median);
      expect(c.bandwidth!.threads).toBe(c.bandwidth!.cpus.length);
      expect(c.bandwidth!.samples).toHaveLength(2);
      expect(c.bandwidth!.samples.every(finitePositive)).toBe(true);
    }
    expect(res.trusted).toBe(true);
    expect(e.machine.nodes.map((n) => n.id)).toEqual(numactlView().nodes.map((n) => n.id));
  });

  it('refuses bad knobs with a message and exit code 1', () => {
    const r = hwsq(['bench', 'memory', '--size', 'lots']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/expected a size/);
    expect(hwsq(['bench', 'memory', '--only', 'everything']).stderr).toMatch(/--only takes 'latency' or 'bandwidth'/);
    expect(hwsq(['bench', 'latency', '--runtimes', 'go']).status).toBe(1);
  });

  it('stops on Ctrl-C (SIGINT), prints the cells that finished and exits 130', async () => {
    // 20 samples of 1 s per cell would take minutes. SIGINT comes once the process has used
    // 2.5 s of CPU: the probe thread spins through its samples, so by then at least one
    // completed, however loaded the machine (wall-clock time would not say so). How soon it
    // stops after the signal is a bench figure (bench/timing-goals.mjs), not a test.
    const child = hwsqChild(['bench', 'memory', '--size', '8M', '--duration', '1s', '--reps', '20', '--only', 'latency', '--json']);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    while (cpuSeconds(child.pid!) < 2.5) await new Promise((r) => setTimeout(r, 20));
    child.kill('SIGINT');
    const code = await exited;
    expect(code, stderr).toBe(130);
    expect(stderr).toMatch(/interrupted/);
    const e = JSON.parse(stdout) as BenchEnvelope<'memory', MemoryResults>;
    expect(e.interrupted).toBe(true);
    // The first cell had time for at least one complete sample, far from all 20.
    const first = e.results.cells[0]!;
    expect(first.latency!.samples.length).toBeGreaterThanOrEqual(1);
    expect(first.latency!.samples.length).toBeLessThan(20);
    expect(first.latency!.samples.every(finitePositive)).toBe(true);
  }, 180_000); // on a loaded machine 2.5 s of CPU can take far longer than 2.5 s
});

describe('hwsq bench latency', () => {
  it('reports p50/p90/p99/max of bursts of native and JS tasks and the idle round trip (--json on stdout)', () => {
    const r = hwsq(['bench', 'latency', '--quick', '--bursts', '100,1000', '--reps', '2', '--round-trips', '10', '--duration', '1ms', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const e = JSON.parse(r.stdout) as BenchEnvelope<'latency', LatencyResults>;
    expect(e.kind).toBe('latency');
    const res = e.results;
    expect(res.absent).toEqual([]);
    expect(res.workers).toBe(availableParallelism().value);
    expect(res.bursts.map((b) => `${b.runtime}:${b.size}`)).toEqual(['native:100', 'native:1000', 'js:100', 'js:1000']);
    for (const b of res.bursts) {
      expect(b.reps).toHaveLength(2);
      for (const q of b.reps) {
        expect(q.count).toBe(b.size); // every task of the burst was measured
        expect(finitePositive(q.p50Ns)).toBe(true);
        expect(q.p50Ns).toBeLessThanOrEqual(q.p90Ns);
        expect(q.p90Ns).toBeLessThanOrEqual(q.p99Ns);
        expect(q.p99Ns).toBeLessThanOrEqual(q.maxNs);
      }
      expect(b.buckets.counts.reduce((a, c) => a + c, 0)).toBe(2 * b.size);
    }
    expect(res.roundTrips.map((t) => t.runtime)).toEqual(['native', 'js']);
    for (const t of res.roundTrips) {
      expect(t.rounds).toBe(10);
      expect(finitePositive(t.quantiles.p50Ns)).toBe(true);
      expect(t.quantiles.p50Ns).toBeLessThanOrEqual(t.quantiles.maxNs);
    }
  });
});

describe('hwsq bench compare', () => {
  it('runs the workload under both policies with a % change column, and says so on one node', () => {
    const r = hwsq(['bench', 'compare', '--quick', '--tasks', '2000', '--size', '4K', '--buffer', '1M', '--reps', '2', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const e = JSON.parse(r.stdout) as BenchEnvelope<'compare', CompareResults>;
    const res = e.results;
    const nodes = numactlView().cpuNodes;
    expect(res.nodes).toEqual(nodes);
    expect(res.oneNode).toBe(nodes.length === 1);
    if (res.oneNode) expect(res.notes.join(' ')).toMatch(/one NUMA node/);
    expect(res.buffers).toHaveLength(nodes.length);
    expect(res.buffers.every((b) => b.verified)).toBe(true);
    for (const policy of ['flat', 'hierarchical'] as const) {
      const p = res.policies[policy]!;
      expect(p.runs).toHaveLength(2);
      for (const run of p.runs) {
        expect(run.policy).toBe(policy);
        expect(run.tasks).toBe(2000 * nodes.length);
        expect(run.totalBytes).toBe(run.tasks * 4096);
        expect(run.latency.count).toBe(run.tasks + nodes.length); // the tasks and one root per node
        expect(finitePositive(run.throughputTasksPerSec)).toBe(true);
        if (res.oneNode) {
          expect(run.crossNumaRatio).toBe(0);
          expect(run.remoteTasks).toBe(0);
          expect(run.stealsRemote).toBe(0);
        }
      }
    }
    expect(res.table.map((row) => row.metric)).toEqual([
      'p99 scheduling latency',
      'same-node steals / 10k tasks',
      'remote steals / 10k tasks',
      'global-queue pops / 10k tasks',
      'cross-NUMA memory access ratio',
      'tasks run away from home',
      'went remote / 10k tasks',
      '... while own node had work',
      'throughput',
    ]);
    // The throughput row from the runs themselves: the median of 2 runs is their mean.
    const median2 = (runs: CompareRun[]) => (runs[0]!.throughputTasksPerSec + runs[1]!.throughputTasksPerSec) / 2;
    const flat = median2(res.policies.flat!.runs);
    const hier = median2(res.policies.hierarchical!.runs);
    const tp = res.table.find((row) => row.metric === 'throughput')!;
    expect(tp.flat.median).toBeCloseTo(flat, 6);
    expect(tp.hierarchical.median).toBeCloseTo(hier, 6);
    expect(tp.changePct).toBeCloseTo(((hier - flat) / flat) * 100, 6);
  });

  it('prints the table with a change column', () => {
    const r = hwsq(['bench', 'compare', '--tasks', '1000', '--size', '4K', '--buffer', '1M', '--reps', '1']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/metric\s+flat\s+hierarchical\s+change/);
    expect(r.stdout).toMatch(/^throughput\s+.*\/s\s+.*\/s\s+[+-]\d+\.\d%$/m);
  });
});

describe('hwsq bench spawn', () => {
  it('reports default options, stats: false and full timing side by side, interleaved, with the goals as ratios', async () => {
    const r = await hwsqAsync(['bench', 'spawn', '--json', '--quick', '--tasks', '20000', '--reps', '2', '--no-go', '--workers', '2']);
    expect(r.status, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout) as SpawnBenchReport;
    const st = rep.stats;
    expect(st.rounds).toBe(400); // 200 interleaved rounds per repetition
    expect(st.tasksPerRun).toBe(20_000); // min(--tasks, 50000)
    expect(st.runsPerRuntime).toBe(5);
    expect(st.defaultTimingSampleShift).toBe(8);
    const ordered = (x: Spread) => {
      expect(finitePositive(x.min)).toBe(true);
      expect(x.min).toBeLessThanOrEqual(x.median);
      expect(x.median).toBeLessThanOrEqual(x.max);
    };
    // The median's interval lies between order statistics of the rounds' ratios: inside the spread, around the median.
    const interval = (x: PairedRatio) => {
      ordered(x);
      expect(x.ciLow).toBeGreaterThanOrEqual(x.min);
      expect(x.ciLow).toBeLessThanOrEqual(x.median);
      expect(x.ciHigh).toBeGreaterThanOrEqual(x.median);
      expect(x.ciHigh).toBeLessThanOrEqual(x.max);
    };
    for (const shape of [st.externalBatch256, st.insideTail]) {
      for (const x of [shape.defaultNs, shape.statsOffNs, shape.fullTimingNs]) ordered(x);
      for (const x of [shape.defaultOverOff, shape.fullOverOff, shape.controlOverDefault]) interval(x);
      // Per-round ratios lie between the extremes the rounds allow.
      expect(shape.defaultOverOff.min).toBeGreaterThanOrEqual(shape.defaultNs.min / shape.statsOffNs.max - 1e-9);
      expect(shape.defaultOverOff.max).toBeLessThanOrEqual(shape.defaultNs.max / shape.statsOffNs.min + 1e-9);
      expect(shape.bestOverBest).toBeCloseTo(shape.defaultNs.min / shape.statsOffNs.min, 9);
    }
    // Judged on the worse shape's median per-round ratio.
    const worse = Math.max(st.externalBatch256.defaultOverOff.median, st.insideTail.defaultOverOff.median);
    expect(st.goal.ratio).toBeCloseTo(worse, 3);
    expect(st.goal.ciHigh).toBeGreaterThanOrEqual(st.goal.ratio - 1e-3);
    expect(st.goal.maxRatio).toBe(1.03);
    expect(st.goal.met).toBe(st.goal.ratio <= 1.03);
    // Instructions under callgrind: where valgrind is installed, measured (describeWith('valgrind') below makes its absence loud).
    if (rep.instructions.available) checkInstructions(rep.instructions);
    else expect(rep.instructions.reason).toMatch(/valgrind is not installed|bench_spawn is not built/);
    expect(rep.goal.target).toBe(4);
    if (rep.goal.ratio !== null) expect(rep.goal.met).toBe(rep.goal.ratio >= 4);
    expect(process.platform !== 'linux' || (rep.otherCpus !== null && rep.otherCpus >= 0 && rep.otherCpus <= os.cpus().length)).toBe(true);
    // oneTBB and hwsq in the same rounds: one figure of each per round, ratios paired within a round.
    expect(rep.tbbPaired.available).toBe(rep.tbb.available && rep.benchSpawnBinary.available);
    if (rep.tbbPaired.available) {
      expect(rep.tbbPaired.rounds).toBe(2);
      for (const p of [rep.tbbPaired.external, rep.tbbPaired.inside]) {
        for (const x of [p.tbbNs, p.hwsqNs, p.tbbOverHwsq, p.tbbCpuNs, p.hwsqCpuNs, p.tbbOverHwsqCpu]) ordered(x);
        expect(p.tbbOverHwsq.min).toBeGreaterThanOrEqual(p.tbbNs.min / p.hwsqNs.max - 1e-9);
        expect(p.tbbOverHwsq.max).toBeLessThanOrEqual(p.tbbNs.max / p.hwsqNs.min + 1e-9);
        expect(p.tbbOverHwsqCpu.min).toBeGreaterThanOrEqual(p.tbbCpuNs.min / p.hwsqCpuNs.max - 1e-9);
        expect(p.tbbOverHwsqCpu.max).toBeLessThanOrEqual(p.tbbCpuNs.max / p.hwsqCpuNs.min + 1e-9);
      }
      expect(rep.tbbPaired.otherCpus === null || rep.tbbPaired.otherCpus >= 0).toBe(true);
    } else {
      expect(rep.tbbPaired.reason.length).toBeGreaterThan(0);
    }
    if (rep.benchSpawnBinary.available) {
      // Its counts are digits within bounds: "-1" is not 2^64 - 1 (a warm-up that never ends).
      for (const bad of ['--tasks=-1', '--tasks=x', '--tasks=', '--warmup=-1', '--reps=0', '--workers=100000', '--tasks=99999999999999999999']) {
        const b = spawnSync(rep.benchSpawnBinary.path, [bad, '--only=hwsq_inside_tail', '--json'], { encoding: 'utf8', timeout: 20_000 });
        expect(b.status, bad).toBe(2);
        expect(b.stderr, bad).toMatch(/^usage: /);
      }
      // bench_spawn's own sections: the stats cost with 10 us tasks, and the fidelity check.
      expect(Object.keys(rep.benchSpawnBinary.statsCost ?? {})).toEqual(['noop_inside', 'noop_inside_1worker', 'noop_inside_1worker_cpu', 'noop_external_batch256', 'spin10us_inside']);
      for (const c of Object.values(rep.benchSpawnBinary.statsCost as Record<string, { ratio_default_over_off: PairedRatio; ratio_control_over_default: PairedRatio; goal_max_ratio: number; met: boolean }>)) {
        interval(c.ratio_default_over_off);
        interval(c.ratio_control_over_default);
        expect(c.met).toBe(c.ratio_default_over_off.median <= c.goal_max_ratio);
      }
      const f = rep.benchSpawnBinary.fidelity as Record<string, number>;
      expect(f.shift).toBe(8);
      expect(f.tasks).toBe(20_000);
      expect(f.sampled).toBeGreaterThan(0);
      expect(f.sampled).toBeLessThan(f.tasks!);
    }
    const text = await hwsqAsync(['bench', 'spawn', '--quick', '--tasks', '20000', '--reps', '1', '--no-go', '--workers', '2']);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/stats cost, C\+\+ loop, 200 interleaved rounds on fresh runtimes \(each: the best of 5 runs of 20000 tasks\).*1 task in 256/);
    expect(text.stdout).toMatch(/^\s+shape\s+default\s+stats: false\s+full timing$/m);
    expect(text.stdout).toMatch(/^\s+per-round ratios, median \[95% interval\]:\s+default\/off\s+control: default\/default\s+full\/off\s+best\/best$/m);
    expect(text.stdout).toMatch(/^\s+inside \(one task spawns all\)\s+\d+\.\d{3} \[\d+\.\d{3}, \d+\.\d{3}\]\s+\d+\.\d{3} \[/m);
    expect(text.stdout).toMatch(/goal: default \/ off <= 1\.03 \(median of per-round ratios, worse shape\): \d+\.\d{3} \(95% interval up to \d+\.\d{3}\), (met|NOT met)/);
    expect(text.stdout).toMatch(/^  instructions per task under callgrind(: not measured \(| \(valgrind-.*, one worker, inside, 120000 - 20000 tasks\): default \d+\.\d, stats: false \d+\.\d, full timing \d+\.\d; default \/ off \d\.\d{3}$)/m);
    expect(text.stdout).toMatch(/^oneTBB \/ hwsq (C\+\+ loop in the same rounds \(1, one repetition of each back to back\), per round median \(min\.\.max\): external \d+\.\d{3} \(\d+\.\d{3}\.\.\d+\.\d{3}\), inside \d+\.\d{3} .*; ns\/task medians oneTBB \/ hwsq: external \d+\.\d \/ \d+\.\d, inside \d+\.\d \/ \d+\.\d$|in the same rounds: not measured \()/m);
    if (rep.benchSpawnBinary.available)
      expect(text.stdout).toMatch(/^  bench_spawn noop_inside\s+default\/off per round \d+\.\d{3} \[\d+\.\d{3}, \d+\.\d{3}\] \(rounds \d+\.\d{3}\.\.\d+\.\d{3}\), control \d+\.\d{3} \[.*\], best\/best \d+\.\d{3}; goal median <= 1\.03: (met|NOT met)$/m);
    if (/in the same rounds \(/.test(text.stdout)) {
      expect(text.stdout).toMatch(/^  by CPU time \(each side's process, every thread\): per round external \d+\.\d{3} .*; CPU ns\/task medians oneTBB \/ hwsq: external \d+\.\d \/ \d+\.\d, inside \d+\.\d \/ \d+\.\d$/m);
      expect(text.stdout).toMatch(/^  other processes kept (\d+\.\d{2} CPUs|an unknown number of CPUs \(no \/proc\)) busy meanwhile/m);
    }
    expect(text.stdout).toMatch(/^other processes kept (\d+\.\d{2} CPUs|an unknown number of CPUs \(no \/proc\)) busy over the whole run/m);
  }, 300_000);
});

// Counted, not timed: the instructions of one task cannot be fewer with stats than without, the
// timed tasks' share is 1 in 256 of full timing's extra, and a task is a few hundred instructions.
function checkInstructions(ins: Extract<InstructionCounts, { available: true }>) {
  expect(ins.tool).toMatch(/^valgrind-/);
  expect(ins.tasks).toEqual([20_000, 120_000]);
  for (const x of [ins.defaultPerTask, ins.statsOffPerTask, ins.fullTimingPerTask]) {
    expect(x).toBeGreaterThan(20);
    expect(x).toBeLessThan(5000);
  }
  expect(ins.fullTimingPerTask).toBeGreaterThan(ins.statsOffPerTask + 20);
  expect(ins.defaultOverOff).toBeCloseTo(ins.defaultPerTask / ins.statsOffPerTask, 9);
  expect(ins.defaultPerTask).toBeLessThan(ins.statsOffPerTask + (ins.fullTimingPerTask - ins.statsOffPerTask) / 16);
}

describeWith('valgrind')('hwsq bench spawn: instructions per task under callgrind', () => {
  it('counts default options, stats: false and full timing on one worker', (ctx) => {
    const ins = instructionCounts();
    // bench_spawn is built by the native stage (npm test runs it first); a unit stage run alone may lack it.
    if (!ins.available && /bench_spawn is not built/.test(ins.reason) && !requirements.requireAll()) ctx.skip();
    if (!ins.available) expect.fail(ins.reason);
    else checkInstructions(ins);
  }, 300_000);
});

describe('hwsq bench pools', () => {
  it('measures hwsq, piscina and tinypool side by side with repetitions and prints the ratios', () => {
    const r = hwsq(['bench', 'pools', '--quick', '--tasks', '2000', '--round-trips', '50', '--reps', '2', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const e = JSON.parse(r.stdout) as BenchEnvelope<'pools', PoolsReport>;
    expect(e.kind).toBe('pools');
    expect(e.interrupted).toBe(false);
    const res = e.results;
    expect(res.workers).toBe(availableParallelism().value);
    expect(res.throughput.map((t) => t.name)).toEqual(['hwsq spawn', 'hwsq spawnMany', 'piscina', 'tinypool']);
    for (const t of res.throughput) {
      expect(t.reps).toBe(2);
      expect(finitePositive(t.tasksPerSec)).toBe(true);
      expect(t.minTasksPerSec).toBeLessThanOrEqual(t.tasksPerSec);
      expect(t.tasksPerSec).toBeLessThanOrEqual(t.maxTasksPerSec);
    }
    expect(res.latency.map((l) => [l.name, l.samples, l.reps])).toEqual([['hwsq', 50, 2], ['piscina', 50, 2], ['tinypool', 50, 2]]);
    for (const l of res.latency) {
      expect(l.p50Us).toBeLessThanOrEqual(l.p99Us);
      expect(l.p99UsRuns).toHaveLength(2);
      expect(Math.min(...l.p99UsRuns)).toBeLessThanOrEqual(l.p99Us);
      expect(l.p99Us).toBeLessThanOrEqual(Math.max(...l.p99UsRuns));
    }
    // The p99 round-trip ratio comes with its spread: one ratio per repetition (hwsq's p99 over
    // piscina's in the same repetition), the reported ratio their median.
    const hw = res.latency.find((l) => l.name === 'hwsq')!;
    const pis = res.latency.find((l) => l.name === 'piscina')!;
    const p99 = res.ratioSpreads['p99 round trip vs piscina']!;
    expect(p99.runs).toHaveLength(2);
    p99.runs.forEach((x, i) => expect(x).toBeCloseTo(hw.p99UsRuns[i]! / pis.p99UsRuns[i]!, 9));
    expect(p99.min).toBe(Math.min(...p99.runs));
    expect(p99.max).toBe(Math.max(...p99.runs));
    expect(res.ratios['p99 round trip vs piscina']).toBe(p99.median);
    expect(p99.min).toBeLessThanOrEqual(p99.median);
    expect(p99.median).toBeLessThanOrEqual(p99.max);
    const fib = res.recursive.find((x) => x.name === 'hwsq nested spawn')!;
    expect(fib.reps).toBe(2);
    expect(finitePositive(fib.speedup!)).toBe(true);
    expect(fib.perWorker).toHaveLength(res.workers);
    // pfib(27) with cutoff 20 is a tree of 67 tasks (T(n) = 1 + T(n-1) + T(n-2) above 20, else 1),
    // counted per run and rounded per worker.
    expect(Math.abs(fib.perWorker!.reduce((a, b) => a + b, 0) - 67)).toBeLessThanOrEqual(res.workers);
    for (const k of ['spawn throughput vs piscina', 'p50 round trip vs piscina', 'fib time vs tinypool']) expect(finitePositive(res.ratios[k]!), k).toBe(true);
    // The ratio is that of the medians above (the JSON has no single runs to recompute them
    // from); it lies between the extremes the runs allow.
    const tp = (n: string) => res.throughput.find((t) => t.name === n)!;
    const ratio = res.ratios['spawn throughput vs piscina']!;
    expect(ratio).toBeCloseTo(tp('hwsq spawn').tasksPerSec / tp('piscina').tasksPerSec, 9);
    expect(ratio).toBeGreaterThanOrEqual(tp('hwsq spawn').minTasksPerSec / tp('piscina').maxTasksPerSec);
    expect(ratio).toBeLessThanOrEqual(tp('hwsq spawn').maxTasksPerSec / tp('piscina').minTasksPerSec);
  }, 120_000);

  it('stops on Ctrl-C after the current measurement, prints what finished and exits 130', async () => {
    const child = hwsqChild(['bench', 'pools', '--tasks', '100000', '--round-trips', '2000', '--reps', '50', '--json']);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    await new Promise((r) => setTimeout(r, 4000));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code, stderr).toBe(130);
    const e = JSON.parse(stdout) as BenchEnvelope<'pools', PoolsReport>;
    expect(e.interrupted).toBe(true);
    // 50 runs of 100k tasks per measurement take far longer than 4 s: the run stopped early,
    // and whatever it reports was measured in full.
    expect(e.results.latency.length + e.results.throughput.length).toBeGreaterThanOrEqual(1);
    expect(e.results.throughput.length).toBeLessThanOrEqual(4);
    for (const t of e.results.throughput) expect(t.reps).toBeLessThan(50);
    for (const l of e.results.latency) {
      expect(l.samples).toBe(2000);
      expect(l.reps).toBeGreaterThanOrEqual(1);
      expect(l.p99UsRuns).toHaveLength(l.reps); // complete repetitions only
    }
  }, 60_000);
});
