// Types of the CommonJS entry of 'netloop' (index.cjs): the ES module's own.
// Under `module: node16` or `node18` TypeScript models a Node without
// require(esm) and reports this re-export (TS1479) when it checks libraries
// (skipLibCheck off); Node >= 20.19, which this package requires, has it, and
// `nodenext` (TypeScript >= 5.8) accepts it.
// @ts-ignore TS1479: require of an ES module, which Node >= 20.19 supports.
export * from '../dist/lib/index.js';
