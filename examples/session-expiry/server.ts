/**
 * Session expiry, notice then close: short-lived sessions are
 * audited on the loop's timer; each client whose session expired receives an
 * HTTP 401 notice in full (even a large one, even when it reads slowly), and
 * only then is its connection closed.
 *
 * ```sh
 * node dist/examples/session-expiry/server.js                  # 127.0.0.1:2009, TTL 10 s
 * node dist/examples/session-expiry/server.js --port 0 --ttl-ms 2000 --notice-kib 4096
 * ```
 *
 * A line protocol over raw TCP (try it with `nc 127.0.0.1 2009`):
 *
 * ```
 *   LOGIN <user>    ──▶ TOKEN <token>          a session with the TTL; keep the token
 *   PING            ──▶ PONG                   any line refreshes the session
 *   RESUME <token>  ──▶ RESUMED <session id>   on a new connection, within the resume window
 *   (silence)       ──▶ HTTP/1.1 401 ... (notice) then FIN
 * ```
 *
 * Prints each login, expiry and close; stops cleanly on SIGINT or SIGTERM.
 *
 * @module
 */

import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { EventLoop } from '../../lib/reactor/event-loop.js';
import { Server } from '../../lib/reactor/server.js';
import type { Client } from '../../lib/reactor/client.js';
import type { CloseReason } from '../../lib/reactor/close-reason.js';
import { ErrorCode, NetloopError, isNetloopError } from '../../lib/core/errors.js';
import { SessionRegistry } from '../../lib/session/session-registry.js';
import { bindSessions } from '../../lib/binding/session-binding.js';
import { httpUnauthorizedNotice } from '../../lib/binding/notices.js';
import { connectionProbe } from '../../lib/binding/connection-probe.js';
import type { SessionBinding } from '../../lib/binding/session-binding.js';
import type { NoticeBuilder } from '../../lib/binding/notices.js';

/** The port the example listens on when none is given. */
export const DEFAULT_SESSION_EXPIRY_PORT = 2009;

/** Options of {@link startSessionExpiryServer}. */
export interface SessionExpiryOptions {
  /** Default `'127.0.0.1'`. */
  host?: string;
  /** Default {@link DEFAULT_SESSION_EXPIRY_PORT}; 0 for an ephemeral port. */
  port?: number;
  /** Session TTL; default 10,000 ms. */
  ttlMs?: number;
  /** Extra KiB of padding in the notice body, to show a large notice flushed in full; default 0. */
  noticeKiB?: number;
  /** Handshake timeout (LOGIN or RESUME); default 30,000 ms. */
  handshakeMs?: number;
  /** Where progress lines go; default stdout. */
  log?: (line: string) => void;
}

/** The running example. */
export interface SessionExpiryServer {
  loop: EventLoop;
  server: Server;
  registry: SessionRegistry;
  binding: SessionBinding;
  /** Closes the loop (flushing), the binding and the registry; resolves once. */
  stop(): Promise<void>;
}

/** The longest line accepted from a client. */
const MAX_LINE = 4096;

/** The notice: an HTTP 401 response (see `httpUnauthorizedNotice`), its body padded with `padBytes` characters. */
export function expiryNotice(padBytes: number): NoticeBuilder {
  const base = httpUnauthorizedNotice();
  if (padBytes === 0) return base;
  const padding = '.'.repeat(padBytes);
  return httpUnauthorizedNotice({
    message: (ctx) => (ctx.kind === 'replaced' ? 'Your session was replaced by a newer login.' : 'Your session has expired. Please login again.') + padding,
  });
}

