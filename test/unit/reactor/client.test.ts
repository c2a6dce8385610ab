import { suite } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { EventEmitter } from 'node:events';
import type * as net from 'node:net';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import { Server, type ServerOptions } from '../../../lib/reactor/server.js';
import type { Client } from '../../../lib/reactor/client.js';
import type { CloseReason } from '../../../lib/reactor/close-reason.js';
import { ManualClock } from '../../../lib/core/clock.js';
import { WHOLE_WRITE_MAX } from '../../../lib/reactor/output-buffer.js';
import { ErrorCode, NetloopError, isNetloopError } from '../../../lib/core/errors.js';
import { collectAll, connectRaw, countWrites, destroyAll, digest, pattern, readBytes, slowRead, until, waitFor, withTimeout } from '../../helpers/net.js';

interface Closed {
  reason: CloseReason;
  error: NetloopError | undefined;
}

/** A loop, a server, one raw peer and the server's client for it. */
interface Pair {
  loop: EventLoop;
  server: Server;
  peer: net.Socket;
  client: Client;
  /** Resolves with the client's (first) close. */
  closed: Promise<Closed>;
  closes: Closed[];
}

async function pair(options: ServerOptions = {}, loop = new EventLoop(), peerHalfOpen = false): Promise<Pair> {
  const server = await new Server(loop, options).listen();
  const closes: Closed[] = [];
  let onClose: (c: Closed) => void = () => undefined;
  const closed = new Promise<Closed>((resolve) => (onClose = resolve));
  server.on('close', (_c: Client, reason: CloseReason, error?: NetloopError) => {
    closes.push({ reason, error });
    onClose({ reason, error });
  });
  const accepted = waitFor<[Client]>(server, 'connection');
  const peer = await connectRaw(server.port, { allowHalfOpen: peerHalfOpen });
  const [client] = await accepted;
  return { loop, server, peer, client, closed, closes };
}

async function done(p: Pair): Promise<void> {
  await destroyAll(p.peer);
  await p.loop.close({ flushTimeoutMs: 100 });
}

// ─── 1. partial writes ───────────────────────────────────────────────────────
const partial = suite('1. partial writes');

partial('a slow reader gets every byte exactly once, in order, for any mix of append sizes', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 70_000 }), fc.integer({ min: 1, max: 3 << 20 })), {
        minLength: 1,
        maxLength: 12,
      }),
      fc.integer({ min: 1, max: 4 }),
      async (sizes, turns) => {
        const p = await pair({ maxOutputBytes: 64 << 20 });
        try {
          const total = sizes.reduce((a, b) => a + b, 0);
          const reading = slowRead(p.peer, total, 1);
          // Record the socket's own buffer after every write we hand it.
          const s = p.client.socket;
          const write = s.write.bind(s) as (chunk: Uint8Array, cb?: () => void) => boolean;
          let maxBuffered = 0;
          (s as unknown as { write: typeof write }).write = (chunk, cb) => {
            const r = write(chunk, cb);
            maxBuffered = Math.max(maxBuffered, s.writableLength);
            return r;
          };
          const parts: Buffer[] = [];
          let seed = 0;
          // Appends spread over a few turns of the loop.
          const perTurn = Math.ceil(sizes.length / turns);
          for (let i = 0; i < sizes.length; i += perTurn) {
            for (const n of sizes.slice(i, i + perTurn)) {
              const b = pattern(n, seed++);
              parts.push(b);
              assert.ok(p.client.write(b));
            }
            await new Promise<void>((r) => setImmediate(r));
          }
          const got = await reading;
          assert.is(got.length, total);
          assert.is(digest(got), digest(Buffer.concat(parts)));
          // At most the high-water mark, or one piece handed over whole (a shared batch) past it.
          const bound = s.writableHighWaterMark + WHOLE_WRITE_MAX;
          assert.ok(maxBuffered <= bound, `socket buffered ${maxBuffered} > ${bound}`);
        } finally {
          await done(p);
        }
      },
    ),
    { numRuns: 6 },
  );
});

