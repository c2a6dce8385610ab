import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { OutputBuffer, SLAB_BYTES, SLAB_COPY_MAX } from '../../../lib/reactor/output-buffer.js';

test('a lone chunk that fits is returned as is, without a copy', () => {
  const b = new OutputBuffer();
  const chunk = Buffer.from('hello');
  b.push(chunk);
  const out = b.take(100);
  assert.is(out, chunk);
  assert.is(b.bytes, 0);
  assert.is(b.chunkCount, 0);
});

test('a chunk larger than max is cut into views of the same memory', () => {
  const b = new OutputBuffer();
  const chunk = Buffer.from('abcdefghij');
  b.push(chunk);
  const first = b.take(4);
  assert.is(first.toString(), 'abcd');
  assert.is(first.buffer, chunk.buffer);
  assert.is(b.bytes, 6);
  assert.is(b.take(100).toString(), 'efghij');
});

test('headBytes is the size of the piece take() would hand out whole: the head chunk, else the open tail', () => {
  const b = new OutputBuffer();
  assert.is(b.headBytes, 0);
  b.copyIn(Buffer.from('abc'));
  assert.is(b.headBytes, 3);
  const big = Buffer.alloc(SLAB_COPY_MAX * 8, 7);
  b.push(big);
  assert.is(b.headBytes, 3, 'the tail closed into a chunk ahead of the pushed one');
  assert.is(b.take(b.headBytes).toString(), 'abc');
  assert.is(b.headBytes, big.length);
  // Taken whole even when larger than a writer's usual bound: the same memory, no copy.
  assert.is(b.take(Math.max(16, b.headBytes)), big);
  assert.is(b.headBytes, 0);
  assert.is(b.bytes, 0);
});

test('many small chunks are joined into one buffer of at most max bytes', () => {
  const b = new OutputBuffer();
  for (let i = 0; i < 10; i++) b.push(Buffer.from(String(i)));
  b.push(Buffer.alloc(0));
  assert.is(b.bytes, 10);
  assert.is(b.chunkCount, 10);
  assert.is(b.take(7).toString(), '0123456');
  assert.is(b.take(7).toString(), '789');
  assert.is(b.take(7).length, 0);
  assert.is(b.take(0).length, 0);
});

test('clear drops everything', () => {
  const b = new OutputBuffer();
  for (let i = 0; i < 100; i++) b.push(Buffer.from('x'));
  b.clear();
  assert.is(b.bytes, 0);
  assert.is(b.take(10).length, 0);
});

test('a long queue is compacted as it is consumed', () => {
  const b = new OutputBuffer();
  for (let i = 0; i < 5000; i++) b.push(Buffer.from([i & 0xff]));
  const parts: Buffer[] = [];
  for (let i = 0; i < 4000; i++) parts.push(Buffer.from(b.take(1)));
  for (let i = 0; i < 1000; i++) b.push(Buffer.from([i & 0xff]));
  while (b.bytes > 0) parts.push(Buffer.from(b.take(333)));
  const all = Buffer.concat(parts);
  assert.is(all.length, 6000);
  for (let i = 0; i < 5000; i++) assert.is(all[i], i & 0xff);
  for (let i = 0; i < 1000; i++) assert.is(all[5000 + i], i & 0xff);
});

test('property: any interleaving of pushes and takes yields the bytes in order, none lost or duplicated', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          fc.record({ push: fc.uint8Array({ minLength: 0, maxLength: 300 }) }),
          fc.record({ take: fc.integer({ min: 0, max: 700 }) }),
        ),
        { maxLength: 60 },
      ),
      (ops) => {
        const b = new OutputBuffer();
        const expected: number[] = [];
        const got: number[] = [];
        for (const op of ops) {
          if ('push' in op) {
            b.push(Buffer.from(op.push));
            expected.push(...op.push);
          } else {
            const before = b.bytes;
            const out = b.take(op.take);
            assert.is(out.length, Math.min(op.take, before));
            got.push(...out);
          }
          assert.is(b.bytes, expected.length - got.length);
        }
        got.push(...b.take(1 << 30));
        assert.equal(got, expected);
      },
    ),
  );
});

