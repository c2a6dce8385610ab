/**
 * The chat server: cellnet's `examples/chat` on netloop. Every `ChatREQ` is
 * broadcast as `ChatACK { Content, Id }` to every connected client, `Id`
 * being the sender's connection id, as cellnet's example does; an unmodified
 * cellnet chat client chats through it.
 *
 * ```sh
 * npm start                                   # 127.0.0.1:18801, sessions in memory
 * npm start -- --port 9000 --host 0.0.0.0
 * npm start -- --store file:./sessions.json   # or --store redis://127.0.0.1:6379
 * ```
 *
 * ```
 *   socket ─▶ Client ─▶ LtvDecoder (cellnet tcp.ltv, strict ids)
 *                          │ ChatREQ            │ netloop.Hello / Heartbeat
 *                          ▼                    ▼
 *            ACK frame built from the REQ   SessionRegistry (create, resume,
 *            value + Id (no re-encoding)    heartbeat, detach, expire)
 *                          │ publish (local, or Redis in cluster-chat)
 *                          ▼
 *            pending frames of this turn ──(one functor per turn)──▶ one
 *            concatenated buffer appended to every client: one socket write
 *            per client per turn, whatever the number of messages
 * ```
 *
 * Sessions: every connection gets a session on connect (an anonymous one for
 * a cellnet client, which never hears of it). A client that sends
 * `netloop.Hello` gets `netloop.Welcome` with its token, may resume a previous
 * session with that token after a reconnect, heartbeats it, and receives
 * `netloop.Expired` before the server closes it when the session expires. Any
 * message counts as activity; a silent connection expires after `ttlMs`.
 *
 * Output limits: a client that stops reading accumulates output; past
 * `maxOutputBytes` (the hard limit, default 8 MiB) it is closed at once
 * (`output-limit`), and above `softOutputLimit.bytes` (default 2 MiB) for
 * `softOutputLimit.forMs` (default 10 s) it is closed too
 * (`output-soft-limit`). The others are never slowed: a broadcast only
 * appends to each client's queue. Server memory for output is thus bounded
 * by about `clients × maxOutputBytes`, and a client momentarily behind (a
 * burst) is never dropped as long as the burst is below the hard limit and
 * drains within the soft limit's time.
 *
 * @module
 */

import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { EventLoop } from '../../lib/event-loop.js';
import type { Server, SoftOutputLimit } from '../../lib/server.js';
import type { Client } from '../../lib/client.js';
import type { CloseReason } from '../../lib/close-reason.js';
import { LtvDecoder } from '../../lib/ltv-decoder.js';
import { SessionRegistry } from '../../lib/session-registry.js';
import type { SessionHandle } from '../../lib/session-registry.js';
import type { SessionStore } from '../../lib/session-store.js';
import { ErrorCode, NetloopError, checkInteger, isNetloopError } from '../../lib/errors.js';
import { CHAT_DEFAULT_HOST, CHAT_DEFAULT_PORT, MAX_ACK_CONTENT_BYTES, createChatProtocol } from './protocol.js';
import type { ChatProtocol, Hello } from './protocol.js';

/** Options of {@link ChatServer.start}. Every limit is finite and validated. */
export interface ChatServerOptions {
  /** Address to bind; default `'127.0.0.1'` (cellnet's). */
  host?: string;
  /** Port; default 18801 (cellnet's); 0 for an ephemeral port. */
  port?: number;
  /** Where sessions live; default a new in-memory store owned by the registry. The server never closes a store it was given. */
  store?: SessionStore;
  /** A session's time to live after its last message or heartbeat, in ms; default 300,000. */
  ttlMs?: number;
  /** How long a disconnected session may be resumed with its token, in ms; default 30,000. */
  resumeWindowMs?: number;
  /** Expiry precision (the registry's audit tick), in ms; default min(1,000, ttlMs / 4). */
  granularityMs?: number;
  /** Hard limit on one client's queued output, in bytes; default 8 MiB. */
  maxOutputBytes?: number;
  /** Soft limit on one client's queued output; default `{ bytes: 2 MiB, forMs: 10_000 }`; null disables it. */
  softOutputLimit?: SoftOutputLimit | null;
  /** Most connections at once; default 10,000. */
  maxConnections?: number;
  /**
   * Added to each connection's id to form the `Id` of its chat messages
   * (cluster workers use distinct bases so ids never clash); default 0.
   */
  idBase?: number;
  /** Prefix of the connection ids given to the session registry (unique per process for a shared store); default `''`. */
  connectionPrefix?: string;
  /**
   * Where a ChatACK frame goes; default: {@link ChatServer.broadcast} on this
   * server. The cluster example publishes it to Redis instead, and every
   * worker broadcasts what it receives from there.
   */
  publish?: (frame: Buffer) => void;
  /** Receives one line per notable event (listen, connection, close with its reason, expiry); default none. */
  log?: ((line: string) => void) | null;
}

