import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as crypto from 'node:crypto';
import { createHash } from 'node:crypto';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import {
  TOKEN_HASH_LENGTH,
  TOKEN_LENGTH,
  createToken,
  hashToken,
  isWellFormedToken,
  tokenMatches,
  tokenSessionId,
} from '../../../lib/session/token.js';
import { uuidv7 } from '../../../lib/session/uuid-v7.js';
import { ErrorCode, NetloopError } from '../../../lib/core/errors.js';
import { SessionRegistry } from '../../../lib/session/session-registry.js';

test('a token is the session id, a dot and 256 bits of base64url; its hash is 128 bits of SHA-256', () => {
  const id = uuidv7();
  const { token, hash } = createToken(id);
  assert.is(token.length, TOKEN_LENGTH);
  assert.ok(token.startsWith(`${id}.`));
  const secret = token.slice(37);
  assert.match(secret, /^[A-Za-z0-9_-]{43}$/);
  assert.is(Buffer.from(secret, 'base64url').length, 32);
  assert.is(hash.length, TOKEN_HASH_LENGTH);
  assert.match(hash, /^[A-Za-z0-9_-]{22}$/);
  assert.equal(Buffer.from(hash, 'base64url'), createHash('sha256').update(token).digest().subarray(0, 16));
  assert.is(hashToken(token), hash);
  assert.ok(isWellFormedToken(token));
  assert.is(tokenSessionId(token), id);
});

test('tokens are unique, also for one session id', () => {
  const seen = new Set<string>();
  const id = uuidv7();
  for (let i = 0; i < 5_000; i++) seen.add(createToken(id).token);
  for (let i = 0; i < 5_000; i++) seen.add(createToken(uuidv7()).token);
  assert.is(seen.size, 10_000);
});

test('createToken refuses an id that is not a lower-case UUID', () => {
  for (const bad of ['', 's1', uuidv7().toUpperCase(), `${uuidv7()}x`, 42 as unknown as string]) {
    try {
      createToken(bad);
      assert.unreachable(`accepted ${String(bad)}`);
    } catch (err) {
      assert.instance(err, NetloopError);
      assert.is((err as NetloopError).code, ErrorCode.INVALID_VALUE);
    }
  }
});

test('tokenMatches: right token, wrong token, malformed inputs', () => {
  const a = createToken(uuidv7());
  const b = createToken(uuidv7());
  assert.ok(tokenMatches(a.token, a.hash));
  assert.not.ok(tokenMatches(b.token, a.hash));
  // The same session id with another secret is refused.
  const sameId = createToken(tokenSessionId(a.token)!);
  assert.not.ok(tokenMatches(sameId.token, a.hash));
  assert.not.ok(tokenMatches(a.token.slice(1), a.hash));
  assert.not.ok(tokenMatches(`${a.token.slice(0, TOKEN_LENGTH - 1)}!`, a.hash));
  assert.not.ok(tokenMatches(a.token, a.hash.slice(2)));
  assert.not.ok(tokenMatches(a.token, `${a.hash}AA`));
  assert.not.ok(tokenMatches(a.token, 'f'.repeat(64)));
  assert.not.ok(tokenMatches(42 as unknown as string, a.hash));
  assert.not.ok(tokenMatches(a.token, null as unknown as string));
});

/**
 * Runs `fn` with `crypto.timingSafeEqual` replaced by a spy that records its
 * arguments and then calls the real one.
 *
 * Why a spy on node:crypto rather than a timing measurement or a seam in the
 * library: a timing test cannot tell a constant-time comparison from `===` on
 * 16 bytes within the noise of a shared machine, and a seam would be a way to
 * swap the comparison out in production. Node keeps the named exports of its
 * built-in ES modules in step with the CommonJS exports object when
 * `syncBuiltinESMExports()` is called, and the library's
 * `import { timingSafeEqual } from 'node:crypto'` is a live binding: so the
 * spy sees every call the library makes. A comparison rewritten as
 * `expected === actual`, `Buffer.equals`, `Buffer.compare` or a loop that
 * stops at the first difference makes no call, and the assertions below fail.
 */
async function spyTimingSafeEqual(fn: () => unknown): Promise<Array<[Buffer, Buffer]>> {
  const cjs = createRequire(import.meta.url)('node:crypto') as typeof crypto;
  const real = cjs.timingSafeEqual;
  const calls: Array<[Buffer, Buffer]> = [];
  cjs.timingSafeEqual = (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView): boolean => {
    calls.push([Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)]);
    return real(a, b);
  };
  syncBuiltinESMExports();
  try {
    assert.is.not(crypto.timingSafeEqual, real, 'the ES module binding follows the spy');
    await fn();
  } finally {
    cjs.timingSafeEqual = real;
    syncBuiltinESMExports();
  }
  assert.is(crypto.timingSafeEqual, real);
  return calls;
}

test('a presented token is checked with crypto.timingSafeEqual over equal-length digests, wherever it differs', async () => {
  const a = createToken(uuidv7());
  const id = tokenSessionId(a.token)!;
  const secret = a.token.slice(37);
  const flip = (s: string, i: number): string => `${s.slice(0, i)}${s[i] === 'A' ? 'B' : 'A'}${s.slice(i + 1)}`;
  // The right token, and wrong ones that differ from it first at the start, the middle and
  // the end of the secret, and one of another session: each must take the same path.
  const presented = [a.token, `${id}.${flip(secret, 0)}`, `${id}.${flip(secret, 21)}`, `${id}.${flip(secret, 42)}`, createToken(uuidv7()).token];
  const results: boolean[] = [];
  const calls = await spyTimingSafeEqual(() => {
    for (const t of presented) results.push(tokenMatches(t, a.hash));
  });
  assert.equal(results, [true, false, false, false, false]);
  assert.is(calls.length, presented.length, 'one constant-time comparison per token presented');
  for (const [i, [actual, expected]] of calls.entries()) {
    assert.is(actual.length, 16);
    assert.is(expected.length, 16);
    assert.equal(actual, createHash('sha256').update(presented[i]!).digest().subarray(0, 16), 'the digest of the presented token');
    assert.equal(expected, Buffer.from(a.hash, 'base64url'), 'the stored hash');
  }
  // The registry resolves a token through the same comparison.
  const reg = new SessionRegistry({ autoAudit: false });
  try {
    const { session, token } = await reg.create({ userId: 'alice' });
    const wrong = `${session.id}.${flip(token.slice(37), 42)}`;
    const found: Array<unknown> = [];
    const viaRegistry = await spyTimingSafeEqual(async () => {
      found.push((await reg.getByToken(token))?.id, await reg.getByToken(wrong));
    });
    assert.equal(found, [session.id, null]);
    assert.is(viaRegistry.length, 2);
    for (const [x, y] of viaRegistry) assert.equal([x.length, y.length], [16, 16]);
  } finally {
    await reg.close();
  }
});

test('tokenSessionId and isWellFormedToken accept only the token shape', () => {
  const { token } = createToken(uuidv7());
  for (const bad of [undefined, null, 42, '', 'x'.repeat(43), token.slice(37), token.replace('.', '-'), `${token}=`, token.toUpperCase()]) {
    assert.not.ok(isWellFormedToken(bad), String(bad));
    assert.is(tokenSessionId(bad), null);
  }
});

test.run();
