/**
 * The session id as a sealed token (src/mcp/session-token.ts), the session authority's refusals and the
 * memory store's revocation and idle clock — each with the clock passed in.
 */
import { randomBytes } from 'node:crypto';
import { CompactEncrypt, decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/errors/gateway-error.js';
import type { Principal } from '../../src/identity/principal.js';
import { SessionAuthority } from '../../src/mcp/session-authority.js';
import { parseSessionKey } from '../../src/config/sessions-config.js';
import {
  keyId,
  principalBinding,
  sameBinding,
  SessionTokenCodec,
  type SessionClaims,
} from '../../src/mcp/session-token.js';
import { MemorySessionStore, MemorySessionStoreFull } from '../../src/stores/sessions/memory-session-store.js';

const key = (): Uint8Array => new Uint8Array(randomBytes(32));
const NOW = 1_800_000_000_000;

function principal(subject: string, clientId = 'app', issuer = 'https://idp.example'): Principal {
  return { subject, clientId, issuer, scopes: new Set(), groups: [], anonymous: false };
}

function claims(over: Partial<SessionClaims> = {}): SessionClaims {
  return {
    jti: 'j1',
    binding: principalBinding(principal('alice')),
    protocolVersion: '2025-11-25',
    capabilities: { sampling: {} },
    clientInfo: { name: 'c', version: '1' },
    issuedAt: NOW,
    expiresAt: NOW + 60_000,
    ...over,
  };
}

describe('SessionTokenCodec', () => {
  it('seals a short compact JWE (dir, A256GCM, kid) that opens to the same claims and names nobody in clear', async () => {
    const k = key();
    const codec = new SessionTokenCodec([k]);
    const token = await codec.seal(claims());
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(token.length).toBeLessThan(600);
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'dir', enc: 'A256GCM', kid: keyId(k) });
    expect(Buffer.from(token.split('.')[3]!, 'base64url').toString('latin1')).not.toContain('2025-11-25');
    const opened = await codec.open(token, NOW + 1);
    expect(opened).toEqual({ ok: true, claims: claims() });
  });

  it('refuses garbage, tampering, another key, a swapped kid and expiry, each with its reason', async () => {
    const k1 = key();
    const codec = new SessionTokenCodec([k1]);
    const token = await codec.seal(claims());
    const parts = token.split('.');
    const flip = (s: string): string =>
      s[5] === 'A' ? `${s.slice(0, 5)}B${s.slice(6)}` : `${s.slice(0, 5)}A${s.slice(6)}`;
    const tampered = [parts[0], '', parts[2], flip(parts[3]!), parts[4]].join('.');
    const other = await new SessionTokenCodec([key()]).seal(claims());
    // The header is authenticated too: a kid pointing at our key on someone else's ciphertext still fails.
    const foreignHeader = Buffer.from(JSON.stringify({ alg: 'dir', enc: 'A256GCM', kid: keyId(k1) })).toString(
      'base64url',
    );
    const swapped = [foreignHeader, ...other.split('.').slice(1)].join('.');
    const cases: [string, string][] = [
      ['A'.repeat(43), 'malformed'],
      ['a.b.c.d.e', 'malformed'],
      [`${token}x`.repeat(20), 'malformed'],
      [tampered, 'undecryptable'],
      [other, 'unknown_key'],
      [swapped, 'undecryptable'],
    ];
    for (const [t, reason] of cases) expect(await codec.open(t, NOW), reason).toEqual({ ok: false, reason });
    expect(await codec.open(token, NOW + 60_000)).toEqual({ ok: false, reason: 'expired' });
  });

  it("refuses an id issued in the future beyond the replicas' clock tolerance (its lifetime would start later)", async () => {
    const codec = new SessionTokenCodec([key()]);
    // An hour ahead: far beyond SESSION_CLOCK_TOLERANCE_MS (60 s); 30 s ahead: a replica whose clock runs fast.
    const ahead = await codec.seal(claims({ issuedAt: NOW + 3_600_000, expiresAt: NOW + 7_200_000 }));
    expect(await codec.open(ahead, NOW)).toEqual({ ok: false, reason: 'invalid_claims' });
    const within = await codec.seal(claims({ issuedAt: NOW + 30_000, expiresAt: NOW + 3_600_000 }));
    expect((await codec.open(within, NOW)).ok).toBe(true);
  });

  it('opens only the header it issues: zip (decompression), crit or any other parameter is refused, even under our key', async () => {
    const k = key();
    const codec = new SessionTokenCodec([k]);
    const c = claims();
    const payload = new TextEncoder().encode(
      JSON.stringify({
        jti: c.jti,
        pb: c.binding,
        v: c.protocolVersion,
        cap: c.capabilities,
        ci: c.clientInfo,
        iat: NOW / 1000,
        exp: (NOW + 60_000) / 1000,
      }),
    );
    const sealWith = (extra: Record<string, unknown>): Promise<string> =>
      new CompactEncrypt(payload)
        .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: keyId(k), ...extra })
        .encrypt(k);
    // Control: the same payload under exactly our header opens.
    expect((await codec.open(await sealWith({}), NOW)).ok).toBe(true);
    for (const extra of [{ zip: 'DEF' }, { cty: 'JWT' }, { typ: 'x' }, { jku: 'https://evil.example/keys' }]) {
      expect(await codec.open(await sealWith(extra), NOW), JSON.stringify(extra)).toEqual({
        ok: false,
        reason: 'malformed',
      });
    }
    // alg/enc confusion: another content encryption under a key of ours is never tried.
    const a128 = await new CompactEncrypt(payload)
      .setProtectedHeader({ alg: 'dir', enc: 'A128GCM', kid: keyId(k) })
      .encrypt(k.slice(0, 16));
    expect(await codec.open(a128, NOW)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('a 1 MB id is refused before any decoding or crypto', async () => {
    const codec = new SessionTokenCodec([key()]);
    const huge = `${Buffer.from(JSON.stringify({ alg: 'dir', enc: 'A256GCM', kid: 'k' })).toString('base64url')}..AAAA.${'A'.repeat(1 << 20)}.AAAA`;
    expect(await codec.open(huge, NOW)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('compares the principal binding in constant time, by value', () => {
    const alice = principal('alice');
    expect(sameBinding(principalBinding(alice), alice)).toBe(true);
    expect(sameBinding(principalBinding(principal('bob')), alice)).toBe(false);
    expect(sameBinding(principalBinding(alice).slice(0, -1), alice)).toBe(false);
    expect(sameBinding('', alice)).toBe(false);
  });

  it('rotation: the first key seals, every key opens', async () => {
    const [k1, k2] = [key(), key()];
    const old = await new SessionTokenCodec([k1]).seal(claims());
    const rotated = new SessionTokenCodec([k2, k1]);
    expect((await rotated.open(old, NOW)).ok).toBe(true);
    const fresh = await rotated.seal(claims());
    expect(decodeProtectedHeader(fresh).kid).toBe(keyId(k2));
    expect((await new SessionTokenCodec([k2]).open(fresh, NOW)).ok).toBe(true);
    expect(await new SessionTokenCodec([k2]).open(old, NOW)).toEqual({ ok: false, reason: 'unknown_key' });
  });

  it('parses keys of exactly 32 bytes in base64url, never quoting them', () => {
    const k = randomBytes(32);
    expect(parseSessionKey(k.toString('base64url'))).toEqual(new Uint8Array(k));
    expect(parseSessionKey(`${k.toString('base64url')}=`)).toEqual(new Uint8Array(k));
    const short = randomBytes(16).toString('base64url');
    expect(parseSessionKey(short)).toBe('must decode to exactly 32 bytes (this one decodes to 16)');
    expect(parseSessionKey('not base64!')).toMatch(/^must be base64url/);
  });

  it('binds to issuer, subject and client: any one different is another principal', () => {
    const a = principalBinding(principal('alice'));
    expect(principalBinding(principal('alice'))).toBe(a);
    expect(principalBinding(principal('bob'))).not.toBe(a);
    expect(principalBinding(principal('alice', 'other-app'))).not.toBe(a);
    expect(principalBinding(principal('alice', 'app', 'https://evil.example'))).not.toBe(a);
    expect(a).not.toContain('alice');
  });
});

describe('SessionAuthority with the memory store', () => {
  const IDLE = 10_000;
  const setup = () => {
    const codec = new SessionTokenCodec([key()]);
    const store = new MemorySessionStore(IDLE);
    return { codec, store, authority: new SessionAuthority({ codec, store, maxLifetimeMs: 60_000 }) };
  };
  const refusal = async (p: Promise<unknown>): Promise<string | undefined> => {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe('GW_MCP_SESSION_NOT_FOUND');
    return (err as GatewayError).detail;
  };

  it('restores a session for its principal only, keeping only what the gateway acts on', async () => {
    const { authority } = setup();
    const s = await authority.issue(
      principal('alice'),
      '2025-06-18',
      { sampling: {}, experimental: { x: {} } },
      { name: 'c', version: '1', icons: [] },
      NOW,
    );
    const r = await authority.restore(s.id, principal('alice'), NOW + 1000);
    expect([r.id, r.key, r.protocolVersion, r.expiresAt, r.initialized]).toEqual([
      s.id,
      s.key,
      '2025-06-18',
      NOW + 60_000,
      true,
    ]);
    expect(r.clientCapabilities).toEqual({ sampling: {} });
    expect(r.clientInfo).toEqual({ name: 'c', version: '1' });
    expect(await refusal(authority.restore(s.id, principal('bob'), NOW + 1000))).toBe(
      'session belongs to another principal',
    );
  });

  it('refuses a revoked session, an idle one (for good), and one past its lifetime', async () => {
    const { authority } = setup();
    const revoked = await authority.issue(principal('alice'), '2025-11-25', {}, {}, NOW);
    await authority.revoke(revoked, NOW + 1);
    expect(await refusal(authority.restore(revoked.id, principal('alice'), NOW + 2))).toBe('session deleted');

    const idle = await authority.issue(principal('alice'), '2025-11-25', {}, {}, NOW);
    await authority.verify(idle, NOW + IDLE); // a use restarts the clock
    expect(await refusal(authority.verify(idle, NOW + 2 * IDLE + 1))).toMatch(/^session idle/);
    expect(await refusal(authority.verify(idle, NOW + 2 * IDLE + 2))).toMatch(/^session idle/);

    const old = await authority.issue(principal('alice'), '2025-11-25', {}, {}, NOW);
    expect(await refusal(authority.restore(old.id, principal('alice'), NOW + 60_000))).toMatch(
      /^session id refused: expired/,
    );
  });

  it('a lowered sessions.maxLifetimeMs applies to ids issued before it (404), the same lifetime still opens', async () => {
    const { codec, store, authority } = setup();
    const s = await authority.issue(principal('alice'), '2025-11-25', {}, {}, NOW + 500);
    expect(
      (
        await new SessionAuthority({ codec, store, maxLifetimeMs: 60_000 }).restore(
          s.id,
          principal('alice'),
          NOW + 1000,
        )
      ).key,
    ).toBe(s.key);
    const shorter = new SessionAuthority({ codec, store, maxLifetimeMs: 30_000 });
    expect(await refusal(shorter.restore(s.id, principal('alice'), NOW + 1000))).toBe(
      'session id refused: lifetime over sessions.maxLifetimeMs',
    );
  });

  it('a store that cannot answer is a 503, never a 404', async () => {
    const codec = new SessionTokenCodec([key()]);
    const down = {
      opened: () => Promise.reject(new Error('ECONNREFUSED')),
      touch: () => Promise.reject(new Error('ECONNREFUSED')),
      revoke: () => Promise.reject(new Error('x')),
      established: () => Promise.reject(new Error('x')),
      end: () => Promise.reject(new Error('x')),
    };
    const authority = new SessionAuthority({ codec, store: down, maxLifetimeMs: 60_000 });
    await expect(authority.issue(principal('alice'), '2025-11-25', {}, {}, NOW)).rejects.toMatchObject({
      code: 'GW_MCP_SESSION_STORE_UNAVAILABLE',
    });
  });
});

describe('MemorySessionStore bound (sessions.memoryMaxEntries)', () => {
  const IDLE = 10_000;
  const EXP = NOW + 60_000;

  it('never holds more than the cap: the least recently used idle clock goes first', async () => {
    const store = new MemorySessionStore(IDLE, 3);
    for (const jti of ['a', 'b', 'c']) await store.opened(jti, EXP, NOW);
    expect(await store.touch('a', EXP, NOW + 1)).toBe('ok'); // a is now the most recent
    for (let i = 0; i < 100; i++) await store.opened(`flood-${i}`, EXP, NOW + 2);
    expect(store.size).toBe(3);
    // A forgotten clock restarts on its next use; a kept one still measures idleness.
    await store.opened('x', EXP, NOW + 3);
    expect(await store.touch('x', EXP, NOW + 3 + IDLE + 1)).toBe('idle');
  });

  it('never forgets a revocation before its exp: full of revocations, it refuses (503 at the authority)', async () => {
    const store = new MemorySessionStore(IDLE, 3);
    for (const jti of ['r1', 'r2', 'r3']) {
      await store.opened(jti, EXP, NOW);
      await store.revoke(jti, EXP, NOW);
    }
    await expect(store.opened('new', EXP, NOW + 1)).rejects.toBeInstanceOf(MemorySessionStoreFull);
    await expect(store.touch('unknown', EXP, NOW + 1)).rejects.toBeInstanceOf(MemorySessionStoreFull);
    for (const jti of ['r1', 'r2', 'r3']) expect(await store.touch(jti, EXP, NOW + 2)).toBe('revoked');
    const authority = new SessionAuthority({ codec: new SessionTokenCodec([key()]), store, maxLifetimeMs: 60_000 });
    await expect(authority.issue(principal('alice'), '2025-11-25', {}, {}, NOW + 3)).rejects.toMatchObject({
      code: 'GW_MCP_SESSION_STORE_UNAVAILABLE',
    });
    // Once they expire (the ids are refused anyway), there is room again.
    await store.opened('later', EXP + 60_000, EXP + 1);
    expect(store.size).toBe(1);
  });

  it('a flood of revocations cannot push out an earlier one', async () => {
    const store = new MemorySessionStore(IDLE, 4);
    await store.opened('victim', EXP, NOW);
    await store.revoke('victim', EXP, NOW);
    for (let i = 0; i < 20; i++) {
      await store.opened(`s${i}`, EXP, NOW + 1).catch(() => undefined);
      await store.revoke(`s${i}`, EXP, NOW + 1).catch(() => undefined);
    }
    expect(store.size).toBeLessThanOrEqual(4);
    expect(await store.touch('victim', EXP, NOW + 2)).toBe('revoked');
  });
});

describe('SessionTokenCodec over live keys (sessions.keys from files that rotate)', () => {
  it('seals with the new first key from the next seal on, opens ids of every key still listed, not of one dropped', async () => {
    const [k1, k2] = [new Uint8Array(randomBytes(32)), new Uint8Array(randomBytes(32))];
    let keys = [k1];
    let generation = 0;
    const codec = new SessionTokenCodec({ stamp: () => String(generation), keys: () => keys });
    const now = Date.now();
    const old = await codec.seal(claims({ issuedAt: now, expiresAt: now + 60_000 }));
    expect(codec.kid).toBe(keyId(k1));
    // The Secret's swap: the new key first, the old one second.
    keys = [k2, k1];
    generation += 1;
    expect(codec.kid).toBe(keyId(k2));
    const fresh = await codec.seal(claims({ issuedAt: now, expiresAt: now + 60_000 }));
    expect(decodeProtectedHeader(fresh).kid).toBe(keyId(k2));
    expect((await codec.open(old, now)).ok).toBe(true);
    expect((await codec.open(fresh, now)).ok).toBe(true);
    // The old key no longer listed: its ids stop opening.
    keys = [k2];
    generation += 1;
    expect(await codec.open(old, now)).toEqual({ ok: false, reason: 'unknown_key' });
    expect((await codec.open(fresh, now)).ok).toBe(true);
  });
});
