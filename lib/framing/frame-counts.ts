/**
 * Frames received and sent by one framed server or connector, by frame
 * type: the counters a metrics scrape reads (`owner.frameCounts()`). They
 * cost the message path one compare per frame while frames of one type
 * follow each other, one map lookup when the type changes, and no
 * allocation but a counter for each type's first frame; every list is made
 * when they are read.
 *
 * ```
 *   byType: Map<type id, TypeCount { type, received, sent }>
 *             every registered or reserved type seen, and at most
 *             `maxCountedTypes` other types (the first ones seen)
 *   other:  TypeCount { type: -1 }   frames of the other types past that bound
 *   lastIn, lastOut: the counter of the previous frame each way
 * ```
 *
 * The label set is bounded: the types an application registered or reserved
 * (its own choice), plus `maxCountedTypes` more, plus `other`. A peer sending
 * frames of ever new types (where the registry is lenient, or without one)
 * fills the bound once and is counted under `other` from then on.
 *
 * @module
 */

/** One frame type's counts, as {@link FrameCounts.list} reads them out. */
export interface FrameCount {
  /** The registered name; for a type the registry does not hold, its id in decimal; `'other'` for the types past the bound. */
  readonly name: string;
  /** The type id (-1 for `'other'`). */
  readonly type: number;
  /** Frames of this type decoded from peers. */
  readonly received: number;
  /** Frames of this type queued to peers. */
  readonly sent: number;
}

/** A type's mutable counter (one per counted type, made on its first frame). */
interface TypeCount {
  readonly type: number;
  received: number;
  sent: number;
}

/**
 * @internal The frame counters of one framing (see the module comment).
 */
export class FrameCounts {
  /** The most types with a counter of their own that are neither registered nor reserved. */
  readonly maxUnregistered: number;
  readonly #isRegistered: (type: number) => boolean;
  readonly #byType = new Map<number, TypeCount>();
  readonly #other: TypeCount = { type: -1, received: 0, sent: 0 };
  #lastIn: TypeCount = this.#other;
  #lastOut: TypeCount = this.#other;
  /** Counters made for types that are neither registered nor reserved. */
  #unregistered = 0;
  /** The loop's totals (`loop.stats().counters`), added to with every count; null until the owner sets them. */
  totals: { framesIn: number; framesOut: number } | null = null;

  /**
   * @param maxUnregistered the most types with a counter of their own that
   *   are neither registered nor reserved.
   * @param isRegistered whether a type was registered or reserved by the
   *   application (such a type always gets its own counter).
   */
  constructor(maxUnregistered: number, isRegistered: (type: number) => boolean) {
    this.maxUnregistered = maxUnregistered;
    this.#isRegistered = isRegistered;
  }

  /** Counts one frame of `type` decoded from a peer. */
  received(type: number): void {
    let c = this.#lastIn;
    if (c.type !== type) c = this.#lastIn = this.#counter(type);
    c.received++;
    if (this.totals !== null) this.totals.framesIn++;
  }

  /** Counts `n` frames of `type` queued to peers. */
  sent(type: number, n = 1): void {
    let c = this.#lastOut;
    if (c.type !== type) c = this.#lastOut = this.#counter(type);
    c.sent += n;
    if (this.totals !== null) this.totals.framesOut += n;
  }

  /** The counter of `type`: its own, made on first need while the bound allows, else `other`. */
  #counter(type: number): TypeCount {
    const c = this.#byType.get(type);
    if (c !== undefined) return c;
    if (!this.#isRegistered(type)) {
      if (this.#unregistered >= this.maxUnregistered) return this.#other;
      this.#unregistered++;
    }
    const made: TypeCount = { type, received: 0, sent: 0 };
    this.#byType.set(type, made);
    return made;
  }

  /**
   * Every counted type's counts, in the order the types were first seen,
   * then `other` when it counted anything; `nameOf` names a type id (or
   * returns undefined for an id it does not know).
   */
  list(nameOf: (type: number) => string | undefined): FrameCount[] {
    const out: FrameCount[] = [];
    for (const c of this.#byType.values()) {
      out.push({ name: nameOf(c.type) ?? String(c.type), type: c.type, received: c.received, sent: c.sent });
    }
    const o = this.#other;
    if (o.received > 0 || o.sent > 0) out.push({ name: 'other', type: -1, received: o.received, sent: o.sent });
    return out;
  }
}
