// `hwsq bench latency`: scheduling latency, submit -> first instruction of each task.
//   bursts:     N tasks submitted at once (1,000 and 10,000 by default), p50/p90/p99/max over
//               the N tasks of a burst, repeated (median and spread over the repetitions):
//               native tasks (NativeRuntime.spawnNative): the core's own submit -> start
//               histogram, taken as the difference of two snapshots around each burst;
//               JS tasks (Runtime.spawn): each task returns the monotonic clock at its first
//               instruction, the submitter read it just before spawn().
//   round trip: one task at a time on an idle runtime (Ps parked: a pause before each),
//               spawn -> promise settled, as the caller sees it.
import path from 'node:path';
import { packageRoot } from '../core/native';
import { createNativeRuntime, type NativeRuntime } from '../native-runtime/native-runtime';
import { Runtime } from '../runtime/runtime';
import {
  bucketize,
  formatNs,
  formatSummary,
  formatTable,
  histogramDelta,
  latencyQuantiles,
  mergeBuckets,
  sinceNs,
  sleep,
  startProgress,
  summarize,
  type BenchEnvelope,
  type Buckets,
  type Interrupt,
  type LatencyQuantiles,
  type Summary,
} from './common';

export type TaskRuntime = 'native' | 'js';

export interface LatencyBenchOptions {
  /** Burst sizes (default 1000 and 10000). */
  bursts?: number[];
  /** Repetitions of each burst (default 5; 3 with quick), after one warm-up burst. */
  reps?: number;
  /** Idle round trips measured (default 200; 50 with quick). */
  roundTrips?: number;
  /** Pause before each round trip so that the Ps are parked (default 5 ms). */
  idleGapMs?: number;
  workers?: number;
  stealPolicy?: 'hierarchical' | 'flat';
  quick?: boolean;
  /** Which task runtimes (default both). */
  runtimes?: TaskRuntime[];
  interrupt?: Interrupt;
  progress?: boolean;
}

export interface BurstResult {
  runtime: TaskRuntime;
  size: number;
  /** How submit -> start was measured. */
  source: string;
  reps: LatencyQuantiles[];
  p50Ns: Summary;
  p90Ns: Summary;
  p99Ns: Summary;
  maxNs: Summary;
  /** All repetitions' values, bucketed (for CDFs). */
  buckets: Buckets;
}

export interface RoundTripResult {
  runtime: TaskRuntime;
  rounds: number;
  idleGapMs: number;
  quantiles: LatencyQuantiles;
  buckets: Buckets;
}

export interface LatencyResults {
  workers: number;
  nodes: number[];
  stealPolicy: string;
  bursts: BurstResult[];
  roundTrips: RoundTripResult[];
  /** Runtimes that could not run, and why. */
  absent: { runtime: TaskRuntime; reason: string }[];
}

function burstResult(runtime: TaskRuntime, size: number, source: string, reps: LatencyQuantiles[], buckets: Buckets[]): BurstResult {
  return {
    runtime,
    size,
    source,
    reps,
    p50Ns: summarize(reps.map((r) => r.p50Ns)),
    p90Ns: summarize(reps.map((r) => r.p90Ns)),
    p99Ns: summarize(reps.map((r) => r.p99Ns)),
    maxNs: summarize(reps.map((r) => r.maxNs)),
    buckets: mergeBuckets(buckets),
  };
}

/** One task at a time after a pause: spawn -> settled, ns. */
async function roundTrips(runtime: TaskRuntime, rounds: number, gapMs: number, one: () => Promise<unknown>, stopped: () => boolean, tick: () => void): Promise<RoundTripResult> {
  for (let i = 0; i < Math.min(20, rounds); i++) await one(); // warm-up (JIT, first wake-ups)
  const samples: number[] = [];
  for (let i = 0; i < rounds && !stopped(); i++) {
    await sleep(gapMs);
    const t0 = process.hrtime.bigint();
    await one();
    samples.push(sinceNs(t0));
    tick();
  }
  return { runtime, rounds: samples.length, idleGapMs: gapMs, quantiles: latencyQuantiles(samples), buckets: bucketize(samples) };
}

async function nativeBursts(rt: NativeRuntime, sizes: number[], reps: number, stopped: () => boolean, tick: () => void): Promise<BurstResult[]> {
  const out: BurstResult[] = [];
  for (const size of sizes) {
    if (stopped()) break;
    await rt.spawnNative('noop', {}, { count: size }); // warm-up
    await rt.idle();
    const qs: LatencyQuantiles[] = [];
    const buckets: Buckets[] = [];
    for (let r = 0; r < reps && !stopped(); r++) {
      const before = rt.stats();
      await rt.spawnNative('noop', {}, { count: size });
      await rt.idle();
      const d = histogramDelta(before.latency, rt.stats().latency);
      qs.push({ count: d.count, p50Ns: d.p50Ns, p90Ns: d.p90Ns, p99Ns: d.p99Ns, maxNs: d.maxNs });
      buckets.push(d.buckets);
      tick();
    }
    if (qs.length) out.push(burstResult('native', size, 'core histogram (submit -> start, per task)', qs, buckets));
  }
  return out;
}

