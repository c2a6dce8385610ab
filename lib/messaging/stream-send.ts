/**
 * Sending a Readable or a file to a client as raw bytes, paced by the
 * client's output buffer (see `stream-writable.ts`), and the transfer
 * runner the framed streams share.
 *
 * ```
 *   sendFile(client, path) ── open (ENOENT... ─▶ NETLOOP_STREAM_SOURCE_FAILED, nothing sent)
 *        └─ handle.createReadStream({ highWaterMark: chunkBytes }) ─┐
 *   sendStream(client, readable | async iterable) ──────────────────┤
 *                                                                   ▼
 *   transfer: pipeline(source, ClientWritable, { signal })
 *        ok    ──▶ the source closed (its file descriptor released) ──▶ { bytes }
 *        error ──▶ the source destroyed and closed ──▶ the coded error
 * ```
 *
 * @module
 */

import { Readable, finished } from 'node:stream';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Client } from '../reactor/client.js';
import { ErrorCode, NetloopError } from '../core/errors.js';
import { FramedClient } from '../framing/framed-client.js';
import { ClientWritable } from './stream-writable.js';
import type { StreamSink } from './stream-writable.js';
import { FilePump, openForTransfer } from './stream-file.js';
import { abortedError, checkEnd, interruptedError, streamMarks, transferError } from './stream-options.js';
import type { StreamResult, StreamSendOptions } from './stream-options.js';

/** Options of {@link sendStream}, {@link sendFile} and {@link createClientWritable}. */
export interface RawStreamOptions extends StreamSendOptions {
  /** End the client gracefully (flush, then FIN) once everything is sent. Default false. */
  end?: boolean;
}

/** What a transfer reads: a Node Readable, or any (async) iterable of bytes or strings. */
export type StreamSource = Readable | AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>;

/**
 * Sends the bytes of `source` to `client`, as they are, holding at most
 * `windowBytes` of them in memory however slow the peer reads (see
 * {@link StreamSendOptions}). Resolves once the last byte has been handed to
 * the kernel; the client's write-complete callback fires then, once.
 *
 * Rejects with `NETLOOP_STREAM_INTERRUPTED` when the client closes first
 * (`details.reason`), `NETLOOP_STREAM_SOURCE_FAILED` when the source fails
 * (`cause`), `NETLOOP_STREAM_ABORTED` when `options.signal` aborts, and
 * `NETLOOP_CLIENT_CLOSED` when the client is already closing. A raw transfer
 * cut short destroys the connection (the peer sees a reset, never a stream
 * that merely looks shorter); the source is destroyed, and closed, before
 * the promise settles.
 *
 * @throws NetloopError `NETLOOP_INVALID_OPTION` (synchronously, in the
 *   returned promise) for a bad option, or for a framed client (whose bytes
 *   are frames: use `FramedStreams`).
 */
