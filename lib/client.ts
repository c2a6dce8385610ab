/**
 * One TCP connection of the reactor, accepted by a {@link Server} or opened by
 * a {@link Connector}, with its own output buffer (muduo's `TcpConnection`).
 *
 * A client is lean on purpose, since a server may hold very many idle ones:
 * it is not an EventEmitter, it registers shared (not per-client) listener
 * functions on its socket, it holds no output buffer while nothing is
 * pending, its rarely used callbacks live in a side object created on first
 * use, and its idle deadline is one entry of the loop's shared timer queue.
 *
 * ```
 *   appendToOutputBuffer(data) ──▶ OutputBuffer (only while data is pending)
 *   enableWriting(); loop.updateClient(c)      ── marks c dirty, once per turn
 *   end of c's own read callback, if c is dirty ──▶ c._flush()  (muduo writes from its read callback)
 *   loop turn (setImmediate) ──▶ c._flush():   (appends made anywhere else)
 *        room = writableHighWaterMark - writableLength
 *        socket.write(take(room, or headBytes if <= WHOLE_WRITE_MAX))  ── one write
 *                                    for any number of appends; a shared batch goes whole
 *        write() returned false ──▶ wait for 'drain' ──▶ _flush() again
 *   own buffer empty && writableLength == 0 ──▶ write-complete callback (queued)
 * ```
 *
 * States (bits of `_flags`): open → [ENDING: flush, then FIN] → [ENDED: FIN
 * sent] → CLOSED; or open → DESTROYED (forced, error, limit) → CLOSED. The
 * socket's `'close'` event is the one place a close is reported, so it is
 * reported exactly once and never from inside a call of the application.
 *
 * @module
 */

import type * as net from 'node:net';
import type { EventLoop } from './event-loop.js';
import type { OutputBuffer } from './output-buffer.js';
import { SLAB_COPY_MAX, WHOLE_WRITE_MAX } from './output-buffer.js';
import type { TimerEntry } from './timer-queue.js';
import type { CloseReason } from './close-reason.js';
import { closeReasonOfSocketError, isGracefulReason, outputLimitError } from './close-reason.js';
import { ErrorCode, NetloopError } from './errors.js';
import type { MessageTypeRef } from './message-registry.js';
import { noteClose } from './diagnostics.js';

/**
 * @internal What {@link Client._appendFrame} writes a frame with (the LTV
 * encoder): it writes a frame it has already checked at `target[offset]`,
 * the value being `value[start, end)`.
 */
export interface InPlaceFrameWriter {
  _writeChecked(target: Uint8Array, offset: number, type: number, value: Uint8Array, start: number, end: number): void;
}

/** The state bits of a client (internal). */
export const ClientFlag = {
  /** The application asked for its queued output to be sent. */
  WRITING: 1,
  /** Reading is not paused. */
  READING: 2,
  /** Queued in the loop's list of clients to flush this turn. */
  DIRTY: 4,
  /** A socket write returned false; the next write waits for 'drain'. */
  AWAIT_DRAIN: 8,
  /** The close has been reported. */
  CLOSED: 16,
  /** A graceful close was asked for: flush, then FIN. */
  ENDING: 32,
  /** `socket.end()` was called. */
  ENDED: 64,
  /** The socket is being destroyed (forced close, error). */
  DESTROYED: 128,
  /** The peer sent FIN. */
  PEER_ENDED: 256,
  /** Bytes were handed to the socket and the write-complete check is still due. */
  COMPLETE_PENDING: 512,
  /** An output limit was passed; the forced close is queued. */
  LIMIT_CLOSE: 1024,
  /** The application marked the client authenticated ({@link Client.markAuthenticated}). */
  AUTHENTICATED: 2048,
  /** Inside the client's own read callback: an update marks it dirty, and the callback's end flushes it. */
  IN_READ: 4096,
} as const;

const F = ClientFlag;

/** Called with the client once its output drained to the kernel. */
export type WriteCompleteCallback = (client: Client) => void;
/** Called with the client and its queued bytes when they cross the high-water mark upward. */
export type HighWaterMarkCallback = (client: Client, queuedBytes: number) => void;
/** Called once when the client closes. */
export type CloseCallback = (client: Client, reason: CloseReason, error?: NetloopError) => void;

/**
 * The framing seam: when a client's `_protocol` is set, every chunk read goes
 * to `onData` instead of the owner's `'data'` event, and `onClose` hears the
 * close before the owner's `'close'` event.
 */
export interface ClientProtocol {
  onData(client: Client, chunk: Buffer): void;
  onClose?(client: Client, reason: CloseReason, error?: NetloopError): void;
  /** Encodes and queues one message ({@link Client.send}); absent for raw bytes. */
  send?(client: Client, ref: MessageTypeRef, payload: unknown): boolean;
  /** Queues one frame whose value is `bytes[start, end)` ({@link Client.sendRaw}); absent for raw bytes. */
  sendRaw?(client: Client, type: number, bytes: Uint8Array, start: number, end: number): boolean;
  /** Hears {@link Client.markAuthenticated} (the framing layer lifts its pre-authentication limit). */
  onAuthenticated?(client: Client): void;
}

