/**
 * Observability without leaking: `node:diagnostics_channel` channels for the
 * life of every connection and every limit that bites, plus the counters
 * behind `EventLoop.stats()`.
 *
 * A message is built only when its channel has subscribers (`hasSubscribers`
 * is a field read), so a process that observes nothing pays one counter
 * increment per accept and per close, nothing more. Messages carry ids,
 * reasons, stable error codes, sizes and peer addresses; never a payload
 * byte, a session token, a token hash or an error message.
 *
 * ```
 *   Server accept ───────────▶ noteAccept ──▶ counters.accepted++ ─▶ netloop:client:accept
 *   Connector connected ─────▶ noteConnect ─▶ counters.connected++ ▶ netloop:client:connect
 *   Server over maxConnections ▶ noteDrop ──▶ counters.dropped++ ──▶ netloop:client:drop
 *                                                                 └▶ netloop:limit (max-connections)
 *   Client close (exactly once) ▶ noteClose ▶ counters.closed[reason]++ ▶ netloop:client:close
 *                                                 limit reasons/codes └▶ netloop:limit
 *   TLS handshake failure ───▶ noteTlsError ▶ counters.tlsErrors++ ▶ netloop:tls:error
 *   application code threw / rejected ▶ noteHandlerError ─────────────▶ netloop:handler:error
 *     (a handler-error close, or a fault sent to the owner's 'error' path)
 *   SessionRegistry 'expired' ▶ observeSessions (binding/) ──────────▶ netloop:session:expire
 *   anything else (inbound pause, ...) ▶ publishLimit ───────────────▶ netloop:limit
 * ```
 *
 * ```ts
 * import diagnostics_channel from 'node:diagnostics_channel';
 * diagnostics_channel.subscribe('netloop:client:close', (m) => log(m.reason, m.code));
 * ```
 *
 * @module
 */

import * as dc from 'node:diagnostics_channel';
import type { CloseReason } from './close-reason.js';
import { ErrorCode } from '../core/errors.js';
import type { NetloopError } from '../core/errors.js';

/** The channel names, stable and part of the public API. */
export const CHANNEL_NAMES = {
  accept: 'netloop:client:accept',
  connect: 'netloop:client:connect',
  drop: 'netloop:client:drop',
  close: 'netloop:client:close',
  limit: 'netloop:limit',
  tlsError: 'netloop:tls:error',
  sessionExpire: 'netloop:session:expire',
  handlerError: 'netloop:handler:error',
} as const;

/**
 * The channel objects. Subscribe with `diagnostics_channel.subscribe(name, fn)`
 * or `channels.close.subscribe(fn)`; each message type is documented below.
 */
export const channels = {
  /** {@link AcceptMessage}: a server accepted a connection. */
  accept: dc.channel(CHANNEL_NAMES.accept),
  /** {@link AcceptMessage}: a connector's connection is established. */
  connect: dc.channel(CHANNEL_NAMES.connect),
  /** {@link DropMessage}: a server destroyed a socket beyond `maxConnections`. */
  drop: dc.channel(CHANNEL_NAMES.drop),
  /** {@link CloseMessage}: a client closed (exactly once per client). */
  close: dc.channel(CHANNEL_NAMES.close),
  /** {@link LimitMessage}: a limit was hit. */
  limit: dc.channel(CHANNEL_NAMES.limit),
  /** {@link TlsErrorMessage}: a TLS handshake failed before a client existed. */
  tlsError: dc.channel(CHANNEL_NAMES.tlsError),
  /** {@link SessionExpireMessage}: a session expired (published by the session binding's `observeSessions`). */
  sessionExpire: dc.channel(CHANNEL_NAMES.sessionExpire),
  /** {@link HandlerErrorMessage}: application code called from the network threw or rejected. */
  handlerError: dc.channel(CHANNEL_NAMES.handlerError),
} as const;

/** The message of `netloop:client:accept` and `netloop:client:connect`. */
export interface AcceptMessage {
  clientId: number;
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  /** True when the connection runs over TLS. */
  tls: boolean;
}

/** The message of `netloop:client:drop`. */
export interface DropMessage {
  reason: 'max-connections';
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  /** The server's `maxConnections`. */
  limit: number;
}

/** The message of `netloop:client:close`. */
export interface CloseMessage {
  clientId: number;
  reason: CloseReason;
  /** The stable code of the close's error (`NETLOOP_...`), if the close was a fault. */
  code: string | undefined;
  /** The system code of a socket error (`ECONNRESET`, `EPIPE`, ...), if any. */
  syscallCode: string | undefined;
}

/**
 * Which limit was hit:
 * - `max-connections`: a new connection was dropped;
 * - `output-limit`, `output-soft-limit`: a client's queued output (it is closed);
 * - `idle-timeout`, `frame-timeout`, `handshake-timeout`, `ping-timeout`: a deadline (the client is closed);
 * - `frame-length`: a declared frame length above the maximum (the client is closed);
 * - `inbound`: reading was paused because unhandled input piled up (published by the framing layer);
 * - any other string a layer publishes through {@link publishLimit}.
 */
