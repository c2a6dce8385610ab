/**
 * `netloop/testing`: the test kit for applications and store adapters built
 * on netloop (the manual clock today; the fault-injecting file system and the
 * store conformance suite join it).
 *
 * @module
 */

export { ManualClock } from './core/clock.js';
