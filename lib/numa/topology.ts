// Machine topology and cgroup-aware parallelism, read from sysfs/procfs by the native layer.
import os from 'node:os';
import { native } from '../core/native';
import { fsroot } from '../core/validation';

export interface NumaNode {
  /** OS node id (ids may be sparse: 0, 8, 252...). */
  id: number;
  /** Online CPUs of the node; empty for memory-only nodes (CXL, HBM). */
  cpus: number[];
  memoryBytes: number;
  freeBytes: number;
  /** SLIT distances: `distances[i]` is the distance to `nodes[i]`. */
  distances: number[];
  hasMemory: boolean;
}

export interface Cpu {
  id: number;
  node: number;
  /** sysfs `core_id` (unique within a package). */
  core: number;
  /** sysfs `physical_package_id` (socket); -1 where the platform does not report one. */
  package: number;
  die: number;
  /** Last-level cache group: the lowest CPU id sharing this CPU's LLC; -1 when unknown. */
  l3: number;
  online: boolean;
  /** SMT siblings, this CPU included. */
  siblings: number[];
}

export interface Parallelism {
  /** min(allowed CPUs, ceil(cgroup quota / period)), at least 1. */
  value: number;
  /** Number of CPUs this process may run on (affinity mask and cgroup cpuset). */
  allowedCpus: number;
  /** cgroup CPU quota in microseconds per period; null when unlimited. */
  quota: number | null;
  period: number | null;
  /** Which limit decided: 'cgroup2', 'cgroup1' or 'cpuset' (no quota). */
  source: 'cgroup2' | 'cgroup1' | 'cpuset';
  /** The cgroup directory whose quota won ('' when none). */
  cgroupPath: string;
}

export interface Topology {
  nodes: NumaNode[];
  cpus: Cpu[];
  allowedCpus: number[];
  parallelism: Parallelism;
  /** True when the kernel exposes no NUMA information and one node was synthesised. */
  synthetic: boolean;
}

export interface TopologyOptions {
  /** Directory holding `sys/` and `proc/` (a dump of another machine). Default: `HWSQ_FSROOT` or the live system. */
  fsroot?: string;
}

/** Reads the NUMA topology: nodes, CPUs, distances, allowed CPUs and parallelism. */
export function topology(options?: TopologyOptions): Topology {
  const root = fsroot(options);
  const raw = native().topology(root);
  if (raw.cpus.length === 0) {
    // No sysfs (non-Linux): one node holding every CPU the OS reports.
    const count = os.availableParallelism();
    const ids = Array.from({ length: count }, (_, i) => i);
    raw.cpus = ids.map((id) => ({ id, node: 0, core: id, package: 0, die: -1, l3: -1, online: true, siblings: [id] }));
    raw.nodes = [{ id: 0, cpus: ids, memoryBytes: os.totalmem(), freeBytes: os.freemem(), distances: [10], hasMemory: true }];
    raw.allowedCpus = ids;
    raw.synthetic = true;
  }
  const parallelism = native().parallelism(root, raw.allowedCpus.length);
  return { nodes: raw.nodes, cpus: raw.cpus, allowedCpus: raw.allowedCpus, parallelism, synthetic: raw.synthetic };
}

/** Number of online NUMA nodes, CPU-less memory nodes included. */
export function numaNodeCount(options?: TopologyOptions): number {
  return topology(options).nodes.length;
}

/** cgroup-aware parallelism with the inputs that produced it. */
export function availableParallelism(options?: TopologyOptions): Parallelism {
  return topology(options).parallelism;
}
