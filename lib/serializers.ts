/**
 * Serializers turn a message payload into the bytes of a frame's value and
 * back. The built-in ones cover raw bytes, UTF-8 text and JSON; a user's own
 * is any object with `encode` and `decode`.
 *
 * A serializer's `encode` throws (anything) on a payload it cannot encode and
 * its `decode` throws on bytes it cannot decode; the message registry turns
 * those into `NETLOOP_INVALID_VALUE` and `NETLOOP_BAD_PAYLOAD`.
 *
 * @module
 */

import { ErrorCode, NetloopError } from './errors.js';

/** Converts payloads of type `T` to bytes and back. */
export interface Serializer<T> {
  /** Bytes of `payload`; throws when `payload` has the wrong type. */
  encode(payload: T): Uint8Array;
  /**
   * The payload carried by `bytes`; throws when they are malformed. `bytes`
   * may be a view of a received chunk: keep a copy if the payload holds it.
   */
  decode(bytes: Buffer): T;
}

/** Names of the built-in serializers. */
export type SerializerName = 'raw' | 'utf8' | 'json';

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
export const utf8Serializer: Serializer<string> = Object.freeze({
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
});

/**
 * JSON text in UTF-8. `encode` refuses what JSON cannot represent
 * (`undefined`, functions, symbols, BigInt, cycles).
 */
export const jsonSerializer: Serializer<unknown> = Object.freeze({
  encode(payload: unknown): Uint8Array {
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
    return Buffer.from(text, 'utf8');
  },
  decode(bytes: Buffer): unknown {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  },
});

/** The built-in serializer of each name. */
export const SERIALIZERS: Readonly<Record<SerializerName, Serializer<never>>> = Object.freeze({
  raw: rawSerializer as Serializer<never>,
  utf8: utf8Serializer as Serializer<never>,
  json: jsonSerializer as Serializer<never>,
});

/** True when `value` has the shape of a {@link Serializer}. */
export function isSerializer(value: unknown): value is Serializer<unknown> {
  const s = value as Partial<Serializer<unknown>> | null;
  return typeof s === 'object' && s !== null && typeof s.encode === 'function' && typeof s.decode === 'function';
}
