/**
 * Request/response over framed connections: a call returns a promise of its
 * reply; the other side answers with the return value of a handler. Either
 * end calls: a `FramedServer` can call its clients as a `FramedConnector`
 * calls its server. One-way messages stay plain `client.send`s.
 *
 * ```ts
 * const calls = defineCalls({ GetUser: { id: 1, request: json<{ id: number }>(), reply: json<User>() } });
 * const rpc = enableRpc(server, { calls });                  // the server answers ...
 * rpc.handle('GetUser', async (client, { id }) => users.get(id) ?? throwNotFound(id));
 * const user = await enableRpc(connector, { calls }).call(client, 'GetUser', { id: 7 });   // ... user: User
 * ```
 *
 * RPC is attached to an owner explicitly (`enableRpc(owner, options)`): it
 * reserves its frame types on that owner (checking they are free), and a
 * framing that never uses it pays nothing. The call is `rpc.call(client,
 * ...)` rather than a method of the client: the framed client belongs to the
 * framing layer, below this one, and carries no table of calls to type the
 * reply by; `rpc` carries it (`Rpc<A>`), so the reply's type is inferred
 * from the call's name.
 *
 * ```
 *   caller                                            responder
 *   rpc.call(client, name, request, { timeoutMs, signal })
 *     pending.size < maxCallsInFlight ? ─no─▶ reject NETLOOP_RPC_LIMIT (nothing sent)
 *     id = next id not in flight; encode; send ──request──▶ handler for the type ?  ─no─▶ error NETLOOP_RPC_UNKNOWN_CALL
 *     PendingCall (in its timeout's deadline list)          handlers running < maxHandlersInFlight ? ─no─▶ error NETLOOP_RPC_BUSY
 *                                                           decode ─fails─▶ error NETLOOP_BAD_PAYLOAD
 *                                                           reply = await handler(client, request, call)
 *     resolve(decode(reply)) ◀──────────────reply────────── encode; send
 *     reject(RpcError)       ◀──────────────error────────── handler threw (see rpc-error.ts)
 *     timeout / abort ──cancel──▶ call.signal aborts; what the handler returns is not sent
 *     a reply for no pending call: dropped, counted (stats().lateReplies)
 *     the connection closes: every pending call rejects at once (NETLOOP_CLIENT_CLOSED, details.reason)
 * ```
 *
 * Limits, per connection, with finite defaults ({@link RPC_DEFAULTS}):
 * `maxCallsInFlight` refuses a call over it at once (it never queues);
 * `maxHandlersInFlight` refuses a request over it with the coded error
 * `NETLOOP_RPC_BUSY` rather than pausing the connection's reading: the
 * reserved frame path is synchronous and shares the connection with the
 * application's messages, which a pause would hold up too, and a refusal
 * tells the caller at once (HTTP/2 refuses streams over its
 * `SETTINGS_MAX_CONCURRENT_STREAMS` the same way, RFC 9113 §5.1.2). Only
 * handlers that return a promise count: one that returns a value has
 * finished before the next frame is read.
 *
 * The reserved frame types (each an option, checked free at setup):
 *
 * | envelope | frame types | option |
 * |---|---|---|
 * | netloop (default) | `0xfff0` | `frameType` (required with a 1-byte type field, whose largest type is `0xff`) |
 * | cellnet | `58645` (`RemoteCallREQ`), `20476` (`RemoteCallACK`) | fixed by cellnet's `rpc/msg_gen.go` |
 *
 * cellnet's envelope has no error reply and no cancellation: a call that
 * has no handler on a cellnet-mode responder, that is refused as busy, whose
 * request does not decode or whose handler fails gets no answer, and its
 * caller (a Go program's `rpc.Call` / `rpc.CallSync`, or a netloop
 * connector) times out, as cellnet's own server does for a message it cannot
 * decode (`proc/tcp/hooker.go` logs and drops it). The failures are counted
 * in {@link RpcStats} and a failing handler is reported on `'handler-error'`.
 *
 * The pieces around this class, each in its file: the table of calls
 * (`rpc-calls.ts`), the options, counters and events (`rpc-options.ts`),
 * the two envelopes (`rpc-wire.ts`), a connection's calls and handlers in
 * flight (`rpc-peer.ts`) and the error a caller receives (`rpc-error.ts`).
 *
 * @module
 */

