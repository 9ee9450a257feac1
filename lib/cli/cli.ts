// The `hwsq` command line.
import { Command } from 'commander';
import { addBenchCommands, addReportCommand } from '../bench/commands';
import { repsArg, tasksArg, workersArg } from './cli-args';
import { formatSpawnBench, runSpawnBench } from '../bench/spawn';
import { addObservabilityCommands } from '../metrics/cli';
import { addRunCommand } from '../per-node/run';
import { addShmCommands } from '../shm/cli';
import { topology } from '../numa/topology';
import { formatTopology } from '../numa/topology-report';
import { version } from '../core/version';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('hwsq')
    .description('NUMA-aware work-stealing runtime for Node.js: topology, pinning, benchmarks')
    .version(version);

  program
    .command('topology')
    .description('show NUMA nodes, CPUs, distances, caches and cgroup-aware parallelism')
    .option('--json', 'print one JSON object instead of the human summary')
    .option('--fsroot <dir>', 'read sys/ and proc/ below this directory (a dump of another machine); default $HWSQ_FSROOT')
    .action((opts: { json?: boolean; fsroot?: string }) => {
      const topo = topology({ fsroot: opts.fsroot });
      process.stdout.write(opts.json ? JSON.stringify(topo, null, 2) + '\n' : formatTopology(topo) + '\n');
    });

  const bench = program.command('bench').description('benchmarks of the scheduler on this machine');
  bench
    .command('spawn')
    .description('spawn+complete of native no-op tasks in ns/task: hwsq from C++ and JS, what stats cost (default options vs stats: false vs full timing vs a control, many short interleaved rounds on fresh runtimes, the median ratio with its 95% interval; instructions per task under callgrind when valgrind is installed), oneTBB (also paired with hwsq round by round, by wall clock and by CPU time) and Go when installed, queue microbenchmarks, and the CPUs other processes kept busy meanwhile')
    .option('--json', 'print one JSON object instead of the human summary')
    .option('--tasks <n>', 'tasks per measurement (default 1000000; 100000 with --quick)', tasksArg)
    .option('--reps <n>', 'repetitions, the median is reported (default 5; 3 with --quick); the stats cost runs 200 interleaved rounds per repetition (bench_spawn: 40)', repsArg)
    .option('--workers <n>', "workers (default: cgroup-aware available parallelism)", workersArg)
    .option('--quick', 'fewer tasks and repetitions')
    .option('--no-go', 'skip the Go comparison')
    .action(async (opts: { json?: boolean; tasks?: number; reps?: number; workers?: number; quick?: boolean; go: boolean }) => {
      const log = opts.json ? undefined : (line: string) => process.stderr.write(`# ${line}\n`);
      const report = await runSpawnBench({ tasks: opts.tasks, reps: opts.reps, workers: opts.workers, quick: opts.quick, go: opts.go, log });
      process.stdout.write(opts.json ? JSON.stringify(report, null, 2) + '\n' : formatSpawnBench(report) + '\n');
    });

  addBenchCommands(bench);
  addReportCommand(program);
  addObservabilityCommands(program);
  addShmCommands(program);
  addRunCommand(program);

  return program;
}

export async function main(argv: string[] = process.argv): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    const e = err as Error & { code?: string };
    process.stderr.write(`hwsq: ${e.message}${e.code ? ` (${e.code})` : ''}\n`);
    process.exitCode = 1;
  }
}
