/**
 * The message registry: message types by numeric id (the frame's type field)
 * and by name, each with the serializer of its payload, and typed by what was
 * registered: each `register` returns the registry typed with one more entry
 * in its map of names to payload types, so that servers, connectors and
 * clients built with it take and hand out typed payloads.
 *
 * ```
 *   byId:   Map<id, MessageType>  ─┐
 *   byName: Map<name, MessageType> ┴─▶ { id, name, serializer }
 *
 *   new MessageRegistry()                        MessageRegistry<{}>
 *     .register(1, 'Login', json<Login>())       MessageRegistry<{ Login: Login }>
 *     .register(2, 'Chat', json<Chat>())         MessageRegistry<{ Login: Login; Chat: Chat }>
 * ```
 *
 * A duplicate id or name is refused at registration (`NETLOOP_DUPLICATE_TYPE`),
 * which is also how a collision of cellnet's 16-bit name hashes (its issue #42)
 * is caught before any message is misrouted. In strict mode (the default) a
 * frame of an unregistered type is an error (`NETLOOP_UNKNOWN_TYPE`); pass
 * {@link MessageRegistry.isKnownType} to the decoder so such a frame is
 * refused from its header, before its value is buffered.
 *
 * @module
 */

import { ErrorCode, NetloopError, isNetloopError } from '../core/errors.js';
import { checkInteger } from '../core/validate.js';
import type { FrameSink, LtvEncoder } from './ltv-encoder.js';
import { SERIALIZERS, isSerializer } from './serializers.js';
import type { RangeDecoding, Serializer, SerializerName, SerializerNamePayload, TextEncoding } from './serializers.js';
import { cellnetStringHash } from './cellnet/hash.js';

/**
 * Payload types by message name, as a registry's registrations add them up:
 * `{ Login: Login; Chat: Chat }` (an interface or a type literal).
 */
export type MessageMap = object;

/**
 * The registered names of a message map. A map with no names at all (the
 * `{}` of a registry whose registrations were not chained, or were made
 * where the compiler cannot follow them) names none at compile time: any
 * string is accepted then, with an `unknown` payload, and checked when sent.
 */
export type MessageName<M> = [keyof M] extends [never] ? string : keyof M & string;

/** The payload type of the message `N` of `M` (`unknown` for a name the map does not hold). */
export type PayloadOf<M, N> = N extends keyof M ? M[N] : unknown;

/** A registered message type. */
export interface MessageType<T = unknown, N extends string = string> {
  /** The numeric id carried in the frame's type field. */
  readonly id: number;
  /** The unique name. */
  readonly name: N;
  /** Converts payloads to and from the frame's value. */
  readonly serializer: Serializer<T>;
}

/** A decoded message. */
export interface DecodedMessage<T = unknown> {
  /** The type id read from the frame. */
  id: number;
  /** The registered type, or null for an unknown type in lenient mode. */
  type: MessageType<T> | null;
  /** The deserialized payload (the raw value for an unknown type in lenient mode). */
  payload: T;
}

/** Options of {@link MessageRegistry}. */
export interface MessageRegistryOptions {
  /** Unknown types are errors (`NETLOOP_UNKNOWN_TYPE`). Default true. */
  strict?: boolean;
  /**
   * The largest id accepted at registration: match the layout's type field
   * (`layout.maxType`). Default 0xffff (a 2-byte type field); at most 0xffffffff.
   */
  maxId?: number;
  /** The longest name accepted, in UTF-16 code units. Default 256. */
  maxNameLength?: number;
}

/** Anything that names a message type: its id, its name, or the type itself. */
export type MessageTypeRef<T = unknown> = number | string | MessageType<T>;

/**
 * A reference to a type of the registry typed `M` besides a name it holds:
 * an id or a {@link MessageType}, and any name when `M` names none at
 * compile time. (A typed registry's names go through the overloads that
 * type their payloads.)
 */
export type OtherRef<M, T = unknown> = number | MessageType<T> | (string extends MessageName<M> ? string : never);

