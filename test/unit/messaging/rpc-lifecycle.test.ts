/**
 * The life of a call over real sockets: the per-connection limits, the
 * timeout (driven by the loop's clock), cancellation by an AbortSignal, late
 * replies dropped and counted, and a connection's close failing every call
 * at once.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { ErrorCode, NetloopError } from '../../../lib/core/errors.js';
import { ManualClock } from '../../../lib/core/clock.js';
import type { FramedClient } from '../../../lib/framing/framed-client.js';
import { RpcError } from '../../../lib/messaging/rpc-error.js';
import { RpcPeer } from '../../../lib/messaging/rpc-peer.js';
import type { PendingCall } from '../../../lib/messaging/rpc-peer.js';
import type { RpcCallInfo } from '../../../lib/messaging/rpc-peer.js';
import { connectRaw, until, waitFor } from '../../helpers/net.js';
import { deferred, frame, hex, pair, rawPeer, readFrame, rejectsWith } from './rpc-rig.js';

/** True once `promise` has settled, checked after the microtasks queued now have run (no I/O in between). */
async function settledNow(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 5; i++) await null;
  return settled;
}

test('maxCallsInFlight: the call over the limit is refused at once with NETLOOP_RPC_LIMIT and nothing is sent; a reply frees a place', async () => {
  const r = await rawPeer({ maxCallsInFlight: 2 });
  try {
    // The server calls the raw peer, which holds its answers.
    const first = r.rpc.call(r.client, 'Wait', 'a');
    const second = r.rpc.call(r.client, 'Wait', 'b');
    const over = r.rpc.call(r.client, 'Wait', 'c');
    assert.ok(await settledNow(over), 'refused without waiting for any I/O');
    const err = await rejectsWith(over, ErrorCode.RPC_LIMIT);
    assert.is(err.details['maxCallsInFlight'], 2);
    assert.is(r.rpc.inFlight(r.client), 2);
    const f1 = await readFrame(r.peer);
    const f2 = await readFrame(r.peer);
    assert.equal([f1.value.readUInt32BE(1), f2.value.readUInt32BE(1)], [1, 2]);
    // Answer call 1: a place is free, and the next call goes out as call 3 (the refused one took no id and sent nothing).
    r.peer.write(frame(0xfff0, Buffer.concat([hex('02 00000001'), Buffer.from('A')])));
    assert.is(await first, 'A');
    const third = r.rpc.call(r.client, 'Wait', 'd');
    const f3 = await readFrame(r.peer);
    assert.is(f3.value.toString('hex'), Buffer.concat([hex('01 00000003 00000003'), Buffer.from('d')]).toString('hex'));
    r.peer.write(Buffer.concat([frame(0xfff0, hex('02 00000002 42')), frame(0xfff0, hex('02 00000003 44'))]));
    assert.equal(await Promise.all([second, third]), ['B', 'D']);
    const s = r.rpc.stats();
    assert.equal([s.calls, s.limited, s.replies, s.inFlight], [3, 1, 3, 0]);
  } finally {
    await r.close();
  }
});

