/**
 * The public types of a session binding: its options, its events (one
 * payload map and the listener signatures the typed emitter takes), its
 * stats, and the defaults of its limits.
 *
 * ```
 *   SessionBindingOptions ──bindSessions(server, registry, options)──▶ SessionBinding
 *   SessionBindingPayloads[name] ──▶ SessionBindingEvents[name] = (payload) => void
 * ```
 *
 * @module
 */

import type { Client } from '../reactor/client.js';
import type { CreateSessionInput, SessionEvents } from '../session/session-registry.js';
import type { NoticeBuilder } from './notices.js';

/** Encodes a framed message into the bytes of one frame (the server's codec). */
export type FrameEncoder = (type: number | string, payload: unknown) => Uint8Array;

/** Options of {@link bindSessions}. Every limit is finite and validated at construction. */
export interface SessionBindingOptions {
  /**
   * A connection that has neither created nor resumed a session this long
   * after it was accepted is closed (`'handshake-timeout'`,
   * `NETLOOP_HANDSHAKE_TIMEOUT`). Default 10,000 ms; 0 disables it; at most 2^31 - 1.
   */
  handshakeTimeoutMs?: number;
  /**
   * How long a notice may take to reach the kernel before the connection is
   * destroyed anyway (`NETLOOP_CLOSE_TIMEOUT`), so that a peer that never reads
   * cannot hold its connection open. Default 10,000 ms; range [1, 2^31 - 1].
   * The server's hard output limit (`maxOutputBytes`) bounds the bytes held meanwhile.
   */
  noticeTimeoutMs?: number;
  /**
   * What refreshes a session: `'traffic'` (default), any bytes from its
   * client; `'heartbeat'`, only {@link SessionBinding.heartbeat} calls and
   * framed messages whose type is in `heartbeatTypes`. A framed message is
   * counted as it is decoded, before it is dispatched, whatever the
   * application handles it with (`onMessage`, `onRawFrame` or the
   * `'message'` event), and even while it waits behind slow handlers.
   */
  refreshOn?: 'traffic' | 'heartbeat';
  /**
   * With `refreshOn: 'heartbeat'` and framing: the message types that count
   * as heartbeats, by id (matched against the frame's type) or by registered
   * name (looked up in the framing's message registry). Default none.
   */
  heartbeatTypes?: ReadonlyArray<number | string>;
  /**
   * The notice sent to a connected client whose session ends. Default
   * {@link jsonLineNotice} on a raw server; on a framed server there is no
   * default (raw bytes would corrupt the frame stream): give a builder that
   * returns an {@link OutgoingFrame}, or null to close without a notice.
   */
  notice?: NoticeBuilder | null;
  /** Count bytes (and framed messages) in and out in the session's stats. Default true. */
  recordTraffic?: boolean;
  /**
   * Prepended to the client id to form the registry's connection id. Default
   * `''`. Give each process its own prefix (e.g. `host:pid:`) when several
   * processes share one store, so that connection ids never collide.
   */
  connectionPrefix?: string;
  /**
   * How framed messages are encoded. Default: the server's own framing codec
   * when it has one; without either, sending an {@link OutgoingFrame} is
   * `NETLOOP_INVALID_VALUE`.
   */
  encodeFrame?: FrameEncoder;
}

/** What {@link SessionBinding.login} accepts: {@link CreateSessionInput} without the connection, which is the client's. */
export type LoginInput = Omit<CreateSessionInput, 'connectionId' | 'remoteAddress'>;

/** The client (of this binding's server) a session event concerns, or null when none is connected here. */
export interface WithClient {
  client: Client | null;
}

/** The payload of each of the binding's events: the registry's, each with the client concerned. */
export interface SessionBindingPayloads {
  created: SessionEvents['created'] & WithClient;
  resumed: SessionEvents['resumed'] & WithClient;
  detached: SessionEvents['detached'] & WithClient;
  expired: SessionEvents['expired'] & WithClient;
  replaced: SessionEvents['replaced'] & WithClient;
  closed: SessionEvents['closed'] & WithClient;
  deleted: SessionEvents['deleted'] & WithClient;
  kicked: SessionEvents['kicked'] & WithClient;
  /**
   * A fault no caller's promise reports: a registry call made by the binding
   * on its own (`'detach'`, `'audit'`) failed, or a listener (of the binding,
   * or of the registry) threw or rejected on an event that concerns no live
   * client of this server (`'listener'`, a `NETLOOP_HANDLER_ERROR` with the
   * fault as `cause`; `event` names the event). A listener's fault on an
   * event that concerns a live client closes that client with
   * `'handler-error'` instead. The registry's failures to publish or act on
   * a shared store's change (`'feed'`) or to reconcile with it
   * (`'reconcile'`) come here too. Without a listener, each is reported as a
   * process warning, never thrown.
   */
  error: { error: unknown; operation: 'detach' | 'audit' | 'listener' | 'feed' | 'reconcile'; event?: string };
}

/**
 * The binding's events, as listener signatures (the one typed event model:
 * `binding.on('expired', ({ client, session }) => ...)`); each listener gets
 * the event's payload ({@link SessionBindingPayloads}).
 */
export type SessionBindingEvents = { [K in keyof SessionBindingPayloads]: (payload: SessionBindingPayloads[K]) => void };

/** Names of {@link SessionBindingEvents}. */
export type SessionBindingEventName = keyof SessionBindingPayloads;

/** A snapshot of what a binding holds (all 0 after every client closed, except `auditTimer`). */
export interface SessionBindingStats {
  /** Live clients of the server known to the binding. */
  clients: number;
  /** Clients bound to a session. */
  bound: number;
  /** Users with at least one bound client. */
  users: number;
  /** Deadlines queued in the loop's timer queue (handshakes and notices). */
  deadlines: number;
  /** Clients receiving their notice before their connection closes. */
  notifying: number;
  /** Registry calls (detaches, audits) not settled yet. */
  pending: number;
  /** True while the audit timer runs. */
  auditTimer: boolean;
}

/** Default of {@link SessionBindingOptions.handshakeTimeoutMs}. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** Default of {@link SessionBindingOptions.noticeTimeoutMs}. */
export const DEFAULT_NOTICE_TIMEOUT_MS = 10_000;
