/**
 * What the operations layer reads, and where it reads it from.
 *
 * The metrics, the status page and nothing else in `lib/ops/` read netloop
 * through the small provider interfaces of `providers.ts`, at scrape time: a provider
 * hands out the counters netloop keeps anyway (incremented in place by the
 * reactor, the framing layer, the registry and the stores), never a stream
 * of events. The adapters in this file implement them over today's public
 * APIs (`loop.stats()`, `loop.clients()`, `client.queuedBytes`,
 * `registry.stats()`, `store.ping()`, the diagnostics channels); where a
 * layer grows a counter, the adapter reads it and the metric lights up.
 *
 * ```
 *   ReactorSource ◀── reactorSource(loop, { servers })
 *     counters()        loop.stats().counters, bytes and frames of live clients
 *                       + what closed clients had (read once, at their close)
 *     servers()         server.clientCount per named server
 *     forEachClient()   loop.clients() / server.clients(): id, peer, queuedBytes, age
 *     recentCloses()    ring of the last N closes (netloop:client:close)
 *   SessionSource ◀── sessionSource(registry)      registry.stats() (async: store counts)
 *   StoreSource   ◀── storeSource(store, { name }) store.ping() timed, with a deadline
 *   FramingSource ◀── framingSource(owner)         per-type frame counters (when the layer has them)
 * ```
 *
 * A counter a layer does not keep yet reads `undefined` here; the metric is
 * then absent, never a made-up 0.
 *
 * @module
 */

import * as dc from 'node:diagnostics_channel';
import { CHANNEL_NAMES } from '../reactor/diagnostics.js';
import type { AcceptMessage, CloseMessage, HandlerErrorMessage, LimitMessage } from '../reactor/diagnostics.js';
import { FramedClient } from '../framing/framed-client.js';
import { ErrorCode, NetloopError } from '../core/errors.js';
import { checkInteger, checkNumber } from '../core/validate.js';
// A histogram's reading and a store operation's timings: the shapes the lower layers keep, read as they are.
import type { DurationSample } from '../core/histogram.js';
import type { StoreOperationSample } from '../store/operation-stats.js';

export type { DurationSample, StoreOperationSample };

export type {
  ClientView,
  ReactorCounters,
  CloseRecord,
  ReactorSource,
  SessionSample,
  SessionSource,
  StoreSample,
  StoreSource,
  FrameTypeCount,
  FramingSource,
  RpcSample,
  RpcSource,
  OpsSources,
} from './providers.js';
import type { ClientView, CloseRecord, FramingSource, FrameTypeCount, ReactorCounters, ReactorSource } from './providers.js';
import type { RpcSample, RpcSource, SessionSample, SessionSource, StoreSample, StoreSource } from './providers.js';

// ─── adapters over the public APIs ────────────────────────────────────────────

/** The slice of an RPC endpoint {@link rpcSource} reads. What `enableRpc` returns is one. */
export interface RpcView {
  stats(): {
    calls: number;
    inFlight: number;
    replies: number;
    remoteErrors: number;
    timeouts: number;
    aborts: number;
    closed: number;
    limited: number;
    lateReplies: number;
    requests: number;
    failed: number;
    unknown: number;
    busy: number;
    badRequests: number;
    cancelled: number;
    latency: DurationSample;
  };
}

/**
 * A {@link RpcSource} over an RPC endpoint: its `stats()` counters, read at
 * scrape time (nothing is counted per call beyond what the endpoint keeps).
 *
 * @throws NetloopError `NETLOOP_INVALID_OPTION` for an empty name or a value without `stats()`.
 */
export function rpcSource(rpc: RpcView, options: { name?: string } = {}): RpcSource {
  const name = options.name ?? 'rpc';
  if (typeof name !== 'string' || name === '') {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'name must be a non-empty string', { details: { option: 'name' } });
  }
  if (rpc === null || typeof rpc !== 'object' || typeof rpc.stats !== 'function') {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'rpcSource needs what enableRpc returned', { details: { option: 'rpc' } });
  }
  return {
    name,
    sample(): RpcSample {
      const s = rpc.stats();
      return {
        name,
        calls: s.calls,
        inFlight: s.inFlight,
        replies: s.replies,
        callFailures: { 'remote-error': s.remoteErrors, timeout: s.timeouts, abort: s.aborts, closed: s.closed, limited: s.limited },
        lateReplies: s.lateReplies,
        requests: s.requests,
        requestFailures: { failed: s.failed, unknown: s.unknown, busy: s.busy, 'bad-request': s.badRequests, cancelled: s.cancelled },
        latency: s.latency,
      };
    },
  };
}