partial('the rest stays in the client buffer while the peer does not read, and resumes on drain', async () => {
  const p = await pair();
  try {
    p.peer.pause();
    const big = pattern(12 << 20, 3);
    p.client.write(big);
    // The kernel absorbs a few MiB, then the socket fills; the rest waits in the client.
    await until(() => p.client.hasDataToWrite() && p.client.socket.writableLength > 0 && (p.client._flags & 8) !== 0, 'the socket to fill');
    assert.ok(p.client.socket.writableLength <= p.client.socket.writableHighWaterMark);
    assert.ok(p.client.queuedBytes > 0);
    const got = await slowRead(p.peer, big.length, 0);
    assert.is(digest(got), digest(big));
    await until(() => p.client.queuedBytes === 0, 'the output to drain');
    assert.not.ok(p.client.hasDataToWrite());
  } finally {
    await done(p);
  }
});

// ─── 2. coalescing ───────────────────────────────────────────────────────────
const coalesce = suite('2. coalescing');

coalesce('many appends in one turn reach the socket as ONE write', async () => {
  const p = await pair();
  try {
    const writes = countWrites(p.client.socket);
    const expected: Buffer[] = [];
    for (let i = 0; i < 200; i++) {
      const b = Buffer.from(`message ${i};`);
      expected.push(b);
      p.client.appendToOutputBuffer(b);
    }
    p.client.appendToOutputBuffer('and a string');
    expected.push(Buffer.from('and a string'));
    p.client.enableWriting();
    p.loop.updateClient(p.client);
    p.loop.updateClient(p.client); // a second update in the same turn changes nothing
    const all = Buffer.concat(expected);
    const got = await readBytes(p.peer, all.length);
    assert.equal(got, all);
    assert.is(writes.count, 1, `writes: ${writes.sizes.join(',')}`);
    assert.equal(writes.sizes, [all.length]);
  } finally {
    await done(p);
  }
});

coalesce('write() calls in one turn coalesce too; a later turn is a new write', async () => {
  const p = await pair();
  try {
    const writes = countWrites(p.client.socket);
    for (let i = 0; i < 50; i++) p.client.write(Uint8Array.of(i));
    await readBytes(p.peer, 50);
    assert.is(writes.count, 1);
    p.client.write('x');
    p.client.write('y');
    assert.equal((await readBytes(p.peer, 2)).toString(), 'xy');
    assert.is(writes.count, 2);
  } finally {
    await done(p);
  }
});

coalesce('a large chunk queued by reference goes to each socket whole: one write, the same memory, nothing copied', async () => {
  const loop = new EventLoop();
  const a = await pair({}, loop);
  const b = await pair({}, loop);
  try {
    // Larger than the socket's high-water mark, as a broadcast batch may be.
    const batch = pattern(256 * 1024);
    const handed: Uint8Array[][] = [];
    for (const client of [a.client, b.client]) {
      const seen: Uint8Array[] = [];
      handed.push(seen);
      const socket = client.socket as net.Socket & { write: (...args: unknown[]) => boolean };
      const original = socket.write;
      socket.write = function (this: net.Socket, ...args: unknown[]) {
        seen.push(args[0] as Uint8Array);
        return original.apply(this, args as Parameters<typeof original>);
      };
      assert.ok(client.write(batch));
      client.write('!');
    }
    const [gotA, gotB] = await Promise.all([readBytes(a.peer, batch.length + 1), readBytes(b.peer, batch.length + 1)]);
    for (const got of [gotA, gotB]) {
      assert.is(digest(got.subarray(0, batch.length)), digest(batch));
      assert.is(got.subarray(batch.length).toString(), '!');
    }
    for (const seen of handed) {
      assert.is(seen[0], batch, 'the chunk itself, not a copy or a slice');
      assert.is(seen.length, 2, 'the batch, then the small append after drain');
    }
  } finally {
    await destroyAll(a.peer, b.peer);
    await loop.close({ flushTimeoutMs: 100 });
  }
});

coalesce("what a client's own read callback queues leaves at the end of that callback, in one write", async () => {
  const p = await pair();
  try {
    const writes = countWrites(p.client.socket);
    const seen = new Promise<number[]>((resolve) => {
      p.server.on('data', (client: Client, chunk: Buffer) => {
        client.write(chunk);
        client.write('!');
        // A microtask runs once the read callback has returned, long before the loop's turn.
        queueMicrotask(() => resolve([writes.count, client.socket.writableLength + writes.sizes.reduce((a, b) => a + b, 0)]));
      });
    });
    p.peer.write('ping');
    assert.equal(await seen, [1, 5]);
    assert.equal((await readBytes(p.peer, 5)).toString(), 'ping!');
    assert.is(writes.count, 1);
  } finally {
    await done(p);
  }
});

