/**
 * Structured logs from netloop's diagnostics channels: one line per event
 * (accepts, closes with their reasons, drops, limit hits, handler faults,
 * TLS failures, session expiries), and store failures and recoveries from
 * the stores and registries given.
 *
 * ```
 *   netloop:client:accept ──┐
 *   netloop:client:close ───┤                      info  connection accepted   {event, clientId, remoteAddress, ...}
 *   netloop:client:drop ────┤                      info  connection closed     {event, clientId, reason}  (graceful)
 *   netloop:limit ──────────┼─▶ createLogSubscriber ─▶ warn  connection closed {..., reason, code}     (fault, limit)
 *   netloop:handler:error ──┤      (guarded)        warn  limit hit            {event, limit, clientId, code, details: sizes}
 *   netloop:tls:error ──────┤                      error handler failed        {event, clientId, source, code, causeName}
 *   netloop:session:expire ─┘                      error store failed          {event, store, code, syscallCode}
 *   store 'error' / 'recovered', registry 'error' ─▶     info  store recovered  {event, store}
 * ```
 *
 * Lines carry ids, reasons, stable codes, sizes and addresses. They never
 * carry a payload byte, a token, a token hash, or an error's message (which
 * may quote any of these): an error is logged by its code, its system code
 * and the class name of its cause. A logger that throws is caught here (a
 * throw inside a diagnostics subscriber would otherwise end the process).
 *
 * @module
 */

import * as dc from 'node:diagnostics_channel';
import { CHANNEL_NAMES } from '../reactor/diagnostics.js';
import type {
  AcceptMessage,
  CloseMessage,
  DropMessage,
  HandlerErrorMessage,
  LimitMessage,
  SessionExpireMessage,
  TlsErrorMessage,
} from '../reactor/diagnostics.js';
import { ErrorCode, NetloopError } from '../core/errors.js';
import type { Logger } from './logger.js';

/** The events a subscriber can log; each is on by default. */
export interface LogEvents {
  /** Server accepts (`info`). */
  accept?: boolean;
  /** Connector connections (`info`). */
  connect?: boolean;
  /** Closes: `info` when graceful, `warn` for faults and limits, `error` for handler faults. */
  close?: boolean;
  /** Connections dropped beyond `maxConnections` (`warn`). */
  drop?: boolean;
  /** Limits hit (`warn`). */
  limit?: boolean;
  /** Application handlers that threw or rejected (`error`). */
  handlerError?: boolean;
  /** Failed TLS handshakes (`warn`). */
  tlsError?: boolean;
  /** Session expiries (`info`). */
  sessionExpire?: boolean;
}

/** A store whose failures and recoveries are logged: a netloop `FileStore` (its `'error'` and `'recovered'` events). */
export interface WatchedStore {
  readonly kind: string;
  on(event: 'error' | 'recovered', listener: (arg?: unknown) => void): unknown;
  off(event: 'error' | 'recovered', listener: (arg?: unknown) => void): unknown;
}

/** A session registry whose `'error'` events (audits failing on a store that is down, listener faults) are logged. */
export interface WatchedRegistry {
  on(event: 'error', listener: (payload: { error: unknown; operation: string; event?: string }) => void): unknown;
  off?(event: 'error', listener: (payload: { error: unknown; operation: string; event?: string }) => void): unknown;
}

/** Options of {@link createLogSubscriber}. */
export interface LogSubscriberOptions {
  /** Which events to log; every one by default. */
  events?: LogEvents;
  /** Stores to watch, by name (see {@link WatchedStore}); at most 32. */
  stores?: Readonly<Record<string, WatchedStore>>;
  /** Session registries to watch (see {@link WatchedRegistry}); at most 32. */
  registries?: readonly WatchedRegistry[];
  /** Fields added to every line; default `{ component: 'netloop' }`. */
  bindings?: Record<string, unknown>;
}

/** A running subscription. */
export interface LogSubscription {
  /** Stops logging (unsubscribes every channel and listener); idempotent. */
  close(): void;
}

const GRACEFUL: ReadonlySet<string> = new Set([
  'peer-closed',
  'shutdown',
  'server-close',
  'removed',
  'session-expired',
  'session-replaced',
  'session-kicked',
  'session-deleted',
  'session-closed',
]);

