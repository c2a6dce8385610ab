/**
 * Framed streams: Readables and files sent as chunks on one reserved frame
 * type of a `FramedServer` or `FramedConnector` (default `0xfff2`, see
 * `stream-protocol.ts`), so the connection's messages, and other streams,
 * interleave with them; and the receiving side, which reassembles each
 * incoming stream by id, within finite limits, into a Readable handed to the
 * application (the `'stream'` event).
 *
 * ```
 *   FramedStreams (one per owner)
 *     reserveType(type, onFrame)          owner 'close' ──▶ the client's streams end
 *     clients: Map<FramedClient, { incoming: Map<id, IncomingStream>,
 *                                  outgoing: Map<id, ClientWritable | FilePump> }>
 *     nextIds: WeakMap<FramedClient, id>   (outlives the entry above: ids are not reused soon)
 *   send ─▶ OPEN(meta) ─▶ ClientWritable (paced by the client's output) ─▶ DATA ... ─▶ END(length)
 *                         cut short ─▶ ABORT(code)
 *   receive: OPEN ──▶ over maxConcurrentStreams, or no 'stream' listener ──▶ CANCEL(REFUSED)
 *                 └─▶ IncomingStream (stream-incoming.ts) ──▶ 'stream' (client, stream)
 *            DATA ──▶ push(copy); push() false ──▶ the client's reading is held until _read()
 *            END  ──▶ the length checks ──▶ push(null)     ABORT ──▶ destroy(STREAM_ABORTED, by the peer)
 *            the application destroys it before the end ──▶ CANCEL(code) to the sender
 *   a malformed frame, a chunk over maxChunkBytes, an id opened twice, a wrong length
 *            ──▶ the client is closed: 'protocol-error', NETLOOP_STREAM_PROTOCOL
 * ```
 *
 * Reading pauses for the whole connection while one incoming stream's
 * buffer is full (TCP's flow control is the only one underneath): a stream
 * the application neither reads nor destroys holds its connection's input.
 *
 * @module
 */

import { Readable } from 'node:stream';
import { TypedEmitter } from '../core/emitter.js';
import { ErrorCode, NetloopError } from '../core/errors.js';
import { checkInteger } from '../core/validate.js';
import type { CloseReason } from '../reactor/close-reason.js';
import { FramedClient } from '../framing/framed-client.js';
import type { FramedOwner } from '../framing/framed-client.js';
import { FramedServer } from '../framing/framed-server.js';
import type { AnyFramedServer } from '../framing/framed-server.js';
import { FramedConnector } from '../framing/framed-connector.js';
import type { AnyFramedConnector } from '../framing/framed-connector.js';
import type { LtvEncoder } from '../codec/ltv-encoder.js';
import { IncomingStream } from './stream-incoming.js';
import { ClientWritable } from './stream-writable.js';
import type { StreamSink } from './stream-writable.js';
import { abortOnSignal, closeThenThrow, toReadable, transfer } from './stream-send.js';
import { FilePump, openForTransfer } from './stream-file.js';
import type { StreamSource } from './stream-send.js';
import { STREAM_DEFAULTS, abortedError, failStream, interruptedError, streamMarks } from './stream-options.js';
import type { StreamMarks, StreamSendOptions } from './stream-options.js';
import {
  STREAM_FRAME_TYPE,
  STREAM_HEADER_BYTES,
  StreamFrameKind,
  codeBody,
  endBody,
  readCodeBody,
  readEndBody,
  readStreamId,
  writeStreamHeader,
} from './stream-protocol.js';
export { STREAM_FRAME_TYPE } from './stream-protocol.js';
export { IncomingStream } from './stream-incoming.js';
import type { StreamFrameKindValue } from './stream-protocol.js';

