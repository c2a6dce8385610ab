/**
 * The typed path's shortcuts, over real sockets: a JSON reply written in
 * place with room for its bound is framed with its exact size and limited
 * by it.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import { MessageRegistry } from '../../../lib/codec/message-registry.js';
import { json, raw, utf8 } from '../../../lib/codec/serializers.js';
import { FramedServer } from '../../../lib/framing/framed-server.js';
import { destroyAll } from '../../helpers/net.js';
import { accept, closeOf, frame, readFrames } from './rig.js';

interface Note {
  id: number;
  text: string;
}
const isNote = (v: unknown): v is Note => typeof v === 'object' && v !== null && typeof (v as Note).id === 'number' && typeof (v as Note).text === 'string';

function registry() {
  return new MessageRegistry()
    .register(1, 'Note', json<Note>({ validate: isNote }))
    .register(2, 'Say', utf8())
    .register(3, 'Blob', raw());
}

test('a JSON reply written in place with room for its UTF-8 bound is framed with its exact size (multi-byte text, frames after it aligned) and the hard output limit counts that size, not the bound', async () => {
  const loop = new EventLoop();
  const results: boolean[] = [];
  // copyThreshold at its default: every reply here is written in place with room for three bytes per UTF-16 unit.
  const server = await new FramedServer(loop, { registry: registry() }).listen();
  const texts = ['plain', 'déjà vu', '€uro ✓', 'emoji 🙂🙃', '\u0000 ctrl \u001f', 'lone \ud800 surrogate'];
  server.handle('Say', (client) => {
    for (const text of texts) results.push(client.send('Note', { id: text.length, text }));
    results.push(client.send('Say', 'end'));
  });
  const limited = await new FramedServer(loop, { registry: registry(), maxOutputBytes: 100 }).listen();
  limited.handle('Say', (client) => {
    // Frames of 34 bytes (6 of header, 28 of JSON) whose bound is 6 + 3 * 28 = 90:
    // two fit in 100 bytes by their size (a bound would refuse the second); the third does not.
    for (let i = 0; i < 3; i++) results.push(client.send('Note', { id: i, text: 'y'.repeat(10) }));
  });
  try {
    const a = await accept(server);
    a.peer.write(frame(2, 'texts'));
    const replies = await readFrames(a.peer, texts.length + 1);
    assert.equal(
      replies.map((r) => [r.type, r.value.toString('hex')]),
      [...texts.map((text) => [1, Buffer.from(JSON.stringify({ id: text.length, text }), 'utf8').toString('hex')]), [2, Buffer.from('end').toString('hex')]],
    );
    assert.equal(results, [...texts.map(() => true), true]);

    results.length = 0;
    const b = await accept(limited);
    const closed = closeOf(limited, b.client);
    b.peer.write(frame(2, 'limit'));
    const [, reason] = await closed;
    assert.equal(results, [true, true, false]);
    assert.is(reason, 'output-limit');
    await destroyAll(a.peer, b.peer);
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test.run();
