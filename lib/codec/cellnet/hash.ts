/**
 * cellnet's message ids. cellnet peers usually number their messages with
 * `util.StringHash("package.Name")`, a 16-bit hash of the message's full
 * name; {@link cellnetStringHash} computes the same value so a netloop server
 * can register those ids and serve cellnet clients.
 *
 * The hash walks the name's Unicode code points (as Go's `range` over a string
 * does), truncates each to 16 bits, and folds it in as
 * `hash = hash * 33 + c * 129`, all modulo 2^16. Sixteen bits collide easily
 * (cellnet's issue #42); the message registry refuses a duplicate id.
 *
 * @module
 */

import { ErrorCode, NetloopError } from '../../core/errors.js';

/**
 * cellnet's `util.StringHash(name)`: a 16-bit id for a message name.
 *
 * A lone UTF-16 surrogate cannot be sent to Go as UTF-8; it is hashed as
 * U+FFFD, the code point Go reads from its replacement bytes.
 *
 * @throws NetloopError INVALID_VALUE when `name` is not a string.
 */
export function cellnetStringHash(name: string): number {
  if (typeof name !== 'string') {
    throw new NetloopError(ErrorCode.INVALID_VALUE, 'a cellnet message name must be a string', {
      details: { got: typeof name },
    });
  }
  let hash = 0;
  for (let i = 0; i < name.length; i++) {
    let c = name.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = i + 1 < name.length ? name.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        c = (((c - 0xd800) << 10) | (next - 0xdc00)) + 0x10000;
        i++;
      } else {
        c = 0xfffd;
      }
    }
    const ch = c & 0xffff;
    hash = (hash + (hash << 5) + ch + (ch << 7)) & 0xffff;
  }
  return hash;
}
