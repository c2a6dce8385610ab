/**
 * The byte layout of a Length-Type-Value frame, in the spirit of Netty's
 * `LengthFieldBasedFrameDecoder`, plus the presets for the formats real peers
 * speak (cellnet `tcp.ltv`, muduo `LengthHeaderCodec`, pomelo's package) and
 * netloop's own default.
 *
 * A frame is a fixed-size header followed by the value:
 *
 * ```
 *   fieldOrder 'length-type' (default)       fieldOrder 'type-length'
 *   +--------+------+-------------+          +------+--------+-------------+
 *   | length | type | value ...   |          | type | length | value ...   |
 *   +--------+------+-------------+          +------+--------+-------------+
 *   |<---- header ->|                        |<---- header ->|
 * ```
 *
 * `length` is an unsigned integer of `lengthBytes` bytes; `type` an unsigned
 * integer of `typeBytes` bytes (0 bytes: plain length-prefix framing, every
 * frame has type 0). Both use `byteOrder`. The length counts the value, plus
 * the type field when `lengthIncludesType`, plus the length field itself when
 * `lengthIncludesLength`. A layout is validated once and frozen; the decoder
 * and encoder read its derived fields (`headerBytes`, `adjustment`,
 * `maxDeclared`) on their hot paths.
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../core/errors.js';
import { checkInteger } from '../core/validate.js';

/** Byte order of the header fields. */
export type ByteOrder = 'BE' | 'LE';

/** Which header field comes first. */
export type FieldOrder = 'length-type' | 'type-length';

/** Names of the built-in layouts; see {@link LTV_PRESETS}. */
export type LtvPresetName = 'netloop' | 'cellnet' | 'muduo' | 'pomelo';

/** Options describing a layout. Every field is optional; see each default. */
export interface LtvLayoutOptions {
  /**
   * Start from a preset and override only the fields given here. Without a
   * preset, the defaults are those of the `netloop` preset.
   */
  preset?: LtvPresetName;
  /** Width of the length field in bytes: 1, 2, 3 or 4. Default 4. */
  lengthBytes?: 1 | 2 | 3 | 4;
  /** Width of the type field in bytes: 0 (no type), 1, 2 or 4. Default 2. */
  typeBytes?: 0 | 1 | 2 | 4;
  /** Byte order of both header fields. Default `'BE'`. */
  byteOrder?: ByteOrder;
  /** Which field comes first. Default `'length-type'`. */
  fieldOrder?: FieldOrder;
  /** The length counts the type field too (cellnet). Default false. */
  lengthIncludesType?: boolean;
  /** The length counts the length field itself too. Default false. */
  lengthIncludesLength?: boolean;
  /**
   * The largest frame accepted or produced, in bytes, header included (as in
   * Netty). Checked from the header alone, before anything is allocated or
   * queued. Default: 16 MiB, or less when the length field cannot express it
   * (the preset's own limit for cellnet and muduo).
   */
  maxFrameLength?: number;
}

/** A validated, frozen layout with the fields the codec derives from it. */
export interface LtvLayout {
  /** Width of the length field in bytes (see {@link LtvLayoutOptions.lengthBytes}). */
  readonly lengthBytes: 1 | 2 | 3 | 4;
  /** Width of the type field in bytes; 0 when frames carry no type (see {@link LtvLayoutOptions.typeBytes}). */
  readonly typeBytes: 0 | 1 | 2 | 4;
  /** Byte order of both header fields. */
  readonly byteOrder: ByteOrder;
  /** Which header field comes first. */
  readonly fieldOrder: FieldOrder;
  /** Whether the declared length counts the type field. */
  readonly lengthIncludesType: boolean;
  /** Whether the declared length counts the length field itself. */
  readonly lengthIncludesLength: boolean;
  /** The largest frame accepted or produced, header included, in bytes. */
  readonly maxFrameLength: number;
  /** `lengthBytes + typeBytes`. */
  readonly headerBytes: number;
  /** Offset of the length field inside the header. */
  readonly lengthOffset: number;
  /** Offset of the type field inside the header (meaningless when `typeBytes` is 0). */
  readonly typeOffset: number;
  /** Header bytes the length counts: a declared length below this is a corrupt frame. */
  readonly adjustment: number;
  /** The largest declared length accepted: `maxFrameLength - headerBytes + adjustment`. */
  readonly maxDeclared: number;
  /** The largest value accepted: `maxFrameLength - headerBytes`. */
  readonly maxValueLength: number;
  /** The largest type id the type field holds (0 when `typeBytes` is 0). */
  readonly maxType: number;
}

