// The suites StrykerJS runs against each mutant of lib/ (stryker.config.json): the ones that
// exercise the behaviour modules in this process (codec, validation, runtime, metrics). Suites
// that only drive child processes or guests cannot see an in-process mutant.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/property.test.ts', 'test/validation.test.ts', 'test/metrics.test.ts', 'test/runtime.test.ts'],
    testTimeout: 60_000,
    pool: 'forks',
  },
});