coalesce('nothing is sent while writing is disabled or the loop is not updated', async () => {
  const p = await pair();
  try {
    const writes = countWrites(p.client.socket);
    p.client.appendToOutputBuffer('held');
    p.client.disableWriting();
    p.loop.updateClient(p.client);
    await new Promise<void>((r) => setImmediate(() => setImmediate(r)));
    assert.is(writes.count, 0);
    assert.ok(p.client.hasDataToWrite());
    assert.not.ok(p.client.isWriting());
    p.client.enableWriting();
    assert.ok(p.client.isWriting());
    p.loop.updateClient(p.client);
    assert.is((await readBytes(p.peer, 4)).toString(), 'held');
    await until(() => !p.client.isWriting(), 'writing to be disabled once empty');
  } finally {
    await done(p);
  }
});

// ─── 3. write complete ───────────────────────────────────────────────────────
const complete = suite('3. write-complete');

complete('runs once per drain to empty, after the last byte left, never inside append', async () => {
  const p = await pair();
  try {
    const calls: number[] = [];
    let inAppend = false;
    p.client.setWriteCompleteCallback((c) => {
      assert.not.ok(inAppend, 'called synchronously inside append');
      assert.is(c.queuedBytes, 0, 'own and socket buffers are empty');
      calls.push(c.queuedBytes);
    });
    const big = pattern(6 << 20, 1);
    inAppend = true;
    p.client.write(big);
    inAppend = false;
    const reading = slowRead(p.peer, big.length, 1);
    await reading;
    await until(() => calls.length === 1, 'the write-complete callback');
    // A second burst, small: one more call.
    p.client.write('tail');
    await readBytes(p.peer, 4);
    await until(() => calls.length === 2, 'the second write-complete');
    await new Promise<void>((r) => setImmediate(() => setImmediate(r)));
    assert.is(calls.length, 2);
  } finally {
    await done(p);
  }
});

complete('is not run inside a socket write callback and settles flushed() waiters', async () => {
  const p = await pair();
  try {
    let stack = '';
    p.client.setWriteCompleteCallback(() => {
      stack = new Error().stack ?? '';
    });
    p.client.write('abc');
    const w = p.client.flushed();
    await w;
    await until(() => stack !== '', 'write-complete');
    assert.not.match(stack, /afterWrite|onwrite/);
    await p.client.flushed(); // nothing pending: resolves at once
  } finally {
    await done(p);
  }
});

/**
 * Writes 4 KiB pieces to a peer that does not read, one loop turn apart,
 * until the socket itself holds bytes (fewer than its high-water mark, so no
 * 'drain' is coming) while the client's buffer is empty: bytes were handed
 * to the socket and nobody observed their completion. Bounded: fails after
 * 64 MiB.
 */
async function unobservedBytesInSocket(p: Pair): Promise<number> {
  p.peer.pause();
  const piece = pattern(4096, 3);
  let sent = 0;
  while (p.client.socket.writableLength === 0) {
    assert.ok(sent < 64 << 20, 'the socket never held bytes: the peer is not paused');
    p.client.write(piece);
    sent += piece.length;
    await new Promise<void>((r) => setImmediate(r));
  }
  assert.not.ok(p.client.hasDataToWrite(), "the client's own buffer is empty");
  assert.ok(p.client.socket.writableLength < p.client.socket.writableHighWaterMark, 'no drain is coming');
  return sent;
}

complete('an observer that arrives while unobserved bytes are in the socket is told when they reach the kernel', async () => {
  const p = await pair();
  try {
    const sent = await unobservedBytesInSocket(p);
    const calls: number[] = [];
    p.client.setWriteCompleteCallback((c) => calls.push(c.queuedBytes));
    let flushed = false;
    const waiter = p.client.flushed().then(() => {
      flushed = true;
      assert.is(p.client.socket.writableLength, 0, 'flushed() resolves only once the socket is empty');
    });
    assert.is(calls.length, 0);
    assert.not.ok(flushed);
    p.peer.resume();
    await readBytes(p.peer, sent);
    await withTimeout(waiter, 10_000, 'flushed() for bytes written before it was asked');
    await until(() => calls.length === 1, 'the write-complete callback for bytes written before it was set');
    assert.equal(calls, [0]);
  } finally {
    await done(p);
  }
});

