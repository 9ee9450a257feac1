// One task module for hwsq, piscina and tinypool (bench/pools.mjs, `hwsq bench pools`): every
// task takes one argument, which is how the pools call a named export (pool.run(arg, { name })).
import { currentTask, spawn } from 'hwsq';

export function noop(x) {
  return x;
}

// Waits for its own abort signal (bench/timing-goals.mjs: how soon an abort frees the P).
export function waitForAbort(timeoutMs) {
  const { signal } = currentTask();
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve('timeout'), timeoutMs);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve('aborted');
    });
  });
}

export function fibSync(n) {
  return n < 2 ? n : fibSync(n - 1) + fibSync(n - 2);
}

// Parallel fib with nested spawns (hwsq only): below `cutoff` it recurses sequentially.
export async function pfib([n, cutoff]) {
  if (n <= cutoff) return fibSync(n);
  const [a, b] = await Promise.all([spawn('pfib', [[n - 1, cutoff]]), spawn('pfib', [[n - 2, cutoff]])]);
  return a + b;
}
