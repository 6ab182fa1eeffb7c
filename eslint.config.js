// Lint rules that keep weft's layers as docs/architecture (../shared/STYLE.md) draws them:
//
//   cli ─► benchmark ─► ops ─► api ─► orchestration, worker ─► messaging ─► telemetry ─► store, bridge ─► core ─► shared, examples
//   (bridge may use core's pure rules, e.g. the JSON depth limit; examples/ is the shipped
//   examples' pure data code, imported by weft bench and the example handlers)
//   client ─► core (the API's wire types), shared: the package's `./client` entry, used by
//   application code and by cli, benchmark and ops; it never reaches the server's own layers.
//
// An arrow may skip layers downwards; nothing imports upwards, and no module
// cycle exists anywhere (import-x/no-cycle skips `import type`, so
// test/unit/lint.layers.test.ts checks cycles with type imports too). pg and amqplib are imported only by store/ and
// messaging/; only src/bridge/ loads the native addon; core/ does no I/O.
// Every folder of src/ has a row in ABOVE (a test fails on one that has not).
// The dashboard (dashboard/) is a browser bundle: it imports nothing of src/
// but the wire types (src/api/wire-types.ts), type-only.
//
// Settings: only src/shared/config.ts reads process.env (and the OTel SDK
// loader, src/telemetry/sdk.ts); everything else takes a WeftConfig.
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';

/** Folders of src/ with what each may NOT import (everything above it). */
export const ABOVE = {
  shared: ['examples', 'core', 'store', 'telemetry', 'messaging', 'bridge', 'worker', 'orchestration', 'ops', 'benchmark', 'api', 'cli', 'client'],
  examples: ['shared', 'core', 'store', 'telemetry', 'messaging', 'bridge', 'worker', 'orchestration', 'ops', 'benchmark', 'api', 'cli', 'client'],
  core: ['examples', 'store', 'telemetry', 'messaging', 'bridge', 'worker', 'orchestration', 'ops', 'benchmark', 'api', 'cli', 'client'],
  bridge: ['examples', 'store', 'telemetry', 'messaging', 'worker', 'orchestration', 'ops', 'benchmark', 'api', 'cli', 'client'],
  store: ['examples', 'telemetry', 'messaging', 'bridge', 'worker', 'orchestration', 'ops', 'benchmark', 'api', 'cli', 'client'],
  telemetry: ['examples', 'messaging', 'bridge', 'worker', 'orchestration', 'ops', 'benchmark', 'api', 'cli', 'client'],
  messaging: ['examples', 'bridge', 'worker', 'orchestration', 'ops', 'benchmark', 'api', 'cli', 'client'],
  worker: ['examples', 'orchestration', 'ops', 'benchmark', 'api', 'cli', 'client'],
  orchestration: ['examples', 'worker', 'ops', 'benchmark', 'api', 'cli', 'client'],
  api: ['examples', 'ops', 'benchmark', 'cli', 'client'],
  ops: ['examples', 'benchmark', 'cli'],
  benchmark: ['api', 'cli'],
  client: ['examples', 'store', 'telemetry', 'messaging', 'bridge', 'worker', 'orchestration', 'ops', 'benchmark', 'api', 'cli'],
  cli: [],
};

const layerZones = Object.entries(ABOVE).flatMap(([folder, above]) =>
  above.map((up) => ({
    target: `./src/${folder}`,
    from: `./src/${up}`,
    message: `src/${folder} sits below src/${up} and must not import it (see eslint.config.js for the layers).`,
  })),
);

// Nothing of src/ imports the dashboard: it is a browser bundle beside the server, not a layer of it.
layerZones.push({ target: './src', from: './dashboard', message: 'src/ must not import the dashboard (dashboard/ is a browser bundle).' });

const onlyIn = (what, where) => ({
  name: what,
  message: `${what} is imported only in ${where}; go through their interfaces.`,
});

export default tseslint.config(
  { ignores: ['dist/**', 'build/**', 'node_modules/**', 'docs/**', 'bench/results/**', '.weft/**', '.scratch/**'] },
  {
    files: ['src/**/*.ts'],
    languageOptions: { parser: tseslint.parser, parserOptions: { projectService: false } },
    plugins: { '@typescript-eslint': tseslint.plugin, 'import-x': importX },
    settings: { 'import-x/resolver-next': [importX.createNodeResolver({ extensions: ['.ts', '.js'], extensionAlias: { '.js': ['.ts', '.js'] } })] },
    rules: {
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      'import-x/no-restricted-paths': ['error', { zones: layerZones }],
      'import-x/no-self-import': 'error',
      'import-x/no-useless-path-segments': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      'no-restricted-imports': [
        'error',
        {
          paths: [
            onlyIn('pg', 'src/store and src/messaging/pg.ts'),
            onlyIn('amqplib', 'src/messaging'),
            onlyIn('node:module', 'src/bridge (which loads the addon)'),
          ],
        },
      ],
      'no-restricted-properties': [
        'error',
        {
          object: 'process',
          property: 'env',
          message:
            'settings are read in one place: add the variable to loadConfig (src/shared/config.ts) and take it from the WeftConfig; hand the environment to a child with processEnvironment().',
        },
      ],
      eqeqeq: ['error', 'smart'],
      'no-var': 'error',
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  // The one reader of the environment, and the OTel SDK loader (which hands OTEL_* variables to the SDK).
  { files: ['src/shared/config.ts', 'src/telemetry/sdk.ts'], rules: { 'no-restricted-properties': 'off' } },
  {
    files: ['src/store/**/*.ts', 'src/messaging/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { paths: [onlyIn('node:module', 'src/bridge (which loads the addon)')] }] },
  },
  {
    files: ['src/bridge/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { paths: [onlyIn('pg', 'src/store and src/messaging/pg.ts'), onlyIn('amqplib', 'src/messaging')] }] },
  },
  {
    // core is pure: no I/O modules. Reading template files (template/load.ts) is its one exception.
    files: ['src/core/**/*.ts'],
    ignores: ['src/core/template/load.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: ['pg', 'amqplib', 'node:module'].map((m) => ({ name: m, message: 'core is pure: no I/O.' })),
          patterns: [{ group: ['node:fs*', 'node:net', 'node:http', 'node:child_process'], message: 'core is pure: no I/O.' }],
        },
      ],
    },
  },
  {
    // The dashboard: a browser bundle that imports nothing of src/ but the wire types, and those type-only.
    files: ['dashboard/**/*.ts'],
    languageOptions: { parser: tseslint.parser, parserOptions: { projectService: false } },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '(^|/)src/(?!api/wire-types\\.js$)',
              message: 'the dashboard imports nothing of src/ but the wire types: add what it needs to src/api/wire-types.ts.',
            },
            {
              group: ['**/src/api/wire-types.js'],
              allowTypeImports: true,
              message: 'import the wire types with `import type`: the dashboard bundles no server code.',
            },
          ],
        },
      ],
    },
  },
);
