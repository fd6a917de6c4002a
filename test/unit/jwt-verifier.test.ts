/**
 * JwtVerifier against a real JWKS server (node:http on 127.0.0.1:0) with keys from jose `generateKeyPair`.
 * Threat model #1 (audience), #3 (forgery: alg none, HS256 with the public key, jku/x5u/jwk, kid tricks),
 * #4 (cnf.x5t#S256 binding). The verifier's clock is injected (`ctx.now` → jose `currentDate`).
 */
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createLocalJWKSet,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  importJWK,
  jwtVerify,
  SignJWT,
  type CryptoKey,
  type JSONWebKeySet,
  type JWK,
  type JWTHeaderParameters,
} from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { JwtVerifier, type JwtVerifierOptions } from '../../src/auth/jwt-verifier.js';
import type { VerifyResult } from '../../src/auth/token-verifier.js';

const ISSUER = 'https://idp.example.test';
const RESOURCE = 'https://gatehouse.example.test/mcp';
const UPSTREAM_AUDIENCE = 'http://127.0.0.1:9101/mcp';
/** A fixed instant: every token's times are relative to it, and the verifier is told it is "now". */
const NOW = Date.UTC(2026, 5, 1, 12, 0, 0);
const NOW_S = Math.floor(NOW / 1000);
const CLAIMS = { scope: 'scope', groups: 'groups', clientId: 'client_id' };

interface KeyPair {
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

async function makeKey(kid: string, alg: 'RS256' | 'ES256' = 'RS256'): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, privateKey, publicJwk };
}

/** A JSON server that counts its requests; `body` can be swapped, `status` changed. */
interface CountingServer {
  url: string;
  hits: number;
  body: unknown;
  status: number;
  server: Server;
  close(): Promise<void>;
}

