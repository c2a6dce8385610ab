/**
 * The binding of a {@link SessionRegistry} to a server (raw or framed): logins and
 * resumes bind sessions to clients, traffic refreshes them, every close
 * detaches them, and a session that ends while its client is connected is
 * told so in full before the connection closes.
 *
 * ```
 *   Server events                         SessionBinding                         SessionRegistry
 *   'connection' ──▶ slot (handshake deadline in the loop's timer queue)
 *   read tap (each chunk, before delivery) ──▶ slot.handle.heartbeat(loop.now()), recordIn   (raw or framed)
 *   frame observer (each frame, before dispatch) ──▶ heartbeatTypes: heartbeat; recordIn(0, 1)   (framed)
 *   login(client) / resume(client, token) ─────────────────────────────▶ create / resume
 *   'close' (every reason, once) ──▶ detach(connectionId, reason) ─────▶ kept for resume, or closed
 *   loop.runEvery(granularityMs) ──────────────────────────────────────▶ audit()
 *   kick ◀── expired / replaced / kicked / deleted / closed event with a connection of ours
 *            (decided here, or in another process sharing the store: its change reaches
 *             the registry through the store's feed, or a reconciliation finds it)
 *     append notice ▶ enableWriting ▶ setWriteCompleteCallback(remove) ▶ updateClient
 *     notice deadline (noticeTimeoutMs) ▶ destroy if the peer never reads
 * ```
 *
 * The binding attaches through the seams the server offers (its events, a
 * read tap, a framed server's frame observers, a framed client's
 * `markAuthenticated()`): it adds no listener to a client's socket and
 * reads no internals of the server.
 *
 * Per connection the binding keeps ONE object, its {@link ClientSlot}, which
 * is at once the record of the client's session and its entry in the loop's
 * shared timer queue (handshake deadline, then notice deadline): no Node
 * timer and no closure per connection. `client.context` stays free for the
 * application.
 *
 * ```
 *   slots:  Map<clientId, ClientSlot>          every live client of the server
 *   byUser: Map<userId, Set<ClientSlot>>       bound clients with a user id
 *   ClientSlot { TimerEntry fields, client, handle | null, flags, closeReason }
 * ```
 *
 * This module is one cohesive state machine (a slot's LOGGING_IN, NOTIFYING
 * and GONE states, its one deadline entry, and the registry's events acting
 * on them), so it stays in one file past the usual size; its public types
 * are in `binding-types.ts`, the notices in `notices.ts`, the liveness probe
 * in `connection-probe.ts`.
 *
 * @module
 */

import type { Client } from '../reactor/client.js';
import type { CloseReason } from '../reactor/close-reason.js';
import { sessionCloseReason } from '../reactor/close-reason.js';
import type { EventLoop, TimerId } from '../reactor/event-loop.js';
import { observeSessions } from './observe-sessions.js';
import { ErrorCode, NetloopError } from '../core/errors.js';
import { checkInteger } from '../core/validate.js';
import { jsonLineNotice } from './notices.js';
import { DEFAULT_HANDSHAKE_TIMEOUT_MS, DEFAULT_NOTICE_TIMEOUT_MS } from './binding-types.js';
import type {
  FrameEncoder,
  LoginInput,
  SessionBindingEventName,
  SessionBindingEvents,
  SessionBindingOptions,
  SessionBindingPayloads,
  SessionBindingStats,
  WithClient,
} from './binding-types.js';

export type {
  FrameEncoder,
  LoginInput,
  SessionBindingEventName,
  SessionBindingEvents,
  SessionBindingOptions,
  SessionBindingPayloads,
  SessionBindingStats,
  WithClient,
} from './binding-types.js';
import type { NoticeBuilder, OutboundMessage, SessionEndKind } from './notices.js';
import { clientIdOf } from './connection-probe.js';
import { TypedEmitter, reportFault } from '../core/emitter.js';
import { FramedClient } from '../framing/framed-client.js';
import type { FrameObserver } from '../framing/framed-client.js';
import { FramedServer } from '../framing/framed-server.js';
import type { AnyServer } from '../reactor/server.js';
import type {
  CreatedSession,
  RegistryErrorEvent,
  ResumedSession,
  SessionEndEvent,
  SessionEvents,
  SessionHandle,
  SessionInfo,
  SessionRegistry,
  SessionRegistryEvents,
} from '../session/session-registry.js';
import type { TimerEntry } from '../reactor/timer-queue.js';

const MAX_MS = 2 ** 31 - 1;

// ── Per-connection slot ─────────────────────────────────────────────────────

/** Slot flags. */
const LOGGING_IN = 1;
const NOTIFYING = 2;
const GONE = 4;

/**
 * What the binding keeps per client: its session handle and its one deadline
 * entry in the loop's timer queue (the handshake deadline until a session is
 * bound, the notice deadline while a notice flushes).
 */
