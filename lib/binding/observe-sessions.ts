/**
 * Session diagnostics: every session expiry of a registry published on the
 * `netloop:session:expire` channel of `node:diagnostics_channel` (ids and the
 * reason only, never a token or its hash). The reactor owns the channels;
 * the sessions are the registry's; this module, above both, joins them.
 *
 * ```
 *   SessionRegistry 'expired' ──▶ observeSessions listener ──(subscribers?)──▶ netloop:session:expire
 * ```
 *
 * @module
 */

import { channels } from '../reactor/diagnostics.js';
import type { SessionExpireMessage } from '../reactor/diagnostics.js';

/** The payload of a registry's `'expired'` event, as far as {@link observeSessions} reads it. */
export interface ExpiredSessionEvent {
  session: { id: string; userId: string | null };
  connectionId: string | null;
  reason: string;
}

/**
 * The slice of a `SessionRegistry` that {@link observeSessions} needs: its
 * `'expired'` event, subscribed with `on` and unsubscribed with `off` (what
 * `on` returns is not used).
 */
export interface ExpiringSessions {
  on(name: 'expired', listener: (payload: ExpiredSessionEvent) => void): unknown;
  off(name: 'expired', listener: (payload: ExpiredSessionEvent) => void): unknown;
}

/**
 * Publishes every session expiry of `registry` on `netloop:session:expire`
 * (ids and the reason only; nothing is built while the channel has no
 * subscriber). Returns the function that stops it. A session binding calls
 * this once per registry; an application may too.
 */
export function observeSessions(registry: ExpiringSessions): () => void {
  const listener = (p: ExpiredSessionEvent): void => {
    if (!channels.sessionExpire.hasSubscribers) return;
    const m: SessionExpireMessage = { sessionId: p.session.id, userId: p.session.userId, connectionId: p.connectionId, reason: p.reason };
    channels.sessionExpire.publish(m);
  };
  registry.on('expired', listener);
  return () => {
    registry.off('expired', listener);
  };
}