// ─── the reactor adapter ──────────────────────────────────────────────────────

/** The slice of a server {@link reactorSource} reads. A netloop `Server` is one. */
export interface ServerView {
  readonly clientCount: number;
  clients(): Iterable<ClientView>;
  /** The port it listens on: a closed client's server is found by its local port. */
  readonly port?: number;
}

/** The counters of a loop, with the fields later layers may add (read when present). */
interface LoopCountersView {
  accepted: number;
  connected: number;
  dropped: number;
  tlsErrors: number;
  closed: Readonly<Partial<Record<string, number>>>;
  bytesIn?: number;
  bytesOut?: number;
  framesIn?: number;
  framesOut?: number;
  inboundPauses?: number;
}

/** The slice of an event loop {@link reactorSource} reads. A netloop `EventLoop` is one. */
export interface LoopView {
  stats(): { counters: LoopCountersView };
  clients(): Iterable<ClientView>;
  getClient(id: number): ClientView | undefined;
  now(): number;
}

/** Options of {@link reactorSource}. */
export interface ReactorSourceOptions {
  /** Servers to report by name (`netloop_connections_open{server="..."}`); default none: one series, `server="loop"`. At most 64. */
  servers?: Readonly<Record<string, ServerView>>;
  /** How many closes {@link ReactorSource.recentCloses} keeps; default 50, at most 10,000. */
  recentCloses?: number;
  /** Wall time in ms for close records; default `Date.now`. */
  wallNow?: () => number;
}

/** A {@link ReactorSource} that holds subscriptions: {@link ReactorSourceHandle.close} ends them. */
export interface ReactorSourceHandle extends ReactorSource {
  /** Unsubscribes from the diagnostics channels; idempotent. */
  close(): void;
}

/**
 * One live client the adapter follows, from its accept (or from the
 * adapter's creation) to its close.
 *
 * ```
 *   live: Map<clientId, Tracked>   ── accept/connect ──▶ set      ── close ──▶ delete,
 *                                                                  bytes/frames added to `gone`
 * ```
 */
interface Tracked {
  client: ClientView;
  /** Loop time of the accept, or undefined when the client predates the adapter. */
  openedAt: number | undefined;
  /** The name of its server, `''` when unnamed. */
  server: string;
}

/** Close reasons that are limits (as `netloop:limit` reports them). */
const LIMIT_REASONS: ReadonlySet<string> = new Set(['output-limit', 'output-soft-limit', 'idle-timeout', 'frame-timeout', 'handshake-timeout', 'ping-timeout']);

/** The byte counters of a client's socket, when it is a netloop Client over a `net.Socket`. */
function socketBytes(client: ClientView): { bytesRead: number; bytesWritten: number } | undefined {
  const s = (client as { socket?: { bytesRead?: unknown; bytesWritten?: unknown } }).socket;
  if (s === undefined || typeof s.bytesRead !== 'number' || typeof s.bytesWritten !== 'number') return undefined;
  return s as { bytesRead: number; bytesWritten: number };
}

function framesOf(client: ClientView): number {
  // Frames decoded so far by the client's framing, or 0 for a raw client (or a view that is no Client).
  return client instanceof FramedClient ? client.framingStats().frames : 0;
}

function localPortOf(client: ClientView): number | undefined {
  const p = (client as { socket?: { localPort?: unknown } }).socket?.localPort;
  return typeof p === 'number' ? p : undefined;
}

function peerOf(client: ClientView): string {
  const a = client.remoteAddress;
  if (a === undefined) return '';
  return a.includes(':') ? `[${a}]:${client.remotePort ?? ''}` : `${a}:${client.remotePort ?? ''}`;
}

