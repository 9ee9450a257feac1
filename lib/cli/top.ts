// `hwsq top --url http://host:port`: a live view of a runtime from its /metrics/scheduler JSON;
// `hwsq top --pid <pid>`: the same document read from the process's shared-memory stats file.
// Rates (utilization, steals/s, tasks/s) are differences between two polls over the server's
// clock (uptime_seconds; for --pid, the process's uptime when it published: a poll that finds
// the same publish again keeps the earlier base); latency quantiles are since the runtime started.
// On a terminal: the alternate screen redrawn in place, `q` or Ctrl-C quits and restores the
// terminal. Otherwise (a pipe, a file): one plain block of lines per poll, no escape codes.
import { ErrorCodes, rangeError } from '../core/errors';
import type { SchedulerJson } from '../metrics/scheduler-json';
import { shmDocumentReader } from '../shm/reader';
import { LIMITS, integer, readOptions, string } from '../core/validation';

export interface TopOptions {
  /** Base URL of a metrics server (http://host:port) or the full /metrics/scheduler URL. */
  url?: string;
  /** Or a process whose shared-memory stats file to read ('auto': the one process that publishes). */
  pid?: number | 'auto';
  /** With `pid`: which of its runtimes (default: its first running one). */
  runtime?: number;
  /** Poll period (default 1000 ms). */
  intervalMs?: number;
  /** Stop after this many polls (default: until q / Ctrl-C / SIGTERM). */
  count?: number;
  stdout?: NodeJS.WriteStream;
  stdin?: NodeJS.ReadStream;
  stderr?: NodeJS.WritableStream;
}

/** `http://host:port` -> `http://host:port/metrics/scheduler`; a URL with a path is kept. */
export function schedulerUrl(url: string): string {
  const u = new URL(url);
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/metrics/scheduler';
  return u.href;
}

/** A /metrics/scheduler document is a few KiB per worker: a server sending more is not one. */
const MAX_DOCUMENT_BYTES = 16 << 20;

