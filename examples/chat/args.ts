/**
 * The chat server's command line: its options, their defaults, and the
 * typed arguments `main` starts the server with.
 *
 * ```sh
 * npm start -- --help
 * npm start -- --port 9000 --store file:./sessions.json --status-port 9464 --log plain
 * ```
 *
 * @module
 */

import { defineCommand, parseCommandLine, usageError } from '../shared/cli.js';
import type { OptionValues } from '../shared/cli.js';
import { LOG_MODES } from '../shared/logging.js';
import type { LogMode } from '../shared/logging.js';
import { CHAT_DEFAULT_HOST, CHAT_DEFAULT_PORT } from './protocol.js';

/** Defaults of the chat server's limits (the command line's and {@link ChatServerOptions}'s). */
export const CHAT_SERVER_DEFAULTS = Object.freeze({
  ttlMs: 300_000,
  resumeWindowMs: 30_000,
  maxOutputBytes: 8 * 1024 * 1024,
  softOutputLimit: Object.freeze({ bytes: 2 * 1024 * 1024, forMs: 10_000 }),
  maxConnections: 10_000,
});

const MAX_MS = 2 ** 31 - 1;

/** Refuses a `--store` that names no store this example knows. */
function checkStore(value: string): string | null {
  return value === 'memory' || (value.startsWith('file:') && value.length > 'file:'.length) || /^rediss?:\/\/./.test(value)
    ? null
    : 'must be memory, file:PATH or redis://HOST:PORT';
}

/** The chat server's command line. */
export const CHAT_SERVER_COMMAND = defineCommand({
  name: 'chat-server',
  usage: 'npm start -- [options]',
  summary:
    "The chat server: cellnet's chat on netloop. Every ChatREQ is broadcast as ChatACK to every client;\n" +
    'netloop clients get sessions (resume with a token, heartbeats, an expiry notice).',
  options: {
    port: { type: 'integer', default: CHAT_DEFAULT_PORT, min: 0, max: 65535, help: 'port to listen on; 0 picks a free one' },
    host: { type: 'string', default: CHAT_DEFAULT_HOST, arg: 'H', help: 'address to bind' },
    store: { type: 'string', default: 'memory', check: checkStore, help: 'where sessions live: memory, file:PATH or redis://HOST:PORT' },
    'ttl-ms': { type: 'integer', default: CHAT_SERVER_DEFAULTS.ttlMs, min: 4, max: MAX_MS, help: 'a session expires this long after its last message or heartbeat' },
    'resume-window-ms': {
      type: 'integer',
      default: CHAT_SERVER_DEFAULTS.resumeWindowMs,
      min: 0,
      max: MAX_MS,
      help: 'how long a disconnected session may be resumed with its token',
    },
    'max-output-bytes': {
      type: 'integer',
      default: CHAT_SERVER_DEFAULTS.maxOutputBytes,
      min: 1,
      max: 2 ** 40,
      help: "hard limit on one client's queued output: past it the client is closed at once",
    },
    'soft-output-bytes': {
      type: 'integer',
      default: CHAT_SERVER_DEFAULTS.softOutputLimit.bytes,
      min: 0,
      max: 2 ** 40,
      help: 'soft limit: a client above it for --soft-output-ms is closed; 0 turns it off',
    },
    'soft-output-ms': { type: 'integer', default: CHAT_SERVER_DEFAULTS.softOutputLimit.forMs, min: 0, max: MAX_MS, help: 'how long the soft limit may be exceeded' },
    'status-port': {
      type: 'integer',
      min: 0,
      max: 65535,
      help: 'serve the live status page (and /metrics when prom-client is installed) on 127.0.0.1:N; 0 picks a free port',
    },
    log: { type: 'string', default: 'auto', choices: LOG_MODES, help: 'logs: pino when installed (auto), plain lines, or none' },
  },
  notes: [
    'examples:',
    '  npm start -- --port 9000 --host 0.0.0.0 --store file:./sessions.json',
    '  npm start -- --store redis://127.0.0.1:6379 --status-port 9464',
    '  npm run chat -- --port 9000 --name ann      (a terminal client)',
  ],
});

/** What the command line selects. */
export interface ChatServerArgs {
  host: string;
  port: number;
  /** `memory`, `file:PATH` or a `redis://` / `rediss://` URL. */
  store: string;
  ttlMs: number;
  resumeWindowMs: number;
  maxOutputBytes: number;
  /** 0 disables the soft limit. */
  softOutputBytes: number;
  softOutputMs: number;
  /** The status page's port, or null for none. */
  statusPort: number | null;
  log: LogMode;
}

/**
 * Parses the server's command line.
 *
 * @throws NetloopError `NETLOOP_INVALID_OPTION` (`details.option`) for a bad argument.
 */
export function parseChatServerArgs(argv: readonly string[]): ChatServerArgs {
  return chatServerArgs(parseCommandLine(CHAT_SERVER_COMMAND, argv));
}

/**
 * The arguments from the parsed options (`--soft-output-bytes` checked against `--max-output-bytes`).
 *
 * @throws NetloopError `NETLOOP_INVALID_OPTION`.
 */
export function chatServerArgs(v: OptionValues<typeof CHAT_SERVER_COMMAND.options>): ChatServerArgs {
  if (v['soft-output-bytes'] > v['max-output-bytes']) throw usageError('--soft-output-bytes must not exceed --max-output-bytes', '--soft-output-bytes');
  return {
    host: v.host,
    port: v.port,
    store: v.store,
    ttlMs: v['ttl-ms'],
    resumeWindowMs: v['resume-window-ms'],
    maxOutputBytes: v['max-output-bytes'],
    softOutputBytes: v['soft-output-bytes'],
    softOutputMs: v['soft-output-ms'],
    statusPort: v['status-port'] ?? null,
    log: v.log as LogMode,
  };
}
