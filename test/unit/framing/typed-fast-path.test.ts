/**
 * The typed path's shortcuts, over real sockets: a handler declared with
 * one or two parameters gets its payload without a message object (a JSON
 * or UTF-8 payload decoded where it lies, a raw() payload as a view it may
 * keep), a handler that names the message still gets it, a frame cut
 * anywhere across reads decodes the same, and a JSON reply written in place
 * with room for its bound is framed with its exact size and limited by it.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import { ErrorCode } from '../../../lib/core/errors.js';
import { MessageRegistry } from '../../../lib/codec/message-registry.js';
import { json, raw, utf8 } from '../../../lib/codec/serializers.js';
import { FramedServer } from '../../../lib/framing/framed-server.js';
import type { FramedMessage } from '../../../lib/framing/framed-client.js';
import { destroyAll, pattern, until } from '../../helpers/net.js';
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

test('raw() values a two-parameter handler keeps stay intact after later reads, and a handler that names the message (or takes rest parameters) still gets it', async () => {
  const loop = new EventLoop();
  const kept: Buffer[] = [];
  const seen: string[] = [];
  const server = await new FramedServer(loop, { registry: registry() }).listen();
  server.handle('Blob', (_client, bytes) => void kept.push(bytes));
  server.handle('Say', (_client, text, message) => void seen.push(`${text} ${message.name} ${message.value.toString()}`));
  server.handle('Note', (...args: unknown[]) => {
    const message = args[2] as FramedMessage | undefined;
    seen.push(`${(args[1] as Note).text} ${message?.name} ${message?.value.length}`);
  });
  try {
    const a = await accept(server);
    // Many reads of different bytes: a value handed out as a view of a
    // buffer reused for a later read would show the later bytes.
    const sent: Buffer[] = [];
    for (let i = 0; i < 40; i++) {
      const values = [pattern(100 + i, i), pattern(7, 1000 + i)];
      sent.push(...values);
      a.peer.write(Buffer.concat(values.map((v) => frame(3, v))));
      await until(() => kept.length === sent.length, `read ${i}`);
    }
    a.peer.write(Buffer.concat([frame(2, 'hé'), frame(1, JSON.stringify({ id: 1, text: 'n' }))]));
    await until(() => seen.length === 2, 'the two messages');
    assert.equal(seen, ['hé Say hé', 'n Note 19']);
    assert.is(kept.length, sent.length);
    for (let i = 0; i < sent.length; i++) assert.ok(kept[i]!.equals(sent[i]!), `value ${i} intact`);
    await destroyAll(a.peer);
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test('a frame cut at every byte position across two reads decodes the same for two-parameter handlers of JSON, UTF-8 and raw() types; a malformed JSON value still closes with protocol-error', async () => {
  const loop = new EventLoop();
  const got: string[] = [];
  const server = await new FramedServer(loop, { registry: registry() }).listen();
  let read = 0;
  server.addReadTap((_client, chunk) => void (read += chunk.length));
  server.handle('Note', (_client, note) => void got.push(`note ${note.id} ${note.text}`));
  server.handle('Say', (_client, text) => void got.push(`say ${text}`));
  server.handle('Blob', (_client, bytes) => void got.push(`blob ${bytes.toString('hex')}`));
  try {
    const a = await accept(server);
    const frames = [frame(1, JSON.stringify({ id: 7, text: 'déjà 🙂' })), frame(2, 'ünï'), frame(3, Buffer.from([0, 1, 254, 255]))];
    const expected = ['note 7 déjà 🙂', 'say ünï', 'blob 0001feff'];
    let written = 0;
    for (let f = 0; f < frames.length; f++) {
      const bytes = frames[f]!;
      for (let cut = 1; cut < bytes.length; cut++) {
        got.length = 0;
        a.peer.write(bytes.subarray(0, cut));
        written += cut;
        // The first part is read (a read of its own) before the rest is sent.
        await until(() => read === written, `frame ${f}: the first ${cut} bytes read`);
        assert.is(got.length, 0, `frame ${f} cut at ${cut}: nothing handed out from the first part`);
        a.peer.write(bytes.subarray(cut));
        written += bytes.length - cut;
        await until(() => got.length === 1, `frame ${f} cut at ${cut}`);
        assert.is(got[0], expected[f], `frame ${f} cut at ${cut}`);
      }
    }
    const closed = closeOf(server, a.client);
    a.peer.write(frame(1, '{"id":1,'));
    const [, reason, error] = await closed;
    assert.is(reason, 'protocol-error');
    assert.is(error?.code, ErrorCode.BAD_PAYLOAD);
    await destroyAll(a.peer);
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

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
  limited.handle('Say', (client, what) => {
    if (what === 'big') {
      // 6 + 102 bytes: refused with nothing queued before it.
      results.push(client.send('Note', { id: 0, text: 'z'.repeat(84) }));
      return;
    }
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

    results.length = 0;
    const c = await accept(limited);
    const closedToo = closeOf(limited, c.client);
    c.peer.write(frame(2, 'big'));
    const [, reasonToo] = await closedToo;
    assert.equal(results, [false]);
    assert.is(reasonToo, 'output-limit');
    assert.equal(limited.frameCounts().find((f) => f.name === 'Note')!.sent, 2, 'the refused frames are not counted');
    await destroyAll(a.peer, b.peer, c.peer);
  } finally {
    await loop.close({ flushTimeoutMs: 100 });
  }
});

test.run();
