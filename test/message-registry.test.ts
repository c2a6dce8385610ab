import { test } from './helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import { ErrorCode } from '../lib/errors.js';
import { LtvDecoder } from '../lib/ltv-decoder.js';
import { LtvEncoder } from '../lib/ltv-encoder.js';
import { MessageRegistry } from '../lib/message-registry.js';
import type { Serializer } from '../lib/serializers.js';
import { cellnetStringHash } from '../lib/cellnet-hash.js';
import { throwsCode } from './helpers/ltv.js';

test('register by id and name; look up by either; built-in serializers', () => {
  const r = new MessageRegistry();
  const raw = r.register(1, 'raw');
  const text = r.register(2, 'text', 'utf8');
  const json = r.register(3, 'json', 'json');
  assert.is(r.size, 3);
  assert.is(r.get(1), raw);
  assert.is(r.get('text'), text);
  assert.is(r.get(json), json);
  assert.is(r.get(99), undefined);
  assert.is(r.get('nope'), undefined);
  assert.is(r.get({ id: 1, name: 'raw', serializer: raw.serializer }), undefined);
  assert.equal([...r.types()].map((t) => t.name), ['raw', 'text', 'json']);
  assert.is(r.isKnownType(2), true);
  assert.is(r.isKnownType(4), false);

  const e = r.encode('json', { a: [1, 'x'] });
  assert.is(e.id, 3);
  assert.equal(r.decode(3, Buffer.from(e.value)), { id: 3, type: json, payload: { a: [1, 'x'] } });
  assert.equal(r.decode(2, Buffer.from('héllo')).payload, 'héllo');
  const bytes = Buffer.from([1, 2, 3]);
  assert.is(r.decode(1, bytes).payload, bytes);
  assert.is(r.encode(raw, bytes).value, bytes);
});

test('a duplicate id or name is DUPLICATE_TYPE and leaves the registry unchanged', () => {
  const r = new MessageRegistry();
  r.register(1, 'a');
  const byId = throwsCode(() => r.register(1, 'b'), ErrorCode.DUPLICATE_TYPE);
  assert.equal(byId.details, { id: 1, name: 'b', existing: { id: 1, name: 'a' } });
  const byName = throwsCode(() => r.register(2, 'a'), ErrorCode.DUPLICATE_TYPE);
  assert.equal(byName.details, { id: 2, name: 'a', existing: { id: 1, name: 'a' } });
  assert.is(r.size, 1);
  assert.is(r.get('b'), undefined);
  assert.is(r.get(2), undefined);
});

test('cellnet ids: registerCellnet uses StringHash; a 16-bit collision is refused', () => {
  const r = new MessageRegistry();
  const req = r.registerCellnet('proto.ChatREQ', 'utf8');
  assert.is(req.id, 16234);
  assert.is(req.id, cellnetStringHash('proto.ChatREQ'));
  // Find a colliding name with fast-check (deterministic seed): 16 bits collide quickly.
  const names = fc.sample(fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 12 }), { numRuns: 5000, seed: 7 });
  const seen = new Map<number, string>();
  let pair: [string, string] | null = null;
  for (const n of names) {
    const h = cellnetStringHash(n);
    const prev = seen.get(h);
    if (prev !== undefined && prev !== n) {
      pair = [prev, n];
      break;
    }
    seen.set(h, n);
  }
  assert.ok(pair !== null, 'expected a collision among 5000 names');
  const c = new MessageRegistry();
  c.registerCellnet(pair[0]);
  throwsCode(() => c.registerCellnet(pair[1]), ErrorCode.DUPLICATE_TYPE);
  throwsCode(() => c.registerCellnet(5 as never), ErrorCode.INVALID_OPTION);
});

