import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { OutputBuffer } from '../lib/output-buffer.js';

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

test.run();
