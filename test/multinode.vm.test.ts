// What cannot fail on a one-node machine, run where it can (QEMU guests, see test/vm/): the
// native test binaries, whose multi-node cases return early on one node, with
// HWSQ_EXPECT_NODES set so that there they must run; and the JS counterparts of unit checks
// that only ever see node 0 on the host (memory policy while pinned, first touch, isMemoryLocal,
// the preferred policy). Expected values come from the topology QEMU was given and numactl -H.
// The binaries are those of the native stage (build-native-plain/, brought up to date here with
// cmake --build; `HWSQ_NATIVE_VARIANTS=plain node scripts/native-tests.js` configures it first).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runInVm, TOPOLOGIES, vmToolsAvailable, type VmTopology } from './vm/harness';

const root = path.resolve(__dirname, '..');
const buildDir = path.join(root, 'build-native-plain');
// binary=filter runs the cases whose name contains filter: test_topology's fixture cases (20 s
// of fuzzing on the host, minutes under TCG) mean nothing more in a guest than on the host.
const BINARIES = ['test_affinity', 'test_memory', 'test_topology=live system', 'test_parallelism', 'test_probes', 'test_sched_runtime'];
const binaryName = (entry: string) => entry.split('=')[0]!;
const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

interface Policy {
  policy: string;
  nodes: number[];
}
interface GuestResult {
  numactl: string;
  nodes: { id: number; cpus: number[]; hasMemory: boolean }[];
  native: { name: string; filter: string | null; ms: number; status: number | null; signal: string | null; error: string | null; stdout: string; stderr: string }[];
  pinned: { node: number; before: Policy; during: Policy; after: Policy; bound: Policy; firstTouch: Record<string, number>; firstTouchPages: number; cpuNode: number; localDefault: boolean }[];
  preferred: { node: number; byNode: Record<string, number>; pages: number; local: boolean }[];
}

// numactl -H: the node ids and, per node, whether it has CPUs.
function numactlNodes(text: string): { id: number; cpus: number }[] {
  return [...text.matchAll(/^node (\d+) cpus:(.*)$/gm)].map((m) => ({ id: Number(m[1]), cpus: m[2]!.trim().split(/\s+/).filter(Boolean).length }));
}

beforeAll(() => {
  expect(fs.existsSync(path.join(buildDir, 'CMakeCache.txt')), 'build-native-plain is not configured: run HWSQ_NATIVE_VARIANTS=plain node scripts/native-tests.js').toBe(true);
  const r = spawnSync('cmake', ['--build', buildDir, '--target', ...BINARIES.map(binaryName)], { encoding: 'utf8' });
  expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
}, 600_000);

describe('checks that need several NUMA nodes', () => {
  it('has QEMU, a kernel and busybox to boot them', () => {
    expect(vmToolsAvailable().missing, 'install: apt-get install qemu-system-x86 linux-image-amd64 busybox-static numactl hwloc-nox').toEqual([]);
  });

  for (const name of ['twoNode', 'fourNode', 'cpuless'] as const) {
    describe(name, () => {
      const configured: VmTopology = TOPOLOGIES[name];
      const cpuNodes = configured.nodes.flatMap((n, id) => (n.cpus > 0 ? [id] : []));
      let r: GuestResult;

      it('boots and runs the native binaries and the JS checks', async () => {
        const vm = await runInVm(configured, `node test/guest/multinode-checks.cjs ${configured.nodes.length} ${BINARIES.map(shellQuote).join(' ')}`, { timeoutMs: 280_000, separateStderr: true });
        if (vm.exitCode !== 0) throw new Error(`guest exited ${vm.exitCode}:\n${vm.stdout}\n${vm.stderr ?? ''}\n--- console ---\n${vm.console.slice(-3000)}`);
        r = JSON.parse(vm.stdout.trim().split('\n').pop()!) as GuestResult;
        // The guest is the machine QEMU was asked for (numactl's view, not hwsq's).
        expect(numactlNodes(r.numactl)).toEqual(configured.nodes.map((n, id) => ({ id, cpus: n.cpus })));
      }, 300_000);

      it('every native test binary passes, none of its multi-node cases skipped', () => {
        expect(r.native.map((b) => b.name)).toEqual(BINARIES.map(binaryName));
        for (const b of r.native) {
          const out = `${b.stdout}\n${b.stderr}`;
          expect(b.error, `${b.name}: ${out}`).toBeNull();
          expect(b.status, `${b.name}: ${out}`).toBe(0);
          expect(out, b.name).toMatch(/^\d+ passed, 0 failed$/m);
          expect(out, b.name).not.toMatch(/^FAIL /m);
          expect(out, b.name).not.toMatch(/\(skipped: \d+ node/); // the cases that need several nodes ran
        }
        const output = (binary: string) => r.native.find((b) => b.name === binary)!.stdout;
        expect(output('test_affinity')).toMatch(/^ok {3}multi-node: policy on every node/m);
        expect(output('test_memory')).toMatch(/^ok {3}multi-node: bind, preferred, interleave and migrate across nodes/m);
        // The pinned steal-order case ran over every node with CPUs.
        expect(output('test_sched_runtime')).toContain(`${cpuNodes.length} node(s) with Ps`);
        expect(output('test_sched_runtime')).toMatch(/^ok {3}steal order on this machine's topology/m);
      });

      it("pinToNumaNode(k) prefers node k's memory while pinned, on every node: first touch lands there", () => {
        expect(r.pinned.map((p) => p.node)).toEqual(cpuNodes);
        for (const p of r.pinned) {
          const detail = JSON.stringify(p);
          expect(p.during, detail).toEqual({ policy: 'preferred', nodes: [p.node] });
          expect(p.after, detail).toEqual(p.before);
          expect(p.bound, detail).toEqual({ policy: 'bind', nodes: [p.node] });
          expect(p.cpuNode, detail).toBe(p.node);
          expect(p.firstTouchPages, detail).toBeGreaterThanOrEqual((40 << 20) / 4096);
          expect(p.firstTouch, detail).toEqual({ [p.node]: p.firstTouchPages }); // every page on node k
          expect(p.localDefault, detail).toBe(true);
        }
      });

      it('allocOnNode with the preferred policy places every page on each node', () => {
        expect(r.preferred.map((p) => p.node)).toEqual(configured.nodes.map((_, id) => id));
        for (const p of r.preferred) {
          expect(p.pages).toBe(512);
          expect(p.byNode, JSON.stringify(p)).toEqual({ [p.node]: 512 });
          expect(p.local).toBe(true);
        }
      });
    });
  }
});
