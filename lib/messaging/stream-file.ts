/**
 * Sending a file: read into a ring of buffers that are reused as soon as the
 * kernel has taken their bytes, and queued on the client at the pace of its
 * output buffer. A file transfer of any size holds `windowBytes` of memory
 * (the ring), allocates nothing per chunk, and leaves no garbage behind for
 * the collector, so the sending process's memory stays flat however large
 * the file and however slow the reader.
 *
 * ```
 *   ring: windowBytes / chunkBytes buffers (made on first use), each one
 *     free ──read(pos)──▶ reading ──▶ read (waits its turn: appends go in file order)
 *          ──sink.write──▶ queued on the client, up to `end` in the transfer's bytes
 *          ──drained >= end──▶ free          drained = appended - client.queuedBytes
 *   two reads in flight at most; reading goes on while the client's output is
 *   held at its high mark, so the next chunks are ready when it drains.
 *
 *   client queued >= high ──▶ _hold: appends stop      queued <= low ──▶ _unhold: go on
 *   every byte read and queued ──▶ sink.finish ──▶ the file is closed ──▶ client.flushed() ──▶ { bytes }
 *   a read error / the signal / the client's close / a peer's cancel
 *        ──▶ sink.abort ──▶ the file is closed (after the reads in flight) ──▶ the coded error
 * ```
 *
 * `drained` counts the client's queued output of any origin as still the
 * transfer's, so it can only lag behind the truth: a buffer is never reused
 * while a byte of it may still be read by the socket. Should the ring run dry
 * while the client is not held (other output queued on it), one buffer is
 * allocated outside the ring, so the transfer always moves.
 *
 * @module
 */

import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { _linkOutput } from '../reactor/client.js';
import type { BackpressureLink, Client, OutputProducer } from '../reactor/client.js';
import { ErrorCode, NetloopError } from '../core/errors.js';
import type { StreamSink } from './stream-writable.js';
import { abortedError, interruptedError, sourceFailedError } from './stream-options.js';
import type { StreamMarks } from './stream-options.js';

/** Reads in flight at once: one to wait on, one to overlap it. */
const READS_IN_FLIGHT = 2;

/** A buffer queued on the client: free again once the transfer's drained bytes reach `end`. */
interface Queued {
  buf: Buffer;
  end: number;
}

/** A finished read, waiting for its turn. */
interface Read {
  buf: Buffer;
  n: number;
}

/**
 * @internal Opens `path` for a file transfer: the handle and the file's size.
 *
 * @throws NetloopError `NETLOOP_INVALID_OPTION` for a bad path,
 *   `NETLOOP_STREAM_SOURCE_FAILED` when it cannot be opened or is not a file.
 */
export async function openForTransfer(path: string): Promise<{ handle: FileHandle; size: number }> {
  if (typeof path !== 'string' || path.length === 0) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'path must be a non-empty string', { details: { option: 'path' } });
  }
  let handle: FileHandle;
  try {
    handle = await fsp.open(path, 'r');
  } catch (err) {
    throw sourceFailedError(err);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw Object.assign(new Error(`${path} is not a regular file`), { code: 'EISDIR' });
    return { handle, size: stat.size };
  } catch (err) {
    await handle.close().catch(() => {});
    throw sourceFailedError(err);
  }
}

/**
 * @internal One file transfer (see the module comment). {@link FilePump.run}
 * settles once: with the bytes sent, or the coded error, after the file is
 * closed.
 */
export class FilePump implements OutputProducer {
  readonly #client: Client;
  readonly #sink: StreamSink;
  readonly #handle: FileHandle;
  readonly #marks: StreamMarks;
  readonly #chunk: number;
  readonly #ringMax: number;
  readonly #signal: AbortSignal | undefined;
  #undo: (() => void) | null = null;
  #held = false;
  #wakeQueued = false;
  /** The buffers of the ring made so far, and those free now. */
  readonly #ring = new Set<Buffer>();
  readonly #free: Buffer[] = [];
  /** Buffers queued on the client, oldest first (from `#qHead` on). */
  #queued: Queued[] = [];
  #qHead = 0;
  /** Finished reads by file position, appended in order. */
  readonly #reads = new Map<number, Read>();
  #inFlight = 0;
  /** The next position to read, the next to append, and where the file ends. */
  #readPos = 0;
  #appendPos = 0;
  #end: number;
  #appended = 0;
  #settled = false;
  #resolve!: (bytes: number) => void;
  #reject!: (err: NetloopError) => void;

  constructor(client: Client, sink: StreamSink, marks: StreamMarks, file: { handle: FileHandle; size: number }, signal: AbortSignal | undefined) {
    this.#client = client;
    this.#sink = sink;
    this.#handle = file.handle;
    this.#end = file.size;
    this.#marks = marks;
    this.#chunk = marks.chunkBytes;
    this.#ringMax = Math.floor(marks.windowBytes / marks.chunkBytes);
    this.#signal = signal;
  }

