// Shared test helpers.
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
