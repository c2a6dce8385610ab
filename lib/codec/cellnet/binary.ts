/**
 * The pieces of cellnet's `binary` codec (goobjfmt) needed to talk to its
 * examples: fields written one after another, little-endian, with no tags.
 *
 * ```
 *   intN / uintN   N/8 bytes, little-endian (two's complement when signed)
 *   bool           1 byte, 0 or 1
 *   float32/64     IEEE 754, little-endian
 *   string, bytes  uint16 LE length · that many bytes (UTF-8 for a string)
 * ```
 *
 * goobjfmt writes a longer string with a silently wrapped 16-bit length;
 * {@link CellnetBinaryWriter} refuses it with `NETLOOP_INVALID_VALUE`, and
 * {@link CellnetBinaryReader} reports missing or trailing bytes as
 * `NETLOOP_BAD_PAYLOAD` instead of reading past the value.
 *
 * The chat example's messages come ready-made: {@link cellnetChatREQ} and
 * {@link cellnetChatACK}, registered under {@link CELLNET_CHAT_NAMES}.
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../../core/errors.js';
import type { Serializer } from '../serializers.js';

function badValue(message: string, details: Record<string, unknown>): NetloopError {
  return new NetloopError(ErrorCode.INVALID_VALUE, message, { details });
}

function checkInt(field: string, value: number, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw badValue(`${field} must be an integer in [${min}, ${max}], got ${String(value)}`, { field, min, max });
  }
}

function toBigInt(field: string, value: bigint | number, min: bigint, max: bigint): bigint {
  let big: bigint;
  if (typeof value === 'bigint') big = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) big = BigInt(value);
  else throw badValue(`${field} must be a bigint or a safe integer, got ${String(value)}`, { field });
  if (big < min || big > max) throw badValue(`${field} is out of range`, { field, min: String(min), max: String(max) });
  return big;
}

/**
 * Writes goobjfmt binary fields into a growing buffer. Each method appends one
 * field and returns the writer (calls chain); a value of the wrong type or out
 * of the field's range throws `NETLOOP_INVALID_VALUE` with nothing written.
 */
export class CellnetBinaryWriter {
  #buf: Buffer;
  #len = 0;

  /** `initialSize`: the first buffer's size in bytes (it doubles as needed). Default 64. */
  constructor(initialSize = 64) {
    this.#buf = Buffer.allocUnsafe(Math.max(8, Math.floor(initialSize)));
  }

