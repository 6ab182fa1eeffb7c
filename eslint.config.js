// Lint rules that keep weft's layers as docs/architecture (../shared/STYLE.md) draws them:
//
//   cli ─► bench ─► ops ─► api ─► orchestration, worker ─► store, messaging, bridge ─► core ─► shared
//   (bridge may use core's pure rules, e.g. the JSON depth limit)
//   client ─► core (the API's wire types), shared: the package's `./client` entry, used by
//   application code and by cli, bench and ops; it never reaches the server's own layers.
//
// An arrow may skip layers downwards; nothing imports upwards, and no module
// cycle exists anywhere. pg and amqplib are imported only by store/ and
// messaging/; only src/bridge/ loads the native addon; core/ does no I/O.
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';

/** Folders of src/ with what each may NOT import (everything above it). */
const ABOVE = {
  shared: ['core', 'store', 'messaging', 'bridge', 'worker', 'orchestration', 'ops', 'bench', 'api', 'cli', 'client'],
  core: ['store', 'messaging', 'bridge', 'worker', 'orchestration', 'ops', 'bench', 'api', 'cli', 'client'],
  bridge: ['store', 'messaging', 'worker', 'orchestration', 'ops', 'bench', 'api', 'cli', 'client'],
  store: ['messaging', 'bridge', 'worker', 'orchestration', 'ops', 'bench', 'api', 'cli', 'client'],
  messaging: ['bridge', 'worker', 'orchestration', 'ops', 'bench', 'api', 'cli', 'client'],
  worker: ['orchestration', 'ops', 'bench', 'api', 'cli', 'client'],
  orchestration: ['worker', 'ops', 'bench', 'api', 'cli', 'client'],
  ops: ['bench', 'cli'],
  api: ['ops', 'bench', 'cli', 'client'],
  bench: ['api', 'cli'],
  client: ['store', 'messaging', 'bridge', 'worker', 'orchestration', 'ops', 'bench', 'api', 'cli'],
};

const layerZones = Object.entries(ABOVE).flatMap(([folder, above]) =>
  above.map((up) => ({
    target: `./src/${folder}`,
    from: `./src/${up}`,
    message: `src/${folder} sits below src/${up} and must not import it (see eslint.config.js for the layers).`,
  })),
);

const onlyIn = (what, where) => ({
  name: what,
  message: `${what} is imported only in ${where}; go through their interfaces.`,
});

export default tseslint.config(
  { ignores: ['dist/**', 'build/**', 'node_modules/**', 'src/ui/**', 'docs/**', 'bench/results/**', '.weft/**', '.scratch/**'] },
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
      'no-restricted-imports': ['error', { paths: [onlyIn('pg', 'src/store and src/messaging/pg.ts'), onlyIn('amqplib', 'src/messaging'), onlyIn('node:module', 'src/bridge (which loads the addon)')] }],
      eqeqeq: ['error', 'smart'],
      'no-var': 'error',
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  { files: ['src/store/**/*.ts', 'src/messaging/**/*.ts'], rules: { 'no-restricted-imports': ['error', { paths: [onlyIn('node:module', 'src/bridge (which loads the addon)')] }] } },
  { files: ['src/bridge/**/*.ts'], rules: { 'no-restricted-imports': ['error', { paths: [onlyIn('pg', 'src/store and src/messaging/pg.ts'), onlyIn('amqplib', 'src/messaging')] }] } },
  {
    // core is pure: no I/O modules. Reading template files (template/load.ts) is its one exception.
    files: ['src/core/**/*.ts'],
    ignores: ['src/core/template/load.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: ['pg', 'amqplib', 'node:module'].map((m) => ({ name: m, message: 'core is pure: no I/O.' })), patterns: [{ group: ['node:fs*', 'node:net', 'node:http', 'node:child_process'], message: 'core is pure: no I/O.' }] },
      ],
    },
  },
);
