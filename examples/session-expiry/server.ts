/**
 * Session expiry, notice then close: short-lived sessions are
 * audited on the loop's timer; each client whose session expired receives an
 * HTTP 401 notice in full (even a large one, even when it reads slowly), and
 * only then is its connection closed.
 *
 * ```sh
 * node dist/examples/session-expiry/server.js                  # 127.0.0.1:2009, TTL 10 s
 * node dist/examples/session-expiry/server.js --port 0 --ttl-ms 2000 --notice-kib 4096
 * node dist/examples/session-expiry/server.js --help
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
 * Logs each login, resume, expiry (the example's lines) and each accept and
 * close with its reason (netloop's, through `createLogSubscriber`), with
 * pino when it is installed and plain lines otherwise; stops cleanly on
 * SIGINT or SIGTERM.
 *
 * @module
 */

import { EventLoop, Server, SessionRegistry, bindSessions, connectionProbe, httpUnauthorizedNotice, isNetloopError } from 'netloop';
import type { Client, NoticeBuilder, SessionBinding } from 'netloop';
import { createLogSubscriber, quietLogger } from 'netloop/ops';
import type { Logger } from 'netloop/ops';
import { defineCommand, isMain, parseCommandLine, runCommand } from '../shared/cli.js';
import type { OptionValues } from '../shared/cli.js';
import { LOG_MODES, exampleLogger } from '../shared/logging.js';
import type { LogMode } from '../shared/logging.js';

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
  /** Where the example's events go (`login`, `resume`, `expired`, `replaced`, `session-error`); default none. */
  logger?: Logger;
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

/** A client's lines not yet answered, and whether the next must wait for a LOGIN or RESUME in flight. */
interface LineState {
  buffered: string;
  waiting: boolean;
}

