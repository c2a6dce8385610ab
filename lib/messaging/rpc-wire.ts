/**
 * The two envelopes a call can travel in, behind one strategy interface
 * ({@link RpcWire}): netloop's own (`codec/rpc-envelope.ts`, one reserved
 * frame type carrying requests, replies, error replies and cancellations)
 * and cellnet's `rpc` package (`codec/cellnet/rpc.ts`, `RemoteCallREQ` and
 * `RemoteCallACK` frames under cellnet's own ids). The RPC core
 * (`rpc.ts`) speaks only to this interface: it hands a wire bytes to send,
 * and a wire hands it what arrived through {@link RpcInbound}.
 *
 * ```
 *                   netloop                              cellnet
 *   frame types     frameType (default 0xfff0)           58645 (REQ), 20476 (ACK)
 *   request         0x01 callId type payload             REQ { MsgID: id, Data, CallID }
 *   reply           0x02 callId payload                  ACK { MsgID: replyId, Data, CallID }
 *   error reply     0x03 callId code message             none: the caller times out
 *   cancellation    0x04 callId                          none: the handler runs to its end
 *   call ids        u32 per connection, 1, 2, ...        int64, echoed (ours: 1, 2, ... per connection)
 * ```
 *
 * A frame that is not a well-formed envelope closes the connection with
 * `'protocol-error'` and the codec's `NETLOOP_BAD_PAYLOAD` error, as the
 * framing layer does for a malformed frame: a peer that cannot frame its
 * calls cannot be answered reliably.
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../core/errors.js';
import {
  decodeRpcEnvelope,
  encodeRpcEnvelope,
  fitRpcErrorText,
  RPC_KIND_BYTES,
  RPC_MAX_ERROR_MESSAGE_BYTES,
  RPC_REPLY_HEADER_BYTES,
  RPC_REQUEST_HEADER_BYTES,
} from '../codec/rpc-envelope.js';
import { CELLNET_RPC_IDS, decodeCellnetRemoteCall, encodeCellnetRemoteCall } from '../codec/cellnet/rpc.js';
import type { FramedClient, ReservedFrameHandler } from '../framing/framed-client.js';
import type { RpcCallDef } from './rpc-calls.js';

/** What a wire reports to the RPC core, from inside the owner's frame dispatch. */
export interface RpcInbound {
  /** A request: `callId` as the wire carries it, `type` the request's id, `payload` a view valid during the call. */
  _onRequest(client: FramedClient, callId: number | bigint, type: number, payload: Buffer): void;
  /** A reply to call `callId` (-1 when the wire's id cannot be one of ours); `replyId` is the reply's message id (cellnet) or -1. */
  _onReply(client: FramedClient, callId: number, payload: Buffer, replyId: number): void;
  /** An error reply to call `callId`. */
  _onErrorReply(client: FramedClient, callId: number, code: string, message: string): void;
  /** The caller of `callId` gave up. */
  _onCancel(client: FramedClient, callId: number): void;
}

/** @internal One envelope (see the module comment). Every send returns as `sendRaw` does: false when the client takes no output. */
export interface RpcWire {
  readonly name: 'netloop' | 'cellnet';
  /** The frame types this wire reserves. */
  readonly frameTypes: readonly number[];
  /** True when the wire can carry error replies (cellnet's cannot). */
  readonly errorReplies: boolean;
  /** The reserved-frame handler of `frameTypes[i]`. */
  handlerFor(i: number, inbound: RpcInbound): ReservedFrameHandler;
  sendRequest(client: FramedClient, callId: number, def: RpcCallDef, payload: Uint8Array): boolean;
  sendReply(client: FramedClient, callId: number | bigint, def: RpcCallDef, payload: Uint8Array): boolean;
  sendError(client: FramedClient, callId: number | bigint, code: string, message: string): boolean;
  sendCancel(client: FramedClient, callId: number): boolean;
}

const REQUEST = RPC_KIND_BYTES.request;
const REPLY = RPC_KIND_BYTES.reply;

function readU32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) >>> 0) + (b[at + 1]! << 16) + (b[at + 2]! << 8) + b[at + 3]!;
}

/** Closes `client` for a malformed envelope (see the module comment). */
function refuse(client: FramedClient, err: unknown): void {
  const error =
    err instanceof NetloopError
      ? err
      : new NetloopError(ErrorCode.BAD_PAYLOAD, 'a malformed RPC envelope', { details: { clientId: client.id } });
  client.destroy('protocol-error', error);
}

/** netloop's envelope on one reserved frame type. */
export class NetloopWire implements RpcWire {
  readonly name = 'netloop' as const;
  readonly frameTypes: readonly number[];
  readonly errorReplies = true;
  readonly #type: number;
  /** Values up to this many bytes are copied into the output buffer by `sendRaw` (the owner's `copyThreshold`). */
  readonly #copied: number;
  /**
   * Where a request or reply of at most {@link #copied} bytes is put
   * together: `sendRaw` copies it into the client's output buffer before it
   * returns, so one buffer serves every such send (made at the first one).
   * A larger value is queued uncopied, so it gets a buffer of its own.
   */
  #scratch: Buffer | null = null;

  constructor(frameType: number, copyThreshold: number) {
    this.#type = frameType;
    this.frameTypes = [frameType];
    this.#copied = copyThreshold;
  }