/** What {@link ChatServer.stats} reports. */
export interface ChatServerStats {
  /** Connected clients. */
  clients: number;
  /** ChatREQ messages received. */
  received: number;
  /** ChatACK messages queued to clients (one per message per client). */
  deliveries: number;
  /** Closed connections, by close reason. */
  closes: Partial<Record<CloseReason, number>>;
  /** Bytes queued for output across every client right now. */
  queuedBytes: number;
  /** Sessions held by this process. */
  sessions: number;
}

/** Defaults of {@link ChatServerOptions}. */
export const CHAT_SERVER_DEFAULTS = Object.freeze({
  ttlMs: 300_000,
  resumeWindowMs: 30_000,
  maxOutputBytes: 8 * 1024 * 1024,
  softOutputLimit: Object.freeze({ bytes: 2 * 1024 * 1024, forMs: 10_000 }),
  maxConnections: 10_000,
});

/**
 * One connection's chat state, kept in `client.context`.
 *
 * ```
 *   { client, connId, idBytes (Id as int64 LE), decoder, netloop (said hello),
 *     handle / sessionId / token (null until the session exists),
 *     chain (session work of this connection, in order) }
 * ```
 */
interface Conn {
  readonly client: Client;
  readonly connId: string;
  readonly id: bigint;
  readonly idBytes: Buffer;
  readonly decoder: LtvDecoder;
  netloop: boolean;
  handle: SessionHandle | null;
  sessionId: string | null;
  token: string | null;
  chain: Promise<void>;
}

/** See the module comment. */
export class ChatServer {
  /** The loop the server runs on. */
  readonly loop: EventLoop;
  /** The listening server. */
  readonly server: Server;
  /** The sessions of this process. */
  readonly sessions: SessionRegistry;
  /** The message set. */
  readonly protocol: ChatProtocol;
  readonly #conns = new Map<string, Conn>();
  readonly #publish: (frame: Buffer) => void;
  readonly #log: ((line: string) => void) | null;
  readonly #idBase: bigint;
  readonly #prefix: string;
  readonly #ttlMs: number;
  readonly #pending = new Set<Promise<void>>();
  #batch: Buffer[] = [];
  #batchBytes = 0;
  #batchQueued = false;
  #received = 0;
  #deliveries = 0;
  readonly #closes: Partial<Record<CloseReason, number>> = {};
  #closing: Promise<void> | null = null;
  readonly #flushBatch = (): void => this.#deliverBatch();