/** The client's line state, made on its first read. */
function lineState(client: Client): LineState {
  if (client.context === undefined || client.context === null) client.context = { buffered: '', waiting: false } satisfies LineState;
  return client.context as LineState;
}

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
  const logger = options.logger ?? quietLogger;
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

  // Lines are answered in the order they came: while a LOGIN or RESUME waits
  // for the registry, reading pauses and the lines already read wait in the
  // client's own context (at most one read's worth), so `LOGIN ann` and
  // `PING` sent together answer TOKEN, then PONG.
  //
  //   client.context: { buffered: 'PING\nPI', waiting: true }   (the binding keeps nothing there)
  server.on('data', (client: Client, chunk: Buffer) => {
    const state = lineState(client);
    state.buffered += chunk.toString('latin1');
    drain(client, state);
  });

  /** Answers the complete lines buffered, up to one that must wait; closes a client whose line is too long. */
  const drain = (client: Client, state: LineState): void => {
    let nl: number;
    while (!state.waiting && (nl = state.buffered.indexOf('\n')) >= 0) {
      const line = state.buffered.slice(0, nl).replace(/\r$/, '');
      state.buffered = state.buffered.slice(nl + 1);
      const pending = handleLine(client, line);
      if (pending !== null) {
        state.waiting = true;
        client.pause();
        void pending.then(() => {
          state.waiting = false;
          if (client.closed || client.closing) return;
          client.resume();
          drain(client, state);
        });
      }
    }
    const partial = state.buffered.length - (state.buffered.lastIndexOf('\n') + 1);
    if (partial > MAX_LINE) {
      client.write('ERR line too long\n');
      client.end();
      state.buffered = '';
    }
  };

  /** Answers one line; returns the work to wait for before the next line (LOGIN, RESUME), or null. */
  const handleLine = (client: Client, line: string): Promise<void> | null => {
    const [cmd = '', arg = ''] = line.split(' ', 2);
    if (cmd === 'LOGIN' && arg !== '') {
      return binding.login(client, { userId: arg }).then(
        ({ token, session }) => {
          logger.info({ event: 'login', userId: arg, sessionId: session.id, clientId: client.id, ttlMs }, 'session started');
          if (!client.closed && !client.closing) client.write(`TOKEN ${token}\n`);
        },
        (err: unknown) => reply(client, err),
      );
    }
    if (cmd === 'RESUME' && arg !== '') {
      return binding.resume(client, arg).then(
        ({ session }) => {
          logger.info({ event: 'resume', sessionId: session.id, clientId: client.id }, 'session resumed');
          if (!client.closed && !client.closing) client.write(`RESUMED ${session.id}\n`);
        },
        (err: unknown) => reply(client, err),
      );
    }
    client.write(cmd === 'PING' ? 'PONG\n' : 'ERR unknown command (LOGIN <user> | PING | RESUME <token>)\n');
    return null;
  };

  const reply = (client: Client, err: unknown): void => {
    const code = isNetloopError(err) ? err.code : 'ERROR';
    if (!client.closed && !client.closing) client.write(`ERR ${code}\n`);
  };

  // The notice is queued when 'expired' is emitted: its size is the client's queued bytes; the close follows its flush.
  binding.on('expired', ({ session, client, reason }) => {
    logger.info({ event: 'expired', sessionId: session.id, clientId: client?.id, reason, noticeBytes: client?.queuedBytes }, 'session expired: notice, then close');
  });
  binding.on('replaced', ({ session, client }) => {
    if (client !== null) logger.info({ event: 'replaced', sessionId: session.id, clientId: client.id }, 'session replaced: notice, then close');
  });
  binding.on('error', ({ error, operation }) => {
    logger.error({ event: 'session-error', operation, code: isNetloopError(error) ? error.code : undefined }, 'session work failed');
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

/** The example's command line. */
export const SESSION_EXPIRY_COMMAND = defineCommand({
  name: 'session-expiry',
  usage: 'node dist/examples/session-expiry/server.js [options]',
  summary:
    'Session expiry, notice then close, on a line protocol (try nc 127.0.0.1 2009):\n' +
    'LOGIN <user> answers TOKEN <token>; PING answers PONG; RESUME <token> on a new connection; silence expires the session.',
  options: {
    port: { type: 'integer', default: DEFAULT_SESSION_EXPIRY_PORT, min: 0, max: 65535, help: 'port to listen on; 0 picks a free one' },
    host: { type: 'string', default: '127.0.0.1', arg: 'H', help: 'address to bind' },
    'ttl-ms': { type: 'integer', default: 10_000, min: 4, max: 2 ** 31 - 1, help: 'a session expires this long after its last line' },
    'notice-kib': { type: 'integer', default: 0, min: 0, max: 16 * 1024, help: "KiB of padding in the expiry notice's body (a large notice still arrives whole)" },
    'handshake-ms': { type: 'integer', default: 30_000, min: 0, max: 2 ** 31 - 1, help: 'a connection that sends no LOGIN or RESUME within this is closed' },
    log: { type: 'string', default: 'auto', choices: LOG_MODES, help: 'logs: pino when installed (auto), plain lines, or none' },
  },
});

/**
 * Parses `--port N --host H --ttl-ms N --notice-kib N --handshake-ms N`
 * (the server's options; `--log` is the program's).
 *
 * @throws NetloopError `NETLOOP_INVALID_OPTION` (`details.option`) for a bad argument.
 */
export function parseSessionExpiryArgs(argv: readonly string[]): SessionExpiryOptions {
  const { log: _, ...options } = sessionExpiryArgs(parseCommandLine(SESSION_EXPIRY_COMMAND, argv));
  return options;
}

function sessionExpiryArgs(v: OptionValues<typeof SESSION_EXPIRY_COMMAND.options>): SessionExpiryOptions & { log: LogMode } {
  return {
    port: v.port,
    host: v.host,
    ttlMs: v['ttl-ms'],
    noticeKiB: v['notice-kib'],
    handshakeMs: v['handshake-ms'],
    log: v.log as LogMode,
  };
}

async function main(args: SessionExpiryOptions & { log: LogMode }): Promise<void> {
  const { logger } = await exampleLogger(args.log, 'session-expiry');
  // netloop's own events: each accept, and each close with its reason (session-expired after a notice).
  const logs = createLogSubscriber(logger, { events: { sessionExpire: false } });
  const app = await startSessionExpiryServer({ ...args, logger });
  const { address, port } = app.server.address();
  process.stdout.write(`netloop session-expiry server listening on ${address}:${port}\n`);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`${signal}: closing ${app.loop.clientCount} connection(s)\n`);
    void app.stop().then(() => {
      logs.close();
      process.exit(0);
    });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

if (isMain(import.meta.url)) runCommand(SESSION_EXPIRY_COMMAND, process.argv.slice(2), main, sessionExpiryArgs);