/** The default `maxFrameLength` when neither the preset nor the field width sets a lower one. */
export const DEFAULT_MAX_FRAME_LENGTH = 16 * 1024 * 1024;

/**
 * The built-in layouts.
 *
 * - `netloop`: `uint32 BE length` (value only) · `uint16 BE type` · value;
 *   frames up to 16 MiB by default (raise `maxFrameLength` up to 4 GiB + 5).
 * - `cellnet`: `uint16 LE length` (type + value) · `uint16 LE type` · value,
 *   exactly cellnet's `tcp.ltv`: values up to 65,533 bytes.
 * - `muduo`: `int32 BE length` · value (no type), muduo's `LengthHeaderCodec`,
 *   which refuses lengths above 65,536: so `maxFrameLength` is 65,540.
 * - `pomelo`: `uint8 type` · `uint24 BE length` · body, pomelo's package
 *   layout (without pomelo's eager allocation of the declared length).
 */
export const LTV_PRESETS: Readonly<Record<LtvPresetName, Readonly<Required<Omit<LtvLayoutOptions, 'preset'>>>>> =
  Object.freeze({
    netloop: Object.freeze({
      lengthBytes: 4,
      typeBytes: 2,
      byteOrder: 'BE',
      fieldOrder: 'length-type',
      lengthIncludesType: false,
      lengthIncludesLength: false,
      maxFrameLength: DEFAULT_MAX_FRAME_LENGTH,
    }),
    cellnet: Object.freeze({
      lengthBytes: 2,
      typeBytes: 2,
      byteOrder: 'LE',
      fieldOrder: 'length-type',
      lengthIncludesType: true,
      lengthIncludesLength: false,
      maxFrameLength: 2 + 0xffff,
    }),
    muduo: Object.freeze({
      lengthBytes: 4,
      typeBytes: 0,
      byteOrder: 'BE',
      fieldOrder: 'length-type',
      lengthIncludesType: false,
      lengthIncludesLength: false,
      maxFrameLength: 4 + 65536,
    }),
    pomelo: Object.freeze({
      lengthBytes: 3,
      typeBytes: 1,
      byteOrder: 'BE',
      fieldOrder: 'type-length',
      lengthIncludesType: false,
      lengthIncludesLength: false,
      maxFrameLength: 4 + 0xffffff,
    }),
  } as const);

function invalid(option: string, value: unknown, expected: string): NetloopError {
  return new NetloopError(ErrorCode.INVALID_OPTION, `${option} must be ${expected}, got ${String(value)}`, {
    details: { option, value },
  });
}

function pick<T>(option: string, value: T | undefined, fallback: T, allowed: readonly T[]): T {
  if (value === undefined) return fallback;
  if (!allowed.includes(value)) throw invalid(option, value, `one of ${allowed.map(String).join(', ')}`);
  return value;
}

/** True when `value` is a layout produced by {@link ltvLayout}. */
function isLayout(value: unknown): value is LtvLayout {
  return typeof value === 'object' && value !== null && LAYOUTS.has(value as LtvLayout);
}

/** Layouts built by {@link ltvLayout}, so one can be passed where options are expected. */
const LAYOUTS = new WeakSet<LtvLayout>();

/**
 * Validates layout options (or a preset name) and returns the frozen layout.
 * A layout already built is returned unchanged.
 *
 * ```ts
 * ltvLayout('cellnet');
 * ltvLayout({ preset: 'netloop', maxFrameLength: 1 << 20 });
 * ltvLayout({ lengthBytes: 2, typeBytes: 0, byteOrder: 'LE' });
 * ```
 *
 * @throws NetloopError INVALID_OPTION for an unknown preset, a width or order
 *   not listed, or a `maxFrameLength` below the header size or above what the
 *   length field can express.
 */
