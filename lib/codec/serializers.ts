/**
 * Serializers turn a message payload into the bytes of a frame's value and
 * back. The built-in ones are made by three factories, each typed by its
 * payload: {@link raw} (bytes), {@link utf8} (text) and {@link json} (a JSON
 * value, typed `T` and checked on arrival by an optional type guard); a
 * user's own is any object with `encode` and `decode`.
 *
 * ```
 *   raw()                      Serializer<Buffer>   the value itself (a view of the received chunk)
 *   utf8()                     Serializer<string>   UTF-8 text
 *   json<T>({ validate? })     Serializer<T>        JSON text; validate(v) false ──▶ BAD_PAYLOAD
 * ```
 *
 * A serializer's `encode` throws (anything) on a payload it cannot encode and
 * its `decode` throws on bytes it cannot decode; the message registry turns
 * those into `NETLOOP_INVALID_VALUE` and `NETLOOP_BAD_PAYLOAD`.
 *
 * The bytes a serializer decodes come from a peer, so an error about them
 * says where and how long (the value's length, an offset when one is known,
 * the class of the failure), never what the peer sent: an error message ends
 * up in logs, and a peer must not be able to write into them. `JSON.parse`
 * quotes its input in its messages (`Unexpected token 'x', "x..." is not
 * valid JSON`), so the JSON serializer reports its failures in its own words.
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../core/errors.js';

/** Converts payloads of type `T` to bytes and back. */
export interface Serializer<T> {
  /** Bytes of `payload`; throws when `payload` has the wrong type. */
  encode(payload: T): Uint8Array;
  /**
   * The payload carried by `bytes`; throws when they are malformed. `bytes`
   * may be a view of a received chunk: keep a copy if the payload holds it.
   *
   * The message registry reports what this throws as `NETLOOP_BAD_PAYLOAD`.
   * A {@link NetloopError} thrown here is kept as its `cause`, as written:
   * give it a message and details free of the peer's bytes (offsets and
   * lengths). Any other error is kept only as its class name and stack
   * frames, because its message may quote the bytes (as `JSON.parse`'s do).
   */
  decode(bytes: Buffer): T;
}

/**
 * Names of the built-in serializers, accepted by `MessageRegistry.register`
 * in place of a serializer for compatibility: `'raw'` types the payload
 * `Buffer`, `'utf8'` `string` and `'json'` `unknown`.
 *
 * @deprecated Use the factories {@link raw}, {@link utf8} and {@link json}:
 *   `json<T>()` types the payload, and can check it on arrival.
 */
export type SerializerName = 'raw' | 'utf8' | 'json';

/** The payload type of a built-in serializer's name (see {@link SerializerName}). */
export type SerializerNamePayload<S extends SerializerName> = S extends 'raw' ? Buffer : S extends 'utf8' ? string : unknown;

/**
 * Raw bytes, unchanged. `decode` returns the value as handed out by the
 * decoder (a view of the received chunk unless the decoder copies).
 */
export const rawSerializer: Serializer<Buffer> = Object.freeze({
  encode(payload: Buffer): Uint8Array {
    if (!(payload instanceof Uint8Array)) {
      throw new NetloopError(ErrorCode.INVALID_VALUE, 'a raw payload must be a Buffer or Uint8Array', {
        details: { got: typeof payload },
      });
    }
    return payload;
  },
  decode(bytes: Buffer): Buffer {
    return bytes;
  },
});

/** UTF-8 text. Malformed bytes decode to U+FFFD, as `Buffer.toString` does. */
export const utf8Serializer: Serializer<string> & RangeDecoding<string> = Object.freeze({
  encode(payload: string): Uint8Array {
    if (typeof payload !== 'string') {
      throw new NetloopError(ErrorCode.INVALID_VALUE, 'a utf8 payload must be a string', {
        details: { got: typeof payload },
      });
    }
    return Buffer.from(payload, 'utf8');
  },
  decode(bytes: Buffer): string {
    return bytes.toString('utf8');
  },
  _decodeRange(source: Buffer, start: number, end: number): string {
    return source.toString('utf8', start, end);
  },
});

/**
 * JSON text in UTF-8. `encode` refuses what JSON cannot represent
 * (`undefined`, functions, symbols, BigInt, cycles).
 */
