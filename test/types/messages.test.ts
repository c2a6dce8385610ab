/**
 * The typed message path: a registry built by chained `register` calls types
 * the server, connector and clients made with it. A misspelled message name,
 * a payload of another type, a misspelled event and a listener of the wrong
 * signature do not compile (each `@ts-expect-error` below fails the build if
 * the error it expects goes away), and a handler's payload is typed without
 * a cast (`Equal` checks the exact types).
 *
 * Compiled by `npm test`, never run: the functions below only need to type-check.
 */

import { EventLoop } from '../../lib/reactor/event-loop.js';
import { MessageRegistry } from '../../lib/codec/message-registry.js';
import type { MessageType } from '../../lib/codec/message-registry.js';
import { json, raw, utf8 } from '../../lib/codec/serializers.js';
import { FramedServer } from '../../lib/framing/framed-server.js';
import { FramedConnector } from '../../lib/framing/framed-connector.js';
import type { FramedClient } from '../../lib/framing/framed-client.js';
import type { FramedMessage, OutgoingMessage, UnnamedMessage } from '../../lib/framing/messages.js';

/** True when A and B are the same type (not merely assignable either way). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
/** Compiles only for `true`. */
function expectType<T extends true>(_ok: T): void {}

interface Login {
  user: string;
}
interface Chat {
  text: string;
  room?: string;
}
const isChat = (v: unknown): v is Chat => typeof v === 'object' && v !== null && typeof (v as Chat).text === 'string';

function registry() {
  return new MessageRegistry()
    .register(1, 'Login', json<Login>())
    .register(2, 'Chat', json<Chat>({ validate: isChat }))
    .register(3, 'Say', utf8())
    .register(4, 'Blob', raw());
}
type Messages = { Login: Login; Chat: Chat; Say: string; Blob: Buffer };

export function registryTypes(): void {
  const r = registry();
  expectType<Equal<typeof r, MessageRegistry<Messages>>>(true);
  const chat = r.resolve('Chat');
  expectType<Equal<typeof chat, MessageType<Chat, 'Chat'>>>(true);
  r.encode('Chat', { text: 'hi' });
  // @ts-expect-error a misspelled message name
  r.encode('Chta', { text: 'hi' });
  // @ts-expect-error a payload of another type
  r.encode('Chat', { txt: 'hi' });
  // @ts-expect-error a guard of another type than the serializer's
  json<Chat>({ validate: (v: unknown): v is Login => v !== null });
  const cellnet = new MessageRegistry().registerCellnet('proto.ChatREQ', json<Chat>());
  expectType<Equal<typeof cellnet, MessageRegistry<{ 'proto.ChatREQ': Chat }>>>(true);
}

