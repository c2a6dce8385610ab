/**
 * The per-client output queue: the bytes appended but not yet handed to the
 * socket. A client holds one only while it has data pending; the loop keeps a
 * few empty ones for reuse, so a busy connection does not allocate one per
 * turn and an idle connection holds none.
 *
 * ```
 *   chunks:  [ done | done | C2 | C3 | C4 ]  +  tail           bytes = |C2|+|C3|+|C4|+|tail|
 *                           ▲ head
 *   tail: an open region of this buffer's slab, always logically last:
 *
 *   slab (this buffer's own, append-only): [ handed out | C3 view | tailStart ... tailEnd | free ]
 *                                                                                  ▲ slabPos
 *   copyIn(small) / reserve(n) + commit(n): bytes land at tailEnd, which grows
 *     in place; after a push() the tail was closed into a view in chunks and a
 *     new tail starts at slabPos, in the same slab while it has room.
 *   push(big): the tail is closed first, then the chunk is queued by reference.
 *
 *   take(max): one Buffer of at most max bytes from the head:
 *     - the open tail as one view when it is all there is (no copy),
 *     - the head chunk itself when it fits and is alone (no copy),
 *     - a view of the head chunk when it is larger than max (no copy),
 *     - else the chunks from the head concatenated into one Buffer (one copy,
 *       at most max bytes), so many small appends reach the socket as one write.
 * ```
 *
 * Pushed chunks are held by reference, not copied: the caller must not modify
 * a buffer after pushing it. Copied and reserved bytes live in a slab owned by
 * this output buffer: a slab is only appended to, so a region handed to a
 * socket stays intact until it is written, and a full slab is simply dropped
 * for a new one (collected once every view of it is written). The one
 * exception is {@link OutputBuffer.rewind}: once the writer has let go of
 * every region handed out (its writes all completed at once, and none was
 * left unfinished since the slab was made, see {@link OutputBuffer.pin}),
 * the slab is written again from its start, so a busy connection whose
 * replies leave at once allocates no slab per turn. The slab is per buffer, not shared by the process, on purpose: a
 * slow reader's queued views then pin only its own bytes (plus at most one
 * partly used slab), never other clients' slabs, so the memory a stalled
 * client holds stays within a slab of what its output limit counts. A client
 * holds an output buffer (and so a slab) only while it has data pending.
 *
 * @module
 */

/** Appends up to this many bytes are copied into the slab by {@link OutputBuffer.copyIn}'s callers; larger ones are queued by reference. */
export const SLAB_COPY_MAX = 1024;
/**
 * A queued piece up to this size that is larger than the room left in the
 * socket is still handed over whole (see `Client._flush`): a broadcast batch
 * shared by every client then takes one write per client, never sliced.
 * Larger pieces (bulk data) are cut into views of the room, so they wait in
 * the client's buffer rather than in the socket's.
 */
export const WHOLE_WRITE_MAX = 256 * 1024;
/** Size of one slab (the socket's default writable high-water mark: one flush rarely spans two). */
export const SLAB_BYTES = 16 * 1024;

const EMPTY = Buffer.alloc(0);

/** When the consumed prefix of the chunk array grows past this, it is dropped. */
const COMPACT_AT = 1024;

/** A FIFO of byte chunks with a running byte count. */
export class OutputBuffer {
  #chunks: Buffer[] = [];
  #head = 0;
  #bytes = 0;
  /** The slab of the open tail (EMPTY when there is none) and the tail's region in it. */
  #tail: Buffer = EMPTY;
  #tailStart = 0;
  #tailEnd = 0;
  /** This buffer's slab and its first free byte (append-only, until a {@link rewind}). */
  #slab: Buffer = EMPTY;
  #slabPos = 0;
  /** A writer may still hold a region of this slab (see {@link pin}): it is not rewound. */
  #pinned = false;

  /** Bytes queued. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Chunks queued (after the head), the open tail counting as one. */
  get chunkCount(): number {
    return this.#chunks.length - this.#head + (this.#tailEnd > this.#tailStart ? 1 : 0);
  }

  /**
   * Bytes of the next chunk {@link take} would hand out whole without a copy:
   * the head chunk (a pushed one, or a view), or the open tail when nothing
   * precedes it; 0 when empty. A writer may take this many even past its
   * usual bound, so that a large chunk shared by many queues reaches each
   * socket in one write rather than in slices.
   */
  get headBytes(): number {
    if (this.#head < this.#chunks.length) return this.#chunks[this.#head]!.length;
    return this.#tailEnd - this.#tailStart;
  }

  /** Appends a chunk by reference; an empty chunk is ignored. */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#closeTail();
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
  }

