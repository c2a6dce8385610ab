/**
 * The limits every client of a server or a connector lives by, as the
 * application gives them (ClientLimitOptions) and as the reactor reads them
 * (ClientConfig: validated once per owner, shared by all its clients, so a
 * client holds one pointer to them, not a copy).
 *
 * ```
 *   ClientLimitOptions ──clientConfig()──▶ ClientConfig (frozen numbers, +Infinity for "off")
 *     maxOutputBytes, softOutputLimit, idleTimeoutMs,      maxOutputBytes, softOutputBytes/ForMs,
 *     halfOpen, shutdownTimeoutMs, readPauseOutputBytes,   idleTimeoutMs, halfOpen, shutdownTimeoutMs,
 *     tcpKeepAliveMs                                       readPauseHigh/Low, watchBytes, tcpKeepAliveMs
 * ```
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../core/errors.js';
import { checkBoolean, checkInteger, checkNumber } from '../core/validate.js';

/** Queued-output marks for pausing reading: pause at `high` queued bytes or more, resume at `low` or fewer (or once the output drained). */
export interface ReadPauseMarks {
  /** Queued output bytes at or above which reading pauses. */
  high: number;
  /** Queued output bytes at or below which reading resumes (below `high`). */
  low: number;
}

/** A soft output limit: close a client whose queued output stays at or above `bytes` for `forMs` (Redis's pubsub soft limit). */
export interface SoftOutputLimit {
  /** Queued bytes at or above which the clock starts. */
  bytes: number;
  /** How long (ms) the output may stay at or above `bytes`. */
  forMs: number;
}

/** The per-client limits shared by `ServerOptions` and `ConnectorOptions`. */
export interface ClientLimitOptions {
  /** Set TCP_NODELAY on every socket; default true. */
  noDelay?: boolean;
  /** Hard limit on a client's queued output in bytes; an append past it closes the client (`'output-limit'`). Default 32 MiB. */
  maxOutputBytes?: number;
  /** Soft limit on queued output; default `{ bytes: min(8 MiB, maxOutputBytes), forMs: 60_000 }`; `null` disables it. */
  softOutputLimit?: SoftOutputLimit | null;
  /** Read-idle timeout in ms; 0 disables it. Default 300_000 for servers, 0 for connectors. */
  idleTimeoutMs?: number;
  /** Keep writing after the peer's FIN (emits `'end'`); default false: flush what is queued, then close. */
  halfOpen?: boolean;
  /** How long a graceful close (flush, FIN, the peer's FIN) may take before the socket is destroyed; default 30_000 ms. */
  shutdownTimeoutMs?: number;
  /**
   * Backpressure from a client's output to its input, for echoes and relays
   * that answer a client with what it sends: reading the client pauses while
   * its queued output is `high` bytes or more, and resumes once it drained
   * to `low` or fewer (or entirely). A client that sends without reading is
   * then held by TCP flow control instead of being closed at the hard
   * output limit. `high` at most `maxOutputBytes`, `low` below `high`.
   * Default `null` (off: such a client meets the output limits). Between
   * two clients, see `linkBackpressure`.
   */
  readPauseOutputBytes?: ReadPauseMarks | null;
  /**
   * TCP keep-alive: after this many ms without a packet from the peer, the
   * kernel probes the connection (`socket.setKeepAlive(true, ms)`: Node sets
   * `SO_KEEPALIVE`, `TCP_KEEPIDLE` in whole seconds, and 10 probes 1 s apart),
   * so a peer whose host or network vanished without a FIN or a reset is
   * found about `tcpKeepAliveMs + 10 s` after its last packet, and idle
   * mappings of NATs and firewalls on the way stay open. A peer whose
   * process hangs (stopped, deadlocked) is not found: its kernel answers the
   * probes; an application ping is needed for that (netloop's `keepAlive`).
   * 0 (default, as Node's and the kernel's) leaves keep-alive off; otherwise
   * 1000 to 32,767,000 ms (Linux caps the idle time at 32,767 s), rounded
   * down to whole seconds.
   */
  tcpKeepAliveMs?: number;
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
  /** Pause a client's reading while its own queued output is at or above this (`readPauseOutputBytes.high`), or +Infinity when off. */
  readonly readPauseHigh: number;
  /** Resume it at or below this (`readPauseOutputBytes.low`). */
  readonly readPauseLow: number;
  /**
   * The smallest queued size at which an append has more to check (the soft
   * limit, the read-pause mark), or +Infinity: one comparison per append
   * whatever is configured.
   */
  readonly watchBytes: number;
  /** TCP keep-alive idle time applied to each socket, or 0 when off. */
  readonly tcpKeepAliveMs: number;
}

