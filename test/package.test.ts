// The package as users get it. From this checkout: loaded by name (self-reference through
// "exports") from CJS and ESM. From the tarball `npm pack` makes: its file list (what a user needs
// to run, and to rebuild from source when no prebuild fits, nothing else), its prebuilds (the
// right machine code, no libstdc++ needed, glibc no newer than the README says), its types and
// shape checked by @arethetypeswrong/cli and publint, and an install into an empty project with
// no compiler on PATH where node-gyp-build must pick the prebuild: require, import, `npx hwsq
// topology` and a Runtime running nested JS tasks.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as Prebuild from '../scripts/prebuild';
import { exec, type Exit } from './helpers';
import { requirements } from './requirements';

const root = fileURLToPath(new URL('..', import.meta.url));
const prebuild = createRequire(import.meta.url)('../scripts/prebuild.js') as typeof Prebuild;

function nodeEval(code: string, type: 'commonjs' | 'module') {
  return spawnSync(process.execPath, ['--input-type', type, '-e', code], { cwd: root, encoding: 'utf8' });
}

describe('package entry points', () => {
  it('require("hwsq") and import "hwsq" expose the same API', () => {
    const cjs = nodeEval(`const h = require('hwsq'); console.log(JSON.stringify(Object.keys(h).sort()), h.numaNodeCount())`, 'commonjs');
    const esm = nodeEval(`import * as h from 'hwsq'; console.log(JSON.stringify(Object.keys(h).filter((k) => k !== 'default').sort()), h.numaNodeCount())`, 'module');
    expect(cjs.stderr).toBe('');
    expect(esm.stderr).toBe('');
    expect(esm.stdout).toBe(cjs.stdout);
    const [keys] = cjs.stdout.split(' ');
    expect(JSON.parse(keys!)).toEqual(expect.arrayContaining(['topology', 'numaNodeCount', 'availableParallelism', 'pinToNumaNode', 'allocOnNode', 'pageNodes']));
  });
});

// ------------------------------------------------------------------ the tarball

/** npm's own CLI scripts, run with this Node (so a PATH holding only `node` still has npm). */
function npmScript(name: 'npm-cli.js' | 'npx-cli.js'): string {
  const npmCli = process.env.npm_execpath?.endsWith('npm-cli.js') ? process.env.npm_execpath : fs.realpathSync(requirements.onPath('npm') ?? 'npm');
  return path.join(path.dirname(npmCli), name);
}

/** This environment without npm's per-run variables (npm_config_*, npm_lifecycle_*, ...). */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('npm_')));
  return { ...env, ...extra };
}

async function ok(r: Promise<Exit>, what: string): Promise<string> {
  const { status, stdout, stderr } = await r;
  expect(status, `${what}:\n${stdout}\n${stderr}`).toBe(0);
  return stdout;
}

const PACKED = [
  /^package\.json$/,
  /^README\.md$/,
  /^bin\/hwsq\.js$/,
  // The CommonJS build of every entry (the CLI, the worker and task modules load these), and
  // the package's ESM entry and declarations.
  /^dist\/([\w-]+\.js|index\.(mjs|d\.ts|d\.mts))$/,
  /^bench\/tasks\.mjs$/,
  /^bench\/go\/spawn\.go$/,
  /^binding\.gyp$/,
  /^native\/(core|napi)\/.+\.(cpp|h)$/,
  /^prebuilds\/linux-(x64|arm64)\/hwsq\.glibc\.node$/,
];

