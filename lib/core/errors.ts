/** Stable error codes carried by every error hwsq throws (`err.code`). */
export const ErrorCodes = {
  INVALID_ARG_TYPE: 'ERR_HWSQ_INVALID_ARG_TYPE',
  INVALID_ARG: 'ERR_HWSQ_INVALID_ARG',
  UNKNOWN_NODE: 'ERR_HWSQ_UNKNOWN_NODE',
  NODE_HAS_NO_CPUS: 'ERR_HWSQ_NODE_HAS_NO_CPUS',
  NO_ALLOWED_CPUS: 'ERR_HWSQ_NO_ALLOWED_CPUS',
  NODE_NOT_ALLOWED: 'ERR_HWSQ_NODE_NOT_ALLOWED',
  EMPTY_CPUS: 'ERR_HWSQ_EMPTY_CPUS',
  CPU_OUT_OF_RANGE: 'ERR_HWSQ_CPU_OUT_OF_RANGE',
  CPU_NOT_ALLOWED: 'ERR_HWSQ_CPU_NOT_ALLOWED',
  NOT_PINNED: 'ERR_HWSQ_NOT_PINNED',
  BAD_SIZE: 'ERR_HWSQ_BAD_SIZE',
  OUT_OF_MEMORY: 'ERR_HWSQ_OUT_OF_MEMORY',
  UNSUPPORTED: 'ERR_HWSQ_UNSUPPORTED',
  SYSCALL: 'ERR_HWSQ_SYSCALL',
  // JS task runtime (Runtime.start / spawn)
  UNKNOWN_TASK: 'ERR_HWSQ_UNKNOWN_TASK',
  TASK_NOT_FUNCTION: 'ERR_HWSQ_TASK_NOT_FUNCTION',
  TASK_MODULE_LOAD: 'ERR_HWSQ_TASK_MODULE_LOAD',
  WORKER_EXITED: 'ERR_HWSQ_WORKER_EXITED',
  QUEUE_FULL: 'ERR_HWSQ_QUEUE_FULL',
  RUNTIME_CLOSED: 'ERR_HWSQ_RUNTIME_CLOSED',
  DATA_CLONE: 'ERR_HWSQ_DATA_CLONE',
  NOT_IN_TASK: 'ERR_HWSQ_NOT_IN_TASK',
  // Scheduler runtimes (NativeRuntime and Runtime): options, spawns, lifecycle
  INVALID_WORKERS: 'ERR_HWSQ_INVALID_WORKERS',
  INVALID_OPTION: 'ERR_HWSQ_INVALID_OPTION',
  UNKNOWN_OPTION: 'ERR_HWSQ_UNKNOWN_OPTION',
  UNKNOWN_POLICY: 'ERR_HWSQ_UNKNOWN_POLICY',
  UNKNOWN_WORKER: 'ERR_HWSQ_UNKNOWN_WORKER',
  UNKNOWN_TASK_KIND: 'ERR_HWSQ_UNKNOWN_TASK_KIND',
  INVALID_COUNT: 'ERR_HWSQ_INVALID_COUNT',
  INVALID_STATE: 'ERR_HWSQ_INVALID_STATE',
  NO_CPUS: 'ERR_HWSQ_NO_CPUS',
  // Environment variables the library reads (HWSQ_FSROOT, HWSQ_BENCH_DIR, the pod identity)
  INVALID_ENV: 'ERR_HWSQ_INVALID_ENV',
  // Observability (registerMetrics / serveMetrics)
  MISSING_PEER_DEPENDENCY: 'ERR_HWSQ_MISSING_PEER_DEPENDENCY',
  // The shared-memory stats file of a process (hwsq ps | stats --pid | top --pid | metrics serve --pid)
  NO_SUCH_PROCESS: 'ERR_HWSQ_NO_SUCH_PROCESS',
  SHM_NOT_PUBLISHED: 'ERR_HWSQ_SHM_NOT_PUBLISHED',
  SHM_PERMISSION: 'ERR_HWSQ_SHM_PERMISSION',
  SHM_STALE: 'ERR_HWSQ_SHM_STALE',
  SHM_FOREIGN: 'ERR_HWSQ_SHM_FOREIGN',
  SHM_CORRUPT: 'ERR_HWSQ_SHM_CORRUPT',
  SHM_VERSION: 'ERR_HWSQ_SHM_VERSION',
  SHM_IO: 'ERR_HWSQ_SHM_IO',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** An Error with a stable `code`, as thrown by every hwsq API. */
export interface HwsqError extends Error {
  code: ErrorCode;
}

function withCode<E extends Error>(err: E, code: ErrorCode): E & HwsqError {
  Object.defineProperty(err, 'code', { value: code, enumerable: true, writable: true, configurable: true });
  return err as E & HwsqError;
}

export function rangeError(code: ErrorCode, message: string, options?: { cause?: unknown }): RangeError & HwsqError {
  return withCode(new RangeError(message, options), code);
}

export function typeError(code: ErrorCode, message: string, options?: { cause?: unknown }): TypeError & HwsqError {
  return withCode(new TypeError(message, options), code);
}

export function codedError(code: ErrorCode, message: string, options?: { cause?: unknown }): Error & HwsqError {
  return withCode(new Error(message, options), code);
}

export function unsupportedError(what: string): Error & HwsqError {
  return withCode(new Error(`${what} is not supported on ${process.platform}`), ErrorCodes.UNSUPPORTED);
}

/** A short description of any value for a message; never throws (revoked Proxies, symbols, null-prototype objects). */
export function show(value: unknown): string {
  try {
    switch (typeof value) {
      case 'string':
        return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}...` : value);
      case 'number':
        return Object.is(value, -0) ? '-0' : String(value);
      case 'bigint':
        return `${value}n`;
      case 'symbol':
        return 'a symbol';
      case 'function':
        return 'a function';
      case 'object':
        return value === null ? 'null' : Array.isArray(value) ? 'an array' : 'an object';
      default:
        return String(value);
    }
  } catch {
    return 'an unreadable value'; // a revoked Proxy
  }
}

/** A non-negative safe integer (node ids, CPU ids). */
export function assertIndex(value: unknown, name: string): asserts value is number {
  if (typeof value !== 'number') {
    throw typeError(ErrorCodes.INVALID_ARG_TYPE, `${name} must be a number, got ${show(value)}`);
  }
  if (!Number.isSafeInteger(value) || value < 0) {
    throw rangeError(ErrorCodes.INVALID_ARG, `${name} must be a non-negative integer, got ${value}`);
  }
}
