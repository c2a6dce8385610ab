/**
 * A client that speaks LTV frames: a {@link Client} of the reactor whose
 * bytes are decoded into messages (its `_handleData` seam), and which sends
 * messages (`send`) and raw frames (`sendRaw`). Created by a
 * `FramedServer` or a `FramedConnector`, which hold the framing every one of
 * their clients shares (layout, registry, encoder, limits, handler).
 *
 * This module is one cohesive state machine (the inbound half of a framed
 * connection: decoding, backpressure, the per-turn budget, the
 * pre-authentication switch and the frame deadline, which all act on the
 * same stream offsets), so it stays in one file past the usual size.
 *
 * ```
 *   socket chunk ──▶ Client._onData ──▶ read taps ──▶ FramedClient._handleData
 *        decoder idle, backlog empty ──▶ #walk: the whole frames at the chunk's head,
 *            each dispatched at once (a plain onMessage gets its message right there),
 *            until one would not be (budget, slots, hook, death) or is cut or refused
 *        decoder.feed(rest of the chunk) ──▶ #frame(type, source, start, end)
 *            frame observers (type, size)   (before dispatch, whatever handles it)
 *            in flight < maxPendingMessages && backlog empty ?
 *               dispatch: value view → registry.decode → onMessage(client, msg) | 'message'
 *                     or, with onRawFrame: onRawFrame(client, type, source, start, end), no view
 *                     or, to a typed handler declared without the message: fn(client, payload),
 *                        the payload decoded from the range (JSON, UTF-8) or the view (raw())
 *               : backlog.push(type, source, start, end)     (rest of this chunk only)
 *        pending >= a limit ──▶ pause reading (the framing's own reason)
 *        a handler's promise settles ──▶ dispatch from the backlog;
 *            pending <= half of both limits ──▶ lift the framing's pause
 *        decoder.inFrame after the chunk ──▶ frame deadline (the loop's timer queue)
 * ```
 *
 * Per-client state lives in the client itself (no second object per
 * connection); the decoder, the backlog and the held bytes are made only
 * when needed, so a connection that never sends holds none of them, and an
 * idle connection's decoder holds no buffer.
 *
 * ```
 *   decoder            LtvDecoder (pre-auth or full layout), made on the first chunk
 *   inFlight, inFlightBytes      handlers whose promise has not settled
 *   backlog  [type, source, start, end, type, source, ...]   from backHead on (null until needed)
 *   pos / fed          stream offsets: end of the last frame / bytes fed
 *   frameStart, frameTimer       the frame-completion deadline (lazy)
 *   turnSeq, turnCount frames taken in the loop turn numbered turnSeq (maxMessagesPerTurn)
 *   held     [rest of a chunk, later chunks...]   bytes read, not decoded yet (null until needed)
 *   state    bits: DEAD, PAUSED, FEEDING, UPGRADE, HELD_QUEUED, FULL
 * ```
 *
 * Pre-authentication. Until the application calls
 * {@link FramedClient.markAuthenticated} (the session layer does so when it
 * creates or resumes a session), frames are decoded with the smaller
 * `preAuthMaxFrameLength` when the framing requires authentication, so an
 * anonymous peer cannot make the server buffer a large frame (Redis does the
 * same for unauthenticated clients). Frames after the one whose handling
 * authenticated the client are read with the full `maxFrameLength`, even in
 * the same chunk: the rest of the chunk is fed again to a new decoder.
 *
 * The per-turn budget. Frames are taken from the decoder until
 * `maxMessagesPerTurn` of them were taken since the loop's last turn began
 * (a client that takes an eighth of the budget in one turn makes sure a
 * turn is scheduled, so the count restarts with the next turn of Node's
 * event loop even when replies flushed from the read callback schedule
 * none); the frame past the budget and every byte after it are then held
 * undecoded (the decoder's view of the rest of that chunk is ignored, as on
 * the pre-authentication switch), reading pauses, and a function queued in
 * the loop feeds the held bytes to a fresh decoder in the next turn, with a
 * fresh budget. Holding bytes rather than decoded frames keeps the
 * pre-authentication rule exact: a frame is decoded with the limit in force
 * when its turn comes. A frame that began in an earlier chunk is always
 * taken (its first bytes are inside the decoder), so a turn may take one
 * frame more per chunk than the budget.
 *
 * ```
 *   chunk: [ f1 f2 ... f512 | f513 f514 ... ]      budget 512 spent at f513
 *            dispatched now    held ──▶ next turn: fresh decoder, fresh budget
 * ```
 *
 * @module
 */

import type * as net from 'node:net';
import { Client, ClientFlag, PauseReason } from '../reactor/client.js';
import type { ClientOwner } from '../reactor/client.js';
import type { EventLoop } from '../reactor/event-loop.js';
import type { ClientConfig } from '../reactor/client-limits.js';
import type { CloseReason } from '../reactor/close-reason.js';
import type { TimerEntry } from '../reactor/timer-queue.js';
import { ErrorCode, NetloopError, isNetloopError } from '../core/errors.js';
import { LtvDecoder } from '../codec/ltv-decoder.js';
import { readUint } from '../codec/ltv-layout.js';
import type { LtvEncoder } from '../codec/ltv-encoder.js';
import type { LtvLayout } from '../codec/ltv-layout.js';
import { deserialize, deserializeRange } from '../codec/message-registry.js';
import type { MessageMap, MessageName, PayloadOf, MessageRegistry, MessageType, MessageTypeRef } from '../codec/message-registry.js';
import type { AnyMessages, FramedMessage, HookResult, MessageOf, OutgoingMessage, RawFrames } from './messages.js';
import { sendFrame, sendRawFrame } from './send.js';
import type { FrameCounts } from './frame-counts.js';

export type { FramedMessage } from './messages.js';

/**
 * Handles one decoded message (the `onMessage` option): every message no
 * {@link TypedHandler} takes. A returned promise (any thenable) keeps the
 * message counted as pending until it settles (read-side backpressure); a
 * throw or a rejection closes that client with `'handler-error'`.
 */
export type MessageHandler<M extends MessageMap = AnyFramedMap> = (client: FramedClient<M>, message: FramedMessage<M>) => void | PromiseLike<unknown>;

/**
 * Handles the messages of one registered type (`server.handle(name,
 * handler)`): its payload, typed by the registry, and the whole message
 * (made only for a handler declared with the `message` parameter, or a rest
 * parameter: one declared with one or two parameters gets `undefined`). As
 * for {@link MessageHandler}, a returned promise keeps the message pending
 * until it settles, and a throw or a rejection closes that client with
 * `'handler-error'`.
 */
export type TypedHandler<M extends MessageMap, N extends MessageName<M>> = (
  client: FramedClient<M>,
  payload: PayloadOf<M, N>,
  message: MessageOf<M, N>,
) => void | PromiseLike<unknown>;