complete('after end() began, a flushed() waiter for unobserved bytes still in the socket resolves once they leave', async () => {
  const p = await pair();
  try {
    const sent = await unobservedBytesInSocket(p);
    p.client.end();
    assert.ok(p.client.socket.writableEnded, 'the socket was ended (FIN follows the queued bytes)');
    let flushed = false;
    const waiter = p.client.flushed().then(() => {
      flushed = true;
    });
    assert.not.ok(flushed);
    p.peer.resume();
    await readBytes(p.peer, sent);
    await withTimeout(waiter, 10_000, 'flushed() after shutdown');
    assert.is(p.client.socket.writableLength, 0);
  } finally {
    await done(p);
  }
});

complete('a completion that happened before the callback was set does not run it; the next one does', async () => {
  const p = await pair();
  try {
    const sent = await unobservedBytesInSocket(p);
    p.peer.resume();
    await readBytes(p.peer, sent);
    await until(() => p.client.socket.writableLength === 0, 'the socket to drain');
    const calls: number[] = [];
    p.client.setWriteCompleteCallback((c) => calls.push(c.queuedBytes));
    await p.client.flushed();
    p.client.write('next');
    await readBytes(p.peer, 4);
    await until(() => calls.length === 1, 'write-complete for the next write');
    await new Promise<void>((r) => setImmediate(() => setImmediate(r)));
    assert.equal(calls, [0], 'one call, for the write made after the callback was set');
  } finally {
    await done(p);
  }
});

// ─── 4. water marks and limits ───────────────────────────────────────────────
const limits = suite('4. high-water mark and output limits');

limits('the high-water-mark callback fires once per upward crossing', async () => {
  const p = await pair();
  try {
    const seen: number[] = [];
    p.client.setHighWaterMarkCallback((_c, bytes) => seen.push(bytes), 1000);
    p.client.appendToOutputBuffer(Buffer.alloc(600));
    p.client.appendToOutputBuffer(Buffer.alloc(600)); // 600 → 1200: crossing
    p.client.appendToOutputBuffer(Buffer.alloc(600)); // above: no crossing
    assert.equal(seen, [], 'queued, not called synchronously');
    await new Promise<void>((r) => setImmediate(r));
    assert.equal(seen, [1200]);
    p.client.enableWriting();
    p.loop.updateClient(p.client);
    await readBytes(p.peer, 1800);
    await until(() => p.client.queuedBytes === 0, 'drained');
    p.client.write(Buffer.alloc(999)); // 0 → 999: below
    p.client.write(Buffer.alloc(1)); // 999 → 1000: crossing (>= mark)
    await readBytes(p.peer, 1000);
    assert.equal(seen, [1200, 1000]);
    assert.throws(() => p.client.setHighWaterMarkCallback(() => undefined, 0), (e: unknown) => isNetloopError(e, ErrorCode.INVALID_OPTION));
    p.client.setHighWaterMarkCallback(null, 0);
  } finally {
    await done(p);
  }
});

limits('the hard limit closes that client with NETLOOP_OUTPUT_LIMIT; another client is unaffected', async () => {
  const p = await pair({ maxOutputBytes: 64 * 1024, softOutputLimit: null });
  const other = await connectRaw(p.server.port);
  try {
    p.server.on('data', (c: Client, chunk: Buffer) => c.write(chunk));
    p.peer.pause();
    p.client.disableWriting();
    assert.ok(p.client.appendToOutputBuffer(Buffer.alloc(60 * 1024)));
    const before = p.client.queuedBytes;
    let inCall = true;
    let closedInCall = false;
    void p.closed.then(() => (closedInCall = inCall));
    assert.is(p.client.appendToOutputBuffer(Buffer.alloc(5 * 1024)), false);
    assert.is(p.client.queuedBytes, before, 'nothing was queued');
    assert.ok(p.client.closing);
    assert.not.ok(p.client.closed, 'closed from the loop, not inside the call');
    assert.is(p.client.appendToOutputBuffer('more'), false, 'a close is pending');
    inCall = false;
    const c = await p.closed;
    assert.not.ok(closedInCall);
    assert.is(c.reason, 'output-limit');
    assert.is(c.error?.code, ErrorCode.OUTPUT_LIMIT);
    assert.is(p.client.appendToOutputBuffer('x'), false, 'closed: nothing queued, nothing thrown');
    other.write('still here');
    assert.is((await readBytes(other, 10)).toString(), 'still here');
  } finally {
    await destroyAll(other);
    await done(p);
  }
});

