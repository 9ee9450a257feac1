// `hwsq bench compare`: the same node-local workload under stealPolicy 'flat' and
// 'hierarchical' (native/core/probes/placement_probe.cpp). Per node with Ps: a buffer placed on
// that node (allocOnNode, verified with pageNodes) and tasksPerNode tasks, spawned from one root
// task with the node's affinity; each task reads and writes one slice of its node's buffer.
// Per task the probe records the executing CPU's node (getcpu) and, from the buffer's page
// nodes, which node's memory it touched, so the cross-NUMA share is counted, not estimated.
// Reported per policy (median and spread over repetitions, runs alternating between policies):
// p99 scheduling latency (the core's submit -> start histogram), steals per 10k tasks (same-node
// and remote, from the core's counters), cross-NUMA memory access ratio, throughput, the share
// of tasks run away from home, and how often a P took remote work while its own node still had
// tasks queued (the hierarchical policy should not: it goes remote when its node ran out).
//
// Variant --auto: a third configuration, 'auto': the hierarchical policy, with each buffer's
// tasks spawned with node: 'auto' (numa/memory-affinity.ts: the node holding the buffer) instead
// of the node the bench meant the buffer for. With --rotate-memory the caller places buffer i on
// the next node (i+1), so a spawn by intent ('flat', 'hierarchical') runs every task away from
// its memory, and 'auto' should keep cross-NUMA traffic near zero.
import { allocOnNode, pageNodes } from '../numa/memory';
import { nearestNodes, nodeOfBuffer } from '../numa/memory-affinity';
import { topology } from '../numa/topology';
import {
  checkBufferFits,
  formatBytes,
  formatTable,
  histogramDelta,
  mergeBuckets,
  probesBinding,
  startProgress,
  summarize,
  type BenchEnvelope,
  type Buckets,
  type Interrupt,
  type NativePlacementResult,
  type Summary,
} from './common';
import type { Placement } from './memory';

/** A configuration: a steal policy, or 'auto' (hierarchical, node: 'auto' for each buffer's tasks). */
export type Policy = 'flat' | 'hierarchical' | 'auto';
export const POLICIES: readonly Policy[] = ['flat', 'hierarchical'];

export interface CompareBenchOptions {
  workers?: number;
  /** Tasks per node per run (default 50,000; 10,000 with quick). */
  tasksPerNode?: number;
  /** Bytes each task touches (default 16 KiB). */
  bytesPerTask?: number;
  /** Buffer per node (default 16 MiB). */
  bufferBytes?: number;
  /** Runs per policy (default 5; 3 with quick), alternating flat / hierarchical. */
  reps?: number;
  quick?: boolean;
  /** Also run 'auto': hierarchical, each buffer's tasks spawned with node: 'auto'. */
  auto?: boolean;
  /** The caller places buffer i on the next node with Ps (i+1) instead of on node i. */
  rotateMemory?: boolean;
  interrupt?: Interrupt;
  progress?: boolean;
}

export interface CompareRun {
  policy: Policy;
  tasks: number;
  elapsedNs: number;
  throughputTasksPerSec: number;
  latency: { p50Ns: number; p90Ns: number; p99Ns: number; maxNs: number; count: number };
  stealsSameNode: number;
  stealsRemote: number;
  stealsSameNodeTasks: number;
  stealsRemoteTasks: number;
  /** Tasks taken from the global queue (node-blind) and from the P's own node queue. */
  grqPops: number;
  hwsqPops: number;
  /** Bytes touched on a node other than the executing CPU's / all bytes touched. */
  crossNumaRatio: number;
  crossNumaBytes: number;
  totalBytes: number;
  remoteTasks: number;
  /** Remote tasks that started while the P's own node had tasks queued. */
  remoteWhileOwnQueued: number;
  /**
   * Runs of remote tasks on a P (each begins when the P took remote work), and those begun while
   * its own node certainly had tasks queued: queued before the P's previous task ended and not
   * started when the run began (a lower bound).
   */
  remotePickups: number;
  remotePickupsWhileOwnQueued: number;
  cpuNodeMismatch: number;
  /** Matrix node ids, tasks[cpu node][home node]. */
  nodes: number[];
  tasksByCpuNodeAndHome: number[][];
  /** Per P node: remote steal operations in this run. */
  remoteStealsByNode: Record<string, number>;
}

export interface PolicyResult {
  runs: CompareRun[];
  p99LatencyNs: Summary;
  stealsSameNodePer10k: Summary;
  stealsRemotePer10k: Summary;
  /** Tasks taken from the global queue per 10k tasks (node-blind: flat's affine tasks, a full node queue's overflow). */
  grqPopsPer10k: Summary;
  crossNumaRatio: Summary;
  throughputTasksPerSec: Summary;
  /** Tasks run on a P of another node than their home, per task. */
  remoteTaskShare: Summary;
  /** Times a P took remote work, per 10k tasks; and of those, while its own node still had tasks queued. */
  remotePickupsPer10k: Summary;
  remotePickupsWhileOwnQueuedPer10k: Summary;
  latencyBuckets: Buckets;
}

