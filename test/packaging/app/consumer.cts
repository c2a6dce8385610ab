// A strict TypeScript CommonJS application: its imports compile to require().
import { EventLoop, ErrorCode, NetloopError, isNetloopError } from 'netloop';
import netloop = require('netloop');
import { ManualClock } from 'netloop/testing';

const loop: EventLoop = new EventLoop();
// @ts-expect-error an unknown option is refused
new EventLoop({ notAnOption: true });
const clock = new ManualClock();
// @ts-expect-error advance takes milliseconds as a number
clock.advance('10');
const error: unknown = new netloop.NetloopError(netloop.ErrorCode.INVALID_OPTION, 'typed');
if (!isNetloopError(error) || error.code !== ErrorCode.INVALID_OPTION) throw new Error('isNetloopError narrows to NetloopError');
if (!(error instanceof NetloopError)) throw new Error('one NetloopError class through both import forms');
void loop.close().then(() => console.log('consumer.cts: ok'));
