import { test } from './helpers/uvu.js';
import * as assert from 'uvu/assert';
import { TOKEN_LENGTH, createToken, hashToken, isWellFormedToken, tokenMatches } from '../lib/session-token.js';

test('a token is 256 bits of base64url and its hash is hex SHA-256', () => {
  const { token, hash } = createToken();
  assert.is(token.length, TOKEN_LENGTH);
  assert.match(token, /^[A-Za-z0-9_-]{43}$/);
  assert.is(Buffer.from(token, 'base64url').length, 32);
  assert.match(hash, /^[0-9a-f]{64}$/);
  assert.is(hashToken(token), hash);
  assert.ok(isWellFormedToken(token));
});

test('tokens are unique', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 10_000; i++) seen.add(createToken().token);
  assert.is(seen.size, 10_000);
});

test('tokenMatches: right token, wrong token, malformed inputs', () => {
  const a = createToken();
  const b = createToken();
  assert.ok(tokenMatches(a.token, a.hash));
  assert.not.ok(tokenMatches(b.token, a.hash));
  assert.not.ok(tokenMatches(a.token.slice(1), a.hash));
  assert.not.ok(tokenMatches(`${a.token.slice(0, 42)}!`, a.hash));
  assert.not.ok(tokenMatches(a.token, a.hash.slice(2)));
  assert.not.ok(tokenMatches(a.token, a.hash.toUpperCase()));
  assert.not.ok(tokenMatches(42 as unknown as string, a.hash));
  assert.not.ok(isWellFormedToken(undefined));
});

test.run();
