// A strict TypeScript ES module application (compiled under module nodenext,
// node16 and bundler resolution). The @ts-expect-error lines prove the types
// come from the package, not `any`: each must be an error.
import { EventLoop, ErrorCode, FramedServer, MessageRegistry, NetloopError, isNetloopError, json } from 'netloop';
import { ManualClock } from 'netloop/testing';

const loop: EventLoop = new EventLoop();
// @ts-expect-error an unknown option is refused
new EventLoop({ notAnOption: true });
const clock = new ManualClock();
// @ts-expect-error advance takes milliseconds as a number
clock.advance('10');
const error: unknown = new NetloopError(ErrorCode.INVALID_OPTION, 'typed');
if (!isNetloopError(error) || error.code !== ErrorCode.INVALID_OPTION) throw new Error('isNetloopError narrows to NetloopError');
// A typed registry types the handlers' payloads: no cast, and mistakes do not compile.
const registry = new MessageRegistry().register(1, 'Chat', json<{ text: string }>());
const server = new FramedServer(loop, { port: 0, registry });
server.handle('Chat', (client, chat) => {
  const text: string = chat.text;
  client.send('Chat', { text });
  // @ts-expect-error a payload of the wrong shape is refused
  client.send('Chat', { txt: text });
});
// @ts-expect-error a misspelled event name is refused
server.on('mesage', () => undefined);
// @ts-expect-error a listener of the wrong signature is refused
server.on('close', (reason: number) => reason);
await loop.close();
console.log('consumer.mts: ok');
