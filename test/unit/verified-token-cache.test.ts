/**
 * The verified-token cache (issue 8): a repeated token skips the signature check, and nothing else. Signature
 * checks are counted at the source — jose verifies with WebCrypto `crypto.subtle.verify` — so a "hit" here means
 * no public-key operation happened. Every per-request check (time, certificate binding, revocation, scopes) is
 * shown to still refuse a token that sits in the cache, with the same answer as without a cache.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { JwtVerifier, type JwtVerifierOptions } from '../../src/auth/jwt-verifier.js';
import { ResourceServerAuthenticator } from '../../src/auth/resource-server.js';
import type { AuthResult } from '../../src/auth/authenticator.js';
import { tokenCacheKey, VerifiedTokenCache } from '../../src/auth/verified-token-cache.js';

const ISSUER = 'https://idp.example.test';
const RESOURCE = 'https://gatehouse.example.test/mcp';
const NOW = Date.UTC(2026, 5, 1, 12, 0, 0);
const NOW_S = Math.floor(NOW / 1000);
const SKEW_S = 60;
const CLAIMS = { scope: 'scope', groups: 'groups', clientId: 'client_id' };
const THUMB_A = 'q3xhQ0dGNN7iH6Pc3tCPRvVy0nqZtoC7ObZg8vVd0_g';
const THUMB_B = 'AAAAQ0dGNN7iH6Pc3tCPRvVy0nqZtoC7ObZg8vVd0_g';

let privateKey: CryptoKey;
let publicJwk: JWK;
let otherKey: { privateKey: CryptoKey; publicJwk: JWK };

beforeAll(async () => {
  const kp = await generateKeyPair('ES256', { extractable: true });
  privateKey = kp.privateKey;
  publicJwk = { ...(await exportJWK(kp.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  const other = await generateKeyPair('ES256', { extractable: true });
  otherKey = {
    privateKey: other.privateKey,
    publicJwk: { ...(await exportJWK(other.publicKey)), kid: 'k2', alg: 'ES256', use: 'sig' },
  };
});

afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

function sign(extra: Record<string, unknown> = {}, key: CryptoKey = privateKey, kid = 'k1'): Promise<string> {
  const payload = {
    iss: ISSUER,
    aud: RESOURCE,
    sub: 'alice',
    client_id: 'agent-1',
    scope: 'mcp:read',
    iat: NOW_S,
    exp: NOW_S + 300,
    jti: 'tok-1',
    ...extra,
  };
  return new SignJWT(payload).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid }).sign(key);
}

function options(extra: Partial<JwtVerifierOptions> = {}): JwtVerifierOptions {
  return {
    issuer: ISSUER,
    audience: RESOURCE,
    algorithms: ['ES256'],
    clockSkewSeconds: SKEW_S,
    requireTokenType: true,
    claims: CLAIMS,
    keys: { jwks: { keys: [publicJwk] } },
    ...extra,
  };
}

/** Counts WebCrypto signature verifications (what jose's jwtVerify does once per uncached token). */
function countSignatureChecks(): { readonly count: number } {
  const spy = vi.spyOn(crypto.subtle, 'verify');
  return {
    get count() {
      return spy.mock.calls.length;
    },
  };
}

function authenticator(
  jwt: JwtVerifier,
  clock: { now: number },
  extra: { isRevoked?: (jti: string) => Promise<boolean>; requiredScopes?: string[] } = {},
): ResourceServerAuthenticator {
  return new ResourceServerAuthenticator({
    resource: RESOURCE,
    requiredScopes: extra.requiredScopes ?? [],
    jwt,
    now: () => clock.now,
    ...(extra.isRevoked ? { isRevoked: extra.isRevoked } : {}),
  });
}

const request = (token: string, thumbprint?: string) => ({
  headers: { authorization: `Bearer ${token}` },
  remoteAddress: '127.0.0.1',
  ...(thumbprint !== undefined ? { clientCert: { subject: 'CN=agent', sans: [], thumbprint } } : {}),
});