async function fetchJson(url: string, timeoutMs: number): Promise<SchedulerJson> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status} ${clean(res.statusText)}`);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body ?? []) {
    size += chunk.byteLength;
    if (size > MAX_DOCUMENT_BYTES) throw new Error(`${url}: the document is larger than ${MAX_DOCUMENT_BYTES} bytes`);
    chunks.push(chunk);
  }
  const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as SchedulerJson;
  if (!body || !Array.isArray(body.workers) || !Array.isArray(body.nodes)) throw new Error(`${url}: not a /metrics/scheduler document`);
  return body;
}

/** Text from the server, shown on a terminal: no control characters (escape sequences). */
function clean(value: unknown): string {
  return String(value ?? '').replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

// ------------------------------------------------------------------ rendering (pure)

const fixed = (v: number | undefined, digits: number) => (v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(digits));
const pct = (v: number | undefined) => (v === undefined ? '-' : (Math.min(1, Math.max(0, v)) * 100).toFixed(1));

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), ...rows.map(line)];
}

/**
 * The lines of one frame. `prev` (the previous poll) gives the rates; without it they show '-'.
 */
export function renderTop(cur: SchedulerJson, prev?: SchedulerJson, source = ''): string[] {
  const dt = prev ? cur.uptime_seconds - prev.uptime_seconds : 0;
  const rate = (now: number, before: number | undefined) => (prev && dt > 0 && before !== undefined ? Math.max(0, now - before) / dt : undefined);
  const prevWorker = new Map(prev?.workers.map((w) => [w.worker, w]));
  const prevNode = new Map(prev?.nodes.map((n) => [n.numa_node, n]));
  const sumPrev = (f: (w: SchedulerJson['workers'][number]) => number) => (prev ? prev.workers.reduce((a, w) => a + f(w), 0) : undefined);
  const sameNow = cur.work_steal_count - cur.numa_steal_count;
  const samePrev = prev ? prev.work_steal_count - prev.numa_steal_count : undefined;
  const lat = cur.scheduling_latency_ms;
  const run = cur.run_time_ms;
  const where = [cur.namespace ? `${clean(cur.namespace)}/${clean(cur.pod_id)}` : clean(cur.pod_id), `hwsq ${clean(cur.runtime_version)}`, clean(source)].filter(Boolean).join('  ');
  const lines = [
    `hwsq top  ${where}  ${clean(cur.timestamp).slice(11, 19)}`,
    `tasks: ${cur.tasks.completed} completed (${fixed(rate(cur.tasks.completed, prev?.tasks.completed), 0)}/s)  ${cur.tasks.failed} failed  ${cur.tasks.spawned} spawned  workers ${cur.workers_total} (${cur.workers_parked} parked, ${cur.workers_spinning} spinning)`,
    `queues: local ${cur.local_queue_depth}  node ${cur.node_queue_depth}  global ${cur.global_queue_depth}`,
    `parallelism: ${cur.parallelism} (${clean(cur.parallelism_source)}, ${cur.parallelism_changes} changes)  workers active ${cur.workers_active} of ${cur.workers_total}`,
    `sched latency ms: p50 ${fixed(lat.p50, 3)}  p99 ${fixed(lat.p99, 3)}  max ${fixed(lat.max, 3)}   run time ms: p50 ${fixed(run.p50, 3)}  p99 ${fixed(run.p99, 3)}`,
    `steals/s: same-node ${fixed(rate(sameNow, samePrev), 1)}  remote-node ${fixed(rate(cur.numa_steal_count, prev?.numa_steal_count), 1)}  failed ${fixed(rate(cur.failed_steal_count, sumPrev((w) => w.failed_steals)), 1)}   hogs ${cur.hogs} (longest ${fixed(cur.longest_hog_ms, 1)} ms, stuck now ${cur.stuck_workers})`,
    '',
    ...table(
      ['NODE', 'WORKERS', 'UTIL%', 'NODE_Q', 'LOCAL_Q', 'STEAL/S_SAME', 'STEAL/S_REMOTE', 'DONE/S'],
      cur.nodes.map((n) => {
        const p = prevNode.get(n.numa_node);
        const busy = rate(n.busy_seconds, p?.busy_seconds);
        return [
          String(n.numa_node),
          String(n.workers),
          pct(busy === undefined ? undefined : busy / Math.max(1, n.workers)),
          String(n.queue_depth),
          String(n.local_queue_depth),
          fixed(rate(n.steals_same_node, p?.steals_same_node), 1),
          fixed(rate(n.steals_remote_node, p?.steals_remote_node), 1),
          fixed(rate(n.completed, p?.completed), 0),
        ];
      }),
    ),
    '',
    ...table(
      ['WORKER', 'NODE', 'CPUS', 'UTIL%', 'LOCAL_Q', 'STEAL/S_SAME', 'STEAL/S_REMOTE', 'FAILED/S', 'DONE/S', 'HOGS', 'STATE'],
      cur.workers.map((w) => {
        const p = prevWorker.get(w.worker);
        return [
          String(w.worker),
          String(w.numa_node),
          clean(w.cpu_list) || '-',
          pct(rate(w.busy_seconds, p?.busy_seconds)),
          String(w.queue_depth),
          fixed(rate(w.steals_same_node, p?.steals_same_node), 1),
          fixed(rate(w.steals_remote_node, p?.steals_remote_node), 1),
          fixed(rate(w.failed_steals, p?.failed_steals), 1),
          fixed(rate(w.completed, p?.completed), 0),
          String(w.hogs),
          !w.active ? 'limited' : w.parked ? 'parked' : w.running_for_ms > 0 ? `running ${w.running_for_ms.toFixed(1)}ms` : 'active',
        ];
      }),
    ),
  ];
  return lines;
}

// ------------------------------------------------------------------ the loop

const ESC = '\x1b[';
const ENTER = `${ESC}?1049h${ESC}?25l`;
const LEAVE = `${ESC}?25h${ESC}?1049l`;

/** Runs until q / Ctrl-C / SIGTERM (or `count` polls); resolves with the exit code. */
export function runTop(options: TopOptions): Promise<number> {
  const o = readOptions(options, 'options', ['url', 'pid', 'runtime', 'intervalMs', 'count', 'stdout', 'stdin', 'stderr']);
  const intervalMs = o.intervalMs === undefined ? 1000 : integer(o.intervalMs, 'intervalMs', 1, LIMITS.timeoutMs);
  let read: () => Promise<SchedulerJson>;
  let source: string;
  if (o.pid !== undefined || o.runtime !== undefined) {
    if (o.url !== undefined) throw rangeError(ErrorCodes.INVALID_OPTION, 'url and pid exclude each other');
    if (o.pid === undefined) throw rangeError(ErrorCodes.INVALID_OPTION, 'runtime needs pid');
    const pid = o.pid === 'auto' ? 'auto' : integer(o.pid, 'pid', 1, LIMITS.pid);
    const reader = shmDocumentReader(pid, o.runtime === undefined ? undefined : integer(o.runtime, 'runtime', 1, Number.MAX_SAFE_INTEGER));
    read = async () => reader();
    source = `pid ${pid}`;
  } else {
    let url: string;
    try {
      url = schedulerUrl(string(o.url, 'url', LIMITS.pathLength));
    } catch (err) {
      if ((err as { code?: string }).code?.startsWith('ERR_HWSQ_')) throw err;
      throw rangeError(ErrorCodes.INVALID_OPTION, `url is not a URL: ${(err as Error).message}`, { cause: err });
    }
    if (!/^https?:$/.test(new URL(url).protocol)) throw rangeError(ErrorCodes.INVALID_OPTION, `url must be an http: or https: URL, got ${new URL(url).protocol}`);
    read = () => fetchJson(url, Math.max(1000, Math.min(5000, intervalMs * 2)));
    source = new URL(url).host;
  }
  const count = o.count === undefined ? undefined : integer(o.count, 'count', 1, 2 ** 31);
  const stdout = (o.stdout as NodeJS.WriteStream | undefined) ?? process.stdout;
  const stdin = (o.stdin as NodeJS.ReadStream | undefined) ?? process.stdin;
  const stderr = (o.stderr as NodeJS.WritableStream | undefined) ?? process.stderr;
  const tty = stdout.isTTY === true;
  const keys = tty && stdin.isTTY === true;

  return new Promise<number>((resolve) => {
    let prev: SchedulerJson | undefined;
    let base: SchedulerJson | undefined;  // the poll before prev: the rates' base when a poll repeats prev's snapshot
    let polls = 0;
    let lastError: string | undefined;
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    let lastFrame: string[] = [];

    const draw = (lines: string[]) => {
      lastFrame = lines;
      if (!tty) {
        stdout.write(lines.join('\n') + '\n\n');
        return;
      }
      const cols = stdout.columns || 80;
      const rows = stdout.rows || 24;
      const shown = [...lines.slice(0, rows - 1).map((l) => l.slice(0, cols)), 'q: quit'.slice(0, cols)];
      stdout.write(`${ESC}H` + shown.map((l) => `${l}${ESC}K`).join('\r\n') + `${ESC}J`);
    };
    const onKey = (data: Buffer | string) => {
      const s = data.toString();
      if (s.includes('q') || s.includes('Q') || s.includes('\x03')) finish(0);
    };
    const onSignal = () => finish(0);
    // Whatever ends the process (an exception included), the terminal is given back.
    const onExit = () => {
      if (tty && !done) stdout.write(LEAVE);
      if (keys && !done) stdin.setRawMode(false);
    };
    const onResize = () => draw(lastFrame);

    function finish(code: number) {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.off('exit', onExit);
      if (tty) {
        stdout.off('resize', onResize);
        stdout.write(LEAVE);
      }
      if (keys) {
        stdin.off('data', onKey);
        stdin.setRawMode(false);
        stdin.pause();
      }
      resolve(code);
    }

    const poll = async () => {
      try {
        const cur = await read();
        if (done) return;
        lastError = undefined;
        if (prev && cur.uptime_seconds <= prev.uptime_seconds) {
          draw(renderTop(cur, base, source));  // the same snapshot again (a stats file not yet republished)
        } else {
          draw(renderTop(cur, prev, source));
          base = prev;
          prev = cur;
        }
      } catch (err) {
        if (done) return;
        lastError = (err as Error).message;
        if (tty) draw([`hwsq top  ${source}`, `error: ${lastError} (retrying every ${intervalMs} ms)`]);
        else stderr.write(`hwsq top: ${lastError}\n`);
      }
      polls++;
      if (count !== undefined && polls >= count) return finish(lastError ? 1 : 0);
      timer = setTimeout(() => void poll(), intervalMs);
    };

    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.on('exit', onExit);
    if (tty) {
      stdout.write(ENTER);
      stdout.on('resize', onResize);
    }
    if (keys) {
      stdin.setRawMode(true);
      stdin.resume();
      stdin.on('data', onKey);
    }
    void poll();
  });
}
