// Pinning of the calling OS thread (or the whole process) to CPUs / NUMA nodes. The model is
// libnuma's: a pin may name any CPU of the process (topology().allowedCpus), whatever the
// calling thread is pinned to now. The undo stack lives in the addon, one per OS thread, so that
// every copy of this module a thread loads (require and import bundle it twice) shares it.
import { ErrorCodes, rangeError, unsupportedError } from '../core/errors';
import { native } from '../core/native';
import { topology, type Topology } from './topology';
import { cpuList, nodeId, pinOptions, type CheckedPinOptions } from '../core/validation';

export interface PinOptions {
  /**
   * 'thread' (default): only the calling OS thread. 'process': every thread of the process
   * except the Ps of hwsq runtimes (which keep their own pins); `unpin()` gives each thread its
   * own mask from before.
   */
  scope?: 'thread' | 'process';
  /**
   * Memory policy of the calling thread set with a node pin: 'preferred' (default) allocates on
   * the node while it has memory, 'bind' allocates only there, 'none' leaves the policy alone.
   * Ignored by pinToCpus.
   */
  memory?: 'preferred' | 'bind' | 'none';
}

export interface Pinning {
  readonly cpus: readonly number[];
  readonly node: number | undefined;
  readonly scope: 'thread' | 'process';
  /** The calling thread's CPUs before this pin. */
  readonly previousCpus: readonly number[];
  /** Restores the affinity (and memory policy) from before this pin; later pins are undone too. */
  unpin(): void;
}

function requireLinux(what: string): void {
  if (native().platform !== 'linux') throw unsupportedError(what);
}

function applyPin(cpus: readonly number[], node: number | undefined, options: CheckedPinOptions): Pinning {
  const scope = options.scope;
  const memory = node === undefined ? 'none' : options.memory;
  const pinned = native().pin([...cpus], scope, memory, node ?? -1);
  return {
    cpus: Object.freeze(pinned.cpus),
    node,
    scope,
    previousCpus: Object.freeze(pinned.previousCpus),
    unpin: () => native().unpin(pinned.id),
  };
}

/**
 * Pins the calling OS thread to the allowed CPUs of NUMA node `node` and makes the node the
 * preferred place for its memory. Returns a handle whose `unpin()` restores the previous state.
 */
export function pinToNumaNode(node: number, options: PinOptions = {}): Pinning {
  nodeId(node);
  const checked = pinOptions(options);
  requireLinux('pinToNumaNode');
  return applyPin(nodeAllowedCpus(topology(), node), node, checked);
}

/**
 * The CPUs of `node` the process may use (its allowed set, whatever this thread is pinned to).
 * RangeError UNKNOWN_NODE, NODE_HAS_NO_CPUS or NO_ALLOWED_CPUS when there are none.
 */
export function nodeAllowedCpus(topo: Topology, node: number): number[] {
  const target = topo.nodes.find((n) => n.id === node);
  if (!target) {
    throw rangeError(ErrorCodes.UNKNOWN_NODE, `unknown NUMA node ${node}; nodes are ${topo.nodes.map((n) => n.id).join(', ')}`);
  }
  if (target.cpus.length === 0) throw rangeError(ErrorCodes.NODE_HAS_NO_CPUS, `NUMA node ${node} has no CPUs (memory-only node)`);
  const allowed = new Set(topo.allowedCpus);
  const cpus = target.cpus.filter((c) => allowed.has(c));
  if (cpus.length === 0) {
    throw rangeError(ErrorCodes.NO_ALLOWED_CPUS, `none of NUMA node ${node}'s CPUs (${target.cpus.join(',')}) is allowed for this process`);
  }
  return cpus;
}

/**
 * Pins the calling OS thread (or the process) to exactly these CPUs, any of the process's
 * (`topology().allowedCpus`); others are ERR_HWSQ_CPU_NOT_ALLOWED.
 */
export function pinToCpus(cpus: readonly number[], options: PinOptions = {}): Pinning {
  const ids = cpuList(cpus);
  const checked = pinOptions(options);
  requireLinux('pinToCpus');
  return applyPin([...new Set(ids)].sort((a, b) => a - b), undefined, checked);
}

/** Undoes the most recent pin of this thread. Returns false when nothing was pinned. */
export function unpin(): boolean {
  return native().unpinLast();
}

/** CPUs the calling thread may run on. */
export function getAffinity(): number[] {
  requireLinux('getAffinity');
  return native().getAffinity();
}

/** CPU the calling thread is running on now (getcpu). */
export function currentCpu(): number {
  requireLinux('currentCpu');
  return native().currentLocation().cpu;
}

/** NUMA node of the CPU the calling thread is running on now (getcpu). */
export function currentNode(): number {
  requireLinux('currentNode');
  return native().currentLocation().node;
}
