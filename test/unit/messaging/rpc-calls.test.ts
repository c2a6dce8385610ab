/**
 * The table of calls (`defineCalls`) and `RpcError`'s own checks: what a
 * table accepts, the coded errors for what it refuses, and the ids it
 * derives from registered message types.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { ErrorCode, NetloopError, isNetloopError } from '../../../lib/core/errors.js';
import type { ErrorCodeValue } from '../../../lib/core/errors.js';
import { MessageRegistry } from '../../../lib/codec/message-registry.js';
import { rawSerializer } from '../../../lib/codec/serializers.js';
import { RpcCalls, defineCalls } from '../../../lib/messaging/rpc-calls.js';
import type { RpcCallSpec } from '../../../lib/messaging/rpc-calls.js';
import { RpcError, wireErrorOf } from '../../../lib/messaging/rpc-error.js';

/** The coded error `fn` throws, checked to be `code`. */
function thrown(fn: () => unknown, code: ErrorCodeValue): Record<string, unknown> {
  try {
    fn();
  } catch (err) {
    assert.ok(isNetloopError(err, code), `expected ${code}, got ${String(err)}`);
    return err.details;
  }
  assert.unreachable(`expected ${code}`);
  return {};
}

test('defineCalls: names, ids and reply ids, from explicit ids, registered message types and serializers', () => {
  const registry = new MessageRegistry().register(40, 'Ping', 'utf8').register(41, 'Pong', 'utf8');
  const ping = registry.resolve('Ping');
  const pong = registry.resolve('Pong');
  const calls = defineCalls({
    Echo: { id: 2, request: 'raw', reply: rawSerializer },
    Ping: { request: ping, reply: pong },
    Both: { id: 7, request: ping, reply: 'json', replyId: 70 },
  });
  assert.ok(calls instanceof RpcCalls);
  assert.equal(calls.names(), ['Echo', 'Ping', 'Both']);
  assert.equal([calls.idOf('Echo'), calls.idOf('Ping'), calls.idOf('Both'), calls.idOf('Nope')], [2, 40, 7, undefined]);
  // The reply id: the reply's message type, else the given one, else the request's id.
  assert.equal(
    ['Echo', 'Ping', 'Both'].map((n) => calls._byName.get(n)!.replyId),
    [2, 41, 70],
  );
  assert.is(calls.maxId, 70);
  assert.is(calls._byId.get(40)!.name, 'Ping');
  assert.ok(Object.isFrozen(calls));
});

test('defineCalls refuses what it cannot use with NETLOOP_INVALID_OPTION naming the option, and two calls of one id with NETLOOP_DUPLICATE_TYPE', () => {
  const bad = (specs: unknown): Record<string, unknown> => thrown(() => defineCalls(specs as Record<string, RpcCallSpec>), ErrorCode.INVALID_OPTION);
  assert.is(bad(null)['option'], 'calls');
  assert.is(bad([])['option'], 'calls');
  assert.is(bad({ A: 5 })['option'], 'calls.A');
  assert.is(bad({ A: { id: 1, request: 'xml', reply: 'raw' } })['option'], 'calls.A.request');
  assert.is(bad({ A: { id: 1, request: 'raw', reply: { encode: 1 } } })['option'], 'calls.A.reply');
  assert.is(bad({ A: { id: 1, request: 42, reply: 'raw' } })['option'], 'calls.A.request');
  assert.is(bad({ A: { request: 'raw', reply: 'raw' } })['option'], 'calls.A.id');
  for (const id of [-1, 1.5, 2 ** 32, Number.NaN, '3']) assert.is(bad({ A: { id, request: 'raw', reply: 'raw' } })['option'], 'calls.A.id');
  assert.is(bad({ A: { id: 1, request: 'raw', reply: 'raw', replyId: -2 } })['option'], 'calls.A.replyId');
  // 'toString' is a property of every object, not a serializer's name.
  assert.is(bad({ A: { id: 1, request: 'toString', reply: 'raw' } })['option'], 'calls.A.request');
  const dup = thrown(
    () => defineCalls({ A: { id: 9, request: 'raw', reply: 'raw' }, B: { id: 9, request: 'utf8', reply: 'utf8' } }),
    ErrorCode.DUPLICATE_TYPE,
  );
  assert.equal([dup['id'], dup['names']], [9, ['A', 'B']]);
});

test('RpcError: a code of 1 to 64 UTF-8 bytes and a string message, cut to 1024 bytes; what crosses the wire for each kind of throw', () => {
  const e = new RpcError('NOT_FOUND', 'no user 7', { cause: new Error('local'), details: { user: 7 } });
  assert.equal([e.code, e.remoteCode, e.message, e.name], [ErrorCode.RPC_REMOTE_ERROR, 'NOT_FOUND', 'no user 7', 'RpcError']);
  assert.equal(e.details, { user: 7, remoteCode: 'NOT_FOUND' });
  assert.is(Buffer.byteLength(new RpcError('X', 'é'.repeat(600)).message), 1024);
  for (const code of ['', 'é'.repeat(33), 5 as unknown as string]) thrown(() => new RpcError(code, 'm'), ErrorCode.INVALID_VALUE);
  thrown(() => new RpcError('C', null as unknown as string), ErrorCode.INVALID_VALUE);
  // What a handler's throw becomes on the wire.
  assert.equal(wireErrorOf(e), { code: 'NOT_FOUND', message: 'no user 7', fault: false });
  assert.equal(wireErrorOf(new RpcError('E', 'x', {})), { code: 'E', message: 'x', fault: false });
  const store = wireErrorOf(new NetloopError(ErrorCode.STORE_IO, 'disk /var/secret failed'));
  assert.equal(store, { code: ErrorCode.STORE_IO, message: `the handler failed (${ErrorCode.STORE_IO})`, fault: true });
  assert.equal(wireErrorOf(new TypeError('secret')), { code: ErrorCode.RPC_HANDLER_FAILED, message: 'the handler failed', fault: true });
});

test.run();
