/** The policy keys of the data path (docs/policy.md "Result cache", "Idempotent writes"): compiled and merged. */
import { describe, expect, it } from 'vitest';
import type { Principal } from '../../src/identity/principal.js';
import { compilePolicy } from '../../src/policy/compile.js';
import { decide } from '../../src/policy/decide.js';
import { ConfigError } from '../../src/errors/config-error.js';

const who: Principal = { subject: 'alice', groups: [], anonymous: false, scopes: new Set() };
const call = (name: string) => ({
  principal: who,
  method: 'tools/call',
  target: { kind: 'tool' as const, name, upstream: 'orders' },
  now: 0,
});

describe('policy cache, invalidates, idempotency', () => {
  const p = compilePolicy([
    {
      file: 'a.yaml',
      text: `version: 1
rules:
  - id: read
    effect: allow
    match: { tools: [orders__get_order, orders__search] }
    cache: { ttl: 30s }
  - id: read-public
    effect: allow
    match: { tools: [orders__search] }
    cache: { ttl: 10s, scope: public }
  - id: write
    effect: allow
    match: { tools: [orders__update] }
    invalidates: [orders__get_order]
    idempotency: { key: idempotency_key, ttl: 24h }
`,
    },
  ]);

  it('carries the rule keys on the allow; several rules: shortest ttl, narrowest scope', () => {
    expect(decide(call('orders__get_order'), p)).toMatchObject({ cache: { ttlMs: 30_000, scope: 'principal' } });
    expect(decide(call('orders__search'), p)).toMatchObject({ cache: { ttlMs: 10_000, scope: 'principal' } });
    const w = decide(call('orders__update'), p);
    expect(w).toMatchObject({
      invalidates: ['orders__get_order'],
      idempotency: { key: 'idempotency_key', ttlMs: 86_400_000 },
    });
    expect(w).not.toHaveProperty('cache');
  });

  it('refuses bad durations, globs in invalidates and the keys on deny rules', () => {
    const bad = (rule: string) => () =>
      compilePolicy([{ file: 'b.yaml', text: `version: 1\nrules:\n  - id: r\n    match: { tools: [t] }\n${rule}` }]);
    expect(bad('    effect: allow\n    cache: { ttl: 2d }\n')).toThrow(ConfigError);
    expect(bad('    effect: allow\n    cache: { ttl: 30 }\n')).toThrow(ConfigError);
    expect(bad('    effect: allow\n    invalidates: ["orders__*"]\n')).toThrow(ConfigError);
    expect(bad('    effect: deny\n    cache: { ttl: 30s }\n')).toThrow(ConfigError);
  });
});
