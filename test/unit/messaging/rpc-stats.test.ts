/**
 * What an RPC reports and how it keeps time, over real sockets: the
 * counters and latency histogram of `stats()`, calls with several timeouts
 * waiting at once (each timeout its own deadline list), and requests and
 * replies put together in one reused buffer beside larger ones that are
 * not.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { ErrorCode } from '../../../lib/core/errors.js';
import { ManualClock } from '../../../lib/core/clock.js';
import { RPC_LATENCY_BOUNDS } from '../../../lib/messaging/rpc.js';
import type { RpcError } from '../../../lib/messaging/rpc-error.js';
import { until } from '../../helpers/net.js';
import { deferred, frame, hex, pair, rawPeer, readFrame, rejectsWith } from './rpc-rig.js';

/** The index of the latency bucket a wait of `ms` falls in. */
function bucketOf(ms: number): number {
  const i = RPC_LATENCY_BOUNDS.findIndex((bound) => ms / 1000 <= bound);
  return i === -1 ? RPC_LATENCY_BOUNDS.length : i;
}

test('stats(): every counter of both sides after replies, a remote error, an unknown call, a timeout and a refusal; a snapshot is a copy', async () => {
  const clock = new ManualClock(5_000);
  const p = await pair({ clock, cli: { maxCallsInFlight: 2 } });
  try {
    const gate = deferred<string>();
    p.srv.handle('Echo', (_c, b) => b);
    p.srv.handle('Wait', () => gate.promise);
    p.srv.handle('Fail', () => {
      throw new Error('a bug');
    });
    p.srv.on('handler-error', () => {});
    await p.cli.call(p.client, 'Echo', Buffer.from('a'));
    await p.cli.call(p.client, 'Echo', Buffer.from('b'));
    await rejectsWith(p.cli.call(p.client, 'Fail', { how: 'throw' }), ErrorCode.RPC_REMOTE_ERROR);
    const unknown = (await rejectsWith(p.cli.call(p.client, 'Nobody', 'x'), ErrorCode.RPC_REMOTE_ERROR)) as RpcError;
    assert.is(unknown.remoteCode, ErrorCode.RPC_UNKNOWN_CALL);
    const waiting = p.cli.call(p.client, 'Wait', 'w', { timeoutMs: 10 });
    const second = p.cli.call(p.client, 'Wait', 'w2', { timeoutMs: 10 });
    await rejectsWith(p.cli.call(p.client, 'Echo', Buffer.from('c')), ErrorCode.RPC_LIMIT);
    await until(() => p.srv.stats().handling === 2, 'both handlers running');
    clock.advance(10);
    p.loop.runDueTimers();
    await rejectsWith(waiting, ErrorCode.RPC_TIMEOUT);
    await rejectsWith(second, ErrorCode.RPC_TIMEOUT);
    await until(() => p.srv.stats().cancelled === 2, 'the cancellations received');
    const c = p.cli.stats();
    assert.equal(
      [c.calls, c.inFlight, c.replies, c.remoteErrors, c.timeouts, c.aborts, c.closed, c.limited, c.lateReplies],
      [6, 0, 2, 2, 2, 0, 0, 1, 0],
    );
    const s = p.srv.stats();
    assert.equal([s.requests, s.handling, s.answered, s.failed, s.unknown, s.busy, s.badRequests, s.cancelled], [6, 2, 2, 1, 1, 0, 0, 2]);
    // A snapshot does not move with the RPC.
    c.latency.counts[0] = 99;
    assert.is(p.cli.stats().latency.counts[0] === 99, false);
    gate.resolve('late');
  } finally {
    await p.close();
  }
});

test('stats().latency: each answered call (reply or error reply) is counted in the bucket of its wait on the loop\'s clock, with its sum in seconds; timeouts are not', async () => {
  const clock = new ManualClock(1_000);
  const r = await rawPeer({ timeoutMs: 60_000 }, {}, clock);
  try {
    const empty = r.rpc.stats().latency;
    assert.equal(empty.bounds, RPC_LATENCY_BOUNDS);
    assert.is(empty.counts.length, RPC_LATENCY_BOUNDS.length + 1);
    assert.equal([empty.count, empty.sum, empty.counts.reduce((a, b) => a + b, 0)], [0, 0, 0]);
    // Four calls answered after 0, 30, 700 and 20,000 ms of the loop's clock (the last one beyond every bound).
    const waits = [0, 30, 700, 20_000];
    let answered = 0;
    for (let i = 0; i < waits.length; i++) {
      const call = r.rpc.call(r.client, 'Wait', 'x');
      const request = await readFrame(r.peer);
      const id = request.value.readUInt32BE(1);
      clock.advance(waits[i]!);
      if (i === 1) {
        // An error reply counts as an answer too.
        r.peer.write(frame(0xfff0, Buffer.concat([hex('03'), request.value.subarray(1, 5), hex('01 58 0000')])));
        await rejectsWith(call, ErrorCode.RPC_REMOTE_ERROR);
      } else {
        r.peer.write(frame(0xfff0, Buffer.concat([hex('02'), request.value.subarray(1, 5), Buffer.from('ok')])));
        assert.is(await call, 'ok');
      }
      answered++;
      assert.is(id, answered);
    }
    // A call that times out is not an answer.
    const lost = r.rpc.call(r.client, 'Wait', 'y', { timeoutMs: 5 });
    clock.advance(5);
    r.loop.runDueTimers();
    await rejectsWith(lost, ErrorCode.RPC_TIMEOUT);
    const h = r.rpc.stats().latency;
    const expected = new Array<number>(RPC_LATENCY_BOUNDS.length + 1).fill(0);
    for (const ms of waits) expected[bucketOf(ms)]!++;
    assert.equal(h.counts, expected);
    assert.is(h.counts[RPC_LATENCY_BOUNDS.length], 1, 'the 20 s wait is above every bound');
    assert.is(h.count, 4);
    assert.ok(Math.abs(h.sum - 20.73) < 1e-9, `sum ${h.sum} s`);
  } finally {
    await r.close();
  }
});

