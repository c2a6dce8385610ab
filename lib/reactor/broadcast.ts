/**
 * One message to many clients, encoded once: `server.broadcast()` and
 * `loop.broadcast()`. Raw bytes are queued by reference to every receiver;
 * a typed message (`{ type, payload }`) is encoded by each receiver's owner
 * (its server or connector, through the owner's encoder hook), once per
 * owner, so the reactor knows no codec.
 *
 * ```
 *   message ──check──▶ raw bytes ─────────────────────────┐
 *           └────────▶ { type, payload } ─ owner A encodes once ─▶ frame A ─┤
 *                                         owner B encodes once ─▶ frame B ─┤
 *   for each client c (writable, not excepted, passing filter):           ▼
 *       c.write(bytes for c's owner)          (a client whose owner has no encoder is skipped;
 *                                              an owner with _writeMessage set writes it itself)
 *   cache: the last owner and its frame, then a Map<owner, frame> once a second owner appears
 * ```
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../core/errors.js';
import type { LoopClient, LoopClientOwner, TypedMessage } from './loop-member.js';

/** What a broadcast sends: raw bytes (a string is UTF-8), or a typed message for the receivers' codec. */
export type BroadcastMessage = Uint8Array | string | TypedMessage;

/** Options of `server.broadcast()` and `loop.broadcast()`. */
export interface BroadcastOptions<C extends LoopClient = LoopClient> {
  /** A client, or clients, left out (the sender, typically). */
  except?: C | Iterable<C> | null;
  /**
   * Only the clients for which this returns true. (A method signature, so
   * that the options of a server of framed clients are those of a server of
   * clients too.)
   */
  filter?(client: C): boolean;
}

function isIterable(value: unknown): value is Iterable<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as Iterable<unknown>)[Symbol.iterator] === 'function';
}

function isClient(value: unknown): value is LoopClient {
  return typeof value === 'object' && value !== null && typeof (value as LoopClient).id === 'number' && typeof (value as LoopClient).write === 'function';
}

/**
 * @internal Sends `message` to every writable client `clients()` lists that
 * passes `options`; returns how many queued it. Arguments are checked
 * first, and a typed message is encoded before anything is queued (by
 * `known`, the broadcasting server, when given; else by the first receiver's
 * owner that has an encoder), so a mistake throws whatever the clients'
 * states and queues nothing.
 */
export function broadcastTo<C extends LoopClient>(
  clients: () => Iterable<C>,
  message: BroadcastMessage,
  options: BroadcastOptions<C>,
  known: LoopClientOwner | null,
): number {
  let raw: Uint8Array | null = null;
  let typed: TypedMessage | null = null;
  if (typeof message === 'string') raw = Buffer.from(message, 'utf8');
  else if (message instanceof Uint8Array) raw = Buffer.isBuffer(message) ? message : Buffer.from(message.buffer, message.byteOffset, message.byteLength);
  else if (typeof message === 'object' && message !== null && (typeof message.type === 'number' || typeof message.type === 'string')) typed = message;
  else {
    throw new NetloopError(ErrorCode.INVALID_VALUE, 'broadcast takes bytes, a string or { type, payload }', {
      details: { got: message === null ? 'null' : typeof message },
    });
  }
  if (typeof options !== 'object' || options === null) {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'broadcast options must be an object', { details: { option: 'options' } });
  }
  const except = options.except ?? null;
  const filter = options.filter ?? null;
  if (filter !== null && typeof filter !== 'function') {
    throw new NetloopError(ErrorCode.INVALID_OPTION, 'broadcast filter must be a function', { details: { option: 'filter' } });
  }
  let skipOne: unknown = null;
  let skip: Set<unknown> | null = null;
  if (isClient(except)) skipOne = except;
  else if (except !== null) {
    if (!isIterable(except)) {
      throw new NetloopError(ErrorCode.INVALID_OPTION, 'broadcast except must be a client or clients', { details: { option: 'except' } });
    }
    skip = new Set(except);
  }
  // One frame per owner: the first made up front (a bad type or payload
  // throws before anything is queued), the others on first need.
  let lastOwner: LoopClientOwner | null = null;
  let lastFrame: Uint8Array | null = null;
  let frames: Map<LoopClientOwner, Uint8Array> | null = null;
  if (typed !== null) {
    if (known !== null) {
      if (known._encodeMessage === undefined) {
        throw new NetloopError(ErrorCode.INVALID_VALUE, 'a typed broadcast needs a framed server (its clients take raw bytes only)', {
          details: { type: typed.type },
        });
      }
      lastOwner = known;
      lastFrame = known._encodeMessage(typed);
    } else {
      for (const c of clients()) {
        const owner = c._owner;
        if (owner._encodeMessage !== undefined) {
          lastOwner = owner;
          lastFrame = owner._encodeMessage(typed);
          break;
        }
      }
    }
  }
  let n = 0;
  // Frames of a typed message queued by `c.write`, told to their owner's
  // frame counters once per run of receivers of the same owner.
  let countOwner: LoopClientOwner | null = null;
  let counted = 0;
  for (const c of clients()) {
    if (!c.writable || c === skipOne || (skip !== null && skip.has(c)) || (filter !== null && !filter(c))) continue;
    let bytes = raw;
    if (typed !== null) {
      const owner = c._owner;
      if (owner !== countOwner) {
        if (counted > 0) countOwner!._countBroadcast?.(typed, counted);
        countOwner = owner;
        counted = 0;
      }
      if (owner !== lastOwner) {
        if (owner._encodeMessage === undefined) continue;
        frames ??= new Map<LoopClientOwner, Uint8Array>(lastOwner === null ? [] : [[lastOwner, lastFrame!]]);
        let b = frames.get(owner);
        if (b === undefined) frames.set(owner, (b = owner._encodeMessage(typed)));
        lastOwner = owner;
        lastFrame = b;
      }
      bytes = lastFrame;
      // An owner with per-receiver work (message hooks) writes the frame itself.
      const w = owner._writeMessage;
      if (w !== undefined && w !== null) {
        if (w.call(owner, c, typed, bytes!)) n++;
        continue;
      }
      if (c.write(bytes!)) {
        n++;
        counted++;
      }
      continue;
    }
    if (c.write(bytes!)) n++;
  }
  if (counted > 0) countOwner!._countBroadcast?.(typed!, counted);
  return n;
}
