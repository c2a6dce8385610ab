import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import { inspect } from 'node:util';
import { ErrorCode } from '../../../lib/core/errors.js';
import { LtvDecoder } from '../../../lib/codec/ltv-decoder.js';
import { LtvEncoder } from '../../../lib/codec/ltv-encoder.js';
import { MessageRegistry } from '../../../lib/codec/message-registry.js';
import { json, utf8 } from '../../../lib/codec/serializers.js';
import type { Serializer } from '../../../lib/codec/serializers.js';
import { cellnetStringHash } from '../../../lib/codec/cellnet/hash.js';
import { CELLNET_CHAT_NAMES, CellnetBinaryWriter, cellnetChatREQ } from '../../../lib/codec/cellnet/binary.js';
import { throwsCode } from '../../helpers/ltv.js';

test('register by id and name, chained; look up by either; built-in serializers', () => {
  const r = new MessageRegistry().register(1, 'raw').register(2, 'text', utf8()).register(3, 'json', json<{ a: Array<number | string> }>());
  const raw = r.resolve('raw');
  const text = r.resolve('text');
  const json3 = r.resolve('json');
  assert.is(r.size, 3);
  assert.is(r.get(1), raw);
  assert.is(r.get('text'), text);
  assert.is(r.get(json3), json3);
  assert.is(r.get(99), undefined);
  assert.is(r.get('nope'), undefined);
  assert.is(r.get({ id: 1, name: 'raw', serializer: raw.serializer }), undefined);
  assert.equal([...r.types()].map((t) => t.name), ['raw', 'text', 'json']);
  assert.is(r.isKnownType(2), true);
  assert.is(r.isKnownType(4), false);

  const e = r.encode('json', { a: [1, 'x'] });
  assert.is(e.id, 3);
  assert.equal(r.decode(3, Buffer.from(e.value)), { id: 3, type: json3, payload: { a: [1, 'x'] } });
  assert.equal(r.decode(2, Buffer.from('héllo')).payload, 'héllo');
  const bytes = Buffer.from([1, 2, 3]);
  assert.is(r.decode(1, bytes).payload, bytes);
  assert.is(r.encode(raw, bytes).value, bytes);
});

