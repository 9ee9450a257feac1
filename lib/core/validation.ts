// Every public option and argument is checked here: the rules, the bounds (LIMITS) and the
// defaults (DEFAULTS), each stated once, so that Runtime, NativeRuntime, spawns inside tasks, the
// metrics layer and the NUMA functions give the same error code for the same mistake.
//
// The checkers read each input once and return what they checked (a getter or a Proxy trap runs
// once: what was checked is what is used), throw a TypeError (wrong type) or a RangeError (bad
// value) with a stable `code` from errors.ts, and run before anything is started or queued.
// An option object may hold only the options of its function: an unknown name (a typo, most
// often) is a TypeError ERR_HWSQ_UNKNOWN_OPTION. Symbol keys are not option names and are ignored.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { types } from 'node:util';
import { SHARE_ENV, type ResourceLimits } from 'node:worker_threads';
import { ErrorCodes, assertIndex, rangeError, show, typeError, type ErrorCode } from './errors';
import type { PromRegistry } from '../metrics/prometheus';
import type { NativeRuntimeConfig, NativeRuntimeOptions, NativeTaskKind, PinMode, PlacementMode, StealPolicy } from '../native-runtime/native-runtime';
import type { RuntimeOptions } from '../runtime/runtime';
import type { ShmPublishConfig } from '../shm/config';
import { numaNodeFromEnv } from '../per-node/env';

/** Upper bounds of counts, ids and durations (the README's option tables state them). */
export const LIMITS = Object.freeze({
  /** Ps of one runtime (either kind). */
  workers: 4096,
  /** Highest NUMA node id (Linux: MAX_NUMNODES <= 1024). A higher id is an unknown node. */
  nodeId: 1023,
  /** Highest CPU id (Linux: NR_CPUS <= 8192). A higher id is an unknown CPU. */
  cpuId: 65535,
  /** Tasks of one spawnNative call. */
  spawnCount: 2 ** 30,
  /** Argument lists of one spawnMany call (one promise each). */
  spawnManyLists: 2 ** 22,
  /** Busy-wait of one 'spin' task. */
  spinNs: 60e9,
  /** Dependent loads of one 'chase' task. */
  chaseSteps: 2 ** 32,
  /** Root tasks queued (Runtime maxQueue). */
  maxQueue: 2 ** 32,
  concurrentTasksPerWorker: 65536,
  tasksPerTurn: 65536,
  /** 0.1 s: longer spinning only burns CPU (and delays process exit by as much). */
  idleSpinMicros: 100_000,
  /** Hog threshold: 1 us .. 1 h. */
  hogThresholdMs: [0.001, 3_600_000] as const,
  timingSampleShift: 20,
  /** Entries of a transfer list, execArgv, env. */
  listLength: 65536,
  /** Timeouts of the metrics server and `hwsq top`: at most 1 h. */
  timeoutMs: 3_600_000,
  /** The metrics server's timeouts: at least 100 ms (shorter ones cut off every real scrape). */
  minServerTimeoutMs: 100,
  metricsConnections: 65536,
  metricsLabels: 64,
  histogramBuckets: 1024,
  /** Strings naming things: hosts, metric prefixes, label values, pod identity. */
  nameLength: 1024,
  /** A file system path (Linux PATH_MAX). */
  pathLength: 4096,
  /** worker_threads resourceLimits, in MiB. */
  heapMb: 1 << 20,
  stackMb: 1024,
  /** HWSQ_SHM_INTERVAL_MS: how often the shared-memory stats file is rewritten. */
  shmIntervalMs: [10, 60_000] as const,
  /** cgroupPollMs: how often workers 'auto' re-read the CPU limit (0 turns following off). */
  cgroupPollMs: [10, 3_600_000] as const,
  /** Linux's PID_MAX_LIMIT (2^22): `--pid` above it names no process. */
  pid: 4_194_304,
});

/** Every default, stated once (the README's option tables state them too). */
export const DEFAULTS = Object.freeze({
  workers: 'auto' as const,
  placement: 'spread' as PlacementMode,
  stealPolicy: 'hierarchical' as StealPolicy,
  stats: true,
  timingSampleShift: 8,
  sysmon: true,
  hogThresholdMs: 10,
  maxQueue: Infinity,
  /** maxQueue 'auto': root tasks queued per worker. */
  maxQueuePerWorker: 1024,
  concurrentTasksPerWorker: 16,
  idleSpinMicros: 50,
  tasksPerTurn: 64,
  restartWorkers: true,
  spawnCount: 1,
  abort: 'signal' as const,
  metricsPort: 9464,
  metricsHost: '127.0.0.1',
  metricsPrefix: 'hwsq_',
  headersTimeoutMs: 5000,
  idleTimeoutMs: 10_000,
  maxConnections: 64,
  /** Publish the runtime's stats in the process's shared-memory stats file (option `shm`, HWSQ_SHM). */
  shm: true,
  shmIntervalMs: 250,
  /** workers 'auto': re-read the cgroup CPU limit (cpu.max, cfs quota, cpuset) this often and follow it. */
  cgroupPollMs: 1000,
  /** Spawns default to node: 'auto' (option memoryAffinity of both runtimes). */
  memoryAffinity: false,
});

const { INVALID_ARG_TYPE, INVALID_ARG, INVALID_OPTION } = ErrorCodes;

// ------------------------------------------------------------------ primitives

function messageOf(err: unknown): string {
  try {
    return err instanceof Error ? err.message : show(err);
  } catch {
    return 'an exception';
  }
}

/** Runs `read` (a property read, Proxy traps included); what it throws becomes a TypeError with a code. */
export function guard<T>(name: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw typeError(INVALID_ARG_TYPE, `${name} could not be read: ${messageOf(err)}`, { cause: err });
  }
}

function isArray(value: unknown, name: string): value is unknown[] {
  return guard(name, () => Array.isArray(value));
}

/**
 * Reads an options object: undefined is {}; anything but an object (null, an array, a function,
 * a primitive) is a TypeError; an own enumerable option name not in `keys` is a TypeError
 * ERR_HWSQ_UNKNOWN_OPTION. Each known option is read once (getters and Proxy traps included).
 */
