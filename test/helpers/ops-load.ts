/**
 * What the operations tests run against: a framed echo server (with a
 * "flood me" request that makes it write a large answer), a load client of
 * real sockets that counts every byte and frame it sends and gets back, and
 * a slow consumer (a peer that asks for a large answer and stops reading).
 *
 * ```
 *   load client ── type 1 frames, batches of `batch` ──▶ echo server ── the same frames back
 *        counts: framesSent, bytesSent, framesEchoed, bytesReceived (exact, for the counters' checks)
 *   slow consumer ── type 2 {uint32 n} ──▶ server writes n bytes in 64 KiB frames (type 3)
 *        and never reads: the answer waits in the server's output queue
 * ```
 *
 * @module
 */

import * as net from 'node:net';
import { EventLoop } from '../../lib/reactor/event-loop.js';
import type { ServerOptions } from '../../lib/reactor/server.js';
import { FramedServer } from '../../lib/framing/framed-server.js';
import { frame, HEADER } from './live-server.js';
import { connectRaw, withTimeout } from './net.js';

/** The echo server of the operations tests. */
export interface OpsEchoServer {
  loop: EventLoop;
  server: FramedServer;
  port: number;
  stop(): Promise<void>;
}

const FLOOD_CHUNK = Buffer.alloc(64 * 1024, 0x5a);

/** Starts the echo server (type 1 echoed, type 2 answered with its uint32 count of bytes). */
export async function startOpsEcho(options: ServerOptions = {}, loop = new EventLoop()): Promise<OpsEchoServer> {
  const server = await new FramedServer(loop, {
    softOutputLimit: null,
    ...options,
    layout: 'netloop',
    onRawFrame(client, type, source, start, end): void {
        if (type === 1) {
          client.sendRaw(1, source, start, end);
        } else if (type === 2 && end - start >= 4) {
          let left = source.readUInt32BE(start);
          while (left > 0 && !client.closing) {
            const n = Math.min(left, FLOOD_CHUNK.length);
            if (!client.sendRaw(3, FLOOD_CHUNK, 0, n)) break;
            left -= n;
          }
        }
    },
  }).listen();
  return {
    loop,
    server,
    port: server.port,
    async stop() {
      await loop.close({ flushTimeoutMs: 500 });
    },
  };
}

/** A running load client. */
export interface LoadClient {
  readonly framesSent: number;
  readonly bytesSent: number;
  readonly framesEchoed: number;
  readonly bytesReceived: number;
  readonly sockets: readonly net.Socket[];
  /** Stops sending, waits until every frame sent came back, and ends the connections (FIN). */
  stop(): Promise<void>;
}

/**
 * Starts `connections` peers that each send `batch` frames of `valueBytes`
 * and wait for their echoes before the next batch, until stopped.
 */
export async function startLoad(port: number, options: { connections: number; valueBytes?: number; batch?: number }): Promise<LoadClient> {
  const batch = options.batch ?? 8;
  const one = frame(1, Buffer.alloc(options.valueBytes ?? 200, 0x41));
  const burst = Buffer.concat(new Array<Buffer>(batch).fill(one));
  const state = { framesSent: 0, bytesSent: 0, framesEchoed: 0, bytesReceived: 0, running: true };
  const sockets: net.Socket[] = [];
  const idle: Array<Promise<void>> = [];
  for (let i = 0; i < options.connections; i++) {
    const s = await connectRaw(port);
    s.on('error', () => undefined);
    sockets.push(s);
    let outstanding = 0;
    let markIdle!: () => void;
    idle.push(
      new Promise<void>((resolve) => {
        markIdle = resolve;
      }),
    );
    const send = (): void => {
      if (!state.running) {
        markIdle();
        return;
      }
      outstanding += burst.length;
      state.framesSent += batch;
      state.bytesSent += burst.length;
      s.write(burst);
    };
    // A connection the test destroys has nothing more to wait for.
    s.once('close', () => markIdle());
    s.on('data', (chunk: Buffer) => {
      state.bytesReceived += chunk.length;
      outstanding -= chunk.length;
      if (outstanding === 0) {
        state.framesEchoed += batch;
        // Next batch on a later turn: the load yields to the server and the scrapes in the same process.
        setImmediate(send);
      }
    });
    send();
  }
  return {
    get framesSent() {
      return state.framesSent;
    },
    get bytesSent() {
      return state.bytesSent;
    },
    get framesEchoed() {
      return state.framesEchoed;
    },
    get bytesReceived() {
      return state.bytesReceived;
    },
    sockets,
    async stop() {
      state.running = false;
      await withTimeout(Promise.all(idle), 10_000, 'the load client to receive every echo');
      await Promise.all(
        sockets.map(
          (s) =>
            new Promise<void>((resolve) => {
              if (s.destroyed) {
                resolve();
                return;
              }
              s.once('close', () => resolve());
              s.end();
            }),
        ),
      );
    },
  };
}

/**
 * A slow consumer: connects, asks the server for `bytes` bytes, and never
 * reads them (its socket is paused), so they pile up in the server's output queue.
 */
export async function slowConsumer(port: number, bytes: number): Promise<net.Socket> {
  const s = await connectRaw(port);
  s.on('error', () => undefined);
  s.pause();
  const req = Buffer.alloc(4);
  req.writeUInt32BE(bytes, 0);
  s.write(frame(2, req));
  return s;
}

/** Bytes of one echo frame of `valueBytes`. */
export function frameBytes(valueBytes: number): number {
  return HEADER + valueBytes;
}
