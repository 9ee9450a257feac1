// Helpers of the `hwsq bench` / `hwsq report` tests: the CLI as a user runs it (bin/hwsq.js ->
// dist/, so `npx tsup` and the addon must be built first; npm install does both).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const root = path.resolve(__dirname, '..');
const bin = path.join(root, 'bin', 'hwsq.js');

export function assertBuilt(): void {
  for (const f of ['dist/cli.js', 'dist/worker.js', 'dist/bench-latency-task.js']) {
    if (!fs.existsSync(path.join(root, f))) throw new Error(`${f} is missing: run npx tsup`);
  }
}

/** Runs `hwsq ...args` to completion. */
export function hwsq(args: string[], timeout = 120_000): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8', timeout });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Runs `hwsq ...args` to completion without blocking this thread: for the long benchmarks, where a
 * test worker blocked in spawnSync for a minute misses vitest's own messages (its RPC times out:
 * "Timeout calling onTaskUpdate", seen with `bench spawn` beside two CPU-bound loops).
 */
export function hwsqAsync(args: string[], timeout = 240_000): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`hwsq ${args.join(' ')}: still running after ${timeout} ms`));
    }, timeout);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** Starts `hwsq ...args` without waiting (for signals). */
export function hwsqChild(args: string[]): ChildProcess {
  return spawn(process.execPath, [bin, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A scratch directory under test-artifacts/ (git-ignored), emptied first. */
export function artifactDir(name: string): string {
  const dir = path.join(root, 'test-artifacts', name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}
