import { test } from '../../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import { ErrorCode, isNetloopError } from '../../../../lib/core/errors.js';
import {
  JOURNAL_HEADER_BYTES,
  JournalDecoder,
  crc32,
  crc32Table,
  encodeJournalRecord,
  parseJournal,
} from '../../../../lib/store/file/journal.js';
import type { JournalEnd, JournalRecord } from '../../../../lib/store/file/journal.js';

const enc = (s: string): Buffer => encodeJournalRecord(Buffer.from(s));

/** Decodes `buf` fed in chunks cut at `cuts` (sorted offsets). */
function decodeChunked(buf: Buffer, cuts: number[], max?: number): JournalEnd & { records: JournalRecord[] } {
  const d = new JournalDecoder(max);
  const records: JournalRecord[] = [];
  let at = 0;
  for (const c of [...cuts, buf.length]) {
    records.push(...d.push(buf.subarray(at, c)));
    at = c;
  }
  return { records, ...d.end() };
}

function corruptOffset(fn: () => unknown): number {
  try {
    fn();
  } catch (err) {
    assert.ok(isNetloopError(err, ErrorCode.JOURNAL_CORRUPT), `expected JOURNAL_CORRUPT, got ${String(err)}`);
    return Number((err as { details: Record<string, unknown> }).details.offset);
  }
  assert.unreachable('expected JOURNAL_CORRUPT');
  return -1;
}

test('crc32 gives the standard check value, native and table alike', () => {
  const check = Buffer.from('123456789');
  assert.is(crc32Table(check), 0xcbf43926);
  assert.is(crc32(check), 0xcbf43926);
  assert.is(crc32Table(Buffer.alloc(0)), 0);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => crc32(bytes) === crc32Table(bytes)),
    { numRuns: 200 },
  );
});

test('encode refuses an empty or oversize payload', () => {
  for (const bad of [Buffer.alloc(0), Buffer.alloc(65)]) {
    try {
      encodeJournalRecord(bad, 64);
      assert.unreachable('should throw');
    } catch (err) {
      assert.ok(isNetloopError(err, ErrorCode.INVALID_VALUE));
    }
  }
  assert.is(encodeJournalRecord(Buffer.alloc(64, 1), 64).length, 64 + JOURNAL_HEADER_BYTES);
});

test('decode(encode(x)) == x under every chunking (property)', () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ minLength: 1, maxLength: 200 }), { maxLength: 12 }),
      fc.array(fc.nat(), { maxLength: 8 }),
      (payloads, rawCuts) => {
        const buf = Buffer.concat(payloads.map((p) => encodeJournalRecord(p)));
        const cuts = [...new Set(rawCuts.map((c) => (buf.length === 0 ? 0 : c % buf.length)))].sort((a, b) => a - b);
        const out = decodeChunked(buf, cuts);
        assert.equal(out.records.map((r) => [...r.payload]), payloads.map((p) => [...p]));
        assert.is(out.tail, null);
        assert.is(out.validBytes, buf.length);
        let off = 0;
        for (const [i, r] of out.records.entries()) {
          assert.is(r.offset, off);
          off += JOURNAL_HEADER_BYTES + payloads[i]!.length;
        }
      },
    ),
    { numRuns: 150 },
  );
});

test('a journal cut at every offset keeps the whole records and reports a truncated tail', () => {
  const recs = ['{"s":1}', '{"s":2,"long":"xxxxxxxxxxxxxxxxxxxx"}', '{"s":3}'].map(enc);
  const buf = Buffer.concat(recs);
  const ends = recs.reduce<number[]>((acc, r) => [...acc, (acc.at(-1) ?? 0) + r.length], []);
  for (let cut = 0; cut <= buf.length; cut++) {
    for (const chunking of [[], [1, 2, 3, 5, 8, 13, 21].filter((c) => c < cut)]) {
      const out = decodeChunked(buf.subarray(0, cut), chunking);
      const whole = ends.filter((e) => e <= cut).length;
      assert.is(out.records.length, whole, `cut ${cut}`);
      const valid = whole === 0 ? 0 : ends[whole - 1]!;
      assert.is(out.validBytes, valid);
      if (cut === valid) assert.is(out.tail, null);
      else assert.equal(out.tail, { offset: valid, bytes: cut - valid, reason: 'truncated' });
    }
  }
});

