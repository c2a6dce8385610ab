/**
 * A pure, streaming LTV frame decoder: a state machine fed arbitrary chunks
 * (no socket, clock or file system) that hands out every complete frame, in
 * order, to a callback.
 *
 * Safety: a frame's declared length is checked against the layout's
 * `maxFrameLength` (and against the header bytes it must count) from the
 * header alone, before a byte of it is buffered; the type is checked against
 * `isKnownType` at the same point. Nothing is ever allocated from an untrusted
 * length that failed those checks, and every allocation goes through the
 * `allocate` seam so tests can observe its size. The first bad frame puts the
 * decoder in a failed state: `feed()` throws the coded error now and on every
 * later call, and the connection that owns it is expected to close.
 *
 * Memory follows the bytes received, not the bytes a header claims: a value
 * cut by the end of a chunk is assembled in a buffer that starts at
 * {@link RESERVE_START} bytes (or the bytes already at hand, if more) and
 * doubles as bytes arrive, never past the value's length, so a header that
 * declares 16 MiB and is followed by nothing reserves 16 KiB, not 16 MiB.
 * This is how Netty's cumulation buffer grows (`ByteToMessageDecoder`,
 * `AbstractByteBufAllocator.calculateNewCapacity`). Each growth copies the
 * bytes held so far; as capacities double, the bytes copied by all growths of
 * one value sum to less than its length, so assembling a value costs O(n)
 * copying. The last growth is clamped to the value's exact length, so the
 * buffer handed out is exactly the value, as before.
 *
 * Speed: frames that lie inside one chunk are handed out as views of it (no
 * copy); a frame that spans chunks is assembled into a buffer of its own
 * (above). The hot loop walks offsets with no closure and no object per frame.
 *
 * State (only the partial frame is held; an idle decoder holds no buffer):
 *
 * ```
 *   idle ──(chunk ends inside a header)──▶ headLen > 0: its bytes packed into two
 *     ▲                                    numbers (headLo: bytes 0-3, headHi: 4-7),
 *     │                                    no allocation
 *     │                                        │ header complete, checked
 *     │                                        ▼
 *     └──(value complete: emit)──────── body: Buffer(capacity), bodyFilled, bodyLength, bodyType
 *
 *   body while a value is assembled (bodyLength from the header, already checked):
 *
 *     0            bodyFilled        capacity = body.length          bodyLength
 *     ├── received ──┤─── reserved ───┤· · · · not reserved yet · · · · ┤
 *                    full: capacity := min(bodyLength, max(2 × capacity, needed))
 * ```
 *
 * @module
 */

import { ErrorCode, NetloopError } from './errors.js';
import { ltvLayout, readUint } from './ltv-layout.js';
import type { LtvLayout, LtvLayoutOptions, LtvPresetName } from './ltv-layout.js';

/**
 * Receives one decoded frame. `value` is a view of the received chunk (see
 * {@link LtvDecoderOptions.copy} for how long it stays valid) or, for a frame
 * that spanned chunks or in copy mode, a buffer of its own.
 */
export type FrameHandler = (type: number, value: Buffer) => void;

/**
 * The fast path: receives one decoded frame as `source[start, end)` without
 * creating a view. `source` is a received chunk or the frame's own buffer; it
 * is valid only during the call unless the caller knows the chunk is not reused.
 */
export type RawFrameHandler = (type: number, source: Buffer, start: number, end: number) => void;

/** One decoded frame, for the object form ({@link decodeFrames}). */
export interface LtvFrame {
  type: number;
  value: Buffer;
}

