/**
 * The operations endpoint: a small `node:http` server of its own, apart
 * from the application's sockets, serving
 *
 * ```
 *   GET /          the status page (one self-contained HTML page, see status-page.ts)
 *   GET /events    Server-Sent Events: one snapshot every `intervalMs` (the page's feed)
 *   GET /metrics   the Prometheus exposition (prom-client's registry)
 *   GET /snapshot  one snapshot as JSON
 * ```
 *
 * Read-only: nothing it serves changes anything. Bound to 127.0.0.1 by
 * default. With a `token`, every path asks for `Authorization: Bearer
 * <token>` (what Prometheus sends with `authorization: { credentials }`);
 * a browser, which cannot add that header to a page load or an
 * EventSource, opens `/?token=<token>` once and gets an HttpOnly,
 * SameSite=Strict cookie instead. Tokens are compared in constant time.
 *
 * One reading per tick serves every open page: the stream timer samples
 * once and writes the same bytes to each stream; it runs only while a page
 * is open, and a page that does not read (its socket's buffer full) skips
 * ticks instead of queueing them.
 *
 * @module
 */

import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ErrorCode, NetloopError } from '../core/errors.js';
import { checkInteger, checkNumber } from '../core/validate.js';
import { OpsSampler } from './snapshot.js';
import type { OpsSamplerOptions, OpsSnapshot } from './snapshot.js';
import type { OpsSources } from './sources.js';
import { loadPromClient, registerNetloopMetrics } from './metrics.js';
import type { MetricsRegistry, NetloopMetrics } from './metrics.js';
import { quietLogger } from './logger.js';
import type { Logger } from './logger.js';
import { statusPageHtml } from './status-page.js';

/** A registry the server can serve: prom-client's `Registry`. */
export interface ServableRegistry extends MetricsRegistry {
  metrics(): Promise<string>;
  readonly contentType: string;
}

/** Options of {@link startOpsServer}. */
export interface OpsServerOptions extends OpsSamplerOptions {
  /** What to read: the sources, or a sampler already made (shared with metrics registered elsewhere). */
  sources: OpsSources | OpsSampler;
  /**
   * The prom-client registry `/metrics` serves; netloop's metrics are
   * registered in it. Default: a new prom-client `Registry` (prom-client
   * must then be installed). `null`: no `/metrics` (404), no prom-client needed.
   */
  registry?: ServableRegistry | null;
  /** Address to bind; default `'127.0.0.1'` (loopback only). */
  host?: string;
  /** Port; default 0 (an ephemeral port, see {@link OpsServer.port}). */
  port?: number;
  /** A bearer token every request must carry; default none. Visible ASCII, 16 to 1024 characters. */
  token?: string | null;
  /** Milliseconds between two snapshots sent to open pages; default 1,000 (100 to 60,000). */
  intervalMs?: number;
  /** Open event streams at once; more are answered 503. Default 16 (1 to 1,000). */
  maxEventStreams?: number;
  /** The page's title; default `'netloop'`. */
  title?: string;
  /** Where the server logs its start and its faults; default {@link quietLogger}. */
  logger?: Logger;
}

/** A running operations endpoint. */
export interface OpsServer {
  /** The bound address. */
  readonly host: string;
  /** The bound port (the real one when started on port 0). */
  readonly port: number;
  /** `http://host:port/`. */
  readonly url: string;
  /** The metrics registered for `/metrics`, or null without a registry. */
  readonly metrics: NetloopMetrics | null;
  /** The reader shared by the page and the metrics. */
  readonly sampler: OpsSampler;
  /** Event streams open now. */
  readonly eventStreams: number;
  /** Ends every event stream, stops listening, unregisters the metrics; resolves once closed. Idempotent. */
  close(): Promise<void>;
}

const COOKIE = 'netloop_ops_token';

/** SHA-256 of a string: both sides of a comparison get the same length, so `timingSafeEqual` applies. */
function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** The data a page needs from a snapshot (JSON-safe; `undefined` fields drop out). */
function pageData(s: OpsSnapshot): string {
  return JSON.stringify(s);
}