/**
 * A {@link ReactorSource} over a loop, today's APIs only:
 * - the loop's own counters (`loop.stats().counters`) for accepts, drops and closes;
 * - bytes in and out: the socket byte counters of live clients, plus those of
 *   closed clients read once at their close (nothing is counted per read or write);
 * - frames in: the framing layer's per-client count, the same way;
 * - ages, close records, limits and handler errors: the diagnostics channels
 *   (one small record per connection, none per message).
 *
 * Where the loop's counters carry `bytesIn`, `bytesOut`, `framesIn`,
 * `framesOut` or `inboundPauses` themselves, those are used instead.
 *
 * @throws NetloopError `NETLOOP_INVALID_OPTION` for a bad option.
 */
export function reactorSource(loop: LoopView, options: ReactorSourceOptions = {}): ReactorSourceHandle {
  const keep = checkInteger('recentCloses', options.recentCloses ?? 50, 0, 10_000);
  const wallNow = options.wallNow ?? Date.now;
  const servers = Object.entries(options.servers ?? {});
  if (servers.length > 64) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'at most 64 named servers', { details: { option: 'servers', value: servers.length } });
  }
  for (const [name, s] of servers) {
    if (name === '' || typeof s?.clients !== 'function') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'servers must map non-empty names to servers', { details: { option: 'servers', name } });
    }
  }
  // Local port -> server name, so a client's server is known in O(1) at its accept.
  const byPort = new Map<number, string>();
  for (const [name, s] of servers) {
    let port: number | undefined;
    try {
      port = s.port;
    } catch {
      port = undefined; // not listening (yet): its clients are reported unnamed in close records
    }
    if (typeof port === 'number') byPort.set(port, name);
  }
  const serverOf = (client: ClientView): string => {
    const port = byPort.size === 0 ? undefined : localPortOf(client);
    return port === undefined ? '' : (byPort.get(port) ?? '');
  };
  const live = new Map<number, Tracked>();
  for (const c of loop.clients()) live.set(c.id, { client: c, openedAt: undefined, server: serverOf(c) });
  const gone = { bytesIn: 0, bytesOut: 0, framesIn: 0 };
  const limits: Record<string, number> = {};
  let handlerErrors = 0;
  const closes: CloseRecord[] = [];

  const onOpen = (m: unknown): void => {
    const id = (m as AcceptMessage).clientId;
    const client = loop.getClient(id);
    if (client !== undefined) live.set(id, { client, openedAt: loop.now(), server: serverOf(client) });
  };
  const onClose = (m: unknown): void => {
    const msg = m as CloseMessage;
    const t = live.get(msg.clientId);
    if (t === undefined) return; // another loop's client
    live.delete(msg.clientId);
    const b = socketBytes(t.client);
    if (b !== undefined) {
      gone.bytesIn += b.bytesRead;
      gone.bytesOut += b.bytesWritten;
    }
    gone.framesIn += framesOf(t.client);
    if (LIMIT_REASONS.has(msg.reason)) limits[msg.reason] = (limits[msg.reason] ?? 0) + 1;
    else if (msg.code === ErrorCode.FRAME_TOO_LARGE) limits['frame-length'] = (limits['frame-length'] ?? 0) + 1;
    if (keep === 0) return;
    const rec: CloseRecord = {
      at: wallNow(),
      clientId: msg.clientId,
      server: t.server,
      peer: peerOf(t.client),
      reason: msg.reason,
      code: msg.code,
      syscallCode: msg.syscallCode,
      ageSeconds: t.openedAt === undefined ? undefined : (loop.now() - t.openedAt) / 1000,
    };
    if (closes.length >= keep) closes.shift();
    closes.push(rec);
  };
  const onLimit = (m: unknown): void => {
    const msg = m as LimitMessage;
    // Limits that close a client are counted from the close (published before
    // this message, when the client is no longer live); drops from the loop.
    if (msg.clientId === null || !live.has(msg.clientId)) return;
    limits[msg.limit] = (limits[msg.limit] ?? 0) + 1;
  };
  const onHandlerError = (m: unknown): void => {
    const msg = m as HandlerErrorMessage;
    // A handler-error close is counted from the close; a fault with no client
    // (a 'drop' listener, ...) cannot be told apart by loop and is counted here.
    if (msg.clientId === null || live.has(msg.clientId)) handlerErrors++;
  };
  const subs: Array<[string, (m: unknown) => void]> = [
    [CHANNEL_NAMES.accept, onOpen],
    [CHANNEL_NAMES.connect, onOpen],
    [CHANNEL_NAMES.close, onClose],
    [CHANNEL_NAMES.limit, onLimit],
    [CHANNEL_NAMES.handlerError, onHandlerError],
  ];
  for (const [name, fn] of subs) dc.subscribe(name, fn);
  let closed = false;

  return {
    counters(): ReactorCounters {
      const c = loop.stats().counters;
      let bytesIn = c.bytesIn;
      let bytesOut = c.bytesOut;
      let framesIn = c.framesIn;
      if (bytesIn === undefined || bytesOut === undefined || framesIn === undefined) {
        let bi = gone.bytesIn;
        let bo = gone.bytesOut;
        let fi = gone.framesIn;
        for (const t of live.values()) {
          const b = socketBytes(t.client);
          if (b !== undefined) {
            bi += b.bytesRead;
            bo += b.bytesWritten;
          }
          fi += framesOf(t.client);
        }
        bytesIn ??= bi;
        bytesOut ??= bo;
        framesIn ??= fi;
      }
      const closedByReason: Record<string, number> = {};
      for (const [k, v] of Object.entries(c.closed)) if (v !== undefined) closedByReason[k] = v;
      const allLimits: Record<string, number> = { ...limits };
      if (c.dropped > 0) allLimits['max-connections'] = c.dropped;
      return {
        accepted: c.accepted,
        connected: c.connected,
        dropped: c.dropped,
        tlsErrors: c.tlsErrors,
        closed: closedByReason,
        bytesIn,
        bytesOut,
        framesIn,
        framesOut: c.framesOut,
        inboundPauses: c.inboundPauses ?? (limits['inbound'] === undefined ? undefined : limits['inbound']),
        limits: allLimits,
        handlerErrors: handlerErrors + (closedByReason['handler-error'] ?? 0),
      };
    },
    servers(): Iterable<{ name: string; open: number }> {
      if (servers.length === 0) {
        let open = 0;
        for (const _ of loop.clients()) open++;
        return [{ name: 'loop', open }];
      }
      return servers.map(([name, s]) => ({ name, open: s.clientCount }));
    },
    forEachClient(visit): void {
      const now = loop.now();
      const ageOf = (c: ClientView): number | undefined => {
        const t = live.get(c.id);
        return t?.openedAt === undefined ? undefined : now - t.openedAt;
      };
      if (servers.length === 0) {
        for (const c of loop.clients()) visit(c, '', ageOf(c));
        return;
      }
      let named = 0;
      for (const [name, s] of servers) {
        for (const c of s.clients()) {
          named++;
          visit(c, name, ageOf(c));
        }
      }
      let total = 0;
      for (const _ of loop.clients()) total++;
      if (total === named) return;
      // Clients of connectors or of unnamed servers: those not visited above.
      const seen = new Set<number>();
      for (const [, s] of servers) for (const c of s.clients()) seen.add(c.id);
      for (const c of loop.clients()) if (!seen.has(c.id)) visit(c, '', ageOf(c));
    },
    recentCloses(): readonly CloseRecord[] {
      return closes.slice();
    },
    close(): void {
      if (closed) return;
      closed = true;
      for (const [name, fn] of subs) dc.unsubscribe(name, fn);
      live.clear();
    },
  };
}

