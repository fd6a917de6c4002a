// ESLint runs for one reason: to keep the rooms of docs/architecture.md §2 from importing against the flow.
// Type checking is tsc's job (`npm run typecheck`); style is the reviewer's.
import tseslint from 'typescript-eslint';

/**
 * A relative import that reaches a room from any depth: `../edge/x.js` from src/auth/, `../../edge/x.js` from
 * src/auth/as/. Glob patterns of the form `../edge/*` matched only the first, so files one folder deeper went
 * unchecked.
 */
const roomImport = (names) => `^(\\.\\./)+(${names.join('|')})(/|$)`;

/** For each room under src/, the rooms it must not import (the pipeline flows edge → auth → mcp → policy → router → upstream). */
const forbidden = {
  lib: {
    rooms: ['config', 'errors', 'edge', 'auth', 'mcp', 'policy', 'router', 'upstream', 'audit', 'stores'],
    packages: true,
  },
  errors: { rooms: ['config', 'edge', 'auth', 'mcp', 'policy', 'router', 'upstream', 'audit', 'stores'] },
  config: { rooms: ['edge', 'auth', 'mcp', 'policy', 'router', 'upstream', 'audit', 'stores'] },
  edge: { rooms: ['policy', 'router', 'upstream', 'stores'] },
  auth: { rooms: ['edge', 'mcp', 'policy', 'router', 'upstream'] },
  mcp: { rooms: ['edge', 'auth', 'upstream', 'stores'], modules: ['fastify', 'ioredis'] },
  policy: {
    rooms: ['edge', 'auth', 'mcp', 'router', 'upstream', 'stores', 'audit'],
    modules: ['fastify', 'ioredis', '@modelcontextprotocol/sdk', '@modelcontextprotocol/sdk/*'],
  },
  router: { rooms: ['edge', 'auth', 'mcp', 'stores'], modules: ['fastify'] },
  upstream: { rooms: ['edge', 'auth', 'mcp', 'policy', 'router', 'stores'], modules: ['fastify'] },
  audit: { rooms: ['edge', 'auth', 'mcp', 'policy', 'router', 'upstream'] },
  stores: { rooms: ['edge', 'auth', 'mcp', 'router', 'upstream'] },
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**'] },
  {
    files: ['**/*.ts'],
    languageOptions: { parser: tseslint.parser, parserOptions: { ecmaVersion: 2023, sourceType: 'module' } },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },
  ...Object.entries(forbidden).map(([name, rule]) => ({
    files: [`src/${name}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: roomImport(rule.rooms),
              message: `src/${name}/ must not import this room: see docs/architecture.md §2 (data flows one way).`,
            },
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