test('maxHandlersInFlight: a request that arrives while the limit of handlers run is answered NETLOOP_RPC_BUSY at once; the running ones finish and answer, and later requests are taken', async () => {
  const p = await pair({ srv: { maxHandlersInFlight: 2 } });
  try {
    const gates = [deferred<string>(), deferred<string>()];
    let started = 0;
    p.srv.handle('Wait', () => gates[started++]!.promise);
    p.srv.handle('Echo', (_c, b) => b);
    const a = p.cli.call(p.client, 'Wait', 'a');
    const b = p.cli.call(p.client, 'Wait', 'b');
    await until(() => p.srv.stats().handling === 2, 'two handlers running');
    const refused = (await rejectsWith(p.cli.call(p.client, 'Wait', 'c'), ErrorCode.RPC_REMOTE_ERROR)) as RpcError;
    assert.is(refused.remoteCode, ErrorCode.RPC_BUSY);
    // Any call is refused while the limit runs, even one whose handler is synchronous.
    const echo = (await rejectsWith(p.cli.call(p.client, 'Echo', Buffer.from('e')), ErrorCode.RPC_REMOTE_ERROR)) as RpcError;
    assert.is(echo.remoteCode, ErrorCode.RPC_BUSY);
    assert.is(started, 2, 'the refused handler never ran');
    gates[0]!.resolve('A');
    assert.is(await a, 'A');
    // One place is free again.
    assert.is((await p.cli.call(p.client, 'Echo', Buffer.from('e'))).toString(), 'e');
    gates[1]!.resolve('B');
    assert.is(await b, 'B');
    const s = p.srv.stats();
    assert.equal([s.busy, s.handling, s.answered], [2, 0, 3]);
  } finally {
    await p.close();
  }
});

test('timeout: a call rejects with NETLOOP_RPC_TIMEOUT when the loop\'s clock passes its deadline (the RPC\'s default or the call\'s own); the peer is sent a cancellation, its handler\'s signal aborts, and what the handler returns is not sent', async () => {
  const clock = new ManualClock(1_000);
  const p = await pair({ clock, cli: { timeoutMs: 500 } });
  try {
    const gate = deferred<string>();
    let info: RpcCallInfo | null = null;
    p.srv.handle('Wait', (_client, _text, call) => {
      info = call;
      return gate.promise;
    });
    const call = p.cli.call(p.client, 'Wait', 'x');
    await until(() => p.srv.stats().handling === 1, 'the handler running');
    clock.advance(499);
    p.loop.runDueTimers();
    assert.not.ok(await settledNow(call), 'not before its deadline');
    clock.advance(1);
    p.loop.runDueTimers();
    const err = await rejectsWith(call, ErrorCode.RPC_TIMEOUT);
    assert.equal([err.details['timeoutMs'], err.details['call'], err.details['callId']], [500, 'Wait', 1]);
    // The cancellation reaches the handler's signal (made before or after it).
    await until(() => p.srv.stats().cancelled === 1, 'the cancellation received');
    const signal = info!.signal;
    await until(() => signal.aborted, 'the handler\'s signal aborted');
    assert.is((signal.reason as NetloopError).code, ErrorCode.RPC_ABORTED);
    gate.resolve('too late');
    // A round trip after it: had the late reply been sent, it would have arrived first.
    p.srv.handle('Echo', (_c, b) => b);
    await p.cli.call(p.client, 'Echo', Buffer.from('after'), { timeoutMs: 60_000 });
    assert.is(p.srv.stats().answered, 1, 'only the echo was answered');
    assert.is(p.cli.stats().lateReplies, 0);
    assert.equal([p.cli.stats().timeouts, p.cli.stats().inFlight], [1, 0]);
    // A call's own timeout overrides the default.
    const own = p.cli.call(p.client, 'Wait', 'y', { timeoutMs: 5 });
    clock.advance(5);
    p.loop.runDueTimers();
    assert.is((await rejectsWith(own, ErrorCode.RPC_TIMEOUT)).details['timeoutMs'], 5);
  } finally {
    await p.close();
  }
});

