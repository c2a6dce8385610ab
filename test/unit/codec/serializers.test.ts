import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import { ErrorCode } from '../../../lib/core/errors.js';
import { SERIALIZERS, isSerializer, json, jsonSerializer, raw, rawSerializer, utf8, utf8Serializer } from '../../../lib/codec/serializers.js';
import { throwsCode } from '../../helpers/ltv.js';

test('raw passes bytes through; refuses anything else', () => {
  const b = Buffer.from([1, 2]);
  assert.is(rawSerializer.encode(b), b);
  assert.is(rawSerializer.decode(b), b);
  throwsCode(() => rawSerializer.encode('x' as never), ErrorCode.INVALID_VALUE);
});

test('utf8 round-trips every string of well-formed code points', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme' }), (s) => {
      assert.is(utf8Serializer.decode(Buffer.from(utf8Serializer.encode(s))), s);
    }),
    { numRuns: 200 },
  );
  throwsCode(() => utf8Serializer.encode(5 as never), ErrorCode.INVALID_VALUE);
  assert.is(utf8Serializer.decode(Buffer.from([0xff])), '\ufffd');
});

test('json round-trips JSON values and refuses what JSON cannot hold', () => {
  fc.assert(
    fc.property(fc.jsonValue(), (v) => {
      assert.equal(jsonSerializer.decode(Buffer.from(jsonSerializer.encode(v))), JSON.parse(JSON.stringify(v)));
    }),
    { numRuns: 200 },
  );
  throwsCode(() => jsonSerializer.encode(() => 1), ErrorCode.INVALID_VALUE);
  throwsCode(() => jsonSerializer.encode(1n), ErrorCode.INVALID_VALUE);
  assert.throws(() => jsonSerializer.decode(Buffer.from('{')));
});

test('json decode failures are BAD_PAYLOAD with the length and offset, not the text', () => {
  const text = '{"token":"s3cr3t-value", oops}';
  const err = throwsCode(() => jsonSerializer.decode(Buffer.from(text)), ErrorCode.BAD_PAYLOAD);
  assert.equal(err.details, { serializer: 'json', length: text.length, error: 'SyntaxError', offset: text.indexOf('oops') });
  assert.is(err.cause, undefined);
  assert.not.ok((err as unknown as Error).message.includes('s3cr3t'));
  const end = throwsCode(() => jsonSerializer.decode(Buffer.from('[1,')), ErrorCode.BAD_PAYLOAD);
  assert.is(end.details['offset'], 3);
  const quoted = throwsCode(() => jsonSerializer.decode(Buffer.from('s3cr3t')), ErrorCode.BAD_PAYLOAD);
  assert.equal(quoted.details, { serializer: 'json', length: 6, error: 'SyntaxError' });
  assert.not.ok((quoted as unknown as Error).message.includes('s3cr3t'));
});

test('the named serializers and the shape check', () => {
  assert.is(SERIALIZERS.raw, rawSerializer as never);
  assert.ok(isSerializer(jsonSerializer));
  assert.not.ok(isSerializer({ encode() {} }));
  assert.not.ok(isSerializer(null));
});

test('the factories: raw() and utf8() are the built-in serializers; json<T>() without a guard too; a guard checks every decoded value', () => {
  assert.is(raw(), rawSerializer);
  assert.is(utf8(), utf8Serializer);
  assert.is(json(), jsonSerializer);
  const isPoint = (v: unknown): v is { x: number } => typeof v === 'object' && v !== null && typeof (v as { x: unknown }).x === 'number';
  const point = json({ validate: isPoint });
  assert.not.equal(point, jsonSerializer);
  assert.equal(point.decode(Buffer.from('{"x":1}')), { x: 1 });
  assert.equal(Buffer.from(point.encode({ x: 2 })).toString(), '{"x":2}');
  const refused = throwsCode(() => point.decode(Buffer.from('{"x":"s3cr3t"}')), ErrorCode.BAD_PAYLOAD);
  assert.equal(refused.details, { serializer: 'json', length: 14, error: 'validate' });
  assert.not.ok((refused as unknown as Error).message.includes('s3cr3t'));
  // Malformed JSON is refused by the parser first, as without a guard.
  assert.is(throwsCode(() => point.decode(Buffer.from('{')), ErrorCode.BAD_PAYLOAD).details['error'], 'SyntaxError');
  // A guard that throws refuses the value; only its class is kept.
  const throwing = json({
    validate: (v: unknown): v is never => {
      throw new RangeError(`bad ${JSON.stringify(v)}`);
    },
  });
  const thrown = throwsCode(() => throwing.decode(Buffer.from('"s3cr3t"')), ErrorCode.BAD_PAYLOAD);
  assert.equal(thrown.details, { serializer: 'json', length: 8, error: 'RangeError' });
  assert.is(thrown.cause, undefined);
  // A guard that returns something other than true refuses.
  assert.is(throwsCode(() => json({ validate: (() => 1) as never }).decode(Buffer.from('1')), ErrorCode.BAD_PAYLOAD).details['error'], 'validate');
  throwsCode(() => json({ validate: 'yes' as never }), ErrorCode.INVALID_OPTION);
  throwsCode(() => json(null as never), ErrorCode.INVALID_OPTION);
});

test.run();
