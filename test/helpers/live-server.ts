/**
 * A live framed server for fault and fuzz tests: an echo server on the
 * `netloop` LTV layout, a recorder of every close (reason and code, per
 * client), and a well-behaved witness peer that proves the other
 * connections are unaffected.
 *
 * ```
 *   peer ── frames ──▶ Server(framing: netloop layout, strict registry?) ── onMessage ──▶ echo
 *   closes: Map<clientId, Array<{ reason, code }>>   (exactly one entry each, checked by tests)
 * ```
 *
 * @module
 */

import type * as net from 'node:net';
import { EventLoop } from '../../lib/reactor/event-loop.js';
import type { CloseReason } from '../../lib/reactor/close-reason.js';
import type { NetloopError } from '../../lib/core/errors.js';
import type { ServerOptions } from '../../lib/reactor/server.js';
import type { FramedClient } from '../../lib/framing/framed-client.js';
import type { FramingOptions } from '../../lib/framing/framing.js';
import { LtvEncoder } from '../../lib/codec/ltv-encoder.js';
import { connectRaw, readBytes, waitFor } from './net.js';
import { FramedServer } from '../../lib/framing/framed-server.js';

/** The frame header of the `netloop` layout: uint32 BE value length, uint16 BE type. */
export const HEADER = 6;

/** One `netloop` frame. */
export function frame(type: number, value: Uint8Array | string, maxFrameLength = 16 * 1024 * 1024): Buffer {
  const v = typeof value === 'string' ? Buffer.from(value) : value;
  return new LtvEncoder({ layout: { preset: 'netloop', maxFrameLength } }).encode(type, v);
}

/** A raw `netloop` header declaring `length` bytes of value, whatever they are (for lying peers). */
export function header(length: number, type: number): Buffer {
  const b = Buffer.alloc(HEADER);
  b.writeUInt32BE(length >>> 0, 0);
  b.writeUInt16BE(type, 4);
  return b;
}

/** A close as recorded. */
export interface CloseRecord {
  reason: CloseReason;
  code: string | undefined;
}

/** A running framed echo server. */
export interface LiveServer {
  loop: EventLoop;
  server: FramedServer;
  port: number;
  closes: Map<number, CloseRecord[]>;
  /** Connects a peer and resolves with it and its server-side client. */
  connect(): Promise<{ peer: net.Socket; client: FramedClient }>;
  /** Resolves with the close of `client`. */
  closeOf(client: FramedClient, ms?: number): Promise<CloseRecord>;
  /** Asserts, through a fresh peer, that the server still serves: a frame round-trips. */
  witness(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts a framed echo server: each message is sent back with its type (the
 * application's handler, given by `framing.onMessage`, replaces the echo;
 * `framing` holds the framing options, given to the `FramedServer` beside
 * `options`).
 */
export async function startLive(options: ServerOptions = {}, framing: FramingOptions = {}): Promise<LiveServer> {
  const loop = new EventLoop();
  const server = await new FramedServer(loop, {
    ...options,
    layout: 'netloop',
    onMessage: (c, m) => {
      if (!c.closing && !c.closed) c.send(m.type, m.value);
    },
    ...framing,
  }).listen();
  const closes = new Map<number, CloseRecord[]>();
  server.on('close', (c: FramedClient, reason: CloseReason, err?: NetloopError) => {
    const list = closes.get(c.id) ?? [];
    list.push({ reason, code: err?.code });
    closes.set(c.id, list);
  });
  const peers: net.Socket[] = [];
  const live: LiveServer = {
    loop,
    server,
    port: server.port,
    closes,
    async connect() {
      const conn = waitFor<[FramedClient]>(server, 'connection');
      const peer = await connectRaw(server.port);
      peer.on('error', () => undefined);
      peers.push(peer);
      const [client] = await conn;
      return { peer, client };
    },
    async closeOf(client, ms = 5_000) {
      const done = closes.get(client.id);
      if (done !== undefined) return done[0]!;
      await waitFor(server, 'close', { filter: (c) => c === client, ms });
      return closes.get(client.id)![0]!;
    },
    async witness() {
      const { peer } = await live.connect();
      const f = frame(1, 'witness');
      peer.write(f);
      const back = await readBytes(peer, f.length);
      if (!back.equals(f)) throw new Error('the witness got a wrong echo');
      peer.destroy();
    },
    async stop() {
      for (const p of peers) p.destroy();
      await loop.close({ flushTimeoutMs: 1_000 });
    },
  };
  return live;
}
