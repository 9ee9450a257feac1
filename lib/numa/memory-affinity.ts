// Memory-affine spawn (`node: 'auto'`, the runtime option `memoryAffinity`): run a task on the
// NUMA node that holds the memory it was given.
//
// Which memory counts: what the task uses in place, as the codec carries it (codec.ts reports it
// while it walks the arguments, so nothing walks them twice): SharedArrayBuffers (and views of
// them) anywhere in the arguments, and allocOnNode memory named in `transfer` (moved without a
// copy). ArrayBuffers and typed arrays that are copied do not count: the task reads a copy made
// on the node where it runs, wherever the original is. spawnNative's touch/chase buffer is used
// in place whatever its kind, so it always counts.
//
// Where a backing store lives: allocOnNode with policy 'bind' records its node at allocation
// (exact, no syscall). Anything else is sampled: move_pages in query mode on at most
// SAMPLE_PAGES pages spread over the buffer (one syscall, whatever the size), cached per backing
// store in a WeakMap. An entry is forgotten by movePages() on this thread, and sampled again
// after RESAMPLE_AFTER lookups (cheap staleness rule for migrations this thread cannot see: the
// kernel's NUMA balancing, movePages in another thread). A sample with no resident page (memory
// never touched) is not cached: such memory has no node yet (fallback), and the next spawn looks
// again. (Nor can move_pages see the node of a page that NUMA balancing (numa_balancing=1) has
// made inaccessible for a hinting fault, until its next access: a first sample at that moment
// falls back; a later one keeps the cached placement.)
//
// Several buffers: the node holding the most bytes wins (of the first MAX_BUFFERS distinct ones) (a buffer's bytes are shared out over
// its sampled nodes in proportion; ties go to the node seen first). A node without Ps in this
// runtime (CPU-less memory node, or a runtime confined by HWSQ_NUMA_NODE / placement): the
// nearest node with Ps by SLIT distance (ties: the lower id). No memory, or none resident:
// fallback, the task is placed as without a node.
import { native } from '../core/native';
import { topology, type NumaNode } from './topology';

/** Pages sampled per backing store (one move_pages call). */
export const SAMPLE_PAGES = 16;
/** Lookups of a cached placement before it is sampled again. */
export const RESAMPLE_AFTER = 1024;
/** Distinct backing stores looked up per spawn (the first ones met); more are ignored, so a spawn's cost stays bounded. */
export const MAX_BUFFERS = 64;

interface Where {
  /** Memory node ids, and the share (0..1) of the sampled pages on each. */
  nodes: number[];
  shares: number[];
  uses: number;
}

const allocated = new WeakMap<object, number>();
const sampled = new WeakMap<object, Where>();
let sampleCalls = 0;

/** allocOnNode ('bind' to one node): the node is known without asking the kernel. */
export function recordAllocation(buffer: ArrayBuffer, node: number): void {
  allocated.set(buffer, node);
}

/** The buffer's pages may have moved (movePages): forget what is known about its backing store. */
export function forgetPlacement(buffer: ArrayBufferLike): void {
  allocated.delete(buffer);
  sampled.delete(buffer);
}

/** move_pages samples taken so far on this thread (tests: the cache and its bound). */
export function placementSamples(): number {
  return sampleCalls;
}

function sample(buffer: ArrayBufferLike): Where | undefined {
  const n = native();
  if (n.platform !== 'linux') return undefined;
  let pages: Int32Array;
  try {
    sampleCalls++;
    pages = n.samplePageNodes(new Uint8Array(buffer as ArrayBuffer), SAMPLE_PAGES);
  } catch {
    return undefined;  // a placement hint is never worth failing a spawn for
  }
  const nodes: number[] = [];
  const counts: number[] = [];
  for (const p of pages) {
    if (p < 0) continue;  // not resident (never touched, swapped out): on no node
    const i = nodes.indexOf(p);
    if (i < 0) {
      nodes.push(p);
      counts.push(1);
    } else counts[i]!++;
  }
  if (nodes.length === 0) return undefined;
  return { nodes, shares: counts.map((c) => c / pages.length), uses: 0 };
}

