/**
 * Session tokens: the secret a client presents to resume its session.
 *
 * A token is a split token (selector and verifier): the session id, a dot,
 * and 256 random bits from `node:crypto` in base64url without padding.
 *
 * ```
 *   0190a4b2-7c3e-7a41-9f2b-4c8e1d0a6b3f.Qm9vdHN0cmFwIHRoZSBzZWNyZXQgcGFydCBoZXJlIQ
 *   └────────── session id (36) ───────┘ └──────── secret: 32 bytes (43) ────────┘
 * ```
 *
 * - The id selects the session: a token is resolved by one lookup by id, so
 *   no store needs an index of token hashes, and the lookup's timing depends
 *   on the id (not secret), never on the secret.
 * - Only a hash of the whole token is stored: the first 128 bits of its
 *   SHA-256 in base64url (22 characters). A stolen store does not yield
 *   usable tokens; finding a token for a stored hash is a 2^128 preimage
 *   search, and the hash is only ever compared, never searched for.
 * - A presented token is checked by hashing it and comparing the hashes with
 *   `crypto.timingSafeEqual`, so the comparison time does not depend on where
 *   the first differing byte is.
 * - Tokens are never logged nor placed in an error message or its details:
 *   errors about tokens say only that the token was refused.
 *
 * @module
 */

import { createHash, randomFillSync, timingSafeEqual } from 'node:crypto';
import { ErrorCode, NetloopError } from '../core/errors.js';

/** Bytes of randomness in a token's secret (256 bits). */
export const TOKEN_BYTES = 32;

/** Length of a token's secret: 32 bytes in base64url without padding. */
export const TOKEN_SECRET_LENGTH = 43;

/** Length of an encoded token: a 36-character session id, a dot, the 43-character secret. */
export const TOKEN_LENGTH = 36 + 1 + TOKEN_SECRET_LENGTH;

/** Bytes of SHA-256 kept as a token's hash (128 bits). */
export const TOKEN_HASH_BYTES = 16;

/** Length of a stored token hash: 16 bytes in base64url without padding. */
export const TOKEN_HASH_LENGTH = 22;

const ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TOKEN_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.[A-Za-z0-9_-]{43}$/;
const HASH_PATTERN = /^[A-Za-z0-9_-]{22}$/;

/** A fresh token and the hash to store in its place. */
export interface TokenPair {
  /** The token (`<session id>.<secret>`), handed to the client once. */
  token: string;
  /** {@link hashToken} of `token`, the only form kept at rest. */
  hash: string;
}

// Random bytes are drawn from a pooled buffer refilled by `randomFillSync`:
// one call to the system's generator per 128 tokens instead of one per token
// (a synchronous `randomBytes(32)` costs microseconds here). Bytes handed out
// are never handed out again.
const POOL_BYTES = TOKEN_BYTES * 128;
const pool = Buffer.alloc(POOL_BYTES);
let poolOffset = POOL_BYTES;

/**
 * Creates a new token for the session `sessionId` (a lower-case UUID, as
 * `uuidv7` makes) and its hash. Throws `NETLOOP_INVALID_VALUE` for any
 * other id: the id is how a token finds its session again.
 */
export function createToken(sessionId: string): TokenPair {
  if (typeof sessionId !== 'string' || !ID_PATTERN.test(sessionId)) {
    throw new NetloopError(ErrorCode.INVALID_VALUE, 'a token needs a session id in lower-case UUID form');
  }
  if (poolOffset + TOKEN_BYTES > POOL_BYTES) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const token = `${sessionId}.${pool.toString('base64url', poolOffset, poolOffset + TOKEN_BYTES)}`;
  pool.fill(0, poolOffset, poolOffset + TOKEN_BYTES);
  poolOffset += TOKEN_BYTES;
  return { token, hash: hashToken(token) };
}

/** True when `value` has the shape of a token (`<uuid>.<43 base64url characters>`); says nothing of its validity. */
export function isWellFormedToken(value: unknown): value is string {
  return typeof value === 'string' && value.length === TOKEN_LENGTH && TOKEN_PATTERN.test(value);
}

/** The session id a well-formed token names, or null for anything else. Says nothing of the token's validity. */
export function tokenSessionId(token: unknown): string | null {
  return isWellFormedToken(token) ? token.slice(0, 36) : null;
}

/** The stored form of a token: the first 128 bits of its SHA-256, base64url (22 characters). */
export function hashToken(token: string): string {
  return tokenDigest(token).toString('base64url');
}

/** The first {@link TOKEN_HASH_BYTES} bytes of a token's SHA-256: what {@link hashToken} encodes and {@link tokenMatches} compares. */
function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest().subarray(0, TOKEN_HASH_BYTES);
}

/**
 * True when `token` hashes to `expectedHash`. The hashes are compared with
 * `crypto.timingSafeEqual`; a malformed token or hash is simply false.
 */
export function tokenMatches(token: string, expectedHash: string): boolean {
  if (!isWellFormedToken(token) || typeof expectedHash !== 'string' || !HASH_PATTERN.test(expectedHash)) return false;
  const actual = tokenDigest(token);
  const expected = Buffer.from(expectedHash, 'base64url');
  return expected.length === TOKEN_HASH_BYTES && timingSafeEqual(actual, expected);
}
