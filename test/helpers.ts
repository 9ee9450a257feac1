// Shared test helpers.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';

export const root = path.resolve(__dirname, '..');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** Rebuilds dist/ when a lib/ source is newer: Runtime workers run dist/worker.js and task fixtures import 'hwsq' (dist/). */
export function ensureDist(): void {
  const worker = path.join(root, 'dist', 'worker.js');
  if (!fs.existsSync(worker) || fs.statSync(worker).mtimeMs < newestMtime(path.join(root, 'lib'))) {
    execFileSync(path.join(root, 'node_modules', '.bin', 'tsup'), { cwd: root, stdio: 'ignore' });
  }
}

/** Asserts fn throws an error of the given class with the given stable code. */
export function expectCode(fn: () => unknown, klass: ErrorConstructor | RangeErrorConstructor | TypeErrorConstructor, code: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected ${klass.name} ${code}`).toBeInstanceOf(klass);
  expect((caught as { code?: string }).code).toBe(code);
}

/** The error a promise rejects with; fails the test when it resolves. */
export async function rejectionOf(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}

/**
 * This machine as numactl sees it (an oracle independent of hwsq's sysfs parser): the nodes
 * with their CPUs (`numactl -H`), and what this process may use (`numactl --show`: the CPUs
 * of its affinity mask, the nodes it may run on and allocate from). CI installs numactl (.ci/run).
 */
export function numactlView(): { nodes: { id: number; cpus: number[] }[]; allowedCpus: number[]; cpuNodes: number[]; memNodes: number[] } {
  const run = (args: string[]) => {
    const r = spawnSync('numactl', args, { encoding: 'utf8' });
    if (r.error || r.status !== 0) throw new Error(`numactl ${args.join(' ')} failed (install numactl): ${r.error ?? r.stderr}`);
    return r.stdout;
  };
  const hardware = run(['-H']);
  const show = run(['--show']);
  const nodes = [...hardware.matchAll(/^node (\d+) cpus:(.*)$/gm)].map((m) => ({ id: Number(m[1]), cpus: m[2]!.trim().split(/\s+/).filter(Boolean).map(Number) }));
  const list = (key: string) => (new RegExp(`^${key}:(.*)$`, 'm').exec(show)?.[1] ?? '').trim().split(/\s+/).filter(Boolean).map(Number);
  return { nodes, allowedCpus: list('physcpubind'), cpuNodes: list('nodebind'), memNodes: list('membind') };
}

export interface Exit {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command to its end without blocking the event loop (a long spawnSync starves vitest's
 * worker RPC); colour codes are stripped from the output.
 */
export function exec(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');
    child.on('close', (status) => resolve({ status, stdout: plain(stdout), stderr: plain(stderr) }));
  });
}
