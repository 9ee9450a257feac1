// Preloaded (NODE_OPTIONS=--require) into the Node processes of npm test's arm64 stage. There
// arm64 Node runs under qemu-aarch64 (qemu-user) without binfmt_misc, so the kernel cannot exec
// an arm64 binary: a child started with process.execPath (the arm64 node itself: vitest's forks,
// the tests' CLI runs) is started through qemu-aarch64 instead, as binfmt_misc would do. Other
// commands are left alone: host binaries run natively. A no-op in any other process.
'use strict';
const qemu = process.env.HWSQ_QEMU_AARCH64;
const sysroot = process.env.HWSQ_ARM64_SYSROOT;

if (process.arch === 'arm64' && qemu && sysroot) {
  const cp = require('node:child_process');
  const { syncBuiltinESMExports } = require('node:module');
  const self = process.execPath;
  const prefix = ['-L', sysroot, self];

  for (const name of ['spawn', 'spawnSync', 'execFile', 'execFileSync']) {
    const original = cp[name];
    cp[name] = function viaQemu(file, ...rest) {
      if (file !== self) return original.call(this, file, ...rest);
      const args = Array.isArray(rest[0]) ? rest.shift() : [];
      return original.call(this, qemu, [...prefix, ...args], ...rest);
    };
  }

  const fork = cp.fork;
  cp.fork = function forkViaQemu(modulePath, args, options) {
    if (!Array.isArray(args)) [args, options] = [[], args];
    const opts = { ...options };
    if ((opts.execPath ?? self) !== self) return fork.call(this, modulePath, args, opts);
    return fork.call(this, modulePath, args, { ...opts, execPath: qemu, execArgv: [...prefix, ...(opts.execArgv ?? process.execArgv)] });
  };

  // ESM importers of node:child_process see the wrappers too.
  syncBuiltinESMExports();
}
