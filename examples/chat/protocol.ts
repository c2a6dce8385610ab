/**
 * The chat example's message set, on cellnet's wire: `tcp.ltv` framing
 * (`uint16 LE length` of type + value · `uint16 LE type` · value), ids from
 * cellnet's 16-bit name hash, payloads in cellnet's `binary` codec.
 *
 * ```
 *   name                    id      dir  fields (binary codec, in order)
 *   proto.ChatREQ           16234   c→s  Content string
 *   proto.ChatACK           43601   s→c  Content string · Id int64
 *   netloop.Hello           hash    c→s  Name string · Token string ('' = new session)
 *   netloop.Welcome         hash    s→c  Session string · Token string · Id int64 · Resumed bool
 *                                        · HeartbeatMs uint32 · TtlMs uint32 · Pid uint32
 *   netloop.Heartbeat       hash    c→s  (empty)
 *   netloop.HeartbeatACK    hash    s→c  TtlMs uint32
 *   netloop.Expired         hash    s→c  Reason string   (then the server closes)
 *   netloop.Error           hash    s→c  Code string · Message string   (then the server closes)
 * ```
 *
 * The first two are cellnet's own `examples/chat` messages, so an unmodified
 * cellnet chat client chats through a netloop server. The `netloop.*`
 * messages are netloop's session layer; their ids are computed the same way
 * (`cellnetStringHash(name)`), and every message is registered in ONE
 * {@link MessageRegistry}, so a hash collision between any two of them is
 * refused when the registry is built, never discovered on the wire.
 *
 * A cellnet client closes its connection on a message id it does not know,
 * so the server sends `netloop.*` messages only to a connection that sent
 * `netloop.Hello` first; any other connection is a plain cellnet peer.
 *
 * @module
 */

import { CellnetBinaryReader, CellnetBinaryWriter, LtvEncoder, MessageRegistry, ltvLayout } from 'netloop';
import type { LtvLayout, MessageType, Serializer } from 'netloop';

/** The host and port of cellnet's chat example, the defaults of the chat server and client. */
export const CHAT_DEFAULT_HOST = '127.0.0.1';
/** See {@link CHAT_DEFAULT_HOST}. */
export const CHAT_DEFAULT_PORT = 18801;

/** The full names of cellnet's chat messages (ids: `cellnetStringHash(name)`, as cellnet's `util.StringHash`). */
export const CELLNET_CHAT_NAMES = Object.freeze({
  REQ: 'proto.ChatREQ',
  ACK: 'proto.ChatACK',
} as const);

/** The full names of netloop's own messages (ids: `cellnetStringHash(name)`). */
export const NETLOOP_CHAT_NAMES = Object.freeze({
  HELLO: 'netloop.Hello',
  WELCOME: 'netloop.Welcome',
  HEARTBEAT: 'netloop.Heartbeat',
  HEARTBEAT_ACK: 'netloop.HeartbeatACK',
  EXPIRED: 'netloop.Expired',
  ERROR: 'netloop.Error',
} as const);

/** cellnet's `proto.ChatREQ { Content string }`: a line a client sends. */
export interface ChatReq {
  content: string;
}

/** cellnet's `proto.ChatACK { Content string; Id int64 }`: a line the server broadcasts, with its sender's id. */
export interface ChatAck {
  content: string;
  id: bigint;
}

/** `netloop.Hello`: a client asks for netloop's session messages. */
export interface Hello {
  /** A display name (may be empty); kept in the session's metadata. */
  name: string;
  /** The token of a session to resume, or '' for a new one. */
  token: string;
}

/** `netloop.Welcome`: the session this connection is bound to. */
export interface Welcome {
  /** The session id. */
  session: string;
  /** The secret to present in a later `Hello` to resume this session. */
  token: string;
  /** The `Id` this connection's chat messages carry in `ChatACK`. */
  id: bigint;
  /** True when the session named by the hello's token was resumed. */
  resumed: boolean;
  /** How often the client should send `netloop.Heartbeat`, in ms. */
  heartbeatMs: number;
  /** The session's time to live, in ms: it expires this long after the last heartbeat or message. */
  ttlMs: number;
  /** The server process's id (tells cluster workers apart). */
  pid: number;
}

/** `netloop.HeartbeatACK`: the session's time left after the heartbeat. */
export interface HeartbeatAck {
  ttlMs: number;
}

