// What every `hwsq bench` probe shares: the description of the machine the numbers come from,
// statistics over repetitions (median and spread) and over latency histograms, the progress bar,
// Ctrl-C handling, size/duration parsing, the JSON envelope and plain-text tables.
//
// Rules for the numbers (README "Benchmark your machine"): warm-up before measuring, several
// repetitions reported as median and spread, a monotonic clock (process.hrtime / steady_clock),
// and nothing estimated: a figure that could not be measured is absent, with the reason.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { availableParallelism, topology } from '../numa/topology';
import { formatCpuList } from '../numa/topology-report';
import { createRequire } from 'node:module';
import { native, packageRoot } from '../core/native';
import { version } from '../core/version';
import type { HistogramStats } from '../core/stats';
import { ErrorCodes, rangeError } from '../core/errors';
import type { NumaNode } from '../numa/topology';

// ------------------------------------------------------------------ the machine

export interface MachineInfo {
  cpuModel: string;
  /** Hypervisor flag in /proc/cpuinfo: the numbers come from a virtual machine. */
  virtualized: boolean;
  onlineCpus: number;
  allowedCpus: number[];
  nodes: { id: number; cpus: number[]; memoryBytes: number; freeBytes: number; hasMemory: boolean; distances: number[] }[];
  /** Last-level cache (largest data/unified cache level of CPU 0), from sysfs; null when unknown. */
  llc: { level: number; bytes: number } | null;
  kernel: string;
  kernelVersion: string;
  node: string;
  v8: string;
  hwsq: string;
  cgroup: {
    /** CPU limit: the cgroup-aware parallelism hwsq uses by default, and where it came from. */
    parallelism: number;
    cpuQuota: number | null;
    cpuPeriod: number | null;
    source: string;
    path: string;
    /** memory.max / memory.limit_in_bytes of the process's cgroup (null: unlimited or unknown). */
    memoryLimitBytes: number | null;
  };
  /** scaling_governor of the allowed CPUs (distinct values); null when cpufreq is not exposed. */
  cpuGovernor: string[] | null;
  transparentHugePages: string | null;
  numaBalancing: string | null;
  /** Load seen before the run: 1-minute loadavg and the CPUs busy (from /proc/stat) over a short sample. */
  load: { loadavg1: number; busyCpus: number | null; sampleMs: number; otherLoadSeen: boolean };
  clock: string;
}

function readText(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
}

function cpuInfo(): { model: string; virtualized: boolean } {
  const text = readText('/proc/cpuinfo') ?? '';
  const model = /^model name\s*:\s*(.+)$/m.exec(text)?.[1] ?? /^Processor\s*:\s*(.+)$/m.exec(text)?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  const flags = /^flags\s*:\s*(.+)$/m.exec(text)?.[1] ?? '';
  return { model: model.trim(), virtualized: /\bhypervisor\b/.test(flags) };
}

function parseCacheSize(s: string): number | null {
  const m = /^(\d+)\s*([KMG]?)/i.exec(s);
  if (!m) return null;
  const unit = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G'];
  return Number(m[1]) * unit;
}

/** The largest data or unified cache level of a CPU (sysfs cache/index*). */
export function lastLevelCache(cpu = 0): { level: number; bytes: number } | null {
  const dir = `/sys/devices/system/cpu/cpu${cpu}/cache`;
  let best: { level: number; bytes: number } | null = null;
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(dir).filter((e) => e.startsWith('index'));
  } catch {
    return null;
  }
  for (const e of entries) {
    const type = readText(path.join(dir, e, 'type'));
    const level = Number(readText(path.join(dir, e, 'level')));
    const bytes = parseCacheSize(readText(path.join(dir, e, 'size')) ?? '');
    if (type === 'Instruction' || !bytes || !Number.isFinite(level)) continue;
    if (!best || level > best.level) best = { level, bytes };
  }
  return best;
}

function cgroupMemoryLimit(cgroupPath: string): number | null {
  // cgroup v2: the tightest memory.max walking up; v1: memory.limit_in_bytes.
  let limit: number | null = null;
  let p = cgroupPath || '/';
  for (;;) {
    const v = readText(path.join('/sys/fs/cgroup', p, 'memory.max'));
    if (v && v !== 'max' && Number.isFinite(Number(v))) limit = limit === null ? Number(v) : Math.min(limit, Number(v));
    if (p === '/' || p === '' || p === '.') break;
    p = path.dirname(p);
  }
  if (limit !== null) return limit;
  const v1 = readText('/sys/fs/cgroup/memory/memory.limit_in_bytes');
  // v1 reports "unlimited" as a huge page-aligned number.
  return v1 && Number(v1) < 2 ** 60 ? Number(v1) : null;
}

