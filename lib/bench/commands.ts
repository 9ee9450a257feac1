// The probe commands of `hwsq bench` (memory, latency, compare, pools) and `hwsq report`,
// added to the program by lib/cli/cli.ts.
import fs from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { durationArg, intListArg, repsArg, roundTripsArg, sizeArg, tasksArg, workersArg } from '../cli/cli-args';
import { emit, Interrupt, runBench, type BenchEnvelope, type BenchKind } from './common';
import { formatCompareBench, runCompareBench, type CompareResults } from './compare';
import { formatLatencyBench, runLatencyBench, type LatencyResults, type TaskRuntime } from './latency';
import { formatMemoryBench, runMemoryBench, type MemoryResults } from './memory';
import { formatPoolsReport, runPoolsBench, type PoolsReport } from './pools';
import { readResultFile, renderReport } from '../report/html';

const JSON_HELP = 'print JSON on stdout instead of the table; with a file name, write the JSON there and print the table';
const WORKERS_HELP = 'workers (default: cgroup-aware available parallelism)';

/** A probe subcommand with the options every probe has. */
function probe(bench: Command, name: string, description: string, quickHelp: string): Command {
  return bench.command(name).description(description).option('--json [file]', JSON_HELP).option('--quick', quickHelp);
}

/** Runs a probe inside runBench (machine, timing, Ctrl-C) and prints or writes its result. */
async function runAndEmit<K extends BenchKind, R>(
  kind: K,
  options: Record<string, unknown>,
  body: (interrupt: Interrupt) => Promise<R>,
  format: (e: BenchEnvelope<K, R>) => string,
  json: boolean | string | undefined,
  interrupt?: Interrupt,
): Promise<void> {
  const env = await runBench(kind, options, ({ interrupt: i }) => body(i), { interrupt });
  emit(env, (e) => format(e as BenchEnvelope<K, R>), json);
}

interface Common {
  json?: boolean | string;
  quick?: boolean;
  reps?: number;
  workers?: number;
}

