// Boots multi-NUMA-node Linux kernels in QEMU (TCG) and runs one shell command in each, chrooted
// into the host's root filesystem (shared read-only over 9p). Plain ESM so that both vitest (via
// harness.ts) and node (cli.mjs) use it directly; types in vm.d.mts. See README.md.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { APT_COMMAND, REPO_ROOT, ensureInitramfs, findKernel, findQemu, missingTools, onPath } from './initramfs.mjs';

export { APT_COMMAND, APT_PACKAGES } from './initramfs.mjs';

const DEFAULT_TIMEOUT_MS = 180_000;
const CONSOLE_KEEP = 256 * 1024; // characters of console kept in memory (the tail)
// A guest boots in 5-40 s under TCG. One that has not started the command by the boot deadline
// is stuck in the kernel: CI runs saw QEMU silent for a whole 240 s run, and guests whose CPU 0
// stalled (RCU stall warnings, nothing else) before init ran. Nothing of hwsq has run by then, so
// the guest is killed and booted again, once, when at least MIN_RETRY_MS of the timeout is left.
const BOOT_DEADLINE_MS = 90_000;
const MIN_RETRY_MS = 60_000;
const BOOT_TRIES = 2;
const GUEST_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const fourSingleCpuNodes = () => [0, 1, 2, 3].map(() => ({ cpus: 1, memMiB: 384 }));

/** @type {Record<'twoNode' | 'fourNode' | 'cpuless' | 'interleaved' | 'asymmetric', import('./vm.d.mts').VmTopology>} */
export const TOPOLOGIES = {
  // Symmetric two-socket machine.
  twoNode: {
    name: 'twoNode',
    nodes: [
      { cpus: 2, memMiB: 384 },
      { cpus: 2, memMiB: 384 },
    ],
  },
  // Four single-CPU nodes on a line, so every pair has its own distance.
  fourNode: {
    name: 'fourNode',
    nodes: fourSingleCpuNodes(),
    distances: [
      [10, 16, 22, 28],
      [16, 10, 16, 22],
      [22, 16, 10, 16],
      [28, 22, 16, 10],
    ],
  },
  // Four single-CPU nodes whose distance order is not their index order, and not symmetric:
  // node 3 is nearest to node 0, node 0 nearest to node 2 (while node 2 is the farthest from
  // node 0), and node 3 sees 2 < 1 < 0. Steal-order tests need it: seen from P0 of a line, the
  // nearest victim is also the lowest-numbered one.
  asymmetric: {
    name: 'asymmetric',
    nodes: fourSingleCpuNodes(),
    distances: [
      [10, 30, 40, 15],
      [25, 10, 35, 45],
      [12, 50, 10, 33],
      [23, 22, 21, 10],
    ],
  },
  // Two nodes with CPUs plus a CPU-less, farther memory node (CXL / HBM-like).
  cpuless: {
    name: 'cpuless',
    nodes: [
      { cpus: 1, memMiB: 384 },
      { cpus: 1, memMiB: 384 },
      { cpus: 0, memMiB: 256 },
    ],
    distances: [
      [10, 20, 28],
      [20, 10, 28],
      [28, 28, 10],
    ],
  },
  // CPU ids interleaved across the nodes, as some BIOSes number them: node 0 = 0,2; node 1 = 1,3.
  interleaved: {
    name: 'interleaved',
    nodes: [
      { cpus: 2, memMiB: 384, cpuIds: [0, 2] },
      { cpus: 2, memMiB: 384, cpuIds: [1, 3] },
    ],
  },
};

/** @returns {{ ok: boolean, missing: string[] }} */
export function vmToolsAvailable() {
  const missing = missingTools();
  return { ok: missing.length === 0, missing };
}

/** Throws an error naming the missing tools and the apt-get command that installs them. */
export function assertVmTools() {
  const { ok, missing } = vmToolsAvailable();
  if (!ok) {
    throw new Error(
      `The QEMU NUMA test VMs need tools that are not installed:\n  - ${missing.join('\n  - ')}\n` +
        `Install them (as root) with:\n  ${APT_COMMAND}`,
    );
  }
}