/**
 * Starts the operations endpoint (see the module comment).
 *
 * ```ts
 * const ops = await startOpsServer({ sources: { reactor: reactorSource(loop, { servers: { chat: server } }) }, port: 9464 });
 * // Prometheus scrapes http://127.0.0.1:9464/metrics; a browser opens http://127.0.0.1:9464/
 * ```
 *
 * @throws NetloopError `NETLOOP_INVALID_OPTION` for a bad option (or a
 *   missing prom-client when no registry is given); `NETLOOP_SOCKET_ERROR`
 *   (`details.syscallCode`) when it cannot listen.
 */
export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  if (options === null || typeof options !== 'object' || options.sources === null || typeof options.sources !== 'object') {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'sources is required', { details: { option: 'sources' } });
  }
  const host = options.host ?? '127.0.0.1';
  if (typeof host !== 'string' || host === '') {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'host must be a non-empty string', { details: { option: 'host' } });
  }
  const port = checkInteger('port', options.port ?? 0, 0, 65535);
  const intervalMs = checkNumber('intervalMs', options.intervalMs ?? 1_000, 100, 60_000);
  const maxStreams = checkInteger('maxEventStreams', options.maxEventStreams ?? 16, 1, 1_000);
  const title = options.title ?? 'netloop';
  if (typeof title !== 'string' || title.length > 200) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'title must be a string of at most 200 characters', { details: { option: 'title' } });
  }
  const token = options.token ?? null;
  if (token !== null && (typeof token !== 'string' || !/^[\x21-\x7e]{16,1024}$/.test(token))) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'token must be 16 to 1024 visible ASCII characters', { details: { option: 'token' } });
  }
  const logger = options.logger ?? quietLogger;
  const sampler = options.sources instanceof OpsSampler ? options.sources : new OpsSampler(options.sources, options);

  let registry: ServableRegistry | null;
  if (options.registry === undefined) {
    const { Registry } = await loadPromClient();
    registry = new Registry();
  } else {
    registry = options.registry;
    if (registry !== null && (typeof registry !== 'object' || typeof registry.metrics !== 'function')) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'registry must be a prom-client Registry or null', { details: { option: 'registry' } });
    }
  }
  const metrics = registry === null ? null : registerNetloopMetrics(registry, sampler, options);

  const expected = token === null ? null : digest(token);
  const authorized = (req: http.IncomingMessage): boolean => {
    if (expected === null) return true;
    const auth = req.headers.authorization;
    let given: string | undefined;
    if (typeof auth === 'string' && auth.startsWith('Bearer ')) given = auth.slice(7).trim();
    else given = cookieValue(req.headers.cookie, COOKIE);
    return given !== undefined && timingSafeEqual(digest(given), expected);
  };

  const streams = new Set<{ res: http.ServerResponse; blocked: boolean }>();
  let timer: NodeJS.Timeout | null = null;
  let ticking = false;
  const tick = (): void => {
    if (ticking) return; // a slow reading (a store answering late) is not stacked up
    ticking = true;
    sampler
      .sample()
      .then((s) => {
        const frame = `data: ${pageData(s)}\n\n`;
        for (const st of streams) {
          if (st.blocked) continue;
          if (!st.res.write(frame)) {
            st.blocked = true;
            st.res.once('drain', () => {
              st.blocked = false;
            });
          }
        }
      })
      .catch((err: unknown) => {
        logger.warn({ event: 'ops-sample-error', code: (err as { code?: unknown } | null)?.code ?? 'ERROR' }, 'status sample failed');
      })
      .finally(() => {
        ticking = false;
      });
  };

  const securityHeaders = (res: http.ServerResponse): void => {
    res.setHeader('cache-control', 'no-store');
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('referrer-policy', 'no-referrer');
    res.setHeader('x-frame-options', 'DENY');
  };
  const plain = (res: http.ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void => {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers });
    res.end(text);
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    securityHeaders(res);
    const url = new URL(req.url ?? '/', 'http://ops.invalid');
    const path = url.pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      plain(res, 405, 'read-only\n', { allow: 'GET, HEAD' });
      return;
    }
    if (path === '/' && expected !== null && url.searchParams.has('token')) {
      // A browser's first visit: trade the token in the address for a cookie, and drop it from the address.
      const given = url.searchParams.get('token') ?? '';
      if (!timingSafeEqual(digest(given), expected)) {
        plain(res, 401, 'unauthorized\n', { 'www-authenticate': 'Bearer realm="netloop"' });
        return;
      }
      res.writeHead(303, {
        location: '/',
        'set-cookie': `${COOKIE}=${encodeURIComponent(given)}; HttpOnly; SameSite=Strict; Path=/`,
      });
      res.end();
      return;
    }
    if (!authorized(req)) {
      plain(res, 401, 'unauthorized\n', { 'www-authenticate': 'Bearer realm="netloop"' });
      return;
    }
    switch (path) {
      case '/': {
        const nonce = randomBytes(16).toString('base64');
        res.writeHead(200, {
          'content-type': 'text/html; charset=utf-8',
          // Nothing but this page's own inline script and style, and its own event stream.
          'content-security-policy': `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
        });
        res.end(req.method === 'HEAD' ? undefined : statusPageHtml({ title, nonce, intervalMs }));
        return;
      }
      case '/metrics': {
        if (registry === null) {
          plain(res, 404, 'metrics are not served here\n');
          return;
        }
        const text = await registry.metrics();
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(req.method === 'HEAD' ? undefined : text);
        return;
      }
      case '/snapshot': {
        const s = await sampler.sample();
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
        res.end(req.method === 'HEAD' ? undefined : pageData(s));
        return;
      }
      case '/events': {
        if (streams.size >= maxStreams) {
          plain(res, 503, 'too many open event streams\n', { 'retry-after': '5' });
          return;
        }
        res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive', 'x-accel-buffering': 'no' });
        if (req.method === 'HEAD') {
          res.end();
          return;
        }
        res.write(`retry: ${Math.max(1_000, intervalMs * 2)}\n\n`);
        const st = { res, blocked: false };
        streams.add(st);
        res.on('close', () => {
          streams.delete(st);
          if (streams.size === 0 && timer !== null) {
            clearInterval(timer);
            timer = null;
          }
        });
        if (timer === null) {
          timer = setInterval(tick, intervalMs);
          timer.unref();
        }
        // The first snapshot at once, so a page has numbers before its first tick.
        sampler.sample().then(
          (s) => {
            if (!res.writableEnded && !res.destroyed) res.write(`data: ${pageData(s)}\n\n`);
          },
          () => undefined,
        );
        return;
      }
      default:
        plain(res, 404, 'not found\n');
    }
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const code = (err as { code?: unknown } | null)?.code;
      logger.warn({ event: 'ops-request-error', path: (req.url ?? '').split('?')[0], code: typeof code === 'string' ? code : 'ERROR' }, 'ops request failed');
      if (!res.headersSent) plain(res, 500, 'internal error\n');
      else res.destroy();
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  server.maxConnections = maxStreams + 32;

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      metrics?.unregister();
      reject(
        new NetloopError(ErrorCode.SOCKET_ERROR, `cannot listen on ${host}:${port}: ${err.message}`, {
          cause: err,
          details: { syscallCode: err.code, host, port },
        }),
      );
    };
    server.once('error', onError);
    server.listen({ host, port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err: NodeJS.ErrnoException) => {
    logger.warn({ event: 'ops-server-error', syscallCode: err.code }, 'ops server error');
  });
  const address = server.address() as AddressInfo;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  logger.info({ event: 'ops-listen', host: address.address, port: address.port, metrics: registry !== null, token: token !== null }, 'ops endpoint listening');

  let closing: Promise<void> | null = null;
  return {
    host: address.address,
    port: address.port,
    url: `http://${urlHost}:${address.port}/`,
    metrics,
    sampler,
    get eventStreams(): number {
      return streams.size;
    },
    close(): Promise<void> {
      return (closing ??= new Promise<void>((resolve) => {
        if (timer !== null) clearInterval(timer);
        timer = null;
        for (const st of streams) st.res.end();
        streams.clear();
        metrics?.unregister();
        server.close(() => resolve());
        server.closeAllConnections();
      }));
    },
  };
}
