/**
 * What a session binding sends a client whose session ends, before the
 * connection closes: the message types and the ready-made notices (a line
 * of JSON for raw servers, an HTTP 401 for HTTP-speaking clients).
 *
 * ```
 *   session ends ──▶ NoticeBuilder({ kind, reason, session, client }) ──▶ OutboundMessage | null
 *        OutboundMessage: bytes | string (UTF-8) | { type, payload } (a framed server's codec)
 * ```
 *
 * @module
 */

import type { Client } from '../reactor/client.js';
import type { SessionInfo } from '../session/session-registry.js';

/** A message sent through the server's framing codec: its type (id or registered name) and its payload. */
export interface OutgoingFrame {
  /** The message type: its numeric id or its registered name. */
  type: number | string;
  /** The payload, serialized by the type's serializer. */
  payload: unknown;
}

/**
 * What the binding can send: raw bytes (a string is UTF-8), or an
 * {@link OutgoingFrame} for a `FramedServer` (encoded by its
 * codec: its message registry, then its LTV encoder).
 */
export type OutboundMessage = Uint8Array | string | OutgoingFrame;

/**
 * Why a connected client is being told its session is over:
 * - `'expired'`: its TTL ran out (audit);
 * - `'replaced'`: a newer login of the same user took over (policy `'replace'`),
 *   or the session was resumed on another connection;
 * - `'deleted'`: the application deleted the session;
 * - `'closed'`: the session was closed (state set to CLOSED);
 * - `'kicked'`: {@link SessionBinding.kick} was called.
 */
export type SessionEndKind = 'expired' | 'replaced' | 'deleted' | 'closed' | 'kicked';

/** What a {@link NoticeBuilder} is given. */
export interface NoticeContext {
  kind: SessionEndKind;
  /** The registry's reason (`'ttl'`, `'replaced'`, `'resumed-elsewhere'`, a caller's reason, ...). */
  reason: string;
  /** The session as it ended (never its token). */
  session: SessionInfo;
  /** The client about to receive the notice. */
  client: Client;
}

/**
 * Builds the notice a client receives before its connection is closed. null
 * (or undefined) sends no notice: the client is still closed only after the
 * output already queued for it has reached the kernel.
 */
export type NoticeBuilder = (ctx: NoticeContext) => OutboundMessage | null | undefined;

/**
 * The default raw notice: one line of JSON, then `\n`:
 * `{"event":"session_expired","reason":"ttl","session":"<id>"}` (the event is
 * `session_<kind>`). The token is never included.
 */
export const jsonLineNotice: NoticeBuilder = ({ kind, reason, session }) =>
  `${JSON.stringify({ event: `session_${kind}`, reason, session: session.id })}\n`;

/** Options of {@link httpUnauthorizedNotice}. */
export interface HttpNoticeOptions {
  /** The human message of the body. Default: "Your session has expired. Please login again." (or "...was replaced by a newer login..."). */
  message?: (ctx: NoticeContext) => string;
}

/**
 * A builder of an HTTP 401 response, the notice an HTTP-speaking client
 * understands (it tells the client to log in again, then the connection closes):
 *
 * ```http
 * HTTP/1.1 401 Unauthorized
 * Content-Type: application/json
 * Content-Length: 98
 * Connection: close
 *
 * {"error":"session_expired","message":"Your session has expired. Please login again.","session":"..."}
 * ```
 *
 * The body names the session by id, never by its token (tokens are not
 * kept, logged or echoed). `Content-Length` counts UTF-8 bytes.
 */
export function httpUnauthorizedNotice(options: HttpNoticeOptions = {}): NoticeBuilder {
  const message = options.message ?? defaultHttpMessage;
  return (ctx) => {
    const body = Buffer.from(JSON.stringify({ error: `session_${ctx.kind}`, message: message(ctx), session: ctx.session.id }), 'utf8');
    const head =
      'HTTP/1.1 401 Unauthorized\r\n' +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${body.length}\r\n` +
      'Connection: close\r\n\r\n';
    return Buffer.concat([Buffer.from(head, 'latin1'), body]);
  };
}

function defaultHttpMessage(ctx: NoticeContext): string {
  return ctx.kind === 'replaced' ? 'Your session was replaced by a newer login.' : 'Your session has expired. Please login again.';
}
