/**
 * A session as one flat object: the form the memory store keeps its own
 * records in, the form of the entries an in-process owner lends it, and the
 * form of the session registry's handle. Counters are plain number fields
 * (no nested `stats` object), so no second object is allocated per session.
 *
 * ```
 *   SessionRecord (public, nested)          FlatSession (held)
 *   { id, tokenHash, ..., metadata,   ◀──▶  { id, tokenHash, ..., metadata,
 *     stats: { bytesIn, ... },                bytesIn, bytesOut, messagesIn,
 *     createdAt, lastActiveAt, ... }          messagesOut, heartbeats, createdAt, ... }
 *          flatSessionRecord(flat) ◀──┘   └──▶ assignFlatSession(flat, record)
 * ```
 *
 * Metadata objects are never edited in place, only replaced as a whole, so a
 * record with no metadata shares {@link EMPTY_METADATA}.
 *
 * @module
 */

import type { SessionRecord, SessionState } from './contract.js';

/**
 * The data of a session as one flat object (counters as plain numbers, no
 * nested `stats`); see the module documentation.
 */
export interface FlatSession {
  readonly id: string;
  /** @internal Kept out of the public declarations (a session handle never shows it). */
  tokenHash: string;
  userId: string | null;
  connectionId: string | null;
  remoteAddress: string | null;
  remotePort: number | null;
  state: SessionState;
  /** Never mutated in place: replaced as a whole. */
  metadata: Record<string, string>;
  bytesIn: number;
  bytesOut: number;
  messagesIn: number;
  messagesOut: number;
  heartbeats: number;
  createdAt: number;
  lastActiveAt: number;
  expiresAt: number;
  ttl: number;
}

/** A copy of a flat session in the public {@link SessionRecord} form (own `metadata` and `stats` objects). */
export function flatSessionRecord(r: Readonly<FlatSession>): SessionRecord {
  return {
    id: r.id,
    tokenHash: r.tokenHash,
    userId: r.userId,
    connectionId: r.connectionId,
    remoteAddress: r.remoteAddress,
    remotePort: r.remotePort,
    state: r.state,
    metadata: { ...r.metadata },
    stats: { bytesIn: r.bytesIn, bytesOut: r.bytesOut, messagesIn: r.messagesIn, messagesOut: r.messagesOut, heartbeats: r.heartbeats },
    createdAt: r.createdAt,
    lastActiveAt: r.lastActiveAt,
    expiresAt: r.expiresAt,
    ttl: r.ttl,
  };
}

/** Shared by every record with no metadata (never mutated: metadata is replaced, not edited). */
export const EMPTY_METADATA: Record<string, string> = Object.freeze({}) as Record<string, string>;

/** `m` copied, or the shared empty object when it has no key. */
export function ownMetadata(m: Record<string, string>): Record<string, string> {
  for (const _ in m) return { ...m };
  return EMPTY_METADATA;
}

/**
 * Writes the fields of a public record into a flat session, in place, all
 * but `id`, `expiresAt` and `lastActiveAt` (which its owner sets in its own
 * way: the store last, after the rest; the registry's handle derives them
 * from its monotonic clock).
 */
export function assignFlatSession(r: FlatSession, from: SessionRecord): void {
  r.tokenHash = from.tokenHash;
  r.userId = from.userId;
  r.connectionId = from.connectionId;
  r.remoteAddress = from.remoteAddress;
  r.remotePort = from.remotePort ?? null;
  r.state = from.state;
  r.metadata = ownMetadata(from.metadata);
  r.bytesIn = from.stats.bytesIn;
  r.bytesOut = from.stats.bytesOut;
  r.messagesIn = from.stats.messagesIn;
  r.messagesOut = from.stats.messagesOut;
  r.heartbeats = from.stats.heartbeats;
  r.createdAt = from.createdAt;
  r.ttl = from.ttl;
}
