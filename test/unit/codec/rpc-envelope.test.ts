import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import {
  RPC_MAX_CALL_ID,
  RPC_MAX_ERROR_CODE_BYTES,
  RPC_MAX_ERROR_MESSAGE_BYTES,
  RPC_REPLY_HEADER_BYTES,
  RPC_REQUEST_HEADER_BYTES,
  decodeRpcEnvelope,
  encodeRpcEnvelope,
  encodeRpcEnvelopeHeader,
  encodeRpcEnvelopeInto,
  fitRpcErrorText,
  nextRpcCallId,
  rpcEnvelopeLength,
} from '../../../lib/codec/rpc-envelope.js';
import type { RpcEnvelope } from '../../../lib/codec/rpc-envelope.js';
import { LtvEncoder } from '../../../lib/codec/ltv-encoder.js';
import { Harness, anyTextArb, throwsCode } from '../../helpers/ltv.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** An envelope as plain data (payloads as hex), comparable with `assert.equal`. */
function plain(e: RpcEnvelope): Record<string, unknown> {
  const out: Record<string, unknown> = { ...e };
  if ('payload' in e) out['payload'] = Buffer.from(e.payload).toString('hex');
  return out;
}

const u32 = fc.nat({ max: RPC_MAX_CALL_ID });
/** Well-formed strings of at most `max` UTF-8 bytes, every plane included. */
const text = (min: number, max: number): fc.Arbitrary<string> =>
  fc
    .string({ unit: 'grapheme', minLength: min, maxLength: max })
    .filter((s) => {
      const n = Buffer.byteLength(s, 'utf8');
      return n >= min && n <= max;
    });
const envelopeArb: fc.Arbitrary<RpcEnvelope> = fc.oneof(
  fc.record({ kind: fc.constant('request' as const), callId: u32, type: u32, payload: fc.uint8Array({ maxLength: 80 }) }),
  fc.record({ kind: fc.constant('reply' as const), callId: u32, payload: fc.uint8Array({ maxLength: 80 }) }),
  fc.record({ kind: fc.constant('error' as const), callId: u32, code: text(1, RPC_MAX_ERROR_CODE_BYTES), message: text(0, 200) }),
  fc.record({ kind: fc.constant('cancel' as const), callId: u32 }),
);

/** The only detail keys a BAD_PAYLOAD may carry, and the only strings among their values. */
const DETAIL_KEYS = new Set(['reason', 'length', 'kind', 'field']);
const DETAIL_STRINGS = new Set([
  'empty',
  'unknown-kind',
  'truncated',
  'trailing-bytes',
  'too-long',
  'bad-utf8',
  'request',
  'reply',
  'error',
  'cancel',
  'code',
  'message',
]);

/** Decodes, or asserts the failure is a BAD_PAYLOAD whose details hold nothing read from the bytes. */
function decodeOrBad(bytes: Uint8Array, start?: number, end?: number): RpcEnvelope<Buffer> | null {
  try {
    return decodeRpcEnvelope(bytes, start, end);
  } catch (err) {
    assert.ok(isNetloopError(err, ErrorCode.BAD_PAYLOAD), `expected BAD_PAYLOAD, got ${String(err)}`);
    for (const [key, value] of Object.entries(err.details)) {
      assert.ok(DETAIL_KEYS.has(key), `unexpected detail ${key}`);
      if (typeof value === 'string') assert.ok(DETAIL_STRINGS.has(value), `unexpected detail value ${value}`);
      else assert.type(value, 'number');
    }
    return null;
  }
}

