/**
 * The framing options: validated with coded errors when a framed server or
 * connector is built; finite defaults.
 */

import { test } from '../../helpers/uvu.js';
import * as assert from 'uvu/assert';
import { EventLoop } from '../../../lib/reactor/event-loop.js';
import { ErrorCode } from '../../../lib/core/errors.js';
import type { LtvPresetName } from '../../../lib/codec/ltv-layout.js';
import { MessageRegistry } from '../../../lib/codec/message-registry.js';
import { Framing } from '../../../lib/framing/framing.js';
import type { FramingOptions } from '../../../lib/framing/framing.js';
import { FramedServer } from '../../../lib/framing/framed-server.js';
import { FramedConnector } from '../../../lib/framing/framed-connector.js';

import { throwsCode } from './rig.js';

test('framing options are validated when a server or a connector is built', async () => {
  const loop = new EventLoop();
  try {
    const bad: FramingOptions[] = [
      { maxPendingMessages: 0 },
      { maxPendingBytes: -1 },
      { maxMessagesPerTurn: 0 },
      { maxMessagesPerTurn: 1.5 },
      { frameTimeoutMs: Number.NaN },
      { preAuthMaxFrameLength: 2 },
      { layout: { maxFrameLength: 100 }, preAuthMaxFrameLength: 101 },
      { copy: 'yes' as unknown as boolean },
      { onMessage: 5 as unknown as FramingOptions['onMessage'] },
      { registry: {} as MessageRegistry },
      { layout: 'nope' as LtvPresetName },
    ];
    for (const framing of bad) {
      throwsCode(() => new FramedServer(loop, framing), ErrorCode.INVALID_OPTION);
    }
    throwsCode(() => new FramedConnector(loop, { port: 1, maxPendingMessages: 0 }).connect(), ErrorCode.INVALID_OPTION);
    throwsCode(() => new FramedConnector(loop, { port: 1, requireAuthentication: 'yes' as unknown as boolean }).connect(), ErrorCode.INVALID_OPTION);
    throwsCode(() => new Framing(null as unknown as FramingOptions, 'server'), ErrorCode.INVALID_OPTION);
    // Defaults: finite everywhere; a connector trusts its server's frame size.
    const s = new Framing({}, 'server');
    assert.equal(
      [s.maxPendingMessages, s.maxPendingBytes, s.maxMessagesPerTurn, s.frameTimeoutMs, s.preAuthLayout.maxFrameLength],
      [1024, 8 * 1024 * 1024, 512, 30_000, 65_536],
    );
    const c = new Framing({}, 'connector');
    assert.is(c.preAuthLayout, c.layout);
  } finally {
    await loop.close();
  }
});

test.run();

test.run();
