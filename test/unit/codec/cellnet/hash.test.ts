import { test } from '../../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import { ErrorCode } from '../../../../lib/core/errors.js';
import { cellnetStringHash } from '../../../../lib/codec/cellnet/hash.js';
import { anyTextArb, throwsCode } from '../../../helpers/ltv.js';

// Reference values computed with cellnet's own Go `util.StringHash`.
const GOLDEN: Array<[string, number]> = [
  ['proto.ChatREQ', 16234],
  ['proto.ChatACK', 43601],
  ['main.TestEchoACK', 4673],
  ['cellnet.SessionAccepted', 43922],
  ['gamedef.PingACK', 10324],
  ['', 0],
  ['a', 12513],
  ['中文.消息', 59385],
  ['emoji😀x', 28652],
  // Go reads the invalid bytes FF FE as two U+FFFD; a lone surrogate is sent as U+FFFD.
  ['\ufffd\ufffdab', 55677],
  ['\ud800\udfffab'.slice(1, 2) + '\ud800ab'.slice(0, 1) + 'ab', 55677],
];

test('matches cellnet util.StringHash on reference names', () => {
  for (const [name, id] of GOLDEN) assert.is(cellnetStringHash(name), id, JSON.stringify(name));
});

test('always a 16-bit unsigned integer', () => {
  fc.assert(
    fc.property(anyTextArb(), (s) => {
      const h = cellnetStringHash(s);
      assert.ok(Number.isInteger(h) && h >= 0 && h <= 0xffff);
    }),
    { numRuns: 300 },
  );
  throwsCode(() => cellnetStringHash(5 as never), ErrorCode.INVALID_VALUE);
});

test.run();
