// CommonJS entry of 'netloop/testing' (see index.cjs).
module.exports = require('../dist/lib/testing.js');
