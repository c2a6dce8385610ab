/**
 * The per-connection state of request/response: the calls this side made
 * and waits on, and the handlers it runs for the peer's calls. One
 * {@link RpcPeer} per connection that used RPC, made on its first call or
 * request and dropped when the connection closes.
 *
 * ```
 *   RpcPeer (one per FramedClient)
 *     lastId                        the last call id given (1, 2, ..., 2^32 - 1, 1, ...)
 *     pending: Map<callId, PendingCall>   calls waiting for a reply (<= maxCallsInFlight)
 *        PendingCall is its own timer entry in the loop's timer queue (deadline = now + timeoutMs)
 *     active:  Map<callId, ActiveCall> | null   handlers whose promise has not settled (<= maxHandlersInFlight)
 *     closed                        the connection closed: late settlements send nothing
 * ```
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../core/errors.js';
import type { TimerEntry } from '../reactor/timer-queue.js';
import type { EventLoop } from '../reactor/event-loop.js';
import type { FramedClient } from '../framing/framed-client.js';
import type { RpcCallDef } from './rpc-calls.js';

/** What a handler learns of the call it answers (its third argument). */
export interface RpcCallInfo {
  /** The call's name. */
  readonly name: string;
  /** The caller's call id, as the envelope carries it (a u32 for netloop's, an int64 for cellnet's). */
  readonly callId: number | bigint;
  /**
   * Aborted when the caller gives up (netloop's envelope sends a
   * cancellation on its timeout or abort) or the connection closes; its
   * `reason` is a `NETLOOP_RPC_ABORTED` or `NETLOOP_CLIENT_CLOSED` error.
   * Made on first use. A handler may pass it on (`fetch(url, { signal })`)
   * or ignore it: whatever it returns after the abort is not sent. Its
   * `'abort'` listeners run from the loop's queue, never from inside a read.
   */
  readonly signal: AbortSignal;
}

/** @internal A call this side made, waiting for its reply; its own entry in the loop's timer queue. */
export class PendingCall implements TimerEntry {
  deadline: number;
  seq = 0;
  index = -1;
  interval = 0;
  readonly fn: (call: PendingCall) => void;
  readonly arg: PendingCall;
  readonly peer: RpcPeer;
  readonly id: number;
  readonly def: RpcCallDef;
  readonly timeoutMs: number;
  resolve!: (value: unknown) => void;
  reject!: (err: unknown) => void;
  signal: AbortSignal | null = null;
  onAbort: (() => void) | null = null;

  constructor(peer: RpcPeer, id: number, def: RpcCallDef, deadline: number, timeoutMs: number, expired: (call: PendingCall) => void) {
    this.peer = peer;
    this.id = id;
    this.def = def;
    this.deadline = deadline;
    this.timeoutMs = timeoutMs;
    this.fn = expired;
    this.arg = this;
  }

  /** Stops listening to the caller's signal (the call is settled). */
  unlisten(): void {
    if (this.onAbort !== null) {
      this.signal!.removeEventListener('abort', this.onAbort);
      this.onAbort = null;
    }
  }
}

/** @internal A handler at work on one of the peer's calls (the {@link RpcCallInfo} it was given). */
export class ActiveCall implements RpcCallInfo {
  readonly name: string;
  readonly callId: number | bigint;
  readonly def: RpcCallDef;
  readonly peer: RpcPeer;
  /** Why the caller no longer waits (cancelled, or the connection closed), or null. */
  cancelled: NetloopError | null = null;
  #controller: AbortController | null = null;

  constructor(peer: RpcPeer, def: RpcCallDef, callId: number | bigint) {
    this.peer = peer;
    this.def = def;
    this.name = def.name;
    this.callId = callId;
  }

  get signal(): AbortSignal {
    if (this.#controller === null) {
      this.#controller = new AbortController();
      if (this.cancelled !== null) this.#controller.abort(this.cancelled);
    }
    return this.#controller.signal;
  }

  /**
   * The caller no longer waits: what the handler returns is not sent. The
   * signal's listeners are application code: they run from the loop's
   * queue, not from inside the read or close that cancelled the call.
   */
  cancel(reason: NetloopError, loop: EventLoop): void {
    if (this.cancelled !== null) return;
    this.cancelled = reason;
    const controller = this.#controller;
    if (controller !== null) loop.queueInLoop(() => controller.abort(reason));
  }
}

/** @internal The RPC state of one connection (see the module comment). */
export class RpcPeer {
  readonly client: FramedClient;
  lastId = 0;
  readonly pending = new Map<number, PendingCall>();
  active: Map<number | bigint, ActiveCall> | null = null;
  closed = false;

  constructor(client: FramedClient) {
    this.client = client;
  }

  /** The next call id not in flight (1, 2, ..., 2^32 - 1, then 1 again; see `nextRpcCallId`). */
  nextId(): number {
    let id = this.lastId;
    do id = id >= 0xffffffff ? 1 : id + 1;
    while (this.pending.has(id));
    this.lastId = id;
    return id;
  }
}

/** The error of a call that its connection's close ended. */
export function closedCallError(def: RpcCallDef, callId: number, reason: string, cause: unknown): NetloopError {
  return new NetloopError(ErrorCode.CLIENT_CLOSED, `the connection closed (${reason}) before the reply to ${def.name}`, {
    cause,
    details: { reason, call: def.name, callId },
  });
}
