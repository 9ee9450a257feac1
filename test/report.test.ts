// `hwsq report`: results of real (short) runs of every probe rendered into one self-contained
// HTML page, then opened in headless Chromium (Debian's `chromium`, driven by playwright-core) as
// a user would: it renders every chart, logs no console error, requests nothing from the network.
// The screenshot lands in test-artifacts/report/report.png.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readResultFile, renderReport, resultKind } from '../lib/report/html';
import { artifactDir, assertBuilt, hwsq } from './bench-helpers';
import { expectCode } from './helpers';
import { ErrorCodes } from '../lib/core/errors';
import { describeWith, requirements } from './requirements';

const CHROMIUM = requirements.toolPath('chromium') ?? 'chromium';
let dir = '';
const files: Record<string, string> = {};

function run(kind: string, args: string[]): void {
  const file = path.join(dir, `${kind}.json`);
  const r = hwsq(['bench', kind, ...args, '--json', file]);
  expect(r.status, `${kind}: ${r.stderr}`).toBe(0);
  files[kind] = file;
}

beforeAll(() => {
  assertBuilt();
  dir = artifactDir('report');
  run('memory', ['--quick', '--size', '8M', '--duration', '10ms', '--reps', '2']);
  run('latency', ['--quick', '--bursts', '200,2000', '--reps', '2', '--round-trips', '20', '--duration', '1ms']);
  run('compare', ['--quick', '--tasks', '2000', '--size', '4K', '--buffer', '1M', '--reps', '2']);
  run('pools', ['--quick', '--tasks', '2000', '--round-trips', '50']);
  // `bench spawn --json` prints its report on stdout (no envelope): the report reads it too.
  const spawn = hwsq(['bench', 'spawn', '--json', '--quick', '--tasks', '10000', '--reps', '1', '--no-go']);
  expect(spawn.status, spawn.stderr).toBe(0);
  files.spawn = path.join(dir, 'spawn.json');
  fs.writeFileSync(files.spawn, spawn.stdout);
}, 120_000);

