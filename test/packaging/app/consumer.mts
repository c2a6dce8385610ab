// A strict TypeScript ES module application (compiled under module nodenext,
// node16 and bundler resolution). The @ts-expect-error lines prove the types
// come from the package, not `any`: each must be an error.
import { EventLoop, ErrorCode, NetloopError, isNetloopError } from 'netloop';
import { ManualClock } from 'netloop/testing';

const loop: EventLoop = new EventLoop();
// @ts-expect-error an unknown option is refused
new EventLoop({ notAnOption: true });
const clock = new ManualClock();
// @ts-expect-error advance takes milliseconds as a number
clock.advance('10');
const error: unknown = new NetloopError(ErrorCode.INVALID_OPTION, 'typed');
if (!isNetloopError(error) || error.code !== ErrorCode.INVALID_OPTION) throw new Error('isNetloopError narrows to NetloopError');
await loop.close();
console.log('consumer.mts: ok');
