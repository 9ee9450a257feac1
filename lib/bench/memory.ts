// `hwsq bench memory`: the latency and bandwidth matrices Intel MLC reports, for every pair
// (CPU node i, memory node j):
//   latency:   idle load-to-use latency, one thread pinned to a CPU of node i chasing pointers
//              through a buffer on node j (a random cycle over its cache lines, well beyond the
//              LLC, on huge pages when the kernel gives them);
//   bandwidth: read bandwidth of one thread per allowed CPU of node i streaming over the buffer.
// The measuring loops are native (native/core/probes/memory_probe.cpp, on their own pinned
// threads); this file places the memory (allocOnNode), verifies it (pageNodes, before and after
// measuring: a buffer not wholly on its node makes the cells untrusted and says so), and
// orchestrates. CPU-less memory nodes (CXL, HBM) are columns without a row.
import { allocOnNode, pageNodes } from '../numa/memory';
import { topology } from '../numa/topology';
import {
  checkBufferFits,
  formatBytes,
  formatTable,
  probesBinding,
  startProgress,
  summarize,
  lastLevelCache,
  type BenchEnvelope,
  type Interrupt,
  type Summary,
} from './common';

const MiB = 1024 * 1024;
const HUGE = 2 * MiB;

export interface MemoryBenchOptions {
  /** Bytes of the buffer per memory node (default: 4x the LLC, at least 64 MiB, at most a quarter of the node's free memory). */
  sizeBytes?: number;
  /** Length of one timed sample, ms (default 200; 50 with quick). */
  durationMs?: number;
  /** Timed samples per measurement: median and spread are reported (default 5; 3 with quick). */
  reps?: number;
  quick?: boolean;
  /** Ask for transparent huge pages (default true). */
  hugePages?: boolean;
  latency?: boolean;
  bandwidth?: boolean;
  interrupt?: Interrupt;
  /** Show a progress bar (default: stderr is a TTY). */
  progress?: boolean;
}

export interface Placement {
  /** Every page resident and on the intended node. */
  verified: boolean;
  pages: number;
  byNode: Record<string, number>;
  notPresent: number;
}

export interface MemoryBuffer {
  memNode: number;
  bytes: number;
  hugePages: { requested: boolean; advised: boolean; collapsed: boolean; collapseErrno: number; bytes: number | null };
  /** pageNodes before measuring, and after the last measurement on it. */
  placement: Placement;
  placementAfter: Placement | null;
}

export interface MemoryCell {
  cpuNode: number;
  memNode: number;
  /** The buffer was verified on memNode before and after, and the threads ran on cpuNode. */
  trusted: boolean;
  latency?: { cpu: number; ranOnCpu: number; ranOnNode: number; nsPerLoad: Summary; samples: number[]; loads: number[] };
  bandwidth?: { cpus: number[]; threads: number; bytesPerSec: Summary; samples: number[] };
}

export interface MemoryResults {
  cpuNodes: number[];
  memNodes: number[];
  sizeBytes: number;
  llcBytes: number | null;
  durationMs: number;
  reps: number;
  /** Medians, [row: cpuNodes[i]][column: memNodes[j]]; null where not measured. */
  latencyNs: (number | null)[][];
  bandwidthBytesPerSec: (number | null)[][];
  cells: MemoryCell[];
  buffers: MemoryBuffer[];
  trusted: boolean;
  problems: string[];
}

/** The default buffer size: 4x the LLC, at least 64 MiB, at most a quarter of the smallest memory node's free memory. */
export function defaultMemorySize(freeBytes: readonly number[], llcBytes: number | null): number {
  const wanted = Math.max(64 * MiB, 4 * (llcBytes ?? 64 * MiB));
  const cap = Math.min(...freeBytes.map((f) => f / 4));
  return Math.max(HUGE, Math.floor(Math.min(wanted, cap) / HUGE) * HUGE);
}

function placementOf(view: Uint8Array, node: number): Placement {
  const p = pageNodes(view);
  const byNode: Record<string, number> = {};
  for (const [k, v] of Object.entries(p.byNode)) byNode[k] = v;
  return { verified: p.notPresent === 0 && p.byNode[node] === p.pages.length, pages: p.pages.length, byNode, notPresent: p.notPresent };
}

