// What `npm test` needs from the machine beyond Node and the compiler toolchain, and the registry
// of what it could not run. A stage (scripts/test.js) or a suite (test/requirements.ts) whose
// system tool is absent reports a skip here instead of failing; the runner's summary names every
// skip with its reason and the apt-get line that enables it. With CI=true or HWSQ_REQUIRE_ALL=1
// nothing may be skipped: the same absence is a failure.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

/** The arm64 glibc root, for qemu-aarch64 -L. */
const ARM64_SYSROOT = '/usr/aarch64-linux-gnu';

/**
 * The system tools, by id: the executables looked up on PATH (HWSQ_CHROMIUM names another
 * Chromium), files that must exist, and the Debian packages that provide them.
 */
const TOOLS = {
  cmake: { binaries: ['cmake', 'ctest'], apt: ['cmake'] },
  tmux: { binaries: ['tmux'], apt: ['tmux'] },
  valgrind: { binaries: ['valgrind'], apt: ['valgrind'] },
  chromium: { binaries: ['chromium'], envOverride: 'HWSQ_CHROMIUM', apt: ['chromium'] },
  // Cross compiler for the linux-arm64 prebuild; it brings the arm64 glibc and libstdc++
  // (ARM64_SYSROOT) that qemu-aarch64 -L loads arm64 Node with.
  'arm64-cross': {
    binaries: ['aarch64-linux-gnu-g++', 'aarch64-linux-gnu-strip'],
    files: [`${ARM64_SYSROOT}/lib/ld-linux-aarch64.so.1`],
    apt: ['g++-aarch64-linux-gnu'],
  },
  'qemu-user': { binaries: ['qemu-aarch64'], apt: ['qemu-user'] },
};

function onPath(name, envPath = process.env.PATH) {
  for (const dir of (envPath ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      /* next */
    }
  }
  return null;
}

function toolDef(id) {
  const def = TOOLS[id];
  if (!def) throw new Error(`unknown system tool ${id}; known: ${Object.keys(TOOLS).join(', ')}`);
  return def;
}

/** Path of the tool's first executable (HWSQ_CHROMIUM for chromium), or null. */
function toolPath(id) {
  const def = toolDef(id);
  if (def.envOverride && process.env[def.envOverride]) return process.env[def.envOverride];
  return onPath(def.binaries[0]);
}

/** What is missing for the tool: executables not on PATH, files absent. Empty when usable. */
function missingParts(id) {
  const def = toolDef(id);
  const missing = [];
  def.binaries.forEach((bin, i) => {
    const override = i === 0 && def.envOverride ? process.env[def.envOverride] : undefined;
    if (override) {
      try {
        fs.accessSync(override, fs.constants.X_OK);
      } catch {
        missing.push(`${override} (${def.envOverride})`);
      }
    } else if (!onPath(bin)) missing.push(`${bin} (not on PATH)`);
  });
  for (const f of def.files ?? []) if (!fs.existsSync(f)) missing.push(f);
  return missing;
}

/** The apt-get line that installs the given packages. */
function aptLine(packages) {
  return `apt-get install -y ${packages.join(' ')}`;
}

/** Reason and enabling command for a set of tools, or null when all are usable. */
function checkTools(ids) {
  const missing = ids.flatMap(missingParts);
  if (!missing.length) return null;
  const packages = [...new Set(ids.filter((id) => missingParts(id).length).flatMap((id) => toolDef(id).apt))];
  return { reason: `missing ${missing.join(', ')}`, enable: aptLine(packages) };
}

/** CI=true (any CI value but '' / 'false' / '0') or HWSQ_REQUIRE_ALL=1: a missing tool fails. */
function requireAll(env = process.env) {
  const on = (v) => v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
  return on(env.CI) || on(env.HWSQ_REQUIRE_ALL);
}

/** File the runner collects skips in (one JSON object a line); unset outside scripts/test.js. */
const SKIP_LOG_ENV = 'HWSQ_SKIP_LOG';
/** The stage a skip was seen in ('unit', 'compat-24', ...), set by the runner for each stage. */
const SKIP_STAGE_ENV = 'HWSQ_SKIP_STAGE';

/**
 * Records a skip: { kind: 'stage' | 'test', name, reason, enable }. Printed at once (so a direct
 * vitest run says it too) and appended to the runner's log for its summary.
 */
function reportSkip(skip) {
  const entry = { ...skip, stage: skip.stage ?? process.env[SKIP_STAGE_ENV] ?? null };
  process.stderr.write(`\nSKIPPED ${entry.kind} ${entry.name}: ${entry.reason}\n  enable it: ${entry.enable}\n\n`);
  const log = process.env[SKIP_LOG_ENV];
  if (log) fs.appendFileSync(log, JSON.stringify(entry) + '\n');
}

function readSkips(file) {
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').filter(Boolean).map((line) => JSON.parse(line));
}

/** Summary lines: one per distinct skip, with the stages it was seen in, reason and fix. */
function skipSummary(skips) {
  const byKey = new Map();
  for (const s of skips) {
    const key = `${s.kind}\0${s.name}\0${s.reason}\0${s.enable}`;
    const seen = byKey.get(key) ?? { ...s, stages: [] };
    if (s.stage && !seen.stages.includes(s.stage)) seen.stages.push(s.stage);
    byKey.set(key, seen);
  }
  const lines = [];
  for (const s of byKey.values()) {
    const where = s.kind === 'test' && s.stages.length ? ` (in ${s.stages.join(', ')})` : '';
    lines.push(`SKIPPED ${s.kind} ${s.name}${where}`, `  reason: ${s.reason}`, `  enable: ${s.enable}`);
  }
  return lines;
}

module.exports = {
  TOOLS,
  ARM64_SYSROOT,
  SKIP_LOG_ENV,
  SKIP_STAGE_ENV,
  aptLine,
  checkTools,
  onPath,
  readSkips,
  reportSkip,
  requireAll,
  skipSummary,
  toolPath,
};