export function readOptions<K extends string>(value: unknown, name: string, keys: readonly K[]): { [P in K]?: unknown } {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || isArray(value, name)) {
    throw typeError(INVALID_ARG_TYPE, `${name} must be an object, got ${show(value)}`);
  }
  const own = guard(name, () => Object.keys(value));
  const unknown = own.filter((k) => !(keys as readonly string[]).includes(k));
  if (unknown.length > 0) {
    const list = unknown.slice(0, 5).map((k) => show(k)).join(', ');
    throw typeError(ErrorCodes.UNKNOWN_OPTION, `${name}: unknown option${unknown.length > 1 ? 's' : ''} ${list} (known: ${keys.join(', ')})`);
  }
  const out: { [P in K]?: unknown } = {};
  for (const k of keys) {
    const v = guard(`${name}.${k}`, () => (value as Record<string, unknown>)[k]);
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** An integer in [min, max]; TypeError for a non-number, RangeError `code` otherwise (NaN, +-Infinity, fractions). -0 reads as 0. */
export function integer(value: unknown, name: string, min: number, max: number, code: ErrorCode = INVALID_OPTION): number {
  if (typeof value !== 'number') throw typeError(INVALID_ARG_TYPE, `${name} must be a number, got ${show(value)}`);
  if (!Number.isInteger(value) || value < min || value > max) throw rangeError(code, `${name} must be an integer in [${min}, ${max}], got ${show(value)}`);
  return value + 0;
}

/** A finite number in [min, max]; TypeError for a non-number, RangeError `code` otherwise. */
export function finite(value: unknown, name: string, min: number, max: number, code: ErrorCode = INVALID_OPTION): number {
  if (typeof value !== 'number') throw typeError(INVALID_ARG_TYPE, `${name} must be a number, got ${show(value)}`);
  if (!(Number.isFinite(value) && value >= min && value <= max)) throw rangeError(code, `${name} must be a number in [${min}, ${max}], got ${show(value)}`);
  return value + 0;
}

export function boolean(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw typeError(INVALID_ARG_TYPE, `${name} must be a boolean, got ${show(value)}`);
  return value;
}

/** One of `choices`; TypeError for a non-string, RangeError `code` for another string. */
export function choice<T extends string>(value: unknown, name: string, choices: readonly T[], code: ErrorCode = INVALID_OPTION): T {
  if (typeof value !== 'string') throw typeError(INVALID_ARG_TYPE, `${name} must be one of '${choices.join("', '")}', got ${show(value)}`);
  if (!(choices as readonly string[]).includes(value)) throw rangeError(code, `${name} must be one of '${choices.join("', '")}', got ${show(value)}`);
  return value as T;
}

/** A string of at most `maxLength` characters (and at least one unless `allowEmpty`). */
export function string(value: unknown, name: string, maxLength: number = LIMITS.nameLength, allowEmpty = false): string {
  if (typeof value !== 'string') throw typeError(INVALID_ARG_TYPE, `${name} must be a string, got ${show(value)}`);
  if ((!allowEmpty && value.length === 0) || value.length > maxLength) {
    throw rangeError(INVALID_OPTION, `${name} must be a string of ${allowEmpty ? 0 : 1} to ${maxLength} characters, got ${value.length}`);
  }
  return value;
}

/** A copy of an array of at most `max` (and at least `min`) elements, each read once. */
export function list(value: unknown, name: string, min: number, max: number, code: ErrorCode = INVALID_OPTION): unknown[] {
  if (!isArray(value, name)) throw typeError(INVALID_ARG_TYPE, `${name} must be an array, got ${show(value)}`);
  const length = guard(name, () => value.length);
  if (length < min || length > max) throw rangeError(code, `${name} must have ${min} to ${max} entries, got ${length}`);
  // Stryker disable next-line ArrayDeclaration: presized or not, every index is assigned below
  const out = new Array<unknown>(length);
  for (let i = 0; i < length; i++) out[i] = guard(`${name}[${i}]`, () => value[i]);
  return out;
}

// ------------------------------------------------------------------ ids

/** A NUMA node id: TypeError / RangeError ERR_HWSQ_INVALID_ARG as assertIndex; above LIMITS.nodeId, ERR_HWSQ_UNKNOWN_NODE. */
export function nodeId(value: unknown, name = 'node'): number {
  assertIndex(value, name);
  if (value > LIMITS.nodeId) throw rangeError(ErrorCodes.UNKNOWN_NODE, `${name}: no NUMA node ${value} (node ids are at most ${LIMITS.nodeId})`);
  return value + 0;
}

/** A CPU id: as nodeId, ERR_HWSQ_CPU_OUT_OF_RANGE above LIMITS.cpuId. */
export function cpuId(value: unknown, name = 'cpu'): number {
  assertIndex(value, name);
  if (value > LIMITS.cpuId) throw rangeError(ErrorCodes.CPU_OUT_OF_RANGE, `${name}: no CPU ${value} (CPU ids are at most ${LIMITS.cpuId})`);
  return value + 0;
}

/** A list of CPU ids, non-empty unless `allowEmpty` (ERR_HWSQ_EMPTY_CPUS). */
export function cpuList(value: unknown, name = 'cpus', allowEmpty = false): number[] {
  if (!isArray(value, name)) throw typeError(INVALID_ARG_TYPE, `${name} must be an array of CPU ids, got ${show(value)}`);
  const entries = list(value, name, 0, LIMITS.cpuId + 1);
  if (entries.length === 0 && !allowEmpty) throw rangeError(ErrorCodes.EMPTY_CPUS, `${name} must not be empty`);
  return entries.map((c, i) => cpuId(c, `${name}[${i}]`));
}

/** A P index of a runtime with `size` Ps (ERR_HWSQ_UNKNOWN_WORKER beyond). */
export function workerIndex(value: unknown, size: number, name = 'worker'): number {
  assertIndex(value, name);
  if (value >= size) throw rangeError(ErrorCodes.UNKNOWN_WORKER, `${name}: no worker ${value} (this runtime has ${size})`);
  return value + 0;
}

/** A node id that has Ps in the runtime (ERR_HWSQ_UNKNOWN_NODE otherwise). */
export function runtimeNode(value: unknown, nodes: ReadonlySet<number> | readonly number[], name = 'node'): number {
  const node = nodeId(value, name);
  const has = Array.isArray(nodes) ? nodes.includes(node) : (nodes as ReadonlySet<number>).has(node);
  if (!has) throw rangeError(ErrorCodes.UNKNOWN_NODE, `no worker of this runtime is on node ${node} (nodes: ${[...nodes].join(', ')})`);
  return node;
}

// ------------------------------------------------------------------ scheduler options (both runtimes)

const PLACEMENT_MODES: readonly PlacementMode[] = ['spread', 'cpu', 'none'];

export interface PlacementSpec {
  node: number;
  /** null: the node's allowed CPUs. */
  cpus: number[] | null;
}

/**
 * An explicit placement: 1..LIMITS.workers entries { node, cpus? } (ERR_HWSQ_INVALID_WORKERS for
 * the count). `cpus` omitted: the node's allowed CPUs; `cpus: []` is ERR_HWSQ_EMPTY_CPUS.
 */
export function placementList(value: unknown, name = 'placement'): PlacementSpec[] {
  const entries = list(value, name, 1, LIMITS.workers, ErrorCodes.INVALID_WORKERS);
  return entries.map((entry, i) => {
    const e = readOptions(entry, `${name}[${i}]`, ['node', 'cpus']);
    if (e.node === undefined) throw typeError(INVALID_ARG_TYPE, `${name}[${i}].node is required`);
    const cpus = e.cpus === undefined ? null : cpuList(e.cpus, `${name}[${i}].cpus`);
    return { node: nodeId(e.node, `${name}[${i}].node`), cpus };
  });
}

/** workers: 1..LIMITS.workers or 'auto' (returned as 0). */
export function workerCount(value: unknown): number {
  if (value === undefined || value === 'auto') return 0;
  if (typeof value !== 'number') throw typeError(INVALID_ARG_TYPE, `workers must be a number or 'auto', got ${show(value)}`);
  return integer(value, 'workers', 1, LIMITS.workers, ErrorCodes.INVALID_WORKERS);
}

export function stealPolicy(value: unknown): StealPolicy {
  return value === undefined ? DEFAULTS.stealPolicy : choice(value, 'stealPolicy', ['hierarchical', 'flat'] as const, ErrorCodes.UNKNOWN_POLICY);
}

/** hogThresholdMs -> nanoseconds. */
export function hogThresholdNs(value: unknown): number {
  const ms = value === undefined ? DEFAULTS.hogThresholdMs : finite(value, 'hogThresholdMs', LIMITS.hogThresholdMs[0], LIMITS.hogThresholdMs[1]);
  return Math.round(ms * 1e6);
}

/**
 * cgroupPollMs of both runtimes: 0 (off) or LIMITS.cgroupPollMs, default DEFAULTS.cgroupPollMs.
 * Only workers 'auto' without a placement list follow the cgroup: with a number of workers or
 * an explicit placement (`fixed`) the option is checked and 0 goes to the addon.
 */
export function cgroupPollMs(value: unknown, follows: boolean): number {
  const ms = value === undefined ? DEFAULTS.cgroupPollMs : value === 0 ? 0 : integer(value, 'cgroupPollMs', LIMITS.cgroupPollMs[0], LIMITS.cgroupPollMs[1]);
  return follows ? ms : 0;
}

/** The scheduler options both runtimes take, checked: what the addon's one options builder (native/napi/options_js.h) reads. */
export interface SchedulerConfig {
  workers: number; // 0 = auto
  placement: PlacementSpec[] | null;
  pin: PinMode;
  confineToCaller: boolean;
  policy: StealPolicy;
  hogThresholdNs: number | null; // null: the core's (raw configs of tests); lib/ always sets it
  numaNode: number; // HWSQ_NUMA_NODE for the default placement; -1 = every node
  cgroupPollMs?: number; // workers 'auto': follow the cgroup CPU limit, re-read this often (0 or absent: fixed; lib/ sets 0 when not 'auto')
  cgroupFsroot?: string; // where the cgroup files are read (HWSQ_FSROOT; '' or absent: the live system)
}

/** placement 'spread' | 'cpu' | 'none' -> the core's pin mode of each P. */
const PIN_OF_MODE = { spread: 'node', cpu: 'cpu', none: 'none' } as const satisfies Record<PlacementMode, PinMode>;

/**
 * workers, placement, confineToCaller, stealPolicy, hogThresholdMs, cgroupPollMs: the same names,
 * rules and defaults for Runtime and NativeRuntime. cgroupPollMs reaches the addon only for
 * workers 'auto' without an explicit list (the cgroup read under HWSQ_FSROOT). `pin` is
 * NativeRuntime's deprecated spelling of placement's mode ('node' = 'spread'); with an explicit
 * list it picks each P's CPUs among the node's when `cpus` is omitted.
 */
export function schedulerConfig(o: { workers?: unknown; placement?: unknown; pin?: unknown; confineToCaller?: unknown; stealPolicy?: unknown; hogThresholdMs?: unknown; cgroupPollMs?: unknown }, numaNode: number | undefined): SchedulerConfig {
  const workers = workerCount(o.workers);
  let placement: PlacementSpec[] | null = null;
  let mode: PlacementMode = DEFAULTS.placement;
  if (o.placement !== undefined && (typeof o.placement !== 'object' || o.placement === null)) {
    mode = choice(o.placement, 'placement', PLACEMENT_MODES);
  } else if (o.placement !== undefined) {
    placement = placementList(o.placement);
    if (workers && workers !== placement.length) {
      throw rangeError(ErrorCodes.INVALID_WORKERS, `workers (${workers}) must equal the placement's length (${placement.length})`);
    }
  }
  let pin: PinMode = PIN_OF_MODE[mode];
  if (o.pin !== undefined) {
    if (mode !== DEFAULTS.placement) throw rangeError(INVALID_OPTION, `give placement '${mode}' or pin, not both (pin is the deprecated spelling)`);
    pin = choice(o.pin, 'pin', ['node', 'cpu', 'none'] as const);
  }
  return {
    workers: placement ? 0 : workers,
    placement,
    pin,
    confineToCaller: o.confineToCaller === undefined ? false : boolean(o.confineToCaller, 'confineToCaller'),
    policy: stealPolicy(o.stealPolicy),
    hogThresholdNs: hogThresholdNs(o.hogThresholdMs),
    numaNode: placement ? -1 : (numaNode ?? -1),
    cgroupPollMs: cgroupPollMs(o.cgroupPollMs, workers === 0 && !placement),
    cgroupFsroot: fsroot({}),
  };
}

const NATIVE_RUNTIME_KEYS = ['workers', 'placement', 'pin', 'stealPolicy', 'stats', 'timingSampleShift', 'sysmon', 'idleSpinMicros', 'hogThresholdMs', 'virtualTopology', 'confineToCaller', 'shm', 'cgroupPollMs', 'memoryAffinity'] as const;

/** createNativeRuntime options -> the addon's config; the core checks the rest (nodes, CPUs allowed) before starting anything. */
export function normalizeNativeRuntimeOptions(options: unknown): NativeRuntimeConfig {
  const o = readOptions(options, 'options', NATIVE_RUNTIME_KEYS) as { [K in keyof NativeRuntimeOptions]?: unknown };
  let virtualNodes = 0;
  let virtualWorkersPerNode = 0;
  if (o.virtualTopology !== undefined) {
    const v = readOptions(o.virtualTopology, 'virtualTopology', ['nodes', 'workersPerNode']);
    if (o.workers !== undefined || o.placement !== undefined || o.pin !== undefined || o.confineToCaller !== undefined) {
      throw rangeError(INVALID_OPTION, 'virtualTopology excludes workers, placement, pin and confineToCaller');
    }
    virtualNodes = integer(v.nodes, 'virtualTopology.nodes', 1, LIMITS.nodeId + 1, ErrorCodes.INVALID_WORKERS);
    virtualWorkersPerNode = integer(v.workersPerNode, 'virtualTopology.workersPerNode', 1, Math.floor(LIMITS.workers / virtualNodes), ErrorCodes.INVALID_WORKERS);
  }
  const sched = schedulerConfig(o, virtualNodes ? undefined : numaNodeFromEnv());
  return {
    ...sched,
    stats: o.stats === undefined ? DEFAULTS.stats : boolean(o.stats, 'stats'),
    timingSampleShift: o.timingSampleShift === undefined ? DEFAULTS.timingSampleShift : integer(o.timingSampleShift, 'timingSampleShift', 0, LIMITS.timingSampleShift),
    sysmon: o.sysmon === undefined ? DEFAULTS.sysmon : boolean(o.sysmon, 'sysmon'),
    idleSpinNs: idleSpinMicros(o.idleSpinMicros) * 1000,
    virtualNodes,
    virtualWorkersPerNode,
    shm: shmOption(o.shm),
    cgroupPollMs: virtualNodes ? 0 : sched.cgroupPollMs,  // a virtual topology never follows
    memoryAffinity: memoryAffinityOption(o.memoryAffinity),
  };
}

/** The `idleSpinMicros` option of both runtimes. */
function idleSpinMicros(value: unknown): number {
  return value === undefined ? DEFAULTS.idleSpinMicros : integer(value, 'idleSpinMicros', 0, LIMITS.idleSpinMicros);
}

/** The `memoryAffinity` option of both runtimes: spawns default to node: 'auto'. */
export function memoryAffinityOption(value: unknown): boolean {
  return value === undefined ? DEFAULTS.memoryAffinity : boolean(value, 'memoryAffinity');
}

/** The `shm` option of both runtimes: publish its stats in the process's shared-memory stats file. */
export function shmOption(value: unknown): boolean {
  return value === undefined ? DEFAULTS.shm : boolean(value, 'shm');
}

// ------------------------------------------------------------------ Runtime.start

/** What the addon's jsRuntime.create() takes (native/napi/js_binding.cpp): the scheduler config plus the JS runtime's own. */
export interface JsRuntimeCreateOptions extends SchedulerConfig {
  concurrency: number;
  budget: number;
  spinNs: number;
  /** Where and how often to publish its stats (lib/shm/config.ts); absent: not published. */
  shm?: ShmPublishConfig;
}

export interface RuntimeConfig {
  /** The task module. */
  module: { url: string; file: string };
  native: JsRuntimeCreateOptions;
  /** The options as checked, each read once, defaults filled in (maxQueue a number). */
  options: RuntimeOptions & { maxQueue: number | 'auto'; restartWorkers: boolean; shm: boolean; memoryAffinity: boolean };
}

const RUNTIME_KEYS = [
  'filename',
  'workers',
  'placement',
  'stealPolicy',
  'maxQueue',
  'concurrentTasksPerWorker',
  'idleSpinMicros',
  'tasksPerTurn',
  'resourceLimits',
  'env',
  'workerData',
  'execArgv',
  'restartWorkers',
  'hogThresholdMs',
  'confineToCaller',
  'shm',
  'cgroupPollMs',
  'memoryAffinity',
] as const;

/** The task module: a path or a file: URL (string or URL) -> its file: URL and path. */
export function taskModule(value: unknown): { url: string; file: string } {
  let file: string;
  const isUrl = typeof value === 'object' && value !== null && guard('filename', () => value instanceof URL);
  if (isUrl || typeof value === 'string') {
    const text = isUrl ? guard('filename', () => String((value as URL).href)) : (value as string);
    if (text.length === 0 || text.length > LIMITS.pathLength || text.includes('\0')) {
      throw rangeError(INVALID_OPTION, `filename must be a path or a file: URL of 1 to ${LIMITS.pathLength} characters without NUL bytes`);
    }
    // Stryker disable next-line OptionalChaining: a match always has its group 1
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(text)?.[1]?.toLowerCase();
    if (scheme !== undefined && scheme.length > 1 && scheme !== 'file') {
      throw rangeError(INVALID_OPTION, `filename must be a path or a file: URL, got a ${scheme}: URL`);
    }
    try {
      file = scheme === 'file' ? fileURLToPath(text) : path.resolve(text);
    } catch (err) {
      throw rangeError(INVALID_OPTION, `filename is not a usable file: URL: ${messageOf(err)}`, { cause: err });
    }
  } else {
    throw typeError(INVALID_ARG_TYPE, `filename must be a path or a file: URL, got ${show(value)}`);
  }
  return { url: pathToFileURL(file).href, file };
}

function resourceLimits(value: unknown): ResourceLimits | undefined {
  if (value === undefined) return undefined;
  const r = readOptions(value, 'resourceLimits', ['maxYoungGenerationSizeMb', 'maxOldGenerationSizeMb', 'codeRangeSizeMb', 'stackSizeMb']);
  const out: ResourceLimits = {};
  for (const k of ['maxYoungGenerationSizeMb', 'maxOldGenerationSizeMb', 'codeRangeSizeMb'] as const) {
    if (r[k] !== undefined) out[k] = finite(r[k], `resourceLimits.${k}`, 1, LIMITS.heapMb);
  }
  if (r.stackSizeMb !== undefined) out.stackSizeMb = finite(r.stackSizeMb, 'resourceLimits.stackSizeMb', 1, LIMITS.stackMb);
  return out;
}

function workerEnv(value: unknown): NodeJS.Dict<string> | typeof SHARE_ENV | undefined {
  if (value === undefined || value === SHARE_ENV) return value;
  const keys = value !== null && typeof value === 'object' && !isArray(value, 'env') ? guard('env', () => Object.keys(value)) : undefined;
  if (!keys) throw typeError(INVALID_ARG_TYPE, `env must be an object of strings or SHARE_ENV, got ${show(value)}`);
  if (keys.length > LIMITS.listLength) throw rangeError(INVALID_OPTION, `env must have at most ${LIMITS.listLength} variables, got ${keys.length}`);
  const out: NodeJS.Dict<string> = {};
  for (const k of keys) {
    const v = guard(`env.${k}`, () => (value as Record<string, unknown>)[k]);
    if (v === undefined) continue;
    if (typeof v !== 'string') throw typeError(INVALID_ARG_TYPE, `env.${k} must be a string, got ${show(v)}`);
    if (k.includes('\0') || k.includes('=') || v.includes('\0')) throw rangeError(INVALID_OPTION, `env.${k}: names and values cannot hold NUL bytes (nor names '=')`);
    out[k] = v;
  }
  return out;
}

function workerData(value: unknown): unknown {
  // Stryker disable next-line ConditionalExpression: structuredClone(undefined) is undefined too (this only skips the call)
  if (value === undefined) return undefined;
  try {
    return structuredClone(value);
  } catch (err) {
    throw typeError(ErrorCodes.DATA_CLONE, `workerData cannot be cloned to the workers: ${messageOf(err)}`, { cause: err });
  }
}

/**
 * Checks Runtime.start options. Nothing is started. workers 'auto' goes to the addon as 0 (it counts
 * the CPUs it places on: HWSQ_NUMA_NODE and confineToCaller narrow them); maxQueue 'auto' stays
 * 'auto' until the worker count is known.
 */
export function runtimeConfig(options: unknown, numaNode?: number): RuntimeConfig {
  if (options === undefined) throw typeError(INVALID_ARG_TYPE, 'options must be an object with at least a filename');
  const o = readOptions(options, 'options', RUNTIME_KEYS);
  const module = taskModule(o.filename);
  const native: JsRuntimeCreateOptions = {
    ...schedulerConfig(o, numaNode),
    concurrency: o.concurrentTasksPerWorker === undefined ? DEFAULTS.concurrentTasksPerWorker : integer(o.concurrentTasksPerWorker, 'concurrentTasksPerWorker', 1, LIMITS.concurrentTasksPerWorker),
    budget: o.tasksPerTurn === undefined ? DEFAULTS.tasksPerTurn : integer(o.tasksPerTurn, 'tasksPerTurn', 1, LIMITS.tasksPerTurn),
    spinNs: idleSpinMicros(o.idleSpinMicros) * 1000,
  };
  let maxQueue: number | 'auto' = DEFAULTS.maxQueue;
  if (o.maxQueue === 'auto') maxQueue = 'auto';
  else if (o.maxQueue !== undefined && o.maxQueue !== Infinity) {
    if (typeof o.maxQueue === 'string') throw rangeError(INVALID_OPTION, `maxQueue must be a number, Infinity or 'auto', got ${show(o.maxQueue)}`);
    maxQueue = integer(o.maxQueue, 'maxQueue', 1, LIMITS.maxQueue);
  }
  const execArgv = o.execArgv === undefined ? undefined : list(o.execArgv, 'execArgv', 0, LIMITS.listLength).map((a, i) => string(a, `execArgv[${i}]`, LIMITS.pathLength));
  const checked: RuntimeConfig['options'] = {
    filename: module.file,
    workers: native.workers || (native.placement ? native.placement.length : 'auto'),
    confineToCaller: native.confineToCaller,
    stealPolicy: native.policy,
    maxQueue,
    concurrentTasksPerWorker: native.concurrency,
    idleSpinMicros: native.spinNs / 1000,
    tasksPerTurn: native.budget,
    hogThresholdMs: (native.hogThresholdNs ?? 0) / 1e6,
    cgroupPollMs: cgroupPollMs(o.cgroupPollMs, true),
    shm: shmOption(o.shm),
    memoryAffinity: memoryAffinityOption(o.memoryAffinity),
    restartWorkers: o.restartWorkers === undefined ? DEFAULTS.restartWorkers : boolean(o.restartWorkers, 'restartWorkers'),
    resourceLimits: resourceLimits(o.resourceLimits),
    env: workerEnv(o.env),
    workerData: workerData(o.workerData),
    execArgv,
  };
  return { module, native, options: checked };
}

// ------------------------------------------------------------------ spawns (Runtime, inside tasks)

export interface CheckedSpawnOptions {
  /** -1: no affinity; 'auto': the node of the task's memory (numa/memory-affinity.ts). */
  node: number | 'auto';
  transfer: ArrayBuffer[] | undefined;
  signal: AbortSignal | undefined;
  abort: 'signal' | 'terminate';
}

function isDetached(buffer: ArrayBuffer): boolean {
  // ArrayBuffer.prototype.detached from Node 22; Node 20 (no such getter) takes the probe below,
  // which agrees with it, so under Node 20 this line's mutants are equivalent.
  // Stryker disable next-line ConditionalExpression,EqualityOperator,BooleanLiteral: see above
  if ((buffer as { detached?: boolean }).detached !== undefined) return (buffer as { detached?: boolean }).detached === true;
  if (buffer.byteLength > 0) return false;
  try {
    new Uint8Array(buffer);
    return false;
  } catch {
    return true;
  }
}

/** A transfer list: distinct ArrayBuffers that are not detached (SharedArrayBuffers are shared without one). */
export function transferList(value: unknown, name = 'transfer'): ArrayBuffer[] | undefined {
  if (value === undefined) return undefined;
  const entries = list(value, name, 0, LIMITS.listLength);
  const seen = new Set<unknown>();
  entries.forEach((b, i) => {
    if (!types.isArrayBuffer(b)) throw typeError(INVALID_ARG_TYPE, `${name}[${i}] must be an ArrayBuffer (SharedArrayBuffers are shared without a transfer), got ${show(b)}`);
    if (seen.has(b)) throw rangeError(INVALID_ARG, `${name}[${i}] is listed twice`);
    if (isDetached(b)) throw rangeError(INVALID_ARG, `${name}[${i}] is detached (already transferred)`);
    seen.add(b);
  });
  return entries as ArrayBuffer[];
}

const addListener = EventTarget.prototype.addEventListener;
const removeListener = EventTarget.prototype.removeEventListener;

/** An AbortSignal (a real one: its `aborted` getter checks the receiver), with the standard listeners. */
export function abortSignal(value: unknown, name = 'signal'): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (!guard(name, () => value instanceof AbortSignal)) throw typeError(INVALID_ARG_TYPE, `${name} must be an AbortSignal, got ${show(value)}`);
  const s = value as AbortSignal;
  guard(name, () => s.aborted);
  if (guard(name, () => s.addEventListener !== addListener || s.removeEventListener !== removeListener)) {
    throw typeError(INVALID_ARG_TYPE, `${name} must be an AbortSignal with the standard addEventListener / removeEventListener`);
  }
  return s;
}

