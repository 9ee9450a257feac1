// Runs inside a multi-NUMA QEMU guest (see test/bench.vm.test.ts): `hwsq bench memory` and
// `hwsq bench compare` through the CLI with --quick, each writing its JSON to a file and its
// table to stdout, plus numactl -H as an independent view of the nodes. Prints one JSON object.
// TCG timings mean nothing: the host test checks shapes, placement and steal behaviour only.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '../..');
const cli = path.join(root, 'bin', 'hwsq.js');

function bench(args, file) {
  const t0 = Date.now();
  const text = execFileSync(process.execPath, [cli, 'bench', ...args, '--json', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
  return { json: JSON.parse(fs.readFileSync(file, 'utf8')), text, ms: Date.now() - t0 };
}

const result = {
  numactl: execFileSync('numactl', ['-H'], { encoding: 'utf8' }),
  // Small buffers (guest nodes hold a few hundred MiB) and short samples.
  memory: bench(['memory', '--quick', '--size', '8M', '--duration', '10ms', '--reps', '2'], '/tmp/memory.json'),
  // 3000 tasks per node fit in a node queue (HWSQ, 4096): none overflows into the node-blind
  // global queue, so where tasks run is decided by the steal policy alone.
  compare: bench(['compare', '--quick', '--tasks', '3000', '--size', '16K', '--buffer', '2M', '--reps', '2'], '/tmp/compare.json'),
};
process.stdout.write(JSON.stringify(result) + '\n');
