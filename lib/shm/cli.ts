// CLI commands that read other processes' shared-memory stats files: `hwsq ps`, `hwsq stats
// --pid`, and the --pid modes of `hwsq top` and `hwsq metrics serve` (lib/metrics/cli.ts). A file
// that cannot be read ends the command with a message and an exit code of its own (SHM_EXIT_CODES).
import { InvalidArgumentError, type Command } from 'commander';
import { intArg } from '../cli/cli-args';
import { ErrorCodes, type ErrorCode } from '../core/errors';
import { serveMetrics } from '../metrics/server';
import type { SchedulerJson } from '../metrics/scheduler-json';
import { renderTop } from '../cli/top';
import { LIMITS } from '../core/validation';
import { shmDirectory } from './config';
import { commandOf, listShmProcesses, resolvePid, shmDocumentReader, type PidSpec, type ShmProcess } from './reader';
import { ShmMetricsSource } from './source';

/** Exit codes of the commands that read a stats file (1: bad arguments, as everywhere). */
export const SHM_EXIT_CODES: Readonly<Partial<Record<ErrorCode, number>>> = Object.freeze({
  [ErrorCodes.NO_SUCH_PROCESS]: 3,
  [ErrorCodes.SHM_NOT_PUBLISHED]: 4,
  [ErrorCodes.SHM_PERMISSION]: 5,
  [ErrorCodes.SHM_STALE]: 6,
  [ErrorCodes.SHM_FOREIGN]: 7,
  [ErrorCodes.SHM_CORRUPT]: 8,
  [ErrorCodes.SHM_VERSION]: 9,
  [ErrorCodes.SHM_IO]: 10,
});

/** The target process is gone: an exporter or a watcher stops. */
const GONE = new Set<string>([ErrorCodes.NO_SUCH_PROCESS, ErrorCodes.SHM_NOT_PUBLISHED, ErrorCodes.SHM_STALE]);

export function exitCodeOf(err: unknown): number {
  const code = (err as { code?: string } | null)?.code;
  return (code && SHM_EXIT_CODES[code as ErrorCode]) || 1;
}

/** Prints `hwsq: <message> (<code>)` and returns the exit code. */
function report(err: unknown): number {
  const e = err as Error & { code?: string };
  process.stderr.write(`hwsq: ${e.message}${e.code ? ` (${e.code})` : ''}\n`);
  return exitCodeOf(err);
}

/** --pid: a pid (1..2^22) or 'auto' (the one process that publishes). */
export function pidArg(value: string): PidSpec {
  if (value === 'auto') return 'auto';
  try {
    return intArg(1, LIMITS.pid)(value);
  } catch {
    throw new InvalidArgumentError(`expected a process id from 1 to ${LIMITS.pid}, or 'auto'`);
  }
}
export const runtimeIdArg = intArg(1, Number.MAX_SAFE_INTEGER);

// ------------------------------------------------------------------ hwsq ps