function bracketed(s: string | null): string | null {
  return s === null ? null : (/\[(\w+)\]/.exec(s)?.[1] ?? s);
}

function procStatTotals(): { busy: number; total: number } | null {
  const line = readText('/proc/stat')?.split('\n')[0];
  if (!line?.startsWith('cpu ')) return null;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest is included in user)
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

/** Machine-wide busy time (/proc/stat) and this process's CPU time with its reaped children's (/proc/self/stat), both in clock ticks. */
export interface LoadSnapshot {
  busy: number;
  total: number;
  own: number;
}

export function loadSnapshot(): LoadSnapshot | null {
  const m = procStatTotals();
  const stat = readText('/proc/self/stat');
  if (!m || !stat) return null;
  // Fields after the command name (which may hold spaces and parentheses): state is field 3,
  // utime stime cutime cstime are fields 14..17.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  const own = f.slice(11, 15).reduce((a, b) => a + b, 0);
  return Number.isFinite(own) ? { ...m, own } : null;
}

/**
 * CPUs kept busy by everything but this process (and the children it waited for) between two
 * snapshots: what a benchmark's figures shared the machine with. null when unknown.
 */
export function otherCpus(before: LoadSnapshot | null, after: LoadSnapshot | null, cpus: number): number | null {
  if (!before || !after || after.total <= before.total) return null;
  const other = after.busy - before.busy - (after.own - before.own);
  return (Math.max(0, other) / (after.total - before.total)) * cpus;
}

/** Other processes keeping a quarter of a CPU or more busy disturb a benchmark (describeMachine's threshold too). */
export const OTHER_LOAD_CPUS = 0.25;

/** CPUs busy over `ms` (from /proc/stat jiffies); null when /proc/stat is unreadable. */
export async function busyCpus(ms: number): Promise<number | null> {
  const a = procStatTotals();
  await new Promise((r) => setTimeout(r, ms));
  const b = procStatTotals();
  if (!a || !b || b.total <= a.total) return null;
  return ((b.busy - a.busy) / (b.total - a.total)) * os.cpus().length;
}

/** Describes the machine and the load on it right now (samples /proc/stat for `sampleMs`). */
export async function describeMachine(sampleMs = 250): Promise<MachineInfo> {
  const topo = topology();
  const par = availableParallelism();
  const cpu = cpuInfo();
  const governors = new Set<string>();
  for (const c of topo.allowedCpus) {
    const g = readText(`/sys/devices/system/cpu/cpu${c}/cpufreq/scaling_governor`);
    if (g) governors.add(g);
  }
  const busy = await busyCpus(sampleMs);
  const loadavg1 = os.loadavg()[0] ?? 0;
  return {
    cpuModel: cpu.model,
    virtualized: cpu.virtualized,
    onlineCpus: topo.cpus.filter((c) => c.online).length,
    allowedCpus: topo.allowedCpus,
    nodes: topo.nodes.map((n) => ({ id: n.id, cpus: n.cpus, memoryBytes: n.memoryBytes, freeBytes: n.freeBytes, hasMemory: n.hasMemory, distances: n.distances })),
    llc: lastLevelCache(topo.allowedCpus[0] ?? 0),
    kernel: os.release(),
    kernelVersion: os.version(),
    node: process.version,
    v8: process.versions.v8,
    hwsq: version,
    cgroup: {
      parallelism: par.value,
      cpuQuota: par.quota,
      cpuPeriod: par.period,
      source: par.source,
      path: par.cgroupPath,
      memoryLimitBytes: cgroupMemoryLimit(par.cgroupPath),
    },
    cpuGovernor: governors.size ? [...governors].sort() : null,
    transparentHugePages: bracketed(readText('/sys/kernel/mm/transparent_hugepage/enabled')),
    numaBalancing: readText('/proc/sys/kernel/numa_balancing'),
    // Other processes using a quarter of a CPU or more while we sampled /proc/stat are "load" (the
    // loadavg, a minute's average, also counts this process's own work of the last minute).
    load: { loadavg1, busyCpus: busy, sampleMs, otherLoadSeen: busy !== null ? busy >= OTHER_LOAD_CPUS : loadavg1 >= 1 },
    clock: 'CLOCK_MONOTONIC (process.hrtime.bigint in JS, std::chrono::steady_clock natively)',
  };
}