test('a reply or error reply that arrives after its call timed out is dropped and counted (lateReplies), never delivered; ids are not reused, so it cannot answer a later call', async () => {
  const clock = new ManualClock();
  const r = await rawPeer({ timeoutMs: 100 }, {}, clock);
  try {
    const call = r.rpc.call(r.client, 'Wait', 'x');
    const request = await readFrame(r.peer);
    assert.is(request.value.readUInt32BE(1), 1);
    clock.advance(100);
    r.loop.runDueTimers();
    await rejectsWith(call, ErrorCode.RPC_TIMEOUT);
    // The peer is told: a cancellation of call 1.
    const cancel = await readFrame(r.peer);
    assert.is(cancel.value.toString('hex'), '0400000001');
    // A second call is in flight (id 2) when the late answers to call 1 arrive.
    const next = r.rpc.call(r.client, 'Wait', 'y');
    await readFrame(r.peer);
    r.peer.write(Buffer.concat([frame(0xfff0, hex('02 00000001 6c617465')), frame(0xfff0, hex('03 00000001 01 58 0000'))]));
    await until(() => r.rpc.stats().lateReplies === 2, 'both late answers counted');
    assert.not.ok(await settledNow(next), 'call 2 is not answered by call 1\'s reply');
    // A reply to an id never used is dropped and counted the same way.
    r.peer.write(Buffer.concat([frame(0xfff0, hex('02 00000063 00')), frame(0xfff0, hex('02 00000002 6f6b'))]));
    assert.is(await next, 'ok');
    assert.is(r.rpc.stats().lateReplies, 3);
    assert.ok(r.client.writable, 'late replies do not close the connection');
  } finally {
    await r.close();
  }
});

test('abort: an AbortSignal rejects the call with NETLOOP_RPC_ABORTED (its reason as cause) and the peer is sent a cancellation; a signal aborted before the call sends nothing; one aborted after the reply does nothing', async () => {
  const r = await rawPeer();
  try {
    const ac = new AbortController();
    const call = r.rpc.call(r.client, 'Wait', 'x', { signal: ac.signal });
    await readFrame(r.peer);
    const reason = new Error('the user left');
    ac.abort(reason);
    const err = await rejectsWith(call, ErrorCode.RPC_ABORTED);
    assert.is(err.cause, reason);
    assert.is((await readFrame(r.peer)).value.toString('hex'), '0400000001');
    // Aborted before the call: refused, nothing sent, no id taken.
    const early = r.rpc.call(r.client, 'Wait', 'y', { signal: AbortSignal.abort('gone') });
    assert.is((await rejectsWith(early, ErrorCode.RPC_ABORTED)).cause, 'gone');
    // A signal aborted after its call was answered: no cancellation.
    const late = new AbortController();
    const answered = r.rpc.call(r.client, 'Wait', 'z', { signal: late.signal });
    const f = await readFrame(r.peer);
    assert.is(f.value.readUInt32BE(1), 2, 'the early call took no id');
    r.peer.write(frame(0xfff0, hex('02 00000002 6f6b')));
    assert.is(await answered, 'ok');
    late.abort();
    const after = r.rpc.call(r.client, 'Wait', 'w');
    assert.is((await readFrame(r.peer)).value[0], 0x01, 'the next frame is a request, not a cancellation');
    r.peer.write(frame(0xfff0, hex('02 00000003 00')));
    await after;
    const s = r.rpc.stats();
    assert.equal([s.aborts, s.calls, s.replies], [1, 3, 2]);
  } finally {
    await r.close();
  }
});