/** The stable code and system code of an error, nothing else of it. */
function codesOf(err: unknown): { code: string | undefined; syscallCode: string | undefined; causeName: string | undefined } {
  if (err === null || typeof err !== 'object') return { code: undefined, syscallCode: undefined, causeName: typeof err };
  const e = err as { code?: unknown; details?: { syscallCode?: unknown }; cause?: unknown };
  const sys = e.details?.syscallCode ?? (e instanceof NetloopError ? undefined : e.code);
  const cause = e.cause;
  const causeName =
    cause === undefined ? undefined : typeof cause === 'object' && cause !== null ? String((cause as { constructor?: { name?: unknown } }).constructor?.name ?? 'Object') : typeof cause;
  return {
    code: typeof e.code === 'string' && e.code.startsWith('NETLOOP_') ? e.code : undefined,
    syscallCode: typeof sys === 'string' ? sys : undefined,
    causeName,
  };
}

/** Numbers and booleans of a limit's details (sizes, limits, durations): nothing that could hold a secret. */
function sizesOf(details: Readonly<Record<string, unknown>>): Record<string, number | boolean> {
  const out: Record<string, number | boolean> = {};
  for (const [k, v] of Object.entries(details)) if (typeof v === 'number' || typeof v === 'boolean') out[k] = v;
  return out;
}

/**
 * Subscribes `logger` to netloop's diagnostics channels (and to the stores
 * and registries given): one structured line per event (see the module
 * comment). The channels are process-wide, so one subscription logs every
 * loop of the process.
 *
 * ```ts
 * const logger = (await tryPino()) ?? consoleLogger();
 * const logs = createLogSubscriber(logger, { stores: { sessions: fileStore }, registries: [registry] });
 * // ... logs.close() at shutdown
 * ```
 *
 * @throws NetloopError `NETLOOP_INVALID_OPTION` for a logger without the four
 *   level methods and `child`, or bad options.
 */