const GiB = 1024 ** 3;

/** The machine in a few lines, for the top of every human-readable report. */
export function formatMachine(m: MachineInfo): string {
  const nodes = m.nodes
    .map((n) => `node ${n.id}: ${n.cpus.length ? `CPUs ${formatCpuList(n.cpus)}` : 'no CPUs'}, ${(n.memoryBytes / GiB).toFixed(1)} GiB`)
    .join('; ');
  const limits = [
    `parallelism ${m.cgroup.parallelism} (${m.cgroup.source}${m.cgroup.cpuQuota !== null ? `, quota ${m.cgroup.cpuQuota}/${m.cgroup.cpuPeriod}` : ''})`,
    m.cgroup.memoryLimitBytes !== null ? `memory limit ${formatBytes(m.cgroup.memoryLimitBytes)}` : 'no memory limit',
  ].join(', ');
  const lines = [
    `machine: ${m.cpuModel}${m.virtualized ? ' (virtual machine)' : ''}, ${m.onlineCpus} CPUs (${m.allowedCpus.length} allowed), LLC ${m.llc ? formatBytes(m.llc.bytes) : 'unknown'}`,
    `  ${nodes}`,
    `  Linux ${m.kernel}, Node ${m.node}, hwsq ${m.hwsq}; cgroup: ${limits}`,
    `  governor ${m.cpuGovernor?.join('/') ?? 'not exposed'}, THP ${m.transparentHugePages ?? '?'}, numa_balancing ${m.numaBalancing ?? '?'}; ` +
      `load before: loadavg ${m.load.loadavg1.toFixed(2)}, ${m.load.busyCpus === null ? '?' : m.load.busyCpus.toFixed(2)} CPUs busy` +
      (m.load.otherLoadSeen ? '  << other load seen: numbers may be disturbed' : ''),
  ];
  return lines.join('\n');
}

// ------------------------------------------------------------------ statistics

/** Median and spread of repeated measurements. */
export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
  mean: number;
  /** Sample standard deviation (0 for one sample). */
  stdev: number;
  /** (max - min) / median: the spread relative to the median. */
  relSpread: number;
}

/** Linear-interpolated quantile of ascending values (q in [0, 1]). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = Math.min(1, Math.max(0, q)) * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return { n: 0, median: NaN, min: NaN, max: NaN, mean: NaN, stdev: NaN, relSpread: NaN };
  const mean = sorted.reduce((a, b) => a + b, 0) / n;
  const variance = n > 1 ? sorted.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1) : 0;
  const median = quantile(sorted, 0.5);
  return { n, median, min: sorted[0]!, max: sorted[n - 1]!, mean, stdev: Math.sqrt(variance), relSpread: median ? (sorted[n - 1]! - sorted[0]!) / median : 0 };
}

/** Per-task latencies (or the buckets of a core histogram) reduced to the quantiles we report. */
export interface LatencyQuantiles {
  count: number;
  p50Ns: number;
  p90Ns: number;
  p99Ns: number;
  maxNs: number;
}

/** Histogram buckets for charts: `counts[i]` values in [lowerNs[i], upperNs[i]). */
export interface Buckets {
  lowerNs: number[];
  upperNs: number[];
  counts: number[];
}

/** Exact quantiles of raw latencies (ns). */
export function latencyQuantiles(valuesNs: readonly number[]): LatencyQuantiles {
  const s = [...valuesNs].sort((a, b) => a - b);
  return { count: s.length, p50Ns: quantile(s, 0.5), p90Ns: quantile(s, 0.9), p99Ns: quantile(s, 0.99), maxNs: s[s.length - 1] ?? NaN };
}

/**
 * The values recorded by a core histogram between two snapshots (`after` minus `before`,
 * bucket by bucket). Quantiles are bucket midpoints as in the core (within 1.6%); the max is the
 * snapshot's max when the top bucket holds it, else the top bucket's upper bound.
 */