/**
 * Message types by numeric id (the frame's type field) and by name, each with
 * the serializer of its payload. A duplicate id or name is refused at
 * registration (`NETLOOP_DUPLICATE_TYPE`, which also catches a collision of
 * cellnet's 16-bit name hashes); in strict mode a frame of an unregistered
 * type is `NETLOOP_UNKNOWN_TYPE`, refused from its header when
 * {@link MessageRegistry.isKnownType} is given to the decoder.
 *
 * `M` maps each registered name to its payload type. `register` returns the
 * registry itself typed with the new entry, so chain the registrations (or
 * keep the last result): the registry a server is given types its handlers,
 * its `'message'` event and every `send`.
 *
 * ```ts
 * const registry = new MessageRegistry()
 *   .register(1, 'Login', json<Login>())
 *   .register(2, 'Chat', json<Chat>({ validate: isChat }));
 * ```
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export class MessageRegistry<M extends MessageMap = {}> {
  /** See {@link MessageRegistryOptions.strict}. */
  readonly strict: boolean;
  /** See {@link MessageRegistryOptions.maxId}. */
  readonly maxId: number;
  /** See {@link MessageRegistryOptions.maxNameLength}. */
  readonly maxNameLength: number;
  readonly #byId = new Map<number, MessageType>();
  readonly #byName = new Map<string, MessageType>();
  /** The name {@link MessageRegistry._byName} found last, and its type (see there). */
  #lastName: string | null = null;
  #lastType: MessageType | undefined = undefined;

  /**
   * True when `id` is registered. A bound function: pass it as the decoder's
   * `isKnownType` so unknown types are refused from the header.
   */
  readonly isKnownType = (id: number): boolean => this.#byId.has(id);

  constructor(options: MessageRegistryOptions = {}) {
    if (options.strict !== undefined && typeof options.strict !== 'boolean') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'strict must be a boolean', { details: { option: 'strict' } });
    }
    this.strict = options.strict ?? true;
    this.maxId = checkInteger('maxId', options.maxId ?? 0xffff, 0, 0xffffffff);
    this.maxNameLength = checkInteger('maxNameLength', options.maxNameLength ?? 256, 1, 65536);
  }

  /** The number of registered types. */
  get size(): number {
    return this.#byId.size;
  }

  /** Every registered type, in registration order. */
  types(): IterableIterator<MessageType> {
    return this.#byId.values();
  }

  /**
   * Registers a message type and returns this registry, typed with the new
   * name and its payload type. `serializer` makes the payload type:
   * {@link json}`<T>()`, {@link utf8}`()`, {@link raw}`()` (the default), or a
   * user's own `{ encode, decode }`. (The names `'raw'`, `'utf8'` and `'json'`
   * are accepted too, for compatibility; `'json'` types the payload `unknown`.)
   *
   * @throws NetloopError DUPLICATE_TYPE when the id or the name is taken
   *   (`details.id`, `details.name`, `details.existing`); INVALID_OPTION for
   *   an id outside `[0, maxId]`, an empty or over-long name, or a bad serializer.
   */
  register<N extends string, T = Buffer>(id: number, name: N, serializer?: Serializer<T>): MessageRegistry<{ [K in keyof M | N]: K extends N ? T : K extends keyof M ? M[K] : never }>;
  /** @deprecated Give a serializer made by `raw()`, `utf8()` or `json<T>()`: the payload is then typed. */
  register<N extends string, S extends SerializerName>(id: number, name: N, serializer: S): MessageRegistry<{ [K in keyof M | N]: K extends N ? SerializerNamePayload<S> : K extends keyof M ? M[K] : never }>;
  // The new map is written out in the return types rather than through an
  // alias, so that editors show `MessageRegistry<{ Login: Login; Chat: Chat }>`.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  register(id: number, name: string, serializer: Serializer<unknown> | SerializerName = 'raw'): MessageRegistry<any> {
    this.#add(id, name, serializer);
    return this;
  }

  #add(id: number, name: string, serializer: Serializer<unknown> | SerializerName): MessageType {
    checkInteger('id', id, 0, this.maxId);
    if (typeof name !== 'string' || name.length === 0 || name.length > this.maxNameLength) {
      throw new NetloopError(
        ErrorCode.INVALID_OPTION,
        `name must be a non-empty string of at most ${this.maxNameLength} characters`,
        { details: { option: 'name', length: typeof name === 'string' ? name.length : null } },
      );
    }
    let ser: Serializer<unknown>;
    if (typeof serializer === 'string') {
      if (!Object.prototype.hasOwnProperty.call(SERIALIZERS, serializer)) {
        throw new NetloopError(ErrorCode.INVALID_OPTION, `unknown serializer ${serializer}`, {
          details: { option: 'serializer', value: serializer },
        });
      }
      ser = SERIALIZERS[serializer] as Serializer<unknown>;
    } else if (isSerializer(serializer)) {
      ser = serializer;
    } else {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'serializer must be a name or an object with encode and decode', {
        details: { option: 'serializer' },
      });
    }
    const byId = this.#byId.get(id);
    const byName = this.#byName.get(name);
    const clash = byId ?? byName;
    if (clash !== undefined) {
      throw new NetloopError(
        ErrorCode.DUPLICATE_TYPE,
        byId !== undefined
          ? `message id ${id} (${name}) is already registered as ${byId.name}`
          : `message name ${name} is already registered with id ${byName!.id}`,
        { details: { id, name, existing: { id: clash.id, name: clash.name } } },
      );
    }
    const type: MessageType = Object.freeze({ id, name, serializer: ser });
    this.#byId.set(id, type);
    this.#byName.set(name, type);
    return type;
  }

  /**
   * Registers a message type under cellnet's id for `name`
   * (`util.StringHash(name)`, e.g. `'proto.ChatREQ'`), so a cellnet peer's
   * messages are recognised, and returns this registry typed with it (as
   * {@link MessageRegistry.register}). A hash collision is a DUPLICATE_TYPE error.
   */
  registerCellnet<N extends string, T = Buffer>(name: N, serializer?: Serializer<T>): MessageRegistry<{ [K in keyof M | N]: K extends N ? T : K extends keyof M ? M[K] : never }>;
  /** @deprecated Give a serializer made by `raw()`, `utf8()` or `json<T>()`: the payload is then typed. */
  registerCellnet<N extends string, S extends SerializerName>(name: N, serializer: S): MessageRegistry<{ [K in keyof M | N]: K extends N ? SerializerNamePayload<S> : K extends keyof M ? M[K] : never }>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  registerCellnet(name: string, serializer: Serializer<unknown> | SerializerName = 'raw'): MessageRegistry<any> {
    if (typeof name !== 'string') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'name must be a string', { details: { option: 'name' } });
    }
    this.#add(cellnetStringHash(name), name, serializer);
    return this;
  }

  /** @internal The type with this id, or undefined (the framing's per-frame lookup). */
  _byId(id: number): MessageType | undefined {
    return this.#byId.get(id);
  }

  /**
   * @internal The type with this name, or undefined (the framing's per-send
   * lookup). The last name found is remembered: a sender usually sends the
   * same type many times in a row, and a string compared with an identical
   * literal is one pointer comparison where a map lookup is a hash probe.
   * Types are never removed, so a remembered name stays right.
   */
  _byName(name: string): MessageType | undefined {
    if (name === this.#lastName) return this.#lastType;
    const t = this.#byName.get(name);
    if (t !== undefined) {
      this.#lastName = name;
      this.#lastType = t;
    }
    return t;
  }

  /**
   * The type with this id or name (or the type itself, if registered here),
   * or undefined. Any name may be looked up, registered or not (a name
   * known only when running, say); a registered one is typed.
   */
  get<N extends MessageName<M>>(name: N): MessageType<PayloadOf<M, N>, N> | undefined;
  get<T = unknown>(ref: MessageTypeRef<T>): MessageType<T> | undefined;
  get<T = unknown>(ref: MessageTypeRef<T>): MessageType<T> | undefined {
    return this.#lookup(ref) as MessageType<T> | undefined;
  }

  /**
   * Like {@link get}, but an unregistered reference is an error. A typed
   * registry takes its registered names here (and ids and types); look a
   * name known only when running up with {@link get}.
   *
   * @throws NetloopError UNKNOWN_TYPE (`details.type`).
   */
  resolve<N extends MessageName<M>>(name: N): MessageType<PayloadOf<M, N>, N>;
  resolve<T = unknown>(ref: OtherRef<M, T>): MessageType<T>;
  resolve<T = unknown>(ref: MessageTypeRef<T>): MessageType<T> {
    return this.#resolve(ref) as MessageType<T>;
  }

  /**
   * Serializes `payload` for a registered type; returns its id and value bytes.
   *
   * @throws NetloopError UNKNOWN_TYPE for an unregistered type; INVALID_VALUE
   *   when the serializer refuses the payload (its error as `cause`) or
   *   returns something other than bytes.
   */
  encode<N extends MessageName<M>>(name: N, payload: PayloadOf<M, N>): EncodedMessage;
  encode<T>(ref: OtherRef<M, T>, payload: T): EncodedMessage;
  encode<T>(ref: MessageTypeRef<T>, payload: T): EncodedMessage {
    const type = this.#resolve(ref);
    return { id: type.id, value: serialize(type, payload) };
  }

  /**
   * Serializes `payload` and queues the frame into `sink` through `encoder`.
   * Every check (type, payload, frame size) runs before anything is queued.
   * Returns the frame size, or -1 when the sink refused it (see
   * {@link LtvEncoder.encodeTo}).
   *
   * @throws NetloopError as {@link encode} and {@link LtvEncoder.check}.
   */
  encodeTo<N extends MessageName<M>>(encoder: LtvEncoder, sink: FrameSink, name: N, payload: PayloadOf<M, N>): number;
  encodeTo<T>(encoder: LtvEncoder, sink: FrameSink, ref: OtherRef<M, T>, payload: T): number;
  encodeTo<T>(encoder: LtvEncoder, sink: FrameSink, ref: MessageTypeRef<T>, payload: T): number {
    const type = this.#resolve(ref);
    return encoder.encodeTo(sink, type.id, serialize(type, payload));
  }

  #lookup(ref: MessageTypeRef): MessageType | undefined {
    let found: MessageType | undefined;
    if (typeof ref === 'number') found = this.#byId.get(ref);
    else if (typeof ref === 'string') found = this.#byName.get(ref);
    else if (typeof ref === 'object' && ref !== null) found = this.#byId.get(ref.id);
    if (found === undefined || (typeof ref === 'object' && found !== ref)) return undefined;
    return found;
  }

  #resolve(ref: MessageTypeRef): MessageType {
    const found = this.#lookup(ref);
    if (found === undefined) {
      const shown = typeof ref === 'object' && ref !== null ? ref.name : ref;
      throw new NetloopError(ErrorCode.UNKNOWN_TYPE, `unknown message type ${String(shown)}`, {
        details: { type: typeof shown === 'number' || typeof shown === 'string' ? shown : String(shown) },
      });
    }
    return found;
  }

  /**
   * Deserializes a frame's value. An unknown id is an error in strict mode,
   * and comes back as `{ type: null, payload: value }` otherwise.
   *
   * @throws NetloopError UNKNOWN_TYPE (strict); BAD_PAYLOAD when the
   *   serializer throws (`details.type`, `details.id`, `details.length`,
   *   `details.error`, `details.offset` when known). The error never holds
   *   the value's bytes: a serializer's NetloopError is its `cause`, any other
   *   error only by its class name and stack frames (see {@link Serializer.decode}).
   */
  decode(id: number, value: Buffer): DecodedMessage {
    const type = this.#byId.get(id);
    if (type === undefined) {
      if (this.strict) {
        throw new NetloopError(ErrorCode.UNKNOWN_TYPE, `unknown message type ${id}`, { details: { type: id } });
      }
      return { id, type: null, payload: value };
    }
    return { id, type, payload: deserialize(type, value) };
  }
}

