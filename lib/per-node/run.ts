// `hwsq run --per-node -- <command...>`: one copy of a command per NUMA node, each confined to
// its node's CPUs and memory, supervised (signals forwarded, optional restarts, worst exit code).
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { Command, InvalidArgumentError, Option } from 'commander';
import { ErrorCodes, rangeError } from '../core/errors';
import { NUMA_NODE_ENV } from './env';
import { memoryPolicyEffective, perNodeTargets, type PerNodeMemory } from './nodes';
import { RESTART_BASE_DELAY_MS, RESTART_MAX_DELAY_MS, RESTART_STABLE_MS, Supervisor, type SupervisedExit } from './supervisor';

export const DEFAULT_MAX_RESTARTS = 5;

export interface RunPerNodeOptions {
  /** Nodes to run on (default: every node with CPUs this process may use). */
  nodes?: readonly number[];
  memory?: PerNodeMemory;
  restart?: boolean;
  maxRestarts?: number;
}

/** Signals passed on to the children. The first three end the run (no more restarts). */
const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const;
const ENDING: ReadonlySet<NodeJS.Signals> = new Set(['SIGINT', 'SIGTERM', 'SIGHUP']);

/**
 * Prefixes every line of a child's output with `[node k] `. Whole lines are written at once, so
 * lines of different children never mix; a partial line waits for its end (or 64 KiB).
 */
function prefixLines(from: Readable, to: Writable, prefix: string): Promise<void> {
  const head = Buffer.from(prefix);
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const flush = (upTo: Buffer | undefined) => {
    const parts = upTo ? [...pending, upTo] : pending;
    if (parts.length > 0) to.write(Buffer.concat([head, ...parts]));
    pending = [];
    pendingBytes = 0;
  };
  from.on('data', (chunk: Buffer) => {
    let start = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, start)) {
      flush(chunk.subarray(start, nl + 1));
      start = nl + 1;
    }
    if (start < chunk.length) {
      pending.push(chunk.subarray(start));
      pendingBytes += chunk.length - start;
      if (pendingBytes >= 65536) flush(Buffer.from('\n'));
    }
  });
  return new Promise((resolve) => {
    from.once('close', () => {
      if (pendingBytes > 0) flush(Buffer.from('\n'));
      resolve();
    });
  });
}

function describeExit(e: SupervisedExit): string {
  if (e.error) return `cannot start: ${e.error.message}`;
  return e.signal ? `killed by ${e.signal}` : `exited with code ${e.code}`;
}

/**
 * Runs `command` once per NUMA node and resolves with the worst exit status (128+n for a death
 * by signal n, 127 when the command does not exist) once every copy has ended. Copies are
 * started with HWSQ_NUMA_NODE=k, confined to node k's CPUs and memory.
 */
export async function runPerNode(command: readonly string[], options: RunPerNodeOptions = {}): Promise<number> {
  if (command.length === 0) throw rangeError(ErrorCodes.INVALID_ARG, 'no command given (hwsq run --per-node -- <command...>)');
  const targets = perNodeTargets(options.nodes, options.memory ?? 'bind');
  const log = (line: string) => process.stderr.write(`hwsq: ${line}\n`);
  if (!memoryPolicyEffective()) log('warning: this kernel refuses memory policies (set_mempolicy); the copies are only pinned to their nodes\' CPUs');
  const prefixOut = process.stdout.isTTY === true;
  const prefixErr = process.stderr.isTTY === true;
  const outputs: Promise<void>[] = [];
  const streams = new Set<Readable>();
  const follow = (stream: Readable | null, to: Writable, node: number) => {
    if (!stream) return;
    streams.add(stream);
    outputs.push(prefixLines(stream, to, `[node ${node}] `).finally(() => streams.delete(stream)));
  };
  const supervisor = new Supervisor({
    targets,
    restart: options.restart ?? false,
    maxRestarts: options.maxRestarts ?? DEFAULT_MAX_RESTARTS,
    start: (target) => {
      // detached: each copy leads its own session, so a terminal's Ctrl-C reaches only us and
      // every copy gets each signal exactly once, from the forwarding below.
      const child = spawn(command[0]!, command.slice(1), {
        stdio: ['ignore', prefixOut ? 'pipe' : 'inherit', prefixErr ? 'pipe' : 'inherit'],
        env: { ...process.env, [NUMA_NODE_ENV]: String(target.node) },
        detached: true,
      });
      follow(child.stdout, process.stdout, target.node);
      follow(child.stderr, process.stderr, target.node);
      return child;
    },
  });
  supervisor.on('exit', (e: SupervisedExit) => {
    if (e.willRestart) log(`node ${e.node}: ${describeExit(e)}; restarting in ${e.delayMs / 1000} s (${e.restarts} of ${options.maxRestarts ?? DEFAULT_MAX_RESTARTS})`);
    else if (e.status !== 0 && !supervisor.stopping) log(`node ${e.node}: ${describeExit(e)}`);
  });

  // A copy's process group gets the signals a terminal would send to a foreground job; the
  // user signals go to the copy itself (a shell wrapper must not die of SIGUSR1).
  const send = (child: ChildProcess, signal: NodeJS.Signals, group: boolean) => {
    try {
      if (group && child.pid !== undefined) process.kill(-child.pid, signal);
      else child.kill(signal);
    } catch {
      // ESRCH: it is exiting; its 'exit' is on the way.
    }
  };
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signal === 'SIGINT' && ++interrupts > 1) {
      log('second SIGINT: killing every copy');
      for (const { child } of supervisor.running()) send(child, 'SIGKILL', true);
      for (const stream of streams) stream.destroy();  // a leftover grandchild must not hold us
      supervisor.stop();
      return;
    }
    if (ENDING.has(signal)) supervisor.stop();
    const running = supervisor.running();
    for (const { child } of running) send(child, signal, ENDING.has(signal));
    if (ENDING.has(signal) && running.length === 0) for (const stream of streams) stream.destroy();
  };
  const handlers = FORWARDED.map((signal) => [signal, () => onSignal(signal)] as const);
  for (const [signal, handler] of handlers) process.on(signal, handler);
  try {
    const done = new Promise<number>((resolve) => supervisor.once('done', resolve));
    supervisor.start();
    const status = await done;
    await Promise.all(outputs);
    return status;
  } finally {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  }
}

