// Where and how often a process publishes its runtimes' stats (the shared-memory stats file,
// docs/shm-layout.md), from the environment, checked where it is read:
//   HWSQ_SHM=0|false|off|no     publishing off for every runtime (1|true|on|yes, or unset: on)
//   HWSQ_SHM_DIR=<dir>          the directory of the files (an absolute path; made mode 0700)
//   HWSQ_SHM_INTERVAL_MS=<ms>   the publish period, 10..60000 (default 250)
// Without HWSQ_SHM_DIR: /dev/shm/hwsq-<uid>, else $XDG_RUNTIME_DIR/hwsq, else <tmpdir>/hwsq-<uid>.
// Writers and readers (hwsq ps | stats --pid | top --pid | metrics serve --pid) agree through it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ErrorCodes, rangeError } from '../core/errors';
import { podIdentity, type PodIdentity } from '../metrics/scheduler-json';
import { native } from '../core/native';
import { DEFAULTS, LIMITS } from '../core/validation';
import { version } from '../core/version';

export const SHM_ENV = { enabled: 'HWSQ_SHM', dir: 'HWSQ_SHM_DIR', intervalMs: 'HWSQ_SHM_INTERVAL_MS' } as const;

/** What the addon takes (native/napi/shm_js.cpp): strings in the order of layout.h's ProcessString. */
export interface ShmPublishConfig {
  dir: string;
  intervalMs: number;
  /** runtime_version, pod_id, pod_uid, namespace, node_name, cpu_limit (null: unset). */
  strings: (string | null)[];
}

const envError = (message: string) => rangeError(ErrorCodes.INVALID_ENV, message);

/** HWSQ_SHM: false when it turns publishing off. */
export function shmEnabledByEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  const raw = env[SHM_ENV.enabled];
  if (raw === undefined || raw === '') return true;
  const v = raw.trim().toLowerCase();
  if (['0', 'false', 'off', 'no'].includes(v)) return false;
  if (['1', 'true', 'on', 'yes'].includes(v)) return true;
  throw envError(`${SHM_ENV.enabled} must be 0, false, off, no (publishing off) or 1, true, on, yes, got ${JSON.stringify(raw.slice(0, 60))}`);
}

/** The directory of the stats files (see the file comment). */
export function shmDirectory(env: NodeJS.ProcessEnv = process.env): string {
  const given = env[SHM_ENV.dir];
  if (given !== undefined && given !== '') {
    if (given.length > LIMITS.pathLength || given.includes('\0') || !path.isAbsolute(given)) {
      throw envError(`${SHM_ENV.dir} must be an absolute path of at most ${LIMITS.pathLength} characters, got ${JSON.stringify(given.slice(0, 60))}`);
    }
    return path.resolve(given);
  }
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  if (isDirectory('/dev/shm')) return `/dev/shm/hwsq-${uid}`;
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg && path.isAbsolute(xdg) && isDirectory(xdg)) return path.join(xdg, 'hwsq');
  return path.join(os.tmpdir(), `hwsq-${uid}`);
}

/** HWSQ_SHM_INTERVAL_MS, or the default. */
export function shmIntervalMs(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[SHM_ENV.intervalMs];
  if (raw === undefined || raw === '') return DEFAULTS.shmIntervalMs;
  const [min, max] = LIMITS.shmIntervalMs;
  const n = /^\s*\d{1,9}\s*$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= min && n <= max)) throw envError(`${SHM_ENV.intervalMs} must be a whole number of milliseconds from ${min} to ${max}, got ${JSON.stringify(raw.slice(0, 60))}`);
  return n;
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The addon's publish config for a runtime whose `shm` option is `enabled`; null when it or
 * HWSQ_SHM turns publishing off. The pod identity is what /metrics/scheduler would say; a
 * variable that does not pass its check is left out (null) rather than failing the runtime.
 */
export function publishConfig(enabled: boolean, env: NodeJS.ProcessEnv = process.env): ShmPublishConfig | null {
  if (!enabled || !shmEnabledByEnv(env)) return null;
  const dir = shmDirectory(env);
  const intervalMs = shmIntervalMs(env);
  let id: PodIdentity | undefined;
  try {
    id = podIdentity(env);
  } catch {
    id = undefined;
  }
  return { dir, intervalMs, strings: [version, id?.pod_id ?? null, id?.pod_uid ?? null, id?.namespace ?? null, id?.node_name ?? null, id?.cpu_limit ?? null] };
}

/** This process's publisher (native/core/shm/publisher.h), as the addon reports it. */
export interface PublisherStatus {
  /** Its stats file, null while none is open. */
  path: string | null;
  /** Why the file could not be made or written (null: no trouble). */
  error: string | null;
  publishes: number;
  runtimes: number;
}

export function publisherStatus(): PublisherStatus {
  return (native() as unknown as { shm: { status(): PublisherStatus } }).shm.status();
}

let warned: string | null = null;

/**
 * After a runtime was created: a process warning (once per distinct reason) when the publisher
 * could not make or write the stats file. Publishing never fails a runtime.
 */
export function warnIfNotPublished(): void {
  const { error } = publisherStatus();
  if (error === null || error === warned) return;
  warned = error;
  process.emitWarning(`hwsq: runtime stats are not published in shared memory: ${error}`, { code: 'HWSQ_SHM_UNPUBLISHED' });
}