/** A payload serialized for its registered type (see {@link MessageRegistry.encode}). */
export interface EncodedMessage {
  /** The registered type id, for the frame's type field. */
  id: number;
  /** The serialized payload, the frame's value. */
  value: Uint8Array;
}

/**
 * @internal Serializes `payload` with its type's serializer: the bytes, or
 * INVALID_VALUE when the serializer refuses it (its error as `cause`) or
 * returns something other than bytes. The framing's send path calls it
 * directly, with the type it looked up.
 */
export function serialize<T>(type: MessageType<T>, payload: T): Uint8Array {
  let value: unknown;
  try {
    value = type.serializer.encode(payload);
  } catch (err) {
    if (isNetloopError(err, ErrorCode.INVALID_VALUE)) throw err;
    throw new NetloopError(ErrorCode.INVALID_VALUE, `payload of ${type.name} could not be serialized: ${errorMessage(err)}`, {
      cause: err,
      details: { type: type.name, id: type.id },
    });
  }
  if (!(value instanceof Uint8Array)) {
    throw new NetloopError(ErrorCode.INVALID_VALUE, `serializer of ${type.name} returned no bytes`, {
      details: { type: type.name, id: type.id },
    });
  }
  return value;
}

/**
 * @internal The payload as text, for a type whose serializer encodes text
 * (JSON): the sender then encodes it straight into the output buffer. Null
 * when the serializer has no text path (use {@link serialize}). Throws as
 * {@link serialize} does.
 */