/** What owns a client (a Server or a Connector): it hears its data, half-close and close (internal). */
export interface ClientOwner {
  /** The loop of the owner and of each of its clients. */
  readonly loop: EventLoop;
  _clientData(client: Client, chunk: Buffer): void;
  _clientEnd(client: Client): void;
  _clientClosed(client: Client, reason: CloseReason, error: NetloopError | undefined): void;
}

/** The limits every client of one server or connector shares (internal, validated by the owner). */
export interface ClientConfig {
  /** Hard limit on queued bytes. */
  readonly maxOutputBytes: number;
  /** Soft limit on queued bytes, or 0 when disabled. */
  readonly softOutputBytes: number;
  /** How long queued output may stay at or above the soft limit. */
  readonly softOutputForMs: number;
  /** Read-idle timeout, or 0 when disabled. */
  readonly idleTimeoutMs: number;
  /** Keep the connection writable after the peer's FIN. */
  readonly halfOpen: boolean;
  /** How long a graceful close may take (flush, FIN, the peer's FIN) before the socket is destroyed. */
  readonly shutdownTimeoutMs: number;
}

/**
 * What a client rarely needs, created on first use.
 *
 * ```
 *   { writeComplete, highWater, highWaterBytes, onClose, waiters,
 *     softSince, softTimer, linger, completeFn, error }
 * ```
 */
interface ClientExtras {
  writeComplete: WriteCompleteCallback | null;
  highWater: HighWaterMarkCallback | null;
  highWaterBytes: number;
  onClose: CloseCallback | null;
  waiters: Array<{ resolve: () => void; reject: (err: NetloopError) => void }> | null;
  /** When queued output reached the soft limit (monotonic ms), or -1. */
  softSince: number;
  softTimer: TimerEntry | null;
  linger: TimerEntry | null;
  completeFn: (() => void) | null;
  /** The error reported with the close, if any. */
  error: NetloopError | undefined;
}

/** The zero-length write that reports when every byte written before it has reached the kernel. */
const EMPTY_PROBE = Buffer.alloc(0);

/** The socket property that leads the shared listeners back to their client. */
const kClient = Symbol('netloop.client');
type ClientSocket = net.Socket & { [kClient]?: Client };

let nextId = 1;

/**
 * One connection. Created by a {@link Server} or a {@link Connector}; never
 * constructed by the application. See the module comment.
 */
export class Client {
  /** Process-unique and never reused; stands in for the file descriptor. */
  readonly id: number;
  /** The underlying socket (half-open allowed internally; do not write to it directly). */
  readonly socket: net.Socket;
  /** Per-client user data (muduo's context); netloop never reads it. */
  context: unknown = undefined;
  /** @internal The framing seam; null for raw bytes. */
  _protocol: ClientProtocol | null = null;
  /** @internal */
  _flags: number = F.READING;
  /** @internal Bytes not yet handed to the socket; null while nothing is pending. */
  _out: OutputBuffer | null = null;
  /** @internal */
  readonly _owner: ClientOwner;
  /** @internal */
  readonly _cfg: ClientConfig;
  #reason: CloseReason | null = null;
  #ext: ClientExtras | null = null;
  #lastReadAt = 0;
  /**
   * @internal The client is its own read-idle entry in the loop's timer queue
   * (intrusive, as the session binding's slots are): no separate entry object
   * per connection. `interval`, `fn` and `arg` come from the prototype.
   */
  deadline = 0;
  /** @internal Timer-queue insertion order. */
  seq = 0;
  /** @internal Position in the timer queue's heap, or -1 while the idle deadline is not queued. */
  index = -1;
  #onWritten: (() => void) | null = null;

  /** @internal Use {@link EventLoop.listen} or {@link EventLoop.connect}. */
  constructor(loop: EventLoop, socket: net.Socket, owner: ClientOwner, cfg: ClientConfig) {
    this.id = nextId++;
    this.socket = socket;
    this._owner = owner;
    this._cfg = cfg;
    (socket as ClientSocket)[kClient] = this;
    socket.on('data', onSocketData);
    listenForEnd(socket);
    socket.on('error', onSocketError);
    socket.on('close', onSocketClose);
    if (cfg.idleTimeoutMs > 0) {
      this.#lastReadAt = loop.now();
      this.deadline = this.#lastReadAt + cfg.idleTimeoutMs;
      loop._timers.insert(this);
    }
    loop._addClient(this);
  }

  /** The loop this client belongs to (its owner's: one field less per connection). */
  get loop(): EventLoop {
    return this._owner.loop;
  }

  /** The peer's address, as the socket reports it. */
  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  /** The peer's port, as the socket reports it. */
  get remotePort(): number | undefined {
    return this.socket.remotePort;
  }

  /** True once the close has been reported. */
  get closed(): boolean {
    return (this._flags & F.CLOSED) !== 0;
  }

