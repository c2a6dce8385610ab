/**
 * The strict exposition parser the metrics tests rely on (test/helpers/prom-text.ts):
 * it reads what prom-client writes, and refuses each way of breaking the format.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ExpositionError, parseExposition, valueOf } from '../../helpers/prom-text.js';

test('reads what prom-client writes: counters, labelled gauges with escapes, histograms', async () => {
  const registry = new Registry();
  new Counter({ name: 'a_total', help: 'a counter', registers: [registry] }).inc(3);
  const g = new Gauge({ name: 'b', help: 'a gauge', labelNames: ['k'], registers: [registry] });
  g.set({ k: 'plain' }, 1.5);
  g.set({ k: 'quote " backslash \\ newline \n' }, -2);
  const h = new Histogram({ name: 'c_seconds', help: 'a histogram', buckets: [0.1, 1], registers: [registry] });
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
  const m = parseExposition(await registry.metrics());
  assert.is(valueOf(m, 'a_total'), 3);
  assert.is(m.get('a_total')!.type, 'counter');
  assert.is(valueOf(m, 'b', { k: 'quote " backslash \\ newline \n' }), -2);
  assert.is(valueOf(m, 'c_seconds_bucket', { le: '0.1' }), 1);
  assert.is(valueOf(m, 'c_seconds_bucket', { le: '1' }), 2);
  assert.is(valueOf(m, 'c_seconds_bucket', { le: '+Inf' }), 3);
  assert.is(valueOf(m, 'c_seconds_count'), 3);
  assert.is(m.get('c_seconds')!.samples.length, 5);
});

const BAD: ReadonlyArray<[string, string]> = [
  ['no final line feed', '# TYPE a gauge\na 1'],
  ['a bad metric name', '1a 1\n'],
  ['a bad label name', 'a{1x="v"} 1\n'],
  ['an unquoted label value', 'a{x=v} 1\n'],
  ['an unterminated label value', 'a{x="v} 1\n'],
  ['a bad escape', 'a{x="\\t"} 1\n'],
  ['a label twice', 'a{x="1",x="2"} 1\n'],
  ['a bad value', 'a 1,5\n'],
  ['no value', 'a\n'],
  ['a bad timestamp', 'a 1 soon\n'],
  ['two spaces', 'a  1\n'],
  ['TYPE twice', '# TYPE a gauge\n# TYPE a gauge\na 1\n'],
  ['TYPE after samples', 'a 1\n# TYPE a gauge\n'],
  ['an unknown type', '# TYPE a meter\na 1\n'],
  ['HELP twice', '# HELP a x\n# HELP a y\na 1\n'],
  ['a series twice', 'a{x="1"} 1\na{x="1"} 2\n'],
  ['an interleaved family', 'a 1\nb 1\na{x="1"} 1\n'],
  ['a negative counter', '# TYPE a_total counter\na_total -1\n'],
  ['a bucket without le', '# TYPE h histogram\nh_bucket 1\nh_sum 1\nh_count 1\n'],
  ['buckets that decrease', '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'],
  ['no +Inf bucket', '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n'],
  ['+Inf bucket != count', '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n'],
  ['no _sum', '# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_count 1\n'],
];

for (const [what, text] of BAD) {
  test(`refuses ${what}`, () => {
    assert.throws(() => parseExposition(text), (e: unknown) => e instanceof ExpositionError);
  });
}

test('accepts comments, blank lines, timestamps, NaN and infinities in gauges', () => {
  const m = parseExposition('# a comment\n\n# TYPE g gauge\ng{a="1"} NaN 1700000000000\ng{a="2"} -Inf\ng{a="3"} 1e-3\n');
  assert.ok(Number.isNaN(valueOf(m, 'g', { a: '1' })));
  assert.is(valueOf(m, 'g', { a: '2' }), Number.NEGATIVE_INFINITY);
  assert.is(valueOf(m, 'g', { a: '3' }), 0.001);
});

test.run();
