#!/usr/bin/env node
// Builds the standalone native core with cmake-js (no Node headers used by the core) in several
// variants and runs its ctest suite in each: plain, ASAN+UBSAN, TSAN (the sanitizer variants
// also compile the core's HWSQ_ASSERT invariant checks in). The fuzz variant builds the libFuzzer
// harnesses of native/fuzz with clang and runs each for a bounded time.
// HWSQ_NATIVE_VARIANTS=plain,asan,tsan,fuzz selects variants (default: all four);
// HWSQ_FUZZ_SECONDS=<n> is the time per fuzz target (default 25).
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { nodeHeadersEnv } = require('./node-headers');
const req = require('./requirements');

const root = path.resolve(__dirname, '..');
const variants = {
  plain: { sanitize: '', env: {} },
  asan: {
    sanitize: 'address,undefined',
    env: { ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=1', UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1' },
  },
  tsan: { sanitize: 'thread', env: { TSAN_OPTIONS: 'halt_on_error=1:second_deadlock_stack=1' } },
  fuzz: { fuzz: true },
};
// cmake-js wants Node headers even though the core never includes them.
const baseEnv = nodeHeadersEnv();
const selected = (process.env.HWSQ_NATIVE_VARIANTS || 'plain,asan,tsan,fuzz').split(',').filter(Boolean);

function run(cmd, args, env, cwd = root) {
  console.log(`$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd, stdio: 'inherit', env: { ...process.env, ...baseEnv, ...env } });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

// clang with libFuzzer and the sanitizer runtimes (Debian: clang + libclang-rt-14-dev), or why not.
function fuzzToolchainMissing() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hwsq-fuzz-probe-'));
  try {
    const src = path.join(dir, 'probe.cpp');
    fs.writeFileSync(src, 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n');
    const r = spawnSync('clang++', ['-fsanitize=fuzzer,address,undefined', src, '-o', path.join(dir, 'probe')], { encoding: 'utf8' });
    if (r.error) return `clang++ not found (${r.error.code})`;
    if (r.status !== 0) return `clang++ cannot link a libFuzzer target: ${(r.stderr || '').trim().split('\n').slice(-2).join(' ')}`;
    return null;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// Builds the harnesses and runs each for HWSQ_FUZZ_SECONDS, seeded from test/fixtures. The
// corpus grows in build-native-fuzz/corpus (kept between runs, never committed); a failing input
// is saved in build-native-fuzz/artifacts.
function runFuzz() {
  const missing = fuzzToolchainMissing();
  if (missing) {
    const enable = req.aptLine(['clang', 'libclang-rt-14-dev']);
    if (req.requireAll()) {
      console.error(`fuzz variant: ${missing} (CI=true / HWSQ_REQUIRE_ALL=1 require it: ${enable})`);
      return 1;
    }
    req.reportSkip({ kind: 'stage', name: 'native fuzz', reason: missing, enable });
    return 'skipped';
  }
  const out = path.join(root, 'build-native-fuzz');
  const ninja = spawnSync('ninja', ['--version']).status === 0;
  const status =
    run('cmake', ['-S', 'native', '-B', out, ...(ninja ? ['-G', 'Ninja'] : []), '-DCMAKE_CXX_COMPILER=clang++', '-DHWSQ_FUZZ=ON', '-DCMAKE_BUILD_TYPE=RelWithDebInfo']) ||
    run('cmake', ['--build', out, '--parallel', '2']);
  if (status !== 0) return status;
  const seconds = Number(process.env.HWSQ_FUZZ_SECONDS || 25);
  const fixtures = path.join(root, 'test', 'fixtures');
  // The harnesses write small file trees per input: on tmpfs when there is one.
  const env = fs.existsSync('/dev/shm') ? { TMPDIR: '/dev/shm' } : {};
  const targets = fs.readdirSync(out).filter((f) => /^fuzz_[a-z0-9_]+$/.test(f)).sort();
  if (targets.length === 0) {
    console.error('no fuzz targets were built');
    return 1;
  }
  let failed = 0;
  for (const t of targets) {
    const name = t.slice('fuzz_'.length);
    const seeds = path.join(out, 'seeds', name);
    const corpus = path.join(out, 'corpus', name);
    const artifacts = path.join(out, 'artifacts');
    fs.rmSync(seeds, { recursive: true, force: true });
    for (const d of [corpus, artifacts]) fs.mkdirSync(d, { recursive: true });
    const bin = path.join(out, t);
    if (run(bin, [], { ...env, HWSQ_FUZZ_MAKE_SEEDS: `${fixtures}:${seeds}` }) !== 0) {
      failed++;
      continue;
    }
    const args = [`-max_total_time=${seconds}`, '-timeout=20', '-rss_limit_mb=2048', '-print_final_stats=1',
      `-artifact_prefix=${artifacts}${path.sep}${name}-`, corpus, seeds];
    if (run(bin, args, env) !== 0) {
      console.error(`fuzz_${name} found a failing input: see ${artifacts} (rerun: ${bin} <file>)`);
      failed++;
    }
  }
  return failed ? 1 : 0;
}

let failed = [];
const skipped = [];
for (const name of selected) {
  const v = variants[name];
  if (!v) {
    console.error(`unknown variant ${name}; choose from ${Object.keys(variants).join(', ')}`);
    process.exit(2);
  }
  if (v.fuzz) {
    const r = runFuzz();
    if (r === 'skipped') skipped.push(name);
    else if (r !== 0) failed.push(name);
    continue;
  }
  const out = path.join(root, `build-native-${name}`);
  const cmakeJs = path.join(root, 'node_modules', '.bin', 'cmake-js');
  const defs = ['--CDCMAKE_BUILD_TYPE=RelWithDebInfo', `--CDHWSQ_SANITIZE=${v.sanitize}`];
  const status =
    run(cmakeJs, ['build', '-d', 'native', '-O', out, '--config', 'RelWithDebInfo', ...defs, '--parallel', '2']) ||
    run('ctest', ['--test-dir', out, '--output-on-failure', '--timeout', '900'], v.env);
  if (status !== 0) failed.push(name);
}
if (failed.length) {
  console.error(`native tests failed in: ${failed.join(', ')}`);
  process.exit(1);
}
const passed = selected.filter((n) => !skipped.includes(n));
console.log(`native tests passed in: ${passed.join(', ') || 'none'}${skipped.length ? ` (SKIPPED: ${skipped.join(', ')})` : ''}`);
