// Reading other processes' shared-memory stats files (docs/shm-layout.md) by pid: one process's
// file, every file of the directory (`hwsq ps`), and the /metrics/scheduler document of one of
// its runtimes. The addon checks and copies a file (native/core/shm/segment.h): a missing,
// unreadable, stale, foreign, corrupt or other-version file is an Error with one of the codes
// below, never a crash.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ErrorCodes, codedError, rangeError } from '../core/errors';
import { schedulerJsonFrom, type PodIdentity, type SchedulerJson, type SnapshotOrigin } from '../metrics/scheduler-json';
import type { SchedulerStatsLike, WorkerPlacement } from '../metrics/source';
import { native } from '../core/native';
import type { JsTaskCounts } from '../runtime/runtime';
import type { ParallelismSource } from '../core/stats';
import { shmDirectory } from './config';

/** One runtime of a process, as its publisher last wrote it. */
export interface ShmRuntime {
  /** Unique within the process. */
  id: number;
  kind: 'native' | 'js';
  stealPolicy: 'hierarchical' | 'flat';
  pinned: boolean;
  /** close() or destroy() began. */
  closed: boolean;
  /** When it was created (ms since the epoch). */
  createdAt: number;
  elapsedNs: number;
  hogThresholdNs: number;
  /** Its stats() at the publish: the SchedulerStats shape (plus `tasks` for JS-task runtimes). */
  stats: SchedulerStatsLike & { elapsedNs: number; tasks?: JsTaskCounts };
  /** Each P's node and the CPUs it is pinned to ([] when not pinned). */
  workers: WorkerPlacement[];
  /** Its parallelism limit (README "Following the cgroup"); null from a writer of layout 1.0, which never followed. Also in `stats`. */
  parallelism: null | { activeWorkers: number; parallelism: number; source: ParallelismSource; changes: number };
}

/** A process's stats file. */
export interface ShmProcess {
  pid: number;
  /** Start time of the process (clock ticks after boot, /proc/<pid>/stat field 22). */
  startTime: number;
  uid: number;
  layout: { major: number; minor: number };
  /** Documents written so far. */
  publishes: number;
  path: string;
  /** When the document read was published (ms since the epoch), and the process's uptime then. */
  publishedAt: number;
  uptimeSeconds: number;
  intervalMs: number;
  /** Runtimes were left out (the document would have exceeded 64 MiB). */
  truncated: boolean;
  /** What the process's /metrics/scheduler would say about itself (null: unset there). */
  identity: { runtime_version: string | null; pod_id: string | null; pod_uid: string | null; namespace: string | null; node_name: string | null; cpu_limit: string | null };
  runtimes: ShmRuntime[];
}

interface ShmBinding {
  read(file: string, pid: number): ShmProcess;
}

function binding(): ShmBinding {
  return (native() as unknown as { shm: ShmBinding }).shm;
}

/** The file of process `pid` in `dir`. */
export function pidFile(pid: number, dir: string = shmDirectory()): string {
  return path.join(dir, String(pid));
}

/** Reads process `pid`'s file (coded errors: see the file comment). */
export function readShmProcess(pid: number, dir: string = shmDirectory()): ShmProcess {
  return binding().read(pidFile(pid, dir), pid);
}

export interface ShmListing {
  directory: string;
  processes: ShmProcess[];
  /** Files that were not listed, and why (stale files of processes that are gone, among others). */
  skipped: { file: string; code: string; message: string }[];
}

/** Every process with a readable stats file in `dir` (none when the directory does not exist). */
export function listShmProcesses(dir: string = shmDirectory()): ShmListing {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { directory: dir, processes: [], skipped: [] };
    if (code === 'EACCES' || code === 'EPERM') throw codedError(ErrorCodes.SHM_PERMISSION, `permission denied: ${dir} (hwsq stats directories are their owner's only)`);
    throw codedError(ErrorCodes.SHM_IO, `cannot list ${dir}: ${(err as Error).message}`);
  }
  const out: ShmListing = { directory: dir, processes: [], skipped: [] };
  for (const name of names.filter((n) => /^\d{1,10}$/.test(n)).sort((a, b) => Number(a) - Number(b))) {
    try {
      out.processes.push(binding().read(path.join(dir, name), Number(name)));
    } catch (err) {
      const e = err as Error & { code?: string };
      out.skipped.push({ file: path.join(dir, name), code: e.code ?? 'ERR_HWSQ_SHM_IO', message: e.message });
    }
  }
  return out;
}

