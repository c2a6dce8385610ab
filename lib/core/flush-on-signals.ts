/**
 * Flush stores (or anything with `close()` / `flush()`) when the process is
 * asked to stop, then let it stop.
 *
 * ```
 *   SIGTERM ──► remove own listeners ──► close()/flush() every target (bounded by timeoutMs)
 *                                              │
 *                                              └──► re-raise the signal (default exit) ──► process ends
 * ```
 *
 * Removing the listeners first means a second Ctrl-C during a slow flush
 * kills the process at once, as users expect.
 *
 * @module
 */

import { checkNumber } from './validate.js';

/** Something that can be flushed or closed: every netloop store qualifies. */
export interface Flushable {
  /** Writes what is held in memory to durable storage; used when `method` is `'flush'`, or when there is no `close()`. */
  flush?(): Promise<unknown>;
  /** Flushes, then releases the target's resources; used by default (`method: 'close'`). */
  close?(): Promise<unknown>;
}

/** Options of {@link flushOnSignals}. */
export interface FlushOnSignalsOptions {
  /** Signals to handle (default `['SIGINT', 'SIGTERM']`). */
  signals?: NodeJS.Signals[];
  /** `'close'` (default: flush then release; falls back to flush) or `'flush'` (flush only; falls back to close). */
  method?: 'close' | 'flush';
  /** Longest wait for the targets before the process is let go anyway (default 10 000 ms; 0 to 600 000). */
  timeoutMs?: number;
  /**
   * After flushing, re-raise the signal so the process ends as it would have
   * without this helper (default true). Set false when the application runs
   * its own shutdown after the flush; then only `onDone` is called.
   */
  exit?: boolean;
  /** Called with each target's failure (default: one line on stderr). */
  onError?: (err: unknown) => void;
  /** Called once the targets settled (or timed out), before the signal is re-raised. */
  onDone?: (signal: NodeJS.Signals) => void;
}

function defaultOnError(err: unknown): void {
  const code = (err as { code?: unknown } | null)?.code;
  process.stderr.write(`netloop: flush on signal failed${typeof code === 'string' ? ` (${code})` : ''}: ${err instanceof Error ? err.message : String(err)}\n`);
}

/**
 * Installs handlers that flush `targets` on SIGINT and SIGTERM (or `signals`),
 * then let the process exit by re-raising the signal. Returns a disposer that
 * removes the handlers (idempotent).
 *
 * ```ts
 * const store = await FileStore.open({ path: 'data/sessions.json' });
 * const dispose = flushOnSignals(store);
 * ```
 */
export function flushOnSignals(targets: Flushable | readonly Flushable[], options: FlushOnSignalsOptions = {}): () => void {
  const list: readonly Flushable[] = Array.isArray(targets) ? targets : [targets as Flushable];
  const signals = options.signals ?? (['SIGINT', 'SIGTERM'] as NodeJS.Signals[]);
  const method = options.method ?? 'close';
  const timeoutMs = checkNumber('timeoutMs', options.timeoutMs ?? 10_000, 0, 600_000);
  const exit = options.exit ?? true;
  const onError = options.onError ?? defaultOnError;
  let installed = true;

  const dispose = (): void => {
    if (!installed) return;
    installed = false;
    for (const s of signals) process.removeListener(s, handler);
  };

  function runOne(t: Flushable): Promise<unknown> {
    const primary = method === 'close' ? (t.close ?? t.flush) : (t.flush ?? t.close);
    if (primary === undefined) return Promise.resolve();
    try {
      return Promise.resolve(primary.call(t));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  function handler(signal: NodeJS.Signals): void {
    dispose();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        onError(new Error(`flush did not finish within ${timeoutMs} ms`));
        resolve();
      }, timeoutMs);
    });
    const all = Promise.all(list.map((t) => runOne(t).catch(onError))).then(() => undefined);
    void Promise.race([all, deadline]).then(() => {
      clearTimeout(timer);
      options.onDone?.(signal);
      // With no listener left, the re-raised signal takes its default action: the process ends
      // by that signal, so its parent sees the true cause.
      if (exit && process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }

  for (const s of signals) process.on(s, handler);
  return dispose;
}