/** What the wire and the audit see of a refusal: everything but the (identical) challenge text. */
function refusal(r: AuthResult): { status: number; reason: string; wwwAuthenticate: string } {
  if (r.ok) throw new Error('expected a refusal');
  return { status: r.status, reason: r.reason, wwwAuthenticate: r.wwwAuthenticate };
}

describe('verified-token cache: hits skip the signature check', () => {
  it('verifies a token once, then answers repeats from the cache with the same principal', async () => {
    const v = new JwtVerifier(options());
    const token = await sign();
    const checks = countSignatureChecks();
    const first = await v.verify(token, { now: NOW });
    expect(checks.count).toBe(1);
    for (let i = 0; i < 10; i++) {
      const again = await v.verify(token, { now: NOW + i * 1000 });
      expect(again).toEqual(first);
    }
    expect(checks.count).toBe(1);
    expect(v.cacheSize).toBe(1);
  });

  it('keys by the hash of the exact token text: another token, even for the same claims, is verified on its own', async () => {
    const v = new JwtVerifier(options());
    const a = await sign();
    const b = await sign(); // ES256 signatures are randomised: same claims, different token
    expect(a).not.toBe(b);
    expect(tokenCacheKey(a)).not.toBe(tokenCacheKey(b));
    expect(tokenCacheKey(a)).not.toContain(a.split('.')[1]!);
    const checks = countSignatureChecks();
    await v.verify(a, { now: NOW });
    await v.verify(b, { now: NOW });
    expect(checks.count).toBe(2);
    // A cached token's header and payload with the signature of another token (other claims): not a hit, refused.
    const [h, p] = a.split('.');
    const forged = `${h}.${p}.${(await sign({ jti: 'tok-2' })).split('.')[2]}`;
    expect(await v.verify(forged, { now: NOW })).toMatchObject({ ok: false, reason: 'bad_signature' });
    expect(checks.count).toBe(3);
  });

  it('never caches a refusal: forged and garbage tokens neither enter nor evict', async () => {
    const v = new JwtVerifier(options({ cache: { maxEntries: 4, maxAgeMs: 60_000 } }));
    const good = await sign();
    expect((await v.verify(good, { now: NOW })).ok).toBe(true);
    const checks = countSignatureChecks();
    for (let i = 0; i < 50; i++) {
      const forged = await sign({ jti: `f${i}` }, otherKey.privateKey, 'k1'); // right kid, wrong key
      expect(await v.verify(forged, { now: NOW })).toMatchObject({ ok: false, reason: 'bad_signature' });
      expect(await v.verify(`garbage.${i}.x`, { now: NOW })).toMatchObject({ ok: false });
    }
    expect(checks.count).toBe(50);
    // The same forgery again is verified (and refused) again: refusals are not remembered.
    const forged = await sign({ jti: 'again' }, otherKey.privateKey, 'k1');
    await v.verify(forged, { now: NOW });
    await v.verify(forged, { now: NOW });
    expect(checks.count).toBe(52);
    expect(v.cacheSize).toBe(1);
    expect((await v.verify(good, { now: NOW })).ok).toBe(true);
    expect(checks.count).toBe(52); // still a hit
  });

  it('holds its LRU bound under 10x maxEntries distinct tokens, evicting the least recently used', async () => {
    const max = 20;
    const v = new JwtVerifier(options({ cache: { maxEntries: max, maxAgeMs: 60_000 } }));
    const tokens = await Promise.all(Array.from({ length: max * 10 }, (_, i) => sign({ jti: `t${i}` })));
    const keep = tokens[0]!;
    await v.verify(keep, { now: NOW });
    for (const t of tokens.slice(1)) {
      expect((await v.verify(t, { now: NOW })).ok).toBe(true);
      await v.verify(keep, { now: NOW }); // used all along: never the least recently used
      expect(v.cacheSize).toBeLessThanOrEqual(max);
    }
    const checks = countSignatureChecks();
    await v.verify(keep, { now: NOW });
    expect(checks.count).toBe(0);
    await v.verify(tokens[1]!, { now: NOW }); // long evicted
    expect(checks.count).toBe(1);
  });

  it('maxEntries 0 turns the cache off', async () => {
    const v = new JwtVerifier(options({ cache: { maxEntries: 0, maxAgeMs: 60_000 } }));
    const token = await sign();
    const checks = countSignatureChecks();
    for (let i = 0; i < 3; i++) expect((await v.verify(token, { now: NOW })).ok).toBe(true);
    expect(checks.count).toBe(3);
    expect(v.cacheSize).toBe(0);
  });
});

