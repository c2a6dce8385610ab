/**
 * The framing a `FramedServer` or a `FramedConnector` holds for all its
 * clients: the LTV layout (and the smaller one before authentication), the
 * message registry, the encoder, the limits and the handler, validated once
 * from the {@link FramingOptions}. A client reads it through its owner; it
 * holds no per-client state (that lives in each `FramedClient`).
 *
 * ```
 *   FramingOptions ──new Framing(options, side)──▶ Framing
 *     layout, registry, copy, copyThreshold,         layout, preAuthLayout, registry, encoder,
 *     onMessage | onRawFrame, limits                 limits, _handler | _frameHandler,
 *                                                    _frameObservers (replaced as a whole), _turnMark
 *   owner.handle(name, fn)           ──▶ _handlers        Map<type id, route>     (null while empty)
 *                                          route { type, fn, bare: fn takes no message,
 *                                                  ranged: its payload is decoded where it lies }
 *   owner.addInboundHook(fn)         ──▶ _inboundHooks    [hook, ...]             (null while empty;
 *   owner.addOutboundHook(fn)        ──▶ _outboundHooks   [hook, ...]              replaced as a whole)
 *   every frame in and out           ──▶ _counts          FrameCounts             (owner.frameCounts())
 *   any of the tables above changed  ──▶ _direct          onMessage alone takes every message as it is
 * ```
 *
 * Every table the clients read per frame or per send is null while empty,
 * so a framing without typed handlers, hooks, observers or reserved types
 * costs one field check for each.
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../core/errors.js';
import { checkInteger, checkNumber } from '../core/validate.js';
import { LtvEncoder } from '../codec/ltv-encoder.js';
import { ltvLayout } from '../codec/ltv-layout.js';
import type { LtvLayout, LtvLayoutOptions, LtvPresetName } from '../codec/ltv-layout.js';
import { MessageRegistry } from '../codec/message-registry.js';
import type { MessageMap, MessageTypeRef } from '../codec/message-registry.js';
import type {
  AnyInboundHook,
  AnyOutboundHook,
  AnyTypedHandler,
  HandlerRoute,
  ClientRawFrameHandler,
  FrameObserver,
  FramingConfig,
  MessageHandler,
  ReceivedMessage,
  ReservedFrameHandler,
  AnyFramedClient,
  AnyFramedMap,
  Outgoing,
} from './framed-client.js';
import type { RawFrames } from './messages.js';
import type { LoopClient, TypedMessage } from '../reactor/loop-member.js';
import { encodeMessage } from './send.js';
import { hasRangeDecoding } from '../codec/serializers.js';
import { FrameCounts } from './frame-counts.js';
import type { FrameCount } from './frame-counts.js';

/**
 * The framing options of a `FramedServer` or a `FramedConnector` (given
 * beside their other options). Every limit has a finite default.
 */
export interface FramingOptions<M extends MessageMap = AnyFramedMap> {
  /** The frame layout: a preset name (`'netloop'`, `'cellnet'`, `'muduo'`, `'pomelo'`), layout options, or a built layout. Default `'netloop'`. */
  layout?: LtvLayout | LtvLayoutOptions | LtvPresetName;
  /**
   * The message registry. With one, `client.send(typeOrName, payload)`
   * serializes through it and received values are deserialized; a strict
   * registry refuses an unknown type from the frame header (`protocol-error`,
   * `NETLOOP_UNKNOWN_TYPE`). Without one, messages carry raw bytes and
   * `send(typeId, bytes)` takes a numeric type.
   */
  registry?: MessageRegistry<M> | null;
  /** Hand every value out in a buffer of its own instead of a view of the received chunk. Default false. */
  copy?: boolean;
  /** Values up to this many bytes are copied behind their header in one piece by `send`; larger ones are queued uncopied. Default 1024. */
  copyThreshold?: number;
  /**
   * The message handler: every message no typed handler (`handle(name, fn)`)
   * takes. It runs directly on the hot path (no event emission) and may
   * return a promise. Without it, each such message is emitted as the
   * owner's `'message'` event `(client, message)`, whose listeners' return
   * values are ignored (so they do not count as pending).
   */
  onMessage?: MessageHandler<M>;
  /**
   * The raw frame handler, instead of `onMessage` (giving both is refused):
   * each frame's type and value range, with no Buffer or message object per
   * frame (see {@link ClientRawFrameHandler}). For relays, routers and echoes that
   * pass bytes on with {@link FramedClient.sendRaw}.
   */
  onRawFrame?: ClientRawFrameHandler<M>;
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
  /**
   * The most frame types, besides those registered or reserved, that
   * `frameCounts()` counts under a type of their own; frames of further
   * types are counted together as `'other'`. It bounds the counters (and the
   * label set of a metric made from them) whatever types peers send. 0
   * counts every unregistered type as `'other'`. Default 64.
   */
  maxCountedTypes?: number;
}

