#!/usr/bin/env node
// The C++ core's mutation harness: applies each named mutant of native/mutants/mutants.json (a
// behaviour the README promises, broken on purpose) to a copy of native/, builds the plain
// variant's test binaries it names, runs them, and reports each mutant killed (a test failed,
// crashed or timed out) or SURVIVED. Exit 1 if any survived, 2 if the harness itself failed (an
// anchor not found exactly once, a mutant that does not compile, a baseline test that fails).
//
//   node scripts/mutants.js [--list] [--no-guest] [--fresh] [name...]
//
// Work tree: build-mutants/ (src/: the copy of native/ with test/fixtures and bench/native
// linked in; build/: one Ninja build shared by every mutant, so each rebuilds only what its
// file touches). The unmutated binaries run first (baseline): a mutant counts as killed only by
// tests that pass without it. Mutants with a `guest` list (what only several NUMA nodes show)
// keep a copy of their binaries; all of them, plus the baseline, then run in ONE two-node QEMU
// guest boot (test/vm/), skipped loudly without QEMU (a failure under CI=true / HWSQ_REQUIRE_ALL).
// HWSQ_MUTANT_TIMEOUT=<s> bounds one test binary run (default 90, where the baseline takes
// seconds: a hang is a kill).
//
// Cache (CI time): native/mutants/killed.json (committed) records, per mutant, a hash of what
// can change its outcome -- its own entry in mutants.json and every file under native/ but the
// N-API glue (native/napi/, which no core test builds): the core, the tests, CMakeLists; the
// fixtures the native tests read (test/fixtures/cgroup/, test/fixtures/sysfs/: HWSQ_FIXTURES)
// and the guest harness (test/vm/) -- when it was last killed. The JS tests' fixtures (task
// modules, shutdown scenarios) decide no mutant: changing them keeps the cache. A
// mutant whose hash is unchanged is reported killed from the cache and not rebuilt; any change
// to those files runs it again. --fresh (or HWSQ_MUTANTS_FRESH=1) ignores the cache. A run that
// kills mutants records them.
'use strict';
const crypto = require('node:crypto');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const req = require('./requirements');

const root = path.resolve(__dirname, '..');
const work = path.join(root, 'build-mutants');
const src = path.join(work, 'src');
const build = path.join(work, 'build');
const guestDir = path.join(work, 'guest');
const spec = JSON.parse(fs.readFileSync(path.join(root, 'native', 'mutants', 'mutants.json'), 'utf8'));
const timeoutS = Number(process.env.HWSQ_MUTANT_TIMEOUT || 90);

const args = process.argv.slice(2);
const flags = new Set(args.filter((a) => a.startsWith('--')));
const names = args.filter((a) => !a.startsWith('--'));
for (const n of names)
  if (!spec.mutants.some((m) => m.name === n)) fail(`no mutant named ${n} (node scripts/mutants.js --list)`);
const allMutants = spec.mutants.filter((m) => names.length === 0 || names.includes(m.name));

function fail(msg) {
  console.error(`mutants: ${msg}`);
  process.exit(2);
}

const cacheFile = path.join(root, 'native', 'mutants', 'killed.json');
const fresh = flags.has('--fresh') || process.env.HWSQ_MUTANTS_FRESH === '1';

// One hash of the files that decide every mutant's outcome (see the file comment).
const MUTANT_INPUTS = ['native', 'test/fixtures/cgroup', 'test/fixtures/sysfs', 'test/vm'];
function treeHash() {
  const h = crypto.createHash('sha256');
  const walk = (dir) =>
    fs
      .readdirSync(dir, { withFileTypes: true })
      .sort((a, b) => a.name.localeCompare(b.name))
      .flatMap((d) => (d.isDirectory() ? walk(path.join(dir, d.name)) : d.isFile() ? [path.join(dir, d.name)] : []));
  for (const top of MUTANT_INPUTS) {
    for (const f of walk(path.join(root, top))) {
      if (f === cacheFile || f.startsWith(path.join(root, 'native', 'napi') + path.sep)) continue;
      h.update(`${path.relative(root, f)}\0`);
      h.update(fs.readFileSync(f));
      h.update('\0');
    }
  }
  return h.digest('hex');
}
const mutantKey = (tree, m) => crypto.createHash('sha256').update(tree).update(JSON.stringify(m)).digest('hex').slice(0, 32);
function readCache() {
  try {
    return JSON.parse(fs.readFileSync(cacheFile, 'utf8')).killed || {};
  } catch {
    return {};
  }
}

