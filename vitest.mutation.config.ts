// The suites StrykerJS runs against each mutant of lib/ (stryker.config.json): those that
// exercise the mutated modules (codec, validation, lib/runtime/ main-thread code, lib/metrics/)
// in this process. Suites that only drive child processes or guests cannot see an in-process
// mutant.
import fs from 'node:fs';
import path from 'node:path';
import { defineConfig } from 'vitest/config';

// Stryker runs this in its sandbox copy (build-stryker/sandbox-*/), which cannot hold the sysfs
// and cgroup fixture trees (they contain directory symlinks, as sysfs does, and Stryker's copy
// refuses those): link the checkout's. dist/ was built from the unmutated lib/ and is what the
// workers run; keep it newer than the instrumented lib/ so that test/helpers' ensureDist does
// not rebuild it from mutated code.
const here = __dirname;
if (path.basename(path.dirname(here)) === 'build-stryker') {
  const checkout = path.resolve(here, '../..');
  for (const tree of ['sysfs', 'cgroup']) {
    const at = path.join(here, 'test', 'fixtures', tree);
    if (!fs.existsSync(at)) fs.symlinkSync(path.join(checkout, 'test', 'fixtures', tree), at);
  }
  const now = new Date();
  for (const f of fs.readdirSync(path.join(here, 'dist'))) fs.utimesSync(path.join(here, 'dist', f), now, now);
}

// HWSQ_MUTATION_TESTS=in-process runs only the suites that drive no worker threads (seconds a
// run, where the runtime suites take tens of seconds): enough for a per-module run of codec.ts,
// validation.ts or lib/metrics/. lib/runtime/ needs the runtime suites too.
const inProcess = ['test/property.test.ts', 'test/wire.test.ts', 'test/codec.test.ts', 'test/validation.test.ts', 'test/validation-unit.test.ts', 'test/options-vocabulary.test.ts', 'test/metrics.test.ts', 'test/spawn-unit.test.ts', 'test/sab-registry.test.ts'];
const runtimeSuites = ['test/runtime.test.ts', 'test/hostile-runtime.test.ts', 'test/close-quiescence.test.ts', 'test/memory-affinity.test.ts', 'test/runtime-main.test.ts'];

export default defineConfig({
  test: {
    include: process.env.HWSQ_MUTATION_TESTS === 'in-process' ? inProcess : [...inProcess, ...runtimeSuites],
    testTimeout: 60_000,
    pool: 'forks',
  },
});
