/**
 * What the EtcdStore tests share: a raw `etcd3` client to look at the keys
 * the store wrote, a check that those keys are exactly a set of whole
 * sessions, a second process sharing the store (test/fixtures/etcd-peer.ts),
 * and small waits.
 *
 * ```
 *   sessionKeys(admin, prefix)   every key under prefix: value, lease, revisions
 *   checkKeys(admin, prefix)     each s/<id> has its t, c, u, l keys pointing back, all on
 *                                the record's lease; no index key without its record
 *   EtcdPeer                     JSON lines over stdin/stdout, SIGKILL-able
 * ```
 *
 * @module
 */

import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Etcd3 } from 'etcd3';
import { ManualClock } from '../../lib/core/clock.js';
import { isNetloopError } from '../../lib/core/errors.js';
import type { SessionRecord } from '../../lib/store/contract.js';
import { escapePart, prefixEnd } from '../../lib/store/etcd/keys.js';
import { makeRecord } from '../../lib/testing/store-conformance.js';

/** A raw client for looking at etcd from outside the store (no retries, so a failure shows). */
export function adminClient(hosts: readonly string[]): Etcd3 {
  return new Etcd3({ hosts: [...hosts] });
}

/** One key as etcd holds it. */
export interface RawKey {
  readonly key: string;
  readonly value: string;
  readonly lease: string;
  readonly mod: number;
}

/** Every key under `prefix`, in key order. */
export async function rawKeys(admin: Etcd3, prefix: string): Promise<RawKey[]> {
  const start = Buffer.from(prefix);
  const res = await admin.kv.range({ key: start, range_end: prefixEnd(start) });
  return res.kvs.map((kv) => ({ key: kv.key.toString('utf8'), value: kv.value.toString('utf8'), lease: kv.lease, mod: Number(kv.mod_revision) }));
}

/**
 * Checks that the session keys under `prefix` are exactly whole sessions:
 * each record `s/<id>` has its token, list, connection and user keys, each
 * pointing back to it and on the record's lease, and no session key exists
 * without its record. Resolves the number of sessions.
 */
export async function checkKeys(admin: Etcd3, prefix: string): Promise<number> {
  const keys = new Map((await rawKeys(admin, prefix)).map((k) => [k.key, k]));
  const expected = new Set<string>();
  let sessions = 0;
  for (const k of keys.values()) {
    if (!k.key.startsWith(`${prefix}s/`)) continue;
    sessions++;
    const rec = JSON.parse(k.value) as SessionRecord;
    const id = rec.id;
    expected.add(k.key);
    const own = (key: string, what: string, value?: string): void => {
      const got = keys.get(key);
      assert.ok(got !== undefined, `${what} of ${id} is missing (${key})`);
      if (value !== undefined) assert.is(got.value, value, `${what} of ${id} points elsewhere`);
      assert.is(got.lease, k.lease, `${what} of ${id} is not on the record's lease`);
      expected.add(key);
    };
    own(`${prefix}t/${escapePart(rec.tokenHash)}`, 'token key', id);
    own(`${prefix}l/${escapePart(id)}`, 'list entry');
    if (rec.connectionId !== null) own(`${prefix}c/${escapePart(rec.connectionId)}`, 'connection key', id);
    if (rec.userId !== null) own(`${prefix}u/${escapePart(rec.userId)}/${escapePart(id)}`, 'user entry');
  }
  for (const key of keys.keys()) {
    if (/^[stcul]\//.test(key.slice(prefix.length))) assert.ok(expected.has(key), `an index key without its session: ${key}`);
  }
  return sessions;
}

/** A record stamped by the real clock with a TTL of `ttl` ms. */
export function liveRecord(ttl: number, overrides: Partial<SessionRecord> = {}): SessionRecord {
  const clock = new ManualClock(0, Date.now());
  return makeRecord(clock, { expiresAt: clock.wallNow() + ttl, ttl, ...overrides });
}

/** Polls `check` until it returns true, failing clearly after `ms`. */
export async function eventually(what: string, ms: number, check: () => Promise<boolean> | boolean): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) assert.unreachable(`${what}: not true within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Asserts that `promise` rejects with a coded error of `code`; resolves the time it took, in ms. */
export async function rejectsWith(promise: Promise<unknown>, code: string, what: string): Promise<number> {
  const start = performance.now();
  try {
    await promise;
  } catch (err) {
    assert.ok(isNetloopError(err), `${what}: expected a NetloopError, got ${String(err)}`);
    assert.is((err as { code: string }).code, code, `${what}: ${(err as Error).message}`);
    return performance.now() - start;
  }
  assert.unreachable(`${what}: expected a rejection with ${code}`);
  throw new Error('unreachable');
}

/** The peer process of the two-process tests (test/fixtures/etcd-peer.ts), speaking JSON lines. */
export class EtcdPeer {
  readonly #child: ChildProcess;
  readonly #waiting: Array<(reply: { ok: boolean; result?: unknown; code?: string }) => void> = [];
  readonly #exit: Promise<NodeJS.Signals | number | null>;

  constructor(hosts: readonly string[], prefix: string, leaseBucketMs?: number) {
    const script = fileURLToPath(new URL('../fixtures/etcd-peer.js', import.meta.url));
    const args = [script, hosts.join(','), prefix, ...(leaseBucketMs === undefined ? [] : [String(leaseBucketMs)])];
    this.#child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    this.#exit = new Promise((resolve) => this.#child.once('exit', (code, signal) => resolve(signal ?? code)));
    readline.createInterface({ input: this.#child.stdout! }).on('line', (line) => {
      this.#waiting.shift()?.(JSON.parse(line) as { ok: boolean; result?: unknown; code?: string });
    });
  }

  async call<T>(request: object): Promise<T> {
    const reply = await new Promise<{ ok: boolean; result?: unknown; code?: string }>((resolve) => {
      this.#waiting.push(resolve);
      this.#child.stdin!.write(`${JSON.stringify(request)}\n`);
    });
    if (!reply.ok) throw new Error(`peer failed: ${JSON.stringify(reply)}`);
    return reply.result as T;
  }

  /** Kills the process at once (SIGKILL): it dies holding whatever it wrote. Resolves once it is gone. */
  async kill(): Promise<void> {
    this.#child.kill('SIGKILL');
    await this.#exit;
  }

  /** Closes its stdin and awaits its exit (killing it after a bound). */
  async end(): Promise<NodeJS.Signals | number | null> {
    this.#child.stdin!.end();
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 10_000);
    const code = await this.#exit;
    clearTimeout(timer);
    return code;
  }
}