export function serializeText<T>(type: MessageType<T>, payload: T): string | null {
  const encodeText = (type.serializer as Partial<TextEncoding<T>>)._encodeText;
  if (encodeText === undefined) return null;
  try {
    return encodeText(payload);
  } catch (err) {
    if (isNetloopError(err, ErrorCode.INVALID_VALUE)) throw err;
    throw new NetloopError(ErrorCode.INVALID_VALUE, `payload of ${type.name} could not be serialized: ${errorMessage(err)}`, {
      cause: err,
      details: { type: type.name, id: type.id },
    });
  }
}

/**
 * @internal Deserializes `value` with its type's serializer, or throws
 * BAD_PAYLOAD (see {@link MessageRegistry.decode}). The framing's dispatch
 * calls it directly, with the type it looked up.
 */
export function deserialize(type: MessageType, value: Buffer): unknown {
  try {
    return type.serializer.decode(value);
  } catch (err) {
    throw badPayload(type.name, type.id, value.length, err);
  }
}

/**
 * @internal Deserializes `source[start, end)` where it lies, for a type
 * whose serializer decodes ranges (see `RangeDecoding`; the caller checks),
 * or throws BAD_PAYLOAD as {@link deserialize} does: no view of the value
 * is made. The framing's dispatch calls it for a handler that takes the
 * payload alone.
 */