/** Options of {@link FramedStreams}. Every limit has a finite default. */
export interface FramedStreamsOptions {
  /**
   * The reserved frame type of stream frames. Default `0xfff2`; required
   * when the layout's type field cannot hold it (a 1-byte type field holds
   * at most `0xff`). It must be free: neither registered nor reserved.
   */
  type?: number;
  /** Incoming streams open at once per connection; one more is refused (`NETLOOP_STREAM_REFUSED` at the sender). The same bound holds for outgoing streams. Default 16. */
  maxConcurrentStreams?: number;
  /** The largest chunk (DATA body) accepted; a larger one is a protocol error. Default 65,536 (less when the layout's frames are smaller). */
  maxChunkBytes?: number;
  /** The largest metadata of an incoming stream (its OPEN body), and of an outgoing one. Default 4,096. */
  maxMetaBytes?: number;
  /** Bytes an incoming stream's Readable buffers before reading its connection pauses. Default 262,144. */
  highWaterMark?: number;
  /** The default window of outgoing streams (see `StreamSendOptions.windowBytes`). Default 1 MiB. */
  windowBytes?: number;
  /** The default chunk of outgoing streams (see `StreamSendOptions.chunkBytes`); at most the peer's `maxChunkBytes`. Default 65,536 (less when the layout's frames are smaller). */
  chunkBytes?: number;
}

/** Defaults of {@link FramedStreamsOptions}. */
export const FRAMED_STREAMS_DEFAULTS = {
  /** The reserved frame type, `0xfff2`. */
  type: STREAM_FRAME_TYPE,
  /** Streams open at once per connection and direction. */
  maxConcurrentStreams: 16,
  /** The largest chunk accepted (lowered to what the layout's frames carry). */
  maxChunkBytes: 64 * 1024,
  /** The largest metadata of a stream. */
  maxMetaBytes: 4096,
  /** Bytes an incoming stream buffers before its connection's reading pauses. */
  highWaterMark: 256 * 1024,
  /** The window of outgoing streams. */
  windowBytes: STREAM_DEFAULTS.windowBytes,
  /** The chunk of outgoing streams. */
  chunkBytes: STREAM_DEFAULTS.chunkBytes,
} as const;

/** The streams open on one connection ({@link FramedStreams.openStreams}). */
export interface OpenStreams {
  /** Streams the peer is sending here. */
  incoming: number;
  /** Streams being sent to the peer. */
  outgoing: number;
}

/** Options of one outgoing framed stream. */
export interface FramedStreamSendOptions extends StreamSendOptions {
  /** Metadata the receiver reads as `stream.meta` before the first chunk (a name, a size, ...): bytes, or a string sent as UTF-8. At most `maxMetaBytes`. */
  meta?: Uint8Array | string;
}

/** What an outgoing framed stream reports once its end marker has been handed to the kernel. */
export interface FramedStreamResult {
  /** The stream's id on its connection (the receiver's `stream.id`). */
  id: number;
  /** Bytes of the source sent. */
  bytes: number;
}

/** The events of {@link FramedStreams}. */
export interface FramedStreamsEvents {
  /**
   * A peer opened a stream. Read it (or pipe it) or destroy it: a stream
   * left unread holds its connection's reading once its buffer is full. A
   * throw or a rejected promise closes that client with `'handler-error'`.
   */
  stream: (client: FramedClient, stream: IncomingStream) => void;
  /** A fault that concerns no open client; nobody listening, a process warning. */
  error: (error: NetloopError) => void;
}

/** The close event of a framed server or connector (the union of their event maps is not callable as such). */
interface OwnerCloseEvents {
  on(name: 'close', fn: (client: FramedClient, reason: CloseReason) => void): unknown;
  off(name: 'close', fn: (client: FramedClient, reason: CloseReason) => void): unknown;
}

/** The sender of an outgoing stream (a Writable, or a file transfer): ended with destroy(error). */
interface Outgoing {
  destroy(error?: Error): unknown;
}

/** The streams of one connection. */
interface ClientStreams {
  readonly incoming: Map<number, IncomingStream>;
  readonly outgoing: Map<number, Outgoing>;
}

/**
 * Framed streams on a `FramedServer` or a `FramedConnector` (see the module
 * comment): both ends send with {@link FramedStreams.send} (or
 * {@link FramedStreams.sendFile}, {@link FramedStreams.createWritable}) and
 * receive with the `'stream'` event.
 *
 * ```ts
 * const streams = new FramedStreams(server);
 * streams.on('stream', (client, stream) => {
 *   void pipeline(stream, fs.createWriteStream(`upload-${stream.id}`));
 * });
 * const { bytes } = await streams.sendFile(client, 'big.iso', { meta: 'big.iso' });
 * ```
 */