test('the deprecated serializer names still register: raw (the default), utf8 and json', () => {
  const r = new MessageRegistry().register(1, 'a').register(2, 'b', 'utf8').register(3, 'c', 'json');
  const bytes = Buffer.from([7]);
  assert.is(r.decode(1, bytes).payload, bytes);
  assert.is(r.decode(2, Buffer.from('hé')).payload, 'hé');
  assert.equal(r.decode(3, Buffer.from('[1]')).payload, [1]);
  throwsCode(() => r.register(4, 'd', 'yaml' as never), ErrorCode.INVALID_OPTION);
  throwsCode(() => r.register(4, 'd', { encode: 1 } as never), ErrorCode.INVALID_OPTION);
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
  const req = r.registerCellnet('proto.ChatREQ', utf8()).resolve('proto.ChatREQ');
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

test('serializer failures: INVALID_VALUE on encode, BAD_PAYLOAD on decode, with the cause (withheld on decode)', () => {
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
  // On decode the serializer's own error is not the cause: its message might quote the value.
  const cause = throwsCode(() => r.decode(1, Buffer.alloc(2)), ErrorCode.BAD_PAYLOAD).cause as Error;
  assert.instance(cause, Error);
  assert.is.not(cause, boom);
  assert.not.match(cause.message, 'nope');
  throwsCode(() => r.encode('bad', 1), ErrorCode.INVALID_VALUE);
  throwsCode(() => r.decode(3, Buffer.from('{')), ErrorCode.BAD_PAYLOAD);
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  throwsCode(() => r.encode('json', cyclic), ErrorCode.INVALID_VALUE);
  throwsCode(() => r.encode('json', undefined), ErrorCode.INVALID_VALUE);
});

test("BAD_PAYLOAD says which type, how long and where, never what the peer sent", () => {
  // A marker no error text could contain by chance: if any part of an error
  // (message, stack, details, cause chain) repeats the peer's bytes, it shows.
  const MARK = 'PEERBYTES-7f3a';
  const r = new MessageRegistry();
  r.register(1, 'json', 'json');
  r.register(2, 'quoting', {
    encode: (s: string) => Buffer.from(s),
    // A user's serializer that quotes its input, over several lines (as parsers do).
    decode: (b: Buffer) => {
      throw new TypeError(`cannot read\n${b.toString()}\n    at fake (${b.toString()}:1:1)`);
    },
  });
  r.register(3, 'throws-a-string', { encode: (s: string) => Buffer.from(s), decode: (b: Buffer) => { throw `bad ${b.toString()}`; } });
  r.registerCellnet(CELLNET_CHAT_NAMES.REQ, cellnetChatREQ);
  const reqId = cellnetStringHash(CELLNET_CHAT_NAMES.REQ);
  const cases: Array<[number, Buffer, number | undefined]> = [
    // JSON.parse quotes these ("Unexpected token ..., "..." is not valid JSON").
    [1, Buffer.from(`{"${MARK}": }`), undefined],
    [1, Buffer.from(MARK), undefined],
    [1, Buffer.from(`[1, 2, ${MARK.repeat(20)}]`), undefined],
    // A position is given only by the end of the message: quoted text cannot pose as one.
    [1, Buffer.from(`${MARK} in JSON at position 3`), undefined],
    // These it reports by position: the offset in bytes, after a two-byte character.
    [1, Buffer.from(`{"é":1}${MARK}`), 8],
    [1, Buffer.from(`{"k":"${MARK}" x}`), 22],
    [1, Buffer.from(`"${MARK}`), 15],
    [2, Buffer.from(MARK), undefined],
    [3, Buffer.from(MARK), undefined],
    // cellnet's binary reader: a string that claims 300 bytes, 14 there (from offset 2); trailing bytes.
    [reqId, Buffer.concat([Buffer.from([44, 1]), Buffer.from(MARK)]), 2],
    [reqId, Buffer.concat([new CellnetBinaryWriter().string(MARK).finish(), Buffer.from(MARK)]), undefined],
  ];
  for (const [id, value, offset] of cases) {
    const err = throwsCode(() => r.decode(id, value), ErrorCode.BAD_PAYLOAD) as unknown as Error & { details: Record<string, unknown> };
    const everything = inspect(err, { depth: 20, showHidden: true });
    assert.not.ok(everything.includes(MARK), `the peer's bytes in ${everything}`);
    assert.not.ok(everything.includes(MARK.slice(0, 9)), `a part of the peer's bytes in ${everything}`);
    assert.is(err.details['id'], id);
    assert.is(err.details['length'], value.length);
    assert.is(typeof err.details['type'], 'string');
    assert.is(typeof err.details['error'], 'string');
    assert.is(err.details['offset'], offset, `offset for ${id}`);
  }
  // The JSON failure keeps the parser's class, not its message.
  const json = throwsCode(() => r.decode(1, Buffer.from(`{"${MARK}": }`)), ErrorCode.BAD_PAYLOAD);
  assert.is(json.details['error'], 'SyntaxError');
  assert.is((json.cause as { code?: string }).code, ErrorCode.BAD_PAYLOAD);
  // A user's error keeps its class name and where it was thrown (its stack frames), not its message.
  const quoted = throwsCode(() => r.decode(2, Buffer.from(MARK)), ErrorCode.BAD_PAYLOAD);
  assert.is(quoted.details['error'], 'TypeError');
  const stack = String((quoted.cause as Error).stack);
  assert.match(stack, /TypeError/);
  assert.match(stack, /message-registry\.test\.js/);
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
