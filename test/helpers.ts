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
