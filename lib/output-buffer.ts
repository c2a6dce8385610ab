/**
 * The per-client output queue: the bytes appended but not yet handed to the
 * socket. A client holds one only while it has data pending; the loop keeps a
 * few empty ones for reuse, so a busy connection does not allocate one per
 * turn and an idle connection holds none.
 *
 * ```
 *   chunks:  [ done | done | C2 | C3 | C4 ]      bytes = |C2| + |C3| + |C4|
 *                           ▲ head
 *   take(max): one Buffer of at most max bytes from the head:
 *     - the head chunk itself when it fits and is alone (no copy),
 *     - a view of the head chunk when it is larger than max (no copy),
 *     - else the chunks from the head concatenated into one Buffer (one copy,
 *       at most max bytes), so many small appends reach the socket as one write.
 * ```
 *
 * Appended chunks are held by reference, not copied: the caller must not
 * modify a buffer after appending it.
 *
 * @module
 */

/** When the consumed prefix of the chunk array grows past this, it is dropped. */
const COMPACT_AT = 1024;

/** A FIFO of byte chunks with a running byte count. */
export class OutputBuffer {
  #chunks: Buffer[] = [];
  #head = 0;
  #bytes = 0;

  /** Bytes queued. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Chunks queued (after the head). */
  get chunkCount(): number {
    return this.#chunks.length - this.#head;
  }

  /** Appends a chunk by reference; an empty chunk is ignored. */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
  }

  /**
   * Removes and returns the next `min(max, bytes)` bytes as one Buffer (see
   * the module comment for when it copies). Returns an empty Buffer when
   * nothing is queued or `max <= 0`.
   */
  take(max: number): Buffer {
    const chunks = this.#chunks;
    if (this.#bytes === 0 || max <= 0) return Buffer.alloc(0);
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

  /** Drops everything queued and forgets the chunks, so they can be collected. */
  clear(): void {
    if (this.#chunks.length > 64) this.#chunks = [];
    else this.#chunks.length = 0;
    this.#head = 0;
    this.#bytes = 0;
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

const EMPTY = Buffer.alloc(0);