  /** A buffer for a value of `length` bytes about to be sent (see {@link #scratch}). */
  #valueBuffer(length: number): Buffer {
    if (length > this.#copied) return Buffer.allocUnsafe(length);
    return (this.#scratch ??= Buffer.allocUnsafe(Math.max(this.#copied, RPC_REQUEST_HEADER_BYTES)));
  }

  handlerFor(_i: number, inbound: RpcInbound): ReservedFrameHandler {
    return (client, source, start, end) => {
      // Requests and replies, nearly every frame, are read here in place: their
      // headers are fixed (see codec/rpc-envelope.ts), and the payload is a
      // view of the frame (no envelope object). The rest, and anything
      // malformed, goes through the codec.
      const length = end - start;
      const kind = length >= RPC_REPLY_HEADER_BYTES ? source[start]! : 0;
      if (kind === REPLY) {
        inbound._onReply(client, readU32(source, start + 1), source.subarray(start + RPC_REPLY_HEADER_BYTES, end), -1);
        return;
      }
      if (kind === REQUEST && length >= RPC_REQUEST_HEADER_BYTES) {
        inbound._onRequest(client, readU32(source, start + 1), readU32(source, start + 5), source.subarray(start + RPC_REQUEST_HEADER_BYTES, end));
        return;
      }
      let envelope;
      try {
        envelope = decodeRpcEnvelope(source, start, end);
      } catch (err) {
        refuse(client, err);
        return;
      }
      switch (envelope.kind) {
        case 'request':
          inbound._onRequest(client, envelope.callId, envelope.type, envelope.payload);
          return;
        case 'reply':
          inbound._onReply(client, envelope.callId, envelope.payload, -1);
          return;
        case 'error':
          inbound._onErrorReply(client, envelope.callId, envelope.code, envelope.message);
          return;
        default:
          inbound._onCancel(client, envelope.callId);
      }
    };
  }

  sendRequest(client: FramedClient, callId: number, def: RpcCallDef, payload: Uint8Array): boolean {
    // The header and the payload in one value, written as the codec writes them (see its layout).
    const length = RPC_REQUEST_HEADER_BYTES + payload.length;
    const value = this.#valueBuffer(length);
    value[0] = REQUEST;
    value.writeUInt32BE(callId, 1);
    value.writeUInt32BE(def.id, 5);
    value.set(payload, RPC_REQUEST_HEADER_BYTES);
    return client.sendRaw(this.#type, value, 0, length);
  }

  sendReply(client: FramedClient, callId: number | bigint, _def: RpcCallDef, payload: Uint8Array): boolean {
    const length = RPC_REPLY_HEADER_BYTES + payload.length;
    const value = this.#valueBuffer(length);
    value[0] = REPLY;
    value.writeUInt32BE(callId as number, 1);
    value.set(payload, RPC_REPLY_HEADER_BYTES);
    return client.sendRaw(this.#type, value, 0, length);
  }

  sendError(client: FramedClient, callId: number | bigint, code: string, message: string): boolean {
    const text = fitRpcErrorText(message, RPC_MAX_ERROR_MESSAGE_BYTES);
    return client.sendRaw(this.#type, encodeRpcEnvelope({ kind: 'error', callId: callId as number, code, message: text }));
  }

  sendCancel(client: FramedClient, callId: number): boolean {
    return client.sendRaw(this.#type, encodeRpcEnvelope({ kind: 'cancel', callId }));
  }
}

/**
 * cellnet's `rpc` package: `RemoteCallREQ` (58645) carries a request,
 * `RemoteCallACK` (20476) its reply, each in protoplus encoding with the
 * inner message's id and bytes and the caller's `CallID` (see
 * `codec/cellnet/rpc.ts`). cellnet has no error reply and no cancellation
 * (`rpc/req_async.go` and `rpc/req_sync.go` only time out), so those sends
 * do nothing and return false.
 */
export class CellnetWire implements RpcWire {
  readonly name = 'cellnet' as const;
  readonly frameTypes: readonly number[] = [CELLNET_RPC_IDS.REQ, CELLNET_RPC_IDS.ACK];
  readonly errorReplies = false;

  handlerFor(i: number, inbound: RpcInbound): ReservedFrameHandler {
    if (i === 0) {
      return (client, source, start, end) => {
        let call;
        try {
          call = decodeCellnetRemoteCall(source, start, end);
        } catch (err) {
          refuse(client, err);
          return;
        }
        // cellnet's receiver reads the inner message as uint16(MsgID) (rpc/msg.go).
        inbound._onRequest(client, call.callId, call.msgId & 0xffff, call.data);
      };
    }
    return (client, source, start, end) => {
      let call;
      try {
        call = decodeCellnetRemoteCall(source, start, end);
      } catch (err) {
        refuse(client, err);
        return;
      }
      // Our calls are numbered 1 to 2^32 - 1: any other CallID answers none of them.
      const id = call.callId > 0n && call.callId <= 0xffffffffn ? Number(call.callId) : -1;
      inbound._onReply(client, id, call.data, call.msgId & 0xffff);
    };
  }

  sendRequest(client: FramedClient, callId: number, def: RpcCallDef, payload: Uint8Array): boolean {
    return client.sendRaw(CELLNET_RPC_IDS.REQ, encodeCellnetRemoteCall({ msgId: def.id, data: payload, callId }));
  }

  sendReply(client: FramedClient, callId: number | bigint, def: RpcCallDef, payload: Uint8Array): boolean {
    return client.sendRaw(CELLNET_RPC_IDS.ACK, encodeCellnetRemoteCall({ msgId: def.replyId, data: payload, callId }));
  }

  sendError(): boolean {
    return false;
  }

  sendCancel(): boolean {
    return false;
  }
}