async function countingServer(body: unknown): Promise<CountingServer> {
  const state: CountingServer = {
    url: '',
    hits: 0,
    body,
    status: 200,
    server: createServer((req, res) => {
      state.hits++;
      req.resume();
      res.writeHead(state.status, { 'content-type': 'application/json' }).end(JSON.stringify(state.body));
    }),
    close: () => new Promise<void>((resolve) => state.server.close(() => resolve())),
  };
  await new Promise<void>((resolve) => state.server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(state.server.address() as AddressInfo).port}/jwks`;
  return state;
}

const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

function claims(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    iss: ISSUER,
    aud: RESOURCE,
    sub: 'alice',
    client_id: 'agent-1',
    scope: 'mcp:read mcp:write',
    groups: ['eng', 7, 'ops'],
    iat: NOW_S,
    exp: NOW_S + 300,
    jti: 'tok-1',
    ...extra,
  };
}

async function sign(
  key: KeyPair,
  payload: Record<string, unknown> = claims(),
  header: Partial<JWTHeaderParameters> = {},
): Promise<string> {
  const clean = Object.fromEntries(Object.entries(payload).filter(([, v]) => v !== undefined));
  return new SignJWT(clean)
    .setProtectedHeader({ alg: (key.publicJwk.alg as string) ?? 'RS256', typ: 'at+jwt', kid: key.kid, ...header })
    .sign(key.privateKey);
}

function options(keys: JwtVerifierOptions['keys'], extra: Partial<JwtVerifierOptions> = {}): JwtVerifierOptions {
  return {
    issuer: ISSUER,
    audience: RESOURCE,
    algorithms: ['RS256', 'ES256'],
    clockSkewSeconds: 60,
    requireTokenType: true,
    claims: CLAIMS,
    keys,
    ...extra,
  };
}

function refused(r: VerifyResult): { reason: string; detail: string } {
  expect(r.ok).toBe(false);
  if (r.ok) throw new Error('unreachable');
  expect(r.detail).not.toMatch(/eyJ/); // never the token
  return { reason: r.reason, detail: r.detail };
}

let k1: KeyPair;
let k2: KeyPair;
let attacker: KeyPair;
let jwks: CountingServer;
let verifier: JwtVerifier;

beforeAll(async () => {
  [k1, k2, attacker] = await Promise.all([makeKey('k1'), makeKey('k2', 'ES256'), makeKey('k1')]);
  jwks = await countingServer({ keys: [k1.publicJwk] });
  verifier = new JwtVerifier(options({ jwksUri: jwks.url }));
});

afterAll(async () => {
  await jwks?.close();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('JwtVerifier: accepting', () => {
  it('accepts a valid token and builds the principal from its claims', async () => {
    const r = await verifier.verify(await sign(k1), { now: NOW });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const p = r.principal;
    expect(p).toMatchObject({
      subject: 'alice',
      clientId: 'agent-1',
      issuer: ISSUER,
      groups: ['eng', 'ops'],
      expiresAt: (NOW_S + 300) * 1000,
      tokenId: 'tok-1',
      anonymous: false,
    });
    expect([...p.scopes]).toEqual(['mcp:read', 'mcp:write']);
    expect(p.certThumbprint).toBeUndefined();
    expect(Object.isFrozen(p.claims)).toBe(true);
    expect(p.claims?.sub).toBe('alice');
  });

  it('reads scopes from an array claim and the client id from azp when so configured', async () => {
    // An IdP that names the client azp, not RFC 9068's client_id: the deployment lists what it does require.
    const claimNames = { scope: 'scp', groups: 'roles', clientId: 'cid' };
    const local = new JwtVerifier(
      options({ jwks: { keys: [k1.publicJwk] } }, { claims: claimNames, requiredClaims: ['iat', 'jti'] }),
    );
    const r = await local.verify(
      await sign(k1, claims({ scp: ['a', 'b', 3], roles: ['admin'], client_id: undefined, azp: 'from-azp' })),
      { now: NOW },
    );
    expect(r.ok && [...r.principal.scopes]).toEqual(['a', 'b']);
    expect(r.ok && r.principal.groups).toEqual(['admin']);
    expect(r.ok && r.principal.clientId).toBe('from-azp');
  });

  it('tolerates the configured clock skew on exp and nbf', async () => {
    expect((await verifier.verify(await sign(k1, claims({ exp: NOW_S - 30 })), { now: NOW })).ok).toBe(true);
    expect((await verifier.verify(await sign(k1, claims({ nbf: NOW_S + 30 })), { now: NOW })).ok).toBe(true);
  });

  it('verifies against a JWKS file and an in-memory JWKS (dev mode)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-jwks-'));
    try {
      const file = join(dir, 'jwks.json');
      writeFileSync(file, JSON.stringify({ keys: [k2.publicJwk] }));
      const fromFile = new JwtVerifier(options({ jwksFile: file }));
      expect((await fromFile.verify(await sign(k2), { now: NOW })).ok).toBe(true);
      expect(refused(await fromFile.verify(await sign(k1), { now: NOW })).reason).toBe('unknown_key');
      const inMemory = new JwtVerifier(options({ jwks: { keys: [k2.publicJwk] } }));
      expect((await inMemory.verify(await sign(k2), { now: NOW })).ok).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('tries every candidate key when the token has no kid and several keys match', async () => {
    const other = await makeKey('other');
    const noKid = (k: JWK): JWK => ({ ...k, kid: undefined });
    const local = new JwtVerifier(options({ jwks: { keys: [noKid(other.publicJwk), noKid(k1.publicJwk)] } }));
    const token = await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt' }).sign(k1.privateKey);
    expect((await local.verify(token, { now: NOW })).ok).toBe(true);
    const forged = await new SignJWT(claims())
      .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt' })
      .sign(attacker.privateKey);
    expect(refused(await local.verify(forged, { now: NOW })).reason).toBe('bad_signature');
  });
});

describe('JwtVerifier: forgery (threat model #3)', () => {
  it('refuses alg "none"', async () => {
    const token = `${b64({ alg: 'none', typ: 'at+jwt', kid: 'k1' })}.${b64(claims())}.`;
    expect(refused(await verifier.verify(token, { now: NOW })).reason).toBe('disallowed_algorithm');
    const withSig = `${b64({ alg: 'none', typ: 'at+jwt' })}.${b64(claims())}.${b64('x')}`;
    expect(refused(await verifier.verify(withSig, { now: NOW })).reason).toBe('disallowed_algorithm');
  });

  it('refuses HS256 keyed with the RSA public key (PEM bytes, JWK bytes, modulus)', async () => {
    const publicKey = (await importJWK(k1.publicJwk, 'RS256', { extractable: true })) as CryptoKey;
    const pem = await exportSPKI(publicKey);
    for (const secret of [pem, JSON.stringify(k1.publicJwk), String(k1.publicJwk.n)]) {
      const input = `${b64({ alg: 'HS256', typ: 'at+jwt', kid: 'k1' })}.${b64(claims())}`;
      const token = `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
      expect(refused(await verifier.verify(token, { now: NOW })).reason).toBe('disallowed_algorithm');
    }
  });

  it('never fetches a jku or x5u from the token header and ignores an embedded jwk', async () => {
    const evil = await countingServer({ keys: [attacker.publicJwk] });
    try {
      const jku = await sign(attacker, claims(), { jku: evil.url, kid: 'k1' });
      const x5u = await sign(attacker, claims(), { x5u: evil.url, kid: 'k1' } as Partial<JWTHeaderParameters>);
      const jwk = await sign(attacker, claims(), {
        jwk: { kty: attacker.publicJwk.kty, n: attacker.publicJwk.n, e: attacker.publicJwk.e },
        kid: 'k1',
      });
      const jkuNewKid = await sign(attacker, claims(), { jku: evil.url, kid: 'attacker-kid' });
      for (const token of [jku, x5u, jwk])
        expect(refused(await verifier.verify(token, { now: NOW })).reason).toBe('bad_signature');
      expect(refused(await verifier.verify(jkuNewKid, { now: NOW })).reason).toBe('unknown_key');
      expect(evil.hits).toBe(0);
    } finally {
      await evil.close();
    }
  });

  it('treats kid as an opaque name (path-like kids match nothing)', async () => {
    const token = await sign(attacker, claims(), { kid: '../../../../dev/null' });
    expect(refused(await verifier.verify(token, { now: NOW })).reason).toBe('unknown_key');
  });

  it('refuses a token signed by another key under a known kid', async () => {
    expect(refused(await verifier.verify(await sign(attacker), { now: NOW })).reason).toBe('bad_signature');
  });

  it('refuses tampered payloads and garbage', async () => {
    const [h, , s] = (await sign(k1)).split('.');
    expect(refused(await verifier.verify(`${h}.${b64(claims({ scope: 'admin' }))}.${s}`, { now: NOW })).reason).toBe(
      'bad_signature',
    );
    expect(refused(await verifier.verify('not-a-jwt', { now: NOW })).reason).toBe('invalid_token');
    expect(refused(await verifier.verify(`${b64('{')}.${b64(claims())}.x`, { now: NOW })).reason).toBe('invalid_token');
  });
});