/**
 * Sees each decoded message of a client before it is handled, in the
 * client's order, and returns nothing to pass it on, another message to pass
 * on in its place, or `null` to drop it (see {@link HookResult}). A promise
 * holds the client's later messages back until it settles (they count as
 * pending). A throw or a rejection closes that client with `'handler-error'`.
 */
export type InboundHook<M extends MessageMap = AnyFramedMap> = (client: FramedClient<M>, message: FramedMessage<M>) => HookResult<FramedMessage<M>>;

/**
 * Sees each message sent to a client (`send`, and each receiver of a typed
 * `broadcast`) before it is encoded, and returns nothing to send it as it is,
 * another message to send in its place, or `null` to drop it. A promise holds
 * the client's later messages back until it settles. A throw or a rejection
 * closes that client with `'handler-error'`.
 */
export type OutboundHook<M extends MessageMap = AnyFramedMap> = (client: FramedClient<M>, message: OutgoingMessage<M>) => HookResult<OutgoingMessage<M>>;

/**
 * The message map of a client, handler or hook written without one: any map
 * (`FramedClient` alone is a client of any server, its `send` unchecked).
 * Servers and connectors infer theirs from their registry.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyFramedMap = any;

/**
 * A framed client whatever its message map: what the framing's internals,
 * frame observers and reserved-type handlers take (the map types only the
 * application's API).
 */
export type AnyFramedClient = FramedClient<AnyFramedMap>;

/**
 * What `send` takes as a type besides a registered name or a
 * {@link MessageType}: a numeric type without a registry; any reference
 * (id, name or type) with a registry whose names are not known when
 * compiling ({@link AnyMessages}); nothing else with a typed registry.
 */
export type LooseRef<M> = M extends RawFrames ? number : string extends MessageName<M> ? MessageTypeRef : never;

/** The payload that goes with a {@link LooseRef}: bytes without a registry, anything the serializer takes otherwise. */
export type LoosePayload<M> = M extends RawFrames ? Uint8Array : unknown;

/** @internal A typed handler as the framing stores it, its types erased (a bare one gets no message). */
export type AnyTypedHandler = (client: AnyFramedClient, payload: unknown, message: ReceivedMessage | undefined) => unknown;

/** @internal A typed handler and the registered type it handles (one lookup per message finds both). */
export interface HandlerRoute {
  readonly type: MessageType;
  readonly fn: AnyTypedHandler;
  /** The handler declares one or two parameters: it cannot name the message, so none is made for it. */
  readonly bare: boolean;
  /** Bare, and the type's serializer decodes a range where it lies: no view of the value is made either. */
  readonly ranged: boolean;
}

/** @internal An inbound hook as the framing stores it. */
export type AnyInboundHook = (client: AnyFramedClient, message: ReceivedMessage) => unknown;

/** @internal An outbound hook as the framing stores it. */
export type AnyOutboundHook = (client: AnyFramedClient, message: Outgoing) => unknown;

/** @internal A received message, its types erased. */
export interface ReceivedMessage {
  type: number;
  name: string | undefined;
  payload: unknown;
  value: Buffer;
}

/** @internal A message on its way out, its types erased. */
export interface Outgoing {
  type: number;
  name: string | undefined;
  payload: unknown;
}

/**
 * Handles one frame without a message (the `onRawFrame` option): its type
 * and where its value lies, `source[start, end)`. No Buffer and no message
 * object is made for it, and the registry (if any) only checks the type.
 * `source` is the received chunk (or a buffer netloop assembled a cut frame
 * in): read the value during the call, or copy it; do not keep `source` or
 * write to it. The handler is synchronous (a returned value is ignored, so
 * async work does not count toward `maxPendingMessages`); a throw closes
 * that client with `'handler-error'`. {@link FramedClient.sendRaw} sends such
 * a range on without making a view of it: a relay or an echo at the codec's
 * speed.
 */
export type ClientRawFrameHandler<M extends MessageMap = AnyFramedMap> = (client: FramedClient<M>, type: number, source: Buffer, start: number, end: number) => void;

/**
 * Sees each frame's type and size (header and value) as it is decoded,
 * before it is dispatched, whatever handles it (`onMessage`, `onRawFrame`
 * or the `'message'` event) and even while it waits in the backlog
 * (`FramedServer.addFrameObserver`): the session binding counts heartbeats
 * and messages through it. It must be quick and must not throw (a throw
 * closes the client with `'handler-error'`).
 */
export type FrameObserver = (client: AnyFramedClient, type: number, size: number) => void;

/**
 * Takes every frame of one reserved type (`FramedServer.reserveType`) in
 * place of the message path: no registry decode, no `onMessage`, no
 * `'message'` event. The value is `source[start, end)`, valid during the call
 * (copy what must be kept). Netloop's own protocols ride on reserved types
 * (request/response, keep-alive pings, framed streams), beside the
 * application's messages. Synchronous; a throw closes the client with
 * `'handler-error'`.
 */
export type ReservedFrameHandler = (client: AnyFramedClient, source: Buffer, start: number, end: number) => void;

/** A snapshot of one client's framing state, from {@link FramedClient.framingStats}. */
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
  /** The frame length limit in force: `preAuthMaxFrameLength` until authenticated (when required), then `maxFrameLength`. */
  maxFrameLength: number;
  /** Bytes read but not decoded yet, held for a later turn by `maxMessagesPerTurn` (reading is paused meanwhile). */
  heldBytes: number;
}

/**
 * @internal What a framed client reads of the framing its owner holds (the
 * `Framing` of `framing.ts`, validated once per owner).
 */
export interface FramingConfig {
  readonly layout: LtvLayout;
  readonly preAuthLayout: LtvLayout;
  readonly registry: MessageRegistry<MessageMap> | null;
  readonly encoder: LtvEncoder;
  readonly copy: boolean;
  readonly requireAuthentication: boolean;
  readonly maxPendingMessages: number;
  readonly maxPendingBytes: number;
  readonly maxMessagesPerTurn: number;
  readonly frameTimeoutMs: number;
  readonly _handler: ((client: AnyFramedClient, message: ReceivedMessage) => unknown) | null;
  readonly _frameHandler: ((client: AnyFramedClient, type: number, source: Buffer, start: number, end: number) => void) | null;
  /** The typed handlers by type id (`handle(name, fn)`), each with its registered type, or null while there is none. */
  readonly _handlers: ReadonlyMap<number, HandlerRoute> | null;
  /** The inbound hooks in registration order, or null while there is none (one field check per message). */
  readonly _inboundHooks: readonly AnyInboundHook[] | null;
  /** The outbound hooks in registration order, or null while there is none (one field check per send). */
  readonly _outboundHooks: readonly AnyOutboundHook[] | null;
  /** The frame observers, or null when there is none (one field check per frame). */
  readonly _frameObservers: readonly FrameObserver[] | null;
  /** The handlers of reserved frame types, or null when none is reserved (one field check per frame). */
  readonly _reserved: ReadonlyMap<number, ReservedFrameHandler> | null;
  readonly _isKnownType: ((type: number) => boolean) | null;
  /** The count of frames in one turn at which a client asks the loop for a turn (an eighth of the budget, at least 1). */
  readonly _turnMark: number;
  /** The header bytes of a frame (`layout.headerBytes`), read once per frame. */
  readonly _headerBytes: number;
  /** Frames in and out by type (the owner's `frameCounts()`). */
  readonly _counts: FrameCounts;
  /** Every message goes to `onMessage` as it is (no registry, typed handler, hook, reserved type or copy): made and handed out in the read loop. */
  readonly _direct: boolean;
}

