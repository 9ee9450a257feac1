// serveMetrics(runtime, { port, host }): a small HTTP server for scrapers and `hwsq top`.
//   GET /metrics            Prometheus text (prom-client registry with the runtime's metrics)
//   GET /metrics/scheduler  the JSON document of scheduler-json.ts
// Anything else: 404; other methods on those paths: 405; a request with a body: 413. Binds
// 127.0.0.1 unless told otherwise. A scrape costs one native stats snapshot (a read of per-P
// counters, no locks held while formatting) and one small response written at once: a slow
// reader only fills its own socket buffer, and the timeouts below close connections that stall
// (headers, idle keep-alive). Slow clients cannot lock scrapers out: at the connection cap, a new
// connection evicts one that is not being answered (see Connections) instead of being refused.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { serveOptions, metricsSource } from '../core/validation';
import { promClient, registerMetrics, type MetricsRegistration, type PromRegistry, type RegisterMetricsOptions } from './prometheus';
import { podIdentity, schedulerJsonFrom, type PodIdentity } from './scheduler-json';
import { workerPlacement, type MetricsSource } from './source';

export interface ServeMetricsOptions extends Omit<RegisterMetricsOptions, 'registry'> {
  /** TCP port (default 9464; 0 picks a free one, see `port` of the result). */
  port?: number;
  /** Address to bind (default '127.0.0.1'; '0.0.0.0' or '::' to be scraped from other hosts/pods). */
  host?: string;
  /**
   * Serve this registry at /metrics (e.g. one with prom-client's default process metrics); the
   * runtime's metrics are added to it unless it already holds them (same prefix). Default: a
   * registry of its own holding only the runtime's metrics.
   */
  registry?: PromRegistry;
  /** Close a connection whose request headers have not all arrived after this long (default 5000). */
  headersTimeoutMs?: number;
  /** Close a connection idle (no bytes either way) this long, keep-alive included (default 10000). */
  idleTimeoutMs?: number;
  /**
   * Most connections open at once (default 64). At the cap a new connection evicts the oldest
   * one that has not sent a whole request yet (slow or silent clients), else the least recently
   * served idle keep-alive one; only when every connection is being answered is it refused.
   */
  maxConnections?: number;
}

export interface MetricsServer {
  /** Base URL, e.g. http://127.0.0.1:9464 (append /metrics or /metrics/scheduler). */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly registry: PromRegistry;
  /** Stops listening, closes open connections and unregisters the metrics it added. Idempotent. */
  close(): Promise<void>;
}

const PATHS = new Set(['/metrics', '/metrics/scheduler']);

interface Connection {
  /** Order of arrival, then of the last answer (a counter, not a clock). */
  order: number;
  /** A request of it is being answered. */
  busy: boolean;
  /** Requests answered on it. */
  served: number;
}

/**
 * The open connections and the cap. A scraper sends its whole request at once; a connection that
 * has not (slowloris, a silent client) or that idles between keep-alive scrapes costs the server
 * nothing to drop, so at the cap it makes room for the newcomer: first the oldest connection that
 * never completed a request, then the least recently served idle one. Connections being answered
 * are never evicted.
 */
export class Connections {  // exported for its unit test (test/metrics.test.ts); not public API
  private readonly open = new Map<Socket, Connection>();
  private counter = 0;

  constructor(private readonly cap: number) {}

  /** A new connection: tracked, after evicting one at the cap; false: refused (all busy). */
  admit(socket: Socket): boolean {
    if (this.open.size >= this.cap) {
      const victim = this.victim();
      if (!victim) return false;
      this.open.delete(victim);
      victim.destroy();
    }
    this.open.set(socket, { order: ++this.counter, busy: false, served: 0 });
    socket.once('close', () => this.open.delete(socket));
    return true;
  }

  /** A request on `socket` is being answered until `res` is done. */
  serving(socket: Socket, res: http.ServerResponse): void {
    const c = this.open.get(socket);
    if (!c) return;
    c.busy = true;
    res.once('close', () => {
      c.busy = false;
      // Stryker disable next-line UpdateOperator: only served === 0 is ever asked, and -1 is as non-zero as 1
      c.served++;
      c.order = ++this.counter;
    });
  }

  private victim(): Socket | undefined {
    let best: Socket | undefined;
    let bestKey = Infinity;
    for (const [socket, c] of this.open) {
      if (c.busy) continue;
      // Never-served connections rank before every served one, oldest first.
      const key = (c.served === 0 ? 0 : Number.MAX_SAFE_INTEGER / 2) + c.order;
      // Stryker disable next-line EqualityOperator: keys are unique (orders are), so < and <= pick the same
      if (key < bestKey) {
        bestKey = key;
        best = socket;
      }
    }
    return best;
  }

