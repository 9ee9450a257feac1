// Shared test helpers.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';

const root = path.resolve(__dirname, '..');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** Rebuilds dist/ (tsup) when a lib/ source is newer: worker threads and child processes load dist/. */
export function ensureDistBuilt(): void {
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