test('each kind is written as the module comment draws it', () => {
  const cases: Array<[RpcEnvelope, string]> = [
    // kind 01 · callId 00000001 · type 00000102 · payload "hi"
    [{ kind: 'request', callId: 1, type: 0x0102, payload: Buffer.from('hi') }, '01 00000001 00000102 6869'],
    // kind 02 · callId fffffffe · no payload
    [{ kind: 'reply', callId: 0xfffffffe, payload: new Uint8Array(0) }, '02 fffffffe'],
    // kind 03 · callId 7 · code length 1 · "E" · message length 0004 · "oops"
    [{ kind: 'error', callId: 7, code: 'E', message: 'oops' }, '03 00000007 01 45 0004 6f6f7073'],
    // kind 04 · callId 9
    [{ kind: 'cancel', callId: 9 }, '04 00000009'],
    // A code and message outside ASCII: "é" is c3 a9, "€" is e2 82 ac.
    [{ kind: 'error', callId: 0, code: 'é', message: '€' }, '03 00000000 02 c3a9 0003 e282ac'],
  ];
  for (const [envelope, bytes] of cases) {
    assert.is(encodeRpcEnvelope(envelope).toString('hex'), hex(bytes).toString('hex'), envelope.kind);
    assert.is(rpcEnvelopeLength(envelope), hex(bytes).length);
    assert.equal(plain(decodeRpcEnvelope(hex(bytes))), plain(envelope));
  }
  assert.is(RPC_REQUEST_HEADER_BYTES, 9);
  assert.is(RPC_REPLY_HEADER_BYTES, 5);
});

test('property: decode(encode(x)) equals x, through every encoder and from a range of a larger buffer', () => {
  fc.assert(
    fc.property(envelopeArb, fc.nat({ max: 16 }), fc.nat({ max: 16 }), (envelope, before, after) => {
      const whole = encodeRpcEnvelope(envelope);
      assert.is(whole.length, rpcEnvelopeLength(envelope));
      assert.equal(plain(decodeRpcEnvelope(whole)), plain(envelope));

      // Into a plain Uint8Array at an offset, then decoded from that range only.
      const target = new Uint8Array(before + whole.length + after).fill(0xee);
      assert.is(encodeRpcEnvelopeInto(target, before, envelope), before + whole.length);
      assert.equal(Buffer.from(target.subarray(before, before + whole.length)), whole);
      assert.ok(target.subarray(0, before).every((b) => b === 0xee) && target.subarray(before + whole.length).every((b) => b === 0xee));
      assert.equal(plain(decodeRpcEnvelope(target, before, before + whole.length)), plain(envelope));

      // The header followed by the payload is the whole envelope.
      const header = encodeRpcEnvelopeHeader(envelope);
      const payload = 'payload' in envelope ? envelope.payload : new Uint8Array(0);
      assert.equal(Buffer.concat([header, payload]), whole);
    }),
    { numRuns: 500 },
  );
});

test('property: arbitrary bytes decode or fail with BAD_PAYLOAD only, naming no byte of the input', () => {
  const kindFirst = fc
    .tuple(fc.constantFrom(0, 1, 2, 3, 4, 5, 0x81, 0xff), fc.uint8Array({ maxLength: 40 }))
    .map(([k, rest]) => Buffer.concat([Buffer.from([k]), rest]));
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 60 }), kindFirst), fc.nat({ max: 8 }), fc.nat({ max: 8 }), (bytes, a, b) => {
      decodeOrBad(bytes);
      // A range inside a larger buffer: nothing outside it is read, and a payload views it.
      const start = Math.min(a, bytes.length);
      const end = Math.max(start, bytes.length - b);
      const env = decodeOrBad(bytes, start, end);
      if (env !== null && 'payload' in env) {
        assert.is(env.payload.buffer, bytes.buffer);
        const header = env.kind === 'request' ? RPC_REQUEST_HEADER_BYTES : RPC_REPLY_HEADER_BYTES;
        assert.is(env.payload.byteOffset, bytes.byteOffset + start + header);
        assert.is(env.payload.length, end - start - header);
      }
    }),
    { numRuns: 2000 },
  );
});

test('property: every cut of an error or a cancellation, and of a header, is BAD_PAYLOAD', () => {
  fc.assert(
    fc.property(envelopeArb, (envelope) => {
      const whole = encodeRpcEnvelope(envelope);
      const hasPayload = envelope.kind === 'request' || envelope.kind === 'reply';
      const fixed = hasPayload ? encodeRpcEnvelopeHeader(envelope).length : whole.length;
      for (let cut = 0; cut < fixed; cut++) {
        const err = throwsCode(() => decodeRpcEnvelope(whole, 0, cut), ErrorCode.BAD_PAYLOAD);
        assert.ok(['truncated', 'empty'].includes(err.details['reason'] as string), String(err.details['reason']));
      }
      // One byte more is refused where the kind has no payload.
      if (!hasPayload) {
        throwsCode(() => decodeRpcEnvelope(Buffer.concat([whole, Buffer.from([0])])), ErrorCode.BAD_PAYLOAD);
      }
    }),
    { numRuns: 300 },
  );
});