  destroyAll(): void {
    for (const s of this.open.keys()) s.destroy();
    this.open.clear();
  }
}

/** A request that carries a body (scrapes never do): answered 413, its body never read. */
function hasBody(req: http.IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function send(res: http.ServerResponse, req: http.IncomingMessage, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  const bytes = Buffer.from(body, 'utf8');
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': String(bytes.length), 'Cache-Control': 'no-store', ...headers });
  // Stryker disable next-line ConditionalExpression: Node's server never writes a body for HEAD; passing none says so here too
  res.end(req.method === 'HEAD' ? undefined : bytes);
}

/**
 * Serves `runtime`'s metrics over HTTP; resolves once listening. Also what
 * `runtime.serveMetrics(options)` and `hwsq metrics serve` do.
 */
export async function serveMetrics(runtime: MetricsSource, options: ServeMetricsOptions = {}): Promise<MetricsServer> {
  metricsSource(runtime);
  const o = serveOptions(options);
  const { port, host, headersTimeoutMs: headersTimeout, idleTimeoutMs: idleTimeout, prefix } = o;

  // Fixed for the process's life: read once, not per request (and checked before anything is registered).
  const identity: PodIdentity = podIdentity();
  const registry: PromRegistry = o.registry ?? (new (promClient().Registry)() as unknown as PromRegistry);
  let registration: MetricsRegistration | undefined;
  if (registry.getSingleMetric(`${prefix}tasks_completed_total`) === undefined) {
    const register: RegisterMetricsOptions = { registry, prefix, labels: o.labels };
    // Stryker disable next-line ConditionalExpression: an undefined option reads the same as an absent one (registerMetrics defaults it)
    if (o.latencyBuckets) register.latencyBuckets = o.latencyBuckets;
    // Stryker disable next-line ConditionalExpression: as above
    if (o.runTimeBuckets) register.runTimeBuckets = o.runTimeBuckets;
    registration = registerMetrics(runtime, register);
  }
  const placement = workerPlacement(runtime);

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    // A body is never read: the connection closes after the answer.
    const body = hasBody(req);
    if (!PATHS.has(path)) return send(res, req, 404, 'text/plain; charset=utf-8', 'not found: try /metrics or /metrics/scheduler\n', body ? { Connection: 'close' } : {});
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return send(res, req, 405, 'text/plain; charset=utf-8', `method ${req.method} not allowed\n`, { Allow: 'GET, HEAD', Connection: 'close' });
    }
    if (body) return send(res, req, 413, 'text/plain; charset=utf-8', 'a scrape has no body\n', { Connection: 'close' });
    try {
      if (path === '/metrics') {
        send(res, req, 200, registry.contentType, await registry.metrics());
      } else {
        const stats = runtime.stats();
        const origin = runtime.snapshotOrigin?.();
        send(res, req, 200, 'application/json; charset=utf-8', JSON.stringify(schedulerJsonFrom(stats, placement, origin?.identity ?? identity, origin)) + '\n');
      }
    } catch (err) {
      // e.g. a destroyed JS-task runtime (RUNTIME_CLOSED): the server outlives it.
      send(res, req, 503, 'text/plain; charset=utf-8', `stats unavailable: ${(err as Error).message}\n`);
    }
  };

  const server = http.createServer(
    // Node checks the headers/request timeouts every connectionsCheckingInterval (default 30 s).
    { headersTimeout, requestTimeout: headersTimeout * 2, connectionsCheckingInterval: Math.max(50, Math.min(1000, headersTimeout >> 1)), keepAliveTimeout: Math.min(5000, idleTimeout), maxHeaderSize: 8192 },
    (req, res) => {
      connections.serving(req.socket, res);
      void handle(req, res).catch(() => res.destroy());
    },
  );
  const connections = new Connections(o.maxConnections);
  server.maxHeadersCount = 64;
  server.setTimeout(idleTimeout, (socket: Socket) => socket.destroy());
  server.on('connection', (socket: Socket) => {
    if (!connections.admit(socket)) socket.destroy();
  });
  server.on('clientError', (err: Error & { code?: string }, socket: Socket) => {
    const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    socket.destroy();
  });

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    registration?.unregister();
    throw err;
  }
  const address = server.address() as AddressInfo;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${address.port}`,
    host: address.address,
    port: address.port,
    registry,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        connections.destroyAll();
        registration?.unregister();
      });
      return closing;
    },
  };
}
