import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import path from 'node:path';
import { availableParallelism, numaNodeCount, topology } from '../lib/index';

const root = fileURLToPath(new URL('..', import.meta.url));
const fixtures = fileURLToPath(new URL('./fixtures/sysfs/', import.meta.url));

function cli(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, ['bin/hwsq.js', ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, ...env } });
}

describe('topology of this machine', () => {
  const topo = topology();

  it('puts every online CPU in exactly one node', () => {
    const online = topo.cpus.filter((c) => c.online).map((c) => c.id);
    const inNodes = topo.nodes.flatMap((n) => n.cpus).sort((a, b) => a - b);
    expect(inNodes).toEqual(online);
    expect(online.length).toBe(os.cpus().length);
    for (const c of topo.cpus.filter((c) => c.online)) {
      expect(topo.nodes.find((n) => n.id === c.node)!.cpus).toContain(c.id);
      expect(c.siblings).toContain(c.id);
    }
  });

  it('has a square distance matrix with 10 on the diagonal', () => {
    expect(numaNodeCount()).toBe(topo.nodes.length);
    topo.nodes.forEach((n, i) => {
      expect(n.distances.length).toBe(topo.nodes.length);
      expect(n.distances[i]).toBe(10);
    });
  });

  it('reports allowed CPUs and parallelism consistent with each other', () => {
    expect(topo.allowedCpus.length).toBeGreaterThan(0);
    const p = availableParallelism();
    expect(p.allowedCpus).toBe(topo.allowedCpus.length);
    expect(p.value).toBeGreaterThanOrEqual(1);
    expect(p.value).toBeLessThanOrEqual(p.allowedCpus);
    if (p.quota !== null) expect(p.value).toBe(Math.min(p.allowedCpus, Math.max(1, Math.ceil(p.quota / p.period!))));
  });
});

describe('hwsq topology CLI', () => {
  it('--json prints the documented shape', () => {
    const r = cli(['topology', '--json']);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.nodes.length).toBeGreaterThan(0);
    for (const n of out.nodes) expect(Object.keys(n)).toEqual(expect.arrayContaining(['id', 'cpus', 'memoryBytes', 'distances']));
    for (const c of out.cpus) expect(Object.keys(c)).toEqual(expect.arrayContaining(['id', 'node', 'core', 'package', 'online']));
    expect(Array.isArray(out.allowedCpus)).toBe(true);
    expect(Object.keys(out.parallelism)).toEqual(expect.arrayContaining(['value', 'allowedCpus', 'quota', 'period', 'source']));
  });

  it('reads a dump of another machine through HWSQ_FSROOT and --fsroot', () => {
    const viaEnv = cli(['topology', '--json'], { HWSQ_FSROOT: fixtures + 'intel-2s-ht' });
    const viaFlag = cli(['topology', '--json', '--fsroot', fixtures + 'intel-2s-ht']);
    expect(viaEnv.status).toBe(0);
    expect(JSON.parse(viaEnv.stdout)).toEqual(JSON.parse(viaFlag.stdout));
    const out = JSON.parse(viaEnv.stdout);
    expect(out.nodes.map((n: { id: number }) => n.id)).toEqual([0, 1]);
    expect(out.cpus.length).toBe(16);
  });

  it('prints a human summary with nodes, distances and packages', () => {
    const r = cli(['topology', '--fsroot', fixtures + 'intel-2s-ht']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^2 NUMA nodes, 16 CPUs/);
    expect(r.stdout).toContain('node distances:');
    expect(r.stdout).toMatch(/Package 0 \(node 0\)/);
    expect(r.stdout).toMatch(/Package 1 \(node 1\)/);
  });

  it('--help lists the commands', () => {
    const r = cli(['--help']);
    expect(r.stdout).toContain('topology');
  });
});