export function histogramDelta(before: HistogramStats, after: HistogramStats): LatencyQuantiles & { buckets: Buckets } {
  const prior = new Map<number, number>();
  before.buckets.lowerNs.forEach((lo, i) => prior.set(lo, before.buckets.counts[i]!));
  const buckets: Buckets = { lowerNs: [], upperNs: [], counts: [] };
  after.buckets.lowerNs.forEach((lo, i) => {
    const c = after.buckets.counts[i]! - (prior.get(lo) ?? 0);
    if (c > 0) {
      buckets.lowerNs.push(lo);
      buckets.upperNs.push(after.buckets.upperNs[i]!);
      buckets.counts.push(c);
    }
  });
  const count = buckets.counts.reduce((a, b) => a + b, 0);
  const at = (q: number): number => {
    if (count === 0) return NaN;
    const rank = Math.floor(q * (count - 1)) + 1;
    let seen = 0;
    for (let i = 0; i < buckets.counts.length; i++) {
      seen += buckets.counts[i]!;
      if (seen >= rank) return Math.min((buckets.lowerNs[i]! + buckets.upperNs[i]!) / 2, after.maxNs);
    }
    return NaN;
  };
  const top = buckets.counts.length - 1;
  const maxNs = top < 0 ? NaN : after.maxNs < buckets.upperNs[top]! ? after.maxNs : buckets.upperNs[top]!;
  return { count, p50Ns: at(0.5), p90Ns: at(0.9), p99Ns: at(0.99), maxNs, buckets };
}

/** Log-spaced buckets (8 per power of two) of raw latencies, for CDF charts of JS-measured values. */
export function bucketize(valuesNs: readonly number[]): Buckets {
  const counts = new Map<number, number>();
  for (const v of valuesNs) {
    const k = v <= 1 ? 0 : Math.floor(Math.log2(v) * 8);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  const keys = [...counts.keys()].sort((a, b) => a - b);
  return {
    lowerNs: keys.map((k) => (k === 0 ? 0 : 2 ** (k / 8))),
    upperNs: keys.map((k) => 2 ** ((k + 1) / 8)),
    counts: keys.map((k) => counts.get(k)!),
  };
}

/** Merges bucket lists (same bounds add up). */
export function mergeBuckets(list: readonly Buckets[]): Buckets {
  const m = new Map<number, { upper: number; count: number }>();
  for (const b of list) {
    b.lowerNs.forEach((lo, i) => {
      const e = m.get(lo);
      if (e) e.count += b.counts[i]!;
      else m.set(lo, { upper: b.upperNs[i]!, count: b.counts[i]! });
    });
  }
  const keys = [...m.keys()].sort((a, b) => a - b);
  return { lowerNs: keys, upperNs: keys.map((k) => m.get(k)!.upper), counts: keys.map((k) => m.get(k)!.count) };
}

// ------------------------------------------------------------------ units

const SIZE_UNITS: Record<string, number> = { '': 1, B: 1, K: 1024, KB: 1024, KIB: 1024, M: 1024 ** 2, MB: 1024 ** 2, MIB: 1024 ** 2, G: GiB, GB: GiB, GIB: GiB };

/** "64M", "512KiB", "1g", "4096" -> bytes; NaN when it is not a size. */
/**
 * A benchmark buffer of `bytes` on each of `nodes` must fit in half of the node's free memory:
 * every page is touched, and more would end in the OOM killer, not in an error.
 */
export function checkBufferFits(bytes: number, nodes: readonly NumaNode[], what: string): void {
  for (const n of nodes) {
    const free = n.freeBytes || n.memoryBytes;
    if (free > 0 && bytes > free / 2) {
      throw rangeError(ErrorCodes.BAD_SIZE, `${what} (${formatBytes(bytes)}) is more than half of node ${n.id}'s free memory (${formatBytes(free)})`);
    }
  }
}

export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? SIZE_UNITS[m[2]!.toUpperCase()] : undefined;
  return m && unit !== undefined ? Math.round(Number(m[1]) * unit) : NaN;
}

/** "200ms", "1.5s", "250" (ms) -> milliseconds; NaN when it is not a duration. */
export function parseDuration(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|us)?\s*$/i.exec(text);
  if (!m) return NaN;
  const v = Number(m[1]);
  const unit = (m[2] ?? 'ms').toLowerCase();
  return unit === 's' ? v * 1000 : unit === 'us' ? v / 1000 : v;
}

