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
 * cut across chunks is held as the pieces that have arrived, and the buffer
 * handed out is allocated at the value's exact length only once its last
 * byte is there (a header that declares 16 MiB and is followed by nothing
 * holds nothing). A piece is either
 * - a view of the chunk it arrived in, when the decoder may keep views of
 *   the chunks it is fed ({@link LtvDecoderOptions.retainChunks}) and the
 *   piece is large (at least {@link RETAIN_MIN} bytes and half its chunk, so a
 *   view keeps alive at most twice the bytes it holds); the bytes are copied
 *   once, into the value, when it completes;
 * - or a copy in a segment of the decoder's own: the first is at least
 *   {@link RESERVE_START} bytes, each next one as large as all the bytes
 *   copied into segments before it (capacities double, as Netty's
 *   cumulation buffer grows: `AbstractByteBufAllocator.calculateNewCapacity`),
 *   never past what the value still lacks. A segment is filled before any
 *   later piece is taken, so what is reserved is what arrived plus the room
 *   of one segment, which is no larger than what arrived or RESERVE_START;
 *   a byte is copied at most twice (into a segment, then into the value).
 *   A value no larger than RESERVE_START that arrives in small pieces fills
 *   one segment of its exact length, which is handed out as it is.
 *
 * Speed: frames that lie inside one chunk are handed out as views of it (no
 * copy); a frame that spans chunks is assembled as above, in O(n) copying.
 * The hot loop walks offsets with no closure and no object per frame.
 *
 * State (only the partial frame is held; an idle decoder holds no buffer):
 *
 * ```
 *   idle ──(chunk ends inside a header)──▶ headLen > 0: its bytes packed into two
 *     ▲                                    numbers (headLo: bytes 0-3, headHi: 4-7),
 *     │                                    no allocation
 *     │                                        │ header complete, checked
 *     │                                        ▼
 *     └──(last byte: one exact buffer)── pieces[], bodyFilled, bodyLength, bodyType
 *
 *   pieces while a value is assembled (bodyLength from the header, already checked):
 *
 *     0                                    bodyFilled            bodyLength
 *     ├─ view ──┼─ segment ─┼── view ──┼─ seg ──┤░░ room ░░┤· · · · · · ·┤
 *       (chunk)   (own, full)  (chunk)   (own: ownFilled of own.length)
 * ```
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../core/errors.js';
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
  /** The frame's type id (0 for a layout without a type field). */
  type: number;
  /** The frame's value: a view of the decoded bytes, or a copy with `copy: true`. */
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
   * Whether the decoder may keep views of the chunks it is fed after `feed()`
   * returns: true only if their producer never writes to a chunk once fed
   * (Node's `'data'` chunks qualify: each read gets a buffer of its own). A
   * value cut across chunks is then assembled from views of them and copied
   * once, when it completes; otherwise its bytes are copied into buffers of
   * the decoder's own as they arrive, and again into the value. Default: true
   * with `onFrame` unless `copy` is set (values are views of the chunks then,
   * which already asks that chunks are not reused), false otherwise.
   */
  retainChunks?: boolean;
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
 * The smallest segment, in bytes, the decoder copies the pieces of a cut
 * value into (less when the value lacks fewer bytes). A value up to this size
 * gets one segment at its exact length at once, as small messages are the
 * common case; later segments double. It bounds what a header and a few bytes
 * can make the decoder reserve: 100 clients that each send a header
 * declaring a huge frame and a byte hold 1.6 MiB between them.
 */
export const RESERVE_START = 16 * 1024;

/**
 * The smallest piece of a cut value kept as a view of its chunk (with
 * {@link LtvDecoderOptions.retainChunks}); smaller ones are copied, so that a
 * peer sending a byte per packet costs a few bytes each, not a view object.
 */
export const RETAIN_MIN = 4 * 1024;

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

/**
 * A streaming LTV frame decoder: feed it chunks as they arrive, in any sizes,
 * and it hands every complete frame, in order, to `onFrame` (a Buffer per
 * value) or `onRawFrame` (offsets into the chunk, no object per frame).
 *
 * A frame's length and type are checked from its header alone, before a byte
 * of its value is buffered; the first bad frame fails the decoder for good
 * (`feed()` throws the same coded error on every later call). Memory follows
 * the bytes received, never the length a header claims.
 *
 * ```ts
 * const decoder = new LtvDecoder({ layout: 'netloop', onFrame: (type, value) => handle(type, value) });
 * socket.on('data', (chunk) => decoder.feed(chunk));
 * ```
 */
export class LtvDecoder {
  /** The layout frames are read with. */
  readonly layout: LtvLayout;

  readonly #onFrame: FrameHandler | null;
  readonly #onRawFrame: RawFrameHandler | null;
  readonly #copy: boolean;
  readonly #retain: boolean;
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
   * A value cut by the end of a chunk (see the module comment): whether one
   * is started, its pieces in order (the first in a field, the others in an
   * array made only for them, so that a small frame cut in two allocates
   * nothing but its segment), how many of its bytes arrived, its length and
   * type. `#own` is the last piece when it is a segment of the decoder's own
   * with room left (`#ownFilled` of it used), else null; `#ownHeld` counts the
   * bytes copied into segments (it sizes the next one); `#reserved` the
   * segments' capacity plus the bytes of the views.
   */
  #inBody = false;
  #first: Buffer | null = null;
  #rest: Buffer[] | null = null;
  #bodyFilled = 0;
  #bodyLength = 0;
  #bodyType = 0;
  #own: Buffer | null = null;
  #ownFilled = 0;
  #ownHeld = 0;
  #reserved = 0;
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
    if (options.retainChunks !== undefined && typeof options.retainChunks !== 'boolean') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'retainChunks must be a boolean', { details: { option: 'retainChunks' } });
    }
    this.#retain = options.retainChunks ?? (onFrame !== null && !this.#copy);
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
    return this.#headLen !== 0 || this.#inBody;
  }

  /** Bytes of the partial frame held (0 when idle). */
  get bufferedBytes(): number {
    return this.#headLen !== 0 ? this.#headLen : this.#bodyFilled;
  }

  /**
   * Bytes of memory the partial frame keeps: the capacity of the decoder's
   * own segments plus the bytes it keeps views of (a view keeps its chunk
   * alive, which is at most twice the view). At least
   * {@link bufferedBytes}, and at most that plus the larger of
   * {@link bufferedBytes} and the first segment's size, 16 KiB (the room left in one
   * segment); 0 when idle, while only a cut header is held (its bytes take no
   * buffer), and after a header whose value has not started.
   */
  get reservedBytes(): number {
    return this.#reserved;
  }

  /** Drops any partial frame and clears a failure, as for a fresh stream. */
  reset(): void {
    this.#headLen = 0;
    this.#dropBody();
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
    if (this.#headLen !== 0 || this.#inBody) {
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
    const take = Math.min(this.#bodyLength - this.#bodyFilled, end);
    if (this.#bodyFilled + take < this.#bodyLength) {
      this.#hold(buf, 0, take);
      return -1;
    }
    this.#complete(buf, take);
    return take;
  }

  /**
   * Starts the value of a frame cut by the end of `buf` (`length` already
   * checked) with the bytes of it that `buf` holds, if any.
   */
  #startBody(type: number, buf: Buffer, start: number, length: number): void {
    this.#inBody = true;
    this.#bodyLength = length;
    this.#bodyType = type;
    if (start < buf.length) this.#hold(buf, start, buf.length);
  }

  /**
   * Adds `buf[start, end)`, bytes of the value that do not complete it, to its
   * pieces: into the room of the current segment first, then as a view of
   * `buf` if the rest may be kept so, else into a new segment.
   */
  #hold(buf: Buffer, start: number, end: number): void {
    this.#bodyFilled += end - start;
    const own = this.#own;
    if (own !== null) {
      const at = this.#ownFilled;
      const k = Math.min(own.length - at, end - start);
      copyBytes(buf, start, start + k, own, at);
      this.#ownFilled = at + k;
      this.#ownHeld += k;
      start += k;
      if (at + k === own.length) this.#own = null;
      if (start === end) return;
    }
    const n = end - start;
    if (this.#retain && n >= RETAIN_MIN && 2 * n >= buf.length) {
      this.#push(Buffer.from(buf.buffer, buf.byteOffset + start, n));
      this.#reserved += n;
      return;
    }
    // What the value lacks beyond these bytes bounds the segment: it never reaches past the value.
    const lacking = this.#bodyLength - this.#bodyFilled + n;
    const seg = this.#allocate(Math.min(lacking, Math.max(n, RESERVE_START, this.#ownHeld)));
    copyBytes(buf, start, end, seg, 0);
    this.#push(seg);
    this.#reserved += seg.length;
    this.#ownHeld += n;
    this.#ownFilled = n;
    this.#own = n < seg.length ? seg : null;
  }

  /** Appends a piece (see `#first`). */
  #push(piece: Buffer): void {
    if (this.#first === null) this.#first = piece;
    else if (this.#rest === null) this.#rest = [piece];
    else this.#rest.push(piece);
  }

  /**
   * Completes the value with `buf[0, take)`, its last bytes, and hands it out:
   * the one segment that already is the value, a view of `buf` when the value
   * has no earlier piece, or else one buffer of its exact length with every
   * piece copied in.
   */
  #complete(buf: Buffer, take: number): void {
    const first = this.#first;
    const rest = this.#rest;
    const length = this.#bodyLength;
    const type = this.#bodyType;
    if (first === null) {
      this.#dropBody();
      this.#deliver(type, buf, 0, take, false);
      return;
    }
    let value: Buffer;
    const own = this.#own;
    if (rest === null && own !== null && own.length === length) {
      // A small value that arrived in small pieces: its one segment is exactly the value.
      value = own;
      copyBytes(buf, 0, take, value, this.#ownFilled);
    } else {
      // Only the last piece can be a segment with room left (`own`); the others are full.
      value = this.#allocate(length);
      let at = 0;
      const count = rest === null ? 1 : rest.length + 1;
      for (let i = 0; i < count; i++) {
        const p = i === 0 ? first : rest![i - 1]!;
        const used = i === count - 1 && own !== null ? this.#ownFilled : p.length;
        copyBytes(p, 0, used, value, at);
        at += used;
      }
      copyBytes(buf, 0, take, value, at);
    }
    this.#dropBody();
    this.#deliver(type, value, 0, length, true);
  }

  /** Forgets the value being assembled (its pieces are left to the garbage collector). */
  #dropBody(): void {
    this.#inBody = false;
    this.#first = null;
    this.#rest = null;
    this.#bodyFilled = 0;
    this.#own = null;
    this.#ownFilled = 0;
    this.#ownHeld = 0;
    this.#reserved = 0;
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
    this.#dropBody();
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
