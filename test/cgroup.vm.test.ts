// Following a real cgroup v2 hierarchy (QEMU guests, see test/vm/): the guest mounts cgroup2,
// moves the test process into a child group and rewrites its cpu.max and cpuset.cpus while a
// Runtime and a NativeRuntime with workers 'auto' run (test/guest/cgroup-checks.cjs). Judged on
// the 'parallelism' events, the stats, each P's CPU and affinity as its own thread reports them,
// and the kernel's per-thread masks (procfs), against the CPUs of each node read from sysfs.
// The guest kernel (Debian's 6.1) resets every thread of a cgroup to the whole new cpuset when
// cpuset.cpus changes, so the pins seen after the cpuset grows back are hwsq's re-pinning.
// Needs dist/ and build/Release built first: the guest sees the host's files as they are at boot.
import { describe, expect, it } from 'vitest';
import { runInVm, TOPOLOGIES, vmToolsAvailable, type VmTopology } from './vm/harness';

interface ThreadInfo {
  worker: number;
  cpus: number[];
  affinity: number[];
  cpu: number;
  met: boolean; // the barrier saw every active P's task start: one task per active P
}
interface Step {
  name: string;
  file?: string;
  value?: string;
  effective: number[];
  event: { previous: number; current: number; source: string } | null;
  stats: { parallelism: number; activeWorkers: number; source: string; active: boolean[] };
  threads?: ThreadInfo[];
  masks?: number[][];
}
interface WorkerPlace {
  worker: number;
  node: number;
  cpus: number[];
}
interface GuestResult {
  kernel: string;
  machine: { nodes: { id: number; cpus: number[] }[]; cpus: number[] };
  group: { self: string; controllers: string };
  js: { workers: WorkerPlace[]; steps: Step[] };
  native: { workers: WorkerPlace[]; steps: Step[] };
}

