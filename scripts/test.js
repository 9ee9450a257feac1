#!/usr/bin/env node
// `npm test`: every stage runs and the exit code says whether all that ran passed.
//   typecheck  tsc over lib, test and bench
//   native     the C++ core's ctest suites: plain, ASAN+UBSAN, TSAN, and the libFuzzer runs (needs cmake, clang)
//   prebuild   N-API prebuilds: linux-x64, and linux-arm64 with the cross compiler
//   unit       vitest: test/**/*.test.ts (the pack test installs the tarball with its prebuild)
//   arm64      a named subset of the unit suite on arm64 Node under qemu-user (scripts/arm64-tests.js)
//   vm         vitest: test/**/*.vm.test.ts, multi-NUMA kernels in QEMU
//   mutation-native  the C++ core's named mutants (scripts/mutants.js): each must be killed
//   mutation-ts      StrykerJS over codec, validation, the main-thread runtime and lib/metrics (stryker.config.json): the score floor; on request only
//   compat-NN  the unit suite again under each other supported Node major (from the npm registry)
// A stage or suite whose system tool is absent is skipped, never silently: the summary names
// each skip with its reason and the apt-get line that enables it (scripts/requirements.js).
// With CI=true or HWSQ_REQUIRE_ALL=1 a missing tool is a failure instead.
// HWSQ_TEST_STAGES=unit,compat selects stages ('compat' selects every compat-NN, 'mutation' both
// mutation stages); arguments
// (npm test -- test/top.test.ts) go to each vitest stage as its file filters.
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { nodeBinary } = require('./node-dist');
const req = require('./requirements');

const root = path.resolve(__dirname, '..');
const bin = (name) => path.join(root, 'node_modules', '.bin', name);
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
/** The supported Node majors, read from engines ("^22 || ^24 || ^26"). */
const supportedMajors = [...pkg.engines.node.matchAll(/\^(\d+)/g)].map((m) => m[1]);
const thisMajor = process.versions.node.split('.')[0];
const requireAll = req.requireAll();
const filters = process.argv.slice(2);
const COMPAT_CHAOS_SECONDS = 20;

async function vmCheck() {
  const { vmToolsAvailable, APT_PACKAGES } = await import('../test/vm/vm.mjs');
  const { missing } = vmToolsAvailable();
  return missing.length ? { reason: `missing ${missing.join(', ')}`, enable: req.aptLine(APT_PACKAGES) } : null;
}

/** Each stage: name, an optional check (null, or why it cannot run and how to enable it), command. */
const stages = [
  { name: 'typecheck', run: () => [bin('tsc'), ['-p', 'tsconfig.json']] },
  { name: 'native', check: () => req.checkTools(['cmake']), run: () => [process.execPath, ['scripts/native-tests.js']] },
  {
    name: 'prebuild',
    run: () => {
      const cross = req.checkTools(['arm64-cross']);
      if (cross && !requireAll) req.reportSkip({ kind: 'stage', name: 'prebuild linux-arm64', ...cross });
      return [process.execPath, ['scripts/prebuild.js', '--arch', cross && !requireAll ? 'x64' : 'x64,arm64']];
    },
  },
  { name: 'unit', run: () => [bin('vitest'), ['run', ...filters]] },
  { name: 'arm64', check: () => req.checkTools(['qemu-user', 'arm64-cross']), run: () => [process.execPath, ['scripts/arm64-tests.js', ...filters]] },
  { name: 'vm', check: vmCheck, run: () => [bin('vitest'), ['run', '--config', 'vitest.vm.config.ts', ...filters]] },
  // Its guest mutants need QEMU: without it scripts/mutants.js reports that skip itself.
  { name: 'mutation-native', check: () => req.checkTools(['cmake']), run: () => [process.execPath, ['scripts/mutants.js']] },
  // On request only (HWSQ_TEST_STAGES=mutation-ts or mutation): a run whose code or covering tests
  // changed since the committed incremental result re-tests hundreds of mutants (10-20 min on two
  // cores), more than CI's time allows; the README reports its score.
  { name: 'mutation-ts', onRequest: true, run: () => [bin('stryker'), ['run']] },
  ...supportedMajors.map((major) => ({
    name: `compat-${major}`,
    // The unit stage already ran under this major.
    redundant: major === thisMajor,
    run: () => {
      const node = nodeBinary('x64', major);
      // The unit suite less what does not depend on the Node running it, to keep CI in time: the
      // runner's own test (it starts npm test under the unit stage's Node), and the chaos soak
      // shortened to COMPAT_CHAOS_SECONDS (the unit stage soaks for its full time).
      const args = [bin('vitest'), 'run', '--exclude', 'test/skips.test.ts', ...filters];
      const env = { PATH: `${path.dirname(node)}${path.delimiter}${process.env.PATH}`, HWSQ_CHAOS_SECONDS: process.env.HWSQ_CHAOS_SECONDS ?? String(COMPAT_CHAOS_SECONDS) };
      return [node, args, env];
    },
  })),
];

