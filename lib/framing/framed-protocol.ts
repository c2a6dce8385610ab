/**
 * The framing layer between the reactor and the application: it plugs the
 * LTV codec and the message registry into a {@link Client} through its
 * `_protocol` seam, for every client of a Server or Connector created with a
 * `framing` option.
 *
 * ```
 *   socket chunk ──▶ Client._onData ──▶ FramedConnection.onData
 *        decoder.feed(chunk) ──▶ onRawFrame(type, source, start, end)
 *            in flight < maxPendingMessages && backlog empty ?
 *               dispatch: value view → registry.decode → onMessage(client, msg) | 'message'
 *                     or, with onRawFrame: onRawFrame(client, type, source, start, end), no view
 *               : backlog.push(type, source, start, end)     (rest of this chunk only)
 *        pending >= a limit ──▶ pause reading (the framing's own reason)
 *        a handler's promise settles ──▶ dispatch from the backlog;
 *            pending <= half of both limits ──▶ lift the framing's pause
 *        decoder.inFrame after the chunk ──▶ frame deadline (the loop's timer queue)
 *
 *   client.send(ref, payload) ──▶ registry.encode → encoder → output buffer
 *        (one piece for a small value; header + value, all-or-nothing, for a large one)
 *        ──▶ enableWriting + loop.updateClient: flushed once per loop turn
 * ```
 *
 * Per-client cost. One {@link FramedProtocol} is shared by every client of
 * its owner. A client gets its own {@link FramedConnection} (decoder,
 * counters, backlog) only when its first chunk arrives, so a connection that
 * never sends holds nothing of the framing layer; an idle connection's
 * decoder holds no buffer.
 *
 * Pre-authentication. Until the application calls
 * {@link Client.markAuthenticated} (the session layer does so when it creates
 * or resumes a session), frames are decoded with the smaller
 * `preAuthMaxFrameLength`, so an anonymous peer cannot make the server buffer
 * a large frame (Redis does the same for unauthenticated clients). Frames
 * after the one whose handling authenticated the client are read with the
 * full `maxFrameLength`, even in the same chunk.
 *
 * @module
 */

import { PauseReason } from '../reactor/client.js';
import type { Client, ClientProtocol } from '../reactor/client.js';
import type { CloseReason } from '../reactor/close-reason.js';
import { ErrorCode, NetloopError, isNetloopError } from '../core/errors.js';
import { checkInteger, checkNumber } from '../core/validate.js';
import { LtvDecoder } from '../codec/ltv-decoder.js';
import { LtvEncoder } from '../codec/ltv-encoder.js';
import { ltvLayout } from '../codec/ltv-layout.js';
import type { LtvLayout, LtvLayoutOptions, LtvPresetName } from '../codec/ltv-layout.js';
import { MessageRegistry } from '../codec/message-registry.js';
import type { MessageTypeRef } from '../codec/message-registry.js';
import type { TimerEntry } from '../reactor/timer-queue.js';

/** One decoded message, as handed to {@link FramingOptions.onMessage} or the owner's `'message'` event. */
export interface FramedMessage<T = unknown> {
  /** The frame's type id (0 when the layout has no type field). */
  type: number;
  /** The registered name of the type; undefined without a registry, or for an unknown type of a lenient one. */
  name: string | undefined;
  /**
   * The frame's value. Unless `copy` is set, a value that lay inside one
   * received chunk is a view of that chunk: it stays valid for as long as it
   * is referenced (the reactor reads with `'data'` events, and Node gives each
   * one a buffer of its own that it never reuses), but it keeps that chunk
   * (up to 64 KiB) alive while it is.
   */
  value: Buffer;
  /** The payload deserialized by the registry; the value itself without a registry. */
  payload: T;
}

/**
 * Handles one decoded message. A returned promise (any thenable) keeps the
 * message counted as pending until it settles (read-side backpressure); a
 * throw or a rejection closes that client with `'handler-error'`.
 */
export type MessageHandler = (client: Client, message: FramedMessage) => void | PromiseLike<unknown>;

/**
 * Handles one frame without a message: its type and where its value lies,
 * `source[start, end)`. No Buffer and no message object is made for it, and
 * the registry (if any) only checks the type. `source` is the received chunk
 * (or a buffer netloop assembled a cut frame in): read the value during the
 * call, or copy it; do not keep `source` or write to it. The handler is
 * synchronous (a returned value is ignored, so async work does not count
 * toward `maxPendingMessages`); a throw closes that client with
 * `'handler-error'`. {@link Client.sendRaw} sends such a range on without
 * making a view of it: a relay or an echo at the codec's speed.
 */
export type ClientRawFrameHandler = (client: Client, type: number, source: Buffer, start: number, end: number) => void;

/**
 * @internal Sees each frame's type and size (header and value) as it is
 * decoded, before it is dispatched, whatever handles it (`onMessage`,
 * `onRawFrame` or the `'message'` event) and even while it waits in the
 * backlog: the session binding counts heartbeats and messages through it.
 * It must not throw (a throw closes the client with `'handler-error'`).
 */
export type FrameObserver = (client: Client, type: number, size: number) => void;

