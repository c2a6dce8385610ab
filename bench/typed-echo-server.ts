/**
 * The echo servers of the typed-path scenario, run as a child process:
 * `node dist/bench/typed-echo-server.js --impl tuned|tuned-view|typed|tuned-json|typed-json [--port 0]`.
 *
 * All speak the framing of `echo-server.ts` (a 4-byte big-endian length, then
 * the value; netloop's `muduo` preset, whose frames carry no type field, so
 * every frame is of type 0) and answer each message with one message carrying
 * the same value:
 *
 * ```
 *   bytes  tuned       node:net, a read offset, one write per read (echo-server.ts)
 *          tuned-view  as `tuned`, each value handed to a function as a Buffer view of
 *                      the chunk, as raw() hands it to a handler (the floor of that promise)
 *          typed       FramedServer, registry { 0: 'Echo', raw() },
 *                      handle('Echo', (c, v) => c.send('Echo', v))
 *   JSON   tuned-json  node:net as `tuned`, and per frame JSON.parse, a shape
 *                      check, JSON.stringify written straight into the reply
 *          typed-json  FramedServer, registry { 0: 'Echo', json<Echo>({ validate }) },
 *                      handle('Echo', (c, m) => c.send('Echo', m))
 * ```
 *
 * Each pair does the same work per message, by hand on one side and through
 * netloop's typed message path (registry, serializer, `handle`, `send`) on
 * the other. Prints `listening <port>` once ready and exits when its stdin
 * closes.
 *
 * @module
 */

import * as net from 'node:net';
import { announceListening, intFlag, isMain, onControl, parseFlags, runChildMain, siblingScript, startServer, stringFlag } from './processes.js';
import type { ServerChild } from './processes.js';
import { HEADER_BYTES, MAX_FRAME_BYTES, listenOn, startTunedEcho } from './echo-server.js';
import { ErrorCode, NetloopError } from '../lib/core/errors.js';

/** The implementations this script can serve. */
export const TYPED_ECHO_IMPLS = ['tuned', 'tuned-view', 'typed', 'tuned-json', 'typed-json'] as const;
/** One of {@link TYPED_ECHO_IMPLS}. */
export type TypedEchoImpl = (typeof TYPED_ECHO_IMPLS)[number];

/** The message both JSON servers echo (the load generator's `--json` value). */
export interface Echo {
  id: number;
  text: string;
}

/** The shape check both JSON servers make on every message. */
export function isEcho(value: unknown): value is Echo {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Echo).id === 'number' &&
    typeof (value as Echo).text === 'string'
  );
}

/**
 * Starts a bare `node:net` JSON echo written with care: frames are walked
 * with an offset inside the chunk (an incomplete tail is kept), each value is
 * parsed and checked, and the replies of one read are serialized straight
 * into one buffer (no intermediate Buffer per reply) and written with one
 * `socket.write`. A malformed value closes the connection.
 */
export function startTunedJsonEcho(port: number): Promise<net.Server> {
  const server = net.createServer({ noDelay: true }, (socket) => {
    let tail: Buffer | null = null;
    const replies: string[] = [];
    socket.on('data', (chunk: Buffer) => {
      let data = chunk;
      if (tail !== null) {
        data = Buffer.concat([tail, chunk]);
        tail = null;
      }
      let off = 0;
      let replyBytes = 0;
      replies.length = 0;
      try {
        while (data.length - off >= HEADER_BYTES) {
          const len = data.readUInt32BE(off);
          if (len > MAX_FRAME_BYTES) {
            socket.destroy();
            return;
          }
          if (data.length - off < HEADER_BYTES + len) break;
          const value: unknown = JSON.parse(data.toString('utf8', off + HEADER_BYTES, off + HEADER_BYTES + len));
          if (!isEcho(value)) {
            socket.destroy();
            return;
          }
          const text = JSON.stringify(value);
          replies.push(text);
          replyBytes += HEADER_BYTES + Buffer.byteLength(text, 'utf8');
          off += HEADER_BYTES + len;
        }
      } catch {
        socket.destroy();
        return;
      }
      if (off < data.length) tail = Buffer.from(data.subarray(off));
      if (replyBytes === 0) return;
      const out = Buffer.allocUnsafe(replyBytes);
      let pos = 0;
      for (const text of replies) {
        const n = out.write(text, pos + HEADER_BYTES, 'utf8');
        out.writeUInt32BE(n, pos);
        pos += HEADER_BYTES + n;
      }
      socket.write(out);
    });
    socket.on('error', () => socket.destroy());
  });
  return listenOn(server, port);
}

