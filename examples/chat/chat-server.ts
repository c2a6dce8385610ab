/**
 * The chat server: cellnet's `examples/chat` on netloop. Every `ChatREQ` is
 * broadcast as `ChatACK { Content, Id }` to every connected client, `Id`
 * being the sender's connection id, as cellnet's example does; an unmodified
 * cellnet chat client chats through it.
 *
 * `server.ts` runs it as a program (`npm start`); the cluster example runs
 * one in each worker process.
 *
 * It is built from the library's layers only; the application code is the
 * three message handlers and the per-turn batch:
 *
 * ```
 *   socket ─▶ framing (cellnet tcp.ltv + the chat registry, strict ids) ─▶ onMessage
 *                │ ChatREQ                        │ netloop.Hello / Heartbeat
 *                ▼                                ▼
 *   ACK frame built from the REQ's bytes    bindSessions: login on connect, resume,
 *   + Id (never re-encoded)                 heartbeat; expiry ─▶ notice ─▶ flush ─▶ close
 *                │ publish (local, or Redis in cluster-chat)
 *                ▼
 *   frames of this loop turn ──(one functor per turn)──▶ binding.broadcast(one
 *   concatenated buffer): one append, so one socket write, per client per turn
 * ```
 *
 * The work of one turn is bounded by the framing layer's `maxMessagesPerTurn`
 * (default 512 per sender): a sender's read of thousands of messages is
 * broadcast over several turns, so the batch written to every client, and
 * with it the longest stall of the loop, stays bounded whatever the burst.
 * The batch is shared: every client's queue holds it by reference and hands
 * it to its socket whole (no copy per client).
 *
 * Sessions: every connection gets a session on connect (an anonymous one for
 * a cellnet client, which never hears of it). A client that sends
 * `netloop.Hello` gets `netloop.Welcome` with its token, may resume a previous
 * session with that token after a reconnect, heartbeats it, and receives
 * `netloop.Expired` before the server closes it when the session expires. Any
 * traffic counts as activity; a silent connection expires after `ttlMs`.
 *
 * A store that does not answer (Redis down) is visible, never a silence: on
 * start-up the command line prints whether the store answered (its kind and
 * the error code); a netloop client that cannot get a session receives
 * `netloop.Error` with the code (`NETLOOP_STORE_UNAVAILABLE`), then a graceful
 * close, and reconnects later. A cellnet client cannot be told: it is closed
 * by the binding's handshake deadline (10 s).
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

import {
  EventLoop,
  ErrorCode,
  FileStore,
  FramedServer,
  NetloopError,
  SessionRegistry,
  bindSessions,
  closeOnSignals,
  connectionProbe,
  isNetloopError,
} from 'netloop';
import type {
  AnyFramedServer,
  Client,
  CloseOptions,
  CloseReason,
  FramedClient,
  FramedMessage,
  NoticeBuilder,
  SessionBinding,
  SessionStore,
  SoftOutputLimit,
} from 'netloop';
import { consoleLogger, quietLogger } from 'netloop/ops';
import type { Logger } from 'netloop/ops';
import { checkIntegerOption } from '../shared/cli.js';
import { CHAT_SERVER_DEFAULTS } from './args.js';
import { CHAT_DEFAULT_HOST, CHAT_DEFAULT_PORT, MAX_ACK_CONTENT_BYTES, NETLOOP_CHAT_NAMES, createChatProtocol } from './protocol.js';
import type { ChatProtocol, Hello } from './protocol.js';

export { CHAT_SERVER_DEFAULTS } from './args.js';

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
  /**
   * Where the chat's own events go, as structured lines (see
   * {@link CHAT_LOG_EVENTS}); default none. netloop's events (accepts,
   * closes, limits) are logged by `createLogSubscriber` from `netloop/ops`.
   */
  logger?: Logger;
  /**
   * Receives the chat's events as plain lines (a `consoleLogger` writing to
   * this function, every level); used when `logger` is not given. Default none.
   */
  log?: ((line: string) => void) | null;
}

