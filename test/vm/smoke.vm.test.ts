// Smoke test of the QEMU multi-NUMA harness: each predefined topology boots and numactl, hwloc
// and node inside the guest see what QEMU was told to build.
import { describe, expect, it } from 'vitest';
import { APT_COMMAND, TOPOLOGIES, distanceMatrix, runInVm, vmToolsAvailable, type VmResult } from './harness';

const MARK = (s: string) => `echo '@@@ ${s}'`;

function sections(stdout: string): Record<string, string> {
  const out: Record<string, string> = {};
  let current = '';
  for (const line of stdout.split('\n')) {
    const m = /^@@@ (\S+)$/.exec(line);
    if (m) out[(current = m[1]!)] = '';
    else if (current) out[current] += line + '\n';
  }
  return out;
}

function parseNumactl(text: string) {
  const cpus = new Map<number, number[]>();
  const distances: number[][] = [];
  let available = -1;
  let inDistances = false;
  for (const line of text.split('\n')) {
    let m: RegExpExecArray | null;
    if ((m = /^available: (\d+) nodes/.exec(line))) available = Number(m[1]);
    else if ((m = /^node (\d+) cpus:(.*)$/.exec(line))) cpus.set(Number(m[1]), m[2]!.trim().split(/\s+/).filter(Boolean).map(Number));
    else if (line.startsWith('node distances:')) inDistances = true;
    else if (inDistances && (m = /^\s*\d+:\s+(.*)$/.exec(line))) distances.push(m[1]!.trim().split(/\s+/).map(Number));
  }
  return { available, cpus, distances };
}

describe('QEMU multi-NUMA VM harness', () => {
  it('has QEMU, a kernel and a static busybox', () => {
    const tools = vmToolsAvailable();
    expect(tools.missing, `missing VM tools; install them with: ${APT_COMMAND}`).toEqual([]);
    expect(tools.ok).toBe(true);
  });

  for (const name of ['twoNode', 'fourNode', 'cpuless'] as const) {
    it(`${name}: numactl, lstopo and node see the configured machine`, async () => {
      const topo = TOPOLOGIES[name];
      const command = [
        MARK('numactl'),
        'numactl -H',
        MARK('lstopo'),
        'lstopo-no-graphics --of console',
        MARK('node'),
        `node -e "console.log(JSON.stringify({cpus: require('os').cpus().length}))"`,
      ].join('; ');
      const r: VmResult = await runInVm(topo, command, { separateStderr: true });
      console.log(`[vm] ${name}: boot ${r.bootMs} ms, total ${r.durationMs} ms`);
      expect(r.exitCode, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}\nconsole:\n${r.console.slice(-3000)}`).toBe(0);
      const s = sections(r.stdout);

      const numa = parseNumactl(s.numactl ?? '');
      expect(numa.available).toBe(topo.nodes.length);
      let next = 0;
      topo.nodes.forEach((node, k) => {
        const expected = Array.from({ length: node.cpus }, (_, i) => next + i);
        next += node.cpus;
        expect(numa.cpus.get(k), `cpus of node ${k}`).toEqual(expected);
      });
      for (const [k, node] of topo.nodes.entries()) if (node.cpus === 0) expect(numa.cpus.get(k)).toEqual([]);
      expect(numa.distances).toEqual(distanceMatrix(topo));

      expect((s.lstopo ?? '').match(/\bNUMANode\b/g)?.length, s.lstopo).toBe(topo.nodes.length);
      expect((s.lstopo ?? '').match(/\bPU L#\d+/g)?.length, s.lstopo).toBe(next);

      const nodeLine = (s.node ?? '').trim().split('\n').pop()!;
      expect(JSON.parse(nodeLine)).toEqual({ cpus: next });
    });
  }

  it('propagates the exit code, separates stdout from the console, applies cwd and env', async () => {
    const r = await runInVm(TOPOLOGIES.twoNode, `echo "$PWD $HOME $HWSQ_SMOKE"; echo to-stderr >&2; exit 7`, {
      cwd: '/usr/share',
      env: { HWSQ_SMOKE: "it's set" },
    });
    expect(r.exitCode).toBe(7);
    expect(r.stdout).toBe("/usr/share /tmp it's set\nto-stderr\n");
    expect(r.console).toContain('hwsq-vm: finished, exit code 7');
  });

  it('boots a guest stuck before the command once more, within the same timeout', async () => {
    const r = await runInVm(TOPOLOGIES.twoNode, 'echo booted', { timeoutMs: 120_000, bootDeadlineMs: 25_000, stallFirstBoot: true });
    expect([r.exitCode, r.stdout, r.boots]).toEqual([0, 'booted\n', 2]);
    expect(r.console).not.toContain('stalling');
  });

  it('kills the VM on timeout and reports the console tail', async () => {
    await expect(runInVm(TOPOLOGIES.twoNode, 'sleep 600', { timeoutMs: 20_000 })).rejects.toThrow(/timed out after 20000 ms[\s\S]*console tail[\s\S]*hwsq-vm: running/);
  });
});
