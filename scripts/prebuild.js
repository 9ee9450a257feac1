#!/usr/bin/env node
// `npm run prebuild`: N-API prebuilds for linux-x64 and linux-arm64 (glibc) made with prebuildify,
// as prebuilds/linux-<arch>/hwsq.glibc.node: the binaries the npm tarball ships and that
// node-gyp-build loads where the package has no build/. arm64 is cross-compiled with Debian's
// g++-aarch64-linux-gnu. Built with Debian 12's GCC 12, they need glibc 2.34 and GCC 12's
// libstdc++ (FLOOR): where those are older, the prebuild fails node-gyp-build's load test at
// npm install and the addon is built from source. (Linking libstdc++ statically would not lower
// the floor: Debian 12's libstdc++.a needs glibc 2.36.)
//
// They are built from a copy of exactly the sources the tarball ships for rebuilding (binding.gyp,
// native/core, native/napi; see "files" in package.json), so a tarball that could not rebuild from
// source fails here first, and build/ (the development build) is left alone.
//
// Usage: node scripts/prebuild.js [--arch x64,arm64]   (default: both)
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { nodeHeadersEnv } = require('./node-headers');
const { checkTools } = require('./requirements');

const root = path.resolve(__dirname, '..');
/** What the tarball ships to rebuild the addon from source. */
const SOURCES = ['binding.gyp', 'native/core', 'native/napi'];
/** Newest symbol version a prebuild may need from each system library (README: Prebuilds).
 * GCC (libgcc_s): 3.3.1 for __gcc_personality_v0, which the link-time optimized build references
 * (every libgcc_s since 2003 has it). */
const FLOOR = { GLIBC: '2.34', GLIBCXX: '3.4.30', CXXABI: '1.3.13', GCC: '3.3.1' };
const ELF_MACHINE = { x64: 62, arm64: 183 };

const ARCHES = {
  x64: { env: {}, strip: 'strip', tools: [] },
  arm64: {
    env: { CC: 'aarch64-linux-gnu-gcc', CXX: 'aarch64-linux-gnu-g++', AR: 'aarch64-linux-gnu-ar' },
    strip: 'aarch64-linux-gnu-strip',
    tools: ['arm64-cross'],
  },
};

function prebuildPath(arch) {
  return path.join(root, 'prebuilds', `linux-${arch}`, 'hwsq.glibc.node');
}

/** The ELF e_machine of a file (62 x86-64, 183 aarch64), or null when it is not ELF. */
function elfMachine(file) {
  const h = Buffer.alloc(20);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, h, 0, 20, 0);
  } finally {
    fs.closeSync(fd);
  }
  return h.readUInt32BE(0) === 0x7f454c46 ? h.readUInt16LE(18) : null;
}

/** Newest version needed of each versioned library namespace (GLIBC, GLIBCXX, CXXABI, GCC). */
function versionNeeds(file) {
  const r = spawnSync('readelf', ['-V', '--wide', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`readelf -V ${file}: ${r.stderr || r.error?.message}`);
  const needs = r.stdout.split(/\n(?=Version needs section)/).filter((s) => s.startsWith('Version needs section')).join('\n');
  const newest = {};
  for (const m of needs.matchAll(/Name: ([A-Z]+)_([\d.]+)/g)) {
    const [, ns, v] = m;
    if (!newest[ns] || compareVersions(v, newest[ns]) > 0) newest[ns] = v;
  }
  return newest;
}

/** The needs (as NS_version) newer than FLOOR, or from a library FLOOR does not list. */
function aboveFloor(needs) {
  return Object.entries(needs)
    .filter(([ns, v]) => !FLOOR[ns] || compareVersions(v, FLOOR[ns]) > 0)
    .map(([ns, v]) => `${ns}_${v}`);
}

function compareVersions(a, b) {
  return a.localeCompare(b, 'en', { numeric: true });
}

function run(cmd, args, opts) {
  console.log(`$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.status !== 0) throw new Error(`${cmd} exited with ${r.status ?? r.signal ?? r.error?.message}`);
}

function prebuild(arch) {
  const spec = ARCHES[arch];
  if (!spec) throw new Error(`unknown arch ${arch}; choose from ${Object.keys(ARCHES).join(', ')}`);
  const missing = checkTools(spec.tools);
  if (missing) throw new Error(`linux-${arch} prebuild: ${missing.reason}; ${missing.enable}`);
  // Inside the repository (build-*/ is ignored): prebuildify renames the result into prebuilds/.
  const stage = path.join(root, `build-prebuild-${arch}`);
  fs.rmSync(stage, { recursive: true, force: true });
  fs.mkdirSync(stage);
  try {
    for (const p of [...SOURCES, 'package.json']) fs.cpSync(path.join(root, p), path.join(stage, p), { recursive: true });
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(stage, 'node_modules'));
    const env = {
      ...process.env,
      ...nodeHeadersEnv(),
      ...spec.env,
      JOBS: process.env.JOBS ?? '2',
    };
    const bin = path.join(root, 'node_modules', 'prebuildify', 'bin.js');
    run(process.execPath, [bin, '--napi', '--strip', '--strip-bin', spec.strip, '--tag-libc', '--arch', arch, '--out', root], { cwd: stage, env });
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
  const file = prebuildPath(arch);
  if (elfMachine(file) !== ELF_MACHINE[arch]) throw new Error(`${file} is not a linux-${arch} ELF file`);
  const needs = versionNeeds(file);
  const beyond = aboveFloor(needs);
  if (beyond.length) throw new Error(`${file} needs ${beyond.join(', ')}, newer than FLOOR (update it and the README if that is intended)`);
  const summary = Object.entries(needs).map(([ns, v]) => `${ns}_${v}`).join(', ');
  console.log(`prebuild: ${path.relative(root, file)} (${(fs.statSync(file).size / 1024).toFixed(0)} KiB; needs ${summary})`);
  return file;
}

module.exports = { ARCHES, ELF_MACHINE, FLOOR, SOURCES, aboveFloor, elfMachine, prebuild, prebuildPath, versionNeeds };

if (require.main === module) {
  const i = process.argv.indexOf('--arch');
  const arches = i > 0 ? (process.argv[i + 1] ?? '').split(',').filter(Boolean) : Object.keys(ARCHES);
  try {
    for (const arch of arches) prebuild(arch);
  } catch (err) {
    console.error(`prebuild: ${err.message}`);
    process.exit(1);
  }
}
