/**
 * What a peer's input can make a framed server do, end to end over sockets:
 * its memory follows the bytes the peer sends, not the lengths its headers
 * claim (a header declaring a 16 MiB frame, with nothing after it, must not
 * make the server set 16 MiB aside), and the error a malformed payload closes
 * the client with says where and how long, never what the peer sent.
 */

import { test } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import type * as net from 'node:net';
import { inspect } from 'node:util';
import { EventLoop } from '../../lib/reactor/event-loop.js';
import type { Client } from '../../lib/reactor/client.js';
import type { CloseReason } from '../../lib/reactor/close-reason.js';
import { ErrorCode, isNetloopError } from '../../lib/core/errors.js';
import type { NetloopError } from '../../lib/core/errors.js';
import { LtvEncoder } from '../../lib/codec/ltv-encoder.js';
import { MessageRegistry } from '../../lib/codec/message-registry.js';
import type { FramedClient, FramedMessage } from '../../lib/framing/framed-client.js';
import { RESERVE_START } from '../../lib/codec/ltv-decoder.js';
import { collectAll, connectRaw, destroyAll, digest, pattern, until, waitFor } from '../helpers/net.js';
import { FramedServer } from '../../lib/framing/framed-server.js';

const MiB = 1024 * 1024;
const PEERS = 100;

test('100 peers that each send a header declaring 16 MiB (and a byte) raise arrayBuffers by under 10 MiB', async () => {
  const maxFrameLength = 16 * MiB;
  const value = maxFrameLength - 6;
  const got: FramedMessage[] = [];
  const loop = new EventLoop();
  // No sessions and no authentication: every peer may send a frame of the full 16 MiB at once.
  const server = await new FramedServer(loop, {
    maxConnections: PEERS + 10,
    layout: { preset: 'netloop', maxFrameLength },
    requireAuthentication: false,
    onMessage: (_c, m) => void got.push(m),
  }).listen();
  const peers: net.Socket[] = [];
  try {
    const clients: FramedClient[] = [];
    server.on('connection', (c: FramedClient) => void clients.push(c));
    for (let i = 0; i < PEERS; i++) peers.push(await connectRaw(server.port));
    await until(() => clients.length === PEERS, 'every peer accepted');

    // The baseline is taken with every connection already open, so that what
    // follows measures only what the headers make the server reserve.
    // A header alone sets nothing aside; with the first byte of its value, the
    // decoder holds one segment of RESERVE_START bytes (16 KiB).
    const header = Buffer.alloc(7);
    header.writeUInt32BE(value, 0);
    header.writeUInt16BE(1, 4);
    const before = process.memoryUsage().arrayBuffers;
    for (const p of peers) p.write(header);
    await until(() => clients.every((c) => c.socket.bytesRead === 7), 'every header read by the server', 10_000);
    const grown = process.memoryUsage().arrayBuffers - before;
    // Reserving what the headers claim would add 100 x 16 MiB (1.6 GiB); 10 MiB
    // leaves room for whatever else the process allocates meanwhile.
    assert.ok(grown < 10 * MiB, `arrayBuffers grew by ${(grown / MiB).toFixed(1)} MiB`);
    // The decoders' own accounting: each holds the first byte of a value in RESERVE_START bytes.
    let reserved = 0;
    for (const c of clients) {
      const stats = c.framingStats();
      assert.is(stats.maxFrameLength, maxFrameLength);
      assert.is(stats.bufferedBytes, 1);
      assert.is(stats.reservedBytes, RESERVE_START);
      reserved += stats.reservedBytes;
    }
    assert.ok(reserved < 10 * MiB, `the decoders reserved ${reserved} bytes`);
    assert.is(got.length, 0);

    // A peer that sends the rest gets its 16 MiB frame delivered intact, through the growing buffer.
    const body = pattern(value, 5);
    body[0] = 0;
    const first = clients[0]!;
    peers[0]!.write(body.subarray(1));
    await until(() => got.length === 1, 'the completed frame', 20_000);
    assert.is(got[0]!.value.length, value);
    assert.is(digest(got[0]!.value), digest(body));
    assert.is(first.framingStats().reservedBytes, 0);
  } finally {
    await destroyAll(...peers);
    await loop.close();
  }
});

test('a malformed JSON payload closes the client with BAD_PAYLOAD that quotes none of its bytes', async () => {
  const MARK = 'PEERBYTES-93c1';
  const registry = new MessageRegistry();
  registry.register(1, 'json', 'json');
  const got: FramedMessage[] = [];
  const loop = new EventLoop();
  const server = await new FramedServer(loop, { registry, onMessage: (_c, m) => void got.push(m) }).listen();
  try {
    const closed = waitFor<[Client, CloseReason, NetloopError | undefined]>(server, 'close');
    const peer = await connectRaw(server.port);
    const ended = collectAll(peer);
    const enc = new LtvEncoder();
    // One good message, then JSON that V8 quotes in its SyntaxError ("Unexpected token ...").
    const bad = Buffer.from(`{"user":"${MARK}", "x": ${MARK}}`);
    peer.write(Buffer.concat([enc.encode(1, Buffer.from('{"ok":1}')), enc.encode(1, bad)]));
    const [, reason, err] = await closed;
    await ended;
    assert.equal(got.map((m) => m.payload), [{ ok: 1 }]);
    assert.is(reason, 'protocol-error');
    assert.ok(isNetloopError(err, ErrorCode.BAD_PAYLOAD));
    // Message, stack, details and the whole cause chain: no part of the peer's bytes.
    const everything = inspect(err, { depth: 20, showHidden: true });
    assert.not.ok(everything.includes(MARK.slice(0, 9)), `the peer's bytes in ${everything}`);
    // Where and how long: the type and the value's length (V8 gives no position for this one).
    assert.equal(err.details, { type: 'json', id: 1, length: bad.length, error: 'SyntaxError' });
  } finally {
    await loop.close();
  }
});

test.run();
