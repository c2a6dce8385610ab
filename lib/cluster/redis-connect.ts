/**
 * Reaching Redis at start-up within a stated bound, then staying connected
 * without one: a process that cannot reach Redis says so attempt by attempt
 * and gives up after `attempts`, rather than wait silently forever; once
 * connected, it outlives any Redis restart.
 *
 * ```ts
 * const client = await connectRedis((socket) => createClient({ url, disableOfflineQueue: true, socket }), {
 *   attempts: 10,
 *   onAttemptFailed: (f) => console.log(`attempt ${f.attempt} of ${f.attempts} failed (${f.cause})`),
 * });
 * ```
 *
 * ```
 *   attempt 1 ─✗─ initialDelayMs ─ attempt 2 ─✗─ 2 × initialDelayMs ─ ... ─ attempt N ─✗─▶ rejects
 *               (each attempt at most connectTimeoutMs; the waits double up to maxDelayMs)
 *   connected ─▶ from then on: the same waits, without a bound on the attempts
 * ```
 *
 * The client is made by the caller's factory (so it keeps its own type and
 * options) from the socket options given to it: `connectTimeout` and
 * `reconnectStrategy`. A duplicate of the client shares the strategy,
 * hence the unbounded reconnection once start-up is over.
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../core/errors.js';
import { checkInteger, checkObject, checkOptionalFunction } from '../core/validate.js';

/** One failed connection attempt, as {@link ConnectRedisOptions.onAttemptFailed} hears of it. */
export interface RedisAttemptFailure {
  /** 1 for the first attempt. */
  attempt: number;
  /** The bound ({@link ConnectRedisOptions.attempts}). */
  attempts: number;
  /** What is being reached, as given ({@link ConnectRedisOptions.target}). */
  target: string;
  /** The failure's system code (`ECONNREFUSED`), else its message. */
  cause: string;
  /** The wait before the next attempt, in ms; 0 when giving up. */
  delayMs: number;
  /** The wall time of the next attempt (ms since the epoch), or null when giving up. */
  nextAt: number | null;
}

/** The socket options {@link connectRedis} hands to the client factory (node-redis's names). */
export interface RedisSocketStrategy {
  connectTimeout: number;
  reconnectStrategy: (retries: number, cause: Error) => number | Error;
}

/** Options of {@link connectRedis}. */
export interface ConnectRedisOptions {
  /** Connection attempts at start-up before giving up; default 10, 1 to 1000. */
  attempts?: number;
  /** The longest one attempt may take, in ms; default 2,000. */
  connectTimeoutMs?: number;
  /** The wait after the first failure, in ms, doubled after each; default 100. */
  initialDelayMs?: number;
  /** The longest wait between attempts, in ms; default 2,000. */
  maxDelayMs?: number;
  /** What is being reached, for messages (never put credentials in it); default `'redis'`. */
  target?: string;
  /** Called with each failed start-up attempt, the last one included. */
  onAttemptFailed?: ((failure: RedisAttemptFailure) => void) | null;
  /** The wall clock of `nextAt`; default `Date.now`. */
  now?: () => number;
}

/** Defaults of {@link ConnectRedisOptions}. */
export const REDIS_CONNECT_DEFAULTS = Object.freeze({ attempts: 10, connectTimeoutMs: 2_000, initialDelayMs: 100, maxDelayMs: 2_000 });

/** The part of a node-redis client {@link connectRedis} uses. */
export interface ConnectableClient {
  connect(): Promise<unknown>;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

/** The wait after the `failures`-th failure: `min(initialDelayMs · 2^(failures-1), maxDelayMs)`. */
export function redisRetryDelay(failures: number, initialDelayMs: number = REDIS_CONNECT_DEFAULTS.initialDelayMs, maxDelayMs: number = REDIS_CONNECT_DEFAULTS.maxDelayMs): number {
  return Math.min(initialDelayMs * 2 ** Math.max(0, Math.min(failures - 1, 30)), maxDelayMs);
}

/** The 'error' listener {@link connectRedis} leaves on a client. */
function absorb(): void {
  // Deliberately nothing: see connectRedis.
}

/** The short name of a connection failure: the system code (`ECONNREFUSED`), else the message. */
function failureName(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  return err instanceof Error ? err.message : String(err);
}

/**
 * Makes a client with `create(socket)` and connects it within the start-up
 * bound (see the module comment). Resolves with the connected client;
 * rejects with `NETLOOP_STORE_UNAVAILABLE` after `attempts` failed attempts
 * (`details`: `target`, `attempts`, `cause`, `elapsedMs`). The client
 * keeps a listener of `connectRedis`'s own on `'error'` that does nothing
 * (the failed attempts are reported through `onAttemptFailed`, and a client
 * without any listener would throw): add yours to hear what follows.
 *
 * @throws NetloopError `NETLOOP_INVALID_OPTION` for a bad option.
 */
export async function connectRedis<C extends ConnectableClient>(create: (socket: RedisSocketStrategy) => C, options: ConnectRedisOptions = {}): Promise<C> {
  checkObject('options', options);
  if (typeof create !== 'function') throw new NetloopError(ErrorCode.INVALID_OPTION, 'create must be a function', { details: { option: 'create' } });
  const d = REDIS_CONNECT_DEFAULTS;
  const attempts = checkInteger('attempts', options.attempts ?? d.attempts, 1, 1000);
  const connectTimeout = checkInteger('connectTimeoutMs', options.connectTimeoutMs ?? d.connectTimeoutMs, 1, 2 ** 31 - 1);
  const initial = checkInteger('initialDelayMs', options.initialDelayMs ?? d.initialDelayMs, 0, 2 ** 31 - 1);
  const max = checkInteger('maxDelayMs', options.maxDelayMs ?? d.maxDelayMs, 0, 2 ** 31 - 1);
  const onFailed = checkOptionalFunction('onAttemptFailed', options.onAttemptFailed);
  const target = typeof options.target === 'string' ? options.target : 'redis';
  const now = options.now ?? Date.now;
  let started = false;
  let lastCause = '';
  const reconnectStrategy = (retries: number, cause: Error): number | Error => {
    const failures = retries + 1;
    const delay = redisRetryDelay(failures, initial, max);
    if (started) return delay;
    lastCause = failureName(cause);
    const givingUp = failures >= attempts;
    try {
      onFailed?.({ attempt: failures, attempts, target, cause: lastCause, delayMs: givingUp ? 0 : delay, nextAt: givingUp ? null : now() + delay });
    } catch {
      // A reporting callback never changes how Redis is reached.
    }
    return givingUp ? new Error(`${target} did not answer ${attempts} connection attempts (${lastCause})`) : delay;
  };
  const client = create({ connectTimeout, reconnectStrategy });
  // Each failed attempt is reported above; the client's 'error' events
  // repeat them. The listener stays: a node-redis client is an object whose
  // prototype is the real emitter, and removing its last listener would give
  // the object an event table of its own, which the real emitter never
  // reads, so every listener added afterwards would be deaf.
  client.on('error', absorb);
  const t0 = now();
  try {
    await client.connect();
  } catch (err) {
    throw new NetloopError(
      ErrorCode.STORE_UNAVAILABLE,
      `cannot reach ${target} after ${attempts} attempts in ${((now() - t0) / 1000).toFixed(1)} s (${lastCause || failureName(err)})`,
      { cause: err, details: { target, attempts, cause: lastCause || failureName(err), elapsedMs: now() - t0 } },
    );
  }
  started = true;
  return client;
}
