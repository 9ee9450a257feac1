// `npm test` (scripts/test.js) on a machine that lacks system tools, simulated with a PATH
// without them: the stage or suite that needs a missing tool is skipped and the run passes, the
// final summary names each skip with its reason and the apt-get line that enables it, and under
// CI=true or HWSQ_REQUIRE_ALL=1 the same absence fails the run.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { exec, type Exit } from './helpers';

const root = fileURLToPath(new URL('..', import.meta.url));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hwsq-skips-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A PATH on which the given tools do not exist (scripts/without-tools.sh). */
async function pathWithout(...tools: string[]): Promise<string> {
  return (await exec('sh', [path.join(root, 'scripts', 'without-tools.sh'), ...tools], { env: { ...process.env, TMPDIR: tmp } })).stdout.trim();
}

/** scripts/test.js with these stages and arguments, CI and HWSQ_REQUIRE_ALL as given (else unset). */
async function npmTest(stages: string, args: string[], env: Record<string, string>): Promise<Exit & { summary: string }> {
  const base = { ...process.env, CI: '', HWSQ_REQUIRE_ALL: '', HWSQ_SKIP_LOG: '', HWSQ_SKIP_STAGE: '' };
  const r = await exec(process.execPath, [path.join(root, 'scripts', 'test.js'), ...args], { cwd: root, env: { ...base, HWSQ_TEST_STAGES: stages, ...env } });
  return { ...r, summary: r.stdout.slice(r.stdout.lastIndexOf('=== summary')) };
}

const VM_APT = 'apt-get install -y qemu-system-x86 linux-image-amd64 busybox-static numactl hwloc-nox';

describe('npm test without QEMU', () => {
  it('skips the vm stage, passes, and names the skip with its reason and apt-get line', async () => {
    const r = await npmTest('vm', [], { PATH: await pathWithout('qemu-system-*') });
    expect(r.status, r.stdout).toBe(0);
    expect(r.summary).toMatch(/^SKIP\s+vm\b/m);
    expect(r.summary).toContain('SKIPPED stage vm');
    expect(r.summary).toContain('reason: missing qemu-system-x86_64 (package qemu-system-x86)');
    expect(r.summary).toContain(`enable: ${VM_APT}`);
  }, 120_000);

  for (const env of [{ CI: 'true' }, { HWSQ_REQUIRE_ALL: '1' }] as Record<string, string>[]) {
    it(`fails the vm stage with ${Object.entries(env)[0]!.join('=')}`, async () => {
      const r = await npmTest('vm', [], { PATH: await pathWithout('qemu-system-*'), ...env });
      expect(r.status, r.stdout).toBe(1);
      expect(r.summary).toMatch(/^FAIL\s+vm\b.*qemu-system-x86_64/m);
      expect(r.stdout).toContain(VM_APT);
      expect(r.summary).not.toContain('SKIPPED');
    }, 120_000);
  }
});

describe('npm test without tmux', () => {
  // Only the terminal suite of test/top.test.ts (-t), to keep this quick.
  const args = ['-t', 'hwsq top in a terminal', 'test/top.test.ts'];

  it('skips the terminal suite of test/top.test.ts, passes, and names the skip in the summary', async () => {
    const r = await npmTest('unit', args, { PATH: await pathWithout('tmux') });
    expect(r.status, r.stdout).toBe(0);
    // Every test of the terminal suite skipped, however many it has.
    const counts = /Tests\s+(\d+) skipped \((\d+)\)/.exec(r.stdout);
    expect(counts, r.stdout).not.toBeNull();
    expect(Number(counts![1])).toBeGreaterThan(0);
    expect(counts![1]).toBe(counts![2]);
    expect(r.summary).toMatch(/^pass\s+unit\b/m);
    expect(r.summary).toContain('SKIPPED test test/top.test.ts > hwsq top in a terminal (tmux) (in unit)');
    expect(r.summary).toContain('reason: missing tmux (not on PATH)');
    expect(r.summary).toContain('enable: apt-get install -y tmux');
  }, 300_000);

  it('fails it under CI=true, with the apt-get line', async () => {
    const r = await npmTest('unit', args, { PATH: await pathWithout('tmux'), CI: 'true' });
    expect(r.status, r.stdout).toBe(1);
    // The suite is one failing test instead; the other suites' tests are filtered out by -t.
    const counts = /Tests\s+1 failed \| (\d+) skipped \((\d+)\)/.exec(r.stdout);
    expect(counts, r.stdout).not.toBeNull();
    expect(Number(counts![1]) + 1).toBe(Number(counts![2]));
    expect(r.stdout).toContain('missing tmux (not on PATH); CI=true / HWSQ_REQUIRE_ALL=1 require it: apt-get install -y tmux');
    expect(r.summary).toMatch(/^FAIL\s+unit\b/m);
    expect(r.summary).not.toContain('SKIPPED');
  }, 300_000);
});