test('strict mode: unknown types are UNKNOWN_TYPE; lenient mode hands back the raw value', () => {
  const strict = new MessageRegistry();
  assert.is(strict.strict, true);
  const err = throwsCode(() => strict.decode(5, Buffer.alloc(1)), ErrorCode.UNKNOWN_TYPE);
  assert.equal(err.details, { type: 5 });
  throwsCode(() => strict.encode(5, Buffer.alloc(1)), ErrorCode.UNKNOWN_TYPE);
  throwsCode(() => strict.encode('x', Buffer.alloc(1)), ErrorCode.UNKNOWN_TYPE);
  throwsCode(() => strict.resolve({ id: 1, name: 'ghost', serializer: { encode: (x) => x as Uint8Array, decode: (b) => b } }), ErrorCode.UNKNOWN_TYPE);
  const lenient = new MessageRegistry({ strict: false });
  const v = Buffer.from('zz');
  assert.equal(lenient.decode(5, v), { id: 5, type: null, payload: v });
});

test('serializer failures: INVALID_VALUE on encode, BAD_PAYLOAD on decode, with the cause', () => {
  const r = new MessageRegistry();
  const boom = new Error('nope');
  const picky: Serializer<number> = {
    encode(n) {
      if (n < 0) throw boom;
      return Buffer.from([n]);
    },
    decode(b) {
      if (b.length !== 1) throw boom;
      return b[0]!;
    },
  };
  r.register(1, 'byte', picky);
  r.register(2, 'bad', { encode: () => 'not bytes' as never, decode: (b) => b });
  r.register(3, 'json', 'json');
  assert.is(r.decode(1, Buffer.from([9])).payload, 9);
  assert.is(throwsCode(() => r.encode('byte', -1), ErrorCode.INVALID_VALUE).cause, boom);
  assert.is(throwsCode(() => r.decode(1, Buffer.alloc(2)), ErrorCode.BAD_PAYLOAD).cause, boom);
  throwsCode(() => r.encode('bad', 1), ErrorCode.INVALID_VALUE);
  throwsCode(() => r.decode(3, Buffer.from('{')), ErrorCode.BAD_PAYLOAD);
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  throwsCode(() => r.encode('json', cyclic), ErrorCode.INVALID_VALUE);
  throwsCode(() => r.encode('json', undefined), ErrorCode.INVALID_VALUE);
});

test('registration arguments are validated', () => {
  const r = new MessageRegistry({ maxId: 255, maxNameLength: 4 });
  throwsCode(() => r.register(256, 'a'), ErrorCode.INVALID_OPTION);
  throwsCode(() => r.register(-1, 'a'), ErrorCode.INVALID_OPTION);
  throwsCode(() => r.register(1.5, 'a'), ErrorCode.INVALID_OPTION);
  throwsCode(() => r.register(1, ''), ErrorCode.INVALID_OPTION);
  throwsCode(() => r.register(1, 'abcde'), ErrorCode.INVALID_OPTION);
  throwsCode(() => r.register(1, 'a', 'xml' as never), ErrorCode.INVALID_OPTION);
  throwsCode(() => r.register(1, 'a', { encode: 1 } as never), ErrorCode.INVALID_OPTION);
  throwsCode(() => new MessageRegistry({ maxId: 2 ** 32 }), ErrorCode.INVALID_OPTION);
  throwsCode(() => new MessageRegistry({ strict: 'yes' as never }), ErrorCode.INVALID_OPTION);
  assert.is(r.size, 0);
});

test('end to end: registry + encoder + decoder with isKnownType', () => {
  const r = new MessageRegistry();
  r.register(10, 'chat', 'utf8');
  r.register(11, 'move', 'json');
  const enc = new LtvEncoder({ layout: 'cellnet' });
  const pieces: Uint8Array[] = [];
  const sink = { appendToOutputBuffer: (d: Uint8Array) => (pieces.push(d), true) };
  r.encodeTo(enc, sink, 'chat', 'hello');
  r.encodeTo(enc, sink, 11, { x: 1 });
  const got: unknown[] = [];
  const dec = new LtvDecoder({
    layout: 'cellnet',
    isKnownType: r.isKnownType,
    onFrame: (type, value) => got.push(r.decode(type, value).payload),
  });
  for (const b of Buffer.concat(pieces)) dec.feed(Buffer.from([b]));
  assert.equal(got, ['hello', { x: 1 }]);
});

test.run();
