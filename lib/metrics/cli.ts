// CLI commands of the observability layer: `hwsq metrics serve` and `hwsq top`.
import { InvalidArgumentError, type Command } from 'commander';
import { httpUrlArg, intArg, virtualTopologyArg, workersArg } from '../cli-args';
import { createNativeRuntime, type NativeRuntime, type NativeRuntimeOptions } from '../native-runtime';
import { LIMITS } from '../validation';
import { runTop } from '../top';
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
}

export function addObservabilityCommands(program: Command): void {
  const metrics = program.command('metrics').description('Prometheus and JSON metrics of a scheduler runtime');
  metrics
    .command('serve')
    .description('start a native runtime in this process and serve /metrics (Prometheus) and /metrics/scheduler (JSON) until SIGINT/SIGTERM')
    .option('--port <n>', 'TCP port (0: any free port)', intArg(0, 65535), 9464)
    .option('--host <addr>', "address to bind ('0.0.0.0' inside a pod)", '127.0.0.1')
    .option('--workers <n>', 'workers (default: cgroup-aware available parallelism)', workersArg)
    .option('--virtual <NxM>', 'a virtual topology of N nodes with M unpinned workers each (NUMA views on any machine)', virtualTopologyArg)
    .option('--demo', 'run a light demo workload continuously')
    .option('--prefix <prefix>', 'metric name prefix', 'hwsq_')
    .action(async (opts: ServeOpts) => {
      if (opts.workers !== undefined && opts.virtual) throw new InvalidArgumentError('--workers and --virtual exclude each other');
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
    .description('live view of a runtime from its metrics server: utilization, queues, steals/s, latency, hogs (q or Ctrl-C quits)')
    .requiredOption('--url <url>', 'metrics server, e.g. http://127.0.0.1:9464', httpUrlArg)
    .option('--interval <ms>', 'poll period in milliseconds (50 to 3600000)', intArg(50, LIMITS.timeoutMs), 1000)
    .option('--count <n>', 'stop after this many polls', intArg(1, 2 ** 31))
    .action(async (opts: { url: string; interval: number; count?: number }) => {
      process.exitCode = await runTop({ url: opts.url, intervalMs: opts.interval, count: opts.count });
    });
}