export interface CompareRow {
  metric: string;
  unit: string;
  better: 'lower' | 'higher';
  flat: Summary;
  hierarchical: Summary;
  /** (hierarchical - flat) / flat, in %; null when flat is 0. */
  changePct: number | null;
  /** With --auto. */
  auto?: Summary;
}

export interface CompareResults {
  nodes: number[];
  oneNode: boolean;
  notes: string[];
  workers: number;
  tasksPerNode: number;
  bytesPerTask: number;
  bufferBytes: number;
  reps: number;
  /** node: the node the bench meant the buffer for (its tasks' node under flat / hierarchical); memoryNode: where the caller placed it. */
  buffers: ({ node: number; memoryNode: number } & Placement)[];
  /** With --auto: the node node: 'auto' chose for each buffer's tasks (-1: none, fallback), in buffer order. */
  autoNodes?: number[];
  rotateMemory: boolean;
  trusted: boolean;
  policies: Partial<Record<Policy, PolicyResult>>;
  table: CompareRow[];
}

function sumField(s: NativePlacementResult['after'], key: 'stealsSameNode' | 'stealsRemote' | 'stealsSameNodeTasks' | 'stealsRemoteTasks' | 'grqPops' | 'hwsqPops'): number {
  return s.workers.reduce((a, w) => a + w[key], 0);
}

function runMetrics(policy: Policy, r: NativePlacementResult): CompareRun {
  const d = (key: Parameters<typeof sumField>[1]) => sumField(r.after, key) - sumField(r.before, key);
  const lat = histogramDelta(r.before.latency, r.after.latency);
  let cross = 0;
  let total = r.unknownMemoryBytes;
  r.bytesByCpuNodeAndMemory.forEach((row, i) =>
    row.forEach((b, j) => {
      total += b;
      if (i !== j) cross += b;
    }),
  );
  const remoteStealsByNode: Record<string, number> = {};
  r.after.nodes.forEach((n, i) => (remoteStealsByNode[n.node] = n.stealsRemote - (r.before.nodes[i]?.stealsRemote ?? 0)));
  return {
    policy,
    tasks: r.tasks,
    elapsedNs: r.elapsedNs,
    throughputTasksPerSec: r.elapsedNs > 0 ? (r.tasks / r.elapsedNs) * 1e9 : 0,
    latency: { count: lat.count, p50Ns: lat.p50Ns, p90Ns: lat.p90Ns, p99Ns: lat.p99Ns, maxNs: lat.maxNs },
    stealsSameNode: d('stealsSameNode'),
    stealsRemote: d('stealsRemote'),
    stealsSameNodeTasks: d('stealsSameNodeTasks'),
    stealsRemoteTasks: d('stealsRemoteTasks'),
    grqPops: d('grqPops'),
    hwsqPops: d('hwsqPops'),
    crossNumaRatio: total > 0 ? cross / total : 0,
    crossNumaBytes: cross,
    totalBytes: total,
    remoteTasks: r.remoteTasks,
    remoteWhileOwnQueued: r.remoteWhileOwnQueued,
    remotePickups: r.remotePickups,
    remotePickupsWhileOwnQueued: r.remotePickupsWhileOwnQueued,
    cpuNodeMismatch: r.cpuNodeMismatch,
    nodes: r.nodes,
    tasksByCpuNodeAndHome: r.tasksByCpuNodeAndHome,
    remoteStealsByNode,
  };
}

function policyResult(runs: CompareRun[], buckets: Buckets[]): PolicyResult {
  const per10k = (f: (r: CompareRun) => number) => summarize(runs.map((r) => (r.tasks ? (f(r) / r.tasks) * 1e4 : 0)));
  return {
    runs,
    p99LatencyNs: summarize(runs.map((r) => r.latency.p99Ns)),
    stealsSameNodePer10k: per10k((r) => r.stealsSameNode),
    stealsRemotePer10k: per10k((r) => r.stealsRemote),
    grqPopsPer10k: per10k((r) => r.grqPops),
    crossNumaRatio: summarize(runs.map((r) => r.crossNumaRatio)),
    throughputTasksPerSec: summarize(runs.map((r) => r.throughputTasksPerSec)),
    remoteTaskShare: summarize(runs.map((r) => (r.tasks ? r.remoteTasks / r.tasks : 0))),
    remotePickupsPer10k: per10k((r) => r.remotePickups),
    remotePickupsWhileOwnQueuedPer10k: per10k((r) => r.remotePickupsWhileOwnQueued),
    latencyBuckets: mergeBuckets(buckets),
  };
}

