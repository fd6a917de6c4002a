/**
 * One contract for every AsStore implementation (memory and Redis): single use is single use under
 * concurrency, tombstones remember redeemed codes, family revocation reaches the access tokens, every entry
 * expires.
 */
import { randomUUID } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import type {
  AsStore,
  CodeRecord,
  PendingConsent,
  PendingLogin,
  RefreshRecord,
  StoredClient,
} from '../../src/stores/as/as-store.js';
import { StoreFullError } from '../../src/stores/as/as-store.js';
import { MemoryAsStore } from '../../src/stores/as/memory-as-store.js';
import { RedisAsStore } from '../../src/stores/as/redis-as-store.js';
import { describeRedis, probeRedis, redisClient } from '../helpers/redis.js';

interface Harness {
  store: AsStore;
  /** Lets `seconds` pass for the store (a frozen clock for memory, real time for Redis). */
  advance(seconds: number): Promise<void>;
  /** Keys the store holds without an expiry (Redis only; memory cannot hold any). */
  keysWithoutExpiry(): Promise<string[]>;
  dispose(): Promise<void>;
}

function memoryHarness(): Harness {
  let now = Date.UTC(2026, 10, 1);
  const store = new MemoryAsStore({ now: () => now });
  return {
    store,
    advance: async (seconds) => {
      now += seconds * 1000;
    },
    keysWithoutExpiry: async () => [],
    dispose: () => store.close(),
  };
}

function redisHarness(): Harness {
  const prefix = `gatehouse-test:${randomUUID()}:`;
  const redis = redisClient();
  const admin = redisClient();
  const store = new RedisAsStore(redis, { keyPrefix: prefix });
  const keys = async (): Promise<string[]> => admin.keys(`${prefix}*`);
  return {
    store,
    advance: (seconds) => new Promise((r) => setTimeout(r, seconds * 1000 + 150)),
    keysWithoutExpiry: async () => {
      const out: string[] = [];
      for (const k of await keys()) if ((await admin.ttl(k)) < 0) out.push(k);
      return out;
    },
    dispose: async () => {
      const all = await keys();
      if (all.length > 0) await admin.del(...all);
      await store.close();
      await admin.quit();
    },
  };
}

const client: StoredClient = {
  clientId: 'c1',
  clientName: 'Client One',
  redirectUris: ['http://127.0.0.1:9/cb'],
  grantTypes: ['authorization_code', 'refresh_token'],
  tokenEndpointAuthMethod: 'none',
  issuedAt: 1,
  source: 'registration',
};
const request = {
  clientId: 'c1',
  redirectUri: 'http://127.0.0.1:9/cb',
  codeChallenge: 'x'.repeat(43),
  resource: 'https://gw/mcp',
  scopes: ['mcp:tools'],
};
const login: PendingLogin = { request, idpCodeVerifier: 'v', idpNonce: 'n', createdAt: 1 };
const pendingConsent: PendingConsent = {
  request,
  subject: 'alice',
  grantedScopes: ['mcp:tools'],
  csrf: 'csrf',
  createdAt: 1,
};
const code: CodeRecord = { ...request, subject: 'alice', familyId: 'fam1', expiresAt: 2 };
const refresh: RefreshRecord = {
  familyId: 'fam1',
  clientId: 'c1',
  subject: 'alice',
  scopes: ['mcp:tools'],
  resource: 'https://gw/mcp',
  expiresAt: 3,
};

const redisUp = await probeRedis();

