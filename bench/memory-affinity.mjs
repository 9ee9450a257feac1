#!/usr/bin/env node
// The cost of node: 'auto' on the JS spawn path (issue 15: "under 5% when the arguments hold no
// buffer"), as ratios against plain spawns measured in the same run, rounds alternating:
//
//  spawn call   ns per Runtime.spawn call (the synchronous part: checks, encode, submit) of a
//               burst of 10,000 tasks whose arguments hold no buffer, auto / plain  goal <= 1.05
//  burst        ns per task, burst spawned and all results awaited, auto / plain    goal <= 1.05
//  with SAB     the same spawn call with a SharedArrayBuffer argument: auto (a cached placement
//               lookup) / an explicit node, the SAB's (the same queue, so only the lookup
//               differs)                                                            reported
//
// Rounds of short bursts, each side once per round in alternating order. Judged on best / best
// (each side's fastest round: noise on a shared machine only ever adds time, as in `hwsq bench
// spawn`); the median of the per-round ratios and its range are alongside. A miss is reported,
// never fatal. Needs `npm run build` first.
//   node bench/memory-affinity.mjs [--json] [--rounds N] [--tasks N]
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Runtime, pageNodes } from '../dist/index.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({ options: { json: { type: 'boolean' }, rounds: { type: 'string' }, tasks: { type: 'string' } } });
const ROUNDS = Number(values.rounds ?? 60);
const TASKS = Number(values.tasks ?? 2_000);
const now = () => Number(process.hrtime.bigint());
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const rt = await Runtime.start({ filename: path.join(here, 'tasks.mjs') });
const sab = new SharedArrayBuffer(1 << 20);
new Uint8Array(sab).fill(1);
const plainArgs = [{ id: 1, name: 'x', tags: ['a', 'b'] }];
const sabArgs = [{ id: 1, view: new Int32Array(sab) }];
const byNode = pageNodes(sab).byNode;
const SAB_NODE = { node: Number(Object.keys(byNode).sort((a, b) => byNode[b] - byNode[a])[0]) };

async function burst(args, options) {
  const promises = new Array(TASKS);
  const t0 = now();
  for (let i = 0; i < TASKS; i++) promises[i] = rt.spawn('noop', args, options);
  const t1 = now();
  await Promise.all(promises);
  const t2 = now();
  return { call: (t1 - t0) / TASKS, total: (t2 - t0) / TASKS };
}

const AUTO = { node: 'auto' };
const PLAIN = {};
for (let i = 0; i < 3; i++) {
  await burst(plainArgs, PLAIN);
  await burst(plainArgs, AUTO);
  await burst(sabArgs, AUTO);
}
const samples = { plain: [], auto: [], sabPlain: [], sabAuto: [] };
for (let r = 0; r < ROUNDS; r++) {
  // Alternate which goes first: drift over the run (other load, turbo) hits both sides alike.
  const order = r % 2 ? [['auto', plainArgs, AUTO], ['plain', plainArgs, PLAIN]] : [['plain', plainArgs, PLAIN], ['auto', plainArgs, AUTO]];
  for (const [name, args, options] of order) samples[name].push(await burst(args, options));
  samples.sabPlain.push(await burst(sabArgs, SAB_NODE));
  samples.sabAuto.push(await burst(sabArgs, AUTO));
}
const stats = rt.stats().memoryAffinity;
await rt.close();

const results = [];
function report(name, measuredSamples, baselineSamples, k, goal) {
  const measured = Math.min(...measuredSamples.map((x) => x[k]));
  const baseline = Math.min(...baselineSamples.map((x) => x[k]));
  const ratio = measured / baseline;
  const perRound = measuredSamples.map((x, r) => x[k] / baselineSamples[r][k]);
  const roundRatio = { median: median(perRound), min: Math.min(...perRound), max: Math.max(...perRound) };
  const met = goal ? ratio <= goal : null;
  results.push({ name, measuredNs: measured, baselineNs: baseline, ratio, roundRatio, goal: goal ?? null, met });
  if (!values.json) {
    const spread = `per round ${roundRatio.median.toFixed(3)} (${roundRatio.min.toFixed(3)}..${roundRatio.max.toFixed(3)})`;
    console.log(`${name.padEnd(12)} best ${measured.toFixed(0).padStart(7)} / ${baseline.toFixed(0).padStart(7)} ns = ${ratio.toFixed(3)}  ${goal ? `goal <= ${goal}  ${met ? 'met' : 'MISSED'}` : '(reported)'}; ${spread}`);
  }
}
report('spawn call', samples.auto, samples.plain, 'call', 1.05);
report('burst', samples.auto, samples.plain, 'total', 1.05);
report('with SAB', samples.sabAuto, samples.sabPlain, 'call');
if (values.json) console.log(JSON.stringify({ bench: 'memory-affinity', tasks: TASKS, rounds: ROUNDS, results, memoryAffinity: stats }));
else console.log(`(${ROUNDS} rounds of ${TASKS} tasks; counters: ${JSON.stringify(stats)})`);