class ClientSlot implements TimerEntry {
  deadline = 0;
  seq = 0;
  index = -1;
  interval = 0;
  fn: (slot: ClientSlot) => void = onHandshakeDeadline;
  arg: unknown;
  readonly client: Client;
  readonly binding: SessionBinding;
  handle: SessionHandle | null = null;
  flags = 0;
  closeReason: CloseReason = 'session-expired';
  /**
   * The end of a session of this connection heard while its login was under
   * way, applied when the login binds that session. The registry delivers
   * its events from a microtask and the login resumes in another, so a
   * session replaced (or deleted) right after its creation could otherwise
   * be bound after its end was heard, and its client never told.
   */
  endedDuringLogin: { kind: SessionEndKind; reason: string; session: SessionInfo } | null = null;

  constructor(binding: SessionBinding, client: Client) {
    this.binding = binding;
    this.client = client;
    this.arg = this;
  }
}

function onHandshakeDeadline(slot: ClientSlot): void {
  slot.binding._handshakeExpired(slot);
}

function onNoticeDeadline(slot: ClientSlot): void {
  slot.binding._noticeExpired(slot);
}

/** The servers already bound: one binding per server. */
const boundServers = new WeakSet<AnyServer>();

// ── The binding ─────────────────────────────────────────────────────────────

/**
 * Binds `registry` to `server`; see the module documentation and the README
 * section `sessions`. The registry must run on the loop's clock and leave the
 * audit to the binding (`autoAudit: false`).
 *
 * ```ts
 * const loop = new EventLoop();
 * const registry = new SessionRegistry({ ttlMs: 60_000, autoAudit: false, isConnectionAlive: connectionProbe(loop) });
 * const server = await new Server(loop, { port: 7000, idleTimeoutMs: 90_000 }).listen();
 * const sessions = bindSessions(server, registry, { handshakeTimeoutMs: 5_000 });
 * server.on('data', async (client, chunk) => {
 *   if (sessions.sessionOf(client) !== undefined) return; // logged in: not a login line
 *   try {
 *     const { token } = await sessions.login(client, { userId: String(chunk).trim() });
 *     client.write(token + '\n');
 *   } catch (err) {
 *     // A login line sent twice: the first login goes on. Anything else (the store
 *     // is down: NETLOOP_STORE_UNAVAILABLE) closes this client with 'handler-error'.
 *     if (!isNetloopError(err, ErrorCode.ALREADY_BOUND)) throw err;
 *   }
 * });
 * ```
 *
 * @throws NetloopError `NETLOOP_INVALID_OPTION` for a bad option, a registry with
 *   `autoAudit` on or on another clock, or a server already bound;
 *   `NETLOOP_REGISTRY_CLOSED` / `NETLOOP_LOOP_CLOSED` when either is closed.
 */
export function bindSessions(server: AnyServer, registry: SessionRegistry, options: SessionBindingOptions = {}): SessionBinding {
  return new SessionBinding(server, registry, options);
}

/**
 * A registry bound to a server (create with {@link bindSessions}).
 *
 * Events ({@link SessionBindingEvents}; `on`, `once`, `off`, as every
 * netloop emitter): the registry's `created`, `resumed`, `detached`,
 * `expired`, `replaced`, `closed` and `deleted`, each with `client` (the
 * client of this server concerned, or null), delivered after the binding has
 * acted on them (the notice is queued); and `error` (see
 * {@link SessionBindingPayloads.error}).
 * Every listener is called guarded, and so are the registry's listeners
 * while the binding is bound: a listener that throws or whose promise
 * rejects does not stop the others, and closes the client its event
 * concerns (`'handler-error'`, `NETLOOP_HANDLER_ERROR` with the fault as
 * `cause` and `details.clientId`) when that client is live, or else goes to
 * the `error` event; nothing is ever thrown into the loop or left as an
 * unhandled rejection.
 */
export class SessionBinding extends TypedEmitter<SessionBindingEvents> {
  /** The server whose clients are bound. */
  readonly server: AnyServer;
  /** The registry sessions live in. */
  readonly registry: SessionRegistry;
  /** The server's loop. */
  readonly loop: EventLoop;
  /** Resolved options. */
  readonly options: Readonly<{
    handshakeTimeoutMs: number;
    noticeTimeoutMs: number;
    refreshOn: 'traffic' | 'heartbeat';
    recordTraffic: boolean;
    connectionPrefix: string;
  }>;

  readonly #slots = new Map<number, ClientSlot>();
  readonly #byUser = new Map<string, Set<ClientSlot>>();
  readonly #pending = new Set<Promise<unknown>>();
  readonly #unsubscribe: Array<() => void> = [];
  readonly #notice: NoticeBuilder | null;
  readonly #encodeFrame: FrameEncoder | null;
  /** `heartbeatTypes` given by id, and by name. */
  readonly #heartbeatIds: ReadonlySet<number>;
  readonly #heartbeatNames: ReadonlySet<string>;
  /** The observer of the server's framing, or null (no framing, or nothing to count). */
  readonly #frameObserver: FrameObserver | null = null;
  readonly #onTraffic: boolean;
  readonly #record: boolean;
  #bound = 0;
  #notifying = 0;
  #auditTimer: TimerId | null;
  #closing: Promise<void> | null = null;