/** The full distance matrix of a topology (default: 10 local, 20 remote), validated. */
export function distanceMatrix(topo) {
  const n = topo.nodes.length;
  const d = topo.distances ?? topo.nodes.map((_, i) => topo.nodes.map((__, j) => (i === j ? 10 : 20)));
  if (d.length !== n || d.some((row) => row.length !== n)) throw new Error(`${topo.name}: distances must be ${n}x${n}`);
  d.forEach((row, i) =>
    row.forEach((v, j) => {
      if (!Number.isInteger(v)) throw new Error(`${topo.name}: distance [${i}][${j}] is not an integer`);
      if (i === j && v !== 10) throw new Error(`${topo.name}: local distance [${i}][${i}] must be 10 (ACPI SLIT)`);
      if (i !== j && (v <= 10 || v > 254)) throw new Error(`${topo.name}: remote distance [${i}][${j}] must be 11..254`);
    }),
  );
  return d;
}

/** QEMU arguments describing the topology (CPUs, memory per node, distances). */
export function topologyArgs(topo) {
  const nodes = topo.nodes;
  if (nodes.length === 0) throw new Error(`${topo.name}: no nodes`);
  for (const [i, n] of nodes.entries()) {
    if (!Number.isInteger(n.cpus) || n.cpus < 0) throw new Error(`${topo.name}: node ${i} cpus must be an integer >= 0`);
    if (!Number.isInteger(n.memMiB) || n.memMiB < 16) throw new Error(`${topo.name}: node ${i} memMiB must be an integer >= 16`);
  }
  const cpus = nodes.reduce((s, n) => s + n.cpus, 0);
  if (cpus === 0) throw new Error(`${topo.name}: no node has CPUs`);
  const explicit = nodes.some((n) => n.cpuIds !== undefined);
  if (explicit) {
    // Every CPU id 0..cpus-1 on exactly one node.
    const ids = nodes.flatMap((n, i) => {
      if (!Array.isArray(n.cpuIds) || n.cpuIds.length !== n.cpus) throw new Error(`${topo.name}: node ${i} needs cpuIds with ${n.cpus} ids (all nodes or none)`);
      return n.cpuIds;
    });
    if ([...ids].sort((a, b) => a - b).some((id, i) => id !== i)) throw new Error(`${topo.name}: cpuIds must name each of 0..${cpus - 1} once`);
  }
  const memMiB = nodes.reduce((s, n) => s + n.memMiB, 0);
  // One socket per CPU node when they are all the same size and numbered in node order (hwloc
  // then shows a package per node); otherwise one socket per CPU, so no socket straddles two nodes.
  const withCpus = nodes.filter((n) => n.cpus > 0);
  const uniform = !explicit && withCpus.every((n) => n.cpus === withCpus[0].cpus);
  const smp = uniform ? `${cpus},sockets=${withCpus.length},cores=${withCpus[0].cpus},threads=1` : `${cpus},sockets=${cpus},cores=1,threads=1`;
  const args = ['-smp', smp, '-m', `${memMiB}M`];
  let next = 0;
  nodes.forEach((n, k) => {
    args.push('-object', `memory-backend-ram,id=m${k},size=${n.memMiB}M`);
    const range = n.cpus > 0 ? `,cpus=${next}-${next + n.cpus - 1}` : '';
    const cpuOpt = n.cpuIds ? n.cpuIds.map((id) => `,cpus=${id}`).join('') : range;
    args.push('-numa', `node,nodeid=${k}${cpuOpt},memdev=m${k}`);
    next += n.cpus;
  });
  const d = distanceMatrix(topo);
  d.forEach((row, i) => row.forEach((v, j) => i !== j && args.push('-numa', `dist,src=${i},dst=${j},val=${v}`)));
  return args;
}

