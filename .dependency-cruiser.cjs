// @ts-check
/**
 * The import rules of netloop's layers, checked by dependency-cruiser in
 * `npm test` (test/integration/import-rules.test.ts runs `npm run
 * check:deps`'s command): no cycle at all, type-only imports included, and
 * every import in an allowed direction.
 *
 *   core      imports nothing else
 *   codec     core                      reactor   core
 *   framing   core, codec, reactor      store     core
 *   session   core, store
 *   binding   core, codec, reactor, framing, session, store
 *   messaging core, codec, reactor, framing
 *   cluster   anything but ops          ops       anything
 *   lib/index.ts, lib/testing.ts: anything;  test/, bench/: anything
 *   examples/ import only the package ('netloop', 'netloop/ops'), never 'netloop/testing'
 *
 * Known violations (the examples' imports of lib/ paths, until they import
 * the package by name) are recorded in .dependency-cruiser-known-violations.json
 * (`npx depcruise-baseline lib test bench examples -c .dependency-cruiser.cjs`)
 * and not reported; a new one is.
 *
 * Type-only imports count (`tsPreCompilationDeps: true`): a cycle of types is
 * a cycle of the design, even if it costs nothing at run time.
 *
 * @type {import('dependency-cruiser').IConfiguration}
 */

/** The layers of lib/ and what each may import besides itself. */
const LAYERS = {
  core: [],
  codec: ['core'],
  reactor: ['core'],
  framing: ['core', 'codec', 'reactor'],
  store: ['core'],
  session: ['core', 'store'],
  binding: ['core', 'codec', 'reactor', 'framing', 'session', 'store'],
  messaging: ['core', 'codec', 'reactor', 'framing'],
  cluster: ['core', 'codec', 'reactor', 'framing', 'store', 'session', 'binding', 'messaging'],
};

/** One rule per layer: an import of lib/ outside the layer and its allowed ones is an error. */
const layerRules = Object.entries(LAYERS).map(([layer, allowed]) => ({
  name: `layer-${layer}`,
  comment: `lib/${layer} may import only ${allowed.length === 0 ? 'itself' : `lib/{${allowed.join(',')}}`} in lib/`,
  severity: /** @type {const} */ ('error'),
  from: { path: `^lib/${layer}/` },
  to: { path: '^lib/', pathNot: `^lib/(${[layer, ...allowed].join('|')})/` },
}));

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No import cycle of any length, type-only imports included.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    ...layerRules,
    {
      name: 'lib-not-from-outside',
      comment: 'The library never imports its tests, benchmarks or examples.',
      severity: 'error',
      from: { path: '^lib/' },
      to: { path: '^(test|bench|examples)/' },
    },
    {
      name: 'lib-top-only-from-outside',
      comment: 'The public face (lib/index.ts, lib/testing.ts) is imported by nothing inside lib/.',
      severity: 'error',
      from: { path: '^lib/[^/]+/' },
      to: { path: '^lib/(index|testing)\\.ts$' },
    },
    {
      name: 'examples-use-the-package',
      comment:
        "Examples import only the package ('netloop'), as a user's application does. The examples' imports of lib/ made before this rule are listed in .dependency-cruiser-known-violations.json (ignored with --ignore-known) until they move to the package's name; any other is an error.",
      severity: 'error',
      from: { path: '^examples/' },
      to: { path: '^lib/', pathNot: '^lib/testing\\.ts$' },
    },
    {
      name: 'examples-not-the-test-kit',
      comment:
        "Examples never import 'netloop/testing': by a path (lib/testing.ts) or by the package's name, which resolves through package.json's exports to cjs/testing.*.",
      severity: 'error',
      from: { path: '^examples/' },
      to: { path: '^(lib/testing\\.ts|cjs/testing\\.[^/]+)$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // cjs/ is cruised: an import of the package by its name resolves there (package.json's exports).
    exclude: { path: '^(dist|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.mjs', '.cjs', '.d.ts'],
    },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
