/**
 * The calls two peers agree on: for each call name, the id it travels under
 * and how its request and its reply become bytes. Both ends build the same
 * table (as both ends of a gRPC service share its `.proto`), usually in one
 * module they both import; the table also carries the TypeScript types of
 * every request and reply, so a call infers its reply's type from its name.
 *
 * ```ts
 * const calls = defineCalls({
 *   GetUser: { id: 1, request: json<{ id: number }>(), reply: json<User>() },
 *   Echo: { id: 2, request: 'raw', reply: 'raw' },
 * });
 * // calls: RpcCalls<{ GetUser: { request: { id: number }; reply: User }; Echo: { request: Buffer; reply: Buffer } }>
 * ```
 *
 * ```
 *   defineCalls(specs) ──check every spec──▶ RpcCalls<A>
 *     byName: Map<name, RpcCallDef>          the call a caller names
 *     byId:   Map<request id, RpcCallDef>    the call a request names on the wire
 *     RpcCallDef { name, id, replyId, request: Serializer, reply: Serializer }
 * ```
 *
 * A payload is given as a {@link Serializer} (the application's own, or a
 * built-in one by name: `'raw'` is a Buffer, `'utf8'` a string, `'json'`
 * `unknown`), or as a registered {@link MessageType}, whose id and serializer
 * are then used: a cellnet call is most easily written with the types the
 * registry already holds (`registry.registerCellnet('main.TestEchoACK', ...)`).
 *
 * The `id` is the request's message type id: netloop's envelope carries it
 * in its `type` field; cellnet's carries it as `MsgID`, the id of the inner
 * message, so in cellnet mode it must be the message's cellnet id (at most
 * 0xffff: cellnet reads `uint16(MsgID)`). cellnet's reply names its own
 * message too (`replyId`, by default the reply's `MessageType` id, else the
 * request's id, as in cellnet's echo example, whose reply is the message it
 * was sent); netloop's reply carries no type (the call defines it).
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../core/errors.js';
import { SERIALIZERS, isSerializer } from '../codec/serializers.js';
import type { Serializer, SerializerName } from '../codec/serializers.js';
import type { MessageType } from '../codec/message-registry.js';

/** How a request or reply payload becomes bytes: a serializer, a built-in serializer's name, or a registered message type. */
export type RpcPayloadSpec = Serializer<any> | MessageType<any> | SerializerName; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The payload type a {@link RpcPayloadSpec} carries: `'raw'` a Buffer, `'utf8'` a string, `'json'` unknown. */
export type RpcPayloadOf<S> = S extends 'raw'
  ? Buffer
  : S extends 'utf8'
    ? string
    : S extends 'json'
      ? unknown
      : S extends MessageType<infer T>
        ? T
        : S extends Serializer<infer T>
          ? T
          : never;

/** One call as the application writes it (see the module comment). */
export interface RpcCallSpec {
  /**
   * The request's type id, a u32 unique among the calls (at most 0xffff for
   * cellnet). May be left out when `request` is a {@link MessageType}: its id.
   */
  id?: number;
  /** The request payload. */
  request: RpcPayloadSpec;
  /** The reply payload. */
  reply: RpcPayloadSpec;
  /**
   * cellnet only: the id of the reply's message (cellnet's ACK names it).
   * Default: the reply's {@link MessageType} id, else `id`.
   */
  replyId?: number;
}

/** A map of call names to their request and reply types: `{ GetUser: { request: Req; reply: User } }`. */
export type RpcApi = Record<
  string,
  {
    /** The request's payload type. */
    request: unknown;
    /** The reply's payload type. */
    reply: unknown;
  }
>;

/** The {@link RpcApi} of a table of {@link RpcCallSpec}s (what {@link defineCalls} infers). */
export type RpcApiOfSpecs<D extends Record<string, RpcCallSpec>> = {
  [K in keyof D & string]: {
    /** The request's payload type. */
    request: RpcPayloadOf<D[K]['request']>;
    /** The reply's payload type. */
    reply: RpcPayloadOf<D[K]['reply']>;
  };
};

/** The {@link RpcApi} of a table of calls: `type Api = RpcApiOf<typeof calls>`, to type an `Rpc<Api>` elsewhere. */
export type RpcApiOf<C> = C extends RpcCalls<infer A> ? A : never;

/** The request type of call `K` of `A`. */
export type RpcRequestOf<A extends RpcApi, K extends keyof A> = A[K]['request'];
/** The reply type of call `K` of `A`. */
export type RpcReplyOf<A extends RpcApi, K extends keyof A> = A[K]['reply'];

/** One checked call (the engine's record; not part of the package's face). */
export interface RpcCallDef {
  readonly name: string;
  /** The request's type id (netloop's envelope `type`; cellnet's `MsgID`). */
  readonly id: number;
  /** The reply's message id (cellnet's ACK `MsgID`). */
  readonly replyId: number;
  readonly request: Serializer<unknown>;
  readonly reply: Serializer<unknown>;
}