// ─── the session adapter ──────────────────────────────────────────────────────

/** The slice of a session registry {@link sessionSource} reads. A netloop `SessionRegistry` is one. */
export interface RegistryView {
  stats(): Promise<{
    byState: Readonly<Partial<Record<'CONNECTING' | 'ACTIVE' | 'IDLE' | 'CLOSED', number>>>;
    local: number;
    attached: number;
    counters: Readonly<Partial<Record<'created' | 'resumed' | 'detached' | 'expired' | 'replaced' | 'closed' | 'deleted' | 'refused', number>>>;
    /** Audit tick durations, when the registry measures them. */
    audit?: DurationSample;
  }>;
}

/** A {@link SessionSource} over a registry's `stats()`. */
export function sessionSource(registry: RegistryView): SessionSource {
  return {
    async sample(): Promise<SessionSample> {
      const s = await registry.stats();
      const n = (v: number | undefined): number => v ?? 0;
      return {
        byState: { CONNECTING: n(s.byState['CONNECTING']), ACTIVE: n(s.byState['ACTIVE']), IDLE: n(s.byState['IDLE']) },
        local: s.local,
        attached: s.attached,
        counters: {
          created: n(s.counters['created']),
          resumed: n(s.counters['resumed']),
          detached: n(s.counters['detached']),
          expired: n(s.counters['expired']),
          replaced: n(s.counters['replaced']),
          closed: n(s.counters['closed']),
          deleted: n(s.counters['deleted']),
          refused: n(s.counters['refused']),
        },
        audit: s.audit,
      };
    },
  };
}