/** The `framing` option of a Server or Connector. Every limit has a finite default. */
export interface FramingOptions {
  /** The frame layout: a preset name (`'netloop'`, `'cellnet'`, `'muduo'`, `'pomelo'`), layout options, or a built layout. Default `'netloop'`. */
  layout?: LtvLayout | LtvLayoutOptions | LtvPresetName;
  /**
   * The message registry. With one, `client.send(typeOrName, payload)`
   * serializes through it and received values are deserialized; a strict
   * registry refuses an unknown type from the frame header (`protocol-error`,
   * `NETLOOP_UNKNOWN_TYPE`). Without one, messages carry raw bytes and
   * `send(typeId, bytes)` takes a numeric type.
   */
  registry?: MessageRegistry | null;
  /** Hand every value out in a buffer of its own instead of a view of the received chunk. Default false. */
  copy?: boolean;
  /** Values up to this many bytes are copied behind their header in one piece by `send`; larger ones are queued uncopied. Default 1024. */
  copyThreshold?: number;
  /**
   * The message handler. It runs directly on the hot path (no event
   * emission) and may return a promise. Without it, each message is emitted
   * as the owner's `'message'` event `(client, message)`, whose listeners'
   * return values are ignored (so they do not count as pending).
   */
  onMessage?: MessageHandler;
  /**
   * The raw frame handler, instead of `onMessage` (giving both is refused):
   * each frame's type and value range, with no Buffer or message object per
   * frame (see {@link ClientRawFrameHandler}). For relays, routers and echoes that
   * pass bytes on with {@link Client.sendRaw}.
   */
  onRawFrame?: ClientRawFrameHandler;
  /**
   * Decoded messages not yet handled (handlers whose promise has not settled,
   * plus messages waiting behind them) beyond which reading pauses; it resumes
   * once the count is back to half. Handlers never run more than this many at
   * once per client. Default 1024.
   */
  maxPendingMessages?: number;
  /** Bytes (header and value) of decoded messages not yet handled beyond which reading pauses; resumes at half. Default 8 MiB. */
  maxPendingBytes?: number;
  /**
   * The most messages of one client handed to the application in one turn of
   * the loop (Netty's `maxMessagesPerRead`, Redis's bounded commands per
   * client per event). One read may hold hundreds of small frames, and the
   * work they cause (a broadcast of each to every client) is done before the
   * loop runs anything else; past this count the client's remaining frames
   * wait, in order, in its backlog and are handed out from the next turn,
   * after the output of this one has been flushed and the other clients and
   * timers have had their turn. They count as pending, so a peer that keeps
   * sending is paused until its held bytes are consumed. Default 512 (about
   * one 64 KiB read of 100-byte frames). A turn is one turn of Node's event
   * loop, even when every reply is written from its own read callback (a
   * client that takes an eighth of the budget in one turn has one
   * `setImmediate` scheduled to close the count); frames counted below that
   * mark may carry over to the next turn, so a turn may hold a little early,
   * never late.
   */
  maxMessagesPerTurn?: number;
  /**
   * A frame that has started must complete within this many ms, or the client
   * is closed with `'frame-timeout'` / `NETLOOP_FRAME_TIMEOUT` (slowloris: a
   * peer dribbling bytes inside the read-idle timeout). The clock does not run
   * against the peer while reading is paused. 0 disables it. Default 30,000.
   */
  frameTimeoutMs?: number;
  /**
   * The largest frame (header included) accepted before the application calls
   * `client.markAuthenticated()`, while authentication is required (see
   * {@link FramingOptions.requireAuthentication}). Default 65,536 for a server
   * (or the layout's `maxFrameLength` when smaller); a connector's default is
   * the layout's `maxFrameLength` (it trusts the server it chose).
   */
  preAuthMaxFrameLength?: number;
  /**
   * Whether clients must be marked authenticated before frames above
   * `preAuthMaxFrameLength` are accepted (Redis applies its smaller
   * unauthenticated limit only when a password is required). Default: true
   * when `preAuthMaxFrameLength` is given, otherwise false; binding sessions to
   * the server (`bindSessions`) turns it on, so a peer without a session is
   * held to the smaller limit.
   */
  requireAuthentication?: boolean;
}

/** Defaults of {@link FramingOptions}. */
export const FRAMING_DEFAULTS = {
  maxPendingMessages: 1024,
  maxPendingBytes: 8 * 1024 * 1024,
  maxMessagesPerTurn: 512,
  frameTimeoutMs: 30_000,
  preAuthMaxFrameLength: 65_536,
  copyThreshold: 1024,
} as const;

/** A snapshot of one client's framing state, from {@link framedStats}. */
export interface FramedStats {
  /** Handlers called whose promise has not settled. */
  inFlight: number;
  /** Decoded messages waiting for a handler slot (at most the frames of one chunk). */
  backlog: number;
  /** Bytes (header and value) of the in-flight and waiting messages. */
  pendingBytes: number;
  /** True while the framing layer holds reading paused. */
  paused: boolean;
  /** Bytes of the partial frame the decoder holds. */
  bufferedBytes: number;
  /** Bytes the decoder has set aside for the partial frame (grows with the bytes received, not with the length declared). */
  reservedBytes: number;
  /** Frames decoded so far. */
  frames: number;
  /** The frame length limit in force: `preAuthMaxFrameLength` until authenticated, then `maxFrameLength`. */
  maxFrameLength: number;
  /** Bytes read but not decoded yet, held for a later turn by `maxMessagesPerTurn` (reading is paused meanwhile). */
  heldBytes: number;
}