describe('JwtVerifier: claims', () => {
  it('refuses a token for another audience, including an upstream behind the gateway (threat model #1)', async () => {
    for (const aud of [
      'https://other.example.test/mcp',
      UPSTREAM_AUDIENCE,
      [UPSTREAM_AUDIENCE, 'https://crm.example.test'],
      `${RESOURCE}/`,
    ]) {
      const r = refused(await verifier.verify(await sign(k1, claims({ aud })), { now: NOW }));
      expect(r.reason).toBe('wrong_audience');
    }
    expect(
      (await verifier.verify(await sign(k1, claims({ aud: [UPSTREAM_AUDIENCE, RESOURCE] })), { now: NOW })).ok,
    ).toBe(true);
  });

  it('refuses an expired token', async () => {
    const stale = claims({ iat: NOW_S - 11 * 60, exp: NOW_S - 61 });
    expect(refused(await verifier.verify(await sign(k1, stale), { now: NOW })).reason).toBe('expired');
    // The same token is fine at an earlier instant: the injected clock is what counts.
    expect((await verifier.verify(await sign(k1, stale), { now: NOW - 10 * 60_000 })).ok).toBe(true);
  });

  it('refuses a token whose nbf is in the future', async () => {
    expect(refused(await verifier.verify(await sign(k1, claims({ nbf: NOW_S + 120 })), { now: NOW })).reason).toBe(
      'not_yet_valid',
    );
  });

  it('refuses a token from another issuer', async () => {
    expect(
      refused(await verifier.verify(await sign(k1, claims({ iss: 'https://evil.example.test' })), { now: NOW })).reason,
    ).toBe('wrong_issuer');
    expect(refused(await verifier.verify(await sign(k1, claims({ iss: undefined })), { now: NOW })).reason).toBe(
      'invalid_token',
    );
  });

  it('requires typ at+jwt when configured (an ID token or plain JWT is not an access token)', async () => {
    expect(refused(await verifier.verify(await sign(k1, claims(), { typ: 'JWT' }), { now: NOW })).reason).toBe(
      'wrong_type',
    );
    const untyped = await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(k1.privateKey);
    expect(refused(await verifier.verify(untyped, { now: NOW })).reason).toBe('wrong_type');
    expect((await verifier.verify(await sign(k1, claims(), { typ: 'application/at+jwt' }), { now: NOW })).ok).toBe(
      true,
    );
    const lax = new JwtVerifier(options({ jwks: { keys: [k1.publicJwk] } }, { requireTokenType: false }));
    expect((await lax.verify(untyped, { now: NOW })).ok).toBe(true);
  });

  it('requires exp and sub', async () => {
    const noExp = refused(await verifier.verify(await sign(k1, claims({ exp: undefined })), { now: NOW }));
    expect(noExp).toMatchObject({ reason: 'invalid_token', detail: expect.stringContaining('exp') });
    expect(refused(await verifier.verify(await sign(k1, claims({ sub: undefined })), { now: NOW })).reason).toBe(
      'invalid_token',
    );
    expect(refused(await verifier.verify(await sign(k1, claims({ sub: '' })), { now: NOW })).reason).toBe(
      'invalid_token',
    );
  });
});

