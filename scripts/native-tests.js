#!/usr/bin/env node
// Builds the standalone native core with cmake-js (no Node headers used by the core) in several
// variants and runs its ctest suite in each: plain, ASAN+UBSAN, TSAN.
// HWSQ_NATIVE_VARIANTS=plain,asan,tsan selects variants (default: all three).
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { nodeHeadersEnv } = require('./node-headers');

const root = path.resolve(__dirname, '..');
const variants = {
  plain: { sanitize: '', env: {} },
  asan: {
    sanitize: 'address,undefined',
    env: { ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=1', UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1' },
  },
  tsan: { sanitize: 'thread', env: { TSAN_OPTIONS: 'halt_on_error=1:second_deadlock_stack=1' } },
};
// cmake-js wants Node headers even though the core never includes them.
const baseEnv = nodeHeadersEnv();
const selected = (process.env.HWSQ_NATIVE_VARIANTS || 'plain,asan,tsan').split(',').filter(Boolean);

function run(cmd, args, env) {
  console.log(`$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...baseEnv, ...env } });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

let failed = [];
for (const name of selected) {
  const v = variants[name];
  if (!v) {
    console.error(`unknown variant ${name}; choose from ${Object.keys(variants).join(', ')}`);
    process.exit(2);
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
console.log(`native tests passed in: ${selected.join(', ')}`);