/**
 * The chat's own log events: `event` field, level, and the other fields.
 * Ids and codes only: never a chat line, a token or an error's message.
 *
 * ```
 *   open            debug  clientId remoteAddress remotePort      (every connection)
 *   close           debug  clientId reason code                   (every close)
 *   hello           info   clientId sessionId resumed userName    (a netloop client's session)
 *   expired         info   clientId sessionId reason              (notice, then close)
 *   replaced        info   clientId sessionId reason
 *   refused         warn   clientId code                          (no session: netloop.Error, then close)
 *   message-dropped warn   clientId reason=too-long bytes max
 *   session-error   error  clientId operation code
 * ```
 *
 * `clientId` is the `Id` the connection's chat lines carry (its connection
 * id, plus `idBase`).
 */
export const CHAT_LOG_EVENTS = Object.freeze(['open', 'close', 'hello', 'expired', 'replaced', 'refused', 'message-dropped', 'session-error'] as const);

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
  /** Clients bound to a session. */
  sessions: number;
}

/**
 * What the chat keeps per connection, in `client.context` (the session
 * itself is the binding's).
 *
 * ```
 *   { id, idBytes (Id as int64 LE), logId (Id as a log field), netloop (said Hello),
 *     sessionId / token (of the session bound, for the Welcome),
 *     gate (session work under way; messages wait behind it),
 *     failure (the code of the login on connect that failed, or null) }
 * ```
 */
interface ChatPeer {
  readonly id: bigint;
  readonly idBytes: Buffer;
  /** `id` as a JSON number when it is a safe integer (else its decimal string): log lines cannot hold a bigint. */
  readonly logId: number | string;
  netloop: boolean;
  sessionId: string | null;
  token: string | null;
  gate: Promise<void> | null;
  failure: string | null;
}

/** See the module comment. */
export class ChatServer {
  /** The loop the server runs on (its own). */
  readonly loop: EventLoop;
  /** The listening server, framed with the chat protocol. */
  readonly server: AnyFramedServer;
  /** The sessions of this process. */
  readonly registry: SessionRegistry;
  /** The registry bound to the server: logins, resumes, heartbeats, expiry notices. */
  readonly sessions: SessionBinding;
  /** The message set. */
  readonly protocol: ChatProtocol;
  readonly #publish: (frame: Buffer) => void;
  readonly #logger: Logger;
  readonly #idBase: bigint;
  /** Session work under way, awaited by close(). */
  readonly #pending = new Set<Promise<void>>();
  #batch: Buffer[] = [];
  #batchBytes = 0;
  #batchQueued = false;
  #received = 0;
  #deliveries = 0;
  readonly #closes: Partial<Record<CloseReason, number>> = {};
  #closing: Promise<void> | null = null;
  readonly #flushBatch = (): void => this.#deliverBatch();