describe('topology and parallelism of other machines (fixture dumps)', () => {
  const at = (name: string) => ({ fsroot: fixtures + name });

  it('AMD EPYC NPS2: 4 nodes, slurm cpuset on node 0, cgroup v1 quota of 6 CPUs', () => {
    const t = topology(at('amd-epyc-nps2'));
    expect(t.nodes.map((n) => n.id)).toEqual([0, 1, 2, 3]);
    expect(t.nodes[0]!.distances).toEqual([10, 12, 32, 32]);
    expect(t.allowedCpus).toEqual([0, 1, 2, 3, 16, 17, 18, 19]);
    expect(t.parallelism).toMatchObject({ value: 6, allowedCpus: 8, quota: 600000, period: 100000, source: 'cgroup1' });
  });

  it('cgroup v2 cpuset and quota: allowed CPUs 4-6, cpu.max 1.5 CPUs gives 2', () => {
    const p = availableParallelism(at('cgroup-restricted'));
    expect(p).toMatchObject({ value: 2, allowedCpus: 3, quota: 150000, period: 100000, source: 'cgroup2' });
    expect(topology(at('cgroup-restricted')).allowedCpus).toEqual([4, 5, 6]);
  });

  it('no quota anywhere: parallelism is the allowed CPU count', () => {
    expect(availableParallelism(at('intel-2s-ht'))).toMatchObject({ value: 16, quota: null, period: null, source: 'cpuset' });
  });

  it('sparse node ids, offline CPUs and a CPU-less node (POWER)', () => {
    const t = topology(at('power-sparse'));
    expect(t.nodes.map((n) => n.id)).toEqual([0, 8, 252]);
    expect(t.nodes[2]!.cpus).toEqual([]);
    expect(numaNodeCount(at('power-sparse'))).toBe(3);
    expect(t.cpus.filter((c) => !c.online).map((c) => c.id)).toEqual([7, 12, 13, 14, 15]);
    for (const n of t.nodes) expect(n.distances[t.nodes.indexOf(n)]).toBe(10);
  });

  it('memory-only node on ARM counts as a node with no CPUs', () => {
    const t = topology(at('arm-cpuless'));
    expect(t.nodes.map((n) => [n.id, n.cpus.length])).toEqual([[0, 4], [1, 4], [2, 0]]);
    expect(t.cpus.every((c) => c.package === -1)).toBe(true);
  });

  it('a kernel without NUMA gives one synthetic node; garbage files do not crash', () => {
    const t = topology(at('nonuma'));
    expect(t.nodes.map((n) => n.id)).toEqual([0]);
    expect(t.nodes[0]!.cpus).toEqual([0, 1, 2, 3]);
    expect(() => topology(at('garbled'))).not.toThrow();
  });
});

// Cheap input must not cost much: ids past Linux's limits (CPU >= 8192, node >= 1024) and paths
// past PATH_MAX make that file unknown, like any garbled file (native/tests prove the cost
// bounds with work counters; these check the results through the JS API).
describe('hostile dumps', () => {
  function dump(files: Record<string, string>): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hwsq-hostile-'));
    for (const [rel, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      fs.writeFileSync(path.join(dir, rel), text);
    }
    return dir;
  }
  const made: string[] = [];
  const at = (files: Record<string, string>) => {
    const dir = dump(files);
    made.push(dir);
    return { fsroot: dir };
  };
  afterAll(() => {
    for (const d of made) fs.rmSync(d, { recursive: true, force: true });
  });

  it('a 7-byte node/online of 0-20000: nodes come from the node directories', () => {
    const t = topology(
      at({
        'sys/devices/system/cpu/online': '0-1\n',
        'sys/devices/system/node/online': '0-20000',
        'sys/devices/system/node/node0/cpulist': '0-1\n',
      }),
    );
    expect(t.nodes.map((n) => n.id)).toEqual([0]);
    expect(t.nodes[0]!.cpus).toEqual([0, 1]);
    expect(t.synthetic).toBe(false);
  });

  it('a 10 KB cpulist of the widest ranges parses to each CPU once', () => {
    let wide = '';
    while (wide.length < 10_000) wide += '0-8191,';
    const t = topology(
      at({
        'sys/devices/system/cpu/online': '0-3\n',
        'sys/devices/system/node/online': '0\n',
        'sys/devices/system/node/node0/cpulist': wide + '1\n',
      }),
    );
    expect(t.nodes[0]!.cpus).toEqual([0, 1, 2, 3]);
  });

  it('CPU ids past 8191 make the list unknown', () => {
    const t = topology(
      at({
        'sys/devices/system/cpu/online': '0-3\n',
        'sys/devices/system/cpu/present': '0-9000\n',
        'sys/devices/system/node/online': '0\n',
        'sys/devices/system/node/node0/cpulist': '0-3\n',
      }),
    );
    expect(t.cpus.map((c) => c.id)).toEqual([0, 1, 2, 3]);
  });

  it('a cgroup path of 20k components is ignored: parallelism is the allowed CPU count', () => {
    const p = availableParallelism(
      at({
        'sys/devices/system/cpu/online': '0-3\n',
        'proc/self/cgroup': `0::${'/a'.repeat(20_000)}\n`,
        'proc/self/mountinfo': '26 23 0:24 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n',
        'sys/fs/cgroup/cpu.max': '100000 100000\n',
      }),
    );
    expect(p).toMatchObject({ value: 4, allowedCpus: 4, quota: null, source: 'cpuset' });
  });
});
