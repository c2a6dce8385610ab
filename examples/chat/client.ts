/**
 * The terminal chat client: reads lines from stdin, sends each as a
 * `ChatREQ`, prints every `ChatACK` as cellnet's client does
 * (`sid<Id> say: <Content>`), and lines starting with `*` for its own status.
 *
 * ```sh
 * npm run chat                                  # 127.0.0.1:18801
 * npm run chat -- --port 9000 --host 10.0.0.2 --name ann
 * npm run chat -- --plain                       # cellnet's messages only (for cellnet's own server)
 * ```
 *
 * ```
 *   stdin lines ──▶ ChatREQ ("NAME: line" with --name) ──▶ server
 *   connect ──▶ netloop.Hello { Name, Token } ──▶ netloop.Welcome { Session, Token, Id, ... }
 *        every HeartbeatMs ──▶ netloop.Heartbeat
 *   close ──▶ reconnect with backoff (the Connector) ──▶ Hello with the saved token: resumed
 *   netloop.Expired ──▶ the token is forgotten; the next connection starts a new session
 *   netloop.Error   ──▶ printed with its code (no session: e.g. the store is down); the
 *                       server closes, the client reconnects later with the same token
 * ```
 *
 * Against a server that closes the connection on `netloop.Hello` before
 * answering it (cellnet's own chat server closes on any id it does not know),
 * the client falls back to cellnet's messages only and resends the lines that
 * close cut off; `--plain` starts that way.
 *
 * Lines typed while disconnected wait in a bounded outbox (the oldest are
 * dropped past {@link OUTBOX_LIMIT}) and leave on the next connection. It
 * stops at the end of stdin (after sending what is queued) and on SIGINT or
 * SIGTERM.
 *
 * @module
 */

import * as path from 'node:path';
import * as readline from 'node:readline';
import { pathToFileURL } from 'node:url';
import { EventLoop } from '../../lib/reactor/event-loop.js';
import type { TimerId } from '../../lib/reactor/event-loop.js';
import { FramedConnector } from '../../lib/framing/framed-connector.js';
import type { AnyFramedConnector } from '../../lib/framing/framed-connector.js';
import type { ConnectErrorInfo } from '../../lib/reactor/callbacks.js';
import type { Client } from '../../lib/reactor/client.js';
import type { CloseReason } from '../../lib/reactor/close-reason.js';
import type { FramedClient, FramedMessage } from '../../lib/framing/framed-client.js';
import { ErrorCode, NetloopError } from '../../lib/core/errors.js';
import type { CellnetChatACK } from '../../lib/codec/cellnet/binary.js';
import { CHAT_DEFAULT_HOST, CHAT_DEFAULT_PORT, MAX_ACK_CONTENT_BYTES, createChatProtocol } from './protocol.js';
import type { ChatProtocol, ErrorNotice, Expired, Welcome } from './protocol.js';

/** Lines kept while disconnected; older ones are dropped beyond it. */
export const OUTBOX_LIMIT = 1_000;

/** Options of {@link ChatClient}. */
export interface ChatClientOptions {
  /** Default `'127.0.0.1'`. */
  host?: string;
  /** Default 18801. */
  port?: number;
  /** Prefixes every line sent (`NAME: line`) and is given to the server in the hello. Default none. */
  name?: string;
  /** Speak cellnet's messages only: no hello, session, heartbeat or resume (for cellnet's own server). Default false. */
  plain?: boolean;
  /** Receives every printed line. */
  print: (line: string) => void;
  /** First reconnect delay in ms; default 200 (then doubling, with jitter, up to 5 s). */
  reconnectDelayMs?: number;
}

/** See the module comment. */
export class ChatClient {
  readonly loop = new EventLoop();
  readonly connector: AnyFramedConnector;
  readonly protocol: ChatProtocol = createChatProtocol();
  readonly #print: (line: string) => void;
  readonly #name: string;
  #plain: boolean;
  #token = '';
  /** True once any connection was welcomed: the server speaks netloop's messages. */
  #welcomed = false;
  /** Lines sent on this connection before any welcome, resent if the server turns out to be a plain cellnet one. */
  #unconfirmed: string[] = [];
  /** True once this connection received `netloop.Error`: the server speaks netloop's messages, its close is no cellnet refusal. */
  #refused = false;
  #client: FramedClient | null = null;
  #heartbeat: TimerId | null = null;
  #outbox: string[] = [];
  #stopping: Promise<void> | null = null;

