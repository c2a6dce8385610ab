import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import { ErrorCode } from '../../../lib/core/errors.js';
import { SERIALIZERS, isSerializer, jsonSerializer, rawSerializer, utf8Serializer } from '../../../lib/codec/serializers.js';
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

test.run();
