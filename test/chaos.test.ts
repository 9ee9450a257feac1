// The chaos soak (issue 11, "nothing crashes, hangs or is lost"): random interleavings of spawn,
// spawnMany, nested spawns, aborts, worker crashes, close() and destroy() over both runtimes,
// with exactly-once accounting through SharedArrayBuffers (test/chaos/). Seeded and
// reproducible: the seed is printed, HWSQ_CHAOS_SEED replays it, HWSQ_CHAOS_SECONDS sets the
// length (default 70: about 80 s in all), HWSQ_CHAOS_ROUND=<r> runs just round r of the seed.
//
// The rounds run in child processes, one per batch of rounds, so that a crash (SIGSEGV,
// SIGABRT) or a hang is a failed test that names the seed and round and shows the round's
// operation log (written through to a pipe as it happens), never a dead or stuck vitest. A child
// reports a round stuck on a promise itself (its pending operations and the runtimes' stats);
// one whose thread is blocked is killed by the watchdog here, which reports its threads' states.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { buildSync } from 'esbuild';
import { beforeAll, expect, it } from 'vitest';
import { ensureDist, root } from './helpers';

const SECONDS = Number(process.env.HWSQ_CHAOS_SECONDS ?? 70);
const SEED = process.env.HWSQ_CHAOS_SEED ? Number(process.env.HWSQ_CHAOS_SEED) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
const ONE_ROUND = process.env.HWSQ_CHAOS_ROUND;
/** Rounds per child process: about this long each. */
const BATCH_MS = 15_000;
/** A child reports a round stuck on a promise after this... */
const ROUND_WATCHDOG_MS = 60_000;
/** ...and is killed when it has reported nothing for this long (its thread is blocked). */
const KILL_MS = ROUND_WATCHDOG_MS + 30_000;
const LOG_DIR = path.join(root, 'test-artifacts', 'chaos');

let bundle = '';
beforeAll(() => {
  ensureDist();  // the Runtime's workers run dist/worker.js, the task module imports 'hwsq' (dist/)
  bundle = path.join(root, 'build-test', `chaos-soak-${process.pid}.cjs`);
  buildSync({ entryPoints: [path.join(root, 'test', 'chaos', 'soak.ts')], bundle: true, platform: 'node', format: 'cjs', target: 'node20', outfile: bundle, logLevel: 'error' });
  return () => fs.rmSync(bundle, { force: true });
}, 120_000);

interface Batch {
  rounds: number;
  /** Why it failed (undefined: it did not), with the child's own report. */
  failure?: string;
  report?: Record<string, unknown>;
  /** The operation log of the round that failed. */
  log: string[];
  round: number;
}

/** /proc/<pid>/task/*: each thread's name, state and wait channel (where a blocked thread sleeps). */
function threadStates(pid: number): { tid: string; comm: string; state: string; wchan: string }[] {
  const out: { tid: string; comm: string; state: string; wchan: string }[] = [];
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      const read = (f: string) => {
        try {
          return fs.readFileSync(`/proc/${pid}/task/${tid}/${f}`, 'utf8').trim();
        } catch {
          return '?';
        }
      };
      out.push({ tid, comm: read('comm'), state: read('stat').replace(/^.*\) /, '').split(' ')[0]!, wchan: read('wchan') });
    }
  } catch {}
  return out;
}