export class FramedStreams extends TypedEmitter<FramedStreamsEvents> {
  /** The reserved frame type of the stream frames. */
  readonly type: number;
  readonly #owner: AnyFramedServer | AnyFramedConnector;
  readonly #encoder: LtvEncoder;
  readonly #maxStreams: number;
  readonly #maxChunk: number;
  readonly #maxMeta: number;
  readonly #highWaterMark: number;
  readonly #sendDefaults: StreamSendOptions;
  /** The largest chunk a frame of the layout carries. */
  readonly #chunkCap: number;
  readonly #clients = new Map<FramedClient, ClientStreams>();
  /**
   * The next outgoing id of each client. Kept apart from {@link ClientStreams}
   * (dropped once a client has no stream open) so that an id is not used
   * again while a cancel of its previous stream may still be on the way.
   */
  readonly #nextIds = new WeakMap<FramedClient, number>();
  #giveBack: (() => void) | null;

  /**
   * Reserves the stream frame type on `owner` and listens for its clients' closes.
   *
   * @throws NetloopError `NETLOOP_INVALID_OPTION` for a bad option (a type
   *   the layout cannot carry: give `type`), `NETLOOP_DUPLICATE_TYPE` for a
   *   type the registry holds or already reserved.
   */
  constructor(owner: AnyFramedServer | AnyFramedConnector, options: FramedStreamsOptions = {}) {
    super();
    if (!(owner instanceof FramedServer || owner instanceof FramedConnector)) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'framed streams need a FramedServer or a FramedConnector', { details: { option: 'owner' } });
    }
    if (typeof options !== 'object' || options === null) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'options must be an object', { details: { option: 'options' } });
    }
    const framing = (owner as unknown as FramedOwner)._framing;
    const layout = framing.layout;
    // Without a type field every frame is of type 0: stream frames could not be told from messages.
    if (layout.typeBytes === 0) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, "the layout has no type field: framed streams need one beside the messages' types", {
        details: { option: 'type', max: 0 },
      });
    }
    if (options.type === undefined && layout.maxType < STREAM_FRAME_TYPE) {
      throw new NetloopError(
        ErrorCode.INVALID_OPTION,
        `the layout's type field holds at most ${layout.maxType}: give the stream frame type (option type)`,
        { details: { option: 'type', max: layout.maxType } },
      );
    }
    const type = checkInteger('type', options.type ?? STREAM_FRAME_TYPE, 1, layout.maxType);
    this.#chunkCap = layout.maxValueLength - STREAM_HEADER_BYTES;
    if (this.#chunkCap < 1) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'the layout carries no frame large enough for a stream chunk', {
        details: { option: 'layout', maxValueLength: layout.maxValueLength },
      });
    }
    const chunkDefault = Math.min(FRAMED_STREAMS_DEFAULTS.maxChunkBytes, this.#chunkCap);
    this.#maxStreams = checkInteger('maxConcurrentStreams', options.maxConcurrentStreams ?? FRAMED_STREAMS_DEFAULTS.maxConcurrentStreams, 1, 65_536);
    this.#maxChunk = checkInteger('maxChunkBytes', options.maxChunkBytes ?? chunkDefault, 1, this.#chunkCap);
    this.#maxMeta = checkInteger('maxMetaBytes', options.maxMetaBytes ?? Math.min(FRAMED_STREAMS_DEFAULTS.maxMetaBytes, this.#chunkCap), 0, this.#chunkCap);
    this.#highWaterMark = checkInteger('highWaterMark', options.highWaterMark ?? FRAMED_STREAMS_DEFAULTS.highWaterMark, 1, 2 ** 30);
    const chunkBytes = checkInteger('chunkBytes', options.chunkBytes ?? chunkDefault, 1, this.#chunkCap);
    const windowBytes = checkInteger('windowBytes', options.windowBytes ?? FRAMED_STREAMS_DEFAULTS.windowBytes, 6 * chunkBytes, 2 ** 40);
    this.#sendDefaults = { chunkBytes, windowBytes };
    this.#owner = owner;
    this.#encoder = framing.encoder;
    this.#giveBack = owner.reserveType(type, this.#onFrame);
    this.type = type;
    (owner as unknown as OwnerCloseEvents).on('close', this.#onClose);
  }

  /**
   * Sends `source` to `client` as a new stream (see {@link FramedStreamSendOptions}):
   * an OPEN with `options.meta`, its bytes in chunks paced by the client's
   * output buffer (at most `windowBytes` of them in memory), then the end
   * marker. Resolves once the end marker has been handed to the kernel.
   *
   * Rejects with `NETLOOP_STREAM_INTERRUPTED` when the client closes first,
   * `NETLOOP_STREAM_SOURCE_FAILED` when the source fails,
   * `NETLOOP_STREAM_ABORTED` when `options.signal` aborts or the receiver
   * cancels, `NETLOOP_STREAM_REFUSED` when the receiver refuses the stream
   * (or `maxConcurrentStreams` outgoing streams are open on the client,
   * `details.by: 'local'`), `NETLOOP_CLIENT_CLOSED` when the client is
   * closing already, `NETLOOP_INVALID_OPTION` for a bad option. Each failure
   * but the first and the last sends the receiver the abort marker; the
   * connection stays open. The source is closed before the promise settles.
   *
   * The receiver does not acknowledge a stream: a refusal or a cancel that
   * arrives after the end marker left is not seen, so resolving means the
   * stream was sent whole, not that the receiver kept it (an application
   * that needs to know answers with a message of its own).
   */
  send(client: FramedClient, source: StreamSource, options: FramedStreamSendOptions = {}): Promise<FramedStreamResult> {
    let readable: Readable;
    try {
      readable = toReadable(source);
    } catch (err) {
      return Promise.reject(err);
    }
    let writable: ClientWritable;
    try {
      writable = this.#open(client, options, (sink, marks, id) => new ClientWritable(client, sink, marks, { streamId: id }));
    } catch (err) {
      return closeThenThrow(readable, err);
    }
    return transfer(readable, writable, options.signal).then(({ bytes }) => ({ id: writable.streamId, bytes }));
  }

  /**
   * Sends the file at `path` as a new stream (see {@link FramedStreams.send}):
   * opened first (a missing file rejects with `NETLOOP_STREAM_SOURCE_FAILED`
   * before the stream opens), read into a ring of `windowBytes` of reused
   * buffers (as `sendFile` does), and closed before the promise settles.
   */
  async sendFile(client: FramedClient, path: string, options: FramedStreamSendOptions = {}): Promise<FramedStreamResult> {
    // Validated before the file is opened, so a bad option opens nothing.
    this.#check(client, options);
    const file = await openForTransfer(path);
    let pump: FilePump;
    let id = 0;
    try {
      pump = this.#open(client, options, (sink, marks, streamId) => {
        id = streamId;
        return new FilePump(client, sink, marks, file, options.signal);
      });
    } catch (err) {
      await file.handle.close().catch(() => {});
      throw err;
    }
    return { id, bytes: await pump.run() };
  }

  /**
   * Opens a new stream to `client` now (the OPEN frame, with `options.meta`)
   * and returns its Writable: what is written becomes its chunks, paced by
   * the client's output buffer; `end()` sends the end marker; `destroy(err)`
   * before the end sends the abort marker with `err`'s code. Its `streamId`
   * is the receiver's `stream.id`.
   *
   * @throws NetloopError as {@link FramedStreams.send} rejects, synchronously.
   */
  createWritable(client: FramedClient, options: FramedStreamSendOptions = {}): ClientWritable {
    const writable = this.#open(client, options, (sink, marks, id) => new ClientWritable(client, sink, marks, { streamId: id }));
    abortOnSignal(writable, options.signal);
    return writable;
  }

  /** The streams open on `client`: incoming and outgoing. */
  openStreams(client: FramedClient): OpenStreams {
    const per = this.#clients.get(client);
    return per === undefined ? { incoming: 0, outgoing: 0 } : { incoming: per.incoming.size, outgoing: per.outgoing.size };
  }

  /**
   * Stops: every open stream, both ways, is aborted (`NETLOOP_STREAM_ABORTED`,
   * `details.by: 'local'`, and the peers are told), the frame type is given
   * back and the owner is no longer listened to. Idempotent.
   */
  close(): void {
    const giveBack = this.#giveBack;
    if (giveBack === null) return;
    this.#giveBack = null;
    giveBack();
    (this.#owner as unknown as OwnerCloseEvents).off('close', this.#onClose);
    const error = abortedError('local');
    for (const per of [...this.#clients.values()]) {
      for (const s of [...per.incoming.values()]) failStream(s, error);
      for (const w of [...per.outgoing.values()]) failOutgoing(w, error);
    }
    this.#clients.clear();
  }

  /** @internal An incoming stream is over: forget it, and tell the sender when it was cut here (`error`). */
  _incomingGone(stream: IncomingStream, error: NetloopError | null): void {
    const per = this.#clients.get(stream.client);
    if (per !== undefined && per.incoming.get(stream.id) === stream) {
      per.incoming.delete(stream.id);
      this.#forget(stream.client, per);
    }
    if (error !== null && stream.client.writable) this.#sendSmall(stream.client, StreamFrameKind.CANCEL, stream.id, codeBody(error.code));
  }

  /** A listener fault of an event about a client closes that client (`'handler-error'`). */
  protected override _listenerFault(fault: unknown, name: string, args: readonly unknown[]): void {
    const client = args[0];
    if (name !== 'error' && client instanceof FramedClient) {
      client._handlerFault(fault, `FramedStreams '${name}' listener`);
      return;
    }
    this._reportError(fault, name);
  }

  // ─── sending ────────────────────────────────────────────────────────────────

  /** Checks a send's client and options (the window against the client's limits too), before anything is opened. */
  #check(client: FramedClient, options: FramedStreamSendOptions): { meta: Buffer; marks: StreamMarks } {
    if (this.#giveBack === null) throw abortedError('local');
    if (!(client instanceof FramedClient) || client._owner !== (this.#owner as unknown)) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, "the client must be one of the streams' owner's", { details: { option: 'client' } });
    }
    if (typeof options !== 'object' || options === null) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'options must be an object', { details: { option: 'options' } });
    }
    const raw = options.meta ?? EMPTY;
    if (typeof raw !== 'string' && !(raw instanceof Uint8Array)) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'meta must be bytes or a string', { details: { option: 'meta' } });
    }
    const meta = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    if (meta.length > this.#maxMeta) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, `meta of ${meta.length} bytes exceeds maxMetaBytes ${this.#maxMeta}`, {
        details: { option: 'meta', value: meta.length, max: this.#maxMeta },
      });
    }
    const marks = streamMarks(
      client,
      {
        windowBytes: options.windowBytes ?? this.#sendDefaults.windowBytes,
        chunkBytes: options.chunkBytes ?? this.#sendDefaults.chunkBytes,
        signal: options.signal,
      },
      this.#chunkCap,
    );
    return { meta, marks };
  }

  /** Checks everything, takes an id, makes the stream's sender with `make`, sends OPEN. */
  #open<T extends Outgoing>(client: FramedClient, options: FramedStreamSendOptions, make: (sink: StreamSink, marks: StreamMarks, id: number) => T): T {
    const { meta, marks } = this.#check(client, options);
    const known = this.#clients.get(client);
    if (known !== undefined && known.outgoing.size >= this.#maxStreams) {
      throw new NetloopError(ErrorCode.STREAM_REFUSED, `client ${client.id} has ${known.outgoing.size} outgoing streams open (maxConcurrentStreams)`, {
        details: { by: 'local', clientId: client.id, limit: this.#maxStreams },
      });
    }
    if (client.closing || client.closed) {
      throw new NetloopError(ErrorCode.CLIENT_CLOSED, `cannot stream to client ${client.id}: it is ${client.closed ? 'closed' : 'closing'}`, {
        details: { clientId: client.id, reason: client._closeReason },
      });
    }
    const per = known ?? this.#streamsOf(client);
    const id = this.#nextId(client, per);
    let sender: T;
    try {
      sender = make(this.#sink(client, per, id), marks, id);
    } catch (err) {
      this.#forget(client, per);
      throw err;
    }
    per.outgoing.set(id, sender);
    this.#sendSmall(client, StreamFrameKind.OPEN, id, meta);
    return sender;
  }

  /** The frames of outgoing stream `id`. */
  #sink(client: FramedClient, per: ClientStreams, id: number): StreamSink {
    return {
      write: (piece) => {
        const ok = client.appendPairToOutputBuffer(this.#head(StreamFrameKind.DATA, id, piece.byteLength), piece);
        if (ok) {
          client.enableWriting();
          client.loop.updateClient(client);
        }
        return ok;
      },
      finish: (total) => this.#sendSmall(client, StreamFrameKind.END, id, endBody(total)),
      abort: (error) => {
        // A stream the receiver cancelled or refused needs no abort marker.
        if (error.details['by'] === 'peer' || (error.code === ErrorCode.STREAM_REFUSED && error.details['by'] !== 'local')) return;
        if (client.writable) this.#sendSmall(client, StreamFrameKind.ABORT, id, codeBody(error.code));
      },
      release: () => {
        const w = per.outgoing.get(id);
        if (w === undefined) return;
        per.outgoing.delete(id);
        this.#forget(client, per);
      },
    };
  }

  /** The LTV header and the stream header of a frame whose body has `bodyLength` bytes. */
  #head(kind: StreamFrameKindValue, id: number, bodyLength: number): Buffer {
    const ltv = this.#encoder.header(this.type, STREAM_HEADER_BYTES + bodyLength);
    const head = Buffer.allocUnsafe(ltv.length + STREAM_HEADER_BYTES);
    head.set(ltv, 0);
    writeStreamHeader(head, ltv.length, kind, id);
    return head;
  }

  /** Queues one frame with a small body (copied together with its headers); false when the client refused it. */
  #sendSmall(client: FramedClient, kind: StreamFrameKindValue, id: number, body: Uint8Array): boolean {
    const head = this.#head(kind, id, body.byteLength);
    if (body.byteLength === 0) return client.write(head);
    const frame = Buffer.allocUnsafe(head.length + body.byteLength);
    frame.set(head, 0);
    frame.set(body, head.length);
    return client.write(frame);
  }

  // ─── receiving ──────────────────────────────────────────────────────────────

  /** The reserved type's handler: one stream frame, `source[start, end)` valid during the call. */
  readonly #onFrame = (client: FramedClient, source: Buffer, start: number, end: number): void => {
    if (end - start < STREAM_HEADER_BYTES) {
      this.#protocolError(client, `a stream frame of ${end - start} bytes is shorter than its header`, {});
      return;
    }
    const kind = source[start];
    const id = readStreamId(source, start);
    const body = start + STREAM_HEADER_BYTES;
    switch (kind) {
      case StreamFrameKind.OPEN:
        this.#onOpen(client, id, source, body, end);
        return;
      case StreamFrameKind.DATA: {
        const length = end - body;
        if (length < 1 || length > this.#maxChunk) {
          this.#protocolError(client, `a chunk of ${length} bytes is outside [1, maxChunkBytes ${this.#maxChunk}]`, { id, length, max: this.#maxChunk });
          return;
        }
        const stream = this.#clients.get(client)?.incoming.get(id);
        // A stream refused or cancelled here: its chunks still in flight are dropped.
        if (stream === undefined) return;
        const chunk = Buffer.allocUnsafe(length);
        source.copy(chunk, 0, body, end);
        stream._chunk(chunk);
        return;
      }
      case StreamFrameKind.END: {
        const length = readEndBody(source, body, end);
        if (length < 0) {
          this.#protocolError(client, 'a malformed stream end marker', { id });
          return;
        }
        const per = this.#clients.get(client);
        const stream = per?.incoming.get(id);
        if (stream === undefined || per === undefined) return;
        if (length !== stream.bytesReceived) {
          this.#protocolError(client, `stream ${id} ended at ${length} bytes but ${stream.bytesReceived} arrived`, { id, length, received: stream.bytesReceived });
          return;
        }
        per.incoming.delete(id);
        this.#forget(client, per);
        stream._end();
        return;
      }
      case StreamFrameKind.ABORT:
      case StreamFrameKind.CANCEL: {
        const code = readCodeBody(source, body, end);
        if (code === null) {
          this.#protocolError(client, 'a malformed stream abort marker', { id });
          return;
        }
        const per = this.#clients.get(client);
        if (per === undefined) return;
        if (kind === StreamFrameKind.ABORT) {
          const stream = per.incoming.get(id);
          if (stream === undefined) return;
          per.incoming.delete(id);
          this.#forget(client, per);
          stream._fail(abortedError('peer', undefined, code));
        } else {
          const writable = per.outgoing.get(id);
          if (writable === undefined) return;
          failOutgoing(
            writable,
            code === ErrorCode.STREAM_REFUSED
              ? new NetloopError(ErrorCode.STREAM_REFUSED, `the peer refused stream ${id}`, { details: { by: 'peer', id } })
              : abortedError('peer', undefined, code),
          );
        }
        return;
      }
      default:
        this.#protocolError(client, `unknown stream frame kind ${String(kind)}`, { id, kind });
    }
  };

  #onOpen(client: FramedClient, id: number, source: Buffer, start: number, end: number): void {
    const length = end - start;
    if (length > this.#maxMeta) {
      this.#protocolError(client, `stream metadata of ${length} bytes exceeds maxMetaBytes ${this.#maxMeta}`, { id, length, max: this.#maxMeta });
      return;
    }
    const per = this.#clients.get(client);
    if (per !== undefined && per.incoming.has(id)) {
      this.#protocolError(client, `stream ${id} was opened twice`, { id });
      return;
    }
    if ((per !== undefined && per.incoming.size >= this.#maxStreams) || this.listenerCount('stream') === 0 || !client.writable) {
      this.#sendSmall(client, StreamFrameKind.CANCEL, id, codeBody(ErrorCode.STREAM_REFUSED));
      return;
    }
    const meta = Buffer.allocUnsafe(length);
    source.copy(meta, 0, start, end);
    const stream = new IncomingStream(this, client, id, meta, this.#highWaterMark);
    (per ?? this.#streamsOf(client)).incoming.set(id, stream);
    this.emit('stream', client, stream);
  }

  #protocolError(client: FramedClient, message: string, details: Record<string, unknown>): void {
    client.destroy('protocol-error', new NetloopError(ErrorCode.STREAM_PROTOCOL, message, { details: { clientId: client.id, ...details } }));
  }

  // ─── per client ─────────────────────────────────────────────────────────────

  #streamsOf(client: FramedClient): ClientStreams {
    let per = this.#clients.get(client);
    if (per === undefined) {
      per = { incoming: new Map(), outgoing: new Map() };
      this.#clients.set(client, per);
    }
    return per;
  }

  /** The client's next free outgoing id (1, 2, ..., wrapping past 2^32 - 1, skipping ids still open). */
  #nextId(client: FramedClient, per: ClientStreams): number {
    let id = this.#nextIds.get(client) ?? 1;
    while (per.outgoing.has(id)) id = id >= 0xffff_ffff ? 1 : id + 1;
    this.#nextIds.set(client, id >= 0xffff_ffff ? 1 : id + 1);
    return id;
  }

  /** Drops the client's entry once it has no stream left. */
  #forget(client: FramedClient, per: ClientStreams): void {
    if (per.incoming.size === 0 && per.outgoing.size === 0 && this.#clients.get(client) === per) this.#clients.delete(client);
  }

  /** The owner's 'close': the client's incoming streams fail (its outgoing ones learn it from their link). */
  readonly #onClose = (client: FramedClient, _reason: CloseReason): void => {
    const per = this.#clients.get(client);
    if (per === undefined) return;
    this.#clients.delete(client);
    if (per.incoming.size === 0) return;
    const error = interruptedError(client);
    for (const s of [...per.incoming.values()]) s._fail(error);
  };
}

const EMPTY = new Uint8Array(0);

/** Ends an outgoing stream with `error`: a Writable of the application without an 'error' listener keeps it in `errored`. */
function failOutgoing(sender: Outgoing, error: NetloopError): void {
  if (sender instanceof ClientWritable) failStream(sender, error);
  else sender.destroy(error);
}
