/**
 * The receiving end of one framed stream: a Readable fed by the frames of
 * its sender (see `stream-framed.ts`), which holds its connection's reading
 * while its buffer is full and tells the sender when the application drops
 * it before the end.
 *
 * ```
 *   DATA ──▶ _chunk(copy) ──▶ push() false ──▶ client._hold()   (one hold at most)
 *   _read() (Node asks for more) ──▶ client._unhold()
 *   END ──▶ _end() ──▶ push(null)        ABORT / close ──▶ _fail(error)
 *   destroy() before the end ──▶ owner._incomingGone(stream, reason to tell the sender)
 * ```
 *
 * @module
 */

import { Readable } from 'node:stream';
import type { NetloopError } from '../core/errors.js';
import type { FramedClient } from '../framing/framed-client.js';
import { abortedError, failStream, transferError } from './stream-options.js';

/** What an incoming stream tells the streams that made it ({@link FramedStreams}). */
export interface IncomingStreamOwner {
  /** The stream is gone; `error` is what to tell the sender, or null when there is nothing to tell. */
  _incomingGone(stream: IncomingStream, error: NetloopError | null): void;
}

/**
 * One stream a peer sends, as a Readable (the `'stream'` event of
 * {@link FramedStreams}). It ends after the sender's end marker (its length
 * checked); it fails with `NETLOOP_STREAM_ABORTED` (`details.by: 'peer'`,
 * `details.remoteCode`) when the sender aborts it, and with
 * `NETLOOP_STREAM_INTERRUPTED` when the connection closes first. Destroying
 * it before its end tells the sender to stop (its transfer fails with
 * `NETLOOP_STREAM_ABORTED`, `by: 'peer'`). A failure with no `'error'`
 * listener attached (no pipeline, no `for await`) is kept in `errored`
 * rather than thrown: a peer cannot crash the process.
 */
export class IncomingStream extends Readable {
  /** The sender's id of the stream on this connection. */
  readonly id: number;
  /** The connection it arrives on. */
  readonly client: FramedClient;
  /** The metadata the sender opened it with (empty when none). */
  readonly meta: Buffer;
  readonly #streams: IncomingStreamOwner;
  #holding = false;
  /** The sender's end or abort arrived, or the connection closed: nothing to tell the sender. */
  #over = false;
  #bytes = 0;

  /** @internal Made by {@link FramedStreams} on an OPEN frame. */
  constructor(streams: IncomingStreamOwner, client: FramedClient, id: number, meta: Buffer, highWaterMark: number) {
    super({ highWaterMark });
    this.#streams = streams;
    this.client = client;
    this.id = id;
    this.meta = meta;
  }

  /** Bytes received so far. */
  get bytesReceived(): number {
    return this.#bytes;
  }

  /** The metadata as UTF-8 text. */
  metaText(): string {
    return this.meta.toString('utf8');
  }

  /** @internal Node asks for more: release the hold on the client's reading. */
  override _read(): void {
    if (this.#holding) {
      this.#holding = false;
      this.client._unhold();
    }
  }

  /** @internal Node destroys the stream: release what it holds, and tell the peer when it was cut before its end. */
  override _destroy(error: Error | null, cb: (error?: Error | null) => void): void {
    if (this.#holding) {
      this.#holding = false;
      this.client._unhold();
    }
    const tell = !this.#over;
    this.#over = true;
    this.#streams._incomingGone(this, tell ? (error === null ? abortedError('local') : transferError(error)) : null);
    cb(error);
  }

  /** @internal A chunk (a copy, the stream's own). */
  _chunk(chunk: Buffer): void {
    this.#bytes += chunk.length;
    if (!this.push(chunk) && !this.#holding) {
      this.#holding = true;
      this.client._hold();
    }
  }

  /** @internal The sender's end marker, its length checked. */
  _end(): void {
    this.#over = true;
    if (this.#holding) {
      this.#holding = false;
      this.client._unhold();
    }
    this.push(null);
  }

  /** @internal The sender aborted, or the connection closed: fail with `error`, telling nobody. */
  _fail(error: NetloopError): void {
    this.#over = true;
    failStream(this, error);
  }
}
