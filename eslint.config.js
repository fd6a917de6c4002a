// ESLint runs for one reason: to keep the rooms of docs/architecture.md §2 from importing against the flow.
// Type checking is tsc's job (`npm run typecheck`); style is the reviewer's.
import tseslint from 'typescript-eslint';

/**
 * A relative import that reaches a room from any depth: `../edge/x.js` from src/auth/, `../../edge/x.js` from
 * src/auth/as/. Glob patterns of the form `../edge/*` matched only the first, so files one folder deeper went
 * unchecked.
 */
const roomImport = (names) => `^(\\.\\./)+(${names.join('|')})(/|$)`;

/**
 * For each room under src/, the rooms it may import (docs/architecture.md §2). The pipeline flows edge → auth → mcp →
 * policy → router → upstream; identity, stores, audit and telemetry sit beside it and are imported downwards only.
 * Every room not listed for a room is forbidden to it; a room added to src/ must be added here.
 */
const ROOMS = [
  'lib',
  'errors',
  'identity',
  'config',
  'stores',
  'audit',
  'telemetry',
  'policy',
  'upstream',
  'outbound',
  'router',
  'mcp',
  'auth',
  'edge',
];
const allowed = {
  lib: { rooms: [], packages: true },
  errors: { rooms: ['lib'] },
  identity: { rooms: ['lib'] },
  config: { rooms: ['lib', 'errors'] },
  stores: { rooms: ['lib', 'errors', 'config', 'identity'] },
  audit: { rooms: ['lib', 'errors', 'config', 'identity'] },
  telemetry: { rooms: ['lib', 'errors', 'config', 'identity', 'audit'] },
  policy: {
    rooms: ['lib', 'errors', 'config', 'identity'],
    modules: ['fastify', 'ioredis', '@modelcontextprotocol/sdk', '@modelcontextprotocol/sdk/*'],
  },
  upstream: { rooms: ['lib', 'errors', 'config', 'audit', 'telemetry'], modules: ['fastify'] },
  // Outbound identity: credential providers (token exchange, per-user grants), asked by the mcp credentials step.
  outbound: { rooms: ['lib', 'errors', 'config', 'identity', 'stores', 'audit', 'telemetry'], modules: ['fastify'] },
  router: { rooms: ['lib', 'errors', 'config', 'identity', 'policy', 'upstream', 'audit'], modules: ['fastify'] },
  mcp: {
    rooms: ['lib', 'errors', 'config', 'identity', 'stores', 'policy', 'outbound', 'router', 'audit', 'telemetry'],
    modules: ['fastify', 'ioredis'],
  },
  auth: { rooms: ['lib', 'errors', 'config', 'identity', 'stores', 'audit'] },
  edge: { rooms: ['lib', 'errors', 'config', 'identity', 'auth', 'mcp', 'outbound', 'audit', 'telemetry'] },
};

/**
 * A store's port may be imported by the rooms above; its memory and Redis implementations only by the composition
 * root (src/app.ts), which chooses one from the config.
 */
const storeImplementation = '^(\\.\\./)+stores/(redis/|[a-z-]+/(memory|redis|create)-)';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**'] },
  {
    files: ['**/*.ts'],
    languageOptions: { parser: tseslint.parser, parserOptions: { ecmaVersion: 2023, sourceType: 'module' } },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },
  ...Object.entries(allowed).map(([name, rule]) => ({
    files: [`src/${name}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: roomImport(ROOMS.filter((r) => r !== name && !rule.rooms.includes(r))),
              message: `src/${name}/ must not import this room: see docs/architecture.md §2 (data flows one way).`,
            },
            ...(name !== 'stores'
              ? [
                  {
                    regex: storeImplementation,
                    message:
                      'Import the store port; only src/app.ts chooses an implementation (docs/architecture.md §2).',
                  },
                ]
              : []),
            ...(rule.packages
              ? [{ regex: '^(?!node:|\\.{1,2}/)', message: 'src/lib/ holds pure helpers with no dependencies.' }]
              : []),
            ...(rule.modules
              ? [
                  {
                    group: rule.modules,
                    message: `src/${name}/ must not depend on this package (docs/architecture.md §2).`,
                  },
                ]
              : []),
          ],
        },
      ],
    },
  })),
);
