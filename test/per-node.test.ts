// One process per NUMA node on this machine: `hwsq run --per-node` (confinement, exit codes,
// restarts, signal forwarding, output prefixes in a terminal), the Supervisor under both,
// forkPerNode with an HTTP server, and HWSQ_NUMA_NODE in the runtimes. The multi-node behaviour
// is checked in QEMU guests (test/per-node.vm.test.ts).
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import cluster from 'node:cluster';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCodes, Runtime, createNativeRuntime, forkPerNode, topology } from '../lib/index';
import { native } from '../lib/core/native';
import { perNodeTargets } from '../lib/per-node/nodes';
import { Supervisor, exitStatus, restartDelayMs, RESTART_MAX_DELAY_MS, type SupervisedExit } from '../lib/per-node/supervisor';
import { expectCode, rejectionOf } from './helpers';
import type { Answer, ClusterEvent, ProbeReport } from './per-node-reports';

const root = fileURLToPath(new URL('..', import.meta.url));
const probe = path.join(root, 'test/fixtures/per-node-probe.cjs');
const clusterFixture = path.join(root, 'test/fixtures/per-node-cluster.cjs');
const taskModule = path.join(root, 'test/fixtures/tasks/basic.cjs');

/** Nodes with CPUs this process may use: what --per-node starts a copy on. */
function cpuNodes(): { id: number; cpus: number[] }[] {
  const topo = topology();
  const allowed = new Set(topo.allowedCpus);
  return topo.nodes.map((n) => ({ id: n.id, cpus: n.cpus.filter((c) => allowed.has(c)) })).filter((n) => n.cpus.length > 0);
}

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves once stdout has a line matching re (rejects if the process ends first). */
  waitFor(re: RegExp): Promise<void>;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

function startCli(args: string[], env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, ['bin/hwsq.js', ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters: { re: RegExp; resolve: () => void; reject: (e: Error) => void }[] = [];
  const check = () => {
    for (const w of [...waiters]) {
      if (!w.re.test(out)) continue;
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  };
  child.stdout!.on('data', (d) => {
    out += d;
    check();
  });
  child.stderr!.on('data', (d) => (err += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    child.on('close', (code, signal) => {
      for (const w of waiters) w.reject(new Error(`exited before ${w.re}: ${out}\n${err}`));
      resolve({ code, signal, stdout: out, stderr: err });
    });
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitFor: (re) => new Promise((resolve, reject) => {
      waiters.push({ re, resolve, reject });
      check();
    }),
    done,
  };
}

function cliSync(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, ['bin/hwsq.js', ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
}

const scratch: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hwsq-per-node-'));
  scratch.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true });
});


function probeReports(stdout: string): ProbeReport[] {
  return stdout.trim().split('\n').map((l) => JSON.parse(l) as ProbeReport).sort((a, b) => Number(a.env) - Number(b.env));
}