/** Where a backing store's memory is: exact for allocOnNode 'bind', else a cached sample; undefined: nowhere yet. */
export function whereIs(buffer: ArrayBufferLike): Where | undefined {
  const node = allocated.get(buffer);
  if (node !== undefined) return { nodes: [node], shares: [1], uses: 0 };
  const cached = sampled.get(buffer);
  if (cached && ++cached.uses <= RESAMPLE_AFTER) return cached;
  const w = sample(buffer);
  if (w) sampled.set(buffer, w);
  else if (cached) {
    // A sample with no node for memory that had one: move_pages cannot see the node of a page
    // the kernel's NUMA balancing has just made inaccessible (until its next access). Keep what
    // was known, and look again later.
    cached.uses = 0;
    return cached;
  }
  return w;
}

/**
 * The node with Ps nearest each memory node: itself when it has Ps, else the nearest by SLIT
 * distance among `runtimeNodes` (ties: the lower id); -1 when no distance is known. `machine`:
 * the topology's nodes (default: this machine's).
 */
export function nearestNodes(runtimeNodes: readonly number[], machine?: readonly NumaNode[]): Map<number, number> {
  let nodes = machine;
  if (!nodes) {
    try {
      nodes = topology().nodes;
    } catch {
      nodes = [];  // no topology: only the runtime's own nodes map (to themselves)
    }
  }
  const ids = nodes.map((n) => n.id);
  const candidates = [...runtimeNodes].sort((a, b) => a - b);
  const out = new Map<number, number>();
  for (const id of new Set([...ids, ...runtimeNodes])) {
    if (runtimeNodes.includes(id)) {
      out.set(id, id);
      continue;
    }
    const dist = nodes.find((n) => n.id === id)?.distances;
    let best = -1;
    let bestDist = Infinity;
    for (const r of candidates) {
      const k = ids.indexOf(r);
      const d = k < 0 ? undefined : dist?.[k];
      if (d !== undefined && d > 0 && d < bestDist) {
        best = r;
        bestDist = d;
      }
    }
    out.set(id, best);
  }
  return out;
}

/**
 * The memory of one spawn's arguments, as the codec reports it (Writer.memory), and the node it
 * chooses. Reused: reset() before each spawn.
 */
export class MemoryTally {
  private readonly seen: object[] = [];
  private readonly nodes: number[] = [];
  private readonly bytes: number[] = [];

  /** `nearest`: memory node -> node with Ps (nearestNodes). */
  constructor(private readonly nearest: ReadonlyMap<number, number>) {}

  reset(): void {
    if (this.seen.length) this.seen.length = 0;
    if (this.nodes.length) {
      this.nodes.length = 0;
      this.bytes.length = 0;
    }
  }

  /** A backing store the task uses in place (counted once however often it appears). */
  add(buffer: ArrayBufferLike): void {
    if (this.seen.length >= MAX_BUFFERS || this.seen.includes(buffer)) return;
    this.seen.push(buffer);
    const size = buffer.byteLength;
    if (size === 0) return;
    const w = whereIs(buffer);
    if (!w) return;
    for (let i = 0; i < w.nodes.length; i++) {
      const node = this.nearest.get(w.nodes[i]!) ?? -1;
      if (node < 0) continue;
      const k = this.nodes.indexOf(node);
      if (k < 0) {
        this.nodes.push(node);
        this.bytes.push(size * w.shares[i]!);
      } else this.bytes[k]! += size * w.shares[i]!;
    }
  }

  /** The node with Ps holding the most of the memory added since reset(); -1: none (fallback). */
  choose(): number {
    let best = -1;
    let most = 0;
    for (let i = 0; i < this.nodes.length; i++) {
      if (this.bytes[i]! > most) {
        most = this.bytes[i]!;
        best = this.nodes[i]!;
      }
    }
    return best;
  }
}

/** The node with Ps for one buffer used in place (spawnNative's touch/chase buffer); -1: fallback. */
export function nodeOfBuffer(buffer: ArrayBufferLike, nearest: ReadonlyMap<number, number>): number {
  const tally = new MemoryTally(nearest);
  tally.add(buffer);
  return tally.choose();
}
