// Another process's runtime as a MetricsSource (lib/metrics/source.ts): every stats() reads its
// shared-memory stats file, so registerMetrics, serveMetrics, schedulerJson and `hwsq top` work
// for a process whose own JS thread cannot answer (`hwsq metrics serve --pid`, a sidecar).
import type { SnapshotOrigin } from '../metrics/scheduler-json';
import type { MetricsSource, SchedulerStatsLike, WorkerPlacement } from '../metrics/source';
import { shmDirectory } from './config';
import { pickRuntime, readShmProcess, shmOrigin, type ShmProcess, type ShmRuntime } from './reader';

export class ShmMetricsSource implements MetricsSource {
  /** The runtime followed: the one given, else the process's first running one at construction. */
  readonly runtimeId: number;
  readonly #placement: WorkerPlacement[];
  #origin: SnapshotOrigin | undefined;

  /** Reads the file once (throws its coded error when it cannot be read). */
  constructor(
    readonly pid: number,
    runtimeId?: number,
    readonly dir: string = shmDirectory(),
  ) {
    const process = readShmProcess(pid, dir);
    const runtime = pickRuntime(process, runtimeId);
    this.runtimeId = runtime.id;
    this.#placement = runtime.workers;
    this.#origin = shmOrigin(process);
  }

  /** The process and the followed runtime, read now. */
  read(): { process: ShmProcess; runtime: ShmRuntime } {
    const process = readShmProcess(this.pid, this.dir);
    return { process, runtime: pickRuntime(process, this.runtimeId) };
  }

  stats(): SchedulerStatsLike {
    const { process, runtime } = this.read();
    this.#origin = shmOrigin(process);
    return runtime.stats;
  }

  topology(): { workers: readonly WorkerPlacement[] } {
    return { workers: this.#placement };
  }

  snapshotOrigin(): SnapshotOrigin | undefined {
    return this.#origin;
  }
}
