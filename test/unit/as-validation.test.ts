/**
 * The pure parts of the built-in AS: redirect URI rules, client metadata, client-id URLs, PKCE, scopes,
 * signing keys, the metadata-document resolver, and misuse of the plugin options (fails at start-up).
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import Fastify from 'fastify';
import { pino } from 'pino';
import { exportJWK, generateKeyPair } from 'jose';
import { secretValue } from '../../src/config/secrets.js';
import type { BuiltinAsConfig } from '../../src/config/types.js';
import { ClientMetadataResolver, clientIdUrlProblem } from '../../src/auth/as/client-metadata-document.js';
import { validateClientMetadata } from '../../src/auth/as/client-metadata.js';
import { loadSigningKeys } from '../../src/auth/as/keys.js';
import { isValidCodeChallenge, verifyS256 } from '../../src/auth/as/pkce.js';
import { registerAuthorizationServer } from '../../src/auth/as/plugin.js';
import { redirectUriProblem } from '../../src/auth/as/redirect-uri.js';
import type { SafeFetcher } from '../../src/auth/as/safe-fetch.js';
import { groupsFromClaim, parseScope, scopesFromClaims } from '../../src/auth/as/scopes.js';
import { MemoryAsStore } from '../../src/stores/as/memory-as-store.js';
import { privateJwk, testConfig } from '../helpers/as-harness.js';

describe('redirect URIs', () => {
  it.each([
    'https://app.example/cb',
    'https://app.example:8443/cb?x=1',
    'http://127.0.0.1:8080/cb',
    'http://localhost:3000/callback',
    'http://[::1]:9/cb',
    'http://127.0.0.1/cb',
  ])('accepts %s', (uri) => {
    expect(redirectUriProblem(uri)).toBeUndefined();
  });
  it.each([
    ['javascript:alert(1)', 'scheme'],
    ['data:text/html,x', 'scheme'],
    ['http://app.example/cb', 'scheme'],
    ['http://127.0.0.2/cb', 'scheme'],
    ['http://localhost.evil.example/cb', 'scheme'],
    ['myapp://cb', 'scheme'],
    ['https://app.example/cb#x', 'fragment'],
    ['https://app.example/cb#', 'fragment'],
    ['https://u@app.example/cb', 'userinfo'],
    ['https://app.example/c b', 'whitespace'],
    ['https://app.example/cb\t', 'whitespace'],
    ['https://app.example\\@evil.example/', 'whitespace'],
    ['/cb', 'not_a_url'],
    [`https://app.example/${'a'.repeat(2001)}`, 'too_long'],
  ])('refuses %s (%s)', (uri, problem) => {
    expect(redirectUriProblem(uri)).toBe(problem);
  });
});

describe('client metadata', () => {
  const opts = { scopesSupported: ['mcp:tools'], requireClientName: false };
  it('fills defaults for a minimal public client', () => {
    expect(validateClientMetadata({ redirect_uris: ['http://127.0.0.1:1/cb'] }, opts)).toEqual({
      ok: true,
      value: { redirectUris: ['http://127.0.0.1:1/cb'], grantTypes: ['authorization_code', 'refresh_token'] },
    });
  });
  it.each([
    [{}, 'invalid_redirect_uri'],
    [{ redirect_uris: 'http://127.0.0.1/cb' }, 'invalid_redirect_uri'],
    [{ redirect_uris: Array.from({ length: 11 }, (_, i) => `http://127.0.0.1:${i + 1}/cb`) }, 'invalid_redirect_uri'],
    [{ redirect_uris: [42] }, 'invalid_redirect_uri'],
    [
      { redirect_uris: ['http://127.0.0.1/cb'], token_endpoint_auth_method: 'private_key_jwt' },
      'invalid_client_metadata',
    ],
    [{ redirect_uris: ['http://127.0.0.1/cb'], grant_types: ['refresh_token'] }, 'invalid_client_metadata'],
    [{ redirect_uris: ['http://127.0.0.1/cb'], grant_types: ['implicit'] }, 'invalid_client_metadata'],
    [{ redirect_uris: ['http://127.0.0.1/cb'], response_types: ['token'] }, 'invalid_client_metadata'],
    [{ redirect_uris: ['http://127.0.0.1/cb'], client_name: '' }, 'invalid_client_metadata'],
    [{ redirect_uris: ['http://127.0.0.1/cb'], client_name: 'a\u0000b' }, 'invalid_client_metadata'],
    [{ redirect_uris: ['http://127.0.0.1/cb'], scope: 'mcp:admin' }, 'invalid_client_metadata'],
    [null, 'invalid_client_metadata'],
  ])('refuses %j', (doc, error) => {
    expect(validateClientMetadata(doc, opts)).toMatchObject({ ok: false, error });
  });
  it('metadata documents must carry a client_name', () => {
    expect(
      validateClientMetadata({ redirect_uris: ['http://127.0.0.1/cb'] }, { ...opts, requireClientName: true }),
    ).toMatchObject({ ok: false });
  });
});

describe('client ID URLs', () => {
  it.each(['https://app.example/client.json', 'https://app.example/a/b?v=1'])('accepts %s', (id) =>
    expect(clientIdUrlProblem(id)).toBeUndefined(),
  );
  it.each([
    ['http://app.example/client.json', 'not https'],
    ['https://app.example/', 'no path'],
    ['https://app.example', 'no path'],
    ['https://app.example/c.json#x', 'fragment'],
    ['https://u:p@app.example/c.json', 'userinfo'],
    ['https://app.example/a/../c.json', 'dot segment'],
    ['https://app.example/a/%2e%2e/c.json', 'dot segment'],
    ['https://APP.example/c.json', 'not in canonical form'],
    ['https://app.example:443/c.json', 'not in canonical form'],
    ['https://app.example/c json', 'whitespace or backslash'],
  ])('refuses %s (%s)', (id, problem) => expect(clientIdUrlProblem(id)).toBe(problem));
  it('plain http only on loopback, only with the unsafe switch', () => {
    expect(clientIdUrlProblem('http://127.0.0.1:9/c.json', { allowHttpLoopback: true })).toBeUndefined();
    expect(clientIdUrlProblem('http://app.example/c.json', { allowHttpLoopback: true })).toBe('not https');
  });
});

describe('client ID metadata document resolver', () => {
  const url = 'https://app.example/client.json';
  const good = { client_id: url, client_name: 'App', redirect_uris: ['https://app.example/cb'] };
  function resolver(fetch: SafeFetcher, now = () => 0) {
    return new ClientMetadataResolver({ fetch, scopesSupported: [], now });
  }

  it('caches by max-age (at most 5 minutes) and shares concurrent fetches', async () => {
    let t = 0;
    const fetch = vi.fn<SafeFetcher>(async () => ({ ok: true, body: good, maxAgeSeconds: 3600 }));
    const r = resolver(fetch, () => t);
    const [a, b] = await Promise.all([r.resolve(url), r.resolve(url)]);
    expect(a).toMatchObject({ ok: true, client: { clientId: url, clientName: 'App', source: 'metadata_document' } });
    expect(b).toEqual(a);
    expect(fetch).toHaveBeenCalledTimes(1);
    t = 299_000;
    await r.resolve(url);
    expect(fetch).toHaveBeenCalledTimes(1);
    t = 301_000;
    await r.resolve(url);
    expect(fetch).toHaveBeenCalledTimes(2);
  });

  it('does not cache no-store answers or failures', async () => {
    const fetch = vi.fn<SafeFetcher>(async () => ({ ok: true, body: good, maxAgeSeconds: 0 }));
    const r = resolver(fetch);
    await r.resolve(url);
    await r.resolve(url);
    expect(fetch).toHaveBeenCalledTimes(2);
  });

  it('refuses a document naming another client id, and never fetches a malformed client id', async () => {
    const fetch = vi.fn<SafeFetcher>(async () => ({ ok: true, body: { ...good, client_id: `${url}?x` } }));
    expect(await resolver(fetch).resolve(url)).toMatchObject({ ok: false });
    const never = vi.fn<SafeFetcher>();
    expect(await resolver(never).resolve('http://app.example/client.json')).toMatchObject({ ok: false });
    expect(never).not.toHaveBeenCalled();
  });
});

describe('PKCE S256', () => {
  it('matches the RFC 7636 Appendix B example', () => {
    expect(
      verifyS256('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk', 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'),
    ).toBe(true);
    expect(
      verifyS256('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj', 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'),
    ).toBe(false);
  });
  it('refuses plain (verifier = challenge) and malformed values', () => {
    const v = 'a'.repeat(43);
    expect(verifyS256(v, v)).toBe(false);
    expect(verifyS256('short', 'E9Melhoa2OwvFrEMTJguCHaoeUdtPXzE0yQ5ZQtbkaE')).toBe(false);
    expect(isValidCodeChallenge('E9Melhoa2OwvFrEMTJguCHaoeUdtPXzE0yQ5ZQtbkaE')).toBe(true);
    expect(isValidCodeChallenge('E9Melhoa2OwvFrEMTJguCHaoeUdtPXzE0yQ5ZQtbka=')).toBe(false);
  });
});

describe('scopes', () => {
  it('parses scope strings strictly', () => {
    expect(parseScope('a b  a c')).toEqual(['a', 'b', 'c']);
    expect(parseScope('')).toEqual([]);
    expect(parseScope('a "b"')).toBeUndefined();
    expect(parseScope('a\\b')).toBeUndefined();
  });
  it('bounds the groups carried into tokens', () => {
    expect(groupsFromClaim('eng')).toEqual(['eng']);
    expect(groupsFromClaim(['a', 1, '', 'b', 'x'.repeat(300)])).toEqual(['a', 'b']);
    expect(groupsFromClaim(Array.from({ length: 80 }, (_, i) => `g${i}`))).toHaveLength(50);
    expect(groupsFromClaim(Array.from({ length: 40 }, () => 'y'.repeat(200))).join('').length).toBeLessThanOrEqual(
      4096,
    );
    expect(groupsFromClaim({ groups: 'x' })).toEqual([]);
  });
  it('maps claims to scopes: the union of every matching rule', () => {
    const mapping = [
      { claim: 'groups', value: 'eng', scopes: ['tools'] },
      { claim: 'groups', value: 'admins', scopes: ['admin'] },
      { claim: 'dept', value: 'ops', scopes: ['read'] },
      { claim: 'email_verified', value: 'true', scopes: ['verified'] },
    ];
    expect(
      [...scopesFromClaims({ groups: ['eng', 'admins'], dept: 'ops', email_verified: true }, mapping)].sort(),
    ).toEqual(['admin', 'read', 'tools', 'verified']);
    expect([...scopesFromClaims({ groups: 'eng' }, mapping)]).toEqual(['tools']);
    expect([...scopesFromClaims({ groups: [{ eng: true }] }, mapping)]).toEqual([]);
    expect([
      ...scopesFromClaims(JSON.parse('{"__proto__": {"groups": ["admins"]}}') as Record<string, unknown>, mapping),
    ]).toEqual([]);
  });
});

describe('signing keys', () => {
  it('derives alg and publishes public parts only; a missing kid becomes the thumbprint', async () => {
    const ec = await privateJwk('ES256');
    const rsa = await privateJwk('RS256', 'r1');
    const keys = await loadSigningKeys([
      secretValue('test:ec', JSON.stringify(ec)),
      secretValue('test:rsa', JSON.stringify(rsa)),
    ]);
    expect(keys.active.alg).toBe('ES256');
    expect(keys.active.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(keys.all[1]!.alg).toBe('RS256');
    expect(keys.jwks.keys.map((k) => Object.keys(k).sort())).toEqual([
      ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y'],
      ['alg', 'e', 'kid', 'kty', 'n', 'use'],
    ]);
  });

  it('refuses public keys, weak or unsupported keys, duplicates — naming the source, never the content', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES384', { extractable: true });
    const weakRsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'jwk' });
    const cases: [string, RegExp][] = [
      [JSON.stringify(await exportJWK(publicKey)), /private JWK/],
      [JSON.stringify(await exportJWK(privateKey)), /P-256/],
      [JSON.stringify(weakRsa), /2048/],
      [JSON.stringify({ kty: 'oct', k: 'c2VjcmV0', d: 'x' }), /only EC P-256 and RSA/],
      ['super-secret-not-json', /is not a JSON Web Key/],
    ];
    for (const [text, message] of cases) {
      const err = (await loadSigningKeys([secretValue('env:AS_KEY', text)]).then(
        () => undefined,
        (e: unknown) => e,
      )) as Error;
      expect(err).toBeInstanceOf(TypeError);
      expect(err.message).toMatch(message);
      expect(err.message).toContain('env:AS_KEY');
      expect(err.message).not.toContain('super-secret');
    }
    const k = JSON.stringify(await privateJwk('ES256', 'same'));
    await expect(loadSigningKeys([secretValue('a', k), secretValue('b', k)])).rejects.toThrow(/duplicate kid/);
    await expect(loadSigningKeys([])).rejects.toThrow(TypeError);
  });
});

describe('plugin options: misuse fails at registration', () => {
  async function base(): Promise<BuiltinAsConfig> {
    return {
      issuer: 'https://gw.example',
      signingKeys: [secretValue('test:k', JSON.stringify(await privateJwk()))],
      accessTokenTtlSeconds: 300,
      refreshTokenTtlSeconds: 3600,
      codeTtlSeconds: 60,
      registration: { enabled: true },
      clientIdMetadataDocuments: true,
      idp: { issuer: 'https://idp.example', clientId: 'gatehouse', scopes: ['openid'] },
      scopeMapping: [],
      clients: [],
      store: { kind: 'memory' },
    };
  }
  async function attempt(
    patch: Partial<BuiltinAsConfig>,
    extra: { groupsClaim?: string; unsafe?: { allowInsecureIdp?: boolean } } = {},
  ): Promise<unknown> {
    const as = { ...(await base()), ...patch };
    const config = testConfig(`${as.issuer}/mcp`, as.issuer, as);
    const cfg =
      extra.groupsClaim === undefined
        ? config
        : { ...config, auth: { ...config.auth, claims: { ...config.auth.claims, groups: extra.groupsClaim } } };
    const app = Fastify();
    try {
      await registerAuthorizationServer(app, {
        config: cfg,
        as,
        store: new MemoryAsStore(),
        logger: pino({ level: 'silent' }),
        ...(extra.unsafe !== undefined ? { unsafe: extra.unsafe } : {}),
      });
      return undefined;
    } catch (err) {
      return err;
    } finally {
      await app.close();
    }
  }

  it('accepts a sound configuration', async () => {
    expect(await attempt({})).toBeUndefined();
  });
  it.each([
    [{ issuer: 'http://gw.example' }, /https/],
    [{ issuer: 'https://gw.example/' }, /must not end with/],
    [{ issuer: 'https://gw.example?x=1' }, /query or fragment/],
    [{ codeTtlSeconds: 120 }, /codeTtlSeconds/],
    [{ accessTokenTtlSeconds: 0 }, /accessTokenTtlSeconds/],
    [{ idp: { issuer: 'http://idp.example', clientId: 'g', scopes: ['openid'] } }, /idp.issuer/],
    [{ idp: { issuer: 'http://127.0.0.1:9', clientId: 'g', scopes: ['openid'] } }, /unsafe.allowInsecureIdp/],
    [{ clients: [{ clientId: 'm', auth: 'private_key_jwt' as const, scopes: [] }] }, /jwksFile/],
    [{ clients: [{ clientId: 'm', auth: 'tls_client_auth' as const, scopes: [] }] }, /tlsSubject/],
    [{ registration: { enabled: true, initialAccessToken: secretValue('t', 'short') } }, /at least 16/],
  ])('refuses %j', async (patch, message) => {
    const err = await attempt(patch as Partial<BuiltinAsConfig>);
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toMatch(message);
  });
  it('refuses a groups claim that would overwrite a registered claim', async () => {
    expect(((await attempt({}, { groupsClaim: 'scope' })) as Error).message).toMatch(/groups/);
  });
  it('a plain-http loopback IdP is allowed only through the unsafe switch', async () => {
    expect(
      await attempt(
        { idp: { issuer: 'http://127.0.0.1:9', clientId: 'g', scopes: ['openid'] } },
        { unsafe: { allowInsecureIdp: true } },
      ),
    ).toBeUndefined();
  });
  it('an issuer with a path serves metadata at both well-known forms and endpoints under the path', async () => {
    const as = { ...(await base()), issuer: 'https://gw.example/as' };
    const app = Fastify();
    try {
      await registerAuthorizationServer(app, {
        config: testConfig('https://gw.example/mcp', as.issuer, as),
        as,
        store: new MemoryAsStore(),
        logger: pino({ level: 'silent' }),
      });
      for (const url of [
        '/.well-known/oauth-authorization-server/as',
        '/.well-known/openid-configuration/as',
        '/as/.well-known/openid-configuration',
      ]) {
        const res = await app.inject({ method: 'GET', url });
        expect(res.statusCode).toBe(200);
        expect(res.json()).toMatchObject({
          issuer: 'https://gw.example/as',
          token_endpoint: 'https://gw.example/as/token',
          jwks_uri: 'https://gw.example/as/jwks',
        });
      }
      expect((await app.inject({ method: 'GET', url: '/as/jwks' })).statusCode).toBe(200);
      expect((await app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })).statusCode).toBe(
        404,
      );
    } finally {
      await app.close();
    }
  });
  it('a plain-http issuer is allowed on loopback only', async () => {
    expect(await attempt({ issuer: 'http://127.0.0.1:8080' })).toBeUndefined();
    expect(await attempt({ issuer: 'http://localhost:8080' })).toBeUndefined();
  });
});
