// The shared-memory stats file from JS and the CLI: real target processes (test/fixtures/shm/
// target.cjs) whose main thread is stuck in a busy loop while their runtimes' tasks run, read by
// `hwsq ps | stats --pid | top --pid | metrics serve --pid`; the document read by pid against the
// one the process itself serves; the off switches; and each refused file with its exit code.
// Every test publishes into a directory of its own (HWSQ_SHM_DIR). No timing assertions: waits
// are for counters (publishes, completed tasks) with a bound on attempts.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../lib/core/errors';
import { registerMetrics } from '../lib/metrics/prometheus';
import { schedulerJson, type SchedulerJson } from '../lib/metrics/scheduler-json';
import { createNativeRuntime, type NativeRuntime } from '../lib/native-runtime/native-runtime';
import { Runtime } from '../lib/runtime/runtime';
import { SHM_EXIT_CODES } from '../lib/shm/cli';
import { publisherStatus } from '../lib/shm/config';
import { listShmProcesses, pickRuntime, readShmProcess, shmSchedulerJson, type ShmRuntime } from '../lib/shm/reader';
import { ShmMetricsSource } from '../lib/shm/source';
import { ensureDist, expectCode, root } from './helpers';

ensureDist();
const cli = path.join(root, 'bin', 'hwsq.js');
const target = path.join(root, 'test', 'fixtures', 'shm', 'target.cjs');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const dirs: string[] = [];
const children: ChildProcess[] = [];
function shmDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'hwsq-shm-test-'));
  dirs.push(d);
  return path.join(d, 'stats');
}
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** Starts target.cjs; resolves once its work is queued (its file then lists its runtimes). */
async function startTarget(dir: string, kind: 'native' | 'js' | 'both' | 'none', env: NodeJS.ProcessEnv = {}, args: string[] = []): Promise<{ pid: number; child: ChildProcess }> {
  const child = spawn(process.execPath, [target, kind, ...args], { cwd: root, env: { ...process.env, HWSQ_SHM_DIR: dir, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const pid = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve((JSON.parse(line) as { pid: number }).pid);
    });
    child.on('exit', (code) => reject(new Error(`target exited ${code}: ${out}${err}`)));
  });
  return { pid, child };
}