import { ErrorCode, NetloopError, isNetloopError } from '../core/errors.js';
import { TypedEmitter } from '../core/emitter.js';
import { checkNumber, checkObject } from '../core/validate.js';
import type { CloseReason } from '../reactor/close-reason.js';
import type { EventLoop } from '../reactor/event-loop.js';
import type { FramedClient, ReservedFrameHandler } from '../framing/framed-client.js';
import type { RpcCalls } from './rpc-calls.js';
import type { RpcApi, RpcCallDef, RpcReplyOf, RpcRequestOf } from './rpc-calls.js';
import { RpcError, wireErrorOf } from './rpc-error.js';
import { ActiveCall, DeadlineList, PendingCall, RpcPeer, closedCallError } from './rpc-peer.js';
import type { RpcCallInfo } from './rpc-peer.js';
import { CellnetWire, NetloopWire } from './rpc-wire.js';
import type { RpcWire } from './rpc-wire.js';
import { MAX_TIMEOUT_MS, RPC_DEFAULTS, RPC_LATENCY_BOUNDS, resolveRpcOptions } from './rpc-options.js';
import type { RpcCallOptions, RpcEvents, RpcHandler, RpcLatency, RpcOptions, RpcOwner, RpcStats } from './rpc-options.js';

export { RPC_DEFAULTS, RPC_LATENCY_BOUNDS } from './rpc-options.js';
export type { RpcOwner, RpcOptions, RpcCallOptions, RpcHandler, RpcStats, RpcLatency, RpcEvents } from './rpc-options.js';

/** The seams of an owner that RPC uses: its loop, reserved frame types and close events. */
interface OwnerSeams {
  readonly loop: EventLoop;
  readonly _framing: { readonly encoder: { readonly copyThreshold: number } };
  reserveType(type: number, handler: ReservedFrameHandler): () => void;
  on(name: 'close', listener: (client: FramedClient, reason: CloseReason, error?: NetloopError) => void): unknown;
  off(name: 'close', listener: (client: FramedClient, reason: CloseReason, error?: NetloopError) => void): unknown;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as PromiseLike<unknown>).then === 'function';
}

/**
 * Request/response attached to one owner (see the module comment); made by
 * {@link enableRpc}, typed by its table of calls `A`.
 */
