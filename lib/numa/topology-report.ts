// Human-readable topology summary: numactl -H's node view plus lstopo's package/L3/core view.
import type { Topology } from './topology';

const MiB = 1024 * 1024;

export function formatCpuList(cpus: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < cpus.length; ) {
    let j = i;
    while (j + 1 < cpus.length && cpus[j + 1] === cpus[j]! + 1) j++;
    parts.push(j > i ? `${cpus[i]}-${cpus[j]}` : `${cpus[i]}`);
    i = j + 1;
  }
  return parts.join(',') || '(none)';
}

function pad(value: string | number, width: number): string {
  return String(value).padStart(width);
}

export function formatTopology(topo: Topology): string {
  const out: string[] = [];
  const online = topo.cpus.filter((c) => c.online).length;
  const p = topo.parallelism;
  out.push(
    `${topo.nodes.length} NUMA node${topo.nodes.length === 1 ? '' : 's'}, ${topo.cpus.length} CPUs ` +
      `(${online} online, ${topo.allowedCpus.length} allowed: ${formatCpuList(topo.allowedCpus)})` +
      (topo.synthetic ? ' [no NUMA information: one synthetic node]' : ''),
  );
  const quota = p.quota === null ? 'no CPU quota' : `quota ${p.quota}us/${p.period}us = ${(p.quota / p.period!).toFixed(2)} CPUs`;
  out.push(`parallelism: ${p.value} (allowed CPUs ${p.allowedCpus}, ${quota}; source ${p.source}${p.cgroupPath ? ` ${p.cgroupPath}` : ''})`);
  out.push('');
  for (const n of topo.nodes) {
    out.push(`node ${n.id} cpus: ${n.cpus.length ? n.cpus.join(' ') : '(none: memory-only node)'}`);
    out.push(`node ${n.id} size: ${Math.round(n.memoryBytes / MiB)} MB`);
    out.push(`node ${n.id} free: ${Math.round(n.freeBytes / MiB)} MB`);
  }
  out.push('node distances:');
  const w = Math.max(3, ...topo.nodes.map((n) => String(n.id).length)) + 1;
  out.push('node' + topo.nodes.map((n) => pad(n.id, w)).join(''));
  for (const n of topo.nodes) out.push(pad(`${n.id}:`, 4) + n.distances.map((d) => pad(d, w)).join(''));
  out.push('');

  // Package -> L3 -> core -> PUs, grouped like lstopo --no-io.
  const packages = new Map<number, typeof topo.cpus>();
  for (const c of topo.cpus.filter((c) => c.online)) {
    const list = packages.get(c.package) ?? [];
    list.push(c);
    packages.set(c.package, list);
  }
  const allowed = new Set(topo.allowedCpus);
  for (const [pkg, cpus] of [...packages].sort((a, b) => a[0] - b[0])) {
    const nodes = [...new Set(cpus.map((c) => c.node))].sort((a, b) => a - b);
    out.push(`Package ${pkg < 0 ? '(unknown)' : pkg} (node${nodes.length > 1 ? 's' : ''} ${nodes.join(',')})`);
    const groups = new Map<number, typeof cpus>();
    for (const c of cpus) groups.set(c.l3, [...(groups.get(c.l3) ?? []), c]);
    for (const [l3, members] of [...groups].sort((a, b) => a[0] - b[0])) {
      const cores = new Map<string, number[]>();
      for (const c of members) {
        const key = c.siblings.length ? formatCpuList([...c.siblings].sort((a, b) => a - b)) : String(c.id);
        cores.set(key, [...(cores.get(key) ?? []), c.id]);
      }
      const label = l3 < 0 ? 'L3 (unknown)' : `L3 group ${l3}`;
      const coreText = [...cores.values()]
        .map((pus) => `[${pus.map((id) => (allowed.has(id) ? `${id}` : `${id}*`)).join(' ')}]`)
        .join(' ');
      out.push(`  ${label}: ${cores.size} core${cores.size === 1 ? '' : 's'} ${coreText}`);
    }
  }
  const offline = topo.cpus.filter((c) => !c.online).map((c) => c.id);
  if (offline.length) out.push(`offline CPUs: ${formatCpuList(offline)}`);
  if (topo.allowedCpus.length < online) out.push('(* = online but not allowed for this process)');
  return out.join('\n');
}
