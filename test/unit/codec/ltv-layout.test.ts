import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import { ErrorCode } from '../../../lib/core/errors.js';
import { DEFAULT_MAX_FRAME_LENGTH, LTV_PRESETS, ltvLayout, readUint, writeUint } from '../../../lib/codec/ltv-layout.js';
import { throwsCode } from '../../helpers/ltv.js';

test('netloop is the default layout: uint32 BE length of the value, uint16 BE type, 16 MiB frames', () => {
  const l = ltvLayout();
  assert.equal(
    { ...l },
    {
      lengthBytes: 4,
      typeBytes: 2,
      byteOrder: 'BE',
      fieldOrder: 'length-type',
      lengthIncludesType: false,
      lengthIncludesLength: false,
      maxFrameLength: DEFAULT_MAX_FRAME_LENGTH,
      headerBytes: 6,
      lengthOffset: 0,
      typeOffset: 4,
      adjustment: 0,
      maxDeclared: DEFAULT_MAX_FRAME_LENGTH - 6,
      maxValueLength: DEFAULT_MAX_FRAME_LENGTH - 6,
      maxType: 0xffff,
    },
  );
  assert.ok(Object.isFrozen(l));
  assert.is(ltvLayout(l), l);
});

test('cellnet: uint16 LE length counting the type, uint16 LE type; values up to 65,533 bytes', () => {
  const l = ltvLayout('cellnet');
  assert.is(l.byteOrder, 'LE');
  assert.is(l.adjustment, 2);
  assert.is(l.maxDeclared, 0xffff);
  assert.is(l.maxValueLength, 65533);
  assert.is(l.maxFrameLength, 65537);
  // The field cannot express more.
  throwsCode(() => ltvLayout({ preset: 'cellnet', maxFrameLength: 65538 }), ErrorCode.INVALID_OPTION);
  assert.is(ltvLayout({ preset: 'cellnet', maxFrameLength: 4096 }).maxValueLength, 4092);
});

test('muduo: int32 BE length, no type, lengths up to 65,536 as muduo accepts', () => {
  const l = ltvLayout('muduo');
  assert.is(l.headerBytes, 4);
  assert.is(l.typeBytes, 0);
  assert.is(l.maxType, 0);
  assert.is(l.maxDeclared, 65536);
});

test('pomelo: uint8 type, then uint24 BE length', () => {
  const l = ltvLayout('pomelo');
  assert.is(l.typeOffset, 0);
  assert.is(l.lengthOffset, 1);
  assert.is(l.maxValueLength, 0xffffff);
  assert.equal(Object.keys(LTV_PRESETS).sort(), ['cellnet', 'muduo', 'netloop', 'pomelo']);
});

test('a custom layout gets a default limited by its length field; overrides apply over a preset', () => {
  assert.is(ltvLayout({ lengthBytes: 1, typeBytes: 0 }).maxFrameLength, 256);
  assert.is(ltvLayout({ lengthBytes: 1, typeBytes: 1, lengthIncludesLength: true, lengthIncludesType: true }).maxFrameLength, 255);
  assert.is(ltvLayout({ lengthBytes: 3 }).maxFrameLength, DEFAULT_MAX_FRAME_LENGTH);
  assert.is(ltvLayout({ lengthBytes: 3, maxFrameLength: 0xffffff + 5 }).maxValueLength, 0xffffff);
  const l = ltvLayout({ preset: 'cellnet', byteOrder: 'BE' });
  assert.is(l.lengthIncludesType, true);
  assert.is(l.byteOrder, 'BE');
  assert.is(ltvLayout({ maxFrameLength: 0xffffffff + 6 }).maxValueLength, 0xffffffff);
});

test('bad options are INVALID_OPTION', () => {
  for (const bad of [
    { lengthBytes: 0 },
    { lengthBytes: 8 },
    { typeBytes: 3 },
    { byteOrder: 'le' },
    { fieldOrder: 'x' },
    { lengthIncludesType: 1 },
    { lengthIncludesLength: 'yes' },
    { preset: 'nope' },
    { preset: 'constructor' },
    { maxFrameLength: 5 },
    { maxFrameLength: 1.5 },
    { maxFrameLength: Number.NaN },
    { maxFrameLength: 0xffffffff + 7 },
  ]) {
    throwsCode(() => ltvLayout(bad as never), ErrorCode.INVALID_OPTION);
  }
  throwsCode(() => ltvLayout(null as never), ErrorCode.INVALID_OPTION);
  throwsCode(() => ltvLayout('nope' as never), ErrorCode.INVALID_OPTION);
});

test('readUint never reads a negative number; writeUint round-trips every width and order', () => {
  assert.is(readUint(Buffer.from([0x80, 0, 0, 0]), 0, 4, false), 0x80000000);
  assert.is(readUint(Buffer.from([0, 0, 0, 0x80]), 0, 4, true), 0x80000000);
  assert.is(readUint(Buffer.from([0xff, 0xff, 0xff, 0xff]), 0, 4, true), 0xffffffff);
  assert.is(readUint(Buffer.from([1]), 0, 0, true), 0);
  fc.assert(
    fc.property(fc.constantFrom(1, 2, 3, 4), fc.boolean(), fc.nat({ max: 0xffffffff }), (width, le, n) => {
      const v = n % 2 ** (8 * width);
      const b = Buffer.alloc(6);
      writeUint(b, 1, width, le, v);
      assert.is(readUint(b, 1, width, le), v);
      const node = le ? b.readUIntLE(1, width) : b.readUIntBE(1, width);
      assert.is(node, v);
    }),
    { numRuns: 200 },
  );
});

test.run();
