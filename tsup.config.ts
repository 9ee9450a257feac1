import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'lib/index.ts', cli: 'lib/cli/cli.ts', worker: 'lib/runtime/worker.ts', 'bench-pools': 'lib/bench/pools.ts', 'bench-spawn': 'lib/bench/spawn.ts', 'bench-latency-task': 'lib/bench/latency-task.ts' },
  format: ['cjs', 'esm'],
  outDir: 'dist',
  dts: true,
  shims: true,
  target: 'node20',
  platform: 'node',
  sourcemap: true,
  clean: true,
  splitting: false,
});
