// Which NUMA nodes get a process, and starting a process confined to one of them.
//
// How a child is confined to a node without numactl or a launcher: a new process inherits the
// CPU affinity and the memory policy of the *thread* that forks it, and both survive execve. So
// the main thread pins itself to the node (and sets the memory policy) just for the synchronous
// spawn call (child_process.spawn and cluster.fork fork and exec before they return), then
// restores itself. Any command is confined from its first instruction, and every thread it
// starts inherits the confinement; nothing runs in the child before exec and no native
// launcher is needed.
import { nodeAllowedCpus, pinToNumaNode } from '../numa/affinity';
import { ErrorCodes, assertIndex, rangeError, typeError, unsupportedError } from '../core/errors';
import { native } from '../core/native';
import { topology } from '../numa/topology';

/** Memory policy of a per-node process: 'bind' (only its node's memory) or 'preferred' (its node first). */
export type PerNodeMemory = 'bind' | 'preferred';

export interface NodeTarget {
  node: number;
  /** Its allowed CPUs when the targets were chosen (a spawn re-reads them). */
  cpus: number[];
  /** 'none' for a node without memory: its process allocates from the nearest node. */
  memory: PerNodeMemory | 'none';
}

/**
 * One target per node: `nodes` in the order given, or every node with CPUs this process may use.
 * Bad lists are TypeError INVALID_ARG_TYPE / RangeError INVALID_ARG; unusable nodes are
 * RangeError UNKNOWN_NODE, NODE_HAS_NO_CPUS or NO_ALLOWED_CPUS; off Linux, Error UNSUPPORTED.
 */
export function perNodeTargets(nodes: readonly number[] | undefined, memory: PerNodeMemory): NodeTarget[] {
  if (nodes !== undefined) {
    if (!Array.isArray(nodes)) throw typeError(ErrorCodes.INVALID_ARG_TYPE, 'nodes must be an array of NUMA node ids');
    if (nodes.length === 0) throw rangeError(ErrorCodes.INVALID_ARG, 'nodes must name at least one NUMA node');
    nodes.forEach((id, i) => assertIndex(id, `nodes[${i}]`));
    const dup = nodes.find((id, i) => nodes.indexOf(id) !== i);
    if (dup !== undefined) throw rangeError(ErrorCodes.INVALID_ARG, `nodes names NUMA node ${dup} twice`);
  }
  if (native().platform !== 'linux') throw unsupportedError('one process per NUMA node');
  const topo = topology();
  const allowed = new Set(topo.allowedCpus);
  const ids = nodes ? [...nodes] : topo.nodes.filter((n) => n.cpus.some((c) => allowed.has(c))).map((n) => n.id);
  return ids.map((node) => ({
    node,
    cpus: nodeAllowedCpus(topo, node),
    memory: topo.nodes.find((n) => n.id === node)!.hasMemory ? memory : 'none',
  }));
}

/**
 * False when the kernel refuses memory policies (no CONFIG_NUMA, or a seccomp filter) on a
 * machine where they would matter (several nodes with memory): children are then only
 * CPU-pinned, and callers say so.
 */
export function memoryPolicyEffective(): boolean {
  return native().numaAvailable() || topology().nodes.filter((n) => n.hasMemory).length <= 1;
}

/**
 * Calls `spawn` (which must fork synchronously: child_process.spawn, cluster.fork) with the
 * calling thread pinned to the target's node and its memory policy set, then restores both.
 */
export function spawnOnNode<T>(target: NodeTarget, spawn: () => T): T {
  const pin = pinToNumaNode(target.node, { scope: 'thread', memory: target.memory });
  try {
    return spawn();
  } finally {
    pin.unpin();
  }
}