/**
 * The `node` of a spawn: a node id (with `nodes`, one with Ps: ERR_HWSQ_UNKNOWN_NODE otherwise),
 * 'auto', or undefined: 'auto' when the runtime's `memoryAffinity` is on, else -1 (no affinity).
 */
export function spawnNode(value: unknown, nodes: ReadonlySet<number> | readonly number[] | undefined, memoryAffinity: boolean): number | 'auto' {
  if (value === undefined) return memoryAffinity ? 'auto' : -1;
  if (value === 'auto') return 'auto';
  if (typeof value === 'string') throw typeError(INVALID_ARG_TYPE, `node must be a NUMA node id or 'auto', got ${show(value)}`);
  return nodes ? runtimeNode(value, nodes) : nodeId(value);
}

/**
 * spawn options: { node?, transfer?, signal?, abort? }. With `nodes` (the runtime's nodes, known
 * on the main thread), a node without Ps is ERR_HWSQ_UNKNOWN_NODE here; inside a task the addon
 * checks it (with the same code) before queuing. `memoryAffinity`: the runtime option (node
 * defaults to 'auto').
 */
export function spawnOptions(value: unknown, nodes?: ReadonlySet<number>, memoryAffinity = false): CheckedSpawnOptions {
  const o = readOptions(value, 'options', ['node', 'transfer', 'signal', 'abort']);
  return {
    node: spawnNode(o.node, nodes, memoryAffinity),
    transfer: transferList(o.transfer),
    signal: abortSignal(o.signal),
    abort: o.abort === undefined ? DEFAULTS.abort : choice(o.abort, 'abort', ['signal', 'terminate'] as const),
  };
}

