/**
 * Fuzzing a live framed server: fast-check draws byte streams (valid frames,
 * lies and noise) and chunkings, sends them over a real socket, and checks
 * that the server survives, closes only the offender with a coded reason,
 * exactly once, and keeps serving a witness connection.
 *
 * Time-bounded: NETLOOP_FUZZ_MS (default 3000 ms) for the random part.
 * Replay: every file in test/fuzz-corpus/ is replayed first, on every run.
 * A counterexample found is saved there as `found-<seed>.json` (the seed,
 * the path and the bytes), so it is replayed from then on.
 */
import { suite } from '../helpers/uvu.js';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import * as fs from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';
import type * as net from 'node:net';
import { ErrorCode } from '../../lib/core/errors.js';
import { MessageRegistry } from '../../lib/codec/message-registry.js';
import { HEADER, frame, header, startLive } from '../helpers/live-server.js';
import type { LiveServer } from '../helpers/live-server.js';
import { readBytes, until } from '../helpers/net.js';

const Z = suite('fuzz-server');
const FUZZ_MS = Number(process.env['NETLOOP_FUZZ_MS'] ?? 3_000);
/** The corpus lives beside the sources; tests run from the build folder, one level deeper. */
const CORPUS = fileURLToPath(new URL('../../../test/fuzz-corpus', import.meta.url));
const MAX_VALUE = 1024;
/** The codes a refused stream may close with. */
const PROTOCOL_CODES: ReadonlySet<string> = new Set([ErrorCode.FRAME_TOO_LARGE, ErrorCode.FRAME_TOO_SHORT, ErrorCode.UNKNOWN_TYPE]);

/** One corpus entry. */
interface CorpusEntry {
  description?: string;
  seed?: number;
  path?: string;
  /** The chunks, in hex, each written as one socket write. */
  chunks: string[];
  /** 'close': the server must close the connection (with `code` when given); 'open': it must keep it. */
  expect?: 'close' | 'open';
  code?: string;
}

interface Outcome {
  closed: boolean;
  reason: string | undefined;
  code: string | undefined;
  closes: number;
}

let live: LiveServer;
let witness: net.Socket;
let witnessRound = 0;

Z.before(async () => {
  const registry = new MessageRegistry();
  registry.register(1, 'echo', 'raw');
  live = await startLive({ idleTimeoutMs: 30_000 }, { layout: { preset: 'netloop', maxFrameLength: HEADER + MAX_VALUE }, registry });
  witness = (await live.connect()).peer;
});

Z.after(async () => {
  await live.stop();
});

