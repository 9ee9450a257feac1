// Suites that need a system tool (tmux, Chromium, ...) run only where it is installed; elsewhere
// they are skipped loudly through scripts/requirements.js (npm test's summary names each with the
// apt-get line), and under CI=true / HWSQ_REQUIRE_ALL=1 the absence is a failing test instead.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type * as Requirements from '../scripts/requirements';

export const requirements = createRequire(import.meta.url)('../scripts/requirements.js') as typeof Requirements;

/**
 * describe() for a suite that needs `tools`:
 *   describeWith('tmux')('hwsq top in a terminal', () => { ... })
 */
export function describeWith(...tools: Requirements.ToolId[]): (name: string, fn: () => void) => void {
  return (name, fn) => {
    const missing = requirements.checkTools(tools);
    if (!missing) return describe(name, fn);
    if (requirements.requireAll()) {
      return describe(name, () => {
        it(`has ${tools.join(', ')}`, () => {
          throw new Error(`${missing.reason}; CI=true / HWSQ_REQUIRE_ALL=1 require it: ${missing.enable}`);
        });
      });
    }
    const file = path.relative(fileURLToPath(new URL('..', import.meta.url)), expect.getState().testPath ?? '');
    requirements.reportSkip({ kind: 'test', name: `${file} > ${name}`, ...missing });
    return describe.skip(name, fn);
  };
}