  /** True when a close was asked for (shutdown, forced, limit, error) but not reported yet. */
  get closing(): boolean {
    return (this._flags & F.CLOSED) === 0 && (this._flags & (F.ENDING | F.DESTROYED | F.LIMIT_CLOSE)) !== 0;
  }

  /** Bytes not yet handed to the kernel: the client's own buffer plus the socket's. */
  get queuedBytes(): number {
    return (this._out === null ? 0 : this._out.bytes) + this.socket.writableLength;
  }

  /**
   * Queues `data` (held by reference: do not modify it afterwards; a string is
   * encoded as UTF-8). Nothing is sent until writing is enabled and the loop
   * is updated ({@link Client.write} does all three).
   *
   * @returns true when queued; false when the append would pass the hard
   *   output limit (nothing is queued, and the client is closed from the loop
   *   with `'output-limit'` / `NETLOOP_OUTPUT_LIMIT`) or such a close is pending.
   * @throws NetloopError `NETLOOP_CLIENT_CLOSED` once the client is closed or closing.
   */
  appendToOutputBuffer(data: Uint8Array | string): boolean {
    const f = this._flags;
    if ((f & (F.CLOSED | F.DESTROYED | F.ENDING | F.LIMIT_CLOSE)) !== 0) {
      if ((f & (F.LIMIT_CLOSE | F.CLOSED | F.DESTROYED)) === F.LIMIT_CLOSE) return false;
      throw this.#closedError('append to');
    }
    const buf =
      typeof data === 'string'
        ? Buffer.from(data, 'utf8')
        : Buffer.isBuffer(data)
          ? data
          : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const n = buf.length;
    if (n === 0) return true;
    const old = this.queuedBytes;
    if (old + n > this._cfg.maxOutputBytes) return this.#refuse(old, n);
    let out = this._out;
    if (out === null) out = this._out = this.loop._acquireOutput();
    // Small chunks are copied into the output buffer's slab, so the many small
    // writes of a turn already sit in one contiguous region when it is flushed.
    if (n <= SLAB_COPY_MAX) out.copyIn(buf);
    else out.push(buf);
    this.#appended(old, old + n);
    return true;
  }

  /**
   * @internal Queues one frame of `frameLength` bytes that `writer` writes in
   * place into the output buffer (no intermediate Buffer): the framing
   * layer's path for small replies. The frame must already be checked by the
   * writer's owner. Same result and errors as {@link appendToOutputBuffer}.
   */
  _appendFrame(writer: InPlaceFrameWriter, type: number, value: Uint8Array, start: number, end: number, frameLength: number): boolean {
    const f = this._flags;
    if ((f & (F.CLOSED | F.DESTROYED | F.ENDING | F.LIMIT_CLOSE)) !== 0) {
      if ((f & (F.LIMIT_CLOSE | F.CLOSED | F.DESTROYED)) === F.LIMIT_CLOSE) return false;
      throw this.#closedError('append to');
    }
    const old = this.queuedBytes;
    if (old + frameLength > this._cfg.maxOutputBytes) return this.#refuse(old, frameLength);
    let out = this._out;
    if (out === null) out = this._out = this.loop._acquireOutput();
    const target = out.reserve(frameLength);
    writer._writeChecked(target, out.reservedOffset, type, value, start, end);
    out.commit(frameLength);
    this.#appended(old, old + frameLength);
    return true;
  }