/** Defaults of {@link FramingOptions}. */
export const FRAMING_DEFAULTS = {
  maxPendingMessages: 1024,
  maxPendingBytes: 8 * 1024 * 1024,
  maxMessagesPerTurn: 512,
  frameTimeoutMs: 30_000,
  preAuthMaxFrameLength: 65_536,
  copyThreshold: 1024,
  maxCountedTypes: 64,
} as const;

const MAX_MS = 2 ** 31 - 1;

/** The keys of {@link FramingOptions}, to tell them from an owner's other options. */
export const FRAMING_OPTION_KEYS = [
  'layout',
  'registry',
  'copy',
  'copyThreshold',
  'onMessage',
  'onRawFrame',
  'maxPendingMessages',
  'maxPendingBytes',
  'maxMessagesPerTurn',
  'frameTimeoutMs',
  'preAuthMaxFrameLength',
  'requireAuthentication',
  'maxCountedTypes',
] as const satisfies ReadonlyArray<keyof FramingOptions>;

/**
 * @internal The validated framing of one owner (see the module comment).
 * Built by a `FramedServer` or a `FramedConnector` from its options.
 */
export class Framing implements FramingConfig {
  /** The layout after authentication. */
  readonly layout: LtvLayout;
  /** The layout before authentication (the same fields, `preAuthMaxFrameLength`). */
  readonly preAuthLayout: LtvLayout;
  /** The registry, or null for raw frames. */
  readonly registry: MessageRegistry<MessageMap> | null;
  /** The encoder `send` writes with. */
  readonly encoder: LtvEncoder;
  /** See {@link FramingOptions.copy}. */
  readonly copy: boolean;
  /**
   * See {@link FramingOptions.requireAuthentication}. Settable until the first
   * byte of a client arrives: a client's limit is fixed when its first data
   * arrives.
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
  readonly _handler: ((client: AnyFramedClient, message: ReceivedMessage) => unknown) | null;
  readonly _frameHandler: ((client: AnyFramedClient, type: number, source: Buffer, start: number, end: number) => void) | null;
  /** The typed handlers by type id ({@link Framing.handle}), or null while there is none. */
  _handlers: Map<number, HandlerRoute> | null = null;
  /** The inbound hooks, or null while there is none. Replaced as a whole (never mutated). */
  _inboundHooks: readonly AnyInboundHook[] | null = null;
  /** The outbound hooks, or null while there is none. Replaced as a whole (never mutated). */
  _outboundHooks: readonly AnyOutboundHook[] | null = null;
  /**
   * The {@link FrameObserver}s, or null when there is none, so a framing
   * nobody observes pays one field check per frame. Replaced as a whole
   * (never mutated) when an observer is added or removed.
   */
  _frameObservers: readonly FrameObserver[] | null = null;
  /** The handlers of reserved frame types ({@link Framing.reserveType}), or null while none is reserved. */
  _reserved: Map<number, ReservedFrameHandler> | null = null;
  /** The decoder's strict type check (registered or reserved types), or null. */
  readonly _isKnownType: ((type: number) => boolean) | null;
  /** The count of frames in one turn at which a client asks the loop for a turn (an eighth of the budget, at least 1). */
  readonly _turnMark: number;
  /** The header bytes of a frame (`layout.headerBytes`), read once per frame. */
  readonly _headerBytes: number;
  /** Frames in and out by type ({@link Framing.frameCounts}). */
  readonly _counts: FrameCounts;
  /**
   * True while every message goes straight to `onMessage` as it is: an
   * `onMessage` handler, and no registry, typed handler, inbound hook,
   * reserved type or copy mode. A client then makes each message in its
   * read loop and calls the handler there (one field check per frame);
   * recomputed by every method that changes one of these tables, so a hook
   * added from a handler applies from the next frame on.
   */
  _direct = false;

