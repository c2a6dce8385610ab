/**
 * The public shapes of request/response ({@link Rpc} in `rpc.ts`): its
 * options and their defaults and bounds, a call's options, a handler's
 * signature, the counters and latency histogram of `stats()`, and the
 * events. Kept apart from the class so that the state machine of calls and
 * handlers reads on its own.
 *
 * ```
 *   RpcOptions ──enableRpc──▶ Rpc ──stats()──▶ RpcStats { counters, latency: RpcLatency }
 *   RpcCallOptions ──call()──┘   └──events──▶ RpcEvents
 * ```
 *
 * @module
 */

import type { FramedClient } from '../framing/framed-client.js';
import type { AnyFramedServer } from '../framing/framed-server.js';
import type { AnyFramedConnector } from '../framing/framed-connector.js';
import { ErrorCode, NetloopError } from '../core/errors.js';
import { checkInteger, checkNumber, checkObject } from '../core/validate.js';
import { RpcCalls } from './rpc-calls.js';
import type { RpcApi, RpcReplyOf, RpcRequestOf } from './rpc-calls.js';
import type { RpcCallInfo } from './rpc-peer.js';

/** The owners RPC attaches to: a framed server or a framed connector. */
export type RpcOwner = AnyFramedServer | AnyFramedConnector;

/** Defaults of {@link RpcOptions}. */
export const RPC_DEFAULTS = Object.freeze({
  /** The frame type of netloop's envelope. */
  frameType: 0xfff0,
  /** A call's timeout, in ms of the loop's clock. */
  timeoutMs: 30_000,
  /** Calls one connection may have waiting for a reply. */
  maxCallsInFlight: 256,
  /** Handlers one connection may have running (those that returned a promise not yet settled). */
  maxHandlersInFlight: 256,
} as const);

/**
 * Upper bounds of the buckets of the call latency histogram
 * ({@link RpcStats.latency}), in seconds: 0.5 ms to 10 s.
 */
