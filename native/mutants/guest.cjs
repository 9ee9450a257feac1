// Runs inside one multi-node QEMU guest for scripts/mutants.js: each run of the plan (the
// baseline binaries, then each guest mutant's copies) with HWSQ_EXPECT_NODES set, so that the
// multi-node cases run instead of returning early. Prints one JSON line: per run, per test,
// pass (exit 0 with "N passed, 0 failed") or why not.
//   node native/mutants/guest.cjs <plan.json>
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const plan = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const out = plan.runs.map((run) => ({
  name: run.name,
  tests: run.tests.map((label) => {
    const [bin, ...rest] = label.split('=');
    const r = spawnSync(path.join(run.dir, bin), rest.length ? [rest.join('=')] : [], {
      encoding: 'utf8',
      timeout: plan.timeoutS * 1000,
      killSignal: 'SIGKILL',
      env: { ...process.env, HWSQ_EXPECT_NODES: String(plan.nodes) },
    });
    const text = `${r.stdout || ''}\n${r.stderr || ''}`;
    let why = 'passed';
    if (r.error) why = String(r.error);
    else if (r.signal) why = `killed by ${r.signal}`;
    else if (r.status !== 0) why = `exit ${r.status}: ${text.split('\n').filter((l) => /^FAIL |failed:/.test(l)).slice(0, 3).join(' | ')}`;
    else if (!/^[1-9]\d* passed, 0 failed$/m.test(text) || /\(skipped: \d+ node/.test(text)) why = 'its multi-node cases did not run';
    return { label, pass: why === 'passed', why };
  }),
}));
console.log(JSON.stringify(out));