  /** @internal Use {@link bindSessions}. */
  constructor(server: AnyServer, registry: SessionRegistry, options: SessionBindingOptions) {
    super();
    const loop = server.loop;
    if (registry.closed) throw new NetloopError(ErrorCode.REGISTRY_CLOSED, 'cannot bind a closed session registry');
    if (server.closing || loop.closing) throw new NetloopError(ErrorCode.LOOP_CLOSED, 'cannot bind sessions to a closing server');
    if (registry.options.autoAudit) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'the registry must be created with autoAudit: false (the binding runs its audit on the loop)', {
        details: { option: 'autoAudit' },
      });
    }
    if (registry.clock !== loop.clock) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'the registry and the loop must share one clock', { details: { option: 'clock' } });
    }
    if (boundServers.has(server)) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'this server already has a session binding', { details: { option: 'server' } });
    }
    // A peer without a session is held to the framing layer's smaller pre-authentication frame limit.
    if (server instanceof FramedServer) server.requireAuthentication = true;
    const refreshOn = options.refreshOn ?? 'traffic';
    if (refreshOn !== 'traffic' && refreshOn !== 'heartbeat') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, `refreshOn must be 'traffic' or 'heartbeat'`, {
        details: { option: 'refreshOn', value: String(refreshOn) },
      });
    }
    const heartbeatTypes = options.heartbeatTypes ?? [];
    if (!Array.isArray(heartbeatTypes) || heartbeatTypes.some((t) => typeof t !== 'number' && typeof t !== 'string')) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'heartbeatTypes must be an array of message ids or names', {
        details: { option: 'heartbeatTypes' },
      });
    }
    const prefix = options.connectionPrefix ?? '';
    if (typeof prefix !== 'string' || prefix.length > 128) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'connectionPrefix must be a string of at most 128 characters', {
        details: { option: 'connectionPrefix' },
      });
    }
    for (const [name, fn] of [
      ['notice', options.notice],
      ['encodeFrame', options.encodeFrame],
    ] as const) {
      if (fn !== undefined && fn !== null && typeof fn !== 'function') {
        throw new NetloopError(ErrorCode.INVALID_OPTION, `${name} must be a function`, { details: { option: name } });
      }
    }
    const recordTraffic = options.recordTraffic ?? true;
    if (typeof recordTraffic !== 'boolean') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'recordTraffic must be a boolean', { details: { option: 'recordTraffic' } });
    }
    this.options = Object.freeze({
      handshakeTimeoutMs: checkInteger('handshakeTimeoutMs', options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS, 0, MAX_MS),
      noticeTimeoutMs: checkInteger('noticeTimeoutMs', options.noticeTimeoutMs ?? DEFAULT_NOTICE_TIMEOUT_MS, 1, MAX_MS),
      refreshOn,
      recordTraffic,
      connectionPrefix: prefix,
    });
    this.server = server;
    this.registry = registry;
    this.loop = loop;
    const framed = server instanceof FramedServer;
    // The server's own codec: the registry serializes, the encoder builds one frame (once per broadcast).
    this.#encodeFrame = options.encodeFrame ?? (framed ? (type, payload) => server.encodeMessage(type, payload) : null);
    this.#notice = options.notice !== undefined ? options.notice : framed ? null : jsonLineNotice;
    this.#heartbeatIds = new Set(heartbeatTypes.filter((t): t is number => typeof t === 'number'));
    this.#heartbeatNames = new Set(heartbeatTypes.filter((t): t is string => typeof t === 'string'));
    this.#onTraffic = refreshOn === 'traffic';
    this.#record = recordTraffic;

    boundServers.add(server);
    server.on('connection', this.#onConnection);
    server.addReadTap(this.#onRead);
    if (framed && (recordTraffic || (refreshOn === 'heartbeat' && heartbeatTypes.length > 0))) {
      // Frames are observed before dispatch, whatever handles them: the
      // 'message' event is not emitted when the framing has onMessage or onRawFrame.
      const observer: FrameObserver = (client, type) => this.#onFrame(client, type);
      this.#frameObserver = observer;
      server.addFrameObserver(observer);
    }
    server.on('close', this.#onClose);
    for (const client of server.clients()) this.#onConnection(client);
    // Each registry subscription is kept with its undo (registry.off), for close().
    const sub = <E extends keyof SessionEvents>(name: E, fn: SessionRegistryEvents[E]): (() => void) => {
      registry.on(name, fn);
      return () => void registry.off(name, fn);
    };
    this.#unsubscribe.push(
      sub('created', (p) => this.#emit('created', { ...p, client: this.#clientOf(p.session.connectionId) })),
      sub('resumed', (p) => this.#emit('resumed', { ...p, client: this.#clientOf(p.session.connectionId) })),
      sub('detached', (p) => this.#emit('detached', { ...p, client: null })),
      sub('expired', (p) => this.#onEnded('expired', p)),
      sub('replaced', (p) => this.#onEnded('replaced', p)),
      sub('closed', (p) => this.#onEnded('closed', p)),
      sub('deleted', (p) => this.#onEnded('deleted', p)),
      sub('kicked', (p) => this.#onEnded('kicked', p)),
      sub('error', this.#onRegistryError),
      // Expiries go to the `netloop:session:expire` diagnostics channel (a no-op without subscribers).
      observeSessions(registry),
    );
    this.#auditTimer = loop.runEvery(registry.options.granularityMs, this.#audit);
  }

  // ── Login, resume, logout ─────────────────────────────────────────────────

  /**
   * Creates a session for `client` (its connection id and remote address are
   * the client's; the login policy applies) and binds it: the handshake
   * deadline is cancelled and traffic now refreshes the session. Resolves the
   * session, its token (send it to the client; it is never visible again) and
   * its handle.
   *
   * Errors: those of {@link SessionRegistry.create} (`NETLOOP_LOGIN_REFUSED`,
   * `NETLOOP_SESSION_LIMIT`, `NETLOOP_INVALID_VALUE`, ...);
   * `NETLOOP_ALREADY_BOUND` when the client already has a session or a login
   * (or resume) under way, e.g. a peer that sent its login twice (the first
   * login goes on); `NETLOOP_CLIENT_CLOSED` when the client is not a live client of
   * this server, or closed meanwhile (the new session is then detached at once);
   * `NETLOOP_LOOP_CLOSED` once the binding is closed.
   */
  async login(client: Client, input: LoginInput = {}): Promise<CreatedSession> {
    const slot = this.#beginLogin(client);
    let created: CreatedSession;
    try {
      created = await this.registry.create({
        ...input,
        connectionId: this.#connectionId(client),
        remoteAddress: client.remoteAddress ?? null,
        remotePort: client.remotePort ?? null,
      });
    } finally {
      slot.flags &= ~LOGGING_IN;
    }
    this.#finishLogin(slot, created.handle);
    return created;
  }

  /**
   * Resumes the session whose token this is on `client`, and closes the
   * connection it was bound to before, if that one is still ours and open (it
   * receives the notice of kind `'replaced'`, reason `'resumed-elsewhere'`;
   * another process's is closed by that process, through a shared store's
   * feed). This is also how a session created without a connection
   * (`registry.create({ userId })`, e.g. by an HTTP login) is attached to a
   * client later: it accepts heartbeats meanwhile and lives by its TTL.
   *
   * Errors: `NETLOOP_BAD_TOKEN` for a wrong, malformed, expired or deleted
   * token (never saying which); otherwise as {@link SessionBinding.login}.
   */
  async resume(client: Client, token: string): Promise<ResumedSession> {
    const slot = this.#beginLogin(client);
    let resumed: ResumedSession;
    try {
      resumed = await this.registry.resume(token, this.#connectionId(client), client.remoteAddress ?? null, client.remotePort ?? null);
    } finally {
      slot.flags &= ~LOGGING_IN;
    }
    const prev = resumed.previousConnectionId === null ? undefined : this.#slots.get(clientIdOf(resumed.previousConnectionId, this.options.connectionPrefix));
    if (prev !== undefined && prev !== slot && prev.handle === resumed.handle) {
      this.#unbind(prev);
      this.#kick(prev, 'replaced', 'resumed-elsewhere', resumed.session);
    }
    this.#finishLogin(slot, resumed.handle);
    return resumed;
  }

  /**
   * Ends the client's session (registry `delete`, event `deleted` with
   * `reason`) and keeps the connection open, unbound (a new handshake
   * deadline starts). Resolves false when the client had no session, or
   * when the session had been resumed on another connection meanwhile (in
   * another process): that session is left to it.
   */
  async logout(client: Client, reason = 'logout'): Promise<boolean> {
    const slot = this.#slots.get(client.id);
    if (slot === undefined || slot.client !== client || slot.handle === null) return false;
    const handle = slot.handle;
    this.#unbind(slot);
    this.#armHandshake(slot);
    return this.registry.delete(handle.id, reason, { connectionId: this.#connectionId(client) });
  }

  /**
   * Ends the client's session, if any, and closes the client
   * (`'session-kicked'`) after a notice of kind `'kicked'` has been flushed
   * (as on expiry). The session is ended with `registry.kick(id, reason)`
   * (event `kicked`). Resolves false when the client is not a live client of
   * this server or is already being closed. To kick a session whose client
   * may be in another process sharing the store, call `registry.kick(id)`:
   * the process holding the connection closes it.
   */
  async kick(client: Client, reason = 'kicked'): Promise<boolean> {
    const slot = this.#slots.get(client.id);
    if (slot === undefined || slot.client !== client || (slot.flags & (NOTIFYING | GONE)) !== 0) return false;
    const handle = slot.handle;
    const session = handle !== null ? handle.snapshot() : null;
    if (handle !== null) this.#unbind(slot);
    this.#kick(slot, 'kicked', reason, session);
    if (handle !== null) await this.registry.kick(handle.id, reason).catch((err: unknown) => this.#fail('detach', err));
    return true;
  }

  // ── Lookups and traffic ───────────────────────────────────────────────────

  /** The session handle bound to `client`, or undefined. */
  sessionOf(client: Client): SessionHandle | undefined {
    const slot = this.#slots.get(client.id);
    return slot === undefined || slot.client !== client || slot.handle === null ? undefined : slot.handle;
  }

  /** The live client of this server a session is bound to, or undefined. */
  clientOf(session: SessionHandle | SessionInfo): Client | undefined {
    return this.#clientOf(session.connectionId) ?? undefined;
  }

  /** The clients of this server bound to sessions of `userId`. */
  clientsOfUser(userId: string): Client[] {
    const set = this.#byUser.get(userId);
    return set === undefined ? [] : [...set].map((s) => s.client);
  }

  /**
   * Refreshes the client's session now (an application-level heartbeat):
   * returns the ms left, or -1 when the client has no live session (a
   * heartbeat never revives an expired one).
   */
  heartbeat(client: Client): number {
    const slot = this.#slots.get(client.id);
    if (slot === undefined || slot.handle === null) return -1;
    return slot.handle.heartbeat(this.loop.now());
  }

  // ── Broadcast ─────────────────────────────────────────────────────────────

  /**
   * Sends `message` to every bound client (or those whose session and client
   * pass `filter`), through each client's output buffer; the message is
   * encoded once. A slow client never stalls the others: an append past its
   * hard output limit closes that client (`'output-limit'`). Clients being
   * notified or closing are skipped. Returns how many clients it was queued for.
   */
  broadcast(message: OutboundMessage, filter?: (session: SessionHandle, client: Client) => boolean): number {
    const bytes = this.#encode(message);
    let n = 0;
    for (const slot of this.#slots.values()) {
      const h = slot.handle;
      if (h === null || (filter !== undefined && !filter(h, slot.client))) continue;
      if (this.#deliver(slot, h, bytes)) n++;
    }
    return n;
  }

  /** Sends `message` to every bound client of `userId`; as {@link SessionBinding.broadcast}. */
  sendToUser(userId: string, message: OutboundMessage): number {
    const set = this.#byUser.get(userId);
    if (set === undefined) return 0;
    const bytes = this.#encode(message);
    let n = 0;
    for (const slot of [...set]) if (slot.handle !== null && this.#deliver(slot, slot.handle, bytes)) n++;
    return n;
  }

  // ── Statistics and close ──────────────────────────────────────────────────

  /** A snapshot of what the binding holds, for monitoring and leak checks. */
  stats(): SessionBindingStats {
    let deadlines = 0;
    for (const s of this.#slots.values()) if (s.index !== -1) deadlines++;
    return {
      clients: this.#slots.size,
      bound: this.#bound,
      users: this.#byUser.size,
      deadlines,
      notifying: this.#notifying,
      pending: this.#pending.size,
      auditTimer: this.#auditTimer !== null,
    };
  }

  /** True once {@link SessionBinding.close} was called. */
  get closed(): boolean {
    return this.#closing !== null;
  }

  /**
   * Unbinds: stops the audit timer and the deadlines, stops listening to the
   * server and the registry, and detaches every session still bound (reason
   * `'binding-closed'`, kept for the resume window) so that none stays bound
   * to a connection nobody watches. Clients being notified still close once
   * their notice flushed. Neither the server nor the registry is closed.
   * Resolves once every registry call of the binding settled. Idempotent.
   */
  close(): Promise<void> {
    return (this.#closing ??= this.#close());
  }

  async #close(): Promise<void> {
    if (this.#auditTimer !== null) this.loop.cancel(this.#auditTimer);
    this.#auditTimer = null;
    for (const off of this.#unsubscribe) off();
    this.#unsubscribe.length = 0;
    this.server.off('connection', this.#onConnection);
    this.server.removeReadTap(this.#onRead);
    if (this.server instanceof FramedServer && this.#frameObserver !== null) this.server.removeFrameObserver(this.#frameObserver);
    boundServers.delete(this.server);
    const timers = this.loop._timers;
    for (const slot of this.#slots.values()) {
      if ((slot.flags & NOTIFYING) === 0) timers.remove(slot);
      if (slot.handle !== null) {
        this.#unbind(slot);
        if (!this.registry.closed) this.#track(this.registry.detach(this.#connectionId(slot.client), 'binding-closed'), 'detach');
      }
    }
    // Slots being notified stay until their client closes (their deadline still guards them).
    for (const [id, slot] of this.#slots) if ((slot.flags & NOTIFYING) === 0) this.#slots.delete(id);
    if (this.#slots.size === 0) this.server.off('close', this.#onClose);
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  // ── Internals ─────────────────────────────────────────────────────────────

  /** @internal Bytes arrived from a bound client: refresh its session (cheap: a few writes to the handle). */
  _traffic(h: SessionHandle, bytes: number): void {
    if (this.#onTraffic) h.heartbeat(this.loop.now());
    if (this.#record) h.recordIn(bytes, 0);
  }

  /** @internal The handshake deadline passed. */
  _handshakeExpired(slot: ClientSlot): void {
    const client = slot.client;
    if (slot.handle !== null || (slot.flags & (GONE | NOTIFYING)) !== 0 || client.closed) return;
    const ms = this.options.handshakeTimeoutMs;
    client.destroy(
      'handshake-timeout',
      new NetloopError(ErrorCode.HANDSHAKE_TIMEOUT, `no session was created or resumed within ${ms} ms`, {
        details: { clientId: client.id, handshakeTimeoutMs: ms },
      }),
    );
  }

  /** @internal The notice did not flush in time: the peer does not read. */
  _noticeExpired(slot: ClientSlot): void {
    const client = slot.client;
    if (client.closed) return;
    const ms = this.options.noticeTimeoutMs;
    client.destroy(
      slot.closeReason,
      new NetloopError(ErrorCode.CLOSE_TIMEOUT, `the session notice did not flush within ${ms} ms`, {
        details: { clientId: client.id, queuedBytes: client.queuedBytes, noticeTimeoutMs: ms },
      }),
    );
  }

  readonly #onConnection = (client: Client): void => {
    if (this.#slots.has(client.id)) return;
    const slot = new ClientSlot(this, client);
    this.#slots.set(client.id, slot);
    this.#armHandshake(slot);
  };

  /**
   * The server's read tap: every chunk a client reads, raw or framed, before
   * it is delivered, whatever handles it. A bound client's session is
   * refreshed (by traffic) and its bytes counted.
   */
  readonly #onRead = (client: Client, chunk: Buffer): void => {
    const slot = this.#slots.get(client.id);
    if (slot === undefined || slot.handle === null || slot.client !== client) return;
    this._traffic(slot.handle, chunk.length);
  };

  /**
   * A frame of a client was decoded (the framed server's frame observer,
   * before dispatch): its bytes were counted by the read tap; here it counts
   * as a message, and as a heartbeat when its type is one of `heartbeatTypes`.
   */
  #onFrame(client: Client, type: number): void {
    const slot = this.#slots.get(client.id);
    if (slot === undefined || slot.client !== client) return;
    const h = slot.handle;
    if (h === null) return;
    if (!this.#onTraffic && this.#isHeartbeat(type)) h.heartbeat(this.loop.now());
    if (this.#record) h.recordIn(0, 1);
  }

  readonly #onClose = (client: Client, reason: CloseReason): void => {
    const slot = this.#slots.get(client.id);
    if (slot === undefined || slot.client !== client) return;
    this.#slots.delete(client.id);
    slot.flags |= GONE;
    this.loop._timers.remove(slot);
    if ((slot.flags & NOTIFYING) !== 0) {
      slot.flags &= ~NOTIFYING;
      this.#notifying--;
    }
    if (slot.handle !== null) {
      this.#unbind(slot);
      this.#track(this.registry.detach(this.#connectionId(client), reason), 'detach');
    }
    if (this.#closing !== null && this.#slots.size === 0) this.server.off('close', this.#onClose);
  };

  readonly #audit = (): void => {
    if (this.registry.closed) return;
    this.#track(this.registry.audit(), 'audit');
  };

  /** A session ended in the registry: notify and close its client when it is one of ours. */
  #onEnded<E extends 'expired' | 'replaced' | 'closed' | 'deleted' | 'kicked'>(kind: E, p: SessionEvents[E] & SessionEndEvent): void {
    const slot = this.#slots.get(clientIdOf(p.connectionId, this.options.connectionPrefix));
    let client: Client | null = null;
    if (slot !== undefined) {
      client = slot.client;
      if (slot.handle !== null && slot.handle.id === p.session.id) {
        this.#unbind(slot);
        this.#kick(slot, kind, p.reason, p.session);
      } else if (slot.handle === null && (slot.flags & LOGGING_IN) !== 0) {
        // The login that created this session has not bound it yet: it will, then end it.
        slot.endedDuringLogin = { kind, reason: p.reason, session: p.session };
      }
    }
    this.#emit(kind, { ...p, client } as SessionBindingPayloads[E]);
  }

  #beginLogin(client: Client): ClientSlot {
    if (this.#closing !== null) throw new NetloopError(ErrorCode.LOOP_CLOSED, 'the session binding is closed');
    const slot = this.#slots.get(client.id);
    if (slot === undefined || slot.client !== client || client.closed || client.closing || (slot.flags & NOTIFYING) !== 0) {
      throw new NetloopError(ErrorCode.CLIENT_CLOSED, `client ${client.id} is not a live client of this server`, {
        details: { clientId: client.id },
      });
    }
    if (slot.handle !== null || (slot.flags & LOGGING_IN) !== 0) {
      throw new NetloopError(ErrorCode.ALREADY_BOUND, `client ${client.id} already has a session or a login under way`, {
        details: { clientId: client.id },
      });
    }
    slot.flags |= LOGGING_IN;
    slot.endedDuringLogin = null;
    return slot;
  }

  /** Binds a handle obtained by create or resume, unless the client went away meanwhile (then it is detached). */
  #finishLogin(slot: ClientSlot, handle: SessionHandle): void {
    const client = slot.client;
    if ((slot.flags & GONE) !== 0 || this.#closing !== null || client.closed || client.closing) {
      // The client closed (or began to) while the registry call was under way: it is never bound,
      // so its close does not detach it; this is the one detach of the new session.
      this.#track(this.registry.detach(this.#connectionId(client), (slot.flags & GONE) !== 0 ? 'connection-closed' : 'binding-closed'), 'detach');
      throw new NetloopError(ErrorCode.CLIENT_CLOSED, `client ${client.id} closed during its login`, { details: { clientId: client.id } });
    }
    this.loop._timers.remove(slot);
    slot.handle = handle;
    this.#bound++;
    const user = handle.userId;
    if (user !== null) {
      let set = this.#byUser.get(user);
      if (set === undefined) this.#byUser.set(user, (set = new Set()));
      set.add(slot);
    }
    // The framing layer lifts its pre-authentication frame limit from the next frame on.
    if (client instanceof FramedClient) client.markAuthenticated();
    const ended = slot.endedDuringLogin;
    slot.endedDuringLogin = null;
    if (ended !== null && ended.session.id === handle.id) {
      // Replaced (or ended otherwise) before this login settled: told and closed as if it had been bound then.
      this.#unbind(slot);
      this.#kick(slot, ended.kind, ended.reason, ended.session);
    }
  }

  #unbind(slot: ClientSlot): void {
    const h = slot.handle;
    if (h === null) return;
    slot.handle = null;
    this.#bound--;
    const user = h.userId;
    if (user !== null) {
      const set = this.#byUser.get(user);
      if (set !== undefined) {
        set.delete(slot);
        if (set.size === 0) this.#byUser.delete(user);
      }
    }
  }

  #armHandshake(slot: ClientSlot): void {
    const ms = this.options.handshakeTimeoutMs;
    if (ms === 0) return;
    slot.fn = onHandshakeDeadline;
    this.loop._timers.reschedule(slot, this.loop.now() + ms);
  }

  /**
   * The notice, then the close: append the notice to the client's output
   * buffer and close gracefully at once (flush, FIN, read and discard until
   * the peer closes). The connection closes only once every byte queued (the
   * notice last) reached the peer; from the notice on, the client takes no
   * more output and its input reaches nobody. The notice deadline and the
   * hard output limit guard a peer that never reads.
   */
  #kick(slot: ClientSlot, kind: SessionEndKind, reason: string, session: SessionInfo | null): void {
    const client = slot.client;
    if ((slot.flags & (NOTIFYING | GONE)) !== 0 || client.closed || client.closing) return;
    slot.closeReason = sessionCloseReason(kind);
    let bytes: Uint8Array | null = null;
    if (this.#notice !== null && session !== null) {
      try {
        const msg = this.#notice({ kind, reason, session, client });
        if (msg !== null && msg !== undefined) bytes = this.#encode(msg);
      } catch (err) {
        // A faulty builder costs this client its notice, never the caller's path.
        client.destroy(
          'handler-error',
          new NetloopError(ErrorCode.HANDLER_ERROR, `the session notice builder failed: ${err instanceof Error ? err.message : String(err)}`, {
            cause: err,
            details: { clientId: client.id, kind },
          }),
        );
        return;
      }
    }
    slot.flags |= NOTIFYING;
    this.#notifying++;
    // false: past the hard output limit; the reactor closes the client ('output-limit').
    if (bytes !== null && bytes.length > 0 && !client.appendToOutputBuffer(bytes)) return;
    // With or without a notice, what was already queued (replies of this
    // turn) reaches the peer before the close: a graceful close sends it all,
    // then FIN, and reads and discards the peer's input (the application
    // hears nothing more from it) until the peer closes, so the kernel never
    // resets the connection over unread input and drops the notice's tail.
    // The notice deadline bounds it all; it fires before the reactor's own.
    slot.fn = onNoticeDeadline;
    const ms = this.options.noticeTimeoutMs;
    this.loop._timers.reschedule(slot, this.loop.now() + ms);
    client._beginGracefulClose(slot.closeReason, ms);
  }

  #deliver(slot: ClientSlot, h: SessionHandle, bytes: Uint8Array): boolean {
    const client = slot.client;
    if ((slot.flags & (NOTIFYING | GONE)) !== 0 || client.closed || client.closing) return false;
    if (!client.write(bytes)) return false;
    if (this.#record) h.recordOut(bytes.length, 1);
    return true;
  }

  #encode(message: OutboundMessage): Uint8Array {
    if (typeof message === 'string') return Buffer.from(message, 'utf8');
    if (message instanceof Uint8Array) return message;
    if (message !== null && typeof message === 'object' && (typeof message.type === 'number' || typeof message.type === 'string')) {
      if (this.#encodeFrame === null) {
        throw new NetloopError(ErrorCode.INVALID_VALUE, 'a framed message needs a server with framing (or the encodeFrame option)', {
          details: { type: message.type },
        });
      }
      return this.#encodeFrame(message.type, message.payload);
    }
    throw new NetloopError(ErrorCode.INVALID_VALUE, 'a message must be bytes, a string or { type, payload }');
  }

  #isHeartbeat(type: number): boolean {
    if (this.#heartbeatIds.has(type)) return true;
    const names = this.#heartbeatNames;
    if (names.size === 0) return false;
    const name = this.server instanceof FramedServer ? this.server.registry?.get(type)?.name : undefined;
    return name !== undefined && names.has(name);
  }

  #connectionId(client: Client): string {
    return this.options.connectionPrefix + String(client.id);
  }

  #clientOf(connectionId: string | null): Client | null {
    const slot = this.#slots.get(clientIdOf(connectionId, this.options.connectionPrefix));
    return slot === undefined ? null : slot.client;
  }

  #track(p: Promise<unknown>, operation: 'detach' | 'audit'): void {
    const tracked: Promise<unknown> = p.then(
      () => this.#pending.delete(tracked),
      (err: unknown) => {
        this.#pending.delete(tracked);
        this.#fail(operation, err);
      },
    );
    this.#pending.add(tracked);
  }

  #fail(operation: 'detach' | 'audit', error: unknown): void {
    // A registry closed before its binding has nothing left to detach or audit.
    if (error instanceof NetloopError && error.code === ErrorCode.REGISTRY_CLOSED) return;
    this.#emit('error', { error, operation });
  }

  #emit<E extends SessionBindingEventName>(name: E, payload: SessionBindingPayloads[E]): void {
    if (name === 'error' && this.listenerCount('error') === 0) {
      // The safe default of the 'error' path: a report, never a throw.
      reportFault((payload as SessionBindingPayloads['error']).error, 'session binding', this);
      return;
    }
    // The emitter calls each listener guarded; a fault comes back to _listenerFault.
    (this.emit as (name: E, payload: SessionBindingPayloads[E]) => boolean)(name, payload);
  }

  /**
   * A listener of the binding failed: the client its event concerns is
   * closed with `'handler-error'` when it is live; otherwise the fault goes
   * to the `error` event (and a failing `error` listener is reported).
   */
  protected override _listenerFault(fault: unknown, name: string, args: readonly unknown[]): void {
    const event = name as SessionBindingEventName;
    const client = event === 'error' ? null : ((args[0] as WithClient | undefined)?.client ?? null);
    const error = new NetloopError(ErrorCode.HANDLER_ERROR, `a session binding '${name}' listener failed: ${fault instanceof Error ? fault.message : String(fault)}`, {
      cause: fault,
      details: client === null ? { event: name } : { event: name, clientId: client.id },
    });
    if (event === 'error') reportFault(error, "session binding 'error' listener", this);
    else if (!this.#closeForFault(client, error)) this.#emit('error', { error, operation: 'listener', event: name });
  }

  /**
   * The registry reported a fault: a listener's, on an event whose
   * connection is a live client of ours, closes that client; anything else
   * goes to the binding's `error` event.
   */
  readonly #onRegistryError = (p: RegistryErrorEvent): void => {
    const connectionId = p.error.details['connectionId'];
    const client = p.operation === 'listener' && typeof connectionId === 'string' ? this.#clientOf(connectionId) : null;
    if (client !== null) {
      const error = new NetloopError(ErrorCode.HANDLER_ERROR, p.error.message, {
        cause: p.error.cause,
        details: { ...p.error.details, clientId: client.id },
      });
      if (this.#closeForFault(client, error)) return;
    }
    this.#emit('error', p.event === undefined ? { error: p.error, operation: p.operation } : { error: p.error, operation: p.operation, event: p.event });
  };

  /**
   * Closes a live client for a handler's fault; false when there is none to
   * close. A client already closing (its session's notice is on its way, or
   * it is destroyed) keeps its close and its reason, so the fault would be
   * lost there: it goes to the `error` event instead.
   */
  #closeForFault(client: Client | null, error: NetloopError): boolean {
    if (client === null || client.closed || client.closing) return false;
    client.destroy('handler-error', error);
    return true;
  }
}