export const RPC_LATENCY_BOUNDS: readonly number[] = Object.freeze([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);

/** The longest timeout accepted: the longest delay Node's timers take. */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;
/** The most calls or handlers in flight per connection accepted as a limit. */
const MAX_IN_FLIGHT = 1 << 20;

/** Options of {@link enableRpc}. */
export interface RpcOptions<A extends RpcApi> {
  /** The calls both peers agree on ({@link defineCalls}). */
  calls: RpcCalls<A>;
  /** The envelope: netloop's own (default) or cellnet's `rpc` package (see the module comment). */
  envelope?: 'netloop' | 'cellnet';
  /**
   * The frame type netloop's envelope travels in. Default `0xfff0`; required
   * when the layout's type field is one byte (its largest type is `0xff`).
   * Must be free: not registered, not reserved by another protocol.
   */
  frameType?: number;
  /**
   * A call's timeout in ms (the loop's clock), unless the call gives its own.
   * Default 30,000; at most 2^31 - 1. As with Node's own timers, which count
   * from the time the event loop last read its clock, a call's start is
   * read once per synchronous run of code (calls made together share one
   * reading), so a timeout may end earlier by at most that run's length.
   */
  timeoutMs?: number;
  /** Calls one connection may have waiting for a reply; a call over it fails at once with `NETLOOP_RPC_LIMIT`. Default 256. */
  maxCallsInFlight?: number;
  /**
   * Handlers one connection may have running (a returned promise not yet
   * settled); a request over it is answered `NETLOOP_RPC_BUSY`. Default 256.
   */
  maxHandlersInFlight?: number;
}

/** Options of one call. */
export interface RpcCallOptions {
  /** This call's timeout in ms, instead of the RPC's `timeoutMs`. At least 1, at most 2^31 - 1. */
  timeoutMs?: number;
  /** Cancels the call when aborted: it rejects with `NETLOOP_RPC_ABORTED` (the signal's reason as `cause`) and the peer is told. */
  signal?: AbortSignal;
}

/** Answers one call: its return value, or the value its promise resolves to, is the reply. A throw answers with an error (see {@link RpcError}). */
export type RpcHandler<A extends RpcApi, K extends keyof A> = (
  client: FramedClient,
  request: RpcRequestOf<A, K>,
  call: RpcCallInfo,
) => RpcReplyOf<A, K> | PromiseLike<RpcReplyOf<A, K>>;

/** Counters of an {@link Rpc}: the caller's side, then the responder's. Totals since it was enabled, except `inFlight` and `handling`. */
export interface RpcStats {
  /** Requests sent. */
  calls: number;
  /** Calls waiting for their reply now. */
  inFlight: number;
  /** Calls resolved with their reply. */
  replies: number;
  /** Calls rejected with the peer's error reply (an `RpcError`). */
  remoteErrors: number;
  /** Calls rejected by their timeout. */
  timeouts: number;
  /** Calls rejected by their signal. */
  aborts: number;
  /** Calls rejected because their connection closed. */
  closed: number;
  /** Calls refused at once by `maxCallsInFlight`. */
  limited: number;
  /** Replies and error replies that answered no waiting call (after its timeout or abort, or never made), dropped. */
  lateReplies: number;
  /** Requests received. */
  requests: number;
  /** Handlers running now (a returned promise not yet settled). */
  handling: number;
  /** Replies sent. */
  answered: number;
  /** Handlers that threw or rejected. */
  failed: number;
  /** Requests for a call with no handler. */
  unknown: number;
  /** Requests refused by `maxHandlersInFlight`. */
  busy: number;
  /** Requests whose payload did not decode. */
  badRequests: number;
  /** Cancellations of a running handler received (its reply is not sent). */
  cancelled: number;
  /** How long the calls answered (a reply or an error reply) waited: see {@link RpcLatency}. */
  latency: RpcLatency;
}

/**
 * The latency of answered calls, from the request's send to its answer's
 * arrival, as a histogram in the shape Prometheus exports (`_bucket`,
 * `_sum`, `_count`). Times are read from the loop's clock at most once per
 * synchronous run (see {@link RpcOptions.timeoutMs}), so a bucket is exact
 * to that run's length.
 */
export interface RpcLatency {
  /** Upper bounds of the buckets, in seconds, ascending ({@link RPC_LATENCY_BOUNDS}). */
  readonly bounds: readonly number[];
  /**
   * Calls per bucket, not cumulative: `counts[i]` waited more than
   * `bounds[i - 1]` and at most `bounds[i]`; the last (`counts[bounds.length]`)
   * more than every bound.
   */
  counts: number[];
  /** The sum of the latencies, in seconds. */
  sum: number;
  /** The calls observed (`replies + remoteErrors`, and replies that did not decode). */
  count: number;
}

/**
 * The events of an {@link Rpc}:
 * - `'handler-error'`: a handler threw or rejected with an error other than
 *   an {@link RpcError} (the caller got `NETLOOP_RPC_HANDLER_FAILED`, or the
 *   error's netloop code, without its message); with no listener, the fault
 *   goes to `'error'`, and with none there to a process warning;
 * - `'error'`: a fault nobody else took (a `'handler-error'` listener that threw).
 */
export interface RpcEvents {
  /** A handler threw or rejected with something other than an {@link RpcError}: the client, the error itself, the call. */
  'handler-error': (client: FramedClient, error: unknown, call: RpcCallInfo) => void;
  /** A fault nobody else took. */
  error: (error: unknown) => void;
}

/** {@link RpcOptions} checked, with their defaults: `frameType` is undefined for cellnet's envelope (its types are fixed). */
export interface ResolvedRpcOptions {
  readonly envelope: 'netloop' | 'cellnet';
  readonly frameType: number | undefined;
  readonly timeoutMs: number;
  readonly maxCallsInFlight: number;
  readonly maxHandlersInFlight: number;
}

/**
 * Checks the options of {@link enableRpc} (every failure `NETLOOP_INVALID_OPTION`
 * naming the option) and fills in the defaults; the owner is checked by
 * the RPC itself, which knows its seams.
 */
export function resolveRpcOptions<A extends RpcApi>(options: RpcOptions<A>): ResolvedRpcOptions {
  checkObject('options', options);
  if (!(options.calls instanceof RpcCalls)) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'calls must be a table made by defineCalls()', { details: { option: 'calls' } });
  }
  const envelope = options.envelope ?? 'netloop';
  if (envelope !== 'netloop' && envelope !== 'cellnet') {
    throw new NetloopError(ErrorCode.INVALID_OPTION, "envelope must be 'netloop' or 'cellnet'", { details: { option: 'envelope' } });
  }
  const timeoutMs = checkNumber('timeoutMs', options.timeoutMs ?? RPC_DEFAULTS.timeoutMs, 1, MAX_TIMEOUT_MS);
  const maxCallsInFlight = checkInteger('maxCallsInFlight', options.maxCallsInFlight ?? RPC_DEFAULTS.maxCallsInFlight, 1, MAX_IN_FLIGHT);
  const maxHandlersInFlight = checkInteger(
    'maxHandlersInFlight',
    options.maxHandlersInFlight ?? RPC_DEFAULTS.maxHandlersInFlight,
    1,
    MAX_IN_FLIGHT,
  );
  if (envelope === 'netloop') {
    const frameType = checkInteger('frameType', options.frameType ?? RPC_DEFAULTS.frameType, 0, 0xffffffff);
    return { envelope, frameType, timeoutMs, maxCallsInFlight, maxHandlersInFlight };
  }
  if (options.frameType !== undefined) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, "frameType applies to netloop's envelope; cellnet's frame types are fixed", {
      details: { option: 'frameType' },
    });
  }
  // cellnet reads an inner message's id as uint16(MsgID) (rpc/msg.go).
  if (options.calls.maxId > 0xffff) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'a call through cellnet rpc must have request and reply ids of at most 0xffff', {
      details: { option: 'calls', maxId: options.calls.maxId },
    });
  }
  return { envelope, frameType: undefined, timeoutMs, maxCallsInFlight, maxHandlersInFlight };
}
