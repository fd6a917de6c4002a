/**
 * The `sessions` section of gatehouse.yaml (docs/deployment.md "Sessions across replicas"): defaults mirrored in the
 * schema, key checks that never quote a key, and a Redis store only with a Redis connection.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import schema from '../../schemas/gatehouse.schema.json' with { type: 'json' };
import { SESSIONS_DEFAULTS, sessionKeyBytes } from '../../src/config/sessions-config.js';
import { CONFIG_DEFAULTS, parseConfigText } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors/config-error.js';
import { createSessionStore } from '../../src/stores/sessions/create-session-store.js';
import { createSessionAuthority } from '../../src/mcp/session-setup.js';
import { MemorySessionStore } from '../../src/stores/sessions/memory-session-store.js';
import pino from 'pino';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-sessions-config-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const file = path.join(dir, 'gatehouse.yaml');
const UPSTREAM = 'upstreams:\n  - name: fx\n    transport: stdio\n    command: node\n';

function load(sessions: string, env: NodeJS.ProcessEnv = {}) {
  return parseConfigText(`${sessions}${UPSTREAM}`, file, { env });
}

function problems(sessions: string, env: NodeJS.ProcessEnv = {}): { path: string; line?: number; message: string }[] {
  try {
    load(sessions, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return [...(err as ConfigError).problems];
  }
  throw new Error('expected a ConfigError');
}

describe('sessions config', () => {
  it('defaults: no keys (a random key per process), 24 h lifetime, memory store — the schema says the same', () => {
    const config = load('');
    expect(config.sessions).toEqual({
      keys: [],
      maxLifetimeMs: 86_400_000,
      store: 'memory',
      memoryMaxEntries: 100_000,
      maxPerSubject: 100,
      maxPerClient: 2500,
      unusedTimeoutMs: 60_000,
      maxSubscriptions: 1000,
      maxListensPerPrincipal: 32,
    });
    expect(CONFIG_DEFAULTS.sessions).toEqual(SESSIONS_DEFAULTS.sessions);
    const props = (schema.$defs as unknown as Record<string, { properties: Record<string, { default?: unknown }> }>)
      .sessions!.properties;
    for (const [key, value] of Object.entries(SESSIONS_DEFAULTS.sessions))
      expect(props[key]!.default, key).toEqual(value);
  });

  it('reads keys from secret references, in order (the first encrypts)', () => {
    const [k1, k2] = [randomBytes(32), randomBytes(32)];
    fs.writeFileSync(path.join(dir, 'old.key'), `${k2.toString('base64url')}\n`, { mode: 0o600 });
    const config = load(
      'sessions:\n  keys:\n    - fromEnv: K_NEW\n    - fromFile: old.key\n  maxLifetimeMs: 3600000\n',
      { K_NEW: k1.toString('base64url') },
    );
    expect(config.sessions!.keys.map(String)).toEqual([
      '[secret env:K_NEW]',
      `[secret file:${path.join(dir, 'old.key')}]`,
    ]);
    expect(sessionKeyBytes(config.sessions!)).toEqual([new Uint8Array(k1), new Uint8Array(k2)]);
    expect(config.sessions!.maxLifetimeMs).toBe(3_600_000);
  });

  it('refuses a key of the wrong length, one that is not base64url, a repeated key — naming its source only', () => {
    const good = randomBytes(32).toString('base64url');
    const short = randomBytes(16).toString('base64url');
    const found = problems(
      'sessions:\n  keys:\n    - fromEnv: A\n    - fromEnv: B\n    - fromEnv: C\n    - fromEnv: D\n',
      { A: good, B: short, C: 'not base64!', D: good },
    );
    expect(found.map((p) => [p.path, p.line, p.message])).toEqual([
      ['/sessions/keys/1', 4, 'session key env:B must decode to exactly 32 bytes (this one decodes to 16)'],
      ['/sessions/keys/2', 5, expect.stringMatching(/^session key env:C must be base64url/)],
      ['/sessions/keys/3', 6, 'is the same key as /sessions/keys/0'],
    ]);
    for (const p of found) expect(p.message).not.toContain(short);
  });

  it('refuses store redis without a redis section, and a lifetime out of range', () => {
    expect(problems('sessions:\n  store: redis\n').map((p) => [p.path, p.message])).toEqual([
      ['/sessions/store', 'is "redis" but there is no top-level redis section (redis.url) to connect with'],
    ]);
    expect(problems('sessions:\n  maxLifetimeMs: 1000\n').map((p) => p.path)).toEqual(['/sessions/maxLifetimeMs']);
    expect(load('redis:\n  url: redis://127.0.0.1:6379\nsessions:\n  store: redis\n').sessions!.store).toBe('redis');
  });

  it('bounds the memory store: memoryMaxEntries read, and refused out of range', () => {
    expect(load('sessions:\n  memoryMaxEntries: 5000\n').sessions!.memoryMaxEntries).toBe(5000);
    expect(problems('sessions:\n  memoryMaxEntries: 10\n').map((p) => p.path)).toEqual(['/sessions/memoryMaxEntries']);
  });

  it('session caps and the unused timeout: read, refused out of range, never longer than the idle timeout', () => {
    const config = load('sessions:\n  maxPerSubject: 5\n  maxPerClient: 50\n  unusedTimeoutMs: 5000\n');
    expect([config.sessions!.maxPerSubject, config.sessions!.maxPerClient, config.sessions!.unusedTimeoutMs]).toEqual([
      5, 50, 5000,
    ]);
    expect(problems('sessions:\n  maxPerSubject: 0\n  unusedTimeoutMs: 10\n').map((p) => p.path)).toEqual([
      '/sessions/maxPerSubject',
      '/sessions/unusedTimeoutMs',
    ]);
    const longer = problems('server:\n  sessionIdleTimeoutMs: 30000\nsessions:\n  unusedTimeoutMs: 60000\n');
    expect(longer.map((p) => [p.path, p.line, p.message])).toEqual([
      [
        '/sessions/unusedTimeoutMs',
        4,
        'must not exceed server.sessionIdleTimeoutMs (30000): it is the shorter clock of sessions never used',
      ],
    ]);
    // Left at its default, it follows a shorter idle timeout instead of making that an error.
    expect(load('server:\n  sessionIdleTimeoutMs: 30000\n').sessions!.unusedTimeoutMs).toBe(30_000);
  });

  it('the memory store built from the config holds the configured number of revocations, then refuses', async () => {
    const store = createSessionStore(load('sessions:\n  memoryMaxEntries: 1000\n'), undefined);
    const exp = Date.now() + 60_000;
    for (let i = 0; i < 1000; i++) await store.revoke(`r${i}`, exp, Date.now());
    await expect(store.opened('one-more', exp, Date.now())).rejects.toThrow(/sessions\.memoryMaxEntries/);
  });
});

describe('session authority at start', () => {
  const logged = (config: ReturnType<typeof load>): { level: number; msg: string }[] => {
    const lines: { level: number; msg: string }[] = [];
    const logger = pino(
      { level: 'info' },
      { write: (line: string) => lines.push(JSON.parse(line) as { level: number; msg: string }) },
    );
    createSessionAuthority(config, new MemorySessionStore(60_000), logger);
    return lines;
  };

  it('without keys says so once: info for one node, a warning when the store is shared (several replicas)', () => {
    expect(logged(load('')).map((l) => [l.level, l.msg.slice(0, 21)])).toEqual([[30, 'sessions.keys not set']]);
    const shared = logged(load('redis:\n  url: redis://127.0.0.1:6379\nsessions:\n  store: redis\n'));
    expect(shared.map((l) => l.level)).toEqual([40]);
    expect(shared[0]!.msg).toMatch(/set the same sessions\.keys on every replica/);
    expect(
      logged(load('sessions:\n  keys:\n    - fromEnv: K\n', { K: randomBytes(32).toString('base64url') })),
    ).toEqual([]);
  });
});