export function formatBytes(n: number): string {
  if (n >= GiB) return `${+(n / GiB).toFixed(2)} GiB`;
  if (n >= 1024 ** 2) return `${+(n / 1024 ** 2).toFixed(1)} MiB`;
  if (n >= 1024) return `${+(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

/** Nanoseconds with a unit that keeps 3 significant digits. */
export function formatNs(ns: number): string {
  if (!Number.isFinite(ns)) return '-';
  if (ns >= 1e9) return `${(ns / 1e9).toPrecision(3)} s`;
  if (ns >= 1e6) return `${(ns / 1e6).toPrecision(3)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toPrecision(3)} us`;
  return `${ns.toPrecision(3)} ns`;
}

/** A summary as "median (min-max)" with `fmt` applied. */
export function formatSummary(s: Summary, fmt: (v: number) => string): string {
  if (s.n === 0) return '-';
  return s.n === 1 ? fmt(s.median) : `${fmt(s.median)} (${fmt(s.min)}..${fmt(s.max)})`;
}

/** Columns padded to their widest cell; the first column left-aligned, the others right-aligned. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

// ------------------------------------------------------------------ progress, Ctrl-C

/** A progress bar on stderr with ETA, shown only on a TTY and only for work expected to last over a second. */
export interface Progress {
  /** Marks `units` of work done (units are whatever start() counted: ms of expected work here). */
  advance(units: number, label?: string): void;
  stop(): void;
}

const silent: Progress = { advance: () => {}, stop: () => {} };

export function startProgress(title: string, totalUnits: number, options: { enabled?: boolean; expectedMs?: number } = {}): Progress {
  const enabled = options.enabled ?? Boolean(process.stderr.isTTY);
  if (!enabled || (options.expectedMs ?? totalUnits) < 1000) return silent;
  // Loaded only when a bar is shown: JSON runs and tests never need it.
  const cliProgress = createRequire(path.join(packageRoot, 'package.json'))('cli-progress') as typeof import('cli-progress');
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${title} [{bar}] {percentage}% | ETA {etaText} | {label}`,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 20,
    },
    cliProgress.Presets.shades_classic,
  );
  let value = 0;
  let label = '';
  const t0 = process.hrtime.bigint();
  // ETA from the pace so far (cli-progress's own needs a few updates before it has one).
  const eta = (): string => {
    if (value <= 0) return '?';
    const left = ((sinceNs(t0) / 1e9) * (totalUnits - value)) / value;
    return left >= 60 ? `${Math.floor(left / 60)}m${String(Math.round(left % 60)).padStart(2, '0')}s` : `${Math.round(left)}s`;
  };
  bar.start(totalUnits, 0, { label, etaText: '?' });
  return {
    advance(units, newLabel) {
      value = Math.min(totalUnits, value + units);
      if (newLabel !== undefined) label = newLabel;
      bar.update(value, { label, etaText: eta() });
    },
    stop() {
      bar.stop();
    },
  };
}

/**
 * Ctrl-C for a benchmark run: the first SIGINT asks the probes to stop (native ones at their next
 * check) so the run ends early and prints what finished; a second one exits at once (130).
 */
export class Interrupt {
  #aborted = false;
  #handler = (): void => {
    if (this.#aborted) {
      process.stderr.write('\nhwsq: interrupted again, exiting\n');
      process.exit(130);
    }
    this.#aborted = true;
    process.stderr.write('\nhwsq: interrupted: stopping, the results so far follow (Ctrl-C again to quit at once)\n');
    try {
      (native() as unknown as { probes?: { cancel(): void } }).probes?.cancel();
    } catch {
      // the addon could not be loaded: nothing native is running
    }
    for (const fn of this.#listeners) fn();
  };
  #listeners: (() => void)[] = [];

  get aborted(): boolean {
    return this.#aborted;
  }

  /** Called once on the first Ctrl-C (e.g. to destroy a runtime mid-burst). */
  onAbort(fn: () => void): void {
    this.#listeners.push(fn);
  }

