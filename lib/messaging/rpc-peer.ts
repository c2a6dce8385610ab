/**
 * The per-connection state of request/response: the calls this side made
 * and waits on, and the handlers it runs for the peer's calls. One
 * {@link RpcPeer} per connection that used RPC, made on its first call or
 * request and dropped when the connection closes.
 *
 * ```
 *   RpcPeer (one per FramedClient)
 *     lastId                        the last call id given (1, 2, ..., 2^32 - 1, 1, ...)
 *     pending: PendingTable          calls waiting for a reply (<= maxCallsInFlight), by id
 *        each also a link of the DeadlineList of its timeout (one per timeout, shared by every
 *        connection of an RPC; one timer entry per list)
 *     active:  Map<callId, ActiveCall> | null   handlers whose promise has not settled (<= maxHandlersInFlight)
 *     closed                        the connection closed: late settlements send nothing
 * ```
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../core/errors.js';
import type { TimerEntry, TimerQueue } from '../reactor/timer-queue.js';
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

/** @internal A call this side made, waiting for its reply; a link of the {@link DeadlineList} of its timeout. */
export class PendingCall {
  readonly peer: RpcPeer;
  readonly id: number;
  readonly def: RpcCallDef;
  /** When the call times out, in ms of the loop's clock. */
  readonly deadline: number;
  readonly list: DeadlineList;
  prev: PendingCall | null = null;
  next: PendingCall | null = null;
  resolve!: (value: unknown) => void;
  reject!: (err: unknown) => void;
  signal: AbortSignal | null = null;
  onAbort: (() => void) | null = null;

  constructor(peer: RpcPeer, id: number, def: RpcCallDef, list: DeadlineList, now: number) {
    this.peer = peer;
    this.id = id;
    this.def = def;
    this.list = list;
    this.deadline = now + list.timeoutMs;
  }

  /** Stops listening to the caller's signal (the call is settled). */
  unlisten(): void {
    if (this.onAbort !== null) {
      this.signal!.removeEventListener('abort', this.onAbort);
      this.onAbort = null;
    }
  }
}

/**
 * @internal The calls waiting with one timeout, oldest first: made in order
 * with the same timeout, their deadlines are in order too, so a call joins
 * at the tail and leaves from anywhere in O(1), and the list is ONE entry
 * of the loop's timer queue, due at its oldest call's deadline or earlier
 * (Node keeps its own timers in lists by duration for the same reason). The
 * entry is not touched when a call is answered, only when it fires: it then
 * expires the calls past their deadline and moves to the deadline of the
 * call then oldest, or, with none left, tells its owner it is empty. A call
 * answered within its timeout (the common case) costs no timer work at all.
 *
 * ```
 *   DeadlineList (timeoutMs = 30000) ── one TimerEntry, due at or before head.deadline
 *     head ⇄ call ⇄ call ⇄ ... ⇄ tail      deadlines ascending
 * ```
 */
export class DeadlineList implements TimerEntry {
  deadline = 0;
  seq = 0;
  index = -1;
  interval = 0;
  readonly fn: (list: DeadlineList) => void;
  readonly arg: DeadlineList;
  readonly timeoutMs: number;
  head: PendingCall | null = null;
  tail: PendingCall | null = null;
  readonly #timers: TimerQueue;
  readonly #expired: (call: PendingCall) => void;
  readonly #empty: (list: DeadlineList) => void;
  readonly #loop: EventLoop;

  /** `expired(call)` for each call past its deadline; `empty(list)` when the timer fires on an empty list. */
  constructor(loop: EventLoop, timeoutMs: number, expired: (call: PendingCall) => void, empty: (list: DeadlineList) => void) {
    this.#loop = loop;
    this.#timers = loop._timers;
    this.timeoutMs = timeoutMs;
    this.#expired = expired;
    this.#empty = empty;
    this.fn = listDue;
    this.arg = this;
  }

  /** Appends `call` (the newest, so the latest deadline). */
  add(call: PendingCall): void {
    const tail = this.tail;
    if (tail === null) this.head = call;
    else {
      tail.next = call;
      call.prev = tail;
    }
    this.tail = call;
    if (this.index === -1) {
      this.deadline = call.deadline;
      this.#timers.insert(this);
    }
  }

  /** Takes `call` out, wherever it is. */
  remove(call: PendingCall): void {
    const { prev, next } = call;
    if (prev === null) this.head = next;
    else prev.next = next;
    if (next === null) this.tail = prev;
    else next.prev = prev;
    call.prev = call.next = null;
  }

