/**
 * The chat example (examples/chat), its protocol and wire: the message set
 * and its ids, the command lines' parsers, cellnet's exact bytes in and out
 * of the compiled server (a child process), and the coded close of a
 * message id the chat does not know.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { NETLOOP_CHAT_NAMES, createChatProtocol } from '../../../examples/chat/protocol.js';
import type { Welcome } from '../../../examples/chat/protocol.js';
import { parseChatServerArgs } from '../../../examples/chat/args.js';
import { parseChatClientArgs } from '../../../examples/chat/client.js';
import { cellnetStringHash } from '../../../lib/codec/cellnet/hash.js';
import { ErrorCode, isNetloopError } from '../../../lib/core/errors.js';
import { ChatRig, acceptedId } from '../../helpers/chat.js';
import { waitForLog } from '../../helpers/log-lines.js';
import { until } from '../../helpers/net.js';

/** Golden bytes captured from cellnet's own chat programs. */
const GOLDEN_REQ_HELLO = '09006a3f050068656c6c6f';
const GOLDEN_ACK_HELLO_ID1 = '110051aa050068656c6c6f0100000000000000';

const rig = new ChatRig();
test.after.each(() => rig.cleanup());

test('the message set: cellnet ids, netloop ids from the same hash, no collision', () => {
  const p = createChatProtocol();
  assert.is(p.ChatREQ.id, 16234);
  assert.is(p.ChatACK.id, 43601);
  for (const name of Object.values(NETLOOP_CHAT_NAMES)) assert.is(p.registry.get(name)?.id, cellnetStringHash(name));
  assert.is(p.registry.size, 8);
  assert.is(p.frame(p.ChatREQ, { content: 'hello' }).toString('hex'), GOLDEN_REQ_HELLO);
  assert.is(p.frame(p.ChatACK, { content: 'hello', id: 1n }).toString('hex'), GOLDEN_ACK_HELLO_ID1);
  const w: Welcome = { session: 's', token: 't', id: 7n, resumed: true, heartbeatMs: 10, ttlMs: 30, pid: 42 };
  const f = p.frame(p.Welcome, w);
  assert.equal(p.registry.decode(p.Welcome.id, f.subarray(4)).payload, w);
  // A colliding name is refused by the one registry.
  try {
    p.registry.register(p.ChatACK.id, 'netloop.Other');
    assert.unreachable('a duplicate id must be refused');
  } catch (err) {
    assert.ok(isNetloopError(err, ErrorCode.DUPLICATE_TYPE));
  }
});

test("command lines: defaults are cellnet's, bad values are coded errors", () => {
  const s = parseChatServerArgs([]);
  assert.is(s.host, '127.0.0.1');
  assert.is(s.port, 18801);
  assert.is(s.store, 'memory');
  assert.is(s.statusPort, null);
  assert.is(s.log, 'auto');
  assert.is(parseChatServerArgs(['--store', 'file:x.json', '--port', '0']).store, 'file:x.json');
  assert.is(parseChatServerArgs(['--status-port=0', '--log', 'plain']).statusPort, 0);
  for (const bad of [
    ['--port', '70000'],
    ['--store', 'mysql://x'],
    ['--bogus', '1'],
    ['--port'],
    ['--port', '--host', 'h'],
    ['--log', 'loud'],
    ['--soft-output-bytes', '9', '--max-output-bytes', '8'],
    ['stray'],
  ]) {
    try {
      parseChatServerArgs(bad);
      assert.unreachable(bad.join(' '));
    } catch (err) {
      assert.ok(isNetloopError(err, ErrorCode.INVALID_OPTION), `${bad.join(' ')}: ${String(err)}`);
      assert.not.match((err as Error).message, /\n/, 'one line');
    }
  }
  assert.equal(parseChatClientArgs(['--name', 'ann', '--port', '9']), { host: '127.0.0.1', port: 9, name: 'ann', plain: false });
  try {
    parseChatClientArgs(['--port', '0']);
    assert.unreachable('port 0');
  } catch (err) {
    assert.ok(isNetloopError(err, ErrorCode.INVALID_OPTION));
  }
});

test("wire compatibility: cellnet's ChatREQ bytes in, cellnet's ChatACK bytes out", async () => {
  const { port } = await rig.server();
  const a = await rig.peer(port, true);
  a.socket.write(Buffer.from(GOLDEN_REQ_HELLO, 'hex'));
  await a.waitAcks(1);
  // The first connection of a fresh server has id 1, as cellnet's first session does.
  assert.is(Buffer.concat(a.bytes).toString('hex'), GOLDEN_ACK_HELLO_ID1);
});

test('a message id the chat does not know closes the connection with a coded reason', async () => {
  const { port, handle: srv } = await rig.server();
  const a = await rig.peer(port);
  const id = await acceptedId(srv, a);
  // type 0x0102 is no message of the chat: the strict registry refuses it from the header.
  a.socket.write(Buffer.from('02000201', 'hex'));
  await until(() => a.closed, 'the close', 10_000);
  await waitForLog(srv, { event: 'close', clientId: id, reason: 'protocol-error', code: ErrorCode.UNKNOWN_TYPE }, 5_000, 'the protocol-error close');
});

test.run();