test('close: every call waiting on a connection fails at once when it closes, with NETLOOP_CLIENT_CLOSED carrying the reason and error; the handlers\' signals abort; later calls are refused', async () => {
  const p = await pair();
  try {
    const gate = deferred<string>();
    const signals: AbortSignal[] = [];
    p.cli.handle('Wait', (_client, _text, call) => {
      signals.push(call.signal);
      return gate.promise;
    });
    p.srv.handle('Wait', () => new Promise<string>(() => undefined));
    // The server waits on two calls to the client, the client on one to the server.
    const fromServer = [p.srv.call(p.serverSide, 'Wait', 'a'), p.srv.call(p.serverSide, 'Wait', 'b')];
    const fromClient = p.cli.call(p.client, 'Wait', 'c');
    await until(() => signals.length === 2 && p.srv.stats().handling === 1, 'the handlers running');
    const cause = new NetloopError(ErrorCode.LOGIN_REFUSED, 'kicked');
    let atClose: [number, number] | null = null;
    p.server.on('close', () => {
      // As the close is reported, the calls have already failed (their rejections run as microtasks after this listener).
      atClose = [p.srv.stats().inFlight, p.srv.stats().closed];
    });
    const closed = waitFor<[FramedClient]>(p.connector, 'close');
    const serverErrors = fromServer.map((c) => rejectsWith(c, ErrorCode.CLIENT_CLOSED));
    const clientError = rejectsWith(fromClient, ErrorCode.CLIENT_CLOSED);
    p.serverSide.destroy('force-close', cause);
    for (const err of await Promise.all(serverErrors)) {
      assert.is(err.details['reason'], 'force-close');
      assert.is(err.cause, cause);
    }
    assert.equal(atClose, [0, 2]);
    await closed;
    // The client's side: its own call fails with its close's reason, its handlers' signals abort.
    const err = await clientError;
    assert.ok(['peer-closed', 'reset'].includes(err.details['reason'] as string), String(err.details['reason']));
    await until(() => signals.every((s) => s.aborted), 'the client\'s handlers\' signals aborted');
    assert.is((signals[0]!.reason as NetloopError).code, ErrorCode.CLIENT_CLOSED);
    gate.resolve('never sent');
    await rejectsWith(p.cli.call(p.client, 'Wait', 'd'), ErrorCode.CLIENT_CLOSED);
    assert.equal([p.srv.stats().closed, p.cli.stats().closed, p.srv.stats().inFlight], [2, 1, 0]);
  } finally {
    await p.close();
  }
});

test('call ids are per connection: the first call on each connection is id 1, whatever the others have sent', async () => {
  const r = await rawPeer();
  const accepted = waitFor<[FramedClient]>(r.server, 'connection');
  const second = await connectRaw(r.server.port);
  const [other] = await accepted;
  try {
    void r.rpc.call(r.client, 'Wait', 'a').catch(() => {});
    void r.rpc.call(r.client, 'Wait', 'b').catch(() => {});
    void r.rpc.call(other, 'Wait', 'c').catch(() => {});
    const ids = async (peer: typeof second, n: number): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) out.push((await readFrame(peer)).value.readUInt32BE(1));
      return out;
    };
    assert.equal(await ids(r.peer, 2), [1, 2]);
    assert.equal(await ids(second, 1), [1]);
    assert.equal([r.rpc.inFlight(r.client), r.rpc.inFlight(other)], [2, 1]);
  } finally {
    second.destroy();
    await r.close();
  }
});

test('call ids: 1, 2, ... per connection, from 2^32 - 1 back to 1, skipping ids still in flight and ids whose slot a waiting call holds', () => {
  const peer = new RpcPeer({} as FramedClient);
  const waiting = (id: number) => ({ id }) as PendingCall;
  assert.equal([peer.nextId(), peer.nextId()], [1, 2]);
  peer.lastId = 0xfffffffe;
  peer.pending.add(waiting(1));
  peer.pending.add(waiting(2));
  // 20 takes the slot of 4 in a table of 16 slots.
  peer.pending.add(waiting(20));
  assert.equal([peer.nextId(), peer.nextId(), peer.nextId()], [0xffffffff, 3, 5]);
  assert.equal([peer.pending.get(20)?.id, peer.pending.get(4), peer.pending.size], [20, undefined, 3]);
  // Half full, the table doubles: every call keeps a slot of its own and is found by its id.
  for (let id = 5; id <= 10; id++) peer.pending.add(waiting(id));
  assert.is(peer.pending.size, 9);
  for (const id of [1, 2, 20, 5, 10]) assert.is(peer.pending.get(id)?.id, id);
  assert.is(peer.pending.get(4), undefined);
  assert.equal(peer.pending.values().map((c) => c.id).sort((a, b) => a - b), [1, 2, 5, 6, 7, 8, 9, 10, 20]);
  assert.is(peer.pending.delete(waiting(20)), false, 'only the call itself is taken out');
});

test.run();