const ROWS: { metric: string; unit: string; better: 'lower' | 'higher'; pick: (p: PolicyResult) => Summary }[] = [
  { metric: 'p99 scheduling latency', unit: 'ns', better: 'lower', pick: (p) => p.p99LatencyNs },
  { metric: 'same-node steals / 10k tasks', unit: '', better: 'lower', pick: (p) => p.stealsSameNodePer10k },
  { metric: 'remote steals / 10k tasks', unit: '', better: 'lower', pick: (p) => p.stealsRemotePer10k },
  { metric: 'global-queue pops / 10k tasks', unit: '', better: 'lower', pick: (p) => p.grqPopsPer10k },
  { metric: 'cross-NUMA memory access ratio', unit: '%', better: 'lower', pick: (p) => p.crossNumaRatio },
  { metric: 'tasks run away from home', unit: '%', better: 'lower', pick: (p) => p.remoteTaskShare },
  { metric: 'went remote / 10k tasks', unit: '', better: 'lower', pick: (p) => p.remotePickupsPer10k },
  { metric: '... while own node had work', unit: '', better: 'lower', pick: (p) => p.remotePickupsWhileOwnQueuedPer10k },
  { metric: 'throughput', unit: 'tasks/s', better: 'higher', pick: (p) => p.throughputTasksPerSec },
];

export async function runCompareBench(options: CompareBenchOptions = {}): Promise<CompareResults> {
  const quick = options.quick ?? false;
  const tasksPerNode = options.tasksPerNode ?? (quick ? 10_000 : 50_000);
  const bytesPerTask = options.bytesPerTask ?? 16 * 1024;
  const bufferBytes = Math.max(options.bufferBytes ?? 16 * 1024 * 1024, bytesPerTask);
  const reps = options.reps ?? (quick ? 3 : 5);
  const stopped = () => options.interrupt?.aborted ?? false;
  const topo = topology();
  const allowed = new Set(topo.allowedCpus);
  const nodes = topo.nodes.filter((n) => n.cpus.some((c) => allowed.has(c)));
  checkBufferFits(bufferBytes, nodes.filter((n) => n.hasMemory), 'the node-local buffer (--buffer)');
  const probes = probesBinding();
  const results: CompareResults = {
    nodes: nodes.map((n) => n.id),
    oneNode: nodes.length < 2,
    notes: [],
    workers: 0,
    tasksPerNode,
    bytesPerTask,
    bufferBytes,
    reps,
    buffers: [],
    rotateMemory: false,
    trusted: true,
    policies: {},
    table: [],
  };
  if (results.oneNode) {
    results.notes.push(
      `this machine has one NUMA node with CPUs (node ${results.nodes.join(',')}): no task can run away from its memory, so the policies differ only in queueing; run on a multi-socket machine for the NUMA effects`,
    );
  }
  const rotate = options.rotateMemory ?? false;
  results.rotateMemory = rotate;
  const buffers = nodes.map((n, i) => {
    const mem = rotate ? nodes[(i + 1) % nodes.length]! : n;
    // A node with CPUs and no memory of its own gets the memory the kernel prefers for it.
    const view = new Uint8Array(allocOnNode(bufferBytes, mem.id, { policy: mem.hasMemory ? 'bind' : 'preferred' }));
    const p = pageNodes(view);
    const placement: Placement = { verified: p.notPresent === 0 && p.byNode[mem.id] === p.pages.length, pages: p.pages.length, byNode: { ...p.byNode }, notPresent: p.notPresent };
    results.buffers.push({ node: n.id, memoryNode: mem.id, ...placement });
    if (!placement.verified) results.notes.push(`buffer for node ${n.id} is not wholly on node ${mem.id} (${JSON.stringify(p.byNode)}): cross-NUMA ratios count the real page nodes`);
    return { node: n.id, view, pageNodes: p.pages, pageSize: p.pageSize };
  });
  if (rotate && !results.oneNode) results.notes.push("--rotate-memory: buffer i is on node i+1, so 'flat' and 'hierarchical' (tasks spawned for node i) run away from their memory by design");
  results.trusted = results.buffers.every((b) => b.verified);
  const policies: Policy[] = [...POLICIES];
  let autoBuffers = buffers;
  if (options.auto) {
    // What spawn's node: 'auto' does for each buffer's tasks (the probe takes that node as their affinity).
    const nearest = nearestNodes(results.nodes);
    results.autoNodes = buffers.map((b) => nodeOfBuffer(b.view.buffer, nearest));
    const chosen = results.autoNodes;
    // The probe wants one buffer per node with Ps: a choice that is not a permutation of the nodes cannot run.
    if (chosen.every((c) => c >= 0) && new Set(chosen).size === chosen.length) {
      autoBuffers = buffers.map((b, i) => ({ ...b, node: chosen[i]! }));
      policies.push('auto');
    } else {
      results.notes.push(`node: 'auto' chose nodes ${JSON.stringify(chosen)} for the buffers (-1: fallback): not one per node, so the 'auto' runs were skipped`);
    }
  }
  const runs: Record<Policy, CompareRun[]> = { flat: [], hierarchical: [], auto: [] };
  const buckets: Record<Policy, Buckets[]> = { flat: [], hierarchical: [], auto: [] };
  const progress = startProgress('compare', reps * policies.length, { enabled: options.progress, expectedMs: 2000 });
  try {
    for (let rep = 0; rep < reps && !stopped(); rep++) {
      for (const policy of policies) {
        if (stopped()) break;
        progress.advance(0, `${policy} run ${rep + 1}/${reps}`);
        const r = await probes.placement({
          workers: options.workers ?? 0,
          pin: 'node',
          policy: policy === 'auto' ? 'hierarchical' : policy,
          tasksPerNode,
          bytesPerTask,
          warmupTasksPerNode: Math.max(1, Math.floor(tasksPerNode / 10)),
          buffers: policy === 'auto' ? autoBuffers : buffers,
        });
        results.workers = r.workerNodes.length;
        if (r.cancelled) break;
        runs[policy].push(runMetrics(policy, r));
        buckets[policy].push(histogramDelta(r.before.latency, r.after.latency).buckets);
        progress.advance(1);
      }
    }
  } finally {
    progress.stop();
  }
  for (const policy of policies) if (runs[policy].length) results.policies[policy] = policyResult(runs[policy], buckets[policy]);
  const flat = results.policies.flat;
  const hier = results.policies.hierarchical;
  const auto = results.policies.auto;
  if (flat && hier) {
    results.table = ROWS.map((row) => {
      const f = row.pick(flat);
      const h = row.pick(hier);
      const out: CompareRow = { metric: row.metric, unit: row.unit, better: row.better, flat: f, hierarchical: h, changePct: f.median ? ((h.median - f.median) / f.median) * 100 : null };
      if (auto) out.auto = row.pick(auto);
      return out;
    });
  }
  return results;
}