test('small copies from many appends leave as one view of the slab, without a join', () => {
  const b = new OutputBuffer();
  const parts: Buffer[] = [];
  for (let i = 0; i < 50; i++) {
    const part = Buffer.from(`part ${i};`);
    parts.push(part);
    b.copyIn(part);
    part.fill(0); // copied: the caller may reuse its buffer
  }
  b.copyIn(Buffer.alloc(0));
  assert.is(b.chunkCount, 1);
  const out = b.take(1 << 20);
  assert.is(out.toString(), parts.map((_, i) => `part ${i};`).join(''));
  assert.ok(out.buffer.byteLength >= SLAB_BYTES, 'a view of the slab');
  assert.is(b.bytes, 0);
  assert.is(b.chunkCount, 0);
});

test('reserve writes in place; nothing is queued until commit', () => {
  const b = new OutputBuffer();
  const t1 = b.reserve(3);
  t1.write('abc', b.reservedOffset);
  b.commit(3);
  // A reservation that is never committed (a writer that threw) queues nothing.
  b.reserve(5).write('zzzzz', b.reservedOffset);
  const t2 = b.reserve(2);
  t2.write('de', b.reservedOffset);
  b.commit(2);
  assert.is(b.bytes, 5);
  assert.is(b.take(100).toString(), 'abcde');
});

test('interleaved buffers keep their own bytes; copies, references and reservations keep their order', () => {
  const a = new OutputBuffer();
  const c = new OutputBuffer();
  const big = Buffer.alloc(SLAB_COPY_MAX + 1, 0x62);
  a.copyIn(Buffer.from('a1'));
  c.copyIn(Buffer.from('c1'));
  a.copyIn(Buffer.from('a2'));
  a.push(big);
  a.copyIn(Buffer.from('a3'));
  c.copyIn(Buffer.from('c2'));
  // a1 and a2 share one region of a's own slab (c's appends go to c's slab).
  assert.is(a.chunkCount, 3);
  assert.is(a.take(1 << 20).toString(), `a1a2${big.toString()}a3`);
  assert.is(c.take(1 << 20).toString(), 'c1c2');
});

test("a slow reader's queued bytes never pin another buffer's slab", () => {
  // The fan-out case: one message per turn to many clients, one of which never drains.
  const stalled = new OutputBuffer();
  const others = [new OutputBuffer(), new OutputBuffer(), new OutputBuffer()];
  const msg = Buffer.alloc(100, 0x61);
  const slabs = new Set<ArrayBufferLike>();
  for (let turn = 0; turn < 50; turn++) {
    stalled.copyIn(msg);
    for (const o of others) {
      o.copyIn(msg);
      slabs.add(o.take(1 << 20).buffer);
    }
  }
  // One region of its own slab, not 50 views into slabs the other buffers fill (each would pin a whole slab).
  assert.is(stalled.chunkCount, 1);
  const queued = stalled.take(1 << 20);
  assert.is(queued.length, 50 * 100);
  assert.not.ok(slabs.has(queued.buffer), 'the stalled buffer holds its own slab only');
  assert.ok(queued.buffer.byteLength <= SLAB_BYTES, 'and one slab holds all 5,000 bytes');
});

test('a region handed out is never written again, and a slab that fills is replaced', () => {
  const b = new OutputBuffer();
  const handed: Array<{ view: Buffer; copy: Buffer }> = [];
  const piece = Buffer.alloc(1000);
  for (let i = 0; i < (3 * SLAB_BYTES) / 1000; i++) {
    piece.fill(i & 0xff);
    b.copyIn(piece);
    if (i % 7 === 6) {
      const view = b.take(1 << 20);
      handed.push({ view, copy: Buffer.from(view) });
    }
  }
  b.clear();
  const after = new OutputBuffer();
  after.copyIn(Buffer.alloc(500, 0xee));
  after.take(1 << 20);
  for (const h of handed) assert.equal(h.view, h.copy);
});