test('malformed envelopes: each rule is BAD_PAYLOAD with its reason, and the peer\'s text never appears', () => {
  const reason = (bytes: string): unknown => throwsCode(() => decodeRpcEnvelope(hex(bytes)), ErrorCode.BAD_PAYLOAD).details['reason'];
  assert.is(reason(''), 'empty');
  assert.is(reason('00 00000001'), 'unknown-kind');
  assert.is(reason('05 00000001'), 'unknown-kind');
  assert.is(reason('01 00000001 000000'), 'truncated');
  assert.is(reason('02 000000'), 'truncated');
  assert.is(reason('04 00000001 00'), 'trailing-bytes');
  assert.is(reason('03 00000001 00 0000'), 'empty'); // an empty code
  assert.is(reason('03 00000001 02 45'), 'truncated'); // the code runs past the end
  assert.is(reason('03 00000001 01 45 00'), 'truncated'); // half a message length
  assert.is(reason('03 00000001 01 45 0003 6f6f'), 'truncated'); // the message runs past the end
  assert.is(reason('03 00000001 01 45 0000 00'), 'trailing-bytes');
  assert.is(reason('03 00000001 01 ff 0000'), 'bad-utf8'); // ff is never UTF-8
  assert.is(reason('03 00000001 01 45 0002 eda0'), 'bad-utf8'); // a cut sequence
  assert.is(reason('03 00000001 01 45 0003 eda080'), 'bad-utf8'); // an encoded surrogate (CESU-8)
  assert.is(reason(`03 00000001 ${(RPC_MAX_ERROR_CODE_BYTES + 1).toString(16)} ${'41'.repeat(65)} 0000`), 'too-long');
  assert.is(reason(`03 00000001 01 45 ${(RPC_MAX_ERROR_MESSAGE_BYTES + 1).toString(16).padStart(4, '0')}`), 'too-long');

  // A peer's over-long code and message: the error names neither.
  const secret = 'SECRET'.repeat(20);
  const bytes = Buffer.concat([hex('03 00000001 78'), Buffer.from(secret), hex('0000')]);
  const err = throwsCode(() => decodeRpcEnvelope(bytes), ErrorCode.BAD_PAYLOAD) as unknown as Error & { details: object };
  assert.not.ok(err.message.includes('SECRET') || JSON.stringify(err.details).includes('SECRET'));
  const bad = Buffer.concat([hex('03 00000001 01 45 0401'), Buffer.from('SECRET'.repeat(200).slice(0, 0x401))]);
  const err2 = throwsCode(() => decodeRpcEnvelope(bad), ErrorCode.BAD_PAYLOAD) as unknown as Error & { details: object };
  assert.not.ok(err2.message.includes('SECRET') || JSON.stringify(err2.details).includes('SECRET'));

  // Limits are inclusive: 64 code bytes and 1024 message bytes decode.
  const atLimit: RpcEnvelope = { kind: 'error', callId: 1, code: 'C'.repeat(64), message: 'm'.repeat(1024) };
  assert.equal(decodeRpcEnvelope(encodeRpcEnvelope(atLimit)), atLimit);
  // A leading byte-order mark is part of the text, not dropped.
  const bom: RpcEnvelope = { kind: 'error', callId: 1, code: '\ufeffX', message: '\ufeff' };
  assert.equal(decodeRpcEnvelope(encodeRpcEnvelope(bom)), bom);
});

test('a payload is a view of the source: no copy is made', () => {
  const frame = hex('aaaa 01 00000005 00000009 010203 bbbb');
  const env = decodeRpcEnvelope(frame, 2, frame.length - 2);
  assert.is(env.kind, 'request');
  if (env.kind !== 'request') return;
  assert.is(env.payload.toString('hex'), '010203');
  frame[11] = 0x7f;
  assert.is(env.payload.toString('hex'), '7f0203');
  // From a plain Uint8Array too.
  const u8 = new Uint8Array(hex('02 00000005 0a0b'));
  const reply = decodeRpcEnvelope(u8);
  assert.ok(Buffer.isBuffer((reply as { payload: Buffer }).payload));
  assert.is((reply as { payload: Buffer }).payload.buffer, u8.buffer);
});