export async function runMemoryBench(options: MemoryBenchOptions = {}): Promise<MemoryResults> {
  const quick = options.quick ?? false;
  const durationMs = options.durationMs ?? (quick ? 50 : 200);
  const reps = options.reps ?? (quick ? 3 : 5);
  const doLatency = options.latency ?? true;
  const doBandwidth = options.bandwidth ?? true;
  const huge = options.hugePages ?? true;
  const topo = topology();
  const allowed = new Set(topo.allowedCpus);
  const cpuNodes = topo.nodes.filter((n) => n.cpus.some((c) => allowed.has(c)));
  const memNodes = topo.nodes.filter((n) => n.hasMemory);
  const llc = lastLevelCache(topo.allowedCpus[0] ?? 0);
  const sizeBytes = options.sizeBytes ?? defaultMemorySize(memNodes.map((n) => n.freeBytes || n.memoryBytes), llc?.bytes ?? null);
  checkBufferFits(sizeBytes, memNodes, 'the buffer per memory node (--size)');
  const probes = probesBinding();
  const results: MemoryResults = {
    cpuNodes: cpuNodes.map((n) => n.id),
    memNodes: memNodes.map((n) => n.id),
    sizeBytes,
    llcBytes: llc?.bytes ?? null,
    durationMs,
    reps,
    latencyNs: cpuNodes.map(() => memNodes.map(() => null)),
    bandwidthBytesPerSec: cpuNodes.map(() => memNodes.map(() => null)),
    cells: [],
    buffers: [],
    trusted: true,
    problems: [],
  };
  if (llc && sizeBytes < 2 * llc.bytes) {
    results.problems.push(`buffer (${formatBytes(sizeBytes)}) is less than twice the LLC (${formatBytes(llc.bytes)}): part of the latency is cache hits`);
  }
  const perMeasurement = reps * durationMs;
  const kinds = (doLatency ? 1 : 0) + (doBandwidth ? 1 : 0);
  const progress = startProgress('memory', cpuNodes.length * memNodes.length * kinds * perMeasurement, { enabled: options.progress });
  const stopped = () => options.interrupt?.aborted ?? false;
  try {
    for (const [j, mem] of memNodes.entries()) {
      if (stopped()) break;
      // Over-allocate by one huge page so that a 2 MiB-aligned region of sizeBytes fits.
      const raw = new Uint8Array(allocOnNode(sizeBytes + (huge ? HUGE : 0), mem.id));
      const advice = huge ? probes.adviseHugePages(raw) : { alignedOffset: 0, alignedBytes: 0, advised: false, collapsed: false, collapseErrno: 0 };
      const offset = huge && advice.alignedBytes >= sizeBytes ? advice.alignedOffset : 0;
      const view = raw.subarray(offset, offset + sizeBytes);
      const buffer: MemoryBuffer = {
        memNode: mem.id,
        bytes: sizeBytes,
        hugePages: { requested: huge, advised: advice.advised, collapsed: advice.collapsed, collapseErrno: advice.collapseErrno, bytes: null },
        placement: placementOf(view, mem.id),
        placementAfter: null,
      };
      const hugeBytes = probes.hugePageBytes(view);
      buffer.hugePages.bytes = hugeBytes < 0 ? null : hugeBytes;
      results.buffers.push(buffer);
      if (!buffer.placement.verified) {
        results.problems.push(`buffer for node ${mem.id}: pages ${JSON.stringify(buffer.placement.byNode)}, ${buffer.placement.notPresent} not present: not all on node ${mem.id}`);
      }
      await probes.prepareChase(view, 0x9e3779b9 + mem.id);
      const cells: MemoryCell[] = [];
      for (const [i, cpuNode] of cpuNodes.entries()) {
        if (stopped()) break;
        const cpus = cpuNode.cpus.filter((c) => allowed.has(c));
        const cell: MemoryCell = { cpuNode: cpuNode.id, memNode: mem.id, trusted: buffer.placement.verified };
        if (doLatency) {
          progress.advance(0, `latency CPU node ${cpuNode.id} -> memory node ${mem.id}`);
          const r = await probes.latency({ view, cpu: cpus[0]!, durationNs: durationMs * 1e6, samples: reps, warmupLoads: Math.min(sizeBytes / 64, 1 << 20) });
          if (r.nsPerLoad.length > 0) {
            const s = summarize(r.nsPerLoad);
            cell.latency = { cpu: cpus[0]!, ranOnCpu: r.cpu, ranOnNode: r.cpuNode, nsPerLoad: s, samples: r.nsPerLoad, loads: r.loads };
            results.latencyNs[i]![j] = s.median;
            if (r.cpuNode !== cpuNode.id) {
              cell.trusted = false;
              results.problems.push(`latency thread for node ${cpuNode.id} ran on node ${r.cpuNode} (CPU ${r.cpu})`);
            }
          }
          progress.advance(perMeasurement);
        }
        if (doBandwidth && !stopped()) {
          progress.advance(0, `bandwidth CPU node ${cpuNode.id} (${cpus.length} threads) -> memory node ${mem.id}`);
          const r = await probes.bandwidth({ view, cpus, durationNs: durationMs * 1e6, samples: reps, warmupNs: 0 });
          if (r.bytesPerSec.length > 0) {
            const s = summarize(r.bytesPerSec);
            cell.bandwidth = { cpus, threads: r.threads, bytesPerSec: s, samples: r.bytesPerSec };
            results.bandwidthBytesPerSec[i]![j] = s.median;
          }
          progress.advance(perMeasurement);
        }
        if (cell.latency || cell.bandwidth) cells.push(cell);
      }
      // Pages could have moved while we measured (NUMA balancing, reclaim): check again.
      buffer.placementAfter = placementOf(view, mem.id);
      if (!buffer.placementAfter.verified) {
        results.problems.push(`buffer for node ${mem.id} after measuring: pages ${JSON.stringify(buffer.placementAfter.byNode)}: moved off node ${mem.id}`);
      }
      for (const c of cells) {
        c.trusted = c.trusted && buffer.placementAfter.verified;
        results.cells.push(c);
      }
    }
  } finally {
    progress.stop();
  }
  results.trusted = results.cells.every((c) => c.trusted) && results.buffers.every((b) => b.placement.verified);
  return results;
}