function hwsq(dir: string, args: string[], options: { uid?: number; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(process.execPath, [cli, ...args], {
    cwd: root,
    env: { ...process.env, HWSQ_SHM_DIR: dir, ...options.env },
    encoding: 'utf8',
    timeout: 60_000,
    ...(options.uid !== undefined ? { uid: options.uid, gid: options.uid } : {}),
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
const statsOf = (dir: string, pid: number | string, extra: string[] = []) => {
  const r = hwsq(dir, ['stats', '--pid', String(pid), '--json', ...extra]);
  if (r.status !== 0) throw new Error(`hwsq stats exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout) as SchedulerJson;
};

/** Reads until `cond` holds (a bound on attempts, not on time: a hang is a failure). */
async function until<T>(read: () => T, cond: (v: T) => boolean, attempts = 600): Promise<T> {
  for (let i = 0; i < attempts; i++) {
    const v = read();
    if (cond(v)) return v;
    await sleep(50);
  }
  throw new Error(`condition not reached: last ${JSON.stringify(read()).slice(0, 300)}`);
}

/** A process that exists and publishes nothing, and one that is gone. */
function bystander(): ChildProcess {
  const c = spawn('sleep', ['600'], { stdio: 'ignore' });
  children.push(c);
  return c;
}
function deadPid(): number {
  const r = spawnSync('sh', ['-c', 'echo $$']);
  return Number(String(r.stdout).trim());
}
/** Field 22 of /proc/<pid>/stat: what the file's header must hold for a live process. */
function startTimeOf(pid: number): bigint {
  const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return BigInt(text.slice(text.lastIndexOf(')') + 2).split(' ')[19]!);
}

describe('a process whose main thread is blocked: its runtimes are read by pid', () => {
  for (const kind of ['native', 'js'] as const) {
    it(`${kind}: hwsq ps lists it; hwsq stats --pid shows its tasks completing while its event loop never runs`, async () => {
      const dir = shmDir();
      const { pid } = await startTarget(dir, kind);
      const ps = hwsq(dir, ['ps', '--json']);
      expect(ps.status).toBe(0);
      const listing = JSON.parse(ps.stdout) as { directory: string; processes: { pid: number; command: string; runtimes: { kind: string; workers: number; nodes: number[] }[] }[] };
      expect(listing.directory).toBe(dir);
      const entry = listing.processes.find((p) => p.pid === pid)!;
      expect(entry.command).toContain('target.cjs');
      expect(entry.runtimes).toHaveLength(1);
      expect(entry.runtimes[0]).toMatchObject({ kind, workers: 2 });
      expect(entry.runtimes[0]!.nodes.length).toBeGreaterThanOrEqual(1);

      const first = statsOf(dir, pid);
      expect(first.pid).toBe(pid);
      expect(first.workers_total).toBe(2);
      // The target never returns to its event loop; the native publisher still brings news.
      const later = await until(() => statsOf(dir, pid), (d) => d.tasks.completed >= first.tasks.completed + 20 && d.uptime_seconds > first.uptime_seconds);
      expect(later.tasks.spawned).toBeGreaterThanOrEqual(later.tasks.completed);
      expect(later.workers.reduce((a, w) => a + w.completed, 0)).toBe(later.tasks.completed);

      const human = hwsq(dir, ['ps']);
      expect(human.stdout).toMatch(new RegExp(`^${pid}\\s+\\S+\\s+1: ${kind}, 2 workers, nodes? [\\d,]+\\s+.*target\\.cjs`, 'm'));
      const summary = hwsq(dir, ['stats', '--pid', String(pid)]);
      expect(summary.status).toBe(0);
      expect(summary.stdout).toContain(`pid ${pid}`);
      expect(summary.stdout).toMatch(/^WORKER\s+NODE/m);
    });
  }

  it('hwsq top --pid polls the file: the second frame has rates', async () => {
    const dir = shmDir();
    const { pid } = await startTarget(dir, 'native');
    const r = hwsq(dir, ['top', '--pid', String(pid), '--count', '2', '--interval', '600']);
    expect(r.status).toBe(0);
    const frames = r.stdout.split(/\n(?=hwsq top )/);
    expect(frames).toHaveLength(2);
    expect(frames[0]).toContain(`pid ${pid}`);
    expect(frames[0]).toMatch(/completed \(-\/s\)/);
    expect(frames[1]).toMatch(/completed \(\d+\/s\)/);
  });

  it('hwsq metrics serve --pid exports another process; it exits when that process is gone', async () => {
    const dir = shmDir();
    const { pid, child: targetChild } = await startTarget(dir, 'native');
    const exporter = spawn(process.execPath, [cli, 'metrics', 'serve', '--pid', 'auto', '--port', '0'], { cwd: root, env: { ...process.env, HWSQ_SHM_DIR: dir }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(exporter);
    let out = '';
    let err = '';
    exporter.stderr!.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((resolve) => exporter.on('exit', (code) => resolve(code)));
    const url = await new Promise<string>((resolve, reject) => {
      exporter.stdout!.on('data', (d) => {
        out += d;
        const m = /serving (http:\/\/127\.0\.0\.1:\d+)\/metrics /.exec(out);
        if (m) resolve(m[1]!);
      });
      void exited.then((code) => reject(new Error(`exporter exited ${code}: ${out}${err}`)));
    });
    expect(out).toContain(`of process ${pid} (runtime 1: native, 2 workers)`);
    const doc = (await (await fetch(`${url}/metrics/scheduler`)).json()) as SchedulerJson;
    expect(doc.pid).toBe(pid);
    expect(doc.workers_total).toBe(2);
    const text = await (await fetch(`${url}/metrics`)).text();
    const completed = [...text.matchAll(/^hwsq_tasks_completed_total\{[^}]*\} (\d+)/gm)].reduce((a, m) => a + Number(m[1]), 0);
    expect(completed).toBeGreaterThanOrEqual(doc.tasks.completed);
    expect(text).toMatch(/^hwsq_scheduling_latency_seconds_bucket\{le="\+Inf"\} \d+/m);
    // The target dies without a word (its file stays, stale): the exporter notices and exits.
    targetChild.kill('SIGKILL');
    expect(await exited).toBe(SHM_EXIT_CODES[ErrorCodes.SHM_STALE]);
    expect(err).toContain(ErrorCodes.SHM_STALE);
  });

  it('two runtimes of one process: --runtime picks one; ps lists both', async () => {
    const dir = shmDir();
    const { pid } = await startTarget(dir, 'both');
    const p = readShmProcess(pid, dir);
    expect(p.runtimes.map((r) => r.kind)).toEqual(['native', 'js']);
    const [native, js] = p.runtimes as [ShmRuntime, ShmRuntime];
    expect(native.stats.tasks).toBeUndefined();
    expect(js.stats.tasks).toBeDefined();
    // Each document is its runtime's: the target submitted 10^6 native tasks and 10^5 JS tasks.
    expect(statsOf(dir, pid, ['--runtime', String(native.id)]).tasks.submitted_external).toBe(1e6);
    expect(statsOf(dir, pid, ['--runtime', String(js.id)]).tasks.submitted_external).toBe(1e5);
    expect(statsOf(dir, pid).tasks.submitted_external).toBe(1e6);  // default: the first running one
    const missing = hwsq(dir, ['stats', '--pid', String(pid), '--runtime', '999']);
    expect(missing.status).toBe(SHM_EXIT_CODES[ErrorCodes.SHM_NOT_PUBLISHED]);
    expect(missing.stderr).toContain(`runtimes: ${p.runtimes.map((r) => r.id).join(', ')}`);
  });
});

describe('the document read by pid is the one the process serves', () => {
  let rt: NativeRuntime | undefined;
  let jsRt: Runtime | undefined;
  afterEach(async () => {
    await rt?.close();
    await jsRt?.close();
    rt = jsRt = undefined;
    // The publisher lets a closed runtime go at its next round; the next test's directory is
    // taken only once the file is closed.
    await until(() => publisherStatus().path, (p) => p === null);
    delete process.env.HWSQ_SHM_DIR;
    delete process.env.HWSQ_SHM_INTERVAL_MS;
  });

  /** After the source is idle and a publish that saw it so. */
  async function settled(dir: string, quiet: () => boolean): Promise<void> {
    await until(() => quiet(), (q) => q);
    const seen = readShmProcess(process.pid, dir).publishes;
    await until(() => readShmProcess(process.pid, dir).publishes, (n) => n >= seen + 2);
  }
  // The clock fields differ by when each was taken; the stats file does not carry the
  // memory-affinity counters (README, shared-memory stats), so a reader leaves them out.
  const withoutClock = (d: SchedulerJson) => ({ ...d, timestamp: undefined, uptime_seconds: undefined, memory_affinity: undefined });
  const withoutMemoryAffinity = (text: string) => text.split('\n\n').filter((metric) => !metric.includes('hwsq_memory_affinity_total')).join('\n\n');

  it('NativeRuntime: the same /metrics/scheduler document and the same Prometheus text', async () => {
    expect(publisherStatus().path).toBeNull();  // nothing else of this process publishes now
    const dir = shmDir();
    process.env.HWSQ_SHM_DIR = dir;
    process.env.HWSQ_SHM_INTERVAL_MS = '20';
    rt = createNativeRuntime({ virtualTopology: { nodes: 2, workersPerNode: 1 } });
    expect(publisherStatus().path).toBe(path.join(dir, String(process.pid)));
    await rt.spawnNative('spin', { ns: 20_000 }, { count: 500 });
    await rt.spawnNative('noop', {}, { count: 3000, inside: true, worker: 0 });
    await rt.idle();
    await settled(dir, () => rt!.stats().idle === rt!.size);
    const p = readShmProcess(process.pid, dir);
    const r = pickRuntime(p);
    expect(r.kind).toBe('native');
    const own = schedulerJson(rt);
    const read = shmSchedulerJson(p, r);
    expect(withoutClock(read)).toEqual(withoutClock(own));
    expect(read.tasks.completed).toBe(500 + 3000 + 1);  // the inside spawn's root task runs too
    // Prometheus: the exporter of another process says what this process's own would.
    const a = new Registry();
    const b = new Registry();
    registerMetrics(rt, { registry: a as never });
    registerMetrics(new ShmMetricsSource(process.pid, r.id, dir), { registry: b as never });
    expect(await b.metrics()).toBe(withoutMemoryAffinity(await a.metrics()));
  });

  it('Runtime (JS tasks): the same document, failed tasks included', async () => {
    const dir = shmDir();
    process.env.HWSQ_SHM_DIR = dir;
    process.env.HWSQ_SHM_INTERVAL_MS = '20';
    jsRt = await Runtime.start({ filename: path.join(root, 'test', 'fixtures', 'tasks', 'basic.mjs'), workers: 2 });
    expect(await Promise.all([1, 2, 3].map((x) => jsRt!.spawn('add', [x, 1])))).toEqual([2, 3, 4]);
    await expect(jsRt.spawn('fail', ['no', 'E_NO'])).rejects.toThrow('no');
    await settled(dir, () => jsRt!.stats().idle === 2);
    const p = readShmProcess(process.pid, dir);
    const r = pickRuntime(p);
    expect(r.kind).toBe('js');
    expect(r.stats.tasks).toMatchObject({ completed: 3, failed: 1 });
    const read = shmSchedulerJson(p, r);
    expect(withoutClock(read)).toEqual(withoutClock(schedulerJson(jsRt)));
    expect(read.tasks.failed).toBe(1);
  });

  it('the file is 0600 in a 0700 directory, goes when the runtime closes, and goes when the process exits without closing', async () => {
    const dir = shmDir();
    process.env.HWSQ_SHM_DIR = dir;
    rt = createNativeRuntime({ workers: 1 });
    const file = path.join(dir, String(process.pid));
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    await rt.close();
    await until(() => fs.existsSync(file), (e) => !e);
    rt = undefined;
    // A process that exits with process.exit() and never closes its runtime.
    const { pid, child } = await startTarget(dir, 'native', {}, ['--exit']);
    await new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.on('exit', resolve)));
    expect(fs.existsSync(path.join(dir, String(pid)))).toBe(false);
  });
});

describe('the publisher thread', () => {
  it("runs (named hwsq-shm) while a runtime publishes; joined when the process's last runtime closes or is destroyed", () => {
    // A clean child process: the count is of this process's threads only.
    const script = `
      const fs = require('node:fs');
      const { createNativeRuntime } = require(${JSON.stringify(path.join(root, 'dist', 'index.js'))});
      const shm = () => fs.readdirSync('/proc/self/task').filter((t) => { try { return fs.readFileSync('/proc/self/task/' + t + '/comm', 'utf8').trim() === 'hwsq-shm'; } catch { return false; } }).length;
      (async () => {
        const seen = [shm()];
        const a = createNativeRuntime({ workers: 1 });
        const b = createNativeRuntime({ workers: 1 });
        seen.push(shm());
        await a.close();
        seen.push(shm());  // b still publishes
        await b.close();
        seen.push(shm());  // the last one closed: joined before close() resolved
        const c = createNativeRuntime({ workers: 1 });
        seen.push(shm());
        c.destroy();
        seen.push(shm());
        console.log(JSON.stringify(seen));
      })();`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, HWSQ_SHM_DIR: shmDir(), HWSQ_SHM: '1' }, timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim())).toEqual([0, 1, 1, 0, 1, 0]);
  });
});

describe('turning it off', () => {
  afterEach(() => {
    delete process.env.HWSQ_SHM;
    delete process.env.HWSQ_SHM_DIR;
    delete process.env.HWSQ_SHM_INTERVAL_MS;
  });

  it('HWSQ_SHM=0 and the option shm: false publish nothing', async () => {
    const dir = shmDir();
    const { pid } = await startTarget(dir, 'both', { HWSQ_SHM: '0' });
    const r = hwsq(dir, ['stats', '--pid', String(pid)]);
    expect(r.status).toBe(SHM_EXIT_CODES[ErrorCodes.SHM_NOT_PUBLISHED]);
    expect(r.stderr).toContain('publishes no hwsq stats');
    process.env.HWSQ_SHM_DIR = dir;
    const rt = createNativeRuntime({ workers: 1, shm: false });
    expect(publisherStatus().path).toBeNull();
    expect(fs.existsSync(path.join(dir, String(process.pid)))).toBe(false);
    await rt.close();
  });

  it('bad HWSQ_SHM, HWSQ_SHM_DIR and HWSQ_SHM_INTERVAL_MS, and a bad option, are typed errors with nothing started', () => {
    for (const [name, value] of [
      ['HWSQ_SHM', 'maybe'],
      ['HWSQ_SHM_DIR', 'relative/dir'],
      ['HWSQ_SHM_INTERVAL_MS', '5'],
      ['HWSQ_SHM_INTERVAL_MS', '1e3'],
      ['HWSQ_SHM_INTERVAL_MS', '60001'],
    ] as const) {
      process.env[name] = value;
      expectCode(() => createNativeRuntime({ workers: 1 }), RangeError, ErrorCodes.INVALID_ENV);
      delete process.env[name];
    }
    expectCode(() => createNativeRuntime({ workers: 1, shm: 'no' as never }), TypeError, ErrorCodes.INVALID_ARG_TYPE);
    expect(publisherStatus().runtimes).toBe(0);
  });
});

describe('files that cannot be read: a message and an exit code each, never a crash', () => {
  const code = (c: keyof typeof ErrorCodes) => SHM_EXIT_CODES[ErrorCodes[c]];

  it('bad --pid values are usage errors (exit 1)', () => {
    const dir = shmDir();
    for (const bad of ['abc', '0', '-1', '1e3', '4194305', '']) {
      const r = hwsq(dir, ['stats', '--pid', bad]);
      expect(r.status, bad).toBe(1);
      expect(r.stderr).toMatch(/process id|argument/);
    }
    expect(hwsq(dir, ['top', '--count', '1']).status).toBe(1);  // neither --url nor --pid
    expect(hwsq(dir, ['metrics', 'serve', '--pid', '1', '--demo']).status).toBe(1);
  });

  it('no such process, a process that publishes nothing, --pid auto with none or several', async () => {
    const dir = shmDir();
    const dead = deadPid();
    let r = hwsq(dir, ['stats', '--pid', String(dead)]);
    expect(r.status).toBe(code('NO_SUCH_PROCESS'));
    expect(r.stderr).toContain(`no process ${dead}`);
    const quiet = bystander();
    r = hwsq(dir, ['stats', '--pid', String(quiet.pid)]);
    expect(r.status).toBe(code('SHM_NOT_PUBLISHED'));
    r = hwsq(dir, ['stats', '--pid', 'auto']);
    expect(r.status).toBe(code('SHM_NOT_PUBLISHED'));
    await startTarget(dir, 'native');
    const { pid } = await startTarget(dir, 'native');
    r = hwsq(dir, ['stats', '--pid', 'auto']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('2 processes publish');
    expect(r.stderr).toContain(String(pid));
  });

  it('a process killed without a word leaves a stale file: ignored by readers, removed by the next publisher', async () => {
    const dir = shmDir();
    const { pid, child } = await startTarget(dir, 'native');
    const exited = new Promise((resolve) => child.on('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    const file = path.join(dir, String(pid));
    expect(fs.existsSync(file)).toBe(true);
    const r = hwsq(dir, ['stats', '--pid', String(pid)]);
    expect(r.status).toBe(code('SHM_STALE'));
    expect(r.stderr).toContain('has exited');
    const ps = JSON.parse(hwsq(dir, ['ps', '--json']).stdout) as { processes: unknown[]; skipped: { code: string }[] };
    expect(ps.processes).toEqual([]);
    expect(ps.skipped.map((s) => s.code)).toEqual([ErrorCodes.SHM_STALE]);
    expect(hwsq(dir, ['ps']).stderr).toBe('');  // stale files are not worth a line
    await startTarget(dir, 'native');
    expect(fs.existsSync(file)).toBe(false);
  });

  it('permission, foreign, corrupt and other-version files', async () => {
    const dir = shmDir();
    const { pid } = await startTarget(dir, 'native');
    const good = fs.readFileSync(path.join(dir, String(pid)));
    const other = bystander();
    const otherFile = path.join(dir, String(other.pid));
    // A copy of the target's file made the bystander's: header fields at the offsets of
    // docs/shm-layout.md (pid at 24, start time at 32, major at 12, pid namespace at 48).
    const forOther = (patch: (v: DataView, bytes: Buffer) => void = () => {}) => {
      const bytes = Buffer.from(good);
      const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      v.setBigUint64(24, BigInt(other.pid!), true);
      v.setBigUint64(32, startTimeOf(other.pid!), true);
      patch(v, bytes);
      fs.rmSync(otherFile, { force: true });
      fs.writeFileSync(otherFile, bytes, { mode: 0o600 });
    };
    const expectRead = (exit: number | undefined, text: string) => {
      const r = hwsq(dir, ['stats', '--pid', String(other.pid)]);
      expect(r.status, r.stderr).toBe(exit);
      expect(r.stderr).toContain(text);
      expect(r.stderr).not.toMatch(/at .*\.js:\d+/);  // a message, not a stack trace
    };
    forOther();
    expect(statsOf(dir, other.pid!).pid).toBe(other.pid);  // the copy is a good file of the bystander
    forOther((v) => (v.setUint16(12, 2, true), v.setUint16(14, 0, true)));
    expectRead(code('SHM_VERSION'), 'layout version 2.0');
    forOther((v) => v.setUint16(14, 7, true));
    expect(statsOf(dir, other.pid!).pid).toBe(other.pid);  // a later minor is read
    forOther((_, b) => b.write('NOTHWSQ!', 0, 'latin1'));
    expectRead(code('SHM_FOREIGN'), 'not an hwsq stats file');
    forOther((v) => v.setBigUint64(48, v.getBigUint64(48, true) + 1n, true));
    expectRead(code('SHM_FOREIGN'), 'another PID namespace');
    forOther((_, b) => b.fill(0xff, 256, 256 + 64));
    expectRead(code('SHM_CORRUPT'), ErrorCodes.SHM_CORRUPT);
    forOther();
    fs.chmodSync(otherFile, 0o644);
    expectRead(code('SHM_FOREIGN'), 'mode 644');
    fs.truncateSync(otherFile, 100);
    fs.chmodSync(otherFile, 0o600);
    expectRead(code('SHM_CORRUPT'), 'shorter than the header');
    // Another user: the 0700 directory and the 0600 file keep it out.
    if (process.getuid?.() === 0) {
      const r = hwsq(dir, ['stats', '--pid', String(pid)], { uid: 65534 });
      expect(r.status, r.stderr).toBe(code('SHM_PERMISSION'));
      expect(r.stderr).toContain('permission denied');
      const ps = hwsq(dir, ['ps'], { uid: 65534 });
      expect(ps.status).toBe(code('SHM_PERMISSION'));
    }
    // ps lists the target and says what it skipped.
    const ps = hwsq(dir, ['ps']);
    expect(ps.stdout).toMatch(new RegExp(`^${pid}\\s`, 'm'));
    expect(ps.stderr).toContain(`skipped ${otherFile}`);
  });
});

describe('listShmProcesses', () => {
  it('a directory that does not exist lists nothing', () => {
    expect(listShmProcesses(path.join(os.tmpdir(), 'hwsq-no-such-dir-' + process.pid))).toMatchObject({ processes: [], skipped: [] });
  });
});