export class Rpc<A extends RpcApi = RpcApi> extends TypedEmitter<RpcEvents> {
  /** The server or connector this RPC is attached to. */
  readonly owner: RpcOwner;
  /** The envelope calls travel in. */
  readonly envelope: 'netloop' | 'cellnet';
  /** The frame types reserved on the owner. */
  readonly frameTypes: readonly number[];
  /** See {@link RpcOptions.timeoutMs}. */
  readonly timeoutMs: number;
  /** See {@link RpcOptions.maxCallsInFlight}. */
  readonly maxCallsInFlight: number;
  /** See {@link RpcOptions.maxHandlersInFlight}. */
  readonly maxHandlersInFlight: number;
  readonly #calls: RpcCalls<A>;
  readonly #wire: RpcWire;
  readonly #loop: EventLoop;
  readonly #handlers = new Map<string, (client: FramedClient, request: unknown, call: RpcCallInfo) => unknown>();
  readonly #peers = new Map<FramedClient, RpcPeer>();
  readonly #giveBack: Array<() => void> = [];
  readonly #onClose = (client: FramedClient, reason: CloseReason, error?: NetloopError): void => this.#closed(client, reason, error);
  readonly #onExpired = (call: PendingCall): void => this.#expire(call);
  readonly #onEmpty = (list: DeadlineList): void => {
    if (this.#deadlines.get(list.timeoutMs) === list) this.#deadlines.delete(list.timeoutMs);
  };
  /** The calls waiting, by timeout (see {@link DeadlineList}); a list leaves when it empties. */
  readonly #deadlines = new Map<number, DeadlineList>();
  readonly #stats: Omit<RpcStats, 'latency'> = {
    calls: 0,
    inFlight: 0,
    replies: 0,
    remoteErrors: 0,
    timeouts: 0,
    aborts: 0,
    closed: 0,
    limited: 0,
    lateReplies: 0,
    requests: 0,
    handling: 0,
    answered: 0,
    failed: 0,
    unknown: 0,
    busy: 0,
    badRequests: 0,
    cancelled: 0,
  };
  #detached = false;
  /** The loop's clock as read in this synchronous run, or -1 (see {@link #now}). */
  #stamp = -1;
  readonly #clearStamp = (): void => {
    this.#stamp = -1;
  };
  /** Latency buckets (see {@link RpcLatency}): `RPC_LATENCY_BOUNDS.length + 1` counts. */
  readonly #latencyCounts: number[] = new Array<number>(RPC_LATENCY_BOUNDS.length + 1).fill(0);
  #latencySumMs = 0;
  #latencyCount = 0;

  /** @internal Made by {@link enableRpc}, which documents what it checks. */
  constructor(owner: RpcOwner, options: RpcOptions<A>) {
    super();
    const resolved = resolveRpcOptions(options);
    const envelope = resolved.envelope;
    const seams = owner as unknown as OwnerSeams;
    if (typeof owner !== 'object' || owner === null || typeof seams.reserveType !== 'function' || typeof seams.on !== 'function') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'RPC attaches to a FramedServer or a FramedConnector', { details: { option: 'owner' } });
    }
    this.timeoutMs = resolved.timeoutMs;
    this.maxCallsInFlight = resolved.maxCallsInFlight;
    this.maxHandlersInFlight = resolved.maxHandlersInFlight;
    this.#wire =
      resolved.frameType === undefined ? new CellnetWire() : new NetloopWire(resolved.frameType, seams._framing.encoder.copyThreshold);
    this.owner = owner;
    this.envelope = envelope;
    this.frameTypes = this.#wire.frameTypes;
    this.#calls = options.calls;
    this.#loop = seams.loop;
    try {
      this.#wire.frameTypes.forEach((type, i) => {
        this.#giveBack.push(seams.reserveType(type, this.#wire.handlerFor(i, this)));
      });
    } catch (err) {
      for (const giveBack of this.#giveBack) giveBack();
      if (isNetloopError(err, ErrorCode.INVALID_OPTION) && options.frameType === undefined && envelope === 'netloop') {
        // The default type does not fit the layout (a 1-byte type field, or none).
        throw new NetloopError(ErrorCode.INVALID_OPTION, `the layout cannot carry frame type ${RPC_DEFAULTS.frameType}: give RPC a frameType it can`, {
          cause: err,
          details: { option: 'frameType' },
        });
      }
      throw err;
    }
    seams.on('close', this.#onClose);
  }

  /**
   * Calls `name` on the peer of `client` (a client of this RPC's owner) and
   * resolves with the decoded reply. Never throws: every failure is a
   * rejection with a coded error:
   * - `NETLOOP_RPC_LIMIT`: `maxCallsInFlight` calls of this connection wait (nothing sent);
   * - `NETLOOP_RPC_TIMEOUT`, `NETLOOP_RPC_ABORTED`: no reply in time, or the signal aborted (the peer is told, netloop's envelope only);
   * - `NETLOOP_RPC_REMOTE_ERROR`: the peer answered with an error (an {@link RpcError}; `remoteCode` says which);
   * - `NETLOOP_CLIENT_CLOSED`: the connection is closed or closing, or closed before the reply (`details.reason`);
   * - `NETLOOP_BAD_PAYLOAD`: the reply did not decode;
   * - `NETLOOP_UNKNOWN_TYPE` (no such call), `NETLOOP_INVALID_VALUE` (a request the serializer refuses,
   *   a client of another owner), `NETLOOP_INVALID_OPTION` (bad options), `NETLOOP_FRAME_TOO_LARGE`.
   */
  call<K extends keyof A & string>(client: FramedClient, name: K, request: RpcRequestOf<A, K>, options?: RpcCallOptions): Promise<RpcReplyOf<A, K>> {
    const def = this.#calls._byName.get(name);
    if (def === undefined) {
      return Promise.reject(new NetloopError(ErrorCode.UNKNOWN_TYPE, `unknown call ${String(name)}`, { details: { call: String(name) } }));
    }
    let timeoutMs = this.timeoutMs;
    let signal: AbortSignal | null = null;
    if (options !== undefined) {
      try {
        checkObject('options', options);
        if (options.timeoutMs !== undefined) timeoutMs = checkNumber('timeoutMs', options.timeoutMs, 1, MAX_TIMEOUT_MS);
        if (options.signal !== undefined) {
          if (!(options.signal instanceof AbortSignal)) {
            throw new NetloopError(ErrorCode.INVALID_OPTION, 'signal must be an AbortSignal', { details: { option: 'signal' } });
          }
          signal = options.signal;
        }
      } catch (err) {
        return Promise.reject(err);
      }
    }
    if (this.#detached) return Promise.reject(this.#detachedError(def.name));
    if (typeof client !== 'object' || client === null || client._owner !== (this.owner as unknown)) {
      return Promise.reject(
        new NetloopError(ErrorCode.INVALID_VALUE, "the client is not a connection of this RPC's owner", { details: { call: def.name } }),
      );
    }
    if (signal !== null && signal.aborted) return Promise.reject(abortedError(def, 0, signal.reason));
    if (!client.writable) return Promise.reject(notWritable(def, client));
    const peer = this.#peerOf(client);
    if (peer.pending.size >= this.maxCallsInFlight) {
      this.#stats.limited++;
      return Promise.reject(
        new NetloopError(ErrorCode.RPC_LIMIT, `${this.maxCallsInFlight} calls of this connection already wait for a reply`, {
          details: { call: def.name, maxCallsInFlight: this.maxCallsInFlight, clientId: client.id },
        }),
      );
    }
    let bytes: Uint8Array;
    try {
      bytes = encodePayload(def, 'request', request);
    } catch (err) {
      return Promise.reject(err);
    }
    const id = peer.nextId();
    try {
      if (!this.#wire.sendRequest(client, id, def, bytes)) return Promise.reject(notWritable(def, client));
    } catch (err) {
      return Promise.reject(err);
    }
    this.#stats.calls++;
    this.#stats.inFlight++;
    let list = this.#deadlines.get(timeoutMs);
    if (list === undefined) this.#deadlines.set(timeoutMs, (list = new DeadlineList(this.#loop, timeoutMs, this.#onExpired, this.#onEmpty)));
    const call = new PendingCall(peer, id, def, list, this.#now());
    const promise = new Promise<unknown>((resolve, reject) => {
      call.resolve = resolve;
      call.reject = reject;
    });
    peer.pending.add(call);
    list.add(call);
    if (signal !== null) {
      call.signal = signal;
      call.onAbort = () => this.#abort(call);
      signal.addEventListener('abort', call.onAbort, { once: true });
    }
    return promise as Promise<RpcReplyOf<A, K>>;
  }

  /**
   * Answers the peer's calls of `name` with `handler` (see {@link RpcHandler}).
   * Requests of a call without a handler are answered
   * `NETLOOP_RPC_UNKNOWN_CALL`.
   *
   * @throws NetloopError `NETLOOP_UNKNOWN_TYPE` for a name not among the
   *   calls, `NETLOOP_DUPLICATE_TYPE` when `name` has a handler already,
   *   `NETLOOP_INVALID_OPTION` when `handler` is not a function.
   */
  handle<K extends keyof A & string>(name: K, handler: RpcHandler<A, K>): this {
    if (!this.#calls._byName.has(name)) {
      throw new NetloopError(ErrorCode.UNKNOWN_TYPE, `unknown call ${String(name)}`, { details: { call: String(name) } });
    }
    if (typeof handler !== 'function') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'a handler must be a function', { details: { option: 'handler', call: name } });
    }
    if (this.#handlers.has(name)) {
      throw new NetloopError(ErrorCode.DUPLICATE_TYPE, `call ${name} has a handler already`, { details: { call: name } });
    }
    this.#handlers.set(name, handler as unknown as (client: FramedClient, request: unknown, call: RpcCallInfo) => unknown);
    return this;
  }

  /** The calls of `client` waiting for a reply now. */
  inFlight(client: FramedClient): number {
    return this.#peers.get(client)?.pending.size ?? 0;
  }

  /** A snapshot of the counters (see {@link RpcStats}): a new object each time. */
  stats(): RpcStats {
    return {
      ...this.#stats,
      latency: { bounds: RPC_LATENCY_BOUNDS, counts: [...this.#latencyCounts], sum: this.#latencySumMs / 1000, count: this.#latencyCount },
    };
  }

  /**
   * The loop's clock, read once per synchronous run: the first reading is
   * kept until the microtasks queued now have run. A burst of calls (or of
   * replies read from one chunk) costs one clock reading, not one each.
   */
  #now(): number {
    let t = this.#stamp;
    if (t < 0) {
      t = this.#stamp = this.#loop.now();
      queueMicrotask(this.#clearStamp);
    }
    return t;
  }

  /** Counts how long `call` waited for its answer (see {@link RpcLatency}). */
  #observe(call: PendingCall): void {
    const ms = Math.max(0, this.#now() - (call.deadline - call.list.timeoutMs));
    const seconds = ms / 1000;
    const bounds = RPC_LATENCY_BOUNDS;
    let i = 0;
    while (i < bounds.length && seconds > bounds[i]!) i++;
    this.#latencyCounts[i]!++;
    this.#latencySumMs += ms;
    this.#latencyCount++;
  }

  /**
   * Detaches RPC from its owner: its frame types are given back, every call
   * waiting rejects with `NETLOOP_RPC_ABORTED` (`details.reason` `'rpc-closed'`),
   * running handlers' signals abort and their replies are not sent, and later
   * calls reject the same way. Idempotent.
   */
  close(): void {
    if (this.#detached) return;
    this.#detached = true;
    for (const giveBack of this.#giveBack) giveBack();
    (this.owner as unknown as OwnerSeams).off('close', this.#onClose);
    for (const peer of this.#peers.values()) this.#endPeer(peer, (def) => this.#detachedError(def.name));
    this.#peers.clear();
    for (const list of this.#deadlines.values()) list.stop();
    this.#deadlines.clear();
  }

  // ─── the caller's side ──────────────────────────────────────────────────────

  /** A call's timeout passed. */
  #expire(call: PendingCall): void {
    const peer = call.peer;
    // Already out of its deadline list: take it out of the rest.
    peer.pending.delete(call);
    call.unlisten();
    this.#stats.inFlight--;
    this.#stats.timeouts++;
    this.#tellCancel(peer, call.id);
    const timeoutMs = call.list.timeoutMs;
    call.reject(
      new NetloopError(ErrorCode.RPC_TIMEOUT, `no reply to ${call.def.name} within ${timeoutMs} ms`, {
        details: { call: call.def.name, callId: call.id, timeoutMs },
      }),
    );
  }

  #abort(call: PendingCall): void {
    const peer = call.peer;
    if (peer.pending.get(call.id) !== call) return;
    const reason: unknown = call.signal?.reason;
    this.#settle(call);
    this.#stats.aborts++;
    this.#tellCancel(peer, call.id);
    call.reject(abortedError(call.def, call.id, reason));
  }

  /** Takes `call` out of the pending calls, its deadline list and its signal. */
  #settle(call: PendingCall): void {
    call.peer.pending.delete(call);
    call.list.remove(call);
    call.unlisten();
    this.#stats.inFlight--;
  }

  /** Tells the peer a call is given up, so its handler may stop (netloop's envelope; cellnet has none). */
  #tellCancel(peer: RpcPeer, id: number): void {
    const client = peer.client;
    if (!client.writable) return;
    try {
      this.#wire.sendCancel(client, id);
    } catch {
      // A cancellation is five bytes of a type already reserved: nothing to refuse.
    }
  }

  /** @internal A reply arrived. */
  _onReply(client: FramedClient, callId: number, payload: Buffer, replyId: number): void {
    const call = this.#peers.get(client)?.pending.get(callId);
    if (call === undefined) {
      this.#stats.lateReplies++;
      return;
    }
    this.#settle(call);
    this.#observe(call);
    const def = call.def;
    if (replyId !== -1 && replyId !== def.replyId) {
      call.reject(
        new NetloopError(ErrorCode.BAD_PAYLOAD, `the reply to ${def.name} is message ${replyId}, not ${def.replyId}`, {
          details: { call: def.name, callId, replyId, expected: def.replyId },
        }),
      );
      return;
    }
    let value: unknown;
    try {
      value = def.reply.decode(payload);
    } catch (err) {
      call.reject(undecodable(def, 'reply', payload.length, err));
      return;
    }
    this.#stats.replies++;
    call.resolve(value);
  }

  /** @internal An error reply arrived. */
  _onErrorReply(client: FramedClient, callId: number, code: string, message: string): void {
    const call = this.#peers.get(client)?.pending.get(callId);
    if (call === undefined) {
      this.#stats.lateReplies++;
      return;
    }
    this.#settle(call);
    this.#observe(call);
    this.#stats.remoteErrors++;
    call.reject(new RpcError(code, message, { details: { call: call.def.name, callId } }));
  }

  // ─── the responder's side ───────────────────────────────────────────────────

  /** @internal A request arrived. */
  _onRequest(client: FramedClient, callId: number | bigint, type: number, payload: Buffer): void {
    if (!client.writable) return;
    const stats = this.#stats;
    stats.requests++;
    const def = this.#calls._byId.get(type);
    const handler = def === undefined ? undefined : this.#handlers.get(def.name);
    if (def === undefined || handler === undefined) {
      stats.unknown++;
      this.#sendError(client, callId, ErrorCode.RPC_UNKNOWN_CALL, `no handler for call type ${type}`);
      return;
    }
    const peer = this.#peerOf(client);
    const active = peer.active;
    if (active !== null) {
      if (active.size >= this.maxHandlersInFlight) {
        stats.busy++;
        this.#sendError(client, callId, ErrorCode.RPC_BUSY, `${this.maxHandlersInFlight} calls of this connection are being handled`);
        return;
      }
      if (active.has(callId)) {
        // Two calls under one id could not be told apart by their replies.
        client.destroy(
          'protocol-error',
          new NetloopError(ErrorCode.BAD_PAYLOAD, `call id ${String(callId)} is already in flight on this connection`, {
            details: { clientId: client.id, reason: 'duplicate-call-id', call: def.name },
          }),
        );
        return;
      }
    }
    let request: unknown;
    try {
      request = def.request.decode(payload);
    } catch (err) {
      stats.badRequests++;
      const error = undecodable(def, 'request', payload.length, err);
      this.#sendError(client, callId, error.code, error.message);
      return;
    }
    const call = new ActiveCall(peer, def, callId);
    let result: unknown;
    try {
      result = handler(client, request, call);
    } catch (err) {
      this.#failed(client, call, err);
      return;
    }
    if (!isThenable(result)) {
      this.#answer(client, call, result);
      return;
    }
    (peer.active ??= new Map()).set(callId, call);
    stats.handling++;
    result.then(
      (value) => {
        this.#done(peer, call);
        this.#answer(client, call, value);
      },
      (err: unknown) => {
        this.#done(peer, call);
        this.#failed(client, call, err);
      },
    );
  }

  /** An async handler settled: it no longer counts against `maxHandlersInFlight`. */
  #done(peer: RpcPeer, call: ActiveCall): void {
    this.#stats.handling--;
    if (peer.active !== null && peer.active.get(call.callId) === call) peer.active.delete(call.callId);
  }

  /** Sends a handler's reply, unless its caller no longer waits. */
  #answer(client: FramedClient, call: ActiveCall, value: unknown): void {
    if (call.cancelled !== null || call.peer.closed || !client.writable) return;
    let bytes: Uint8Array;
    try {
      bytes = encodePayload(call.def, 'reply', value);
      if (this.#wire.sendReply(client, call.callId, call.def, bytes)) this.#stats.answered++;
    } catch (err) {
      // The handler returned what its reply's serializer refuses, or too much for one frame: its fault.
      this.#failed(client, call, err);
    }
  }

  /** A handler threw or rejected: the caller gets an error reply (see rpc-error.ts); a fault is reported here. */
  #failed(client: FramedClient, call: ActiveCall, err: unknown): void {
    this.#stats.failed++;
    const wire = wireErrorOf(err);
    if (wire.fault) this.#reportHandlerError(client, err, call);
    if (call.cancelled !== null || call.peer.closed || !client.writable) return;
    this.#sendError(client, call.callId, wire.code, wire.message);
  }

  /** Sends an error reply; one the layout cannot carry (a tiny `maxFrameLength`) is not sent, and the caller times out. */
  #sendError(client: FramedClient, callId: number | bigint, code: string, message: string): void {
    try {
      this.#wire.sendError(client, callId, code, message);
    } catch {
      // Nothing else to tell the caller with.
    }
  }

  #reportHandlerError(client: FramedClient, err: unknown, call: ActiveCall): void {
    if (this.listenerCount('handler-error') > 0) {
      this.emit('handler-error', client, err, call);
      return;
    }
    this._reportError(
      new NetloopError(ErrorCode.HANDLER_ERROR, `the handler of ${call.name} failed: ${err instanceof Error ? err.message : String(err)}`, {
        cause: err,
        details: { clientId: client.id, call: call.name },
      }),
      'handler-error',
    );
  }

  /** @internal The peer gave up on a call. */
  _onCancel(client: FramedClient, callId: number): void {
    const call = this.#peers.get(client)?.active?.get(callId);
    if (call === undefined || call.cancelled !== null) return;
    this.#stats.cancelled++;
    call.cancel(
      new NetloopError(ErrorCode.RPC_ABORTED, `the caller cancelled ${call.name}`, { details: { call: call.name, callId } }),
      this.#loop,
    );
  }

  // ─── connections ────────────────────────────────────────────────────────────

  #peerOf(client: FramedClient): RpcPeer {
    let peer = this.#peers.get(client);
    if (peer === undefined) {
      peer = new RpcPeer(client);
      this.#peers.set(client, peer);
    }
    return peer;
  }

  /** A connection closed: every call waiting on it fails now, with the close's reason. */
  #closed(client: FramedClient, reason: CloseReason, error: NetloopError | undefined): void {
    const peer = this.#peers.get(client);
    if (peer === undefined) return;
    this.#peers.delete(client);
    this.#stats.closed += peer.pending.size;
    this.#endPeer(peer, (def, id) => closedCallError(def, id, reason, error));
  }

  /** Rejects every pending call of `peer` with `errorOf(...)` and aborts its handlers' signals. */
  #endPeer(peer: RpcPeer, errorOf: (def: RpcCallDef, id: number) => NetloopError): void {
    peer.closed = true;
    const pending = peer.pending.values();
    for (const call of pending) this.#settle(call);
    for (const call of pending) call.reject(errorOf(call.def, call.id));
    if (peer.active !== null) {
      for (const call of peer.active.values()) {
        call.cancel(errorOf(call.def, typeof call.callId === 'number' ? call.callId : 0), this.#loop);
      }
    }
  }

  #detachedError(name: string): NetloopError {
    return new NetloopError(ErrorCode.RPC_ABORTED, `RPC was closed: ${name} gets no reply`, { details: { reason: 'rpc-closed', call: name } });
  }
}

