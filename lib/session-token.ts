/**
 * Session tokens: the secret a client presents to resume its session.
 *
 * - A token is 256 random bits from `node:crypto`, encoded base64url without
 *   padding (43 characters), safe in JSON, URLs and headers.
 * - Only its SHA-256 (lower-case hex, 64 characters) is ever stored; a stolen
 *   store does not yield usable tokens, and lookups go by hash.
 * - A presented token is checked by hashing it and comparing the hashes with
 *   `crypto.timingSafeEqual`, so the comparison time does not depend on where
 *   the first differing byte is.
 * - Tokens are never logged nor placed in an error message or its details:
 *   errors about tokens say only that the token was refused.
 *
 * @module
 */

import { createHash, randomFillSync, timingSafeEqual } from 'node:crypto';

/** Bytes of randomness in a token (256 bits). */
export const TOKEN_BYTES = 32;

/** Length of an encoded token: 32 bytes in base64url without padding. */
export const TOKEN_LENGTH = 43;

const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;
const HASH_PATTERN = /^[0-9a-f]{64}$/;

/** A fresh token and the hash to store in its place. */
export interface TokenPair {
  /** The secret, handed to the client once. */
  token: string;
  /** Hex SHA-256 of `token`, the only form kept at rest. */
  hash: string;
}

// Random bytes are drawn from a pooled buffer refilled by `randomFillSync`:
// one call to the system's generator per 128 tokens instead of one per token
// (a synchronous `randomBytes(32)` costs microseconds here). Bytes handed out
// are never handed out again.
const POOL_BYTES = TOKEN_BYTES * 128;
const pool = Buffer.alloc(POOL_BYTES);
let poolOffset = POOL_BYTES;

/** Creates a new random token and its hash. */
export function createToken(): TokenPair {
  if (poolOffset + TOKEN_BYTES > POOL_BYTES) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const token = pool.toString('base64url', poolOffset, poolOffset + TOKEN_BYTES);
  pool.fill(0, poolOffset, poolOffset + TOKEN_BYTES);
  poolOffset += TOKEN_BYTES;
  return { token, hash: hashToken(token) };
}

/** True when `value` has the shape of a token (43 base64url characters); says nothing of its validity. */
export function isWellFormedToken(value: unknown): value is string {
  return typeof value === 'string' && value.length === TOKEN_LENGTH && TOKEN_PATTERN.test(value);
}

/** Hex SHA-256 of a token. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * True when `token` hashes to `expectedHash`. The hashes are compared with
 * `crypto.timingSafeEqual`; a malformed token or hash is simply false.
 */
export function tokenMatches(token: string, expectedHash: string): boolean {
  if (!isWellFormedToken(token) || typeof expectedHash !== 'string' || !HASH_PATTERN.test(expectedHash)) return false;
  const actual = Buffer.from(hashToken(token), 'hex');
  const expected = Buffer.from(expectedHash, 'hex');
  return timingSafeEqual(actual, expected);
}