/** spawnMany options: { node? } -> node (-1: none; 'auto': per task, the node of its memory). */
export function spawnManyOptions(value: unknown, nodes?: ReadonlySet<number>, memoryAffinity = false): number | 'auto' {
  const o = readOptions(value, 'options', ['node']);
  return spawnNode(o.node, nodes, memoryAffinity);
}

/** The argument list of one spawn: an array. */
export function argsOf(value: unknown): unknown[] {
  if (value === undefined) return [];
  if (!isArray(value, 'args')) throw typeError(INVALID_ARG_TYPE, `args must be an array, got ${show(value)}`);
  return value;
}

/** spawnMany's argument lists: a copy (each read once), every element an array. */
export function argsListOf(value: unknown): unknown[][] {
  if (!isArray(value, 'argsList')) throw typeError(INVALID_ARG_TYPE, `argsList must be an array of argument arrays, got ${show(value)}`);
  const entries = list(value, 'argsList', 0, LIMITS.spawnManyLists, ErrorCodes.INVALID_COUNT);
  entries.forEach((args, i) => {
    if (!isArray(args, `argsList[${i}]`)) throw typeError(INVALID_ARG_TYPE, `argsList[${i}] must be an array, got ${show(args)}`);
  });
  return entries as unknown[][];
}