describe('hwsq run --per-node', () => {
  it('starts one copy per node with CPUs, confined to them and to its memory, with HWSQ_NUMA_NODE', () => {
    const r = cliSync(['run', '--per-node', '--', process.execPath, probe]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const reports = probeReports(r.stdout);
    const nodes = cpuNodes();
    expect(reports.map((p) => p.env)).toEqual(nodes.map((n) => String(n.id)));
    reports.forEach((p, i) => {
      const node = nodes[i]!;
      expect(p.affinity).toEqual(node.cpus);
      for (const s of p.samples) expect(s.node).toBe(node.id);
      expect(p.byNode).toEqual({ [node.id]: p.pages });
      if (native().numaAvailable()) expect(p.policy).toEqual({ policy: 'bind', nodes: [node.id] });
      expect(p.runtimeNodes).toEqual([node.id]);
      // Its own session and process group: a terminal's signals reach it only through hwsq.
      expect(p.session).toBe(p.pid);
      expect(p.pgrp).toBe(p.pid);
    });
  });

  it('--preferred sets the preferred policy; --nodes picks the nodes', () => {
    const node = cpuNodes()[0]!.id;
    const r = cliSync(['run', '--per-node', '--preferred', '--nodes', String(node), '--', process.execPath, probe]);
    expect(r.status).toBe(0);
    const reports = probeReports(r.stdout);
    expect(reports.map((p) => p.env)).toEqual([String(node)]);
    if (native().numaAvailable()) expect(reports[0]!.policy).toEqual({ policy: 'preferred', nodes: [node] });
  });

  it('exits with the worst status: the code, 128+n for signal n, 127 not found, 126 not executable', () => {
    expect(cliSync(['run', '--per-node', '--', 'sh', '-c', 'exit 0']).status).toBe(0);
    expect(cliSync(['run', '--per-node', '--', 'sh', '-c', 'exit 42']).status).toBe(42);
    const segv = cliSync(['run', '--per-node', '--', 'sh', '-c', 'kill -SEGV $$']);
    expect(segv.status).toBe(128 + os.constants.signals.SIGSEGV);
    expect(segv.stderr).toMatch(/node \d+: killed by SIGSEGV/);
    const missing = cliSync(['run', '--per-node', '--', 'hwsq-no-such-command']);
    expect(missing.status).toBe(127);
    expect(missing.stderr).toMatch(/cannot start: .*ENOENT/);
    expect(cliSync(['run', '--per-node', '--', path.join(root, 'package.json')]).status).toBe(126);
  });

  it('refuses bad arguments before starting anything', () => {
    const dir = tempDir();
    const marker = path.join(dir, 'ran');
    const command = ['--', 'sh', '-c', `touch ${marker}`];
    const unknownNode = Math.max(...topology().nodes.map((n) => n.id)) + 1;
    const cases: [string[], RegExp][] = [
      [['run', ...command], /needs --per-node .*\(ERR_HWSQ_INVALID_ARG\)/],
      [['run', '--per-node', '--membind', '--preferred', ...command], /cannot be used with option '--preferred'/],
      [['run', '--per-node', '--nodes', '0,x', ...command], /argument '0,x' is invalid/],
      [['run', '--per-node', '--nodes', '-1', ...command], /is invalid|unknown option/],
      [['run', '--per-node', '--nodes', `${unknownNode}`, ...command], /unknown NUMA node .*ERR_HWSQ_UNKNOWN_NODE/],
      [['run', '--per-node', '--nodes', '0,0', ...command], /names NUMA node 0 twice \(ERR_HWSQ_INVALID_ARG\)/],
      [['run', '--per-node', '--max-restarts', '2', ...command], /--max-restarts needs --restart/],
      [['run', '--per-node', '--restart', '--max-restarts', 'many', ...command], /argument 'many' is invalid/],
      [['run', '--per-node'], /missing required argument 'command'/],
    ];
    for (const [args, message] of cases) {
      const r = cliSync(args);
      expect(r.status, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(existsSync(marker), args.join(' ')).toBe(false);
    }
    expect(cliSync(['run', '--per-node', ...command]).status).toBe(0);
    expect(existsSync(marker)).toBe(true);
  });

  it('--restart restarts a crashing copy up to --max-restarts times, then keeps its status', () => {
    const dir = tempDir();
    const log = path.join(dir, 'runs');
    const r = cliSync(['run', '--per-node', '--nodes', String(cpuNodes()[0]!.id), '--restart', '--max-restarts', '2', '--', 'sh', '-c', `echo run >> ${log}; exit 4`]);
    expect(r.status).toBe(4);
    expect(readFileSync(log, 'utf8')).toBe('run\nrun\nrun\n');
    expect(r.stderr).toMatch(/exited with code 4; restarting in 0\.1 s \(1 of 2\)/);
    expect(r.stderr).toMatch(/exited with code 4; restarting in 0\.2 s \(2 of 2\)/);
  });

  it('--restart stops restarting once the copy succeeds, and never restarts a clean exit', () => {
    const dir = tempDir();
    const log = path.join(dir, 'runs');
    // Fails on its first run only.
    const script = `echo run >> ${log}; [ "$(wc -l < ${log})" -ge 2 ]`;
    const r = cliSync(['run', '--per-node', '--nodes', String(cpuNodes()[0]!.id), '--restart', '--', 'sh', '-c', script]);
    expect(r.status).toBe(0);
    expect(readFileSync(log, 'utf8')).toBe('run\nrun\n');
  });

  // A Node copy that acknowledges each signal on stdout.
  const signalled = (onTerm: string) => `
    for (const s of ['SIGUSR1', 'SIGUSR2', 'SIGHUP', 'SIGINT']) process.on(s, () => console.log('got ' + s));
    process.on('SIGTERM', () => { console.log('got SIGTERM'); ${onTerm} });
    setInterval(() => {}, 1000);
    console.log('ready');`;

  it('forwards SIGUSR1, SIGUSR2, SIGHUP and SIGTERM; SIGHUP/SIGTERM end the run without restarts', async () => {
    const run = startCli(['run', '--per-node', '--nodes', String(cpuNodes()[0]!.id), '--restart', '--', process.execPath, '-e', signalled('process.exit(9)')]);
    await run.waitFor(/ready/);
    for (const s of ['SIGUSR1', 'SIGUSR2', 'SIGHUP', 'SIGTERM'] as const) {
      run.child.kill(s);
      await run.waitFor(new RegExp(`got ${s}`));
    }
    const r = await run.done;
    expect(r.code).toBe(9);  // its exit after SIGTERM is final: no restart
    expect(r.stdout.match(/ready/g)).toHaveLength(1);
    expect(r.stderr).not.toMatch(/restarting/);
  });

  it('a second SIGINT kills copies that ignore the first', async () => {
    const run = startCli(['run', '--per-node', '--nodes', String(cpuNodes()[0]!.id), '--', process.execPath, '-e', signalled('')]);
    await run.waitFor(/ready/);
    run.child.kill('SIGINT');
    await run.waitFor(/got SIGINT/);
    run.child.kill('SIGINT');
    const r = await run.done;
    expect(r.code).toBe(128 + os.constants.signals.SIGKILL);
    expect(r.stderr).toMatch(/second SIGINT: killing every copy/);
  });

  it('sends SIGTERM to the copy\'s process group: children of a shell copy end too', async () => {
    const run = startCli(['run', '--per-node', '--nodes', String(cpuNodes()[0]!.id), '--', 'sh', '-c', 'sleep 300 & echo "grandchild $!"; wait']);
    await run.waitFor(/grandchild \d+/);
    const pid = Number(/grandchild (\d+)/.exec(run.stdout())![1]);
    run.child.kill('SIGTERM');
    const r = await run.done;
    expect(r.code).toBe(128 + os.constants.signals.SIGTERM);
    // The sleep got SIGTERM too: gone, or a zombie waiting for its new parent to reap it.
    const state = () => {
      try {
        return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0];
      } catch {
        return 'gone';
      }
    };
    let seen = state();
    for (let i = 0; i < 200 && seen !== 'gone' && seen !== 'Z'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      seen = state();
    }
    expect(['gone', 'Z']).toContain(seen);
  });

  it('writes raw output when stdout is not a terminal, prefixed lines when it is (script(1) pty)', () => {
    const cmd = ['run', '--per-node', '--nodes', String(cpuNodes()[0]!.id), '--', 'sh', '-c', 'echo out; echo err >&2; printf partial'];
    const raw = cliSync(cmd);
    expect(raw.stdout).toBe('out\npartial');
    expect(raw.stderr).toBe('err\n');
    const node = cpuNodes()[0]!.id;
    const quoted = [process.execPath, 'bin/hwsq.js', ...cmd].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const tty = spawnSync('script', ['-qec', quoted, '/dev/null'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect(tty.status).toBe(0);
    const lines = tty.stdout.split(/\r?\n/).filter(Boolean).sort();
    expect(lines).toEqual([`[node ${node}] err`, `[node ${node}] out`, `[node ${node}] partial`]);
  });
});

describe('Supervisor', () => {
  const target = () => perNodeTargets([cpuNodes()[0]!.id], 'bind')[0]!;

  function supervise(commands: string[], restart = false, maxRestarts = 0) {
    const exits: SupervisedExit[] = [];
    const targets = commands.map(() => target());
    let i = 0;
    const sup = new Supervisor({ targets, restart, maxRestarts, start: () => spawn('sh', ['-c', commands[i++ % commands.length]!], { stdio: 'ignore' }) });
    sup.on('exit', (e: SupervisedExit) => exits.push(e));
    const done = new Promise<number>((resolve) => sup.once('done', resolve));
    sup.start();
    return { sup, exits, done };
  }

  it('reports the worst status among all processes', async () => {
    const { exits, done } = supervise(['exit 3', 'kill -TERM $$', 'exit 0']);
    expect(await done).toBe(128 + os.constants.signals.SIGTERM);
    expect(exits.map((e) => e.status).sort((a, b) => a - b)).toEqual([0, 3, 143]);
    expect(exits.find((e) => e.signal === 'SIGTERM')!.code).toBeNull();
  });

  it('does not restart after stop(), nor a process that could not start', async () => {
    const { sup, exits, done } = supervise(['sleep 300'], true, 5);
    await new Promise((resolve) => sup.once('spawn', resolve));
    sup.stop();
    for (const { child } of sup.running()) child.kill('SIGKILL');
    expect(await done).toBe(137);
    expect(exits).toHaveLength(1);
    expect(exits[0]!.willRestart).toBe(false);

    const failed: SupervisedExit[] = [];
    const s2 = new Supervisor({ targets: [target()], restart: true, maxRestarts: 5, start: () => spawn('hwsq-no-such-command') });
    s2.on('exit', (e: SupervisedExit) => failed.push(e));
    const done2 = new Promise<number>((resolve) => s2.once('done', resolve));
    s2.start();
    expect(await done2).toBe(127);
    expect(failed).toHaveLength(1);
    expect(failed[0]!.error).toBeInstanceOf(Error);
  });

  it('computes statuses and a bounded backoff', () => {
    expect(exitStatus(5, null)).toBe(5);
    expect(exitStatus(null, 'SIGKILL')).toBe(137);
    expect([0, 1, 2, 3].map(restartDelayMs)).toEqual([100, 200, 400, 800]);
    expect(restartDelayMs(50)).toBe(RESTART_MAX_DELAY_MS);
  });
});


describe('forkPerNode', () => {
  it('checks its options before forking anything', () => {
    const before = Object.keys(cluster.workers ?? {}).length;
    expectCode(() => forkPerNode(null as never), TypeError, ErrorCodes.INVALID_ARG_TYPE);
    expectCode(() => forkPerNode({ memory: 'interleave' as never }), RangeError, ErrorCodes.INVALID_OPTION);
    expectCode(() => forkPerNode({ restart: 'yes' as never }), TypeError, ErrorCodes.INVALID_ARG_TYPE);
    expectCode(() => forkPerNode({ maxRestarts: -1 }), RangeError, ErrorCodes.INVALID_OPTION);
    expectCode(() => forkPerNode({ maxRestarts: '3' as never }), TypeError, ErrorCodes.INVALID_ARG_TYPE);
    expectCode(() => forkPerNode({ env: { A: 1 as never } }), TypeError, ErrorCodes.INVALID_ARG_TYPE);
    expectCode(() => forkPerNode({ nodes: 0 as never }), TypeError, ErrorCodes.INVALID_ARG_TYPE);
    expectCode(() => forkPerNode({ nodes: [] }), RangeError, ErrorCodes.INVALID_ARG);
    expectCode(() => forkPerNode({ nodes: [0.5] }), RangeError, ErrorCodes.INVALID_ARG);
    expectCode(() => forkPerNode({ nodes: [0, 0] }), RangeError, ErrorCodes.INVALID_ARG);
    expectCode(() => forkPerNode({ nodes: [Math.max(...topology().nodes.map((n) => n.id)) + 1] }), RangeError, ErrorCodes.UNKNOWN_NODE);
    expect(Object.keys(cluster.workers ?? {}).length).toBe(before);
  });

  it('forks a confined worker per node; HTTP on one port answers from each; a crash is restarted; close() ends all', async () => {
    const r = spawnSync(process.execPath, [clusterFixture], {
      cwd: root,
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, PN_CRASH: '1', PN_OPTIONS: JSON.stringify({ restart: true, env: { PN_EXTRA: 'extra' } }) },
    });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as ClusterEvent);
    const nodes = cpuNodes().map((n) => n.id);
    const forked = events.find((e) => e.event === 'forked')!;
    expect(forked).toMatchObject({ isPrimary: true, node: null, nodes, workers: nodes, second: { name: 'Error', code: ErrorCodes.INVALID_STATE } });
    const check = (answers: Answer[]) => {
      expect(answers.map((a) => a.node)).toEqual(nodes);
      for (const a of answers) {
        expect(a).toMatchObject({ isPrimary: false, workers: 0, env: String(a.node), extra: 'extra', cpuNode: a.node });
        expect(a.affinity).toEqual(cpuNodes().find((n) => n.id === a.node)!.cpus);
        expect(Object.keys(a.byNode)).toEqual([String(a.node)]);
        if (native().numaAvailable()) expect(a.policy).toEqual({ policy: 'bind', nodes: [a.node] });
      }
    };
    const listening = events.find((e) => e.event === 'listening')!;
    expect(new Set(listening.ports as number[]).size).toBe(1);  // one port shared by all
    check(listening.answers as Answer[]);
    const crash = events.findIndex((e) => e.event === 'exit' && e.code === 3);
    expect(events[crash]).toMatchObject({ node: nodes[0], status: 3, willRestart: true });
    const restarted = events.find((e) => e.event === 'restarted')!;
    expect(restarted.newPid).not.toBe(restarted.oldPid);
    check(restarted.answers as Answer[]);
    const closed = events[events.length - 1]!;
    expect(closed).toMatchObject({ event: 'closed', status: 0, done: 0, workersLeft: 0, handleWorkers: 0 });
    // Every worker's end after close() is reported and final.
    const finalExits = events.slice(crash + 1).filter((e) => e.event === 'exit');
    expect(finalExits.map((e) => e.node).sort()).toEqual([...nodes].sort());
    for (const e of finalExits) expect(e.willRestart).toBe(false);
  });

  it('close() kills workers that do not exit within timeoutMs of their disconnect', () => {
    const r = spawnSync(process.execPath, [clusterFixture], {
      cwd: root,
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, PN_STUBBORN: '1', PN_CLOSE_TIMEOUT_MS: '200' },
    });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as ClusterEvent);
    const exits = events.filter((e) => e.event === 'exit');
    expect(exits.map((e) => e.node).sort()).toEqual(cpuNodes().map((n) => n.id).sort());
    for (const e of exits) expect(e).toMatchObject({ signal: 'SIGKILL', status: 137, willRestart: false });
    expect(events[events.length - 1]).toMatchObject({ event: 'closed', status: 137, done: 137, workersLeft: 0 });
  });

  it('in a cluster worker it did not start: ERR_HWSQ_INVALID_STATE', () => {
    const script = path.join(tempDir(), 'plain-cluster.cjs');
    writeFileSync(script, `
      const cluster = require('node:cluster');
      const { forkPerNode } = require(${JSON.stringify(path.join(root, 'dist/index.js'))});
      if (cluster.isPrimary) cluster.fork().on('message', (m) => { console.log(m); process.exit(0); });
      else { try { forkPerNode(); process.send('no error'); } catch (e) { process.send(e.code); } }`);
    const env = { ...process.env };
    delete env.HWSQ_NUMA_NODE;
    const r = spawnSync(process.execPath, [script], { cwd: root, encoding: 'utf8', timeout: 60_000, env });
    expect(r.stdout.trim()).toBe(ErrorCodes.INVALID_STATE);
  });

  it('is exported to ESM and CJS', () => {
    const r = spawnSync(process.execPath, ['--input-type', 'module', '-e', `import { forkPerNode } from 'hwsq'; import { createRequire } from 'node:module'; const cjs = createRequire(process.cwd() + '/')('hwsq'); console.log(typeof forkPerNode, typeof cjs.forkPerNode)`], { cwd: root, encoding: 'utf8' });
    expect(r.stdout.trim()).toBe('function function');
  });
});