  /** Starts the transfer; settles once (see the class comment). */
  run(): Promise<number> {
    const done = new Promise<number>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    const signal = this.#signal;
    if (signal?.aborted === true) {
      this.#fail(abortedError('signal', signal.reason));
      return done;
    }
    try {
      this.#undo = _linkOutput(this, this.#client, this.#marks.high, this.#marks.low);
    } catch {
      this.#fail(interruptedError(this.#client));
      return done;
    }
    signal?.addEventListener('abort', this.#onAbort, { once: true });
    this.#pump();
    return done;
  }

  /** Ends the transfer with `error` (a peer's cancel, the owner closing). */
  destroy(error?: Error): void {
    this.#fail(error instanceof NetloopError ? error : abortedError('local', error));
  }

  /** @internal The client's queued output reached the high mark (from its write path). */
  _hold(): void {
    this.#held = true;
  }

  /** @internal It drained to the low mark (from its write path: the work runs on the next tick). */
  _unhold(): void {
    this.#held = false;
    this.#wake();
  }

  /** @internal The link ended: undone here, or the client closed (from its close path). */
  _unlink(_link: BackpressureLink): void {
    if (this.#undo === null) return;
    this.#undo = null;
    if (this.#settled) return;
    process.nextTick(() => this.#fail(interruptedError(this.#client)));
  }

  readonly #onAbort = (): void => {
    this.#fail(abortedError('signal', this.#signal?.reason));
  };

  #wake(): void {
    if (this.#wakeQueued || this.#settled) return;
    this.#wakeQueued = true;
    process.nextTick(() => {
      this.#wakeQueued = false;
      this.#pump();
    });
  }

  /** Frees what the kernel took, appends the reads whose turn it is, starts reads, finishes at the end. */
  #pump(): void {
    if (this.#settled) return;
    this.#recycle();
    while (!this.#held) {
      const read = this.#reads.get(this.#appendPos);
      if (read === undefined) break;
      this.#reads.delete(this.#appendPos);
      if (!this.#sink.write(read.n === read.buf.length ? read.buf : read.buf.subarray(0, read.n))) {
        this.#fail(interruptedError(this.#client));
        return;
      }
      this.#appendPos += read.n;
      this.#appended += read.n;
      this.#queued.push({ buf: read.buf, end: this.#appended });
    }
    if (this.#appendPos >= this.#end && this.#inFlight === 0) {
      this.#finish();
      return;
    }
    this.#startReads();
  }

  #startReads(): void {
    while (this.#inFlight < READS_IN_FLIGHT && this.#readPos < this.#end) {
      const buf = this.#take();
      if (buf === null) break;
      this.#read(buf, this.#readPos, Math.min(this.#chunk, this.#end - this.#readPos));
      this.#readPos += this.#chunk;
    }
  }

  #read(buf: Buffer, position: number, length: number): void {
    this.#inFlight++;
    this.#handle.read(buf, 0, length, position).then(
      ({ bytesRead }) => {
        this.#inFlight--;
        if (this.#settled) return;
        if (bytesRead < length) {
          // The file is shorter than it was: it ends here (reads past it are dropped).
          this.#end = Math.min(this.#end, position + bytesRead);
          for (const [pos, r] of this.#reads) {
            if (pos >= this.#end) {
              this.#reads.delete(pos);
              if (this.#ring.has(r.buf)) this.#free.push(r.buf);
            }
          }
        }
        if (bytesRead > 0) this.#reads.set(position, { buf, n: bytesRead });
        else if (this.#ring.has(buf)) this.#free.push(buf);
        this.#pump();
      },
      (err: unknown) => {
        this.#inFlight--;
        this.#fail(sourceFailedError(err));
      },
    );
  }

  /** A free buffer: one the kernel is done with, a new one while the ring is not full, or (not held, ring dry) one outside it. */
  #take(): Buffer | null {
    const free = this.#free.pop();
    if (free !== undefined) return free;
    if (this.#ring.size < this.#ringMax) {
      const buf = Buffer.allocUnsafeSlow(this.#chunk);
      this.#ring.add(buf);
      return buf;
    }
    if (!this.#held && this.#inFlight === 0 && this.#reads.size === 0) return Buffer.allocUnsafeSlow(this.#chunk);
    return null;
  }

  /** Buffers whose bytes all reached the kernel go back to the free list. */
  #recycle(): void {
    const drained = this.#appended - this.#client.queuedBytes;
    const q = this.#queued;
    let h = this.#qHead;
    while (h < q.length && q[h]!.end <= drained) {
      const buf = q[h]!.buf;
      q[h] = EMPTY_QUEUED;
      h++;
      if (this.#ring.has(buf)) this.#free.push(buf);
    }
    if (h === q.length) {
      this.#queued = [];
      this.#qHead = 0;
    } else if (h > 64 && h * 2 > q.length) {
      this.#queued = q.slice(h);
      this.#qHead = 0;
    } else this.#qHead = h;
  }

  #finish(): void {
    if (!this.#sink.finish(this.#appended)) {
      this.#fail(interruptedError(this.#client));
      return;
    }
    this.#settled = true;
    this.#detach();
    const bytes = this.#appended;
    void this.#handle
      .close()
      .catch(() => {})
      .then(() => this.#client.flushed())
      .then(
        () => {
          this.#sink.release();
          this.#resolve(bytes);
        },
        () => {
          this.#sink.release();
          this.#reject(interruptedError(this.#client));
        },
      );
  }

  #fail(error: NetloopError): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#detach();
    try {
      this.#sink.abort(error);
    } finally {
      this.#sink.release();
    }
    this.#reads.clear();
    // FileHandle.close() waits for the reads in flight: the descriptor is released before the error is reported.
    void this.#handle
      .close()
      .catch(() => {})
      .then(() => this.#reject(error));
  }

  #detach(): void {
    this.#signal?.removeEventListener('abort', this.#onAbort);
    const undo = this.#undo;
    if (undo !== null) {
      this.#undo = null;
      undo();
    }
  }
}

const EMPTY_QUEUED: Queued = { buf: Buffer.alloc(0), end: 0 };
