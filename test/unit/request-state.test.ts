/**
 * The sealed `requestState` of 2026-07-28 input-required results (src/mcp/request-state.ts): what it binds, what it
 * refuses, and how its keys rotate with `sessions.keys`.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Principal } from '../../src/identity/principal.js';
import { REQUEST_STATE_TTL_MS, RequestStateCodec, type StateBinding } from '../../src/mcp/request-state.js';
import { SessionTokenCodec } from '../../src/mcp/session-token.js';

const alice: Principal = {
  subject: 'alice',
  issuer: 'https://idp.example',
  clientId: 'c1',
  scopes: new Set(),
  groups: [],
  anonymous: false,
};
const bob: Principal = { ...alice, subject: 'bob' };
const binding: StateBinding = { upstream: 'fx', method: 'tools/call', name: 'fx__book', args: { room: 'a', n: 2 } };
const NOW = 1_800_000_000_000;

function key(): Uint8Array {
  return new Uint8Array(randomBytes(32));
}

describe('requestState', () => {
  it('round-trips the upstream state byte for byte and the round', async () => {
    const codec = new RequestStateCodec([key()]);
    const inner = 'upstream-opaque \u00e9 "quoted" ' + 'x'.repeat(300);
    const sealed = await codec.seal(alice, binding, { round: 2, inner }, NOW);
    expect(sealed).not.toContain('upstream-opaque');
    // Member order of the arguments is not part of the request.
    const same = { ...binding, args: { n: 2, room: 'a' } };
    expect(await codec.open(sealed, alice, same, NOW + 1000)).toEqual({ ok: true, claims: { round: 2, inner } });
  });

  it('refuses another principal, another request, a late retry and a foreign key', async () => {
    const codec = new RequestStateCodec([key()]);
    const sealed = await codec.seal(alice, binding, { round: 1, parked: 'h' }, NOW);
    expect(await codec.open(sealed, bob, binding, NOW)).toEqual({ ok: false, reason: 'wrong_principal' });
    for (const other of [
      { ...binding, upstream: 'other' },
      { ...binding, method: 'prompts/get' },
      { ...binding, name: 'fx__cancel' },
      { ...binding, args: { room: 'b', n: 2 } },
      { ...binding, args: undefined },
    ])
      expect(await codec.open(sealed, alice, other, NOW)).toEqual({ ok: false, reason: 'wrong_request' });
    expect(await codec.open(sealed, alice, binding, NOW + REQUEST_STATE_TTL_MS)).toEqual({
      ok: false,
      reason: 'expired',
    });
    expect(await new RequestStateCodec([key()]).open(sealed, alice, binding, NOW)).toEqual({
      ok: false,
      reason: 'unknown_key',
    });
    expect(await codec.open(`${sealed}x`, alice, binding, NOW)).toMatchObject({ ok: false });
    expect(await codec.open('not a state', alice, binding, NOW)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('rotates with the session keys, and never shares a key with the session ids', async () => {
    const k1 = key();
    const k2 = key();
    const sealed = await new RequestStateCodec([k1]).seal(alice, binding, { round: 1 }, NOW);
    // k2 rotated in first: states sealed under k1 still open.
    expect(await new RequestStateCodec([k2, k1]).open(sealed, alice, binding, NOW)).toMatchObject({ ok: true });
    // A session id sealed with the same configured key is not a state (derived key, own kid label).
    const sid = await new SessionTokenCodec([k1]).seal({
      jti: 'j',
      binding: 'b',
      protocolVersion: '2025-11-25',
      capabilities: {},
      clientInfo: {},
      issuedAt: NOW,
      expiresAt: NOW + 1000,
    });
    expect(await new RequestStateCodec([k1]).open(sid, alice, binding, NOW)).toEqual({
      ok: false,
      reason: 'unknown_key',
    });
  });
});
