import { defineConfig } from 'vitest/config';

// Tests that boot multi-NUMA Linux kernels in QEMU (TCG; see test/vm/README.md). Slow, so they
// are kept out of the default config and run one file at a time (each VM is already using the
// machine's cores).
export default defineConfig({
  test: {
    include: ['test/**/*.vm.test.ts'],
    exclude: ['node_modules/**'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    fileParallelism: false,
    pool: 'forks',
  },
});