function formatValue(unit: string, v: number): string {
  if (!Number.isFinite(v)) return '-';
  if (unit === '%') return `${(v * 100).toFixed(1)}%`;
  if (unit === 'ns') return v >= 1e6 ? `${(v / 1e6).toFixed(2)} ms` : v >= 1e3 ? `${(v / 1e3).toFixed(1)} us` : `${v.toFixed(0)} ns`;
  if (unit === 'tasks/s') return `${Math.round(v).toLocaleString('en-US')}/s`;
  return v.toFixed(1);
}

export function formatCompareBench(e: BenchEnvelope<'compare', CompareResults>): string {
  const r = e.results;
  const withAuto = r.table.some((row) => row.auto !== undefined);
  const lines = [
    `flat vs hierarchical${withAuto ? " vs node: 'auto'" : ''}: ${r.workers} workers on nodes ${r.nodes.join(',')}, ${r.tasksPerNode.toLocaleString('en-US')} tasks per node touching ${formatBytes(r.bytesPerTask)} each ` +
      `of a ${formatBytes(r.bufferBytes)} node-local buffer; median of ${r.reps} runs per policy (min..max)`,
  ];
  for (const n of r.notes) lines.push(`note: ${n}`);
  lines.push(
    '',
    formatTable(
      ['metric', 'flat', 'hierarchical', 'change', ...(withAuto ? ["node: 'auto'"] : [])],
      r.table.map((row) => {
        const cell = (s: Summary) => (s.n > 1 ? `${formatValue(row.unit, s.median)} (${formatValue(row.unit, s.min)}..${formatValue(row.unit, s.max)})` : formatValue(row.unit, s.median));
        const change = row.changePct === null ? '-' : `${row.changePct >= 0 ? '+' : ''}${row.changePct.toFixed(1)}%`;
        return [row.metric, cell(row.flat), cell(row.hierarchical), change, ...(withAuto ? [row.auto ? cell(row.auto) : '-'] : [])];
      }),
    ),
  );
  if (!r.table.length) lines.push('(no complete pair of runs)');
  lines.push('', `buffers: ${r.buffers.map((b) => `node ${b.node}${b.memoryNode !== b.node ? ` (memory on node ${b.memoryNode})` : ''} ${b.verified ? 'verified' : 'NOT verified'} (${b.pages} pages)`).join(', ')}`);
  if (r.autoNodes) lines.push(`node: 'auto' chose: ${r.autoNodes.map((c, i) => `buffer ${i} -> ${c < 0 ? 'fallback' : `node ${c}`}`).join(', ')}`);
  if (e.interrupted) lines.push('', 'interrupted: the runs that finished are summarized above');
  return lines.join('\n');
}
