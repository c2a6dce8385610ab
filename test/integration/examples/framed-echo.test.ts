/**
 * The framed echo example (examples/framed-echo): its server echoes `Echo`
 * messages in netloop's default frame layout, byte for byte on a raw
 * socket; its client program sends the lines of its input and prints each
 * answer; SIGTERM stops the server.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { spawnChild } from '../../../bench/processes.js';
import { startFramedEcho } from '../../../examples/framed-echo/server.js';
import { connectRaw, destroyAll, readBytes } from '../../helpers/net.js';
import { exampleScript, startChatChild } from '../../helpers/chat.js';

const SERVER = exampleScript('framed-echo', 'server.js');
const CLIENT = exampleScript('framed-echo', 'client.js');

/** A netloop frame: uint32 BE value length, uint16 BE type, value. */
function frame(type: number, value: Buffer): Buffer {
  const head = Buffer.alloc(6);
  head.writeUInt32BE(value.length, 0);
  head.writeUInt16BE(type, 4);
  return Buffer.concat([head, value]);
}

test('the server sends each Echo frame back as it came (uint32 BE length, uint16 BE type 1, UTF-8)', async () => {
  const { loop, server } = await startFramedEcho(0);
  const socket = await connectRaw(server.port);
  try {
    const frames = ['hello', 'wörld ✓', ''].map((t) => frame(1, Buffer.from(t, 'utf8')));
    const all = Buffer.concat(frames);
    socket.write(all);
    assert.is((await readBytes(socket, all.length)).toString('hex'), all.toString('hex'));
  } finally {
    await destroyAll(socket);
    await loop.close();
  }
});

test('the programs: the client sends the lines of its input and prints each echo, then exits 0; SIGTERM stops the server', async () => {
  const { handle: srv, port, ready } = await startChatChild(SERVER, ['--port', '0']);
  try {
    assert.match(ready, /^netloop framed echo server listening on 127\.0\.0\.1:\d+$/);
    const client = spawnChild({ script: CLIENT, args: ['--port', String(port)], timeoutMs: 20_000, name: 'framed-echo client' });
    client.child.stdin!.end('hello\nwörld\n\nlast\n');
    const exit = await client.exited;
    assert.is(exit.code, 0, client.stderr());
    const lines: string[] = [];
    for (let i = 0; i < 4; i++) lines.push(await client.waitForLine(/^echo:/, 1_000, `echo ${i + 1}`));
    // The third echo is of an empty line (the child reader trims what it reads).
    assert.equal(lines, ['echo: hello', 'echo: wörld', 'echo:', 'echo: last']);
    srv.child.kill('SIGTERM');
    const stopped = await srv.exited;
    assert.is(stopped.signal, 'SIGTERM', 'it ends by the signal, after closing every connection');
  } finally {
    await srv.kill();
  }
});

test.run();
