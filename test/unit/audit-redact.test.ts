/** Built-in redaction of credential-shaped text and secret-named keys, plus `audit.redact` entries. */
import { describe, expect, it } from 'vitest';
import { createRedactor, parseRedactEntry, REDACTED, type RedactEntry } from '../../src/audit/redact.js';

const redact = createRedactor();
const JWT = 'eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ';

describe('createRedactor', () => {
  it.each([
    ['Authorization: Bearer abc.def-ghi_jkl~mno', 'Authorization: Bearer [REDACTED]'],
    [`token ${JWT} here`, `token ${REDACTED} here`],
    ['key sk-proj-AbCdEfGhIjKlMnOpQrStUvWx end', `key ${REDACTED} end`],
    ['ghp_0123456789abcdefghijABCDEFGHIJklmnop', REDACTED],
    ['AKIAIOSFODNN7EXAMPLE is an AWS key id', `${REDACTED} is an AWS key id`],
    ['xoxb-1234567890-abcdefghij', REDACTED],
    ['postgres://app:s3cr3t@db.internal:5432/x', `postgres://${REDACTED}db.internal:5432/x`],
    ['https://api.example/v1?access_token=abc123&x=1', `https://api.example/v1?access_token=${REDACTED}&x=1`],
    ['-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----', REDACTED],
  ])('replaces %j', (input, expected) => {
    expect(redact({ detail: input })).toEqual({ detail: expected });
  });

  it('replaces values under secret-named keys at any depth, whatever their type', () => {
    const out = redact({
      arguments: {
        user: 'bob',
        password: 'hunter2',
        nested: [{ 'X-Api-Key': 'k1', apiKey: { v: 1 } }],
        client_secret: 's',
        access_token: 't',
        Cookie: 'c',
        maxTokens: 5,
      },
    });
    expect(out).toEqual({
      arguments: {
        user: 'bob',
        password: REDACTED,
        nested: [{ 'X-Api-Key': REDACTED, apiKey: REDACTED }],
        client_secret: REDACTED,
        access_token: REDACTED,
        Cookie: REDACTED,
        maxTokens: 5,
      },
    });
  });

  it('cannot be dodged by spelling a secret-named key differently (case, full-width, zero-width, lookalike letters, separators)', () => {
    const keys = [
      'PASSWORD',
      'ｐａｓｓｗｏｒｄ',
      'pass\u200Bword',
      'pass\u00ADword',
      'Authorızation',
      'AUTHORİZATION',
      'р\u0430ssword',
      'api:key',
      'x/api/key',
      'tokenValue',
      'access_token_v2',
      'accessKey',
      'Mcp-Session-Id',
    ];
    const out = redact({ arguments: Object.fromEntries(keys.map((k) => [k, 'v'])) }) as {
      arguments: Record<string, unknown>;
    };
    expect(out.arguments).toEqual(Object.fromEntries(keys.map((k) => [k, REDACTED])));
    // Counting tokens is not holding one.
    expect(redact({ max_tokens: 100, maxOutputTokens: 5, tokenizer: 'cl100k', token_count: 3 })).toEqual({
      max_tokens: 100,
      maxOutputTokens: 5,
      tokenizer: 'cl100k',
      token_count: 3,
    });
  });

  it('replaces the value of a name/value pair whose name is secret (header lists, env lists)', () => {
    const out = redact({
      headers: [
        { name: 'X-Api-Key', value: 'abc123' },
        { name: 'Accept', value: 'text/plain' },
      ],
      env: [{ key: 'DB_PASSWORD', value: 'pw' }],
    });
    expect(out).toEqual({
      headers: [
        { name: 'X-Api-Key', value: REDACTED },
        { name: 'Accept', value: 'text/plain' },
      ],
      env: [{ key: 'DB_PASSWORD', value: REDACTED }],
    });
  });

  it('replaces the userinfo of any URL, also with an empty user name (redis://:pw@) or a token as the user name', () => {
    expect(redact({ detail: 'redis down: connect redis://:s3cretpw@redis:6379/0 failed' })).toEqual({
      detail: `redis down: connect redis://${REDACTED}redis:6379/0 failed`,
    });
    expect(redact({ detail: 'clone https://ghtoken123@github.com/o/r' })).toEqual({
      detail: `clone https://${REDACTED}github.com/o/r`,
    });
    expect(redact({ detail: 'see https://example.com/a?mail=a@b.example' })).toEqual({
      detail: 'see https://example.com/a?mail=a@b.example',
    });
  });

  it('leaves ordinary text alone and does not touch the input', () => {
    const input = { tool: 'fx__echo', detail: 'denied no_matching_rule', arguments: { text: 'hello world', n: 1 } };
    expect(redact(input)).toEqual(input);
    expect(redact(input)).not.toBe(input);
  });

  it('bounds what it copies and replaces lone surrogates (they would break the hash on disk)', () => {
    const out = redact({ s: 'x'.repeat(10_000), a: Array.from({ length: 300 }, (_, i) => i), bad: 'a\uD800b' }) as {
      s: string;
      a: unknown[];
      bad: string;
    };
    expect(out.s.length).toBeLessThan(4200);
    expect(out.a).toHaveLength(257);
    expect(out.bad).toBe('a\uFFFDb');
  });

  it('keeps a key named __proto__ as a plain member', () => {
    const out = redact(JSON.parse('{"__proto__":{"polluted":1}}')) as Record<string, unknown>;
    expect(Object.keys(out)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('adds audit.redact key names and /patterns/', () => {
    const entries = ['customer_ssn', '/\\b\\d{3}-\\d{2}-\\d{4}\\b/'].map(parseRedactEntry) as RedactEntry[];
    const custom = createRedactor(entries);
    expect(custom({ customerSsn: '1', note: 'ssn 123-45-6789 ok' })).toEqual({
      customerSsn: REDACTED,
      note: `ssn ${REDACTED} ok`,
    });
    expect(parseRedactEntry('/(/')).toHaveProperty('error');
    expect(parseRedactEntry('/x/g')).toHaveProperty('error');
  });
});
