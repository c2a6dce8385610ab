/**
 * A client's output buffer writes its slab again from the start once every
 * write it handed to the socket completed at once; a write that did not
 * complete keeps its bytes intact, even after the output buffer went back
 * to the loop's pool and another client took it.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import { Server } from '../../../lib/reactor/server.js';
import type { Client } from '../../../lib/reactor/client.js';
import { connectRaw, destroyAll, pattern, readBytes, until, waitFor } from '../../helpers/net.js';

async function accept(server: Server): Promise<{ peer: Awaited<ReturnType<typeof connectRaw>>; client: Client }> {
  const accepted = waitFor<[Client]>(server, 'connection');
  const peer = await connectRaw(server.port);
  const [client] = await accepted;
  return { peer, client };
}

test('bytes of a write that did not complete stay intact while the output buffer serves another client', async () => {
  const loop = new EventLoop();
  const server = await new Server(loop).listen();
  try {
    const a = await accept(server);
    const b = await accept(server);
    const held = pattern(1000, 1);
    // A corked socket holds the write: it does not complete at once.
    a.client.socket.cork();
    a.client.write(held);
    await until(() => !a.client.hasDataToWrite() && a.client.socket.writableLength === held.length, "a's write handed to its socket");
    // b's writes complete at once; its output buffer may be the one a let go.
    for (let i = 0; i < 4; i++) {
      const bytes = pattern(1000, 10 + i);
      b.client.write(bytes);
      assert.ok((await readBytes(b.peer, bytes.length)).equals(bytes), `b's write ${i}`);
    }
    a.client.socket.uncork();
    assert.ok((await readBytes(a.peer, held.length)).equals(held), "a's held bytes arrive as written");
    await destroyAll(a.peer, b.peer);
  } finally {
    await loop.close();
  }
});

test('a connection whose writes complete at once keeps writing from the same slab, and every byte arrives in order', async () => {
  const loop = new EventLoop();
  const server = await new Server(loop).listen();
  try {
    const { peer, client } = await accept(server);
    const buffers = new Set<ArrayBufferLike>();
    const write = client.socket.write.bind(client.socket);
    // Watches what the client hands its socket (the chunks' memory), then writes it.
    (client.socket as unknown as { write: (chunk: Buffer) => boolean }).write = (chunk: Buffer) => {
      buffers.add(chunk.buffer);
      return write(chunk);
    };
    const sent: Buffer[] = [];
    for (let i = 0; i < 64; i++) {
      const bytes = pattern(900, i);
      sent.push(bytes);
      client.write(bytes);
      assert.ok((await readBytes(peer, bytes.length)).equals(bytes), `write ${i}`);
    }
    // 64 writes of 900 bytes fill more than three slabs of 16 KiB without reuse.
    assert.is(buffers.size, 1, `${buffers.size} slabs`);
    await destroyAll(peer);
  } finally {
    await loop.close();
  }
});

test.run();
