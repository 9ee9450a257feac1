// `npm test` (scripts/test.js) on a machine that lacks system tools, simulated with a PATH
// without them: the stage or suite that needs a missing tool is skipped and the run passes, the
// final summary names each skip with its reason and the apt-get line that enables it, and under
// CI=true or HWSQ_REQUIRE_ALL=1 the same absence fails the run.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hwsq-skips-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Exit {
  status: number | null;
  stdout: string;
  summary: string;
}

/** A PATH on which the given tools do not exist (scripts/without-tools.sh). */
function pathWithout(...tools: string[]): Promise<string> {
  return run('sh', [path.join(root, 'scripts', 'without-tools.sh'), ...tools], { ...process.env, TMPDIR: tmp }).then((r) => r.stdout.trim());
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.resume();
    child.on('error', reject);
    child.on('close', (status) => {
      const plain = stdout.replace(/\x1b\[[0-9;]*m/g, '');
      resolve({ status, stdout: plain, summary: plain.slice(plain.lastIndexOf('=== summary')) });
    });
  });
}

/** scripts/test.js with these stages and arguments, CI and HWSQ_REQUIRE_ALL as given (else unset). */
function npmTest(stages: string, args: string[], env: Record<string, string>): Promise<Exit> {
  const base = { ...process.env, CI: '', HWSQ_REQUIRE_ALL: '', HWSQ_SKIP_LOG: '', HWSQ_SKIP_STAGE: '' };
  return run(process.execPath, [path.join(root, 'scripts', 'test.js'), ...args], { ...base, HWSQ_TEST_STAGES: stages, ...env });
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
  });

  for (const env of [{ CI: 'true' }, { HWSQ_REQUIRE_ALL: '1' }]) {
    it(`fails the vm stage with ${Object.entries(env)[0]!.join('=')}`, async () => {
      const r = await npmTest('vm', [], { PATH: await pathWithout('qemu-system-*'), ...env });
      expect(r.status, r.stdout).toBe(1);
      expect(r.summary).toMatch(/^FAIL\s+vm\b.*qemu-system-x86_64/m);
      expect(r.stdout).toContain(VM_APT);
      expect(r.summary).not.toContain('SKIPPED');
    });
  }
});

describe('npm test without tmux', () => {
  const suite = 'test/top.test.ts > hwsq top in a terminal (tmux)';

  it('skips the terminal suite of test/top.test.ts, runs the rest, and names the skip in the summary', async () => {
    const r = await npmTest('unit', ['test/top.test.ts'], { PATH: await pathWithout('tmux') });
    expect(r.status, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/Tests\s+2 passed \| 2 skipped/);
    expect(r.summary).toMatch(/^pass\s+unit\b/m);
    expect(r.summary).toContain(`SKIPPED test ${suite} (in unit)`);
    expect(r.summary).toContain('reason: missing tmux (not on PATH)');
    expect(r.summary).toContain('enable: apt-get install -y tmux');
  });

  it('fails it under CI=true, with the apt-get line', async () => {
    const r = await npmTest('unit', ['test/top.test.ts'], { PATH: await pathWithout('tmux'), CI: 'true' });
    expect(r.status, r.stdout).toBe(1);
    expect(r.stdout).toMatch(/Tests\s+1 failed \| 2 passed/);
    expect(r.stdout).toContain('missing tmux (not on PATH); CI=true / HWSQ_REQUIRE_ALL=1 require it: apt-get install -y tmux');
    expect(r.summary).toMatch(/^FAIL\s+unit\b/m);
    expect(r.summary).not.toContain('SKIPPED');
  });
});
