/**
 * What the conformance tests share: the records they make, the test
 * definer they register through, and small assertions.
 *
 * @module
 */

import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Clock } from '../../core/clock.js';
import type { ManualClock } from '../../core/clock.js';
import type { SessionRecord, SessionStore } from '../../store/contract.js';

/** Defines one conformance test: a fresh empty store and its clock are handed to `body`, and closed afterwards. */
export type DefineTest = (name: string, body: (store: SessionStore, clock: ManualClock) => Promise<void>) => void;

/**
 * Defines one conformance test across two views of the same data: `store`
 * and `peer` (another process's view, from the suite's `createPeer`),
 * both closed afterwards.
 */
export type DefinePeerTest = (name: string, body: (store: SessionStore, peer: SessionStore, clock: ManualClock) => Promise<void>) => void;

/** The TTL every record of the suite gets unless a test says otherwise: one minute. */
export const CONFORMANCE_TTL_MS = 60_000;

/** Records made so far: each gets a unique id, token hash and connection from it. */
let serial = 0;

/** The serial the next {@link makeRecord} will use (for names that must not collide with it). */
export function nextSerial(): number {
  return serial + 1;
}

/** A deterministic stand-in for a token hash (64 hex characters). */
export function fakeTokenHash(label: string): string {
  return createHash('sha256').update(`conformance:${label}`).digest('hex');
}

/**
 * A valid record stamped from `clock` (created and last active now, expiring
 * in {@link CONFORMANCE_TTL_MS}), with a unique id, token hash and
 * connection, for user `alice`; `overrides` replace any field.
 */
export function makeRecord(clock: Pick<Clock, 'wallNow'>, overrides: Partial<SessionRecord> = {}): SessionRecord {
  serial++;
  const now = clock.wallNow();
  const n = String(serial).padStart(12, '0');
  return {
    id: `0190a4b2-7c3e-7a41-9f2b-${n}`,
    tokenHash: fakeTokenHash(n),
    userId: 'alice',
    connectionId: `conn-${n}`,
    remoteAddress: '127.0.0.1',
    remotePort: 40_000 + (serial % 20_000),
    state: 'ACTIVE',
    metadata: {},
    stats: { bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0, heartbeats: 0 },
    createdAt: now,
    lastActiveAt: now,
    expiresAt: now + CONFORMANCE_TTL_MS,
    ttl: CONFORMANCE_TTL_MS,
    ...overrides,
  };
}

/** An id no test creates. */
export const UNKNOWN_ID = '0190a4b2-7c3e-7a41-9f2b-ffffffffffff';

/** Asserts that `fn` rejects (or throws) with a coded error of `code`. */
export async function rejectsWith(fn: () => Promise<unknown>, code: string, what: string): Promise<void> {
  let outcome: unknown;
  try {
    await fn();
  } catch (err) {
    outcome = err;
  }
  assert.ok(outcome !== undefined, `${what}: expected a rejection with ${code}, but it resolved`);
  const got = (outcome as { code?: unknown } | null)?.code;
  assert.equal(got, code, `${what}: expected ${code}, got ${String(got)} (${String((outcome as Error)?.message ?? outcome)})`);
}

/** The ids of `records`, in order. */
export const ids = (records: readonly SessionRecord[]): string[] => records.map((r) => r.id);

/** Oldest first, as every store orders: createdAt, then id. */
export const byAge = (a: SessionRecord, b: SessionRecord): number => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** A small seeded generator (mulberry32): the model test's sequences repeat for a seed. */
export class Prng {
  #s: number;
  /** @param seed any 32-bit integer; the same seed gives the same sequence. */
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  /** A uniform integer in [0, n). */
  int(n: number): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) % n) >>> 0;
  }
  /** One of `items`, uniformly. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
}

