import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { pino } from 'pino';
import { ErrorCode } from '../../../lib/core/errors.js';
import { consoleLogger, quietLogger, tryPino } from '../../../lib/ops/logger.js';
import type { Logger } from '../../../lib/ops/logger.js';
import { throwsCode } from '../../helpers/ltv.js';

function sink(): { lines: string[]; write(s: string): void } {
  const lines: string[] = [];
  return { lines, write: (s: string) => void lines.push(s) };
}

test('consoleLogger: one plain line per call (time, level, message, bindings, fields); levels below the threshold are dropped', () => {
  const out = sink();
  const log = consoleLogger({ sink: out, level: 'info', time: () => 'T', bindings: { component: 'netloop' } });
  log.debug({ event: 'x' }, 'dropped');
  log.info({ event: 'close', clientId: 7, reason: 'output-limit', code: undefined, peer: '127.0.0.1:80' }, 'connection closed');
  log.child({ server: 'chat' }).warn({ limit: 'inbound', note: 'two words', n: null, ok: true }, 'limit hit');
  log.error({ nested: { a: 1 } });
  assert.equal(out.lines, [
    'T INFO connection closed component=netloop event=close clientId=7 reason=output-limit peer=127.0.0.1:80\n',
    'T WARN limit hit component=netloop server=chat limit=inbound note="two words" n=null ok=true\n',
    'T ERROR component=netloop nested={"a":1}\n',
  ]);
  const quiet = consoleLogger({ sink: out, level: 'silent' });
  quiet.error({}, 'nothing');
  assert.is(out.lines.length, 3);
});

test('consoleLogger: a bad level or sink is NETLOOP_INVALID_OPTION; quietLogger writes nothing and its child is itself', () => {
  throwsCode(() => consoleLogger({ level: 'loud' as 'info' }), ErrorCode.INVALID_OPTION);
  throwsCode(() => consoleLogger({ sink: {} as { write(s: string): void } }), ErrorCode.INVALID_OPTION);
  assert.is(quietLogger.child({ a: 1 }), quietLogger);
  quietLogger.info({ a: 1 }, 'x');
});

test('pino fits the Logger interface as it is (a compile-time fact, checked at run time too); tryPino loads it when installed', async () => {
  const lines: string[] = [];
  // The assignment is the check: pino's Logger is a netloop Logger without an adapter.
  const log: Logger = pino({ base: null, timestamp: false }, { write: (s: string) => void lines.push(s) });
  log.child({ component: 'netloop' }).warn({ event: 'limit', clientId: 3 }, 'limit hit');
  assert.equal(JSON.parse(lines[0]!), { level: 40, component: 'netloop', event: 'limit', clientId: 3, msg: 'limit hit' });
  const loaded = await tryPino({ level: 'silent' });
  assert.ok(loaded !== null, 'pino is a devDependency here');
  assert.type(loaded.child({ a: 1 }).info, 'function');
});

test.run();
