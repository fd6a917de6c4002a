/** The `redis` and `limits` sections: defaults (and the schema stating them), normalisation and every refusal. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CONFIG_DEFAULTS,
  ConfigError,
  isSecretValue,
  parseConfigText,
  type ConfigProblem,
  type GatehouseConfig,
} from '../../src/config/index.js';

const schema = JSON.parse(
  fs.readFileSync(path.resolve(import.meta.dirname, '../../schemas/gatehouse.schema.json'), 'utf8'),
) as {
  $defs: Record<string, { properties: Record<string, { default?: unknown }> }>;
};
const UPSTREAMS = 'upstreams:\n  - { name: fx, transport: stdio, command: node }\n';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-limits-config-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function load(text: string, env: NodeJS.ProcessEnv = {}): GatehouseConfig {
  return parseConfigText(`${text}${UPSTREAMS}`, path.join(dir, 'gatehouse.yaml'), { env });
}

function problems(text: string, env: NodeJS.ProcessEnv = {}): ConfigProblem[] {
  try {
    load(text, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return [...(err as ConfigError).problems];
  }
  throw new Error('expected the config to be refused');
}

describe('limits and redis config', () => {
  it('the schema states the defaults of the loader', () => {
    for (const section of ['redis', 'limits'] as const) {
      for (const [key, value] of Object.entries(CONFIG_DEFAULTS[section])) {
        if (key === 'rules') continue; // no default annotation: absent means no rules
        expect(schema.$defs[section]!.properties[key]!.default, `${section}.${key}`).toEqual(value);
      }
    }
  });

  it('defaults: memory store, fail closed, no rules, no redis', () => {
    const config = load('');
    expect(config.limits).toEqual({ store: 'memory', onStoreError: 'closed', rules: [] });
    expect(config.redis).toBeUndefined();
  });

  it('normalises every rule kind: periods to ms, burst defaulting to the count, per-rule fail mode', () => {
    const config = load(
      [
        'redis: { url: "redis://127.0.0.1:6379" }',
        'limits:',
        '  store: redis',
        '  onStoreError: open',
        '  rules:',
        '    - { id: global, rate: { perSecond: 100, burst: 200 } }',
        '    - { id: per-subject, per: [subject], rate: { perMinute: 60 } }',
        '    - { id: quota, per: [client], rate: { perDay: 10000 }, onStoreError: closed }',
        '    - { id: tools, per: [subject, tool], tools: ["fx__*"], rate: { perHour: 50 }, concurrency: 2 }',
        '    - { id: in-flight, per: [upstream], concurrency: 10 }',
        '',
      ].join('\n'),
    );
    expect(config.redis).toEqual({
      url: 'redis://127.0.0.1:6379',
      keyPrefix: 'gatehouse:',
      connectTimeoutMs: 5000,
      commandTimeoutMs: 1000,
    });
    expect(config.limits).toEqual({
      store: 'redis',
      onStoreError: 'open',
      rules: [
        { id: 'global', per: [], rate: { count: 100, periodMs: 1000, burst: 200 }, onStoreError: 'open' },
        { id: 'per-subject', per: ['subject'], rate: { count: 60, periodMs: 60_000, burst: 60 }, onStoreError: 'open' },
        {
          id: 'quota',
          per: ['client'],
          rate: { count: 10_000, periodMs: 86_400_000, burst: 10_000 },
          onStoreError: 'closed',
        },
        {
          id: 'tools',
          per: ['subject', 'tool'],
          tools: ['fx__*'],
          rate: { count: 50, periodMs: 3_600_000, burst: 50 },
          concurrency: 2,
          onStoreError: 'open',
        },
        { id: 'in-flight', per: ['upstream'], concurrency: 10, onStoreError: 'open' },
      ],
    });
    expect(Object.isFrozen(config.limits!.rules[0]!.rate)).toBe(true);
  });

  it('reads a redis URL with a password from a secret reference, and refuses one written inline', () => {
    const config = load('redis: { url: { fromEnv: REDIS_URL }, keyPrefix: "gh:" }\n', {
      REDIS_URL: 'redis://:s3cret@redis:6379',
    });
    expect(isSecretValue(config.redis!.url)).toBe(true);
    expect(JSON.stringify(config.redis)).not.toContain('s3cret');
    const inline = problems('redis: { url: "redis://:s3cret@redis:6379" }\n');
    expect(inline.map((p) => p.path)).toEqual(['/redis/url']);
    expect(inline[0]!.message).toContain('inline secret refused');
    expect(inline[0]!.message).not.toContain('s3cret');
    // ioredis also reads a password from the query string: the same refusal.
    const query = problems('redis: { url: "redis://redis:6379/0?password=s3cret" }\n');
    expect(query.map((p) => p.path)).toEqual(['/redis/url']);
    expect(query[0]!.message).toContain('inline secret refused');
    expect(query[0]!.message).not.toContain('s3cret');
    const bad = problems('redis: { url: { fromEnv: REDIS_URL } }\n', { REDIS_URL: 'http://redis:6379' });
    expect(bad[0]).toMatchObject({
      path: '/redis/url/fromEnv',
      message: 'the secret from env:REDIS_URL is not a redis:// or rediss:// URL',
    });
  });

  it('refuses a redis store without redis, a rate with no or two periods, duplicate ids, a rule that limits nothing', () => {
    const found = problems(
      [
        'limits:',
        '  store: redis',
        '  rules:',
        '    - { id: a, rate: { burst: 3 } }',
        '    - { id: b, rate: { perMinute: 1, perHour: 10 } }',
        '    - { id: a, concurrency: 1 }',
        '    - { id: c, per: [subject] }',
        '',
      ].join('\n'),
    );
    expect(found.map((p) => `${p.line}: ${p.path}: ${p.message}`)).toEqual([
      '2: /limits/store: is "redis" but there is no top-level redis section (redis.url) to connect with',
      '4: /limits/rules/0/rate: needs one of perSecond, perMinute, perHour, perDay',
      '5: /limits/rules/1/rate: has perMinute and perHour: give exactly one period (one rule per period for several)',
      '6: /limits/rules/2/id: duplicate limit id "a"',
      '7: /limits/rules/3: limit "c" has neither rate nor concurrency',
    ]);
  });

  it('refuses unknown keys, bad ids, unknown dimensions and fail modes through the schema', () => {
    const found = problems(
      'limits:\n  onStoreError: maybe\n  rules:\n    - { id: "bad id", per: [ip], rate: { perMinute: 0 }, extra: 1 }\n',
    );
    const paths = found.map((p) => p.path);
    expect(paths).toContain('/limits/onStoreError');
    expect(paths).toContain('/limits/rules/0/id');
    expect(paths).toContain('/limits/rules/0/per/0');
    expect(paths).toContain('/limits/rules/0/rate/perMinute');
    expect(paths).toContain('/limits/rules/0/extra');
  });
});
