// The QEMU multi-NUMA VM harness for vitest tests (*.vm.test.ts, run by vitest.vm.config.ts).
// The implementation is plain ESM in vm.mjs (typed by vm.d.mts) so cli.mjs can use it without a
// TypeScript loader; see README.md.
export {
  APT_COMMAND,
  APT_PACKAGES,
  TOPOLOGIES,
  assertVmTools,
  distanceMatrix,
  runInVm,
  topologyArgs,
  vmToolsAvailable,
} from './vm.mjs';
export type { VmNode, VmResult, VmRunOptions, VmTopology } from './vm.mjs';