  constructor(options: ChatClientOptions) {
    this.#print = options.print;
    this.#name = options.name ?? '';
    this.#plain = options.plain ?? false;
    const host = options.host ?? CHAT_DEFAULT_HOST;
    const port = options.port ?? CHAT_DEFAULT_PORT;
    this.connector = new FramedConnector(this.loop, {
      host,
      port,
      reconnect: { initialDelayMs: options.reconnectDelayMs ?? 200, maxDelayMs: 5_000, maxAttempts: 1_000_000 },
      maxOutputBytes: 4 * 1024 * 1024,
      // The connector decodes and encodes (a strict registry: an unknown id closes with 'protocol-error').
      layout: this.protocol.layout,
      registry: this.protocol.registry,
      onMessage: (client, message) => this.#onMessage(client, message),
    }).connect();
    this.connector.on('connected', (client: FramedClient) => this.#onConnected(client, host, port));
    this.connector.on('close', (client: Client, reason: CloseReason, error?: NetloopError) => this.#onClose(client, reason, error));
    this.connector.on('connect-error', (error: NetloopError, info: ConnectErrorInfo) => {
      const code = error.details['syscallCode'];
      const retry = info.nextDelayMs === null ? 'giving up' : `retrying in ${Math.round(info.nextDelayMs)} ms`;
      this.#print(`* cannot connect to ${host}:${port} (${typeof code === 'string' ? code : error.code}); ${retry}`);
    });
    this.connector.on('give-up', (error: NetloopError) => {
      this.#print(`* ${error.message}`);
      void this.stop();
    });
  }

  /** The session token (empty before the first welcome, or after an expiry). */
  get token(): string {
    return this.#token;
  }

  /** Sends one line (prefixed with the name, if any); queued while disconnected. */
  say(text: string): void {
    const content = this.#name === '' ? text : `${this.#name}: ${text}`;
    if (Buffer.byteLength(content, 'utf8') > MAX_ACK_CONTENT_BYTES) {
      this.#print(`* line not sent: longer than ${MAX_ACK_CONTENT_BYTES} bytes`);
      return;
    }
    const client = this.#client;
    if (client !== null && !client.closing && !client.closed) {
      client.send(this.protocol.ChatREQ, { content });
      if (!this.#plain && !this.#welcomed) this.#unconfirmed.push(content);
      return;
    }
    if (this.#outbox.length >= OUTBOX_LIMIT) {
      this.#outbox.shift();
      this.#print('* outbox full: the oldest unsent line was dropped');
    }
    this.#outbox.push(content);
  }

  /** Sends what is queued, closes the connection, stops reconnecting. Resolves once. */
  stop(): Promise<void> {
    return (this.#stopping ??= (async () => {
      this.#stopHeartbeat();
      await this.connector.close({ flushTimeoutMs: 2_000 });
      await this.loop.close({ flushTimeoutMs: 2_000 });
    })());
  }

  #onConnected(client: FramedClient, host: string, port: number): void {
    this.#client = client;
    this.#refused = false;
    this.#print(`* connected to ${host}:${port}`);
    const p = this.protocol;
    if (!this.#plain) client.send(p.Hello, { name: this.#name, token: this.#token });
    const queued = this.#outbox;
    this.#outbox = [];
    for (const content of queued) client.send(p.ChatREQ, { content });
    this.#unconfirmed = this.#plain || this.#welcomed ? [] : queued;
  }

  #onMessage(client: FramedClient, msg: FramedMessage): void {
    const p = this.protocol;
    if (msg.type === p.ChatACK.id) {
      const ack = msg.payload as CellnetChatACK;
      this.#print(`sid${ack.id} say: ${ack.content}`);
    } else if (msg.type === p.Welcome.id) {
      const w = msg.payload as Welcome;
      this.#token = w.token;
      this.#welcomed = true;
      this.#unconfirmed = [];
      this.#print(`* session ${w.session} ${w.resumed ? 'resumed' : 'new'} as sid${w.id} (server pid ${w.pid}, ttl ${w.ttlMs} ms)`);
      this.#stopHeartbeat();
      this.#heartbeat = this.loop.runEvery(Math.max(1, w.heartbeatMs), () => {
        if (!client.closing && !client.closed) client.send(p.Heartbeat, {});
      });
    } else if (msg.type === p.Expired.id) {
      this.#token = '';
      this.#print(`* session expired (${(msg.payload as Expired).reason})`);
    } else if (msg.type === p.Error.id) {
      // The token is kept: the session may still exist, and be resumed once the server can reach it.
      const e = msg.payload as ErrorNotice;
      this.#refused = true;
      this.#print(`* server error ${e.code}: ${e.message}`);
    } else if (msg.type !== p.HeartbeatACK.id) {
      // A client-to-server message from the server: it does not speak this protocol ('handler-error').
      throw new NetloopError(ErrorCode.UNKNOWN_TYPE, `${msg.name ?? msg.type} is not a server message`, { details: { type: msg.type } });
    }
  }

  #onClose(client: Client, reason: CloseReason, error?: NetloopError): void {
    if (this.#client === client) this.#client = null;
    this.#stopHeartbeat();
    const why = error === undefined ? reason : `${reason}, ${error.code}`;
    this.#print(`* disconnected (${why})${this.#stopping === null ? '; reconnecting' : ''}`);
    if (!this.#plain && !this.#welcomed && !this.#refused && (reason === 'peer-closed' || reason === 'reset')) {
      // A cellnet server closes on netloop.Hello (an id it does not know): from
      // now on speak cellnet's messages only, and resend what that close lost.
      this.#plain = true;
      this.#outbox = this.#unconfirmed.concat(this.#outbox).slice(-OUTBOX_LIMIT);
      this.#unconfirmed = [];
      this.#print("* the server closed on netloop.Hello (a cellnet server?): continuing with cellnet's messages only");
    }
  }

  #stopHeartbeat(): void {
    if (this.#heartbeat !== null) this.loop.cancel(this.#heartbeat);
    this.#heartbeat = null;
  }
}