  install(): this {
    process.on('SIGINT', this.#handler);
    return this;
  }

  dispose(): void {
    process.off('SIGINT', this.#handler);
  }

  /** For tests and callers without a terminal: behave as if Ctrl-C was pressed. */
  trigger(): void {
    this.#handler();
  }
}

// ------------------------------------------------------------------ results

export type BenchKind = 'latency' | 'memory' | 'compare' | 'pools';

/** What `--json` writes: the results with the machine and options they came from. */
export interface BenchEnvelope<K extends BenchKind = BenchKind, R = unknown> {
  tool: 'hwsq';
  kind: K;
  version: string;
  startedAt: string;
  durationMs: number;
  /** Ctrl-C stopped the run: `results` holds what finished. */
  interrupted: boolean;
  machine: MachineInfo;
  options: Record<string, unknown>;
  results: R;
}

/** Runs a probe with the machine description, timing and Ctrl-C handling around it. */
export async function runBench<K extends BenchKind, R>(
  kind: K,
  options: Record<string, unknown>,
  body: (ctx: { interrupt: Interrupt; machine: MachineInfo }) => Promise<R>,
  ctx: { interrupt?: Interrupt } = {},
): Promise<BenchEnvelope<K, R>> {
  const interrupt = ctx.interrupt ?? new Interrupt().install();
  const startedAt = new Date().toISOString();
  const t0 = process.hrtime.bigint();
  try {
    const machine = await describeMachine();
    const results = await body({ interrupt, machine });
    return {
      tool: 'hwsq',
      kind,
      version,
      startedAt,
      durationMs: sinceNs(t0) / 1e6,
      interrupted: interrupt.aborted,
      machine,
      options,
      results,
    };
  } finally {
    if (!ctx.interrupt) interrupt.dispose();
  }
}

/**
 * Prints a result: `json === true` prints JSON on stdout instead of the table; a file name writes
 * the JSON there and prints the table. Sets exit code 130 after Ctrl-C.
 */
export function emit(envelope: BenchEnvelope, format: (e: BenchEnvelope) => string, json: boolean | string | undefined): void {
  const text = JSON.stringify(envelope, null, 2) + '\n';
  if (json === true) process.stdout.write(text);
  else {
    if (typeof json === 'string') fs.writeFileSync(json, text);
    process.stdout.write(formatMachine(envelope.machine) + '\n\n' + format(envelope) + '\n');
    if (typeof json === 'string') process.stderr.write(`hwsq: results written to ${json}\n`);
  }
  if (envelope.interrupted) process.exitCode = 130;
}

/** Sleeps without keeping the process alive past Ctrl-C handling. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Nanoseconds elapsed since `t0` (a process.hrtime.bigint() reading: CLOCK_MONOTONIC). */
export function sinceNs(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0);
}

// ------------------------------------------------------------------ the native probes

export interface NativeLatencyResult {
  nsPerLoad: number[];
  loads: number[];
  cpu: number;
  cpuNode: number;
  cancelled: boolean;
}

export interface NativeBandwidthResult {
  bytesPerSec: number[];
  bytesRead: number[];
  seconds: number[];
  threads: number;
  cancelled: boolean;
}

export interface NativePlacementResult {
  nodes: number[];
  tasksByCpuNodeAndHome: number[][];
  bytesByCpuNodeAndMemory: number[][];
  unknownMemoryBytes: number;
  tasks: number;
  remoteTasks: number;
  remoteWhileOwnQueued: number;
  remotePickups: number;
  remotePickupsWhileOwnQueued: number;
  cpuNodeMismatch: number;
  elapsedNs: number;
  cancelled: boolean;
  workerNodes: number[];
  before: import('../core/stats').SchedulerStats;
  after: import('../core/stats').SchedulerStats;
}

/** exports.probes of the addon (native/napi/probes.cpp). */
export interface ProbesBinding {
  prepareChase(view: Uint8Array, seed: number): Promise<number>;
  adviseHugePages(view: Uint8Array): { alignedOffset: number; alignedBytes: number; advised: boolean; collapsed: boolean; collapseErrno: number };
  hugePageBytes(view: Uint8Array): number;
  latency(o: { view: Uint8Array; cpu: number; durationNs: number; samples: number; warmupLoads: number }): Promise<NativeLatencyResult>;
  bandwidth(o: { view: Uint8Array; cpus: number[]; durationNs: number; samples: number; warmupNs: number }): Promise<NativeBandwidthResult>;
  placement(o: {
    workers: number;
    pin: 'node' | 'cpu' | 'none';
    policy: 'flat' | 'hierarchical';
    tasksPerNode: number;
    bytesPerTask: number;
    warmupTasksPerNode: number;
    buffers: { node: number; view: Uint8Array; pageNodes: Int32Array; pageSize: number }[];
  }): Promise<NativePlacementResult>;
  cancel(): void;
}

export function probesBinding(): ProbesBinding {
  return (native() as unknown as { probes: ProbesBinding }).probes;
}
