/**
 * The send paths of the framing layer: a message (through the registry and
 * the LTV encoder) or a raw frame (a type and a byte range) into a client's
 * output buffer, every check made before anything is queued.
 *
 * ```
 *   sendFrame(ref, payload) ── registry.encode ─┐      (a JSON text up to copyThreshold: written
 *   sendRawFrame(type, bytes[start, end)) ──────┴─▶ queueFrame   in place by queueText, no Buffer,
 *                                                               its header after it, once its size is known)
 *        value <= copyThreshold: written in place into the output buffer's slab (one piece,
 *                                no Buffer per reply: client._appendFrame)
 *        larger: header + the value uncopied, all or nothing (appendPairToOutputBuffer)
 *   ──▶ enableWriting + loop.updateClient, unless inside the client's own read
 *       (then the read callback's end flushes it once, with everything else queued)
 *   ──▶ counts.sent(type) for a frame the client took (the owner's frameCounts())
 * ```
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../core/errors.js';
import type { LtvEncoder } from '../codec/ltv-encoder.js';
import { serialize, serializeText } from '../codec/message-registry.js';
import type { MessageMap, MessageRegistry, MessageTypeRef } from '../codec/message-registry.js';
import type { Client } from '../reactor/client.js';
import type { FrameCounts } from './frame-counts.js';

/**
 * Encodes one message into the client's output buffer and asks for it to be
 * flushed this loop turn (`flush`; false inside the client's read, whose end
 * flushes). Every check runs first; nothing partial is queued. Without a
 * registry, `ref` must be a numeric type id and `payload` bytes.
 */
export function sendFrame(
  encoder: LtvEncoder,
  registry: MessageRegistry<MessageMap> | null,
  client: Client,
  ref: MessageTypeRef,
  payload: unknown,
  flush: boolean,
  counts: FrameCounts,
): boolean {
  if (registry !== null) {
    // A name (the typed API's way) is looked up directly and serialized with
    // no intermediate object; ids and types go through the registry's resolve.
    const t = (typeof ref === 'string' ? registry._byName(ref) : undefined) ?? registry.resolve(ref);
    const type = t.id;
    // A text payload (JSON) small enough to be copied is encoded straight
    // into the output buffer, behind its header: no Buffer of the value.
    const text = serializeText(t, payload);
    if (text !== null) return sendText(encoder, client, type, text, flush, counts);
    const value = serialize(t, payload);
    // serialize() returns bytes or throws: only the frame's limits are left to check.
    return queueFrame(client, encoder, type, value, 0, encoder._checkLength(type, value.byteLength), flush, counts);
  }
  if (typeof ref !== 'number') {
    throw new NetloopError(ErrorCode.INVALID_VALUE, 'without a registry, send() takes a numeric type id', {
      details: { type: typeof ref },
    });
  }
  const value = payload as Uint8Array;
  return queueFrame(client, encoder, ref, value, 0, encoder.check(ref, value), flush, counts);
}

/**
 * Queues a message whose value is the UTF-8 of `text`, as {@link sendFrame}
 * does (a function of its own, so that the bytes path stays small enough
 * for the compiler to inline whole into the handler that sends).
 */
function sendText(encoder: LtvEncoder, client: Client, type: number, text: string, flush: boolean, counts: FrameCounts): boolean {
  // UTF-8 takes at most three bytes per UTF-16 unit: a text whose bound is
  // under copyThreshold (and the layout's limit) is written with room for the
  // bound, its byte count learnt as it is written, so the text is read once
  // (no Buffer.byteLength pass before the write).
  const room = text.length * 3;
  if (room <= encoder.copyThreshold && room <= encoder.layout.maxValueLength) {
    encoder._checkLength(type, room);
    return queueText(client, encoder, type, text, room, flush, counts);
  }
  const length = Buffer.byteLength(text, 'utf8');
  if (length <= encoder.copyThreshold) {
    encoder._checkLength(type, length);
    return queueText(client, encoder, type, text, length, flush, counts);
  }
  const value = Buffer.from(text, 'utf8');
  return queueFrame(client, encoder, type, value, 0, encoder.check(type, value), flush, counts);
}

