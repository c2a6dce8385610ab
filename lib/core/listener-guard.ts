/**
 * Calling application listeners so that none can take the process down, and
 * the safe default of an `'error'` path nobody listens to.
 *
 * ```
 *   emitter ──▶ callGuarded(listener, args, onFault)
 *                 ├─ returns normally (or a promise that fulfils) ───────▶ nothing
 *                 ├─ throws ─────────────────────────────▶ onFault(err, false)
 *                 └─ returns a thenable that rejects ───▶ onFault(err, true)
 *   onFault: the emitter decides: close the client the event concerns
 *            ('handler-error'), or its 'error' path; an 'error' path without
 *            a listener ends in reportFault (a process warning, never a throw)
 * ```
 *
 * A throw inside `onFault` itself (a bug of the emitter) is reported too, so
 * the guard never lets anything escape into the caller's frame or into an
 * unhandled rejection.
 *
 * @module
 */

import { ErrorCode, NetloopError } from './errors.js';

/** Where a listener's fault goes: `rejected` is true for a rejected promise, false for a synchronous throw. */
export type ListenerFaultSink = (err: unknown, rejected: boolean) => void;

/**
 * Calls `fn` with `thisArg` and `args`. A synchronous throw, or the rejection
 * of a returned thenable (an async listener), goes to `onFault` exactly once;
 * nothing escapes.
 */
export function callGuarded(fn: (...args: never[]) => unknown, thisArg: unknown, args: readonly unknown[], onFault: ListenerFaultSink): void {
  let result: unknown;
  try {
    result = Reflect.apply(fn, thisArg, args);
  } catch (err) {
    deliverFault(onFault, err, false);
    return;
  }
  if (result === null || (typeof result !== 'object' && typeof result !== 'function')) return;
  let then: unknown;
  try {
    then = (result as PromiseLike<unknown>).then;
  } catch (err) {
    // A getter that throws is as much the listener's fault as a throw.
    deliverFault(onFault, err, false);
    return;
  }
  if (typeof then !== 'function') return;
  try {
    Reflect.apply(then, result, [undefined, (err: unknown) => deliverFault(onFault, err, true)]);
  } catch (err) {
    deliverFault(onFault, err, false);
  }
}

function deliverFault(onFault: ListenerFaultSink, err: unknown, rejected: boolean): void {
  try {
    onFault(err, rejected);
  } catch (inner) {
    reportFault(onFault, 'a listener fault handler', inner, false);
  }
}

/** A human summary of a thrown value, for an error message. */
export function describeFault(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The error of a listener's fault: `NETLOOP_HANDLER_ERROR`, the fault as
 * `cause`, `details` as given (the event, the client id, ...).
 */
export function listenerError(what: string, err: unknown, rejected: boolean, details: Record<string, unknown>): NetloopError {
  return new NetloopError(ErrorCode.HANDLER_ERROR, `${what} ${rejected ? 'rejected' : 'threw'}: ${describeFault(err)}`, {
    cause: err,
    details,
  });
}

/** One report per source, code and owner within this many ms; the repeats are counted and named in the next report. */
export const REPORT_INTERVAL_MS = 10_000;
/** Distinct (source, code) keys remembered per owner; past it the memory is cleared (reports may then repeat sooner). */
const MAX_REPORT_KEYS = 64;

interface ReportState {
  last: number;
  suppressed: number;
}

const reportStates = new WeakMap<object, Map<string, ReportState>>();

/**
 * The default of an `'error'` path that has no listener: a process warning
 * (`process.emitWarning`, type `NetloopWarning`, the error's code as the
 * warning's code), never a throw. A fault that repeats (a store that stays
 * down, a listener that fails on every event) is reported at most once per
 * {@link REPORT_INTERVAL_MS} per owner, source and code; the next report says
 * how many were left out.
 *
 * @param owner the emitter (its reports are rate-limited apart from other emitters').
 * @param source who reports, e.g. `'session binding'`.
 * @param hint whether to advise adding an `'error'` listener (not for a fault of one).
 */
export function reportFault(owner: object, source: string, err: unknown, hint = true): void {
  const code = err instanceof NetloopError ? err.code : typeof (err as { code?: unknown })?.code === 'string' ? String((err as { code: string }).code) : ErrorCode.HANDLER_ERROR;
  let states = reportStates.get(owner);
  if (states === undefined) reportStates.set(owner, (states = new Map()));
  const key = `${source}\u0000${code}`;
  const now = performance.now();
  let state = states.get(key);
  if (state !== undefined && now - state.last < REPORT_INTERVAL_MS) {
    state.suppressed++;
    return;
  }
  const suppressed = state?.suppressed ?? 0;
  if (state === undefined) {
    if (states.size >= MAX_REPORT_KEYS) states.clear();
    state = { last: now, suppressed: 0 };
    states.set(key, state);
  } else {
    state.last = now;
    state.suppressed = 0;
  }
  const more = suppressed > 0 ? ` (${suppressed} more like it in the last ${Math.round(REPORT_INTERVAL_MS / 1000)} s were not reported)` : '';
  try {
    const advice = hint ? "; add an 'error' listener to handle these" : '';
    process.emitWarning(`${source}: ${describeFault(err)}${more}${advice}`, { type: 'NetloopWarning', code });
  } catch {
    // A warning listener that throws is not ours to crash on.
  }
}
