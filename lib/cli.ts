// The `hwsq` command line.
import { Command } from 'commander';
import { topology } from './topology';
import { formatTopology } from './topology-report';
import { version } from './version';

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
