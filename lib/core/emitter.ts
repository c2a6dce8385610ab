/**
 * The one event model of netloop: a typed, guarded emitter.
 *
 * Every event source (servers, connectors, the session binding, the
 * registry, the stores) extends {@link TypedEmitter} with a map of its
 * events, so a misspelled event name or a listener of the wrong signature is
 * a compile error, and every listener is called through one guard: a
 * listener that throws, or returns a promise that rejects, never escapes
 * into the emitter's caller or becomes an unhandled rejection. The fault goes
 * to {@link TypedEmitter._listenerFault}, which an owner overrides to close
 * the one client concerned (`handler-error`); by default, and for faults tied
 * to no client, it goes to the `'error'` event, and when nobody listens there
 * it is reported through {@link reportFault} (a process warning), never
 * thrown.
 *
 * ```
 *   listeners: { [event]: fn | fn[] }     one function held directly (the common
 *                                         case), an array once there are two
 *   emit(name, ...args)
 *     fn(...args) ── throws ─────────────▶ _listenerFault(err, name, args)
 *        └─ returns a thenable ── rejects ▶ _listenerFault(err, name, args)
 *   _listenerFault default ──▶ 'error' listeners ──(none)──▶ reportFault
 * ```
 *
 * Emitting copies nothing when there is one listener; with several, the
 * array is copied only when a listener is added or removed during the emit
 * (copy on write), so every listener present when the emit began is called
 * exactly once, in registration order.
 *
 * @module
 */

/**
 * A map of event names to listener signatures, such as
 * `{ data: (client: Client, chunk: Buffer) => void }`; an interface works
 * as well as a type literal.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type EventMap<E> = { [K in keyof E]: (...args: any[]) => void };

/** The event names of an event map. */
export type EventName<E> = keyof E & string;

/** Where a listener fault that nobody handles is reported; see {@link setFaultReporter}. */
export type FaultReporter = (fault: unknown, source: string) => void;

type Slot = ((...args: unknown[]) => unknown) | Array<(...args: unknown[]) => unknown>;

/** Marks a `once` wrapper, so `off(name, original)` finds it. */
interface OnceWrapper {
  (...args: unknown[]): unknown;
  listener: (...args: unknown[]) => unknown;
}

/** The default report says the same thing (source and code) at most once in this many ms. */
export const REPORT_INTERVAL_MS = 10_000;
/** Distinct (source, code) pairs remembered for the rate limit before the memory is reset. */
const MAX_REPORT_KEYS = 1024;

/** Per reporting object: when each (source, code) pair was last reported, and how many reports were held back since. */
const reportStates = new WeakMap<object, Map<string, { last: number; suppressed: number }>>();
/** The reporting object of faults reported without one. */
const NO_OWNER = {};

/**
 * The default report: a process warning named `NetloopWarning`, with the
 * fault's code (or `NETLOOP_UNHANDLED_FAULT`) and the fault itself as its
 * `cause`, so a `'warning'` listener can read the fault's details (the
 * client it concerned, ...). A fault that repeats (a store down fails every
 * audit tick) is reported at most once per {@link REPORT_INTERVAL_MS} for
 * each reporting object, source and code; the next report says how many were
 * held back.
 */
function defaultReporter(fault: unknown, source: string, owner: object = NO_OWNER): void {
  const code =
    (typeof fault === 'object' && fault !== null && typeof (fault as { code?: unknown }).code === 'string' ? (fault as { code: string }).code : undefined) ??
    'NETLOOP_UNHANDLED_FAULT';
  const key = `${source}\u0000${code}`;
  const now = performance.now();
  let states = reportStates.get(owner);
  if (states === undefined) reportStates.set(owner, (states = new Map()));
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
  const message = fault instanceof Error ? fault.message : String(fault);
  const more = suppressed > 0 ? ` (${suppressed} more like it in the last ${REPORT_INTERVAL_MS / 1000} s were not reported)` : '';
  const warning = new Error(`${source}: ${message}${more}`, { cause: fault }) as Error & { code: string };
  warning.name = 'NetloopWarning';
  warning.code = code;
  process.emitWarning(warning);
}

let reporter: FaultReporter = defaultReporter;

/**
 * Replaces where unhandled listener faults are reported (default: a process
 * warning, which Node prints to stderr). Pass null to restore the default.
 * A reporter that throws is ignored: reporting never crashes the process.
 */
export function setFaultReporter(fn: FaultReporter | null): void {
  reporter = fn ?? defaultReporter;
}

/**
 * Reports a fault nobody handles (see {@link setFaultReporter}); never
 * throws. `owner` is the object the fault belongs to (an emitter): the
 * default report's rate limit counts each owner apart, so one server's
 * repeated fault never hides another's.
 */
export function reportFault(fault: unknown, source: string, owner?: object): void {
  try {
    if (reporter === defaultReporter) defaultReporter(fault, source, owner);
    else reporter(fault, source);
  } catch {
    // A faulty reporter must not turn a reported fault into a crash.
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as PromiseLike<unknown>).then === 'function';
}

