// serveMetrics(runtime, { port, host }): a small HTTP server for scrapers and `hwsq top`.
//   GET /metrics            Prometheus text (prom-client registry with the runtime's metrics)
//   GET /metrics/scheduler  the JSON document of scheduler-json.ts
// Anything else: 404; other methods on those paths: 405. Binds 127.0.0.1 unless told otherwise.
// A scrape costs one native stats snapshot (a read of per-P counters, no locks held while
// formatting) and one small response written at once: a slow reader only fills its own socket
// buffer, and the timeouts below close connections that stall (headers, body, idle keep-alive).
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { ErrorCodes, rangeError, typeError } from '../errors';
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
  /** Most connections open at once; beyond, new ones are closed at once (default 64). */
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

function optMs(value: unknown, name: string, def: number): number {
  if (value === undefined) return def;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 3_600_000) {
    throw rangeError(ErrorCodes.INVALID_OPTION, `${name} must be an integer number of milliseconds in [1, 3600000], got ${String(value)}`);
  }
  return value;
}

function send(res: http.ServerResponse, req: http.IncomingMessage, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  const bytes = Buffer.from(body, 'utf8');
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': String(bytes.length), 'Cache-Control': 'no-store', ...headers });
  res.end(req.method === 'HEAD' ? undefined : bytes);
}

/**
 * Serves `runtime`'s metrics over HTTP; resolves once listening. Also what
 * `runtime.serveMetrics(options)` and `hwsq metrics serve` do.
 */
export async function serveMetrics(runtime: MetricsSource, options: ServeMetricsOptions = {}): Promise<MetricsServer> {
  if (!runtime || typeof runtime.stats !== 'function') throw typeError(ErrorCodes.INVALID_ARG_TYPE, 'runtime must have a stats() method (NativeRuntime or Runtime)');
  if (typeof options !== 'object' || options === null) throw typeError(ErrorCodes.INVALID_ARG_TYPE, 'options must be an object');
  const port = options.port ?? 9464;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) throw rangeError(ErrorCodes.INVALID_OPTION, `port must be an integer in [0, 65535], got ${String(port)}`);
  const host = options.host ?? '127.0.0.1';
  if (typeof host !== 'string' || host === '') throw typeError(ErrorCodes.INVALID_ARG_TYPE, 'host must be a non-empty string');
  const headersTimeout = optMs(options.headersTimeoutMs, 'headersTimeoutMs', 5000);
  const idleTimeout = optMs(options.idleTimeoutMs, 'idleTimeoutMs', 10_000);
  const maxConnections = options.maxConnections ?? 64;
  if (!Number.isInteger(maxConnections) || maxConnections < 1) throw rangeError(ErrorCodes.INVALID_OPTION, `maxConnections must be a positive integer, got ${String(maxConnections)}`);

  const registry: PromRegistry = options.registry ?? (new (promClient().Registry)() as unknown as PromRegistry);
  const prefix = options.prefix ?? 'hwsq_';
  let registration: MetricsRegistration | undefined;
  if (registry.getSingleMetric(`${prefix}tasks_completed_total`) === undefined) {
    registration = registerMetrics(runtime, { registry, prefix, labels: options.labels, latencyBuckets: options.latencyBuckets, runTimeBuckets: options.runTimeBuckets });
  }
  // Fixed for the process's life: read once, not per request.
  const identity: PodIdentity = podIdentity();
  const placement = workerPlacement(runtime);

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    if (!PATHS.has(path)) return send(res, req, 404, 'text/plain; charset=utf-8', 'not found: try /metrics or /metrics/scheduler\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      // The body, if any, is not read: close the connection after the answer.
      return send(res, req, 405, 'text/plain; charset=utf-8', `method ${req.method} not allowed\n`, { Allow: 'GET, HEAD', Connection: 'close' });
    }
    try {
      if (path === '/metrics') {
        send(res, req, 200, registry.contentType, await registry.metrics());
      } else {
        send(res, req, 200, 'application/json; charset=utf-8', JSON.stringify(schedulerJsonFrom(runtime.stats(), placement, identity)) + '\n');
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
      req.resume(); // GET bodies are ignored; never buffered
      void handle(req, res).catch(() => res.destroy());
    },
  );
  server.maxConnections = maxConnections;
  server.maxHeadersCount = 64;
  server.setTimeout(idleTimeout, (socket: Socket) => socket.destroy());
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
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
        for (const s of sockets) s.destroy();
        registration?.unregister();
      });
      return closing;
    },
  };
}
