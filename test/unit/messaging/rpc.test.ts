/**
 * Request/response over real sockets on loopback: replies (sync and async
 * handlers, both directions), remote error codes, unknown calls, the
 * netloop envelope's bytes, malformed envelopes, payloads that do not
 * decode, and the owner seams (frame types reserved and given back).
 * Limits, timeouts, aborts and closes are in rpc-lifecycle.test.ts.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { ErrorCode, NetloopError, isNetloopError } from '../../../lib/core/errors.js';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import { MessageRegistry } from '../../../lib/codec/message-registry.js';
import { FramedServer } from '../../../lib/framing/framed-server.js';
import { FramedConnector } from '../../../lib/framing/framed-connector.js';
import type { FramedClient } from '../../../lib/framing/framed-client.js';
import { enableRpc, RPC_DEFAULTS } from '../../../lib/messaging/rpc.js';
import { RpcError } from '../../../lib/messaging/rpc-error.js';
import { defineCalls } from '../../../lib/messaging/rpc-calls.js';
import { until, waitFor } from '../../helpers/net.js';
import { calls, deferred, frame, hex, json, pair, rawPeer, readFrame, rejectsWith } from './rpc-rig.js';

test('a call resolves with the handler\'s reply: sync and async handlers, several in flight, answered out of order', async () => {
  const p = await pair();
  try {
    const users = new Map([[7, { id: 7, name: 'ann' }]]);
    p.srv.handle('GetUser', async (_client, { id }) => users.get(id) ?? { id, name: '?' });
    p.srv.handle('Echo', (_client, bytes) => bytes);
    const gates = [deferred(), deferred(), deferred()];
    p.srv.handle('Wait', async (_client, text) => {
      await gates[Number(text)]!.promise;
      return `done ${text}`;
    });
    const user = await p.cli.call(p.client, 'GetUser', { id: 7 });
    assert.equal(user, { id: 7, name: 'ann' });
    const echoed = await p.cli.call(p.client, 'Echo', Buffer.from('abc'));
    assert.ok(Buffer.isBuffer(echoed));
    assert.is(echoed.toString(), 'abc');
    // Three calls in flight, answered in reverse order: each gets its own reply.
    const waits = ['0', '1', '2'].map((t) => p.cli.call(p.client, 'Wait', t));
    await until(() => p.srv.stats().handling === 3, 'three handlers running');
    assert.is(p.cli.inFlight(p.client), 3);
    for (const g of [...gates].reverse()) g.resolve();
    assert.equal(await Promise.all(waits), ['done 0', 'done 1', 'done 2']);
    assert.is(p.cli.inFlight(p.client), 0);
    const s = p.cli.stats();
    assert.equal([s.calls, s.replies, s.inFlight], [5, 5, 0]);
    const r = p.srv.stats();
    assert.equal([r.requests, r.answered, r.handling, r.failed], [5, 5, 0, 0]);
  } finally {
    await p.close();
  }
});

test('both directions: the server calls its client, which answers, on the same connection as the client\'s own calls', async () => {
  const p = await pair();
  try {
    p.cli.handle('GetUser', (_client, { id }) => ({ id, name: 'from the client' }));
    p.srv.handle('GetUser', (_client, { id }) => ({ id, name: 'from the server' }));
    const [fromClient, fromServer] = await Promise.all([
      p.srv.call(p.serverSide, 'GetUser', { id: 1 }),
      p.cli.call(p.client, 'GetUser', { id: 2 }),
    ]);
    assert.equal(fromClient, { id: 1, name: 'from the client' });
    assert.equal(fromServer, { id: 2, name: 'from the server' });
    // Each side numbers its own calls: both used id 1, with no confusion.
    assert.is(p.srv.stats().calls, 1);
    assert.is(p.cli.stats().calls, 1);
    // One-way messages still flow beside the calls.
    const got = waitFor<[FramedClient, { payload: Buffer }]>(p.server, 'message');
    p.client.send(9, Buffer.from('notify'));
    const [, message] = await got;
    assert.is(message.payload.toString(), 'notify');
  } finally {
    await p.close();
  }
});

test('a handler\'s RpcError reaches the caller with its code and message; a NetloopError keeps only its code; any other throw is NETLOOP_RPC_HANDLER_FAILED with a fixed message, reported on handler-error; the connection stays open', async () => {
  const p = await pair();
  try {
    const reported: Array<[unknown, string]> = [];
    p.srv.on('handler-error', (_client, error, call) => void reported.push([error, call.name]));
    p.srv.handle('Fail', async (_client, { how }) => {
      void how;
      return null;
    });
    p.srv.handle('GetUser', async (_client, { id }) => {
      if (id === 1) throw new RpcError('NOT_FOUND', 'no user 1');
      if (id === 2) throw new NetloopError(ErrorCode.STORE_IO, 'disk /var/secret/store failed: EIO');
      if (id === 3) throw new TypeError('x is not a function (at /srv/app/secret.js:12)');
      if (id === 4) return Promise.reject('a string, not an Error');
      throw new RpcError('X'.repeat(64), 'é'.repeat(2000)); // the longest code; a message cut to 1024 bytes
    });

    const notFound = await rejectsWith(p.cli.call(p.client, 'GetUser', { id: 1 }), ErrorCode.RPC_REMOTE_ERROR);
    assert.ok(notFound instanceof RpcError);
    assert.is((notFound as RpcError).remoteCode, 'NOT_FOUND');
    assert.is(notFound.message, 'no user 1');
    assert.is(notFound.details['remoteCode'], 'NOT_FOUND');
    assert.is(notFound.details['call'], 'GetUser');

    const store = (await rejectsWith(p.cli.call(p.client, 'GetUser', { id: 2 }), ErrorCode.RPC_REMOTE_ERROR)) as RpcError;
    assert.is(store.remoteCode, ErrorCode.STORE_IO);
    assert.not.match(store.message, /secret|EIO/);

    for (const id of [3, 4]) {
      const generic = (await rejectsWith(p.cli.call(p.client, 'GetUser', { id }), ErrorCode.RPC_REMOTE_ERROR)) as RpcError;
      assert.is(generic.remoteCode, ErrorCode.RPC_HANDLER_FAILED);
      assert.is(generic.message, 'the handler failed');
      assert.is(generic.stack?.includes('secret.js'), false, 'no stack of the responder');
      assert.is(generic.cause, undefined);
    }
    const long = (await rejectsWith(p.cli.call(p.client, 'GetUser', { id: 5 }), ErrorCode.RPC_REMOTE_ERROR)) as RpcError;
    assert.is(long.remoteCode, 'X'.repeat(64));
    assert.is(Buffer.byteLength(long.message), 1024);

    // The RpcErrors were answers; the other three were faults, reported with the error itself.
    assert.equal(
      reported.map(([e, name]) => [isNetloopError(e) ? e.code : e instanceof Error ? e.name : typeof e, name]),
      [
        [ErrorCode.STORE_IO, 'GetUser'],
        ['TypeError', 'GetUser'],
        ['string', 'GetUser'],
      ],
    );
    const s = p.srv.stats();
    assert.equal([s.failed, s.answered], [5, 0]);
    assert.is(p.cli.stats().remoteErrors, 5);
    // The connection is still open and answers.
    assert.is(await p.cli.call(p.client, 'Fail', { how: 'not at all' }), null);
    assert.ok(p.client.writable && p.serverSide.writable);
  } finally {
    await p.close();
  }
});

test('with no handler-error listener, a failing handler is reported on the RPC\'s error event (else a process warning), as NETLOOP_HANDLER_ERROR with the fault as cause', async () => {
  const p = await pair();
  try {
    const errors: NetloopError[] = [];
    p.srv.on('error', (e) => void errors.push(e as NetloopError));
    p.srv.handle('GetUser', () => {
      throw new RangeError('boom');
    });
    await rejectsWith(p.cli.call(p.client, 'GetUser', { id: 1 }), ErrorCode.RPC_REMOTE_ERROR);
    assert.is(errors.length, 1);
    assert.is(errors[0]!.code, ErrorCode.HANDLER_ERROR);
    assert.ok(errors[0]!.cause instanceof RangeError);
    assert.equal(errors[0]!.details['call'], 'GetUser');
  } finally {
    await p.close();
  }
});

test('an unknown request type is answered NETLOOP_RPC_UNKNOWN_CALL: a call the responder\'s table lacks, and one it defines without a handler', async () => {
  const p = await pair();
  try {
    // Nobody is in both tables, but the server never handles it.
    await rejectsWith(p.cli.call(p.client, 'Nobody', 'hi'), ErrorCode.RPC_REMOTE_ERROR).then((e) => {
      assert.is((e as RpcError).remoteCode, ErrorCode.RPC_UNKNOWN_CALL);
    });
    // A caller whose table has a call the responder's has not (id 99).
    const other = defineCalls({ Newer: { id: 99, request: 'utf8', reply: 'utf8' } });
    const c2 = new FramedConnector(p.loop, { port: p.server.port, reconnect: false });
    const rpc2 = enableRpc(c2, { calls: other });
    const connected = waitFor<[FramedClient]>(c2, 'connected');
    c2.connect();
    const [client2] = await connected;
    const e = (await rejectsWith(rpc2.call(client2, 'Newer', 'x'), ErrorCode.RPC_REMOTE_ERROR)) as RpcError;
    assert.is(e.remoteCode, ErrorCode.RPC_UNKNOWN_CALL);
    assert.is(e.message, 'no handler for call type 99');
    assert.is(p.srv.stats().unknown, 2);
    // A name not in the caller's own table is refused before anything is sent.
    await rejectsWith(p.cli.call(p.client, 'Nope' as 'Echo', Buffer.alloc(0)), ErrorCode.UNKNOWN_TYPE);
    assert.is(p.cli.stats().calls, 1);
  } finally {
    await p.close();
  }
});

test('the envelope on the wire: a raw peer\'s request frame gets the reply frame byte for byte; error replies and unknown types too', async () => {
  const r = await rawPeer();
  try {
    r.rpc.handle('Wait', (_client, text) => text.toUpperCase());
    r.rpc.handle('GetUser', () => {
      throw new RpcError('NOPE', 'no');
    });
    // request: 01 · callId 00000007 · type 00000003 · "hi"  in a frame of type 0xfff0
    r.peer.write(frame(0xfff0, hex('01 00000007 00000003 6869')));
    const reply = await readFrame(r.peer);
    // reply: 02 · callId 00000007 · "HI"
    assert.is(reply.bytes.toString('hex'), hex('0000 0007 fff0 02 00000007 4849').toString('hex'));
    // An error reply: 03 · callId · code length 4 · "NOPE" · message length 0002 · "no"
    r.peer.write(frame(0xfff0, hex('01 00000008 00000001 7b7d')));
    const error = await readFrame(r.peer);
    assert.is(error.value.toString('hex'), hex('03 00000008 04 4e4f5045 0002 6e6f').toString('hex'));
    // An unknown type (77): NETLOOP_RPC_UNKNOWN_CALL.
    r.peer.write(frame(0xfff0, hex('01 00000009 0000004d')));
    const unknown = await readFrame(r.peer);
    const code = ErrorCode.RPC_UNKNOWN_CALL;
    assert.is(unknown.value.subarray(0, 6).toString('hex'), hex(`03 00000009 ${code.length.toString(16).padStart(2, '0')}`).toString('hex'));
    assert.is(unknown.value.subarray(6, 6 + code.length).toString(), code);
    assert.ok(r.client.writable);
  } finally {
    await r.close();
  }
});

test('a malformed envelope closes the connection with protocol-error (NETLOOP_BAD_PAYLOAD); so does a call id already in flight', async () => {
  for (const [name, value] of [
    ['empty', ''],
    ['unknown kind', '09 00000001'],
    ['truncated request', '01 000000'],
    ['cancel with trailing bytes', '04 00000001 00'],
    ['error with an empty code', '03 00000001 00 0000'],
  ] as const) {
    const r = await rawPeer();
    try {
      const closed = waitFor<[FramedClient, string, NetloopError]>(r.server, 'close');
      r.peer.write(frame(0xfff0, hex(value)));
      const [, reason, error] = await closed;
      assert.is(reason, 'protocol-error', name);
      assert.is(error.code, ErrorCode.BAD_PAYLOAD, name);
    } finally {
      await r.close();
    }
  }
  const r = await rawPeer();
  try {
    const gate = deferred<string>();
    r.rpc.handle('Wait', () => gate.promise);
    const closed = waitFor<[FramedClient, string, NetloopError]>(r.server, 'close');
    r.peer.write(Buffer.concat([frame(0xfff0, hex('01 00000001 00000003 61')), frame(0xfff0, hex('01 00000001 00000003 62'))]));
    const [, reason, error] = await closed;
    assert.is(reason, 'protocol-error');
    assert.is(error.details['reason'], 'duplicate-call-id');
    gate.resolve('late');
  } finally {
    await r.close();
  }
});

test('a request whose payload does not decode is answered NETLOOP_BAD_PAYLOAD (the connection stays); a reply that does not decode rejects the call with NETLOOP_BAD_PAYLOAD; a request the serializer refuses is not sent', async () => {
  const r = await rawPeer();
  try {
    r.rpc.handle('GetUser', () => ({ id: 1, name: 'x' }));
    // GetUser's request is JSON; "{" is not.
    r.peer.write(frame(0xfff0, hex('01 00000001 00000001 7b')));
    const error = await readFrame(r.peer);
    const codeLength = error.value[5]!;
    assert.is(error.value.subarray(6, 6 + codeLength).toString(), ErrorCode.BAD_PAYLOAD);
    assert.not.match(error.value.toString(), /\{/, 'the peer\'s bytes are not quoted back');
    assert.is(r.rpc.stats().badRequests, 1);
    assert.ok(r.client.writable);
    // The server calls the raw peer, which answers with a reply that is not JSON.
    const call = r.rpc.call(r.client, 'GetUser', { id: 1 });
    const request = await readFrame(r.peer);
    assert.is(request.value.toString('hex'), Buffer.concat([hex('01 00000001 00000001'), Buffer.from('{"id":1}')]).toString('hex'));
    r.peer.write(frame(0xfff0, hex('02 00000001 7b')));
    const bad = await rejectsWith(call, ErrorCode.BAD_PAYLOAD);
    assert.is(bad.details['call'], 'GetUser');
    // A request its serializer refuses: INVALID_VALUE, and nothing is sent.
    const cyclic: { id: number; self?: unknown } = { id: 1 };
    cyclic.self = cyclic;
    await rejectsWith(r.rpc.call(r.client, 'GetUser', cyclic), ErrorCode.INVALID_VALUE);
    assert.is(r.rpc.stats().calls, 1);
  } finally {
    await r.close();
  }
});

test('a strict registry: RPC frames pass beside registered messages; the frame type must be free (registered or reserved already: DUPLICATE_TYPE)', async () => {
  const loop = new EventLoop();
  const registry = new MessageRegistry();
  registry.register(1, 'Chat', 'utf8');
  registry.register(0xfff1, 'Taken', 'raw');
  const server = new FramedServer(loop, { port: 0, registry });
  try {
    const rpc = enableRpc(server, { calls });
    assert.equal(rpc.frameTypes, [RPC_DEFAULTS.frameType]);
    // The same type twice, or a registered one: refused, and nothing is left reserved.
    const dup = (() => {
      try {
        enableRpc(server, { calls });
      } catch (err) {
        return err;
      }
      return null;
    })();
    assert.ok(isNetloopError(dup, ErrorCode.DUPLICATE_TYPE));
    assert.throws(() => enableRpc(server, { calls, frameType: 0xfff1 }), (e: unknown) => isNetloopError(e, ErrorCode.DUPLICATE_TYPE));
    // close() gives the type back: it can be reserved again.
    rpc.close();
    const again = enableRpc(server, { calls, frameType: 0xfff0 });
    again.close();
  } finally {
    await loop.close();
  }
});

test('options are validated (NETLOOP_INVALID_OPTION), before anything is reserved; a 1-byte type field needs a frameType it can carry', async () => {
  const loop = new EventLoop();
  const server = new FramedServer(loop, { port: 0 });
  const bad: Array<[string, Record<string, unknown>]> = [
    ['timeoutMs', { timeoutMs: 0 }],
    ['timeoutMs', { timeoutMs: 2 ** 31 }],
    ['timeoutMs', { timeoutMs: Number.NaN }],
    ['maxCallsInFlight', { maxCallsInFlight: 0 }],
    ['maxCallsInFlight', { maxCallsInFlight: 1.5 }],
    ['maxHandlersInFlight', { maxHandlersInFlight: -1 }],
    ['envelope', { envelope: 'grpc' }],
    ['frameType', { frameType: -1 }],
    ['frameType', { envelope: 'cellnet', frameType: 7 }],
    ['calls', { calls: { GetUser: {} } }],
  ];
  for (const [option, extra] of bad) {
    try {
      enableRpc(server, { calls, ...extra } as never);
      assert.unreachable(option);
    } catch (err) {
      assert.ok(isNetloopError(err, ErrorCode.INVALID_OPTION), `${option}: ${String(err)}`);
      assert.is(err.details['option'], option);
    }
  }
  assert.throws(() => enableRpc({} as never, { calls }), (e: unknown) => isNetloopError(e, ErrorCode.INVALID_OPTION));
  assert.throws(() => enableRpc(server, null as never), (e: unknown) => isNetloopError(e, ErrorCode.INVALID_OPTION));
  // Nothing was left reserved by the refusals.
  enableRpc(server, { calls }).close();
  // A layout with a 1-byte type field: the default frame type does not fit; an explicit one does.
  const small = new FramedServer(loop, { port: 0, layout: { lengthBytes: 2, typeBytes: 1 } });
  try {
    enableRpc(small, { calls });
    assert.unreachable('the default type does not fit');
  } catch (err) {
    assert.ok(isNetloopError(err, ErrorCode.INVALID_OPTION));
    assert.is(err.details['option'], 'frameType');
  }
  assert.equal(enableRpc(small, { calls, frameType: 0xf0 }).frameTypes, [0xf0]);
  // cellnet reads 16-bit inner ids: a call id above 0xffff is refused in cellnet mode.
  const wide = defineCalls({ Big: { id: 0x10000, request: 'raw', reply: 'raw' } });
  assert.throws(() => enableRpc(server, { calls: wide, envelope: 'cellnet' }), (e: unknown) => isNetloopError(e, ErrorCode.INVALID_OPTION));
  // handle(): a name not among the calls, twice, or not a function.
  const rpc = enableRpc(server, { calls, frameType: 0xffe0 });
  assert.throws(() => rpc.handle('Nope' as 'Echo', (_c, b) => b), (e: unknown) => isNetloopError(e, ErrorCode.UNKNOWN_TYPE));
  rpc.handle('Echo', (_c, b) => b);
  assert.throws(() => rpc.handle('Echo', (_c, b) => b), (e: unknown) => isNetloopError(e, ErrorCode.DUPLICATE_TYPE));
  assert.throws(() => rpc.handle('Wait', 5 as never), (e: unknown) => isNetloopError(e, ErrorCode.INVALID_OPTION));
  await loop.close();
});

test('call() never throws: bad options, a client of another owner, a closed client and a detached RPC are coded rejections', async () => {
  const p = await pair();
  try {
    await rejectsWith(p.cli.call(p.client, 'Wait', 'x', { timeoutMs: 0 }), ErrorCode.INVALID_OPTION);
    await rejectsWith(p.cli.call(p.client, 'Wait', 'x', { signal: {} as AbortSignal }), ErrorCode.INVALID_OPTION);
    await rejectsWith(p.cli.call(p.client, 'Wait', 'x', 5 as never), ErrorCode.INVALID_OPTION);
    // The server's client is not a connection of the connector's RPC.
    await rejectsWith(p.cli.call(p.serverSide, 'Wait', 'x'), ErrorCode.INVALID_VALUE);
    await rejectsWith(p.cli.call(null as never, 'Wait', 'x'), ErrorCode.INVALID_VALUE);
    // Too large for one frame: FRAME_TOO_LARGE, nothing queued.
    const huge = Buffer.alloc(p.server.layout.maxFrameLength);
    await rejectsWith(p.cli.call(p.client, 'Echo', huge), ErrorCode.FRAME_TOO_LARGE);
    assert.is(p.cli.stats().calls, 0);
    p.cli.close();
    await rejectsWith(p.cli.call(p.client, 'Wait', 'x'), ErrorCode.RPC_ABORTED);
    p.cli.close();
  } finally {
    await p.close();
  }
});

void json;
test.run();