export type LimitName =
  | 'max-connections'
  | 'output-limit'
  | 'output-soft-limit'
  | 'idle-timeout'
  | 'frame-timeout'
  | 'handshake-timeout'
  | 'ping-timeout'
  | 'frame-length'
  | 'inbound'
  | (string & {});

/** The message of `netloop:limit`. */
export interface LimitMessage {
  limit: LimitName;
  /** The client concerned, or null (a dropped connection has none). */
  clientId: number | null;
  /** The stable error code, when the limit closed a client. */
  code: string | undefined;
  /** Secret-free facts: the configured limit, the value seen, ... */
  details: Readonly<Record<string, unknown>>;
}

/** The message of `netloop:tls:error`. */
export interface TlsErrorMessage {
  /** The OpenSSL or Node code (`ERR_SSL_...`, `ECONNRESET`), if any. */
  code: string | undefined;
  remoteAddress: string | undefined;
  remotePort: number | undefined;
}

/** The message of `netloop:session:expire`; ids only, never a token or its hash. */
export interface SessionExpireMessage {
  sessionId: string;
  userId: string | null;
  connectionId: string | null;
  /** Why: `'ttl'`, `'resume-window'`, `'store'`, ... */
  reason: string;
}

/**
 * The message of `netloop:handler:error`: application code called from the
 * network (an event listener, a callback, a handler) threw or its promise
 * rejected. Published once per fault, whether it closed a client (that
 * client's close then reports `handler-error` too) or went to its owner's
 * `'error'` path. The error itself (whose message may quote anything) is
 * not in it: it is the `cause` of the `NETLOOP_HANDLER_ERROR` that the
 * client's `'close'` event or the owner's `'error'` event carries.
 */
export interface HandlerErrorMessage {
  /** The client the code ran for, or null (a `'drop'` listener, a connector's `'connect-error'` listener, ...). */
  clientId: number | null;
  /**
   * What was called: `"'data' listener"`, `'write-complete callback'`,
   * `"'drop' listener"`, ...; `'handler'` for the framing layer's handler
   * (`onMessage`, `onRawFrame` or a `'message'` listener).
   */
  source: string;
  /** Always `NETLOOP_HANDLER_ERROR`. */
  code: string;
  /** The class name of what was thrown (`'TypeError'`, `'NetloopError'`, ...), or its type for a non-object. */
  causeName: string;
}

/**
 * Counters since a loop was created, as `EventLoop.stats()` reports them.
 *
 * ```
 *   { accepted, connected, dropped, tlsErrors, closed: { 'peer-closed': n, reset: n, ... },
 *     framesIn, framesOut, inboundPauses }      (the last three kept by the framing layer)
 * ```
 */
export interface LoopCounters {
  /** Connections accepted by the loop's servers. */
  accepted: number;
  /** Connections established by the loop's connectors. */
  connected: number;
  /** Connections dropped beyond `maxConnections`. */
  dropped: number;
  /** TLS handshakes that failed on the loop's servers. */
  tlsErrors: number;
  /** Closes by reason (only reasons seen at least once appear). */
  closed: Partial<Record<CloseReason, number>>;
  /** Frames decoded from peers by the framing layer of the loop's framed servers and connectors. */
  framesIn: number;
  /** Frames the framing layer queued to peers (a broadcast counts one per receiver). */
  framesOut: number;
  /** Times the framing layer paused reading a client at its inbound limits (`maxPendingMessages`, `maxPendingBytes`, `maxMessagesPerTurn`). */
  inboundPauses: number;
}

/** @internal A fresh set of counters. */
export function createCounters(): LoopCounters {
  return { accepted: 0, connected: 0, dropped: 0, tlsErrors: 0, closed: {}, framesIn: 0, framesOut: 0, inboundPauses: 0 };
}

/** @internal A copy for a stats snapshot (the live object keeps counting). */
export function copyCounters(c: LoopCounters): LoopCounters {
  return {
    accepted: c.accepted,
    connected: c.connected,
    dropped: c.dropped,
    tlsErrors: c.tlsErrors,
    closed: { ...c.closed },
    framesIn: c.framesIn,
    framesOut: c.framesOut,
    inboundPauses: c.inboundPauses,
  };
}

/** The close reasons that are limits; a close with one of them also publishes on `netloop:limit`. */
const LIMIT_REASONS: ReadonlySet<CloseReason> = new Set<CloseReason>([
  'output-limit',
  'output-soft-limit',
  'idle-timeout',
  'frame-timeout',
  'handshake-timeout',
  'ping-timeout',
]);

