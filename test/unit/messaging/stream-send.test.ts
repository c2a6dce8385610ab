/**
 * Raw stream transfers: `sendFile`, `sendStream` and the client Writable,
 * between a netloop server and a netloop connector on loopback: whole files,
 * the window bound, write-complete once, and every way a transfer ends early
 * (the peer's close, a signal, the source's error), each with its coded
 * reason on both sides and the file descriptor released.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ErrorCode, NetloopError, isNetloopError } from '../../../lib/core/errors.js';
import { createClientWritable, sendFile, sendStream } from '../../../lib/messaging/stream-send.js';
import { createClientReadable } from '../../../lib/messaging/stream-readable.js';
import type { ClientReadable } from '../../../lib/messaging/stream-readable.js';
import { until, waitFor, withTimeout } from '../../helpers/net.js';
import { fdsOn, fileSha256, makeSparseFile } from '../../helpers/streams.js';
import { framedPair, generated, generatedBytes, rawPair, tempDir } from './stream-rig.js';

const MiB = 1024 * 1024;

/** Reads a client Readable to its end (or its error), hashing; `pauseMs` waits after each chunk. */
async function drain(readable: ClientReadable, pauseMs = 0): Promise<{ bytes: number; sha256: string; error: unknown }> {
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    for await (const chunk of readable) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
    return { bytes, sha256: hash.digest('hex'), error: null };
  } catch (error) {
    return { bytes, sha256: hash.digest('hex'), error };
  }
}

/** Rejects unless `promise` rejects with a NetloopError of `code`; resolves with it. */
async function rejectsWith(promise: Promise<unknown>, code: string, what: string): Promise<NetloopError> {
  try {
    await withTimeout(promise, 20_000, what);
  } catch (err) {
    assert.ok(isNetloopError(err), `${what}: a NetloopError, got ${String(err)}`);
    assert.is((err as NetloopError).code, code, `${what}: ${(err as Error).message}`);
    return err as NetloopError;
  }
  assert.unreachable(`${what} did not fail`);
  throw new Error('unreachable');
}

test('sendFile: an 8 MiB file arrives whole at the peer (its client Readable ends at the FIN of end: true), and the descriptor is released', async () => {
  const tmp = tempDir();
  const { loop, near, far } = await rawPair();
  try {
    const file = path.join(tmp.dir, 'f.bin');
    makeSparseFile(file, 8 * MiB);
    const readable = createClientReadable(far);
    const received = drain(readable);
    const result = await sendFile(near, file, { end: true });
    assert.equal(result, { bytes: 8 * MiB });
    assert.is(fdsOn(file), 0, 'the descriptor is closed when the transfer resolves');
    const got = await withTimeout(received, 10_000, 'the file');
    assert.is(got.error, null);
    assert.is(got.bytes, 8 * MiB);
    assert.is(got.sha256, await fileSha256(file));
    assert.is(readable.bytesRead, 8 * MiB);
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
    tmp.remove();
  }
});

