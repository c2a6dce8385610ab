/**
 * The chat example (examples/chat) as operators see it: the live status
 * page of `--status-port` (its page, snapshot and metrics follow the
 * connections), and its logs: pino's JSON lines when pino is installed,
 * plain lines with `--log plain`, none with `--log none`; never a chat
 * line or a session token in them.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { createChatProtocol } from '../../../examples/chat/protocol.js';
import type { Welcome } from '../../../examples/chat/protocol.js';
import { ChatRig, acceptedId } from '../../helpers/chat.js';
import { parseLogLine, waitForLog } from '../../helpers/log-lines.js';
import type { LogRecord } from '../../helpers/log-lines.js';
import { until } from '../../helpers/net.js';

const rig = new ChatRig();
test.after.each(() => rig.cleanup());

/** True when pino resolves from here (a devDependency of the repository): `--log auto` then picks it. */
async function pinoInstalled(): Promise<boolean> {
  const name = 'pino';
  return import(name).then(
    () => true,
    () => false,
  );
}

interface Snapshot {
  reactor: { servers: Array<{ name: string; open: number }>; counters: { accepted: number } };
  sessions: { local: number };
  stores: Array<{ name: string; up: boolean }>;
}

test('--status-port: the status page, its snapshot and /metrics on loopback follow the connections', async () => {
  const { port, handle: srv } = await rig.server(['--status-port', '0', '--log', 'plain']);
  const line = await srv.waitForLine(/^status page on /, 5_000, 'the status page line');
  const url = /^status page on (http:\/\/127\.0\.0\.1:\d+\/) \(Prometheus metrics on (\S+)\)$/.exec(line);
  assert.ok(url !== null, line);
  const [, page, metrics] = url;
  assert.is(metrics, `${page!}metrics`);

  const html = await fetch(page!);
  assert.is(html.status, 200);
  assert.match(html.headers.get('content-type') ?? '', /^text\/html/);
  assert.match(await html.text(), /<title>netloop chat · status<\/title>/);

  const snapshot = async (): Promise<Snapshot> => (await (await fetch(`${page!}snapshot`)).json()) as Snapshot;
  const open = async (): Promise<number | undefined> => (await snapshot()).reactor.servers.find((s) => s.name === 'chat')?.open;
  assert.is(await open(), 0);
  const a = await rig.peer(port);
  const b = await rig.peer(port);
  await acceptedId(srv, a);
  await acceptedId(srv, b);
  const s = await snapshot();
  assert.equal(s.reactor.servers, [{ name: 'chat', open: 2 }]);
  assert.is(s.reactor.counters.accepted, 2);
  assert.ok(s.stores.length === 1 && s.stores[0]!.name === 'sessions' && s.stores[0]!.up, JSON.stringify(s.stores));
  const text = await (await fetch(metrics!)).text();
  assert.match(text, /^netloop_connections_open\{server="chat"\} 2$/m);
  assert.match(text, /^netloop_connections_accepted_total 2$/m);

  a.destroy();
  await waitForLog(srv, { event: 'close', reason: /^(peer-closed|reset)$/ }, 5_000, 'the close of the first peer');
  assert.is(await open(), 1);
});

test('logs: pino when installed (else plain lines), plain with --log plain, none with --log none; never a chat line or a token', async () => {
  const p = createChatProtocol();
  const CONTENT = 'a line that must stay out of the logs';
  /** Runs a server with `args`, chats one line with a session, stops it; every line it printed. */
  const run = async (args: string[]): Promise<{ ready: string; printed: string[]; records: LogRecord[] }> => {
    const { port, handle, ready } = await rig.server(args);
    const peer = await rig.peer(port);
    peer.socket.write(p.frame(p.Hello, { name: 'ann', token: '' }));
    await until(() => peer.frames.length >= 1, 'the welcome');
    const welcome = p.registry.decode(peer.frames[0]!.type, peer.frames[0]!.value).payload as Welcome;
    peer.say(CONTENT);
    await peer.waitAcks(1);
    peer.destroy();
    handle.child.kill('SIGTERM');
    const printed: string[] = [];
    await handle.waitForLine((l) => printed.push(l) > 0 && l === 'stopped', 10_000, "'stopped'");
    const records = printed.map(parseLogLine).filter((r) => r !== null);
    for (const l of printed) {
      assert.not.ok(l.includes(welcome.token) || l.includes(welcome.token.slice(-20)), `no token in: ${l}`);
      assert.not.ok(l.includes(CONTENT), `no chat line in: ${l}`);
    }
    return { ready, printed, records };
  };

  const auto = await run([]);
  const form = (await pinoInstalled()) ? 'json' : 'plain';
  assert.ok(auto.records.length >= 3, auto.printed.join('\n'));
  assert.ok(auto.records.every((r) => r.form === form), `every log line is ${form}: ${auto.printed.join('\n')}`);
  const events = auto.records.map((r) => r['event']);
  for (const e of ['accept', 'hello', 'close']) assert.ok(events.includes(e), `a ${e} line: ${events.join(' ')}`);
  if (form === 'json') assert.ok(auto.records.every((r) => r['name'] === 'chat' && typeof r['pid'] === 'number'), "pino's own fields");
  assert.match(auto.ready, /^netloop chat server listening on 127\.0\.0\.1:\d+ \(sessions: memory\)$/, 'the listening line stays as it was');
  assert.ok(auto.printed.some((l) => l.startsWith('connect a client:  npm run chat -- --port ')), 'and so do the lines for the user');

  const plain = await run(['--log', 'plain']);
  assert.ok(plain.records.length >= 3 && plain.records.every((r) => r.form === 'plain'), plain.printed.join('\n'));
  const hello = plain.records.find((r) => r['event'] === 'hello')!;
  assert.is(hello.level, 'info');
  assert.is(hello['userName'], 'ann');
  assert.is(hello['resumed'], 'false');

  const none = await run(['--log', 'none']);
  assert.equal(none.records, [], none.printed.join('\n'));
  assert.ok(none.printed.at(-1) === 'stopped' && none.printed.some((l) => l.startsWith('stopping: ')), none.printed.join('\n'));
});

test.run();