/** Options of {@link LtvDecoder}. Give exactly one of `onFrame` and `onRawFrame`. */
export interface LtvDecoderOptions {
  /** The frame layout: a preset name, options, or a built layout. Default: the `netloop` preset. */
  layout?: LtvLayout | LtvLayoutOptions | LtvPresetName;
  /** Receives each frame as `(type, value)`. */
  onFrame?: FrameHandler;
  /** Receives each frame as `(type, source, start, end)`, with no view created. */
  onRawFrame?: RawFrameHandler;
  /**
   * Copy mode. Default false: a value that lies inside one received chunk is
   * a view of that chunk, valid as long as the chunk's memory is not reused.
   * Node hands every `'data'` event a chunk of its own and never writes it
   * again, so such a view stays valid for as long as it is referenced; but it
   * keeps the whole chunk (up to 64 KiB) alive while it is. Set `copy: true`
   * when values are kept for long (a value that spanned chunks is always a
   * buffer of its own) or when the chunks fed are reused by their producer.
   * Ignored with `onRawFrame`.
   */
  copy?: boolean;
  /**
   * Strict type check: called with each frame's type as soon as its header is
   * read, before its value is buffered; false fails the decoder with
   * `NETLOOP_UNKNOWN_TYPE`. Default: every type is accepted.
   */
  isKnownType?: ((type: number) => boolean) | null;
  /**
   * The allocation seam: every buffer the decoder allocates comes from here,
   * with a size never above the layout's `maxFrameLength`. Default
   * `Buffer.allocUnsafe` (every byte is written before it is handed out).
   */
  allocate?: (size: number) => Buffer;
}

const defaultAllocate = (size: number): Buffer => Buffer.allocUnsafe(size);

/**
 * Where a header cut across chunks is reassembled to be parsed. One per
 * module is enough: it is filled and read within one synchronous call, with
 * no handler running in between.
 */
const SCRATCH = Buffer.alloc(8);

/**
 * The first reservation, in bytes, for a value cut by the end of a chunk
 * (less when the value is shorter; more when more of it is already at hand).
 * A value up to this size is reserved at its exact length at once, as small
 * messages are the common case; a larger one grows from here by doubling. It
 * bounds what a header alone can make the decoder reserve: 100 clients that
 * each send a header declaring a huge frame hold 1.6 MiB between them.
 */
export const RESERVE_START = 16 * 1024;

/** Below this many bytes a JS loop copies faster than `Buffer.copy`'s native call. */
const SMALL_COPY = 64;

/** Copies `src[start, end)` to `dst[at]`. */
function copyBytes(src: Buffer, start: number, end: number, dst: Buffer, at: number): void {
  if (end - start <= SMALL_COPY) {
    for (let i = start; i < end; i++) dst[at++] = src[i]!;
  } else {
    src.copy(dst, at, start, end);
  }
}

/** See the module comment. */
export class LtvDecoder {
  /** The layout frames are read with. */
  readonly layout: LtvLayout;

  readonly #onFrame: FrameHandler | null;
  readonly #onRawFrame: RawFrameHandler | null;
  readonly #copy: boolean;
  readonly #isKnownType: ((type: number) => boolean) | null;
  readonly #allocate: (size: number) => Buffer;
  // Hot-path copies of layout fields (private fields are faster than a nested read).
  readonly #headerBytes: number;
  readonly #lengthOffset: number;
  readonly #lengthBytes: number;
  readonly #typeOffset: number;
  readonly #typeBytes: number;
  readonly #le: boolean;
  readonly #adjustment: number;
  readonly #maxDeclared: number;

  /**
   * A header cut by the end of a chunk: how many of its bytes arrived, and
   * those bytes packed little-endian into two numbers (0 to 4 bytes each), so
   * that holding them allocates nothing.
   */
  #headLen = 0;
  #headLo = 0;
  #headHi = 0;
  /**
   * A value cut by the end of a chunk: its own buffer, whose capacity grows
   * toward `#bodyLength` as bytes arrive (see the module comment), and how
   * many of its bytes have arrived.
   */
  #body: Buffer | null = null;
  #bodyFilled = 0;
  #bodyLength = 0;
  #bodyType = 0;
  #error: NetloopError | null = null;

