// CLI commands of the observability layer: `hwsq metrics serve` and `hwsq top` (their --pid
// modes read another process's shared-memory stats file: lib/shm/cli.ts).
import { InvalidArgumentError, type Command } from 'commander';
import { httpUrlArg, intArg, virtualTopologyArg, workersArg } from '../cli/cli-args';
import { createNativeRuntime, type NativeRuntime, type NativeRuntimeOptions } from '../native-runtime/native-runtime';
import { DEFAULTS, LIMITS } from '../core/validation';
import { pidArg, runtimeIdArg, serveShmMetrics } from '../shm/cli';
import type { PidSpec } from '../shm/reader';
import { runTop } from '../cli/top';
import { serveMetrics } from './server';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A light, endless mix that exercises every counter: external spawns through the global queue,
 * node-affine spawns on every node, fan-outs from inside one worker (the others steal, across
 * nodes too), and a 15 ms hog now and then. About 30 ms of CPU per 100 ms round.
 */
export async function demoWorkload(rt: NativeRuntime, stopped: () => boolean): Promise<void> {
  for (let round = 0; !stopped(); round++) {
    const jobs: Promise<unknown>[] = [rt.spawnNative('spin', { ns: 50_000 }, { count: 400 }), rt.spawnNative('noop', {}, { count: 2000, inside: true, worker: round % rt.size })];
    for (const node of rt.nodes) jobs.push(rt.spawnNative('spin', { ns: 20_000 }, { count: 200, node }));
    if (round % 50 === 10) jobs.push(rt.spawnNative('spin', { ns: 15e6 }));
    await Promise.all(jobs);
    await sleep(100);
  }
}

interface ServeOpts {
  port: number;
  host: string;
  workers?: number;
  virtual?: { nodes: number; workersPerNode: number };
  demo?: boolean;
  prefix: string;
  pid?: PidSpec;
  runtime?: number;
}

export function addObservabilityCommands(program: Command): void {
  const metrics = program.command('metrics').description('Prometheus and JSON metrics of a scheduler runtime');
  metrics
    .command('serve')
    .description('start a native runtime in this process, or read process --pid <pid>, and serve /metrics (Prometheus) and /metrics/scheduler (JSON) until SIGINT/SIGTERM')
    .option('--port <n>', 'TCP port (0: any free port)', intArg(0, 65535), DEFAULTS.metricsPort)
    .option('--host <addr>', "address to bind ('0.0.0.0' inside a pod)", '127.0.0.1')
    .option('--workers <n>', 'workers (default: cgroup-aware available parallelism)', workersArg)
    .option('--virtual <NxM>', 'a virtual topology of N nodes with M unpinned workers each (NUMA views on any machine)', virtualTopologyArg)
    .option('--demo', 'run a light demo workload continuously')
    .option('--prefix <prefix>', 'metric name prefix', 'hwsq_')
    .option('--pid <pid>', "serve another process's runtime from its shared-memory stats file ('auto': the one process that publishes; exits when it is gone)", pidArg)
    .option('--runtime <id>', 'with --pid: which of its runtimes (default: its first running one)', runtimeIdArg)
    .action(async (opts: ServeOpts) => {
      if (opts.workers !== undefined && opts.virtual) throw new InvalidArgumentError('--workers and --virtual exclude each other');
      if (opts.runtime !== undefined && opts.pid === undefined) throw new InvalidArgumentError('--runtime needs --pid');
      if (opts.pid !== undefined) {
        if (opts.workers !== undefined || opts.virtual || opts.demo) throw new InvalidArgumentError('--pid excludes --workers, --virtual and --demo');
        process.exitCode = await serveShmMetrics({ pid: opts.pid, runtime: opts.runtime, port: opts.port, host: opts.host, prefix: opts.prefix });
        return;
      }
      const rtOptions: NativeRuntimeOptions = opts.virtual ? { virtualTopology: opts.virtual } : { workers: opts.workers ?? 'auto' };
      const rt = createNativeRuntime(rtOptions);
      let server: Awaited<ReturnType<typeof serveMetrics>>;
      try {
        server = await serveMetrics(rt, { port: opts.port, host: opts.host, prefix: opts.prefix });
      } catch (err) {
        rt.destroy();
        throw err;
      }
      let stopping = false;
      const demo = opts.demo ? demoWorkload(rt, () => stopping).catch((err: Error) => void process.stderr.write(`hwsq: demo workload stopped: ${err.message}\n`)) : Promise.resolve();
      process.stdout.write(`serving ${server.url}/metrics and ${server.url}/metrics/scheduler (${rt.size} workers on nodes ${rt.nodes.join(',')}${opts.demo ? ', demo workload' : ''})\n`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      stopping = true;
      await demo;
      await server.close();
      await rt.close();
    });

  program
    .command('top')
    .description('live view of a runtime from its metrics server (--url) or its process\'s shared-memory stats file (--pid): utilization, queues, steals/s, latency, hogs (q or Ctrl-C quits)')
    .option('--url <url>', 'metrics server, e.g. http://127.0.0.1:9464', httpUrlArg)
    .option('--pid <pid>', "a process's shared-memory stats file ('auto': the one process that publishes)", pidArg)
    .option('--runtime <id>', 'with --pid: which of its runtimes (default: its first running one)', runtimeIdArg)
    .option('--interval <ms>', 'poll period in milliseconds (50 to 3600000)', intArg(50, LIMITS.timeoutMs), 1000)
    .option('--count <n>', 'stop after this many polls', intArg(1, 2 ** 31))
    .action(async (opts: { url?: string; pid?: PidSpec; runtime?: number; interval: number; count?: number }) => {
      if ((opts.url === undefined) === (opts.pid === undefined)) throw new InvalidArgumentError('give one of --url and --pid');
      if (opts.runtime !== undefined && opts.pid === undefined) throw new InvalidArgumentError('--runtime needs --pid');
      const target = opts.pid !== undefined ? { pid: opts.pid, ...(opts.runtime !== undefined ? { runtime: opts.runtime } : {}) } : { url: opts.url };
      process.exitCode = await runTop({ ...target, intervalMs: opts.interval, count: opts.count });
    });
}
