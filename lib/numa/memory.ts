// Node-local memory: allocation placed on NUMA nodes, page placement queries and migration.
import { ErrorCodes, rangeError, typeError, unsupportedError } from '../core/errors';
import { native } from '../core/native';
import { currentNode } from './affinity';
import { forgetPlacement, recordAllocation } from './memory-affinity';
import { topology, type NumaNode } from './topology';
import { bytesOf, choice, nodeId, nodeIds, readOptions } from '../core/validation';

export type MemoryPolicy = 'bind' | 'preferred' | 'interleave';

export interface AllocOptions {
  /** 'bind' (default): only on the node; 'preferred': on the node while it has memory; 'interleave': round-robin over the nodes. */
  policy?: MemoryPolicy;
}

/** Anything whose bytes can be inspected: ArrayBuffer, SharedArrayBuffer, TypedArray, DataView, Buffer. */
export type BufferLike = ArrayBufferLike | ArrayBufferView;

export interface PagePlacement {
  pageSize: number;
  /** Node of each page; a negative entry is -errno (-2 ENOENT: page not yet faulted in). */
  pages: Int32Array;
  /** Pages per node id. */
  byNode: Record<number, number>;
  /** Pages not resident (never touched or swapped out). */
  notPresent: number;
}

function requireLinux(what: string): void {
  if (native().platform !== 'linux') throw unsupportedError(what);
}

function memoryNode(nodes: NumaNode[], id: number): NumaNode {
  const node = nodes.find((n) => n.id === id);
  if (!node) throw rangeError(ErrorCodes.UNKNOWN_NODE, `unknown NUMA node ${id}; nodes are ${nodes.map((n) => n.id).join(', ')}`);
  return node;
}

function assertSize(bytes: unknown): asserts bytes is number {
  if (typeof bytes !== 'number' && typeof bytes !== 'bigint') {
    throw typeError(ErrorCodes.INVALID_ARG_TYPE, `bytes must be a number, got type ${typeof bytes}`);
  }
  if (typeof bytes === 'bigint' || !Number.isSafeInteger(bytes) || bytes <= 0) {
    throw rangeError(ErrorCodes.BAD_SIZE, `bytes must be a positive safe integer, got ${String(bytes)}`);
  }
}

/**
 * Allocates `bytes` of memory placed on NUMA node `node` (or interleaved over `node` when it is an
 * array), every page touched so the placement is real. The returned ArrayBuffer's memory is
 * unmapped when it is garbage-collected.
 */
export function allocOnNode(bytes: number, node: number | readonly number[], options: AllocOptions = {}): ArrayBuffer {
  assertSize(bytes);
  const { ids, many } = nodeIds(node);
  const o = readOptions(options, 'options', ['policy']);
  const policy = o.policy === undefined ? (many ? 'interleave' : 'bind') : choice(o.policy, 'policy', ['bind', 'preferred', 'interleave'] as const, ErrorCodes.INVALID_ARG);
  if (ids.length > 1 && policy !== 'interleave') {
    throw rangeError(ErrorCodes.INVALID_ARG, `policy '${policy}' takes one node; use 'interleave' for several`);
  }
  requireLinux('allocOnNode');
  const topo = topology();
  for (const id of ids) {
    if (!memoryNode(topo.nodes, id).hasMemory) throw rangeError(ErrorCodes.UNKNOWN_NODE, `NUMA node ${id} has no memory`);
  }
  // Every page is touched: more than the nodes hold would end in the OOM killer, not in an error.
  const limitNodes = policy === 'preferred' ? topo.nodes : topo.nodes.filter((n) => ids.includes(n.id));
  const total = limitNodes.reduce((sum, n) => sum + n.memoryBytes, 0);
  if (total > 0 && bytes > total) {
    throw rangeError(ErrorCodes.BAD_SIZE, `bytes (${bytes}) exceeds the memory of ${policy === 'preferred' ? 'the machine' : `node ${ids.join(', ')}`} (${total})`);
  }
  const buffer = native().allocOnNodes(bytes, native().numaAvailable() ? policy : 'default', ids);
  // Its node is known (spawn's node: 'auto' needs no page query); other policies are sampled.
  if (policy === 'bind' && ids.length === 1) recordAllocation(buffer, ids[0]!);
  return buffer;
}

/** Allocates memory interleaved page by page over `nodes` (default: every node with memory). */
export function allocInterleaved(bytes: number, nodes?: readonly number[]): ArrayBuffer {
  const ids = nodes === undefined ? topology().nodes.filter((n) => n.hasMemory).map((n) => n.id) : nodes;
  return allocOnNode(bytes, ids, { policy: 'interleave' });
}

/**
 * A Uint8Array over the bytes of any BufferLike (no copy; empty for a detached buffer, which has
 * no bytes); TypeError ERR_HWSQ_INVALID_ARG_TYPE otherwise.
 */
export function toView(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  const isBuffer = value instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && value instanceof SharedArrayBuffer);
  if (!isBuffer && !ArrayBuffer.isView(value)) {
    throw typeError(ErrorCodes.INVALID_ARG_TYPE, 'expected an ArrayBuffer, SharedArrayBuffer, TypedArray, DataView or Buffer');
  }
  try {
    return isBuffer ? new Uint8Array(value as ArrayBufferLike) : new Uint8Array((value as ArrayBufferView).buffer, (value as ArrayBufferView).byteOffset, (value as ArrayBufferView).byteLength);
  } catch {
    return new Uint8Array(0);  // detached: constructing a view over it throws
  }
}

function summarize(pages: Int32Array): PagePlacement {
  const byNode: Record<number, number> = {};
  let notPresent = 0;
  for (const n of pages) {
    if (n >= 0) byNode[n] = (byNode[n] ?? 0) + 1;
    else notPresent++;
  }
  return { pageSize: native().pageSize(), pages, byNode, notPresent };
}

/** Where each page of the buffer lives (move_pages query mode). */
export function pageNodes(buffer: BufferLike): PagePlacement {
  const view = bytesOf(buffer);
  requireLinux('pageNodes');
  if (view.byteLength === 0) return summarize(new Int32Array(0));
  return summarize(native().pageNodes(view));
}

/**
 * True when every resident page of the buffer is on `node` (default: the node the calling thread
 * runs on now) and at least one page is resident.
 */
export function isMemoryLocal(buffer: BufferLike, node?: number): boolean {
  const target = node === undefined ? undefined : nodeId(node);
  const placement = pageNodes(buffer);
  const here = target ?? currentNode();
  const resident = placement.pages.length - placement.notPresent;
  return resident > 0 && placement.byNode[here] === resident;
}

/** Migrates the buffer's pages to `node`; returns the placement afterwards. */
export function movePages(buffer: BufferLike, node: number): PagePlacement {
  const view = bytesOf(buffer);
  nodeId(node);
  requireLinux('movePages');
  const target = memoryNode(topology().nodes, node);
  if (!target.hasMemory) throw rangeError(ErrorCodes.UNKNOWN_NODE, `NUMA node ${node} has no memory`);
  if (view.byteLength > 0) {
    forgetPlacement(view.buffer);  // node: 'auto' samples it again
    native().movePages(view, node);
  }
  return pageNodes(view);
}