export function sendStream(client: Client, source: StreamSource, options: RawStreamOptions = {}): Promise<StreamResult> {
  try {
    checkRawClient(client);
    const marks = streamMarks(client, options);
    const end = checkEnd(options.end);
    const readable = toReadable(source);
    let writable: ClientWritable;
    try {
      writable = new ClientWritable(client, rawSink(client), marks, { end });
    } catch (err) {
      return closeThenThrow(readable, err);
    }
    return transfer(readable, writable, options.signal);
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * Sends the file at `path` to `client` as raw bytes (see {@link sendStream}):
 * it is opened first (a missing or unreadable file rejects with
 * `NETLOOP_STREAM_SOURCE_FAILED`, `details.syscallCode`, before anything is
 * sent), read `chunkBytes` at a time into a ring of `windowBytes` of buffers
 * reused as the kernel takes their bytes (the transfer allocates nothing per
 * chunk), and its file descriptor is closed before the promise settles,
 * whatever ends the transfer.
 */
export async function sendFile(client: Client, path: string, options: RawStreamOptions = {}): Promise<StreamResult> {
  checkRawClient(client);
  const marks = streamMarks(client, options);
  const end = checkEnd(options.end);
  const file = await openForTransfer(path);
  if (!client.writable) {
    await file.handle.close().catch(() => {});
    throw interruptedError(client);
  }
  const bytes = await new FilePump(client, rawSink(client), marks, file, options.signal).run();
  if (end) client.end();
  return { bytes };
}

/**
 * A Writable that sends what is written to it to `client` as raw bytes, with
 * the client's output buffer as its backpressure (see {@link ClientWritable}):
 *
 * ```ts
 * await pipeline(fs.createReadStream(path), createClientWritable(client, { end: true }));
 * ```
 *
 * @throws NetloopError `NETLOOP_INVALID_OPTION` for a bad option or a framed
 *   client; `NETLOOP_CLIENT_CLOSED` when the client is closing or closed.
 */
export function createClientWritable(client: Client, options: RawStreamOptions = {}): ClientWritable {
  checkRawClient(client);
  const marks = streamMarks(client, options);
  const writable = new ClientWritable(client, rawSink(client), marks, { end: checkEnd(options.end) });
  abortOnSignal(writable, options.signal);
  return writable;
}

/** @internal Destroys `stream` with `NETLOOP_STREAM_ABORTED` (`by: 'signal'`) when `signal` aborts. */
export function abortOnSignal(stream: Readable | Writable, signal: AbortSignal | undefined): void {
  if (signal === undefined) return;
  const onAbort = (): void => {
    stream.destroy(abortedError('signal', signal.reason));
  };
  if (signal.aborted) {
    onAbort();
    return;
  }
  signal.addEventListener('abort', onAbort, { once: true });
  stream.once('close', () => signal.removeEventListener('abort', onAbort));
}

/**
 * @internal Runs one transfer: `source` piped into `writable`, then waits
 * for the source to close (its file descriptor, if any, released), and
 * reports the coded result.
 */
export async function transfer(source: Readable, writable: ClientWritable, signal: AbortSignal | undefined): Promise<StreamResult> {
  try {
    await (signal === undefined ? pipeline(source, writable) : pipeline(source, writable, { signal }));
  } catch (err) {
    if (!source.destroyed) source.destroy();
    if (!writable.destroyed) writable.destroy(transferError(err));
    await settled(source);
    throw transferError(err);
  }
  await settled(source);
  return { bytes: writable.bytesSent };
}

/** @internal Resolves once `stream` has closed (or ended, for one that never emits 'close'). */
export function settled(stream: Readable): Promise<void> {
  return new Promise<void>((resolve) => {
    finished(stream, () => resolve());
  });
}

/** @internal Destroys `source`, waits for it to close, then rejects with `err`. */
export async function closeThenThrow(source: Readable, err: unknown): Promise<never> {
  source.destroy();
  await settled(source);
  throw err;
}

/** @internal A Readable of `source` (itself when it is one). */
export function toReadable(source: StreamSource): Readable {
  if (source instanceof Readable) return source;
  if (source !== null && typeof source === 'object' && (Symbol.asyncIterator in source || Symbol.iterator in source)) {
    return Readable.from(source as AsyncIterable<Uint8Array | string>, { objectMode: false });
  }
  throw new NetloopError(ErrorCode.INVALID_OPTION, 'the source must be a Readable or an iterable of bytes', {
    details: { option: 'source', got: source === null ? 'null' : typeof source },
  });
}

function checkRawClient(client: Client): void {
  if (client instanceof FramedClient) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, "a framed client's bytes are frames: send streams to it with FramedStreams", {
      details: { option: 'client', clientId: client.id },
    });
  }
}

/**
 * @internal The raw bytes of a transfer: written to the client as they are;
 * cut short, the connection is reset and destroyed.
 */
export function rawSink(client: Client): StreamSink {
  return {
    write: (piece) => client.write(piece),
    finish: () => true,
    abort: (error) => resetClient(client, error),
    release: () => {},
  };
}

/**
 * @internal Destroys `client` with `'force-close'` and `error`, resetting
 * the connection (RST) where the socket is plain TCP: a FIN would let the
 * peer take a cut byte stream for a whole one. A TLS socket has no reset of
 * its own; it is destroyed, and its peer sees the connection end without
 * TLS's close_notify.
 */
export function resetClient(client: Client, error: NetloopError): void {
  if (client.closed) return;
  const socket = client.socket;
  if (!socket.destroyed && typeof socket.resetAndDestroy === 'function') {
    try {
      socket.resetAndDestroy();
    } catch {
      // Not a TCP handle (TLS): the destroy below closes it.
    }
  }
  client.destroy('force-close', error);
}
