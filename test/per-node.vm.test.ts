// One process per NUMA node on real multi-node kernels (QEMU, see test/vm/): `hwsq run
// --per-node` and forkPerNode in the 2-node and 4-node guests (and the guest with a memory-only
// node, which must get no copy). Each copy must run on its node (getcpu, affinity), have its
// memory there (pageNodes) under the policy asked for (get_mempolicy, numactl --show), see
// HWSQ_NUMA_NODE, and put a default NativeRuntime on its node only; an HTTP server forked per
// node must answer from every node on one port. Needs dist/ and build/Release built first.
import { describe, expect, it } from 'vitest';
import type { Answer, ClusterEvent, ProbeReport } from './per-node-reports';
import { runInVm, TOPOLOGIES, vmToolsAvailable, type VmTopology } from './vm/harness';

interface RunResult {
  status: number;
  stderr: string;
  reports: ProbeReport[];
}
interface GuestResult {
  topology: { nodes: { id: number; cpus: number[]; hasMemory: boolean }[]; allowedCpus: number[] };
  bind: RunResult;
  preferred: RunResult;
  subset: RunResult;
  numactl: { status: number; show: Record<string, string | null> };
  codes: { status: number };
  killed: { status: number };
  term: { code: number | null; signal: string | null };
  envOnly: Record<'unset' | 'last', { status: number; stderr: string; report: ProbeReport | null }>;
  cluster: { status: number; stderr: string; events: ClusterEvent[] };
}

