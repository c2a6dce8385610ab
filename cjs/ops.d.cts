// Types of the CommonJS entry of 'netloop/ops' (ops.cjs): the ES module's own
// (see index.d.cts for the @ts-ignore).
// @ts-ignore TS1479: require of an ES module, which Node >= 20.19 supports.
export * from '../dist/lib/ops/index.js';
