// `hwsq top`: the frame computed from two real /metrics/scheduler documents, the plain-lines
// mode when stdout is not a terminal, and a real terminal session in tmux driven as a user
// would: start a server, run `hwsq top`, read the screen, press q (then Ctrl-C), check that it
// exited and gave the terminal back as it found it.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createNativeRuntime, type NativeRuntime } from '../lib/native-runtime';
import type { SchedulerJson } from '../lib/metrics/scheduler-json';
import { serveMetrics, type MetricsServer } from '../lib/metrics/server';
import { renderTop, schedulerUrl } from '../lib/top';
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
  rt = createNativeRuntime({ virtualTopology: { nodes: 2, workersPerNode: 2 } });
  server = await serveMetrics(rt, { port: 0 });
  return { rt, server };
}

const getDoc = async (url: string) => (await (await fetch(schedulerUrl(url))).json()) as SchedulerJson;

describe('hwsq top: frames', () => {
  it('shows per node and per worker utilization, queues, steals/s and latency from two polls', async () => {
    const { rt, server } = await served();
    const before = await getDoc(server.url);
    await Promise.all([rt.spawnNative('noop', {}, { count: 20_000, inside: true, worker: 0 }), rt.spawnNative('spin', { ns: 2e6 }, { count: 50, node: 1 })]);
    await rt.idle();
    const after = await getDoc(server.url);
    const lines = renderTop(after, before, 'here');
    const dt = after.uptime_seconds - before.uptime_seconds;
    const text = lines.join('\n');

    expect(lines[0]).toContain(`hwsq top  ${after.pod_id}  hwsq ${after.runtime_version}  here`);
    const done = /tasks: (\d+) completed \((\d+)\/s\)/.exec(text)!;
    expect(Number(done[1])).toBe(after.tasks.completed);
    expect(Number(done[2])).toBe(Math.round((after.tasks.completed - before.tasks.completed) / dt));
    const remote = /remote-node ([\d.]+)/.exec(text)!;
    expect(Number(remote[1])).toBeCloseTo((after.numa_steal_count - before.numa_steal_count) / dt, 0);
    expect(text).toContain(`p50 ${after.scheduling_latency_ms.p50.toFixed(3)}  p99 ${after.scheduling_latency_ms.p99.toFixed(3)}`);

    // Node table: 2 rows; worker table: 4 rows; utilization from busy time over the interval.
    const nodeHeader = lines.findIndex((l) => l.startsWith('NODE'));
    const workerHeader = lines.findIndex((l) => l.startsWith('WORKER'));
    expect(lines.slice(nodeHeader + 1, nodeHeader + 3).map((l) => l.split(/\s+/)[0])).toEqual(['0', '1']);
    const rows = lines.slice(workerHeader + 1).map((l) => l.trim().split(/\s+/));
    expect(rows.map((r) => r[0])).toEqual(['0', '1', '2', '3']);
    for (const r of rows) {
      const w = after.workers[Number(r[0])]!;
      const p = before.workers[Number(r[0])]!;
      expect(r[1]).toBe(String(w.numa_node));
      expect(Number(r[3])).toBeCloseTo(Math.min(1, (w.busy_seconds - p.busy_seconds) / dt) * 100, 0);
    }
    // 50 spins of 2 ms on node 1 in well under a second of polling: node 1 was busy.
    const node1 = lines[nodeHeader + 2]!.split(/\s+/);
    expect(Number(node1[2])).toBeGreaterThan(0);

    // Without a previous poll the rates are unknown, not zero.
    expect(renderTop(after).join('\n')).toMatch(/completed \(-\/s\)/);
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
