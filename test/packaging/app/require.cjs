// @ts-check
// A CommonJS application. require('netloop') and require('netloop/testing')
// load the library's ES modules (require(esm), Node >= 20.19) and give the
// very objects that import() gives: one copy of the library, not two.
const assert = require('node:assert/strict');
const { EventLoop, ErrorCode, NetloopError, isNetloopError } = require('netloop');
const { ManualClock } = require('netloop/testing');

const loop = new EventLoop();
const clock = new ManualClock(5);
clock.advance(10);
assert.equal(clock.now(), 15);
/** @type {unknown} */
const error = new NetloopError(ErrorCode.INVALID_OPTION, 'from a CommonJS application');
assert.ok(isNetloopError(error) && error.code === ErrorCode.INVALID_OPTION);

(async () => {
  const esm = await import('netloop');
  assert.equal(esm.EventLoop, EventLoop, 'require and import give the same EventLoop');
  assert.equal((await import('netloop/testing')).ManualClock, ManualClock);
  assert.equal(require('netloop/package.json').name, 'netloop');
  await loop.close();
  console.log('require.cjs: ok');
})().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