/**
 * A typed, guarded event emitter (see the module comment). Subclasses
 * declare their events as a type map and emit with the protected
 * {@link TypedEmitter.emit}.
 *
 * ```ts
 * interface Events { tick: (n: number) => void; error: (err: Error) => void }
 * class Ticker extends TypedEmitter<Events> { step(n: number) { this.emit('tick', n); } }
 * new Ticker().on('tick', (n) => console.log(n + 1));
 * ```
 */
export class TypedEmitter<E extends EventMap<E>> {
  #slots: Record<string, Slot | undefined> = Object.create(null) as Record<string, Slot | undefined>;
  /** Event names whose array is being iterated by an emit: a change copies it first. */
  #emitting: Set<string> | null = null;

  /** Adds `listener` for `name` (after those already there). */
  on<K extends EventName<E>>(name: K, listener: E[K]): this {
    this.#add(name, listener as (...args: unknown[]) => unknown);
    return this;
  }

  /** Adds `listener` for the next `name` event only. */
  once<K extends EventName<E>>(name: K, listener: E[K]): this {
    const wrapper = ((...args: unknown[]): unknown => {
      this.#remove(name, wrapper);
      return (listener as (...a: unknown[]) => unknown).apply(this, args);
    }) as OnceWrapper;
    wrapper.listener = listener as (...args: unknown[]) => unknown;
    this.#add(name, wrapper);
    return this;
  }

  /** Removes `listener` (added by `on` or `once`) for `name`; the last one added first when added twice. */
  off<K extends EventName<E>>(name: K, listener: E[K]): this {
    this.#remove(name, listener as (...args: unknown[]) => unknown);
    return this;
  }

  /** The number of listeners of `name`. */
  listenerCount<K extends EventName<E>>(name: K): number {
    const slot = this.#slots[name];
    return slot === undefined ? 0 : typeof slot === 'function' ? 1 : slot.length;
  }

  /**
   * Calls every listener of `name` with `args`, each guarded (see the module
   * comment). Returns true when there was at least one listener.
   */
  protected emit<K extends EventName<E>>(name: K, ...args: Parameters<E[K]>): boolean {
    const slot = this.#slots[name];
    if (slot === undefined) return false;
    if (typeof slot === 'function') {
      // The common case (one listener), inlined: this is the raw 'data' path.
      let result: unknown;
      try {
        result = slot.apply(this, args);
      } catch (err) {
        this._listenerFault(err, name, args);
        return true;
      }
      if (result !== undefined && isThenable(result)) this.#watch(result, name, args);
      return true;
    }
    const emitting = (this.#emitting ??= new Set());
    const nested = emitting.has(name);
    emitting.add(name);
    try {
      for (let i = 0; i < slot.length; i++) this.#call(slot[i]!, name, args);
    } finally {
      if (!nested) emitting.delete(name);
    }
    return true;
  }

  /**
   * A listener of `name` threw `fault` or its promise rejected with it. The
   * default hands it to the `'error'` listeners, or reports it when there
   * are none (or when an `'error'` listener itself failed). Owners override
   * this to close the client an event concerns.
   */
  protected _listenerFault(fault: unknown, name: string, _args: readonly unknown[]): void {
    this._reportError(fault, name);
  }

  /**
   * Delivers `fault` to the `'error'` listeners, or reports it (never
   * throws). `source` names where it came from, for the report.
   */
  protected _reportError(fault: unknown, source: string): void {
    const slot = this.#slots['error'];
    if (source === 'error' || slot === undefined) {
      reportFault(fault, `${this.constructor.name} '${source}' listener`, this);
      return;
    }
    (this.emit as (name: string, ...a: unknown[]) => boolean)('error', fault);
  }

  #call(fn: (...args: unknown[]) => unknown, name: string, args: unknown[]): void {
    let result: unknown;
    try {
      result = fn.apply(this, args);
    } catch (err) {
      this._listenerFault(err, name, args);
      return;
    }
    if (result !== undefined && isThenable(result)) this.#watch(result, name, args);
  }

  #watch(result: PromiseLike<unknown>, name: string, args: readonly unknown[]): void {
    result.then(undefined, (err: unknown) => this._listenerFault(err, name, args));
  }

  #add(name: string, fn: (...args: unknown[]) => unknown): void {
    if (typeof fn !== 'function') throw new TypeError(`the listener of '${name}' must be a function`);
    const slot = this.#slots[name];
    if (slot === undefined) this.#slots[name] = fn;
    else if (typeof slot === 'function') this.#slots[name] = [slot, fn];
    else if (this.#emitting?.has(name) === true) this.#slots[name] = [...slot, fn];
    else slot.push(fn);
  }

  #remove(name: string, fn: (...args: unknown[]) => unknown): void {
    const slot = this.#slots[name];
    if (slot === undefined) return;
    const matches = (l: (...args: unknown[]) => unknown): boolean => l === fn || (l as Partial<OnceWrapper>).listener === fn;
    if (typeof slot === 'function') {
      if (matches(slot)) this.#slots[name] = undefined;
      return;
    }
    for (let i = slot.length - 1; i >= 0; i--) {
      if (!matches(slot[i]!)) continue;
      const next = this.#emitting?.has(name) === true ? [...slot] : slot;
      next.splice(i, 1);
      this.#slots[name] = next.length === 0 ? undefined : next.length === 1 ? next[0] : next;
      return;
    }
  }
}
