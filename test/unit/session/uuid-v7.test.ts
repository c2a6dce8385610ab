import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { UUID_V7_PATTERN, uuidv7, uuidv7Timestamp } from '../../../lib/session/uuid-v7.js';

// The generator is process-wide and never goes backwards, and other test files
// run in this process first with today's clock, so these tests use times that
// are later than anything an earlier file can have generated.
test('format, version and variant; timestamp round-trips', () => {
  const t = Date.UTC(2090, 0, 1, 12, 0, 0, 123);
  const id = uuidv7(t + 10_000);
  assert.match(id, UUID_V7_PATTERN);
  assert.is(uuidv7Timestamp(id), t + 10_000);
});

test('strictly increasing within one millisecond, across counter overflow, and when the clock goes back', () => {
  const base = Date.UTC(2095, 5, 1);
  let prev = uuidv7(base);
  for (let i = 0; i < 10_000; i++) {
    const id = uuidv7(base); // same millisecond: counter, then borrowed milliseconds
    assert.ok(id > prev, `${id} > ${prev}`);
    prev = id;
  }
  const back = uuidv7(base - 5_000);
  assert.ok(back > prev, 'clock going backwards keeps order');
  assert.ok(uuidv7Timestamp(back) >= base);
});

test('ids are unique across a large batch', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 50_000; i++) seen.add(uuidv7());
  assert.is(seen.size, 50_000);
});

test.run();
