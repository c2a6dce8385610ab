/**
 * The types of the typed message path: what a framed server, connector or
 * client hands out and takes, computed from the message map `M` of its
 * registry (`{ Login: Login; Chat: Chat }`), or {@link RawFrames} without one.
 *
 * ```
 *   M = { Login: Login; Chat: Chat }            M = RawFrames (no registry)
 *   FramedMessage<M>  (inbound)                 FramedMessage<RawFrames>
 *     { name: 'Login'; payload: Login; ... }      { name: undefined; payload: Buffer; ... }
 *   | { name: 'Chat'; payload: Chat; ... }
 *   | { name: undefined; payload: Buffer; ... }  (a lenient registry's unknown type)
 *   OutgoingMessage<M> (outbound hooks)         { name: undefined; type; payload: Uint8Array }
 *     { name: 'Login'; type; payload: Login } | ...
 *   send('Chat', chat)   broadcast({ type: 'Chat', payload })      send(7, bytes)
 * ```
 *
 * @module
 */

import type { MessageName, PayloadOf } from '../codec/message-registry.js';

declare const RAW_FRAMES: unique symbol;

/**
 * The message map of a framed server, connector or client built without a
 * registry: frames have numeric types and Buffer payloads, and `send` takes a
 * numeric type and bytes. (A brand, never a value.)
 */
export interface RawFrames {
  /** Brands the map; no such property exists. */
  readonly [RAW_FRAMES]: true;
}

/**
 * The map of a registry whose names are not known when compiling (the type
 * of `new MessageRegistry()` before any chained `register`): any name is
 * accepted, with an `unknown` payload, and checked when sent. Annotate with
 * it where a registry's own map cannot be written
 * (`FramedServer<AnyMessages>`); prefer the map `register` builds.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export type AnyMessages = {};

/** A received message of the registered type `N`, whose payload is a `T`. */
export interface NamedMessage<N extends string = string, T = unknown> {
  /** The frame's type id. */
  type: number;
  /** The registered name of the type: the discriminant of {@link FramedMessage}. */
  name: N;
  /** The payload, deserialized by the type's serializer. */
  payload: T;
  /**
   * The frame's value. Unless the framing's `copy` is set, a value that lay
   * inside one received chunk is a view of that chunk: it stays valid for as
   * long as it is referenced (the reactor reads with `'data'` events, and Node
   * gives each one a buffer of its own that it never reuses), but it keeps
   * that chunk (up to 64 KiB) alive while it is.
   */
  value: Buffer;
}

/** A received frame of no registered type: without a registry, or an unknown type of a lenient one. */
export interface UnnamedMessage {
  /** The frame's type id (0 when the layout has no type field). */
  type: number;
  /** No name: the type is not registered (or there is no registry). */
  name: undefined;
  /** The value itself. */
  payload: Buffer;
  /** The frame's value (see {@link NamedMessage.value}). */
  value: Buffer;
}

/** The received messages of the names `N` of `M`, one variant per name. */
export type MessageOf<M, N extends MessageName<M> = MessageName<M>> = { [K in N]: NamedMessage<K, PayloadOf<M, K>> }[N];

/**
 * One decoded message as the `onMessage` handler, the `'message'` event and
 * inbound hooks receive it: a union discriminated by `name`, with one variant
 * per registered name and one for frames of no registered type (a lenient
 * registry hands those out; a strict one refuses them). Without a registry,
 * every message is an {@link UnnamedMessage}.
 *
 * ```ts
 * server.on('message', (client, message) => {
 *   if (message.name === 'Chat') console.log(message.payload.text); // payload: Chat
 * });
 * ```
 */
export type FramedMessage<M = AnyMessages> = M extends RawFrames ? UnnamedMessage : MessageOf<M> | UnnamedMessage;

/** A message on its way out, as outbound hooks see it: its name, type id and payload, before it is encoded. */
export interface NamedOutgoing<N extends string = string, T = unknown> {
  /** The registered type id it will be sent with. */
  type: number;
  /** The registered name. */
  name: N;
  /** The payload, for the type's serializer. */
  payload: T;
}

/** A frame on its way out of a framed owner without a registry: a numeric type and bytes. */
export interface UnnamedOutgoing {
  /** The frame's type. */
  type: number;
  /** No name: there is no registry. */
  name: undefined;
  /** The value. */
  payload: Uint8Array;
}

/**
 * A message on its way out (`send`, `broadcast`) as outbound hooks see it,
 * discriminated by `name` as {@link FramedMessage} is.
 */
export type OutgoingMessage<M = AnyMessages> = M extends RawFrames
  ? UnnamedOutgoing
  : { [K in MessageName<M>]: NamedOutgoing<K, PayloadOf<M, K>> }[MessageName<M>];

/**
 * What a framed server's `broadcast` takes besides bytes: a registered name
 * and its payload (`{ type: 'Chat', payload }`), or, without a registry, a
 * numeric type and bytes.
 */
export type MessageFor<M = AnyMessages> = M extends RawFrames
  ? { type: number; payload: Uint8Array }
  : string extends MessageName<M>
    ? { type: number | string; payload: unknown }
    : { [K in MessageName<M>]: { type: K; payload: PayloadOf<M, K> } }[MessageName<M>];

/**
 * What an inbound hook returns: nothing (`undefined`) to pass the message
 * on unchanged, a message to pass on in its place, or `null` to drop it;
 * or a promise of one of these (the client's later messages wait behind it).
 */
export type HookResult<T> = T | null | undefined | void | PromiseLike<T | null | undefined | void>;