async function guest(topo: VmTopology): Promise<GuestResult> {
  const r = await runInVm(topo, 'node test/guest/cgroup-checks.cjs --in-guest', { timeoutMs: 280_000, separateStderr: true });
  if (r.exitCode !== 0) throw new Error(`guest exited ${r.exitCode}:\n${r.stdout}\n${r.stderr ?? ''}\n--- console ---\n${r.console.slice(-3000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as GuestResult;
}

const step = (steps: Step[], name: string): Step => {
  const s = steps.find((x) => x.name === name);
  if (!s) throw new Error(`no step "${name}" in ${steps.map((x) => x.name).join(', ')}`);
  return s;
};
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);

describe('following a real cgroup v2 hierarchy', () => {
  it('has QEMU, a kernel and busybox to boot them', () => {
    const tools = vmToolsAvailable();
    expect(tools.missing, 'install: apt-get install qemu-system-x86 linux-image-amd64 busybox-static numactl hwloc-nox').toEqual([]);
  });

  for (const name of ['twoNode', 'fourNode', 'cpuless', 'interleaved'] as const) {
    describe(name, () => {
      let r: GuestResult;
      const configured = TOPOLOGIES[name];
      // The node of a CPU, from the guest's sysfs.
      const nodeOfCpu = (cpu: number) => r.machine.nodes.find((n) => n.cpus.includes(cpu))!.id;
      // One P per CPU, node by node.
      const byNode = () => r.machine.nodes.flatMap((n) => n.cpus.map((c) => [c]));

      it('boots, mounts cgroup2 and runs the scenarios inside a child group', async () => {
        r = await guest(configured);
        expect(r.machine.nodes.length).toBe(configured.nodes.filter((n) => n.cpus > 0).length); // sysfs nodes with CPUs
        expect(r.group.self).toBe('0::/hwsq-follow');
        expect(r.group.controllers.split(' ')).toEqual(expect.arrayContaining(['cpu', 'cpuset']));
      }, 300_000);

      it('Runtime: one P per CPU, each pinned to its CPU', () => {
        expect(r.js.workers.map((w) => w.cpus)).toEqual(byNode()); // P order is node order (interleaved ids too)
        const start = step(r.js.steps, 'start');
        expect(start.stats.activeWorkers).toBe(r.machine.cpus.length);
        expect(start.threads!.map((t) => t.worker)).toEqual(r.js.workers.map((w) => w.worker));
        for (const t of start.threads!) {
          expect(t.met).toBe(true);
          expect(t.affinity, JSON.stringify(t)).toEqual(t.cpus);
          expect(t.cpu).toBe(t.cpus[0]);
        }
      });

      it('Runtime: cpu.max at one CPU leaves one active P, and unlimited brings every P back', () => {
        const n = r.machine.cpus.length;
        const one = step(r.js.steps, 'cpu.max one CPU');
        expect(one.event).toEqual({ previous: n, current: 1, source: 'cgroup2' });
        expect([one.stats.parallelism, one.stats.activeWorkers, one.stats.source]).toEqual([1, 1, 'cgroup2']);
        expect(one.stats.active.filter(Boolean).length).toBe(1);
        const back = step(r.js.steps, 'cpu.max unlimited');
        expect(back.event).toEqual({ previous: 1, current: n, source: 'cpuset' });
        expect(back.stats.active.every(Boolean)).toBe(true);
      });

      it("Runtime: a cpuset of the last node's CPUs keeps that node's Ps, on their own CPUs", () => {
        const last = r.machine.nodes[r.machine.nodes.length - 1]!;
        const s = step(r.js.steps, 'cpuset: the last node only');
        expect(s.effective).toEqual(last.cpus);
        expect(s.event?.current).toBe(last.cpus.length);
        expect(s.stats.activeWorkers).toBe(last.cpus.length);
        const onLast = r.js.workers.filter((w) => nodeOfCpu(w.cpus[0]!) === last.id).map((w) => w.worker);
        expect(s.stats.active.flatMap((a, w) => (a ? [w] : []))).toEqual(onLast);
        expect(s.threads!.map((t) => t.worker)).toEqual(onLast);
        for (const t of s.threads!) {
          expect(t.met).toBe(true);
          expect(t.affinity, JSON.stringify(t)).toEqual(t.cpus); // an active P keeps its own CPU
          expect(s.effective).toContain(t.cpu);
        }
      });

      it("Runtime: one CPU per node, not the Ps' own: the active P of each node is re-pinned onto its node's remaining CPU", () => {
        const s = r.js.steps.find((x) => x.name === 'cpuset: one CPU per node, the last');
        // A machine of one CPU per node has no such cpuset (it is every CPU): nothing to check.
        if (r.machine.nodes.every((n) => n.cpus.length === 1)) {
          expect(s).toBeUndefined();
          return;
        }
        expect(s).toBeDefined();
        expect(s!.event?.current).toBe(r.machine.nodes.length);
        for (const node of r.machine.nodes) {
          const allowed = node.cpus[node.cpus.length - 1]!;
          const mine = r.js.workers.filter((w) => nodeOfCpu(w.cpus[0]!) === node.id).map((w) => w.worker);
          const active = mine.filter((w) => s!.stats.active[w]);
          expect(active, `node ${node.id}`).toEqual([mine[0]]); // the lowest-indexed P of each node
          const t = s!.threads!.find((x) => x.worker === active[0])!;
          expect(t.met).toBe(true);
          expect(t.cpus).not.toContain(allowed); // it lost its own CPU...
          expect(t.affinity, JSON.stringify(t)).toEqual([allowed]); // ...and is pinned to what is left of its node
          expect(t.cpu).toBe(allowed);
        }
      });

      it('Runtime: the cpuset grown back restores every P to its own CPU (the kernel had reset the masks)', () => {
        const s = step(r.js.steps, 'cpuset: every CPU again');
        expect(s.effective).toEqual(r.machine.cpus);
        expect(s.stats.activeWorkers).toBe(r.machine.cpus.length);
        expect(s.threads!.map((t) => t.worker)).toEqual(r.js.workers.map((w) => w.worker));
        for (const t of s.threads!) {
          expect(t.met).toBe(true);
          expect(t.affinity, JSON.stringify(t)).toEqual(t.cpus);
          expect(t.cpu).toBe(t.cpus[0]);
        }
      });

      it("NativeRuntime: its P threads follow the cpuset and get their own CPUs back (the kernel's per-thread masks)", () => {
        const cpus = r.native.workers.map((w) => w.cpus);
        expect(cpus).toEqual(byNode());
        // A P thread is the only one pinned to a single CPU: one thread per P's CPU with that mask.
        const pinnedTo = (masks: number[][]) => sorted(masks.filter((m) => m.length === 1).map((m) => m[0]!));
        expect(pinnedTo(step(r.native.steps, 'start').masks!)).toEqual(r.machine.cpus);
        const last = r.machine.nodes[r.machine.nodes.length - 1]!;
        const shrunk = step(r.native.steps, 'cpuset: the last node only');
        expect(shrunk.event?.current).toBe(last.cpus.length);
        for (const m of shrunk.masks!) for (const c of m) expect(last.cpus).toContain(c);
        for (const c of last.cpus) expect(pinnedTo(shrunk.masks!)).toContain(c);
        const back = step(r.native.steps, 'cpuset: every CPU again');
        expect(pinnedTo(back.masks!)).toEqual(r.machine.cpus);
      });
    });
  }
});
