/**
 * Validation of options and arguments: every limit netloop takes is checked
 * here before it is used (and before anything is allocated from it), so a
 * bad option fails at construction with `NETLOOP_INVALID_OPTION` rather than
 * under load.
 *
 * ```
 *   checkX(name, value, ...) ──ok──▶ value (typed)
 *                            └─bad─▶ throw NetloopError(INVALID_OPTION, details { option: name, ... })
 * ```
 *
 * `name` is the option as the caller spelt it (`'maxOutputBytes'`,
 * `'reconnect.factor'`), so the error's `details.option` names what to fix.
 *
 * @module
 */

import { ErrorCode, NetloopError } from './errors.js';

/**
 * Throws a {@link ErrorCode.INVALID_OPTION} error unless `value` is a finite
 * integer within `[min, max]`; returns it.
 */
export function checkInteger(name: string, value: number, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, `${name} must be an integer in [${min}, ${max}], got ${String(value)}`, {
      details: { option: name, value, min, max },
    });
  }
  return value;
}

/** Like {@link checkInteger} for finite, non-integer quantities (durations in ms, factors). */
export function checkNumber(name: string, value: number, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, `${name} must be a number in [${min}, ${max}], got ${String(value)}`, {
      details: { option: name, value, min, max },
    });
  }
  return value;
}

/** Throws `NETLOOP_INVALID_OPTION` unless `value` is a boolean; returns it. */
export function checkBoolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') {
    throw new NetloopError(ErrorCode.INVALID_OPTION, `${name} must be a boolean, got ${String(value)}`, {
      details: { option: name, value },
    });
  }
  return value;
}

/** Throws `NETLOOP_INVALID_OPTION` unless `value` is a string; returns it. */
export function checkString(name: string, value: unknown): string {
  if (typeof value !== 'string') {
    throw new NetloopError(ErrorCode.INVALID_OPTION, `${name} must be a string`, { details: { option: name } });
  }
  return value;
}

/**
 * Throws `NETLOOP_INVALID_OPTION` unless `value` is a function or absent
 * (undefined or null); returns it, or null when absent.
 */
export function checkOptionalFunction<F extends (...args: never[]) => unknown>(name: string, value: F | null | undefined): F | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'function') {
    throw new NetloopError(ErrorCode.INVALID_OPTION, `${name} must be a function`, { details: { option: name } });
  }
  return value;
}

/** Throws `NETLOOP_INVALID_OPTION` unless `value` is a plain options object (not null, not an array). */
export function checkObject(name: string, value: unknown): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, `${name} must be an options object`, { details: { option: name } });
  }
}