  private constructor(loop: EventLoop, server: Server, sessions: SessionRegistry, options: ChatServerOptions, ttlMs: number) {
    this.loop = loop;
    this.server = server;
    this.sessions = sessions;
    this.protocol = createChatProtocol();
    this.#publish = options.publish ?? ((frame) => this.broadcast(frame));
    this.#log = options.log ?? null;
    this.#idBase = BigInt(checkInteger('idBase', options.idBase ?? 0, 0, Number.MAX_SAFE_INTEGER));
    this.#prefix = options.connectionPrefix ?? '';
    this.#ttlMs = ttlMs;
    server.on('connection', (client: Client) => this.#onConnection(client));
    server.on('data', (client: Client, chunk: Buffer) => this.#onData(client, chunk));
    server.on('close', (client: Client, reason: CloseReason, error?: NetloopError) => this.#onClose(client, reason, error));
    sessions.on('expired', (ev) => this.#onExpired(ev.connectionId, ev.reason));
    sessions.on('replaced', (ev) => this.#onExpired(ev.connectionId, 'replaced'));
  }

  /** Starts a chat server on its own loop; resolves once it listens. */
  static async start(options: ChatServerOptions = {}): Promise<ChatServer> {
    const ttlMs = checkInteger('ttlMs', options.ttlMs ?? CHAT_SERVER_DEFAULTS.ttlMs, 4, 2 ** 31 - 1);
    const loop = new EventLoop();
    let self: ChatServer | null = null;
    const sessions = new SessionRegistry({
      ...(options.store !== undefined ? { store: options.store } : {}),
      ttlMs,
      resumeWindowMs: options.resumeWindowMs ?? CHAT_SERVER_DEFAULTS.resumeWindowMs,
      granularityMs: options.granularityMs ?? Math.max(1, Math.min(1_000, Math.floor(ttlMs / 4))),
      isConnectionAlive: (id) => (self === null ? undefined : self.#conns.has(id) ? true : id.startsWith(self.#prefix) ? false : undefined),
    });
    let server: Server;
    try {
      server = await loop.listen({
        host: options.host ?? CHAT_DEFAULT_HOST,
        port: options.port ?? CHAT_DEFAULT_PORT,
        maxConnections: options.maxConnections ?? CHAT_SERVER_DEFAULTS.maxConnections,
        maxOutputBytes: options.maxOutputBytes ?? CHAT_SERVER_DEFAULTS.maxOutputBytes,
        softOutputLimit: options.softOutputLimit === undefined ? CHAT_SERVER_DEFAULTS.softOutputLimit : options.softOutputLimit,
        // Liveness is the session's business (TTL, heartbeats, expiry notice):
        // a cellnet client that only listens is not closed by a read timeout.
        idleTimeoutMs: 0,
        backlog: 4096,
      });
    } catch (err) {
      await sessions.close();
      await loop.close();
      throw err;
    }
    self = new ChatServer(loop, server, sessions, options, ttlMs);
    return self;
  }

  /** The bound port. */
  get port(): number {
    return this.server.port;
  }

  /**
   * Queues a ChatACK frame (or several, concatenated) for every connected
   * client. Frames queued in one turn of the loop leave together: one append
   * per client, so one socket write per client per turn.
   */
  broadcast(frame: Buffer): void {
    this.#batch.push(frame);
    this.#batchBytes += frame.length;
    if (!this.#batchQueued) {
      this.#batchQueued = true;
      this.loop.queueInLoop(this.#flushBatch);
    }
  }

  /** A snapshot of the server's counters. */
  stats(): ChatServerStats {
    return {
      clients: this.server.clientCount,
      received: this.#received,
      deliveries: this.#deliveries,
      closes: { ...this.#closes },
      queuedBytes: this.loop.stats().queuedBytes,
      sessions: this.#conns.size,
    };
  }

  /**
   * Stops: no new connections; every client flushes what is queued and is
   * closed (`server-close`, destroyed after `flushTimeoutMs`); sessions are
   * detached (resumable within their window) and written to their store.
   * Resolves once.
   */
  close(flushTimeoutMs = 2_000): Promise<void> {
    return (this.#closing ??= this.#close(flushTimeoutMs));
  }

  async #close(flushTimeoutMs: number): Promise<void> {
    await this.loop.close({ flushTimeoutMs });
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
    await this.sessions.close();
  }

  #deliverBatch(): void {
    this.#batchQueued = false;
    const frames = this.#batch;
    if (frames.length === 0) return;
    const buf = frames.length === 1 ? frames[0]! : Buffer.concat(frames, this.#batchBytes);
    const count = frames.length;
    this.#batch = [];
    this.#batchBytes = 0;
    let delivered = 0;
    for (const client of this.server.clients()) {
      if (client.closing || client.closed) continue;
      // false: the append would pass the hard limit; the reactor closes the
      // client ('output-limit') from the loop, and the others go on.
      if (client.write(buf)) delivered++;
    }
    this.#deliveries += delivered * count;
  }

  #onConnection(client: Client): void {
    const connId = `${this.#prefix}${client.id}`;
    const id = this.#idBase + BigInt(client.id);
    const idBytes = Buffer.allocUnsafe(8);
    idBytes.writeBigInt64LE(id, 0);
    const conn: Conn = {
      client,
      connId,
      id,
      idBytes,
      decoder: new LtvDecoder({
        layout: this.protocol.layout,
        isKnownType: this.protocol.registry.isKnownType,
        onFrame: (type, value) => this.#onFrame(conn, type, value),
      }),
      netloop: false,
      handle: null,
      sessionId: null,
      token: null,
      chain: Promise.resolve(),
    };
    client.context = conn;
    this.#conns.set(connId, conn);
    this.#logLine(`open client=${id} from=${client.remoteAddress ?? '?'}:${client.remotePort ?? '?'}`);
    // Every connection gets a session at once: a cellnet client's is anonymous and never mentioned to it.
    this.#enqueue(conn, async () => {
      const created = await this.sessions.create({ connectionId: connId, remoteAddress: client.remoteAddress ?? null });
      conn.handle = created.handle;
      conn.sessionId = created.session.id;
      conn.token = created.token;
    });
  }

  #onData(client: Client, chunk: Buffer): void {
    const conn = client.context as Conn;
    try {
      conn.decoder.feed(chunk);
    } catch (err) {
      const error = isNetloopError(err)
        ? err
        : new NetloopError(ErrorCode.HANDLER_ERROR, `chat handler failed: ${String(err)}`, { cause: err });
      client.forceClose(isNetloopError(err) && err.code !== ErrorCode.HANDLER_ERROR ? 'protocol-error' : 'handler-error', error);
    }
  }

  #onFrame(conn: Conn, type: number, value: Buffer): void {
    const p = this.protocol;
    conn.handle?.heartbeat();
    if (type === p.ChatREQ.id) {
      this.#onChat(conn, value);
      return;
    }
    if (conn.client.closing) return;
    const msg = p.registry.decode(type, value);
    if (msg.type === p.Hello) {
      const hello = msg.payload as Hello;
      this.#enqueue(conn, () => this.#onHello(conn, hello));
    } else if (msg.type === p.Heartbeat) {
      if (!conn.netloop) return;
      const left = conn.handle === null ? -1 : conn.handle.heartbeat();
      conn.client.write(p.frame(p.HeartbeatACK, { ttlMs: Math.max(0, Math.floor(left)) }));
    } else {
      // A server-to-client message sent to the server: the peer does not speak this protocol.
      throw new NetloopError(ErrorCode.UNKNOWN_TYPE, `${msg.type?.name ?? type} is not a client message`, { details: { type } });
    }
  }

  /**
   * ChatREQ's value is `uint16 LE n · n bytes`; ChatACK's is the same string
   * followed by `Id int64 LE`. The ACK is built from the REQ's bytes as they
   * are (cellnet's strings are bytes too), checked, never decoded.
   */
  #onChat(conn: Conn, value: Buffer): void {
    if (value.length < 2 || value.readUInt16LE(0) + 2 !== value.length) {
      throw new NetloopError(ErrorCode.BAD_PAYLOAD, 'a ChatREQ value must be one binary-codec string', {
        details: { type: 'proto.ChatREQ', length: value.length },
      });
    }
    this.#received++;
    const contentBytes = value.length - 2;
    if (contentBytes > MAX_ACK_CONTENT_BYTES) {
      this.#logLine(`drop client=${conn.id} reason=too-long bytes=${contentBytes} max=${MAX_ACK_CONTENT_BYTES}`);
      return;
    }
    const valueLength = value.length + 8;
    const frame = Buffer.allocUnsafe(4 + valueLength);
    frame.writeUInt16LE(valueLength + 2, 0);
    frame.writeUInt16LE(this.protocol.ChatACK.id, 2);
    value.copy(frame, 4);
    conn.idBytes.copy(frame, 4 + value.length);
    this.#publish(frame);
  }

  async #onHello(conn: Conn, hello: Hello): Promise<void> {
    const { client } = conn;
    if (client.closed) return;
    conn.netloop = true;
    let resumed = false;
    if (hello.token !== '') {
      // The connection's anonymous session gives way to the one being resumed.
      if (conn.sessionId !== null) await this.sessions.delete(conn.sessionId, 'superseded');
      conn.handle = null;
      conn.sessionId = null;
      conn.token = null;
      try {
        const r = await this.sessions.resume(hello.token, conn.connId, client.remoteAddress ?? null);
        conn.handle = r.handle;
        conn.sessionId = r.session.id;
        conn.token = hello.token;
        resumed = true;
        if (r.previousConnectionId !== null) {
          this.#conns.get(r.previousConnectionId)?.client.forceClose('session-replaced');
        }
      } catch (err) {
        if (!isNetloopError(err, ErrorCode.BAD_TOKEN)) throw err;
        const created = await this.sessions.create({ connectionId: conn.connId, remoteAddress: client.remoteAddress ?? null });
        conn.handle = created.handle;
        conn.sessionId = created.session.id;
        conn.token = created.token;
      }
    }
    if (conn.sessionId === null || conn.token === null) return;
    const name = hello.name.slice(0, 64);
    if (name !== '') await this.sessions.updateMetadata(conn.sessionId, { name }).catch(() => undefined);
    this.#logLine(`hello client=${conn.id} session=${conn.sessionId} resumed=${resumed}${name === '' ? '' : ` name=${JSON.stringify(name)}`}`);
    if (client.closing || client.closed) return;
    client.write(
      this.protocol.frame(this.protocol.Welcome, {
        session: conn.sessionId,
        token: conn.token,
        id: conn.id,
        resumed,
        heartbeatMs: Math.max(1, Math.floor(this.#ttlMs / 3)),
        ttlMs: this.#ttlMs,
        pid: process.pid,
      }),
    );
  }

  /** The session of a connection expired (or was replaced): notice first (netloop clients only), then a graceful close. */
  #onExpired(connectionId: string | null, reason: string): void {
    if (connectionId === null) return;
    const conn = this.#conns.get(connectionId);
    if (conn === undefined) return;
    const { client } = conn;
    conn.handle = null;
    if (client.closing || client.closed) return;
    this.#logLine(`expired client=${conn.id} session=${conn.sessionId ?? '?'} reason=${reason}`);
    if (conn.netloop) client.write(this.protocol.frame(this.protocol.Expired, { reason }));
    // shutdown(): everything queued (the notice included) is sent before the FIN.
    client.shutdown();
  }

  #onClose(client: Client, reason: CloseReason, error?: NetloopError): void {
    const conn = client.context as Conn | undefined;
    this.#closes[reason] = (this.#closes[reason] ?? 0) + 1;
    if (conn === undefined) return;
    this.#conns.delete(conn.connId);
    this.#logLine(`close client=${conn.id} reason=${reason}${error === undefined ? '' : ` code=${error.code}`}`);
    this.#enqueue(conn, async () => {
      await this.sessions.detach(conn.connId, reason);
    });
  }

  /** Runs session work of one connection after the previous one, tracked for a clean shutdown. */
  #enqueue(conn: Conn, work: () => Promise<void>): void {
    const next = conn.chain.then(work).catch((err: unknown) => {
      this.#logLine(`session-error client=${conn.id} ${isNetloopError(err) ? err.code : ''} ${err instanceof Error ? err.message : String(err)}`);
    });
    conn.chain = next;
    this.#pending.add(next);
    void next.finally(() => this.#pending.delete(next));
  }

  #logLine(line: string): void {
    if (this.#log !== null) this.#log(line);
  }
}