  /** Leaves the timer queue (the owner is closing). */
  stop(): void {
    this.#timers.remove(this);
  }

  /** The timer fired: every call past its deadline expires; the timer moves to the next deadline. */
  due(): void {
    const now = this.#loop.now();
    let call = this.head;
    while (call !== null && call.deadline <= now) {
      this.remove(call);
      this.#expired(call);
      call = this.head;
    }
    if (this.index !== -1) return;
    if (call !== null) {
      this.deadline = call.deadline;
      this.#timers.insert(this);
    } else this.#empty(this);
  }
}

function listDue(list: DeadlineList): void {
  list.due();
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

/** The slots a connection's table of waiting calls starts with (made at its first call). */
const FIRST_SLOTS = 16;

/**
 * @internal The calls one connection waits on, by call id: an array whose
 * slot `id & mask` holds the call of that id. Call ids are given so that
 * their slot is free ({@link RpcPeer.nextId}), so a slot holds at most one
 * call and a lookup is one index and one check of the id. The array doubles
 * when half full (the calls stay in distinct slots: ids apart modulo n are
 * apart modulo 2n), so a free slot is always near.
 *
 * ```
 *   slots (length 2^k >= 16, at most half full)
 *     [ null | call 17 | call 2 | null | ... | call 15 ]      call id & (length - 1) = its index
 * ```
 *
 * A `Map` would do, but one whose entries come and go at the rate of calls
 * is rebuilt every few calls, and V8 links each rebuilt table to the next:
 * once a table has reached the old generation, that chain keeps every later
 * table, and the calls and replies they held, alive until a full collection
 * (young collections then copy them again and again). The array is never
 * replaced but to grow.
 */
export class PendingTable {
  #slots: Array<PendingCall | null> | null = null;
  #mask = 0;
  /** The calls waiting. */
  size = 0;

  /** The call of `id`, or undefined. */
  get(id: number): PendingCall | undefined {
    const slots = this.#slots;
    if (slots === null) return undefined;
    const call = slots[id & this.#mask];
    return call != null && call.id === id ? call : undefined;
  }

  /** True when a call may take `id` now: its slot is free. */
  isFree(id: number): boolean {
    return this.#slots === null || this.#slots[id & this.#mask] == null;
  }

  /** Adds `call`, whose id's slot must be free ({@link isFree}); grows first when half full. */
  add(call: PendingCall): void {
    let slots = this.#slots;
    if (slots === null) {
      slots = this.#slots = new Array<PendingCall | null>(FIRST_SLOTS).fill(null);
      this.#mask = FIRST_SLOTS - 1;
    } else if ((this.size + 1) * 2 > slots.length) {
      slots = this.#grow(slots);
    }
    slots[call.id & this.#mask] = call;
    this.size++;
  }

  /** Takes `call` out; false when it is not there. */
  delete(call: PendingCall): boolean {
    const slots = this.#slots;
    if (slots === null) return false;
    const i = call.id & this.#mask;
    if (slots[i] !== call) return false;
    slots[i] = null;
    this.size--;
    return true;
  }

  /** The calls waiting, in slot order. */
  values(): PendingCall[] {
    const out: PendingCall[] = [];
    if (this.#slots !== null) for (const call of this.#slots) if (call != null) out.push(call);
    return out;
  }

  #grow(old: Array<PendingCall | null>): Array<PendingCall | null> {
    const slots = new Array<PendingCall | null>(old.length * 2).fill(null);
    const mask = slots.length - 1;
    for (const call of old) if (call != null) slots[call.id & mask] = call;
    this.#slots = slots;
    this.#mask = mask;
    return slots;
  }
}

/** @internal The RPC state of one connection (see the module comment). */
export class RpcPeer {
  readonly client: FramedClient;
  lastId = 0;
  readonly pending = new PendingTable();
  active: Map<number | bigint, ActiveCall> | null = null;
  closed = false;

  constructor(client: FramedClient) {
    this.client = client;
  }

  /**
   * The next call id whose slot in {@link pending} is free, so no id in
   * flight (1, 2, ..., 2^32 - 1, then 1 again; see `nextRpcCallId`): an id
   * whose slot a call still waiting holds is skipped.
   */
  nextId(): number {
    let id = this.lastId;
    do id = id >= 0xffffffff ? 1 : id + 1;
    while (!this.pending.isFree(id));
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
