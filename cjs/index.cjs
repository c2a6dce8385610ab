// CommonJS entry of 'netloop'. The package is ES modules; Node >= 20.19
// loads an ES module with require() (require(esm)), so this returns the very
// module namespace that `import` gets: one instance, no dual-package hazard.
module.exports = require('../dist/lib/index.js');
