/**
 * The key layout of the etcd store: every key it writes, built from the
 * store's prefix and the session's fields.
 *
 * ```
 *   P s/<id>             the record (JSON)                          ┐
 *   P t/<tokenHash>      <id>                  one to one           │ one session's keys:
 *   P c/<connectionId>   <id>                  one to one           │ written together, in one
 *   P u/<userId>/<id>    [expiresAt, bound]    one to many          │ transaction, under one
 *   P l/<id>             [createdAt, expiresAt, state, userId,      │ lease (the bucket of
 *                         bound]               list and presence    ┘ their expiry)
 *   P e/<id>             tombstone: why the session ended (its own lease, minutes)
 *   P v/<origin>/<seq>   one published change (its own lease, a minute)
 *   P ping               never written: ping() reads it
 * ```
 *
 * Each variable part is escaped (`%` → `%25`, `/` → `%2F`), so no id, user
 * or connection can reach into another's keys: `u/<user>/` holds exactly
 * that user's sessions, whatever characters user ids contain.
 *
 * The `l/` entries are what listing, counting and presence scan: a few
 * dozen bytes per session instead of its whole record.
 *
 * @module
 */

/** Escapes one variable part of a key so that it holds no `/` (see the module documentation). */
export function escapePart(part: string): string {
  return part.indexOf('%') === -1 && part.indexOf('/') === -1 ? part : part.replace(/%/g, '%25').replace(/\//g, '%2F');
}

/** The inverse of {@link escapePart}. */
export function unescapePart(part: string): string {
  return part.indexOf('%') === -1 ? part : part.replace(/%2F/g, '/').replace(/%25/g, '%');
}

/** The first key after every key that starts with `prefix`: the end of a prefix range (etcd's `range_end`). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  // A prefix of 0xff bytes only: everything after it (etcd reads "\0" as "to the end").
  return Buffer.from([0]);
}

/** A `[key, range_end)` pair. */
export interface KeyRange {
  readonly key: Buffer;
  readonly end: Buffer;
}

/** The keys of one store prefix (see the module documentation). */
export class KeySpace {
  /** The prefix, as given. */
  readonly prefix: string;
  /** Every key of the store. */
  readonly all: KeyRange;
  /** Every record (`s/`). */
  readonly records: KeyRange;
  /** Every list entry (`l/`). */
  readonly list: KeyRange;
  /** Every user index entry (`u/`). */
  readonly users: KeyRange;
  /** Every published change (`v/`). */
  readonly changes: KeyRange;
  /** The ranges that hold sessions and their indexes (what `clear` removes). */
  readonly sessionRanges: readonly KeyRange[];
  /** The key `ping()` reads. */
  readonly pingKey: Buffer;

  constructor(prefix: string) {
    this.prefix = prefix;
    this.all = this.#range('');
    this.records = this.#range('s/');
    this.list = this.#range('l/');
    this.users = this.#range('u/');
    this.changes = this.#range('v/');
    this.sessionRanges = ['s/', 't/', 'c/', 'u/', 'l/'].map((p) => this.#range(p));
    this.pingKey = Buffer.from(`${prefix}ping`);
  }

  /** `P s/<id>`. */
  record(id: string): Buffer {
    return Buffer.from(`${this.prefix}s/${escapePart(id)}`);
  }

  /** `P t/<tokenHash>`. */
  token(tokenHash: string): Buffer {
    return Buffer.from(`${this.prefix}t/${escapePart(tokenHash)}`);
  }

  /** `P c/<connectionId>`. */
  connection(connectionId: string): Buffer {
    return Buffer.from(`${this.prefix}c/${escapePart(connectionId)}`);
  }

  /** `P u/<userId>/<id>`. */
  userEntry(userId: string, id: string): Buffer {
    return Buffer.from(`${this.prefix}u/${escapePart(userId)}/${escapePart(id)}`);
  }

  /** Every `P u/<userId>/...` key. */
  user(userId: string): KeyRange {
    return this.#range(`u/${escapePart(userId)}/`);
  }

  /** `P l/<id>`. */
  listEntry(id: string): Buffer {
    return Buffer.from(`${this.prefix}l/${escapePart(id)}`);
  }

  /** `P e/<id>`. */
  tombstone(id: string): Buffer {
    return Buffer.from(`${this.prefix}e/${escapePart(id)}`);
  }

  /** `P v/<origin>/<seq>`. */
  change(origin: string, seq: number): Buffer {
    return Buffer.from(`${this.prefix}v/${escapePart(origin)}/${seq}`);
  }

  /** The prefix of every change this origin publishes. */
  changesOf(origin: string): string {
    return `${this.prefix}v/${escapePart(origin)}/`;
  }

  /** The id of an `l/`, `s/` or `u/<user>/` key (the part after its last `/`). */
  idOf(key: Buffer): string {
    const text = key.toString('utf8');
    return unescapePart(text.slice(text.lastIndexOf('/') + 1));
  }

  /** The user of a `u/<user>/<id>` key. */
  userOf(key: Buffer): string {
    const text = key.toString('utf8');
    const start = this.prefix.length + 2;
    return unescapePart(text.slice(start, text.indexOf('/', start)));
  }

  #range(sub: string): KeyRange {
    const key = Buffer.from(this.prefix + sub);
    return { key, end: prefixEnd(key) };
  }
}
