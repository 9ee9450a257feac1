// Shared test helpers.
import { spawn } from 'node:child_process';
import { expect } from 'vitest';

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