describe('the npm tarball', () => {
  let tmp = '';
  let tarball = '';
  let packed: string[] = [];
  // x64 always; arm64 where it was built (npm test's prebuild stage builds it wherever the cross
  // compiler is, and must under CI=true / HWSQ_REQUIRE_ALL=1).
  const arches: Prebuild.Arch[] = requirements.requireAll() || fs.existsSync(prebuild.prebuildPath('arm64')) ? ['x64', 'arm64'] : ['x64'];

  beforeAll(async () => {
    // npm test's prebuild stage made them; a lone run of this file makes the x64 one.
    if (!fs.existsSync(prebuild.prebuildPath('x64'))) await ok(exec(process.execPath, ['scripts/prebuild.js', '--arch', 'x64'], { cwd: root }), 'prebuild');
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hwsq-pack-'));
    // dist/ is what npm install built; --ignore-scripts keeps `prepare` from rebuilding it.
    const out = await ok(exec(process.execPath, [npmScript('npm-cli.js'), 'pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: root, env: cleanEnv({}) }), 'npm pack');
    const [info] = JSON.parse(out) as { filename: string; files: { path: string }[] }[];
    tarball = path.join(tmp, info!.filename);
    packed = info!.files.map((f) => f.path).sort();
  }, 600_000);

  afterAll(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('holds what a user needs to run and to rebuild from source, and nothing else', () => {
    expect(packed.filter((f) => !PACKED.some((re) => re.test(f))), 'files outside the allowed set').toEqual([]);
    for (const f of ['bin/hwsq.js', 'dist/index.js', 'dist/index.mjs', 'dist/index.d.ts', 'dist/index.d.mts', 'dist/cli.js', 'dist/worker.js', 'dist/bench-latency-task.js', 'bench/tasks.mjs']) {
      expect(packed, f).toContain(f);
    }
    // Every source binding.gyp compiles, and the headers beside them.
    const sources = (function walk(dir: string): string[] {
      return fs.readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(`${dir}/${e.name}`) : [`${dir}/${e.name}`]));
    })('native/core').concat(fs.readdirSync(path.join(root, 'native/napi')).map((f) => `native/napi/${f}`));
    expect(sources.filter((f) => !packed.includes(f))).toEqual([]);
    for (const src of prebuild.SOURCES) expect(packed.some((f) => f === src || f.startsWith(`${src}/`)), src).toBe(true);
    for (const arch of arches) expect(packed, arch).toContain(`prebuilds/linux-${arch}/hwsq.glibc.node`);
  });

  it('ships prebuilds for the right machine that need no newer glibc and libstdc++ than the README says', async () => {
    const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
    expect(readme).toContain(`glibc ${prebuild.FLOOR.GLIBC}`);
    expect(readme).toContain(`GLIBCXX_${prebuild.FLOOR.GLIBCXX}`);
    const x = path.join(tmp, 'x');
    fs.mkdirSync(x);
    await ok(exec('tar', ['-xzf', tarball, '-C', x]), 'tar');
    for (const arch of arches) {
      const file = path.join(x, 'package', 'prebuilds', `linux-${arch}`, 'hwsq.glibc.node');
      expect(prebuild.elfMachine(file), arch).toBe(prebuild.ELF_MACHINE[arch]);
      const needs = prebuild.versionNeeds(file);
      expect(needs.GLIBC, arch).toBeDefined();
      expect(prebuild.aboveFloor(needs), `${arch}: ${JSON.stringify(needs)}`).toEqual([]);
    }
  });

  it('has types for both entry points and a clean package shape (attw, publint)', async () => {
    const attw = await exec(process.execPath, [path.join(root, 'node_modules', '@arethetypeswrong', 'cli', 'dist', 'index.js'), tarball, '--format', 'json'], { env: cleanEnv({}) });
    const report = JSON.parse(attw.stdout) as { analysis: { problems: unknown[]; entrypoints: Record<string, { resolutions: Record<string, { resolution?: { fileName: string; isTypeScript: boolean } }> }> } };
    expect(report.analysis.problems, attw.stdout).toEqual([]);
    // Every resolution mode finds declarations: .d.ts for require, .d.mts for import.
    const resolutions = report.analysis.entrypoints['.']!.resolutions;
    expect(resolutions['node10']?.resolution?.fileName).toMatch(/dist\/index\.d\.ts$/);
    expect(resolutions['node16-cjs']?.resolution?.fileName).toMatch(/dist\/index\.d\.ts$/);
    expect(resolutions['node16-esm']?.resolution?.fileName).toMatch(/dist\/index\.d\.mts$/);
    expect(resolutions['bundler']?.resolution?.isTypeScript).toBe(true);
    expect(attw.status, attw.stderr).toBe(0);
    const publint = await exec(process.execPath, [path.join(root, 'node_modules', 'publint', 'src', 'cli.js'), tarball, '--strict'], { env: cleanEnv({}) });
    expect(publint.status, `${publint.stdout}\n${publint.stderr}`).toBe(0);
    expect(publint.stdout + publint.stderr).not.toMatch(/Errors|Warnings|Suggestions/);
    expect(publint.stdout).toMatch(/All good!/);
  });

  describe('installed into an empty project on a PATH with no compiler', () => {
    let app = '';
    let env: NodeJS.ProcessEnv = {};
    const run = (args: string[], what: string) => ok(exec(process.execPath, args, { cwd: app, env }), what);

    beforeAll(async () => {
      app = path.join(tmp, 'app');
      fs.mkdirSync(app);
      // This PATH (so this Node first) without compilers, assemblers, linkers, make and Python.
      const noCompiler = ['cc', 'c++', 'c89*', 'c99*', 'cpp*', 'gcc*', 'g++*', 'clang*', '*-gcc*', '*-g++*', '*-cpp*', 'ld', 'ld.*', '*-ld*', 'as', '*-as', 'make', 'gmake', 'python*'];
      const bin = (await ok(exec('sh', [path.join(root, 'scripts', 'without-tools.sh'), ...noCompiler], { env: { ...process.env, TMPDIR: tmp } }), 'without-tools.sh')).trim();
      env = cleanEnv({ PATH: bin });
      for (const tool of ['cc', 'gcc', 'g++', 'c++', 'clang', 'x86_64-linux-gnu-g++', 'aarch64-linux-gnu-g++', 'ld', 'make', 'python3']) expect(requirements.onPath(tool, bin), tool).toBeNull();
      expect(fs.realpathSync(requirements.onPath('node', bin)!)).toBe(fs.realpathSync(process.execPath));
      fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
      // The dependencies come from npm's cache, filled by this checkout's npm install.
      await run([npmScript('npm-cli.js'), 'install', tarball, '--prefer-offline', '--no-audit', '--no-fund'], 'npm install <tarball>');
    }, 300_000);

    it('loads the prebuild: nothing was compiled', async () => {
      const pkgDir = path.join(app, 'node_modules', 'hwsq');
      expect(fs.existsSync(path.join(pkgDir, 'build'))).toBe(false);
      const addon = (await run(['-p', `require('node-gyp-build').path(${JSON.stringify(pkgDir)})`], 'node-gyp-build path')).trim();
      expect(addon).toBe(path.join(pkgDir, 'prebuilds', `linux-${process.arch}`, 'hwsq.glibc.node'));
    });

    it('works from require and import', async () => {
      const cjs = await run(['-e', `const h = require('hwsq'); console.log(h.numaNodeCount(), h.topology().cpus.length, h.availableParallelism().value)`], 'require');
      const esm = await run(['--input-type', 'module', '-e', `import { numaNodeCount, topology, availableParallelism } from 'hwsq'; console.log(numaNodeCount(), topology().cpus.length, availableParallelism().value)`], 'import');
      expect(esm).toBe(cjs);
      const [nodes, cpus, parallelism] = cjs.trim().split(' ').map(Number);
      expect(nodes).toBeGreaterThanOrEqual(1);
      expect(cpus).toBe(os.cpus().length);
      expect(parallelism).toBeGreaterThanOrEqual(1);
    });

    it('runs `npx hwsq topology`', async () => {
      const out = await run([npmScript('npx-cli.js'), '--offline', 'hwsq', 'topology', '--json'], 'npx hwsq topology --json');
      const t = JSON.parse(out) as { nodes: { id: number; cpus: number[] }[] };
      expect(t.nodes.flatMap((n) => n.cpus).sort((a, b) => a - b)).toEqual(os.cpus().map((_, i) => i));
      expect(await run([npmScript('npx-cli.js'), '--offline', 'hwsq', 'topology'], 'npx hwsq topology')).toMatch(/NUMA nodes?, \d+ CPUs/);
    });

    it('runs a Runtime task with nested spawns', async () => {
      fs.writeFileSync(
        path.join(app, 'tasks.mjs'),
        `import { spawn } from 'hwsq';
export async function fib(n) {
  if (n < 12) return fibSync(n);
  const [a, b] = await Promise.all([spawn('fib', [n - 1]), spawn('fib', [n - 2])]);
  return a + b;
}
function fibSync(n) { return n < 2 ? n : fibSync(n - 1) + fibSync(n - 2); }
`,
      );
      fs.writeFileSync(
        path.join(app, 'main.mjs'),
        `import { Runtime } from 'hwsq';
const rt = await Runtime.start({ filename: new URL('./tasks.mjs', import.meta.url), workers: 2 });
try {
  console.log(JSON.stringify({ fib: await rt.spawn('fib', [20]), executed: rt.stats().executed }));
} finally {
  await rt.close();
}
`,
      );
      const r = JSON.parse(await run(['main.mjs'], 'Runtime')) as { fib: number; executed: number };
      expect(r.fib).toBe(6765);
      expect(r.executed).toBeGreaterThan(1);
    });
  });
});
