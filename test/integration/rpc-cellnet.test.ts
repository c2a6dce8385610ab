// A netloop peer and a Go program of cellnet, talking cellnet's `rpc`
// package over real sockets. Go is not part of CI, so a raw socket plays the
// Go side, writing and checking the exact bytes cellnet writes. They are
// derived by hand from the Go sources at these commits (the same derivation
// as test/unit/codec/cellnet/rpc.test.ts, which checks the codec alone):
//
//   cellnet    github.com/davyxu/cellnet    916a7eaabb30c7f29d1f69b977b3ba143162e5c9
//   protoplus  github.com/davyxu/protoplus  v0.1.0 = 2d635c30bd3ac40e786b0eabb0eec807b08bac89
//   goobjfmt   github.com/davyxu/goobjfmt   v0.1.0 = f9d6e0a29143b4fd9aa7bc8d8ac7dae345185bbf
//
//   [client]  examples/echo/client_rpc_sync.go 30-33: rpc.CallSync(p, &TestEchoACK{Msg: "hello",
//             Value: 1234}, time.Second); client_rpc_async.go 33-46: rpc.Call sends the same
//             request (both through rpc/req.go request.Send, 29-47).
//   [callid]  rpc/req.go 55: CallID = atomic.AddInt64(&rpcIDSeq, 1): 1 for the process's first call.
//   [server]  examples/echo/server.go 21-34: the server answers a *TestEchoACK that came as an
//             rpc.RecvMsgEvent with rpcevent.Reply(&TestEchoACK{Msg: msg.Msg, Value: msg.Value}).
//   [reply]   rpc/event.go 28-41: Reply sends RemoteCallACK{MsgID, Data, CallID: the REQ's}.
//   [inner]   examples/echo/proto.go 11-24: TestEchoACK { Msg string; Value int32 }, codec
//             "binary", ID StringHash("main.TestEchoACK") = 4673 = 0x1241; goobjfmt writes a
//             string as uint16 LE length · bytes and an int32 as 4 bytes LE.
//   [protoplus] rpc/msg_gen.go 41-50: MsgID (field 0, varint), Data (field 1, bytes), CallID
//             (field 2, varint when > 0): tags 0x01, 0x0a, 0x11; ids REQ 58645, ACK 20476 (112-121).
//   [ltv]     util/packet.go 102-111: uint16 LE (2 + value length) · uint16 LE message id · value.
//   [noerror] rpc/req_sync.go 25-33 and rpc/req_async.go 33-41: a caller only ever gets its reply
//             or ErrTimeout; cellnet has no error reply and no cancellation. proc/tcp/hooker.go
//             19-24: a REQ whose inner message does not decode is logged and dropped.
//
//   Data    05 00 · 68 65 6c 6c 6f · d2 04 00 00              "hello", 1234       [inner]
//   value   01 c1 24 · 0a 0b <Data> · 11 01                    MsgID 4673, CallID 1 [protoplus]
//   REQ     14 00 · 15 e5 · <value>                            20 = 2 + 18; 58645 = 0xe515; 22 bytes [ltv]
//   ACK     14 00 · fc 4f · <value>                            20476 = 0x4ffc: the same value [server][reply]

import { test } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as net from 'node:net';
import { ErrorCode, isNetloopError } from '../../lib/core/errors.js';
import type { NetloopError } from '../../lib/core/errors.js';
import { ManualClock } from '../../lib/core/clock.js';
import { EventLoop } from '../../lib/reactor/event-loop.js';
import { MessageRegistry } from '../../lib/codec/message-registry.js';
import { CellnetBinaryReader, CellnetBinaryWriter } from '../../lib/codec/cellnet/binary.js';
import { LtvEncoder } from '../../lib/codec/ltv-encoder.js';
import { encodeCellnetRemoteCall } from '../../lib/codec/cellnet/rpc.js';
import type { Serializer } from '../../lib/codec/serializers.js';
import { FramedServer } from '../../lib/framing/framed-server.js';
import { FramedConnector } from '../../lib/framing/framed-connector.js';
import type { FramedClient, FramedMessage } from '../../lib/framing/framed-client.js';
import { defineCalls } from '../../lib/messaging/rpc-calls.js';
import { enableRpc } from '../../lib/messaging/rpc.js';
import { RpcError } from '../../lib/messaging/rpc-error.js';
import { connectRaw, readBytes, until, waitFor } from '../helpers/net.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

const ECHO_DATA = '0500 68656c6c6f d2040000';
const echoValue = (callId: string): string => `01 c124 0a 0b ${ECHO_DATA} 11 ${callId}`;
const ECHO_REQ_FRAME = `1400 15e5 ${echoValue('01')}`;
const ECHO_ACK_FRAME = `1400 fc4f ${echoValue('01')}`;

