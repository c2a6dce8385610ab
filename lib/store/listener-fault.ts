/**
 * The error a store reports when one of its event listeners throws or its
 * promise rejects: the same code, message shape and details in every store,
 * so that an application matches one `NETLOOP_HANDLER_ERROR` whatever store
 * it runs on. Where the error goes (a process warning, or the store's own
 * `'error'` event) stays each store's choice.
 *
 * ```
 *   listener throws / rejects ──▶ listenerFaultError('a redis store', 'change', fault, { prefix })
 *     ──▶ NetloopError { code: NETLOOP_HANDLER_ERROR, cause: fault, details: { event, ...where } }
 * ```
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../core/errors.js';

/**
 * The coded error for a failing listener of event `name` of a store named
 * `store` (with its article: `'a redis store'`); `where` says which store
 * (its prefix or file) in the details.
 */
export function listenerFaultError(store: string, name: string, fault: unknown, where: Record<string, unknown>): NetloopError {
  const message = fault instanceof Error ? fault.message : String(fault);
  return new NetloopError(ErrorCode.HANDLER_ERROR, `${store} '${name}' listener failed: ${message}`, {
    cause: fault,
    details: { event: name, ...where },
  });
}
