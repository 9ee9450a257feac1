// The NUMA layer on real multi-node Linux kernels (QEMU, see test/vm/): topology against
// numactl -H, pinning against getcpu and procfs, placement against /proc/self/numa_maps.
import { describe, expect, it } from 'vitest';
import { runInVm, TOPOLOGIES, vmToolsAvailable, type VmTopology } from './vm/harness';

interface NumactlView {
  nodes: { id: number; cpus: number[]; sizeMiB: number }[];
  distances: number[][];
}

function parseNumactl(text: string): NumactlView {
  const nodes = new Map<number, { id: number; cpus: number[]; sizeMiB: number }>();
  const node = (id: number) => nodes.get(id) ?? nodes.set(id, { id, cpus: [], sizeMiB: 0 }).get(id)!;
  const distances: number[][] = [];
  let inDistances = false;
  for (const line of text.split('\n')) {
    let m: RegExpExecArray | null;
    if ((m = /^node (\d+) cpus:(.*)$/.exec(line))) node(Number(m[1])).cpus = m[2]!.trim().split(/\s+/).filter(Boolean).map(Number);
    else if ((m = /^node (\d+) size: (\d+) MB/.exec(line))) node(Number(m[1])).sizeMiB = Number(m[2]);
    else if (line.startsWith('node distances:')) inDistances = true;
    else if (inDistances && (m = /^\s*\d+:\s+(.*)$/.exec(line))) distances.push(m[1]!.trim().split(/\s+/).map(Number));
  }
  return { nodes: [...nodes.values()].sort((a, b) => a.id - b.id), distances };
}

function cpuList(text: string): number[] {
  return text.split(',').flatMap((part) => {
    const [a, b] = part.split('-').map(Number);
    return b === undefined ? [a!] : Array.from({ length: b - a! + 1 }, (_, i) => a! + i);
  });
}

interface GuestResult {
  topology: {
    nodes: { id: number; cpus: number[]; memoryBytes: number; distances: number[]; hasMemory: boolean }[];
    allowedCpus: number[];
  };
  numactl: string;
  cli: string;
  mainThread: { node: number; affinity: number[]; status: string; samples: { cpu: number; node: number }[]; after: number[] }[];
  workers: { node: number; affinity: number[]; samples: { cpu: number; node: number }[] }[];
  memory: { node: number; byNode: Record<string, number>; pages: number; local: boolean; numaMaps: string | null }[];
  migrate: { from: number; to: number; before: Record<string, number>; after: Record<string, number>; numaMaps: string | null } | null;
  interleave?: { byNode: Record<string, number>; numaMaps: string | null };
  errors: Record<string, { threw: boolean; name?: string; code?: string; unchanged?: boolean }>;
  pinModel: PinModelResult;
}

type Attempt = { ok: boolean; cpus?: number[]; affinity?: number[]; name?: string; code?: string; unchanged?: boolean };
interface Placed {
  node: number;
  cpuNode: number;
  cpu: number;
  affinity: number[];
}
interface PinModelResult {
  inTurn: { steps: { node: number; cpus: number[]; affinity: number[]; sample: { cpu: number; node: number } }[]; after: number[] };
  workerFromPinned: { from: number; to: number; inherited: number[]; cpus: number[]; affinity: number[]; samples: { cpu: number; node: number }[] };
  runtimes: {
    from: number;
    spread: Placed[];
    confined: Placed[];
    js: { workers: { node: number; cpus: number[] }[]; tasks: { worker: number; node: number; cpus: number[]; affinity: number[]; cpu: number; cpuNode: number }[] };
  };
  processPin: { before: number[][]; during: number[][]; after: number[][]; mainDuring: number[]; mainAfter: number[] };
  taskset: {
    cpu: number;
    allowedCpus: number[];
    pinEach: (Attempt & { cpu: number })[];
    pinEachNode: (Attempt & { node: number })[];
    runtime: { cpus: number[][]; affinity: number[][] };
  };
  cpuset: {
    cpu: number;
    start: { allowed: number[]; affinity: number[] };
    grown: { allowed: number[]; affinity: number[]; pinLast: Attempt };
    shrunk: { allowed: number[]; affinity: number[]; pinFirst: Attempt };
  };
}