/** The owner of framed clients, a `FramedServer` or a `FramedConnector`, as its clients see it (its members are internal). */
export interface FramedOwner extends ClientOwner {
  /** @internal */
  readonly _framing: FramingConfig;
  /** @internal Hands a decoded message to the owner's `'message'` listeners (no `onMessage` handler). */
  _emitMessage(client: AnyFramedClient, message: ReceivedMessage): void;
}

/**
 * The constructor `Buffer` itself makes its views with (its
 * `Symbol.species`, Node's `FastBuffer`): a view made with it is a Buffer
 * like any other, made without the argument checks of `Buffer.from(ab,
 * offset, length)`, which cost more than the view itself on the message path.
 * Where the runtime offers none, `Buffer.from` does the same.
 */
const BufferView = (Buffer as unknown as { [Symbol.species]?: unknown })[Symbol.species];
const makeView: (ab: ArrayBufferLike, offset: number, length: number) => Buffer =
  typeof BufferView === 'function' && BufferView !== Buffer && Buffer.isBuffer(new (BufferView as new (ab: ArrayBuffer, o: number, l: number) => Buffer)(new ArrayBuffer(1), 0, 1))
    ? (ab, offset, length) => new (BufferView as new (ab: ArrayBufferLike, o: number, l: number) => Buffer)(ab, offset, length)
    : (ab, offset, length) => Buffer.from(ab, offset, length);

/** `source[start, end)` in a buffer of its own (the `copy` option; out of line, off the view path). */
function copyOf(source: Buffer, start: number, end: number): Buffer {
  const value = Buffer.allocUnsafe(end - start);
  source.copy(value, 0, start, end);
  return value;
}

/** The bits of a framed client's `#state`. */
const DEAD = 1;
const PAUSED = 2;
const FEEDING = 4;
/** markAuthenticated() was called while the pre-auth decoder still had a frame to finish. */
const UPGRADE = 8;
const HELD_QUEUED = 16;
/** The full layout is in force (authenticated, or none required). */
const FULL = 32;
/** An inbound hook's promise is pending: the client's next messages wait in the backlog. */
const HOOK_WAIT = 64;

const DESTROYED_OR_CLOSED = ClientFlag.DESTROYED | ClientFlag.CLOSED;

/**
 * A framed connection (see the module comment): a {@link Client} that
 * decodes frames into messages and sends messages and raw frames. Created
 * by a `FramedServer` or a `FramedConnector`; never by the application.
 * `M` is the message map of the owner's registry ({@link RawFrames} without
 * one): it types `send`.
 */
// `M` types only the API; the runtime is the same for every map.
export class FramedClient<M extends MessageMap = AnyFramedMap> extends Client {
  /**
   * The framing the owner holds, read on every frame: one field here rather
   * than two loads through the owner (whose class varies) per frame.
   */
  readonly #fr: FramingConfig;
  #state = 0;
  #decoder: LtvDecoder | null = null;
  #inFlight = 0;
  #inFlightBytes = 0;
  #backlog: Array<number | Buffer> | null = null;
  #backHead = 0;
  #backBytes = 0;
  #frames = 0;
  /** Stream offset of the end of the last complete frame. */
  #pos = 0;
  /** Stream offset of the end of the bytes fed so far. */
  #fed = 0;
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
  /** Bytes read and not decoded yet, in stream order (null while none); their total. */
  #held: Buffer[] | null = null;
  #heldBytes = 0;
  /** The decoder's frame callback, made with the decoder. */
  #onRawFrame: ((type: number, source: Buffer, start: number, end: number) => void) | null = null;
  /**
   * Messages sent while an outbound hook's promise is pending, in order,
   * each with the frame a broadcast encoded for it (or null); null while no
   * hook is pending.
   */
  #outQueue: Array<Outgoing | Uint8Array | null> | null = null;

  /** @internal Made by a `FramedServer` or a `FramedConnector` (their client factory). */
  constructor(loop: EventLoop, socket: net.Socket, owner: FramedOwner, cfg: ClientConfig) {
    super(loop, socket, owner, cfg);
    this.#fr = owner._framing;
  }

  // ─── sending ────────────────────────────────────────────────────────────────

