/**
 * A small server for the rooms adapter's cross-process tests, run as a child
 * process (one per "machine"), and the client that drives it. The clients
 * say what the server does: join, leave, say who they are, broadcast; so a
 * test exercises the adapter exactly as an application does, over real
 * sockets and a real Redis, and reads what every client received.
 *
 * ```
 *   node dist/test/helpers/rooms-node.js --redis URL | --cluster URL,URL,URL
 *        [--prefix P] [--loopback] [--channels N] [--own] [--max-queue N] [--max-age-ms N]
 *     prints "listening <port>", then one JSON line per adapter event ({"event":"missed",...})
 *
 *   client ──Cmd {op, ...} (json)──▶ server ──▶ rooms.join / leave / setUser / broadcast / stats
 *   client ◀──Msg {text, from, n?} (json)── a broadcast (typed, or raw bytes of the same frame)
 *   client ◀──Reply {op, ...} (json)──────── the answer to a Cmd
 * ```
 *
 * `--own` gives the adapter the URL (it makes its own clients) instead of a
 * client made here.
 *
 * @module
 */

import * as net from 'node:net';
import { createClient, createCluster } from 'redis';
import { EventLoop } from '../../lib/reactor/event-loop.js';
import { FramedServer } from '../../lib/framing/framed-server.js';
import type { FramedClient } from '../../lib/framing/framed-client.js';
import { MessageRegistry } from '../../lib/codec/message-registry.js';
import { LtvDecoder } from '../../lib/codec/ltv-decoder.js';
import { LtvEncoder } from '../../lib/codec/ltv-encoder.js';
import { RoomsAdapter } from '../../lib/cluster/rooms-adapter.js';
import type { PubSubClientLike, RoomsBroadcastOptions } from '../../lib/cluster/rooms-adapter.js';
import { announceListening, emitJson, intFlag, isMain, parseFlags, runChildMain, stringFlag } from '../../bench/processes.js';
import { until } from './net.js';

/** The message types of the small server's protocol. */
export const CMD = 1;
/** See {@link CMD}. */
export const MSG = 2;
/** See {@link CMD}. */
export const REPLY = 3;

/** The protocol's registry (JSON payloads). */
export function roomsRegistry(): MessageRegistry {
  const r = new MessageRegistry();
  r.register(CMD, 'Cmd', 'json');
  r.register(MSG, 'Msg', 'json');
  r.register(REPLY, 'Reply', 'json');
  return r;
}

/** A command a client sends. */
export interface Cmd {
  op: 'hello' | 'join' | 'leave' | 'user' | 'say' | 'stats' | 'stream';
  rooms?: string[];
  users?: string[];
  id?: string | null;
  text?: string;
  /** say: leave the sender out. */
  exceptSelf?: boolean;
  /** say: leave these client keys out. */
  except?: string[];
  exceptRooms?: string[];
  /** say: send the frame's bytes as a raw broadcast instead of a typed message. */
  raw?: boolean;
  local?: boolean;
  /** stream: how many messages, one every intervalMs. */
  count?: number;
  intervalMs?: number;
}

/** A delivered broadcast. */
export interface Msg {
  text: string;
  from: string;
  n?: number;
}

