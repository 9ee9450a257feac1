// Pinning of the calling OS thread (or the whole process) to CPUs / NUMA nodes.
import { ErrorCodes, rangeError, unsupportedError } from './errors';
import { native, type NativeMemPolicy } from './native';
import { topology, type Topology } from './topology';
import { cpuList, nodeId, pinOptions, type CheckedPinOptions } from './validation';

export interface PinOptions {
  /** 'thread' (default): only the calling OS thread. 'process': every thread of the process. */
  scope?: 'thread' | 'process';
  /**
   * Memory policy set with a node pin: 'preferred' (default) allocates on the node while it has
   * memory, 'bind' allocates only there, 'none' leaves the policy alone. Ignored by pinToCpus.
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

interface SavedState {
  handle: Pinning;
  cpus: number[];
  scope: 'thread' | 'process';
  policy: { policy: NativeMemPolicy; nodes: number[] } | undefined;
}

// One stack per thread: every worker_threads Worker has its own module instance.
const pinStack: SavedState[] = [];

function requireLinux(what: string): void {
  if (native().platform !== 'linux') throw unsupportedError(what);
}

function applyPin(cpus: number[], node: number | undefined, options: CheckedPinOptions): Pinning {
  const scope = options.scope;
  const memory = node === undefined ? 'none' : options.memory;
  const binding = native();
  const previousCpus = binding.getAffinity();
  const previousPolicy = memory !== 'none' && binding.numaAvailable() ? binding.getMemPolicy() : undefined;
  binding.setAffinity(cpus, scope);
  if (previousPolicy && node !== undefined) {
    try {
      binding.setMemPolicy(memory as NativeMemPolicy, [node]);
    } catch (err) {
      binding.setAffinity(previousCpus, scope);
      throw err;
    }
  }
  const handle: Pinning = {
    cpus: Object.freeze([...cpus]),
    node,
    scope,
    previousCpus: Object.freeze(previousCpus),
    unpin: () => unpinTo(handle),
  };
  pinStack.push({ handle, cpus: previousCpus, scope, policy: previousPolicy });
  return handle;
}

function unpinTo(handle: Pinning): void {
  const index = pinStack.findIndex((s) => s.handle === handle);
  if (index < 0) throw rangeError(ErrorCodes.NOT_PINNED, 'this pin was already undone (or belongs to another thread)');
  const saved = pinStack[index]!;
  pinStack.length = index;
  const binding = native();
  binding.setAffinity(saved.cpus, saved.scope);
  if (saved.policy) binding.setMemPolicy(saved.policy.policy, saved.policy.nodes);
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
 * The CPUs of `node` this thread may run on. RangeError UNKNOWN_NODE, NODE_HAS_NO_CPUS or
 * NO_ALLOWED_CPUS when there are none.
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

/** Pins the calling OS thread (or the process) to exactly these CPUs. */
export function pinToCpus(cpus: readonly number[], options: PinOptions = {}): Pinning {
  const ids = cpuList(cpus);
  const checked = pinOptions(options);
  requireLinux('pinToCpus');
  const known = new Set(topology().cpus.map((c) => c.id));
  const unknown = ids.filter((c) => !known.has(c));
  if (unknown.length > 0) throw rangeError(ErrorCodes.CPU_OUT_OF_RANGE, `no such CPU: ${unknown.join(', ')}`);
  return applyPin([...new Set(ids)].sort((a, b) => a - b), undefined, checked);
}

/** Undoes the most recent pin of this thread. Returns false when nothing was pinned. */
export function unpin(): boolean {
  const top = pinStack[pinStack.length - 1];
  if (!top) return false;
  unpinTo(top.handle);
  return true;
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