async function jsBursts(rt: Runtime, sizes: number[], reps: number, stopped: () => boolean, tick: () => void): Promise<BurstResult[]> {
  const burst = async (size: number): Promise<number[]> => {
    const submitted: bigint[] = new Array(size);
    const pending: Promise<string>[] = new Array(size);
    for (let i = 0; i < size; i++) {
      submitted[i] = process.hrtime.bigint();
      pending[i] = rt.spawn<string>('stamp');
    }
    const started = await Promise.all(pending);
    return started.map((s, i) => Number(BigInt(s) - submitted[i]!));
  };
  const out: BurstResult[] = [];
  for (const size of sizes) {
    if (stopped()) break;
    await burst(size); // warm-up (JIT in the workers and here)
    const qs: LatencyQuantiles[] = [];
    const buckets: Buckets[] = [];
    for (let r = 0; r < reps && !stopped(); r++) {
      const values = await burst(size);
      qs.push(latencyQuantiles(values));
      buckets.push(bucketize(values));
      tick();
    }
    if (qs.length) out.push(burstResult('js', size, 'task-side monotonic clock at its first instruction minus the clock before spawn()', qs, buckets));
  }
  return out;
}

export async function runLatencyBench(options: LatencyBenchOptions = {}): Promise<LatencyResults> {
  const quick = options.quick ?? false;
  const sizes = options.bursts ?? [1000, 10_000];
  const reps = options.reps ?? (quick ? 3 : 5);
  const rounds = options.roundTrips ?? (quick ? 50 : 200);
  const gapMs = options.idleGapMs ?? 5;
  const runtimes = options.runtimes ?? ['native', 'js'];
  const stealPolicy = options.stealPolicy ?? 'hierarchical';
  const stopped = () => options.interrupt?.aborted ?? false;
  const steps = runtimes.length * (sizes.length * reps + rounds);
  const progress = startProgress('latency', steps, { enabled: options.progress, expectedMs: runtimes.length * rounds * gapMs * 1.2 });
  const tick = () => progress.advance(1);
  const results: LatencyResults = { workers: 0, nodes: [], stealPolicy, bursts: [], roundTrips: [], absent: [] };
  // Bursts then idle round trips on one runtime, closed afterwards.
  const measure = async (runtime: TaskRuntime, bursts: () => Promise<BurstResult[]>, one: () => Promise<unknown>, close: () => Promise<void>) => {
    try {
      progress.advance(0, `${runtime} bursts`);
      results.bursts.push(...(await bursts()));
      progress.advance(0, `${runtime} round trips`);
      if (!stopped()) results.roundTrips.push(await roundTrips(runtime, rounds, gapMs, one, stopped, tick));
    } finally {
      await close();
    }
  };
  try {
    if (runtimes.includes('native') && !stopped()) {
      // Every task timed: a burst's quantiles from all of its tasks, not a sample.
      const rt = createNativeRuntime({ workers: options.workers ?? 'auto', stealPolicy, timingSampleShift: 0 });
      results.workers = rt.size;
      results.nodes = [...rt.nodes];
      await measure('native', () => nativeBursts(rt, sizes, reps, stopped, tick), () => rt.spawnNative('noop'), () => rt.close());
    }
    if (runtimes.includes('js') && !stopped()) {
      let rt: Runtime | undefined;
      try {
        rt = await Runtime.start({ filename: path.join(packageRoot, 'dist', 'bench-latency-task.js'), workers: options.workers ?? 'auto', stealPolicy });
      } catch (err) {
        results.absent.push({ runtime: 'js', reason: `Runtime.start failed: ${(err as Error).message}` });
      }
      if (rt) {
        const js = rt;
        results.workers ||= js.workers.length;
        await measure('js', () => jsBursts(js, sizes, reps, stopped, tick), () => js.spawn('noop'), () => js.close());
      }
    }
  } finally {
    progress.stop();
  }
  return results;
}

export function formatLatencyBench(e: BenchEnvelope<'latency', LatencyResults>): string {
  const r = e.results;
  const s = (x: Summary) => formatSummary(x, formatNs);
  const lines = [
    `scheduling latency (submit -> first instruction), ${r.workers} workers on nodes ${r.nodes.join(',') || '?'}, ${r.stealPolicy}; median (min..max) over repetitions`,
    '',
    formatTable(
      ['burst', 'reps', 'p50', 'p90', 'p99', 'max'],
      r.bursts.map((b) => [`${b.runtime} x ${b.size}`, String(b.reps.length), s(b.p50Ns), s(b.p90Ns), s(b.p99Ns), s(b.maxNs)]),
    ),
    '',
    'idle round trip (one task on a parked runtime, spawn -> settled)',
    formatTable(
      ['runtime', 'rounds', 'p50', 'p90', 'p99', 'max'],
      r.roundTrips.map((t) => [t.runtime, String(t.rounds), formatNs(t.quantiles.p50Ns), formatNs(t.quantiles.p90Ns), formatNs(t.quantiles.p99Ns), formatNs(t.quantiles.maxNs)]),
    ),
  ];
  for (const a of r.absent) lines.push(`${a.runtime}: absent (${a.reason})`);
  if (e.interrupted) lines.push('', 'interrupted: the rows above are the ones that finished');
  return lines.join('\n');
}
