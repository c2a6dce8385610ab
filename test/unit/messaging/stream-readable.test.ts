/**
 * The read side of a raw connection as a Readable: backpressure into the
 * client's reading, the end at the peer's FIN, the coded failure of any
 * other close, the reset of a Readable destroyed early, and its limits.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import type { NetloopError } from '../../../lib/core/errors.js';
import { createClientReadable } from '../../../lib/messaging/stream-readable.js';
import { pattern, until, waitFor, withTimeout } from '../../helpers/net.js';
import { Connector } from '../../../lib/reactor/connector.js';
import { framedPair, rawPair } from './stream-rig.js';

test("a Readable that is not read holds its client's reading once its buffer is full, and releases it as it is read; the bytes arrive in order", async () => {
  const { loop, near, far } = await rawPair();
  try {
    const total = 4 * 1024 * 1024;
    const data = pattern(total, 3);
    const readable = createClientReadable(far, { highWaterMark: 16 * 1024 });
    near.write(data);
    await until(() => !far.isReading(), 'the far client to stop reading');
    // Held: what the Readable buffers is its mark and at most the chunk in hand.
    assert.ok(readable.readableLength <= 16 * 1024 + 64 * 1024, `buffered ${readable.readableLength}`);
    assert.ok(near.queuedBytes > 0, 'the rest waits on the sending side (TCP flow control)');
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of readable) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
      if (bytes === total) break;
    }
    assert.is(bytes, total);
    assert.is(hash.digest('hex'), createHash('sha256').update(data).digest('hex'));
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test("the peer's FIN ends the Readable (with halfOpen too, where the client stays open); a close for any other reason fails it with NETLOOP_STREAM_INTERRUPTED", async () => {
  for (const halfOpen of [false, true]) {
    const { loop, near, far } = await rawPair({}, { halfOpen });
    try {
      const readable = createClientReadable(far);
      const chunks: Buffer[] = [];
      readable.on('data', (c: Buffer) => chunks.push(c));
      const ended = waitFor(readable, 'end');
      near.write('hello ');
      near.write('world');
      near.end();
      await ended;
      assert.is(Buffer.concat(chunks).toString(), 'hello world', `halfOpen ${String(halfOpen)}`);
      if (halfOpen) {
        assert.ok(far.writable, 'half-open: the client stays writable after the FIN');
        far.end();
      }
      await until(() => readable.destroyed, 'the Readable to close');
    } finally {
      await loop.close({ flushTimeoutMs: 100 });
    }
  }
  const { loop, near, far } = await rawPair();
  try {
    const readable = createClientReadable(far);
    const failed = waitFor<[NetloopError]>(readable, 'error');
    near.write('partial');
    await until(() => readable.readableLength > 0, 'the first bytes');
    far.destroy();
    const [err] = await failed;
    assert.ok(isNetloopError(err, ErrorCode.STREAM_INTERRUPTED));
    assert.is(err.details['reason'], 'force-close');
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test("destroying the Readable before its end resets the connection ('force-close' with NETLOOP_STREAM_ABORTED, by: 'local'); an AbortSignal does the same with by: 'signal'", async () => {
  for (const how of ['destroy', 'signal'] as const) {
    const { loop, server, connector, near, far } = await rawPair();
    try {
      const controller = new AbortController();
      const readable = createClientReadable(far, how === 'signal' ? { signal: controller.signal } : {});
      readable.on('error', () => undefined);
      const closed = waitFor(connector, 'close');
      const nearClosed = waitFor(server, 'close');
      near.write('some bytes');
      await until(() => readable.readableLength > 0, 'the first bytes');
      if (how === 'destroy') readable.destroy();
      else controller.abort();
      const [, reason, error] = await closed;
      assert.is(reason, 'force-close', how);
      assert.ok(isNetloopError(error, ErrorCode.STREAM_ABORTED), how);
      assert.is((error as NetloopError).details['by'], how === 'destroy' ? 'local' : 'signal');
      const [, nearReason] = await nearClosed;
      assert.ok(['reset', 'peer-closed'].includes(String(nearReason)), `the sender's side closed with ${String(nearReason)}`);
    } finally {
      await loop.close({ flushTimeoutMs: 100 });
    }
  }
});

test("limits and refusals: highWaterMark and signal are checked (NETLOOP_INVALID_OPTION), a framed client or a second Readable on a client is refused, a closed client is NETLOOP_CLIENT_CLOSED; the owner's listeners go with the last Readable", async () => {
  const { loop, server, near, far } = await rawPair();
  const framed = await framedPair();
  try {
    for (const options of [{ highWaterMark: 0 }, { highWaterMark: 2 ** 31 }, { highWaterMark: 1.5 }, { signal: 'stop' }]) {
      assert.throws(
        () => createClientReadable(far, options as never),
        (e: unknown) => isNetloopError(e, ErrorCode.INVALID_OPTION),
        JSON.stringify(options),
      );
    }
    assert.throws(() => createClientReadable(far, null as never), (e: unknown) => isNetloopError(e, ErrorCode.INVALID_OPTION));
    assert.throws(() => createClientReadable(framed.near), (e: unknown) => isNetloopError(e, ErrorCode.INVALID_OPTION));
    assert.is(server.listenerCount('data'), 0);
    const first = createClientReadable(near);
    assert.is(server.listenerCount('data'), 1, "one listener on the owner's 'data'");
    assert.throws(() => createClientReadable(near), (e: unknown) => isNetloopError(e, ErrorCode.INVALID_OPTION));
    first.destroy();
    await until(() => server.listenerCount('data') === 0, 'the listener to go');
    assert.is(server.listenerCount('close'), 0);
    await until(() => near.closed, 'the reset client to close');
    assert.throws(() => createClientReadable(near), (e: unknown) => isNetloopError(e, ErrorCode.CLIENT_CLOSED));
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
    await framed.loop.close({ flushTimeoutMs: 100 });
  }
});

test('two clients of one owner read into their own Readables', async () => {
  const a = await rawPair();
  try {
    const accepted = waitFor<[typeof a.near]>(a.server, 'connection');
    const second = new Connector(a.loop, { port: a.server.port, reconnect: false });
    const connected = waitFor<[typeof a.far]>(second, 'connected');
    second.connect();
    const [[near2], [far2]] = await Promise.all([accepted, connected]);
    const r1 = createClientReadable(a.near);
    const r2 = createClientReadable(near2);
    const text = (r: typeof r1): Promise<string> =>
      withTimeout(
        (async () => {
          let s = '';
          for await (const c of r) s += String(c);
          return s;
        })(),
        5_000,
        'a Readable to end',
      );
    const t1 = text(r1);
    const t2 = text(r2);
    a.far.write('one');
    a.far.end();
    far2.write('two');
    far2.end();
    assert.equal(await Promise.all([t1, t2]), ['one', 'two']);
    second.close();
  } finally {
    await a.loop.close({ flushTimeoutMs: 100 });
  }
});

test.run();