if (flags.has('--list')) {
  for (const m of spec.mutants) console.log(`${m.name.padEnd(36)} ${m.file}  [${[...m.tests, ...(m.guest || []).map((g) => `guest:${g}`)].join(', ')}]`);
  process.exit(0);
}

/** The mutated text of a mutant's file; every edit's anchor must occur exactly once. */
function mutate(m, text) {
  for (const e of m.edits) {
    const at = text.indexOf(e.find);
    if (at < 0 || text.indexOf(e.find, at + 1) >= 0)
      fail(`${m.name}: the anchor ${JSON.stringify(e.find)} occurs ${at < 0 ? 'nowhere' : 'more than once'} in native/${m.file}; update mutants.json to follow the code`);
    text = text.slice(0, at) + e.replace + text.slice(at + e.find.length);
  }
  return text;
}

// Brings src/ to the checkout's native/ (only changed files are written, so Ninja keeps what is
// up to date), with the fixtures and benchmarks CMakeLists.txt refers to linked in.
function syncTree() {
  const from = path.join(root, 'native');
  const to = path.join(src, 'native');
  const walk = (dir) =>
    fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? walk(path.join(dir, d.name)) : [path.join(dir, d.name)]));
  const want = new Set();
  for (const f of walk(from)) {
    const rel = path.relative(from, f);
    want.add(rel);
    writeIfChanged(path.join(to, rel), fs.readFileSync(f));
  }
  if (fs.existsSync(to)) for (const f of walk(to)) if (!want.has(path.relative(to, f))) fs.rmSync(f);
  for (const link of ['test/fixtures', 'bench/native']) {
    const at = path.join(src, link);
    if (!fs.existsSync(at)) {
      fs.mkdirSync(path.dirname(at), { recursive: true });
      fs.symlinkSync(path.join(root, link), at);
    }
  }
}

function writeIfChanged(file, content) {
  const buf = Buffer.from(content);
  if (fs.existsSync(file) && fs.readFileSync(file).equals(buf)) return;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, buf);
}

function sh(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', ...opts });
  if (r.error) throw r.error;
  return r;
}

/** "binary=filter" -> {bin, filter}. */
const parseTest = (t) => {
  const [bin, ...rest] = t.split('=');
  return { bin, filter: rest.length ? rest.join('=') : null, label: t };
};