/** Sends the chunks on a fresh connection, waits until the server read them all (or closed it), then hangs up. */
async function feed(chunks: readonly Buffer[]): Promise<Outcome> {
  const { peer, client } = await live.connect();
  peer.setNoDelay(true);
  const total = chunks.reduce((n, c) => n + c.length, 0);
  for (const c of chunks) {
    if (client.closed || peer.destroyed) break;
    peer.write(c);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  await until(() => client.closed || client.socket.bytesRead >= total, 'the server to read the stream or close it');
  // Let the last chunk's frames reach the handler before judging.
  await new Promise<void>((resolve) => setImmediate(resolve));
  const closedByServer = client.closed || client.closing;
  peer.destroy();
  await until(() => client.closed, 'the connection to close');
  const recs = live.closes.get(client.id) ?? [];
  const first = recs[0];
  return {
    closed: closedByServer,
    reason: closedByServer ? first?.reason : undefined,
    code: closedByServer ? first?.code : undefined,
    closes: recs.length,
  };
}

/** The server still serves an unrelated, long-lived connection. */
async function witnessServes(): Promise<void> {
  const f = frame(1, `w${witnessRound++}`);
  witness.write(f);
  const back = await readBytes(witness, f.length);
  assert.ok(back.equals(f), 'the witness connection is unaffected');
}

/** The invariant every stream must keep. */
function check(o: Outcome, what: string): void {
  assert.is(o.closes, 1, `${what}: exactly one close`);
  if (o.closed && o.reason !== 'peer-closed' && o.reason !== 'reset') {
    assert.is(o.reason, 'protocol-error', `${what}: closed for a protocol error, not ${String(o.reason)}`);
    assert.ok(o.code !== undefined && PROTOCOL_CODES.has(o.code), `${what}: a stable code, got ${String(o.code)}`);
  }
}

Z('every corpus entry replays: survives, expected outcome, exactly one close, the witness unaffected', async () => {
  const files = (await fs.readdir(CORPUS)).filter((f) => f.endsWith('.json')).sort();
  assert.ok(files.length >= 5, 'the hand-made corpus is there');
  for (const name of files) {
    const entry = JSON.parse(await fs.readFile(path.join(CORPUS, name), 'utf8')) as CorpusEntry;
    const o = await feed(entry.chunks.map((h) => Buffer.from(h, 'hex')));
    check(o, name);
    if (entry.expect === 'close') {
      assert.ok(o.closed, `${name}: the server closed it`);
      if (entry.code !== undefined) assert.is(o.code, entry.code, name);
    } else if (entry.expect === 'open') {
      assert.not.ok(o.closed, `${name}: a valid stream is kept`);
    }
    await witnessServes();
  }
});

/** A piece of a stream: a valid frame, a lying header, or noise. */
const pieceArb: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 4, arbitrary: fc.uint8Array({ maxLength: 64 }).map((v) => frame(1, v)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: MAX_VALUE }).map((v) => frame(1, v)) },
  { weight: 1, arbitrary: fc.record({ len: fc.nat({ max: 0xffffffff }), type: fc.nat({ max: 0xffff }) }).map(({ len, type }) => header(len, type)) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 48 }).map((v) => Buffer.from(v)) },
);

const streamArb = fc
  .record({ pieces: fc.array(pieceArb, { minLength: 1, maxLength: 12 }), cuts: fc.array(fc.nat(), { maxLength: 8 }) })
  .map(({ pieces, cuts }) => {
    const bytes = Buffer.concat(pieces);
    const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
    const chunks: Buffer[] = [];
    let prev = 0;
    for (const p of [...points, bytes.length]) {
      if (p > prev) chunks.push(bytes.subarray(prev, p));
      prev = p;
    }
    return chunks;
  });

Z(`arbitrary streams and chunkings for ${FUZZ_MS} ms: the server survives and closes only offenders, with a code`, async () => {
  // fast-check stops waiting for the run in progress when the time limit
  // interrupts it, but that run goes on (a promise cannot be cancelled): it is
  // awaited below, so its connection is closed and its waits settled before
  // the server is judged.
  let inFlight: Promise<unknown> = Promise.resolve();
  const details = await fc.check(
    fc.asyncProperty(streamArb, async (chunks) => {
      const run = (async () => {
        const o = await feed(chunks);
        check(o, 'fuzzed stream');
        await witnessServes();
      })();
      inFlight = run.catch(() => undefined);
      await run;
    }),
    { numRuns: 1_000_000, interruptAfterTimeLimit: FUZZ_MS, markInterruptAsFailure: false },
  );
  await inFlight;
  if (details.failed && details.counterexample !== null) {
    const [chunks] = details.counterexample;
    const entry: CorpusEntry = {
      description: `found by fast-check: ${String(details.errorInstance ?? 'failure').split('\n')[0]}`,
      seed: details.seed,
      path: details.counterexamplePath ?? '',
      chunks: chunks.map((c) => c.toString('hex')),
    };
    const file = path.join(CORPUS, `found-${details.seed}.json`);
    await fs.writeFile(file, `${JSON.stringify(entry, null, 2)}\n`);
    assert.unreachable(`counterexample saved to ${path.basename(file)}: ${String(details.errorInstance)}`);
  }
  assert.ok(details.numRuns > 0, 'at least one stream was tried');
  if (process.env['NETLOOP_FUZZ_VERBOSE'] !== undefined) process.stdout.write(`\n${details.numRuns} streams in ${FUZZ_MS} ms\n`);
  assert.is(live.server.clientCount, 1, 'only the witness is left');
});

Z.run();