describe('verified-token cache: time is checked on every request', () => {
  it('refuses a cached token past exp exactly as an uncached one (401 invalid_token, reason expired)', async () => {
    const clock = { now: NOW };
    const cached = authenticator(new JwtVerifier(options()), clock);
    const token = await sign({ exp: NOW_S + 10 });
    expect((await cached.authenticate(request(token))).ok).toBe(true);
    // Inside the skew window after exp: accepted, as without a cache (full verification applies the skew).
    clock.now = NOW + (10 + SKEW_S - 1) * 1000;
    const checks = countSignatureChecks();
    expect((await cached.authenticate(request(token))).ok).toBe(true);
    expect(checks.count).toBe(1); // past exp the cache is not believed: jose decided
    clock.now = NOW + (10 + SKEW_S) * 1000;
    const uncached = authenticator(new JwtVerifier(options({ cache: { maxEntries: 0, maxAgeMs: 0 } })), clock);
    const a = refusal(await cached.authenticate(request(token)));
    const b = refusal(await uncached.authenticate(request(token)));
    expect(a).toEqual(b);
    expect(a).toMatchObject({ status: 401, reason: 'expired' });
    expect(a.wwwAuthenticate).toContain('error="invalid_token"');
  });

  it('does not believe an entry for a time before nbf or iat (a clock stepped back) and refuses as without a cache', async () => {
    // sign() sets iat: NOW_S; the first token also has nbf, the second only iat (the iat rule runs on a hit too).
    for (const [claim, extra] of [
      ['nbf', { nbf: NOW_S }],
      ['iat', {}],
    ] as const) {
      const v = new JwtVerifier(options());
      const token = await sign(extra);
      expect((await v.verify(token, { now: NOW })).ok).toBe(true);
      const early = NOW - (SKEW_S + 5) * 1000;
      expect(await v.verify(token, { now: early })).toEqual(
        await new JwtVerifier(options({ cache: { maxEntries: 0, maxAgeMs: 0 } })).verify(token, { now: early }),
      );
      expect(await v.verify(token, { now: early })).toMatchObject({
        ok: false,
        reason: 'not_yet_valid',
        detail: expect.stringContaining(claim),
      });
    }
  });

  it('refuses a cached token once it passes maxTokenAgeSeconds, without re-verifying, exactly as an uncached one', async () => {
    const clock = { now: NOW };
    const opts = { maxTokenAgeSeconds: 600 };
    // Entries kept an hour here, so that the hit below is a hit (the default keeps them 5 minutes).
    const cached = authenticator(
      new JwtVerifier(options({ ...opts, cache: { maxEntries: 10, maxAgeMs: 3_600_000 } })),
      clock,
    );
    const token = await sign({ iat: NOW_S, exp: NOW_S + 3600 });
    expect((await cached.authenticate(request(token))).ok).toBe(true);
    const checks = countSignatureChecks();
    clock.now = NOW + (600 + SKEW_S) * 1000;
    expect((await cached.authenticate(request(token))).ok).toBe(true);
    clock.now += 1000; // one second past the maximum age (plus the skew); exp is 50 minutes away, the entry alive
    const uncached = authenticator(new JwtVerifier(options({ ...opts, cache: { maxEntries: 0, maxAgeMs: 0 } })), clock);
    const a = refusal(await cached.authenticate(request(token)));
    expect(checks.count).toBe(0); // the cache answered: the age rule runs on a hit too
    expect(a).toEqual(refusal(await uncached.authenticate(request(token))));
    expect(a).toMatchObject({ status: 401, reason: 'expired' });
    expect(a.wwwAuthenticate).toContain('error="invalid_token"');
  });

  it('lets an entry live at most maxAgeMs: then the signature is checked again', async () => {
    const v = new JwtVerifier(options({ cache: { maxEntries: 10, maxAgeMs: 1000 } }));
    const token = await sign();
    const checks = countSignatureChecks();
    await v.verify(token, { now: NOW });
    await v.verify(token, { now: NOW + 999 });
    expect(checks.count).toBe(1);
    await v.verify(token, { now: NOW + 1000 });
    expect(checks.count).toBe(2);
  });
});