/** What the command line selects. */
export interface ChatClientArgs {
  host: string;
  port: number;
  name: string;
  plain: boolean;
}

/** The usage line. */
export const CHAT_CLIENT_USAGE = 'usage: npm run chat -- [--port N] [--host H] [--name NAME] [--plain]';

/** Parses the client's command line; a bad argument is `NETLOOP_INVALID_OPTION`. */
export function parseChatClientArgs(argv: readonly string[]): ChatClientArgs {
  const args: ChatClientArgs = { host: CHAT_DEFAULT_HOST, port: CHAT_DEFAULT_PORT, name: '', plain: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = argv[i + 1];
    if (arg === '--plain') args.plain = true;
    else if (value === undefined) throw usageError(`${arg} needs a value`, arg);
    else if (arg === '--port') {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1 || n > 65535) throw usageError(`--port must be an integer in [1, 65535], got ${value}`, arg);
      args.port = n;
      i++;
    } else if (arg === '--host') {
      args.host = value;
      i++;
    } else if (arg === '--name') {
      args.name = value;
      i++;
    } else throw usageError(`unknown argument ${arg}`, arg);
  }
  return args;
}

function usageError(message: string, option: string): NetloopError {
  return new NetloopError(ErrorCode.INVALID_OPTION, `${message}\n${CHAT_CLIENT_USAGE}`, { details: { option } });
}

function main(): void {
  const args = parseChatClientArgs(process.argv.slice(2));
  const chat = new ChatClient({ ...args, print: (line) => process.stdout.write(`${line}\n`) });
  const rl = readline.createInterface({ input: process.stdin, terminal: false });
  let done = false;
  const finish = (why: string): void => {
    if (done) return;
    done = true;
    rl.close();
    process.stdout.write(`* ${why}: stopping\n`);
    void chat.stop().then(() => process.exit(0));
  };
  rl.on('line', (line) => {
    if (!done && line !== '') chat.say(line);
  });
  rl.on('close', () => finish('end of input'));
  process.on('SIGINT', () => finish('SIGINT'));
  process.on('SIGTERM', () => finish('SIGTERM'));
}

const entry = process.argv[1];
if (entry !== undefined && pathToFileURL(path.resolve(entry)).href === import.meta.url) {
  try {
    main();
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
