// One process per NUMA node, kept running: starts each confined to its node, restarts crashed
// ones with a bounded backoff when asked, and reports the worst exit status once all are gone.
// Shared by `hwsq run --per-node` (any command) and forkPerNode (cluster workers).
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import os from 'node:os';
import { spawnOnNode, type NodeTarget } from './nodes';

/** First restart delay; each further one doubles, up to RESTART_MAX_DELAY_MS. */
export const RESTART_BASE_DELAY_MS = 100;
export const RESTART_MAX_DELAY_MS = 10_000;
/** A process that ran this long before crashing starts a fresh series of restarts (count and delay). */
export const RESTART_STABLE_MS = 30_000;

export interface SupervisedExit {
  node: number;
  /** Exit code, null when killed by a signal or never started. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** As a shell reports it: the code, 128+n for signal n, 127/126 when the command was not found/not executable. */
  status: number;
  /** Set when the process could not be started (spawn error). */
  error?: Error;
  /** True when it will be started again (after `delayMs`). */
  willRestart: boolean;
  delayMs: number;
  /** Restarts of this node in the current series, this one included when willRestart. */
  restarts: number;
}

export interface SupervisorOptions {
  targets: readonly NodeTarget[];
  /** Starts the process of one node; called with the calling thread confined to that node. */
  start(target: NodeTarget): ChildProcess;
  /** Restart a process that exits with a non-zero status (default false). */
  restart: boolean;
  /** Restarts per node in one series (see RESTART_STABLE_MS). */
  maxRestarts: number;
}

interface Slot {
  target: NodeTarget;
  child: ChildProcess | undefined;
  timer: NodeJS.Timeout | undefined;
  restarts: number;
  startedAt: number;
  status: number;
}

/** Exit status of a process as a shell reports it. */
export function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const n = signal ? os.constants.signals[signal] : undefined;
  return n === undefined ? 1 : 128 + n;
}

function spawnFailureStatus(err: Error): number {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' ? 127 : code === 'EACCES' ? 126 : 1;
}

export function restartDelayMs(restarts: number): number {
  return Math.min(RESTART_BASE_DELAY_MS * 2 ** restarts, RESTART_MAX_DELAY_MS);
}

/**
 * Events: 'spawn' (node, child) when a process started; 'exit' (SupervisedExit) for every end
 * of a process or failed start; 'done' (worst status) once no process runs and none will be
 * restarted.
 */
export class Supervisor extends EventEmitter {
  readonly #slots: Slot[];
  readonly #options: SupervisorOptions;
  #stopping = false;
  #starting = false;
  #done = false;

  constructor(options: SupervisorOptions) {
    super();
    this.#options = options;
    this.#slots = options.targets.map((target) => ({ target, child: undefined, timer: undefined, restarts: 0, startedAt: 0, status: 0 }));
  }

  /** Starts every node's process. */
  start(): void {
    this.#starting = true;  // a node that fails at once must not look like the last one
    for (const slot of this.#slots) this.#launch(slot);
    this.#starting = false;
    this.#checkDone();
  }

  /** The running processes with their node. */
  running(): { node: number; child: ChildProcess }[] {
    return this.#slots.filter((s) => s.child).map((s) => ({ node: s.target.node, child: s.child! }));
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  /** No more restarts (pending ones are cancelled); the running processes are left to the caller. */
  stop(): void {
    this.#stopping = true;
    for (const slot of this.#slots) {
      if (!slot.timer) continue;
      clearTimeout(slot.timer);
      slot.timer = undefined;
    }
    this.#checkDone();
  }

  #launch(slot: Slot): void {
    let child: ChildProcess;
    try {
      child = spawnOnNode(slot.target, () => this.#options.start(slot.target));
    } catch (err) {
      // The node cannot be used any more (hotplug, cpuset change) or the spawn itself threw.
      this.#ended(slot, null, null, err as Error);
      return;
    }
    slot.child = child;
    slot.startedAt = Date.now();
    let spawned = false;
    child.once('spawn', () => {
      spawned = true;
      this.emit('spawn', slot.target.node, child);
    });
    child.on('error', (err) => {
      // Before 'spawn': the command could not be started (no 'exit' follows). Later errors are
      // failed kill()/send() calls on a process that is exiting anyway.
      if (!spawned && slot.child === child) this.#ended(slot, null, null, err);
    });
    child.once('exit', (code, signal) => {
      if (slot.child === child) this.#ended(slot, code, signal);
    });
  }

  #ended(slot: Slot, code: number | null, signal: NodeJS.Signals | null, error?: Error): void {
    slot.child = undefined;
    slot.status = error ? spawnFailureStatus(error) : exitStatus(code, signal);
    if (slot.startedAt && Date.now() - slot.startedAt >= RESTART_STABLE_MS) slot.restarts = 0;
    // A start that failed is not retried: a missing command or unusable node stays so.
    const willRestart = !error && !this.#stopping && this.#options.restart && slot.status !== 0 && slot.restarts < this.#options.maxRestarts;
    const delayMs = willRestart ? restartDelayMs(slot.restarts) : 0;
    if (willRestart) {
      slot.restarts++;
      slot.timer = setTimeout(() => {
        slot.timer = undefined;
        this.#launch(slot);
        this.#checkDone();
      }, delayMs);
    }
    const exit: SupervisedExit = { node: slot.target.node, code, signal, status: slot.status, willRestart, delayMs, restarts: slot.restarts };
    if (error) exit.error = error;
    this.emit('exit', exit);
    this.#checkDone();
  }

  #checkDone(): void {
    if (this.#done || this.#starting || this.#slots.some((s) => s.child || s.timer)) return;
    this.#done = true;
    this.emit('done', Math.max(0, ...this.#slots.map((s) => s.status)));
  }
}
