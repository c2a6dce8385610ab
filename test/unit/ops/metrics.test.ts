/**
 * registerNetloopMetrics in prom-client's own Registry: registration, both
 * output formats, JSON, unregistering, label cardinality, options; and the
 * library loading without prom-client or pino.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import { ErrorCode } from '../../../lib/core/errors.js';
import { registerNetloopMetrics } from '../../../lib/ops/metrics.js';
import { OpsSampler, boundTypes } from '../../../lib/ops/snapshot.js';
import { reactorSource } from '../../../lib/ops/sources.js';
import type { FrameTypeCount, FramingSource } from '../../../lib/ops/sources.js';
import { parseExposition, valueOf } from '../../helpers/prom-text.js';
import { throwsCode } from '../../helpers/ltv.js';

/** A framing source with `n` types (the interface the framing layer will implement, see sources.ts). */
function typesSource(n: number): FramingSource {
  const counts: FrameTypeCount[] = [];
  for (let i = 0; i < n; i++) counts.push({ name: `T${i}`, received: 1000 - i, sent: i === 0 ? 0 : 1 });
  return { framesByType: () => counts };
}

test('registered in a prom-client Registry: Prometheus and OpenMetrics output, JSON, and unregister', async () => {
  const loop = new EventLoop();
  const reactor = reactorSource(loop);
  const registry = new Registry();
  const metrics = registerNetloopMetrics(registry, { reactor });
  try {
    assert.ok(metrics.names.includes('netloop_connections_open'));
    const m = parseExposition(await registry.metrics());
    assert.is(valueOf(m, 'netloop_connections_open', { server: 'loop' }), 0);
    const json = await registry.getMetricsAsJSON();
    assert.ok(json.some((j) => j.name === 'netloop_connections_accepted_total' && j.values[0]?.value === 0));
    // prom-client's types declare no constructor argument; its constructor takes the content type.
    const open = new (Registry as unknown as new (contentType: string) => Registry)(Registry.OPENMETRICS_CONTENT_TYPE);
    registerNetloopMetrics(open, { reactor });
    const om = await open.metrics();
    assert.match(om, /^# TYPE netloop_connections_accepted counter$/m, 'OpenMetrics names the counter family without _total');
    assert.match(om, /^netloop_connections_accepted_total 0$/m);
    assert.match(om, /# EOF\n$/);
    metrics.unregister();
    metrics.unregister();
    assert.is(await registry.metrics(), '\n', 'nothing left after unregister');
    registry.resetMetrics();
  } finally {
    reactor.close();
    await loop.close();
  }
});

test('a name already registered throws, and nothing is left half-registered', () => {
  const loop = new EventLoop();
  const reactor = reactorSource(loop);
  const registry = new Registry();
  registerNetloopMetrics(registry, { reactor }, { prefix: 'a_' });
  const before = registry.getMetricsAsArray().length;
  assert.throws(() => registerNetloopMetrics(registry, { reactor }, { prefix: 'a_' }));
  assert.is(registry.getMetricsAsArray().length, before);
  reactor.close();
  void loop.close();
});

test('label cardinality: frames by type name at most maxFrameTypes types (the most frequent), the rest summed as other', async () => {
  const registry = new Registry();
  registerNetloopMetrics(registry, { framing: [typesSource(50)] }, { maxFrameTypes: 5 });
  const m = parseExposition(await registry.metrics());
  const received = m.get('netloop_received_frames_by_type_total')!.samples;
  assert.equal(
    received.map((s) => s.labels['type']),
    ['T0', 'T1', 'T2', 'T3', 'T4', 'other'],
  );
  let other = 0;
  for (let i = 5; i < 50; i++) other += 1000 - i;
  assert.is(valueOf(m, 'netloop_received_frames_by_type_total', { type: 'other' }), other);
  assert.is(m.get('netloop_sent_frames_by_type_total')!.samples.length, 6);
  assert.equal(boundTypes([{ name: 'a', frames: 0 }], 3), [], 'types never seen are not reported');
});

test('close reasons and limit names outside the known lists are reported as other', async () => {
  const registry = new Registry();
  const reactor = {
    counters: () => ({
      accepted: 0, connected: 0, dropped: 0, tlsErrors: 0,
      closed: { reset: 2, 'made-up': 1 },
      bytesIn: undefined, bytesOut: undefined, framesIn: undefined, framesOut: undefined, inboundPauses: undefined,
      limits: { 'output-limit': 1, 'new-limit': 4, 'another': 1 },
      handlerErrors: 0,
    }),
    servers: () => [],
    forEachClient: () => undefined,
    recentCloses: () => [],
  };
  registerNetloopMetrics(registry, { reactor });
  const m = parseExposition(await registry.metrics());
  assert.is(valueOf(m, 'netloop_connections_closed_total', { reason: 'other' }), 1);
  assert.is(valueOf(m, 'netloop_limit_hits_total', { limit: 'other' }), 5);
  assert.equal(m.get('netloop_received_bytes_total')!.samples, [], 'a counter the reactor does not keep has no sample');
});

test('options and arguments: NETLOOP_INVALID_OPTION for a bad registry, prefix, bucket list or bound', () => {
  throwsCode(() => registerNetloopMetrics({} as Registry, {}), ErrorCode.INVALID_OPTION);
  throwsCode(() => registerNetloopMetrics(new Registry(), {}, { prefix: '1x' }), ErrorCode.INVALID_OPTION);
  throwsCode(() => registerNetloopMetrics(new Registry(), {}, { queueBuckets: [] }), ErrorCode.INVALID_OPTION);
  throwsCode(() => registerNetloopMetrics(new Registry(), {}, { queueBuckets: [1, Number.NaN] }), ErrorCode.INVALID_OPTION);
  throwsCode(() => registerNetloopMetrics(new Registry(), {}, { maxFrameTypes: 0 }), ErrorCode.INVALID_OPTION);
  throwsCode(() => registerNetloopMetrics(new Registry(), {}, { maxFrameTypes: 1_000 }), ErrorCode.INVALID_OPTION);
  throwsCode(() => new OpsSampler(null as unknown as object), ErrorCode.INVALID_OPTION);
});

test('one reading per scrape: every metric of a scrape shares the reading in progress', async () => {
  let reads = 0;
  const registry = new Registry();
  const reactor = {
    counters: () => {
      reads++;
      return { accepted: reads, connected: 0, dropped: 0, tlsErrors: 0, closed: {}, bytesIn: 0, bytesOut: 0, framesIn: 0, framesOut: 0, inboundPauses: 0, limits: {}, handlerErrors: 0 };
    },
    servers: () => [],
    forEachClient: () => undefined,
    recentCloses: () => [],
  };
  registerNetloopMetrics(registry, { reactor });
  await registry.metrics();
  assert.is(reads, 1);
  const m = parseExposition(await registry.metrics());
  assert.is(reads, 2, 'a second scrape reads again');
  assert.is(valueOf(m, 'netloop_connections_accepted_total'), 2);
});

test('the library loads without prom-client, pino or puppeteer-core: no static import of them in the built library', () => {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../lib');
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(dir, e.name));
      else if (e.name.endsWith('.js')) files.push(path.join(dir, e.name));
    }
  };
  walk(root);
  assert.ok(files.length > 20);
  for (const f of files) {
    // Code lines only: comments may show how an application imports them.
    const code = fs
      .readFileSync(f, 'utf8')
      .split('\n')
      .filter((l) => !/^\s*(\*|\/\/|\/\*)/.test(l))
      .join('\n');
    assert.not.match(code, /(from|import\()\s*['"](prom-client|pino|puppeteer-core)['"]/, `${path.relative(root, f)} imports an optional package statically`);
  }
});

test.run();