/** How many rejected promises spawnMany answers a refused call with: one per argument list, or one when argsList is not a usable array. */
export function rejectionCount(argsList: unknown): number {
  try {
    return Array.isArray(argsList) && argsList.length <= LIMITS.spawnManyLists ? argsList.length : 1;
  } catch {
    return 1;  // a revoked Proxy
  }
}

// ------------------------------------------------------------------ spawnNative

export interface NativeSpawnArgs {
  kind: NativeTaskKind;
  spinNs: number;
  view: Uint8Array | undefined;
  steps: number;
  /** -1: none; 'auto': the node of params.buffer (numa/memory-affinity.ts). */
  node: number | 'auto';
  worker: number;
  count: number;
  inside: boolean;
}

const CACHE_LINE = 64;
const KINDS: readonly NativeTaskKind[] = ['noop', 'spin', 'touch', 'chase'];

/** The bytes of any BufferLike (no copy); Proxies and look-alikes are refused (TypeError ERR_HWSQ_INVALID_ARG_TYPE). */
export function bytesOf(value: unknown, name = 'buffer'): Uint8Array {
  if (types.isUint8Array(value)) return value as Uint8Array;
  if (types.isArrayBufferView(value)) {
    const v = value as ArrayBufferView;
    if (types.isArrayBuffer(v.buffer) && isDetached(v.buffer)) return new Uint8Array(0);  // no bytes left
    // Own getters may lie; the Uint8Array constructor still checks the bounds against the real buffer.
    return guard(name, () => new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  }
  if (types.isArrayBuffer(value) && isDetached(value as ArrayBuffer)) return new Uint8Array(0);
  if (types.isAnyArrayBuffer(value)) return new Uint8Array(value as ArrayBuffer);
  throw typeError(INVALID_ARG_TYPE, `${name} must be an ArrayBuffer, SharedArrayBuffer, TypedArray, DataView or Buffer, got ${show(value)}`);
}

/** A buffer of at least one cache line for touch / chase tasks (ERR_HWSQ_BAD_SIZE below). */
export function taskBuffer(value: unknown, name: string): Uint8Array {
  const view = bytesOf(value, name);
  if (view.byteLength < CACHE_LINE) throw rangeError(ErrorCodes.BAD_SIZE, `${name} must hold at least ${CACHE_LINE} bytes, got ${view.byteLength}`);
  return view;
}

/** spawnNative(kind, params, options) of a runtime with `size` Ps on `nodes`. */
export function nativeSpawnArgs(kind: unknown, params: unknown, options: unknown, size: number, nodes: readonly number[], memoryAffinity = false): NativeSpawnArgs {
  const k = choice(kind, 'kind', KINDS, ErrorCodes.UNKNOWN_TASK_KIND);
  const p = readOptions(params, 'params', ['ns', 'buffer', 'steps']);
  const o = readOptions(options, 'options', ['count', 'node', 'worker', 'inside']);
  let spinNs = 0;
  let view: Uint8Array | undefined;
  let steps = 0;
  if (k === 'spin') {
    if (p.ns === undefined) throw typeError(INVALID_ARG_TYPE, 'spin tasks need params.ns (a number of nanoseconds)');
    spinNs = Math.round(finite(p.ns, 'params.ns', 0, LIMITS.spinNs, INVALID_ARG));
  } else if (p.ns !== undefined) {
    throw rangeError(INVALID_ARG, `params.ns is for spin tasks, not ${k}`);
  }
  if (k === 'touch' || k === 'chase') {
    if (p.buffer === undefined) throw typeError(INVALID_ARG_TYPE, `${k} tasks need params.buffer`);
    view = taskBuffer(p.buffer, 'params.buffer');
  } else if (p.buffer !== undefined) {
    throw rangeError(INVALID_ARG, `params.buffer is for touch and chase tasks, not ${k}`);
  }
  if (k === 'chase') {
    steps = p.steps === undefined ? Math.floor(view!.byteLength / CACHE_LINE) : integer(p.steps, 'params.steps', 1, LIMITS.chaseSteps, INVALID_ARG);
  } else if (p.steps !== undefined) {
    throw rangeError(INVALID_ARG, `params.steps is for chase tasks, not ${k}`);
  }
  const count = o.count === undefined ? DEFAULTS.spawnCount : integer(o.count, 'count', 1, LIMITS.spawnCount, ErrorCodes.INVALID_COUNT);
  const worker = o.worker === undefined ? -1 : workerIndex(o.worker, size);
  // An explicit worker wins over the runtime's memoryAffinity default.
  const node = spawnNode(o.node, nodes, memoryAffinity && (o.worker === undefined || o.inside === true));
  const inside = o.inside === undefined ? false : boolean(o.inside, 'inside');
  if (node !== -1 && worker >= 0 && !inside) {
    throw rangeError(INVALID_ARG, 'give node or worker, not both (with inside: true, worker places the root task and node the tasks)');
  }
  return { kind: k, spinNs, view, steps, node, worker, count, inside };
}

// ------------------------------------------------------------------ NUMA functions

/** topology({ fsroot }) and HWSQ_FSROOT: '' (the live system) or a directory. */
export function fsroot(options: unknown, env: NodeJS.ProcessEnv = process.env): string {
  const o = readOptions(options, 'options', ['fsroot']);
  if (o.fsroot !== undefined) return directory(string(o.fsroot, 'fsroot', LIMITS.pathLength, true), 'fsroot', rangeError.bind(null, INVALID_OPTION));
  const fromEnv = env.HWSQ_FSROOT;
  if (fromEnv === undefined) return '';
  if (fromEnv.length > LIMITS.pathLength) throw rangeError(ErrorCodes.INVALID_ENV, `HWSQ_FSROOT is longer than ${LIMITS.pathLength} characters`);
  return directory(fromEnv, 'HWSQ_FSROOT', rangeError.bind(null, ErrorCodes.INVALID_ENV));
}

function directory(dir: string, name: string, fail: (message: string) => Error): string {
  if (dir === '') return dir;
  if (dir.includes('\0')) throw fail(`${name} cannot hold NUL bytes`);
  let isDir = false;
  try {
    isDir = fs.statSync(dir).isDirectory();
  } catch {
    // reported below
  }
  if (!isDir) throw fail(`${name} must be a directory holding sys/ and proc/, got ${show(dir)}`);
  return dir;
}

/** HWSQ_BENCH_DIR: unset, or a directory (of native benchmark binaries). */
export function benchDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dir = env.HWSQ_BENCH_DIR;
  if (dir === undefined || dir === '') return undefined;
  if (dir.length > LIMITS.pathLength) throw rangeError(ErrorCodes.INVALID_ENV, `HWSQ_BENCH_DIR is longer than ${LIMITS.pathLength} characters`);
  return directory(dir, 'HWSQ_BENCH_DIR', rangeError.bind(null, ErrorCodes.INVALID_ENV));
}

