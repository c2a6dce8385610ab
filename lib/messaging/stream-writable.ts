/**
 * A Writable over one client: the send side of every stream transfer (raw
 * bytes or a framed stream), paced by the client's own output buffer.
 *
 * The Writable is a producer of the client's backpressure link (the
 * reactor's `linkBackpressure` machinery, as a relay's reading follows its
 * consumer's output): when the client's queued output reaches the high mark
 * the callback of the chunk being written is held, so Node's stream
 * machinery stops the source (`pipeline`, `write()` returning false); once
 * the client drained its output to the low mark the callback runs and the
 * source flows again. While the link lasts the client's output is not
 * complete (the transfer has more to send), so its write-complete callback
 * and `flushed()` fire once, after the last byte, however often a source
 * slower than the network lets the buffer run dry.
 *
 * ```
 *   source ──pipeline──▶ ClientWritable._write(chunk, cb)
 *                          pieces of <= chunkBytes ──sink.write──▶ client output buffer
 *                          queued >= high ──▶ _hold: the rest of the chunk and cb wait
 *                          queued <= low  ──▶ _unhold ──(next tick)──▶ go on, cb()
 *                        _final: sink.finish(total) ──▶ client.flushed() ──▶ [client.end()] ──▶ 'finish'
 *                        _destroy(err) before the end ──▶ sink.abort(coded error) (framed: the abort
 *                          marker; raw: the connection is destroyed, the peer's only sign of a cut stream)
 *   the client closes first ──▶ the link's _unlink ──▶ destroy(NETLOOP_STREAM_INTERRUPTED)
 * ```
 *
 * @module
 */

import { Writable } from 'node:stream';
import { _linkOutput } from '../reactor/client.js';
import type { BackpressureLink, Client } from '../reactor/client.js';
import { ErrorCode, NetloopError } from '../core/errors.js';
import { abortedError, failStream, interruptedError, transferError } from './stream-options.js';
import type { StreamMarks } from './stream-options.js';

/**
 * @internal Where a transfer's bytes go: raw bytes on the client, or the
 * frames of one framed stream.
 */
export interface StreamSink {
  /** Queues one piece (at most the marks' `chunkBytes`); false when the client refused it (closing, closed, over its limit). */
  write(piece: Uint8Array): boolean;
  /** Queues the end of the stream (a framed stream's end marker, with the total); false when refused. */
  finish(total: number): boolean;
  /** Tells the peer the stream is cut, with the coded error that cut it. */
  abort(error: NetloopError): void;
  /** The stream is over, whichever way: release what the sink holds (a framed stream's id). */
  release(): void;
}

/** What waits while the client's output is at its high mark: the rest of a chunk and its callback. */
interface Parked {
  chunk: Uint8Array;
  offset: number;
  cb: (error?: Error | null) => void;
}

const NOTHING = new Uint8Array(0);

/**
 * A Writable that sends what is written to it to one client, with the
 * client's output buffer as its backpressure (see the module comment). Made
 * by `createClientWritable` (raw bytes) or `FramedStreams.createWritable`
 * (a framed stream); `stream.pipeline(fs.createReadStream(path), writable)`
 * sends a file with Node's own backpressure and error propagation.
 *
 * Errors: the client closing first destroys it with
 * `NETLOOP_STREAM_INTERRUPTED` (`details.reason`); the peer cancelling a
 * framed stream with `NETLOOP_STREAM_ABORTED` (`details.by: 'peer'`) or
 * `NETLOOP_STREAM_REFUSED`. Destroying it before its end (an error of the
 * source in a pipeline, an AbortSignal, `destroy()`) tells the peer: a
 * framed stream sends its abort marker with the error's code, a raw one
 * destroys the connection, since a byte stream has no other way to tell a
 * cut transfer from a whole one.
 */
export class ClientWritable extends Writable {
  /** The client written to. */
  readonly client: Client;
  /** The id of a framed stream (the receiver's `stream.id`); 0 for raw bytes. */
  readonly streamId: number;
  readonly #sink: StreamSink;
  readonly #chunkBytes: number;
  readonly #endClient: boolean;
  #undo: (() => void) | null;
  #held = false;
  #parked: Parked | null = null;
  #resumeQueued = false;
  #bytes = 0;
  /** The end was queued and flushed (finished) or the Writable was destroyed: the link's end is expected. */
  #over = false;