test('a client Writable in a pipeline holds at most windowBytes of its source however slow the reader; the bytes arrive whole', async () => {
  const { loop, near, far } = await rawPair({ maxOutputBytes: 4 * MiB });
  try {
    const total = 6 * MiB;
    const windowBytes = 512 * 1024;
    const chunkBytes = 32 * 1024;
    const sourceHwm = 64 * 1024;
    const writable = createClientWritable(near, { windowBytes, chunkBytes, end: true });
    let worst = 0;
    let samples = 0;
    // In memory: produced by the source and not yet taken by the kernel
    // (bytes the Writable handed on, less those the client still holds).
    const sample = (produced: number): void => {
      const held = produced - (writable.bytesSent - near.queuedBytes);
      if (held > worst) worst = held;
      samples++;
    };
    const source = generated(total, { chunk: 16 * 1024, highWaterMark: sourceHwm, onRead: sample });
    const timer = setInterval(() => sample(source.produced), 2);
    // The reader: 16 KiB buffered at most, 2 ms per chunk for the first 300 ms, then fast.
    const readable = createClientReadable(far, { highWaterMark: 16 * 1024 });
    const slowUntil = Date.now() + 300;
    const hash = createHash('sha256');
    let bytes = 0;
    const reading = (async () => {
      for await (const chunk of readable) {
        hash.update(chunk as Buffer);
        bytes += (chunk as Buffer).length;
        if (Date.now() < slowUntil) await new Promise((r) => setTimeout(r, 2));
      }
    })();
    await withTimeout(pipeline(source, writable), 20_000, 'the pipeline');
    await withTimeout(reading, 10_000, 'the reader');
    clearInterval(timer);
    assert.is(bytes, total);
    assert.is(hash.digest('hex'), createHash('sha256').update(generatedBytes(total)).digest('hex'));
    assert.ok(samples > 50, `sampled ${samples} times`);
    assert.ok(worst <= windowBytes + sourceHwm, `held ${worst} bytes of the source (window ${windowBytes}, the source's own buffer ${sourceHwm})`);
    assert.ok(worst > windowBytes / 2, `the window was used (${worst} bytes held at most)`);
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test('write-complete fires once, after the last byte, though the source is slower than the network (its output runs dry again and again)', async () => {
  const { loop, near, far } = await rawPair();
  try {
    const total = 2 * MiB;
    const source = generated(total, { chunk: 64 * 1024, delayMs: 3 });
    const fired: number[] = [];
    near.setWriteCompleteCallback(() => void fired.push(source.produced));
    const received = drain(createClientReadable(far));
    const result = await sendStream(near, source);
    assert.equal(result, { bytes: total });
    await until(() => fired.length > 0, 'write-complete');
    near.end();
    const got = await withTimeout(received, 10_000, 'the bytes');
    assert.is(got.bytes, total);
    assert.equal(fired, [total], 'once, with every byte of the source produced');
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test('sendFile: the peer closing mid-transfer rejects with NETLOOP_STREAM_INTERRUPTED (the close reason in details) and releases the descriptor', async () => {
  const tmp = tempDir();
  const { loop, near, far } = await rawPair();
  try {
    const file = path.join(tmp.dir, 'f.bin');
    makeSparseFile(file, 64 * MiB);
    const readable = createClientReadable(far, { highWaterMark: 16 * 1024 });
    const sending = sendFile(near, file);
    // Read a little, then the peer goes away.
    let got = 0;
    for await (const chunk of readable) {
      got += (chunk as Buffer).length;
      if (got >= 256 * 1024) break;
    }
    const err = await rejectsWith(sending, ErrorCode.STREAM_INTERRUPTED, 'the transfer');
    assert.ok(['reset', 'peer-closed', 'error'].includes(String(err.details['reason'])), `reason ${String(err.details['reason'])}`);
    assert.is(err.details['clientId'], near.id);
    assert.is(fdsOn(file), 0, 'the descriptor is released before the promise settles');
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
    tmp.remove();
  }
});

/**
 * What the receiver of a raw transfer cut short sees: the sender resets the
 * connection, which fails its Readable with NETLOOP_STREAM_INTERRUPTED
 * ('reset') when the reset reaches it as one; with bytes still in flight the
 * kernel may report it as an end instead, and a raw byte stream has no end
 * marker to tell the two apart (a framed stream has), so the Readable then
 * ends early: fewer bytes than were to come.
 */
function assertCutShort(got: { bytes: number; error: unknown }, total: number): void {
  if (got.error === null) assert.ok(got.bytes < total, `the reader ended early (${got.bytes} of ${total} bytes)`);
  else {
    assert.ok(isNetloopError(got.error, ErrorCode.STREAM_INTERRUPTED), `the reader failed with ${String(got.error)}`);
    assert.is((got.error as NetloopError).details['reason'], 'reset');
  }
}

test("an AbortSignal ends sendFile with NETLOOP_STREAM_ABORTED (by: 'signal') and resets the connection (the sender's close carries the abort); the receiving Readable is cut short; the descriptor is released", async () => {
  const tmp = tempDir();
  const { loop, server, near, far } = await rawPair();
  try {
    const file = path.join(tmp.dir, 'f.bin');
    makeSparseFile(file, 64 * MiB);
    const controller = new AbortController();
    const readable = createClientReadable(far, { highWaterMark: 16 * 1024 });
    const received = drain(readable, 1);
    const closed = waitFor(server, 'close');
    const sending = sendFile(near, file, { signal: controller.signal });
    await until(() => readable.bytesRead > 128 * 1024, 'some bytes');
    controller.abort(new Error('the user cancelled'));
    const err = await rejectsWith(sending, ErrorCode.STREAM_ABORTED, 'the transfer');
    assert.is(err.details['by'], 'signal');
    assert.is((err.cause as Error).message, 'the user cancelled');
    assert.is(fdsOn(file), 0);
    const [, reason, closeError] = await closed;
    assert.is(reason, 'force-close');
    assert.is((closeError as NetloopError).code, ErrorCode.STREAM_ABORTED, "the sender's close carries the abort");
    assertCutShort(await withTimeout(received, 10_000, 'the reader'), 64 * MiB);
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
    tmp.remove();
  }
});

test('a source that fails ends sendStream with NETLOOP_STREAM_SOURCE_FAILED (its error as cause) and resets the connection; the receiving Readable is cut short', async () => {
  const { loop, near, far } = await rawPair();
  try {
    const source = generated(8 * MiB, { failAt: MiB });
    const received = drain(createClientReadable(far));
    const err = await rejectsWith(sendStream(near, source), ErrorCode.STREAM_SOURCE_FAILED, 'the transfer');
    assert.is((err.cause as Error).message, 'the disk went away');
    assert.is(err.details['syscallCode'], 'EIO');
    assert.ok(source.destroyed);
    const got = await withTimeout(received, 10_000, 'the reader');
    assertCutShort(got, 8 * MiB);
    assert.ok(got.bytes <= MiB);
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test('sendFile of a missing file rejects with NETLOOP_STREAM_SOURCE_FAILED (ENOENT) before sending anything; the client stays open. A directory fails the same way', async () => {
  const tmp = tempDir();
  const { loop, near } = await rawPair();
  try {
    const err = await rejectsWith(sendFile(near, path.join(tmp.dir, 'nope.bin')), ErrorCode.STREAM_SOURCE_FAILED, 'a missing file');
    assert.is(err.details['syscallCode'], 'ENOENT');
    const dirErr = await rejectsWith(sendFile(near, tmp.dir), ErrorCode.STREAM_SOURCE_FAILED, 'a directory');
    assert.is(dirErr.details['syscallCode'], 'EISDIR');
    assert.ok(near.writable);
    assert.is(near.queuedBytes, 0);
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
    tmp.remove();
  }
});

test('options are checked before anything is opened: windowBytes, chunkBytes, end, signal, the source, a framed client (NETLOOP_INVALID_OPTION); a closed client rejects with NETLOOP_CLIENT_CLOSED', async () => {
  const tmp = tempDir();
  const { loop, near } = await rawPair({ maxOutputBytes: MiB });
  const framed = await framedPair();
  try {
    const file = path.join(tmp.dir, 'f.bin');
    makeSparseFile(file, 1024);
    const bad: Array<[string, Record<string, unknown>]> = [
      ['chunkBytes', { chunkBytes: 0 }],
      ['chunkBytes', { chunkBytes: 1.5 }],
      ['windowBytes', { chunkBytes: 64 * 1024, windowBytes: 5 * 64 * 1024 }],
      ['windowBytes', { windowBytes: 4 * MiB }], // beyond what maxOutputBytes (1 MiB) can hold
      ['end', { end: 'yes' }],
      ['signal', { signal: {} }],
    ];
    for (const [option, options] of bad) {
      for (const call of [() => sendFile(near, file, options), () => sendStream(near, Readable.from([Buffer.from('x')]), options)]) {
        const err = await rejectsWith(call(), ErrorCode.INVALID_OPTION, `${option} ${JSON.stringify(options)}`);
        assert.is(err.details['option'], option);
      }
      assert.throws(() => createClientWritable(near, options), (e: unknown) => isNetloopError(e, ErrorCode.INVALID_OPTION));
    }
    assert.is(fdsOn(file), 0, 'a bad option opens no file');
    await rejectsWith(sendStream(near, 42 as never), ErrorCode.INVALID_OPTION, 'a source that is no stream');
    await rejectsWith(sendFile(near, ''), ErrorCode.INVALID_OPTION, 'an empty path');
    await rejectsWith(sendFile(framed.near, file), ErrorCode.INVALID_OPTION, 'a framed client');
    await rejectsWith(sendStream(framed.near, Readable.from([])), ErrorCode.INVALID_OPTION, 'a framed client');
    assert.throws(() => createClientWritable(framed.near), (e: unknown) => isNetloopError(e, ErrorCode.INVALID_OPTION));
    near.destroy();
    const source = generated(MiB);
    await rejectsWith(sendStream(near, source), ErrorCode.CLIENT_CLOSED, 'a closed client');
    assert.ok(source.destroyed, 'the source of a refused transfer is destroyed');
    await rejectsWith(sendFile(near, file), ErrorCode.STREAM_INTERRUPTED, 'a closed client, after the file opened');
    assert.is(fdsOn(file), 0);
    assert.throws(() => createClientWritable(near), (e: unknown) => isNetloopError(e, ErrorCode.CLIENT_CLOSED));
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
    await framed.loop.close({ flushTimeoutMs: 100 });
    tmp.remove();
  }
});

test("pipeline(fs.createReadStream(file), createClientWritable(client, { end: true })) sends the file with Node's backpressure and ends the connection; a source error in the pipeline rejects it and cuts the transfer short", async () => {
  const tmp = tempDir();
  const { loop, server, near, far } = await rawPair();
  try {
    const file = path.join(tmp.dir, 'f.bin');
    makeSparseFile(file, 4 * MiB);
    const received = drain(createClientReadable(far));
    await withTimeout(pipeline(fs.createReadStream(file), createClientWritable(near, { end: true })), 10_000, 'the pipeline');
    const got = await withTimeout(received, 10_000, 'the file');
    assert.is(got.error, null);
    assert.is(got.sha256, await fileSha256(file));

    const second = await rawPairAgain(server);
    const broken = generated(4 * MiB, { failAt: 512 * 1024 });
    const receivedBroken = drain(createClientReadable(second.far));
    try {
      await pipeline(broken, createClientWritable(second.near));
      assert.unreachable('the pipeline failed');
    } catch (err) {
      assert.is((err as Error).message, 'the disk went away', "pipeline rejects with the source's own error");
    }
    assertCutShort(await withTimeout(receivedBroken, 10_000, 'the reader'), 4 * MiB);
    second.connector.close();
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
    tmp.remove();
  }
});

/** A second connection to `server`, from a connector of its own on the same loop. */
async function rawPairAgain(server: Awaited<ReturnType<typeof rawPair>>['server']) {
  const { Connector } = await import('../../../lib/reactor/connector.js');
  const accepted = waitFor<[import('../../../lib/reactor/client.js').Client]>(server, 'connection');
  const connector = new Connector(server.loop, { port: server.port, reconnect: false });
  const connected = waitFor<[import('../../../lib/reactor/client.js').Client]>(connector, 'connected');
  connector.connect();
  const [[near], [far]] = await Promise.all([accepted, connected]);
  return { connector, near, far };
}

test('an empty file and an empty source send nothing and resolve with 0 bytes; a destroyed client Writable resets the connection', async () => {
  const tmp = tempDir();
  const { loop, server, near, far } = await rawPair();
  try {
    const file = path.join(tmp.dir, 'empty.bin');
    fs.writeFileSync(file, '');
    assert.equal(await sendFile(near, file), { bytes: 0 });
    assert.equal(await sendStream(near, []), { bytes: 0 });
    assert.equal(await sendStream(near, [Buffer.from('ab'), 'cd']), { bytes: 4 });
    assert.is(fdsOn(file), 0);
    const closed = waitFor(server, 'close');
    const writable = createClientWritable(near);
    writable.write(Buffer.from('partial'));
    writable.destroy();
    const [, reason, error] = await closed;
    assert.is(reason, 'force-close');
    assert.ok(isNetloopError(error, ErrorCode.STREAM_ABORTED));
    assert.is((error as NetloopError).details['by'], 'local');
    void far;
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
    tmp.remove();
  }
});

test('a file that shrinks during the transfer ends where the file now ends', async () => {
  const tmp = tempDir();
  const { loop, near, far } = await rawPair();
  try {
    const file = path.join(tmp.dir, 'f.bin');
    makeSparseFile(file, 64 * MiB);
    const readable = createClientReadable(far, { highWaterMark: 16 * 1024 });
    const sending = sendFile(near, file, { end: true });
    // The sender reads at most a window ahead of what the kernel took; the
    // reader has taken nothing yet, so the first 16 MiB are still unread.
    await until(() => readable.readableLength > 0, 'the first bytes');
    fs.truncateSync(file, 16 * MiB);
    const got = await withTimeout(drain(readable), 20_000, 'the rest');
    const result = await sending;
    assert.is(result.bytes, 16 * MiB);
    assert.is(got.bytes, 16 * MiB);
    assert.is(got.sha256, await fileSha256(file));
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
    tmp.remove();
  }
});

test.run();