function shQuote(s) {
  return `'${String(s).replace(/'/g, `'\\''`)}'`;
}

function runScript(command, cwd, env) {
  const lines = ['# written by test/vm/vm.mjs; run by the guest init as /bin/sh in the host root'];
  for (const [k, v] of Object.entries(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`invalid environment variable name ${JSON.stringify(k)}`);
    lines.push(`export ${k}=${shQuote(v)}`);
  }
  lines.push(`cd ${shQuote(cwd)} || { echo "hwsq-vm: cannot cd to "${shQuote(cwd)} >&2; exit 126; }`);
  lines.push(`exec /bin/sh -c ${shQuote(command)}`);
  return lines.join('\n') + '\n';
}

// QEMU processes alive in this process, with their kill functions: killed if the process exits
// while they run. (A worker killed outright cannot do that: the timeout(1) wrapper is the backstop.)
const live = new Map();
let exitHookInstalled = false;
function track(child, kill) {
  live.set(child, kill);
  child.once('exit', () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const k of live.values()) k();
    });
  }
}

let initramfsPromise;
function initramfs() {
  // One build per process; ensureInitramfs itself is safe against concurrent processes.
  initramfsPromise ??= Promise.resolve().then(() => ensureInitramfs());
  return initramfsPromise;
}

/**
 * Boots a VM with the topology, runs `command` with /bin/sh -c in the host root (chroot) and
 * powers off. Resolves with the command's output and exit code; rejects on timeout or when the
 * guest could not run the command (the error carries the console tail).
 * @param {import('./vm.d.mts').VmTopology} topo
 * @param {string} command
 * @param {import('./vm.d.mts').VmRunOptions} [opts]
 * @returns {Promise<import('./vm.d.mts').VmResult>}
 */
export async function runInVm(topo, command, opts = {}) {
  assertVmTools();
  const kernel = findKernel();
  const qemu = findQemu();
  const { path: initrd } = await initramfs();
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const cwd = path.resolve(opts.cwd ?? REPO_ROOT);
  // The node running the harness first on PATH, so `node` in the guest is the same binary.
  const nodeDir = path.dirname(process.execPath);
  const guestPath = GUEST_PATH.split(':').includes(nodeDir) ? GUEST_PATH : `${nodeDir}:${GUEST_PATH}`;
  const env = { PATH: guestPath, HOME: '/tmp', ...(opts.env ?? {}) };

  const io = fs.mkdtempSync(path.join(os.tmpdir(), 'hwsq-vm-'));
  try {
    fs.writeFileSync(path.join(io, 'run.sh'), runScript(command, cwd, env));
    if (opts.separateStderr) fs.writeFileSync(path.join(io, 'separate-stderr'), '');
    // init.sh removes it and hangs before the command: the first boot never ends (for the test of the retry).
    if (opts.stallFirstBoot) fs.writeFileSync(path.join(io, 'stall-boot'), '');
    // The guest mounts its own /tmp; directories the command needs from the host's /tmp (a
    // checkout there, say) are bound back in by init.sh.
    const hostTmpDirs = [...new Set([cwd, nodeDir].filter((p) => p.startsWith('/tmp/')).map((p) => p.split('/')[2]))];
    if (hostTmpDirs.length) fs.writeFileSync(path.join(io, 'host-tmp-dirs'), hostTmpDirs.join('\n') + '\n');

    const append = ['console=ttyS0', 'quiet', 'panic=-1', 'rdinit=/init', 'mitigations=off', ...(opts.kernelArgs ?? [])].join(' ');
    const args = [
      '-nodefaults',
      '-no-user-config',
      '-no-reboot',
      '-display', 'none',
      '-monitor', 'none',
      '-serial', 'stdio',
      '-machine', 'pc',
      '-accel', process.env.HWSQ_VM_ACCEL ?? 'tcg,thread=multi',
      '-cpu', 'max',
      ...topologyArgs(topo),
      '-kernel', kernel.vmlinuz,
      '-initrd', initrd,
      '-append', append,
      '-virtfs', 'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap',
      '-virtfs', `local,path=${io.replace(/,/g, ',,')},mount_tag=hwsqio,security_model=none`,
    ];

    const deadline = Date.now() + timeoutMs;  // over every boot
    const bootDeadlineMs = opts.bootDeadlineMs ?? BOOT_DEADLINE_MS;
    for (let boot = 1; ; boot++) {
      const started = Date.now();
      // Under coreutils timeout(1) when there is one: it kills QEMU even if this process dies without
      // cleaning up, and it runs QEMU in its own process group, which kill() takes down as a whole.
      const wrapper = onPath('timeout');
      const child = wrapper
        ? spawn(wrapper, ['--signal=KILL', `${Math.ceil(timeoutMs / 1000) + 30}s`, qemu, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
        : spawn(qemu, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const kill = () => {
        try {
          if (wrapper && child.pid) process.kill(-child.pid, 'SIGKILL');
          else child.kill('SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      };
      track(child, kill);
      let consoleText = '';
      let stderrText = '';
      let bootMs;
      const keep = (s) => (s.length > CONSOLE_KEEP ? s.slice(-CONSOLE_KEEP) : s);
      child.stdout.setEncoding('utf8').on('data', (s) => {
        consoleText = keep(consoleText + s);
        if (bootMs === undefined && consoleText.includes('hwsq-vm: running')) bootMs = Date.now() - started;
        if (opts.onConsole) opts.onConsole(s);
      });
      child.stderr.setEncoding('utf8').on('data', (s) => {
        stderrText = keep(stderrText + s);
        if (opts.onConsole) opts.onConsole(s);
      });

      const tail = () =>
        `--- console tail (${topo.name}) ---\n${consoleText.slice(-4000).replace(/\r/g, '')}` +
        (stderrText.trim() ? `\n--- qemu stderr ---\n${stderrText.slice(-2000)}` : '');

      const outcome = await new Promise((resolve) => {
        let timedOut = false;
        let stuck = false;
        const timer = setTimeout(() => {
          timedOut = true;
          kill();
        }, deadline - started);
        const bootTimer = setTimeout(() => {
          if (bootMs !== undefined || boot >= BOOT_TRIES || deadline - Date.now() < MIN_RETRY_MS) return;
          stuck = true;
          kill();
        }, bootDeadlineMs);
        child.once('error', (err) => {
          clearTimeout(timer);
          clearTimeout(bootTimer);
          resolve({ error: err });
        });
        child.once('close', (code, signal) => {
          clearTimeout(timer);
          clearTimeout(bootTimer);
          resolve({ code, signal, timedOut, stuck });
        });
      });
      const durationMs = Date.now() - started;

      if (outcome.error) throw new Error(`cannot start ${qemu}: ${outcome.error.message}`);
      if (outcome.stuck) {
        const last = consoleText.replace(/\r/g, '').trim().split('\n').pop() ?? '';
        process.stderr.write(
          `hwsq-vm: ${topo.name}: the guest did not boot in ${durationMs} ms (console ${last ? `ends with ${JSON.stringify(last.slice(-160))}` : 'silent'}); booting again\n`,
        );
        continue;
      }
      if (outcome.timedOut) {
        throw new Error(`VM ${topo.name} timed out after ${timeoutMs} ms running ${JSON.stringify(command)} (QEMU killed)\n${tail()}`);
      }
      const exitFile = path.join(io, 'exit-code');
      if (!fs.existsSync(exitFile)) {
        throw new Error(
          `VM ${topo.name} stopped (QEMU exit ${outcome.code ?? outcome.signal}) without running ${JSON.stringify(command)} to the end\n${tail()}`,
        );
      }
      const exitCode = Number(fs.readFileSync(exitFile, 'utf8').trim());
      const read = (f) => (fs.existsSync(path.join(io, f)) ? fs.readFileSync(path.join(io, f), 'utf8') : '');
      /** @type {import('./vm.d.mts').VmResult} */
      const result = { stdout: read('stdout'), exitCode, console: consoleText.replace(/\r/g, ''), durationMs, bootMs, boots: boot };
      if (opts.separateStderr) result.stderr = read('stderr');
      return result;
    }
  } finally {
    fs.rmSync(io, { recursive: true, force: true });
  }
}