/**
 * A pod-identity variable (POD_NAME, HOSTNAME, ...): at most LIMITS.nameLength printable
 * characters; it is echoed in JSON, in metrics and on terminals (`hwsq top`).
 */
export function identityVar(env: NodeJS.ProcessEnv, name: string): string | null {
  if (env === null || typeof env !== 'object') throw typeError(INVALID_ARG_TYPE, `env must be an object of strings, got ${show(env)}`);
  const v = guard(`env.${name}`, () => (env as Record<string, unknown>)[name]);
  if (v === undefined || v === '') return null;
  if (typeof v !== 'string') throw typeError(INVALID_ARG_TYPE, `env.${name} must be a string, got ${show(v)}`);
  if (v.length > LIMITS.nameLength || /[\u0000-\u001f\u007f-\u009f]/.test(v)) {
    throw rangeError(ErrorCodes.INVALID_ENV, `${name} must be at most ${LIMITS.nameLength} printable characters (no control characters)`);
  }
  return v;
}

export interface CheckedPinOptions {
  scope: 'thread' | 'process';
  memory: 'preferred' | 'bind' | 'none';
}

/** pinToNumaNode / pinToCpus options. */
export function pinOptions(value: unknown): CheckedPinOptions {
  const o = readOptions(value, 'options', ['scope', 'memory']);
  return {
    scope: o.scope === undefined ? 'thread' : choice(o.scope, 'scope', ['thread', 'process'] as const, INVALID_ARG),
    memory: o.memory === undefined ? 'preferred' : choice(o.memory, 'memory', ['preferred', 'bind', 'none'] as const, INVALID_ARG),
  };
}

