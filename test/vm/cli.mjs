#!/usr/bin/env node
// Runs one command in a multi-NUMA QEMU guest by hand. See README.md.
//
//   node test/vm/cli.mjs [options] -- COMMAND...
//
//   --topology NAME        twoNode (default), fourNode or cpuless
//   --nodes SPEC           custom nodes instead: CPUS:MEMMIB per node, comma-separated ("2:256,0:128")
//   --distances ROWS       custom distance matrix: rows separated by "/", values by "," ("10,30/30,10")
//   --cwd DIR              working directory in the guest (default: the repo root)
//   --timeout SECONDS      default 180
//   --env K=V              repeatable
//   --console              stream the serial console (kernel messages) to stderr
//   --list                 print the predefined topologies and the QEMU arguments
//   --check                check the tools only
//
// The command's output goes to stdout and the command's exit code becomes this process's exit code.
import { APT_COMMAND, TOPOLOGIES, runInVm, topologyArgs, vmToolsAvailable } from './vm.mjs';

function usage(msg) {
  if (msg) console.error(`cli.mjs: ${msg}`);
  console.error('usage: node test/vm/cli.mjs [--topology twoNode|fourNode|cpuless] [--nodes 2:256,0:128] [--distances 10,30/30,10] [--cwd DIR] [--timeout S] [--env K=V]... [--console] -- COMMAND...');
  process.exit(2);
}

const argv = process.argv.slice(2);
const dash = argv.indexOf('--');
const opts = dash >= 0 ? argv.slice(0, dash) : argv;
const commandWords = dash >= 0 ? argv.slice(dash + 1) : [];

let topo = TOPOLOGIES.twoNode;
let nodes;
let distances;
const run = { env: {} };
let showConsole = false;
for (let i = 0; i < opts.length; i++) {
  const a = opts[i];
  const val = () => opts[++i] ?? usage(`${a} needs a value`);
  if (a === '--topology') {
    const name = val();
    topo = TOPOLOGIES[name] ?? usage(`unknown topology ${name} (have ${Object.keys(TOPOLOGIES).join(', ')})`);
  } else if (a === '--nodes') {
    nodes = val().split(',').map((s) => {
      const [cpus, memMiB] = s.split(':').map(Number);
      return { cpus, memMiB: memMiB ?? 256 };
    });
  } else if (a === '--distances') distances = val().split('/').map((r) => r.split(',').map(Number));
  else if (a === '--cwd') run.cwd = val();
  else if (a === '--timeout') run.timeoutMs = Number(val()) * 1000;
  else if (a === '--env') {
    const kv = val();
    const eq = kv.indexOf('=');
    if (eq <= 0) usage(`--env wants K=V, got ${kv}`);
    run.env[kv.slice(0, eq)] = kv.slice(eq + 1);
  } else if (a === '--console') showConsole = true;
  else if (a === '--list') {
    for (const t of Object.values(TOPOLOGIES)) console.log(`${t.name}: ${JSON.stringify(t.nodes)}\n  ${topologyArgs(t).join(' ')}`);
    process.exit(0);
  } else if (a === '--check') {
    const { ok, missing } = vmToolsAvailable();
    console.log(ok ? 'ok' : `missing:\n  ${missing.join('\n  ')}\ninstall with: ${APT_COMMAND}`);
    process.exit(ok ? 0 : 1);
  } else if (a === '-h' || a === '--help') usage();
  else usage(`unknown option ${a}`);
}
if (nodes) topo = { name: 'custom', nodes, ...(distances ? { distances } : {}) };
else if (distances) topo = { ...topo, distances };
if (commandWords.length === 0) usage('no command (put it after --)');

// One word: a shell command line as is ("numactl -H | head"); several: words, quoted for sh.
const command =
  commandWords.length === 1 ? commandWords[0] : commandWords.map((w) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`)).join(' ');
if (showConsole) run.onConsole = (s) => process.stderr.write(s);

try {
  const r = await runInVm(topo, command, run);
  process.stdout.write(r.stdout);
  console.error(`[vm ${topo.name}: exit ${r.exitCode}, boot ${r.bootMs ?? '?'} ms, total ${r.durationMs} ms${r.boots > 1 ? `, booted ${r.boots} times` : ''}]`);
  process.exitCode = r.exitCode;
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 125;
}
