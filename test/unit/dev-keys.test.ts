import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEV_TOKEN_MAX_TTL_SECONDS, loadOrCreateDevKey, parseTtl } from '../../src/auth/dev-keys.js';

const ISSUER = 'gatehouse-dev';
const AUDIENCE = 'http://127.0.0.1:8080/mcp';
const posix = process.platform !== 'win32';

let dir: string;
let keyFile: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-devkey-'));
  keyFile = path.join(dir, 'nested', '.gatehouse', 'dev-signing-key.json');
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('loadOrCreateDevKey', () => {
  it('creates a 0600 key file (and a 0700 folder) holding {kid, privateJwk, createdAt}', async () => {
    const key = await loadOrCreateDevKey(keyFile);
    expect(key.created).toBe(true);
    expect(key.file).toBe(keyFile);
    const stored = JSON.parse(fs.readFileSync(keyFile, 'utf8')) as {
      kid: string;
      privateJwk: Record<string, string>;
      createdAt: string;
    };
    expect(stored.kid).toBe(key.kid);
    expect(stored.privateJwk).toMatchObject({ kty: 'EC', crv: 'P-256' });
    expect(typeof stored.privateJwk.d).toBe('string');
    expect(Number.isNaN(Date.parse(stored.createdAt))).toBe(false);
    if (posix) {
      expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
      expect(fs.statSync(path.dirname(keyFile)).mode & 0o777).toBe(0o700);
    }
    // No temporary file left beside it.
    expect(fs.readdirSync(path.dirname(keyFile))).toEqual(['dev-signing-key.json']);
  });

  it('reuses the existing file: same kid, same key, not rewritten', async () => {
    const first = await loadOrCreateDevKey(keyFile);
    const before = fs.readFileSync(keyFile, 'utf8');
    const second = await loadOrCreateDevKey(keyFile);
    expect(second.created).toBe(false);
    expect(second.kid).toBe(first.kid);
    expect(second.createdAt).toBe(first.createdAt);
    expect(second.publicJwks()).toEqual(first.publicJwks());
    expect(fs.readFileSync(keyFile, 'utf8')).toBe(before);
    // A token minted with one verifies with the other's JWKS.
    const token = await first.mint({ sub: 'alice', scopes: ['a'], audience: AUDIENCE, issuer: ISSUER });
    await expect(
      jwtVerify(token, createLocalJWKSet(second.publicJwks()), { issuer: ISSUER, audience: AUDIENCE }),
    ).resolves.toBeDefined();
  });

  it('kid is the RFC 7638 thumbprint of the public key, stable across loads; two keys differ', async () => {
    const key = await loadOrCreateDevKey(keyFile);
    const { calculateJwkThumbprint } = await import('jose');
    const jwk = key.publicJwks().keys[0]!;
    expect(key.kid).toBe(
      await calculateJwkThumbprint({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y } as never, 'sha256'),
    );
    expect(key.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // A kid edited by hand in the file is ignored: it is derived from the key.
    const stored = JSON.parse(fs.readFileSync(keyFile, 'utf8')) as Record<string, unknown>;
    fs.writeFileSync(keyFile, JSON.stringify({ ...stored, kid: 'tampered' }), { mode: 0o600 });
    expect((await loadOrCreateDevKey(keyFile)).kid).toBe(key.kid);
    const other = await loadOrCreateDevKey(path.join(dir, 'other.json'));
    expect(other.kid).not.toBe(key.kid);
  });

  it('concurrent first use creates one key, not two', async () => {
    const keys = await Promise.all([1, 2, 3, 4].map(() => loadOrCreateDevKey(keyFile)));
    expect(new Set(keys.map((k) => k.kid)).size).toBe(1);
    expect(keys.filter((k) => k.created)).toHaveLength(1);
    expect(fs.readdirSync(path.dirname(keyFile))).toEqual(['dev-signing-key.json']);
  });

  it.runIf(posix)('refuses a key file other users can read, telling to chmod 600', async () => {
    await loadOrCreateDevKey(keyFile);
    fs.chmodSync(keyFile, 0o644);
    await expect(loadOrCreateDevKey(keyFile)).rejects.toThrow(/accessible by other users \(mode 644\).*chmod 600/);
    fs.chmodSync(keyFile, 0o640);
    await expect(loadOrCreateDevKey(keyFile)).rejects.toThrow(/chmod 600/);
    fs.chmodSync(keyFile, 0o600);
    await expect(loadOrCreateDevKey(keyFile)).resolves.toBeDefined();
  });

  it('refuses a file that is not a key, without overwriting it', async () => {
    fs.mkdirSync(path.dirname(keyFile), { recursive: true });
    fs.writeFileSync(keyFile, '{"privateJwk": {"kty": "oct", "k": "AAAA"}}', { mode: 0o600 });
    await expect(loadOrCreateDevKey(keyFile)).rejects.toThrow(/not a P-256 EC private key.*delete the file/);
    fs.writeFileSync(keyFile, 'not json');
    await expect(loadOrCreateDevKey(keyFile)).rejects.toThrow(/not JSON/);
    expect(fs.readFileSync(keyFile, 'utf8')).toBe('not json');
  });

  it('publicJwks has the public part only, with kid, alg ES256 and use sig', async () => {
    const key = await loadOrCreateDevKey(keyFile);
    const jwks = key.publicJwks();
    expect(jwks.keys).toHaveLength(1);
    expect(Object.keys(jwks.keys[0]!).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
    expect(jwks.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', kid: key.kid, alg: 'ES256', use: 'sig' });
    expect(JSON.stringify(jwks)).not.toContain('"d"');
    // A copy: a caller mutating it does not change the key.
    jwks.keys[0]!.kid = 'changed';
    expect(key.publicJwks().keys[0]!.kid).toBe(key.kid);
  });
});

describe('DevKey.mint', () => {
  it('mints an RFC 9068 access token that verifies against publicJwks with the right iss, aud and typ', async () => {
    const key = await loadOrCreateDevKey(keyFile);
    const before = Math.floor(Date.now() / 1000);
    const token = await key.mint({
      sub: 'alice',
      scopes: ['orders:read', 'orders:write'],
      clientId: 'cli',
      audience: AUDIENCE,
      issuer: ISSUER,
    });
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(key.publicJwks()), {
      issuer: ISSUER,
      audience: AUDIENCE,
      typ: 'at+jwt',
      algorithms: ['ES256'],
    });
    expect(protectedHeader).toEqual({ alg: 'ES256', kid: key.kid, typ: 'at+jwt' });
    expect(payload).toMatchObject({
      iss: ISSUER,
      sub: 'alice',
      aud: AUDIENCE,
      scope: 'orders:read orders:write',
      client_id: 'cli',
    });
    expect(payload.iat).toBeGreaterThanOrEqual(before);
    expect(payload.nbf).toBe(payload.iat);
    expect(payload.exp! - payload.iat!).toBe(600);
    expect(payload.jti).toMatch(/^[A-Za-z0-9_-]{22}$/);

    // Wrong audience or issuer: refused.
    await expect(
      jwtVerify(token, createLocalJWKSet(key.publicJwks()), { audience: 'http://other/mcp' }),
    ).rejects.toThrow();
    await expect(jwtVerify(token, createLocalJWKSet(key.publicJwks()), { issuer: 'someone-else' })).rejects.toThrow();
    // Another dev key's JWKS does not verify it.
    const other = await loadOrCreateDevKey(path.join(dir, 'other.json'));
    await expect(jwtVerify(token, createLocalJWKSet(other.publicJwks()))).rejects.toThrow();
  });

  it('fresh jti per token; default client_id; custom claim names and extra claims (registered claims win)', async () => {
    const key = await loadOrCreateDevKey(keyFile);
    const base = { sub: 'bob', scopes: [], audience: AUDIENCE, issuer: ISSUER };
    const a = await key.mint(base);
    const b = await key.mint(base);
    const jwks = createLocalJWKSet(key.publicJwks());
    const pa = (await jwtVerify(a, jwks)).payload;
    const pb = (await jwtVerify(b, jwks)).payload;
    expect(pa.jti).not.toBe(pb.jti);
    expect(pa.client_id).toBe('gatehouse-dev');
    expect(pa.scope).toBe('');

    const c = await key.mint({
      ...base,
      scopes: ['x'],
      claimNames: { scope: 'scp', clientId: 'azp' },
      extra: { groups: ['ops'], sub: 'mallory', iss: 'evil' },
    });
    const pc = (await jwtVerify(c, jwks, { issuer: ISSUER })).payload;
    // RFC 9068 §2.2 client_id too, whatever claims.clientId says: requireTokenType makes the verifier require it.
    expect(pc).toMatchObject({
      scp: 'x',
      azp: 'gatehouse-dev',
      client_id: 'gatehouse-dev',
      groups: ['ops'],
      sub: 'bob',
      iss: ISSUER,
    });
    expect(pc.scope).toBeUndefined();
  });

  it('ttl: default 600 s, custom, capped at 24 h; now is injectable', async () => {
    const key = await loadOrCreateDevKey(keyFile);
    const base = { sub: 'alice', scopes: ['a'], audience: AUDIENCE, issuer: ISSUER };
    const jwks = createLocalJWKSet(key.publicJwks());
    const day = (await jwtVerify(await key.mint({ ...base, ttlSeconds: DEV_TOKEN_MAX_TTL_SECONDS }), jwks)).payload;
    expect(day.exp! - day.iat!).toBe(86_400);
    await expect(key.mint({ ...base, ttlSeconds: DEV_TOKEN_MAX_TTL_SECONDS + 1 })).rejects.toThrow(
      /maximum of 86400 s/,
    );
    await expect(key.mint({ ...base, ttlSeconds: 0 })).rejects.toThrow(/≥ 1/);
    await expect(key.mint({ ...base, ttlSeconds: 1.5 })).rejects.toThrow(/whole number/);

    const old = await key.mint({ ...base, ttlSeconds: 60, now: Date.now() - 3_600_000 });
    await expect(jwtVerify(old, jwks)).rejects.toThrow(/"exp" claim timestamp check failed/);
    expect(decodeProtectedHeader(old).kid).toBe(key.kid);
  });

  it('refuses an empty sub and scopes that cannot be space-separated', async () => {
    const key = await loadOrCreateDevKey(keyFile);
    const base = { audience: AUDIENCE, issuer: ISSUER };
    await expect(key.mint({ ...base, sub: '', scopes: [] })).rejects.toThrow(/sub/);
    await expect(key.mint({ ...base, sub: 'a', scopes: ['a b'] })).rejects.toThrow(/invalid scope "a b"/);
    await expect(key.mint({ ...base, sub: 'a', scopes: [''] })).rejects.toThrow(/invalid scope/);
    await expect(key.mint({ ...base, sub: 'a', scopes: ['a"b'] })).rejects.toThrow(/invalid scope/);
  });
});

describe('parseTtl', () => {
  it('reads seconds and s/m/h/d, within 1 s..24 h', () => {
    expect(parseTtl('600')).toBe(600);
    expect(parseTtl('45s')).toBe(45);
    expect(parseTtl('10m')).toBe(600);
    expect(parseTtl('2h')).toBe(7200);
    expect(parseTtl('1d')).toBe(86_400);
    expect(() => parseTtl('25h')).toThrow(/maximum/);
    expect(() => parseTtl('0')).toThrow(/≥ 1/);
    expect(() => parseTtl('10 minutes')).toThrow(/invalid ttl/);
    expect(() => parseTtl('-5')).toThrow(/invalid ttl/);
    expect(() => parseTtl('1.5h')).toThrow(/invalid ttl/);
  });
});