/**
 * Attaches request/response to a framed server or connector and returns it
 * (see the module comment): its frame types are reserved on the owner now.
 *
 * ```ts
 * const rpc = enableRpc(server, { calls, timeoutMs: 5_000 });
 * rpc.handle('GetUser', (client, { id }) => users.get(id));
 * ```
 *
 * @throws NetloopError `NETLOOP_INVALID_OPTION` for a bad option (a default
 *   `frameType` the layout cannot carry names `frameType`; a cellnet call id
 *   above 0xffff); `NETLOOP_DUPLICATE_TYPE` when a frame type is registered
 *   or reserved already.
 */
export function enableRpc<A extends RpcApi>(owner: RpcOwner, options: RpcOptions<A>): Rpc<A> {
  return new Rpc<A>(owner, options);
}

/** Serializes a request or a reply with its call's serializer: a refused payload is `NETLOOP_INVALID_VALUE`. */
function encodePayload(def: RpcCallDef, what: 'request' | 'reply', payload: unknown): Uint8Array {
  let bytes: unknown;
  try {
    bytes = (what === 'request' ? def.request : def.reply).encode(payload);
  } catch (err) {
    if (isNetloopError(err, ErrorCode.INVALID_VALUE)) throw err;
    throw new NetloopError(ErrorCode.INVALID_VALUE, `the ${what} of ${def.name} could not be serialized: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
      details: { call: def.name },
    });
  }
  if (!(bytes instanceof Uint8Array)) {
    throw new NetloopError(ErrorCode.INVALID_VALUE, `the ${what} serializer of ${def.name} returned no bytes`, { details: { call: def.name } });
  }
  return bytes;
}

/**
 * A request or reply its serializer refused: `NETLOOP_BAD_PAYLOAD` naming the
 * call and the length, never the peer's bytes (a serializer's own
 * NetloopError is kept as the cause; any other error, whose message may quote
 * the bytes, is not).
 */
function undecodable(def: RpcCallDef, what: 'request' | 'reply', length: number, err: unknown): NetloopError {
  return new NetloopError(ErrorCode.BAD_PAYLOAD, `the ${what} of ${def.name} (${length} bytes) could not be decoded`, {
    cause: isNetloopError(err) ? err : undefined,
    details: { call: def.name, length },
  });
}

function abortedError(def: RpcCallDef, callId: number, reason: unknown): NetloopError {
  return new NetloopError(ErrorCode.RPC_ABORTED, `${def.name} was aborted`, { cause: reason, details: { call: def.name, callId } });
}

function notWritable(def: RpcCallDef, client: FramedClient): NetloopError {
  return new NetloopError(ErrorCode.CLIENT_CLOSED, `the connection is closed or closing: ${def.name} was not sent`, {
    details: { call: def.name, clientId: client.id, reason: null },
  });
}
