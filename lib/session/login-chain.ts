/**
 * One user's logins under the `'replace'` policy, run one after another in
 * call order: each finds the session of the one before it and replaces it,
 * so the newest login wins and none is refused.
 *
 * ```
 *   chains: Map<userId, { tail, size }>
 *     tail: the promise that settles when the last queued login settled
 *     size: logins queued or running; the entry is removed when it drops to 0
 * ```
 *
 * A chain holds at most `max` logins; one more is refused
 * (`NETLOOP_LOGIN_REFUSED`, `details.limit`) rather than queued without bound.
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../core/errors.js';

/** See the module documentation. */
export class LoginChains {
  readonly #chains = new Map<string, { tail: Promise<unknown>; size: number }>();
  readonly #max: number;

  /** @param max logins of one user that may wait for each other (`maxPendingLoginsPerUser`). */
  constructor(max: number) {
    this.#max = max;
  }

  /**
   * Runs `login` after every earlier login of `userId` has settled; rejects
   * at once when the chain is full (and calls `refused`).
   */
  run<T>(userId: string, login: () => Promise<T>, refused: () => void): Promise<T> {
    let chain = this.#chains.get(userId);
    if (chain === undefined) {
      chain = { tail: Promise.resolve(), size: 0 };
      this.#chains.set(userId, chain);
    } else if (chain.size >= this.#max) {
      refused();
      const max = this.#max;
      return Promise.reject(
        new NetloopError(ErrorCode.LOGIN_REFUSED, `more than ${max} logins of one user are waiting for each other`, {
          details: { policy: 'replace', limit: 'maxPendingLoginsPerUser', max },
        }),
      );
    }
    const entry = chain;
    entry.size++;
    const run = entry.tail.then(login);
    const done = (): void => {
      if (--entry.size === 0 && this.#chains.get(userId) === entry) this.#chains.delete(userId);
    };
    entry.tail = run.then(done, done);
    return run;
  }
}