describe('verified-token cache: per-request checks still refuse a cached token', () => {
  it('a cnf-bound token cached from certificate A is refused without a certificate and with certificate B', async () => {
    const clock = { now: NOW };
    const auth = authenticator(new JwtVerifier(options()), clock);
    const token = await sign({ cnf: { 'x5t#S256': THUMB_A } });
    const onA = await auth.authenticate(request(token, THUMB_A));
    expect(onA.ok && onA.principal.certThumbprint).toBe(THUMB_A);
    const checks = countSignatureChecks();
    expect(refusal(await auth.authenticate(request(token)))).toMatchObject({
      status: 401,
      reason: 'certificate_required',
    });
    expect(refusal(await auth.authenticate(request(token, THUMB_B)))).toMatchObject({
      status: 401,
      reason: 'certificate_mismatch',
    });
    const again = await auth.authenticate(request(token, THUMB_A));
    expect(again.ok && again.principal.certThumbprint).toBe(THUMB_A);
    expect(checks.count).toBe(0); // all from the cache, and still refused where they must be
  });

  it('the shared cached principal cannot be changed by one request for the next: its claims are frozen all the way down', async () => {
    const v = new JwtVerifier(options());
    const token = await sign({ groups: ['eng'], cnf: undefined, extra: { nested: { level: 1 } } });
    const first = await v.verify(token, { now: NOW });
    if (!first.ok) throw new Error('expected acceptance');
    const claims = first.principal.claims as Record<string, unknown> & {
      extra: { nested: { level: number } };
      groups: string[];
    };
    expect(() => {
      claims.extra.nested.level = 2;
    }).toThrow(TypeError);
    expect(() => claims.groups.push('admin')).toThrow(TypeError);
    const again = await v.verify(token, { now: NOW });
    expect(again.ok && (again.principal.claims as typeof claims).extra.nested.level).toBe(1);
    expect(again.ok && again.principal.groups).toEqual(['eng']);
  });

  it('an unbound cached token carries the certificate of the request it came with, not of an earlier one', async () => {
    const auth = authenticator(new JwtVerifier(options()), { now: NOW });
    const token = await sign();
    await auth.authenticate(request(token, THUMB_A));
    const onB = await auth.authenticate(request(token, THUMB_B));
    expect(onB.ok && onB.principal.certThumbprint).toBe(THUMB_B);
    const none = await auth.authenticate(request(token));
    expect(none.ok && none.principal.certThumbprint).toBeUndefined();
  });

  it('a token revoked after it was cached is refused (built-in AS revocation is asked on every request)', async () => {
    const revoked = new Set<string>();
    const asked: string[] = [];
    const auth = authenticator(
      new JwtVerifier(options()),
      { now: NOW },
      {
        isRevoked: async (jti) => {
          asked.push(jti);
          return revoked.has(jti);
        },
      },
    );
    const token = await sign({ jti: 'tok-r' });
    expect((await auth.authenticate(request(token))).ok).toBe(true);
    expect((await auth.authenticate(request(token))).ok).toBe(true);
    revoked.add('tok-r');
    expect(refusal(await auth.authenticate(request(token)))).toMatchObject({ status: 401, reason: 'revoked' });
    expect(asked).toEqual(['tok-r', 'tok-r', 'tok-r']);
  });

  it('required scopes are checked on every request', async () => {
    const clock = { now: NOW };
    const jwt = new JwtVerifier(options());
    const token = await sign({ scope: 'mcp:read' });
    expect((await authenticator(jwt, clock).authenticate(request(token))).ok).toBe(true);
    expect(
      refusal(await authenticator(jwt, clock, { requiredScopes: ['mcp:admin'] }).authenticate(request(token))),
    ).toMatchObject({ status: 403, reason: 'insufficient_scope' });
  });
});

