// The scheduler on real multi-node kernels (QEMU, see test/vm/): a NativeRuntime with its
// default placement inside 2-node and 4-node guests. Placement is checked with getcpu and the
// threads' affinity; node affinity, saturation spill and steal order with the scheduler's
// counters (test/guest/sched-checks.cjs), never with timings (TCG timings mean nothing).
// Needs dist/ and build/Release built first: the guest sees the host's files as they are at boot.
import { describe, expect, it } from 'vitest';
import { runInVm, TOPOLOGIES, vmToolsAvailable, type VmTopology } from './vm/harness';

interface Counters {
  executed: number[];
  hwsqPops?: number[];
  stealsRemoteTasks: number[];
}
interface GuestResult {
  topology: {
    policy: string;
    pinned: boolean;
    workers: { worker: number; node: number; cpus: number[] }[];
    nodes: { node: number; workers: number[]; distances: number[] }[];
  };
  machine: { nodes: { id: number; cpus: number[] }[]; allowedCpus: number[] };
  locations: { worker: number; node: number; cpu: number; cpuNode: number; affinity: number[] }[];
  affinity: {
    node: number;
    workers: number[];
    unsaturated: Counters & { rounds: number };
    saturated: Counters & { count: number; blockersDoneWhenAffineDone: boolean };
  }[];
  steal: {
    thief: number;
    thiefNode: number;
    victims: number[];
    depthBefore: number[];
    depthAfter: number[];
    stealsSameNode: number;
    stealsRemote: number;
    stealsSameNodeTasks: number;
    stealsRemoteTasks: number;
  };
  final: { executed: number; spawned: number; externalSubmitted: number; dropped: number; workers: { executed: number }[] };
  flat: { policy: string; counts: number[]; executed: number; queueCapacity: number[] };
  js: {
    workers: { worker: number; node: number; cpus: number[] }[];
    perNode: { node: number; runs: { worker: number; node: number; cpuNode: number; cpu: number; byNode: Record<string, number> }[] }[];
  };
}

