/**
 * The framing tests' common rig: a framed echo server, raw peers, frames
 * written by hand (even ones no encoder would write), and coded-error checks.
 *
 * @module
 */

import * as assert from 'uvu/assert';
import type * as net from 'node:net';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import type { ServerOptions } from '../../../lib/reactor/server.js';
import type { CloseReason } from '../../../lib/reactor/close-reason.js';
import { isNetloopError } from '../../../lib/core/errors.js';
import type { NetloopError } from '../../../lib/core/errors.js';
import { LtvEncoder } from '../../../lib/codec/ltv-encoder.js';
import type { LtvLayoutOptions, LtvPresetName } from '../../../lib/codec/ltv-layout.js';
import { MessageRegistry } from '../../../lib/codec/message-registry.js';
import type { FramedClient, FramedMessage } from '../../../lib/framing/framed-client.js';
import type { FramingOptions } from '../../../lib/framing/framing.js';
import { collectAll, connectRaw, destroyAll, readBytes, waitFor } from '../../helpers/net.js';
import { FramedServer } from '../../../lib/framing/framed-server.js';
import type { AnyFramedServer } from '../../../lib/framing/framed-server.js';

/** One frame of `layout` (default: netloop's). */
export function frame(type: number, value: Uint8Array | string, layout: LtvPresetName | LtvLayoutOptions = 'netloop'): Buffer {
  const v = typeof value === 'string' ? Buffer.from(value) : value;
  return new LtvEncoder({ layout }).encode(type, v);
}

/** A raw header of the netloop layout with any declared length (even ones no encoder would write). */
export function netloopHeader(declared: number, type: number): Buffer {
  const h = Buffer.alloc(6);
  h.writeUInt32BE(declared, 0);
  h.writeUInt16BE(type, 4);
  return h;
}

/** A registry of three types: 1 `text` (UTF-8), 2 `json`, 3 `bytes` (raw); strict unless told. */
export function chatRegistry(strict = true): MessageRegistry {
  const r = new MessageRegistry({ strict });
  r.register(1, 'text', 'utf8');
  r.register(2, 'json', 'json');
  r.register(3, 'bytes', 'raw');
  return r;
}

/** A raw peer and the server's client for it. */
export interface Accepted {
  peer: net.Socket;
  client: FramedClient;
}

/** Connects a raw peer and resolves with it and the server's client. */
export async function accept(server: AnyFramedServer): Promise<Accepted> {
  const conn = waitFor<[FramedClient]>(server, 'connection');
  const peer = await connectRaw(server.port);
  const [client] = await conn;
  return { peer, client };
}

/** Resolves with the reason and error of `client`'s close. */
export function closeOf(server: AnyFramedServer, client: FramedClient): Promise<[FramedClient, CloseReason, NetloopError | undefined]> {
  return waitFor<[FramedClient, CloseReason, NetloopError | undefined]>(server, 'close', { filter: (c) => c === client });
}

/** A server that echoes every message back with `client.send` (json/utf8/raw through the registry). */
export async function echoServer(framing: FramingOptions = {}, extra: ServerOptions = {}): Promise<{ loop: EventLoop; server: AnyFramedServer; got: FramedMessage[] }> {
  const loop = new EventLoop();
  const got: FramedMessage[] = [];
  const server = await new FramedServer(loop, {
    ...extra,
    registry: chatRegistry(),
    onMessage(client, msg) {
      got.push(msg);
      client.send(msg.type, msg.payload);
    },
    ...framing,
  }).listen();
  return { loop, server, got };
}

/** Reads `n` frames of the netloop layout from a raw peer. */
export async function readFrames(peer: net.Socket, n: number): Promise<Array<{ type: number; value: Buffer }>> {
  const out: Array<{ type: number; value: Buffer }> = [];
  for (let i = 0; i < n; i++) {
    const h = await readBytes(peer, 6);
    const len = h.readUInt32BE(0);
    out.push({ type: h.readUInt16BE(4), value: len === 0 ? Buffer.alloc(0) : await readBytes(peer, len) });
  }
  return out;
}

/** True when `err` is a NetloopError with `code`. */
export function isCode(err: unknown, code: string): boolean {
  return isNetloopError(err) && err.code === code;
}

/** Asserts `fn` throws a NetloopError with `code`; returns it. */
export function throwsCode(fn: () => unknown, code: string): NetloopError {
  try {
    fn();
  } catch (err) {
    assert.ok(isNetloopError(err), `expected ${code}, got ${String(err)}`);
    assert.is(err.code, code);
    return err;
  }
  assert.unreachable(`expected ${code}`);
  throw new Error('unreachable');
}

/** Asserts the echo server still answers `bystander`. */
export async function stillEchoes(bystander: net.Socket): Promise<void> {
  bystander.write(frame(1, 'still here'));
  const [reply] = await readFrames(bystander, 1);
  assert.is(reply!.value.toString(), 'still here');
}

/** Sends `bytes` from a fresh peer; asserts it is closed with 'protocol-error' and `code`, and that `bystanderOk` still holds. */
export async function expectProtocolError(server: AnyFramedServer, bytes: Buffer, code: string, bystanderOk: () => Promise<void>): Promise<NetloopError> {
  const { peer, client } = await accept(server);
  const closed = closeOf(server, client);
  const done = collectAll(peer);
  peer.write(bytes);
  const [, reason, err] = await closed;
  assert.is(reason, 'protocol-error');
  assert.ok(isCode(err, code), `expected ${code}, got ${String(err?.code)}`);
  await done;
  await bystanderOk();
  await destroyAll(peer);
  return err!;
}

/** A framed echo server on the raw path: onRawFrame records each frame and sends it back with sendRaw. */
export async function rawEchoServer(framing: FramingOptions = {}): Promise<{ loop: EventLoop; server: AnyFramedServer; got: Array<[number, string]> }> {
  const loop = new EventLoop();
  const got: Array<[number, string]> = [];
  const server = await new FramedServer(loop, {
    onRawFrame(client, type, source, start, end) {
      assert.ok(Buffer.isBuffer(source));
      got.push([type, source.toString('latin1', start, end)]);
      client.sendRaw(type, source, start, end);
    },
    ...framing,
  }).listen();
  return { loop, server, got };
}