/** allocOnNode's node (one id) or nodes (a list, interleaved). */
export function nodeIds(value: unknown): { ids: number[]; many: boolean } {
  if (!isArray(value, 'node')) return { ids: [nodeId(value)], many: false };
  const entries = list(value, 'node', 0, LIMITS.nodeId + 1, ErrorCodes.UNKNOWN_NODE);
  if (entries.length === 0) throw rangeError(ErrorCodes.UNKNOWN_NODE, 'at least one node is needed');
  const ids = entries.map((n, i) => nodeId(n, `node[${i}]`));
  if (new Set(ids).size !== ids.length) throw rangeError(INVALID_ARG, 'node lists a node twice');
  return { ids, many: true };
}

// ------------------------------------------------------------------ metrics

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
/** Labels hwsq sets itself. */
const OWN_LABELS = ['worker', 'numa_node', 'cpu', 'scope', 'queue', 'origin', 'le', 'quantile'];
const REGISTRY_METHODS = ['registerMetric', 'removeSingleMetric', 'getSingleMetric', 'metrics'] as const;

export interface CheckedMetricsOptions {
  registry: PromRegistry | undefined;
  prefix: string;
  labels: Record<string, string>;
  latencyBuckets: readonly number[] | undefined;
  runTimeBuckets: readonly number[] | undefined;
}