export function ltvLayout(options: LtvLayoutOptions | LtvPresetName | LtvLayout = {}): LtvLayout {
  if (isLayout(options)) return options;
  const opts: LtvLayoutOptions = typeof options === 'string' ? { preset: options } : options;
  if (typeof opts !== 'object' || opts === null) throw invalid('layout', opts, 'an object or a preset name');
  const presetName = opts.preset ?? 'netloop';
  if (!Object.prototype.hasOwnProperty.call(LTV_PRESETS, presetName)) {
    throw invalid('preset', presetName, `one of ${Object.keys(LTV_PRESETS).join(', ')}`);
  }
  const base = LTV_PRESETS[presetName];
  const lengthBytes = pick('lengthBytes', opts.lengthBytes, base.lengthBytes, [1, 2, 3, 4] as const);
  const typeBytes = pick('typeBytes', opts.typeBytes, base.typeBytes, [0, 1, 2, 4] as const);
  const byteOrder = pick('byteOrder', opts.byteOrder, base.byteOrder, ['BE', 'LE'] as const);
  const fieldOrder = pick('fieldOrder', opts.fieldOrder, base.fieldOrder, ['length-type', 'type-length'] as const);
  const lengthIncludesType = pick('lengthIncludesType', opts.lengthIncludesType, base.lengthIncludesType, [true, false]);
  const lengthIncludesLength = pick('lengthIncludesLength', opts.lengthIncludesLength, base.lengthIncludesLength, [
    true,
    false,
  ]);

  const headerBytes = lengthBytes + typeBytes;
  const adjustment = (lengthIncludesType ? typeBytes : 0) + (lengthIncludesLength ? lengthBytes : 0);
  // The largest frame the length field can express: the largest declared
  // length, minus the header bytes it counts, plus the whole header.
  const fieldMax = lengthBytes === 4 ? 0xffffffff : 2 ** (8 * lengthBytes) - 1;
  const capacity = fieldMax - adjustment + headerBytes;
  // A preset's own limit applies when it is the base; a custom layout gets the
  // general default, lowered to what its length field can express.
  const fallbackMax = Math.min(base.maxFrameLength, capacity);
  const maxFrameLength =
    opts.maxFrameLength === undefined
      ? fallbackMax
      : checkInteger('maxFrameLength', opts.maxFrameLength, headerBytes, capacity);

  const layout: LtvLayout = Object.freeze({
    lengthBytes,
    typeBytes,
    byteOrder,
    fieldOrder,
    lengthIncludesType,
    lengthIncludesLength,
    maxFrameLength,
    headerBytes,
    lengthOffset: fieldOrder === 'length-type' ? 0 : typeBytes,
    typeOffset: fieldOrder === 'length-type' ? lengthBytes : 0,
    adjustment,
    maxDeclared: maxFrameLength - headerBytes + adjustment,
    maxValueLength: maxFrameLength - headerBytes,
    maxType: typeBytes === 0 ? 0 : typeBytes === 4 ? 0xffffffff : 2 ** (8 * typeBytes) - 1,
  });
  LAYOUTS.add(layout);
  return layout;
}

/**
 * Reads an unsigned big- or little-endian integer of `width` bytes (0 to 4)
 * at `off`. Never negative: a 4-byte value with the high bit set is read as
 * 2^31 or more, not as a negative int32. The caller guarantees the bytes exist.
 */
export function readUint(buf: Uint8Array, off: number, width: number, le: boolean): number {
  switch (width) {
    case 1:
      return buf[off]!;
    case 2:
      return le ? buf[off]! | (buf[off + 1]! << 8) : (buf[off]! << 8) | buf[off + 1]!;
    case 3:
      return le
        ? buf[off]! | (buf[off + 1]! << 8) | (buf[off + 2]! << 16)
        : (buf[off]! << 16) | (buf[off + 1]! << 8) | buf[off + 2]!;
    case 4:
      // Multiplying the top byte keeps the result a positive double; a shift
      // by 24 would make it a negative int32.
      return le
        ? (buf[off]! | (buf[off + 1]! << 8) | (buf[off + 2]! << 16)) + buf[off + 3]! * 0x1000000
        : buf[off]! * 0x1000000 + ((buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!);
    default:
      return 0;
  }
}

/** Writes `value` (already range-checked to fit) as an unsigned integer of `width` bytes (0 to 4) at `off`. */
export function writeUint(buf: Uint8Array, off: number, width: number, le: boolean, value: number): void {
  // `>>>` reads the double as a uint32, exact for every value below 2^32.
  for (let i = 0; i < width; i++) {
    buf[le ? off + i : off + width - 1 - i] = (value >>> (8 * i)) & 0xff;
  }
}