const MAX_MS = 2 ** 31 - 1;

/** @internal What emits a framing's `'message'` events: its Server or Connector. */
export interface MessageEmitter {
  _emitMessage(client: Client, message: FramedMessage): void;
}

/**
 * The shared framing of one Server or Connector (see the module comment).
 * Created by the owner from its `framing` option; the application uses it
 * through `client.send()`, `client.markAuthenticated()` and its handler.
 */
export class FramedProtocol implements ClientProtocol {
  /** The layout after authentication. */
  readonly layout: LtvLayout;
  /** The layout before authentication (the same fields, `preAuthMaxFrameLength`). */
  readonly preAuthLayout: LtvLayout;
  /** The registry, or null for raw frames. */
  readonly registry: MessageRegistry | null;
  /** The encoder `send` writes with. */
  readonly encoder: LtvEncoder;
  /** See {@link FramingOptions.copy}. */
  readonly copy: boolean;
  /**
   * See {@link FramingOptions.requireAuthentication}. Settable until the first
   * byte of a client arrives: a client's limit is fixed when its framing state
   * is created (on its first data).
   */
  requireAuthentication: boolean;
  /** See {@link FramingOptions.maxPendingMessages}. */
  readonly maxPendingMessages: number;
  /** See {@link FramingOptions.maxPendingBytes}. */
  readonly maxPendingBytes: number;
  /** See {@link FramingOptions.maxMessagesPerTurn}. */
  readonly maxMessagesPerTurn: number;
  /** See {@link FramingOptions.frameTimeoutMs}. */
  readonly frameTimeoutMs: number;
  /** @internal */
  readonly _handler: MessageHandler | null;
  /** @internal */
  readonly _frameHandler: ClientRawFrameHandler | null;
  /**
   * @internal The {@link FrameObserver}s, or null when there is none, so a
   * framing nobody observes pays one field check per frame. Replaced as a
   * whole (never mutated) when an observer is added or removed.
   */
  _frameObservers: readonly FrameObserver[] | null = null;
  /** @internal The owner, whose `'message'` listeners hear messages when there is no `onMessage`. */
  readonly _emitter: MessageEmitter;
  /** @internal The decoder's strict type check, or null. */
  readonly _isKnownType: ((type: number) => boolean) | null;
  /**
   * @internal The count of frames in one turn at which a connection asks the
   * loop for a turn (an eighth of the budget, at least 1); see
   * {@link FramedConnection}.
   */
  readonly _turnMark: number;

