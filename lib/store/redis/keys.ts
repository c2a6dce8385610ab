/**
 * The Redis store's key names, as the Lua prelude builds them too (see the
 * key layout in `redis-store.ts`), and the horizon arithmetic both sides
 * share.
 *
 * ```
 *   P s:{<id>}       the session (HASH)         P x:{<id>}      its tombstone (STRING)
 *   P t:{<hash>}     token hash → id            P c:{<conn>}    connection → id
 *   P u:{u:<user>}   the user's sessions (ZSET by horizon)
 *   P i:created  P i:expires  P i:state:<S>  P i:online   listing indexes (one node only)
 *   P changes        the change feed's channel
 * ```
 *
 * @module
 */

/** The key names of one prefix. */
export class Keys {
  constructor(readonly prefix: string) {}
  session(id: string): string {
    return `${this.prefix}s:{${id}}`;
  }
  tombstone(id: string): string {
    return `${this.prefix}x:{${id}}`;
  }
  token(hash: string): string {
    return `${this.prefix}t:{${hash}}`;
  }
  connection(id: string): string {
    return `${this.prefix}c:{${id}}`;
  }
  user(id: string): string {
    return `${this.prefix}u:{u:${id}}`;
  }
  /** The change feed's channel. */
  get channel(): string {
    return `${this.prefix}changes`;
  }
  /** What `SCAN MATCH` finds the sessions by. */
  get sessionPattern(): string {
    return `${globEscape(this.prefix)}s:{*`;
  }
  /** What `SCAN MATCH` finds every key of the prefix by. */
  get allPattern(): string {
    return `${globEscape(this.prefix)}*`;
  }
}

/** Escapes glob characters so a prefix matches itself in `SCAN MATCH`. */
export function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/** Extra life of index entries past an expiry: a quarter of the time left, at most a minute (as in Lua). */
export function slack(ms: number): number {
  return Math.max(0, Math.min(60_000, Math.floor(ms / 4)));
}

/** The horizon of an expiry at wall time `now`: whole ms, at or after it (as in Lua). */
export function horizonOf(expiresAt: number, now: number): number {
  return Math.ceil(expiresAt + slack(expiresAt - now));
}
