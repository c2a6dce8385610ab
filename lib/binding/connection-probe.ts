/**
 * The liveness probe a session registry asks about the connections its
 * sessions are bound to: the binding's connection ids are a prefix and the
 * reactor's client id, so the loop knows whether one is still open.
 *
 * ```
 *   connectionId "host:pid:" + "42" ──clientIdOf──▶ 42 ──loop.getClient(42)──▶ open ? true : false
 *   an id without the prefix, or not a client id ─────────────────────────────▶ undefined (not ours)
 * ```
 *
 * @module
 */

import type { EventLoop } from '../reactor/event-loop.js';

/**
 * The `isConnectionAlive` hook for a {@link SessionRegistry} whose sessions
 * are bound to the clients of `loop` (with the binding's `connectionPrefix`):
 * false for an id of ours with no live client, undefined (unknown) for an id
 * that is not ours. Pass it when creating the registry, so that a `'refuse'`
 * login is never blocked by a connection that died before its close was
 * processed:
 *
 * ```ts
 * const registry = new SessionRegistry({ autoAudit: false, isConnectionAlive: connectionProbe(loop) });
 * ```
 */
export function connectionProbe(loop: EventLoop, connectionPrefix = ''): (connectionId: string) => boolean | undefined {
  return (connectionId) => {
    const id = clientIdOf(connectionId, connectionPrefix);
    if (Number.isNaN(id)) return undefined;
    // A client being destroyed (or closing) is dead for a login, though its close is not reported yet.
    const client = loop.getClient(id);
    return client !== undefined && !client.closed && !client.closing;
  };
}

/** The client id in a connection id of ours (`prefix` then a decimal id), or NaN. */
export function clientIdOf(connectionId: string | null, prefix: string): number {
  if (connectionId === null || !connectionId.startsWith(prefix)) return Number.NaN;
  const rest = connectionId.slice(prefix.length);
  return /^[1-9][0-9]{0,15}$/.test(rest) ? Number(rest) : Number.NaN;
}