  /**
   * @internal Built by a Server or Connector from its `framing` option.
   * @throws NetloopError INVALID_OPTION for a bad option.
   */
  constructor(emitter: MessageEmitter, options: FramingOptions, side: 'server' | 'connector') {
    if (typeof options !== 'object' || options === null) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'framing must be an object', { details: { option: 'framing' } });
    }
    const layout = ltvLayout(options.layout ?? 'netloop');
    const registry = options.registry ?? null;
    if (registry !== null && !(registry instanceof MessageRegistry)) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'framing.registry must be a MessageRegistry', {
        details: { option: 'framing.registry' },
      });
    }
    if (options.onMessage !== undefined && typeof options.onMessage !== 'function') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'framing.onMessage must be a function', {
        details: { option: 'framing.onMessage' },
      });
    }
    if (options.onRawFrame !== undefined && typeof options.onRawFrame !== 'function') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'framing.onRawFrame must be a function', {
        details: { option: 'framing.onRawFrame' },
      });
    }
    if (options.onRawFrame !== undefined && options.onMessage !== undefined) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'framing takes onMessage or onRawFrame, not both', {
        details: { option: 'framing.onRawFrame' },
      });
    }
    if (options.copy !== undefined && typeof options.copy !== 'boolean') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'framing.copy must be a boolean', { details: { option: 'framing.copy' } });
    }
    const preAuthDefault =
      side === 'server' ? Math.min(FRAMING_DEFAULTS.preAuthMaxFrameLength, layout.maxFrameLength) : layout.maxFrameLength;
    const preAuth = checkInteger(
      'framing.preAuthMaxFrameLength',
      options.preAuthMaxFrameLength ?? preAuthDefault,
      layout.headerBytes,
      layout.maxFrameLength,
    );
    this.layout = layout;
    this.preAuthLayout =
      preAuth === layout.maxFrameLength
        ? layout
        : ltvLayout({
            lengthBytes: layout.lengthBytes,
            typeBytes: layout.typeBytes,
            byteOrder: layout.byteOrder,
            fieldOrder: layout.fieldOrder,
            lengthIncludesType: layout.lengthIncludesType,
            lengthIncludesLength: layout.lengthIncludesLength,
            maxFrameLength: preAuth,
          });
    this.registry = registry;
    this.encoder = new LtvEncoder({ layout, copyThreshold: options.copyThreshold ?? FRAMING_DEFAULTS.copyThreshold });
    this.copy = options.copy ?? false;
    if (options.requireAuthentication !== undefined && typeof options.requireAuthentication !== 'boolean') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'framing.requireAuthentication must be a boolean', {
        details: { option: 'framing.requireAuthentication' },
      });
    }
    this.requireAuthentication = options.requireAuthentication ?? options.preAuthMaxFrameLength !== undefined;
    this.maxPendingMessages = checkInteger(
      'framing.maxPendingMessages',
      options.maxPendingMessages ?? FRAMING_DEFAULTS.maxPendingMessages,
      1,
      2 ** 31 - 1,
    );
    this.maxPendingBytes = checkInteger(
      'framing.maxPendingBytes',
      options.maxPendingBytes ?? FRAMING_DEFAULTS.maxPendingBytes,
      1,
      2 ** 40,
    );
    this.maxMessagesPerTurn = checkInteger(
      'framing.maxMessagesPerTurn',
      options.maxMessagesPerTurn ?? FRAMING_DEFAULTS.maxMessagesPerTurn,
      1,
      2 ** 31 - 1,
    );
    this._turnMark = Math.max(1, this.maxMessagesPerTurn >>> 3);
    this.frameTimeoutMs = checkNumber('framing.frameTimeoutMs', options.frameTimeoutMs ?? FRAMING_DEFAULTS.frameTimeoutMs, 0, MAX_MS);
    this._handler = options.onMessage ?? null;
    this._frameHandler = options.onRawFrame ?? null;
    this._emitter = emitter;
    this._isKnownType = registry !== null && registry.strict ? registry.isKnownType : null;
  }

  /**
   * Encodes one message into the bytes of one frame, with every check
   * `send` makes: through the registry (a type id or name), or, without
   * one, a numeric type id and a byte payload. For a broadcast, which
   * queues the same frame to every client.
   *
   * @throws NetloopError `NETLOOP_UNKNOWN_TYPE`, `NETLOOP_INVALID_VALUE`, `NETLOOP_FRAME_TOO_LARGE`.
   */
  encodeMessage(ref: MessageTypeRef, payload: unknown): Buffer {
    const registry = this.registry;
    if (registry !== null) {
      const encoded = registry.encode(ref, payload);
      return this.encoder.encode(encoded.id, encoded.value);
    }
    if (typeof ref !== 'number') {
      throw new NetloopError(ErrorCode.INVALID_VALUE, 'without a registry, a framed message takes a numeric type id', {
        details: { type: typeof ref },
      });
    }
    if (!(payload instanceof Uint8Array)) {
      throw new NetloopError(ErrorCode.INVALID_VALUE, 'without a registry, a framed message takes bytes as its payload', {
        details: { got: payload === null ? 'null' : typeof payload },
      });
    }
    return this.encoder.encode(ref, payload);
  }

  /** @internal The client's first chunk: it gets its own framing state from now on. */
  onData(client: Client, chunk: Buffer): void {
    const conn = new FramedConnection(this, client);
    client._protocol = conn;
    conn.onData(client, chunk);
  }

  /** @internal `client.send()` before the client's first chunk. */
  send(client: Client, ref: MessageTypeRef, payload: unknown): boolean {
    return sendFrame(this, client, ref, payload, true);
  }

  /** @internal `client.sendRaw()` before the client's first chunk. */
  sendRaw(client: Client, type: number, bytes: Uint8Array, start: number, end: number): boolean {
    return sendRawFrame(this, client, type, bytes, start, end, true);
  }
}

/**
 * Encodes one message into the client's output buffer and asks for it to be
 * flushed this loop turn. Every check runs first; nothing partial is queued.
 */
function sendFrame(proto: FramedProtocol, client: Client, ref: MessageTypeRef, payload: unknown, flush: boolean): boolean {
  const encoder = proto.encoder;
  let type: number;
  let value: Uint8Array;
  const registry = proto.registry;
  if (registry !== null) {
    const encoded = registry.encode(ref, payload);
    type = encoded.id;
    value = encoded.value;
  } else {
    if (typeof ref !== 'number') {
      throw new NetloopError(ErrorCode.INVALID_VALUE, 'without a registry, send() takes a numeric type id', {
        details: { type: typeof ref },
      });
    }
    type = ref;
    value = payload as Uint8Array;
  }
  const length = encoder.check(type, value);
  return queueFrame(client, encoder, type, value, 0, length, flush);
}

/**
 * Queues a checked frame whose value is `value[start, end)` into the
 * client's output buffer and asks for it to be flushed this loop turn. Up to
 * `copyThreshold` bytes the frame is written in place into the output
 * buffer's slab, in one piece (no Buffer per reply); a larger value is queued
 * uncopied after its header, the two accepted or refused as a whole.
 */