/** `netloop.Expired`: the notice sent before the server closes an expired session's connection. */
export interface Expired {
  reason: string;
}

/**
 * `netloop.Error`: the server could not serve this connection (no session
 * could be created or resumed, e.g. its store did not answer) and closes it
 * after this notice. The client may reconnect later and say hello again.
 */
export interface ErrorNotice {
  /** A stable `NETLOOP_*` code (`ErrorCode`), e.g. `NETLOOP_STORE_UNAVAILABLE`. */
  code: string;
  /** One sentence for a person; never the store's own message, never anything the client sent. */
  message: string;
}

/** `proto.ChatREQ` in cellnet's binary codec. */
export const chatReqSerializer: Serializer<ChatReq> = Object.freeze({
  encode(p: ChatReq): Uint8Array {
    return new CellnetBinaryWriter().string(p.content).finish();
  },
  decode(bytes: Buffer): ChatReq {
    const r = new CellnetBinaryReader(bytes);
    const content = r.string();
    r.end();
    return { content };
  },
});

/** `proto.ChatACK` in cellnet's binary codec (`id` may be given as a safe integer). */
export const chatAckSerializer: Serializer<ChatAck> = Object.freeze({
  encode(p: ChatAck): Uint8Array {
    return new CellnetBinaryWriter().string(p.content).int64(p.id).finish();
  },
  decode(bytes: Buffer): ChatAck {
    const r = new CellnetBinaryReader(bytes);
    const content = r.string();
    const id = r.int64();
    r.end();
    return { content, id };
  },
});

/** `netloop.Hello` in the binary codec. */
export const helloSerializer: Serializer<Hello> = Object.freeze({
  encode(p: Hello): Uint8Array {
    return new CellnetBinaryWriter().string(p.name).string(p.token).finish();
  },
  decode(bytes: Buffer): Hello {
    const r = new CellnetBinaryReader(bytes);
    const name = r.string();
    const token = r.string();
    r.end();
    return { name, token };
  },
});

/** `netloop.Welcome` in the binary codec. */
export const welcomeSerializer: Serializer<Welcome> = Object.freeze({
  encode(p: Welcome): Uint8Array {
    return new CellnetBinaryWriter(96)
      .string(p.session)
      .string(p.token)
      .int64(p.id)
      .bool(p.resumed)
      .uint32(p.heartbeatMs)
      .uint32(p.ttlMs)
      .uint32(p.pid)
      .finish();
  },
  decode(bytes: Buffer): Welcome {
    const r = new CellnetBinaryReader(bytes);
    const w: Welcome = {
      session: r.string(),
      token: r.string(),
      id: r.int64(),
      resumed: r.bool(),
      heartbeatMs: r.uint32(),
      ttlMs: r.uint32(),
      pid: r.uint32(),
    };
    r.end();
    return w;
  },
});

/** `netloop.Heartbeat` (no fields). */
export const heartbeatSerializer: Serializer<Record<string, never>> = Object.freeze({
  encode(): Uint8Array {
    return new Uint8Array(0);
  },
  decode(bytes: Buffer): Record<string, never> {
    new CellnetBinaryReader(bytes).end();
    return {};
  },
});

/** `netloop.HeartbeatACK` in the binary codec. */
export const heartbeatAckSerializer: Serializer<HeartbeatAck> = Object.freeze({
  encode(p: HeartbeatAck): Uint8Array {
    return new CellnetBinaryWriter(8).uint32(p.ttlMs).finish();
  },
  decode(bytes: Buffer): HeartbeatAck {
    const r = new CellnetBinaryReader(bytes);
    const ttlMs = r.uint32();
    r.end();
    return { ttlMs };
  },
});

/** `netloop.Expired` in the binary codec. */
export const expiredSerializer: Serializer<Expired> = Object.freeze({
  encode(p: Expired): Uint8Array {
    return new CellnetBinaryWriter(32).string(p.reason).finish();
  },
  decode(bytes: Buffer): Expired {
    const r = new CellnetBinaryReader(bytes);
    const reason = r.string();
    r.end();
    return { reason };
  },
});

/** `netloop.Error` in the binary codec. */
export const errorNoticeSerializer: Serializer<ErrorNotice> = Object.freeze({
  encode(p: ErrorNotice): Uint8Array {
    return new CellnetBinaryWriter(96).string(p.code).string(p.message).finish();
  },
  decode(bytes: Buffer): ErrorNotice {
    const r = new CellnetBinaryReader(bytes);
    const code = r.string();
    const message = r.string();
    r.end();
    return { code, message };
  },
});