describe('verified-token cache: remote JWKS', () => {
  async function jwksServer(body: {
    keys: JWK[];
  }): Promise<{ url: string; hits: number; body: { keys: JWK[] }; close(): Promise<void> }> {
    const state = {
      url: '',
      hits: 0,
      body,
      server: undefined as unknown as Server,
      close: () => new Promise<void>((resolve) => state.server.close(() => resolve())),
    };
    state.server = createServer((req, res) => {
      state.hits++;
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(state.body));
    });
    await new Promise<void>((resolve) => state.server.listen(0, '127.0.0.1', resolve));
    state.url = `http://127.0.0.1:${(state.server.address() as AddressInfo).port}/jwks`;
    return state;
  }

  it('a key removed from the JWKS stops vouching for cached tokens as soon as the set is refetched', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    const server = await jwksServer({ keys: [publicJwk] });
    try {
      const v = new JwtVerifier(options({ keys: { jwksUri: server.url } }));
      const old = await sign();
      expect((await v.verify(old, { now: NOW })).ok).toBe(true);
      expect((await v.verify(old, { now: NOW })).ok).toBe(true);
      const checks = countSignatureChecks();
      expect((await v.verify(old, { now: NOW })).ok).toBe(true);
      expect(checks.count).toBe(0); // cached

      // The IdP retires k1 and publishes k2; a k2 token after the 30 s cooldown makes jose refetch.
      server.body = { keys: [otherKey.publicJwk] };
      vi.setSystemTime(Date.now() + 31_000);
      expect((await v.verify(await sign({}, otherKey.privateKey, 'k2'), { now: NOW })).ok).toBe(true);
      expect(server.hits).toBe(2);
      expect(await v.verify(old, { now: NOW })).toMatchObject({ ok: false, reason: 'unknown_key' });
    } finally {
      await server.close();
    }
  });

  it('a key set past its cacheMaxAge is refetched before a cached token is believed again', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    const server = await jwksServer({ keys: [publicJwk] });
    try {
      const v = new JwtVerifier(
        options({ keys: { jwksUri: server.url }, cache: { maxEntries: 10, maxAgeMs: 3_600_000 } }),
      );
      const token = await sign({ exp: NOW_S + 7200 });
      await v.verify(token, { now: NOW });
      await v.verify(token, { now: NOW });
      server.body = { keys: [otherKey.publicJwk] };
      vi.setSystemTime(Date.now() + 600_001); // jose's cacheMaxAge (10 min)
      expect(await v.verify(token, { now: NOW + 60_000 })).toMatchObject({ ok: false, reason: 'unknown_key' });
      expect(server.hits).toBe(2);
    } finally {
      await server.close();
    }
  });
});

describe('VerifiedTokenCache', () => {
  it('refuses bad bounds at construction', () => {
    expect(() => new VerifiedTokenCache({ maxEntries: -1, maxAgeMs: 1 })).toThrow(TypeError);
    expect(() => new VerifiedTokenCache({ maxEntries: 1.5, maxAgeMs: 1 })).toThrow(TypeError);
    expect(() => new VerifiedTokenCache({ maxEntries: 1, maxAgeMs: Number.NaN })).toThrow(TypeError);
  });

  it('never keeps an entry past expiresAt, nor one of another key-set generation', () => {
    const c = new VerifiedTokenCache<string>({ maxEntries: 10, maxAgeMs: 60_000 });
    c.set('a', 'A', 1000, 5000, 0);
    expect(c.get('a', 4999, 0)).toBe('A');
    expect(c.get('a', 5000, 0)).toBeUndefined();
    expect(c.size).toBe(0);
    c.set('b', 'B', 1000, 1000, 0); // already expired: not stored
    expect(c.size).toBe(0);
    c.set('c', 'C', 1000, 90_000, 0);
    expect(c.get('c', 2000, 1)).toBeUndefined();
  });
});