function nodeRowLabel(node: number, cpus: readonly number[]): string {
  return `CPU node ${node}${cpus.length ? ` (${cpus.length} CPUs)` : ''}`;
}

export function formatMemoryBench(e: BenchEnvelope<'memory', MemoryResults>): string {
  const r = e.results;
  const nodeCpus = new Map(e.machine.nodes.map((n) => [n.id, n.cpus]));
  const cell = (i: number, j: number, pick: (c: MemoryCell) => Summary | undefined, fmt: (v: number) => string): string => {
    const c = r.cells.find((x) => x.cpuNode === r.cpuNodes[i] && x.memNode === r.memNodes[j]);
    const s = c && pick(c);
    if (!c || !s) return '-';
    const spread = s.n > 1 ? ` ±${((s.relSpread * 100) / 2).toFixed(0)}%` : '';
    return `${fmt(s.median)}${spread}${c.trusted ? '' : ' ?'}`;
  };
  const header = ['', ...r.memNodes.map((m) => `memory node ${m}`)];
  const lines = [
    `memory: ${formatBytes(r.sizeBytes)} per node${r.llcBytes ? ` (LLC ${formatBytes(r.llcBytes)})` : ''}, median of ${r.reps} x ${r.durationMs} ms` +
      (r.trusted ? '' : '  -- UNTRUSTED cells are marked ?'),
    '',
    'idle latency, ns per dependent load (one thread, pointer chasing)',
    formatTable(header, r.cpuNodes.map((n, i) => [nodeRowLabel(n, nodeCpus.get(n) ?? []), ...r.memNodes.map((_, j) => cell(i, j, (c) => c.latency?.nsPerLoad, (v) => v.toFixed(1)))])),
    '',
    'read bandwidth, GB/s (one thread per CPU of the row node)',
    formatTable(header, r.cpuNodes.map((n, i) => [nodeRowLabel(n, nodeCpus.get(n) ?? []), ...r.memNodes.map((_, j) => cell(i, j, (c) => c.bandwidth?.bytesPerSec, (v) => (v / 1e9).toFixed(2)))])),
    '',
    'buffers (pageNodes before / after measuring):',
  ];
  for (const b of r.buffers) {
    const hp = b.hugePages.bytes === null ? 'huge pages unknown' : `${formatBytes(b.hugePages.bytes)} on huge pages`;
    const after = b.placementAfter ? (b.placementAfter.verified ? 'verified' : 'MOVED') : 'not checked';
    lines.push(`  node ${b.memNode}: ${b.placement.pages} pages ${b.placement.verified ? 'verified' : 'NOT VERIFIED'} on node ${b.memNode} / ${after}; ${hp}`);
  }
  if (r.problems.length) lines.push('', 'problems:', ...r.problems.map((p) => `  ${p}`));
  if (e.interrupted) lines.push('', 'interrupted: the cells above are the ones that finished');
  return lines.join('\n');
}