/**
 * The chat protocol: every message type, registered once, and the layout
 * that frames them. The server and the client hand `layout` and `registry`
 * to the `framing` option; `frame()` is for peers on a bare socket (the
 * tests, the benchmark).
 *
 * ```
 *   registry (strict): ChatREQ ChatACK Hello Welcome Heartbeat HeartbeatACK Expired Error
 *   layout:  cellnet tcp.ltv        frame(): header + value built whole, one buffer
 * ```
 */
export interface ChatProtocol {
  readonly registry: MessageRegistry;
  readonly layout: LtvLayout;
  readonly ChatREQ: MessageType<ChatReq>;
  readonly ChatACK: MessageType<ChatAck>;
  readonly Hello: MessageType<Hello>;
  readonly Welcome: MessageType<Welcome>;
  readonly Heartbeat: MessageType<Record<string, never>>;
  readonly HeartbeatACK: MessageType<HeartbeatAck>;
  readonly Expired: MessageType<Expired>;
  readonly Error: MessageType<ErrorNotice>;
  /** One whole frame (header and value in one new Buffer) for `payload` of `type`. */
  frame<T>(type: MessageType<T>, payload: T): Buffer;
}

/**
 * Builds the chat protocol. Registration refuses a duplicate id, so a
 * collision of the 16-bit hashes of any two names fails here with
 * `NETLOOP_DUPLICATE_TYPE`.
 */
export function createChatProtocol(): ChatProtocol {
  const layout = ltvLayout('cellnet');
  const registry = new MessageRegistry({ strict: true, maxId: layout.maxType });
  const encoder = new LtvEncoder({ layout });
  const typed = registry
    .registerCellnet(CELLNET_CHAT_NAMES.REQ, chatReqSerializer)
    .registerCellnet(CELLNET_CHAT_NAMES.ACK, chatAckSerializer)
    .registerCellnet(NETLOOP_CHAT_NAMES.HELLO, helloSerializer)
    .registerCellnet(NETLOOP_CHAT_NAMES.WELCOME, welcomeSerializer)
    .registerCellnet(NETLOOP_CHAT_NAMES.HEARTBEAT, heartbeatSerializer)
    .registerCellnet(NETLOOP_CHAT_NAMES.HEARTBEAT_ACK, heartbeatAckSerializer)
    .registerCellnet(NETLOOP_CHAT_NAMES.EXPIRED, expiredSerializer)
    .registerCellnet(NETLOOP_CHAT_NAMES.ERROR, errorNoticeSerializer);
  const ChatREQ = typed.resolve(CELLNET_CHAT_NAMES.REQ);
  const ChatACK = typed.resolve(CELLNET_CHAT_NAMES.ACK);
  const Hello = typed.resolve(NETLOOP_CHAT_NAMES.HELLO);
  const Welcome = typed.resolve(NETLOOP_CHAT_NAMES.WELCOME);
  const Heartbeat = typed.resolve(NETLOOP_CHAT_NAMES.HEARTBEAT);
  const HeartbeatACK = typed.resolve(NETLOOP_CHAT_NAMES.HEARTBEAT_ACK);
  const Expired = typed.resolve(NETLOOP_CHAT_NAMES.EXPIRED);
  const ErrorType = typed.resolve(NETLOOP_CHAT_NAMES.ERROR);
  return {
    registry,
    layout,
    ChatREQ,
    ChatACK,
    Hello,
    Welcome,
    Heartbeat,
    HeartbeatACK,
    Expired,
    Error: ErrorType,
    frame<T>(type: MessageType<T>, payload: T): Buffer {
      const { id, value } = registry.encode(type, payload);
      return encoder.encode(id, value);
    },
  };
}

/**
 * The longest `Content` (in UTF-8 bytes) a `ChatACK` can carry: a cellnet
 * frame's value holds at most 65,533 bytes, of which the ACK spends 2 on the
 * string's length and 8 on `Id`. A `ChatREQ` may carry up to 65,531; a longer
 * one than this cannot be broadcast.
 */
export const MAX_ACK_CONTENT_BYTES = 65_533 - 2 - 8;