/** Adds memory, latency, compare and (unless already there) pools to `bench`. */
export function addBenchCommands(bench: Command): void {
  probe(bench, 'memory', 'idle latency and read bandwidth for every (CPU node, memory node) pair, like Intel MLC --latency_matrix / --bandwidth_matrix', 'fewer and shorter samples (3 x 50 ms)')
    .option('--size <bytes>', 'buffer per memory node (default: 4x the LLC, at least 64M, at most 1/4 of the node\'s free memory)', sizeArg)
    .option('--duration <time>', 'length of one timed sample, up to 60s (default 200ms; 50ms with --quick)', durationArg)
    .option('--reps <n>', 'timed samples per cell; median and spread are reported (default 5; 3 with --quick)', repsArg)
    .option('--no-huge-pages', 'do not ask for transparent huge pages')
    .option('--only <what>', "'latency' or 'bandwidth'")
    .action(async (o: Common & { size?: number; duration?: number; hugePages: boolean; only?: string }) => {
      if (o.only !== undefined && o.only !== 'latency' && o.only !== 'bandwidth') throw new InvalidArgumentError("--only takes 'latency' or 'bandwidth'");
      const options = { sizeBytes: o.size, durationMs: o.duration, reps: o.reps, quick: o.quick ?? false, hugePages: o.hugePages, only: o.only ?? null };
      await runAndEmit<'memory', MemoryResults>(
        'memory',
        options,
        (interrupt) => runMemoryBench({ ...options, latency: o.only !== 'bandwidth', bandwidth: o.only !== 'latency', interrupt }),
        formatMemoryBench,
        o.json,
      );
    });

  probe(bench, 'latency', 'scheduling latency (submit -> first instruction) of bursts of native and JS tasks, p50/p90/p99/max, and the idle round trip', 'fewer repetitions and round trips')
    .option('--bursts <list>', 'burst sizes, each up to 10000000 (default 1000,10000)', intListArg(10_000_000))
    .option('--reps <n>', 'repetitions of each burst (default 5; 3 with --quick)', repsArg)
    .option('--round-trips <n>', 'idle round trips (default 200; 50 with --quick)', roundTripsArg)
    .option('--duration <time>', 'pause before each round trip, so the workers are parked, up to 60s (default 5ms)', durationArg)
    .option('--workers <n>', WORKERS_HELP, workersArg)
    .option('--policy <policy>', "'hierarchical' (default) or 'flat'")
    .option('--runtimes <list>', "'native', 'js' or both (default native,js)")
    .action(async (o: Common & { bursts?: number[]; roundTrips?: number; duration?: number; policy?: string; runtimes?: string }) => {
      const runtimes = (o.runtimes ?? 'native,js').split(',').map((s) => s.trim()) as TaskRuntime[];
      if (runtimes.some((r) => r !== 'native' && r !== 'js')) throw new InvalidArgumentError("--runtimes takes 'native', 'js' or 'native,js'");
      if (o.policy !== undefined && o.policy !== 'hierarchical' && o.policy !== 'flat') throw new InvalidArgumentError("--policy takes 'hierarchical' or 'flat'");
      const options = {
        bursts: o.bursts,
        reps: o.reps,
        roundTrips: o.roundTrips,
        idleGapMs: o.duration,
        workers: o.workers,
        stealPolicy: o.policy as 'hierarchical' | 'flat' | undefined,
        quick: o.quick ?? false,
        runtimes,
      };
      await runAndEmit<'latency', LatencyResults>('latency', options, (interrupt) => runLatencyBench({ ...options, interrupt }), formatLatencyBench, o.json);
    });

  probe(bench, 'compare', "the same node-local workload under stealPolicy 'flat' and 'hierarchical' (and spawned with node: 'auto'): p99 latency, steals per 10k tasks, cross-NUMA ratio, throughput", 'fewer tasks and runs')
    .option('--tasks <n>', 'tasks per node per run (default 50000; 10000 with --quick)', tasksArg)
    .option('--size <bytes>', 'bytes each task touches (default 16K)', sizeArg)
    .option('--buffer <bytes>', 'node-local buffer per node (default 16M)', sizeArg)
    .option('--reps <n>', 'runs per policy (default 5; 3 with --quick)', repsArg)
    .option('--workers <n>', WORKERS_HELP, workersArg)
    .option('--auto', "also run 'auto': hierarchical, each buffer's tasks spawned with node: 'auto' (the node holding the buffer)")
    .option('--rotate-memory', 'place the buffer meant for node i on node i+1 (tasks spawned for node i then run away from their memory unless node is auto)')
    .action(async (o: Common & { tasks?: number; size?: number; buffer?: number; auto?: boolean; rotateMemory?: boolean }) => {
      if (o.size !== undefined && o.size % 64 !== 0) throw new InvalidArgumentError('--size must be a multiple of 64 bytes');
      const options = { tasksPerNode: o.tasks, bytesPerTask: o.size, bufferBytes: o.buffer, reps: o.reps, workers: o.workers, quick: o.quick ?? false, auto: o.auto ?? false, rotateMemory: o.rotateMemory ?? false };
      await runAndEmit<'compare', CompareResults>('compare', options, (interrupt) => runCompareBench({ ...options, interrupt }), formatCompareBench, o.json);
    });

  if (!bench.commands.some((c) => c.name() === 'pools')) {
    probe(bench, 'pools', 'hwsq Runtime vs piscina and tinypool on the same tasks and worker count: throughput and round trip, as ratios', 'fewer tasks and round trips')
      .option('--tasks <n>', 'tiny tasks per throughput round (default 100000; 20000 with --quick)', tasksArg)
      .option('--round-trips <n>', 'round trips measured (default 3000; 500 with --quick)', roundTripsArg)
      .option('--workers <n>', 'workers of every pool (default: cgroup-aware available parallelism)', workersArg)
      .option('--reps <n>', 'timed runs of each throughput round and fib (default 5; 3 with --quick)', repsArg)
      .action(async (o: Common & { tasks?: number; roundTrips?: number; reps?: number }) => {
        const options = { workers: o.workers, tasks: o.tasks, roundTrips: o.roundTrips, reps: o.reps, quick: o.quick ?? false };
        const log = o.json === true ? undefined : (line: string) => process.stderr.write(`# ${line}\n`);
        await runAndEmit<'pools', PoolsReport>('pools', options, (interrupt) => runPoolsBench({ ...options, log, interrupt }), (e) => formatPoolsReport(e.results, e.interrupted), o.json);
      });
  }
}

/** `hwsq report <json...> -o report.html`. */
export function addReportCommand(program: Command): void {
  program
    .command('report')
    .description('render results written by `hwsq bench <probe> --json <file>` as one self-contained HTML page with charts')
    .argument('<json...>', 'result files (memory, latency, compare, pools, spawn)')
    .option('-o, --output <file>', 'the HTML file to write', 'report.html')
    .option('--title <text>', 'page title', 'hwsq benchmark report')
    .action(async (files: string[], o: { output: string; title: string }) => {
      const inputs = files.map((f) => readResultFile(f));
      fs.writeFileSync(o.output, renderReport(inputs, { title: o.title }));
      process.stderr.write(`hwsq: wrote ${o.output} (${inputs.length} result file${inputs.length === 1 ? '' : 's'})\n`);
    });
}
