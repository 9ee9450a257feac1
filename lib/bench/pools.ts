// `hwsq bench pools`: hwsq's Runtime side by side with piscina and tinypool, in one process, on
// the same task module (bench/tasks.mjs) and worker count. Reports ratios; asserts nothing.
//   throughput: many tiny tasks in flight at once (hwsq: spawn and spawnMany)
//   round trip: one task at a time, p50/p99 of spawn -> result, in repetitions interleaved
//               across hwsq and the pools; the ratios are medians of the per-repetition
//               ratios, reported with their spread (on 2 vCPUs the p99 ratio moves by 10x)
//   recursive:  fib(n) -- hwsq with nested spawns inside tasks (work stealing spreads the tree;
//               speed-up over a one-worker runtime, steal counts), the pools with the tree
//               split on the main thread (they cannot spawn from a task).
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Runtime } from '../runtime/runtime';
import { packageRoot } from '../core/native';
import { availableParallelism } from '../numa/topology';
import { startProgress, summarize, type Interrupt } from './common';

export interface PoolsBenchOptions {
  workers?: number;
  /** Tiny tasks per throughput round. */
  tasks?: number;
  /** Round trips measured. */
  roundTrips?: number;
  /** fib(n) for the recursive workload, and the sequential cutoff. */
  fib?: number;
  cutoff?: number;
  /** Which pools to compare with (default both, when installed). */
  pools?: ('piscina' | 'tinypool')[];
  /** Timed repetitions of each throughput round and fib run (median reported; default 5, 3 quick). */
  reps?: number;
  quick?: boolean;
  taskFile?: string;
  log?: (line: string) => void;
  /** Ctrl-C: stop after the current measurement; the report holds what finished. */
  interrupt?: Interrupt;
  /** Progress bar on stderr (default: when stderr is a TTY). */
  progress?: boolean;
}

/** Medians over the repetitions, with the fastest and slowest repetition. */
export interface ThroughputResult { name: string; tasksPerSec: number; minTasksPerSec: number; maxTasksPerSec: number; reps: number }
/**
 * Round trips: `reps` repetitions of `samples` round trips each, interleaved with the other
 * runtimes' (each repetition runs every runtime once, in a rotating order); p50Us/p99Us are the
 * medians over the repetitions of each one's p50/p99, the runs arrays each repetition's.
 */
export interface LatencyResult { name: string; p50Us: number; p99Us: number; meanUs: number; samples: number; reps: number; p50UsRuns: number[]; p99UsRuns: number[] }
/** A ratio hwsq / pool per repetition (paired within the repetition): median, range and the runs. */
export interface RatioSpread { median: number; min: number; max: number; runs: number[] }
export interface RecursiveResult { name: string; ms: number; minMs: number; maxMs: number; reps: number; speedup?: number; steals?: number; perWorker?: number[] }

export interface PoolsReport {
  workers: number;
  throughput: ThroughputResult[];
  latency: LatencyResult[];
  recursive: RecursiveResult[];
  ratios: Record<string, number>;
  /** The round-trip ratios with their spread over repetitions (on a loaded machine the p99 ratio moves a lot from run to run). */
  ratioSpreads: Record<string, RatioSpread>;
}