interface TestEchoACK {
  msg: string;
  value: number;
}
/** TestEchoACK in cellnet's binary codec [inner]. */
const testEchoACK: Serializer<TestEchoACK> = {
  encode: (p) => new CellnetBinaryWriter().string(p.msg).int32(p.value).finish(),
  decode: (b) => {
    const r = new CellnetBinaryReader(b);
    const out = { msg: r.string(), value: r.int32() };
    r.end();
    return out;
  },
};

/** The echo example's registry and calls: one call whose request and reply are both TestEchoACK (id 4673). */
function echoTables() {
  const registry = new MessageRegistry().registerCellnet('main.TestEchoACK', testEchoACK);
  const echo = registry.resolve('main.TestEchoACK');
  return { registry, calls: defineCalls({ Echo: { request: echo, reply: echo } }) };
}

const cellnetEncoder = new LtvEncoder({ layout: 'cellnet' });
/** A RemoteCallREQ frame of the echo message with `value` and `callId`, through the (byte-exact, tested) codec. */
function echoReq(value: number, callId: number, msgId = 4673): Buffer {
  return cellnetEncoder.encode(58645, encodeCellnetRemoteCall({ msgId, data: testEchoACK.encode({ msg: 'hello', value }), callId }));
}

test('a Go client\'s rpc.CallSync of cellnet\'s echo example, answered by a netloop server in cellnet mode: the ACK frame byte for byte', async () => {
  const loop = new EventLoop();
  const { registry, calls } = echoTables();
  // The registry also takes the example's plain (non-RPC) TestEchoACK messages; RPC frames go to RPC.
  const plain: FramedMessage[] = [];
  const server = await new FramedServer(loop, { port: 0, layout: 'cellnet', registry, onMessage: (_c, m) => void plain.push(m) }).listen();
  const rpc = enableRpc(server, { calls, envelope: 'cellnet' });
  assert.equal(rpc.frameTypes, [58645, 20476]);
  // [server]: the reply is a new TestEchoACK with the request's fields.
  rpc.handle('Echo', (_client, msg) => ({ msg: msg.msg, value: msg.value }));
  const go = await connectRaw(server.port);
  try {
    assert.is(echoReq(1234, 1).toString('hex'), hex(ECHO_REQ_FRAME).toString('hex'), 'the codec writes what cellnet writes');
    go.write(hex(ECHO_REQ_FRAME));
    assert.is((await readBytes(go, 22)).toString('hex'), hex(ECHO_ACK_FRAME).toString('hex'));
    // The process's second call [callid]: CallID 2, echoed.
    go.write(hex(`1400 15e5 ${echoValue('02')}`));
    assert.is((await readBytes(go, 22)).toString('hex'), hex(`1400 fc4f ${echoValue('02')}`).toString('hex'));
    // A plain TestEchoACK (cellnet's ev.Session().Send) still reaches the message path.
    go.write(cellnetEncoder.encode(4673, hex(ECHO_DATA)));
    await until(() => plain.length === 1, 'the plain message');
    assert.equal(plain[0]!.payload, { msg: 'hello', value: 1234 });
    assert.equal([rpc.stats().requests, rpc.stats().answered], [2, 2]);
  } finally {
    go.destroy();
    await loop.close();
  }
});

test('a netloop connector in cellnet mode calls a cellnet server (a raw socket playing it): its first REQ is the echo example\'s bytes, and the ACK resolves the call', async () => {
  const { calls } = echoTables();
  // The cellnet server: a raw socket server that reads and writes cellnet's bytes.
  const cellnetServer = net.createServer();
  const accepted = new Promise<net.Socket>((resolve) => cellnetServer.once('connection', resolve));
  await new Promise<void>((resolve) => cellnetServer.listen(0, '127.0.0.1', resolve));
  const port = (cellnetServer.address() as net.AddressInfo).port;
  const loop = new EventLoop();
  const connector = new FramedConnector(loop, { port, layout: 'cellnet', reconnect: false });
  const rpc = enableRpc(connector, { calls, envelope: 'cellnet' });
  try {
    const connected = waitFor<[FramedClient]>(connector, 'connected');
    connector.connect();
    const [client] = await connected;
    const go = await accepted;
    const call = rpc.call(client, 'Echo', { msg: 'hello', value: 1234 });
    // The connection's first call has CallID 1, like a Go process's first call [callid].
    assert.is((await readBytes(go, 22)).toString('hex'), hex(ECHO_REQ_FRAME).toString('hex'));
    go.write(hex(ECHO_ACK_FRAME));
    assert.equal(await call, { msg: 'hello', value: 1234 });
    // An ACK carrying another message than the call's reply is refused: NETLOOP_BAD_PAYLOAD.
    const other = rpc.call(client, 'Echo', { msg: 'hello', value: 1234 });
    await readBytes(go, 22);
    go.write(cellnetEncoder.encode(20476, encodeCellnetRemoteCall({ msgId: 7, data: hex(ECHO_DATA), callId: 2 })));
    try {
      await other;
      assert.unreachable('the ACK names message 7');
    } catch (err) {
      assert.ok(isNetloopError(err, ErrorCode.BAD_PAYLOAD));
      assert.equal([err.details['replyId'], err.details['expected']], [7, 4673]);
    }
  } finally {
    (await accepted).destroy();
    cellnetServer.close();
    await loop.close();
  }
});

