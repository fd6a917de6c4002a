/**
 * The layering rule (eslint.config.js) sees imports from any depth of a room: a file in src/auth/as/ reaching
 * `../../edge/` is refused like one in src/auth/ reaching `../edge/`. Run through ESLint's own API on text placed
 * at a path inside src/, so the rule is tested exactly as `npm run lint` applies it.
 */
import { join } from 'node:path';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/spawn-server.js';

const eslint = new ESLint({ cwd: REPO_ROOT });

async function problems(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(REPO_ROOT, file) });
  return (result?.messages ?? []).map((m) => `${m.ruleId ?? 'parse'}: ${m.message}`);
}

describe('layering lint', () => {
  it('refuses an import against the flow from a nested folder', async () => {
    expect(
      await problems(
        'src/auth/as/probe.ts',
        "import type { X } from '../../edge/http-limits.js';\nexport type Y = X;\n",
      ),
    ).toEqual([
      "no-restricted-imports: '../../edge/http-limits.js' import is restricted from being used by a pattern. src/auth/ must not import this room: see docs/architecture.md §2 (data flows one way).",
    ]);
    expect(
      await problems(
        'src/policy/pinning/probe.ts',
        "import { x } from '../../router/catalogue.js';\nexport const y = x;\n",
      ),
    ).toHaveLength(1);
  });

  it('refuses it one folder deep, as before', async () => {
    expect(
      await problems('src/upstream/probe.ts', "import { x } from '../mcp/front-door.js';\nexport const y = x;\n"),
    ).toHaveLength(1);
  });

  it('allows imports along the flow and within a room, at any depth', async () => {
    expect(
      await problems(
        'src/auth/as/probe.ts',
        "import { a } from '../challenge.js';\nimport { b } from '../../identity/principal.js';\nexport const c = [a, b];\n",
      ),
    ).toEqual([]);
    expect(
      await problems('src/edge/probe.ts', "import type { A } from '../auth/as/route-limits.js';\nexport type B = A;\n"),
    ).toEqual([]);
  });

  it('lets rooms import a store port but only the composition root an implementation', async () => {
    expect(
      await problems(
        'src/mcp/probe.ts',
        "import type { SessionStore } from '../stores/sessions/session-store.js';\nexport type S = SessionStore;\n",
      ),
    ).toEqual([]);
    expect(
      await problems(
        'src/mcp/probe.ts',
        "import { RedisSessionStore } from '../stores/sessions/redis-session-store.js';\nexport const s = RedisSessionStore;\n",
      ),
    ).toEqual([
      "no-restricted-imports: '../stores/sessions/redis-session-store.js' import is restricted from being used by a pattern. Import the store port; only src/app.ts chooses an implementation (docs/architecture.md §2).",
    ]);
    expect(
      await problems(
        'src/auth/as/probe.ts',
        "import { x } from '../../stores/redis/redis-client.js';\nexport const y = x;\n",
      ),
    ).toHaveLength(1);
    // A store never reaches up into the pipeline, from its nested folder either.
    expect(
      await problems(
        'src/stores/rate-limits/probe.ts',
        "import { x } from '../../policy/decide.js';\nexport const y = x;\n",
      ),
    ).toHaveLength(1);
  });

  it('keeps the outbound room below the front door: mcp may ask a provider, a provider never reaches up', async () => {
    expect(
      await problems(
        'src/mcp/steps/probe.ts',
        "import type { CredentialProvider } from '../../outbound/credential-provider.js';\nexport type P = CredentialProvider;\n",
      ),
    ).toEqual([]);
    expect(
      await problems(
        'src/outbound/token-exchange/probe.ts',
        "import { x } from '../../mcp/call.js';\nexport const y = x;\n",
      ),
    ).toEqual([
      "no-restricted-imports: '../../mcp/call.js' import is restricted from being used by a pattern. src/outbound/ must not import this room: see docs/architecture.md §2 (data flows one way).",
    ]);
    expect(
      await problems('src/outbound/probe.ts', "import { x } from '../router/router.js';\nexport const y = x;\n"),
    ).toHaveLength(1);
    expect(
      await problems('src/outbound/probe.ts', "import { x } from '../upstream/rpc-peer.js';\nexport const y = x;\n"),
    ).toHaveLength(1);
    // And a room below it cannot import it.
    expect(
      await problems(
        'src/upstream/probe.ts',
        "import type { P } from '../outbound/credential-provider.js';\nexport type Q = P;\n",
      ),
    ).toHaveLength(1);
  });
});
