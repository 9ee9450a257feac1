// `hwsq bench pools`: hwsq's Runtime side by side with piscina and tinypool, in one process, on
// the same task module (bench/tasks.mjs) and worker count. Reports ratios; asserts nothing.
//   throughput: many tiny tasks in flight at once (hwsq: spawn and spawnMany)
//   round trip: one task at a time, p50/p99 of spawn -> result
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
export interface LatencyResult { name: string; p50Us: number; p99Us: number; meanUs: number; samples: number }
export interface RecursiveResult { name: string; ms: number; minMs: number; maxMs: number; reps: number; speedup?: number; steals?: number; perWorker?: number[] }

export interface PoolsReport {
  workers: number;
  throughput: ThroughputResult[];
  latency: LatencyResult[];
  recursive: RecursiveResult[];
  ratios: Record<string, number>;
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

async function latency(name: string, n: number, stopped: () => boolean, one: (i: number) => Promise<unknown>): Promise<LatencyResult | undefined> {
  // Warm-up until the JIT has settled on both sides: at least 2000 round trips and 300 ms (with
  // 200 the first thousands of measured trips were still twice as slow as later ones).
  const warmUntil = performance.now() + 300;
  for (let i = 0; (i < 2000 || performance.now() < warmUntil) && !stopped(); i++) await one(i);
  const samples: number[] = [];
  for (let i = 0; i < n && !stopped(); i++) {
    const t0 = process.hrtime.bigint();
    await one(i);
    samples.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  if (samples.length === 0) return undefined;
  samples.sort((a, b) => a - b);
  return { name, p50Us: percentile(samples, 0.5), p99Us: percentile(samples, 0.99), meanUs: samples.reduce((a, b) => a + b, 0) / samples.length, samples: samples.length };
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
  const report: PoolsReport = { workers, throughput: [], latency: [], recursive: [], ratios: {} };
  const stopped = () => options.interrupt?.aborted ?? false;
  const pools = options.pools ?? ['piscina', 'tinypool'];
  // Stages: hwsq round trip, spawn, spawnMany, fib, fib on 1 worker; per pool: round trip, throughput, fib.
  const progress = startProgress('pools', 5 + 3 * pools.length, { enabled: options.progress });
  const st = new Stages(stopped, progress);
  const push = <T>(list: T[], r: T | undefined) => r !== undefined && list.push(r);

  log(`workers: ${workers}; ${n} tiny tasks x ${reps}; ${rounds} round trips; fib(${fibN}) cutoff ${cutoff} x ${reps}`);
  try {
    const rt = await Runtime.start({ filename: pathToFileURL(file), workers });
    try {
      push(report.latency, await st.run('hwsq round trip', () => latency('hwsq', rounds, stopped, (i) => rt.spawn('noop', [i]))));
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

    for (const pool of st.stop ? [] : await loadPools(file, workers, pools)) {
      try {
        push(report.latency, await st.run(`${pool.name} round trip`, () => latency(pool.name, rounds, stopped, (i) => pool.run(i, 'noop'))));
        push(report.throughput, await st.run(`${pool.name} throughput`, () => throughput(pool.name, n, reps, stopped, (k) => Promise.all(Array.from({ length: k }, (_, i) => pool.run(i, 'noop'))))));
        const parts = splitFib(fibN, Math.max(0, fibN - cutoff > 10 ? 10 : fibN - cutoff));
        push(report.recursive, await st.run(`${pool.name} fib`, () => fibRuns(`${pool.name} (tree split on main)`, reps, stopped, () => Promise.all(parts.map((k) => pool.run(k, 'fibSync'))))));
      } finally {
        await pool.close();
      }
    }
  } finally {
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
      report.ratios[`p50 round trip vs ${pool}`] = h.p50Us / l.p50Us;
      report.ratios[`p99 round trip vs ${pool}`] = h.p99Us / l.p99Us;
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
  for (const l of r.latency) lines.push(`  ${l.name.padEnd(34)} p50 ${l.p50Us.toFixed(1).padStart(8)} us   p99 ${l.p99Us.toFixed(1).padStart(8)} us`);
  lines.push('', 'recursive fib');
  for (const x of r.recursive) {
    let extra = '';
    if (x.speedup !== undefined) extra += `  speed-up over 1 worker ${x.speedup.toFixed(2)}x`;
    if (x.steals !== undefined) extra += `  steals ${x.steals}  tasks per P [${x.perWorker?.join(', ')}]`;
    lines.push(`  ${x.name.padEnd(34)} ${x.ms.toFixed(1).padStart(9)} ms  (${x.minMs.toFixed(1)}..${x.maxMs.toFixed(1)}, ${x.reps} runs)${extra}`);
  }
  lines.push('', 'ratios (hwsq / pool; throughput: higher is better, times: lower is better)');
  for (const [k, v] of Object.entries(r.ratios)) lines.push(`  ${k.padEnd(34)} ${v.toFixed(2)}`);
  if (interrupted) lines.push('', 'interrupted: the measurements above are the ones that finished');
  return lines.join('\n');
}