function queueFrame(
  client: Client,
  encoder: LtvEncoder,
  type: number,
  value: Uint8Array,
  start: number,
  end: number,
  flush: boolean,
): boolean {
  const length = end - start;
  const ok =
    length <= encoder.copyThreshold
      ? client._appendFrame(encoder, type, value, start, end, encoder.frameLength(length))
      : client.appendPairToOutputBuffer(
          encoder._headerChecked(type, length),
          start === 0 && end === value.byteLength ? value : value.subarray(start, end),
        );
  // Inside a read, the connection asks for the flush once after the whole
  // chunk; the loop flushes once per turn either way.
  if (ok && flush) {
    client.enableWriting();
    client.loop.updateClient(client);
  }
  return ok;
}

/**
 * Encodes one frame whose value is `bytes[start, end)` (checked by the
 * caller to lie inside `bytes`) into the client's output buffer, as
 * {@link sendFrame} does for a message ({@link queueFrame}).
 */
function sendRawFrame(
  proto: FramedProtocol,
  client: Client,
  type: number,
  bytes: Uint8Array,
  start: number,
  end: number,
  flush: boolean,
): boolean {
  const encoder = proto.encoder;
  // The type is checked as a number first, so the registry looks it up by id only.
  encoder._checkLength(type, end - start);
  proto.registry?.resolve(type);
  return queueFrame(client, encoder, type, bytes, start, end, flush);
}

/**
 * One client's framing state, created on its first chunk.
 *
 * ```
 *   decoder            LtvDecoder (pre-auth or full layout); holds only a partial frame
 *   inFlight, inFlightBytes      handlers whose promise has not settled
 *   backlog  [type, source, start, end, type, source, ...]   from backHead on
 *   pos / fed          stream offsets: end of the last frame / bytes fed
 *   frameStart, frameTimer       the frame-completion deadline (lazy)
 *   turnSeq, turnCount frames taken in the loop turn numbered turnSeq (maxMessagesPerTurn)
 *   held     [rest of a chunk, later chunks...]   bytes read, not decoded yet
 * ```
 *
 * The per-turn budget. Frames are taken from the decoder until
 * `maxMessagesPerTurn` of them were taken since the loop's last turn began
 * (a connection that takes an eighth of the budget in one turn makes sure a
 * turn is scheduled, so the count restarts with the next turn of Node's event
 * loop even when replies flushed from the read callback schedule none);
 * the frame past the budget and every byte after it are then held undecoded
 * (the decoder's view of the rest of that chunk is ignored, as on the
 * pre-authentication switch), reading pauses, and a function queued in the
 * loop feeds the held bytes to a fresh decoder in the next turn, with a fresh
 * budget. Holding bytes rather than decoded frames keeps the
 * pre-authentication rule exact: a frame is decoded with the limit in force
 * when its turn comes. A frame that began in an earlier chunk is always taken
 * (its first bytes are inside the decoder), so a turn may take one frame more
 * per chunk than the budget.
 *
 * ```
 *   chunk: [ f1 f2 ... f512 | f513 f514 ... ]      budget 512 spent at f513
 *            dispatched now    held ──▶ next turn: fresh decoder, fresh budget
 * ```
 */
export class FramedConnection implements ClientProtocol {
  readonly #proto: FramedProtocol;
  readonly #client: Client;
  #decoder: LtvDecoder;
  #full: boolean;
  readonly #headerBytes: number;
  #inFlight = 0;
  #inFlightBytes = 0;
  #backlog: Array<number | Buffer> = [];
  #backHead = 0;
  #backBytes = 0;
  #paused = false;
  #dead = false;
  #frames = 0;
  /** Stream offset of the end of the last complete frame. */
  #pos = 0;
  /** Stream offset of the end of the bytes fed so far. */
  #fed = 0;
  #feeding = false;
  /** markAuthenticated() was called while the pre-auth decoder still had a frame to finish. */
  #upgrade = false;
  /** Stream offset where the pre-auth decoder's part of the stream ends, or -1. */
  #retireAt = -1;
  #frameStart = -1;
  #frameTimer: TimerEntry | null = null;
  /** The chunk frames are being cut from, and its memory (`.buffer` is a slow getter: read once per chunk). */
  #source: Buffer | null = null;
  #sourceAb: ArrayBufferLike | null = null;
  /** Stream offset where the chunk being fed starts. */
  #chunkStart = 0;
  /** The loop turn the budget count belongs to, and the frames taken in it. */
  #turnSeq = -1;
  #turnCount = 0;
  /** Stream offset past which the decoder's frames are held for a later turn, or -1. */
  #holdAt = -1;
  /** Bytes read and not decoded yet, in stream order; their total. */
  #held: Buffer[] = [];
  #heldBytes = 0;
  #heldQueued = false;
  readonly #feedHeldFn = (): void => this.#feedHeld();
  readonly #onRawFrame = (type: number, source: Buffer, start: number, end: number): void => this.#frame(type, source, start, end);

  /** @internal Created by {@link FramedProtocol.onData}. */
  constructor(proto: FramedProtocol, client: Client) {
    this.#proto = proto;
    this.#client = client;
    this.#headerBytes = proto.layout.headerBytes;
    this.#full = client.authenticated || !proto.requireAuthentication || proto.preAuthLayout === proto.layout;
    this.#decoder = this.#makeDecoder();
  }