test('encoders refuse bad values with INVALID_VALUE before writing anything', () => {
  const bads: unknown[] = [
    null,
    'request',
    { kind: 'ask', callId: 1 },
    { kind: 'request', callId: -1, type: 0, payload: Buffer.alloc(0) },
    { kind: 'request', callId: 2 ** 32, type: 0, payload: Buffer.alloc(0) },
    { kind: 'request', callId: 1.5, type: 0, payload: Buffer.alloc(0) },
    { kind: 'request', callId: '1', type: 0, payload: Buffer.alloc(0) },
    { kind: 'request', callId: 1, type: 2 ** 32, payload: Buffer.alloc(0) },
    { kind: 'request', callId: 1, type: 1, payload: 'text' },
    { kind: 'reply', callId: 1, payload: [1, 2] },
    { kind: 'error', callId: 1, code: '', message: '' },
    { kind: 'error', callId: 1, code: 'C'.repeat(65), message: '' },
    { kind: 'error', callId: 1, code: 'é'.repeat(33), message: '' }, // 66 bytes in 33 characters
    { kind: 'error', callId: 1, code: 'C', message: 'm'.repeat(1025) },
    { kind: 'error', callId: 1, code: 'C', message: '€'.repeat(342) }, // 1026 bytes
    { kind: 'error', callId: 1, code: 'C', message: 'x\ud800' }, // a lone surrogate
    { kind: 'error', callId: 1, code: 5, message: '' },
    { kind: 'error', callId: 1, code: 'C', message: null },
    { kind: 'cancel' },
  ];
  for (const envelope of bads) {
    const target = Buffer.alloc(2048, 0xee);
    throwsCode(() => encodeRpcEnvelope(envelope as RpcEnvelope), ErrorCode.INVALID_VALUE);
    throwsCode(() => encodeRpcEnvelopeHeader(envelope as RpcEnvelope), ErrorCode.INVALID_VALUE);
    throwsCode(() => rpcEnvelopeLength(envelope as RpcEnvelope), ErrorCode.INVALID_VALUE);
    throwsCode(() => encodeRpcEnvelopeInto(target, 0, envelope as RpcEnvelope), ErrorCode.INVALID_VALUE);
    assert.ok(target.every((b) => b === 0xee), JSON.stringify(envelope)?.slice(0, 60));
  }
  // A target too small, a bad offset, or no target: nothing written.
  const small = Buffer.alloc(8, 0xee);
  const req: RpcEnvelope = { kind: 'request', callId: 1, type: 1, payload: Buffer.alloc(0) };
  throwsCode(() => encodeRpcEnvelopeInto(small, 0, req), ErrorCode.INVALID_VALUE);
  throwsCode(() => encodeRpcEnvelopeInto(Buffer.alloc(20), -1, req), ErrorCode.INVALID_VALUE);
  throwsCode(() => encodeRpcEnvelopeInto(Buffer.alloc(20), 0.5, req), ErrorCode.INVALID_VALUE);
  throwsCode(() => encodeRpcEnvelopeInto(null as never, 0, req), ErrorCode.INVALID_VALUE);
  assert.ok(small.every((b) => b === 0xee));
  assert.is(encodeRpcEnvelopeInto(Buffer.alloc(9), 0, req), 9);
});

test('decode refuses a bad source or range with INVALID_VALUE: the caller\'s mistake, not the peer\'s', () => {
  const bytes = hex('04 00000001');
  throwsCode(() => decodeRpcEnvelope('04' as never), ErrorCode.INVALID_VALUE);
  throwsCode(() => decodeRpcEnvelope(null as never), ErrorCode.INVALID_VALUE);
  throwsCode(() => decodeRpcEnvelope(bytes, -1, 5), ErrorCode.INVALID_VALUE);
  throwsCode(() => decodeRpcEnvelope(bytes, 0, 6), ErrorCode.INVALID_VALUE);
  throwsCode(() => decodeRpcEnvelope(bytes, 3, 2), ErrorCode.INVALID_VALUE);
  throwsCode(() => decodeRpcEnvelope(bytes, 0.5, 5), ErrorCode.INVALID_VALUE);
  throwsCode(() => decodeRpcEnvelope(bytes, 0, '5' as never), ErrorCode.INVALID_VALUE);
  assert.equal(decodeRpcEnvelope(bytes, 0, 5), { kind: 'cancel', callId: 1 });
});