export const jsonSerializer: Serializer<unknown> & TextEncoding<unknown> & RangeDecoding<unknown> = Object.freeze({
  encode(payload: unknown): Uint8Array {
    return Buffer.from(jsonText(payload), 'utf8');
  },
  _encodeText(payload: unknown): string {
    return jsonText(payload);
  },
  /** @throws NetloopError BAD_PAYLOAD (`details.length`, `details.offset` when known) for text that is not JSON. */
  decode(bytes: Buffer): unknown {
    return parseJson(bytes.toString('utf8'), bytes.length);
  },
  _decodeRange(source: Buffer, start: number, end: number): unknown {
    return parseJson(source.toString('utf8', start, end), end - start);
  },
});

/** The value of the JSON `text` (`length` bytes of UTF-8), or BAD_PAYLOAD (see {@link jsonSerializer}'s `decode`). */
function parseJson(text: string, length: number): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    // The SyntaxError is dropped, not kept as the cause: its message quotes the text.
    throw jsonError(text, length, err);
  }
}

/**
 * A serializer whose payloads are text (the framing layer's fast path, not part of the package's face): `_encodeText` returns what
 * `encode` would return the UTF-8 bytes of, so a sender can encode the text
 * straight into a client's output buffer (no Buffer of the value in
 * between). It throws as `encode` does.
 */
export interface TextEncoding<T> {
  _encodeText(payload: T): string;
}

/**
 * A serializer that decodes a value where it lies (the framing layer's fast
 * path, not part of the package's face): `_decodeRange(source, start, end)`
 * returns what `decode` would return for `source[start, end)`, and throws
 * as it does, with no view of the range made first. Only for payloads that
 * hold no reference to the bytes (text, JSON): a serializer whose payload is
 * the bytes themselves (`raw()`) has none, and gets a view it may keep.
 */
export interface RangeDecoding<T> {
  _decodeRange(source: Buffer, start: number, end: number): T;
}

/** True when `serializer` decodes ranges itself (see {@link RangeDecoding}). */
export function hasRangeDecoding<T>(serializer: Serializer<T>): serializer is Serializer<T> & RangeDecoding<T> {
  return typeof (serializer as Partial<RangeDecoding<T>>)._decodeRange === 'function';
}