  /**
   * @internal Made by `createClientWritable` and `FramedStreams`.
   *
   * @throws NetloopError `NETLOOP_CLIENT_CLOSED` when the client is closing or closed.
   */
  constructor(client: Client, sink: StreamSink, marks: StreamMarks, options: { end?: boolean; streamId?: number } = {}) {
    if (!client.writable) {
      throw new NetloopError(ErrorCode.CLIENT_CLOSED, `cannot stream to client ${client.id}: it is ${client.closed ? 'closed' : 'closing'}`, {
        details: { clientId: client.id, reason: client._closeReason },
      });
    }
    super({ highWaterMark: marks.chunkBytes, decodeStrings: true });
    this.client = client;
    this.streamId = options.streamId ?? 0;
    this.#sink = sink;
    this.#chunkBytes = marks.chunkBytes;
    this.#endClient = options.end === true;
    this.#undo = _linkOutput(this, client, marks.high, marks.low);
  }

  /** Bytes handed to the client so far (queued on it; not necessarily sent yet). */
  get bytesSent(): number {
    return this.#bytes;
  }

  /** @internal Node hands over a chunk: queue it on the client, piece by piece, paced by the marks. */
  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (error?: Error | null) => void): void {
    this.#offer(chunk, 0, cb);
  }

  /** @internal Node ends the stream: queue its end, and finish once the client flushed it. */
  override _final(cb: (error?: Error | null) => void): void {
    if (!this.#sink.finish(this.#bytes)) {
      cb(interruptedError(this.client));
      return;
    }
    this.#unlink();
    this.client.flushed().then(
      () => {
        this.#over = true;
        this.#sink.release();
        if (this.#endClient) this.client.end();
        cb();
      },
      () => cb(interruptedError(this.client)),
    );
  }

  /** @internal Node destroys the stream: release what it holds, and tell the peer when it was cut before its end. */
  override _destroy(error: Error | null, cb: (error?: Error | null) => void): void {
    const wasOver = this.#over;
    this.#over = true;
    this.#parked = null;
    this.#unlink();
    if (!wasOver) {
      // Cut before its end: the peer must learn it (unless it is the one who cut it).
      const coded = error === null ? abortedError('local') : transferError(error);
      try {
        this.#sink.abort(coded);
      } finally {
        this.#sink.release();
      }
    }
    cb(error);
  }

  /** @internal The client's queued output reached the high mark (called from its write path). */
  _hold(): void {
    this.#held = true;
  }

  /** @internal It drained to the low mark (called from its write path: the rest runs on the next tick). */
  _unhold(): void {
    this.#held = false;
    if (this.#parked !== null && !this.#resumeQueued) {
      this.#resumeQueued = true;
      process.nextTick(() => this.#resume());
    }
  }

  /** @internal The link ended: undone by this Writable, or the client closed (called from its close path). */
  _unlink(_link: BackpressureLink): void {
    if (this.#undo === null) return;
    this.#undo = null;
    if (this.#over) return;
    // The client closed with the transfer under way; its close path must not run stream code.
    process.nextTick(() => failStream(this, interruptedError(this.client)));
  }

  /** Queues `chunk` from `offset`, piece by piece, until the high mark holds it; `cb` runs once all of it is queued. */
  #offer(chunk: Uint8Array, offset: number, cb: (error?: Error | null) => void): void {
    const size = this.#chunkBytes;
    const n = chunk.byteLength;
    while (offset < n) {
      if (this.#held) {
        this.#parked = { chunk, offset, cb };
        return;
      }
      const end = Math.min(n, offset + size);
      const piece = offset === 0 && end === n ? chunk : chunk.subarray(offset, end);
      if (!this.#sink.write(piece)) {
        cb(interruptedError(this.client));
        return;
      }
      this.#bytes += end - offset;
      offset = end;
    }
    // The whole chunk is queued; while the output is at its mark the callback
    // waits, so the source is not read further.
    if (this.#held) this.#parked = { chunk: NOTHING, offset: 0, cb };
    else cb();
  }

  #resume(): void {
    this.#resumeQueued = false;
    const parked = this.#parked;
    if (parked === null || this.#held || this.destroyed) return;
    this.#parked = null;
    this.#offer(parked.chunk, parked.offset, parked.cb);
  }

  #unlink(): void {
    const undo = this.#undo;
    if (undo === null) return;
    this.#undo = null;
    undo();
  }
}
