/**
 * The etcd store's way to the server: the `etcd3` client (imported lazily,
 * created once, closed by the store), the deadline every operation runs
 * under, the fault-handling policies handed to `etcd3`, the revision the
 * store has seen, and the coded errors.
 *
 * ```
 *   op(name, body) ───── deadline: commandTimeoutMs ─────▶ NETLOOP_STORE_UNAVAILABLE
 *     body(client, callOptions)      every call carries the same gRPC deadline, so a
 *                                    call etcd never answers is cancelled, not left behind
 *   etcd3 policies   global: none (a transaction whose answer was lost is never sent again
 *                    blindly; the store decides: its writes compare revisions first)
 *                    per host: with several endpoints, a host that failed is skipped for
 *                    reconnectMaxDelayMs, so the next call goes to another
 *                    watch streams: reconnect after 50 ms, doubling up to reconnectMaxDelayMs
 *   failures ──▶ NETLOOP_STORE_UNAVAILABLE (details.transient: etcd3's "recoverable"),
 *                but a request over etcd's size limit ──▶ NETLOOP_INVALID_VALUE
 * ```
 *
 * The revision: every response carries etcd's current revision in its
 * header; {@link EtcdConnection.observe} keeps the highest seen, and the
 * first one (the revision the store started at, from which the change feed
 * is watched).
 *
 * @module
 */

import type { Etcd3, IOptions, IResponseHeader } from 'etcd3';
import { ErrorCode, NetloopError } from '../../core/errors.js';
import type { EtcdAuth, EtcdCredentials } from './credentials.js';

/** The `etcd3` module, as the store uses it. */
export type Etcd3Module = typeof import('etcd3');

/** The connection's settings, validated by the store. */
export interface ConnectionSettings {
  readonly hosts: readonly string[];
  readonly credentials: EtcdCredentials | undefined;
  readonly auth: EtcdAuth | undefined;
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly reconnectMaxMs: number;
  readonly keepAliveMs: number;
}

/** The first pause before a watch stream reconnects, doubled on each failure. */
export const RECONNECT_BASE_MS = 50;

/** gRPC call options: the deadline (epoch ms) after which a call is cancelled. */
export interface CallOptions {
  deadline: number;
}

/** What a body receives: the client and the call options (the operation's gRPC deadline). */
export type OpBody<T> = (client: Etcd3, call: CallOptions) => Promise<T>;

/** The error a host policy throws for a host skipped after a failure (etcd3 then tries another host). */
class HostSkipped extends Error {
  constructor(host: string) {
    super(`etcd host ${host} failed recently and is skipped`);
    this.name = 'HostSkipped';
  }
}

/** A backoff of etcd3's watch manager (cockatiel's `IBackoff` shape): 50 ms, doubling, capped, with jitter. */
function watchBackoff(maxMs: number, attempt = 0): { readonly duration: number; next(): ReturnType<typeof watchBackoff> } {
  const ceiling = Math.min(maxMs, RECONNECT_BASE_MS * 2 ** Math.min(attempt, 20));
  return {
    duration: Math.round(ceiling / 2 + (Math.random() * ceiling) / 2),
    next: () => watchBackoff(maxMs, attempt + 1),
  };
}

/** See the module documentation. */
export class EtcdConnection {
  readonly #s: ConnectionSettings;
  #client: Etcd3 | undefined;
  #module: Etcd3Module | undefined;
  #creating: Promise<Etcd3> | undefined;
  #closed = false;
  #inFlight = new Set<Promise<unknown>>();
  /** The highest revision seen in a response header, 0 before the first. */
  revision = 0;
  /** The revision of the first response: where this store started. */
  startRevision = 0;

  constructor(settings: ConnectionSettings) {
    this.#s = settings;
  }

  /** The command timeout, in ms. */
  get timeoutMs(): number {
    return this.#s.timeoutMs;
  }

  /** The `etcd3` module, once a client was created. */
  get module(): Etcd3Module | undefined {
    return this.#module;
  }

  /** Notes the revision of a response header. */
  observe(header: IResponseHeader | undefined): number {
    const rev = header === undefined ? 0 : Number(header.revision);
    if (rev > this.revision) this.revision = rev;
    if (this.startRevision === 0 && rev > 0) this.startRevision = rev;
    return rev;
  }

