export { topology, numaNodeCount, availableParallelism } from './topology';
export type { Topology, TopologyOptions, NumaNode, Cpu, Parallelism } from './topology';
export { pinToNumaNode, pinToCpus, unpin, getAffinity, currentCpu, currentNode } from './affinity';
export type { PinOptions, Pinning } from './affinity';
export { allocOnNode, allocInterleaved, pageNodes, isMemoryLocal, movePages } from './memory';
export type { AllocOptions, MemoryPolicy, BufferLike, PagePlacement } from './memory';
export { ErrorCodes } from './errors';
export type { ErrorCode, HwsqError } from './errors';