async function serve(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const url = stringFlag(flags, 'redis', '');
  const clusterUrls = stringFlag(flags, 'cluster', '');
  const loop = new EventLoop();
  const registry = roomsRegistry();
  let rooms: RoomsAdapter | null = null;
  let redis: PubSubClientLike | string;
  if (clusterUrls !== '') {
    const cluster = createCluster({ rootNodes: clusterUrls.split(',').map((u) => ({ url: u })) });
    cluster.on('error', () => undefined);
    await cluster.connect();
    redis = cluster as unknown as PubSubClientLike;
  } else if (flags.has('own')) redis = url;
  else {
    const client = createClient({ url, disableOfflineQueue: true, socket: { reconnectStrategy: (n: number) => Math.min(50 * 2 ** n, 500) } });
    client.on('error', () => undefined);
    await client.connect();
    redis = client;
  }
  const server = await new FramedServer(loop, {
    port: 0,
    registry,
    idleTimeoutMs: 0,
    onMessage: (client, message) => {
      if (message.name === 'Cmd') run(client, message.payload as Cmd);
    },
  }).listen();
  const adapter = new RoomsAdapter({
    server,
    redis,
    prefix: stringFlag(flags, 'prefix', 'test:rooms:'),
    loopback: flags.has('loopback'),
    channels: intFlag(flags, 'channels', clusterUrls !== '' ? 16 : 1),
    maxQueuedMessages: intFlag(flags, 'max-queue', 10_000),
    maxQueueAgeMs: intFlag(flags, 'max-age-ms', 10_000),
  });
  rooms = adapter;
  adapter.on('error', (err) => emitJson({ event: 'error', code: err.code, connection: err.details['connection'] ?? null }));
  adapter.on('missed', (info) => emitJson({ event: 'missed', ...info }));
  adapter.on('dropped', (info) => emitJson({ event: 'dropped', ...info }));
  adapter.on('reconnected', (info) => emitJson({ event: 'reconnected', ...info }));
  await adapter.ready();

  const reply = (client: FramedClient, payload: Record<string, unknown>): void => {
    client.send('Reply', payload);
  };
  const names = new Map<FramedClient, string>();
  function run(client: FramedClient, cmd: Cmd): void {
    const r = rooms!;
    switch (cmd.op) {
      case 'hello':
        names.set(client, cmd.text ?? '');
        reply(client, { op: 'hello', key: r.clientKey(client), pid: process.pid });
        return;
      case 'join':
        r.join(client, cmd.rooms ?? []);
        reply(client, { op: 'join', rooms: r.roomsOf(client) });
        return;
      case 'leave':
        r.leave(client, cmd.rooms ?? []);
        reply(client, { op: 'leave', rooms: r.roomsOf(client) });
        return;
      case 'user':
        r.setUser(client, cmd.id ?? null);
        reply(client, { op: 'user', id: r.userOf(client) });
        return;
      case 'say': {
        const result = r.broadcast(message(client, cmd.text ?? '', cmd.raw === true), options(client, cmd));
        reply(client, { op: 'say', result });
        return;
      }
      case 'stream': {
        // n = 0 .. count-1, one every intervalMs, to the rooms given; replies once all are handed to the adapter.
        const count = cmd.count ?? 0;
        const results: Record<string, number> = {};
        let i = 0;
        const timer = setInterval(() => {
          if (i >= count || client.closed) {
            clearInterval(timer);
            if (!client.closed) reply(client, { op: 'stream', results });
            return;
          }
          const res = r.broadcast({ type: 'Msg', payload: { text: 'stream', from: names.get(client) ?? '', n: i } satisfies Msg }, options(client, cmd));
          results[res] = (results[res] ?? 0) + 1;
          i++;
        }, cmd.intervalMs ?? 5);
        return;
      }
      case 'stats':
        reply(client, { op: 'stats', ...r.stats() });
        return;
    }
  }
  const frameEncoder = new LtvEncoder({ layout: server.layout });
  function message(client: FramedClient, text: string, raw: boolean): Uint8Array | { type: string; payload: Msg } {
    const payload: Msg = { text, from: names.get(client) ?? '' };
    if (!raw) return { type: 'Msg', payload };
    const { id, value } = registry.encode('Msg', payload);
    return frameEncoder.encode(id, value);
  }
  function options(client: FramedClient, cmd: Cmd): RoomsBroadcastOptions {
    const except: Array<FramedClient | string> = [...(cmd.except ?? [])];
    if (cmd.exceptSelf === true) except.push(client);
    return {
      ...(cmd.rooms !== undefined ? { rooms: cmd.rooms } : {}),
      ...(cmd.users !== undefined ? { users: cmd.users } : {}),
      ...(except.length > 0 ? { except } : {}),
      ...(cmd.exceptRooms !== undefined ? { exceptRooms: cmd.exceptRooms } : {}),
      ...(cmd.local === true ? { local: true } : {}),
    };
  }
  announceListening(server.port);
  // The parent closes stdin to stop it.
  process.stdin.resume();
  process.stdin.on('end', () => {
    void adapter.close().then(() => process.exit(0));
  });
}

/** A client of the small server: sends commands, records every Msg and Reply in order. */
export class RoomsPeer {
  readonly socket: net.Socket;
  /** Every broadcast received, in order. */
  readonly msgs: Msg[] = [];
  /** Every reply received, in order. */
  readonly replies: Array<Record<string, unknown> & { op: string }> = [];
  closed = false;
  readonly #registry = roomsRegistry();
  readonly #encoder = new LtvEncoder();

  private constructor(socket: net.Socket) {
    this.socket = socket;
    const decoder = new LtvDecoder({
      onFrame: (type, value) => {
        const payload = this.#registry.decode(type, value).payload;
        if (type === MSG) this.msgs.push(payload as Msg);
        else if (type === REPLY) this.replies.push(payload as Record<string, unknown> & { op: string });
      },
    });
    socket.on('data', (chunk: Buffer) => decoder.feed(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
    });
  }

  /** Connects to a small server on 127.0.0.1:`port`. */
  static connect(port: number): Promise<RoomsPeer> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.off('error', reject);
        resolve(new RoomsPeer(s));
      });
      s.once('error', reject);
    });
  }

  /** Sends a command and waits for its reply. */
  async cmd(cmd: Cmd, ms = 10_000): Promise<Record<string, unknown> & { op: string }> {
    const before = this.replies.length;
    const { id, value } = this.#registry.encode('Cmd', cmd);
    this.socket.write(this.#encoder.encode(id, value));
    await until(() => this.replies.slice(before).some((r) => r.op === cmd.op), `the reply to ${cmd.op}`, ms);
    return this.replies.slice(before).find((r) => r.op === cmd.op)!;
  }

  /** Waits until at least `n` broadcasts arrived; returns their texts. */
  async texts(n: number, ms = 10_000): Promise<string[]> {
    await until(() => this.msgs.length >= n, `${n} broadcasts (have ${this.msgs.length})`, ms);
    return this.msgs.map((m) => m.text);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

if (isMain(import.meta.url)) runChildMain(serve);