async function guest(topo: VmTopology): Promise<GuestResult> {
  const r = await runInVm(topo, 'node test/guest/sched-checks.cjs', { timeoutMs: 280_000, separateStderr: true });
  if (r.exitCode !== 0) throw new Error(`guest exited ${r.exitCode}:\n${r.stdout}\n${r.stderr ?? ''}\n--- console ---\n${r.console.slice(-3000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as GuestResult;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

describe('scheduler on multi-node kernels', () => {
  it('has QEMU, a kernel and busybox to boot them', () => {
    const tools = vmToolsAvailable();
    expect(tools.missing, 'install: apt-get install qemu-system-x86 linux-image-amd64 busybox-static numactl hwloc-nox').toEqual([]);
  });

  for (const name of ['twoNode', 'fourNode'] as const) {
    describe(name, () => {
      let r: GuestResult;
      const configured = TOPOLOGIES[name];

      it('boots and runs the scenarios', async () => {
        r = await guest(configured);
        expect(r.machine.nodes.length).toBe(configured.nodes.length);
      }, 300_000);

      it('Runtime (JS tasks): workers pinned per node; a task spawned with a node runs there and first-touches its memory there', () => {
        const cpusOf = (id: number) => r.machine.nodes.find((n) => n.id === id)!.cpus;
        expect(r.js.workers.map((w) => w.node)).toEqual(r.topology.workers.map((w) => w.node));
        for (const w of r.js.workers) expect(w.cpus).toEqual(cpusOf(w.node));
        expect(r.js.perNode.map((p) => p.node)).toEqual(r.machine.nodes.map((n) => n.id));
        for (const p of r.js.perNode) {
          for (const run of p.runs) {
            expect(run.node, JSON.stringify(run)).toBe(p.node); // the P that ran it is on node k
            expect(run.cpuNode, JSON.stringify(run)).toBe(p.node); // getcpu(): so is its thread
            expect(cpusOf(p.node)).toContain(run.cpu);
            expect(Object.keys(run.byNode), JSON.stringify(run)).toEqual([String(p.node)]); // every page on node k
          }
        }
      });

      it('spreads one P per CPU over the nodes, each pinned to its node and running there', () => {
        const cpuCount = sum(configured.nodes.map((n) => n.cpus));
        expect(r.topology.workers.length).toBe(cpuCount);
        expect(r.topology.pinned).toBe(true);
        expect(r.topology.nodes.map((n) => n.node)).toEqual(r.machine.nodes.map((n) => n.id));
        r.topology.nodes.forEach((n, i) => expect(n.workers.length).toBe(configured.nodes[i]!.cpus));
        if (configured.distances) expect(r.topology.nodes.map((n) => n.distances)).toEqual(configured.distances);
        for (const l of r.locations) {
          const cpus = r.machine.nodes.find((n) => n.id === l.node)!.cpus;
          expect(r.topology.workers[l.worker]!.cpus).toEqual(cpus);
          expect(l.affinity).toEqual(cpus);
          expect(cpus).toContain(l.cpu);
          expect(l.cpuNode).toBe(l.node); // getcpu(): the thread really is on its node
        }
      });

      it('runs tasks with affinity to node k on node k Ps while they are not saturated', () => {
        for (const a of r.affinity) {
          const onNode = sum(a.workers.map((p) => a.unsaturated.executed[p]!));
          expect(sum(a.unsaturated.executed), `node ${a.node}`).toBe(a.unsaturated.rounds);
          // Each task arrives while node k's Ps are between tasks: none is saturated, so no P of
          // another node may take it (thieves take affine tasks only from a node whose every P is
          // inside a task).
          expect(onNode, `node ${a.node}: ${JSON.stringify(a.unsaturated)}`).toBe(a.unsaturated.rounds);
          const remote = sum(a.unsaturated.stealsRemoteTasks.filter((_, p) => !a.workers.includes(p)));
          expect(remote, `node ${a.node}: ${JSON.stringify(a.unsaturated)}`).toBe(0);
        }
      });

      it("with node k's Ps blocked, other nodes' Ps steal its tasks", () => {
        for (const a of r.affinity) {
          expect(a.saturated.blockersDoneWhenAffineDone).toBe(false);
          expect(a.workers.map((p) => a.saturated.executed[p])).toEqual(a.workers.map(() => 0));
          expect(sum(a.saturated.executed)).toBe(a.saturated.count);
          const others = a.saturated.stealsRemoteTasks.filter((_, p) => !a.workers.includes(p));
          expect(sum(others)).toBeGreaterThanOrEqual(a.saturated.count);
        }
      });

      it('a P that runs out of work steals from its own node first, then from the nearest node', () => {
        const s = r.steal;
        const byWorker = r.topology.workers;
        const thiefNode = r.topology.nodes.find((n) => n.node === s.thiefNode)!;
        const distanceTo = (p: number) => thiefNode.distances[r.topology.nodes.findIndex((n) => n.node === byWorker[p]!.node)]!;
        const nearest = Math.min(...s.victims.map(distanceTo));
        // Every victim had queued work when the thief looked ...
        for (const p of s.victims) expect(s.depthBefore[p], `P${p}`).toBeGreaterThan(0);
        // ... and its first steal took half of a nearest victim's queue.
        expect(s.stealsSameNode + s.stealsRemote).toBe(1);
        const victim = s.victims.find((p) => s.depthAfter[p]! < s.depthBefore[p]! - 1);
        expect(victim, JSON.stringify(s)).toBeDefined();
        expect(distanceTo(victim!)).toBe(nearest);
        if (byWorker[victim!]!.node === s.thiefNode) expect(s).toMatchObject({ stealsSameNode: 1, stealsRemote: 0 });
        else expect(s).toMatchObject({ stealsSameNode: 0, stealsRemote: 1 });
        if (name === 'twoNode') expect(byWorker[victim!]!.node).toBe(s.thiefNode);
      });

      it('ran everything submitted exactly once; the flat policy has no node queues', () => {
        expect(r.final.dropped).toBe(0);
        expect(r.final.executed).toBe(r.final.externalSubmitted + r.final.spawned);
        expect(sum(r.final.workers.map((w) => w.executed))).toBe(r.final.executed);
        expect(r.flat).toMatchObject({ policy: 'flat', executed: 1000 * configured.nodes.length });
        expect(r.flat.queueCapacity).toEqual(configured.nodes.map(() => 0));
      });
    });
  }
});
