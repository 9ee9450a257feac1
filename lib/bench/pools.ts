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
import { Runtime } from '../runtime';
import { packageRoot } from '../native';
import { availableParallelism } from '../topology';

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
  taskFile?: string;
  log?: (line: string) => void;
}

export interface ThroughputResult { name: string; tasksPerSec: number }
export interface LatencyResult { name: string; p50Us: number; p99Us: number; meanUs: number }
export interface RecursiveResult { name: string; ms: number; speedup?: number; steals?: number; perWorker?: number[] }

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

async function throughput(name: string, n: number, batch: (n: number) => Promise<unknown>): Promise<ThroughputResult> {
  await batch(Math.min(n, 2000));  // warm-up
  const ms = await time(() => batch(n));
  return { name, tasksPerSec: (n / ms) * 1000 };
}

async function latency(name: string, n: number, one: (i: number) => Promise<unknown>): Promise<LatencyResult> {
  for (let i = 0; i < Math.min(200, n); i++) await one(i);
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await one(i);
    samples.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  samples.sort((a, b) => a - b);
  return { name, p50Us: percentile(samples, 0.5), p99Us: percentile(samples, 0.99), meanUs: samples.reduce((a, b) => a + b, 0) / n };
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
  const n = options.tasks ?? 100_000;
  const rounds = options.roundTrips ?? 3000;
  const fibN = options.fib ?? 32;
  const cutoff = options.cutoff ?? 20;
  const file = options.taskFile ?? path.join(packageRoot, 'bench', 'tasks.mjs');
  const report: PoolsReport = { workers, throughput: [], latency: [], recursive: [], ratios: {} };

  log(`workers: ${workers}; ${n} tiny tasks; ${rounds} round trips; fib(${fibN}) cutoff ${cutoff}`);
  const rt = await Runtime.start({ filename: pathToFileURL(file), workers });
  try {
report.latency.push(await latency('hwsq', rounds, (i) => rt.spawn('noop', [i])));
    report.throughput.push(await throughput('hwsq spawn', n, (k) => Promise.all(Array.from({ length: k }, (_, i) => rt.spawn('noop', [i])))));
    report.throughput.push(
      await throughput('hwsq spawnMany', n, (k) => Promise.all(rt.spawnMany('noop', Array.from({ length: k }, (_, i) => [i])))),
    );
    await rt.spawn('pfib', [[fibN, cutoff]]);  // warm-up (JIT)
    const before = rt.stats();
    const ms = await time(() => rt.spawn('pfib', [[fibN, cutoff]]));
    const after = rt.stats();
    const steals = after.workers.reduce((a, w) => a + w.stealsSameNode + w.stealsRemote, 0) - before.workers.reduce((a, w) => a + w.stealsSameNode + w.stealsRemote, 0);
    const perWorker = after.workers.map((w, i) => w.executed - before.workers[i]!.executed);
    report.recursive.push({ name: 'hwsq nested spawn', ms, steals, perWorker });
  } finally {
    await rt.close();
  }
  const one = await Runtime.start({ filename: pathToFileURL(file), workers: 1 });
  try {
    await one.spawn('pfib', [[fibN, cutoff]]);  // warm-up (JIT)
    report.recursive.push({ name: 'hwsq nested spawn, 1 worker', ms: await time(() => one.spawn('pfib', [[fibN, cutoff]])) });
  } finally {
    await one.close();
  }
  const hw = report.recursive[0]!;
  hw.speedup = report.recursive[1]!.ms / hw.ms;

  for (const pool of await loadPools(file, workers, options.pools ?? ['piscina', 'tinypool'])) {
    try {
      report.latency.push(await latency(pool.name, rounds, (i) => pool.run(i, 'noop')));
      report.throughput.push(await throughput(pool.name, n, (k) => Promise.all(Array.from({ length: k }, (_, i) => pool.run(i, 'noop')))));
      const parts = splitFib(fibN, Math.max(0, fibN - cutoff > 10 ? 10 : fibN - cutoff));
      await Promise.all(parts.map((k) => pool.run(Math.min(k, 20), 'fibSync')));
      report.recursive.push({ name: `${pool.name} (tree split on main)`, ms: await time(() => Promise.all(parts.map((k) => pool.run(k, 'fibSync')))) });
    } finally {
      await pool.close();
    }
  }

  const tp = (name: string) => report.throughput.find((r) => r.name === name)?.tasksPerSec;
  const lat = (name: string) => report.latency.find((r) => r.name === name);
  for (const pool of ['piscina', 'tinypool']) {
    const base = tp(pool);
    if (base) {
      report.ratios[`spawn throughput vs ${pool}`] = tp('hwsq spawn')! / base;
      report.ratios[`spawnMany throughput vs ${pool}`] = tp('hwsq spawnMany')! / base;
    }
    const l = lat(pool);
    if (l) {
      report.ratios[`p50 round trip vs ${pool}`] = lat('hwsq')!.p50Us / l.p50Us;
      report.ratios[`p99 round trip vs ${pool}`] = lat('hwsq')!.p99Us / l.p99Us;
    }
    const r = report.recursive.find((x) => x.name.startsWith(pool));
    if (r) report.ratios[`fib time vs ${pool}`] = hw.ms / r.ms;
  }
  return report;
}

export function formatPoolsReport(r: PoolsReport): string {
  const lines = [`workers: ${r.workers}`, '', 'throughput (tiny tasks, all in flight)'];
  for (const t of r.throughput) lines.push(`  ${t.name.padEnd(34)} ${Math.round(t.tasksPerSec).toLocaleString('en-US').padStart(12)} tasks/s`);
  lines.push('', 'round trip (one at a time)');
  for (const l of r.latency) lines.push(`  ${l.name.padEnd(34)} p50 ${l.p50Us.toFixed(1).padStart(8)} us   p99 ${l.p99Us.toFixed(1).padStart(8)} us`);
  lines.push('', 'recursive fib');
  for (const x of r.recursive) {
    let extra = '';
    if (x.speedup !== undefined) extra += `  speed-up over 1 worker ${x.speedup.toFixed(2)}x`;
    if (x.steals !== undefined) extra += `  steals ${x.steals}  tasks per P [${x.perWorker?.join(', ')}]`;
    lines.push(`  ${x.name.padEnd(34)} ${x.ms.toFixed(1).padStart(9)} ms${extra}`);
  }
  lines.push('', 'ratios (hwsq / pool; throughput: higher is better, times: lower is better)');
  for (const [k, v] of Object.entries(r.ratios)) lines.push(`  ${k.padEnd(34)} ${v.toFixed(2)}`);
  return lines.join('\n');
}
