/**
 * The publish script (one node): writes a change's tombstone, then
 * publishes the change on the store's channel, in one step.
 *
 * ```
 *   ARGV[5]   the session id
 *   ARGV[6]   the change as JSON
 *   ARGV[7]   the tombstone's TTL in ms
 *   ARGV[8]   the channel
 *   returns   the number of subscribers that received it
 * ```
 *
 * @module
 */

/** The publish script's body (after the common prelude); see the module documentation. */
export const PUBLISH_SCRIPT = `
redis.call('SET', xkey(ARGV[5]), ARGV[6], 'PX', ARGV[7])
return redis.call('PUBLISH', ARGV[8], ARGV[6])`;
