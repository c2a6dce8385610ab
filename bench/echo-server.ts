/**
 * A framed echo server for the latency and pipelined scenarios, run as a child
 * process: `node dist/bench/echo-server.js --impl naive|tuned|netloop|netloop-message [--port 0]`.
 *
 * Every implementation speaks the same framing: a 4-byte big-endian length,
 * then that many bytes (netloop's `muduo` preset). Each decoded message gets
 * one reply message carrying the same value.
 *
 * ```
 *   ┌──────────────┬──────────────────┐
 *   │ len (u32 BE) │ value (len bytes)│   request and reply alike
 *   └──────────────┴──────────────────┘
 * ```
 *
 * The two bare `node:net` implementations are the baselines:
 * - `naive`: `Buffer.concat` on every chunk and one `socket.write` per reply,
 *   the way most hand-written servers start out;
 * - `tuned`: a read offset into the chunk (a copy only of a partial frame left
 *   at its end) and one `socket.write` per read carrying every reply of it.
 *
 * Prints `listening <port>` once ready and exits when its stdin closes.
 *
 * @module
 */

import * as net from 'node:net';
import {
  announceListening,
  intFlag,
  isMain,
  onControl,
  parseFlags,
  runChildMain,
  siblingScript,
  startServer,
  stringFlag,
} from './processes.js';
import type { ServerChild } from './processes.js';
import { ErrorCode, NetloopError } from '../lib/core/errors.js';

/** Size of the length prefix. */
export const HEADER_BYTES = 4;
/** No benchmark frame is larger than this; a bigger declared length is a protocol error. */
export const MAX_FRAME_BYTES = 1 << 20;

/** The implementations this script can serve. */
export const ECHO_IMPLS = ['naive', 'tuned', 'netloop', 'netloop-message'] as const;
/** One of {@link ECHO_IMPLS}. */
export type EchoImpl = (typeof ECHO_IMPLS)[number];

/** Starts a bare `node:net` echo server that concatenates every chunk and writes once per reply. */
export function startNaiveEcho(port: number): Promise<net.Server> {
  const server = net.createServer({ noDelay: true }, (socket) => {
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= HEADER_BYTES) {
        const len = pending.readUInt32BE(0);
        if (len > MAX_FRAME_BYTES) {
          socket.destroy();
          return;
        }
        if (pending.length < HEADER_BYTES + len) break;
        const reply = Buffer.allocUnsafe(HEADER_BYTES + len);
        reply.writeUInt32BE(len, 0);
        pending.copy(reply, HEADER_BYTES, HEADER_BYTES, HEADER_BYTES + len);
        socket.write(reply);
        pending = pending.subarray(HEADER_BYTES + len);
      }
    });
    socket.on('error', () => socket.destroy());
  });
  return listenOn(server, port);
}

/**
 * Starts a bare `node:net` echo server written with care: frames are walked
 * with an offset inside the received chunk, only an incomplete tail is kept
 * (and copied once more bytes arrive), and the replies of one read are built
 * into one buffer and written with one `socket.write`.
 */
export function startTunedEcho(port: number): Promise<net.Server> {
  const server = net.createServer({ noDelay: true }, (socket) => {
    let tail: Buffer | null = null;
    socket.on('data', (chunk: Buffer) => {
      let data = chunk;
      if (tail !== null) {
        data = Buffer.concat([tail, chunk]);
        tail = null;
      }
      // First pass: find the complete frames and the size of all replies.
      let off = 0;
      let replyBytes = 0;
      while (data.length - off >= HEADER_BYTES) {
        const len = data.readUInt32BE(off);
        if (len > MAX_FRAME_BYTES) {
          socket.destroy();
          return;
        }
        if (data.length - off < HEADER_BYTES + len) break;
        off += HEADER_BYTES + len;
        replyBytes += HEADER_BYTES + len;
      }
      if (off < data.length) tail = Buffer.from(data.subarray(off));
      if (replyBytes === 0) return;
      // Second pass: build every reply of this read into one buffer, one write.
      const out = Buffer.allocUnsafe(replyBytes);
      let pos = 0;
      let at = 0;
      while (at < off) {
        const len = data.readUInt32BE(at);
        out.writeUInt32BE(len, pos);
        data.copy(out, pos + HEADER_BYTES, at + HEADER_BYTES, at + HEADER_BYTES + len);
        pos += HEADER_BYTES + len;
        at += HEADER_BYTES + len;
      }
      socket.write(out);
    });
    socket.on('error', () => socket.destroy());
  });
  return listenOn(server, port);
}

/** Listens on 127.0.0.1 and resolves with the server once it is bound. */
export function listenOn(server: net.Server, port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port, backlog: 4096 }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

/** Starts this script as a child process serving `impl`, bounded to `timeoutMs`. */
export function startEchoChild(impl: EchoImpl, timeoutMs: number): Promise<ServerChild> {
  return startServer({
    script: siblingScript(import.meta.url, 'echo-server.js'),
    args: ['--impl', impl],
    timeoutMs,
    name: `echo-server:${impl}`,
  });
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const impl = stringFlag(flags, 'impl', 'tuned');
  const port = intFlag(flags, 'port', 0);
  let boundPort: number;
  if (impl === 'naive' || impl === 'tuned') {
    const server = impl === 'naive' ? await startNaiveEcho(port) : await startTunedEcho(port);
    boundPort = (server.address() as net.AddressInfo).port;
  } else if (impl === 'netloop' || impl === 'netloop-message') {
    // `netloop`: the raw frame API (onRawFrame + sendRaw); `netloop-message`: a message object per frame.
    const { startNetloopEcho } = await import('./netloop-servers.js');
    boundPort = await startNetloopEcho(port, impl === 'netloop' ? 'raw' : 'message');
  } else {
    throw new NetloopError(ErrorCode.INVALID_OPTION, `--impl must be one of ${ECHO_IMPLS.join(', ')}, got ${impl}`);
  }
  onControl(() => undefined);
  announceListening(boundPort);
}

if (isMain(import.meta.url)) runChildMain(main);