// ─── the store adapter ────────────────────────────────────────────────────────

/** The slice of a session store {@link storeSource} reads. Every netloop store is one. */
export interface StoreView {
  readonly kind: string;
  ping?(): Promise<void>;
  count(): Promise<number>;
  /** A file store's state (`'open'`, `'error'`, `'closing'`, `'closed'`). */
  readonly status?: string;
  /** Per-operation timings, when the store measures them. */
  operationStats?(): readonly StoreOperationSample[];
}

/** Options of {@link storeSource}. */
export interface StoreSourceOptions {
  /** The store's label; default its `kind`. */
  name?: string;
  /** The longest a health check may take before the store is reported down (`status: 'timeout'`); default 1,000 ms. */
  pingTimeoutMs?: number;
}

/**
 * A {@link StoreSource}: each sample asks the store whether it answers
 * (`store.ping()`, else `store.count()`), timed, within `pingTimeoutMs`.
 *
 * @throws NetloopError `NETLOOP_INVALID_OPTION` for a bad option.
 */
export function storeSource(store: StoreView, options: StoreSourceOptions = {}): StoreSource {
  const name = options.name ?? store.kind;
  if (typeof name !== 'string' || name === '') {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'name must be a non-empty string', { details: { option: 'name' } });
  }
  const timeoutMs = checkNumber('pingTimeoutMs', options.pingTimeoutMs ?? 1_000, 1, 60_000);
  return {
    name,
    kind: store.kind,
    async sample(): Promise<StoreSample> {
      const operations = store.operationStats?.();
      const start = performance.now();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      });
      try {
        const check = store.ping !== undefined ? store.ping() : store.count();
        const r = await Promise.race([check.then(() => 'ok' as const), timeout]);
        if (r === 'timeout') {
          check.catch(() => undefined);
          return { name, kind: store.kind, up: false, status: 'timeout', pingSeconds: undefined, errorCode: ErrorCode.STORE_UNAVAILABLE, operations };
        }
        const status = store.status === undefined || store.status === 'open' ? 'ok' : store.status;
        return { name, kind: store.kind, up: status === 'ok', status, pingSeconds: (performance.now() - start) / 1000, errorCode: undefined, operations };
      } catch (err) {
        const code = (err as { code?: unknown } | null)?.code;
        const status = store.status !== undefined && store.status !== 'open' ? store.status : 'error';
        return {
          name,
          kind: store.kind,
          up: false,
          status,
          pingSeconds: (performance.now() - start) / 1000,
          errorCode: typeof code === 'string' ? code : undefined,
          operations,
        };
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

// ─── the framing adapter ──────────────────────────────────────────────────────

/** A framing owner that may count frames by type (the framing layer's hook). */
export interface FrameCountingView {
  frameCounts?(): readonly FrameTypeCount[];
}

/** A {@link FramingSource} over a framed server or connector: its per-type counts once the framing layer keeps them. */
export function framingSource(owner: FrameCountingView): FramingSource {
  return {
    framesByType(): readonly FrameTypeCount[] | undefined {
      return typeof owner.frameCounts === 'function' ? owner.frameCounts() : undefined;
    },
  };
}
