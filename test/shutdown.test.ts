// Shutdown never hangs and never loses work: destroy() of a NativeRuntime or a Runtime in the
// middle of a burst far beyond a node queue's ring, of a big fan-out from inside a task, a Worker
// that owns such a runtime being terminated, process.exit() mid-burst, and workers that crash as
// they start, replaced again and again. Each scenario runs in
// a child process (test/fixtures/shutdown/scenario.cjs) under a generous watchdog: a hung
// destroy() blocks its whole thread, so only another process can notice it. The watchdog is a
// hang detector, not a timing assertion: it fails the test instead of hanging CI.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureDist, root } from './helpers';

const script = path.join(root, 'test', 'fixtures', 'shutdown', 'scenario.cjs');
const WATCHDOG_MS = 120_000;
// vitest's own timeout cannot fire while spawnSync blocks: let the watchdog speak first.
const TEST_TIMEOUT_MS = WATCHDOG_MS + 30_000;

// The scenarios and their workers load dist/.
beforeAll(ensureDist, 120_000);

interface Run<T> {
  result: T;
  stdout: string;
}

/** Runs a scenario; fails if it is still running after the watchdog (a hang) or exits non-zero. */
function scenario<T>(name: string): Run<T> {
  const r = spawnSync(process.execPath, [script, name], { encoding: 'utf8', timeout: WATCHDOG_MS, killSignal: 'SIGKILL' });
  expect(r.signal, `scenario ${name} hung (killed after ${WATCHDOG_MS / 1000} s); stderr: ${r.stderr}`).toBeNull();
  expect(r.status, `scenario ${name} failed; stderr: ${r.stderr}`).toBe(0);
  const lines = r.stdout.trim().split('\n');
  // Exit code 0 and no report: the event loop ran empty in the middle of an await (a promise
  // that nothing kept the process up for) and the code after it never ran.
  expect(lines[lines.length - 1], `scenario ${name} ended without its report; stderr: ${r.stderr}`).not.toBe('');
  return { result: JSON.parse(lines[lines.length - 1]!) as T, stdout: r.stdout };
}

interface Tally {
  fulfilled: number;
  aborted: number;
  other: number;
  otherMessages: string[];
}

describe('destroy() returns and accounts for every task', { timeout: TEST_TIMEOUT_MS }, () => {
  it('NativeRuntime: a node-affine burst past the node ring (spill list) is dropped, destroy() returns', () => {
    const { result: r } = scenario<{
      depthBefore: number;
      burst: string;
      burstMessage: string;
      holders: Tally;
      executed: number;
      dropped: number;
      submitted: number;
      queued: number;
    }>('native-burst');
    expect(r.depthBefore).toBeGreaterThan(4096); // the burst was past the ring when destroy() ran
    expect(r.executed + r.dropped).toBe(r.submitted); // each task ran or was dropped, once
    expect(r.dropped).toBeGreaterThan(0);
    expect(r.burst).toBe('AbortError'); // the spawn promise learns its tasks were dropped
    expect(r.burstMessage).toBe(`destroy() dropped ${r.dropped} of 100000 tasks before they ran`);
    expect(r.holders).toEqual({ fulfilled: 2, aborted: 0, other: 0, otherMessages: [] }); // running tasks finish
    expect(r.queued).toBe(0);
  });

  it('Runtime: 20k node-affine spawns then destroy(): every promise settles, ran or AbortError', () => {
    const { result: t } = scenario<Tally>('runtime-burst');
    expect(t.other, t.otherMessages.join('; ')).toBe(0);
    expect(t.fulfilled + t.aborted).toBe(20_000);
    expect(t.aborted).toBeGreaterThan(0);
  });

  it('NativeRuntime: destroy() during a 10M-task inside: true fan-out returns; the rest is refused or dropped', () => {
    const { result: r } = scenario<{ status: string; message: string; count: number; executed: number; dropped: number }>('native-fanout');
    expect(r.status).toBe('AbortError');
    // The root and the fan-out's tasks that ran; everything else of the 10M is reported dropped.
    const notRun = Number(/dropped (\d+) of/.exec(r.message)?.[1]);
    expect(notRun).toBeGreaterThan(0);
    expect(r.executed - 1 + notRun).toBe(r.count);
    expect(r.dropped).toBeLessThanOrEqual(notRun); // queued and dropped; the rest was never spawned
  });

  it('Runtime: destroy() after a task spawned 20k nested tasks returns', () => {
    const { result: r } = scenario<{ spawned: number; queuedBefore: number }>('runtime-fanout');
    expect(r.spawned).toBe(20_000);
    expect(r.queuedBefore).toBeGreaterThan(0);
  });
});

describe('owners going away mid-burst', { timeout: TEST_TIMEOUT_MS }, () => {
  it("a Worker owning a NativeRuntime mid-burst: terminate() settles", () => {
    const { result: r } = scenario<{ terminated: boolean; exitCode: number }>('worker-native');
    expect(r.terminated).toBe(true);
    expect(r.exitCode).toBe(1); // worker_threads' code for a terminated worker
  });

  it('a Worker owning a Runtime mid-burst: terminate() settles', () => {
    const { result: r } = scenario<{ terminated: boolean; exitCode: number }>('worker-runtime');
    expect(r.terminated).toBe(true);
    expect(r.exitCode).toBe(1);
  });

  it('a Worker owning a NativeRuntime calls process.exit() mid-burst: it exits', () => {
    const { result: r } = scenario<{ exited: boolean; exitCode: number }>('worker-exit-native');
    expect(r).toEqual({ exited: true, exitCode: 7 });
  });

  it('a Worker owning a Runtime calls process.exit() mid-burst: it exits', () => {
    const { result: r } = scenario<{ exited: boolean; exitCode: number }>('worker-exit-runtime');
    expect(r).toEqual({ exited: true, exitCode: 7 });
  });

  it('a child process calls process.exit() while it and its Worker own busy NativeRuntimes: it exits', () => {
    const { stdout } = scenario<{ exiting: boolean }>('exit-native');
    expect(stdout).toContain('"exiting":true');
  });

  it('a child process calls process.exit() while it and its Worker own busy Runtimes: it exits', () => {
    const { stdout } = scenario<{ exiting: boolean }>('exit-runtime');
    expect(stdout).toContain('"exiting":true');
  });

  it('workers crashing right after they report ready, restarted while the main thread stalls: never two per P, none left behind, the process exits', () => {
    const { result: r } = scenario<{ workers: number; base: number; after: number; rounds: { crashMs: number; loads: number; maxLive: number; exits: number }[] }>('restart-storm');
    for (const round of r.rounds) {
      expect(round.loads, JSON.stringify(round)).toBeGreaterThan(r.workers + 2);  // the storm happened: replacements loaded and crashed
      expect(round.maxLive, JSON.stringify(round)).toBeLessThanOrEqual(r.workers);
    }
    expect(r.after, 'worker threads left after every runtime was destroyed').toBe(r.base);
  });

  it('close() and destroy() while the worker is busy outside JS after its last task: the code after the await runs', () => {
    expect(scenario<{ after: string }>('close-slow-worker').result.after).toBe('close');
    expect(scenario<{ after: string }>('destroy-slow-worker').result.after).toBe('destroy');
  });

  it("an exit report naming another thread leaves the P's live worker alone: it runs the next task, close() returns", () => {
    const { result: r } = scenario<{ sum: unknown; badThreadId: string; restarts: number }>('stale-exit-report');
    expect(r).toEqual({ sum: 5, badThreadId: 'TypeError ERR_HWSQ_INVALID_ARG_TYPE', restarts: 0 });
  });
});