describe('JwtVerifier: iat, maximum age and required claims (RFC 9068 §2.2, RFC 7519 §4.1.6; threat model #3, #4)', () => {
  const SKEW = 60;

  it('jose alone lets a future iat through unless given maxTokenAge (why the verifier checks iat itself)', async () => {
    const token = await sign(k1, claims({ iat: NOW_S + 3600 }));
    const base = {
      issuer: ISSUER,
      audience: RESOURCE,
      algorithms: ['RS256'],
      clockTolerance: SKEW,
      currentDate: new Date(NOW),
    };
    await expect(jwtVerify(token, createLocalJWKSet({ keys: [k1.publicJwk] }), base)).resolves.toBeDefined();
    await expect(
      jwtVerify(token, createLocalJWKSet({ keys: [k1.publicJwk] }), { ...base, maxTokenAge: 86_400 }),
    ).rejects.toThrow(/iat/);
  });

  it('refuses a token issued in the future beyond the clock skew, with or without a cache', async () => {
    for (const v of [
      verifier,
      new JwtVerifier(options({ jwks: { keys: [k1.publicJwk] } }, { cache: { maxEntries: 0, maxAgeMs: 0 } })),
    ]) {
      const r = refused(await v.verify(await sign(k1, claims({ iat: NOW_S + SKEW + 1 })), { now: NOW }));
      expect(r).toEqual({ reason: 'not_yet_valid', detail: 'iat is in the future (beyond the clock skew)' });
      // Inside the skew an issuer's clock may be a little ahead of ours.
      expect((await v.verify(await sign(k1, claims({ iat: NOW_S + SKEW })), { now: NOW })).ok).toBe(true);
    }
    // Also when iat is not a required claim (untyped tokens): a present iat is always checked.
    const lax = new JwtVerifier(options({ jwks: { keys: [k1.publicJwk] } }, { requireTokenType: false }));
    expect(refused(await lax.verify(await sign(k1, claims({ iat: NOW_S + 3600 })), { now: NOW })).reason).toBe(
      'not_yet_valid',
    );
    expect(refused(await lax.verify(await sign(k1, claims({ iat: 'yesterday' })), { now: NOW })).reason).toBe(
      'invalid_token',
    );
  });

  it('with requireTokenType, requires RFC 9068 iat, jti and client_id by default, with their types', async () => {
    for (const claim of ['iat', 'jti', 'client_id']) {
      for (const value of [undefined, null]) {
        const r = refused(await verifier.verify(await sign(k1, claims({ [claim]: value })), { now: NOW }));
        expect(r.reason, `${claim}: ${String(value)}`).toBe('invalid_token');
        expect(r.detail).toMatch(new RegExp(`^${claim} (missing|invalid)`)); // jose: a null iat is no NumericDate
      }
    }
    for (const bad of [{ jti: 7 }, { jti: '' }, { client_id: ['agent-1'] }, { client_id: '' }]) {
      expect(
        refused(await verifier.verify(await sign(k1, claims(bad)), { now: NOW })),
        JSON.stringify(bad),
      ).toMatchObject({ reason: 'invalid_token', detail: expect.stringMatching(/is not a non-empty string$/) });
    }
  });

  it('requiredClaims is what the deployment says: none, or its own list (also without typ at+jwt)', async () => {
    const keys = { jwks: { keys: [k1.publicJwk] } };
    const bare = claims({ iat: undefined, jti: undefined, client_id: undefined });
    expect(
      (await new JwtVerifier(options(keys, { requiredClaims: [] })).verify(await sign(k1, bare), { now: NOW })).ok,
    ).toBe(true);
    expect(
      (await new JwtVerifier(options(keys, { requireTokenType: false })).verify(await sign(k1, bare), { now: NOW })).ok,
    ).toBe(true);
    const azp = new JwtVerifier(options(keys, { requireTokenType: false, requiredClaims: ['azp'] }));
    expect(refused(await azp.verify(await sign(k1, bare), { now: NOW }))).toMatchObject({
      reason: 'invalid_token',
      detail: expect.stringContaining('azp missing'),
    });
    expect((await azp.verify(await sign(k1, { ...bare, azp: 'agent-1' }), { now: NOW })).ok).toBe(true);
  });

  it('maxTokenAgeSeconds refuses a token issued longer ago (plus the skew), and one without iat', async () => {
    const keys = { jwks: { keys: [k1.publicJwk] } };
    const aged = new JwtVerifier(options(keys, { maxTokenAgeSeconds: 3600, requiredClaims: [] }));
    const old = claims({ iat: NOW_S - 3600 - SKEW - 1, exp: NOW_S + 300 });
    expect(refused(await aged.verify(await sign(k1, old), { now: NOW }))).toEqual({
      reason: 'expired',
      detail: 'iat is more than 3600 s ago (maxTokenAgeSeconds)',
    });
    expect((await aged.verify(await sign(k1, claims({ iat: NOW_S - 3600 - SKEW })), { now: NOW })).ok).toBe(true);
    // Without the option the same token is fine: exp decides.
    expect((await new JwtVerifier(options(keys)).verify(await sign(k1, old), { now: NOW })).ok).toBe(true);
    // The age is measured from iat: a token without one is refused, though requiredClaims does not name it.
    expect(refused(await aged.verify(await sign(k1, claims({ iat: undefined })), { now: NOW }))).toMatchObject({
      reason: 'invalid_token',
      detail: expect.stringContaining('iat missing'),
    });
  });

  it('refuses unusable options at construction', () => {
    const keys = { jwks: { keys: [k1.publicJwk] } as JSONWebKeySet };
    for (const maxTokenAgeSeconds of [0, -1, 1.5, Number.NaN]) {
      expect(() => new JwtVerifier(options(keys, { maxTokenAgeSeconds })), String(maxTokenAgeSeconds)).toThrow(
        /maxTokenAgeSeconds/,
      );
    }
    expect(() => new JwtVerifier(options(keys, { requiredClaims: [''] }))).toThrow(/requiredClaims/);
  });
});

