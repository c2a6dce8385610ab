/**
 * The session state machine: the states a session may move between.
 *
 * @module
 */

import type { SessionState } from '../store/contract.js';

/**
 * The allowed state transitions. Setting the current state again is a no-op;
 * CLOSED ends the session (it is removed from the store).
 *
 * ```
 *   CONNECTING ──► ACTIVE ◄──► IDLE
 *        │            │          │
 *        └────────────┴──────────┴──► CLOSED   (terminal: the session is removed)
 * ```
 *
 * A connection closing moves an ACTIVE or IDLE session to IDLE, detached, for
 * the resume window; a CONNECTING one (handshake never finished) is closed.
 */
export const SESSION_TRANSITIONS: Readonly<Record<SessionState, readonly SessionState[]>> = Object.freeze({
  CONNECTING: Object.freeze(['ACTIVE', 'CLOSED'] as SessionState[]),
  ACTIVE: Object.freeze(['IDLE', 'CLOSED'] as SessionState[]),
  IDLE: Object.freeze(['ACTIVE', 'CLOSED'] as SessionState[]),
  CLOSED: Object.freeze([] as SessionState[]),
});

/** True when the state machine allows `from` → `to` (or `from === to`, except for CLOSED). */
export function canTransition(from: SessionState, to: SessionState): boolean {
  return (from === to && from !== 'CLOSED') || SESSION_TRANSITIONS[from].includes(to);
}