  /** An append of `n` bytes would pass the hard limit: nothing is queued, the forced close is queued. */
  #refuse(old: number, n: number): false {
    this._flags |= F.LIMIT_CLOSE;
    const err = outputLimitError(old, n, this._cfg.maxOutputBytes);
    this.loop.queueInLoop(() => this.forceClose('output-limit', err));
    return false;
  }

  /** After an append took the queued bytes from `old` to `now`: the high-water crossing and the soft limit. */
  #appended(old: number, now: number): void {
    const ext = this.#ext;
    if (ext !== null && ext.highWater !== null && old < ext.highWaterBytes && now >= ext.highWaterBytes) {
      const cb = ext.highWater;
      this.loop.queueInLoop(() => {
        if ((this._flags & F.CLOSED) === 0) cb(this, now);
      });
    }
    const soft = this._cfg.softOutputBytes;
    if (soft > 0 && now >= soft) this.#softUpdate();
  }

  /**
   * Appends two pieces (a frame's header and its uncopied value) all or
   * nothing with respect to the hard output limit: their total is checked
   * before either is queued. Same result and errors as {@link appendToOutputBuffer}.
   */
  appendPairToOutputBuffer(first: Uint8Array, second: Uint8Array): boolean {
    if ((this._flags & (F.CLOSED | F.DESTROYED | F.ENDING | F.LIMIT_CLOSE)) === 0) {
      const old = this.queuedBytes;
      const n = first.byteLength + second.byteLength;
      const max = this._cfg.maxOutputBytes;
      if (old + n > max) {
        this._flags |= F.LIMIT_CLOSE;
        const err = outputLimitError(old, n, max);
        this.loop.queueInLoop(() => this.forceClose('output-limit', err));
        return false;
      }
    }
    // The total fits, so the second append cannot pass the limit once the first is queued.
    return this.appendToOutputBuffer(first) && this.appendToOutputBuffer(second);
  }

  /**
   * Encodes a message through the framing of the client's server or
   * connector (its `framing` option) and queues it; it is sent this loop
   * turn, in one write with everything else queued meanwhile. `ref` is a
   * registered type's id or name (with a registry) or a numeric type id (raw
   * framing, `payload` a Buffer or Uint8Array).
   *
   * @returns as {@link appendToOutputBuffer}: false when the hard output
   *   limit refused the frame (nothing queued; the client is closing).
   * @throws NetloopError, synchronously and with nothing queued:
   *   `NETLOOP_INVALID_OPTION` when the client has no framing;
   *   `NETLOOP_UNKNOWN_TYPE`, `NETLOOP_INVALID_VALUE` (wrong payload type),
   *   `NETLOOP_FRAME_TOO_LARGE` (over `maxFrameLength`); `NETLOOP_CLIENT_CLOSED`.
   */
  send(ref: MessageTypeRef, payload: unknown): boolean {
    return this.#framing().send!(this, ref, payload);
  }

  /** The client's framing layer; throws `NETLOOP_INVALID_OPTION` for a client without one. */
  #framing(): ClientProtocol {
    const p = this._protocol;
    if (p === null || p.send === undefined || p.sendRaw === undefined) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, `client ${this.id} has no framing: pass the framing option to listen() or connect()`, {
        details: { clientId: this.id, option: 'framing' },
      });
    }
    return p;
  }

  /**
   * Sends one frame of the numeric `type` whose value is `bytes[start, end)`
   * (default: all of `bytes`), with no serializer and no intermediate view:
   * a value up to the framing's `copyThreshold` is copied once, behind its
   * header, into the output buffer, so `bytes` may be reused as soon as the
   * call returns; a larger one is queued uncopied (do not modify it until it
   * is written). The counterpart of the framing option `onRawFrame`: a relay or
   * an echo passes the received range straight on. With a registry, `type`
   * must be registered. Returns false, queuing nothing, when the client is
   * past its hard output limit (as {@link send}).
   *
   * @throws NetloopError INVALID_OPTION (no framing), INVALID_VALUE (`bytes`
   *   not a Uint8Array, a range outside it, a type the layout cannot carry),
   *   UNKNOWN_TYPE (a type the registry does not know), FRAME_TOO_LARGE,
   *   CLIENT_CLOSED.
   */
  sendRaw(type: number, bytes: Uint8Array, start = 0, end: number = bytes?.byteLength): boolean {
    const p = this.#framing();
    if (!(bytes instanceof Uint8Array)) {
      throw new NetloopError(ErrorCode.INVALID_VALUE, 'sendRaw takes a Buffer or Uint8Array', {
        details: { got: bytes === null ? 'null' : typeof bytes },
      });
    }
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || start > end || end > bytes.byteLength) {
      throw new NetloopError(ErrorCode.INVALID_VALUE, `the range [${String(start)}, ${String(end)}) is not inside the ${bytes.byteLength} bytes given`, {
        details: { start: String(start), end: String(end), byteLength: bytes.byteLength },
      });
    }
    return p.sendRaw!(this, type, bytes, start, end);
  }

  /**
   * Marks the client authenticated (the session layer calls this once a
   * session is created or resumed for it). The framing layer then accepts
   * frames up to `maxFrameLength` instead of `preAuthMaxFrameLength`, from the
   * frame after the one being handled. Idempotent; it cannot be undone.
   */
  markAuthenticated(): void {
    if ((this._flags & F.AUTHENTICATED) !== 0) return;
    this._flags |= F.AUTHENTICATED;
    const p = this._protocol;
    if (p !== null && p.onAuthenticated !== undefined) p.onAuthenticated(this);
  }

  /** True once {@link Client.markAuthenticated} was called. */
  get authenticated(): boolean {
    return (this._flags & F.AUTHENTICATED) !== 0;
  }

  /** Appends, enables writing and updates the loop: the data is sent this turn. Same result as {@link appendToOutputBuffer}. */
  write(data: Uint8Array | string): boolean {
    const ok = this.appendToOutputBuffer(data);
    if (ok) {
      this._flags |= F.WRITING;
      this.loop.updateClient(this);
    }
    return ok;
  }

  /** Asks for queued output to be sent; takes effect at the next {@link EventLoop.updateClient}. Cleared once the buffer is empty. */
  enableWriting(): void {
    this._flags |= F.WRITING;
  }

  /** Holds queued output back (it stays queued and counts against the limits). */
  disableWriting(): void {
    this._flags &= ~F.WRITING;
  }

  /** True when writing is enabled. */
  isWriting(): boolean {
    return (this._flags & F.WRITING) !== 0;
  }

  /** True while the client's own buffer holds bytes not yet handed to the socket. */
  hasDataToWrite(): boolean {
    return this._out !== null;
  }

  /**
   * Sets the callback run (queued in the loop, never synchronously) each time
   * the queued output drains to empty after data was sent: own buffer empty
   * and the socket's buffer empty, every byte handed to the kernel.
   */
  setWriteCompleteCallback(cb: WriteCompleteCallback | null): void {
    this.#extras().writeComplete = cb;
    if (cb !== null) this.#observeCompletion(false);
  }

  /**
   * Sets the callback run (queued) when the queued bytes cross `bytes` upward:
   * once per crossing (before < bytes <= after), as muduo does.
   */
  setHighWaterMarkCallback(cb: HighWaterMarkCallback | null, bytes: number): void {
    if (cb !== null && (!Number.isInteger(bytes) || bytes < 1)) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, `high-water mark must be a positive integer, got ${String(bytes)}`, {
        details: { option: 'bytes', value: bytes },
      });
    }
    const ext = this.#extras();
    ext.highWater = cb;
    ext.highWaterBytes = cb === null ? 0 : bytes;
  }

  /** Sets the callback run once when the client closes, before the owner's `'close'` event. */
  setCloseCallback(cb: CloseCallback | null): void {
    this.#extras().onClose = cb;
  }

  /**
   * Resolves once everything queued so far has been handed to the kernel;
   * rejects with `NETLOOP_CLIENT_CLOSED` if the client closes first. Settles once.
   */
  flushed(): Promise<void> {
    if ((this._flags & F.CLOSED) !== 0) return Promise.reject(this.#closedError('wait on'));
    if (this._out === null && (this._flags & F.COMPLETE_PENDING) === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const ext = this.#extras();
      (ext.waiters ??= []).push({ resolve, reject });
      this.#observeCompletion(true);
    });
  }

  /**
   * Closes gracefully: sends everything queued, then FIN; the close is
   * reported (`'shutdown'`) once the peer has closed its side too, or
   * destroyed after the owner's `shutdownTimeoutMs`. Appends throw from now on.
   */
  shutdown(): void {
    this._beginGracefulClose('shutdown', this._cfg.shutdownTimeoutMs);
  }

  /** Destroys the connection now; queued output is dropped. The close is reported from the loop. */
  forceClose(reason: CloseReason = 'force-close', error?: NetloopError): void {
    const f = this._flags;
    if ((f & (F.CLOSED | F.DESTROYED)) !== 0) return;
    this._flags = f | F.DESTROYED;
    if (this.#reason === null || isGracefulReason(this.#reason)) {
      this.#reason = reason;
      this.#setError(error);
    }
    this.#dropOutput();
    this.socket.destroy();
  }

  /** Stops reading from the socket (backpressure); the idle timeout does not run while paused. */
  pauseReading(): void {
    if ((this._flags & F.READING) === 0) return;
    this._flags &= ~F.READING;
    this.socket.pause();
  }

  /** Resumes reading. */
  resumeReading(): void {
    if ((this._flags & F.READING) !== 0) return;
    this._flags |= F.READING;
    this.#lastReadAt = this.loop.now();
    this.socket.resume();
  }

  /** True unless reading is paused. */
  isReading(): boolean {
    return (this._flags & F.READING) !== 0;
  }

  // ─── internals (called by the loop and the owners) ──────────────────────────

  /**
   * @internal Starts a graceful close with `reason`: flush, FIN, then wait for
   * the peer's FIN; destroyed after `lingerMs`. Does nothing when a close is
   * already under way.
   */
  _beginGracefulClose(reason: CloseReason, lingerMs: number): void {
    const f = this._flags;
    if ((f & (F.CLOSED | F.DESTROYED | F.ENDING)) !== 0) return;
    if (this.#reason === null) this.#reason = reason;
    this._flags = f | F.ENDING | F.WRITING;
    const ext = this.#extras();
    const deadline = this.loop.now() + lingerMs;
    if (ext.linger === null) ext.linger = this.loop._timers.schedule(deadline, lingerExpired, this);
    else this.loop._timers.reschedule(ext.linger, deadline);
    if (this._out === null) this.#end();
    else this.loop.updateClient(this);
  }

  /**
   * @internal Hands queued bytes to the socket, never past its writable
   * high-water mark: at most `writableHighWaterMark - writableLength` bytes,
   * or the next queued piece whole when it alone is larger and at most
   * {@link WHOLE_WRITE_MAX} (it is not sliced): the socket holds at most
   * `writableHighWaterMark + WHOLE_WRITE_MAX` bytes,
   * so `write()` returns false exactly when the socket is full, and only then
   * is 'drain' awaited ('drain' never follows a write that returned true).
   */
  _flush(): void {
    const f = this._flags;
    if ((f & (F.CLOSED | F.DESTROYED | F.AWAIT_DRAIN)) !== 0 || (f & F.WRITING) === 0) return;
    const s = this.socket;
    const out = this._out;
    if (out !== null) {
      let ok = true;
      while (out.bytes > 0) {
        const room = s.writableHighWaterMark - s.writableLength;
        if (room <= 0) {
          ok = false;
          break;
        }
        // A piece larger than the room, up to WHOLE_WRITE_MAX (a broadcast
        // batch shared by every client, held by reference), goes whole: one write per client instead
        // of one per high-water mark's worth, and no slice or copy. write()
        // then returns false and 'drain' follows, as for a full socket; nothing
        // escapes the limits, since bytes in the socket count as queued.
        const head = out.headBytes;
        const chunk = out.take(head > room && head <= WHOLE_WRITE_MAX ? head : room);
        this._flags |= F.COMPLETE_PENDING;
        // The last write of a flush carries a completion callback only when
        // someone waits for completion (a write-complete callback or a
        // `flushed()` promise): a callback on every write costs the echo path
        // about a tenth of its throughput here. An observer that arrives while
        // bytes are still in the socket sends a probe (#observeCompletion).
        ok = out.bytes === 0 && this.#completionObserved() ? s.write(chunk, this.#writtenFn()) : s.write(chunk);
        if (s.destroyed) return;
        if (!ok) break;
      }
      if (out.bytes === 0) {
        this._out = null;
        this.loop._releaseOutput(out);
      }
      if (!ok) {
        if ((this._flags & F.AWAIT_DRAIN) === 0) {
          this._flags |= F.AWAIT_DRAIN;
          if (s.listenerCount('drain') === 0) s.on('drain', onSocketDrain);
        }
      }
    }
    if (this._out === null) {
      // muduo disables writing once the buffer is empty; the next write enables it again.
      this._flags &= ~F.WRITING;
      if ((this._flags & (F.ENDING | F.ENDED)) === F.ENDING) this.#end();
      this.#checkComplete();
    }
    const ext = this.#ext;
    if (ext !== null && ext.softSince >= 0) this.#softUpdate();
  }

  /** @internal The socket drained after a write that returned false. */
  _onDrain(): void {
    this._flags &= ~F.AWAIT_DRAIN;
    if (this._out !== null) this._flush();
    else this.#checkComplete();
  }

  /** @internal A chunk arrived. */
  _onData(chunk: Buffer): void {
    if (this._cfg.idleTimeoutMs > 0) this.#lastReadAt = this.loop.now();
    this._flags |= F.IN_READ;
    try {
      const p = this._protocol;
      if (p !== null) p.onData(this, chunk);
      else this._owner._clientData(this, chunk);
      // What the handlers of this read queued for this client leaves now, in
      // one write, as muduo writes from inside its read callback: the reply
      // does not wait for the end of the turn (the other clients' reads), no
      // loop turn is scheduled for it, and appends made elsewhere in the turn
      // still coalesce at the turn's flush.
      this._flags &= ~F.IN_READ;
      if ((this._flags & F.DIRTY) !== 0) this.loop._flushNow(this);
    } catch (err) {
      this._flags &= ~(F.IN_READ | F.DIRTY);
      this.forceClose(
        'handler-error',
        new NetloopError(ErrorCode.HANDLER_ERROR, `a data handler threw: ${err instanceof Error ? err.message : String(err)}`, {
          cause: err,
          details: { clientId: this.id },
        }),
      );
    }
  }

  /** @internal The peer sent FIN. */
  _onEnd(): void {
    this._flags |= F.PEER_ENDED;
    if ((this._flags & (F.ENDING | F.DESTROYED | F.CLOSED)) !== 0) return;
    if (this._cfg.halfOpen) {
      this._owner._clientEnd(this);
      return;
    }
    // muduo #130: the peer's FIN does not throw queued output away; flush it, then close.
    this._beginGracefulClose('peer-closed', this._cfg.shutdownTimeoutMs);
  }

  /** @internal A socket error: it becomes the close reason (the socket closes by itself next). */
  _onError(err: unknown): void {
    const { reason, error } = closeReasonOfSocketError(err);
    if (this.#reason === null || isGracefulReason(this.#reason)) {
      this.#reason = reason;
      this.#setError(error);
    }
    this._flags |= F.DESTROYED;
    this.#dropOutput();
  }

  /** @internal The socket closed: report the close, exactly once. */
  _onClose(): void {
    const f = this._flags;
    if ((f & F.CLOSED) !== 0) return;
    this._flags = (f | F.CLOSED) & ~(F.WRITING | F.DIRTY | F.AWAIT_DRAIN | F.COMPLETE_PENDING);
    const reason: CloseReason = this.#reason ?? ((f & F.PEER_ENDED) !== 0 ? 'peer-closed' : 'force-close');
    this.#reason = reason;
    const error = this.#ext?.error;
    this.#dropOutput();
    const timers = this.loop._timers;
    timers.remove(this);
    const ext = this.#ext;
    if (ext !== null) {
      if (ext.softTimer !== null) timers.remove(ext.softTimer);
      if (ext.linger !== null) timers.remove(ext.linger);
    }
    this.loop._removeClient(this);
    noteClose(this, reason, error);
    // Every user callback runs even if an earlier one throws; the first error
    // is rethrown afterwards, as an EventEmitter would.
    let thrown: { err: unknown } | null = null;
    const waiters = ext?.waiters;
    if (ext !== null && waiters != null) {
      ext.waiters = null;
      const err = this.#closedError('wait on');
      for (const w of waiters) w.reject(err);
    }
    const p = this._protocol;
    if (p !== null && p.onClose !== undefined) {
      try {
        p.onClose(this, reason, error);
      } catch (err) {
        thrown ??= { err };
      }
    }
    if (ext !== null && ext.onClose !== null) {
      try {
        ext.onClose(this, reason, error);
      } catch (err) {
        thrown ??= { err };
      }
    }
    try {
      this._owner._clientClosed(this, reason, error);
    } catch (err) {
      thrown ??= { err };
    }
    if (thrown !== null) throw thrown.err;
  }

  /** @internal The idle deadline passed: close unless there was a read since (then re-arm lazily). */
  _onIdle(): void {
    const f = this._flags;
    const timeout = this._cfg.idleTimeoutMs;
    if ((f & (F.CLOSED | F.DESTROYED)) !== 0 || timeout === 0) return;
    const now = this.loop.now();
    if ((f & F.READING) === 0) {
      this.loop._timers.reschedule(this, now + timeout);
      return;
    }
    const due = this.#lastReadAt + timeout;
    if (due > now) {
      this.loop._timers.reschedule(this, due);
      return;
    }
    this.forceClose(
      'idle-timeout',
      new NetloopError(ErrorCode.IDLE_TIMEOUT, `no byte arrived for ${timeout} ms`, {
        details: { clientId: this.id, idleTimeoutMs: timeout },
      }),
    );
  }

  /** @internal Timer-queue entry: the idle deadline never repeats. */
  get interval(): number {
    return 0;
  }

  /** @internal Timer-queue entry: the argument of {@link Client.fn}, the client itself. */
  get arg(): Client {
    return this;
  }

  /** @internal Timer-queue entry: runs when the idle deadline is due. */
  fn(client: Client): void {
    client._onIdle();
  }

  /** @internal The soft-limit deadline passed: close if the output stayed above the soft limit. */
  _onSoftLimit(): void {
    const ext = this.#ext;
    if (ext === null || (this._flags & (F.CLOSED | F.DESTROYED)) !== 0 || ext.softSince < 0) return;
    const cfg = this._cfg;
    const queued = this.queuedBytes;
    if (queued < cfg.softOutputBytes) {
      ext.softSince = -1;
      return;
    }
    const due = ext.softSince + cfg.softOutputForMs;
    if (due > this.loop.now()) {
      this.loop._timers.reschedule(ext.softTimer!, due);
      return;
    }
    this.forceClose(
      'output-soft-limit',
      new NetloopError(
        ErrorCode.OUTPUT_SOFT_LIMIT,
        `queued output stayed at or above ${cfg.softOutputBytes} bytes for ${cfg.softOutputForMs} ms`,
        { details: { clientId: this.id, queuedBytes: queued, limit: cfg.softOutputBytes, forMs: cfg.softOutputForMs } },
      ),
    );
  }

  /**
   * @internal The graceful close took too long: destroy. The graceful reason
   * stays (forceClose replaces a graceful reason by the one given, here the
   * same), now with a `NETLOOP_CLOSE_TIMEOUT` error.
   */
  _onLinger(): void {
    if ((this._flags & (F.CLOSED | F.DESTROYED)) !== 0) return;
    const reason = this.#reason ?? 'shutdown';
    this.forceClose(
      reason,
      new NetloopError(ErrorCode.CLOSE_TIMEOUT, `graceful close did not finish in ${this._cfg.shutdownTimeoutMs} ms`, {
        details: { clientId: this.id, queuedBytes: this.queuedBytes },
      }),
    );
  }

  #end(): void {
    this._flags |= F.ENDED;
    this.socket.end();
  }

  /** True when a write-complete callback or a `flushed()` waiter is registered. */
  #completionObserved(): boolean {
    const ext = this.#ext;
    return ext !== null && (ext.writeComplete !== null || ext.waiters !== null);
  }

  #writtenFn(): () => void {
    return (this.#onWritten ??= () => this.#checkComplete());
  }

  /**
   * A completion observer was just registered. Bytes handed to the socket
   * without a completion callback (nobody observed then) may still be in it:
   * a zero-length write with the callback completes after them (the
   * socket's writes complete in order); after `end()` the socket's
   * `'finish'` says the same. If they already reached the kernel, that
   * completion happened before this observer: a new write-complete callback
   * is not run for it (`settle` false), a `flushed()` waiter is resolved
   * (queued, never synchronously).
   */
  #observeCompletion(settle: boolean): void {
    const f = this._flags;
    if ((f & F.COMPLETE_PENDING) === 0 || this._out !== null || (f & (F.CLOSED | F.DESTROYED)) !== 0) return;
    const s = this.socket;
    if (s.writableLength === 0) {
      if (settle) this.#checkComplete();
      else this._flags &= ~F.COMPLETE_PENDING;
    } else if (s.writableEnded) {
      s.once('finish', this.#writtenFn());
    } else {
      s.write(EMPTY_PROBE, this.#writtenFn());
    }
  }

  #checkComplete(): void {
    const f = this._flags;
    if ((f & F.COMPLETE_PENDING) === 0 || (f & (F.CLOSED | F.DESTROYED)) !== 0) return;
    if (this._out !== null || this.socket.writableLength !== 0) return;
    this._flags = f & ~F.COMPLETE_PENDING;
    const ext = this.#ext;
    if (ext === null || (ext.writeComplete === null && ext.waiters === null)) return;
    this.loop.queueInLoop((ext.completeFn ??= () => this.#runWriteComplete()));
  }

  #runWriteComplete(): void {
    const ext = this.#ext;
    if (ext === null || (this._flags & F.CLOSED) !== 0) return;
    const waiters = ext.waiters;
    if (waiters !== null) {
      ext.waiters = null;
      for (const w of waiters) w.resolve();
    }
    if (ext.writeComplete !== null) ext.writeComplete(this);
  }

  #softUpdate(): void {
    const cfg = this._cfg;
    if (cfg.softOutputBytes === 0) return;
    const queued = this.queuedBytes;
    const ext = this.#extras();
    if (queued < cfg.softOutputBytes) {
      ext.softSince = -1;
      return;
    }
    if (ext.softSince >= 0) return;
    ext.softSince = this.loop.now();
    const deadline = ext.softSince + cfg.softOutputForMs;
    if (ext.softTimer === null) ext.softTimer = this.loop._timers.schedule(deadline, softExpired, this);
    else this.loop._timers.reschedule(ext.softTimer, deadline);
  }

  #dropOutput(): void {
    const out = this._out;
    if (out !== null) {
      this._out = null;
      this.loop._releaseOutput(out);
    }
  }

  /** The error reported with the close; kept in the extras (a close is rare per connection), so clean closes allocate nothing. */
  #setError(error: NetloopError | undefined): void {
    if (error !== undefined || this.#ext !== null) this.#extras().error = error;
  }

  #extras(): ClientExtras {
    return (this.#ext ??= {
      writeComplete: null,
      highWater: null,
      highWaterBytes: 0,
      onClose: null,
      waiters: null,
      softSince: -1,
      softTimer: null,
      linger: null,
      completeFn: null,
      error: undefined,
    });
  }

  #closedError(what: string): NetloopError {
    return new NetloopError(ErrorCode.CLIENT_CLOSED, `cannot ${what} client ${this.id}: it is ${this.closed ? 'closed' : 'closing'}`, {
      details: { clientId: this.id, reason: this.#reason },
    });
  }
}

