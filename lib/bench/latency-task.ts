// The task module of `hwsq bench latency` for JS tasks (built to dist/bench-latency-task.js and
// loaded by Runtime workers): `stamp` returns the CLOCK_MONOTONIC time (process.hrtime, the same
// clock in every thread of the process) at its first instruction, as a decimal string (bigint
// does not need to survive the result codec).
export function stamp(): string {
  return process.hrtime.bigint().toString();
}

export function noop(): number {
  return 0;
}
