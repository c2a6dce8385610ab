// CommonJS entry of 'netloop/ops': the ES module itself, through require(esm)
// (see index.cjs).
module.exports = require('../dist/lib/ops/index.js');