export function deserializeRange(type: MessageType, source: Buffer, start: number, end: number): unknown {
  try {
    return (type.serializer as Serializer<unknown> & RangeDecoding<unknown>)._decodeRange(source, start, end);
  } catch (err) {
    throw badPayload(type.name, type.id, end - start, err);
  }
}

/**
 * The BAD_PAYLOAD error for a value its serializer refused. It says which
 * type, how long, and (when the serializer's own NetloopError gave one) at
 * which offset; never what the peer sent. A NetloopError from the serializer
 * (the built-in ones and cellnet's binary reader throw these, in words of
 * their own) is kept as the cause. Any other error is replaced by
 * {@link withheldCause}: a parser's message may quote its input, and a
 * BAD_PAYLOAD error is logged by whoever closes the client.
 */
function badPayload(name: string, id: number, length: number, err: unknown): NetloopError {
  const inner = isNetloopError(err) ? err : null;
  // `error` names the failure's class: the one a serializer's NetloopError reports
  // (the JSON serializer's says SyntaxError), else the class of what was thrown.
  const reported = inner?.details['error'];
  const error = typeof reported === 'string' ? reported : err instanceof Error ? String(err.name) : typeof err;
  const details: Record<string, unknown> = { type: name, id, length, error };
  const offset = inner?.details['offset'];
  if (typeof offset === 'number') details['offset'] = offset;
  const where = typeof offset === 'number' ? ` at byte ${offset}` : '';
  return new NetloopError(ErrorCode.BAD_PAYLOAD, `payload of ${name} (type ${id}, ${length} bytes) could not be decoded${where}`, {
    cause: inner ?? withheldCause(err),
    details,
  });
}

/**
 * Stands in for an error whose message may quote the peer's bytes: an Error
 * naming its class, with its stack frames (where the serializer failed) but
 * not its message. The frames are kept only when the stack starts with the
 * `name: message` line V8 writes, which is cut off whole, however many lines
 * the message spans; otherwise the stand-in keeps its own stack.
 */
function withheldCause(err: unknown): Error {
  const name = err instanceof Error ? String(err.name) : typeof err;
  const out = new Error(`a ${name} from the serializer (its message is withheld: it may quote the peer's bytes)`);
  if (err instanceof Error && typeof err.stack === 'string') {
    const message = String(err.message);
    const head = message === '' ? name : `${name}: ${message}`;
    if (err.stack.startsWith(head)) out.stack = `Error: ${out.message}${err.stack.slice(head.length)}`;
  }
  return out;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
