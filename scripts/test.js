#!/usr/bin/env node
// `npm test`: typecheck, native core tests (plain, ASAN+UBSAN, TSAN, fuzzing), vitest unit tests, and the
// multi-NUMA QEMU harness. Every stage runs; the exit code says whether all passed.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const bin = (name) => path.join(root, 'node_modules', '.bin', name);
const stages = [
  ['typecheck', bin('tsc'), ['-p', 'tsconfig.json']],
  ['native', process.execPath, ['scripts/native-tests.js']],
  ['unit', bin('vitest'), ['run']],
  ['vm', bin('vitest'), ['run', '--config', 'vitest.vm.config.ts']],
];
// The unit tests again under a second Node major (the addon is N-API, so the same binary must
// load): HWSQ_COMPAT_NODE=/path/to/node. .ci/run installs Node 22 for this.
if (process.env.HWSQ_COMPAT_NODE) {
  stages.push(['compat', process.env.HWSQ_COMPAT_NODE, [bin('vitest'), 'run']]);
} else {
  console.log('note: HWSQ_COMPAT_NODE is not set: the unit tests run under this Node only (' + process.version + ')');
}
const only = process.env.HWSQ_TEST_STAGES ? process.env.HWSQ_TEST_STAGES.split(',') : null;

const results = [];
for (const [name, cmd, args] of stages) {
  if (only && !only.includes(name)) continue;
  console.log(`\n=== ${name}: ${path.basename(cmd)} ${args.join(' ')}`);
  const started = Date.now();
  // A compat run puts its node first on PATH so that the tests' child processes use it too.
  const env = name === 'compat' ? { ...process.env, PATH: `${path.dirname(cmd)}${path.delimiter}${process.env.PATH}` } : process.env;
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env });
  results.push({ name, ok: r.status === 0, seconds: ((Date.now() - started) / 1000).toFixed(1) });
}
console.log('\n=== summary');
for (const r of results) console.log(`${r.ok ? 'pass' : 'FAIL'}  ${r.name} (${r.seconds}s)`);
process.exit(results.every((r) => r.ok) ? 0 : 1);
