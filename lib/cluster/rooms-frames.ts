/**
 * The bytes of one broadcast as each server's clients take them: the
 * payload itself for raw servers, or a frame in the server's own layout for
 * a typed message, encoded once per server however many clients it reaches.
 *
 * @module
 */

import type { LtvEncoder } from '../codec/ltv-encoder.js';

/**
 * The bytes of one broadcast for each owner: the payload itself when raw;
 * for a typed message, one frame per owner (server), made on first need.
 *
 * ```
 *   last owner ─▶ last frame      (the common case: one server)
 *   more owners ─▶ Map<owner, frame | null>
 * ```
 */
export class Frames {
  readonly #encoderOf: (owner: object) => LtvEncoder | null;
  readonly #type: number;
  readonly #payload: Buffer;
  #lastOwner: object | null = null;
  #lastFrame: Buffer | null = null;
  #more: Map<object, Buffer | null> | null = null;

  constructor(encoderOf: (owner: object) => LtvEncoder | null, type: number, payload: Buffer) {
    this.#encoderOf = encoderOf;
    this.#type = type;
    this.#payload = payload;
  }

  /** The bytes for the clients of `owner`, or null when its layout cannot carry the frame (or it takes no frames). */
  of(owner: object): Buffer | null {
    if (this.#type < 0) return this.#payload;
    if (owner === this.#lastOwner) return this.#lastFrame;
    let frame = this.#more?.get(owner);
    if (frame === undefined) {
      const encoder = this.#encoderOf(owner);
      // A server whose layout cannot carry this frame (type range, size) is skipped, as a raw server is.
      frame = encoder === null ? null : safeEncode(encoder, this.#type, this.#payload);
      if (this.#lastOwner !== null) (this.#more ??= new Map([[this.#lastOwner, this.#lastFrame]])).set(owner, frame);
    }
    this.#lastOwner = owner;
    this.#lastFrame = frame;
    return frame;
  }
}

/** The frame of `value`, or null when the layout cannot carry it (type range, size). */
function safeEncode(encoder: LtvEncoder, type: number, value: Buffer): Buffer | null {
  try {
    return encoder.encode(type, value);
  } catch {
    return null;
  }
}