  /** @internal A chunk read from the socket. */
  onData(client: Client, chunk: Buffer): void {
    if (this.#dead) return;
    if (this.#held.length > 0) {
      // Bytes are already waiting for a later turn (the application resumed
      // reading meanwhile): this chunk goes behind them, in stream order.
      this.#held.push(chunk);
      this.#heldBytes += chunk.length;
      this.#updateReading();
      return;
    }
    const posBefore = this.#pos;
    this.#feedChunk(chunk);
    this.#afterFeed(posBefore);
  }

  /**
   * Feeds one chunk (or the rest of one) to the decoder. On the switch to the
   * full layout, the rest of the chunk is fed again to the new decoder; when
   * the turn's budget is spent, the rest is held (at the head of `held`).
   */
  #feedChunk(chunk: Buffer): void {
    let rest = chunk;
    let restStart = this.#fed;
    this.#fed += chunk.length;
    for (;;) {
      this.#chunkStart = restStart;
      this.#feeding = true;
      try {
        this.#decoder.feed(rest);
      } catch (err) {
        if (this.#retireAt < 0 && this.#holdAt < 0) {
          this.#feeding = false;
          this.#source = null;
          this.#fail('protocol-error', err);
          return;
        }
        // The discarded decoder's view of the stream past the cut does not count.
      }
      this.#feeding = false;
      this.#source = null;
      if (this.#retireAt >= 0) {
        // The client was authenticated by a frame of this chunk: the rest of the
        // chunk is read again with the full layout, from the end of that frame.
        const at = this.#retireAt - restStart;
        this.#retireAt = -1;
        this.#full = true;
        this.#decoder = this.#makeDecoder();
        if (at < rest.length && !this.#dead) {
          rest = at === 0 ? rest : rest.subarray(at);
          restStart += at;
          continue;
        }
        return;
      }
      if (this.#holdAt >= 0) {
        // The budget of this turn is spent: the bytes from the held frame on
        // wait, undecoded, for the next turn; the decoder starts afresh there
        // (at a frame boundary), with the frame limit in force then.
        const at = this.#holdAt - restStart;
        this.#holdAt = -1;
        this.#fed = restStart + at;
        if (this.#upgrade) {
          this.#upgrade = false;
          this.#full = true;
        }
        this.#decoder = this.#makeDecoder();
        if (!this.#dead && at < rest.length) {
          const tail = at === 0 ? rest : rest.subarray(at);
          this.#held.unshift(tail);
          this.#heldBytes += tail.length;
          if (!this.#heldQueued) {
            this.#heldQueued = true;
            this.#client.loop.queueInLoop(this.#feedHeldFn);
          }
        }
      }
      return;
    }
  }