  /**
   * Reserves `n` bytes and returns their offset. It may replace the buffer:
   * callers must read `this.#buf` only after calling it.
   */
  #room(n: number): number {
    if (this.#len + n > this.#buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#len + n));
      this.#buf.copy(grown, 0, 0, this.#len);
      this.#buf = grown;
    }
    const at = this.#len;
    this.#len += n;
    return at;
  }

  /** A Go `bool`: one byte, 1 for true, 0 for false. */
  bool(value: boolean): this {
    if (typeof value !== 'boolean') throw badValue('a bool field must be a boolean', { got: typeof value });
    const at = this.#room(1);
    this.#buf[at] = value ? 1 : 0;
    return this;
  }
  /** A Go `int8`: one byte, an integer in [-128, 127]. */
  int8(value: number): this {
    checkInt('int8', value, -0x80, 0x7f);
    const at = this.#room(1);
    this.#buf.writeInt8(value, at);
    return this;
  }
  /** A Go `uint8`: one byte, an integer in [0, 255]. */
  uint8(value: number): this {
    checkInt('uint8', value, 0, 0xff);
    const at = this.#room(1);
    this.#buf.writeUInt8(value, at);
    return this;
  }
  /** A Go `int16`: 2 bytes little-endian, an integer in [-32,768, 32,767]. */
  int16(value: number): this {
    checkInt('int16', value, -0x8000, 0x7fff);
    const at = this.#room(2);
    this.#buf.writeInt16LE(value, at);
    return this;
  }
  /** A Go `uint16`: 2 bytes little-endian, an integer in [0, 65,535]. */
  uint16(value: number): this {
    checkInt('uint16', value, 0, 0xffff);
    const at = this.#room(2);
    this.#buf.writeUInt16LE(value, at);
    return this;
  }
  /** A Go `int32`: 4 bytes little-endian, a 32-bit signed integer. */
  int32(value: number): this {
    checkInt('int32', value, -0x80000000, 0x7fffffff);
    const at = this.#room(4);
    this.#buf.writeInt32LE(value, at);
    return this;
  }
  /** A Go `uint32`: 4 bytes little-endian, a 32-bit unsigned integer. */
  uint32(value: number): this {
    checkInt('uint32', value, 0, 0xffffffff);
    const at = this.#room(4);
    this.#buf.writeUInt32LE(value, at);
    return this;
  }
  /** A Go `int64`: a bigint, or a number that is a safe integer. */
  int64(value: bigint | number): this {
    const big = toBigInt('int64', value, -(2n ** 63n), 2n ** 63n - 1n);
    const at = this.#room(8);
    this.#buf.writeBigInt64LE(big, at);
    return this;
  }
  /** A Go `uint64`: a bigint, or a number that is a safe integer. */
  uint64(value: bigint | number): this {
    const big = toBigInt('uint64', value, 0n, 2n ** 64n - 1n);
    const at = this.#room(8);
    this.#buf.writeBigUInt64LE(big, at);
    return this;
  }
  /** A Go `float32`: 4 bytes, IEEE 754 little-endian (the number rounded to single precision). */
  float32(value: number): this {
    if (typeof value !== 'number') throw badValue('a float32 field must be a number', { got: typeof value });
    const at = this.#room(4);
    this.#buf.writeFloatLE(value, at);
    return this;
  }
  /** A Go `float64`: 8 bytes, IEEE 754 little-endian. */
  float64(value: number): this {
    if (typeof value !== 'number') throw badValue('a float64 field must be a number', { got: typeof value });
    const at = this.#room(8);
    this.#buf.writeDoubleLE(value, at);
    return this;
  }
  /** A Go `string`: uint16 LE byte length, then its UTF-8 bytes (at most 65,535). */
  string(value: string): this {
    if (typeof value !== 'string') throw badValue('a string field must be a string', { got: typeof value });
    const length = Buffer.byteLength(value, 'utf8');
    if (length > 0xffff) throw badValue(`a string field is ${length} bytes; the binary codec holds at most 65535`, { length });
    const at = this.#room(2 + length);
    this.#buf.writeUInt16LE(length, at);
    this.#buf.write(value, at + 2, length, 'utf8');
    return this;
  }
  /** A Go `[]byte`: uint16 LE length, then the bytes (at most 65,535). */
  bytes(value: Uint8Array): this {
    if (!(value instanceof Uint8Array)) throw badValue('a bytes field must be a Uint8Array', { got: typeof value });
    if (value.length > 0xffff) {
      throw badValue(`a bytes field is ${value.length} bytes; the binary codec holds at most 65535`, { length: value.length });
    }
    const at = this.#room(2 + value.length);
    this.#buf.writeUInt16LE(value.length, at);
    this.#buf.set(value, at + 2);
    return this;
  }

  /** The bytes written so far, as a Buffer of their exact length (a view of the writer's buffer). */
  finish(): Buffer {
    return this.#buf.subarray(0, this.#len);
  }
}

/** Reads goobjfmt binary fields from a value, never past its end. */
export class CellnetBinaryReader {
  readonly #buf: Buffer;
  #off = 0;

