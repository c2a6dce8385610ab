import { test } from './helpers/uvu.js';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import {
  TOKEN_HASH_LENGTH,
  TOKEN_LENGTH,
  createToken,
  hashToken,
  isWellFormedToken,
  tokenMatches,
  tokenSessionId,
} from '../lib/session-token.js';
import { uuidv7 } from '../lib/uuid-v7.js';
import { ErrorCode, NetloopError } from '../lib/errors.js';

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

test('tokenSessionId and isWellFormedToken accept only the token shape', () => {
  const { token } = createToken(uuidv7());
  for (const bad of [undefined, null, 42, '', 'x'.repeat(43), token.slice(37), token.replace('.', '-'), `${token}=`, token.toUpperCase()]) {
    assert.not.ok(isWellFormedToken(bad), String(bad));
    assert.is(tokenSessionId(bad), null);
  }
});

test.run();