function nodeList(value: string): number[] {
  const ids = value.split(',').map((s) => s.trim());
  if (ids.some((s) => !/^\d{1,9}$/.test(s))) throw new InvalidArgumentError('expected NUMA node ids separated by commas, e.g. 0,2');
  return ids.map(Number);
}

function nonNegativeInt(value: string): number {
  if (!/^\d{1,9}$/.test(value.trim())) throw new InvalidArgumentError('expected a non-negative integer');
  return Number(value);
}

export function addRunCommand(program: Command): void {
  program
    .command('run')
    .usage('--per-node [options] -- <command...>')
    .description('run one copy of a command per NUMA node, each confined to its node (like numactl per socket, supervised)')
    .option('--per-node', 'one copy per NUMA node with CPUs this process may use (required)')
    .addOption(new Option('--membind', "bind each copy's memory to its node: allocations fail rather than go remote (default)").conflicts('preferred'))
    .addOption(new Option('--preferred', "allocate from the copy's node first, from other nodes when it is full"))
    .option('--nodes <list>', 'only these nodes, e.g. 0,2 (each must have CPUs this process may use)', nodeList)
    .option('--restart', `restart a copy that exits with a non-zero code or is killed by a signal, after ${RESTART_BASE_DELAY_MS} ms doubling up to ${RESTART_MAX_DELAY_MS / 1000} s`)
    .option('--max-restarts <n>', `with --restart: restarts per node before it is left down (default ${DEFAULT_MAX_RESTARTS}); a copy that ran ${RESTART_STABLE_MS / 1000} s starts a fresh count`, nonNegativeInt)
    .argument('<command...>', 'the command and its arguments, after --')
    .addHelpText(
      'after',
      `
Each copy runs with HWSQ_NUMA_NODE=<node> in its environment (a hwsq Runtime inside uses only
that node), its CPU affinity set to the node's CPUs and its memory policy bound to (or, with
--preferred, preferring) the node, from its first instruction; threads and processes it starts
inherit both. A node without memory gives its copy no memory policy (nearest node). Stdin is
/dev/null.

Output: when stdout (stderr) is a terminal, each line a copy writes there is prefixed with
"[node <k>] "; otherwise the copies write to it directly, without prefix.

Signals: SIGINT, SIGTERM and SIGHUP are forwarded to every copy's process group and end the run
(no more restarts); SIGUSR1 and SIGUSR2 are forwarded to every copy. A second SIGINT kills every
copy (SIGKILL). Copies run in their own session: a terminal's Ctrl-C reaches them only through
hwsq, once.

Exit code: the worst (highest) status among the copies' last exits: its exit code, 128+n when
killed by signal n, 127 when the command was not found, 126 when it is not executable.

Examples:
  hwsq run --per-node -- node server.js
  hwsq run --per-node --nodes 0,2 --restart -- numactl --show`,
    )
    .action(async (command: string[], opts: { perNode?: boolean; membind?: boolean; preferred?: boolean; nodes?: number[]; restart?: boolean; maxRestarts?: number }) => {
      if (!opts.perNode) throw rangeError(ErrorCodes.INVALID_ARG, 'hwsq run needs --per-node (one copy of the command per NUMA node)');
      if (opts.maxRestarts !== undefined && !opts.restart) throw rangeError(ErrorCodes.INVALID_ARG, '--max-restarts needs --restart');
      process.exitCode = await runPerNode(command, {
        nodes: opts.nodes,
        memory: opts.preferred ? 'preferred' : 'bind',
        restart: opts.restart,
        maxRestarts: opts.maxRestarts,
      });
    });
}