/** A `--pid` value: a pid, or 'auto' for the one process (other than this one) that publishes. */
export type PidSpec = number | 'auto';

export function resolvePid(spec: PidSpec, dir: string = shmDirectory()): number {
  if (spec !== 'auto') return spec;
  const found = listShmProcesses(dir).processes.filter((p) => p.pid !== process.pid);
  if (found.length === 1) return found[0]!.pid;
  if (found.length === 0) throw codedError(ErrorCodes.SHM_NOT_PUBLISHED, `no process publishes hwsq stats in ${dir}`);
  throw rangeError(ErrorCodes.INVALID_ARG, `--pid auto: ${found.length} processes publish hwsq stats in ${dir} (pids ${found.map((p) => p.pid).join(', ')}): name one`);
}

/** Runtime `id` of the process, or (no id) its first running one. */
export function pickRuntime(p: ShmProcess, id?: number): ShmRuntime {
  const ids = p.runtimes.map((r) => r.id).join(', ') || 'none';
  if (id !== undefined) {
    const r = p.runtimes.find((x) => x.id === id);
    if (!r) throw codedError(ErrorCodes.SHM_NOT_PUBLISHED, `process ${p.pid} publishes no runtime ${id} (runtimes: ${ids})`);
    return r;
  }
  const r = p.runtimes.find((x) => !x.closed) ?? p.runtimes[0];
  if (!r) throw codedError(ErrorCodes.SHM_NOT_PUBLISHED, `process ${p.pid} publishes no runtime now`);
  return r;
}

/** Where a snapshot read from `p` came from, for the /metrics/scheduler document. */
export function shmOrigin(p: ShmProcess): SnapshotOrigin {
  const id = p.identity;
  const identity: PodIdentity = { pod_id: id.pod_id ?? os.hostname(), pod_uid: id.pod_uid, namespace: id.namespace, node_name: id.node_name, cpu_limit: id.cpu_limit };
  return { pid: p.pid, timestamp: new Date(p.publishedAt).toISOString(), uptimeSeconds: p.uptimeSeconds, runtimeVersion: id.runtime_version ?? 'unknown', identity };
}

/** The /metrics/scheduler document of runtime `r` of `p`, as that process would serve it. */
export function shmSchedulerJson(p: ShmProcess, r: ShmRuntime): SchedulerJson {
  const origin = shmOrigin(p);
  return schedulerJsonFrom(r.stats, r.workers, origin.identity, origin);
}

/** A reader of the /metrics/scheduler document of a process's runtime, following one runtime once found. */
export function shmDocumentReader(pid: PidSpec, runtimeId?: number, dir: string = shmDirectory()): () => SchedulerJson {
  let followed = runtimeId;
  return () => {
    const p = readShmProcess(resolvePid(pid, dir), dir);
    const r = pickRuntime(p, followed);
    followed = r.id;
    return shmSchedulerJson(p, r);
  };
}

/** The command line of a process (/proc/<pid>/cmdline), printable, at most `max` characters; '' when unreadable. */
export function commandOf(pid: number, max = 4096): string {
  try {
    const raw = fs.readFileSync(`/proc/${pid}/cmdline`);
    return raw
      .subarray(0, max * 4)
      .toString('utf8')
      .replace(/\0+$/, '')
      .replace(/\0/g, ' ')
      .replace(/[\u0000-\u001f\u007f-\u009f]/g, '?')
      .slice(0, max);
  } catch {
    return '';
  }
}
