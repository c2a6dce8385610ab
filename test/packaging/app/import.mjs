// @ts-check
// An ES module application: import 'netloop' and 'netloop/testing', and the
// CommonJS view of the same package (createRequire) is the same copy.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { EventLoop, ErrorCode, NetloopError, isNetloopError } from 'netloop';
import { ManualClock } from 'netloop/testing';

const loop = new EventLoop();
const clock = new ManualClock(5);
clock.advance(10);
assert.equal(clock.now(), 15);
/** @type {unknown} */
const error = new NetloopError(ErrorCode.INVALID_OPTION, 'from an ES module application');
assert.ok(isNetloopError(error) && error.code === ErrorCode.INVALID_OPTION);
const require = createRequire(import.meta.url);
assert.equal(require('netloop').EventLoop, EventLoop, 'import and require give the same EventLoop');
await loop.close();
console.log('import.mjs: ok');
