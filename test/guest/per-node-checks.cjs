// Runs inside a multi-NUMA QEMU guest (see test/per-node.vm.test.ts): `hwsq run --per-node`
// and forkPerNode on real nodes. Collects what each copy saw (test/fixtures/per-node-probe.cjs),
// numactl --show per copy, exit statuses, a forwarded SIGTERM, and the forkPerNode HTTP scenario
// (test/fixtures/per-node-cluster.cjs). Prints one JSON object.
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const { existsSync, readFileSync, mkdtempSync } = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '../..');
const hwsq = require(path.join(root, 'dist/index.js'));
const bin = path.join(root, 'bin/hwsq.js');
const probe = path.join(root, 'test/fixtures/per-node-probe.cjs');
const clusterFixture = path.join(root, 'test/fixtures/per-node-cluster.cjs');
const tmp = mkdtempSync('/tmp/per-node-');

function run(args, env = {}) {
  const r = spawnSync(process.execPath, [bin, 'run', ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const lines = (text) => text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));

// SIGTERM to hwsq once every copy has written its ready file; resolves with hwsq's exit status.
function forwardedTerm(nodes) {
  return new Promise((resolve, reject) => {
    const dir = mkdtempSync(path.join(tmp, 'term-'));
    const child = spawn(process.execPath, [bin, 'run', '--per-node', '--', 'sh', '-c', `touch ${dir}/ready-$HWSQ_NUMA_NODE; exec sleep 300`], { stdio: 'ignore' });
    let polls = 0;
    const poll = setInterval(() => {
      if (nodes.every((k) => existsSync(`${dir}/ready-${k}`))) {
        clearInterval(poll);
        child.kill('SIGTERM');
      } else if (++polls > 600) {
        clearInterval(poll);
        child.kill('SIGKILL');
        reject(new Error('copies never became ready'));
      }
    }, 100);
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
}

async function main() {
  const topo = hwsq.topology();
  const cpuNodes = topo.nodes.filter((n) => n.cpus.length > 0).map((n) => n.id);
  const last = cpuNodes[cpuNodes.length - 1];

  const bind = run(['--per-node', '--', process.execPath, probe]);
  const preferred = run(['--per-node', '--preferred', '--', process.execPath, probe]);
  const subset = run(['--per-node', '--nodes', `${last},${cpuNodes[0]}`, '--', process.execPath, probe]);
  const numactl = run(['--per-node', '--', 'sh', '-c', `numactl --show > ${tmp}/numactl-$HWSQ_NUMA_NODE`]);
  const numactlShow = {};
  for (const k of cpuNodes) numactlShow[k] = existsSync(`${tmp}/numactl-${k}`) ? readFileSync(`${tmp}/numactl-${k}`, 'utf8') : null;
  // Copy k exits 10+k, except the last node's, which dies of SIGTERM (143): the worst wins.
  const codes = run(['--per-node', '--', 'sh', '-c', `exit $((10 + HWSQ_NUMA_NODE))`]);
  const killed = run(['--per-node', '--', 'sh', '-c', `[ "$HWSQ_NUMA_NODE" = ${last} ] && kill -TERM $$; exit 1`]);
  const term = await forwardedTerm(cpuNodes);
  // HWSQ_NUMA_NODE alone, in a process that is not pinned: the runtimes must still keep to the node.
  const probeWith = (env) => {
    const r = spawnSync(process.execPath, [probe], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, PN_JS_RUNTIME: '1', ...env } });
    return { status: r.status, stderr: r.stderr, report: r.status === 0 ? JSON.parse(r.stdout) : null };
  };
  const envOnly = { unset: probeWith({ HWSQ_NUMA_NODE: '' }), last: probeWith({ HWSQ_NUMA_NODE: String(last) }) };

  const cluster = spawnSync(process.execPath, [clusterFixture], {
    encoding: 'utf8',
    timeout: 180_000,
    env: { ...process.env, PN_CRASH: '1', PN_OPTIONS: JSON.stringify({ restart: true, env: { PN_EXTRA: 'guest' } }) },
  });

  process.stdout.write(JSON.stringify({
    topology: { nodes: topo.nodes.map((n) => ({ id: n.id, cpus: n.cpus, hasMemory: n.hasMemory })), allowedCpus: topo.allowedCpus },
    bind: { status: bind.status, stderr: bind.stderr, reports: lines(bind.stdout) },
    preferred: { status: preferred.status, stderr: preferred.stderr, reports: lines(preferred.stdout) },
    subset: { status: subset.status, stderr: subset.stderr, reports: lines(subset.stdout) },
    numactl: { status: numactl.status, show: numactlShow },
    codes: { status: codes.status },
    killed: { status: killed.status },
    term,
    envOnly,
    cluster: { status: cluster.status, stderr: cluster.stderr, events: lines(cluster.stdout) },
  }) + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
