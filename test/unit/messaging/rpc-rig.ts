/**
 * The RPC tests' rig: a table of calls, a framed server and a framed
 * connector on loopback with RPC on both, raw peers that write envelopes by
 * hand, and coded-rejection checks.
 *
 * @module
 */

import * as assert from 'uvu/assert';
import type * as net from 'node:net';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import type { Clock } from '../../../lib/core/clock.js';
import { isNetloopError } from '../../../lib/core/errors.js';
import type { NetloopError } from '../../../lib/core/errors.js';
import { jsonSerializer } from '../../../lib/codec/serializers.js';
import type { Serializer } from '../../../lib/codec/serializers.js';
import { LtvEncoder } from '../../../lib/codec/ltv-encoder.js';
import { FramedServer } from '../../../lib/framing/framed-server.js';
import type { FramedServerOptions } from '../../../lib/framing/framed-server.js';
import { FramedConnector } from '../../../lib/framing/framed-connector.js';
import type { FramedConnectorOptions } from '../../../lib/framing/framed-connector.js';
import type { FramedClient } from '../../../lib/framing/framed-client.js';
import { defineCalls } from '../../../lib/messaging/rpc-calls.js';
import type { RpcApiOf } from '../../../lib/messaging/rpc-calls.js';
import { enableRpc } from '../../../lib/messaging/rpc.js';
import type { Rpc, RpcOptions } from '../../../lib/messaging/rpc.js';
import { connectRaw, readBytes, waitFor } from '../../helpers/net.js';

/** A typed JSON serializer (the message path's `json<T>()` stands in here). */
export function json<T>(): Serializer<T> {
  return jsonSerializer as Serializer<T>;
}

/** A user of the tests' calls. */
export interface User {
  id: number;
  name: string;
}

/** The calls of every test: both ends build this same table. */
export const calls = defineCalls({
  GetUser: { id: 1, request: json<{ id: number }>(), reply: json<User>() },
  Echo: { id: 2, request: 'raw', reply: 'raw' },
  Wait: { id: 3, request: 'utf8', reply: 'utf8' },
  Fail: { id: 4, request: json<{ how: string }>(), reply: json<null>() },
  Nobody: { id: 5, request: 'utf8', reply: 'utf8' },
});

/** The API of {@link calls}. */
export type Api = RpcApiOf<typeof calls>;

/** A server and a connector on loopback, RPC enabled on both, connected. */
export interface Pair {
  loop: EventLoop;
  server: FramedServer;
  connector: FramedConnector;
  /** The server's RPC. */
  srv: Rpc<Api>;
  /** The connector's RPC. */
  cli: Rpc<Api>;
  /** The server's client of the connection. */
  serverSide: FramedClient;
  /** The connector's client of the connection. */
  client: FramedClient;
  close(): Promise<void>;
}

/** Options of {@link pair}. */
export interface PairOptions {
  clock?: Clock;
  server?: Partial<FramedServerOptions>;
  connector?: Partial<FramedConnectorOptions>;
  srv?: Partial<RpcOptions<Api>>;
  cli?: Partial<RpcOptions<Api>>;
}

/** Starts a {@link Pair}. */
export async function pair(options: PairOptions = {}): Promise<Pair> {
  const loop = new EventLoop(options.clock === undefined ? {} : { clock: options.clock });
  const server = await new FramedServer(loop, { host: '127.0.0.1', port: 0, ...options.server }).listen();
  const srv = enableRpc(server, { calls, ...options.srv });
  const connector = new FramedConnector(loop, { host: '127.0.0.1', port: server.port, reconnect: false, ...options.connector });
  const cli = enableRpc(connector, { calls, ...options.cli });
  const accepted = waitFor<[FramedClient]>(server, 'connection');
  const connected = waitFor<[FramedClient]>(connector, 'connected');
  connector.connect();
  const [[serverSide], [client]] = await Promise.all([accepted, connected]);
  return {
    loop,
    server,
    connector,
    srv,
    cli,
    serverSide,
    client,
    close: () => loop.close({ flushTimeoutMs: 200 }),
  };
}

/** A server with RPC and a raw peer connected to it (netloop layout). */
export async function rawPeer(rpcOptions: Partial<RpcOptions<Api>> = {}, serverOptions: Partial<FramedServerOptions> = {}, clock?: Clock): Promise<{
  loop: EventLoop;
  server: FramedServer;
  rpc: Rpc<Api>;
  peer: net.Socket;
  client: FramedClient;
  close(): Promise<void>;
}> {
  const loop = new EventLoop(clock === undefined ? {} : { clock });
  const server = await new FramedServer(loop, { host: '127.0.0.1', port: 0, ...serverOptions }).listen();
  const rpc = enableRpc(server, { calls, ...rpcOptions });
  const accepted = waitFor<[FramedClient]>(server, 'connection');
  const peer = await connectRaw(server.port);
  const [client] = await accepted;
  return {
    loop,
    server,
    rpc,
    peer,
    client,
    close: async () => {
      peer.destroy();
      await loop.close({ flushTimeoutMs: 200 });
    },
  };
}

const netloopEncoder = new LtvEncoder({ layout: 'netloop' });

/** One frame of netloop's layout. */
export function frame(type: number, value: Uint8Array): Buffer {
  return netloopEncoder.encode(type, value);
}

/** Bytes from hex, spaces ignored. */
export function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}

/** Reads one frame of netloop's layout (4-byte length, 2-byte type) from a raw peer. */
export async function readFrame(peer: net.Socket): Promise<{ type: number; value: Buffer; bytes: Buffer }> {
  const header = await readBytes(peer, 6);
  const length = header.readUInt32BE(0);
  const value = length === 0 ? Buffer.alloc(0) : await readBytes(peer, length);
  return { type: header.readUInt16BE(4), value, bytes: Buffer.concat([header, value]) };
}

/** Asserts that `promise` rejects with a NetloopError of `code`; returns the error. */
export async function rejectsWith(promise: Promise<unknown>, code: string): Promise<NetloopError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isNetloopError(err), `expected ${code}, got ${String(err)}`);
    assert.is(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
    return err;
  }
  assert.unreachable(`expected a rejection with ${code}`);
  throw new Error('unreachable');
}

/** A promise and the functions that settle it. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
