/**
 * uvu's `suite` and `test`, with every test and hook guarded so that a
 * failure is always reported as one.
 *
 * uvu formats a failure by reading the error's `details` as a string (its
 * own assertion errors carry a diff there). A {@link NetloopError} carries an
 * object in `details`; formatting it throws inside uvu's runner, which then
 * drops the failure: the test is neither passed nor failed, and the run
 * exits 0. The guard rethrows any error whose `details` is not a string as a
 * plain `Error` that names its code and details and keeps the original as
 * `cause` (and its stack), so the failure is printed and the run fails.
 *
 * Every test file imports `suite` / `test` from here, never from 'uvu'.
 *
 * @module
 */

import { suite as uvuSuite } from 'uvu';
import type { Callback, Test } from 'uvu';

/** An error uvu can format: assertion errors and errors without object `details` pass unchanged. */
function readable(err: unknown): unknown {
  if (err === null || typeof err !== 'object') return new Error(`a non-error was thrown: ${String(err)}`);
  const e = err as Error & { details?: unknown; code?: unknown };
  if (e.details === undefined || typeof e.details === 'string') return err;
  let details: string;
  try {
    details = JSON.stringify(e.details);
  } catch {
    details = String(e.details);
  }
  const plain = new Error(`${e.name}${e.code === undefined ? '' : ` ${String(e.code)}`}: ${e.message} ${details}`, { cause: err });
  if (e.stack !== undefined) plain.stack = `${plain.message}\n${e.stack.slice(e.stack.indexOf('\n') + 1)}`;
  return plain;
}

function guard<T>(fn: Callback<T>): Callback<T> {
  return async (ctx) => {
    try {
      await fn(ctx);
    } catch (err) {
      throw readable(err);
    }
  };
}

/** uvu's `suite`, guarded (see the module comment). */
export function suite<T = Record<string, unknown>>(title?: string, context?: T): Test<T> {
  const s = uvuSuite<T>(title, context);
  const t = ((name: string, fn: Callback<T>) => s(name, guard(fn))) as Test<T>;
  t.only = (name, fn) => s.only(name, guard(fn));
  t.skip = (name, fn) => s.skip(name, fn === undefined ? fn : guard(fn));
  const before = ((fn: Callback<T>) => s.before(guard(fn))) as Test<T>['before'];
  before.each = (fn) => s.before.each(guard(fn));
  const after = ((fn: Callback<T>) => s.after(guard(fn))) as Test<T>['after'];
  after.each = (fn) => s.after.each(guard(fn));
  t.before = before;
  t.after = after;
  t.run = () => s.run();
  return t;
}

/** uvu's default `test` suite, guarded. */
export const test: Test<Record<string, unknown>> = suite();