// ─── command line ─────────────────────────────────────────────────────────────

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
  quiet: boolean;
}

/** The usage line. */
export const CHAT_SERVER_USAGE =
  'usage: npm start -- [--port N] [--host H] [--store memory | file:PATH | redis://HOST:PORT] [--ttl-ms N] ' +
  '[--resume-window-ms N] [--max-output-bytes N] [--soft-output-bytes N (0: off)] [--soft-output-ms N] [--quiet]';

/** Parses the server's command line; a bad argument is `NETLOOP_INVALID_OPTION`. */
export function parseChatServerArgs(argv: readonly string[]): ChatServerArgs {
  const d = CHAT_SERVER_DEFAULTS;
  const args: ChatServerArgs = {
    host: CHAT_DEFAULT_HOST,
    port: CHAT_DEFAULT_PORT,
    store: 'memory',
    ttlMs: d.ttlMs,
    resumeWindowMs: d.resumeWindowMs,
    maxOutputBytes: d.maxOutputBytes,
    softOutputBytes: d.softOutputLimit.bytes,
    softOutputMs: d.softOutputLimit.forMs,
    quiet: false,
  };
  const ints: Record<string, [keyof ChatServerArgs, number, number]> = {
    '--port': ['port', 0, 65535],
    '--ttl-ms': ['ttlMs', 4, 2 ** 31 - 1],
    '--resume-window-ms': ['resumeWindowMs', 0, 2 ** 31 - 1],
    '--max-output-bytes': ['maxOutputBytes', 1, 2 ** 40],
    '--soft-output-bytes': ['softOutputBytes', 0, 2 ** 40],
    '--soft-output-ms': ['softOutputMs', 0, 2 ** 31 - 1],
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = argv[i + 1];
    const int = ints[arg];
    if (arg === '--quiet') args.quiet = true;
    else if (value === undefined) throw usageError(`${arg} needs a value`, arg);
    else if (int !== undefined) {
      const n = Number(value);
      if (!Number.isInteger(n) || n < int[1] || n > int[2]) throw usageError(`${arg} must be an integer in [${int[1]}, ${int[2]}], got ${value}`, arg);
      (args as unknown as Record<string, number>)[int[0]] = n;
      i++;
    } else if (arg === '--host') {
      args.host = value;
      i++;
    } else if (arg === '--store') {
      if (value !== 'memory' && !value.startsWith('file:') && !/^rediss?:\/\//.test(value)) {
        throw usageError(`--store must be memory, file:PATH or redis://..., got ${value}`, arg);
      }
      args.store = value;
      i++;
    } else throw usageError(`unknown argument ${arg}`, arg);
  }
  if (args.softOutputBytes > args.maxOutputBytes) throw usageError('--soft-output-bytes must not exceed --max-output-bytes', '--soft-output-bytes');
  return args;
}