/**
 * Encodes one frame whose value is `bytes[start, end)` (checked by the
 * caller to lie inside `bytes`) into the client's output buffer, as
 * {@link sendFrame} does for a message. With a registry, `type` must be
 * registered.
 */
export function sendRawFrame(
  encoder: LtvEncoder,
  registry: MessageRegistry<MessageMap> | null,
  client: Client,
  type: number,
  bytes: Uint8Array,
  start: number,
  end: number,
  flush: boolean,
  counts: FrameCounts,
): boolean {
  // The type is checked as a number first, so the registry looks it up by id only.
  encoder._checkLength(type, end - start);
  registry?.resolve(type);
  return queueFrame(client, encoder, type, bytes, start, end, flush, counts);
}

/**
 * Encodes one message into the bytes of one frame, with every check `send`
 * makes (for a broadcast, which queues the same frame to every client).
 */
export function encodeMessage(encoder: LtvEncoder, registry: MessageRegistry<MessageMap> | null, ref: MessageTypeRef, payload: unknown): Buffer {
  if (registry !== null) {
    const encoded = registry.encode(ref, payload);
    return encoder.encode(encoded.id, encoded.value);
  }
  if (typeof ref !== 'number') {
    throw new NetloopError(ErrorCode.INVALID_VALUE, 'without a registry, a framed message takes a numeric type id', {
      details: { type: typeof ref },
    });
  }
  if (!(payload instanceof Uint8Array)) {
    throw new NetloopError(ErrorCode.INVALID_VALUE, 'without a registry, a framed message takes bytes as its payload', {
      details: { got: payload === null ? 'null' : typeof payload },
    });
  }
  return encoder.encode(ref, payload);
}

/**
 * The in-place writer of a text value ({@link queueText}): set just before
 * `client._appendFrame` calls it, synchronously, and cleared after, so one
 * object serves every send. It writes the text's UTF-8, then its header,
 * and returns the frame's size.
 */
const textWriter = {
  encoder: null as LtvEncoder | null,
  text: '',
  _writeChecked(target: Uint8Array, offset: number, type: number, _value: Uint8Array, start: number, end: number): number {
    return this.encoder!._writeTextChecked(target as Buffer, offset, type, this.text, end - start);
  },
};
const NO_BYTES = new Uint8Array(0);

/**
 * Queues a checked frame whose value is the UTF-8 of `text`, at most `room`
 * bytes (its exact size or a bound of it, at most `copyThreshold`), as
 * {@link queueFrame} does.
 */
function queueText(client: Client, encoder: LtvEncoder, type: number, text: string, room: number, flush: boolean, counts: FrameCounts): boolean {
  textWriter.encoder = encoder;
  textWriter.text = text;
  let ok: boolean;
  try {
    // The range [0, room) gives the room to reserve; the writer writes the text and reports its size.
    ok = client._appendFrame(textWriter, type, NO_BYTES, 0, room, encoder.frameLength(room));
  } finally {
    textWriter.encoder = null;
    textWriter.text = '';
  }
  if (!ok) return false;
  counts.sent(type);
  if (flush) {
    client.enableWriting();
    client.loop.updateClient(client);
  }
  return true;
}

/**
 * Queues a checked frame whose value is `value[start, end)` into the
 * client's output buffer and asks for it to be flushed this loop turn. Up to
 * `copyThreshold` bytes the frame is written in place into the output
 * buffer's slab, in one piece (no Buffer per reply); a larger value is queued
 * uncopied after its header, the two accepted or refused as a whole.
 */
function queueFrame(
  client: Client,
  encoder: LtvEncoder,
  type: number,
  value: Uint8Array,
  start: number,
  end: number,
  flush: boolean,
  counts: FrameCounts,
): boolean {
  const length = end - start;
  const ok =
    length <= encoder.copyThreshold
      ? client._appendFrame(encoder, type, value, start, end, encoder.frameLength(length))
      : client.appendPairToOutputBuffer(
          encoder._headerChecked(type, length),
          start === 0 && end === value.byteLength ? value : value.subarray(start, end),
        );
  // Inside a read, the client asks for the flush once after the whole
  // chunk; the loop flushes once per turn either way.
  if (!ok) return false;
  counts.sent(type);
  if (flush) {
    client.enableWriting();
    client.loop.updateClient(client);
  }
  return true;
}