function buildTargets(bins) {
  const r = sh('cmake', ['--build', build, '--parallel', '2', '--target', ...new Set(bins)]);
  return r.status === 0 ? null : `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => /error|Error/.test(l)).slice(0, 15).join('\n');
}

/** Runs one test binary: {pass, why}. A nonzero exit, a signal or the timeout fails it. */
function runTest(t, dir = build, env = {}) {
  const started = Date.now();
  const r = spawnSync(path.join(dir, t.bin), t.filter ? [t.filter] : [], {
    encoding: 'utf8',
    timeout: timeoutS * 1000,
    killSignal: 'SIGKILL',
    env: { ...process.env, ...env },
    maxBuffer: 64 * 1024 * 1024,
  });
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  const out = `${r.stdout || ''}\n${r.stderr || ''}`;
  if (r.error && r.error.code === 'ETIMEDOUT') return { pass: false, why: `timed out after ${timeoutS}s`, secs };
  if (r.signal) return { pass: false, why: `killed by ${r.signal}`, secs };
  if (r.status !== 0) {
    const failed = out.split('\n').filter((l) => /^FAIL |failed:|exception:/.test(l)).slice(0, 3).join(' | ');
    return { pass: false, why: `exit ${r.status}: ${failed}`, secs };
  }
  if (!/^\d+ passed, 0 failed$/m.test(out) || /^0 passed/m.test(out)) return { pass: false, why: 'ran no case (filter matches nothing?)', secs };
  return { pass: true, why: 'passed', secs };
}

async function guestPhase(guestMutants, baselineTests) {
  const { vmToolsAvailable, runInVm, TOPOLOGIES, APT_PACKAGES } = await import('../test/vm/vm.mjs');
  const { missing } = vmToolsAvailable();
  if (missing.length) {
    const reason = `missing ${missing.join(', ')}`;
    if (req.requireAll()) {
      console.error(`guest mutants: ${reason} (CI=true / HWSQ_REQUIRE_ALL=1 require it)`);
      return { error: true };
    }
    req.reportSkip({ kind: 'stage', name: 'mutants in a multi-node guest', reason, enable: req.aptLine(APT_PACKAGES) });
    console.log(`guest mutants SKIPPED (${reason}): ${guestMutants.map((m) => m.name).join(', ')}`);
    return { skipped: true };
  }
  // One boot: the baseline binaries (must pass), then each mutant's own copies (must fail).
  const runs = [{ name: 'baseline', dir: path.join(guestDir, 'baseline'), tests: baselineTests }, ...guestMutants.map((m) => ({ name: m.name, dir: path.join(guestDir, m.name), tests: m.guest }))];
  const topo = TOPOLOGIES.twoNode;
  const plan = path.join(guestDir, 'plan.json');
  fs.writeFileSync(plan, JSON.stringify({ nodes: topo.nodes.length, timeoutS, runs }));
  console.log(`\n=== guest (${topo.nodes.length} nodes, one boot): baseline + ${guestMutants.length} mutant(s)`);
  // no_timer_check: on a loaded host TCG can miss the kernel's early IO-APIC timer check, which
  // panics the boot ("IO-APIC + timer doesn't work"); a boot that fails anyway is tried once more.
  const boot = () => runInVm(topo, `node native/mutants/guest.cjs ${plan}`, { timeoutMs: 240_000 + 60_000 * runs.length, separateStderr: true, kernelArgs: ['no_timer_check'] });
  let vm;
  try {
    vm = await boot();
  } catch (err) {
    console.error(`guest boot failed, once more: ${String(err.message).split('\n')[0]}`);
    try {
      vm = await boot();
    } catch (again) {
      console.error(String(again.message));
      return { error: true };
    }
  }
  if (vm.exitCode !== 0) {
    console.error(`guest exited ${vm.exitCode}:\n${vm.stdout}\n${vm.stderr ?? ''}\n${vm.console.slice(-2000)}`);
    return { error: true };
  }
  const results = JSON.parse(vm.stdout.trim().split('\n').pop());
  return { results };
}

async function main() {
  const start = Date.now();
  const elapsed = () => `${((Date.now() - start) / 1000).toFixed(0)}s`;
  // Every anchor first: a stale one fails before any build (cached mutants too).
  const pristine = new Map();
  for (const m of allMutants) {
    if (!pristine.has(m.file)) pristine.set(m.file, fs.readFileSync(path.join(root, 'native', m.file), 'utf8'));
    mutate(m, pristine.get(m.file));
  }
  const tree = treeHash();
  const cache = readCache();
  const cached = fresh ? [] : allMutants.filter((m) => cache[m.name] && cache[m.name].key === mutantKey(tree, m));
  for (const m of cached) console.log(`cached   ${m.name}  killed on this very tree by ${cache[m.name].by}`);
  const mutants = allMutants.filter((m) => !cached.includes(m));
  if (mutants.length === 0) {
    console.log(`\n${cached.length} killed (all from the cache: ${MUTANT_INPUTS.join('/, ')}/ unchanged since; --fresh runs them), 0 survived of ${allMutants.length} mutants in ${elapsed()}`);
    return 0;
  }
  fs.mkdirSync(work, { recursive: true });
  syncTree();
  if (!fs.existsSync(path.join(build, 'CMakeCache.txt'))) {
    const ninja = sh('ninja', ['--version']).status === 0;
    const r = spawnSync('cmake', ['-S', path.join(src, 'native'), '-B', build, ...(ninja ? ['-G', 'Ninja'] : []), '-DCMAKE_BUILD_TYPE=RelWithDebInfo'], { stdio: 'inherit' });
    if (r.status !== 0) fail('cmake configure failed');
  }
  const hostTests = [...new Set(mutants.flatMap((m) => m.tests))].map(parseTest);
  const guestMutants = flags.has('--no-guest') ? [] : mutants.filter((m) => m.guest && m.guest.length);
  const guestTests = [...new Set(guestMutants.flatMap((m) => m.guest))].map(parseTest);
  const allBins = [...new Set([...hostTests, ...guestTests].map((t) => t.bin))];

  console.log(`=== baseline: ${allBins.join(', ')}`);
  const berr = buildTargets(allBins);
  if (berr) fail(`the unmutated tree does not build:\n${berr}`);
  for (const t of hostTests) {
    const r = runTest(t);
    console.log(`  ${r.pass ? 'pass' : 'FAIL'} ${t.label} (${r.secs}s)${r.pass ? '' : `: ${r.why}`}`);
    if (!r.pass) fail(`baseline test ${t.label} fails without any mutant: fix it first`);
  }
  const copyBins = (dir, bins) => {
    fs.mkdirSync(dir, { recursive: true });
    for (const b of bins) fs.copyFileSync(path.join(build, b), path.join(dir, b));
  };
  if (guestMutants.length) copyBins(path.join(guestDir, 'baseline'), [...new Set(guestTests.map((t) => t.bin))]);

  // Grouped by file, so a file is restored (and its objects rebuilt) once per group.
  const ordered = [...mutants].sort((a, b) => a.file.localeCompare(b.file));
  const results = [];
  let current = null;
  for (const m of ordered) {
    if (current && current !== m.file) writeIfChanged(path.join(src, 'native', current), pristine.get(current));
    current = m.file;
    writeIfChanged(path.join(src, 'native', m.file), mutate(m, pristine.get(m.file)));
    const tests = m.tests.map(parseTest);
    const bins = [...new Set([...tests, ...(m.guest || []).map(parseTest)].map((t) => t.bin))];
    const err = buildTargets(bins);
    if (err) {
      writeIfChanged(path.join(src, 'native', m.file), pristine.get(m.file));
      fail(`${m.name} does not compile (a mutant must):\n${err}`);
    }
    let killedBy = null;
    for (const t of tests) {
      const r = runTest(t);
      if (!r.pass) {
        killedBy = `${t.label}: ${r.why} (${r.secs}s)`;
        break;
      }
    }
    if (guestMutants.includes(m)) copyBins(path.join(guestDir, m.name), [...new Set(m.guest.map((g) => parseTest(g).bin))]);
    results.push({ m, host: killedBy });
    console.log(`${killedBy ? 'killed  ' : guestMutants.includes(m) ? 'host-ok ' : 'SURVIVED'} ${m.name} [${elapsed()}]${killedBy ? `  by ${killedBy}` : ''}`);
  }
  if (current) writeIfChanged(path.join(src, 'native', current), pristine.get(current));

  let guestError = false;
  let guestSkipped = false;
  const guestKilled = new Map();
  if (guestMutants.length) {
    const g = await guestPhase(guestMutants, guestTests.map((t) => t.label));
    if (g.error) guestError = true;
    else if (g.skipped) guestSkipped = true;
    else {
      for (const run of g.results) {
        const bad = run.tests.filter((t) => !t.pass);
        if (run.name === 'baseline') {
          for (const t of run.tests) console.log(`  guest baseline ${t.pass ? 'pass' : 'FAIL'} ${t.label}${t.pass ? '' : `: ${t.why}`}`);
          if (bad.length) guestError = true;
        } else {
          if (bad.length) guestKilled.set(run.name, `guest ${bad[0].label}: ${bad[0].why}`);
          console.log(`  guest ${bad.length ? 'killed  ' : 'SURVIVED'} ${run.name}${bad.length ? ` by ${bad[0].label}: ${bad[0].why}` : ''}`);
        }
      }
    }
  }

  console.log('\n=== mutants');
  let survived = 0;
  for (const { m, host } of results) {
    const guest = guestKilled.get(m.name);
    const isGuest = guestMutants.includes(m);
    const status = host || guest ? 'killed' : isGuest && (guestSkipped || guestError) ? 'UNTESTED' : 'SURVIVED';
    if (status === 'SURVIVED') survived++;
    console.log(`${status.padEnd(8)} ${m.name.padEnd(36)} ${host || guest || `(${m.claim})`}`);
  }
  const killedNow = results.filter((r) => r.host || guestKilled.has(r.m.name));
  // Record the kills against this tree (the cache keeps other mutants' entries).
  const next = { ...readCache() };
  for (const { m, host } of killedNow) next[m.name] = { key: mutantKey(tree, m), by: host || guestKilled.get(m.name) };
  for (const name of Object.keys(next)) if (!spec.mutants.some((m) => m.name === name)) delete next[name];
  const text = `${JSON.stringify({ '//': 'scripts/mutants.js cache: per mutant, the hash of its spec and of native/ (but napi/), test/fixtures/cgroup/, test/fixtures/sysfs/, test/vm/ when it was last killed. Regenerated by the harness; commit it.', killed: next }, null, 2)}\n`;
  if (!fs.existsSync(cacheFile) || fs.readFileSync(cacheFile, 'utf8') !== text) fs.writeFileSync(cacheFile, text);
  const killed = killedNow.length + cached.length;
  console.log(`\n${killed} killed (${cached.length} from the cache), ${survived} survived of ${allMutants.length} mutants in ${elapsed()}${guestSkipped ? ' (guest mutants skipped: no QEMU)' : ''}`);
  if (guestError) return 2;
  return survived ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(2);
  },
);