function duration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${String(Math.floor(s / 3600) % 24).padStart(2, '0')}h`;
}

function nodesOf(r: ShmProcess['runtimes'][number]): number[] {
  return r.stats.nodes.map((n) => n.node);
}

/** One entry of `hwsq ps --json`. */
export function psEntry(p: ShmProcess): Record<string, unknown> {
  return {
    pid: p.pid,
    command: commandOf(p.pid),
    uid: p.uid,
    uptimeSeconds: p.uptimeSeconds,
    publishedAt: new Date(p.publishedAt).toISOString(),
    publishes: p.publishes,
    layout: `${p.layout.major}.${p.layout.minor}`,
    runtimeVersion: p.identity.runtime_version,
    runtimes: p.runtimes.map((r) => ({ id: r.id, kind: r.kind, workers: r.stats.workers.length, nodes: nodesOf(r), stealPolicy: r.stealPolicy, closed: r.closed })),
  };
}

export function formatPs(processes: ShmProcess[]): string {
  const rows = processes.map((p) => [
    String(p.pid),
    duration(p.uptimeSeconds),
    p.runtimes.map((r) => `${r.id}: ${r.kind}, ${r.stats.workers.length} workers, node${nodesOf(r).length === 1 ? '' : 's'} ${nodesOf(r).join(',')}${r.closed ? ' (closing)' : ''}`).join('; ') || '-',
    commandOf(p.pid, 200) || '?',
  ]);
  const header = ['PID', 'UPTIME', 'RUNTIMES', 'COMMAND'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

// ------------------------------------------------------------------ hwsq metrics serve --pid

export interface ServeShmOptions {
  pid: PidSpec;
  runtime?: number;
  port: number;
  host: string;
  prefix: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Serves /metrics and /metrics/scheduler of another process's runtime until SIGINT/SIGTERM (exit
 * 0) or until the target is gone (its exit code: a sidecar exits and is restarted for the next
 * one). `--pid auto` waits for the one process that publishes.
 */
export async function serveShmMetrics(o: ServeShmOptions): Promise<number> {
  const dir = shmDirectory();
  let stopped = false;
  let wake: (() => void) | undefined;
  const stop = () => {
    stopped = true;
    wake?.();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    let source: ShmMetricsSource | undefined;
    for (let waiting = false; !source; ) {
      try {
        source = new ShmMetricsSource(resolvePid(o.pid, dir), o.runtime, dir);
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (o.pid !== 'auto' || code !== ErrorCodes.SHM_NOT_PUBLISHED) return report(err);
        if (!waiting) process.stdout.write(`waiting for a process to publish hwsq stats in ${dir}\n`);
        waiting = true;
        await sleep(1000);
        if (stopped) return 0;
      }
    }
    const server = await serveMetrics(source, { port: o.port, host: o.host, prefix: o.prefix });
    const { process: target, runtime } = source.read();
    process.stdout.write(
      `serving ${server.url}/metrics and ${server.url}/metrics/scheduler of process ${target.pid} (runtime ${runtime.id}: ${runtime.kind}, ${runtime.workers.length} workers)\n`,
    );
    let exitCode = 0;
    const period = Math.min(1000, Math.max(100, target.intervalMs));
    while (!stopped) {
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, period);
      });
      if (stopped) break;
      try {
        source.read();
      } catch (err) {
        if (GONE.has((err as { code?: string }).code ?? '')) {
          exitCode = report(err);
          break;
        }
      }
    }
    await server.close();
    return exitCode;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

// ------------------------------------------------------------------ registration

export function addShmCommands(program: Command): void {
  program
    .command('ps')
    .description("processes of this user with hwsq runtimes, from their shared-memory stats files ($HWSQ_SHM_DIR or /dev/shm/hwsq-<uid>)")
    .option('--json', 'print { directory, processes: [{ pid, command, runtimes, ... }], skipped } instead of the table')
    .action((opts: { json?: boolean }) => {
      let listing;
      try {
        listing = listShmProcesses();
      } catch (err) {
        process.exitCode = report(err);
        return;
      }
      const processes = listing.processes.filter((p) => p.pid !== process.pid);
      if (opts.json) {
        process.stdout.write(JSON.stringify({ directory: listing.directory, processes: processes.map(psEntry), skipped: listing.skipped }, null, 2) + '\n');
        return;
      }
      process.stdout.write(processes.length ? formatPs(processes) + '\n' : `no process publishes hwsq stats in ${listing.directory}\n`);
      // Stale files (processes that are gone) are ignored; anything else is worth a line.
      for (const s of listing.skipped) if (s.code !== ErrorCodes.SHM_STALE) process.stderr.write(`hwsq ps: skipped ${s.file}: ${s.message} (${s.code})\n`);
    });

  program
    .command('stats')
    .description("a process's scheduler stats from its shared-memory stats file: the /metrics/scheduler document of one of its runtimes")
    .requiredOption('--pid <pid>', "the process ('auto': the one process that publishes)", pidArg)
    .option('--runtime <id>', 'which of its runtimes (ids: hwsq ps; default: its first running one)', runtimeIdArg)
    .option('--json', 'print the /metrics/scheduler JSON document instead of the summary')
    .action((opts: { pid: PidSpec; runtime?: number; json?: boolean }) => {
      let doc: SchedulerJson;
      try {
        doc = shmDocumentReader(opts.pid, opts.runtime)();
      } catch (err) {
        process.exitCode = report(err);
        return;
      }
      process.stdout.write(opts.json ? JSON.stringify(doc, null, 2) + '\n' : renderTop(doc, undefined, `pid ${doc.pid}`).join('\n') + '\n');
    });
}
