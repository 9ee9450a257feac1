// Loads the compiled addon (a prebuild when one fits, else build/Release) and types its surface.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import type { Cpu, NumaNode, Parallelism } from '../numa/topology';
import type { WireConstants } from './wire';

// The addon returns the public shapes directly; only the fields added in JS differ.
export interface NativeTopology {
  nodes: NumaNode[];
  cpus: Cpu[];
  allowedCpus: number[];
  synthetic: boolean;
}
export type NativeMemPolicy = 'default' | 'preferred' | 'bind' | 'interleave' | 'local';

export interface NativeBinding {
  platform: 'linux' | 'other';
  topology(fsroot: string): NativeTopology;
  parallelism(fsroot: string, allowedCpus: number): Parallelism;
  getAffinity(): number[];
  /** Pins and pushes the undo on the calling thread's pin stack (native/core/pinning.h); node -1: none. */
  pin(cpus: number[], scope: 'thread' | 'process', memory: 'preferred' | 'bind' | 'none', node: number): { id: number; cpus: number[]; previousCpus: number[] };
  /** Undoes pin `id` of the calling thread and the later ones (ERR_HWSQ_NOT_PINNED). */
  unpin(id: number): void;
  /** Undoes the calling thread's latest pin; false when there is none. */
  unpinLast(): boolean;
  currentLocation(): { cpu: number; node: number };
  setMemPolicy(policy: NativeMemPolicy, nodes: number[]): void;
  getMemPolicy(): { policy: NativeMemPolicy; nodes: number[] };
  numaAvailable(): boolean;
  pageSize(): number;
  allocOnNodes(bytes: number, policy: NativeMemPolicy, nodes: number[]): ArrayBuffer;
  pageNodes(view: Uint8Array): Int32Array;
  /** Nodes of at most maxPages pages spread over the view (numa/memory-affinity.ts). */
  samplePageNodes(view: Uint8Array, maxPages: number): Int32Array;
  movePages(view: Uint8Array, node: number): number;
  /** Start address of the view's bytes (tests cross-check with /proc/self/numa_maps). */
  addressOf(view: Uint8Array): bigint;
  /** The JS-task wire protocol's constants (native/napi/wire.h; equal to lib/core/wire.ts). */
  wire: WireConstants;
}

/** Package root: the nearest folder above this file with a package.json (dist/ in the builds, lib/core/ under vitest). */
export const packageRoot: string = findPackageRoot(__dirname);

function findPackageRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return path.resolve(from, '..');
  }
}

let cached: NativeBinding | undefined;

export function native(): NativeBinding {
  if (!cached) {
    const load = createRequire(path.join(packageRoot, 'package.json'))('node-gyp-build') as (dir: string) => unknown;
    cached = load(packageRoot) as NativeBinding;
  }
  return cached;
}