limits('the soft limit closes a client whose output stays above it for forMs, from the timer queue', async () => {
  const clock = new ManualClock();
  const p = await pair({ softOutputLimit: { bytes: 1000, forMs: 5000 } }, new EventLoop({ clock }));
  try {
    p.client.disableWriting();
    p.client.appendToOutputBuffer(Buffer.alloc(2000));
    clock.advance(4999);
    p.loop.runDueTimers();
    await new Promise<void>((r) => setImmediate(r));
    assert.not.ok(p.client.closing);
    clock.advance(1);
    p.loop.runDueTimers();
    const c = await p.closed;
    assert.is(c.reason, 'output-soft-limit');
    assert.is(c.error?.code, ErrorCode.OUTPUT_SOFT_LIMIT);
  } finally {
    await done(p);
  }
});

limits('output that drops below the soft limit in time keeps the client', async () => {
  const clock = new ManualClock();
  const p = await pair({ softOutputLimit: { bytes: 1000, forMs: 5000 } }, new EventLoop({ clock }));
  try {
    p.client.disableWriting();
    p.client.appendToOutputBuffer(Buffer.alloc(2000));
    clock.advance(3000);
    p.client.enableWriting();
    p.loop.updateClient(p.client);
    await readBytes(p.peer, 2000);
    clock.advance(3000);
    p.loop.runDueTimers();
    // Above the limit again: the clock starts over.
    p.client.disableWriting();
    p.client.appendToOutputBuffer(Buffer.alloc(1500));
    clock.advance(4000);
    p.loop.runDueTimers();
    await new Promise<void>((r) => setImmediate(r));
    assert.not.ok(p.client.closing);
    p.client.enableWriting();
    p.loop.updateClient(p.client);
    await readBytes(p.peer, 1500);
  } finally {
    await done(p);
  }
});

// ─── 5. shutdown and the peer's FIN ──────────────────────────────────────────
const fin = suite('5. shutdown and FIN');

fin('end() sends everything queued, then FIN; the peer gets every byte', async () => {
  const p = await pair();
  try {
    const big = pattern(5 << 20, 9);
    const collecting = collectAll(p.peer);
    p.client.write(big);
    p.client.appendToOutputBuffer('!');
    p.client.end();
    assert.ok(p.client.closing);
    assert.not.ok(p.client.writable);
    assert.is(p.client.appendToOutputBuffer('late'), false, 'closing: nothing queued, nothing thrown');
    p.client.end(); // twice: no-op
    const { data, reset } = await collecting;
    assert.not.ok(reset);
    assert.is(data.length, big.length + 1);
    assert.is(digest(data), digest(Buffer.concat([big, Buffer.from('!')])));
    const c = await p.closed;
    assert.is(c.reason, 'shutdown');
    assert.is(c.error, undefined);
  } finally {
    await done(p);
  }
});

fin("the peer's FIN while output is queued does not discard it (muduo #130)", async () => {
  const p = await pair({}, new EventLoop(), true);
  try {
    const reply = pattern(4 << 20, 5);
    p.server.on('data', (c: Client) => c.write(reply));
    const collecting = collectAll(p.peer);
    p.peer.end('request'); // request, then FIN at once
    const { data } = await collecting;
    assert.is(digest(data), digest(reply));
    const c = await p.closed;
    assert.is(c.reason, 'peer-closed');
  } finally {
    await done(p);
  }
});

fin('with halfOpen, the client stays writable after the peer FIN and reports it', async () => {
  const p = await pair({ halfOpen: true }, new EventLoop(), true);
  try {
    const ended = waitFor<[Client]>(p.server, 'end');
    const collecting = collectAll(p.peer);
    p.peer.end();
    const [c] = await ended;
    assert.is(c, p.client);
    assert.not.ok(p.client.closing);
    p.client.write('after your FIN');
    p.client.end();
    const { data } = await collecting;
    assert.is(data.toString(), 'after your FIN');
    assert.is((await p.closed).reason, 'shutdown');
  } finally {
    await done(p);
  }
});

