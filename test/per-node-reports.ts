// What the per-node fixtures report (test/fixtures/per-node-probe.cjs, per-node-cluster.cjs),
// shared by test/per-node.test.ts and test/per-node.vm.test.ts.

/** One line of per-node-probe.cjs: how the process was confined. */
export interface ProbeReport {
  env: string | null;
  pid: number;
  pgrp: number;
  session: number;
  affinity: number[];
  status: string;
  samples: { cpu: number; node: number }[];
  policy: { policy: string; nodes: number[] } | null;
  byNode: Record<string, number>;
  pages: number;
  runtimeNodes: number[] | { code: string };
  jsRuntimeNodes: number[] | null;
}

/** One line of per-node-cluster.cjs. */
export interface ClusterEvent {
  event: string;
  [key: string]: unknown;
}

/** An HTTP answer of a per-node-cluster.cjs worker. */
export interface Answer {
  node: number;
  isPrimary: boolean;
  workers: number;
  env: string;
  extra: string | null;
  pid: number;
  affinity: number[];
  cpu: number;
  cpuNode: number;
  policy: { policy: string; nodes: number[] } | null;
  byNode: Record<string, number>;
  status: string;
}