  constructor(bytes: Uint8Array) {
    this.#buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Bytes not yet read. */
  get remaining(): number {
    return this.#buf.length - this.#off;
  }

  #take(n: number, field: string): number {
    if (this.#buf.length - this.#off < n) {
      throw new NetloopError(ErrorCode.BAD_PAYLOAD, `binary value ends inside a ${field} field`, {
        details: { field, offset: this.#off, need: n, have: this.#buf.length - this.#off },
      });
    }
    const at = this.#off;
    this.#off += n;
    return at;
  }

  /** A Go `bool`: one byte; any value but 0 reads as true. Throws `NETLOOP_BAD_PAYLOAD` when the value ends first. */
  bool(): boolean {
    return this.#buf[this.#take(1, 'bool')] !== 0;
  }
  /** A Go `int8`: one byte. Throws `NETLOOP_BAD_PAYLOAD` when the value ends first. */
  int8(): number {
    return this.#buf.readInt8(this.#take(1, 'int8'));
  }
  /** A Go `uint8`: one byte. Throws `NETLOOP_BAD_PAYLOAD` when the value ends first. */
  uint8(): number {
    return this.#buf.readUInt8(this.#take(1, 'uint8'));
  }
  /** A Go `int16`: 2 bytes little-endian. Throws `NETLOOP_BAD_PAYLOAD` when the value ends first. */
  int16(): number {
    return this.#buf.readInt16LE(this.#take(2, 'int16'));
  }
  /** A Go `uint16`: 2 bytes little-endian. Throws `NETLOOP_BAD_PAYLOAD` when the value ends first. */
  uint16(): number {
    return this.#buf.readUInt16LE(this.#take(2, 'uint16'));
  }
  /** A Go `int32`: 4 bytes little-endian. Throws `NETLOOP_BAD_PAYLOAD` when the value ends first. */
  int32(): number {
    return this.#buf.readInt32LE(this.#take(4, 'int32'));
  }
  /** A Go `uint32`: 4 bytes little-endian. Throws `NETLOOP_BAD_PAYLOAD` when the value ends first. */
  uint32(): number {
    return this.#buf.readUInt32LE(this.#take(4, 'uint32'));
  }
  /** A Go `int64`: 8 bytes little-endian, as a bigint. Throws `NETLOOP_BAD_PAYLOAD` when the value ends first. */
  int64(): bigint {
    return this.#buf.readBigInt64LE(this.#take(8, 'int64'));
  }
  /** A Go `uint64`: 8 bytes little-endian, as a bigint. Throws `NETLOOP_BAD_PAYLOAD` when the value ends first. */
  uint64(): bigint {
    return this.#buf.readBigUInt64LE(this.#take(8, 'uint64'));
  }
  /** A Go `float32`: 4 bytes, IEEE 754 little-endian. Throws `NETLOOP_BAD_PAYLOAD` when the value ends first. */
  float32(): number {
    return this.#buf.readFloatLE(this.#take(4, 'float32'));
  }
  /** A Go `float64`: 8 bytes, IEEE 754 little-endian. Throws `NETLOOP_BAD_PAYLOAD` when the value ends first. */
  float64(): number {
    return this.#buf.readDoubleLE(this.#take(8, 'float64'));
  }
  /** A string; malformed UTF-8 decodes to U+FFFD. */
  string(): string {
    const length = this.#buf.readUInt16LE(this.#take(2, 'string'));
    const at = this.#take(length, 'string');
    return this.#buf.toString('utf8', at, at + length);
  }
  /** A `[]byte`, copied (it outlives the frame). */
  bytes(): Buffer {
    const length = this.#buf.readUInt16LE(this.#take(2, 'bytes'));
    const at = this.#take(length, 'bytes');
    return Buffer.from(this.#buf.subarray(at, at + length));
  }

  /** Checks every byte was read. @throws NetloopError BAD_PAYLOAD on trailing bytes. */
  end(): void {
    if (this.#off !== this.#buf.length) {
      throw new NetloopError(ErrorCode.BAD_PAYLOAD, `binary value has ${this.remaining} trailing bytes`, {
        details: { trailing: this.remaining },
      });
    }
  }
}

/** The full names of the chat example's messages; their ids are `cellnetStringHash(name)`. */
export const CELLNET_CHAT_NAMES = Object.freeze({
  /** The request a chat client sends: `proto.ChatREQ`. */
  REQ: 'proto.ChatREQ',
  /** The acknowledgement the server broadcasts: `proto.ChatACK`. */
  ACK: 'proto.ChatACK',
} as const);

/** cellnet's `proto.ChatREQ { Content string }`. */
export interface CellnetChatREQ {
  /** The line the user typed (cellnet's `Content`). */
  content: string;
}

/** cellnet's `proto.ChatACK { Content string; Id int64 }`. */
export interface CellnetChatACK {
  /** The chat line, as the request carried it (cellnet's `Content`). */
  content: string;
  /** The sender's connection id (cellnet's `Id`, an int64). */
  id: bigint;
}

function checkObject(value: unknown, name: string): asserts value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) throw badValue(`a ${name} payload must be an object`, { got: typeof value });
}

/** The binary serializer of {@link CellnetChatREQ}. */
export const cellnetChatREQ: Serializer<CellnetChatREQ> = Object.freeze({
  encode(payload: CellnetChatREQ): Uint8Array {
    checkObject(payload, 'ChatREQ');
    return new CellnetBinaryWriter().string(payload.content).finish();
  },
  decode(bytes: Buffer): CellnetChatREQ {
    const r = new CellnetBinaryReader(bytes);
    const content = r.string();
    r.end();
    return { content };
  },
});

/** The binary serializer of {@link CellnetChatACK} (`id` may be given as a safe integer). */
export const cellnetChatACK: Serializer<CellnetChatACK> = Object.freeze({
  encode(payload: CellnetChatACK): Uint8Array {
    checkObject(payload, 'ChatACK');
    return new CellnetBinaryWriter().string(payload.content).int64(payload.id).finish();
  },
  decode(bytes: Buffer): CellnetChatACK {
    const r = new CellnetBinaryReader(bytes);
    const content = r.string();
    const id = r.int64();
    r.end();
    return { content, id };
  },
});
