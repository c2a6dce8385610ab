/**
 * Time sources. netloop schedules on a monotonic clock, so a wall-clock jump
 * (NTP step, manual change) never makes a timer fire early or late (muduo
 * issue #168). Wall-clock time is only used for what is persisted or shown:
 * session creation and expiry stamps that must survive a restart.
 *
 * Both are behind the {@link Clock} interface so tests can run in virtual time
 * with {@link ManualClock}.
 *
 * @module
 */

/** A pair of time sources, both in milliseconds. */
export interface Clock {
  /** Monotonic milliseconds from an arbitrary origin; never goes backwards. */
  now(): number;
  /** Wall-clock milliseconds since the Unix epoch; only for persisted stamps. */
  wallNow(): number;
}

/** The process clock: `performance.now()` for monotonic time, `Date.now()` for wall time. */
export const systemClock: Clock = Object.freeze({
  now: () => performance.now(),
  wallNow: () => Date.now(),
});

/**
 * A clock that moves only when told to. Monotonic and wall time advance
 * together; {@link ManualClock.jumpWall} moves wall time alone, to test that
 * nothing scheduled depends on it.
 */
export class ManualClock implements Clock {
  #mono: number;
  #wall: number;

  /** @param start monotonic start (default 0); @param wallStart wall start (default 2026-01-01T00:00:00Z). */
  constructor(start = 0, wallStart = Date.UTC(2026, 0, 1)) {
    this.#mono = start;
    this.#wall = wallStart;
  }

  /** @inheritDoc */
  now(): number {
    return this.#mono;
  }

  /** @inheritDoc */
  wallNow(): number {
    return this.#wall;
  }

  /** Moves both clocks forward by `ms` (which must be >= 0). */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError('ManualClock.advance: ms must be >= 0');
    this.#mono += ms;
    this.#wall += ms;
  }

  /** Moves only the wall clock, by `ms` (may be negative), as an NTP step would. */
  jumpWall(ms: number): void {
    this.#wall += ms;
  }
}
