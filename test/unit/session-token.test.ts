/**
 * The session id as a sealed token (src/mcp/session-token.ts), the session authority's refusals and the
 * memory store's revocation and idle clock — each with the clock passed in.
 */
import { randomBytes } from 'node:crypto';
import { decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/errors/gateway-error.js';
import type { Principal } from '../../src/lib/principal.js';
import { SessionAuthority } from '../../src/mcp/session-authority.js';
import { parseSessionKey } from '../../src/config/sessions-config.js';
import { keyId, principalBinding, SessionTokenCodec, type SessionClaims } from '../../src/mcp/session-token.js';
import { MemorySessionStore } from '../../src/stores/memory-session-store.js';

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
    const flip = (s: string): string => (s[5] === 'A' ? `${s.slice(0, 5)}B${s.slice(6)}` : `${s.slice(0, 5)}A${s.slice(6)}`);
    const tampered = [parts[0], '', parts[2], flip(parts[3]!), parts[4]].join('.');
    const other = await new SessionTokenCodec([key()]).seal(claims());
    // The header is authenticated too: a kid pointing at our key on someone else's ciphertext still fails.
    const foreignHeader = Buffer.from(JSON.stringify({ alg: 'dir', enc: 'A256GCM', kid: keyId(k1) })).toString('base64url');
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
    const s = await authority.issue(principal('alice'), '2025-06-18', { sampling: {}, experimental: { x: {} } }, { name: 'c', version: '1', icons: [] }, NOW);
    const r = await authority.restore(s.id, principal('alice'), NOW + 1000);
    expect([r.id, r.key, r.protocolVersion, r.expiresAt, r.initialized]).toEqual([s.id, s.key, '2025-06-18', NOW + 60_000, true]);
    expect(r.clientCapabilities).toEqual({ sampling: {} });
    expect(r.clientInfo).toEqual({ name: 'c', version: '1' });
    expect(await refusal(authority.restore(s.id, principal('bob'), NOW + 1000))).toBe('session belongs to another principal');
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
    expect(await refusal(authority.restore(old.id, principal('alice'), NOW + 60_000))).toMatch(/^session id refused: expired/);
  });

  it('a store that cannot answer is a 503, never a 404', async () => {
    const codec = new SessionTokenCodec([key()]);
    const down = { opened: () => Promise.reject(new Error('ECONNREFUSED')), touch: () => Promise.reject(new Error('ECONNREFUSED')), revoke: () => Promise.reject(new Error('x')) };
    const authority = new SessionAuthority({ codec, store: down, maxLifetimeMs: 60_000 });
    await expect(authority.issue(principal('alice'), '2025-11-25', {}, {}, NOW)).rejects.toMatchObject({ code: 'GW_MCP_SESSION_STORE_UNAVAILABLE' });
  });
});