const kApi: unique symbol = Symbol('netloop.rpcApi');

/**
 * The checked table of calls both peers share, typed by its {@link RpcApi}
 * `A` (made by {@link defineCalls}; given to `enableRpc`).
 */
export class RpcCalls<A extends RpcApi = RpcApi> {
  /** Carries `A` for type inference only; never set. */
  declare readonly [kApi]: A;
  /** @internal The calls by name. */
  readonly _byName: ReadonlyMap<string, RpcCallDef>;
  /** @internal The calls by request id. */
  readonly _byId: ReadonlyMap<number, RpcCallDef>;
  /** The largest request or reply id among the calls (cellnet mode checks that it is at most 0xffff). */
  readonly maxId: number;

  /** @internal Made by {@link defineCalls}. */
  constructor(defs: readonly RpcCallDef[]) {
    const byName = new Map<string, RpcCallDef>();
    const byId = new Map<number, RpcCallDef>();
    let maxId = 0;
    for (const d of defs) {
      byName.set(d.name, d);
      byId.set(d.id, d);
      maxId = Math.max(maxId, d.id, d.replyId);
    }
    this._byName = byName;
    this._byId = byId;
    this.maxId = maxId;
    Object.freeze(this);
  }

  /** The call names, in the order they were defined. */
  names(): string[] {
    return [...this._byName.keys()];
  }

  /** The request id of call `name`, or undefined when there is no such call. */
  idOf(name: string): number | undefined {
    return this._byName.get(name)?.id;
  }
}

/**
 * Checks a table of calls and returns it typed (see the module comment).
 * Both peers build the same table.
 *
 * @throws NetloopError `NETLOOP_INVALID_OPTION` for a spec that is not an
 *   object, a missing or non-u32 id, a payload that is neither a serializer,
 *   a serializer's name nor a message type; `NETLOOP_DUPLICATE_TYPE` for two
 *   calls with one request id (`details.id`, `details.names`).
 */
export function defineCalls<const D extends Record<string, RpcCallSpec>>(specs: D): RpcCalls<RpcApiOfSpecs<D>> {
  if (typeof specs !== 'object' || specs === null || Array.isArray(specs)) {
    throw invalid('the calls must be an object of call specs', { option: 'calls' });
  }
  const defs: RpcCallDef[] = [];
  const seen = new Map<number, string>();
  for (const name of Object.keys(specs)) {
    const spec = specs[name] as RpcCallSpec | undefined;
    if (typeof spec !== 'object' || spec === null) throw invalid(`call ${name} must be an object { id, request, reply }`, { option: `calls.${name}` });
    const request = payloadSpec(name, 'request', spec.request);
    const reply = payloadSpec(name, 'reply', spec.reply);
    const id = spec.id ?? request.id;
    if (id === undefined) {
      throw invalid(`call ${name} needs an id (or a registered message type as its request)`, { option: `calls.${name}.id` });
    }
    checkU32(`calls.${name}.id`, id);
    const replyId = spec.replyId ?? reply.id ?? id;
    checkU32(`calls.${name}.replyId`, replyId);
    const other = seen.get(id);
    if (other !== undefined) {
      throw new NetloopError(ErrorCode.DUPLICATE_TYPE, `calls ${other} and ${name} have the same id ${id}`, {
        details: { id, names: [other, name] },
      });
    }
    seen.set(id, name);
    defs.push(Object.freeze({ name, id, replyId, request: request.serializer, reply: reply.serializer }));
  }
  return new RpcCalls<RpcApiOfSpecs<D>>(defs);
}

/** A payload spec checked: its serializer, and the id of its message type when it is one. */
function payloadSpec(name: string, field: 'request' | 'reply', spec: unknown): { serializer: Serializer<unknown>; id: number | undefined } {
  if (typeof spec === 'string') {
    if (!Object.prototype.hasOwnProperty.call(SERIALIZERS, spec)) {
      throw invalid(`call ${name}: unknown serializer ${spec} (raw, utf8 or json)`, { option: `calls.${name}.${field}` });
    }
    return { serializer: SERIALIZERS[spec as SerializerName] as Serializer<unknown>, id: undefined };
  }
  if (typeof spec === 'object' && spec !== null) {
    const type = spec as Partial<MessageType<unknown>>;
    if (typeof type.id === 'number' && typeof type.name === 'string' && isSerializer(type.serializer)) {
      return { serializer: type.serializer, id: type.id };
    }
    if (isSerializer(spec)) return { serializer: spec as Serializer<unknown>, id: undefined };
  }
  throw invalid(`call ${name}: ${field} must be a serializer, a serializer's name or a registered message type`, {
    option: `calls.${name}.${field}`,
  });
}

function checkU32(option: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw invalid(`${option} must be an integer in [0, 4294967295], got ${String(value)}`, { option });
  }
}

function invalid(message: string, details: Record<string, unknown>): NetloopError {
  return new NetloopError(ErrorCode.INVALID_OPTION, message, { details });
}