test('calls with different timeouts wait together: each expires at its own deadline, whatever the order they were made in, and a reply in between disturbs none', async () => {
  const clock = new ManualClock(0);
  const r = await rawPeer({ timeoutMs: 100 }, {}, clock);
  try {
    const a = r.rpc.call(r.client, 'Wait', 'a'); //                        deadline 100 (the default)
    const b = r.rpc.call(r.client, 'Wait', 'b', { timeoutMs: 40 }); //      deadline 40
    clock.advance(10);
    // Calls made in one synchronous run share one reading of the clock: let this run end first.
    await null;
    const c = r.rpc.call(r.client, 'Wait', 'c'); //                        deadline 110
    const d = r.rpc.call(r.client, 'Wait', 'd', { timeoutMs: 40 }); //      deadline 50
    const e = r.rpc.call(r.client, 'Wait', 'e', { timeoutMs: 300 }); //     deadline 310, answered
    const outcome = new Map<string, string>();
    for (const [name, call] of Object.entries({ a, b, c, d, e })) {
      call.then(
        () => outcome.set(name, 'reply'),
        (err: { code?: string }) => outcome.set(name, err.code ?? '?'),
      );
    }
    for (let i = 0; i < 5; i++) await readFrame(r.peer);
    /** Moves the clock to `t`, runs the due timers and lets the rejections land. */
    const at = async (t: number): Promise<string[]> => {
      clock.advance(t - clock.now());
      r.loop.runDueTimers();
      for (let i = 0; i < 5; i++) await null;
      return [...outcome.keys()].sort();
    };
    assert.equal(await at(39), []);
    assert.equal(await at(40), ['b']);
    // The call in the middle of the 100 ms list is answered (id 5 is e; id 3 is c).
    r.peer.write(frame(0xfff0, Buffer.concat([hex('02 00000005'), Buffer.from('E')])));
    assert.is(await e, 'E');
    assert.equal(await at(50), ['b', 'd', 'e']);
    assert.equal(await at(99), ['b', 'd', 'e']);
    assert.equal(await at(100), ['a', 'b', 'd', 'e']);
    assert.equal(await at(110), ['a', 'b', 'c', 'd', 'e']);
    assert.equal([outcome.get('a'), outcome.get('c'), outcome.get('e')], [ErrorCode.RPC_TIMEOUT, ErrorCode.RPC_TIMEOUT, 'reply']);
    assert.equal([r.rpc.stats().timeouts, r.rpc.inFlight(r.client)], [4, 0]);
    // With every list empty, a new call still times out on time.
    const f = r.rpc.call(r.client, 'Wait', 'f', { timeoutMs: 40 });
    await readFrame(r.peer);
    assert.equal(await at(149), ['a', 'b', 'c', 'd', 'e']);
    clock.advance(1);
    r.loop.runDueTimers();
    await rejectsWith(f, ErrorCode.RPC_TIMEOUT);
  } finally {
    await r.close();
  }
});

test('requests and replies made in one run, small ones (put together in one reused buffer) between values larger than copyThreshold, each arrive intact', async () => {
  const p = await pair({ server: { copyThreshold: 256 }, connector: { copyThreshold: 256 } });
  try {
    p.srv.handle('Echo', (_c, b) => Buffer.from(b));
    const sizes = [0, 1, 64, 200, 246, 247, 255, 256, 300, 5_000, 3, 70_000, 64];
    const payloads = sizes.map((n, i) => Buffer.alloc(n, (i * 37 + 1) & 0xff));
    // Every call is made in the same synchronous run, so each small request reuses the buffer of the one before.
    const replies = await Promise.all(payloads.map((b) => p.cli.call(p.client, 'Echo', b)));
    replies.forEach((reply, i) => assert.ok(reply.equals(payloads[i]!), `call ${i} (${sizes[i]} bytes) came back intact`));
    // The server answers a burst of requests read from one chunk: its replies reuse its buffer the same way.
    assert.is(p.srv.stats().answered, sizes.length);
  } finally {
    await p.close();
  }
});
test.run();