  /** Appends a copy of `chunk` (meant for small ones, see {@link SLAB_COPY_MAX}) into the slab. */
  copyIn(chunk: Uint8Array): void {
    const n = chunk.length;
    if (n === 0) return;
    const target = this.reserve(n);
    target.set(chunk, this.#tailEnd);
    this.commit(n);
  }

  /**
   * Makes room for `n` bytes at the end of the queue and returns the buffer
   * to write them into, at offset {@link reservedOffset}. Nothing is queued
   * until {@link commit}; a reservation not committed is simply forgotten
   * (the next one reuses its room), so a writer that throws queues nothing.
   */
  reserve(n: number): Buffer {
    const slab = this.#slab;
    if (this.#tail === slab && this.#tailEnd === this.#slabPos && slab.length - this.#slabPos >= n) return slab;
    this.#closeTail();
    if (this.#slab.length - this.#slabPos < n) {
      this.#slab = Buffer.allocUnsafeSlow(n > SLAB_BYTES ? n : SLAB_BYTES);
      this.#slabPos = 0;
      this.#pinned = false;
    }
    this.#tail = this.#slab;
    this.#tailStart = this.#tailEnd = this.#slabPos;
    return this.#slab;
  }

  /** Where the bytes of the last {@link reserve} go in the buffer it returned. */
  get reservedOffset(): number {
    return this.#tailEnd;
  }

  /** Queues the `n` bytes written at {@link reservedOffset} after {@link reserve}(`n`). */
  commit(n: number): void {
    this.#tailEnd += n;
    this.#slabPos = this.#tailEnd;
    this.#bytes += n;
  }

  /**
   * Removes and returns the next `min(max, bytes)` bytes as one Buffer (see
   * the module comment for when it copies). Returns an empty Buffer when
   * nothing is queued or `max <= 0`.
   */
  take(max: number): Buffer {
    const chunks = this.#chunks;
    if (this.#bytes === 0 || max <= 0) return Buffer.alloc(0);
    if (this.#tailEnd > this.#tailStart) {
      const tailBytes = this.#tailEnd - this.#tailStart;
      if (this.#head === chunks.length && tailBytes <= max) {
        // The common case of small writes: the whole queue is one slab region.
        const view = this.#tail.subarray(this.#tailStart, this.#tailEnd);
        this.#tailStart = this.#tailEnd;
        this.#bytes = 0;
        return view;
      }
      this.#closeTail();
    }
    const first = chunks[this.#head]!;
    if (first.length > max) {
      chunks[this.#head] = first.subarray(max);
      this.#bytes -= max;
      return first.subarray(0, max);
    }
    if (first.length === max || this.#head === chunks.length - 1) {
      this.#advance();
      this.#bytes -= first.length;
      return first;
    }
    const n = max < this.#bytes ? max : this.#bytes;
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = chunks[this.#head]!;
      const want = n - filled;
      if (chunk.length <= want) {
        out.set(chunk, filled);
        filled += chunk.length;
        this.#advance();
      } else {
        out.set(chunk.subarray(0, want), filled);
        chunks[this.#head] = chunk.subarray(want);
        filled = n;
      }
    }
    this.#bytes -= n;
    return out;
  }

  /**
   * Says that a writer may still hold a region handed out of the current
   * slab (a socket write that did not complete at once): the slab is then
   * never rewound; the next slab starts unpinned.
   */
  pin(): void {
    this.#pinned = true;
  }

  /**
   * Reuses the slab from its start. The caller asserts that every region
   * handed out of it is written and let go (a socket whose writes all
   * completed at once holds none: Node lets go of a chunk once its write
   * completes); does nothing while bytes are queued or after {@link pin}.
   * A connection whose replies leave at once then writes every turn from
   * the same slab instead of taking a new one each time it fills.
   */
  rewind(): void {
    if (this.#bytes !== 0 || this.#pinned) return;
    if (this.#chunks.length !== 0) {
      this.#chunks.length = 0;
      this.#head = 0;
    }
    this.#slabPos = 0;
    this.#tail = EMPTY;
    this.#tailStart = this.#tailEnd = 0;
  }

  /** Drops everything queued and forgets the chunks, so they can be collected. */
  clear(): void {
    if (this.#chunks.length > 64) this.#chunks = [];
    else this.#chunks.length = 0;
    this.#head = 0;
    this.#bytes = 0;
    // The open tail was never handed out: its room in the slab is reused.
    if (this.#tail === this.#slab && this.#tailEnd === this.#slabPos) this.#slabPos = this.#tailStart;
    this.#tail = EMPTY;
    this.#tailStart = this.#tailEnd = 0;
  }

  /** Turns the open tail into a view queued in `chunks`; later appends start a new tail after it. */
  #closeTail(): void {
    if (this.#tailEnd > this.#tailStart) {
      this.#chunks.push(this.#tail.subarray(this.#tailStart, this.#tailEnd));
      this.#tailStart = this.#tailEnd;
    }
  }

  #advance(): void {
    const chunks = this.#chunks;
    chunks[this.#head] = EMPTY;
    this.#head++;
    if (this.#head === chunks.length) {
      chunks.length = 0;
      this.#head = 0;
    } else if (this.#head >= COMPACT_AT && this.#head * 2 >= chunks.length) {
      chunks.splice(0, this.#head);
      this.#head = 0;
    }
  }
}
