// Packages from the npm registry that npm test needs and npm install does not fetch: Node for
// other majors and for arm64 (node-linux-<arch>@<major>, which carries bin/node and the headers),
// and the arm64 build of rollup's native binding (vitest loads rollup; npm installed only the
// x64 one). Fetched with `npm pack` (no install scripts, no platform check) and unpacked into
// .cache/ once; later runs reuse them.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const cacheRoot = path.join(root, '.cache');

/** Unpacks the registry package `spec` into `dest` (its package/ folder's contents). */
function fetchPackage(spec, dest) {
  if (fs.existsSync(path.join(dest, 'package.json'))) return dest;
  const tmp = fs.mkdtempSync(path.join(cacheRoot, 'fetch-'));
  try {
    const pack = spawnSync('npm', ['pack', spec, '--json', '--pack-destination', tmp], { encoding: 'utf8', cwd: tmp });
    if (pack.status !== 0) throw new Error(`npm pack ${spec} failed: ${(pack.stderr || pack.error?.message || '').trim().split('\n').slice(-3).join(' ')}`);
    const [{ filename }] = JSON.parse(pack.stdout);
    const unpacked = path.join(tmp, 'out');
    fs.mkdirSync(unpacked);
    const tar = spawnSync('tar', ['-xzf', path.join(tmp, filename), '-C', unpacked, '--strip-components=1'], { encoding: 'utf8' });
    if (tar.status !== 0) throw new Error(`unpacking ${filename} failed: ${tar.stderr}`);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.renameSync(unpacked, dest);
    return dest;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** bin/node of the newest Node `major` for linux-`arch` (x64 | arm64), fetched when absent. */
function nodeBinary(arch, major) {
  fs.mkdirSync(cacheRoot, { recursive: true });
  const dir = fetchPackage(`node-linux-${arch}@${major}`, path.join(cacheRoot, 'node', `linux-${arch}-${major}`));
  return path.join(dir, 'bin', 'node');
}

/**
 * A node_modules folder (for NODE_PATH) holding rollup's native binding for linux-arm64, the
 * version of the installed rollup.
 */
function arm64RollupModules() {
  fs.mkdirSync(cacheRoot, { recursive: true });
  const { version } = JSON.parse(fs.readFileSync(path.join(root, 'node_modules', 'rollup', 'package.json'), 'utf8'));
  const modules = path.join(cacheRoot, `rollup-${version}-linux-arm64`, 'node_modules');
  fetchPackage(`@rollup/rollup-linux-arm64-gnu@${version}`, path.join(modules, '@rollup', 'rollup-linux-arm64-gnu'));
  return modules;
}

module.exports = { arm64RollupModules, fetchPackage, nodeBinary };

if (require.main === module) {
  // node scripts/node-dist.js <arch> <major>: prints the path of that Node binary.
  const [arch = 'x64', major = '24'] = process.argv.slice(2);
  console.log(nodeBinary(arch, major));
}
