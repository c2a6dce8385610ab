import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { DurationHistogram, DURATION_BOUNDS } from '../../../lib/core/histogram.js';

test('observations land in the first bucket whose bound they do not exceed; the last bucket holds those above every bound', () => {
  const h = new DurationHistogram([0.01, 0.1, 1]);
  for (const s of [0, 0.01, 0.02, 0.1, 0.5, 1, 3, -2]) h.observe(s);
  const r = h.sample();
  assert.equal(r.bounds, [0.01, 0.1, 1]);
  assert.equal(r.counts, [3, 2, 2, 1]); // 0, 0.01, -2 (as 0) | 0.02, 0.1 | 0.5, 1 | 3
  assert.is(r.count, 8);
  assert.ok(Math.abs(r.sum - 4.63) < 1e-9, `sum ${r.sum}`);
});

test('a sample is a copy: later observations do not change it', () => {
  const h = new DurationHistogram();
  h.observe(0.002);
  const first = h.sample();
  h.observe(0.002);
  assert.is(first.count, 1);
  assert.is(first.counts.reduce((a, b) => a + b, 0), 1);
  assert.is(h.sample().count, 2);
  assert.is(first.bounds, DURATION_BOUNDS);
  assert.is(first.counts.length, DURATION_BOUNDS.length + 1);
});

test.run();