  private constructor(loop: EventLoop, server: AnyFramedServer, registry: SessionRegistry, protocol: ChatProtocol, options: ChatServerOptions) {
    this.loop = loop;
    this.server = server;
    this.registry = registry;
    this.protocol = protocol;
    this.#publish = options.publish ?? ((frame) => this.broadcast(frame));
    this.#logger = options.logger ?? lineLogger(options.log ?? null);
    this.#idBase = BigInt(checkIntegerOption('idBase', options.idBase ?? 0, 0, Number.MAX_SAFE_INTEGER));
    // A netloop client is told in its own format. A cellnet client closes on
    // any id it does not know, so it gets no notice (null): the binding then
    // closes it at once, dropping output still queued to it.
    const notice: NoticeBuilder = ({ client, reason }) =>
      (client.context as ChatPeer).netloop ? { type: NETLOOP_CHAT_NAMES.EXPIRED, payload: { reason } } : null;
    // Bound before the chat's own 'connection' listener, so a client has its slot when it logs in.
    this.sessions = bindSessions(server, registry, { notice, connectionPrefix: options.connectionPrefix ?? '' });
    this.sessions.on('expired', ({ client, session, reason }) => {
      if (client !== null) this.#logger.info({ event: 'expired', clientId: peerOf(client).logId, sessionId: session.id, reason }, 'session expired');
    });
    this.sessions.on('replaced', ({ client, session, reason }) => {
      if (client !== null) this.#logger.info({ event: 'replaced', clientId: peerOf(client).logId, sessionId: session.id, reason }, 'session replaced');
    });
    this.sessions.on('error', ({ error, operation }) =>
      this.#logger.error({ event: 'session-error', operation, code: errorCode(error) }, 'session work failed'),
    );
    server.on('connection', (client: FramedClient) => this.#onConnection(client));
    server.on('close', (client: FramedClient, reason: CloseReason, error?: NetloopError) => {
      this.#closes[reason] = (this.#closes[reason] ?? 0) + 1;
      this.#logger.debug({ event: 'close', clientId: peerOf(client).logId, reason, code: error?.code }, 'chat connection closed');
    });
  }

  /** Starts a chat server on its own loop; resolves once it listens. */
  static async start(options: ChatServerOptions = {}): Promise<ChatServer> {
    const ttlMs = checkIntegerOption('ttlMs', options.ttlMs ?? CHAT_SERVER_DEFAULTS.ttlMs, 4, 2 ** 31 - 1);
    const loop = new EventLoop();
    const registry = new SessionRegistry({
      ...(options.store !== undefined ? { store: options.store } : {}),
      ttlMs,
      resumeWindowMs: options.resumeWindowMs ?? CHAT_SERVER_DEFAULTS.resumeWindowMs,
      granularityMs: options.granularityMs ?? Math.max(1, Math.min(1_000, Math.floor(ttlMs / 4))),
      // The binding audits on the loop's timer, and answers for this process's connections.
      autoAudit: false,
      isConnectionAlive: connectionProbe(loop, options.connectionPrefix ?? ''),
    });
    const protocol = createChatProtocol();
    let self: ChatServer | null = null;
    try {
      const server = await new FramedServer(loop, {
        host: options.host ?? CHAT_DEFAULT_HOST,
        port: options.port ?? CHAT_DEFAULT_PORT,
        maxConnections: options.maxConnections ?? CHAT_SERVER_DEFAULTS.maxConnections,
        maxOutputBytes: options.maxOutputBytes ?? CHAT_SERVER_DEFAULTS.maxOutputBytes,
        softOutputLimit: options.softOutputLimit === undefined ? CHAT_SERVER_DEFAULTS.softOutputLimit : options.softOutputLimit,
        // Liveness is the session's business (TTL, heartbeats, expiry notice):
        // a cellnet client that only listens is not closed by a read timeout.
        idleTimeoutMs: 0,
        // A cellnet client cannot answer netloop's application ping (keepAlive), so a
        // vanished host is found by the kernel's keep-alive probes instead.
        tcpKeepAliveMs: 60_000,
        backlog: 4096,
        layout: protocol.layout,
        registry: protocol.registry,
        // Accepting starts nothing: `self` is set before the first connection's first message.
        onMessage: (client, message) => self!.#onMessage(client, message),
      }).listen();
      self = new ChatServer(loop, server, registry, protocol, options);
      return self;
    } catch (err) {
      await loop.close();
      await registry.close();
      throw err;
    }
  }

  /** The bound port. */
  get port(): number {
    return this.server.port;
  }

  /**
   * Queues a ChatACK frame (or several, concatenated) for every client with a
   * session. Frames queued in one turn of the loop leave together: one append
   * per client, so one socket write per client per turn, whatever the number
   * of messages.
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
      sessions: this.sessions.stats().bound,
    };
  }

  /**
   * Stops: no new connections; every client flushes what is queued and is
   * closed (`server-close`, destroyed after `flushTimeoutMs`, default 2 s);
   * sessions are detached (resumable within their window) and written to
   * their store. Resolves once; a {@link closeOnSignals} target.
   */
  close(options: CloseOptions = {}): Promise<void> {
    return (this.#closing ??= (async () => {
      await this.loop.close({ flushTimeoutMs: 2_000, ...options });
      while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
      // The binding waits for the detaches of the closes; then the registry writes the sessions behind.
      await this.sessions.close();
      await this.registry.close();
    })());
  }

  #deliverBatch(): void {
    this.#batchQueued = false;
    const frames = this.#batch;
    if (frames.length === 0) return;
    const buf = frames.length === 1 ? frames[0]! : Buffer.concat(frames, this.#batchBytes);
    this.#batch = [];
    this.#batchBytes = 0;
    // A client past its hard limit is closed by the reactor ('output-limit'); the others go on.
    this.#deliveries += this.sessions.broadcast(buf) * frames.length;
  }

  #onConnection(client: FramedClient): void {
    const id = this.#idBase + BigInt(client.id);
    const idBytes = Buffer.allocUnsafe(8);
    idBytes.writeBigInt64LE(id, 0);
    const logId = id <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(id) : String(id);
    const peer: ChatPeer = { id, idBytes, logId, netloop: false, sessionId: null, token: null, gate: null, failure: null };
    client.context = peer;
    this.#logger.debug({ event: 'open', clientId: peer.logId, remoteAddress: client.remoteAddress, remotePort: client.remotePort }, 'chat connection opened');
    // Every connection gets a session at once: a cellnet client's is anonymous and never mentioned to it.
    this.#gate(peer, async () => {
      try {
        const created = await this.sessions.login(client);
        peer.sessionId = created.session.id;
        peer.token = created.token;
      } catch (err) {
        // The hello (waiting behind this gate, or still to come) is answered with netloop.Error.
        peer.failure = errorCode(err);
        throw err;
      }
    });
  }

  /**
   * The framing layer's handler. While session work of this connection is
   * under way, its messages wait behind it, in order (the framing layer
   * counts them as pending: read backpressure), so the sender is bound (it
   * receives its own ACKs) and its Welcome precedes what follows its Hello.
   */
  #onMessage(client: FramedClient, message: FramedMessage): void | Promise<void> {
    const peer = client.context as ChatPeer;
    if (peer.gate !== null) return peer.gate.then(() => this.#onMessage(client, message));
    if (client.closing || client.closed) return;
    const p = this.protocol;
    if (message.type === p.ChatREQ.id) this.#onChat(peer, message.value);
    else if (message.type === p.Hello.id) this.#onHello(client, peer, message.payload as Hello);
    else if (message.type === p.Heartbeat.id) {
      // The binding refreshed the session on the bytes already; this answers with the time left.
      if (peer.netloop) client.send(p.HeartbeatACK, { ttlMs: Math.max(0, Math.floor(this.sessions.heartbeat(client))) });
    } else {
      // A server-to-client message sent to the server: the peer does not speak this protocol.
      throw new NetloopError(ErrorCode.UNKNOWN_TYPE, `${message.name ?? message.type} is not a client message`, {
        details: { type: message.type },
      });
    }
  }

  /**
   * ChatREQ's value is `uint16 LE n · n bytes` (the registry checked it);
   * ChatACK's is the same string followed by `Id int64 LE`. The ACK is built
   * from the REQ's bytes as they are: cellnet's strings are bytes, so content
   * that is not valid UTF-8 is relayed unchanged, and nothing is re-encoded.
   */
  #onChat(peer: ChatPeer, value: Buffer): void {
    this.#received++;
    const contentBytes = value.length - 2;
    if (contentBytes > MAX_ACK_CONTENT_BYTES) {
      this.#logger.warn(
        { event: 'message-dropped', clientId: peer.logId, reason: 'too-long', bytes: contentBytes, max: MAX_ACK_CONTENT_BYTES },
        'chat line too long for a ChatACK',
      );
      return;
    }
    const valueLength = value.length + 8;
    const frame = Buffer.allocUnsafe(4 + valueLength);
    frame.writeUInt16LE(valueLength + 2, 0);
    frame.writeUInt16LE(this.protocol.ChatACK.id, 2);
    value.copy(frame, 4);
    peer.idBytes.copy(frame, 4 + value.length);
    this.#publish(frame);
  }

  /** `netloop.Hello`: the client speaks netloop's messages; resume its session if it names one, then welcome it. */
  #onHello(client: FramedClient, peer: ChatPeer, hello: Hello): void {
    peer.netloop = true;
    this.#gate(peer, async () => {
      // The login on connect failed (its store did not answer): say so and close, rather than
      // wait for a store that may stay down. The client says hello again on its next connection.
      if (peer.failure !== null) return this.#refuse(client, peer, peer.failure);
      let resumed = false;
      if (hello.token !== '') {
        // The connection's anonymous session gives way to the one being resumed.
        await this.sessions.logout(client, 'superseded');
        peer.sessionId = peer.token = null;
        try {
          const r = await this.sessions.resume(client, hello.token);
          peer.sessionId = r.session.id;
          peer.token = hello.token;
          resumed = true;
        } catch (err) {
          // Unknown, expired or from another store: a new session, as for a first hello.
          if (!isNetloopError(err, ErrorCode.BAD_TOKEN)) throw err;
          const created = await this.sessions.login(client);
          peer.sessionId = created.session.id;
          peer.token = created.token;
        }
      }
      if (peer.sessionId === null || peer.token === null) return;
      const name = hello.name.slice(0, 64);
      if (name !== '') await this.registry.updateMetadata(peer.sessionId, { name }).catch(() => undefined);
      this.#logger.info(
        { event: 'hello', clientId: peer.logId, sessionId: peer.sessionId, resumed, userName: name === '' ? undefined : name },
        resumed ? 'session resumed' : 'session started',
      );
      if (client.closing || client.closed) return;
      const ttlMs = this.registry.options.ttlMs;
      client.send(this.protocol.Welcome, {
        session: peer.sessionId,
        token: peer.token,
        id: peer.id,
        resumed,
        heartbeatMs: Math.max(1, Math.floor(ttlMs / 3)),
        ttlMs,
        pid: process.pid,
      });
    }, (err) => this.#refuse(client, peer, errorCode(err)));
  }

  /**
   * A netloop client that cannot have a session (`code` says why: its store
   * did not answer, the login policy refused, ...) receives `netloop.Error`
   * with the code, then a graceful close: flush, FIN, and the close once the
   * client closes too (bounded by the server's shutdown timeout). Its
   * messages meanwhile are ignored (the client is closing).
   */
  #refuse(client: FramedClient, peer: ChatPeer, code: string): void {
    this.#logger.warn({ event: 'refused', clientId: peer.logId, code }, 'no session for this client');
    if (client.closing || client.closed) return;
    client.send(this.protocol.Error, { code, message: refusalMessage(code) });
    client.end();
  }

  /**
   * Runs session work of one connection after the previous one; its messages
   * wait meanwhile (see #onMessage). A failure is logged, then handed to
   * `onError` (whose own throw is logged too: the gate never rejects).
   */
  #gate(peer: ChatPeer, work: () => Promise<void>, onError?: (err: unknown) => void): void {
    const run = (peer.gate ?? Promise.resolve()).then(work).catch((err: unknown) => {
      this.#logger.error({ event: 'session-error', clientId: peer.logId, operation: 'session', code: errorCode(err) }, 'session work failed');
      try {
        onError?.(err);
      } catch (again) {
        this.#logger.error({ event: 'session-error', clientId: peer.logId, operation: 'refuse', code: errorCode(again) }, 'session work failed');
      }
    });
    peer.gate = run;
    this.#pending.add(run);
    // Registered before any waiting message, so those see the gate open (or the next one).
    void run.then(() => {
      this.#pending.delete(run);
      if (peer.gate === run) peer.gate = null;
    });
  }
}