export async function serverTypes(loop: EventLoop): Promise<void> {
  const server = await new FramedServer(loop, { port: 0, registry: registry() }).listen();
  expectType<Equal<typeof server, FramedServer<Messages>>>(true);

  // A typed handler: the payload and the message are typed, no cast.
  server.handle('Chat', (client, chat, message) => {
    expectType<Equal<typeof chat, Chat>>(true);
    expectType<Equal<typeof message.name, 'Chat'>>(true);
    expectType<Equal<typeof client, FramedClient<Messages>>>(true);
    client.send('Chat', { text: chat.text.toUpperCase() });
    // @ts-expect-error a payload of another type
    client.send('Chat', { txt: chat.text });
    // @ts-expect-error a misspelled message name
    client.send('Caht', { text: chat.text });
    // @ts-expect-error without a cast, a string is no Login
    client.send('Login', 'ann');
    server.broadcast({ type: 'Chat', payload: chat }, { except: client });
    // @ts-expect-error a broadcast payload of another type
    server.broadcast({ type: 'Chat', payload: { user: 'ann' } });
    // @ts-expect-error a broadcast of a misspelled name
    server.broadcast({ type: 'chat', payload: chat });
    server.broadcast('raw bytes are always fine');
  });
  server.handle('Say', (client, text) => void client.send('Say', text.trim()));
  server.handle('Blob', async (_client, bytes) => void bytes.readUInt8(0));
  // @ts-expect-error a misspelled message name
  server.handle('Chta', () => undefined);
  // @ts-expect-error a handler of another payload
  server.handle('Login', (_client, login: Chat) => void login.text);

  // The 'message' event: a union discriminated by name.
  server.on('message', (client, message) => {
    expectType<Equal<typeof message, FramedMessage<Messages>>>(true);
    if (message.name === 'Login') expectType<Equal<typeof message.payload, Login>>(true);
    else if (message.name === 'Chat') void message.payload.text.length;
    else if (message.name === undefined) expectType<Equal<typeof message, UnnamedMessage>>(true);
    // @ts-expect-error not narrowed: the payload may be any of the messages'
    void message.payload.text;
    void client.send('Login', { user: 'ann' });
  });
  // @ts-expect-error a misspelled event name
  server.on('mesage', () => undefined);
  // @ts-expect-error a listener of the wrong signature
  server.on('message', (client: FramedClient<Messages>, message: string) => void [client, message]);
  // @ts-expect-error a listener of another event's signature
  server.on('close', (client: FramedClient<Messages>, message: FramedMessage<Messages>) => void [client, message]);

  // Hooks are typed by the same map.
  server.addInboundHook((_client, message) => (message.name === 'Login' ? undefined : null));
  server.addInboundHook(async (_client, message) => (message.name === 'Chat' ? { ...message, payload: { text: message.payload.text.trim() } } : undefined));
  // @ts-expect-error a hook returns a message, null or nothing
  server.addInboundHook(() => 'drop');
  server.addOutboundHook((_client, message) => {
    expectType<Equal<typeof message, OutgoingMessage<Messages>>>(true);
    return message.name === 'Say' ? { ...message, payload: message.payload.slice(0, 100) } : undefined;
  });
  // @ts-expect-error an outbound hook that changes a payload to another type
  server.addOutboundHook((_client, message) => (message.name === 'Say' ? { ...message, payload: 1 } : undefined));

  // onMessage is typed from the registry given beside it.
  new FramedServer(loop, {
    registry: registry(),
    onMessage(client, message) {
      if (message.name === 'Login') void client.send('Say', `hello ${message.payload.user}`);
    },
  });
}

export function rawServerTypes(loop: EventLoop): void {
  // Without a registry: Buffers, and numeric types.
  const server = new FramedServer(loop, { port: 0 });
  server.on('message', (client, message) => {
    expectType<Equal<typeof message.payload, Buffer>>(true);
    expectType<Equal<typeof message.name, undefined>>(true);
    client.send(message.type, message.payload);
    // @ts-expect-error without a registry, send takes a numeric type
    client.send('Chat', Buffer.alloc(1));
    // @ts-expect-error without a registry, the payload is bytes
    client.send(1, 'text');
    server.broadcast({ type: 7, payload: new Uint8Array(1) });
    // @ts-expect-error without a registry, a typed broadcast takes bytes
    server.broadcast({ type: 7, payload: { text: 'x' } });
  });
  // @ts-expect-error without a registry there are no names to handle
  server.handle('Chat', () => undefined);
}

export function connectorTypes(loop: EventLoop): void {
  const connector = new FramedConnector(loop, { port: 7000, registry: registry() });
  expectType<Equal<typeof connector, FramedConnector<Messages>>>(true);
  connector.on('connected', (client) => void client.send('Login', { user: 'ann' }));
  connector.handle('Chat', (_client, chat) => void chat.text.length);
  // @ts-expect-error a misspelled event name
  connector.on('conected', () => undefined);
  // @ts-expect-error a payload of another type
  connector.on('connected', (client) => void client.send('Login', { name: 'ann' }));
  connector.addOutboundHook((_client, message) => (message.name === 'Login' ? undefined : null));
}
