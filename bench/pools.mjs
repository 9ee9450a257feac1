#!/usr/bin/env node
// hwsq Runtime vs piscina vs tinypool (see lib/bench/pools.ts). Needs `npm run build` first.
//   node bench/pools.mjs [--workers N] [--tasks N] [--round-trips N] [--fib N] [--json]
import { parseArgs } from 'node:util';
import { runPoolsBench, formatPoolsReport } from '../dist/bench-pools.mjs';

const { values } = parseArgs({
  options: {
    workers: { type: 'string' },
    tasks: { type: 'string' },
    'round-trips': { type: 'string' },
    fib: { type: 'string' },
    json: { type: 'boolean' },
  },
});
const num = (v) => (v === undefined ? undefined : Number(v));
const report = await runPoolsBench({
  workers: num(values.workers),
  tasks: num(values.tasks),
  roundTrips: num(values['round-trips']),
  fib: num(values.fib),
  log: values.json ? undefined : (l) => console.log(l),
});
console.log(values.json ? JSON.stringify(report, null, 2) : formatPoolsReport(report));
