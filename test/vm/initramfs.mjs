// Finds the guest kernel and builds (and caches) the initramfs of the hwsq test VMs: a static
// busybox, the guest init (init.sh) and the kernel's virtio + 9p modules, written as an
// uncompressed newc cpio archive (no cpio binary and no root needed: /dev/console is a cpio entry).
//
// Run directly to (re)build it and print its path: node test/vm/initramfs.mjs [--force]
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(HERE, '../..');
const BUILDER_VERSION = 1;

/** Loaded by init.sh in this order; those absent (built in, or not in this kernel) are skipped. */
export const MODULES = [
  'virtio_ring',
  'virtio',
  'virtio_pci_modern_dev',
  'virtio_pci_legacy_dev',
  'virtio_pci',
  'netfs',
  'fscache',
  '9pnet',
  '9pnet_virtio',
  '9p',
];

export const APT_PACKAGES = ['qemu-system-x86', 'linux-image-amd64', 'busybox-static', 'numactl', 'hwloc-nox'];
export const APT_COMMAND = `apt-get install -y ${APT_PACKAGES.join(' ')}`;

export function cacheDir() {
  return process.env.HWSQ_VM_CACHE ? path.resolve(process.env.HWSQ_VM_CACHE) : path.join(REPO_ROOT, '.vm-cache');
}