test('call ids count from 1 to 2^32 - 1, then wrap to 1: 0 is never given', () => {
  assert.is(nextRpcCallId(0), 1);
  assert.is(nextRpcCallId(1), 2);
  assert.is(nextRpcCallId(0xfffffffe), 0xffffffff);
  assert.is(nextRpcCallId(0xffffffff), 1);
  // Skipping an id still in flight when the counter comes round.
  const pending = new Set([1, 2]);
  let id = 0xffffffff;
  do id = nextRpcCallId(id);
  while (pending.has(id));
  assert.is(id, 3);
  for (const bad of [-1, 2 ** 32, 1.5, Number.NaN, '1']) throwsCode(() => nextRpcCallId(bad as number), ErrorCode.INVALID_VALUE);
});

test('fitRpcErrorText: lone surrogates replaced, cut at a code point within the byte limit', () => {
  assert.is(fitRpcErrorText('short', 1024), 'short');
  assert.is(fitRpcErrorText('abcdef', 3), 'abc');
  assert.is(fitRpcErrorText('a€b', 3), 'a'); // € is 3 bytes: it does not fit after "a"
  assert.is(fitRpcErrorText('a€b', 4), 'a€');
  assert.is(fitRpcErrorText('é😀x', 5), 'é'); // 😀 is 4 bytes, never split in half
  assert.is(fitRpcErrorText('é😀x', 6), 'é😀');
  assert.is(fitRpcErrorText('x\ud800y', 1024), 'x\ufffdy');
  assert.is(fitRpcErrorText('anything', 0), '');
  throwsCode(() => fitRpcErrorText(5 as never, 10), ErrorCode.INVALID_VALUE);
  throwsCode(() => fitRpcErrorText('x', -1), ErrorCode.INVALID_VALUE);
  fc.assert(
    fc.property(anyTextArb(400), fc.nat({ max: 300 }), (s, max) => {
      const fitted = fitRpcErrorText(s, max);
      assert.ok(Buffer.byteLength(fitted, 'utf8') <= max);
      // What is kept is a prefix of the well-formed text, and as long as fits.
      const whole = (s as unknown as { toWellFormed(): string }).toWellFormed();
      assert.ok(whole.startsWith(fitted));
      if (fitted.length < whole.length) {
        const next = whole.codePointAt(fitted.length)!;
        assert.ok(Buffer.byteLength(fitted + String.fromCodePoint(next), 'utf8') > max);
      }
      // It can always be sent as a message when max is the limit.
      if (max <= RPC_MAX_ERROR_MESSAGE_BYTES) {
        const env: RpcEnvelope = { kind: 'error', callId: 1, code: 'X', message: fitted };
        assert.equal(decodeRpcEnvelope(encodeRpcEnvelope(env)), env);
      }
    }),
    { numRuns: 400 },
  );
});

test('an envelope travels as the value of an LTV frame: header and payload queued apart decode as one', () => {
  const encoder = new LtvEncoder({ layout: 'netloop', copyThreshold: 0 });
  const RPC_FRAME_TYPE = 0xfff0;
  const payload = Buffer.alloc(3000, 7);
  const request: RpcEnvelope = { kind: 'request', callId: 42, type: 17, payload };
  const header = encodeRpcEnvelopeHeader(request);
  const queued: Uint8Array[] = [];
  const sink = { appendToOutputBuffer: (d: Uint8Array): boolean => (queued.push(d), true) };
  // The frame header, the envelope header, then the payload as it is (uncopied).
  assert.ok(sink.appendToOutputBuffer(encoder.header(RPC_FRAME_TYPE, header.length + payload.length)));
  encoder.encodeTo(sink, RPC_FRAME_TYPE, encodeRpcEnvelope({ kind: 'cancel', callId: 41 }));
  queued.splice(1, 0, header, payload);
  assert.is(queued[2], payload);
  const h = new Harness({ layout: 'netloop' }).feedAll([Buffer.concat(queued)]);
  assert.is(h.error, null);
  assert.is(h.frames.length, 2);
  const first = decodeRpcEnvelope(h.values[0]!);
  assert.equal(plain(first), plain(request));
  assert.equal(decodeRpcEnvelope(h.values[1]!), { kind: 'cancel', callId: 41 });
});

test.run();
