// `hwsq top`: the frame computed from two real /metrics/scheduler documents, the plain-lines
// mode when stdout is not a terminal, and a real terminal session in tmux driven as a user
// would: start a server, run `hwsq top`, read the screen, press q (then Ctrl-C), check that it
// exited and gave the terminal back as it found it.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createNativeRuntime, type NativeRuntime } from '../lib/native-runtime/native-runtime';
import type { SchedulerJson } from '../lib/metrics/scheduler-json';
import { serveMetrics, type MetricsServer } from '../lib/metrics/server';
import { renderTop, schedulerUrl } from '../lib/cli/top';
import type { SchedulerJsonNode, SchedulerJsonWorker } from '../lib/metrics/scheduler-json';
import { describeWith } from './requirements';

const root = path.resolve(__dirname, '..');
const cli = path.join(root, 'bin', 'hwsq.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let rt: NativeRuntime | undefined;
let server: MetricsServer | undefined;
afterEach(async () => {
  await server?.close();
  await rt?.close();
  server = undefined;
  rt = undefined;
});

async function served(): Promise<{ rt: NativeRuntime; server: MetricsServer }> {
  // Every task timed: busy time (UTIL%) is scaled from the timed tasks, and 50 spins sampled 1 in
  // 128 (the default) are most often none at all.
  rt = createNativeRuntime({ virtualTopology: { nodes: 2, workersPerNode: 2 }, timingSampleShift: 0 });
  server = await serveMetrics(rt, { port: 0 });
  return { rt, server };
}

const getDoc = async (url: string) => (await (await fetch(schedulerUrl(url))).json()) as SchedulerJson;

// Two polls written by hand, 2 s apart, with the frame's figures worked out by hand below.
function worker(worker: number, node: number, w: Partial<SchedulerJsonWorker>): SchedulerJsonWorker {
  return {
    worker, numa_node: node, cpus: [], cpu_list: '', spawned: 0, completed: 0, steals_same_node: 0, steals_remote_node: 0,
    stolen_tasks_same_node: 0, stolen_tasks_remote_node: 0, failed_steals: 0, overflows: 0, parks: 0, wakeups: 0,
    busy_seconds: 0, spinning_seconds: 0, hogs: 0, queue_depth: 0, parked: false, active: true, running_for_ms: 0, ...w,
  };
}
function node(n: number, x: Partial<SchedulerJsonNode>): SchedulerJsonNode {
  return { numa_node: n, workers: 1, queue_depth: 0, queue_capacity: 4096, local_queue_depth: 0, completed: 0, steals_same_node: 0, steals_remote_node: 0, prefetches: 0, busy_seconds: 0, ...x };
}
const nodeSums = (w: SchedulerJsonWorker) => ({ completed: w.completed, busy_seconds: w.busy_seconds, steals_same_node: w.steals_same_node, steals_remote_node: w.steals_remote_node });
function poll(uptime: number, w0: Partial<SchedulerJsonWorker>, w1: Partial<SchedulerJsonWorker>, totals: { completed: number; steals: number; numa: number; failed: number }): SchedulerJson {
  const lat = { count: 10, mean: 0.02, p50: 0.0125, p90: 0.05, p99: 0.25, max: 1.5 };
  return {
    pod_id: 'pod-a', pod_uid: null, namespace: 'prod', node_name: null, cpu_limit: null,
    runtime_version: '9.9.9', pid: 1, timestamp: '2025-01-02T03:04:05.678Z', uptime_seconds: uptime, stats_enabled: true, workers_total: 2,
    tasks: { spawned: totals.completed + 5, submitted_external: 0, completed: totals.completed, failed: 1, dropped: 0 },
    scheduling_latency_ms: lat, run_time_ms: { ...lat, p50: 2, p99: 3.25 },
    work_steal_count: totals.steals, numa_steal_count: totals.numa, failed_steal_count: totals.failed,
    local_queue_depth: 7, node_queue_depth: 3, global_queue_depth: 2, hogs: 1, longest_hog_ms: 12.34, stuck_workers: 0,
    workers_spinning: 1, workers_parked: 1, parallelism: 2, workers_active: 2, parallelism_source: 'cgroup2', parallelism_changes: 3,
    nodes: [
      node(0, { ...nodeSums(worker(0, 0, w0)), queue_depth: 3, local_queue_depth: 7 }),
      node(1, nodeSums(worker(1, 1, w1))),
    ],
    workers: [worker(0, 0, w0), worker(1, 1, w1)],
  };
}

describe('hwsq top: frames', () => {
  it('computes rates, utilization and tables from two polls (hand-computed figures)', () => {
    // 2 s apart. Completed 1000 -> 5000 (+4000: 2000/s); steals 30 -> 70 of which remote 10 -> 20:
    // same-node (30-10=20 -> 70-20=50: +30: 15.0/s), remote +10: 5.0/s; failed (P0 4->10, P1 0->2):
    // +8: 4.0/s. P0 busy 0.5 -> 1.7 s: 1.2 s in 2 s = 60.0%; P1 busy 1 -> 1.1: 5.0%.
    const before = poll(100, { completed: 600, busy_seconds: 0.5, failed_steals: 4, steals_same_node: 2 }, { completed: 400, busy_seconds: 1, steals_remote_node: 1 }, { completed: 1000, steals: 30, numa: 10, failed: 4 });
    const after = poll(102, { completed: 3600, busy_seconds: 1.7, failed_steals: 10, steals_same_node: 12, queue_depth: 7, cpu_list: '0-1' }, { completed: 1400, busy_seconds: 1.1, steals_remote_node: 5, parked: true }, { completed: 5000, steals: 70, numa: 20, failed: 12 });
    const lines = renderTop(after, before, 'here');
    expect(lines.slice(0, 6)).toEqual([
      'hwsq top  prod/pod-a  hwsq 9.9.9  here  03:04:05',
      'tasks: 5000 completed (2000/s)  1 failed  5005 spawned  workers 2 (1 parked, 1 spinning)',
      'queues: local 7  node 3  global 2',
      'parallelism: 2 (cgroup2, 3 changes)  workers active 2 of 2',
      'sched latency ms: p50 0.013  p99 0.250  max 1.500   run time ms: p50 2.000  p99 3.250',
      'steals/s: same-node 15.0  remote-node 5.0  failed 4.0   hogs 1 (longest 12.3 ms, stuck now 0)',
    ]);
    const cells = (header: string) => {
      const at = lines.findIndex((l) => l.startsWith(header));
      const rows: string[][] = [];
      for (let i = at + 1; i < lines.length && lines[i] !== ''; i++) rows.push(lines[i]!.trim().split(/\s+/));
      return rows;
    };
    // NODE WORKERS UTIL% NODE_Q LOCAL_Q STEAL/S_SAME STEAL/S_REMOTE DONE/S
    expect(cells('NODE')).toEqual([
      ['0', '1', '60.0', '3', '7', '5.0', '0.0', '1500'],
      ['1', '1', '5.0', '0', '0', '0.0', '2.0', '500'],
    ]);
    // WORKER NODE CPUS UTIL% LOCAL_Q STEAL/S_SAME STEAL/S_REMOTE FAILED/S DONE/S HOGS STATE
    expect(cells('WORKER')).toEqual([
      ['0', '0', '0-1', '60.0', '7', '5.0', '0.0', '3.0', '1500', '0', 'active'],
      ['1', '1', '-', '5.0', '0', '0.0', '2.0', '0.0', '500', '0', 'parked'],
    ]);
    // A worker parked by the parallelism limit (it is never in the idle list then).
    const limited = { ...after, parallelism: 1, workers_active: 1, workers: [after.workers[0]!, { ...after.workers[1]!, parked: false, active: false }] };
    expect(renderTop(limited)[3]).toBe('parallelism: 1 (cgroup2, 3 changes)  workers active 1 of 2');
    expect(renderTop(limited).at(-1)?.trim().split(/\s+/).at(-1)).toBe('limited');
    // Without a previous poll the rates are unknown, not zero.
    expect(renderTop(after)[1]).toBe('tasks: 5000 completed (-/s)  1 failed  5005 spawned  workers 2 (1 parked, 1 spinning)');
  });

  it('a live server: the frame shows the work it was given, per node and per worker', async () => {
    const { rt, server } = await served();
    const before = await getDoc(server.url);
    await Promise.all([rt.spawnNative('noop', {}, { count: 20_000, inside: true, worker: 0 }), rt.spawnNative('spin', { ns: 2e6 }, { count: 50, node: 1 })]);
    await rt.idle();
    const after = await getDoc(server.url);
    const lines = renderTop(after, before, 'here');
    const text = lines.join('\n');

    expect(lines[0]).toContain(`hwsq top  ${after.pod_id}  hwsq ${after.runtime_version}  here`);
    // The workload's own count: one root and its 20000 children, and 50 spins.
    const done = /tasks: (\d+) completed \((\d+)\/s\)/.exec(text)!;
    expect(Number(done[1])).toBe(before.tasks.completed + 20_001 + 50);
    expect(Number(done[2])).toBeGreaterThan(0);

    // Node table: 2 rows; worker table: 4 rows (virtual 2 x 2).
    const nodeHeader = lines.findIndex((l) => l.startsWith('NODE'));
    const workerHeader = lines.findIndex((l) => l.startsWith('WORKER'));
    expect(lines.slice(nodeHeader + 1, nodeHeader + 3).map((l) => l.split(/\s+/)[0])).toEqual(['0', '1']);
    const rows = lines.slice(workerHeader + 1).map((l) => l.trim().split(/\s+/));
    expect(rows.map((r) => r[0])).toEqual(['0', '1', '2', '3']);
    expect(rows.map((r) => r[1])).toEqual(['0', '0', '1', '1']);
    // 50 spins of 2 ms on node 1 in well under a second of polling: node 1 was busy.
    const node1 = lines[nodeHeader + 2]!.split(/\s+/);
    expect(Number(node1[2])).toBeGreaterThan(0);
  });

  it('prints plain lines without escape codes when stdout is not a terminal, and fails on an unreachable server', async () => {
    const { rt, server } = await served();
    const load = rt.spawnNative('spin', { ns: 100_000 }, { count: 2000 });
    const child = spawn(process.execPath, [cli, 'top', '--url', server.url, '--count', '3', '--interval', '200'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    await load;
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).not.toContain('\x1b');
    expect(out.match(/^hwsq top /gm)).toHaveLength(3);
    expect(out.match(/^WORKER +NODE +CPUS +UTIL%/gm)).toHaveLength(3);
    expect(out).not.toContain('q: quit');

    const port = server.port;
    await server.close();
    const r = spawnSync(process.execPath, [cli, 'top', '--url', `http://127.0.0.1:${port}`, '--count', '1'], { cwd: root, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^hwsq top: /);
  });
});

// ------------------------------------------------------------------ a real terminal

describeWith('tmux')('hwsq top in a terminal (tmux)', () => {
  const socket = `hwsq-top-test-${process.pid}`;
  const tmux = (...args: string[]) => execFileSync('tmux', ['-L', socket, '-f', '/dev/null', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TERM: 'xterm-256color' } });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hwsq-top-'));
  const serverProcesses: ChildProcess[] = [];

  afterAll(() => {
    try {
      tmux('kill-server');
    } catch {
      /* no server left */
    }
    for (const p of serverProcesses) p.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function startServer(): Promise<string> {
    const serverProcess = spawn(process.execPath, [cli, 'metrics', 'serve', '--port', '0', '--virtual', '2x2', '--demo'], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    serverProcesses.push(serverProcess);
    return new Promise<string>((resolve, reject) => {
      let out = '';
      serverProcess.stdout.on('data', (d) => {
        out += d;
        const m = /serving (http:\/\/[^ ]+)\/metrics /.exec(out);
        if (m) resolve(m[1]!);
      });
      serverProcess.on('exit', (code) => reject(new Error(`metrics serve exited with ${code}: ${out}`)));
    });
  }

  const capture = () => tmux('capture-pane', '-p', '-t', 'top');
  const flags = () => tmux('display-message', '-p', '-t', 'top', '#{alternate_on} #{cursor_flag}').trim();

  async function until(what: string, check: (screen: string) => boolean, ms = 15_000): Promise<string> {
    const deadline = Date.now() + ms;
    let screen = '';
    while (Date.now() < deadline) {
      screen = capture();
      if (check(screen)) return screen;
      await sleep(100);
    }
    throw new Error(`timed out waiting for ${what}; the screen:\n${screen}`);
  }

  /** Runs `hwsq top` in a fresh tmux window; the wrapper reports its exit code and whether stty changed. */
  function runTopInPane(url: string, name: string): void {
    const script = path.join(dir, `${name}.sh`);
    fs.writeFileSync(
      script,
      [
        'before=$(stty -g)',
        `'${process.execPath}' '${cli}' top --url '${url}' --interval 250`,
        'code=$?',
        'if [ "$before" = "$(stty -g)" ]; then echo "STTY RESTORED"; else echo "STTY CHANGED"; fi',
        'echo "EXITED $code"',
        'sleep 600',
      ].join('\n') + '\n',
    );
    try {
      tmux('kill-session', '-t', 'top');
    } catch {
      /* first run */
    }
    tmux('new-session', '-d', '-s', 'top', '-x', '160', '-y', '40', `sh ${script}`);
  }

  it('redraws in place, shows nodes, workers, steals/s and latency, quits on q and restores the terminal', async () => {
    const url = await startServer();
    runTopInPane(url, 'q');
    // The second poll brings the rates: a number where the first frame had '-'.
    const screen = await until('a frame with rates', (s) => /steals\/s: same-node \d+\.\d  remote-node \d+\.\d/.test(s) && /^WORKER/m.test(s));
    expect(flags()).toBe('1 0'); // alternate screen on, cursor hidden
    const lines = screen.split('\n');
    expect(lines[0]).toMatch(/^hwsq top  \S+  hwsq \d+\.\d+\.\d+  127\.0\.0\.1:\d+  \d\d:\d\d:\d\d/);
    expect(screen).toMatch(/sched latency ms: p50 \d+\.\d{3}  p99 \d+\.\d{3}/);
    expect(screen).toMatch(/hogs \d+ \(longest/);
    const nodeHeader = lines.findIndex((l) => l.startsWith('NODE'));
    expect(lines.slice(nodeHeader + 1, nodeHeader + 3).map((l) => l.split(/\s+/)[0])).toEqual(['0', '1']);
    const workerHeader = lines.findIndex((l) => l.startsWith('WORKER'));
    const workerRows = lines.slice(workerHeader + 1, workerHeader + 5).map((l) => l.trim().split(/\s+/));
    expect(workerRows.map((r) => [r[0], r[1]])).toEqual([
      ['0', '0'],
      ['1', '0'],
      ['2', '1'],
      ['3', '1'],
    ]);
    for (const r of workerRows) expect(r[3]).toMatch(/^\d+\.\d$/); // UTIL%
    expect(screen).toContain('q: quit');
    // Redrawn in place: one header however many polls went by.
    await sleep(600);
    expect(capture().match(/^hwsq top /gm)).toHaveLength(1);

    tmux('send-keys', '-t', 'top', 'q');
    const after = await until('exit after q', (s) => s.includes('EXITED'));
    expect(after).toContain('EXITED 0');
    expect(after).toContain('STTY RESTORED');
    expect(after).not.toContain('hwsq top');
    expect(flags()).toBe('0 1'); // main screen back, cursor visible
  });

  it('quits on Ctrl-C the same way', async () => {
    const url = await startServer();
    runTopInPane(url, 'ctrl-c');
    await until('a first frame', (s) => /^WORKER/m.test(s));
    tmux('send-keys', '-t', 'top', 'C-c');
    const after = await until('exit after Ctrl-C', (s) => s.includes('EXITED'));
    expect(after).toContain('EXITED 0');
    expect(after).toContain('STTY RESTORED');
    expect(flags()).toBe('0 1');
  });
});