fin('a graceful close that cannot finish is destroyed after shutdownTimeoutMs', async () => {
  const clock = new ManualClock();
  const p = await pair({ shutdownTimeoutMs: 1000 }, new EventLoop({ clock }));
  try {
    p.peer.pause();
    p.client.write(pattern(16 << 20));
    p.client.end();
    clock.advance(1000);
    p.loop.runDueTimers();
    const c = await p.closed;
    assert.is(c.reason, 'shutdown');
    assert.is(c.error?.code, ErrorCode.CLOSE_TIMEOUT);
  } finally {
    await done(p);
  }
});

// ─── 6. exactly one close ────────────────────────────────────────────────────
const once = suite('6. exactly one close, errors become reasons');

once('a reset by the peer is reason reset with ECONNRESET, never an unhandled error', async () => {
  const p = await pair();
  try {
    let cbCalls = 0;
    p.client.setCloseCallback((_c, reason) => {
      cbCalls++;
      assert.is(reason, 'reset');
    });
    p.client.write(pattern(8 << 20)); // keep a write in flight
    p.peer.resetAndDestroy();
    const c = await p.closed;
    assert.is(c.reason, 'reset');
    assert.is(c.error?.code, ErrorCode.SOCKET_ERROR);
    assert.is(c.error?.details['syscallCode'], 'ECONNRESET');
    await new Promise<void>((r) => setImmediate(() => setImmediate(r)));
    assert.is(p.closes.length, 1);
    assert.is(cbCalls, 1);
    assert.ok(p.client.closed);
    assert.not.ok(p.client.closing);
    assert.is(p.loop.getClient(p.client.id), undefined);
  } finally {
    await done(p);
  }
});

once('writing to a peer that went away ends in one close with a socket error code', async () => {
  const p = await pair();
  try {
    await destroyAll(p.peer);
    const tick = (): void => {
      if (p.client.closed || p.client.closing) return;
      try {
        p.client.write(Buffer.alloc(64 * 1024));
      } catch {
        return;
      }
      setImmediate(tick);
    };
    tick();
    const c = await p.closed;
    assert.ok(['reset', 'error', 'peer-closed'].includes(c.reason), c.reason);
    if (c.reason !== 'peer-closed') assert.is(c.error?.code, ErrorCode.SOCKET_ERROR);
    await new Promise<void>((r) => setImmediate(r));
    assert.is(p.closes.length, 1);
  } finally {
    await done(p);
  }
});

once('after close: appends return false, pending callbacks settle once, a queued write-complete does not run', async () => {
  const p = await pair();
  try {
    p.peer.pause();
    let completes = 0;
    p.client.setWriteCompleteCallback(() => completes++);
    p.client.write(pattern(16 << 20));
    const settled: string[] = [];
    const waits = [p.client.flushed(), p.client.flushed()].map((w) =>
      w.then(
        () => settled.push('resolved'),
        (e: unknown) => settled.push(isNetloopError(e, ErrorCode.CLIENT_CLOSED) ? 'rejected' : 'other'),
      ),
    );
    p.client.destroy();
    p.client.destroy('removed'); // twice: no-op, first reason kept
    assert.ok(p.client.closing);
    assert.is(p.client.write('x'), false);
    const c = await p.closed;
    assert.is(c.reason, 'force-close');
    await Promise.all(waits);
    assert.equal(settled, ['rejected', 'rejected']);
    await p.client.flushed().then(
      () => assert.unreachable('flushed() after close must reject'),
      (e: unknown) => assert.ok(isNetloopError(e, ErrorCode.CLIENT_CLOSED)),
    );
    await new Promise<void>((r) => setImmediate(() => setImmediate(r)));
    assert.is(completes, 0);
    assert.is(p.closes.length, 1);
    assert.is(p.client.queuedBytes, 0);
  } finally {
    await done(p);
  }
});