async function guest(topo: VmTopology): Promise<GuestResult> {
  const r = await runInVm(topo, 'node test/guest/per-node-checks.cjs', { timeoutMs: 280_000, separateStderr: true });
  if (r.exitCode !== 0) throw new Error(`guest exited ${r.exitCode}:\n${r.stdout}\n${r.stderr ?? ''}\n--- console ---\n${r.console.slice(-3000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as GuestResult;
}

const byEnv = (reports: ProbeReport[]) => [...reports].sort((a, b) => Number(a.env) - Number(b.env));

describe('one process per NUMA node on multi-node kernels', () => {
  it('has QEMU, a kernel and busybox to boot them', () => {
    const tools = vmToolsAvailable();
    expect(tools.missing, 'install: apt-get install qemu-system-x86 linux-image-amd64 busybox-static numactl hwloc-nox').toEqual([]);
  });

  for (const name of ['twoNode', 'fourNode', 'cpuless'] as const) {
    describe(name, () => {
      let result: GuestResult;
      let cpuNodes: { id: number; cpus: number[] }[];

      it('boots and runs the checks', async () => {
        result = await guest(TOPOLOGIES[name]);
        cpuNodes = result.topology.nodes.filter((n) => n.cpus.length > 0);
        expect(result.topology.nodes.length).toBe(TOPOLOGIES[name].nodes.length);
        expect(cpuNodes.length).toBeGreaterThan(1);
      }, 300_000);

      it('hwsq run --per-node: one copy per node with CPUs, on its node (getcpu) with its memory there (pageNodes, bind)', () => {
        expect(result.bind.stderr).toBe('');
        expect(result.bind.status).toBe(0);
        const reports = byEnv(result.bind.reports);
        expect(reports.map((r) => r.env)).toEqual(cpuNodes.map((n) => String(n.id)));
        reports.forEach((r, i) => {
          const node = cpuNodes[i]!;
          expect(r.affinity).toEqual(node.cpus);
          for (const s of r.samples) {
            expect(s.node).toBe(node.id);
            expect(node.cpus).toContain(s.cpu);
          }
          expect(r.policy).toEqual({ policy: 'bind', nodes: [node.id] });
          expect(r.byNode).toEqual({ [node.id]: r.pages });
          expect(r.runtimeNodes).toEqual([node.id]);  // HWSQ_NUMA_NODE confines the default placement
          expect(r.session).toBe(r.pid);
        });
      });

      it('--preferred prefers the node; --nodes runs only the nodes listed', () => {
        expect(result.preferred.status).toBe(0);
        for (const r of result.preferred.reports) {
          const node = Number(r.env);
          expect(r.policy).toEqual({ policy: 'preferred', nodes: [node] });
          expect(r.byNode).toEqual({ [node]: r.pages });  // plenty of free memory: preferred = local
          for (const s of r.samples) expect(s.node).toBe(node);
        }
        expect(result.subset.status).toBe(0);
        const listed = [cpuNodes[0]!.id, cpuNodes[cpuNodes.length - 1]!.id];
        expect(byEnv(result.subset.reports).map((r) => Number(r.env))).toEqual(listed);
      });

      it('numactl --show in each copy agrees', () => {
        expect(result.numactl.status).toBe(0);
        for (const node of cpuNodes) {
          const show = result.numactl.show[node.id];
          expect(show, `numactl --show of node ${node.id}`).not.toBeNull();
          expect(show).toMatch(/^policy: bind$/m);
          expect(show).toMatch(new RegExp(`^membind: ${node.id} ?$`, 'm'));
          expect(show).toMatch(new RegExp(`^cpubind: ${node.id} ?$`, 'm'));
          expect(show).toMatch(new RegExp(`^physcpubind: ${node.cpus.join(' ')} ?$`, 'm'));
        }
      });

      it('exits with the worst status of all copies; SIGTERM is forwarded to every copy', () => {
        expect(result.codes.status).toBe(10 + cpuNodes[cpuNodes.length - 1]!.id);
        expect(result.killed.status).toBe(143);
        expect(result.term).toEqual({ code: 143, signal: null });
      });

      it('HWSQ_NUMA_NODE alone confines a NativeRuntime and a JS Runtime with default placement to its node', () => {
        const { unset, last } = result.envOnly;
        expect(unset.status, unset.stderr).toBe(0);
        expect(last.status, last.stderr).toBe(0);
        const ids = cpuNodes.map((n) => n.id);
        const lastNode = cpuNodes[cpuNodes.length - 1]!;
        // Not pinned: the process may run anywhere, so the confinement is the variable's doing.
        expect(last.report!.affinity).toEqual(result.topology.allowedCpus);
        expect(unset.report!.runtimeNodes).toEqual(ids);
        expect([...new Set(unset.report!.jsRuntimeNodes)]).toEqual(ids);
        expect(last.report!.runtimeNodes).toEqual([lastNode.id]);
        expect(last.report!.jsRuntimeNodes).toEqual(lastNode.cpus.map(() => lastNode.id));
      });

      it('forkPerNode: an HTTP server on one port answers from every node, each worker confined; a crash is restarted; close() ends all', () => {
        expect(result.cluster.status, result.cluster.stderr).toBe(0);
        const events = result.cluster.events;
        const ids = cpuNodes.map((n) => n.id);
        expect(events.find((e) => e.event === 'forked')).toMatchObject({ isPrimary: true, nodes: ids });
        const check = (answers: Answer[]) => {
          expect(answers.map((a) => a.node)).toEqual(ids);
          for (const a of answers) {
            const node = cpuNodes.find((n) => n.id === a.node)!;
            expect(a).toMatchObject({ env: String(a.node), extra: 'guest', cpuNode: a.node });
            expect(node.cpus).toContain(a.cpu);
            expect(a.affinity).toEqual(node.cpus);
            expect(a.policy).toEqual({ policy: 'bind', nodes: [a.node] });
            expect(Object.keys(a.byNode)).toEqual([String(a.node)]);
          }
        };
        const listening = events.find((e) => e.event === 'listening')!;
        expect(new Set(listening.ports as number[]).size).toBe(1);
        expect(listening.requests as number).toBeLessThanOrEqual(50 * ids.length);
        check(listening.answers as Answer[]);
        const restarted = events.find((e) => e.event === 'restarted')!;
        expect(restarted.port).toBe((listening.ports as number[])[0]);  // the others kept the port open
        check(restarted.answers as Answer[]);
        expect(events[events.length - 1]).toMatchObject({ event: 'closed', status: 0, done: 0, workersLeft: 0 });
      });
    });
  }
});