test('cellnet has no error reply: a handler that fails, an unknown inner message and a busy server send nothing, and the caller times out; no cancellation is sent either', async () => {
  const clock = new ManualClock();
  const loop = new EventLoop({ clock });
  const { calls } = echoTables();
  const server = await new FramedServer(loop, { port: 0, layout: 'cellnet' }).listen();
  const srv = enableRpc(server, { calls, envelope: 'cellnet', maxHandlersInFlight: 1 });
  const failures: unknown[] = [];
  srv.on('handler-error', (_c, err) => void failures.push(err));
  let hold: (() => void) | null = null;
  srv.handle('Echo', (_client, msg) => {
    if (msg.value === 0) throw new Error('zero');
    if (msg.value === 1) throw new RpcError('BAD_VALUE', 'one');
    if (msg.value === 2) return new Promise<TestEchoACK>((resolve) => (hold = () => resolve(msg)));
    return msg;
  });
  const go = await connectRaw(server.port);
  try {
    // A raw Go peer: REQ 1's handler throws, REQ 2's throws an RpcError, REQ 3 names an
    // unknown inner message, REQ 4 holds the one handler place, so REQ 5 is refused as busy;
    // once REQ 4 is answered, REQ 6 is.
    go.write(Buffer.concat([echoReq(0, 1), echoReq(1, 2), echoReq(1234, 3, 0x0bad), echoReq(2, 4), echoReq(1234, 5)]));
    await until(() => srv.stats().busy === 1, 'the fifth refused as busy');
    hold!();
    go.write(echoReq(1234, 6));
    // The first frame back answers REQ 4 and the second REQ 6: nothing was sent for 1, 2, 3 or 5.
    const ack4 = await readBytes(go, 22);
    const ack6 = await readBytes(go, 22);
    assert.is(ack4.subarray(-2).toString('hex'), '1104');
    assert.is(ack6.subarray(-2).toString('hex'), '1106');
    const s = srv.stats();
    assert.equal([s.requests, s.failed, s.unknown, s.busy, s.answered], [6, 2, 1, 1, 2]);
    assert.is(failures.length, 1, 'the Error was reported; the RpcError was an answer that cellnet cannot carry');

    // A netloop connector in cellnet mode calling it: the failing call times out.
    const connector = new FramedConnector(loop, { port: server.port, layout: 'cellnet', reconnect: false });
    const cli = enableRpc(connector, { calls, envelope: 'cellnet', timeoutMs: 1_000 });
    const connected = waitFor<[FramedClient]>(connector, 'connected');
    connector.connect();
    const [client] = await connected;
    const failing = cli.call(client, 'Echo', { msg: 'x', value: 0 });
    await until(() => srv.stats().failed === 3, 'the handler failed');
    const sent = client.socket.bytesWritten;
    clock.advance(1_000);
    loop.runDueTimers();
    try {
      await failing;
      assert.unreachable('no reply');
    } catch (err) {
      assert.ok(isNetloopError(err, ErrorCode.RPC_TIMEOUT), String(err));
    }
    // And the next call still works; nothing (no cancellation) was written in between.
    await new Promise((resolve) => setImmediate(resolve));
    assert.is(client.socket.bytesWritten, sent, 'no cancellation: cellnet has none');
    assert.equal(await cli.call(client, 'Echo', { msg: 'ok', value: 5 }), { msg: 'ok', value: 5 });
  } finally {
    go.destroy();
    await loop.close();
  }
});

test('cellnet mode: a malformed RemoteCallREQ closes the connection with protocol-error (NETLOOP_BAD_PAYLOAD)', async () => {
  const loop = new EventLoop();
  const { calls } = echoTables();
  const server = await new FramedServer(loop, { port: 0, layout: 'cellnet' }).listen();
  enableRpc(server, { calls, envelope: 'cellnet' }).handle('Echo', (_c, m) => m);
  const go = await connectRaw(server.port);
  try {
    const closed = waitFor<[FramedClient, string, NetloopError]>(server, 'close');
    // MsgID sent as bytes (wire type 2): protoplus's ErrBadWireType.
    go.write(cellnetEncoder.encode(58645, hex('02 00')));
    const [, reason, error] = await closed;
    assert.is(reason, 'protocol-error');
    assert.is(error.code, ErrorCode.BAD_PAYLOAD);
  } finally {
    go.destroy();
    await loop.close();
  }
});

test.run();