  /**
   * Validates `options` (only the framing ones are read).
   *
   * @throws NetloopError `NETLOOP_INVALID_OPTION` for a bad option.
   */
  constructor(options: FramingOptions<MessageMap>, side: 'server' | 'connector') {
    if (typeof options !== 'object' || options === null) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'the framing options must be an object', { details: { option: 'options' } });
    }
    const layout = ltvLayout(options.layout ?? 'netloop');
    const registry = options.registry ?? null;
    if (registry !== null && !(registry instanceof MessageRegistry)) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'registry must be a MessageRegistry', {
        details: { option: 'registry' },
      });
    }
    if (options.onMessage !== undefined && typeof options.onMessage !== 'function') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'onMessage must be a function', {
        details: { option: 'onMessage' },
      });
    }
    if (options.onRawFrame !== undefined && typeof options.onRawFrame !== 'function') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'onRawFrame must be a function', {
        details: { option: 'onRawFrame' },
      });
    }
    if (options.onRawFrame !== undefined && options.onMessage !== undefined) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'give onMessage or onRawFrame, not both', {
        details: { option: 'onRawFrame' },
      });
    }
    if (options.copy !== undefined && typeof options.copy !== 'boolean') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'copy must be a boolean', { details: { option: 'copy' } });
    }
    const preAuthDefault =
      side === 'server' ? Math.min(FRAMING_DEFAULTS.preAuthMaxFrameLength, layout.maxFrameLength) : layout.maxFrameLength;
    const preAuth = checkInteger(
      'preAuthMaxFrameLength',
      options.preAuthMaxFrameLength ?? preAuthDefault,
      layout.headerBytes,
      layout.maxFrameLength,
    );
    this.layout = layout;
    this._headerBytes = layout.headerBytes;
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
    this.registry = registry as MessageRegistry<MessageMap> | null;
    this.encoder = new LtvEncoder({ layout, copyThreshold: options.copyThreshold ?? FRAMING_DEFAULTS.copyThreshold });
    this.copy = options.copy ?? false;
    if (options.requireAuthentication !== undefined && typeof options.requireAuthentication !== 'boolean') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'requireAuthentication must be a boolean', {
        details: { option: 'requireAuthentication' },
      });
    }
    this.requireAuthentication = options.requireAuthentication ?? options.preAuthMaxFrameLength !== undefined;
    this.maxPendingMessages = checkInteger(
      'maxPendingMessages',
      options.maxPendingMessages ?? FRAMING_DEFAULTS.maxPendingMessages,
      1,
      2 ** 31 - 1,
    );
    this.maxPendingBytes = checkInteger(
      'maxPendingBytes',
      options.maxPendingBytes ?? FRAMING_DEFAULTS.maxPendingBytes,
      1,
      2 ** 40,
    );
    this.maxMessagesPerTurn = checkInteger(
      'maxMessagesPerTurn',
      options.maxMessagesPerTurn ?? FRAMING_DEFAULTS.maxMessagesPerTurn,
      1,
      2 ** 31 - 1,
    );
    this._turnMark = Math.max(1, this.maxMessagesPerTurn >>> 3);
    this.frameTimeoutMs = checkNumber('frameTimeoutMs', options.frameTimeoutMs ?? FRAMING_DEFAULTS.frameTimeoutMs, 0, MAX_MS);
    this._handler = (options.onMessage as Framing['_handler'] | undefined) ?? null;
    this._frameHandler = (options.onRawFrame as Framing['_frameHandler'] | undefined) ?? null;
    const maxCounted = checkInteger('maxCountedTypes', options.maxCountedTypes ?? FRAMING_DEFAULTS.maxCountedTypes, 0, 65_536);
    this._counts = new FrameCounts(maxCounted, (type) => (registry !== null && registry.isKnownType(type)) || (this._reserved !== null && this._reserved.has(type)));
    this._isKnownType =
      registry !== null && registry.strict ? (type: number) => registry.isKnownType(type) || (this._reserved !== null && this._reserved.has(type)) : null;
    this.#refresh();
  }

  /** Recomputes {@link Framing._direct} after a table changed. */
  #refresh(): void {
    this._direct =
      this._handler !== null &&
      this._frameHandler === null &&
      this.registry === null &&
      !this.copy &&
      this._handlers === null &&
      this._inboundHooks === null &&
      this._reserved === null;
  }

  /**
   * Reserves frame type `type` for a protocol of its own: every frame of
   * that type goes to `handler` instead of the message path (see
   * {@link ReservedFrameHandler}), and `client.sendRaw(type, ...)` sends it
   * whatever the registry holds. Returns the function that gives it back.
   *
   * @throws NetloopError `NETLOOP_INVALID_OPTION` for a type the layout cannot
   *   carry or a handler that is not a function; `NETLOOP_DUPLICATE_TYPE` for
   *   a type the registry holds or already reserved.
   */
  reserveType(type: number, handler: ReservedFrameHandler): () => void {
    checkInteger('type', type, 0, this.layout.maxType);
    if (typeof handler !== 'function') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'a reserved type needs a handler function', { details: { option: 'handler' } });
    }
    const taken = this.registry?.get(type);
    if (taken !== undefined || this._reserved?.has(type) === true) {
      throw new NetloopError(ErrorCode.DUPLICATE_TYPE, `frame type ${type} is already ${taken !== undefined ? `registered as ${taken.name}` : 'reserved'}`, {
        details: { id: type },
      });
    }
    (this._reserved ??= new Map()).set(type, handler);
    this.#refresh();
    return () => {
      if (this._reserved === null || this._reserved.get(type) !== handler) return;
      this._reserved.delete(type);
      if (this._reserved.size === 0) this._reserved = null;
      this.#refresh();
    };
  }

  /**
   * Registers `handler` for the messages of the registered type `name` (see
   * `FramedServer.handle`).
   *
   * @throws NetloopError `NETLOOP_INVALID_OPTION` without a registry, with an
   *   `onRawFrame` handler (which takes every frame), or for a handler that is
   *   not a function; `NETLOOP_UNKNOWN_TYPE` for a name the registry does not
   *   hold; `NETLOOP_DUPLICATE_TYPE` when the type has a handler already.
   */
  handle(name: string, handler: AnyTypedHandler): void {
    const registry = this.registry;
    if (registry === null) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'handle() needs a message registry (the registry option)', { details: { option: 'registry' } });
    }
    if (this._frameHandler !== null) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'handle() cannot be used with onRawFrame, which takes every frame', {
        details: { option: 'onRawFrame' },
      });
    }
    if (typeof handler !== 'function') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'a message handler must be a function', { details: { option: 'handler' } });
    }
    if (typeof name !== 'string') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'handle() takes a registered message name', { details: { option: 'name' } });
    }
    const type = registry.resolve(name);
    if (this._handlers?.has(type.id) === true) {
      throw new NetloopError(ErrorCode.DUPLICATE_TYPE, `message ${name} has a handler already`, { details: { id: type.id, name } });
    }
    // A handler declared with one or two parameters cannot name the message:
    // it is called without one, and the message is never made (a rest
    // parameter declares none, so such a handler gets the message).
    const bare = handler.length === 1 || handler.length === 2;
    (this._handlers ??= new Map()).set(type.id, { type, fn: handler, bare, ranged: bare && hasRangeDecoding(type.serializer) });
    this.#refresh();
  }

  /** Removes the typed handler of `name` (its messages go to `onMessage` or `'message'` again); false when it had none. */
  unhandle(name: string): boolean {
    const type = this.registry?.get(name);
    if (type === undefined || this._handlers === null || !this._handlers.delete(type.id)) return false;
    if (this._handlers.size === 0) this._handlers = null;
    this.#refresh();
    return true;
  }

  /** Adds an inbound hook, after those there. */
  addInboundHook(hook: AnyInboundHook): void {
    this._inboundHooks = withHook(this._inboundHooks, hook, 'an inbound hook');
    this.#refresh();
  }

  /** Removes an inbound hook (the last one added, when added twice). */
  removeInboundHook(hook: AnyInboundHook): void {
    this._inboundHooks = withoutHook(this._inboundHooks, hook);
    this.#refresh();
  }

  /**
   * Hands a typed broadcast's frame to one receiver while outbound hooks are
   * registered (the owner's `_writeMessage`): the receiver's hooks see a
   * message of its own, and the shared frame is written unless they change
   * or drop it.
   */
  readonly _writeHooked = (client: LoopClient, message: TypedMessage, frame: Uint8Array): boolean => {
    const t = this.registry?.resolve(message.type);
    const out: Outgoing =
      t !== undefined ? { type: t.id, name: t.name, payload: message.payload } : { type: message.type as number, name: undefined, payload: message.payload };
    return (client as AnyFramedClient)._writeMessage(out, frame);
  };

  /** Adds an outbound hook, after those there. */
  addOutboundHook(hook: AnyOutboundHook): void {
    this._outboundHooks = withHook(this._outboundHooks, hook, 'an outbound hook');
  }

  /** Removes an outbound hook (the last one added, when added twice). */
  removeOutboundHook(hook: AnyOutboundHook): void {
    this._outboundHooks = withoutHook(this._outboundHooks, hook);
  }

  /**
   * Encodes one message into the bytes of one frame, with every check
   * `send` makes: through the registry (a type id or name), or, without
   * one, a numeric type id and a byte payload.
   *
   * @throws NetloopError `NETLOOP_UNKNOWN_TYPE`, `NETLOOP_INVALID_VALUE`, `NETLOOP_FRAME_TOO_LARGE`.
   */
  encodeMessage(ref: MessageTypeRef, payload: unknown): Buffer {
    return encodeMessage(this.encoder, this.registry, ref, payload);
  }

  /**
   * Frames received and sent by type since the framing was made (see
   * `FramedServer.frameCounts`): a list made at each call, from counters the
   * message path keeps without allocating.
   */
  frameCounts(): FrameCount[] {
    const registry = this.registry;
    return this._counts.list((type) => registry?.get(type)?.name);
  }

  /** Counts the frames of a typed broadcast queued to `n` receivers (see `LoopClientOwner._countBroadcast`). */
  readonly _countBroadcast = (message: TypedMessage, n: number): void => {
    const t = this.registry?.get(message.type);
    const type = t !== undefined ? t.id : message.type;
    if (typeof type === 'number') this._counts.sent(type, n);
  };

  /** Adds a frame observer (see {@link FrameObserver}). */
  addFrameObserver(observer: FrameObserver): void {
    this._frameObservers = withHook(this._frameObservers, observer, 'a frame observer');
  }

  /** Removes a frame observer (the last one added, when added twice). */
  removeFrameObserver(observer: FrameObserver): void {
    this._frameObservers = withoutHook(this._frameObservers, observer);
  }
}

/** A new list: `list` and `fn` after it. */
function withHook<F>(list: readonly F[] | null, fn: F, what: string): readonly F[] {
  if (typeof fn !== 'function') {
    throw new NetloopError(ErrorCode.INVALID_OPTION, `${what} must be a function`, { details: { option: 'hook' } });
  }
  return [...(list ?? []), fn];
}

/** A new list without the last `fn` of `list` (the same list when it holds none), or null when empty. */
function withoutHook<F>(list: readonly F[] | null, fn: F): readonly F[] | null {
  if (list === null) return null;
  const i = list.lastIndexOf(fn);
  if (i < 0) return list;
  const rest = list.filter((_, k) => k !== i);
  return rest.length === 0 ? null : rest;
}