  constructor(options: LtvDecoderOptions) {
    const onFrame = options.onFrame ?? null;
    const onRawFrame = options.onRawFrame ?? null;
    if ((onFrame === null) === (onRawFrame === null)) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'LtvDecoder needs exactly one of onFrame and onRawFrame', {
        details: { option: 'onFrame' },
      });
    }
    for (const [name, fn] of [
      ['onFrame', onFrame],
      ['onRawFrame', onRawFrame],
      ['isKnownType', options.isKnownType ?? null],
      ['allocate', options.allocate ?? null],
    ] as const) {
      if (fn !== null && typeof fn !== 'function') {
        throw new NetloopError(ErrorCode.INVALID_OPTION, `${name} must be a function`, { details: { option: name } });
      }
    }
    const layout = ltvLayout(options.layout);
    this.layout = layout;
    this.#onFrame = onFrame;
    this.#onRawFrame = onRawFrame;
    this.#copy = options.copy === true;
    this.#isKnownType = options.isKnownType ?? null;
    this.#allocate = options.allocate ?? defaultAllocate;
    this.#headerBytes = layout.headerBytes;
    this.#lengthOffset = layout.lengthOffset;
    this.#lengthBytes = layout.lengthBytes;
    this.#typeOffset = layout.typeOffset;
    this.#typeBytes = layout.typeBytes;
    this.#le = layout.byteOrder === 'LE';
    this.#adjustment = layout.adjustment;
    this.#maxDeclared = layout.maxDeclared;
  }

  /** The error that failed the decoder, or null while it is healthy. */
  get error(): NetloopError | null {
    return this.#error;
  }

  /** True while a frame has been started but not completed (for a frame-completion deadline). */
  get inFrame(): boolean {
    return this.#headLen !== 0 || this.#body !== null;
  }

  /** Bytes of the partial frame held (0 when idle). */
  get bufferedBytes(): number {
    return this.#headLen !== 0 ? this.#headLen : this.#body !== null ? this.#bodyFilled : 0;
  }

  /**
   * Bytes of memory set aside for the partial frame: the capacity of the
   * buffer a value is assembled in, at least {@link bufferedBytes} and at most
   * twice it or {@link RESERVE_START}, whichever is larger (0 when idle or
   * while only a cut header is held, which takes no buffer).
   */
  get reservedBytes(): number {
    return this.#body !== null ? this.#body.length : 0;
  }

  /** Drops any partial frame and clears a failure, as for a fresh stream. */
  reset(): void {
    this.#headLen = 0;
    this.#body = null;
    this.#bodyFilled = 0;
    this.#error = null;
  }

  /**
   * Decodes `chunk`, calling the handler for every frame it completes, in
   * order. Frames before a bad one are delivered; then this throws.
   *
   * Never call `feed()` or `reset()` from inside a handler.
   *
   * @throws NetloopError FRAME_TOO_LARGE (`details.declared`, `details.frameLength`,
   *   `details.max`), FRAME_TOO_SHORT (`details.declared`, `details.min`),
   *   UNKNOWN_TYPE (`details.type`); HANDLER_ERROR (its `cause` the handler's
   *   exception) on later calls after a handler threw (the first throw
   *   propagates unchanged); INVALID_VALUE when `chunk` is not a Uint8Array.
   *   After any of them the decoder stays failed until {@link reset}.
   */
  feed(chunk: Buffer | Uint8Array): void {
    if (this.#error !== null) throw this.#error;
    let buf: Buffer;
    if (Buffer.isBuffer(chunk)) buf = chunk;
    else if (chunk instanceof Uint8Array) buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    else {
      throw new NetloopError(ErrorCode.INVALID_VALUE, 'LtvDecoder.feed() takes a Buffer or Uint8Array', {
        details: { got: typeof chunk },
      });
    }
    try {
      this.#decode(buf);
    } catch (err) {
      // A protocol error has already been recorded; anything else came from a
      // handler, and the rest of the chunk is lost, so the stream is out of sync.
      if (this.#error === null) {
        const message = 'a frame handler (or the allocator) threw; the decoder is out of sync';
        this.#fail(new NetloopError(ErrorCode.HANDLER_ERROR, message, { cause: err }));
      }
      throw err;
    }
  }

  #decode(buf: Buffer): void {
    const end = buf.length;
    let off = 0;
    if (this.#headLen !== 0 || this.#body !== null) {
      off = this.#resume(buf);
      if (off < 0) return;
    }
    const H = this.#headerBytes;
    const lenOff = this.#lengthOffset;
    const lenBytes = this.#lengthBytes;
    const typeOff = this.#typeOffset;
    const typeBytes = this.#typeBytes;
    const le = this.#le;
    const adj = this.#adjustment;
    const maxDeclared = this.#maxDeclared;
    const isKnownType = this.#isKnownType;
    const raw = this.#onRawFrame;
    const onFrame = this.#onFrame;
    const copy = this.#copy;
    // Views are made with Buffer.from(arrayBuffer, offset, length): measured
    // faster than buf.subarray(), which looks up a species constructor.
    const ab = buf.buffer;
    const base = buf.byteOffset;
    while (end - off >= H) {
      const declared = readUint(buf, off + lenOff, lenBytes, le);
      const type = typeBytes === 0 ? 0 : readUint(buf, off + typeOff, typeBytes, le);
      if (declared > maxDeclared || declared < adj) throw this.#headerError(declared);
      if (isKnownType !== null && !isKnownType(type)) throw this.#typeError(type);
      const start = off + H;
      const stop = start + declared - adj;
      if (stop > end) {
        this.#startBody(type, buf, start, stop - start);
        return;
      }
      off = stop;
      if (raw !== null) raw(type, buf, start, stop);
      else if (copy) onFrame!(type, this.#copyOf(buf, start, stop));
      else onFrame!(type, Buffer.from(ab, base + start, stop - start));
    }
    if (off < end) this.#holdHead(buf, off, end);
  }

  /** Keeps the start of a cut header, `buf[start, end)` (fewer than `headerBytes` bytes). */
  #holdHead(buf: Buffer | Uint8Array, start: number, end: number): void {
    let lo = 0;
    let hi = 0;
    for (let i = start, k = 0; i < end; i++, k++) {
      if (k < 4) lo += buf[i]! * 2 ** (8 * k);
      else hi += buf[i]! * 2 ** (8 * (k - 4));
    }
    this.#headLo = lo;
    this.#headHi = hi;
    this.#headLen = end - start;
  }

  /**
   * Continues a partial frame with the start of `buf`. Returns the offset
   * where whole frames resume, or -1 when `buf` was used up.
   */
  #resume(buf: Buffer): number {
    const end = buf.length;
    let off = 0;
    const held = this.#headLen;
    if (held !== 0) {
      const H = this.#headerBytes;
      const head = SCRATCH;
      for (let k = 0; k < held; k++) {
        head[k] = k < 4 ? Math.floor(this.#headLo / 2 ** (8 * k)) & 0xff : Math.floor(this.#headHi / 2 ** (8 * (k - 4))) & 0xff;
      }
      const take = Math.min(H - held, end);
      for (let i = 0; i < take; i++) head[held + i] = buf[i]!;
      off = take;
      if (held + take < H) {
        this.#holdHead(head, 0, held + take);
        return -1;
      }
      this.#headLen = 0;
      const le = this.#le;
      const declared = readUint(head, this.#lengthOffset, this.#lengthBytes, le);
      const type = this.#typeBytes === 0 ? 0 : readUint(head, this.#typeOffset, this.#typeBytes, le);
      if (declared > this.#maxDeclared || declared < this.#adjustment) throw this.#headerError(declared);
      if (this.#isKnownType !== null && !this.#isKnownType(type)) throw this.#typeError(type);
      const length = declared - this.#adjustment;
      if (end - off < length) {
        this.#startBody(type, buf, off, length);
        return -1;
      }
      // The whole value lies in this chunk: hand out a view, as in the hot loop.
      this.#deliver(type, buf, off, off + length, false);
      return off + length;
    }
    const length = this.#bodyLength;
    const filled = this.#bodyFilled;
    const take = Math.min(length - filled, end);
    let body = this.#body!;
    if (filled + take > body.length) body = this.#grow(body, filled, filled + take);
    copyBytes(buf, 0, take, body, filled);
    this.#bodyFilled = filled + take;
    if (filled + take < length) return -1;
    // Complete: the last growth was clamped to `length`, so `body` is exactly the value.
    this.#body = null;
    this.#bodyFilled = 0;
    this.#deliver(this.#bodyType, body, 0, length, true);
    return take;
  }

  /**
   * Starts the value of a frame cut by the end of `buf` (`length` already
   * checked): reserves what is at hand or {@link RESERVE_START}, whichever is
   * larger, never more than `length`, and copies the value's first bytes.
   */
  #startBody(type: number, buf: Buffer, start: number, length: number): void {
    const have = buf.length - start;
    const body = this.#allocate(Math.min(length, Math.max(have, RESERVE_START)));
    copyBytes(buf, start, buf.length, body, 0);
    this.#body = body;
    this.#bodyFilled = have;
    this.#bodyLength = length;
    this.#bodyType = type;
  }

  /**
   * Replaces the value's buffer with one of at least `needed` bytes: double
   * the capacity (or `needed`, if more), clamped to the value's length, with
   * the `filled` bytes held so far copied over.
   */
  #grow(body: Buffer, filled: number, needed: number): Buffer {
    const grown = this.#allocate(Math.min(this.#bodyLength, Math.max(2 * body.length, needed)));
    copyBytes(body, 0, filled, grown, 0);
    this.#body = grown;
    return grown;
  }

  #deliver(type: number, buf: Buffer, start: number, stop: number, owned: boolean): void {
    if (this.#onRawFrame !== null) this.#onRawFrame(type, buf, start, stop);
    else if (owned) this.#onFrame!(type, buf);
    else if (this.#copy) this.#onFrame!(type, this.#copyOf(buf, start, stop));
    else this.#onFrame!(type, Buffer.from(buf.buffer, buf.byteOffset + start, stop - start));
  }

  #copyOf(buf: Buffer, start: number, stop: number): Buffer {
    const out = this.#allocate(stop - start);
    copyBytes(buf, start, stop, out, 0);
    return out;
  }

  #fail(err: NetloopError): NetloopError {
    this.#error = err;
    this.#headLen = 0;
    this.#body = null;
    this.#bodyFilled = 0;
    return err;
  }

  #headerError(declared: number): NetloopError {
    const { headerBytes, adjustment, maxFrameLength } = this.layout;
    if (declared < adjustment) {
      return this.#fail(
        new NetloopError(
          ErrorCode.FRAME_TOO_SHORT,
          `declared frame length ${declared} is below the ${adjustment} header bytes it must count`,
          { details: { declared, min: adjustment } },
        ),
      );
    }
    const frameLength = declared - adjustment + headerBytes;
    return this.#fail(
      new NetloopError(
        ErrorCode.FRAME_TOO_LARGE,
        `declared frame of ${frameLength} bytes exceeds maxFrameLength ${maxFrameLength}`,
        { details: { declared, frameLength, max: maxFrameLength } },
      ),
    );
  }

  #typeError(type: number): NetloopError {
    return this.#fail(new NetloopError(ErrorCode.UNKNOWN_TYPE, `unknown message type ${type}`, { details: { type } }));
  }
}

/**
 * Decodes a complete byte string into frames (the object form, for tests and
 * tools). Values are views of `bytes` unless `options.copy`. A trailing
 * partial frame is ignored; see {@link LtvDecoder.inFrame} to detect one.
 *
 * @throws NetloopError as {@link LtvDecoder.feed}.
 */
export function decodeFrames(
  bytes: Buffer | Uint8Array,
  options: Omit<LtvDecoderOptions, 'onFrame' | 'onRawFrame'> = {},
): LtvFrame[] {
  const frames: LtvFrame[] = [];
  const decoder = new LtvDecoder({ ...options, onFrame: (type, value) => frames.push({ type, value }) });
  decoder.feed(bytes);
  return frames;
}