export function createLogSubscriber(logger: Logger, options: LogSubscriberOptions = {}): LogSubscription {
  for (const m of ['debug', 'info', 'warn', 'error', 'child'] as const) {
    if (typeof (logger as unknown as Record<string, unknown> | null)?.[m] !== 'function') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, `logger must have ${m}()`, { details: { option: 'logger', method: m } });
    }
  }
  const stores = Object.entries(options.stores ?? {});
  const registries = options.registries ?? [];
  if (stores.length > 32 || registries.length > 32) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'at most 32 stores and 32 registries', { details: { option: stores.length > 32 ? 'stores' : 'registries' } });
  }
  for (const [name, s] of stores) {
    if (typeof s?.on !== 'function' || typeof s.off !== 'function') {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'stores must map names to stores with on() and off() (a FileStore)', { details: { option: 'stores', name } });
    }
  }
  for (const r of registries) {
    if (typeof r?.on !== 'function') throw new NetloopError(ErrorCode.INVALID_OPTION, 'registries must have on()', { details: { option: 'registries' } });
  }
  const log = logger.child(options.bindings ?? { component: 'netloop' });
  const on = { accept: true, connect: true, close: true, drop: true, limit: true, handlerError: true, tlsError: true, sessionExpire: true, ...options.events };

  let warned = false;
  /** Calls the logger; a logger that throws is reported once as a process warning, never thrown. */
  const write = (level: 'debug' | 'info' | 'warn' | 'error', fields: object, message: string): void => {
    try {
      log[level](fields, message);
    } catch (err) {
      if (warned) return;
      warned = true;
      const name = typeof err === 'object' && err !== null ? String((err as { constructor?: { name?: unknown } }).constructor?.name ?? 'Object') : typeof err;
      process.emitWarning(`netloop log subscriber: the logger threw (${name}); further faults are not reported`, {
        code: ErrorCode.HANDLER_ERROR,
      });
    }
  };

  const subs: Array<[string, (m: unknown) => void]> = [];
  const sub = (name: string, fn: (m: unknown) => void): void => {
    subs.push([name, fn]);
    dc.subscribe(name, fn);
  };
  if (on.accept) {
    sub(CHANNEL_NAMES.accept, (m) => {
      const a = m as AcceptMessage;
      write('info', { event: 'accept', clientId: a.clientId, remoteAddress: a.remoteAddress, remotePort: a.remotePort, tls: a.tls }, 'connection accepted');
    });
  }
  if (on.connect) {
    sub(CHANNEL_NAMES.connect, (m) => {
      const a = m as AcceptMessage;
      write('info', { event: 'connect', clientId: a.clientId, remoteAddress: a.remoteAddress, remotePort: a.remotePort, tls: a.tls }, 'connection established');
    });
  }
  if (on.close) {
    sub(CHANNEL_NAMES.close, (m) => {
      const c = m as CloseMessage;
      const level = c.reason === 'handler-error' ? 'error' : GRACEFUL.has(c.reason) && c.code === undefined ? 'info' : 'warn';
      write(level, { event: 'close', clientId: c.clientId, reason: c.reason, code: c.code, syscallCode: c.syscallCode }, 'connection closed');
    });
  }
  if (on.drop) {
    sub(CHANNEL_NAMES.drop, (m) => {
      const d = m as DropMessage;
      write('warn', { event: 'drop', reason: d.reason, remoteAddress: d.remoteAddress, remotePort: d.remotePort, limit: d.limit }, 'connection dropped');
    });
  }
  if (on.limit) {
    sub(CHANNEL_NAMES.limit, (m) => {
      const l = m as LimitMessage;
      write('warn', { event: 'limit', limit: l.limit, clientId: l.clientId, code: l.code, details: sizesOf(l.details) }, 'limit hit');
    });
  }
  if (on.handlerError) {
    sub(CHANNEL_NAMES.handlerError, (m) => {
      const h = m as HandlerErrorMessage;
      write('error', { event: 'handler-error', clientId: h.clientId, source: h.source, code: h.code, causeName: h.causeName }, 'handler failed');
    });
  }
  if (on.tlsError) {
    sub(CHANNEL_NAMES.tlsError, (m) => {
      const t = m as TlsErrorMessage;
      write('warn', { event: 'tls-error', code: t.code, remoteAddress: t.remoteAddress, remotePort: t.remotePort }, 'tls handshake failed');
    });
  }
  if (on.sessionExpire) {
    sub(CHANNEL_NAMES.sessionExpire, (m) => {
      const s = m as SessionExpireMessage;
      write('info', { event: 'session-expire', sessionId: s.sessionId, userId: s.userId, connectionId: s.connectionId, reason: s.reason }, 'session expired');
    });
  }

  const undo: Array<() => void> = [];
  for (const [name, store] of stores) {
    const onError = (err?: unknown): void => {
      const c = codesOf(err);
      write('error', { event: 'store-error', store: name, kind: store.kind, code: c.code, syscallCode: c.syscallCode }, 'store failed');
    };
    const onRecovered = (): void => {
      write('info', { event: 'store-recovered', store: name, kind: store.kind }, 'store recovered');
    };
    store.on('error', onError);
    store.on('recovered', onRecovered);
    undo.push(() => {
      store.off('error', onError);
      store.off('recovered', onRecovered);
    });
  }
  for (const registry of registries) {
    const onError = (p: { error: unknown; operation: string; event?: string }): void => {
      const c = codesOf(p.error);
      const cause = codesOf((p.error as { cause?: unknown } | null)?.cause);
      write(
        'error',
        { event: 'registry-error', operation: p.operation, listenerOf: p.event, code: c.code, causeCode: cause.code, syscallCode: c.syscallCode ?? cause.syscallCode },
        p.operation === 'audit' ? 'session store failed during an audit' : 'session listener failed',
      );
    };
    const off = registry.on('error', onError);
    undo.push(() => {
      if (typeof off === 'function') (off as () => void)();
      else registry.off?.('error', onError);
    });
  }

  let closed = false;
  return {
    close(): void {
      if (closed) return;
      closed = true;
      for (const [name, fn] of subs) dc.unsubscribe(name, fn);
      for (const u of undo) u();
    },
  };
}