  /**
   * Encodes a message through the framing of the client's owner and queues
   * it; it is sent this loop turn, in one write with everything else queued
   * meanwhile. With a registry, `name` is a registered name (typed: the
   * payload must be of its type) or a registered {@link MessageType};
   * without one, a numeric type and a Buffer or Uint8Array.
   *
   * Outbound hooks see the message first (see `addOutboundHook`): one may
   * drop it (send then returns true: the client took it) or, with a promise,
   * hold it and the client's later messages back until it settles; a payload
   * a hook passes on is checked as the caller's is, and a hook's fault closes
   * the client with `'handler-error'`.
   *
   * @returns as `appendToOutputBuffer`: false, queuing nothing, when the
   *   client is closing or closed, or when the hard output limit refused the
   *   frame (the client is then closing).
   * @throws NetloopError, synchronously and with nothing queued, for a
   *   mistake of the caller (checked first, whatever the client's state):
   *   `NETLOOP_UNKNOWN_TYPE`, `NETLOOP_INVALID_VALUE` (wrong payload type),
   *   `NETLOOP_FRAME_TOO_LARGE` (over `maxFrameLength`).
   */
  send<N extends MessageName<M>>(name: N, payload: PayloadOf<M, N>): boolean;
  send<T>(type: MessageType<T>, payload: T): boolean;
  send(type: LooseRef<M>, payload: LoosePayload<M>): boolean;
  send(ref: MessageTypeRef, payload: unknown): boolean {
    const fr = this.#fr;
    if (fr._outboundHooks !== null || this.#outQueue !== null) return this.#sendHooked(ref, payload);
    return sendFrame(fr.encoder, fr.registry, this, ref, payload, (this.#state & FEEDING) === 0, fr._counts);
  }

  /**
   * Sends one frame of the numeric `type` whose value is `bytes[start, end)`
   * (default: all of `bytes`), with no serializer and no intermediate view:
   * a value up to the framing's `copyThreshold` is copied once, behind its
   * header, into the output buffer, so `bytes` may be reused as soon as the
   * call returns; a larger one is queued uncopied (do not modify it until it
   * is written). The counterpart of the `onRawFrame` handler: a relay or an
   * echo passes the received range straight on. With a registry, `type`
   * must be registered. Returns false, queuing nothing, when the client is
   * closing or closed or past its hard output limit (as {@link send}).
   *
   * @throws NetloopError, whatever the client's state: INVALID_VALUE
   *   (`bytes` not a Uint8Array, a range outside it, a type the layout cannot
   *   carry), UNKNOWN_TYPE (a type the registry does not know), FRAME_TOO_LARGE.
   */
  sendRaw(type: number, bytes: Uint8Array, start = 0, end: number = bytes?.byteLength): boolean {
    if (!(bytes instanceof Uint8Array)) {
      throw new NetloopError(ErrorCode.INVALID_VALUE, 'sendRaw takes a Buffer or Uint8Array', {
        details: { got: bytes === null ? 'null' : typeof bytes },
      });
    }
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || start > end || end > bytes.byteLength) {
      throw new NetloopError(ErrorCode.INVALID_VALUE, `the range [${String(start)}, ${String(end)}) is not inside the ${bytes.byteLength} bytes given`, {
        details: { start: String(start), end: String(end), byteLength: bytes.byteLength },
      });
    }
    const fr = this.#fr;
    if (bytes === this.#source && (start !== 0 || end !== bytes.byteLength) && end - start <= fr.encoder.copyThreshold) {
      // A range of the chunk being read (a relay or an echo passing a frame
      // on): its view is made from the chunk's memory, read once per chunk,
      // rather than by the encoder from the chunk for every frame.
      bytes = makeView(this.#sourceAb!, bytes.byteOffset + start, end - start);
      end -= start;
      start = 0;
    }
    return sendRawFrame(fr.encoder, fr._reserved !== null && fr._reserved.has(type) ? null : fr.registry, this, type, bytes, start, end, (this.#state & FEEDING) === 0, fr._counts);
  }

  /**
   * Marks the client authenticated (the session layer calls this once a
   * session is created or resumed for it). The framing layer then accepts
   * frames up to `maxFrameLength` instead of `preAuthMaxFrameLength`, from
   * the frame after the one being handled. Idempotent; it cannot be undone.
   */
  markAuthenticated(): void {
    if ((this._flags & ClientFlag.AUTHENTICATED) !== 0) return;
    this._flags |= ClientFlag.AUTHENTICATED;
    const s = this.#state;
    // Before the first chunk, the decoder made then reads the flag.
    if ((s & (FULL | DEAD)) !== 0 || this.#decoder === null) return;
    if ((s & FEEDING) !== 0 || this.#decoder.inFrame) {
      // Switch at the end of the frame being handled (or the one being read).
      this.#state = s | UPGRADE;
      return;
    }
    this.#state = s | FULL;
    this.#decoder = this.#makeDecoder();
  }

  /** True once {@link FramedClient.markAuthenticated} was called. */
  get authenticated(): boolean {
    return (this._flags & ClientFlag.AUTHENTICATED) !== 0;
  }

  /** A snapshot of the client's framing state (backpressure counters, the frame limit in force). */
  framingStats(): FramedStats {
    const d = this.#decoder;
    return {
      inFlight: this.#inFlight,
      backlog: this.#backlogCount(),
      pendingBytes: this.#inFlightBytes + this.#backBytes,
      paused: (this.#state & PAUSED) !== 0,
      bufferedBytes: d === null ? 0 : d.bufferedBytes,
      reservedBytes: d === null ? 0 : d.reservedBytes,
      frames: this.#frames,
      maxFrameLength: d === null ? this.#layoutNow().maxFrameLength : d.layout.maxFrameLength,
      heldBytes: this.#heldBytes,
    };
  }

  // ─── the reactor's seams ────────────────────────────────────────────────────

  /** A chunk read from the socket: decoded into frames (see the module comment). */
  protected override _handleData(chunk: Buffer): void {
    if ((this.#state & DEAD) !== 0) return;
    if (this.#decoder === null) this.#start();
    const held = this.#held;
    if (held !== null && held.length > 0) {
      // Bytes are already waiting for a later turn (the application resumed
      // reading meanwhile): this chunk goes behind them, in stream order.
      held.push(chunk);
      this.#heldBytes += chunk.length;
      this.#updateReading();
      return;
    }
    const posBefore = this.#pos;
    this.#feedChunk(chunk);
    this.#afterFeed(posBefore);
  }

  /**
   * A close of ours began (`end()`, `removeClient`, a server close, a
   * session notice): nothing more is handed to the application, neither
   * frames still to decode nor messages waiting for a handler slot.
   */
  protected override _closing(): void {
    this.#forget();
  }

  /** The client closed: forget pending work; late settlements are ignored. */
  protected override _closed(_reason: CloseReason, _error: NetloopError | undefined): void {
    this.#forget();
  }

  #forget(): void {
    this.#state |= DEAD;
    this.#held = null;
    this.#heldBytes = 0;
    this.#backlog = null;
    this.#backHead = 0;
    this.#backBytes = 0;
    if (this.#frameTimer !== null) this.loop._timers.remove(this.#frameTimer);
  }

  // ─── decoding ───────────────────────────────────────────────────────────────

  /** The first chunk: the layout is fixed by the framing's rule now (`requireAuthentication` may change until then). */
  #start(): void {
    const fr = this.#fr;
    if (this.authenticated || !fr.requireAuthentication || fr.preAuthLayout === fr.layout) this.#state |= FULL;
    this.#onRawFrame = (type: number, source: Buffer, start: number, end: number): void => this.#frame(type, source, start, end);
    this.#decoder = this.#makeDecoder();
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
      this.#state |= FEEDING;
      const backlog = this.#backlog;
      if (!this.#decoder!.inFrame && (backlog === null || this.#backHead === backlog.length)) {
        // The whole frames at the chunk's head are taken here; the decoder
        // gets only what the walk leaves (see #walk).
        const at = this.#walk(rest);
        if (at === rest.length) {
          this.#state &= ~FEEDING;
          this.#source = null;
          if ((this.#state & UPGRADE) !== 0) {
            this.#state = (this.#state & ~UPGRADE) | FULL;
            this.#decoder = this.#makeDecoder();
          }
          return;
        }
        if (at > 0) {
          rest = rest.subarray(at);
          restStart += at;
          this.#chunkStart = restStart;
          if ((this.#state & UPGRADE) !== 0 && (this.#state & DEAD) === 0) {
            // The last frame taken authenticated the client: the rest is read
            // with the full layout, as on the decoder's path (#retireAt).
            this.#state = (this.#state & ~UPGRADE) | FULL;
            this.#decoder = this.#makeDecoder();
            continue;
          }
        }
      }
      try {
        this.#decoder!.feed(rest);
      } catch (err) {
        if (this.#retireAt < 0 && this.#holdAt < 0) {
          this.#state &= ~FEEDING;
          this.#source = null;
          this.#fail('protocol-error', err);
          return;
        }
        // The discarded decoder's view of the stream past the cut does not count.
      }
      this.#state &= ~FEEDING;
      this.#source = null;
      if (this.#retireAt >= 0) {
        // The client was authenticated by a frame of this chunk: the rest of the
        // chunk is read again with the full layout, from the end of that frame.
        const at = this.#retireAt - restStart;
        this.#retireAt = -1;
        this.#state |= FULL;
        this.#decoder = this.#makeDecoder();
        if (at < rest.length && (this.#state & DEAD) === 0) {
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
        if ((this.#state & UPGRADE) !== 0) this.#state = (this.#state & ~UPGRADE) | FULL;
        this.#decoder = this.#makeDecoder();
        if ((this.#state & DEAD) === 0 && at < rest.length) {
          const tail = at === 0 ? rest : rest.subarray(at);
          (this.#held ??= []).unshift(tail);
          this.#heldBytes += tail.length;
          if ((this.#state & HELD_QUEUED) === 0) {
            this.#state |= HELD_QUEUED;
            this.loop.queueInLoop(() => this.#feedHeld());
          }
        }
      }
      return;
    }
  }

  /** After a chunk was fed: flush what its handlers queued, apply backpressure, watch a started frame. */
  #afterFeed(posBefore: number): void {
    if ((this.#state & DEAD) !== 0) return;
    if (this.hasDataToWrite()) {
      this.enableWriting();
      this.loop.updateClient(this);
    }
    this.#updateReading();
    if (this.#fr.frameTimeoutMs > 0) {
      if (this.#decoder!.inFrame) {
        if (this.#frameStart < 0 || this.#pos !== posBefore) this.#armFrameTimer();
      } else this.#frameStart = -1;
    }
  }

  /** A turn of the loop after bytes were held: feed them with a fresh budget, until it is spent again. */
  #feedHeld(): void {
    this.#state &= ~HELD_QUEUED;
    // A client destroyed meanwhile (destroy(), a limit, an error) gets nothing more; its close clears the rest.
    if (this.socket.destroyed) return;
    const posBefore = this.#pos;
    const held = this.#held;
    while (held !== null && held.length > 0 && (this.#state & DEAD) === 0) {
      const chunk = held.shift()!;
      this.#heldBytes -= chunk.length;
      this.#feedChunk(chunk);
      // A new hold put the rest of the chunk back at the head: wait for the next turn.
      if ((this.#state & HELD_QUEUED) !== 0) break;
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
    const s = this.#state;
    if ((s & DEAD) !== 0) return;
    const fr = this.#fr;
    const messages = this.#inFlight + this.#backlogCount();
    const bytes = this.#inFlightBytes + this.#backBytes;
    const holding = this.#held !== null && this.#held.length > 0;
    if ((s & PAUSED) === 0) {
      if (holding || messages >= fr.maxPendingMessages || bytes >= fr.maxPendingBytes) {
        this.#state = s | PAUSED;
        this.loop._counters.inboundPauses++;
        this._pauseReading(PauseReason.FRAMING);
      }
    } else if (!holding && messages <= fr.maxPendingMessages >> 1 && bytes <= fr.maxPendingBytes / 2) {
      this.#state = s & ~PAUSED;
      this._resumeReading(PauseReason.FRAMING);
    }
  }

  /** @internal The frame deadline passed: close unless the frame completed (then stay idle) or reading was paused. */
  _onFrameTimer(): void {
    if ((this.#state & DEAD) !== 0 || this.#frameStart < 0) return;
    const timeout = this.#fr.frameTimeoutMs;
    const loop = this.loop;
    const now = loop.now();
    if (!this.isReading()) {
      // The peer cannot finish a frame we do not read: its clock restarts when reading does.
      this.#frameStart = now;
      loop._timers.reschedule(this.#frameTimer!, now + timeout);
      return;
    }
    const due = this.#frameStart + timeout;
    if (due > now) {
      loop._timers.reschedule(this.#frameTimer!, due);
      return;
    }
    this.#fail(
      'frame-timeout',
      new NetloopError(ErrorCode.FRAME_TIMEOUT, `a frame was started but not completed within ${timeout} ms`, {
        details: { clientId: this.id, frameTimeoutMs: timeout, bufferedBytes: this.#decoder?.bufferedBytes ?? 0 },
      }),
    );
  }

  /** The layout frames are decoded with now. */
  #layoutNow(): LtvLayout {
    const fr = this.#fr;
    if (this.#decoder === null) return this.authenticated || !fr.requireAuthentication ? fr.layout : fr.preAuthLayout;
    return (this.#state & FULL) !== 0 ? fr.layout : fr.preAuthLayout;
  }

  #makeDecoder(): LtvDecoder {
    const fr = this.#fr;
    return new LtvDecoder({
      layout: (this.#state & FULL) !== 0 ? fr.layout : fr.preAuthLayout,
      onRawFrame: this.#onRawFrame!,
      isKnownType: fr._isKnownType,
      // Node never writes to a 'data' chunk once emitted: a frame cut across reads is held as views of them.
      retainChunks: true,
    });
  }

  #armFrameTimer(): void {
    const loop = this.loop;
    const now = loop.now();
    const timeout = this.#fr.frameTimeoutMs;
    this.#frameStart = now;
    const t = this.#frameTimer;
    if (t === null) this.#frameTimer = loop._timers.schedule(now + timeout, frameExpired, this);
    else if (t.index === -1) loop._timers.reschedule(t, now + timeout);
    // A queued entry keeps its earlier deadline; it re-arms itself lazily from #frameStart.
  }

  #backlogCount(): number {
    const b = this.#backlog;
    return b === null ? 0 : (b.length - this.#backHead) >> 2;
  }

  /**
   * Takes the whole frames at the head of `chunk` (the decoder holding no
   * partial frame, and the backlog empty) and returns the offset of the
   * first byte not taken. This is the decoder's loop and `#frame`
   * fused into one, with the budget, the handler slots and the state read
   * per frame as there: a frame that any of them would not dispatch at once
   * ends the walk, as do a header the decoder would refuse and a frame cut
   * by the end of the chunk, and the decoder takes the chunk from there
   * (so errors, the backlog, holding and partial frames have one code path).
   *
   * ```
   *   chunk: [ f1 f2 f3 ... fk | fk+1 (cut, bad, over budget, no slot) ... ]
   *            walked here        decoder.feed(rest) ──▶ #frame
   * ```
   *
   * Messages for a plain `onMessage` (`_direct` in the framing) are
   * made and handed out here; every other frame goes to `#dispatch`.
   */
  #walk(chunk: Buffer): number {
    const fr = this.#fr;
    const layout = (this.#state & FULL) !== 0 ? fr.layout : fr.preAuthLayout;
    const H = layout.headerBytes;
    const lenOff = layout.lengthOffset;
    const lenBytes = layout.lengthBytes;
    const typeOff = layout.typeOffset;
    const typeBytes = layout.typeBytes;
    const le = layout.byteOrder === 'LE';
    const adj = layout.adjustment;
    const maxDeclared = layout.maxDeclared;
    const isKnownType = fr._isKnownType;
    const budget = fr.maxMessagesPerTurn;
    const slots = fr.maxPendingMessages;
    const mark = fr._turnMark;
    const counts = fr._counts;
    const loop = this.loop;
    // The turn cannot change during this synchronous loop: its count is reset once.
    const seq = loop._turnSeq;
    if (seq !== this.#turnSeq) {
      this.#turnSeq = seq;
      this.#turnCount = 0;
    }
    if (chunk !== this.#source) {
      this.#source = chunk;
      this.#sourceAb = chunk.buffer;
    }
    const ab = this.#sourceAb!;
    const base = chunk.byteOffset;
    const end = chunk.length;
    let off = 0;
    while (end - off >= H) {
      if (this.#turnCount >= budget || this.#inFlight >= slots || (this.#state & (DEAD | HOOK_WAIT | UPGRADE)) !== 0) break;
      const declared = readUint(chunk, off + lenOff, lenBytes, le);
      const type = typeBytes === 0 ? 0 : readUint(chunk, off + typeOff, typeBytes, le);
      if (declared > maxDeclared || declared < adj || (isKnownType !== null && !isKnownType(type))) break;
      const start = off + H;
      const stop = start + declared - adj;
      if (stop > end) break;
      off = stop;
      if (++this.#turnCount === mark) loop._requestTurn();
      const size = H + (stop - start);
      this.#pos += size;
      this.#frames++;
      counts.received(type);
      if (fr._frameObservers !== null && !this.#observe(type, size)) break;
      if (!fr._direct) {
        const raw = fr._frameHandler;
        if (raw === null || fr._reserved !== null) {
          this.#dispatch(type, chunk, start, stop, size);
          continue;
        }
        // onRawFrame and no reserved type: the range itself, as #dispatch would hand it out.
        try {
          raw(this, type, chunk, start, stop);
        } catch (err) {
          this.#handlerFault(err, false);
          break;
        }
        continue;
      }
      const value = start === 0 && stop === end ? chunk : makeView(ab, base + start, stop - start);
      let r: unknown;
      try {
        r = fr._handler!(this, { type, name: undefined, payload: value, value });
      } catch (err) {
        this.#handlerFault(err, false);
        break;
      }
      if (r !== undefined && r !== null) this.#track(r, size);
    }
    return off;
  }

  /**
   * Shows a frame to the frame observers (the owner has some), before it is
   * dispatched, whatever handles it; false when one threw, which closed the
   * client as a handler fault.
   */
  #observe(type: number, size: number): boolean {
    const observers = this.#fr._frameObservers!;
    try {
      for (let i = 0; i < observers.length; i++) observers[i]!(this, type, size);
    } catch (err) {
      this.#handlerFault(err, false);
      return false;
    }
    return true;
  }

  /** One frame from the decoder: `source[start, end)`. */
  #frame(type: number, source: Buffer, start: number, end: number): void {
    if (this.#retireAt >= 0 || this.#holdAt >= 0) return;
    // The turn's budget: a frame that began in an earlier chunk is taken
    // anyway (its first bytes are inside the decoder, not in this chunk).
    const loop = this.loop;
    const seq = loop._turnSeq;
    if (seq !== this.#turnSeq) {
      this.#turnSeq = seq;
      this.#turnCount = 0;
    }
    const fr = this.#fr;
    if (this.#turnCount >= fr.maxMessagesPerTurn && this.#pos >= this.#chunkStart) {
      this.#holdAt = this.#pos;
      return;
    }
    // At the mark the loop is asked for a turn, which ends this count with the
    // Node event loop's current turn. Below the mark nothing is asked (a
    // request/response peer's lone frames cost no setImmediate), so a count
    // may carry fewer than the mark's frames over from earlier turns: a turn
    // then holds a little early, never late.
    if (++this.#turnCount === fr._turnMark) loop._requestTurn();
    const size = fr._headerBytes + (end - start);
    this.#pos += size;
    this.#frames++;
    fr._counts.received(type);
    if ((this.#state & DEAD) !== 0) return;
    if (fr._frameObservers !== null && !this.#observe(type, size)) return;
    const backlog = this.#backlog;
    if ((backlog === null || this.#backHead === backlog.length) && this.#inFlight < fr.maxPendingMessages && (this.#state & HOOK_WAIT) === 0) {
      this.#dispatch(type, source, start, end, size);
    } else {
      (this.#backlog ??= []).push(type, source, start, end);
      this.#backBytes += size;
    }
    if ((this.#state & UPGRADE) !== 0) {
      this.#state &= ~UPGRADE;
      this.#retireAt = this.#pos;
    }
  }

  #dispatch(type: number, source: Buffer, start: number, end: number, size: number): void {
    const fr = this.#fr;
    const reserved = fr._reserved;
    if (reserved !== null) {
      const take = reserved.get(type);
      if (take !== undefined) {
        try {
          take(this, source, start, end);
        } catch (err) {
          this.#handlerFault(err, false);
        }
        return;
      }
    }
    const raw = fr._frameHandler;
    if (raw !== null) {
      // The raw path: no view, no message object, nothing pending after the call.
      try {
        raw(this, type, source, start, end);
      } catch (err) {
        this.#handlerFault(err, false);
      }
      return;
    }
    // A handled type's route holds its registered type: one lookup for both.
    // (A handler needs a registry, so without one there is no route.)
    const handlers = fr._handlers;
    const route = handlers === null ? undefined : handlers.get(type);
    const bare = route !== undefined && route.bare && fr._inboundHooks === null;
    if (bare && route.ranged) {
      // The handler takes the payload alone and the serializer reads the
      // range where it lies: no view of the value and no message object.
      let payload: unknown;
      try {
        payload = deserializeRange(route.type, source, start, end);
      } catch (err) {
        this.#fail('protocol-error', err);
        return;
      }
      this.#call(route.fn, payload, undefined, size);
      return;
    }
    // The view is made here rather than in a method of its own: the compiler
    // inlines a bounded amount of code into this function, and the handler
    // with the send it makes should fit.
    let value: Buffer;
    if (fr.copy && source.length !== end - start) {
      value = copyOf(source, start, end);
    } else if (start === 0 && end === source.length) {
      value = source;
    } else {
      if (source !== this.#source) {
        this.#source = source;
        this.#sourceAb = source.buffer;
      }
      value = makeView(this.#sourceAb!, source.byteOffset + start, end - start);
    }
    const registry = fr.registry;
    let message: ReceivedMessage;
    if (registry === null) {
      message = { type, name: undefined, payload: value, value };
      if (fr._inboundHooks !== null) this.#inbound(fr._inboundHooks, 0, message, size);
      else this.#deliver(message, size);
      return;
    }
    if (bare) {
      // The handler takes the payload alone (a raw() payload is the view itself): no message object.
      let payload: unknown;
      try {
        payload = deserialize(route.type, value);
      } catch (err) {
        this.#fail('protocol-error', err);
        return;
      }
      this.#call(route.fn, payload, undefined, size);
      return;
    }
    const known = route !== undefined ? route.type : registry._byId(type);
    try {
      message =
        known !== undefined
          ? { type, name: known.name, payload: deserialize(known, value), value }
          : { type, name: undefined, payload: registry.decode(type, value).payload, value };
    } catch (err) {
      this.#fail('protocol-error', err);
      return;
    }
    const hooks = fr._inboundHooks;
    if (hooks !== null) this.#inbound(hooks, 0, message, size);
    else if (route !== undefined) this.#handle(route.fn, message, size);
    else this.#deliver(message, size);
  }

  /**
   * Runs the inbound hooks from `from` on, then delivers what they pass on.
   * A hook's promise holds the message (counted as pending) and, through
   * HOOK_WAIT, every later message of this client in the backlog, so the
   * handlers see the client's messages in their order.
   */
  #inbound(hooks: readonly AnyInboundHook[], from: number, message: ReceivedMessage, size: number): void {
    let m = message;
    for (let i = from; i < hooks.length; i++) {
      let r: unknown;
      try {
        r = hooks[i]!(this, m);
      } catch (err) {
        this.#handlerFault(err, false);
        return;
      }
      if (r === undefined) continue;
      if (r === null) return;
      if (typeof (r as PromiseLike<unknown>).then === 'function') {
        this.#state |= HOOK_WAIT;
        this.#inFlight++;
        this.#inFlightBytes += size;
        (r as PromiseLike<unknown>).then(
          (v: unknown) => this.#hookSettled(hooks, i, m, v, size),
          (err: unknown) => this.#handlerFault(err, true),
        );
        return;
      }
      if (!isMessage(r)) {
        this.#handlerFault(hookResultError('an inbound', r), false);
        return;
      }
      m = r;
    }
    this.#deliver(m, size);
  }

  /** An inbound hook's promise settled with `v`: go on with the next hooks, then with the messages that waited. */
  #hookSettled(hooks: readonly AnyInboundHook[], i: number, m: ReceivedMessage, v: unknown, size: number): void {
    if ((this.#state & DEAD) !== 0) return;
    this.#state &= ~HOOK_WAIT;
    this.#inFlight--;
    this.#inFlightBytes -= size;
    if (v !== null) {
      if (v !== undefined && !isMessage(v)) {
        this.#handlerFault(hookResultError('an inbound', v), true);
        return;
      }
      this.#inbound(hooks, i + 1, v === undefined ? m : v, size);
    }
    this.#drain();
  }

  /**
   * Hands a decoded message to its handler: the typed handler of its type
   * (`handle`), else `onMessage`, else the owner's `'message'` event.
   */
  #deliver(message: ReceivedMessage, size: number): void {
    const fr = this.#fr;
    const handlers = fr._handlers;
    if (handlers !== null && message.name !== undefined) {
      const route = handlers.get(message.type);
      if (route !== undefined) {
        this.#handle(route.fn, message, size);
        return;
      }
    }
    let r: unknown;
    const handler = fr._handler;
    if (handler === null) {
      // The owner's emit guards each listener: a fault closes this client
      // (handler-error), after which nothing more is dispatched.
      (this._owner as FramedOwner)._emitMessage(this, message);
      if ((this._flags & DESTROYED_OR_CLOSED) !== 0) this.#state |= DEAD;
      return;
    }
    try {
      r = handler(this, message);
    } catch (err) {
      this.#handlerFault(err, false);
      return;
    }
    if (r !== undefined && r !== null) this.#track(r, size);
  }

  /** Calls the typed handler of a message's type. */
  #handle(fn: AnyTypedHandler, message: ReceivedMessage, size: number): void {
    this.#call(fn, message.payload, message, size);
  }

  /** Calls a typed handler with a payload (and its message, unless the handler takes none). */
  #call(fn: AnyTypedHandler, payload: unknown, message: ReceivedMessage | undefined, size: number): void {
    let r: unknown;
    try {
      r = fn(this, payload, message);
    } catch (err) {
      this.#handlerFault(err, false);
      return;
    }
    if (r !== undefined && r !== null) this.#track(r, size);
  }

  /** A handler returned `r`: a thenable keeps the message pending until it settles. */
  #track(r: unknown, size: number): void {
    if (typeof (r as PromiseLike<unknown>).then !== 'function') return;
    this.#inFlight++;
    this.#inFlightBytes += size;
    (r as PromiseLike<unknown>).then(
      () => this.#settled(size),
      (err: unknown) => this.#handlerFault(err, true),
    );
  }

  /** An async handler settled: hand out waiting messages, and resume reading once pending is back to half. */
  #settled(size: number): void {
    if ((this.#state & DEAD) !== 0) return;
    this.#inFlight--;
    this.#inFlightBytes -= size;
    this.#drain();
  }

  /** Dispatches messages from the backlog while handler slots are free and no inbound hook holds the order. */
  #drain(): void {
    if ((this.#state & DEAD) !== 0) return;
    const fr = this.#fr;
    const backlog = this.#backlog;
    if (backlog !== null) {
      const headerBytes = fr._headerBytes;
      while (this.#backHead < backlog.length && this.#inFlight < fr.maxPendingMessages && (this.#state & (DEAD | HOOK_WAIT)) === 0) {
        const i = this.#backHead;
        const type = backlog[i] as number;
        const source = backlog[i + 1] as Buffer;
        const start = backlog[i + 2] as number;
        const end = backlog[i + 3] as number;
        // Let go of the chunk as soon as it is handed out.
        backlog[i + 1] = 0;
        this.#backHead = i + 4;
        const frameSize = headerBytes + (end - start);
        this.#backBytes -= frameSize;
        this.#dispatch(type, source, start, end, frameSize);
      }
      this.#source = null;
      if ((this.#state & DEAD) !== 0) return;
      if (this.#backHead === backlog.length) {
        backlog.length = 0;
        this.#backHead = 0;
      }
    }
    if ((this.#state & PAUSED) !== 0) this.#updateReading();
  }

  // ─── outbound hooks ─────────────────────────────────────────────────────────

  /**
   * `send` while outbound hooks are registered (or a hook's promise is
   * pending): the caller's mistakes (an unknown name, a non-numeric type
   * without a registry) throw first; then the hooks see the message.
   */
  #sendHooked(ref: MessageTypeRef, payload: unknown): boolean {
    const fr = this.#fr;
    let message: Outgoing;
    if (fr.registry !== null) {
      const t = fr.registry.resolve(ref);
      message = { type: t.id, name: t.name, payload };
    } else {
      if (typeof ref !== 'number') {
        throw new NetloopError(ErrorCode.INVALID_VALUE, 'without a registry, send() takes a numeric type id', { details: { type: typeof ref } });
      }
      message = { type: ref, name: undefined, payload };
    }
    // A message a hook dropped was taken: it is not the client's refusal.
    return this.#outbound(message, null) !== false;
  }

  /**
   * @internal A typed broadcast's frame for this client (`frame`, encoded
   * once for every receiver), while the owner has outbound hooks: they see
   * `message` first; the frame is written unless they change or drop it.
   * True when it was queued (or is held by a hook); a broadcast counts it.
   */
  _writeMessage(message: Outgoing, frame: Uint8Array): boolean {
    return this.#outbound(message, frame) === true;
  }

  /**
   * Queues `message` behind a pending hook, or runs the hooks on it now.
   * True when queued or held, false when the client refused it, null when a
   * hook dropped it.
   */
  #outbound(message: Outgoing, frame: Uint8Array | null): boolean | null {
    const queue = this.#outQueue;
    if (queue !== null) {
      if (!this.writable) return false;
      queue.push(message, frame);
      return true;
    }
    const hooks = this.#fr._outboundHooks;
    return hooks === null ? this.#emit(message, frame, true) : this.#runOutbound(hooks, 0, message, frame, true);
  }

  /**
   * Runs the outbound hooks from `from` on `message`, then encodes and
   * queues what they pass on. `sync`: called from `send` (a mistake in the
   * payload throws to the caller), else from a hook's settlement (a mistake
   * is a fault of the client: nobody is left to throw to).
   */
  #runOutbound(hooks: readonly AnyOutboundHook[], from: number, message: Outgoing, frame: Uint8Array | null, sync: boolean): boolean | null {
    let m = message;
    for (let i = from; i < hooks.length; i++) {
      let r: unknown;
      try {
        r = hooks[i]!(this, m);
      } catch (err) {
        this.#handlerFault(err, false);
        return false;
      }
      if (r === undefined) continue;
      if (r === null) return null;
      if (typeof (r as PromiseLike<unknown>).then === 'function') {
        this.#outQueue ??= [];
        const held = m;
        (r as PromiseLike<unknown>).then(
          (v: unknown) => this.#outboundSettled(hooks, i, held, frame, v),
          (err: unknown) => this.#handlerFault(err, true),
        );
        return this.writable;
      }
      if (!isOutgoing(r)) {
        this.#handlerFault(hookResultError('an outbound', r), false);
        return false;
      }
      m = r;
      frame = null;
    }
    return this.#emit(m, frame, sync);
  }

  /** An outbound hook's promise settled: finish that message, then send what queued behind it. */
  #outboundSettled(hooks: readonly AnyOutboundHook[], i: number, m: Outgoing, frame: Uint8Array | null, v: unknown): void {
    if ((this.#state & DEAD) !== 0 || (this._flags & DESTROYED_OR_CLOSED) !== 0) {
      this.#outQueue = null;
      return;
    }
    const queue = this.#outQueue!;
    this.#outQueue = null;
    if (v !== null) {
      if (v !== undefined && !isOutgoing(v)) {
        this.#handlerFault(hookResultError('an outbound', v), true);
        return;
      }
      this.#runOutbound(hooks, i + 1, v === undefined ? m : v, v === undefined ? frame : null, false);
    }
    // What was sent meanwhile goes through the hooks now registered, in order,
    // until one of them holds a message again (the rest then waits behind it).
    let k = 0;
    while (k < queue.length && (this.#state & DEAD) === 0) {
      const next = queue[k] as Outgoing;
      const nextFrame = queue[k + 1] as Uint8Array | null;
      k += 2;
      const waiting = this.#waitingQueue();
      if (waiting !== null) {
        waiting.push(next, nextFrame);
        continue;
      }
      const now = this.#fr._outboundHooks;
      if (now === null) this.#emit(next, nextFrame, false);
      else this.#runOutbound(now, 0, next, nextFrame, false);
    }
  }

  /** The queue of messages held behind a pending outbound hook, or null (read anew: a hook may have set it). */
  #waitingQueue(): Array<Outgoing | Uint8Array | null> | null {
    return this.#outQueue;
  }

  /**
   * Encodes and queues a message the hooks passed on (or writes the frame a
   * broadcast encoded, when they left the message as it was). Off the
   * caller's stack (`sync` false), a payload that cannot be sent is a fault
   * of this client.
   */
  #emit(m: Outgoing, frame: Uint8Array | null, sync: boolean): boolean {
    const fr = this.#fr;
    if (frame !== null) {
      if (!this.write(frame)) return false;
      fr._counts.sent(m.type);
      return true;
    }
    const flush = (this.#state & FEEDING) === 0;
    if (sync) return sendFrame(fr.encoder, fr.registry, this, fr.registry !== null ? (m.name ?? m.type) : m.type, m.payload, flush, fr._counts);
    try {
      return sendFrame(fr.encoder, fr.registry, this, fr.registry !== null ? (m.name ?? m.type) : m.type, m.payload, flush, fr._counts);
    } catch (err) {
      this.#handlerFault(err, false);
      return false;
    }
  }

  #handlerFault(err: unknown, rejected: boolean): void {
    if ((this.#state & DEAD) !== 0) return;
    const what = rejected ? 'rejected' : 'threw';
    this.#fail(
      'handler-error',
      new NetloopError(ErrorCode.HANDLER_ERROR, `a message handler ${what}: ${err instanceof Error ? err.message : String(err)}`, {
        cause: err,
        details: { clientId: this.id },
      }),
    );
  }

  /** Closes the client with `reason`; nothing more is dispatched. */
  #fail(reason: CloseReason, err: unknown): void {
    if ((this.#state & DEAD) !== 0) return;
    this.#state |= DEAD;
    const error = isNetloopError(err)
      ? err
      : new NetloopError(ErrorCode.HANDLER_ERROR, `framing failed: ${err instanceof Error ? err.message : String(err)}`, {
          cause: err,
          details: { clientId: this.id },
        });
    this.destroy(reason, error);
  }
}

function frameExpired(client: AnyFramedClient): void {
  client._onFrameTimer();
}

/** True when a hook returned a received message (an object with a numeric type and a value). */
function isMessage(v: unknown): v is ReceivedMessage {
  return typeof v === 'object' && v !== null && typeof (v as ReceivedMessage).type === 'number' && Buffer.isBuffer((v as ReceivedMessage).value);
}

/** True when a hook returned a message to send (an object with a numeric type). */
function isOutgoing(v: unknown): v is Outgoing {
  return typeof v === 'object' && v !== null && typeof (v as Outgoing).type === 'number';
}

/** The fault of a hook that returned something other than a message, null or undefined. */
function hookResultError(which: string, v: unknown): NetloopError {
  return new NetloopError(ErrorCode.INVALID_VALUE, `${which} hook returned ${v === null ? 'null' : typeof v}: expected a message, null (drop) or undefined (pass on)`, {
    details: { got: typeof v },
  });
}