const only = process.env.HWSQ_TEST_STAGES ? process.env.HWSQ_TEST_STAGES.split(',').map((s) => s.trim()) : null;
const selected = (stage) => {
  const name = stage.name;
  if (!only) return !stage.onRequest;
  return only.includes(name) || (name.startsWith('compat-') && only.includes('compat')) || (name.startsWith('mutation-') && only.includes('mutation'));
};

const TAIL_BYTES = 256 * 1024;
const FAILURE_LINES = 14;

/** Runs a stage with its output passed through, keeping its last TAIL_BYTES for the failure summary. */
function runTee(cmd, args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: root, env, stdio: ['inherit', 'pipe', 'pipe'] });
    let tail = '';
    const keep = (out) => (chunk) => {
      out.write(chunk);
      tail = (tail + chunk.toString('utf8')).slice(-TAIL_BYTES);
    };
    child.stdout.on('data', keep(process.stdout));
    child.stderr.on('data', keep(process.stderr));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), tail }));
  });
}

/** The lines of a failed stage's output that say what failed (vitest's FAIL/× lines, ctest's, errors), ANSI colours removed. */
function failureLines(tail, code) {
  const plain = tail.replace(/\x1b\[[0-9;]*m/g, '').split('\n');
  const telling = /(^|\s)(FAIL|×|✗)\s|\*\*\*Failed|Failed\s*$|AssertionError|Error:|not killed|survived|timed? ?out/i;
  const seen = new Set();
  const picked = [];
  for (const line of plain) {
    const t = line.trim();
    if (!t || t.startsWith('✓') || !telling.test(t) || seen.has(t)) continue;  // a passing test whose name says 'timeout'
    seen.add(t);
    picked.push(t.length > 200 ? `${t.slice(0, 197)}...` : t);
  }
  const lines = picked.length ? picked.slice(-FAILURE_LINES) : plain.filter((l) => l.trim()).slice(-FAILURE_LINES);
  return [...lines, `(exit code ${code})`];
}

async function main() {
  if (!supportedMajors.includes(thisMajor)) {
    console.log(`note: Node ${process.version} is not a supported major (${supportedMajors.join(', ')}); the stages run under it, the compat stages under each supported one`);
  }
  const skipLog = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'hwsq-test-')), 'skips.jsonl');
  process.env[req.SKIP_LOG_ENV] = skipLog;
  const results = [];
  const failures = [];
  for (const stage of stages) {
    if (!selected(stage)) continue;
    if (stage.redundant) {
      console.log(`\n=== ${stage.name}: the unit stage ran under this Node (${process.version})`);
      continue;
    }
    const started = Date.now();
    const seconds = () => ((Date.now() - started) / 1000).toFixed(1);
    const missing = stage.check ? await stage.check() : null;
    if (missing) {
      if (requireAll) {
        console.log(`\n=== ${stage.name}: FAIL, ${missing.reason} (CI=true / HWSQ_REQUIRE_ALL=1 require it: ${missing.enable})`);
        results.push({ name: stage.name, status: 'FAIL', seconds: seconds(), note: missing.reason });
      } else {
        req.reportSkip({ kind: 'stage', name: stage.name, ...missing });
        results.push({ name: stage.name, status: 'SKIP', seconds: seconds() });
      }
      continue;
    }
    let status;
    try {
      const [cmd, args, env = {}] = stage.run();
      console.log(`\n=== ${stage.name}: ${cmd.startsWith(root + path.sep) ? path.relative(root, cmd) : cmd} ${args.join(' ')}`);
      const r = await runTee(cmd, args, { ...process.env, ...env, [req.SKIP_STAGE_ENV]: stage.name });
      status = r.code === 0 ? 'pass' : 'FAIL';
      if (status === 'FAIL') failures.push({ name: stage.name, lines: failureLines(r.tail, r.code) });
    } catch (err) {
      console.error(`${stage.name}: ${err.message}`);
      status = 'FAIL';
      failures.push({ name: stage.name, lines: [err.message] });
    }
    results.push({ name: stage.name, status, seconds: seconds() });
  }

  const skips = req.readSkips(skipLog);
  fs.rmSync(path.dirname(skipLog), { recursive: true, force: true });
  // What failed, just above the summary: a CI log is often read from its tail only.
  for (const f of failures) {
    console.log(`\n=== ${f.name} failed:`);
    for (const line of f.lines) console.log(`  ${line}`);
  }
  console.log('\n=== summary');
  for (const r of results) console.log(`${r.status.padEnd(4)}  ${r.name} (${r.seconds}s)${r.note ? `: ${r.note}` : ''}`);
  if (skips.length) {
    console.log(`\n=== skipped: ${new Set(skips.map((s) => s.name)).size} (they pass here only because they did not run; CI=true or HWSQ_REQUIRE_ALL=1 fails instead)`);
    for (const line of req.skipSummary(skips)) console.log(line);
  }
  return results.every((r) => r.status !== 'FAIL') ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