describe('hwsq report', () => {
  it('recognizes result files and refuses others', () => {
    for (const [kind, file] of Object.entries(files)) expect(readResultFile(file).kind).toBe(kind);
    expect(resultKind({ tool: 'hwsq', kind: 'nonsense', results: {} })).toBeNull();
    const bad = path.join(dir, 'not-a-result.json');
    fs.writeFileSync(bad, '{"hello": 1}');
    const r = hwsq(['report', bad, '-o', path.join(dir, 'x.html')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/not a result of hwsq bench/);
  });

  it('refuses what is not a regular file of sane size without reading it: a device, a FIFO, a directory, a file over 64 MiB', () => {
    const fifo = path.join(dir, 'fifo');
    const big = path.join(dir, 'big.json');
    fs.rmSync(fifo, { force: true });
    execFileSync('mkfifo', [fifo]);
    fs.writeFileSync(big, '');
    fs.truncateSync(big, (64 << 20) + 1);  // sparse: no disk used
    for (const [file, why] of [['/dev/zero', 'not a regular file'], [fifo, 'not a regular file'], [dir, 'not a regular file'], [big, 'larger than 67108864 bytes']] as const) {
      expectCode(() => readResultFile(file), Error, ErrorCodes.INVALID_ARG);
      expect(() => readResultFile(file)).toThrow(Object.assign(new Error(`${file}: not a readable JSON file (${why})`), { code: ErrorCodes.INVALID_ARG }));
    }
    // From the CLI, the first case hung (it read /dev/zero until memory ran out).
    const r = hwsq(['report', '/dev/zero', '-o', path.join(dir, 'y.html')]);
    expect([r.status, r.stderr]).toEqual([1, 'hwsq: /dev/zero: not a readable JSON file (not a regular file) (ERR_HWSQ_INVALID_ARG)\n']);
    fs.rmSync(big);
    fs.rmSync(fifo);
  });

  it('writes one self-contained page: the chart library and the data inlined, nothing fetched', () => {
    const out = path.join(dir, 'report.html');
    const r = hwsq(['report', ...Object.values(files), '-o', out]);
    expect(r.status, r.stderr).toBe(0);
    const html = fs.readFileSync(out, 'utf8');
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toMatch(/\/\* echarts \d+\.\d+\.\d+, Apache License 2.0 \*\//);
    expect(html).not.toMatch(/<script[^>]+src=/i);
    expect(html).not.toMatch(/<link[^>]+href=/i);
    // The data block is valid JSON holding every input.
    const data = /<script id="hwsq-data" type="application\/json">([\s\S]*?)<\/script>/.exec(html)![1]!;
    const payload = JSON.parse(data) as { inputs: { kind: string }[] };
    expect(payload.inputs.map((i) => i.kind)).toEqual(['memory', 'latency', 'compare', 'pools', 'spawn']);
  });

  it('escapes data that could end the script element', () => {
    const input = readResultFile(files.compare!);
    (input.data as { options: Record<string, unknown> }).options.note = '</script><script>alert(1)</script>';
    const html = renderReport([input]);
    const block = /<script id="hwsq-data" type="application\/json">([\s\S]*?)<\/script>/.exec(html)![1]!;
    expect(block).not.toContain('</script');
    expect((JSON.parse(block) as { inputs: { data: { options: { note: string } } }[] }).inputs[0]!.data.options.note).toBe('</script><script>alert(1)</script>');
  });

  describeWith('chromium')('in headless Chromium', () => {
    let browser: Browser;

    beforeAll(async () => {
      browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
    }, 60_000);
    afterAll(async () => {
      await browser?.close();
    });

    it('renders every section and chart without console errors or network requests', async () => {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const problems: string[] = [];
      const requests: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
      });
      page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
      page.on('request', (req) => {
        if (!req.url().startsWith('file:')) requests.push(req.url());
      });
      const file = path.join(dir, 'report.html');
      await page.goto(pathToFileURL(file).href);
      // Browser-side code as strings: the test's tsconfig has no DOM types.
      await page.waitForFunction('window.__hwsqReport && window.__hwsqReport.ready === true', undefined, { timeout: 20_000 });
      const state = (await page.evaluate('window.__hwsqReport')) as { charts: number; sections: number; errors: string[] };
      expect(state.errors).toEqual([]);
      expect(state.sections).toBe(5);
      // memory: 2 heatmaps; latency: CDF, quantile bars, round-trip CDF; compare: bars, CDF; pools: 2; spawn: 1.
      expect(state.charts).toBe(10);
      const charts = (await page.evaluate(`[...document.querySelectorAll('.chart')].map((div) => {
        const canvas = div.querySelector('canvas');
        return { sec: div.closest('section').getAttribute('data-kind'), w: canvas ? canvas.width : 0, h: canvas ? canvas.height : 0 };
      })`)) as { sec: string; w: number; h: number }[];
      expect(charts).toHaveLength(10);
      for (const c of charts) {
        expect(c.w, JSON.stringify(c)).toBeGreaterThan(100);
        expect(c.h, JSON.stringify(c)).toBeGreaterThan(100);
      }
      // The heatmaps hold one cell per (CPU node, memory node) pair of the run.
      const memory = JSON.parse(fs.readFileSync(files.memory!, 'utf8')) as { results: { cpuNodes: number[]; memNodes: number[] } };
      const heatCells = await page.evaluate(`[...document.querySelectorAll('section[data-kind="memory"] .chart')].map((d) => {
        const s = echarts.getInstanceByDom(d).getOption().series[0];
        return { type: s.type, cells: s.data.length };
      })`);
      const pairs = memory.results.cpuNodes.length * memory.results.memNodes.length;
      expect(heatCells).toEqual([
        { type: 'heatmap', cells: pairs },
        { type: 'heatmap', cells: pairs },
      ]);
      // The flat-vs-hierarchical table has its change column.
      const compareHeader = await page.locator('section[data-kind="compare"] table th').allTextContents();
      expect(compareHeader).toEqual(['metric', 'flat', 'hierarchical', 'change']);
      expect(problems).toEqual([]);
      expect(requests).toEqual([]);
      const shot = path.join(dir, 'report.png');
      await page.screenshot({ path: shot, fullPage: true });
      expect(fs.statSync(shot).size).toBeGreaterThan(20_000);
      await page.close();
    }, 60_000);
  });
});
