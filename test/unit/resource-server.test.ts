/**
 * The resource-server pieces around the verifiers: bearer extraction (RFC 6750 §2.1), challenges (RFC 6750 §3,
 * RFC 9728 §5.1), the authenticator's status/challenge mapping, and RFC 7662 introspection with its cache,
 * against a real introspection endpoint (node:http on 127.0.0.1:0).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extractBearer, hasQueryToken, MAX_BEARER_TOKEN_LENGTH } from '../../src/auth/bearer.js';
import {
  insufficientScopeChallenge,
  invalidRequestChallenge,
  invalidTokenChallenge,
  missingTokenChallenge,
  protectedResourceMetadataUrl,
  quote,
} from '../../src/auth/challenge.js';
import {
  IntrospectionVerifier,
  judge,
  type IntrospectionVerifierOptions,
} from '../../src/auth/introspection-verifier.js';
import { ResourceServerAuthenticator } from '../../src/auth/resource-server.js';
import type { TokenVerifier, VerifyContext, VerifyResult } from '../../src/auth/token-verifier.js';

const RESOURCE = 'https://gatehouse.example.test/mcp';
const PRM = 'https://gatehouse.example.test/.well-known/oauth-protected-resource/mcp';
const NOW = Date.UTC(2026, 5, 1, 12, 0, 0);
const NOW_S = Math.floor(NOW / 1000);
const CLAIMS = { scope: 'scope', groups: 'groups', clientId: 'client_id' };

describe('extractBearer (RFC 6750 §2.1)', () => {
  it('reads one Bearer token, scheme case-insensitive', () => {
    expect(extractBearer({ authorization: 'Bearer abc.DEF-_~+/=' })).toEqual({ ok: true, token: 'abc.DEF-_~+/=' });
    expect(extractBearer({ authorization: 'bearer x==' })).toEqual({ ok: true, token: 'x==' });
    expect(extractBearer({ authorization: 'BEARER   x' })).toEqual({ ok: true, token: 'x' });
  });

  it('treats no header or another scheme as a missing token (no error code, RFC 6750 §3.1)', () => {
    expect(extractBearer({})).toMatchObject({ ok: false, reason: 'missing_token' });
    expect(extractBearer({ authorization: 'Basic dXNlcjpwYXNz' })).toMatchObject({
      ok: false,
      reason: 'missing_token',
    });
    expect(extractBearer({ authorization: 'DPoP abc' })).toMatchObject({ ok: false, reason: 'missing_token' });
  });

  it('refuses malformed, repeated and oversized credentials', () => {
    for (const authorization of [
      'Bearer',
      'Bearer ',
      'Bearer a b',
      'Bearer a=b',
      'Bearer "abc"',
      'Bearer a,b',
      'Bearer\tabc',
      'Bearerabc',
      ' ',
      '=abc',
    ]) {
      expect(extractBearer({ authorization }), authorization).toMatchObject({ ok: false });
      expect(extractBearer({ authorization }).ok).toBe(false);
    }
    expect(extractBearer({ authorization: 'Bearer a b' })).toMatchObject({ reason: 'malformed_header' });
    expect(
      extractBearer({ authorization: 'Bearer abc' }, [
        'Host',
        'x',
        'Authorization',
        'Bearer abc',
        'authorization',
        'Bearer def',
      ]),
    ).toMatchObject({ ok: false, reason: 'malformed_header' });
    expect(extractBearer({ authorization: ['Bearer a', 'Bearer b'] as unknown as string })).toMatchObject({
      ok: false,
      reason: 'malformed_header',
    });
    expect(extractBearer({ authorization: `Bearer ${'a'.repeat(MAX_BEARER_TOKEN_LENGTH)}` }).ok).toBe(true);
    expect(extractBearer({ authorization: `Bearer ${'a'.repeat(MAX_BEARER_TOKEN_LENGTH + 1)}` })).toMatchObject({
      ok: false,
      reason: 'malformed_header',
    });
    expect(extractBearer({ authorization: `Bearer ${'a'.repeat(1_000_000)}` })).toMatchObject({
      ok: false,
      reason: 'malformed_header',
    });
  });
});

describe('hasQueryToken (RFC 6750 §2.3, refused by the edge)', () => {
  it('finds access_token in the query however it is spelled on the wire, and nothing else', () => {
    for (const url of [
      '/mcp?access_token=x',
      '/mcp?a=1&access_token=x',
      '/mcp?access_token',
      '/mcp?access%5Ftoken=x',
      '/mcp?%61ccess_token=x',
      '/?x=%20&access_token=',
    ]) {
      expect(hasQueryToken(url), url).toBe(true);
    }
    for (const url of [
      '/mcp',
      '/mcp?',
      '/mcp?token=x',
      '/mcp?my_access_token=x',
      '/mcp?x=access_token',
      '/mcp?x=%41',
      '/access_token=x',
    ]) {
      expect(hasQueryToken(url), url).toBe(false);
    }
  });
});

describe('challenges', () => {
  const ctx = { resourceMetadata: PRM, requiredScopes: ['mcp:read', 'mcp:write'] };

  it('derives the path-suffixed metadata URL from the resource (RFC 9728 §3.1)', () => {
    expect(protectedResourceMetadataUrl(RESOURCE)).toBe(PRM);
    expect(protectedResourceMetadataUrl('https://gw.example.test/')).toBe(
      'https://gw.example.test/.well-known/oauth-protected-resource',
    );
    expect(protectedResourceMetadataUrl('https://gw.example.test:8443/a/mcp/')).toBe(
      'https://gw.example.test:8443/.well-known/oauth-protected-resource/a/mcp',
    );
  });

  it('builds the three challenges', () => {
    expect(missingTokenChallenge(ctx)).toBe(`Bearer resource_metadata="${PRM}", scope="mcp:read mcp:write"`);
    expect(missingTokenChallenge({ ...ctx, requiredScopes: [] })).toBe(`Bearer resource_metadata="${PRM}"`);
    expect(invalidTokenChallenge(ctx)).toBe(
      `Bearer error="invalid_token", error_description="The access token is invalid", resource_metadata="${PRM}"`,
    );
    expect(insufficientScopeChallenge(ctx, ['mcp:admin'])).toMatch(
      /^Bearer error="insufficient_scope", scope="mcp:admin", resource_metadata="[^"]+", error_description="[^"]+"$/,
    );
  });

  it('builds the invalid_request challenge (RFC 6750 §3.1), with resource_metadata only where metadata is served', () => {
    const description = 'error_description="Send the access token once, in one Authorization: Bearer header"';
    expect(invalidRequestChallenge(ctx)).toBe(
      `Bearer error="invalid_request", ${description}, resource_metadata="${PRM}"`,
    );
    expect(invalidRequestChallenge(undefined)).toBe(`Bearer error="invalid_request", ${description}`);
  });

  it('escapes quotes and backslashes and drops control characters', () => {
    expect(quote('a"b\\c\r\nd\u00e9')).toBe('"a\\"b\\\\cd"');
  });
});

class FakeVerifier implements TokenVerifier {
  calls: { token: string; ctx: VerifyContext }[] = [];
  constructor(private readonly answer: VerifyResult) {}
  async verify(token: string, ctx: VerifyContext): Promise<VerifyResult> {
    this.calls.push({ token, ctx });
    return this.answer;
  }
}

const principal = (scopes: string[]): VerifyResult => ({
  ok: true,
  principal: { subject: 'alice', scopes: new Set(scopes), groups: [], anonymous: false },
});

describe('ResourceServerAuthenticator', () => {
  const JWT = `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.e30.c2ln`;
  const OPAQUE = 'opaque-token-123';

  it('routes JWT-shaped tokens to the JWT verifier and others to introspection', async () => {
    const jwt = new FakeVerifier(principal(['mcp:read']));
    const intro = new FakeVerifier(principal(['mcp:read']));
    const auth = new ResourceServerAuthenticator({
      resource: RESOURCE,
      requiredScopes: ['mcp:read'],
      jwt,
      introspection: intro,
      now: () => NOW,
    });
    expect(
      (await auth.authenticate({ headers: { authorization: `Bearer ${JWT}` }, remoteAddress: '127.0.0.1' })).ok,
    ).toBe(true);
    expect(
      (await auth.authenticate({ headers: { authorization: `Bearer ${OPAQUE}` }, remoteAddress: '127.0.0.1' })).ok,
    ).toBe(true);
    expect(
      (await auth.authenticate({ headers: { authorization: 'Bearer a.b.c.d.e' }, remoteAddress: '127.0.0.1' })).ok,
    ).toBe(true);
    expect(
      (await auth.authenticate({ headers: { authorization: 'Bearer opaque.with.dots' }, remoteAddress: '127.0.0.1' }))
        .ok,
    ).toBe(true);
    expect(jwt.calls.map((c) => c.token)).toEqual([JWT]);
    expect(intro.calls.map((c) => c.token)).toEqual([OPAQUE, 'a.b.c.d.e', 'opaque.with.dots']);
    expect(jwt.calls[0]!.ctx).toEqual({ now: NOW });
  });

  it('answers 401 without error for no token, 400 invalid_request for a malformed header, 401 invalid_token for a bad token, 403 for a missing scope, 503 when the verifier is down', async () => {
    const ok = new ResourceServerAuthenticator({
      resource: RESOURCE,
      requiredScopes: ['mcp:read', 'mcp:write'],
      jwt: new FakeVerifier(principal(['mcp:read'])),
    });
    const none = await ok.authenticate({ headers: {}, remoteAddress: undefined });
    expect(none).toMatchObject({
      ok: false,
      status: 401,
      reason: 'missing_token',
      wwwAuthenticate: `Bearer resource_metadata="${PRM}", scope="mcp:read mcp:write"`,
    });
    const malformed = await ok.authenticate({ headers: { authorization: 'Bearer a b' }, remoteAddress: undefined });
    // RFC 6750 §3.1: a malformed request is 400 invalid_request, not a verdict on a token nobody looked at.
    expect(malformed).toMatchObject({ ok: false, status: 400, reason: 'malformed_header' });
    expect(!malformed.ok && malformed.wwwAuthenticate).toBe(
      `Bearer error="invalid_request", error_description="Send the access token once, in one Authorization: Bearer header", resource_metadata="${PRM}"`,
    );
    const twice = await ok.authenticate({
      headers: { authorization: `Bearer ${JWT}` },
      rawHeaders: ['Authorization', `Bearer ${JWT}`, 'authorization', 'Bearer x'],
      remoteAddress: undefined,
    });
    expect(twice).toMatchObject({
      ok: false,
      status: 400,
      reason: 'malformed_header',
      wwwAuthenticate: expect.stringContaining('error="invalid_request"'),
    });
    const scope = await ok.authenticate({ headers: { authorization: `Bearer ${JWT}` }, remoteAddress: undefined });
    expect(scope).toMatchObject({
      ok: false,
      status: 403,
      reason: 'insufficient_scope',
      wwwAuthenticate: expect.stringContaining('scope="mcp:read mcp:write"'),
      detail: 'missing scope(s): mcp:write',
    });

    const bad = new ResourceServerAuthenticator({
      resource: RESOURCE,
      requiredScopes: [],
      jwt: new FakeVerifier({ ok: false, reason: 'expired', detail: 'exp is in the past' }),
    });
    const r = await bad.authenticate({ headers: { authorization: `Bearer ${JWT}` }, remoteAddress: undefined });
    expect(r).toMatchObject({ ok: false, status: 401, reason: 'expired' });
    expect(!r.ok && r.wwwAuthenticate).toBe(
      `Bearer error="invalid_token", error_description="The access token is invalid", resource_metadata="${PRM}"`,
    );

    const down = new ResourceServerAuthenticator({
      resource: RESOURCE,
      requiredScopes: [],
      introspection: new FakeVerifier({ ok: false, reason: 'verifier_unavailable', detail: 'x' }),
    });
    expect(
      await down.authenticate({ headers: { authorization: `Bearer ${OPAQUE}` }, remoteAddress: undefined }),
    ).toMatchObject({ ok: false, status: 503, reason: 'verifier_unavailable' });
  });

  it('passes the client certificate thumbprint to the verifier and its identity into the principal', async () => {
    const jwt = new FakeVerifier(principal([]));
    const auth = new ResourceServerAuthenticator({ resource: RESOURCE, requiredScopes: [], jwt, now: () => NOW });
    const r = await auth.authenticate({
      headers: { authorization: `Bearer ${JWT}` },
      remoteAddress: '127.0.0.1',
      clientCert: { subject: 'CN=agent', sans: ['DNS:agent'], thumbprint: 'th' },
    });
    expect(jwt.calls[0]!.ctx).toEqual({ now: NOW, certThumbprint: 'th' });
    expect(r.ok && r.principal).toMatchObject({
      certThumbprint: 'th',
      certSubject: 'CN=agent',
      certSans: ['DNS:agent'],
    });
  });
});

describe('judge (RFC 7662 response rules)', () => {
  const expectation = { issuer: 'https://idp.test', audience: RESOURCE, now: NOW, rules: { skewSeconds: 0 } };
  const active = {
    active: true,
    iss: 'https://idp.test',
    aud: RESOURCE,
    sub: 'alice',
    exp: NOW_S + 60,
    token_type: 'Bearer',
  };

  it('accepts an active token for us and refuses everything else', () => {
    expect(judge(active, expectation)).toMatchObject({ ok: true, subject: 'alice' });
    expect(judge({ ...active, sub: undefined, client_id: 'svc' }, expectation)).toMatchObject({
      ok: true,
      subject: 'svc',
    });
    expect(judge({ ...active, iss: undefined }, expectation).ok).toBe(true);
    expect(judge({ ...active, exp: undefined }, expectation).ok).toBe(true);
    expect(judge({ active: false }, expectation)).toMatchObject({ reason: 'inactive' });
    expect(judge({ ...active, iss: 'https://evil.test' }, expectation)).toMatchObject({ reason: 'wrong_issuer' });
    expect(judge({ ...active, aud: undefined }, expectation)).toMatchObject({
      reason: 'wrong_audience',
      detail: 'introspection response has no aud',
    });
    expect(judge({ ...active, aud: ['http://127.0.0.1:9101/mcp'] }, expectation)).toMatchObject({
      reason: 'wrong_audience',
    });
    expect(judge({ ...active, exp: NOW_S }, expectation)).toMatchObject({ reason: 'expired' });
    expect(judge({ ...active, nbf: NOW_S + 10 }, expectation)).toMatchObject({ reason: 'not_yet_valid' });
    expect(judge({ ...active, token_type: 'DPoP' }, expectation)).toMatchObject({ reason: 'wrong_type' });
    expect(judge({ ...active, sub: undefined }, expectation)).toMatchObject({ reason: 'invalid_token' });
  });

  it('refuses an iat in the future beyond the skew (RFC 7662 §2.2 iat), and time members that are not NumericDates', () => {
    const skewed = { ...expectation, rules: { skewSeconds: 30 } };
    expect(judge({ ...active, iat: NOW_S + 31 }, skewed)).toMatchObject({
      ok: false,
      reason: 'not_yet_valid',
      detail: expect.stringContaining('iat'),
    });
    expect(judge({ ...active, iat: NOW_S + 30 }, skewed).ok).toBe(true);
    expect(judge({ ...active, iat: NOW_S - 86_400 }, skewed).ok).toBe(true); // no maximum age: the AS's active decides
    for (const claim of ['exp', 'nbf', 'iat']) {
      expect(judge({ ...active, [claim]: String(NOW_S) }, skewed), claim).toMatchObject({
        ok: false,
        reason: 'invalid_token',
        detail: `${claim} is not a NumericDate`,
      });
    }
  });
});

describe('IntrospectionVerifier against a real endpoint', () => {
  let server: Server;
  let endpoint: string;
  let hits = 0;
  /** token → response body; the server also checks our client authentication. */
  const answers = new Map<string, Record<string, unknown>>();
  let delayMs = 0;
  let lastAuth: string | undefined;

  beforeAll(async () => {
    server = createServer((req, res) => {
      hits++;
      lastAuth = req.headers.authorization;
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const params = new URLSearchParams(body);
        const clientOk =
          req.headers.authorization === `Basic ${Buffer.from('gw:s3cret').toString('base64')}` ||
          (params.get('client_id') === 'gw' && params.get('client_secret') === 's3cret');
        setTimeout(() => {
          if (!clientOk)
            return void res
              .writeHead(401, { 'content-type': 'application/json' })
              .end(JSON.stringify({ error: 'invalid_client' }));
          const answer = answers.get(params.get('token') ?? '') ?? { active: false };
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
        }, delayMs);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/introspect`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const opts = (extra: Partial<IntrospectionVerifierOptions> = {}): IntrospectionVerifierOptions => ({
    endpoint,
    issuer: 'https://idp.test',
    clientId: 'gw',
    clientSecret: 's3cret',
    audience: RESOURCE,
    cacheSeconds: 60,
    cacheMaxEntries: 100,
    clockSkewSeconds: 0,
    claims: CLAIMS,
    ...extra,
  });
  const good = (sub: string, exp = NOW_S + 600): Record<string, unknown> => ({
    active: true,
    iss: 'https://idp.test',
    aud: [RESOURCE],
    sub,
    client_id: 'agent',
    scope: 'mcp:read',
    exp,
    token_type: 'Bearer',
  });

  it('verifies, caches by token hash for min(cacheSeconds, exp), and caches refusals briefly', async () => {
    answers.set('t-good', good('alice'));
    answers.set('t-short', good('bob', NOW_S + 10));
    const v = new IntrospectionVerifier(opts());
    hits = 0;
    const r = await v.verify('t-good', { now: NOW });
    expect(r.ok && r.principal).toMatchObject({
      subject: 'alice',
      clientId: 'agent',
      issuer: 'https://idp.test',
      expiresAt: (NOW_S + 600) * 1000,
    });
    expect(lastAuth).toMatch(/^Basic /);
    await v.verify('t-good', { now: NOW + 59_000 });
    expect(hits).toBe(1);
    await v.verify('t-good', { now: NOW + 61_000 });
    expect(hits).toBe(2); // cacheSeconds elapsed

    await v.verify('t-short', { now: NOW });
    await v.verify('t-short', { now: NOW + 9_000 });
    expect(hits).toBe(3);
    expect(await v.verify('t-short', { now: NOW + 11_000 })).toMatchObject({ ok: false, reason: 'expired' }); // never beyond exp
    expect(hits).toBe(4);

    expect(await v.verify('t-unknown', { now: NOW })).toMatchObject({ ok: false, reason: 'inactive' });
    expect(await v.verify('t-unknown', { now: NOW + 4_000 })).toMatchObject({ ok: false, reason: 'inactive' });
    expect(hits).toBe(5);
    await v.verify('t-unknown', { now: NOW + 6_000 });
    expect(hits).toBe(6);
  });

  it('collapses concurrent introspections of one token into one request', async () => {
    answers.set('t-burst', good('carol'));
    const v = new IntrospectionVerifier(opts({ clientAuth: 'client_secret_post' }));
    hits = 0;
    delayMs = 100;
    try {
      const results = await Promise.all(Array.from({ length: 20 }, () => v.verify('t-burst', { now: NOW })));
      expect(results.every((r) => r.ok)).toBe(true);
      expect(hits).toBe(1);
      expect(lastAuth).toBeUndefined(); // client_secret_post
    } finally {
      delayMs = 0;
    }
  });

  it('bounds the cache (LRU)', async () => {
    const v = new IntrospectionVerifier(opts({ cacheMaxEntries: 3 }));
    for (const t of ['a1', 'a2', 'a3', 'a4']) {
      answers.set(t, good(t));
      await v.verify(t, { now: NOW });
    }
    expect(v.cacheSize).toBe(3);
    hits = 0;
    await v.verify('a4', { now: NOW });
    expect(hits).toBe(0);
    await v.verify('a1', { now: NOW }); // evicted
    expect(hits).toBe(1);
  });

  it('answers verifier_unavailable (uncached) when the AS refuses us or is unreachable', async () => {
    answers.set('t-x', good('dave'));
    const wrongSecret = new IntrospectionVerifier(opts({ clientSecret: 'nope' }));
    hits = 0;
    expect(await wrongSecret.verify('t-x', { now: NOW })).toMatchObject({ ok: false, reason: 'verifier_unavailable' });
    expect(await wrongSecret.verify('t-x', { now: NOW })).toMatchObject({ ok: false, reason: 'verifier_unavailable' });
    expect(hits).toBe(2);
    const closed = new IntrospectionVerifier(opts({ endpoint: 'http://127.0.0.1:1/introspect' }));
    const r = await closed.verify('t-x', { now: NOW });
    expect(r).toMatchObject({ ok: false, reason: 'verifier_unavailable' });
    expect(!r.ok && r.detail).not.toContain('t-x');
  });

  it('checks the certificate binding on every request, after the cache', async () => {
    answers.set('t-bound', { ...good('erin'), cnf: { 'x5t#S256': 'thumb' } });
    const v = new IntrospectionVerifier(opts());
    expect(await v.verify('t-bound', { now: NOW })).toMatchObject({ ok: false, reason: 'certificate_required' });
    expect(await v.verify('t-bound', { now: NOW, certThumbprint: 'other' })).toMatchObject({
      ok: false,
      reason: 'certificate_mismatch',
    });
    const ok = await v.verify('t-bound', { now: NOW, certThumbprint: 'thumb' });
    expect(ok.ok && ok.principal.certThumbprint).toBe('thumb');
  });

  it('applies the time rules on every cache hit, not just exp: a clock stepped back before iat or nbf refuses', async () => {
    answers.set('t-times', { ...good('frank'), iat: NOW_S, nbf: NOW_S });
    const v = new IntrospectionVerifier(opts());
    hits = 0;
    expect((await v.verify('t-times', { now: NOW })).ok).toBe(true);
    expect(await v.verify('t-times', { now: NOW - 10_000 })).toMatchObject({ ok: false, reason: 'not_yet_valid' });
    expect(hits).toBe(1); // the cached answer, judged again
  });

  it('refuses a non-loopback http endpoint at construction', () => {
    expect(() => new IntrospectionVerifier(opts({ endpoint: 'http://idp.example.test/introspect' }))).toThrow(
      TypeError,
    );
  });
});

describe('ResourceServerAuthenticator: revocation hook (auth.mode builtin)', () => {
  const withJti = (jti?: string): VerifyResult => ({
    ok: true,
    principal: {
      subject: 'alice',
      scopes: new Set(['mcp:read']),
      groups: [],
      anonymous: false,
      ...(jti !== undefined ? { tokenId: jti } : {}),
    },
  });
  const req = { headers: { authorization: 'Bearer opaque-token-123' }, remoteAddress: undefined };
  const make = (answer: VerifyResult, isRevoked: (jti: string) => Promise<boolean>) =>
    new ResourceServerAuthenticator({
      resource: RESOURCE,
      requiredScopes: ['mcp:read'],
      introspection: new FakeVerifier(answer),
      isRevoked,
    });

  it('accepts a token whose jti is not revoked, refuses a revoked one with invalid_token', async () => {
    const asked: string[] = [];
    const revoked = new Set(['j-2']);
    const isRevoked = async (jti: string) => (asked.push(jti), revoked.has(jti));
    expect(await make(withJti('j-1'), isRevoked).authenticate(req)).toMatchObject({ ok: true });
    const refused = await make(withJti('j-2'), isRevoked).authenticate(req);
    expect(refused).toMatchObject({ ok: false, status: 401, reason: 'revoked' });
    expect((refused as { wwwAuthenticate: string }).wwwAuthenticate).toBe(
      invalidTokenChallenge({ resourceMetadata: PRM, requiredScopes: ['mcp:read'] }),
    );
    expect(asked).toEqual(['j-1', 'j-2']);
  });

  it('refuses a token without jti (its revocation cannot be checked), and answers 503 when the store fails', async () => {
    expect(await make(withJti(), async () => false).authenticate(req)).toMatchObject({
      ok: false,
      status: 401,
      reason: 'invalid_token',
    });
    expect(
      await make(withJti('j-1'), async () => {
        throw new Error('redis down');
      }).authenticate(req),
    ).toMatchObject({ ok: false, status: 503, reason: 'verifier_unavailable', wwwAuthenticate: '' });
  });

  it('is not asked when the token does not verify', async () => {
    let asked = false;
    const result = await make({ ok: false, reason: 'expired', detail: 'x' }, async () => (asked = true)).authenticate(
      req,
    );
    expect(result).toMatchObject({ ok: false, status: 401, reason: 'expired' });
    expect(asked).toBe(false);
  });
});
