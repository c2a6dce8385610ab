/**
 * The LTV frame encoder: writes a frame's header and value for a layout.
 *
 * Every method checks the whole frame first (the type fits the type field,
 * the value is bytes, the frame is within `maxFrameLength`) and throws a coded
 * error before anything is written or queued; cellnet's own send silently
 * wraps its 16-bit length instead, which corrupts the stream.
 *
 * Three ways to produce a frame:
 *
 * ```
 *   encode(type, value)            → one new Buffer [header|value]   (copies the value)
 *   encodeInto(target, off, ...)   → writes [header|value] into a buffer the caller owns
 *   encodeTo(sink, type, value)    → sink.appendToOutputBuffer(header), then (value)
 *                                     as two pieces when the value is large, so it is
 *                                     never copied by the encoder (one piece when small)
 * ```
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../core/errors.js';
import { checkInteger } from '../core/validate.js';
import { ltvLayout, writeUint } from './ltv-layout.js';
import type { LtvLayout, LtvLayoutOptions, LtvPresetName } from './ltv-layout.js';

/**
 * Where {@link LtvEncoder.encodeTo} queues a frame: anything with the shape of
 * a client's output buffer. `appendToOutputBuffer` returns false when it
 * refuses the bytes (nothing of them queued).
 */
export interface FrameSink {
  /**
   * Queues `data` (held by reference: the encoder never writes to it again);
   * true when queued, false when refused with nothing of it queued.
   */
  appendToOutputBuffer(data: Uint8Array): boolean;
}

/** Options of {@link LtvEncoder}. */
export interface LtvEncoderOptions {
  /** The frame layout: a preset name, options, or a built layout. Default: the `netloop` preset. */
  layout?: LtvLayout | LtvLayoutOptions | LtvPresetName;
  /**
   * Values up to this many bytes are copied behind their header into one
   * piece by {@link LtvEncoder.encodeTo} (one queue entry is cheaper than two
   * for small values); larger values are queued as they are, after a separate
   * header. Default 1024; 0 never copies.
   */
  copyThreshold?: number;
}

/**
 * Writes LTV frames for one layout: `encode` (one new Buffer), `encodeInto`
 * (into a buffer the caller owns) and `encodeTo` (queued into a client's
 * output buffer, a large value by reference, never copied). Every method
 * checks the whole frame first and throws a coded error with nothing written.
 */
export class LtvEncoder {
  /** The layout frames are written with. */
  readonly layout: LtvLayout;
  /** See {@link LtvEncoderOptions.copyThreshold}. */
  readonly copyThreshold: number;

  readonly #headerBytes: number;
  readonly #lengthOffset: number;
  readonly #lengthBytes: number;
  readonly #typeOffset: number;
  readonly #typeBytes: number;
  readonly #le: boolean;
  readonly #adjustment: number;
  readonly #maxValueLength: number;
  readonly #maxType: number;

  constructor(options: LtvEncoderOptions = {}) {
    const layout = ltvLayout(options.layout);
    this.layout = layout;
    this.copyThreshold = checkInteger('copyThreshold', options.copyThreshold ?? 1024, 0, 2 ** 31 - 1);
    this.#headerBytes = layout.headerBytes;
    this.#lengthOffset = layout.lengthOffset;
    this.#lengthBytes = layout.lengthBytes;
    this.#typeOffset = layout.typeOffset;
    this.#typeBytes = layout.typeBytes;
    this.#le = layout.byteOrder === 'LE';
    this.#adjustment = layout.adjustment;
    this.#maxValueLength = layout.maxValueLength;
    this.#maxType = layout.maxType;
  }

  /** The size of the frame carrying a value of `valueLength` bytes. */
  frameLength(valueLength: number): number {
    return this.#headerBytes + valueLength;
  }

  /**
   * Checks that `type` and `value` make a valid frame; returns the value's length.
   *
   * @throws NetloopError INVALID_VALUE (`value` is not a Uint8Array, or `type`
   *   is not an integer the type field holds; with no type field only 0 is
   *   accepted), FRAME_TOO_LARGE (`details.declared` is the frame size,
   *   `details.valueLength`, `details.max`).
   */
  check(type: number, value: Uint8Array): number {
    if (!(value instanceof Uint8Array)) {
      throw new NetloopError(ErrorCode.INVALID_VALUE, 'a frame value must be a Buffer or Uint8Array', {
        details: { got: value === null ? 'null' : typeof value },
      });
    }
    return this._checkLength(type, value.byteLength);
  }

