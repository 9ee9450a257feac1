import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// The built package as users load it: by name (self-reference through "exports"), from CJS and
// ESM, with declarations for both.
const root = fileURLToPath(new URL('..', import.meta.url));

function nodeEval(code: string, type: 'commonjs' | 'module') {
  return spawnSync(process.execPath, ['--input-type', type, '-e', code], { cwd: root, encoding: 'utf8' });
}

describe('package entry points', () => {
  it('require("hwsq") and import "hwsq" expose the same API', () => {
    const cjs = nodeEval(`const h = require('hwsq'); console.log(JSON.stringify(Object.keys(h).sort()), h.numaNodeCount())`, 'commonjs');
    const esm = nodeEval(`import * as h from 'hwsq'; console.log(JSON.stringify(Object.keys(h).filter((k) => k !== 'default').sort()), h.numaNodeCount())`, 'module');
    expect(cjs.stderr).toBe('');
    expect(esm.stderr).toBe('');
    expect(esm.stdout).toBe(cjs.stdout);
    const [keys] = cjs.stdout.split(' ');
    expect(JSON.parse(keys!)).toEqual(expect.arrayContaining(['topology', 'numaNodeCount', 'availableParallelism', 'pinToNumaNode', 'allocOnNode', 'pageNodes']));
  });

  it('ships type declarations for both module systems', () => {
    for (const f of ['dist/index.d.ts', 'dist/index.d.mts']) expect(existsSync(root + f)).toBe(true);
  });
});
