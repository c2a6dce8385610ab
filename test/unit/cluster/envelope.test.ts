/**
 * The envelope a broadcast travels in: what is written is read back whole;
 * excepted clients of other processes are skipped; and bytes that are not
 * an envelope (another application on the channel, a truncation, noise)
 * are a coded error, never a RangeError and never a partial read.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import {
  BATCH_ENTRY_OVERHEAD,
  TARGET_ROOM,
  TARGET_USER,
  batchHeaderSize,
  decodeEnvelope,
  encodeBatch,
  encodeEnvelope,
  envelopeCount,
  envelopeSize,
  splitBatch,
} from '../../../lib/cluster/envelope.js';
import type { EnvelopeInput } from '../../../lib/cluster/envelope.js';

const originArb = fc.stringMatching(/^[A-Za-z0-9._:-]{1,64}$/);
const nameArb = fc.string({ minLength: 1, maxLength: 40, unit: 'grapheme' });
const inputArb: fc.Arbitrary<EnvelopeInput> = fc.record({
  origin: originArb,
  seq: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  targets: fc.array(fc.record({ kind: fc.constantFrom(TARGET_ROOM, TARGET_USER), name: nameArb }), { maxLength: 5 }),
  except: fc.array(fc.record({ origin: originArb, id: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }) }), { maxLength: 4 }),
  exceptRooms: fc.array(nameArb, { maxLength: 3 }),
  type: fc.integer({ min: -1, max: 2 ** 32 - 1 }),
  payload: fc.uint8Array({ maxLength: 200 }),
});

function encode(input: EnvelopeInput): Buffer {
  return encodeEnvelope(input, envelopeSize(input, input.payload.length));
}

test('what is written is read back: targets, excepted clients of the reader, excepted rooms, type, payload (a view, not a copy)', () => {
  fc.assert(
    fc.property(inputArb, fc.boolean(), (input, readerIsListed) => {
      const reader = readerIsListed && input.except.length > 0 ? input.except[0]!.origin : 'reader-not-listed';
      const bytes = encode(input);
      assert.is(bytes.length, envelopeSize(input, input.payload.length), 'the size is exact');
      const env = decodeEnvelope(bytes, reader);
      assert.is(env.origin, input.origin);
      assert.is(env.seq, input.seq);
      const plain = (ts: EnvelopeInput['targets']): string[] => ts.map((t) => `${t.kind}:${t.name}`);
      assert.equal(plain(env.targets), plain(input.targets));
      const mine = input.except.filter((e) => e.origin === reader).map((e) => e.id);
      assert.equal(env.exceptIds === null ? [] : [...env.exceptIds], [...new Set(mine)]);
      assert.equal(env.exceptRooms ?? [], input.exceptRooms);
      assert.is(env.type, input.type);
      assert.equal([...env.payload], [...input.payload]);
      assert.is(env.payload.buffer, bytes.buffer, 'the payload is a view into the message');
    }),
    { numRuns: 300 },
  );
});

test('every truncation inside the header is NETLOOP_BAD_PAYLOAD; a truncation of the payload only shortens it', () => {
  fc.assert(
    fc.property(inputArb, (input) => {
      const bytes = encode(input);
      const header = bytes.length - input.payload.length;
      for (let cut = 0; cut < bytes.length; cut++) {
        const part = bytes.subarray(0, cut);
        if (cut < header) {
          try {
            decodeEnvelope(part, 'x');
            assert.unreachable(`a cut at ${cut} of a ${header}-byte header was read`);
          } catch (err) {
            assert.ok(isNetloopError(err, ErrorCode.BAD_PAYLOAD), `cut ${cut}: ${String(err)}`);
          }
        } else assert.is(decodeEnvelope(part, 'x').payload.length, cut - header);
      }
    }),
    { numRuns: 100 },
  );
});

test('noise is NETLOOP_BAD_PAYLOAD or an envelope, never another error', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 80 }), fc.boolean(), (noise, versioned) => {
      const bytes = Buffer.from(noise);
      if (versioned && bytes.length > 0) bytes[0] = 1;
      try {
        decodeEnvelope(bytes, 'x');
      } catch (err) {
        assert.ok(isNetloopError(err, ErrorCode.BAD_PAYLOAD), String(err));
      }
    }),
    { numRuns: 2000 },
  );
  for (const bad of [Buffer.alloc(0), Buffer.from([2, 0, 1, 0x41]), Buffer.from([1, 0, 0, 0, 0, 0, 0, 0, 0])]) {
    try {
      decodeEnvelope(bad, 'x');
      assert.unreachable(bad.toString('hex'));
    } catch (err) {
      assert.ok(isNetloopError(err, ErrorCode.BAD_PAYLOAD));
      assert.type((err as { details: Record<string, unknown> }).details['why'], 'string');
    }
  }
});

function batchOf(origin: string, parts: Buffer[]): Buffer {
  const field = Buffer.concat([Buffer.from([origin.length]), Buffer.from(origin, 'latin1')]);
  return encodeBatch(field, parts, batchHeaderSize(field.length) + parts.reduce((n, p) => n + p.length + BATCH_ENTRY_OVERHEAD, 0));
}

test('a batch is split back into its envelopes, in order, as views; its origin sits where an envelope\'s does; it says how many it carries', () => {
  fc.assert(
    fc.property(originArb, fc.array(inputArb, { minLength: 2, maxLength: 6 }), (origin, inputs) => {
      const parts = inputs.map(encode);
      const batch = batchOf(origin, parts);
      const split = splitBatch(batch);
      assert.equal(split.map((p) => p.toString('hex')), parts.map((p) => p.toString('hex')));
      for (const p of split) assert.is(p.buffer, batch.buffer, 'a view into the batch');
      assert.is(batch.toString('latin1', 3, 3 + batch[2]!), origin);
      assert.is(envelopeCount(batch), parts.length);
      assert.is(envelopeCount(parts[0]!), 1);
    }),
    { numRuns: 200 },
  );
  assert.is(envelopeCount(Buffer.from('hello')), 0);
});

test('a batch cut anywhere, padded, or of fewer than two is NETLOOP_BAD_PAYLOAD as a whole; noise is refused, never another error', () => {
  fc.assert(
    fc.property(originArb, fc.array(inputArb, { minLength: 2, maxLength: 3 }), (origin, inputs) => {
      const batch = batchOf(origin, inputs.map(encode));
      const bad = [Buffer.concat([batch, Buffer.from([0])]), ...Array.from({ length: batch.length }, (_, cut) => batch.subarray(0, cut))];
      for (const b of bad) {
        try {
          splitBatch(b);
          assert.unreachable(`${b.length} of ${batch.length} bytes were split`);
        } catch (err) {
          assert.ok(isNetloopError(err, ErrorCode.BAD_PAYLOAD), String(err));
        }
      }
    }),
    { numRuns: 50 },
  );
  const one = batchOf('o', [encode({ origin: 'o', seq: 0, targets: [], except: [], exceptRooms: [], type: -1, payload: new Uint8Array(1) }), Buffer.alloc(0)]);
  one.writeUInt16LE(1, 4);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 80 }), (noise) => {
      const bytes = Buffer.from(noise);
      if (bytes.length > 0) bytes[0] = 2;
      try {
        splitBatch(bytes);
      } catch (err) {
        assert.ok(isNetloopError(err, ErrorCode.BAD_PAYLOAD), String(err));
      }
    }),
    { numRuns: 2000 },
  );
  for (const b of [one.subarray(0, one.length - 4), Buffer.from([1, 0, 1, 0x41, 2, 0])]) {
    try {
      splitBatch(b);
      assert.unreachable(b.toString('hex'));
    } catch (err) {
      assert.ok(isNetloopError(err, ErrorCode.BAD_PAYLOAD));
    }
  }
});

test.run();
