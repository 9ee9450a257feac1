// Types of vm.mjs (the QEMU multi-NUMA test VM harness). Import through harness.ts from tests.

/** One NUMA node of the guest: `cpus` may be 0 (a memory-only node). */
export interface VmNode {
  cpus: number;
  memMiB: number;
  /** The node's CPU ids (all nodes or none; each of 0..total-1 once); default: numbered in node order. */
  cpuIds?: number[];
}

/** A guest machine. CPUs are numbered in node order unless `cpuIds` say otherwise; distances default to 10 local, 20 remote. */
export interface VmTopology {
  name: string;
  nodes: VmNode[];
  distances?: number[][];
}

export interface VmResult {
  /** The command's stdout, with its stderr interleaved unless `separateStderr` was set. */
  stdout: string;
  /** Only with `separateStderr`. */
  stderr?: string;
  /** The command's exit status as /bin/sh reports it (128+N when killed by signal N). */
  exitCode: number;
  /** Everything QEMU printed: the guest's serial console (kernel messages, "hwsq-vm:" lines). */
  console: string;
  /** From starting QEMU until it exited. */
  durationMs: number;
  /** From starting QEMU until the guest started the command (the boot), when seen. */
  bootMs?: number;
  /** 1, or 2 when the first boot got stuck before the command and the guest was booted again. */
  boots: number;
}

export interface VmRunOptions {
  /** Working directory in the guest (the same path as on the host); default: the repo root. */
  cwd?: string;
  /** Kill QEMU and reject after this long; default 180000. */
  timeoutMs?: number;
  /** Added to PATH (host node's directory first, then the usual dirs) and HOME=/tmp. */
  env?: Record<string, string>;
  /** Return stderr in `stderr` instead of interleaving it into `stdout`. */
  separateStderr?: boolean;
  /** Extra kernel command-line arguments (e.g. "numa_balancing=disable"). */
  kernelArgs?: string[];
  /**
   * A boot that has not started the command after this long is killed and the guest booted again,
   * once, when at least 60 s of `timeoutMs` is left; default 90000.
   */
  bootDeadlineMs?: number;
  /** The first boot hangs before the command (tests the retry above). */
  stallFirstBoot?: boolean;
  /** Called with console output as it arrives (debugging). */
  onConsole?: (chunk: string) => void;
}

export const APT_PACKAGES: string[];
export const APT_COMMAND: string;
export const TOPOLOGIES: { twoNode: VmTopology; fourNode: VmTopology; cpuless: VmTopology; interleaved: VmTopology; asymmetric: VmTopology };
export function vmToolsAvailable(): { ok: boolean; missing: string[] };
export function assertVmTools(): void;
export function distanceMatrix(topo: VmTopology): number[][];
export function topologyArgs(topo: VmTopology): string[];
export function runInVm(topo: VmTopology, command: string, opts?: VmRunOptions): Promise<VmResult>;
