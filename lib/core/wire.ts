// What crosses between JS and C++ for JS tasks: the one definition of the wire protocol on the JS
// side. native/napi/wire.h states the same constants for C++ (comments there say what each
// means); the addon exports its copy as binding.wire and test/wire.test.ts checks they agree.

/**
 * Task flags: ROOT and ABORTABLE set at spawn, LOCAL and BUFFER added by the addon at dispatch;
 * AFFINE_MEMORY / AFFINE_FALLBACK set at spawn by node: 'auto' (the choice it made, counted by the
 * addon in stats().memoryAffinity, never dispatched).
 */
export const Flags = Object.freeze({ ROOT: 1, ABORTABLE: 2, LOCAL: 1 << 8, BUFFER: 1 << 9, AFFINE_MEMORY: 1 << 16, AFFINE_FALLBACK: 1 << 17 } as const);

/** Completion codes of a completion record. */
export const Codes = Object.freeze({ OK: 0, ERROR: 1, EXITED: 2 } as const);

/**
 * The dispatcher's return value and complete()'s code: r >= 0: ok with r result bytes in io;
 * r <= ERROR_BASE: an error of (ERROR_BASE - r) bytes; or one of the markers.
 */
export const Result = Object.freeze({ PENDING: -1, ERROR_BASE: -2, SETTLED_LOCALLY: -3, COMPLETED_BY_JS: -4 } as const);

/** cancel() / cancelChild(): p >= 0: the task runs on P p; FINISHED: its result is on the way; REMOVED: dequeued, it never runs. */
export const Cancel = Object.freeze({ FINISHED: -1, REMOVED: -2 } as const);

/** Completion record in `in`: [seq f64][code i32][len u32][bytes]; onCompletions(BIG, seq, code, buffer) for one too big for `in`. */
export const Completion = Object.freeze({ SEQ: 0, CODE: 8, LEN: 12, HEADER: 16, BIG: -1 } as const);

/** Spawn-batch record in io: [fn u32][flags u32][node i32][len u32][seq f64][bytes]. */
export const Batch = Object.freeze({ FN: 0, FLAGS: 4, NODE: 8, LEN: 12, SEQ: 16, HEADER: 24 } as const);

/** Size of each endpoint's scratch buffers (io and in). */
export const Scratch = Object.freeze({ BYTES: 256 * 1024 } as const);

/** The code an error result of `len` bytes is reported with. */
export function errorResult(len: number): number {
  return Result.ERROR_BASE - len;
}

/** Everything above, in the shape of binding.wire. */
export const Wire = Object.freeze({ flags: Flags, codes: Codes, result: Result, cancel: Cancel, completion: Completion, batch: Batch, scratch: Scratch });
export type WireConstants = { readonly [G in keyof typeof Wire]: { readonly [K in keyof (typeof Wire)[G]]: number } };