describe('HWSQ_NUMA_NODE', () => {
  const saved = process.env.HWSQ_NUMA_NODE;
  afterEach(() => {
    if (saved === undefined) delete process.env.HWSQ_NUMA_NODE;
    else process.env.HWSQ_NUMA_NODE = saved;
  });
  const node = () => cpuNodes()[0]!.id;
  const unknown = () => Math.max(...topology().nodes.map((n) => n.id)) + 1;

  it('confines a NativeRuntime with default placement to the node', () => {
    process.env.HWSQ_NUMA_NODE = String(node());
    const rt = createNativeRuntime();
    try {
      expect(rt.nodes).toEqual([node()]);
      expect(rt.size).toBe(Math.min(cpuNodes()[0]!.cpus.length, topology().parallelism.value));
    } finally {
      rt.destroy();
    }
  });

  it('is a typed error at runtime start when malformed or unusable, and ignored by explicit placements', async () => {
    for (const bad of ['abc', '-1', '1.5', '0x1']) {
      process.env.HWSQ_NUMA_NODE = bad;
      expectCode(() => createNativeRuntime(), RangeError, ErrorCodes.INVALID_OPTION);
      const err = await rejectionOf(Runtime.start({ filename: taskModule }));
      expect(err).toBeInstanceOf(RangeError);
      expect(err.code).toBe(ErrorCodes.INVALID_OPTION);
    }
    process.env.HWSQ_NUMA_NODE = String(unknown());
    expectCode(() => createNativeRuntime(), RangeError, ErrorCodes.UNKNOWN_NODE);
    const err = await rejectionOf(Runtime.start({ filename: taskModule, workers: 1 }));
    expect(err.code).toBe(ErrorCodes.UNKNOWN_NODE);
    expect(err.message).toMatch(/HWSQ_NUMA_NODE/);
    // An explicit placement says where every P goes: the variable does not apply.
    const rt = createNativeRuntime({ placement: [{ node: node() }] });
    expect(rt.nodes).toEqual([node()]);
    rt.destroy();
    const v = createNativeRuntime({ virtualTopology: { nodes: 2, workersPerNode: 1 } });
    expect(v.nodes).toEqual([0, 1]);
    v.destroy();
  });

  it('confines a JS Runtime with default placement to the node', async () => {
    process.env.HWSQ_NUMA_NODE = String(node());
    const rt = await Runtime.start({ filename: taskModule, workers: 2 });
    try {
      expect(rt.workers.map((w) => w.node)).toEqual([node(), node()]);
      for (const w of rt.workers) expect(w.cpus).toEqual(cpuNodes()[0]!.cpus);
    } finally {
      await rt.close();
    }
  });
});