/** Every thread's native stack, when gdb is installed (best effort: it may not be allowed to attach). */
function nativeStacks(pid: number): string {
  const r = spawnSync('gdb', ['-p', String(pid), '-batch', '-nx', '-ex', 'thread apply all bt 30'], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) return `(no native stacks: ${r.error.message})`;
  return r.stdout.split('\n').filter((l) => /^(Thread|#)/.test(l)).join('\n') || `(gdb gave no stacks: ${r.stderr.trim().slice(0, 500)})`;
}

function runBatch(firstRound: number, sliceMs: number, maxRounds: number): Promise<Batch> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--expose-gc', bundle], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      env: {
        ...process.env,
        HWSQ_CHAOS_SEED: String(SEED),
        HWSQ_CHAOS_FIRST_ROUND: String(firstRound),
        HWSQ_CHAOS_SLICE_MS: String(sliceMs),
        HWSQ_CHAOS_ROUNDS: String(maxRounds),
        HWSQ_CHAOS_ROOT: root,
        HWSQ_CHAOS_ROUND_WATCHDOG_MS: String(ROUND_WATCHDOG_MS),
      },
    });
    const batch: Batch = { rounds: 0, log: [], round: firstRound };
    let stderr = '';
    let lastProgress = Date.now();
    let killedFor: string | undefined;
    child.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-20_000);
    });
    // The operation log of the round in progress (each round starts with '# round').
    readline.createInterface({ input: child.stdio[3] as NodeJS.ReadableStream }).on('line', (line) => {
      if (line.includes('# round ')) batch.log = [];
      if (batch.log.length < 50_000) batch.log.push(line);
    });
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      lastProgress = Date.now();
      if (msg.type === 'round') {
        batch.rounds++;
        batch.round = (msg.round as number) + 1;
      } else if (msg.type === 'fail' || msg.type === 'hang') {
        batch.report = msg;
        batch.round = msg.round as number;
      }
    });
    const timer = setInterval(() => {
      if (Date.now() - lastProgress < KILL_MS) return;
      clearInterval(timer);
      const states = threadStates(child.pid!);
      // One line that survives a CI summary: how many threads wait where.
      const byWait = new Map<string, number>();
      for (const t of states) byWait.set(`${t.state} ${t.wchan}`, (byWait.get(`${t.state} ${t.wchan}`) ?? 0) + 1);
      const digest = [...byWait].map(([k, n]) => `${k} x${n}`).join(', ');
      const lines = states.map((t) => `${t.tid} ${t.comm} ${t.state} ${t.wchan}`);
      killedFor = `round ${batch.round}: no progress for ${KILL_MS / 1000} s (its thread is blocked); threads by state and wait channel: ${digest}; threads:\n  ${lines.join('\n  ')}\n${nativeStacks(child.pid!)}`;
      child.kill('SIGKILL');
    }, 1000);
    child.on('close', (code, signal) => {
      clearInterval(timer);
      if (killedFor) batch.failure = `hang: ${killedFor}`;
      else if (batch.report?.type === 'hang') batch.failure = `hang: round ${batch.round} stuck for ${ROUND_WATCHDOG_MS / 1000} s`;
      else if (batch.report?.type === 'fail') batch.failure = `round ${batch.round} failed its checks`;
      else if (code !== 0 || signal) batch.failure = `the soak process died in round ${batch.round} (exit code ${code}, signal ${signal})`;
      if (batch.failure && stderr) batch.failure += `\nstderr:\n${stderr}`;
      resolve(batch);
    });
  });
}

function failureReport(b: Batch): string {
  fs.mkdirSync(LOG_DIR, { recursive: true });
  const file = path.join(LOG_DIR, `seed-${SEED}-round-${b.round}.log`);
  fs.writeFileSync(file, `${b.log.join('\n')}\n`);
  const tail = b.log.length > 300 ? ['...', ...b.log.slice(-300)] : b.log;
  return [
    `chaos soak: ${b.failure}`,
    `replay: HWSQ_CHAOS_SEED=${SEED} HWSQ_CHAOS_ROUND=${b.round} npx vitest run test/chaos.test.ts`,
    b.report ? `report: ${JSON.stringify(b.report)}` : 'no report from the child',
    `operation log of round ${b.round} (${b.log.length} lines, all in ${path.relative(root, file)}):`,
    ...tail,
  ].join('\n');
}

it(
  'chaos soak: random operations on both runtimes, exactly-once accounting',
  async () => {
    console.log(`chaos soak: HWSQ_CHAOS_SEED=${SEED} HWSQ_CHAOS_SECONDS=${SECONDS}${ONE_ROUND !== undefined ? ` HWSQ_CHAOS_ROUND=${ONE_ROUND}` : ''}`);
    const end = Date.now() + SECONDS * 1000;
    let round = ONE_ROUND !== undefined ? Number(ONE_ROUND) : 0;
    let rounds = 0;
    do {
      const b = await runBatch(round, ONE_ROUND !== undefined ? 0 : Math.min(BATCH_MS, end - Date.now()), ONE_ROUND !== undefined ? 1 : Infinity);
      rounds += b.rounds;
      if (b.failure) expect.fail(failureReport(b));
      round += b.rounds;
    } while (ONE_ROUND === undefined && Date.now() < end);
    console.log(`chaos soak: ${rounds} round${rounds === 1 ? '' : 's'} passed (seed ${SEED})`);
    expect(rounds).toBeGreaterThan(0);
  },
  SECONDS * 1000 + KILL_MS + 120_000,
);
