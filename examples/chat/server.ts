/**
 * The chat server program (`npm start`): reads the command line
 * (`args.ts`), opens and probes the session store it names (`stores.ts`),
 * starts a {@link ChatServer} (`chat-server.ts`), logs with pino when it is
 * installed and plain lines otherwise, serves the live status page with
 * `--status-port` (`status.ts`), and stops cleanly on SIGINT or SIGTERM.
 *
 * ```sh
 * npm start                                   # 127.0.0.1:18801, sessions in memory
 * npm start -- --port 9000 --host 0.0.0.0
 * npm start -- --store file:./sessions.json   # or --store redis://127.0.0.1:6379
 * npm start -- --status-port 9464             # the live status page on http://127.0.0.1:9464/
 * npm start -- --log plain                    # plain lines even when pino is installed
 * npm start -- --help
 * ```
 *
 * What it prints on stdout, in order:
 *
 * ```
 *   store memory: in this process            (or whether the file or Redis store answered)
 *   netloop chat server listening on 127.0.0.1:18801 (sessions: memory)
 *   status page on http://127.0.0.1:9464/ (...)      with --status-port
 *   connect a client:  npm run chat -- ...
 *   then log lines: netloop's events (accept, close with reason and code, limits, ...) and the
 *   chat's (hello, expired, replaced, refused, ...; see CHAT_LOG_EVENTS), as pino's JSON or plain
 * ```
 *
 * @module
 */

import { ErrorCode, FileStore, closeOnSignals, isNetloopError } from 'netloop';
import { createLogSubscriber } from 'netloop/ops';
import { isMain, runCommand } from '../shared/cli.js';
import { exampleLogger } from '../shared/logging.js';
import { CHAT_SERVER_COMMAND, chatServerArgs } from './args.js';
import type { ChatServerArgs } from './args.js';
import { ChatServer } from './chat-server.js';
import { CHAT_DEFAULT_HOST, CHAT_DEFAULT_PORT } from './protocol.js';
import { startStatusPage } from './status.js';
import { chatStoreKind, openChatStore, probeChatStore, storeLine } from './stores.js';

// The server, for those who import it from here (the cluster example, the benchmarks).
export { ChatServer, CHAT_LOG_EVENTS, CHAT_SERVER_DEFAULTS } from './chat-server.js';
export type { ChatServerOptions, ChatServerStats } from './chat-server.js';

async function main(args: ChatServerArgs): Promise<void> {
  const out = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  const { logger } = await exampleLogger(args.log, 'chat');
  const store = await openChatStore(args.store);
  // Say before listening whether the store answers: a dead Redis must not look like a healthy server.
  const kind = chatStoreKind(args.store);
  if (store === null) out(`store ${kind}: in this process`);
  else {
    const started = performance.now();
    out(storeLine(kind, await probeChatStore(store), performance.now() - started));
  }
  const chat = await ChatServer.start({
    host: args.host,
    port: args.port,
    ...(store !== null ? { store } : {}),
    ttlMs: args.ttlMs,
    resumeWindowMs: args.resumeWindowMs,
    maxOutputBytes: args.maxOutputBytes,
    softOutputLimit: args.softOutputBytes === 0 ? null : { bytes: args.softOutputBytes, forMs: args.softOutputMs },
    logger,
  });
  // netloop's own events (accepts, closes with their reasons, limits, handler faults, store
  // failures and recoveries) as structured lines; the chat logs its own (hello, expired, ...).
  // Subscribed before this turn ends, so before the first connection is accepted.
  const logs = createLogSubscriber(logger, {
    events: { sessionExpire: false }, // the chat's 'expired' line says it, with the client's id
    registries: [chat.registry],
    ...(store instanceof FileStore ? { stores: { sessions: store } } : {}),
  });
  const { address, port } = chat.server.address();
  out(`netloop chat server listening on ${address}:${port} (sessions: ${kind === 'memory' ? 'memory' : kind === 'file' ? args.store : 'redis'})`);
  const status = args.statusPort === null ? null : await startStatusPage(chat, args.statusPort, logger);
  if (status !== null) {
    const { ops } = status;
    out(`status page on ${ops.url}${ops.metrics === null ? ' (no /metrics: prom-client is not installed)' : ` (Prometheus metrics on ${ops.url}metrics)`}`);
  }
  out(`connect a client:  npm run chat -- --port ${port} --host ${address} [--name NAME]`);
  if (port === CHAT_DEFAULT_PORT && address === CHAT_DEFAULT_HOST) out(`cellnet's chat client connects as it is (it dials ${CHAT_DEFAULT_HOST}:${CHAT_DEFAULT_PORT})`);
  // SIGINT / SIGTERM: clients flush and close, sessions are detached into the
  // store; then the status page, the log subscription and the store (ours,
  // not the server's) are closed. A second signal kills at once (the helper
  // removes its handlers first).
  let failed = false;
  const fail = (what: string, err: unknown): void => {
    failed = true;
    process.stderr.write(`${what} failed: ${describe(err)}\n`);
  };
  closeOnSignals(
    {
      close: (options) => {
        out(`stopping: closing ${chat.server.clientCount} connection(s)`);
        return chat.close(options);
      },
    },
    {
      flushTimeoutMs: 2_000,
      exit: false,
      onError: (err) => fail('stop', err),
      onDone: () => {
        void (async () => {
          await status?.stop().catch((err: unknown) => fail('closing the status page', err));
          logs.close();
          await Promise.resolve(store?.close()).catch((err: unknown) => fail('closing the store', err));
          out('stopped');
          process.exit(failed ? 1 : 0);
        })();
      },
    },
  );
}

if (isMain(import.meta.url)) runCommand(CHAT_SERVER_COMMAND, process.argv.slice(2), main, chatServerArgs);

/** One line for a failure: its code, when it has one, and its message (for the operator's terminal, not the logs). */
function describe(err: unknown): string {
  return `${isNetloopError(err) ? `${err.code} ` : ''}${err instanceof Error ? err.message : String(err)}`;
}