  /**
   * Runs one operation within the deadline: `body` gets the client and the
   * call options to pass to each call (their gRPC deadline is the
   * operation's). Rejects with `NETLOOP_STORE_UNAVAILABLE` when the deadline
   * passes or etcd fails; a `NetloopError` thrown by the body passes as is.
   */
  async op<T>(name: string, body: OpBody<T>): Promise<T> {
    if (this.#closed) throw new NetloopError(ErrorCode.STORE_CLOSED, 'the etcd store is closed');
    const timeoutMs = this.#s.timeoutMs;
    const call: CallOptions = { deadline: Date.now() + timeoutMs };
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        reject(
          new NetloopError(ErrorCode.STORE_UNAVAILABLE, `etcd store: ${name} got no answer within ${timeoutMs} ms`, {
            details: { operation: name, timeoutMs, transient: true },
          }),
        );
      }, timeoutMs);
    });
    const work = (async () => body(this.#client ?? (await Promise.race([this.#createClient(), deadline])), call))();
    // The deadline may win the race; the losing promise must not become an unhandled rejection.
    work.catch(() => undefined);
    deadline.catch(() => undefined);
    this.#inFlight.add(work);
    try {
      return await Promise.race([work, deadline]);
    } catch (err) {
      throw this.wrap(name, err);
    } finally {
      clearTimeout(timer);
      this.#inFlight.delete(work);
    }
  }

  /** The client, created on first use (for the change feed, which lives outside any one operation). */
  client(): Promise<Etcd3> {
    if (this.#closed) return Promise.reject(new NetloopError(ErrorCode.STORE_CLOSED, 'the etcd store is closed'));
    return this.#client !== undefined ? Promise.resolve(this.#client) : this.#createClient();
  }

  /** True when `err` is etcd3's "requested lease not found" (the lease expired or was revoked). */
  isLeaseNotFound(err: unknown): boolean {
    const mod = this.#module;
    return mod !== undefined && err instanceof mod.EtcdLeaseInvalidError;
  }

  /** True when `err` says a revision was compacted away (etcd's `ErrCompacted`). */
  isCompacted(err: unknown): boolean {
    return err instanceof Error && err.message.includes('required revision has been compacted');
  }

  /** A failure as a coded error (see the module documentation); a NetloopError unchanged. */
  wrap(operation: string, err: unknown): NetloopError {
    if (err instanceof NetloopError) return err;
    const message = err instanceof Error ? err.message : String(err);
    if (message.includes('request is too large') || message.includes('grpc: received message larger than max')) {
      // etcd refuses a request over its --max-request-bytes (1.5 MiB by default; its gRPC
      // server, one over 2 MiB): a record too large to store, not an outage.
      return new NetloopError(ErrorCode.INVALID_VALUE, `etcd store: ${operation} refused by etcd: ${message}`, {
        cause: err,
        details: { operation, reason: 'too large for etcd' },
      });
    }
    const mod = this.#module;
    const transient = err instanceof HostSkipped || (err instanceof Error && mod !== undefined && mod.isRecoverableError(err));
    return new NetloopError(ErrorCode.STORE_UNAVAILABLE, `etcd store: ${operation} failed: ${message}`, {
      cause: err,
      details: { operation, transient },
    });
  }

  /**
   * Closes: waits for the operations in flight (each bounded by its
   * deadline), then closes the client, which ends its watch streams.
   * Idempotent. Leases are left alone: they carry sessions that other
   * processes may resume.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#inFlight]);
    const client = this.#client ?? (this.#creating === undefined ? undefined : await this.#creating.catch(() => undefined));
    client?.close();
  }

  /** Imports `etcd3` and creates the client (once). */
  #createClient(): Promise<Etcd3> {
    if (this.#creating !== undefined) return this.#creating;
    this.#creating = (async () => {
      let mod: Etcd3Module;
      try {
        mod = await import('etcd3');
      } catch (err) {
        throw new NetloopError(ErrorCode.INVALID_OPTION, 'EtcdStore needs the optional peer dependency "etcd3" (npm install etcd3)', {
          cause: err,
          details: { option: 'hosts' },
        });
      }
      const s = this.#s;
      if (this.#closed) throw new NetloopError(ErrorCode.STORE_CLOSED, 'the etcd store is closed');
      const multiHost = s.hosts.length > 1;
      const noPolicy = { execute: <R>(fn: (context: { signal: AbortSignal }) => PromiseLike<R> | R) => Promise.resolve(fn({ signal: new AbortController().signal })) };
      const options: IOptions = {
        hosts: [...s.hosts],
        dialTimeout: s.connectTimeoutMs,
        grpcOptions: {
          // Detects a server that stopped answering (frozen, or cut off) under a
          // watch stream, which has no deadline of its own; etcd refuses pings
          // more often than every 5 s by default.
          'grpc.keepalive_time_ms': s.keepAliveMs,
          'grpc.keepalive_timeout_ms': Math.min(s.keepAliveMs, s.timeoutMs),
          'grpc.initial_reconnect_backoff_ms': RECONNECT_BASE_MS,
          'grpc.max_reconnect_backoff_ms': s.reconnectMaxMs,
        },
        faultHandling: {
          // cockatiel's policy shape; etcd3 only calls execute().
          global: noPolicy as unknown as NonNullable<IOptions['faultHandling']>['global'],
          host: (host: string) => {
            let failedAt = -Infinity;
            const policy = {
              execute: async <R>(fn: (context: { signal: AbortSignal }) => PromiseLike<R> | R): Promise<R> => {
                // With one host there is nowhere else to go: every call tries it.
                if (multiHost && performance.now() - failedAt < s.reconnectMaxMs) throw new HostSkipped(host);
                try {
                  return await fn({ signal: new AbortController().signal });
                } catch (err) {
                  if (err instanceof Error && mod.isRecoverableError(err)) failedAt = performance.now();
                  throw err;
                }
              },
            };
            return policy as unknown as ReturnType<NonNullable<NonNullable<IOptions['faultHandling']>['host']>>;
          },
          watchBackoff: watchBackoff(s.reconnectMaxMs) as unknown as NonNullable<IOptions['faultHandling']>['watchBackoff'],
        },
      };
      if (s.credentials !== undefined) options.credentials = s.credentials;
      if (s.auth !== undefined) options.auth = { username: s.auth.username, password: s.auth.password };
      const client = new mod.Etcd3(options);
      this.#module = mod;
      this.#client = client;
      return client;
    })();
    return this.#creating;
  }
}