function readable(p) {
  try {
    fs.accessSync(p, fs.constants.R_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

export function onPath(name) {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const p = path.join(dir || '.', name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      /* next */
    }
  }
  return null;
}

function compareVersions(a, b) {
  return a.localeCompare(b, 'en', { numeric: true });
}

/**
 * The guest kernel: the newest /lib/modules/<ver> that has a readable /boot/vmlinuz-<ver> and a
 * modules.dep (HWSQ_VM_KERNEL_VERSION picks one). Not the host's running kernel.
 * @returns {{ version: string, vmlinuz: string, moduleDir: string } | null}
 */
export function findKernel() {
  let versions;
  try {
    versions = fs.readdirSync('/lib/modules');
  } catch {
    return null;
  }
  const wanted = process.env.HWSQ_VM_KERNEL_VERSION;
  const candidates = versions
    .filter((v) => !wanted || v === wanted)
    .filter((v) => readable(`/boot/vmlinuz-${v}`) && readable(`/lib/modules/${v}/modules.dep`))
    .sort(compareVersions);
  const version = candidates.at(-1);
  return version ? { version, vmlinuz: `/boot/vmlinuz-${version}`, moduleDir: `/lib/modules/${version}` } : null;
}

/** True when the ELF file has no PT_INTERP program header (statically linked). */
function isStaticElf(file) {
  let fd;
  try {
    fd = fs.openSync(file, 'r');
    const h = Buffer.alloc(64);
    fs.readSync(fd, h, 0, 64, 0);
    if (h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2 || h[5] !== 1) return false; // 64-bit LE ELF only
    const phoff = Number(h.readBigUInt64LE(32));
    const phentsize = h.readUInt16LE(54);
    const phnum = h.readUInt16LE(56);
    const ph = Buffer.alloc(phentsize * phnum);
    fs.readSync(fd, ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) if (ph.readUInt32LE(i * phentsize) === 3 /* PT_INTERP */) return false;
    return true;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** @returns {string | null} a statically linked busybox (HWSQ_VM_BUSYBOX overrides). */
export function findBusybox() {
  const candidates = [process.env.HWSQ_VM_BUSYBOX, '/bin/busybox', '/usr/bin/busybox', onPath('busybox')];
  return candidates.find((p) => p && isStaticElf(p)) ?? null;
}

export function findQemu() {
  const p = process.env.HWSQ_VM_QEMU;
  if (!p) return onPath('qemu-system-x86_64');
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return p;
  } catch {
    return null;
  }
}

/** modules.dep key for a module name ("9pnet_virtio" -> its relative path), or null if built in / absent. */
function modulePaths(moduleDir) {
  const byName = new Map();
  for (const line of fs.readFileSync(path.join(moduleDir, 'modules.dep'), 'utf8').split('\n')) {
    const rel = line.split(':')[0];
    if (!rel) continue;
    const m = /([^/]+)\.ko(\.(xz|zst|gz))?$/.exec(rel);
    if (m) byName.set(m[1].replace(/-/g, '_'), rel);
  }
  return byName;
}

function builtinModules(moduleDir) {
  try {
    const text = fs.readFileSync(path.join(moduleDir, 'modules.builtin'), 'utf8');
    return new Set(text.split('\n').map((l) => /([^/]+)\.ko$/.exec(l)?.[1]?.replace(/-/g, '_')).filter(Boolean));
  } catch {
    return new Set();
  }
}

function decompressor(rel) {
  if (rel.endsWith('.ko.xz')) return 'xz';
  if (rel.endsWith('.ko.zst')) return 'zstd';
  if (rel.endsWith('.ko.gz')) return 'gzip';
  return null;
}

/** What is missing to build and boot the VMs: human-readable items, each naming its package. */
export function missingTools() {
  const missing = [];
  if (!findQemu()) missing.push('qemu-system-x86_64 (package qemu-system-x86)');
  const kernel = findKernel();
  if (!kernel) missing.push('a readable /boot/vmlinuz-<ver> with /lib/modules/<ver> (package linux-image-amd64)');
  if (!findBusybox()) missing.push('a statically linked busybox (package busybox-static)');
  if (!onPath('numactl')) missing.push('numactl (package numactl)');
  if (!onPath('lstopo-no-graphics')) missing.push('lstopo-no-graphics (package hwloc-nox)');
  if (kernel) {
    const paths = modulePaths(kernel.moduleDir);
    const builtin = builtinModules(kernel.moduleDir);
    for (const name of ['virtio_pci', '9pnet_virtio', '9p']) {
      if (!paths.has(name) && !builtin.has(name)) missing.push(`the ${name} module of kernel ${kernel.version} (package linux-image-amd64)`);
    }
    for (const name of MODULES) {
      const rel = paths.get(name);
      const tool = rel && decompressor(rel);
      if (tool && !onPath(tool)) missing.push(`${tool} to decompress ${rel} (package ${tool === 'xz' ? 'xz-utils' : tool})`);
    }
  }
  return [...new Set(missing)];
}

// ---- newc cpio writer ----------------------------------------------------------------------

function pad4(n) {
  return (4 - (n % 4)) % 4;
}

class Cpio {
  constructor() {
    this.chunks = [];
    this.ino = 1;
  }
  entry(name, mode, data = Buffer.alloc(0), rdev = [0, 0]) {
    const nameBuf = Buffer.from(name + '\0');
    const fields = [this.ino++, mode, 0, 0, (mode & 0o170000) === 0o040000 ? 2 : 1, 0, data.length, 0, 0, rdev[0], rdev[1], nameBuf.length, 0];
    const header = Buffer.from('070701' + fields.map((f) => f.toString(16).padStart(8, '0')).join(''));
    this.chunks.push(header, nameBuf, Buffer.alloc(pad4(header.length + nameBuf.length)), data, Buffer.alloc(pad4(data.length)));
  }
  dir(name) {
    this.entry(name, 0o040755);
  }
  file(name, data, perm = 0o644) {
    this.entry(name, 0o100000 | perm, data);
  }
  symlink(name, target) {
    this.entry(name, 0o120777, Buffer.from(target));
  }
  chardev(name, major, minor) {
    this.entry(name, 0o020600, undefined, [major, minor]);
  }
  finish() {
    this.entry('TRAILER!!!', 0);
    const buf = Buffer.concat(this.chunks);
    return Buffer.concat([buf, Buffer.alloc((512 - (buf.length % 512)) % 512)]);
  }
}

function busyboxApplets(busybox) {
  const r = spawnSync(busybox, ['--list'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${busybox} --list failed: ${r.stderr}`);
  return r.stdout.split('\n').filter((a) => /^[\w.[-]+$/.test(a) && a !== 'busybox');
}

function cacheKey(kernel, busybox) {
  const h = createHash('sha256');
  h.update(`v${BUILDER_VERSION}\n${kernel.version}\n${MODULES.join(',')}\n`);
  h.update(fs.readFileSync(fileURLToPath(import.meta.url)));
  h.update(fs.readFileSync(path.join(HERE, 'init.sh')));
  for (const f of [busybox, kernel.vmlinuz, path.join(kernel.moduleDir, 'modules.dep')]) {
    const st = fs.statSync(f);
    h.update(`${f}:${st.size}:${st.mtimeMs}\n`);
  }
  return h.digest('hex').slice(0, 16);
}

/**
 * Builds the initramfs for the given kernel unless a cached one with the same inputs exists.
 * @returns {{ path: string, built: boolean, modules: string[], skipped: string[] }}
 */
export function ensureInitramfs({ force = false } = {}) {
  const kernel = findKernel();
  const busybox = findBusybox();
  if (!kernel || !busybox) throw new Error(`cannot build the VM initramfs: missing ${missingTools().join(', ')}`);
  const dir = cacheDir();
  const out = path.join(dir, `initramfs-${kernel.version}-${cacheKey(kernel, busybox)}.cpio`);
  const manifest = out + '.json';
  if (!force && fs.existsSync(out) && fs.existsSync(manifest)) {
    return { path: out, built: false, ...JSON.parse(fs.readFileSync(manifest, 'utf8')) };
  }

  const cpio = new Cpio();
  for (const d of ['bin', 'sbin', 'dev', 'proc', 'sys', 'mnt', 'io', 'tmp', 'lib', 'lib/modules']) cpio.dir(d);
  cpio.chardev('dev/console', 5, 1);
  cpio.chardev('dev/null', 1, 3);
  cpio.file('bin/busybox', fs.readFileSync(busybox), 0o755);
  for (const applet of busyboxApplets(busybox)) cpio.symlink(`bin/${applet}`, 'busybox');
  cpio.file('init', fs.readFileSync(path.join(HERE, 'init.sh')), 0o755);

  const paths = modulePaths(kernel.moduleDir);
  const modules = [];
  const skipped = [];
  for (const name of MODULES) {
    const rel = paths.get(name);
    if (!rel) {
      skipped.push(name); // built into the kernel (or not provided at all: init.sh will find out)
      continue;
    }
    const file = path.join(kernel.moduleDir, rel);
    const tool = decompressor(rel);
    let data;
    if (tool) {
      const r = spawnSync(tool, ['-dc', file], { maxBuffer: 256 * 2 ** 20 });
      if (r.status !== 0) throw new Error(`${tool} -dc ${file} failed: ${r.stderr}`);
      data = r.stdout;
    } else {
      data = fs.readFileSync(file);
    }
    cpio.file(`lib/modules/${name}.ko`, data);
    modules.push(name);
  }
  cpio.file('lib/modules/order', Buffer.from(modules.join('\n') + '\n'));

  fs.mkdirSync(dir, { recursive: true });
  // Write under a unique name and rename: concurrent builders (vitest workers) never see a partial file.
  const tmp = `${out}.${process.pid}.${Date.now()}.tmp`;
  fs.writeFileSync(tmp, cpio.finish());
  fs.writeFileSync(tmp + '.json', JSON.stringify({ kernel: kernel.version, modules, skipped }, null, 2));
  fs.renameSync(tmp + '.json', manifest);
  fs.renameSync(tmp, out);
  // Drop stale archives of older inputs.
  for (const f of fs.readdirSync(dir)) {
    const p = path.join(dir, f);
    if (f.startsWith(`initramfs-${kernel.version}-`) && p !== out && p !== manifest && !f.endsWith('.tmp')) fs.rmSync(p, { force: true });
  }
  return { path: out, built: true, kernel: kernel.version, modules, skipped };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const missing = missingTools();
  if (missing.length) {
    console.error(`missing: ${missing.join(', ')}\ninstall with: ${APT_COMMAND}`);
    process.exit(1);
  }
  const r = ensureInitramfs({ force: process.argv.includes('--force') });
  console.log(JSON.stringify(r, null, 2));
}