once('a throwing data handler closes only that client with handler-error', async () => {
  const p = await pair();
  const other = await connectRaw(p.server.port);
  try {
    p.server.on('data', (c: Client, chunk: Buffer) => {
      if (chunk.toString() === 'boom') throw new Error('handler failed');
      c.write(chunk);
    });
    p.peer.write('boom');
    const c = await p.closed;
    assert.is(c.reason, 'handler-error');
    assert.is(c.error?.code, ErrorCode.HANDLER_ERROR);
    other.write('fine');
    assert.is((await readBytes(other, 4)).toString(), 'fine');
  } finally {
    await destroyAll(other);
    await done(p);
  }
});

once("a close callback that throws does not stop the server close event; its error goes to the server's 'error' path", async () => {
  const p = await pair();
  try {
    p.client.setCloseCallback(() => {
      throw new Error('user close callback failed');
    });
    const reported = waitFor<[NetloopError]>(p.server, 'error');
    p.client.destroy();
    const c = await p.closed;
    assert.is(c.reason, 'force-close');
    const [err] = await reported;
    assert.is(err.code, ErrorCode.HANDLER_ERROR);
    assert.is(err.details['clientId'], p.client.id);
    assert.match(String((err.cause as Error).message), /user close callback failed/);
  } finally {
    await done(p);
  }
});

// ─── 8. idle connections hold nothing ────────────────────────────────────────
const idle = suite('8. lean idle connections');

idle('no buffer while idle, none after a write drained; the client is not an EventEmitter', async () => {
  const p = await pair();
  try {
    assert.not.ok(p.client instanceof EventEmitter);
    assert.is(p.client._out, null);
    p.client.write(pattern(300_000));
    assert.ok(p.client._out !== null);
    await readBytes(p.peer, 300_000);
    await until(() => p.client._out === null && p.client.queuedBytes === 0, 'the buffer to be released');
    assert.not.ok(p.client.hasDataToWrite());
  } finally {
    await done(p);
  }
});

idle('idle timeouts use the shared timer queue: no Node timer per client', async () => {
  const loop = new EventLoop();
  const server = await new Server(loop, { idleTimeoutMs: 60_000 }).listen();
  const peers: net.Socket[] = [];
  const timeouts = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  try {
    const before = timeouts();
    for (let i = 0; i < 40; i++) peers.push(await connectRaw(server.port));
    await until(() => server.clientCount === 40, '40 clients');
    assert.ok(timeouts() <= before + 1, `${timeouts() - before} Node timers for 40 clients`);
    assert.is(loop.stats().timers, 40);
  } finally {
    await destroyAll(...peers);
    await loop.close();
  }
});

idle('the idle timeout closes a silent client, re-arming lazily after reads', async () => {
  const clock = new ManualClock();
  const p = await pair({ idleTimeoutMs: 1000 }, new EventLoop({ clock }));
  try {
    const entries = p.loop.stats().timers;
    clock.advance(500);
    p.loop.runDueTimers();
    const got = waitFor(p.server, 'data');
    p.peer.write('ping');
    await got;
    clock.advance(600); // 1100: the first deadline passes, but a byte came at 500
    assert.is(p.loop.runDueTimers(), 1);
    await new Promise<void>((r) => setImmediate(r));
    assert.not.ok(p.client.closing);
    assert.is(p.loop.stats().timers, entries, 're-armed, not duplicated');
    p.client.pause();
    assert.not.ok(p.client.isReading());
    clock.advance(5000);
    p.loop.runDueTimers();
    assert.not.ok(p.client.closing, 'no idle close while reading is paused');
    p.client.resume();
    assert.ok(p.client.isReading());
    clock.advance(1000);
    p.loop.runDueTimers();
    const c = await p.closed;
    assert.is(c.reason, 'idle-timeout');
    assert.is(c.error?.code, ErrorCode.IDLE_TIMEOUT);
  } finally {
    await done(p);
  }
});

idle('context, remote address and ids', async () => {
  const p = await pair();
  try {
    assert.is(p.client.context, undefined);
    p.client.context = { user: 'u1' };
    assert.equal(p.client.context, { user: 'u1' });
    assert.is(p.client.remoteAddress, '127.0.0.1');
    assert.is(p.client.remotePort, p.peer.localPort);
    assert.ok(Number.isInteger(p.client.id) && p.client.id > 0);
    assert.is(p.loop.getClient(p.client.id), p.client);
  } finally {
    await done(p);
  }
});

for (const s of [partial, coalesce, complete, limits, fin, once, idle]) s.run();