// Shared listeners: `this` is the socket; one function for every client, not a closure each.
function onSocketData(this: ClientSocket, chunk: Buffer): void {
  this[kClient]!._onData(chunk);
}
function onSocketEnd(this: ClientSocket): void {
  this[kClient]!._onEnd();
}

/**
 * Node's own `'end'` listener of a socket (net's `onReadableStreamEnd`) and
 * one shared function that runs it and then {@link onSocketEnd}, learnt from
 * the first socket seen.
 */
let nodeEnd: { readonly own: (this: net.Socket) => void; readonly both: (this: ClientSocket) => void } | null = null;

/**
 * Listens for the peer's FIN. A socket comes with exactly one `'end'`
 * listener of Node's own; adding a second turns that slot of its event table
 * into an array (about 76 bytes per connection). When the slot holds Node's
 * listener, it is replaced by a shared function calling Node's listener and
 * then ours, in the order two listeners would run; otherwise ours is added.
 */
function listenForEnd(socket: net.Socket): void {
  const events = (socket as unknown as { _events?: Record<string, unknown> })._events;
  const own = events === undefined ? undefined : events['end'];
  if (typeof own === 'function') {
    if (nodeEnd === null) {
      const node = own as (this: net.Socket) => void;
      nodeEnd = {
        own: node,
        both(this: ClientSocket): void {
          node.call(this);
          onSocketEnd.call(this);
        },
      };
    }
    if (own === nodeEnd.own) {
      events!['end'] = nodeEnd.both;
      return;
    }
  }
  socket.on('end', onSocketEnd);
}
function onSocketError(this: ClientSocket, err: Error): void {
  this[kClient]!._onError(err);
}
function onSocketClose(this: ClientSocket): void {
  this[kClient]!._onClose();
}
function onSocketDrain(this: ClientSocket): void {
  this[kClient]!._onDrain();
}
function softExpired(client: Client): void {
  client._onSoftLimit();
}
function lingerExpired(client: Client): void {
  client._onLinger();
}