/** Defaults of the per-client limits. */
export const CLIENT_DEFAULTS = {
  noDelay: true,
  maxOutputBytes: 32 * 1024 * 1024,
  softOutputLimit: { bytes: 8 * 1024 * 1024, forMs: 60_000 },
  halfOpen: false,
  shutdownTimeoutMs: 30_000,
} as const;
/** Default read-idle timeout of a server's clients. */
export const DEFAULT_IDLE_TIMEOUT_MS = 300_000;
const MAX_MS = 2 ** 31 - 1;
const MAX_OUTPUT = 2 ** 40;
/** Linux's largest `TCP_KEEPIDLE` (MAX_TCP_KEEPIDLE, 32,767 s), in ms. */
export const MAX_TCP_KEEPALIVE_MS = 32_767_000;

/** @internal Validates the per-client limits into a {@link ClientConfig}. */
export function clientConfig(options: ClientLimitOptions, defaultIdleMs: number): ClientConfig {
  const maxOutputBytes = checkInteger('maxOutputBytes', options.maxOutputBytes ?? CLIENT_DEFAULTS.maxOutputBytes, 1, MAX_OUTPUT);
  // The default soft limit never sits above a smaller hard limit given by the user.
  const soft =
    options.softOutputLimit === undefined
      ? { ...CLIENT_DEFAULTS.softOutputLimit, bytes: Math.min(CLIENT_DEFAULTS.softOutputLimit.bytes, maxOutputBytes) }
      : options.softOutputLimit;
  let softOutputBytes = 0;
  let softOutputForMs = 0;
  if (soft !== null) {
    if (typeof soft !== 'object') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'softOutputLimit must be { bytes, forMs } or null', {
        details: { option: 'softOutputLimit' },
      });
    }
    softOutputBytes = checkInteger('softOutputLimit.bytes', soft.bytes, 1, maxOutputBytes);
    softOutputForMs = checkNumber('softOutputLimit.forMs', soft.forMs, 0, MAX_MS);
  }
  const readPause =
    options.readPauseOutputBytes === undefined || options.readPauseOutputBytes === null
      ? null
      : checkReadPauseMarks('readPauseOutputBytes', options.readPauseOutputBytes, maxOutputBytes);
  const readPauseHigh = readPause === null ? Number.POSITIVE_INFINITY : readPause.high;
  return {
    maxOutputBytes,
    softOutputBytes,
    softOutputForMs,
    idleTimeoutMs: checkNumber('idleTimeoutMs', options.idleTimeoutMs ?? defaultIdleMs, 0, MAX_MS),
    halfOpen: checkBoolean('halfOpen', options.halfOpen ?? CLIENT_DEFAULTS.halfOpen),
    shutdownTimeoutMs: checkNumber('shutdownTimeoutMs', options.shutdownTimeoutMs ?? CLIENT_DEFAULTS.shutdownTimeoutMs, 0, MAX_MS),
    readPauseHigh,
    readPauseLow: readPause === null ? 0 : readPause.low,
    watchBytes: Math.min(softOutputBytes > 0 ? softOutputBytes : Number.POSITIVE_INFINITY, readPauseHigh),
    tcpKeepAliveMs: checkTcpKeepAlive(options.tcpKeepAliveMs ?? 0),
  };
}

/**
 * 0 (off), or whole milliseconds the kernel can take: Node passes whole
 * seconds, and 0 s would leave the system's idle time (7,200 s on Linux) in
 * place instead of the one asked for, hence at least 1000.
 */
function checkTcpKeepAlive(ms: number): number {
  return ms === 0 ? 0 : checkInteger('tcpKeepAliveMs', ms, 1000, MAX_TCP_KEEPALIVE_MS);
}

/**
 * @internal Applies the socket options of {@link ClientConfig} that the
 * reactor sets per socket (TCP keep-alive), where a server accepts a socket
 * and where a connector's socket connects.
 */
export function applySocketOptions(socket: { setKeepAlive(enable: boolean, initialDelay: number): unknown }, cfg: ClientConfig): void {
  if (cfg.tcpKeepAliveMs > 0) socket.setKeepAlive(true, cfg.tcpKeepAliveMs);
}

/**
 * @internal Validates read-pause marks: `high` an integer in [1, `max`],
 * `low` an integer in [0, high). Throws `NETLOOP_INVALID_OPTION`.
 */
export function checkReadPauseMarks(name: string, marks: unknown, max: number): ReadPauseMarks {
  const m = marks as ReadPauseMarks | null;
  const ok =
    typeof m === 'object' &&
    m !== null &&
    Number.isInteger(m.high) &&
    Number.isInteger(m.low) &&
    m.high >= 1 &&
    m.high <= max &&
    m.low >= 0 &&
    m.low < m.high;
  if (!ok) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, `${name} must be { high, low } with 1 <= high <= ${max} and 0 <= low < high`, {
      details: { option: name },
    });
  }
  return { high: m.high, low: m.low };
}