/** Starts the example on its own loop. */
export async function startSessionExpiryServer(options: SessionExpiryOptions = {}): Promise<SessionExpiryServer> {
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const ttlMs = options.ttlMs ?? 10_000;
  const loop = new EventLoop();
  const registry = new SessionRegistry({
    ttlMs,
    resumeWindowMs: 30_000,
    // Audit often enough that a session expires within a tenth of its TTL after its deadline.
    granularityMs: Math.max(1, Math.min(1_000, Math.floor(ttlMs / 10))),
    autoAudit: false,
    isConnectionAlive: connectionProbe(loop),
  });
  const server = await new Server(loop, {
    host: options.host ?? '127.0.0.1',
    port: options.port ?? DEFAULT_SESSION_EXPIRY_PORT,
    idleTimeoutMs: Math.max(ttlMs * 3, 60_000),
  }).listen();
  const binding = bindSessions(server, registry, {
    handshakeTimeoutMs: options.handshakeMs ?? 30_000,
    noticeTimeoutMs: 30_000,
    notice: expiryNotice((options.noticeKiB ?? 0) * 1024),
  });

  // Per-client line buffer: the application's own context (the binding keeps none there).
  server.on('data', (client: Client, chunk: Buffer) => {
    let buf = (typeof client.context === 'string' ? client.context : '') + chunk.toString('latin1');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, '');
      buf = buf.slice(nl + 1);
      handleLine(client, line);
    }
    if (buf.length > MAX_LINE) {
      client.write('ERR line too long\n');
      client.end();
      buf = '';
    }
    client.context = buf;
  });

  const handleLine = (client: Client, line: string): void => {
    const [cmd = '', arg = ''] = line.split(' ', 2);
    if (cmd === 'LOGIN' && arg !== '') {
      binding.login(client, { userId: arg }).then(
        ({ token, session }) => {
          log(`login user=${arg} session=${session.id} conn=${client.id} ttl=${ttlMs}ms`);
          if (!client.closed && !client.closing) client.write(`TOKEN ${token}\n`);
        },
        (err: unknown) => reply(client, err),
      );
    } else if (cmd === 'RESUME' && arg !== '') {
      binding.resume(client, arg).then(
        ({ session }) => {
          log(`resume session=${session.id} conn=${client.id}`);
          if (!client.closed && !client.closing) client.write(`RESUMED ${session.id}\n`);
        },
        (err: unknown) => reply(client, err),
      );
    } else if (cmd === 'PING') {
      client.write('PONG\n');
    } else {
      client.write('ERR unknown command (LOGIN <user> | PING | RESUME <token>)\n');
    }
  };

  const reply = (client: Client, err: unknown): void => {
    const code = isNetloopError(err) ? err.code : 'ERROR';
    if (!client.closed && !client.closing) client.write(`ERR ${code}\n`);
  };

  binding.on('expired', ({ session, client, reason }) => {
    if (client === null) log(`expired session=${session.id} (${reason}, no connection)`);
    else log(`expired session=${session.id} conn=${client.id} (${reason}): sending ${client.queuedBytes}-byte notice, closing once flushed`);
  });
  binding.on('replaced', ({ session, client }) => {
    if (client !== null) log(`replaced session=${session.id} conn=${client.id}: notice, then close`);
  });
  binding.on('error', ({ error, operation }) => log(`error in ${operation}: ${error instanceof Error ? error.message : String(error)}`));
  server.on('close', (client: Client, reason: CloseReason, error?: NetloopError) => {
    log(`closed conn=${client.id} reason=${reason}${error === undefined ? '' : ` (${error.code})`}`);
  });

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await loop.close({ flushTimeoutMs: 2_000 });
      await binding.close();
      await registry.close();
    })());
  return { loop, server, registry, binding, stop };
}

/** Parses `--port N --host H --ttl-ms N --notice-kib N --handshake-ms N`. */
export function parseSessionExpiryArgs(argv: readonly string[]): SessionExpiryOptions {
  const options: SessionExpiryOptions = {};
  const int = (name: string, value: string, min: number, max: number): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, `--${name} must be an integer in [${min}, ${max}], got ${value}`, {
        details: { option: name, value },
      });
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = argv[i + 1];
    if (value === undefined) throw usage(arg);
    if (arg === '--port') options.port = int('port', value, 0, 65535);
    else if (arg === '--host') options.host = value;
    else if (arg === '--ttl-ms') options.ttlMs = int('ttl-ms', value, 4, 2 ** 31 - 1);
    else if (arg === '--notice-kib') options.noticeKiB = int('notice-kib', value, 0, 16 * 1024);
    else if (arg === '--handshake-ms') options.handshakeMs = int('handshake-ms', value, 0, 2 ** 31 - 1);
    else throw usage(arg);
    i++;
  }
  return options;
}

function usage(arg: string | undefined): NetloopError {
  return new NetloopError(
    ErrorCode.INVALID_OPTION,
    `bad argument ${String(arg)} (usage: [--port N] [--host H] [--ttl-ms N] [--notice-kib N] [--handshake-ms N])`,
    { details: { option: arg } },
  );
}

async function main(): Promise<void> {
  const app = await startSessionExpiryServer(parseSessionExpiryArgs(process.argv.slice(2)));
  const { address, port } = app.server.address();
  process.stdout.write(`netloop session-expiry server listening on ${address}:${port}\n`);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`${signal}: closing ${app.loop.clientCount} connection(s)\n`);
    void app.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

const entry = process.argv[1];
if (entry !== undefined && pathToFileURL(path.resolve(entry)).href === import.meta.url) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