interface Pool {
  name: string;
  run(arg: unknown, name: string): Promise<unknown>;
  close(): Promise<void>;
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

async function loadPools(file: string, workers: number, which: string[]): Promise<Pool[]> {
  const req = createRequire(path.join(packageRoot, 'package.json'));
  const pools: Pool[] = [];
  if (which.includes('piscina')) {
    try {
      const mod = req('piscina') as { Piscina?: unknown; default?: unknown };
      const Piscina = (mod.Piscina ?? mod.default ?? mod) as new (o: object) => { run(a: unknown, o: object): Promise<unknown>; destroy(): Promise<void> };
      const p = new Piscina({ filename: file, minThreads: workers, maxThreads: workers, idleTimeout: 60_000 });
      pools.push({ name: 'piscina', run: (a, name) => p.run(a, { name }), close: () => p.destroy() });
    } catch {
      /* not installed */
    }
  }
  if (which.includes('tinypool')) {
    try {
      const mod = req('tinypool') as { Tinypool?: unknown; default?: unknown };
      const Tinypool = (mod.Tinypool ?? mod.default ?? mod) as new (o: object) => { run(a: unknown, o: object): Promise<unknown>; destroy(): Promise<void> };
      const p = new Tinypool({ filename: file, minThreads: workers, maxThreads: workers, isolateWorkers: false });
      pools.push({ name: 'tinypool', run: (a, name) => p.run(a, { name }), close: () => p.destroy() });
    } catch {
      /* not installed */
    }
  }
  return pools;
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Runs the measurements in order, each after a check for Ctrl-C, advancing the progress bar. */
class Stages {
  constructor(
    private readonly stopped: () => boolean,
    private readonly progress: { advance(units: number, label?: string): void },
  ) {}
  get stop(): boolean {
    return this.stopped();
  }
  async run<T>(label: string, fn: () => Promise<T>): Promise<T | undefined> {
    if (this.stopped()) return undefined;
    this.progress.advance(0, label);
    const r = await fn();
    this.progress.advance(1);
    return r;
  }
}

async function throughput(name: string, n: number, reps: number, stopped: () => boolean, batch: (n: number) => Promise<unknown>): Promise<ThroughputResult | undefined> {
  await batch(Math.min(n, 2000));  // warm-up (JIT, workers, pools' queues)
  const rates: number[] = [];
  for (let r = 0; r < reps && !stopped(); r++) rates.push((n / (await time(() => batch(n)))) * 1000);
  if (rates.length === 0) return undefined;
  const s = summarize(rates);
  return { name, tasksPerSec: s.median, minTasksPerSec: s.min, maxTasksPerSec: s.max, reps: rates.length };
}

interface RoundTripper {
  name: string;
  one: (i: number) => Promise<unknown>;
}

// Round trips of every runtime in `sides`, interleaved: each warmed up, then `reps` repetitions
// of n round trips per runtime, the first runtime of repetition r being r mod sides (so that a
// burst of load elsewhere on the machine hits every side, and each repetition pairs them).
async function roundTrips(sides: RoundTripper[], n: number, reps: number, stopped: () => boolean): Promise<LatencyResult[]> {
  // Warm-up until the JIT has settled on both sides: at least 2000 round trips and 300 ms (with
  // 200 the first thousands of measured trips were still twice as slow as later ones).
  for (const side of sides) {
    const warmUntil = performance.now() + 300;
    for (let i = 0; (i < 2000 || performance.now() < warmUntil) && !stopped(); i++) await side.one(i);
  }
  const runs = sides.map(() => ({ p50: [] as number[], p99: [] as number[], sum: 0, count: 0 }));
  for (let r = 0; r < reps && !stopped(); r++) {
    for (let k = 0; k < sides.length && !stopped(); k++) {
      const i = (k + r) % sides.length;
      const samples: number[] = [];
      for (let j = 0; j < n && !stopped(); j++) {
        const t0 = process.hrtime.bigint();
        await sides[i]!.one(j);
        samples.push(Number(process.hrtime.bigint() - t0) / 1000);
      }
      if (samples.length < n) break; // interrupted: a partial repetition is not reported
      samples.sort((a, b) => a - b);
      runs[i]!.p50.push(percentile(samples, 0.5));
      runs[i]!.p99.push(percentile(samples, 0.99));
      runs[i]!.sum += samples.reduce((a, b) => a + b, 0);
      runs[i]!.count += samples.length;
    }
  }
  // Only repetitions every side completed, so that the runs pair up.
  const done = Math.min(...runs.map((x) => x.p99.length));
  if (done === 0) return [];
  return sides.map((side, i) => {
    const x = runs[i]!;
    const p50UsRuns = x.p50.slice(0, done);
    const p99UsRuns = x.p99.slice(0, done);
    return { name: side.name, p50Us: summarize(p50UsRuns).median, p99Us: summarize(p99UsRuns).median, meanUs: x.sum / x.count, samples: n, reps: done, p50UsRuns, p99UsRuns };
  });
}

function ratioSpread(a: number[], b: number[]): RatioSpread {
  const runs = a.map((x, i) => x / b[i]!);
  const s = summarize(runs);
  return { median: s.median, min: s.min, max: s.max, runs };
}

async function fibRuns(name: string, reps: number, stopped: () => boolean, run: () => Promise<unknown>): Promise<RecursiveResult | undefined> {
  await run();  // warm-up (JIT)
  const times: number[] = [];
  for (let r = 0; r < reps && !stopped(); r++) times.push(await time(run));
  if (times.length === 0) return undefined;
  const s = summarize(times);
  return { name, ms: s.median, minMs: s.min, maxMs: s.max, reps: times.length };
}

// The fib tree split on the caller's side into subtrees of size fib(n - depth), 2^depth tasks.
function splitFib(n: number, depth: number): number[] {
  let level = [n];
  for (let d = 0; d < depth; d++) level = level.flatMap((k) => (k >= 2 ? [k - 1, k - 2] : [k]));
  return level;
}

export async function runPoolsBench(options: PoolsBenchOptions = {}): Promise<PoolsReport> {
  const log = options.log ?? (() => {});
  const workers = options.workers ?? availableParallelism().value;
  const quick = options.quick ?? false;
  const n = options.tasks ?? (quick ? 20_000 : 100_000);
  const rounds = options.roundTrips ?? (quick ? 500 : 3000);
  const fibN = options.fib ?? (quick ? 27 : 32);
  const cutoff = options.cutoff ?? 20;
  const reps = options.reps ?? (quick ? 3 : 5);
  const file = options.taskFile ?? path.join(packageRoot, 'bench', 'tasks.mjs');
  const report: PoolsReport = { workers, throughput: [], latency: [], recursive: [], ratios: {}, ratioSpreads: {} };
  const stopped = () => options.interrupt?.aborted ?? false;
  const pools = options.pools ?? ['piscina', 'tinypool'];
  // Stages: hwsq spawn, spawnMany, fib, round trips (hwsq and the pools, interleaved), hwsq fib
  // on 1 worker; per pool: throughput, fib.
  const progress = startProgress('pools', 5 + 2 * pools.length, { enabled: options.progress });
  const st = new Stages(stopped, progress);
  const push = <T>(list: T[], r: T | undefined) => r !== undefined && list.push(r);

  log(`workers: ${workers}; ${n} tiny tasks x ${reps}; ${rounds} round trips; fib(${fibN}) cutoff ${cutoff} x ${reps}`);
  let loaded: Pool[] = [];
  try {
    const rt = await Runtime.start({ filename: pathToFileURL(file), workers });
    try {
      push(report.throughput, await st.run('hwsq spawn', () => throughput('hwsq spawn', n, reps, stopped, (k) => Promise.all(Array.from({ length: k }, (_, i) => rt.spawn('noop', [i]))))));
      push(
        report.throughput,
        await st.run('hwsq spawnMany', () => throughput('hwsq spawnMany', n, reps, stopped, (k) => Promise.all(rt.spawnMany('noop', Array.from({ length: k }, (_, i) => [i]))))),
      );
      await st.run('hwsq fib', async () => {
        const before = rt.stats();
        const r = await fibRuns('hwsq nested spawn', reps, stopped, () => rt.spawn('pfib', [[fibN, cutoff]]));
        if (!r) return;
        const after = rt.stats();
        const steals = (s: typeof after) => s.workers.reduce((a, w) => a + w.stealsSameNode + w.stealsRemote, 0);
        // Per run (warm-up included in the counters: reps + 1 runs).
        r.steals = Math.round((steals(after) - steals(before)) / (r.reps + 1));
        r.perWorker = after.workers.map((w, i) => Math.round((w.executed - before.workers[i]!.executed) / (r.reps + 1)));
        report.recursive.push(r);
      });
      // Round trips last of hwsq's stages: they need the pools too (interleaved repetitions).
      loaded = st.stop ? [] : await loadPools(file, workers, pools);
      const sides: RoundTripper[] = [{ name: 'hwsq', one: (i) => rt.spawn('noop', [i]) }, ...loaded.map((p) => ({ name: p.name, one: (i: number) => p.run(i, 'noop') }))];
      const lats = await st.run('round trips', () => roundTrips(sides, rounds, reps, stopped));
      if (lats) report.latency.push(...lats);
    } finally {
      await rt.close();
    }
    if (!st.stop) {
      const one = await Runtime.start({ filename: pathToFileURL(file), workers: 1 });
      try {
        push(report.recursive, await st.run('hwsq fib, 1 worker', () => fibRuns('hwsq nested spawn, 1 worker', reps, stopped, () => one.spawn('pfib', [[fibN, cutoff]]))));
      } finally {
        await one.close();
      }
    }
    const hw = report.recursive.find((r) => r.name === 'hwsq nested spawn');
    const hw1 = report.recursive.find((r) => r.name === 'hwsq nested spawn, 1 worker');
    if (hw && hw1) hw.speedup = hw1.ms / hw.ms;

    for (const pool of st.stop ? [] : loaded) {
      try {
        push(report.throughput, await st.run(`${pool.name} throughput`, () => throughput(pool.name, n, reps, stopped, (k) => Promise.all(Array.from({ length: k }, (_, i) => pool.run(i, 'noop'))))));
        const parts = splitFib(fibN, Math.max(0, fibN - cutoff > 10 ? 10 : fibN - cutoff));
        push(report.recursive, await st.run(`${pool.name} fib`, () => fibRuns(`${pool.name} (tree split on main)`, reps, stopped, () => Promise.all(parts.map((k) => pool.run(k, 'fibSync'))))));
      } finally {
        await pool.close();
        loaded = loaded.filter((p) => p !== pool);
      }
    }
  } finally {
    await Promise.all(loaded.map((p) => p.close()));
    progress.stop();
  }

  const tp = (name: string) => report.throughput.find((r) => r.name === name)?.tasksPerSec;
  const lat = (name: string) => report.latency.find((r) => r.name === name);
  const hw = report.recursive.find((r) => r.name === 'hwsq nested spawn');
  for (const pool of ['piscina', 'tinypool']) {
    const base = tp(pool);
    if (base && tp('hwsq spawn')) report.ratios[`spawn throughput vs ${pool}`] = tp('hwsq spawn')! / base;
    if (base && tp('hwsq spawnMany')) report.ratios[`spawnMany throughput vs ${pool}`] = tp('hwsq spawnMany')! / base;
    const l = lat(pool);
    const h = lat('hwsq');
    if (l && h) {
      // The median of the per-repetition ratios (paired: same repetition), with its spread.
      const p50 = ratioSpread(h.p50UsRuns, l.p50UsRuns);
      const p99 = ratioSpread(h.p99UsRuns, l.p99UsRuns);
      report.ratios[`p50 round trip vs ${pool}`] = p50.median;
      report.ratios[`p99 round trip vs ${pool}`] = p99.median;
      report.ratioSpreads[`p50 round trip vs ${pool}`] = p50;
      report.ratioSpreads[`p99 round trip vs ${pool}`] = p99;
    }
    const r = report.recursive.find((x) => x.name.startsWith(pool));
    if (r && hw) report.ratios[`fib time vs ${pool}`] = hw.ms / r.ms;
  }
  return report;
}

export function formatPoolsReport(r: PoolsReport, interrupted = false): string {
  const lines = [`workers: ${r.workers}`, '', 'throughput (tiny tasks, all in flight)'];
  const k = (v: number) => Math.round(v).toLocaleString('en-US');
  for (const t of r.throughput) lines.push(`  ${t.name.padEnd(34)} ${k(t.tasksPerSec).padStart(12)} tasks/s  (${k(t.minTasksPerSec)}..${k(t.maxTasksPerSec)}, ${t.reps} runs)`);
  lines.push('', 'round trip (one at a time)');
  const range = (xs: number[], d: number) => `${Math.min(...xs).toFixed(d)}..${Math.max(...xs).toFixed(d)}`;
  lines[lines.length - 1] += r.latency.length ? ` x ${r.latency[0]!.samples}, ${r.latency[0]!.reps} interleaved repetitions: median (min..max)` : '';
  for (const l of r.latency)
    lines.push(`  ${l.name.padEnd(34)} p50 ${l.p50Us.toFixed(1).padStart(8)} us (${range(l.p50UsRuns, 1)})   p99 ${l.p99Us.toFixed(1).padStart(8)} us (${range(l.p99UsRuns, 1)})`);
  lines.push('', 'recursive fib');
  for (const x of r.recursive) {
    let extra = '';
    if (x.speedup !== undefined) extra += `  speed-up over 1 worker ${x.speedup.toFixed(2)}x`;
    if (x.steals !== undefined) extra += `  steals ${x.steals}  tasks per P [${x.perWorker?.join(', ')}]`;
    lines.push(`  ${x.name.padEnd(34)} ${x.ms.toFixed(1).padStart(9)} ms  (${x.minMs.toFixed(1)}..${x.maxMs.toFixed(1)}, ${x.reps} runs)${extra}`);
  }
  lines.push('', 'ratios (hwsq / pool; throughput: higher is better, times: lower is better)');
  for (const [k, v] of Object.entries(r.ratios)) {
    const sp = r.ratioSpreads?.[k];
    lines.push(`  ${k.padEnd(34)} ${v.toFixed(2)}${sp ? `  (${sp.min.toFixed(2)}..${sp.max.toFixed(2)} over ${sp.runs.length} repetitions)` : ''}`);
  }
  if (interrupted) lines.push('', 'interrupted: the measurements above are the ones that finished');
  return lines.join('\n');
}