function usageError(message: string, option: string): NetloopError {
  return new NetloopError(ErrorCode.INVALID_OPTION, `${message}\n${CHAT_SERVER_USAGE}`, { details: { option } });
}

/** Opens the store a `--store` argument names (null for memory: the registry makes its own). */
export async function openChatStore(spec: string): Promise<SessionStore | null> {
  if (spec === 'memory') return null;
  if (spec.startsWith('file:')) {
    const { FileStore } = await import('../../lib/file-store.js');
    return FileStore.open({ path: path.resolve(spec.slice('file:'.length)) });
  }
  const { RedisStore } = await import('../../lib/redis-store.js');
  return new RedisStore({ url: spec });
}

async function main(): Promise<void> {
  const args = parseChatServerArgs(process.argv.slice(2));
  const store = await openChatStore(args.store);
  const out = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  const chat = await ChatServer.start({
    host: args.host,
    port: args.port,
    ...(store !== null ? { store } : {}),
    ttlMs: args.ttlMs,
    resumeWindowMs: args.resumeWindowMs,
    maxOutputBytes: args.maxOutputBytes,
    softOutputLimit: args.softOutputBytes === 0 ? null : { bytes: args.softOutputBytes, forMs: args.softOutputMs },
    log: args.quiet ? null : out,
  });
  const { address, port } = chat.server.address();
  out(`netloop chat server listening on ${address}:${port} (sessions: ${args.store === 'memory' ? 'memory' : args.store.startsWith('file:') ? args.store : 'redis'})`);
  out(`connect a client:  npm run chat -- --port ${port} --host ${address} [--name NAME]`);
  if (port === CHAT_DEFAULT_PORT && address === CHAT_DEFAULT_HOST) out(`cellnet's chat client connects as it is (it dials ${CHAT_DEFAULT_HOST}:${CHAT_DEFAULT_PORT})`);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    out(`${signal}: closing ${chat.server.clientCount} connection(s)`);
    void chat
      .close()
      .then(() => store?.close())
      .then(
        () => {
          out('stopped');
          process.exit(0);
        },
        (err: unknown) => {
          process.stderr.write(`stop failed: ${err instanceof Error ? err.message : String(err)}\n`);
          process.exit(1);
        },
      );
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
