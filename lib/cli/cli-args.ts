// Parsers of the `hwsq` command line's option values (commander's argParser): integers, sizes,
// durations and lists, each bounded, so that a hostile or mistyped value gets a clear message
// and exit code 1 instead of a stack trace, an absurd allocation or a run that never ends.
import { InvalidArgumentError } from 'commander';
import { parseDuration, parseSize } from '../bench/common';
import { LIMITS } from '../core/validation';

/** Reps, runs and round trips beyond this are a typo, not a measurement. */
export const MAX_REPS = 1000;
export const MAX_ROUND_TRIPS = 10_000_000;
/** Benchmark buffers: 1 TiB (the probes also check the nodes' free memory). */
export const MAX_BYTES = 2 ** 40;
/** One timed sample or pause: 1 minute. */
export const MAX_DURATION_MS = 60_000;

/** An integer in [min, max] written in decimal digits (no '1e3', '0x10', '' or ' 1'). */
export function intArg(min: number, max: number) {
  return (value: string): number => {
    const n = /^-?\d{1,16}$/.test(value) ? Number(value) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    return n;
  };
}

export const workersArg = intArg(1, LIMITS.workers);
export const repsArg = intArg(1, MAX_REPS);
export const tasksArg = intArg(1, LIMITS.spawnCount);
export const roundTripsArg = intArg(1, MAX_ROUND_TRIPS);

/** A size like 64M, 512K, 1G or a number of bytes, in [64 bytes, 1 TiB]. */
export function sizeArg(value: string): number {
  const n = parseSize(value);
  if (!Number.isSafeInteger(n) || n < 64 || n > MAX_BYTES) throw new InvalidArgumentError('expected a size like 64M, 512K, 1G or a number of bytes, from 64 bytes to 1T');
  return n;
}

/** A duration like 200ms, 1s, 500us or a number of milliseconds, in (0, 1 minute]. */
export function durationArg(value: string): number {
  const n = parseDuration(value);
  if (!(n > 0 && n <= MAX_DURATION_MS)) throw new InvalidArgumentError('expected a duration like 200ms, 1s or a number of milliseconds, up to 60s');
  return n;
}

/** Comma-separated integers in [1, max], at most 64 of them. */
export function intListArg(max: number) {
  const one = intArg(1, max);
  return (value: string): number[] => {
    const parts = value.split(',').map((s) => s.trim());
    if (parts.length > 64) throw new InvalidArgumentError('expected at most 64 comma-separated integers');
    try {
      return parts.map(one);
    } catch {
      throw new InvalidArgumentError(`expected comma-separated integers from 1 to ${max}`);
    }
  };
}

/** NODESxWORKERS for a virtual topology, e.g. 2x2 (as createNativeRuntime's virtualTopology bounds). */
export function virtualTopologyArg(value: string): { nodes: number; workersPerNode: number } {
  const m = /^(\d{1,5})x(\d{1,5})$/.exec(value);
  const nodes = Number(m?.[1]);
  const workersPerNode = Number(m?.[2]);
  if (!m || nodes < 1 || workersPerNode < 1 || nodes > LIMITS.nodeId + 1 || nodes * workersPerNode > LIMITS.workers) {
    throw new InvalidArgumentError(`expected NODESxWORKERS, e.g. 2x2 (at most ${LIMITS.workers} workers in all)`);
  }
  return { nodes, workersPerNode };
}

/** An http: or https: URL. */
export function httpUrlArg(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError(`not a URL: ${JSON.stringify(value.slice(0, 200))}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError(`expected an http: or https: URL, got ${url.protocol}`);
  return value;
}
