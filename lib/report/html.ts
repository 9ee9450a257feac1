// `hwsq report`: result files of `hwsq bench <probe> --json <file>` rendered as one self-contained
// HTML page. The charting library (Apache ECharts) is read from node_modules when the report is
// made and inlined, with the data and the page's own script (client.ts): the page needs no network
// when it is viewed, and it can be mailed or archived as one file.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { codedError, ErrorCodes } from '../core/errors';
import { packageRoot } from '../core/native';
import { version } from '../core/version';
import { CLIENT_JS, CLIENT_CSS } from './client';

export type ReportKind = 'memory' | 'latency' | 'compare' | 'pools' | 'spawn';

export interface ReportInput {
  /** Base name of the file it came from. */
  file: string;
  kind: ReportKind;
  /** The file's JSON (a bench envelope, or the report of `hwsq bench spawn --json`). */
  data: Record<string, unknown>;
}

const KINDS: readonly ReportKind[] = ['memory', 'latency', 'compare', 'pools', 'spawn'];

/** What kind of result a parsed JSON object is, or null. */
export function resultKind(data: unknown): ReportKind | null {
  if (typeof data !== 'object' || data === null) return null;
  const o = data as { tool?: unknown; kind?: unknown; bench?: unknown; results?: unknown };
  if (o.tool === 'hwsq' && typeof o.kind === 'string' && (KINDS as readonly string[]).includes(o.kind) && typeof o.results === 'object') return o.kind as ReportKind;
  if (o.bench === 'spawn') return 'spawn';
  return null;
}

/** Results are kilobytes; anything past this is not one (and must not be read whole into memory). */
const MAX_RESULT_BYTES = 64 << 20;

/**
 * The text of a regular file of at most MAX_RESULT_BYTES. Opened non-blocking and checked before
 * reading: a FIFO would block the open, a device such as /dev/zero never ends.
 */
function readResultText(file: string): string {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    if (!fs.fstatSync(fd).isFile()) throw new Error('not a regular file');
    // Read to the end rather than trust st.size (procfs files say 0), one byte past the limit.
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(1 << 20, MAX_RESULT_BYTES + 1 - total));
      const n = fs.readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
      total += n;
      if (total > MAX_RESULT_BYTES) throw new Error(`larger than ${MAX_RESULT_BYTES} bytes`);
    }
    return Buffer.concat(chunks, total).toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads one result file; an unreadable file or one that is not a hwsq result throws ERR_HWSQ_INVALID_ARG. */
export function readResultFile(file: string): ReportInput {
  let data: unknown;
  try {
    data = JSON.parse(readResultText(file));
  } catch (err) {
    throw codedError(ErrorCodes.INVALID_ARG, `${file}: not a readable JSON file (${(err as Error).message})`);
  }
  const kind = resultKind(data);
  if (!kind) throw codedError(ErrorCodes.INVALID_ARG, `${file}: not a result of hwsq bench (memory, latency, compare, pools or spawn) written with --json`);
  return { file: path.basename(file), kind, data: data as Record<string, unknown> };
}

/** ECharts' browser bundle, from the installed package. */
export function chartLibrary(): { name: string; version: string; source: string } {
  const req = createRequire(path.join(packageRoot, 'package.json'));
  let file: string;
  try {
    file = req.resolve('echarts/dist/echarts.min.js');
  } catch {
    throw codedError(ErrorCodes.UNSUPPORTED, 'the echarts package is not installed (npm install echarts): hwsq report inlines it into the page');
  }
  const pkg = JSON.parse(fs.readFileSync(path.join(path.dirname(file), '..', 'package.json'), 'utf8')) as { version: string };
  return { name: 'echarts', version: pkg.version, source: fs.readFileSync(file, 'utf8') };
}

// Inside <script>: "</script" or "<!--" in the data would end or confuse the element.
function scriptSafe(text: string): string {
  return text.replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export interface RenderOptions {
  title?: string;
}

/** The whole page, one string. */
export function renderReport(inputs: readonly ReportInput[], options: RenderOptions = {}): string {
  const lib = chartLibrary();
  const title = options.title ?? 'hwsq benchmark report';
  const payload = { generator: `hwsq ${version}`, generatedAt: new Date().toISOString(), chartLibrary: `${lib.name} ${lib.version}`, inputs };
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="hwsq ${escapeHtml(version)}">
<title>${escapeHtml(title)}</title>
<style>${CLIENT_CSS}</style>
</head>
<body>
<header><h1>${escapeHtml(title)}</h1><p class="meta" id="meta"></p></header>
<main id="report"></main>
<noscript>This report draws its charts with JavaScript.</noscript>
<script id="hwsq-data" type="application/json">${scriptSafe(JSON.stringify(payload))}</script>
<script>/* ${lib.name} ${lib.version}, Apache License 2.0 */
${lib.source.replace(/<\/script/gi, '<\\/script')}</script>
<script>${CLIENT_JS}</script>
</body>
</html>
`;
}