describe('JwtVerifier: RFC 8705 certificate binding (threat model #4)', () => {
  const THUMB = 'q3xhQ0dGNN7iH6Pc3tCPRvVy0nqZtoC7ObZg8vVd0_g';
  const OTHER = 'AAAAQ0dGNN7iH6Pc3tCPRvVy0nqZtoC7ObZg8vVd0_g';

  it('accepts a bound token over the matching certificate and records the thumbprint', async () => {
    const r = await verifier.verify(await sign(k1, claims({ cnf: { 'x5t#S256': THUMB } })), {
      now: NOW,
      certThumbprint: THUMB,
    });
    expect(r.ok && r.principal.certThumbprint).toBe(THUMB);
  });

  it('refuses a bound token without a certificate or with another one', async () => {
    const token = await sign(k1, claims({ cnf: { 'x5t#S256': THUMB } }));
    expect(refused(await verifier.verify(token, { now: NOW })).reason).toBe('certificate_required');
    expect(refused(await verifier.verify(token, { now: NOW, certThumbprint: OTHER })).reason).toBe(
      'certificate_mismatch',
    );
    expect(refused(await verifier.verify(token, { now: NOW, certThumbprint: THUMB.slice(1) })).reason).toBe(
      'certificate_mismatch',
    );
  });

  it('refuses a cnf it cannot check (DPoP jkt, or extra members)', async () => {
    for (const cnf of [{ jkt: 'abc' }, { 'x5t#S256': THUMB, jkt: 'abc' }, 'x5t', { 'x5t#S256': 42 }]) {
      expect(
        refused(await verifier.verify(await sign(k1, claims({ cnf })), { now: NOW, certThumbprint: THUMB })).reason,
      ).toBe('invalid_token');
    }
  });

  it('an unbound token over mTLS still carries the certificate thumbprint in the principal', async () => {
    const r = await verifier.verify(await sign(k1), { now: NOW, certThumbprint: THUMB });
    expect(r.ok && r.principal.certThumbprint).toBe(THUMB);
  });
});

