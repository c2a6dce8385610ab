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
 * stops at the end of stdin, after sending what is queued (waiting up to
 * {@link STOP_SEND_WAIT_MS} for a connection, so `printf 'hi\n' | npm run
 * chat` sends its line), and at once on SIGINT or SIGTERM.
 *
 * @module
 */

import { ErrorCode, EventLoop, FramedConnector, NetloopError } from 'netloop';
import type { AnyFramedConnector, Client, CloseReason, ConnectErrorInfo, FramedClient, FramedMessage, TimerId } from 'netloop';
import { defineCommand, isMain, parseCommandLine, runCommand } from '../shared/cli.js';
import type { OptionValues } from '../shared/cli.js';
import { CHAT_DEFAULT_HOST, CHAT_DEFAULT_PORT, MAX_ACK_CONTENT_BYTES, createChatProtocol } from './protocol.js';
import type { ChatAck, ChatProtocol, ErrorNotice, Expired, Welcome } from './protocol.js';
import { ChatTerminal } from './terminal.js';

/** Lines kept while disconnected; older ones are dropped beyond it. */
export const OUTBOX_LIMIT = 1_000;

/** How long {@link ChatClient.stop} waits by default for a connection to send the lines still queued. */
export const STOP_SEND_WAIT_MS = 5_000;

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
  /** Called once a connection took the outbox (set while {@link ChatClient.stop} waits for one). */
  #outboxSent: (() => void) | null = null;
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

  /** Lines queued while disconnected and not sent yet (after {@link ChatClient.stop}: those it dropped). */
  get unsent(): number {
    return this.#outbox.length;
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

  /**
   * Sends what is queued, closes the connection, stops reconnecting.
   * Resolves once. Lines typed while disconnected are still queued: stop
   * waits up to `sendWaitMs` (default {@link STOP_SEND_WAIT_MS}; 0 for no
   * wait) for a connection to send them, and says how many it dropped when
   * none came.
   */
  stop(sendWaitMs = STOP_SEND_WAIT_MS): Promise<void> {
    return (this.#stopping ??= (async () => {
      this.#stopHeartbeat();
      if (this.#outbox.length > 0 && sendWaitMs > 0) {
        await new Promise<void>((resolve) => {
          const timer = this.loop.runAfter(sendWaitMs, () => {
            this.#outboxSent = null;
            resolve();
          });
          this.#outboxSent = () => {
            this.#outboxSent = null;
            this.loop.cancel(timer);
            resolve();
          };
        });
        this.#stopHeartbeat(); // a welcome may have come meanwhile
      }
      if (this.#outbox.length > 0) this.#print(`* ${this.#outbox.length} line(s) not sent: no connection`);
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
    this.#outboxSent?.();
  }

  #onMessage(client: FramedClient, msg: FramedMessage): void {
    const p = this.protocol;
    if (msg.type === p.ChatACK.id) {
      const ack = msg.payload as ChatAck;
      this.#print(`sid${ack.id} say: ${ack.content}`);
    } else if (msg.type === p.Welcome.id) {
      const w = msg.payload as Welcome;
      this.#token = w.token;
      this.#welcomed = true;
      this.#unconfirmed = [];
      this.#print(`* session ${w.session} ${w.resumed ? 'resumed' : 'new'} as sid${w.id} (server pid ${w.pid}, ttl ${w.ttlMs} ms)`);
      this.#stopHeartbeat();
      if (this.#stopping !== null) return; // no heartbeat for a connection about to close
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
    // Stopping, the close is this client's own ('server-close' would only say that its connector closed it).
    this.#print(this.#stopping === null ? `* disconnected (${why}); reconnecting` : '* disconnected');
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

/** The client's command line. */
export const CHAT_CLIENT_COMMAND = defineCommand({
  name: 'chat-client',
  usage: 'npm run chat -- [options]',
  summary:
    'The terminal chat client: type a line and press Enter to send it; every message shows as "sid<Id> say: <line>".\n' +
    'Ctrl-D or Ctrl-C stops it. It reconnects on its own and resumes its session.',
  options: {
    port: { type: 'integer', default: CHAT_DEFAULT_PORT, min: 1, max: 65535, help: "the chat server's port" },
    host: { type: 'string', default: CHAT_DEFAULT_HOST, arg: 'H', help: "the chat server's address" },
    name: { type: 'string', default: '', arg: 'NAME', help: 'sent before each line ("NAME: line") and kept in the session' },
    plain: { type: 'flag', help: "speak cellnet's messages only (for cellnet's own chat server)" },
  },
});

/** What the command line selects. */
export interface ChatClientArgs {
  host: string;
  port: number;
  name: string;
  plain: boolean;
}

/**
 * Parses the client's command line.
 *
 * @throws NetloopError `NETLOOP_INVALID_OPTION` (`details.option`) for a bad argument.
 */
export function parseChatClientArgs(argv: readonly string[]): ChatClientArgs {
  return chatClientArgs(parseCommandLine(CHAT_CLIENT_COMMAND, argv));
}

function chatClientArgs(v: OptionValues<typeof CHAT_CLIENT_COMMAND.options>): ChatClientArgs {
  return { host: v.host, port: v.port, name: v.name, plain: v.plain };
}

/**
 * The program: a {@link ChatClient} whose lines show on a {@link ChatTerminal}
 * (a prompt, and messages printed above the line being typed; plain lines
 * when stdin or stdout is not a terminal).
 */
function main(args: ChatClientArgs): void {
  let chat: ChatClient | null = null;
  let done = false;
  const finish = (why: string): void => {
    if (done) {
      // A second signal while the queued lines wait for a connection: quit now.
      if (why !== 'end of input') process.exit(1);
      return;
    }
    done = true;
    terminal.close();
    terminal.print(`* ${why}: stopping`);
    // At the end of input the lines queued while disconnected still leave if a connection comes soon; a signal does not wait.
    // Exit status 1 when lines were dropped, so a script sees it.
    void (chat?.stop(why === 'end of input' ? STOP_SEND_WAIT_MS : 0) ?? Promise.resolve()).then(() => process.exit(chat !== null && chat.unsent > 0 ? 1 : 0));
  };
  const terminal = new ChatTerminal({
    input: process.stdin,
    output: process.stdout,
    prompt: args.name === '' ? '> ' : `${args.name}> `,
    onLine: (line) => {
      if (!done && line !== '') chat?.say(line);
    },
    onEnd: finish,
  });
  chat = new ChatClient({ ...args, print: (line) => terminal.print(line) });
  process.on('SIGINT', () => finish('SIGINT'));
  process.on('SIGTERM', () => finish('SIGTERM'));
}

if (isMain(import.meta.url)) runCommand(CHAT_CLIENT_COMMAND, process.argv.slice(2), main, chatClientArgs);