  /** After a chunk was fed: flush what its handlers queued, apply backpressure, watch a started frame. */
  #afterFeed(posBefore: number): void {
    if (this.#dead) return;
    const client = this.#client;
    if (client.hasDataToWrite()) {
      client.enableWriting();
      client.loop.updateClient(client);
    }
    this.#updateReading();
    if (this.#proto.frameTimeoutMs > 0) {
      if (this.#decoder.inFrame) {
        if (this.#frameStart < 0 || this.#pos !== posBefore) this.#armFrameTimer();
      } else this.#frameStart = -1;
    }
  }

  /** A turn of the loop after bytes were held: feed them with a fresh budget, until it is spent again. */
  #feedHeld(): void {
    this.#heldQueued = false;
    // A client destroyed meanwhile (destroy, a limit, an error) gets nothing more; its close clears the rest.
    if (this.#client.socket.destroyed) return;
    const posBefore = this.#pos;
    const held = this.#held;
    while (held.length > 0 && !this.#dead) {
      const chunk = held.shift()!;
      this.#heldBytes -= chunk.length;
      this.#feedChunk(chunk);
      // A new hold put the rest of the chunk back at the head: wait for the next turn.
      if (this.#heldQueued) break;
    }
    this.#afterFeed(posBefore);
  }

  /**
   * Pauses reading while messages pending or bytes held are over the limits,
   * and resumes once pending work is back to half of both and nothing is held.
   * The pause is the framing layer's own reason: the client reads again only
   * once no other reason (the application's, the output's) holds it paused.
   */
  #updateReading(): void {
    if (this.#dead) return;
    const proto = this.#proto;
    const client = this.#client;
    const messages = this.#inFlight + this.#backlogCount();
    const bytes = this.#inFlightBytes + this.#backBytes;
    if (!this.#paused) {
      if (this.#held.length > 0 || messages >= proto.maxPendingMessages || bytes >= proto.maxPendingBytes) {
        this.#paused = true;
        client._pauseReading(PauseReason.FRAMING);
      }
    } else if (this.#held.length === 0 && messages <= proto.maxPendingMessages >> 1 && bytes <= proto.maxPendingBytes / 2) {
      this.#paused = false;
      client._resumeReading(PauseReason.FRAMING);
    }
  }

  /**
   * @internal A close of ours began (end(), removeClient, a server close,
   * a session notice): nothing more is handed to the application, neither
   * frames still to decode nor messages waiting for a handler slot.
   */
  onClosing(client: Client): void {
    this.onClose(client);
  }

  /** @internal The client closed: forget pending work; late settlements are ignored. */
  onClose(client: Client): void {
    this.#dead = true;
    this.#held = [];
    this.#heldBytes = 0;
    this.#backlog = [];
    this.#backHead = 0;
    this.#backBytes = 0;
    if (this.#frameTimer !== null) client.loop._timers.remove(this.#frameTimer);
  }

  /** @internal `client.send()`. */
  send(client: Client, ref: MessageTypeRef, payload: unknown): boolean {
    return sendFrame(this.#proto, client, ref, payload, !this.#feeding);
  }

  /** @internal `client.sendRaw()`. */
  sendRaw(client: Client, type: number, bytes: Uint8Array, start: number, end: number): boolean {
    return sendRawFrame(this.#proto, client, type, bytes, start, end, !this.#feeding);
  }

  /** @internal `client.markAuthenticated()`: the full frame limit applies from the next frame on. */
  onAuthenticated(): void {
    if (this.#full || this.#dead) return;
    if (this.#feeding || this.#decoder.inFrame) {
      // Switch at the end of the frame being handled (or the one being read).
      this.#upgrade = true;
      return;
    }
    this.#full = true;
    this.#decoder = this.#makeDecoder();
  }

  /** @internal */
  stats(): FramedStats {
    return {
      inFlight: this.#inFlight,
      backlog: this.#backlogCount(),
      pendingBytes: this.#inFlightBytes + this.#backBytes,
      paused: this.#paused,
      bufferedBytes: this.#decoder.bufferedBytes,
      reservedBytes: this.#decoder.reservedBytes,
      frames: this.#frames,
      maxFrameLength: this.#decoder.layout.maxFrameLength,
      heldBytes: this.#heldBytes,
    };
  }

  /** @internal The frame deadline passed: close unless the frame completed (then stay idle) or reading was paused. */
  _onFrameTimer(): void {
    if (this.#dead || this.#frameStart < 0) return;
    const client = this.#client;
    const timeout = this.#proto.frameTimeoutMs;
    const now = client.loop.now();
    if (!client.isReading()) {
      // The peer cannot finish a frame we do not read: its clock restarts when reading does.
      this.#frameStart = now;
      client.loop._timers.reschedule(this.#frameTimer!, now + timeout);
      return;
    }
    const due = this.#frameStart + timeout;
    if (due > now) {
      client.loop._timers.reschedule(this.#frameTimer!, due);
      return;
    }
    this.#fail(
      'frame-timeout',
      new NetloopError(ErrorCode.FRAME_TIMEOUT, `a frame was started but not completed within ${timeout} ms`, {
        details: { clientId: client.id, frameTimeoutMs: timeout, bufferedBytes: this.#decoder.bufferedBytes },
      }),
    );
  }

  #makeDecoder(): LtvDecoder {
    const proto = this.#proto;
    return new LtvDecoder({
      layout: this.#full ? proto.layout : proto.preAuthLayout,
      onRawFrame: this.#onRawFrame,
      isKnownType: proto._isKnownType,
      // Node never writes to a 'data' chunk once emitted: a frame cut across reads is held as views of them.
      retainChunks: true,
    });
  }

  #armFrameTimer(): void {
    const loop = this.#client.loop;
    const now = loop.now();
    this.#frameStart = now;
    const t = this.#frameTimer;
    if (t === null) this.#frameTimer = loop._timers.schedule(now + this.#proto.frameTimeoutMs, frameExpired, this);
    else if (t.index === -1) loop._timers.reschedule(t, now + this.#proto.frameTimeoutMs);
    // A queued entry keeps its earlier deadline; it re-arms itself lazily from #frameStart.
  }

  #backlogCount(): number {
    return (this.#backlog.length - this.#backHead) >> 2;
  }

  /** One frame from the decoder: `source[start, end)`. */
  #frame(type: number, source: Buffer, start: number, end: number): void {
    if (this.#retireAt >= 0 || this.#holdAt >= 0) return;
    // The turn's budget: a frame that began in an earlier chunk is taken
    // anyway (its first bytes are inside the decoder, not in this chunk).
    const loop = this.#client.loop;
    const seq = loop._turnSeq;
    if (seq !== this.#turnSeq) {
      this.#turnSeq = seq;
      this.#turnCount = 0;
    }
    const proto = this.#proto;
    if (this.#turnCount >= proto.maxMessagesPerTurn && this.#pos >= this.#chunkStart) {
      this.#holdAt = this.#pos;
      return;
    }
    // At the mark the loop is asked for a turn, which ends this count with the
    // Node event loop's current turn. Below the mark nothing is asked (a
    // request/response peer's lone frames cost no setImmediate), so a count
    // may carry fewer than the mark's frames over from earlier turns: a turn
    // then holds a little early, never late.
    if (++this.#turnCount === proto._turnMark) loop._requestTurn();
    const size = this.#headerBytes + (end - start);
    this.#pos += size;
    this.#frames++;
    if (this.#dead) return;
    const observers = proto._frameObservers;
    if (observers !== null) {
      try {
        for (let i = 0; i < observers.length; i++) observers[i]!(this.#client, type, size);
      } catch (err) {
        this.#handlerFault(err, false);
        return;
      }
    }
    if (this.#backHead === this.#backlog.length && this.#inFlight < this.#proto.maxPendingMessages) {
      this.#dispatch(type, source, start, end, size);
    } else {
      this.#backlog.push(type, source, start, end);
      this.#backBytes += size;
    }
    if (this.#upgrade) {
      this.#upgrade = false;
      this.#retireAt = this.#pos;
    }
  }

  #dispatch(type: number, source: Buffer, start: number, end: number, size: number): void {
    const proto = this.#proto;
    const client = this.#client;
    const raw = proto._frameHandler;
    if (raw !== null) {
      // The raw path: no view, no message object, nothing pending after the call.
      try {
        raw(client, type, source, start, end);
      } catch (err) {
        this.#handlerFault(err, false);
      }
      return;
    }
    let value: Buffer;
    if (proto.copy && source.length !== end - start) {
      value = Buffer.allocUnsafe(end - start);
      source.copy(value, 0, start, end);
    } else if (start === 0 && end === source.length) {
      value = source;
    } else {
      if (source !== this.#source) {
        this.#source = source;
        this.#sourceAb = source.buffer;
      }
      value = Buffer.from(this.#sourceAb!, source.byteOffset + start, end - start);
    }
    const registry = proto.registry;
    let message: FramedMessage;
    if (registry === null) {
      message = { type, name: undefined, value, payload: value };
    } else {
      let decoded;
      try {
        decoded = registry.decode(type, value);
      } catch (err) {
        this.#fail('protocol-error', err);
        return;
      }
      message = { type, name: decoded.type === null ? undefined : decoded.type.name, value, payload: decoded.payload };
    }
    const handler = proto._handler;
    try {
      if (handler === null) {
        // The owner's emit guards each listener: a fault closes the client
        // (handler-error), after which nothing more is dispatched.
        proto._emitter._emitMessage(client, message);
        if (client.socket.destroyed) this.#dead = true;
        return;
      }
      const r = handler(client, message);
      if (r !== undefined && r !== null && typeof (r as PromiseLike<unknown>).then === 'function') {
        this.#inFlight++;
        this.#inFlightBytes += size;
        (r as PromiseLike<unknown>).then(
          () => this.#settled(size),
          (err: unknown) => this.#handlerFault(err, true),
        );
      }
    } catch (err) {
      this.#handlerFault(err, false);
    }
  }

  /** An async handler settled: hand out waiting messages, and resume reading once pending is back to half. */
  #settled(size: number): void {
    if (this.#dead) return;
    this.#inFlight--;
    this.#inFlightBytes -= size;
    const proto = this.#proto;
    const backlog = this.#backlog;
    while (this.#backHead < backlog.length && this.#inFlight < proto.maxPendingMessages && !this.#dead) {
      const i = this.#backHead;
      const type = backlog[i] as number;
      const source = backlog[i + 1] as Buffer;
      const start = backlog[i + 2] as number;
      const end = backlog[i + 3] as number;
      // Let go of the chunk as soon as it is handed out.
      backlog[i + 1] = 0;
      this.#backHead = i + 4;
      const frameSize = this.#headerBytes + (end - start);
      this.#backBytes -= frameSize;
      this.#dispatch(type, source, start, end, frameSize);
    }
    this.#source = null;
    if (this.#dead) return;
    if (this.#backHead === backlog.length) {
      backlog.length = 0;
      this.#backHead = 0;
    }
    if (this.#paused) this.#updateReading();
  }

  #handlerFault(err: unknown, rejected: boolean): void {
    if (this.#dead) return;
    const what = rejected ? 'rejected' : 'threw';
    this.#fail(
      'handler-error',
      new NetloopError(ErrorCode.HANDLER_ERROR, `a message handler ${what}: ${err instanceof Error ? err.message : String(err)}`, {
        cause: err,
        details: { clientId: this.#client.id },
      }),
    );
  }

  /** Closes the client with `reason`; nothing more is dispatched. */
  #fail(reason: CloseReason, err: unknown): void {
    if (this.#dead) return;
    this.#dead = true;
    const error = isNetloopError(err)
      ? err
      : new NetloopError(ErrorCode.HANDLER_ERROR, `framing failed: ${err instanceof Error ? err.message : String(err)}`, {
          cause: err,
          details: { clientId: this.#client.id },
        });
    this.#client.destroy(reason, error);
  }
}

function frameExpired(conn: FramedConnection): void {
  conn._onFrameTimer();
}

/**
 * A snapshot of a client's framing state (backpressure counters, the frame
 * limit in force), or null when the client has no framing or has not sent a
 * byte yet.
 */
export function framedStats(client: Client): FramedStats | null {
  const p = client._protocol;
  return p instanceof FramedConnection ? p.stats() : null;
}