describe('JwtVerifier: remote JWKS rotation and failure', () => {
  it('refetches for a new kid after the cooldown, and not again for an unknown kid within it', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    const server = await countingServer({ keys: [k1.publicJwk] });
    try {
      const v = new JwtVerifier(options({ jwksUri: server.url }));
      expect((await v.verify(await sign(k1), { now: NOW })).ok).toBe(true);
      expect(server.hits).toBe(1);
      expect((await v.verify(await sign(k1), { now: NOW })).ok).toBe(true);
      expect(server.hits).toBe(1); // cached

      server.body = { keys: [k2.publicJwk] }; // the IdP rotates
      expect(refused(await v.verify(await sign(k2), { now: NOW })).reason).toBe('unknown_key');
      expect(server.hits).toBe(1); // within the 30 s cooldown of the first fetch: no refetch

      vi.setSystemTime(Date.now() + 31_000);
      expect((await v.verify(await sign(k2), { now: NOW })).ok).toBe(true);
      expect(server.hits).toBe(2);

      const unknown = await sign(k2, claims(), { kid: 'never-published' });
      for (let i = 0; i < 5; i++) expect(refused(await v.verify(unknown, { now: NOW })).reason).toBe('unknown_key');
      expect(refused(await v.verify(await sign(k1), { now: NOW })).reason).toBe('unknown_key'); // k1 was retired
      expect(server.hits).toBe(2);
    } finally {
      await server.close();
    }
  });

  it('answers verifier_unavailable when the JWKS server is down or broken', async () => {
    const server = await countingServer({ keys: [k1.publicJwk] });
    const deadUrl = server.url;
    await server.close();
    const down = new JwtVerifier(options({ jwksUri: deadUrl }));
    expect(refused(await down.verify(await sign(k1), { now: NOW })).reason).toBe('verifier_unavailable');

    const broken = await countingServer({ error: 'oops' });
    try {
      broken.status = 500;
      const v = new JwtVerifier(options({ jwksUri: broken.url }));
      expect(refused(await v.verify(await sign(k1), { now: NOW })).reason).toBe('verifier_unavailable');
      broken.status = 200; // 200 but not a JWKS
      const v2 = new JwtVerifier(options({ jwksUri: broken.url }));
      expect(refused(await v2.verify(await sign(k1), { now: NOW })).reason).toBe('verifier_unavailable');
    } finally {
      await broken.close();
    }
  });
});

describe('JwtVerifier: construction', () => {
  it('refuses symmetric, none and unknown algorithms, and private or symmetric keys', () => {
    const keys = { jwks: { keys: [k1.publicJwk] } as JSONWebKeySet };
    for (const algorithms of [['HS256'], ['RS256', 'none'], [], ['rs256']]) {
      expect(() => new JwtVerifier(options(keys, { algorithms }))).toThrow(TypeError);
    }
    expect(() => new JwtVerifier(options({ jwks: { keys: [{ ...k1.publicJwk, d: 'secret' }] } }))).toThrow(
      /public keys only/,
    );
    expect(() => new JwtVerifier(options({ jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } }))).toThrow(
      /public keys only/,
    );
    expect(() => new JwtVerifier(options({ jwksFile: '/nonexistent/jwks.json' }))).toThrow(/cannot read/);
    expect(() => new JwtVerifier(options(keys, { clockSkewSeconds: -1 }))).toThrow(TypeError);
  });
});
