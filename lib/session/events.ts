/**
 * How the registry delivers its events: typed (the one event model,
 * `TypedEmitter`), deferred, batched and guarded.
 *
 * Events are queued and delivered from one microtask per batch, in order,
 * exactly once each: a listener never runs inside the registry call (or the
 * connection-close path) that caused its event, and an audit that expires
 * thousands of sessions schedules one microtask, not one per session.
 * Faults are not queued: `'error'` is delivered at once.
 *
 * ```
 *   _queue(name, payload) ─▶ queue [name, payload, name, payload, ...] ─▶ one microtask ─▶ drain
 *   drain: emit(name, payload): each listener guarded (TypedEmitter)
 *            └─ throws / rejects ─▶ _listenerFault ─▶ NETLOOP_HANDLER_ERROR
 *                 { event, sessionId, connectionId } ─▶ _fail ─▶ 'error' listeners
 *   _fail(payload) ─▶ 'error' listeners at once | none: a process warning (never thrown)
 *   an 'error' listener that fails ─▶ a process warning
 * ```
 *
 * The connection a fault concerns is the one its event names, else the
 * session's own: a session binding closes that client with
 * `'handler-error'`.
 *
 * @module
 */

import { TypedEmitter, reportFault } from '../core/emitter.js';
import { ErrorCode, NetloopError } from '../core/errors.js';
import type { RegistryErrorEvent, SessionEventName, SessionEvents, SessionInfo, SessionRegistryEvents } from './types.js';

/** The registry's emitter: see the module documentation. */
export class SessionEventSource extends TypedEmitter<SessionRegistryEvents> {
  /** Names and payloads, alternating: one array however many events a batch holds. */
  #queue: unknown[] = [];
  #scheduled = false;

  /**
   * @internal Queues an event for delivery in the next batch. Callers check
   * {@link SessionEventSource._listens} first when the payload costs
   * something to build.
   */
  protected _queue<K extends Exclude<SessionEventName, 'error'>>(name: K, payload: SessionEvents[K]): void {
    if (this.listenerCount(name) === 0) return;
    this.#queue.push(name, payload);
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(this.#drain);
    }
  }

  /** @internal True when `name` has a listener: callers skip building a payload nobody reads. */
  protected _listens(name: SessionEventName): boolean {
    return this.listenerCount(name) > 0;
  }

  /**
   * @internal Delivers a fault to the `error` listeners at once (each
   * guarded; the fault of one is reported), or reports it when there is none.
   */
  protected _fail(payload: RegistryErrorEvent): void {
    if (this.listenerCount('error') === 0) reportFault(payload.error, 'session registry', this);
    else this.emit('error', payload);
  }

  /**
   * A listener threw or its promise rejected: a listener of an event becomes
   * an `error` event (`operation: 'listener'`, `NETLOOP_HANDLER_ERROR` naming
   * the event, the session and the connection concerned); a failing `error`
   * listener is reported as a process warning.
   */
  protected override _listenerFault(fault: unknown, name: string, args: readonly unknown[]): void {
    const message = fault instanceof Error ? fault.message : String(fault);
    if (name === 'error') {
      const error = new NetloopError(ErrorCode.HANDLER_ERROR, `a session registry 'error' listener failed: ${message}`, {
        cause: fault,
        details: { event: 'error' },
      });
      reportFault(error, 'session registry error listener', this);
      return;
    }
    const p = args[0] as { session?: SessionInfo; connectionId?: string | null } | undefined;
    const session = p?.session;
    // The connection the event concerns: the one it names, else the session's own.
    const connectionId = p?.connectionId ?? session?.connectionId ?? null;
    const error = new NetloopError(ErrorCode.HANDLER_ERROR, `a session registry '${name}' listener failed: ${message}`, {
      cause: fault,
      details: { event: name, sessionId: session?.id ?? null, connectionId },
    });
    this._fail({ error, operation: 'listener', event: name as Exclude<SessionEventName, 'error'> });
  }

  readonly #drain = (): void => {
    this.#scheduled = false;
    const batch = this.#queue;
    this.#queue = [];
    for (let i = 0; i < batch.length; i += 2) {
      (this.emit as (name: string, payload: unknown) => boolean)(batch[i] as string, batch[i + 1]);
    }
  };
}