/** The JSON text of `payload`, or INVALID_VALUE for a payload JSON cannot carry. */
function jsonText(payload: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(payload);
  } catch (err) {
    throw new NetloopError(ErrorCode.INVALID_VALUE, `payload is not JSON-serializable: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (text === undefined) {
    throw new NetloopError(ErrorCode.INVALID_VALUE, 'payload is not JSON-serializable', {
      details: { got: typeof payload },
    });
  }
  return text;
}

/**
 * Where `JSON.parse` says it failed, from the end of its message only (`... in
 * JSON at position N`, `... after JSON at position N`, optionally followed by `(line L column C)`): anchored at
 * the end so that text quoted earlier in the message, which the peer wrote,
 * cannot pose as a position. `Unexpected end of JSON input` is at the end.
 */
const JSON_POSITION = /\bJSON at position (\d+)(?: \(line \d+ column \d+\))?$/;
const JSON_END = 'Unexpected end of JSON input';

/**
 * The BAD_PAYLOAD error for text that `JSON.parse` refused: the value's byte
 * length, the error's class, and the byte offset of the failure when the
 * parser gave its position (a character index, converted here to bytes of
 * the decoded text; malformed UTF-8 before it, which decodes to U+FFFD, can
 * shift it by a byte or two).
 */
function jsonError(text: string, length: number, err: unknown): NetloopError {
  const message = err instanceof Error ? err.message : '';
  let offset: number | undefined;
  const at = JSON_POSITION.exec(message);
  if (at !== null) {
    const position = Number(at[1]);
    if (position <= text.length) offset = Buffer.byteLength(text.slice(0, position), 'utf8');
  } else if (message === JSON_END) {
    offset = length;
  }
  const details: Record<string, unknown> = { serializer: 'json', length, error: err instanceof Error ? err.name : typeof err };
  if (offset !== undefined) details['offset'] = offset;
  const where = offset === undefined ? '' : ` (at byte ${offset})`;
  return new NetloopError(ErrorCode.BAD_PAYLOAD, `a value of ${length} bytes is not valid JSON${where}`, { details });
}

/** Options of {@link json}. */
export interface JsonSerializerOptions<T> {
  /**
   * A type guard every decoded value must pass: a value it refuses (returns
   * false for) is `NETLOOP_BAD_PAYLOAD`, as malformed JSON is, and reaches no
   * handler. A guard that throws counts as a refusal; its error is kept only
   * by its class name (its message may quote the value). Outbound payloads
   * are typed `T` at compile time and are not checked again.
   */
  validate?: (value: unknown) => value is T;
}

/**
 * UTF-8 text, unchanged (the payload is a `string`). Malformed bytes decode
 * to U+FFFD, as `Buffer.toString` does.
 *
 * ```ts
 * const registry = new MessageRegistry().register(1, 'Say', utf8());
 * ```
 */
export function utf8(): Serializer<string> {
  return utf8Serializer;
}

/**
 * Raw bytes: the payload is the frame's value (a `Buffer`, a view of the
 * received chunk unless the framing copies). Sent payloads may be any
 * `Uint8Array`.
 */
export function raw(): Serializer<Buffer> {
  return rawSerializer;
}

/**
 * JSON text in UTF-8, typed `T`. Without `validate` the type is the
 * application's promise about what its peers send; with it, every value
 * received is checked, and one that fails is `NETLOOP_BAD_PAYLOAD` (the
 * client is closed with `'protocol-error'`), its bytes never in the error.
 *
 * ```ts
 * interface Chat { text: string }
 * const isChat = (v: unknown): v is Chat => typeof v === 'object' && v !== null && typeof (v as Chat).text === 'string';
 * const registry = new MessageRegistry().register(2, 'Chat', json<Chat>({ validate: isChat }));
 * ```
 *
 * @throws NetloopError `NETLOOP_INVALID_OPTION` when `validate` is given and is not a function.
 */
export function json<T = unknown>(options: JsonSerializerOptions<T> = {}): Serializer<T> {
  if (typeof options !== 'object' || options === null) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'the json serializer options must be an object', { details: { option: 'options' } });
  }
  const validate = options.validate;
  if (validate === undefined) return jsonSerializer as Serializer<T>;
  if (typeof validate !== 'function') {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'validate must be a function', { details: { option: 'validate' } });
  }
  return Object.freeze({
    encode: jsonSerializer.encode as (payload: T) => Uint8Array,
    _encodeText: jsonSerializer._encodeText as (payload: T) => string,
    decode(bytes: Buffer): T {
      return checked(validate, parseJson(bytes.toString('utf8'), bytes.length), bytes.length);
    },
    _decodeRange(source: Buffer, start: number, end: number): T {
      return checked(validate, parseJson(source.toString('utf8', start, end), end - start), end - start);
    },
  });
}

/** `value` once `validate` accepts it, else the BAD_PAYLOAD error of a value of `length` bytes. */
function checked<T>(validate: (value: unknown) => value is T, value: unknown, length: number): T {
  const refusal = refusalOf(validate, value);
  // The guard accepted it: the value is a T.
  if (refusal === null) return value as T;
  throw invalidJson(length, refusal);
}

/**
 * Calls the guard: null when it accepts `value`; `'validate'` when it
 * returns anything but true; the class name of what it threw when it throws
 * (its message may quote the value, so it is not kept).
 */
function refusalOf(validate: (value: unknown) => boolean, value: unknown): string | null {
  try {
    return validate(value) === true ? null : 'validate';
  } catch (err) {
    return err instanceof Error ? String(err.name) : typeof err;
  }
}

/**
 * The BAD_PAYLOAD error for a JSON value its guard refused: the value's byte
 * length and what refused it (`'validate'`, or the class of what the guard
 * threw), never the value.
 */
function invalidJson(length: number, error: string): NetloopError {
  return new NetloopError(ErrorCode.BAD_PAYLOAD, `a JSON value of ${length} bytes failed validation`, {
    details: { serializer: 'json', length, error },
  });
}

/**
 * The built-in serializer of each name.
 *
 * @deprecated Use {@link raw}, {@link utf8} and {@link json}.
 */
export const SERIALIZERS: Readonly<Record<SerializerName, Serializer<never>>> = Object.freeze({
  raw: rawSerializer as Serializer<never>,
  utf8: utf8Serializer as Serializer<string> as Serializer<never>,
  json: jsonSerializer as Serializer<unknown> as Serializer<never>,
});

/** True when `value` has the shape of a {@link Serializer}. */
export function isSerializer(value: unknown): value is Serializer<unknown> {
  const s = value as Partial<Serializer<unknown>> | null;
  return typeof s === 'object' && s !== null && typeof s.encode === 'function' && typeof s.decode === 'function';
}