/** The chat's events as plain lines for a line function (every level), or nothing. */
function lineLogger(log: ((line: string) => void) | null): Logger {
  if (log === null) return quietLogger;
  return consoleLogger({ level: 'debug', sink: { write: (line: string) => log(line.trimEnd()) } });
}

function peerOf(client: Client): ChatPeer {
  return client.context as ChatPeer;
}

/** The stable code of a failure: a `NetloopError`'s own, else `NETLOOP_HANDLER_ERROR` (a fault of this code). */
function errorCode(err: unknown): string {
  return isNetloopError(err) ? err.code : ErrorCode.HANDLER_ERROR;
}

/** The sentence of a `netloop.Error`: fixed per code, so nothing of the store's or the client's bytes reaches the client. */
function refusalMessage(code: string): string {
  switch (code) {
    case ErrorCode.STORE_UNAVAILABLE:
    case ErrorCode.STORE_CLOSED:
    case ErrorCode.STORE_IO:
      return 'no session: the session store did not answer; try again later';
    case ErrorCode.LOGIN_REFUSED:
      return 'no session: the login policy refused a new session for this user';
    case ErrorCode.SESSION_LIMIT:
      return 'no session: the server holds as many sessions as it may';
    default:
      return 'no session could be created or resumed';
  }
}