test('one byte at a time gives the same result as one chunk', () => {
  const buf = Buffer.concat([enc('a'), enc('bb'), enc('ccc'), enc('dddd').subarray(0, 7)]);
  const d = new JournalDecoder();
  const got: string[] = [];
  for (let i = 0; i < buf.length; i++) got.push(...d.push(buf.subarray(i, i + 1)).map((r) => r.payload.toString()));
  assert.equal(got, ['a', 'bb', 'ccc']);
  const whole = 13 + 14 + 15;
  assert.equal(d.end(), { validBytes: whole, tail: { offset: whole, bytes: 7, reason: 'truncated' } });
  assert.equal(parseJournal(buf).tail, { offset: whole, bytes: 7, reason: 'truncated' });
});

test('a last record with a bad checksum is a torn tail; with zeros after, too', () => {
  const a = enc('{"s":1}');
  const b = enc('{"s":2}');
  b[b.length - 1] = b[b.length - 1]! ^ 0xff;
  const out = parseJournal(Buffer.concat([a, b]));
  assert.equal(out.records.map((r) => r.payload.toString()), ['{"s":1}']);
  assert.equal(out.tail, { offset: a.length, bytes: b.length, reason: 'torn' });
  const zeros = parseJournal(Buffer.concat([a, b, Buffer.alloc(100)]));
  assert.equal(zeros.tail, { offset: a.length, bytes: b.length + 100, reason: 'torn' });
  // A zero-filled region where a record should be (blocks allocated, data lost) is torn too.
  const holes = decodeChunked(Buffer.concat([a, Buffer.alloc(4096)]), [a.length + 5, a.length + 600]);
  assert.equal(holes.tail, { offset: a.length, bytes: 4096, reason: 'torn' });
  assert.is(holes.records.length, 1);
});

test('a bad payload checksum in the middle is refused, naming its offset, under any chunking', () => {
  const a = enc('{"s":1}');
  const b = enc('{"s":2}');
  const c = enc('{"s":3}');
  b[JOURNAL_HEADER_BYTES + 2] = b[JOURNAL_HEADER_BYTES + 2]! ^ 0x01;
  const buf = Buffer.concat([a, b, c]);
  assert.is(corruptOffset(() => parseJournal(buf)), a.length);
  for (let cut = 1; cut < buf.length; cut++) {
    assert.is(corruptOffset(() => decodeChunked(buf, [cut])), a.length, `cut ${cut}`);
  }
  // Even one stray byte after a zero run makes it corruption, not a tail.
  const stray = Buffer.concat([a, b, Buffer.alloc(50), Buffer.from([7])]);
  assert.is(corruptOffset(() => parseJournal(stray)), a.length);
});

test('a corrupt header in the middle is refused; a header-length lie is caught by the header checksum', () => {
  const a = enc('{"s":1}');
  const b = enc('{"s":2}');
  const c = enc('{"s":3}');
  b.writeUInt32BE(1000, 0); // length changed, header checksum now wrong
  assert.is(corruptOffset(() => parseJournal(Buffer.concat([a, b, c]))), a.length);
  // The same damage at the very end (nothing but the header's own bytes after it) is a torn tail.
  const torn = parseJournal(Buffer.concat([a, b.subarray(0, JOURNAL_HEADER_BYTES)]));
  assert.equal(torn.tail, { offset: a.length, bytes: JOURNAL_HEADER_BYTES, reason: 'torn' });
});

test('a valid header with length 0 or above the maximum is corruption', () => {
  const zero = Buffer.alloc(JOURNAL_HEADER_BYTES);
  zero.writeUInt32BE(0, 0);
  zero.writeUInt32BE(crc32(Buffer.alloc(0)), 4);
  zero.writeUInt32BE(crc32(zero.subarray(0, 8)), 8);
  assert.is(corruptOffset(() => parseJournal(zero)), 0);
  const big = encodeJournalRecord(Buffer.alloc(100, 0x61));
  assert.is(corruptOffset(() => parseJournal(big, 64)), 0);
});

test('push after end, and a bad maximum, are refused', () => {
  const d = new JournalDecoder();
  d.end();
  assert.throws(() => d.push(Buffer.from([1])), (err: unknown) => isNetloopError(err, ErrorCode.INVALID_VALUE));
  assert.throws(() => new JournalDecoder(0), (err: unknown) => isNetloopError(err, ErrorCode.INVALID_OPTION));
  assert.equal(new JournalDecoder().push(Buffer.alloc(0)), []);
});

test('arbitrary bytes never throw anything but JOURNAL_CORRUPT (property)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400 }), fc.nat(400), (bytes, cut) => {
      try {
        decodeChunked(Buffer.from(bytes), cut < bytes.length ? [cut] : [], 256);
      } catch (err) {
        return isNetloopError(err, ErrorCode.JOURNAL_CORRUPT);
      }
      return true;
    }),
    { numRuns: 300 },
  );
});

test.run();