/**
 * Starts the hand-tuned echo of `echo-server.ts` changed in one way: each
 * value is handed to a function as a `Buffer` view of the received chunk
 * (`subarray`), which copies it into the reply, as a `raw()` payload reaches
 * a typed handler. A `raw()` value is a Buffer the handler may keep, so the
 * typed path makes one such view per message whatever else it saves; this
 * server measures that floor beside the plain hand-tuned one, which copies
 * by offsets and makes none.
 */
export function startTunedViewEcho(port: number): Promise<net.Server> {
  const server = net.createServer({ noDelay: true }, (socket) => {
    let tail: Buffer | null = null;
    const values: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => {
      let data = chunk;
      if (tail !== null) {
        data = Buffer.concat([tail, chunk]);
        tail = null;
      }
      let off = 0;
      let replyBytes = 0;
      values.length = 0;
      while (data.length - off >= HEADER_BYTES) {
        const len = data.readUInt32BE(off);
        if (len > MAX_FRAME_BYTES) {
          socket.destroy();
          return;
        }
        if (data.length - off < HEADER_BYTES + len) break;
        values.push(data.subarray(off + HEADER_BYTES, off + HEADER_BYTES + len));
        off += HEADER_BYTES + len;
        replyBytes += HEADER_BYTES + len;
      }
      if (off < data.length) tail = Buffer.from(data.subarray(off));
      if (replyBytes === 0) return;
      const out = Buffer.allocUnsafe(replyBytes);
      let pos = 0;
      for (const value of values) pos = appendValue(out, pos, value);
      socket.write(out);
    });
    socket.on('error', () => socket.destroy());
  });
  return listenOn(server, port);
}

/** Writes one reply (length, then the value) at `pos` of `out`; returns the position after it. */
function appendValue(out: Buffer, pos: number, value: Buffer): number {
  out.writeUInt32BE(value.length, pos);
  value.copy(out, pos + HEADER_BYTES);
  return pos + HEADER_BYTES + value.length;
}

/**
 * Starts netloop's typed echo, written as a user of the typed API would
 * write it: a registry naming the one message type, a `FramedServer` built
 * with it, and a typed handler whose payload is inferred (a `Buffer` for
 * `raw()`, an `Echo` for `json<Echo>()`), answered with a named `send`.
 */
export async function startTypedEcho(port: number, payload: 'bytes' | 'json'): Promise<number> {
  const { EventLoop } = await import('../lib/reactor/event-loop.js');
  const { FramedServer } = await import('../lib/framing/framed-server.js');
  const { MessageRegistry } = await import('../lib/codec/message-registry.js');
  const { json, raw } = await import('../lib/codec/serializers.js');
  const loop = new EventLoop();
  const common = { host: '127.0.0.1', port, backlog: 4096, maxConnections: 100_000, layout: 'muduo' } as const;
  if (payload === 'bytes') {
    const registry = new MessageRegistry({ maxId: 0 }).register(0, 'Echo', raw());
    const server = new FramedServer(loop, { ...common, registry });
    server.handle('Echo', (client, value) => {
      client.send('Echo', value);
    });
    return (await server.listen()).port;
  }
  const registry = new MessageRegistry({ maxId: 0 }).register(0, 'Echo', json<Echo>({ validate: isEcho }));
  const server = new FramedServer(loop, { ...common, registry });
  server.handle('Echo', (client, message) => {
    client.send('Echo', message);
  });
  return (await server.listen()).port;
}

/** Starts this script as a child process serving `impl`, bounded to `timeoutMs`. */
export function startTypedEchoChild(impl: TypedEchoImpl, timeoutMs: number): Promise<ServerChild> {
  return startServer({
    script: siblingScript(import.meta.url, 'typed-echo-server.js'),
    args: ['--impl', impl],
    timeoutMs,
    name: `typed-echo-server:${impl}`,
  });
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const impl = stringFlag(flags, 'impl', 'tuned');
  const port = intFlag(flags, 'port', 0);
  let boundPort: number;
  switch (impl) {
    case 'tuned':
      boundPort = ((await startTunedEcho(port)).address() as net.AddressInfo).port;
      break;
    case 'tuned-view':
      boundPort = ((await startTunedViewEcho(port)).address() as net.AddressInfo).port;
      break;
    case 'tuned-json':
      boundPort = ((await startTunedJsonEcho(port)).address() as net.AddressInfo).port;
      break;
    case 'typed':
      boundPort = await startTypedEcho(port, 'bytes');
      break;
    case 'typed-json':
      boundPort = await startTypedEcho(port, 'json');
      break;
    default:
      throw new NetloopError(ErrorCode.INVALID_OPTION, `--impl must be one of ${TYPED_ECHO_IMPLS.join(', ')}, got ${impl}`);
  }
  onControl(() => undefined);
  announceListening(boundPort);
}

if (isMain(import.meta.url)) runChildMain(main);
