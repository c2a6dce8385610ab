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
 * This module is one cohesive state machine (the write path, the close
 * states and the read-pause reasons all read and set the same state bits,
 * `_flags`, in the same calls), so it stays in one file past the usual size.
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
 * A close this side starts (end(), removeClient, a server or loop close,
 * a session notice) also sets DISCARD: from then on input is read and
 * dropped, whatever paused reading, and nothing more reaches the
 * application. A peer that keeps sending while it slowly reads the last
 * bytes would otherwise have unread input pending when the socket is
 * destroyed, and the kernel answers that with a reset that throws away what
 * it still holds for the peer (the notice's tail). Reading on until the
 * peer closes (or the deadline) is what lets the FIN, and everything before
 * it, arrive.
 *
 * Reading is paused for reasons, one bit each; the socket reads while no
 * reason holds it (or while DISCARD is set):
 *
 * ```
 *   PAUSE_APP      pause() / resume()
 *   PAUSE_FRAMING  the framing layer's inbound backpressure
 *   PAUSE_OUTPUT   queued output of this client (readPauseOutputBytes) or of a
 *                  linked consumer (linkBackpressure) at or above its high mark
 *   READING        the socket's actual state, derived from the three
 * ```
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
import { ErrorCode, NetloopError } from '../core/errors.js';
import { noteClose, noteHandlerError } from './diagnostics.js';
import { reportFault } from '../core/emitter.js';
import { ClientFlag } from './loop-member.js';
import type { LoopClient, LoopClientOwner } from './loop-member.js';
import { checkReadPauseMarks } from './client-limits.js';
import type { ClientConfig, ReadPauseMarks } from './client-limits.js';

export { ClientFlag } from './loop-member.js';

/**
 * @internal What {@link Client._appendFrame} writes a frame with (the LTV
 * encoder, or the framing's text writer): it writes a frame it has already
 * checked at `target[offset]`, the value being `value[start, end)` (or a
 * text it holds), and returns the bytes it wrote, never more than the
 * frame length it was given room for.
 */
export interface InPlaceFrameWriter {
  _writeChecked(target: Uint8Array, offset: number, type: number, value: Uint8Array, start: number, end: number): number;
}

const F = ClientFlag;

/** Any reason to pause reading. */
const PAUSED = F.PAUSE_APP | F.PAUSE_FRAMING | F.PAUSE_OUTPUT;
/** States in which appends return false and queue nothing. */
const UNWRITABLE = F.CLOSED | F.DESTROYED | F.ENDING | F.LIMIT_CLOSE;

/** @internal The reasons a layer of netloop pauses a client's reading for ({@link Client._pauseReading}). */
export const PauseReason = {
  /** The framing layer's inbound backpressure. */
  FRAMING: F.PAUSE_FRAMING,
} as const;

// The callbacks below are typed inline with the client's own class (`this`);
// callbacks.ts names them (WriteCompleteCallback, HighWaterMarkCallback,
// CloseCallback) for applications, and sits above this module so that no
// import goes both ways. Each may return a promise (an async function): a
// rejection is handled as a throw is (see Client._handlerFault).

/** A callback stored in a client's extras: the client's own class is erased there. */
type StoredCallback = (client: Client, ...args: unknown[]) => unknown;

/** What owns a client (a Server or a Connector): it hears its data, half-close and close (internal). */
export interface ClientOwner extends LoopClientOwner {
  /** The loop of the owner and of each of its clients. */
  readonly loop: EventLoop;
  /** @internal Called with each chunk a client reads, before it is delivered (a server's read taps); null when there is none. */
  readonly _readTap: ((client: Client, chunk: Buffer) => void) | null;
  /** @internal */
  _clientData(client: Client, chunk: Buffer): void;
  /** @internal */
  _clientEnd(client: Client): void;
  /** @internal */
  _clientClosed(client: Client, reason: CloseReason, error: NetloopError | undefined): void;
  /**
   * @internal A fault of application code that no open client can answer for (the
   * client is already closed, or its close keeps another reason): reported on
   * the owner's `'error'` path, never thrown.
   */
  _fault(error: NetloopError): void;
}

/**
 * @internal What a backpressure link holds back: a client's reading
 * ({@link linkBackpressure}), or a producer of a layer above, such as the
 * messaging layer's stream senders ({@link _linkOutput}). The consumer calls
 * `_hold` when its queued output reaches the link's high mark and `_unhold`
 * once it drained to the low mark, both from inside its write path (a
 * producer defers any work of its own); `_unlink` when the link ends (either
 * side closed, or the link was undone), after a last `_unhold` if it held.
 */
export interface OutputProducer {
  _hold(): void;
  _unhold(): void;
  _unlink(link: BackpressureLink): void;
}

/**
 * @internal A producer whose reading follows a consumer's queued output
 * ({@link linkBackpressure}). Listed in the extras of both clients (of the
 * consumer alone when the producer is not a client).
 *
 * ```
 *   producer ──reads──▶ application ──writes──▶ consumer (queued >= high ? hold : queued <= low ? release)
 * ```
 */
export interface BackpressureLink {
  readonly producer: OutputProducer;
  readonly consumer: Client;
  readonly high: number;
  readonly low: number;
  /** The producer has more to send (a stream transfer): the consumer's output is not complete while the link lasts. */
  readonly holdsCompletion: boolean;
  /** The consumer holds the producer paused. */
  holding: boolean;
}

/**
 * What a client rarely needs, created on first use.
 *
 * ```
 *   { writeComplete, highWater, highWaterBytes, onClose, waiters,
 *     softSince, softTimer, linger, lingerMs, completeFn, error,
 *     holds, links, completionHolds }
 * ```
 */
interface ClientExtras {
  writeComplete: StoredCallback | null;
  highWater: StoredCallback | null;
  highWaterBytes: number;
  onClose: StoredCallback | null;
  waiters: Array<{ resolve: () => void; reject: (err: NetloopError) => void }> | null;
  /** When queued output reached the soft limit (monotonic ms), or -1. */
  softSince: number;
  softTimer: TimerEntry | null;
  linger: TimerEntry | null;
  completeFn: (() => void) | null;
  /** The error reported with the close, if any. */
  error: NetloopError | undefined;
  /** The deadline of the graceful close under way, in ms from its start. */
  lingerMs: number;
  /** How many queued outputs hold this client's reading paused (PAUSE_OUTPUT while > 0). */
  holds: number;
  /** Backpressure links this client is the producer or the consumer of. */
  links: BackpressureLink[] | null;
  /** Links of stream transfers to this client: while any lasts, write-complete and `flushed()` wait. */
  completionHolds: number;
}

/** The zero-length write that reports when every byte written before it has reached the kernel. */
const EMPTY_PROBE = Buffer.alloc(0);

/** The socket property that leads the shared listeners back to their client. */
const kClient = Symbol('netloop.client');
type ClientSocket = net.Socket & { [kClient]?: Client };

let nextId = 1;

/**
 * One connection. Created by a `Server` or a `Connector` (their client
 * factory); never constructed by the application. See the module comment.
 * The reactor's client knows no codec and no authentication: a layer above
 * extends it (the framing layer's `FramedClient` overrides
 * {@link Client._handleData}).
 */
export class Client implements LoopClient {
  /** Process-unique and never reused; stands in for the file descriptor. */
  readonly id: number;
  /** The underlying socket (half-open allowed internally; do not write to it directly). */
  readonly socket: net.Socket;
  /** Per-client user data (muduo's context); netloop never reads it. */
  context: unknown = undefined;
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

  /**
   * @internal Made by a server's or a connector's client factory (a subclass
   * of Server or Connector that makes clients of its own class calls it).
   */
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

  /** @internal The owner's graceful-close deadline (`shutdownTimeoutMs`), for `loop.removeClient`. */
  get _shutdownTimeoutMs(): number {
    return this._cfg.shutdownTimeoutMs;
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

  /** True when a close was asked for (end(), destroy(), a limit, an error) but not reported yet. */
  get closing(): boolean {
    return (this._flags & F.CLOSED) === 0 && (this._flags & (F.ENDING | F.DESTROYED | F.LIMIT_CLOSE)) !== 0;
  }

  /**
   * @internal Why the client is closing or closed (null while open), and the
   * error reported with it: final once the close is reported, so a layer
   * that learns of the close from the client itself (a backpressure link's
   * `_unlink`) can say why.
   */
  get _closeReason(): CloseReason | null {
    return this.#reason;
  }

  /** @internal The error of {@link Client._closeReason}, if any. */
  get _closeError(): NetloopError | undefined {
    return this.#ext?.error;
  }

  /** Bytes not yet handed to the kernel: the client's own buffer plus the socket's. */
  get queuedBytes(): number {
    return (this._out === null ? 0 : this._out.bytes) + this.socket.writableLength;
  }

  /**
   * True while the client takes output: open, and no close asked for. Once
   * false, appends and `write` (and a framed client's `send` and
   * `sendRaw`) return false and queue
   * nothing.
   */
  get writable(): boolean {
    return (this._flags & UNWRITABLE) === 0;
  }

  /**
   * Queues `data` (held by reference: do not modify it afterwards; a string is
   * encoded as UTF-8). Nothing is sent until writing is enabled and the loop
   * is updated ({@link Client.write} does all three).
   *
   * @returns true when queued; false, queuing nothing, when the client is
   *   closing or closed (see {@link Client.writable}: a send to a client on
   *   its way out is not the sender's fault), or when the append would pass
   *   the hard output limit (the client is then closed from the loop with
   *   `'output-limit'` / `NETLOOP_OUTPUT_LIMIT`).
   * @throws NetloopError `NETLOOP_INVALID_VALUE` when `data` is neither a
   *   string nor a Uint8Array, whatever the client's state.
   */
  appendToOutputBuffer(data: Uint8Array | string): boolean {
    const isString = typeof data === 'string';
    if (!isString && !(data instanceof Uint8Array)) throw invalidData('appendToOutputBuffer', data);
    if ((this._flags & UNWRITABLE) !== 0) return false;
    const buf = isString
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
   * @internal Queues one frame that `writer` writes in place into the output
   * buffer (no intermediate Buffer): the framing layer's path for small
   * replies. `frameLength` is the most the writer may write (the frame's
   * exact size, or a bound when the size is known only once written, as for
   * a text's UTF-8): room for it is reserved, and the hard output limit is
   * checked against the bytes actually written, so a bound never refuses a
   * frame that fits. The frame must already be checked by the writer's
   * owner. Same result as {@link appendToOutputBuffer}.
   */
  _appendFrame(writer: InPlaceFrameWriter, type: number, value: Uint8Array, start: number, end: number, frameLength: number): boolean {
    if ((this._flags & UNWRITABLE) !== 0) return false;
    const old = this.queuedBytes;
    const max = this._cfg.maxOutputBytes;
    let out = this._out;
    if (out === null) out = this._out = this.loop._acquireOutput();
    const target = out.reserve(frameLength);
    const n = writer._writeChecked(target, out.reservedOffset, type, value, start, end);
    if (old + n > max) {
      // The reservation is not committed, so nothing is queued; an output
      // buffer taken for this frame alone goes back to the loop.
      if (out.bytes === 0) {
        this._out = null;
        this.loop._releaseOutput(out);
      }
      return this.#refuse(old, n);
    }
    out.commit(n);
    this.#appended(old, old + n);
    return true;
  }

  /** An append of `n` bytes would pass the hard limit: nothing is queued, the forced close is queued. */
  #refuse(old: number, n: number): false {
    this._flags |= F.LIMIT_CLOSE;
    const err = outputLimitError(old, n, this._cfg.maxOutputBytes);
    this.loop.queueInLoop(() => this.destroy('output-limit', err));
    return false;
  }

  /**
   * After an append took the queued bytes from `old` to `now`: the high-water
   * crossing, the soft limit, the read-pause marks. With none of them set this
   * is two loads and two comparisons.
   */
  #appended(old: number, now: number): void {
    const ext = this.#ext;
    if (ext !== null) {
      if (ext.highWater !== null && old < ext.highWaterBytes && now >= ext.highWaterBytes) {
        const cb = ext.highWater;
        this.loop.queueInLoop(() => {
          if ((this._flags & F.CLOSED) === 0) this._invoke('high-water callback', () => cb(this, now));
        });
      }
      if (ext.links !== null) this.#holdLinked(ext.links, now);
    }
    const cfg = this._cfg;
    if (now >= cfg.watchBytes) {
      if (cfg.softOutputBytes > 0 && now >= cfg.softOutputBytes) this.#softUpdate();
      if (now >= cfg.readPauseHigh && (this._flags & F.SELF_HOLD) === 0) {
        this._flags |= F.SELF_HOLD | F.HOLDING;
        this._hold();
      }
    }
  }

  /**
   * Appends two pieces (a frame's header and its uncopied value) all or
   * nothing with respect to the hard output limit: their total is checked
   * before either is queued. Same result as {@link appendToOutputBuffer};
   * throws `NETLOOP_INVALID_VALUE` unless both are Uint8Arrays.
   */
  appendPairToOutputBuffer(first: Uint8Array, second: Uint8Array): boolean {
    if (!(first instanceof Uint8Array)) throw invalidData('appendPairToOutputBuffer', first);
    if (!(second instanceof Uint8Array)) throw invalidData('appendPairToOutputBuffer', second);
    if ((this._flags & UNWRITABLE) !== 0) return false;
    const old = this.queuedBytes;
    const n = first.byteLength + second.byteLength;
    if (old + n > this._cfg.maxOutputBytes) return this.#refuse(old, n);
    // The total fits, so the second append cannot pass the limit once the first is queued.
    return this.appendToOutputBuffer(first) && this.appendToOutputBuffer(second);
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
   * and the socket's buffer empty, every byte handed to the kernel (while a
   * stream transfer of the messaging layer runs on the client, only after
   * its last byte: the transfer has more to send). A throw
   * or a rejected promise closes the client with `'handler-error'`. See
   * {@link WriteCompleteCallback}. Part of the low-level batching API
   * (with {@link Client.appendToOutputBuffer}, {@link Client.enableWriting}
   * and `loop.updateClient`).
   */
  setWriteCompleteCallback(cb: ((client: this) => unknown) | null): void {
    this.#extras().writeComplete = cb as StoredCallback | null;
    if (cb !== null) this.#observeCompletion(false);
  }

  /**
   * Sets the callback run (queued) when the queued bytes cross `bytes` upward:
   * once per crossing (before < bytes <= after), as muduo does. A throw or a
   * rejected promise closes the client with `'handler-error'`. See
   * {@link HighWaterMarkCallback}.
   */
  setHighWaterMarkCallback(cb: ((client: this, queuedBytes: number) => unknown) | null, bytes: number): void {
    if (cb !== null && (!Number.isInteger(bytes) || bytes < 1)) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, `high-water mark must be a positive integer, got ${String(bytes)}`, {
        details: { option: 'bytes', value: bytes },
      });
    }
    const ext = this.#extras();
    ext.highWater = cb as StoredCallback | null;
    ext.highWaterBytes = cb === null ? 0 : bytes;
  }

  /**
   * Sets the callback run once when the client closes, before the owner's
   * `'close'` event. The client is closed by then, so a throw or a rejected
   * promise is reported on the owner's `'error'` path. See {@link CloseCallback}.
   */
  setCloseCallback(cb: ((client: this, reason: CloseReason, error?: NetloopError) => unknown) | null): void {
    this.#extras().onClose = cb as StoredCallback | null;
  }

  /**
   * Resolves once everything queued so far has been handed to the kernel
   * (and any stream transfer running on the client has ended: see
   * {@link Client.setWriteCompleteCallback}); rejects with
   * `NETLOOP_CLIENT_CLOSED` if the client closes first. Settles once.
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
   * Closes gracefully (Node's `socket.end()`, muduo's `shutdown()`): sends
   * everything queued, then FIN, then reads and discards input (nothing more
   * reaches the application) until the peer closes its side; the close is
   * then reported (`'shutdown'`), or the socket is destroyed after the
   * owner's `shutdownTimeoutMs` (`NETLOOP_CLOSE_TIMEOUT`). Appends return
   * false from now on. A client already closing keeps its own close. For a
   * graceful close with a reason of the caller's and a deadline of its own,
   * see `loop.removeClient`; for the immediate close, {@link Client.destroy}.
   */
  end(): void {
    this._beginGracefulClose('shutdown', this._cfg.shutdownTimeoutMs);
  }

  /**
   * Destroys the connection now (Node's `socket.destroy()`); queued output is
   * dropped (bytes already in the kernel may be lost too: the kernel resets a
   * connection closed with unread input). The close is reported from the
   * loop, with `reason` (default `'force-close'`) and `error`; a graceful
   * close under way is replaced by it (its reason too, unless the graceful
   * close keeps its caller's reason: then `error` says why it ended early).
   * Nothing happens once the client is destroyed or closed. For a close that
   * delivers what is queued, see {@link Client.end} and `loop.removeClient`.
   */
  destroy(reason: CloseReason = 'force-close', error?: NetloopError): void {
    const f = this._flags;
    if ((f & (F.CLOSED | F.DESTROYED)) !== 0) return;
    this._flags = f | F.DESTROYED;
    const current = this.#reason;
    if (current === null || isGracefulReason(current)) {
      this.#reason = reason;
      this.#setError(error);
    } else if (current === reason && error !== undefined && this.#ext?.error === undefined) {
      // The deadline of a graceful close that keeps its caller's reason
      // (removeClient, a session notice): the reason stays, the error says why.
      this.#setError(error);
    }
    this.#dropOutput();
    this.socket.destroy();
  }

  /**
   * Stops reading from the socket (the application's backpressure; Node's
   * `socket.pause()`); the idle
   * timeout does not run while reading is paused. Other layers pause reading
   * for reasons of their own (the framing layer's inbound limits,
   * `readPauseOutputBytes`, {@link linkBackpressure}); each reason is kept
   * apart, so none resumes reading another still holds paused.
   */
  pause(): void {
    this._pauseReading(F.PAUSE_APP);
  }

  /** Lifts the application's pause; the socket reads again once no other reason holds it paused. */
  resume(): void {
    this._resumeReading(F.PAUSE_APP);
  }

  /** True while the socket reads: no reason holds it paused (or a close of ours discards input). */
  isReading(): boolean {
    return (this._flags & F.READING) !== 0;
  }

  /** @internal Pauses reading for `reason` (a {@link PauseReason} bit). */
  _pauseReading(reason: number): void {
    if ((this._flags & reason) !== 0) return;
    this._flags |= reason;
    this.#applyReading();
  }

  /** @internal Lifts the pause of `reason`. */
  _resumeReading(reason: number): void {
    if ((this._flags & reason) === 0) return;
    this._flags &= ~reason;
    this.#applyReading();
  }

  /** Pauses or resumes the socket to match the pause reasons (a close of ours always reads, to discard). */
  #applyReading(): void {
    const f = this._flags;
    const want = (f & PAUSED) === 0 || (f & F.DISCARD) !== 0;
    if (want === ((f & F.READING) !== 0)) return;
    if (want) {
      this._flags = f | F.READING;
      this.#lastReadAt = this.loop.now();
      this.socket.resume();
    } else {
      this._flags = f & ~F.READING;
      this.socket.pause();
    }
  }

  /** @internal One more queued output holds this client's reading paused. */
  _hold(): void {
    const ext = this.#extras();
    if (ext.holds++ === 0) this._pauseReading(F.PAUSE_OUTPUT);
  }

  /** @internal One queued output less holds it. */
  _unhold(): void {
    const ext = this.#ext;
    if (ext === null || ext.holds === 0) return;
    if (--ext.holds === 0) this._resumeReading(F.PAUSE_OUTPUT);
  }

  /** Links of which this client is the consumer: hold their producers once `now` queued bytes reach a link's high mark. */
  #holdLinked(links: BackpressureLink[], now: number): void {
    for (const l of links) {
      if (l.consumer === this && !l.holding && now >= l.high) {
        l.holding = true;
        this._flags |= F.HOLDING;
        l.producer._hold();
      }
    }
  }

  /** Queued output drained some: release the producers held by marks whose low mark it is now at or below. */
  #releaseHolds(): void {
    const queued = this.queuedBytes;
    let still = false;
    if ((this._flags & F.SELF_HOLD) !== 0) {
      if (queued <= this._cfg.readPauseLow) {
        this._flags &= ~F.SELF_HOLD;
        this._unhold();
      } else still = true;
    }
    const links = this.#ext?.links;
    if (links != null) {
      for (const l of links) {
        if (l.consumer !== this || !l.holding) continue;
        if (queued <= l.low) {
          l.holding = false;
          l.producer._unhold();
        } else still = true;
      }
    }
    if (!still) this._flags &= ~F.HOLDING;
  }

  /** @internal A link was just made: hold its producer if the output is already at its mark. */
  _checkLinks(): void {
    const links = this.#ext?.links;
    if (links != null) this.#holdLinked(links, this.queuedBytes);
  }

  /** @internal A stream transfer's link was made: the output is not complete until it ends (see {@link _linkOutput}). */
  _holdCompletion(): void {
    this.#extras().completionHolds++;
  }

  /** @internal Adds a backpressure link (see {@link linkBackpressure}). */
  _link(link: BackpressureLink): void {
    (this.#extras().links ??= []).push(link);
  }

  /** @internal Removes a backpressure link, releasing its producer if it held it. */
  _unlink(link: BackpressureLink): void {
    const links = this.#ext?.links;
    if (links == null) return;
    const i = links.indexOf(link);
    if (i < 0) return;
    links.splice(i, 1);
    if (link.holding) {
      link.holding = false;
      link.producer._unhold();
    }
    if (link.holdsCompletion && link.consumer === this && --this.#ext!.completionHolds === 0) this.#checkComplete();
  }

  // ─── internals (called by the loop and the owners) ──────────────────────────

  /**
   * @internal Starts a graceful close with `reason`: flush, FIN, then wait for
   * the peer's FIN; destroyed after `lingerMs`. Does nothing when a close is
   * already under way. With `discard` (a close of ours, as opposed to the
   * answer to the peer's FIN), input is read and dropped from now on, even
   * if reading was paused, and nothing more is handed to the application:
   * the peer's unread bytes would otherwise make the kernel reset the
   * connection and drop what it still holds for the peer.
   */
  _beginGracefulClose(reason: CloseReason, lingerMs: number, discard = true): void {
    const f = this._flags;
    if ((f & (F.CLOSED | F.DESTROYED | F.ENDING)) !== 0) return;
    if (this.#reason === null) this.#reason = reason;
    this._flags = f | F.ENDING | F.WRITING | (discard ? F.DISCARD : 0);
    const ext = this.#extras();
    ext.lingerMs = lingerMs;
    const deadline = this.loop.now() + lingerMs;
    if (ext.linger === null) ext.linger = this.loop._timers.schedule(deadline, lingerExpired, this);
    else this.loop._timers.reschedule(ext.linger, deadline);
    if (discard) {
      this._closing();
      this.#applyReading();
    }
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
      // The socket holds nothing once every write completed at once (Node
      // lets go of a chunk when its write completes): the slab can then be
      // written again from its start. A write left unfinished pins it.
      if (s.writableLength !== 0) out.pin();
      else out.rewind();
      if (out.bytes === 0) {
        this._out = null;
        this.loop._releaseOutput(out);
      }
      if (!ok && (this._flags & F.AWAIT_DRAIN) === 0) {
        this._flags |= F.AWAIT_DRAIN;
        // Our own state bit, not the socket's listener count: a 'drain'
        // listener the application adds to the socket must not keep ours off.
        if ((this._flags & F.DRAIN_LISTENING) === 0) {
          this._flags |= F.DRAIN_LISTENING;
          s.on('drain', onSocketDrain);
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
    if ((this._flags & F.HOLDING) !== 0) this.#releaseHolds();
  }

  /** @internal The socket drained after a write that returned false. */
  _onDrain(): void {
    if ((this._flags & F.AWAIT_DRAIN) === 0) return;
    this._flags &= ~F.AWAIT_DRAIN;
    if (this._out !== null) this._flush();
    else {
      this.#checkComplete();
      if ((this._flags & F.HOLDING) !== 0) this.#releaseHolds();
    }
  }

  /**
   * @internal A chunk arrived: the owner's read taps see it, then
   * {@link Client._handleData} delivers it, and what that queued for this
   * client leaves in one write.
   */
  _onData(chunk: Buffer): void {
    // A close of ours is under way: the input is read only to be dropped.
    if ((this._flags & F.DISCARD) !== 0) return;
    if (this._cfg.idleTimeoutMs > 0) this.#lastReadAt = this.loop.now();
    this._flags |= F.IN_READ;
    try {
      const tap = this._owner._readTap;
      if (tap !== null) tap(this, chunk);
      this._handleData(chunk);
      // What the handlers of this read queued for this client leaves now, in
      // one write, as muduo writes from inside its read callback: the reply
      // does not wait for the end of the turn (the other clients' reads), no
      // loop turn is scheduled for it, and appends made elsewhere in the turn
      // still coalesce at the turn's flush.
      this._flags &= ~F.IN_READ;
      if ((this._flags & F.DIRTY) !== 0) this.loop._flushNow(this);
    } catch (err) {
      this._flags &= ~(F.IN_READ | F.DIRTY);
      this._handlerFault(err, "'data' listener");
    }
  }

  /**
   * The seam of the layers above the reactor: delivers one chunk read from
   * the socket. A raw client hands it to its owner's `'data'` event; a
   * subclass that speaks a protocol (the framing layer's `FramedClient`
   * decodes frames) overrides it. It runs inside the client's read callback:
   * what it queues for this client is flushed once when it returns, and a
   * throw closes the client with `'handler-error'`.
   */
  protected _handleData(chunk: Buffer): void {
    this._owner._clientData(this, chunk);
  }

  /**
   * The seam's hook for a close of ours that began (`end()`,
   * `loop.removeClient`, a server or loop close, a session notice): from
   * now on input is discarded, and a subclass hands nothing more to the
   * application (frames it still holds included). Nothing for a raw client.
   */
  protected _closing(): void {}

  /**
   * The seam's hook for the close, called once, before the close callback
   * and the owner's `'close'` event: a subclass releases what it holds for
   * the connection. A throw is a handler fault (the owner's `'error'` path).
   */
  protected _closed(_reason: CloseReason, _error: NetloopError | undefined): void {}

  /**
   * @internal Application code run for this client threw `err` (or its
   * promise rejected with it): the client is closed with `'handler-error'`
   * and a `NETLOOP_HANDLER_ERROR` carrying `cause`, `details.clientId` and
   * `details.source`, published on `netloop:handler:error` (by the close, or
   * here when it goes elsewhere). When no open client can answer for
   * it (the client is already closed, or its close keeps another reason), the
   * error goes to the owner's `'error'` path instead; a `NETLOOP_CLIENT_CLOSED`
   * rejection from a client already closed is not reported again (its close
   * says why), nor are faults after the first handler error of a client.
   */
  _handlerFault(err: unknown, source: string): void {
    const error = handlerError(err, source, this.id);
    if ((this._flags & (F.CLOSED | F.DESTROYED)) === 0) {
      // The close publishes it (diagnostics' noteClose), as it does the framing layer's handler faults.
      this.destroy('handler-error', error);
      if (this.#reason === 'handler-error') return;
    } else if (this.#reason === 'handler-error' || (err instanceof NetloopError && err.code === ErrorCode.CLIENT_CLOSED)) {
      return;
    }
    noteHandlerError(this.id, source, error);
    this._owner._fault(error);
  }

  /** @internal Runs application code `fn` for this client under the guard of {@link Client._handlerFault}. */
  _invoke(source: string, fn: () => unknown): void {
    let result: unknown;
    try {
      result = fn();
    } catch (err) {
      this._handlerFault(err, source);
      return;
    }
    this._callApp(source, result);
  }

  /**
   * @internal What application code called for this client returned: a
   * promise (any thenable) that rejects is a handler fault of `source`.
   * Costs one comparison for a function that returns nothing.
   */
  _callApp(source: string, result: unknown): void {
    if (result === undefined || result === null) return;
    try {
      const then = (result as PromiseLike<unknown>).then;
      if (typeof then === 'function') then.call(result, undefined, (err: unknown) => this._handlerFault(err, source));
    } catch (err) {
      this._handlerFault(err, source);
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
    // muduo #130: the peer's FIN does not throw queued output away; flush it,
    // then close. Nothing more will be read, and what was read before the FIN
    // (frames the framing layer holds for a later turn) is still handled.
    this._beginGracefulClose('peer-closed', this._cfg.shutdownTimeoutMs, false);
  }

  /** @internal A socket error: it becomes the close reason (the socket closes by itself next). */
  _onError(err: unknown): void {
    const { reason, error } = closeReasonOfSocketError(err);
    if (this.#reason === null || isGracefulReason(this.#reason)) {
      this.#reason = reason;
      this.#setError(error);
    } else if ((this._flags & F.ENDING) !== 0 && this.#ext?.error === undefined) {
      // A graceful close that keeps its caller's reason failed: the error says how.
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
    if (ext !== null && ext.links !== null) {
      // Producers this client held are released; links end with either side.
      for (const l of [...ext.links]) unlinkBoth(l);
    }
    // Every callback runs even if an earlier one throws; none throws out of
    // here (this runs from the socket's 'close' event, where a throw would
    // end the process): a fault goes to the owner's 'error' path.
    const waiters = ext?.waiters;
    if (ext !== null && waiters != null) {
      ext.waiters = null;
      const err = this.#closedError('wait on');
      for (const w of waiters) w.reject(err);
    }
    try {
      this._closed(reason, error);
    } catch (err) {
      this._handlerFault(err, 'close hook');
    }
    if (ext !== null && ext.onClose !== null) {
      const cb = ext.onClose;
      this._invoke('close callback', () => cb(this, reason, error));
    }
    this._owner._clientClosed(this, reason, error);
  }

  /** @internal The idle deadline passed: close unless there was a read since (then re-arm lazily). */
  _onIdle(): void {
    const f = this._flags;
    const timeout = this._cfg.idleTimeoutMs;
    // A graceful close under way is bounded by its own deadline.
    if ((f & (F.CLOSED | F.DESTROYED | F.ENDING)) !== 0 || timeout === 0) return;
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
    this.destroy(
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
    // A graceful close under way (its output can only shrink) is bounded by its own deadline.
    if (ext === null || (this._flags & (F.CLOSED | F.DESTROYED | F.ENDING)) !== 0 || ext.softSince < 0) return;
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
    this.destroy(
      'output-soft-limit',
      new NetloopError(
        ErrorCode.OUTPUT_SOFT_LIMIT,
        `queued output stayed at or above ${cfg.softOutputBytes} bytes for ${cfg.softOutputForMs} ms`,
        { details: { clientId: this.id, queuedBytes: queued, limit: cfg.softOutputBytes, forMs: cfg.softOutputForMs } },
      ),
    );
  }

  /**
   * @internal The graceful close took too long: destroy. The reason stays
   * (destroy keeps a reason given again), now with a
   * `NETLOOP_CLOSE_TIMEOUT` error.
   */
  _onLinger(): void {
    if ((this._flags & (F.CLOSED | F.DESTROYED)) !== 0) return;
    const reason = this.#reason ?? 'shutdown';
    const ms = this.#ext?.lingerMs ?? this._cfg.shutdownTimeoutMs;
    this.destroy(
      reason,
      new NetloopError(ErrorCode.CLOSE_TIMEOUT, `graceful close did not finish in ${ms} ms`, {
        details: { clientId: this.id, queuedBytes: this.queuedBytes, timeoutMs: ms, finSent: (this._flags & F.ENDED) !== 0 },
      }),
    );
  }

  #end(): void {
    this._flags |= F.ENDED;
    this.socket.end();
  }

  /** True when a write-complete callback or a `flushed()` waiter is registered, or queued output holds reading paused. */
  #completionObserved(): boolean {
    if ((this._flags & F.HOLDING) !== 0) return true;
    const ext = this.#ext;
    return ext !== null && (ext.writeComplete !== null || ext.waiters !== null);
  }

  #writtenFn(): () => void {
    return (this.#onWritten ??= () => {
      this.#checkComplete();
      // Write-complete (or the low mark) releases what the output held.
      if ((this._flags & F.HOLDING) !== 0) this.#releaseHolds();
    });
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
    const ext = this.#ext;
    // A stream transfer under way has more to send: the output is complete
    // after its last byte (checked again when its link ends), not each time
    // a source slower than the network lets the buffer run dry.
    if (ext !== null && ext.completionHolds > 0) return;
    this._flags = f & ~F.COMPLETE_PENDING;
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
    const cb = ext.writeComplete;
    if (cb !== null) this._invoke('write-complete callback', () => cb(this));
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
      lingerMs: 0,
      holds: 0,
      links: null,
      completionHolds: 0,
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

/**
 * @internal The `NETLOOP_HANDLER_ERROR` for a fault of application code:
 * `source` names what was called (`"'data' listener"`, `'write-complete
 * callback'`, ...), `cause` is what it threw or rejected with.
 */
export function handlerError(err: unknown, source: string, clientId: number | null): NetloopError {
  return new NetloopError(ErrorCode.HANDLER_ERROR, `${source} failed: ${err instanceof Error ? err.message : String(err)}`, {
    cause: err,
    details: { clientId, source },
  });
}

/**
 * @internal Where a listener fault of an owner's event goes (a Server's or
 * a Connector's `_listenerFault`): an event about one of the owner's clients
 * (its first argument) makes that client answer for it (closed with
 * `'handler-error'`, or, once closed, the owner's `'error'` path); a failing
 * `'error'` listener is reported (a process warning, never a throw); any
 * other fault is a `NETLOOP_HANDLER_ERROR` on the owner's `'error'` path.
 */
export function routeListenerFault(owner: ClientOwner, fault: unknown, name: string, args: readonly unknown[]): void {
  const source = `'${name}' listener`;
  const first = args[0];
  if (name !== 'error' && first instanceof Client && first._owner === owner) {
    first._handlerFault(fault, source);
    return;
  }
  const error = handlerError(fault, source, null);
  noteHandlerError(null, source, error);
  if (name === 'error') reportFault(error, `${owner.constructor.name} 'error' listener`, owner);
  else owner._fault(error);
}

function invalidData(what: string, data: unknown): NetloopError {
  return new NetloopError(ErrorCode.INVALID_VALUE, `${what} takes a string or a Uint8Array`, {
    details: { got: data === null ? 'null' : typeof data },
  });
}

function unlinkBoth(link: BackpressureLink): void {
  link.consumer._unlink(link);
  link.producer._unlink(link);
}

/**
 * Makes `producer`'s reading follow `consumer`'s queued output, for a relay
 * or a proxy that writes to `consumer` what it reads from `producer`:
 * reading `producer` pauses while `consumer` has `marks.high` bytes or more
 * queued, and resumes once they drain to `marks.low` or fewer (or all of
 * them reached the kernel). muduo's relay does the same from its high-water
 * and write-complete callbacks; Netty's `autoRead` follows a channel's
 * writability. Link both ways for a two-way proxy. The link ends when
 * either client closes, or when the returned function is called (which
 * releases the producer if the link held it).
 *
 * ```ts
 * const stop = linkBackpressure(inbound, outbound, { high: 1 << 20, low: 256 << 10 });
 * ```
 *
 * @throws NetloopError `NETLOOP_INVALID_OPTION` for marks out of range
 *   (`high` in [1, consumer's `maxOutputBytes`], `low` in [0, high)),
 *   `NETLOOP_CLIENT_CLOSED` when either client is closed.
 */
export function linkBackpressure(producer: Client, consumer: Client, marks: ReadPauseMarks): () => void {
  const { high, low } = checkReadPauseMarks('marks', marks, consumer._cfg.maxOutputBytes);
  for (const c of [producer, consumer]) {
    if (c.closed) {
      throw new NetloopError(ErrorCode.CLIENT_CLOSED, `cannot link client ${c.id}: it is closed`, { details: { clientId: c.id } });
    }
  }
  const link: BackpressureLink = { producer, consumer, high, low, holding: false, holdsCompletion: false };
  consumer._link(link);
  if (producer !== consumer) producer._link(link);
  // Output already queued at or above the mark holds the producer at once.
  if (consumer.queuedBytes >= high) consumer._checkLinks();
  return () => unlinkBoth(link);
}

/**
 * @internal Makes `producer` (not a client: a stream sender of the messaging
 * layer) follow `consumer`'s queued output with the marks `high` and `low`
 * (checked by the caller: `high` in [1, maxOutputBytes], `low` in [0, high)),
 * as {@link linkBackpressure} does for a client's reading: the high-water
 * mark holds it, the drain to the low mark releases it, and the consumer's
 * close ends the link. While the link lasts the consumer's output is not
 * complete (the producer has more to send): its write-complete callback and
 * `flushed()` wait for the link's end, so they fire once, after the
 * transfer's last byte, however often a slow source lets the buffer run
 * dry. Returns the function that undoes the link.
 *
 * @throws NetloopError `NETLOOP_CLIENT_CLOSED` when `consumer` is closed.
 */
export function _linkOutput(producer: OutputProducer, consumer: Client, high: number, low: number): () => void {
  if (consumer.closed) {
    throw new NetloopError(ErrorCode.CLIENT_CLOSED, `cannot link client ${consumer.id}: it is closed`, { details: { clientId: consumer.id } });
  }
  const link: BackpressureLink = { producer, consumer, high, low, holding: false, holdsCompletion: true };
  consumer._link(link);
  consumer._holdCompletion();
  if (consumer.queuedBytes >= high) consumer._checkLinks();
  return () => unlinkBoth(link);
}