async function guest(topo: VmTopology): Promise<GuestResult> {
  const r = await runInVm(topo, 'node test/guest/numa-checks.cjs', { timeoutMs: 240_000 });
  if (r.exitCode !== 0) throw new Error(`guest exited ${r.exitCode}:\n${r.stdout}\n--- console ---\n${r.console.slice(-3000)}`);
  const line = r.stdout.trim().split('\n').pop()!;
  return JSON.parse(line) as GuestResult;
}

function numaMapsCounts(line: string | null): Record<string, number> {
  expect(line, 'mapping found in /proc/self/numa_maps').not.toBeNull();
  const counts: Record<string, number> = {};
  for (const m of line!.matchAll(/ N(\d+)=(\d+)/g)) counts[m[1]!] = Number(m[2]);
  return counts;
}

describe('NUMA layer on multi-node kernels', () => {
  it('has QEMU, a kernel and busybox to boot them', () => {
    const tools = vmToolsAvailable();
    expect(tools.missing, `install: apt-get install qemu-system-x86 linux-image-amd64 busybox-static numactl hwloc-nox`).toEqual([]);
  });

  for (const name of ['twoNode', 'fourNode', 'cpuless', 'interleaved'] as const) {
    describe(name, () => {
      let result: GuestResult;

      it('boots and runs the checks', async () => {
        result = await guest(TOPOLOGIES[name]);
        expect(result.topology.nodes.length).toBe(TOPOLOGIES[name].nodes.length);
      }, 300_000);

      it('topology equals numactl -H (nodes, cpus, memory, distances)', () => {
        const view = parseNumactl(result.numactl);
        expect(result.topology.nodes.map((n) => n.id)).toEqual(view.nodes.map((n) => n.id));
        result.topology.nodes.forEach((n, i) => {
          expect(n.cpus).toEqual(view.nodes[i]!.cpus);
          expect(Math.abs(n.memoryBytes / 2 ** 20 - view.nodes[i]!.sizeMiB)).toBeLessThanOrEqual(1);
          expect(n.distances).toEqual(view.distances[i]);
        });
        // And what QEMU was told to build.
        const configured = TOPOLOGIES[name];
        result.topology.nodes.forEach((n, i) => expect(n.cpus.length).toBe(configured.nodes[i]!.cpus));
        result.topology.nodes.forEach((n, i) => configured.nodes[i]!.cpuIds && expect(n.cpus).toEqual(configured.nodes[i]!.cpuIds));
        if (configured.distances) expect(result.topology.nodes.map((n) => n.distances)).toEqual(configured.distances);
      });

      it('pinToNumaNode runs the main thread on the node (getcpu, procfs)', () => {
        const withCpus = result.topology.nodes.filter((n) => n.cpus.length > 0);
        expect(result.mainThread.map((p) => p.node)).toEqual(withCpus.map((n) => n.id));
        for (const pin of result.mainThread) {
          const cpus = withCpus.find((n) => n.id === pin.node)!.cpus;
          expect(pin.affinity).toEqual(cpus);
          expect(cpuList(pin.status)).toEqual(cpus);
          for (const s of pin.samples) {
            expect(s.node).toBe(pin.node);
            expect(cpus).toContain(s.cpu);
          }
          expect(pin.after).toEqual(result.topology.allowedCpus);
        }
      });

      it('pinToNumaNode in a Worker pins the worker thread', () => {
        for (const w of result.workers) {
          const cpus = result.topology.nodes.find((n) => n.id === w.node)!.cpus;
          expect(w.affinity).toEqual(cpus);
          for (const s of w.samples) expect(s.node).toBe(w.node);
        }
        expect(result.workers.length).toBe(result.topology.nodes.filter((n) => n.cpus.length > 0).length);
      });

      it('allocOnNode places pages on the node (pageNodes and numa_maps agree)', () => {
        const memNodes = result.topology.nodes.filter((n) => n.hasMemory).map((n) => n.id);
        expect(result.memory.map((m) => m.node)).toEqual(memNodes);
        for (const m of result.memory) {
          expect(m.byNode).toEqual({ [m.node]: m.pages });
          expect(m.local).toBe(true);
          expect(numaMapsCounts(m.numaMaps)).toEqual({ [m.node]: m.pages });
          expect(m.numaMaps).toContain(`bind:${m.node}`);
        }
      });

      it('movePages migrates and allocInterleaved spreads pages', () => {
        const mig = result.migrate!;
        expect(mig.before).toEqual({ [mig.from]: 512 });
        expect(mig.after).toEqual({ [mig.to]: 512 });
        expect(numaMapsCounts(mig.numaMaps)).toEqual({ [mig.to]: 512 });
        const memNodes = result.topology.nodes.filter((n) => n.hasMemory);
        const counts = numaMapsCounts(result.interleave!.numaMaps);
        expect(result.interleave!.byNode).toEqual(counts);
        for (const n of memNodes) expect(Math.abs(counts[n.id]! - 1024 / memNodes.length)).toBeLessThanOrEqual(1);
      });

      it('rejects pinning to a CPU-less or unknown node, affinity unchanged', () => {
        expect(result.errors.unknown).toMatchObject({ threw: true, name: 'RangeError', code: 'ERR_HWSQ_UNKNOWN_NODE', unchanged: true });
        if (TOPOLOGIES[name].nodes.some((n) => n.cpus === 0)) {
          expect(result.errors.cpuless).toMatchObject({ threw: true, name: 'RangeError', code: 'ERR_HWSQ_NODE_HAS_NO_CPUS', unchanged: true });
        }
      });

      // The pinning model: pins name the process's CPUs whatever the calling thread's pin.
      const cpusOf = (id: number) => result.topology.nodes.find((n) => n.id === id)!.cpus;
      const cpuNodeIds = () => result.topology.nodes.filter((n) => n.cpus.length > 0).map((n) => n.id);

      it('pins to each node in turn without unpinning (getcpu agrees); one unpin undoes them all', () => {
        const { steps, after } = result.pinModel.inTurn;
        expect(steps.map((s) => s.node)).toEqual(cpuNodeIds());
        for (const s of steps) {
          expect(s.cpus).toEqual(cpusOf(s.node));
          expect(s.affinity).toEqual(cpusOf(s.node));
          expect(s.sample.node).toBe(s.node);
          expect(cpusOf(s.node)).toContain(s.sample.cpu);
        }
        expect(after).toEqual(result.topology.allowedCpus);
      });

      it('a Worker started by a pinned thread pins itself to another node', () => {
        const w = result.pinModel.workerFromPinned;
        expect(w.inherited).toEqual(cpusOf(w.from));
        expect(w.cpus).toEqual(cpusOf(w.to));
        expect(w.affinity).toEqual(cpusOf(w.to));
        for (const s of w.samples) expect(s.node).toBe(w.to);
      });

      it("a runtime started from a pinned thread spans every node (getcpu from its Ps and tasks); confineToCaller keeps the caller's node", () => {
        const r = result.pinModel.runtimes;
        expect([...new Set(r.spread.map((l) => l.node))].sort((a, b) => a - b)).toEqual(cpuNodeIds());
        for (const l of r.spread) {
          expect(l.affinity).toEqual(cpusOf(l.node));
          expect(l.cpuNode).toBe(l.node);
        }
        expect(r.confined.length).toBe(cpusOf(r.from).length);
        for (const l of r.confined) expect(l).toMatchObject({ node: r.from, cpuNode: r.from, affinity: cpusOf(r.from) });
        expect([...new Set(r.js.workers.map((w) => w.node))].sort((a, b) => a - b)).toEqual(cpuNodeIds());
        expect(r.js.tasks.length).toBe(r.js.workers.length);
        for (const t of r.js.tasks) {
          expect(t.affinity).toEqual(cpusOf(t.node));
          expect(t.cpuNode).toBe(t.node);
        }
        expect([...new Set(r.js.tasks.map((t) => t.cpuNode))].sort((a, b) => a - b)).toEqual(cpuNodeIds());
      });

      it("process-scope pin and unpin while a runtime runs leave its Ps' pins intact", () => {
        const p = result.pinModel.processPin;
        expect(p.before.length).toBeGreaterThan(0);
        for (const mask of p.before) expect(cpuNodeIds().map(cpusOf)).toContainEqual(mask);
        expect(p.during).toEqual(p.before);
        expect(p.after).toEqual(p.before);
        expect(p.mainDuring).toEqual([result.topology.allowedCpus[0]]);
        expect(p.mainAfter).toEqual(result.topology.allowedCpus);
      });

      it('a child under taskset -c gets ERR_HWSQ_CPU_NOT_ALLOWED for other CPUs and ERR_HWSQ_NO_ALLOWED_CPUS for other nodes', () => {
        const t = result.pinModel.taskset;
        const home = result.topology.nodes.find((n) => n.cpus.includes(t.cpu))!.id;
        expect(t.allowedCpus).toEqual([t.cpu]);
        expect(t.pinEach.map((p) => p.cpu)).toEqual(result.topology.allowedCpus);
        for (const p of t.pinEach) {
          if (p.cpu === t.cpu) expect(p).toMatchObject({ ok: true, affinity: [t.cpu] });
          else expect(p).toMatchObject({ ok: false, name: 'RangeError', code: 'ERR_HWSQ_CPU_NOT_ALLOWED', unchanged: true });
        }
        expect(t.pinEachNode.map((p) => p.node)).toEqual(cpuNodeIds());
        for (const p of t.pinEachNode) {
          if (p.node === home) expect(p).toMatchObject({ ok: true, cpus: [t.cpu] });
          else expect(p).toMatchObject({ ok: false, name: 'RangeError', code: 'ERR_HWSQ_NO_ALLOWED_CPUS', unchanged: true });
        }
        expect(t.runtime).toEqual({ cpus: [[t.cpu]], affinity: [[t.cpu]] });
      });

      it('the process CPUs follow a cgroup cpuset that grows and shrinks (re-read on each pin)', () => {
        const c = result.pinModel.cpuset;
        const all = result.topology.allowedCpus;
        const last = all[all.length - 1]!;
        expect(c.start).toEqual({ allowed: [c.cpu], affinity: [c.cpu] });
        expect(c.grown.allowed).toEqual(all);
        expect(c.grown.pinLast).toMatchObject({ ok: true, affinity: [last] });
        expect(c.shrunk.allowed).toEqual([last]);
        expect(c.shrunk.affinity).toEqual([last]);
        expect(c.shrunk.pinFirst).toMatchObject({ ok: false, name: 'RangeError', code: 'ERR_HWSQ_CPU_NOT_ALLOWED', unchanged: true });
      });

      it('hwsq topology shows every node, its CPUs and the distances', () => {
        const n = TOPOLOGIES[name].nodes.length;
        expect(result.cli).toMatch(new RegExp(`^${n} NUMA nodes`));
        for (const node of result.topology.nodes) {
          expect(result.cli).toContain(`node ${node.id} cpus: ${node.cpus.length ? node.cpus.join(' ') : '(none: memory-only node)'}`);
        }
        expect(result.cli).toContain('node distances:');
      });
    });
  }
});