function contract(makeHarness: () => Harness): void {
  let h: Harness;
  beforeEach(async () => {
    h = makeHarness();
    return () => h.dispose();
  });

  it('stores clients and hands back copies', async () => {
    await h.store.saveClient(client, 60);
    const found = await h.store.findClient('c1');
    expect(found).toEqual(client);
    expect(found).not.toBe(client);
    expect(await h.store.findClient('nope')).toBeUndefined();
  });

  it('pending logins are single use', async () => {
    await h.store.savePendingLogin('s1', login, 60);
    expect(await h.store.takePendingLogin('s1')).toEqual(login);
    expect(await h.store.takePendingLogin('s1')).toBeUndefined();
  });

  it('pending consents can be read repeatedly and taken once', async () => {
    await h.store.savePendingConsent('p1', pendingConsent, 60);
    expect(await h.store.findPendingConsent('p1')).toEqual(pendingConsent);
    expect(await h.store.findPendingConsent('p1')).toEqual(pendingConsent);
    expect(await h.store.takePendingConsent('p1')).toEqual(pendingConsent);
    expect(await h.store.takePendingConsent('p1')).toBeUndefined();
    expect(await h.store.findPendingConsent('p1')).toBeUndefined();
  });

  it('a code is fresh exactly once, then remembered as used', async () => {
    await h.store.saveCode('h1', code, 60);
    expect(await h.store.takeCode('h1', 60)).toEqual({ state: 'fresh', record: code });
    expect(await h.store.takeCode('h1', 60)).toEqual({ state: 'used', record: code });
    expect(await h.store.takeCode('other', 60)).toEqual({ state: 'missing' });
  });

  it('concurrent redemptions of one code: exactly one wins', async () => {
    await h.store.saveCode('race', code, 60);
    const results = await Promise.all(Array.from({ length: 12 }, () => h.store.takeCode('race', 60)));
    expect(results.filter((r) => r.state === 'fresh')).toHaveLength(1);
    expect(results.filter((r) => r.state === 'used')).toHaveLength(11);
  });

  it('refresh tokens are single use, and findable after use for revocation', async () => {
    await h.store.saveRefreshToken('r1', refresh, 60);
    expect(await h.store.findRefreshToken('r1')).toEqual(refresh);
    const results = await Promise.all([h.store.takeRefreshToken('r1', 60), h.store.takeRefreshToken('r1', 60)]);
    expect(results.map((r) => r.state).sort()).toEqual(['fresh', 'used']);
    expect(await h.store.findRefreshToken('r1')).toEqual(refresh);
    expect(await h.store.findRefreshToken('r2')).toBeUndefined();
  });

  it('revoking a family revokes its access tokens and refuses new ones', async () => {
    const now = Math.floor(Date.now() / 1000);
    expect(await h.store.addFamilyAccessToken('fam1', 'jti-a', now + 300, 600)).toBe(true);
    expect(await h.store.addFamilyAccessToken('fam1', 'jti-b', now + 300, 600)).toBe(true);
    expect(await h.store.addFamilyAccessToken('fam2', 'jti-c', now + 300, 600)).toBe(true);
    expect(await h.store.isFamilyRevoked('fam1')).toBe(false);
    await h.store.revokeFamily('fam1', 600, now);
    expect(await h.store.isFamilyRevoked('fam1')).toBe(true);
    expect(await h.store.isAccessTokenRevoked('jti-a')).toBe(true);
    expect(await h.store.isAccessTokenRevoked('jti-b')).toBe(true);
    expect(await h.store.isAccessTokenRevoked('jti-c')).toBe(false);
    expect(await h.store.addFamilyAccessToken('fam1', 'jti-d', now + 300, 600)).toBe(false);
    expect(await h.store.isFamilyRevoked('fam2')).toBe(false);
  });

  it('revoking a family that has no tokens yet still blocks it', async () => {
    await h.store.revokeFamily('fresh-family', 600, Math.floor(Date.now() / 1000));
    expect(await h.store.addFamilyAccessToken('fresh-family', 'j', Math.floor(Date.now() / 1000) + 60, 600)).toBe(
      false,
    );
  });

  it('remembers consent per (user, client)', async () => {
    const consent = { scopes: ['mcp:tools'], redirectUri: 'http://127.0.0.1:9/cb', grantedAt: 5 };
    await h.store.saveConsent('alice', 'c1', consent, 60);
    expect(await h.store.findConsent('alice', 'c1')).toEqual(consent);
    expect(await h.store.findConsent('alice', 'c2')).toBeUndefined();
    expect(await h.store.findConsent('bob', 'c1')).toBeUndefined();
    // No separator games: ("a:b", "c") is not ("a", "b:c").
    await h.store.saveConsent('a:b', 'c', consent, 60);
    expect(await h.store.findConsent('a', 'b:c')).toBeUndefined();
  });

  it('a (client, jti) pair is used once; other clients have their own', async () => {
    expect(await h.store.markJtiUsed('c1', 'j1', 60)).toBe(true);
    expect(await h.store.markJtiUsed('c1', 'j1', 60)).toBe(false);
    expect(await h.store.markJtiUsed('c2', 'j1', 60)).toBe(true);
    const concurrent = await Promise.all(Array.from({ length: 8 }, () => h.store.markJtiUsed('c3', 'j9', 60)));
    expect(concurrent.filter(Boolean)).toHaveLength(1);
  });

  it('revokes access tokens by jti', async () => {
    expect(await h.store.isAccessTokenRevoked('j')).toBe(false);
    await h.store.revokeAccessToken('j', 60);
    expect(await h.store.isAccessTokenRevoked('j')).toBe(true);
  });

  it('every entry expires', async () => {
    await h.store.saveClient(client, 1);
    await h.store.saveCode('short', code, 1);
    await h.store.takeCode('short', 1);
    await h.store.saveRefreshToken('rt-short', refresh, 1);
    await h.store.savePendingLogin('l', login, 1);
    await h.store.markJtiUsed('c1', 'jj', 1);
    await h.store.revokeAccessToken('rj', 1);
    await h.store.addFamilyAccessToken('f', 'fj', Math.floor(Date.now() / 1000) + 1, 1);
    await h.store.revokeFamily('g', 1, Math.floor(Date.now() / 1000));
    await h.store.saveConsent('alice', 'c1', { scopes: [], redirectUri: 'x', grantedAt: 1 }, 1);
    await h.store.savePendingConsent('pc', pendingConsent, 1);
    expect(await h.keysWithoutExpiry()).toEqual([]);
    await h.advance(1);
    expect(await h.store.findClient('c1')).toBeUndefined();
    expect(await h.store.takeCode('short', 1)).toEqual({ state: 'missing' });
    expect(await h.store.findRefreshToken('rt-short')).toBeUndefined();
    expect(await h.store.takePendingLogin('l')).toBeUndefined();
    expect(await h.store.markJtiUsed('c1', 'jj', 1)).toBe(true);
    expect(await h.store.isAccessTokenRevoked('rj')).toBe(false);
    expect(await h.store.isFamilyRevoked('g')).toBe(false);
    expect(await h.store.findConsent('alice', 'c1')).toBeUndefined();
    expect(await h.store.findPendingConsent('pc')).toBeUndefined();
  });

  it('refuses TTLs that are not positive whole seconds', async () => {
    await expect(h.store.saveClient(client, 0)).rejects.toThrow(TypeError);
    await expect(h.store.saveCode('x', code, 1.5)).rejects.toThrow(TypeError);
    await expect(h.store.takeCode('x', -1)).rejects.toThrow(TypeError);
  });
}

describe.each([['memory', memoryHarness]] as const)('AsStore contract: %s', (_name, make) => contract(make));

describeRedis(redisUp)('AsStore contract: redis', () => contract(redisHarness));

describe('MemoryAsStore bounds', () => {
  it('refuses writes when full of live entries, and makes room by dropping expired ones', async () => {
    let now = 0;
    const store = new MemoryAsStore({ now: () => now, maxEntries: 2 });
    await store.saveClient({ ...client, clientId: 'a' }, 10);
    await store.saveClient({ ...client, clientId: 'b' }, 20);
    await expect(store.saveClient({ ...client, clientId: 'c' }, 10)).rejects.toThrow(StoreFullError);
    now = 11_000;
    await store.saveClient({ ...client, clientId: 'c' }, 10);
    expect(await store.findClient('c')).toBeDefined();
    expect(await store.findClient('a')).toBeUndefined();
  });
});
