// The chaos soak's child process (test/chaos.test.ts bundles it with esbuild and runs it in
// batches). Each round starts 1..3 runtimes (Runtime and NativeRuntime), drives them with random
// operations from a seeded generator, ends them (close, destroy, both, at random points), then
// checks the accounting: every promise settled once, no task ran twice, every task that should
// have run ran once, the runtimes' counters balance, their threads are gone, nothing was
// rejected unhandled.
//
// Environment: HWSQ_CHAOS_SEED (required), HWSQ_CHAOS_FIRST_ROUND (default 0),
// HWSQ_CHAOS_SLICE_MS (run rounds until this much time passed; default one round),
// HWSQ_CHAOS_ROUNDS (at most this many rounds), HWSQ_CHAOS_ROOT (the repository; default: the
// working directory).
// Output: one JSON line per round on stdout ({ type: 'round' | 'fail' | 'hang' | 'done' });
// the operation log of the rounds, written through, on fd 3 when it is open.
import fs from 'node:fs';
import path from 'node:path';
import { Runtime, createNativeRuntime } from '../../lib/index';
import { type Actor, Round, roundSeed, threads } from './common';
import { JsActor } from './js-actor';
import { NativeActor } from './native-actor';

const env = process.env;
const root = env.HWSQ_CHAOS_ROOT ?? process.cwd();
const TASKS = path.join(root, 'test', 'fixtures', 'tasks', 'chaos.mjs');
const seed = Number(env.HWSQ_CHAOS_SEED) >>> 0;
const firstRound = Number(env.HWSQ_CHAOS_FIRST_ROUND ?? 0);
const sliceMs = Number(env.HWSQ_CHAOS_SLICE_MS ?? 0);
const maxRounds = Number(env.HWSQ_CHAOS_ROUNDS ?? Infinity);
/** A round normally takes a second or two; this one is stuck. */
const ROUND_WATCHDOG_MS = Number(env.HWSQ_CHAOS_ROUND_WATCHDOG_MS ?? 60_000);
/** Threads of finished runtimes are joined by then. */
const THREADS_SETTLE_MS = 10_000;

let logFd: number | undefined;
try {
  fs.fstatSync(3);
  logFd = 3;
} catch {}

function emit(o: object): void {
  fs.writeSync(1, `${JSON.stringify(o)}\n`);
}

// Anything unhandled is a failure of the round running (or of the soak between rounds).
const unhandled: string[] = [];
process.on('unhandledRejection', (reason) => unhandled.push(`unhandled rejection: ${String((reason as Error)?.stack ?? reason)}`));
process.on('uncaughtException', (err) => unhandled.push(`uncaught exception: ${String(err?.stack ?? err)}`));

/** Brings up the threads a process makes once (libuv's pool, the first Worker's), so they are part of the baseline. */
async function warmUp(): Promise<number> {
  await fs.promises.stat(root);
  const rt = await Runtime.start({ filename: TASKS, workers: 2 });
  const acct = new Int32Array(new SharedArrayBuffer(3 * 8 * 4));
  await rt.spawn('leaf', [acct, 1, 0]);
  await rt.close();
  const nrt = createNativeRuntime({ workers: 2 });
  await nrt.spawnNative('noop', undefined, { count: 10 });
  await nrt.idle();
  await nrt.close();
  return settleThreads(Infinity);
}

/**
 * Waits until the thread count is at most `limit` (or stops changing, for the baseline); returns
 * it. Collects garbage meanwhile: a NativeRuntime let go without close() is destroyed by its
 * finalizer.
 */
async function settleThreads(limit: number): Promise<number> {
  const end = Date.now() + THREADS_SETTLE_MS;
  let last = threads().count;
  for (;;) {
    (globalThis as { gc?: () => void }).gc?.();
    await new Promise((r) => setTimeout(r, 20));
    const now = threads().count;
    if (now <= limit || (limit === Infinity && now === last) || Date.now() > end) return now;
    last = now;
  }
}

async function runRound(r: number, baseline: number): Promise<void> {
  const s = roundSeed(seed, r);
  const round = new Round(r, s, logFd);
  round.log(`# round ${r} seed ${s} (soak seed ${seed})`);
  const rng = round.rng;
  const actors: Actor[] = [];
  const started = Date.now();
  const watchdog = setTimeout(() => {
    // Stuck (a promise that never settles, a close() that never resolves): what was pending,
    // the runtimes' state and counters, then out. A blocked thread never gets here: the
    // parent's watchdog kills the process and reports the operation log instead.
    emit({ type: 'hang', round: r, seed: s, afterMs: Date.now() - started, threads: threads(), actors: actors.map((a) => a.diagnose()), failures: round.failures, unhandled });
    process.exit(2);
  }, ROUND_WATCHDOG_MS);
  const opCount = rng.int(15, 90);
  const n = rng.int(1, 3);
  for (let i = 0; i < n; i++) {
    const name = `rt${i}`;
    actors.push(rng.chance(0.6) ? await JsActor.start(round, name, TASKS, opCount) : NativeActor.create(round, name, opCount));
  }
  for (let i = 0; i < opCount; i++) {
    await rng.pick(actors).step();
    await round.pause();
  }
  // Ended in a random order, some concurrently.
  const ending = actors.slice();
  const finishing: Promise<void>[] = [];
  while (ending.length) {
    const a = ending.splice(rng.int(0, ending.length - 1), 1)[0]!;
    const p = a.finish();
    if (rng.chance(0.5)) await p;
    else finishing.push(p);
  }
  await Promise.all(finishing);
  await Promise.all(actors.flatMap((a) => a.tracked().map((t) => t.done)));
  for (const a of actors) a.verify();
  const after = await settleThreads(baseline);
  if (after > baseline) round.fail(`${after} threads after every runtime stopped, ${baseline} before: ${JSON.stringify(threads().names)}`);
  clearTimeout(watchdog);
  // Rejections not handled by now are unhandled for good (Node reports them after microtasks).
  await new Promise((r) => setImmediate(r));
  for (const u of unhandled.splice(0)) round.fail(u);
  if (round.failures.length) {
    emit({ type: 'fail', round: r, seed: s, failures: round.failures, actors: actors.map((a) => a.diagnose()) });
    process.exit(1);
  }
  emit({ type: 'round', round: r, seed: s, ms: Date.now() - started, ops: opCount, runtimes: actors.map((a) => a.kind), taskIds: round.idsUsed });
}

async function main(): Promise<void> {
  const baseline = await warmUp();
  const t0 = Date.now();
  let r = firstRound;
  do {
    await runRound(r, baseline);
    r++;
  } while (Date.now() - t0 < sliceMs && r - firstRound < maxRounds);
  emit({ type: 'done', rounds: r - firstRound, baselineThreads: baseline });
}

main().catch((err: unknown) => {
  emit({ type: 'fail', round: -1, seed, failures: [`the soak itself threw: ${String((err as Error)?.stack ?? err)}`] });
  process.exit(1);
});
