/**
 * The message registry: message types by numeric id (the frame's type field)
 * and by name, each with the serializer of its payload.
 *
 * ```
 *   byId:   Map<id, MessageType>  ─┐
 *   byName: Map<name, MessageType> ┴─▶ { id, name, serializer }
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
import type { Serializer, SerializerName } from './serializers.js';
import { cellnetStringHash } from './cellnet/hash.js';

/** A registered message type. */
export interface MessageType<T = unknown> {
  /** The numeric id carried in the frame's type field. */
  readonly id: number;
  /** The unique name. */
  readonly name: string;
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
 * Message types by numeric id (the frame's type field) and by name, each with
 * the serializer of its payload. A duplicate id or name is refused at
 * registration (`NETLOOP_DUPLICATE_TYPE`, which also catches a collision of
 * cellnet's 16-bit name hashes); in strict mode a frame of an unregistered
 * type is `NETLOOP_UNKNOWN_TYPE`, refused from its header when
 * {@link MessageRegistry.isKnownType} is given to the decoder.
 */
export class MessageRegistry {
  /** See {@link MessageRegistryOptions.strict}. */
  readonly strict: boolean;
  /** See {@link MessageRegistryOptions.maxId}. */
  readonly maxId: number;
  /** See {@link MessageRegistryOptions.maxNameLength}. */
  readonly maxNameLength: number;
  readonly #byId = new Map<number, MessageType>();
  readonly #byName = new Map<string, MessageType>();

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
   * Registers a message type. `serializer` is a built-in name (`'raw'`, the
   * default; `'utf8'`; `'json'`) or a user's own `{ encode, decode }`.
   *
   * @throws NetloopError DUPLICATE_TYPE when the id or the name is taken
   *   (`details.id`, `details.name`, `details.existing`); INVALID_OPTION for
   *   an id outside `[0, maxId]`, an empty or over-long name, or a bad serializer.
   */
  register<T = Buffer>(id: number, name: string, serializer: Serializer<T> | SerializerName = 'raw'): MessageType<T> {
    checkInteger('id', id, 0, this.maxId);
    if (typeof name !== 'string' || name.length === 0 || name.length > this.maxNameLength) {
      throw new NetloopError(
        ErrorCode.INVALID_OPTION,
        `name must be a non-empty string of at most ${this.maxNameLength} characters`,
        { details: { option: 'name', length: typeof name === 'string' ? name.length : null } },
      );
    }
    let ser: Serializer<T>;
    if (typeof serializer === 'string') {
      if (!Object.prototype.hasOwnProperty.call(SERIALIZERS, serializer)) {
        throw new NetloopError(ErrorCode.INVALID_OPTION, `unknown serializer ${serializer}`, {
          details: { option: 'serializer', value: serializer },
        });
      }
      ser = SERIALIZERS[serializer] as Serializer<T>;
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
    const type: MessageType<T> = Object.freeze({ id, name, serializer: ser });
    this.#byId.set(id, type as MessageType);
    this.#byName.set(name, type as MessageType);
    return type;
  }

  /**
   * Registers a message type under cellnet's id for `name`
   * (`util.StringHash(name)`, e.g. `'proto.ChatREQ'`), so a cellnet peer's
   * messages are recognised. A hash collision is a DUPLICATE_TYPE error.
   */
  registerCellnet<T = Buffer>(name: string, serializer: Serializer<T> | SerializerName = 'raw'): MessageType<T> {
    if (typeof name !== 'string') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'name must be a string', { details: { option: 'name' } });
    }
    return this.register(cellnetStringHash(name), name, serializer);
  }

  /** The type with this id or name (or the type itself, if registered here), or undefined. */
  get<T = unknown>(ref: MessageTypeRef<T>): MessageType<T> | undefined {
    let found: MessageType | undefined;
    if (typeof ref === 'number') found = this.#byId.get(ref);
    else if (typeof ref === 'string') found = this.#byName.get(ref);
    else if (typeof ref === 'object' && ref !== null) found = this.#byId.get(ref.id);
    if (found === undefined || (typeof ref === 'object' && found !== ref)) return undefined;
    return found as MessageType<T>;
  }

  /**
   * Like {@link get}, but an unregistered reference is an error.
   *
   * @throws NetloopError UNKNOWN_TYPE (`details.type`).
   */
  resolve<T = unknown>(ref: MessageTypeRef<T>): MessageType<T> {
    const found = this.get(ref);
    if (found === undefined) {
      const shown = typeof ref === 'object' && ref !== null ? ref.name : ref;
      throw new NetloopError(ErrorCode.UNKNOWN_TYPE, `unknown message type ${String(shown)}`, {
        details: { type: typeof shown === 'number' || typeof shown === 'string' ? shown : String(shown) },
      });
    }
    return found;
  }

  /**
   * Serializes `payload` for a registered type; returns its id and value bytes.
   *
   * @throws NetloopError UNKNOWN_TYPE for an unregistered type; INVALID_VALUE
   *   when the serializer refuses the payload (its error as `cause`) or
   *   returns something other than bytes.
   */
  encode<T>(
    ref: MessageTypeRef<T>,
    payload: T,
  ): {
    /** The registered type id, for the frame's type field. */
    id: number;
    /** The serialized payload, the frame's value. */
    value: Uint8Array;
  } {
    const type = this.resolve(ref);
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
    return { id: type.id, value };
  }

  /**
   * Serializes `payload` and queues the frame into `sink` through `encoder`.
   * Every check (type, payload, frame size) runs before anything is queued.
   * Returns the frame size, or -1 when the sink refused it (see
   * {@link LtvEncoder.encodeTo}).
   *
   * @throws NetloopError as {@link encode} and {@link LtvEncoder.check}.
   */
  encodeTo<T>(encoder: LtvEncoder, sink: FrameSink, ref: MessageTypeRef<T>, payload: T): number {
    const { id, value } = this.encode(ref, payload);
    return encoder.encodeTo(sink, id, value);
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
    let payload: unknown;
    try {
      payload = type.serializer.decode(value);
    } catch (err) {
      throw badPayload(type.name, id, value.length, err);
    }
    return { id, type, payload };
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