test('clear gives the room of a tail never handed out back to the slab', () => {
  const b = new OutputBuffer();
  b.copyIn(Buffer.from('first'));
  const first = b.take(100);
  b.copyIn(Buffer.from('dropped'));
  b.clear();
  assert.is(b.bytes, 0);
  assert.is(b.chunkCount, 0);
  b.copyIn(Buffer.from('next'));
  const next = b.take(100);
  assert.is(first.toString(), 'first');
  assert.is(next.toString(), 'next');
  assert.is(next.buffer, first.buffer);
  assert.is(next.byteOffset, first.byteOffset + first.length);
});

test('property: pushes, copies, reservations and takes on two buffers yield each one\'s bytes in order', () => {
  const op = fc.oneof(
    fc.record({ on: fc.integer({ min: 0, max: 1 }), push: fc.uint8Array({ minLength: 0, maxLength: 2 * SLAB_COPY_MAX }) }),
    fc.record({ on: fc.integer({ min: 0, max: 1 }), copy: fc.uint8Array({ minLength: 0, maxLength: SLAB_COPY_MAX }) }),
    fc.record({ on: fc.integer({ min: 0, max: 1 }), reserve: fc.uint8Array({ minLength: 1, maxLength: 300 }), commit: fc.boolean() }),
    fc.record({ on: fc.integer({ min: 0, max: 1 }), take: fc.integer({ min: 0, max: 3000 }) }),
    fc.record({ on: fc.integer({ min: 0, max: 1 }), clear: fc.constant(true) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
      const bufs = [new OutputBuffer(), new OutputBuffer()];
      const expected: number[][] = [[], []];
      const got: number[][] = [[], []];
      const handed: Array<{ view: Buffer; copy: Buffer }> = [];
      for (const o of ops) {
        const b = bufs[o.on]!;
        if ('push' in o) {
          b.push(Buffer.from(o.push));
          expected[o.on]!.push(...o.push);
        } else if ('copy' in o) {
          b.copyIn(o.copy);
          expected[o.on]!.push(...o.copy);
        } else if ('reserve' in o) {
          const t = b.reserve(o.reserve.length);
          t.set(o.reserve, b.reservedOffset);
          if (o.commit) {
            b.commit(o.reserve.length);
            expected[o.on]!.push(...o.reserve);
          }
        } else if ('take' in o) {
          const before = b.bytes;
          const out = b.take(o.take);
          assert.is(out.length, Math.min(o.take, before));
          got[o.on]!.push(...out);
          handed.push({ view: out, copy: Buffer.from(out) });
        } else {
          b.clear();
          got[o.on] = [];
          expected[o.on] = [];
        }
        assert.is(b.bytes, expected[o.on]!.length - got[o.on]!.length);
      }
      for (let i = 0; i < 2; i++) {
        got[i]!.push(...bufs[i]!.take(1 << 30));
        assert.equal(got[i], expected[i]);
      }
      for (const h of handed) assert.equal(h.view, h.copy);
    }),
  );
});

test('rewind writes the slab again from its start once all handed out is let go; a pin keeps the slab until the next one', () => {
  const b = new OutputBuffer();
  b.copyIn(Buffer.from('abc'));
  const first = b.take(100);
  b.copyIn(Buffer.from('def'));
  b.rewind();
  assert.is(b.bytes, 3, 'nothing is rewound while bytes are queued');
  const second = b.take(100);
  assert.is(second.byteOffset, first.byteOffset + 3);
  b.rewind();
  b.copyIn(Buffer.from('xyz'));
  const third = b.take(100);
  assert.equal([third.buffer, third.byteOffset, third.toString()], [first.buffer, first.byteOffset, 'xyz']);
  // A pinned slab is never rewound: what was handed out stays intact.
  b.pin();
  b.rewind();
  b.copyIn(Buffer.from('123'));
  const fourth = b.take(100);
  assert.is(fourth.byteOffset, third.byteOffset + 3);
  assert.is(third.toString(), 'xyz');
  // The next slab starts unpinned.
  b.copyIn(Buffer.alloc(SLAB_BYTES - 2, 1));
  const fill = b.take(SLAB_BYTES);
  assert.is.not(fill.buffer, first.buffer);
  b.rewind();
  b.copyIn(Buffer.from('new'));
  assert.equal([b.take(100).byteOffset, fourth.toString()], [fill.byteOffset, '123']);
});

test.run();