/** Counters live on the loop; the reactor finds them through this narrow view. */
interface CountingLoop {
  readonly _counters: LoopCounters;
}

/**
 * What the diagnostics read of a client: a narrow view, so that this module
 * (which the client itself calls) imports nothing above it.
 */
export interface ObservedClient {
  readonly id: number;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly socket: object;
  readonly loop: object;
}

function isTls(client: ObservedClient): boolean {
  return (client.socket as { encrypted?: boolean }).encrypted === true;
}

/** @internal A server accepted `client`. */
export function noteAccept(client: ObservedClient): void {
  (client.loop as unknown as CountingLoop)._counters.accepted++;
  if (channels.accept.hasSubscribers) {
    const m: AcceptMessage = { clientId: client.id, remoteAddress: client.remoteAddress, remotePort: client.remotePort, tls: isTls(client) };
    channels.accept.publish(m);
  }
}

/** @internal A connector's `client` is connected. */
export function noteConnect(client: ObservedClient): void {
  (client.loop as unknown as CountingLoop)._counters.connected++;
  if (channels.connect.hasSubscribers) {
    const m: AcceptMessage = { clientId: client.id, remoteAddress: client.remoteAddress, remotePort: client.remotePort, tls: isTls(client) };
    channels.connect.publish(m);
  }
}

/** @internal A server dropped a connection beyond `limit` live clients. */
export function noteDrop(loop: object, remoteAddress: string | undefined, remotePort: number | undefined, limit: number): void {
  (loop as CountingLoop)._counters.dropped++;
  if (channels.drop.hasSubscribers) {
    const m: DropMessage = { reason: 'max-connections', remoteAddress, remotePort, limit };
    channels.drop.publish(m);
  }
  if (channels.limit.hasSubscribers) {
    const m: LimitMessage = { limit: 'max-connections', clientId: null, code: ErrorCode.MAX_CONNECTIONS, details: { limit } };
    channels.limit.publish(m);
  }
}

/** @internal `client` closed (called exactly once per client, from its close path). */
export function noteClose(client: ObservedClient, reason: CloseReason, error: NetloopError | undefined): void {
  const closed = (client.loop as unknown as CountingLoop)._counters.closed;
  closed[reason] = (closed[reason] ?? 0) + 1;
  if (channels.close.hasSubscribers) {
    const sys = error?.details['syscallCode'];
    const m: CloseMessage = {
      clientId: client.id,
      reason,
      code: error?.code,
      syscallCode: typeof sys === 'string' ? sys : undefined,
    };
    channels.close.publish(m);
  }
  if (reason === 'handler-error' && error !== undefined && channels.handlerError.hasSubscribers) {
    const source = error.details['source'];
    noteHandlerError(client.id, typeof source === 'string' ? source : 'handler', error);
  }
  if (channels.limit.hasSubscribers) {
    let limit: LimitName | null = LIMIT_REASONS.has(reason) ? reason : null;
    if (limit === null && error?.code === ErrorCode.FRAME_TOO_LARGE) limit = 'frame-length';
    if (limit !== null) {
      const m: LimitMessage = { limit, clientId: client.id, code: error?.code, details: error?.details ?? {} };
      channels.limit.publish(m);
    }
  }
}

/** @internal A TLS handshake failed on a server of `loop`. */
export function noteTlsError(loop: object, err: unknown, remoteAddress: string | undefined, remotePort: number | undefined): void {
  (loop as CountingLoop)._counters.tlsErrors++;
  if (channels.tlsError.hasSubscribers) {
    const code = (err as { code?: unknown } | null)?.code;
    const m: TlsErrorMessage = { code: typeof code === 'string' ? code : undefined, remoteAddress, remotePort };
    channels.tlsError.publish(m);
  }
}

/** @internal Application code called for `clientId` (or for no client) failed; `error` is the `NETLOOP_HANDLER_ERROR` made of it. */
export function noteHandlerError(clientId: number | null, source: string, error: NetloopError): void {
  if (!channels.handlerError.hasSubscribers) return;
  const cause = error.cause;
  const causeName = typeof cause === 'object' && cause !== null ? ((cause as { constructor?: { name?: unknown } }).constructor?.name ?? 'Object') : typeof cause;
  const m: HandlerErrorMessage = { clientId, source, code: error.code, causeName: String(causeName) };
  channels.handlerError.publish(m);
}

/**
 * Publishes a limit hit on `netloop:limit` (when subscribed). For layers
 * whose limit does not close the client (the framing layer pausing reads at
 * its inbound limit, for example); limits that close a client are published
 * by the close itself. `details` must be secret-free.
 */
export function publishLimit(limit: LimitName, clientId: number | null, details: Record<string, unknown> = {}, code?: string): void {
  if (!channels.limit.hasSubscribers) return;
  const m: LimitMessage = { limit, clientId, code, details };
  channels.limit.publish(m);
}