export interface CheckedServeOptions extends CheckedMetricsOptions {
  port: number;
  host: string;
  headersTimeoutMs: number;
  idleTimeoutMs: number;
  maxConnections: number;
}

const METRICS_KEYS = ['registry', 'prefix', 'labels', 'latencyBuckets', 'runTimeBuckets'] as const;
const SERVE_KEYS = [...METRICS_KEYS, 'port', 'host', 'headersTimeoutMs', 'idleTimeoutMs', 'maxConnections'] as const;

/** registerMetrics / serveMetrics' first argument: something with a stats() method. */
export function metricsSource(value: unknown): void {
  const ok = value !== null && (typeof value === 'object' || typeof value === 'function') && guard('runtime', () => typeof (value as { stats?: unknown }).stats === 'function');
  if (!ok) throw typeError(INVALID_ARG_TYPE, 'runtime must have a stats() method (NativeRuntime or Runtime)');
}

function registry(value: unknown): PromRegistry | undefined {
  if (value === undefined) return undefined;
  const ok =
    value !== null &&
    typeof value === 'object' &&
    guard('registry', () => REGISTRY_METHODS.every((m) => typeof (value as Record<string, unknown>)[m] === 'function') && typeof (value as PromRegistry).contentType === 'string');
  if (!ok) throw typeError(INVALID_ARG_TYPE, `registry must be a prom-client Registry (${REGISTRY_METHODS.join(', ')}, contentType)`);
  return value as PromRegistry;
}

function buckets(value: unknown, name: string): readonly number[] | undefined {
  if (value === undefined) return undefined;
  const bounds = list(value, name, 1, LIMITS.histogramBuckets);
  bounds.forEach((b, i) => {
    if (typeof b !== 'number') throw typeError(INVALID_ARG_TYPE, `${name}[${i}] must be a number of seconds, got ${show(b)}`);
    // Stryker disable next-line EqualityOperator: at i = 0, bounds[-1] is undefined and b <= undefined is false
    if (!(b > 0) || !Number.isFinite(b) || (i > 0 && b <= (bounds[i - 1] as number))) {
      throw rangeError(INVALID_OPTION, `${name} must be an ascending list of positive finite seconds`);
    }
  });
  return Object.freeze(bounds as number[]);
}

function labels(value: unknown): Record<string, string> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || isArray(value, 'labels')) throw typeError(INVALID_ARG_TYPE, `labels must be an object of strings, got ${show(value)}`);
  const keys = guard('labels', () => Object.keys(value));
  if (keys.length > LIMITS.metricsLabels) throw rangeError(INVALID_OPTION, `labels: at most ${LIMITS.metricsLabels}, got ${keys.length}`);
  const out: Record<string, string> = {};
  for (const k of keys) {
    if (!LABEL_RE.test(k) || k.startsWith('__') || k.length > LIMITS.nameLength) throw rangeError(INVALID_OPTION, `label name ${show(k)} is not a valid Prometheus label name`);
    if (OWN_LABELS.includes(k)) throw rangeError(INVALID_OPTION, `label ${k} is set by hwsq itself`);
    out[k] = string(guard(`labels.${k}`, () => (value as Record<string, unknown>)[k]), `labels.${k}`, LIMITS.nameLength, true);
  }
  return out;
}

function metricsFields(o: { [K in (typeof METRICS_KEYS)[number]]?: unknown }): CheckedMetricsOptions {
  const prefix = o.prefix === undefined ? DEFAULTS.metricsPrefix : string(o.prefix, 'prefix', LIMITS.nameLength, true);
  if (prefix !== '' && !NAME_RE.test(prefix)) throw rangeError(INVALID_OPTION, `prefix must match ${NAME_RE} (or be empty), got ${show(prefix)}`);
  return {
    registry: registry(o.registry),
    prefix,
    labels: labels(o.labels),
    latencyBuckets: buckets(o.latencyBuckets, 'latencyBuckets'),
    runTimeBuckets: buckets(o.runTimeBuckets, 'runTimeBuckets'),
  };
}

/** registerMetrics options. */
export function metricsOptions(value: unknown): CheckedMetricsOptions {
  return metricsFields(readOptions(value, 'options', METRICS_KEYS));
}

function timeoutMs(value: unknown, name: string, def: number): number {
  return value === undefined ? def : integer(value, name, LIMITS.minServerTimeoutMs, LIMITS.timeoutMs);
}

/** serveMetrics options. */
export function serveOptions(value: unknown): CheckedServeOptions {
  const o = readOptions(value, 'options', SERVE_KEYS);
  return {
    ...metricsFields(o),
    port: o.port === undefined ? DEFAULTS.metricsPort : integer(o.port, 'port', 0, 65535),
    host: o.host === undefined ? DEFAULTS.metricsHost : string(o.host, 'host', 255),
    headersTimeoutMs: timeoutMs(o.headersTimeoutMs, 'headersTimeoutMs', DEFAULTS.headersTimeoutMs),
    idleTimeoutMs: timeoutMs(o.idleTimeoutMs, 'idleTimeoutMs', DEFAULTS.idleTimeoutMs),
    maxConnections: o.maxConnections === undefined ? DEFAULTS.maxConnections : integer(o.maxConnections, 'maxConnections', 1, LIMITS.metricsConnections),
  };
}