  #checkType(type: number): void {
    if (typeof type !== 'number' || !Number.isInteger(type) || type < 0 || type > this.#maxType) {
      throw new NetloopError(
        ErrorCode.INVALID_VALUE,
        `message type must be an integer in [0, ${this.#maxType}], got ${String(type)}`,
        { details: { type: typeof type === 'number' ? type : String(type), max: this.#maxType } },
      );
    }
  }

  #checkSize(length: number): void {
    if (length > this.#maxValueLength) {
      const max = this.layout.maxFrameLength;
      throw new NetloopError(
        ErrorCode.FRAME_TOO_LARGE,
        `a frame of ${this.#headerBytes + length} bytes exceeds maxFrameLength ${max}`,
        { details: { declared: this.#headerBytes + length, valueLength: length, max } },
      );
    }
  }

  /** Writes the header of a checked frame at `target[off]`. */
  #writeHeader(target: Uint8Array, off: number, type: number, length: number): void {
    writeUint(target, off + this.#lengthOffset, this.#lengthBytes, this.#le, length + this.#adjustment);
    if (this.#typeBytes !== 0) writeUint(target, off + this.#typeOffset, this.#typeBytes, this.#le, type);
  }

  /**
   * Returns the header alone for a value of `valueLength` bytes, as a new
   * Buffer, for callers that queue the value themselves.
   *
   * @throws NetloopError as {@link check} (for a value of that length).
   */
  header(type: number, valueLength: number): Buffer {
    checkLength(valueLength);
    return this._headerChecked(type, this._checkLength(type, valueLength));
  }

  /**
   * @internal The header alone, as a new Buffer, for a frame that
   * {@link check} (or {@link _checkLength}) has accepted: no check is repeated.
   */
  _headerChecked(type: number, valueLength: number): Buffer {
    const out = Buffer.allocUnsafe(this.#headerBytes);
    this.#writeHeader(out, 0, type, valueLength);
    return out;
  }

  /**
   * Returns the whole frame as one new Buffer (the value is copied once).
   *
   * @throws NetloopError as {@link check}.
   */
  encode(type: number, value: Uint8Array): Buffer {
    const length = this.check(type, value);
    const out = Buffer.allocUnsafe(this.#headerBytes + length);
    this.#writeHeader(out, 0, type, length);
    out.set(value, this.#headerBytes);
    return out;
  }

  /**
   * Writes the whole frame into `target` at `offset` and returns the offset
   * just past it, so many frames can be coalesced into one buffer.
   *
   * @throws NetloopError as {@link check}; INVALID_VALUE when the frame does
   *   not fit in `target` (nothing written).
   */
  encodeInto(target: Uint8Array, offset: number, type: number, value: Uint8Array): number {
    const length = this.check(type, value);
    const end = offset + this.#headerBytes + length;
    if (!Number.isInteger(offset) || offset < 0 || end > target.length) {
      throw new NetloopError(ErrorCode.INVALID_VALUE, 'the frame does not fit in the target buffer', {
        details: { offset, frameLength: this.#headerBytes + length, targetLength: target.length },
      });
    }
    this.#writeHeader(target, offset, type, length);
    target.set(value, offset + this.#headerBytes);
    return end;
  }

  /**
   * @internal Checks the type and the size of a frame whose value has
   * `valueLength` bytes (a checked length, for a value given as a range);
   * returns the length. Throws as {@link check}.
   */
  _checkLength(type: number, valueLength: number): number {
    this.#checkType(type);
    this.#checkSize(valueLength);
    return valueLength;
  }

  /**
   * @internal Writes a frame whose value is the UTF-8 of `text` into
   * `target` at `offset`, and returns the frame's size: the text is encoded
   * straight behind its header, with no Buffer of the value in between, and
   * the header is written once the text's byte count is known. The caller
   * has made room for {@link frameLength}`(room)` bytes, where `room` is at
   * least the text's UTF-8 size (three bytes per UTF-16 unit always is), and
   * has checked the type and a value of `room` bytes with
   * {@link _checkLength}. The path of a JSON payload's in-place send.
   */
  _writeTextChecked(target: Buffer, offset: number, type: number, text: string, room: number): number {
    const length = target.write(text, offset + this.#headerBytes, room, 'utf8');
    this.#writeHeader(target, offset, type, length);
    return this.#headerBytes + length;
  }

  /**
   * @internal Writes a frame that {@link check} (or {@link _checkLength} for
   * `end - start`) has accepted into `target` at `offset`, which the caller
   * has sized to {@link frameLength}: no check is repeated. The value is
   * `value[start, end)`. Returns the frame's size. The path of a client's
   * in-place reply (`Client._appendFrame`).
   */
  _writeChecked(target: Uint8Array, offset: number, type: number, value: Uint8Array, start: number, end: number): number {
    const length = end - start;
    this.#writeHeader(target, offset, type, length);
    // A range is copied through a plain Uint8Array view: about half the cost
    // of Buffer#copy (whose argument handling dominates for small values).
    if (start === 0 && end === value.byteLength) target.set(value, offset + this.#headerBytes);
    else target.set(new Uint8Array(value.buffer, value.byteOffset + start, length), offset + this.#headerBytes);
    return this.#headerBytes + length;
  }

  /**
   * Queues the frame into `sink` (a client's output buffer): a value up to
   * `copyThreshold` bytes goes behind its header in one piece; a larger one is
   * queued as a separate piece, uncopied, after its header. Returns the
   * frame's size, or -1 when the sink refused the header (nothing queued).
   *
   * A large value is referenced, not copied, until it is written: do not
   * modify it after this call. If the sink accepts the header and refuses the
   * value (a client past its hard output limit), that sink is closing and
   * drops its queue; the frame is cut off and -1 is returned.
   *
   * @throws NetloopError as {@link check}, before anything is queued.
   */
  encodeTo(sink: FrameSink, type: number, value: Uint8Array): number {
    const length = this.check(type, value);
    const H = this.#headerBytes;
    if (length <= this.copyThreshold) {
      const out = Buffer.allocUnsafe(H + length);
      this.#writeHeader(out, 0, type, length);
      out.set(value, H);
      return sink.appendToOutputBuffer(out) ? H + length : -1;
    }
    if (!sink.appendToOutputBuffer(this._headerChecked(type, length))) return -1;
    return sink.appendToOutputBuffer(value) ? H + length : -1;
  }
}

function checkLength(valueLength: number): void {
  if (typeof valueLength !== 'number' || !Number.isSafeInteger(valueLength) || valueLength < 0) {
    throw new NetloopError(ErrorCode.INVALID_VALUE, `value length must be a non-negative integer, got ${String(valueLength)}`, {
      details: { valueLength: String(valueLength) },
    });
  }
}
