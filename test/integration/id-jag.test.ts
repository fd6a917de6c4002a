/**
 * Enterprise-managed authorization (ID-JAG) to an upstream, all real parts (docs/authentication.md "Outbound identity:
 * ID-JAG"): `oidc-provider` as the corporate IdP issuing ID-JAGs by token exchange, a second `oidc-provider` as the
 * upstream's own AS redeeming them by the jwt-bearer grant, and an HTTP MCP server that accepts only that AS's tokens
 * for its own audience. Two users arrive as two subjects without a consent screen; the inbound token reaches the IdP
 * and nothing else; an ID-JAG minted for another AS and a replayed ID-JAG are refused by the AS; the cache saves the
 * second two-step exchange.
 */
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, importJWK, type CryptoKey, type JWK } from 'jose';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateDevKey } from '../../src/auth/dev-keys.js';
import { startAudienceUpstream, type AudienceUpstream } from '../helpers/audience-upstream.js';
import { modernToolCall, startGateway, type TestGateway } from '../helpers/gateway.js';
import {
  AS_CLIENT_ID,
  IDP_CLIENT_ID,
  JWT_BEARER,
  startIdJagAs,
  startIdJagIdp,
  type IdJagAs,
  type IdJagIdp,
} from '../helpers/id-jag-servers.js';

/** An AS issuer the IdP will mint for but that is not the AS the gateway redeems at. */
const OTHER_AS = 'https://other-as.example';

let idp: IdJagIdp;
let as: IdJagAs;
let crm: AudienceUpstream;
let misrouted: AudienceUpstream;
let gw: TestGateway;

function upstreamYaml(name: string, u: AudienceUpstream, asIssuer: string): string {
  return JSON.stringify({
    name,
    transport: 'http',
    url: u.url,
    protocol: 'legacy',
    credentials: {
      idJag: {
        idp: {
          issuer: idp.issuer,
          clientAuth: { method: 'private_key_jwt', clientId: IDP_CLIENT_ID, key: { fromEnv: 'GW_IDP_KEY' } },
        },
        authorizationServer: {
          issuer: asIssuer,
          // crm discovers the AS's token endpoint; misrouted names it (its issuer is not where it redeems).
          ...(asIssuer === as.issuer ? {} : { tokenEndpoint: as.tokenEndpoint }),
          clientAuth: { method: 'private_key_jwt', clientId: AS_CLIENT_ID, key: { fromEnv: 'GW_AS_KEY' } },
        },
        scope: 'tools',
      },
    },
  });
}

beforeAll(async () => {
  // The AS's issuer is known only once it listens; the IdP's mapping (extension §6.1) is filled in then.
  const clientIdAt: Record<string, string> = { [OTHER_AS]: AS_CLIENT_ID };
  idp = await startIdJagIdp(clientIdAt);
  as = await startIdJagAs(idp);
  clientIdAt[as.issuer] = AS_CLIENT_ID;
  const fromAs = { issuer: as.issuer, jwksUrl: `${as.issuer}/jwks` };
  crm = await startAudienceUpstream(fromAs);
  misrouted = await startAudienceUpstream(fromAs);
  gw = await startGateway([upstreamYaml('crm', crm, as.issuer), upstreamYaml('misrouted', misrouted, OTHER_AS)], {
    top: 'auth:\n  mode: dev\n',
    env: { GW_IDP_KEY: idp.clientKey, GW_AS_KEY: as.clientKey },
  });
  const dev = await loadOrCreateDevKey(gw.app.config.auth.dev!.keyFile);
  idp.trustSubjectTokens(createLocalJWKSet(dev.publicJwks()), gw.app.config.auth.dev!.issuer);
}, 30_000);

afterAll(async () => {
  await gw?.close();
  await Promise.all([crm?.close(), misrouted?.close(), as?.close(), idp?.close()]);
});

function call(token: string, tool: string): ReturnType<typeof modernToolCall> {
  return modernToolCall(gw.url, token, tool);
}

/** Presents an assertion at the AS as the gateway's client would (private_key_jwt with the gateway's AS key). */
async function redeemDirectly(assertion: string): Promise<Response> {
  const jwk = JSON.parse(as.clientKey) as JWK;
  const key = (await importJWK(jwk, 'ES256')) as CryptoKey;
  const server: oauth.AuthorizationServer = { issuer: as.issuer, token_endpoint: as.tokenEndpoint };
  return oauth.genericTokenEndpointRequest(
    server,
    { client_id: AS_CLIENT_ID },
    oauth.PrivateKeyJwt({ key, kid: jwk.kid! }),
    JWT_BEARER,
    new URLSearchParams({ assertion }),
    { [oauth.allowInsecureRequests]: true },
  );
}

describe('enterprise-managed authorization (ID-JAG) to an upstream', () => {
  it('two users arrive upstream as two subjects with no consent step, and the inbound token reaches only the IdP', async () => {
    const alice = await gw.token({ sub: 'alice', scopes: ['tools'] });
    const bob = await gw.token({ sub: 'bob', scopes: ['tools'] });
    // The first call of each user succeeds outright: no consent URL, no elicitation.
    const a = await call(alice, 'crm__whoami');
    const b = await call(bob, 'crm__whoami');
    expect(a.text).toContain('alice');
    expect(b.text).toContain('bob');
    expect(a.text).not.toContain('consent');
    const calls = crm.seen.filter((s) => s.method === 'tools/call');
    expect(calls.map((s) => s.subject)).toEqual(['alice', 'bob']);
    for (const s of calls) {
      const at = decodeJwt(s.authorization!.slice(7));
      expect(at.aud).toBe(crm.url);
      expect(at.iss).toBe(as.issuer);
    }
    // The IdP was asked for ID-JAGs whose audience is the AS and whose resource is crm (extension §4).
    const asked = idp.exchanges.filter((e) => e.subject === 'alice' || e.subject === 'bob');
    expect(asked.map((e) => [e.audience, e.resource, e.ok])).toEqual([
      [as.issuer, crm.url, true],
      [as.issuer, crm.url, true],
    ]);
    // The AS got ID-JAGs (typ oauth-id-jag+jwt, extension §4.3), never the inbound tokens.
    const redeemed = as.redemptions.filter((r) => r.subject === 'alice' || r.subject === 'bob');
    expect(redeemed.map((r) => r.ok)).toEqual([true, true]);
    for (const r of redeemed) expect(decodeProtectedHeader(r.assertion).typ).toBe('oauth-id-jag+jwt');
    for (const text of [...as.received, ...crm.seen.map((s) => `${s.authorization ?? ''} ${s.body}`)]) {
      expect(text).not.toContain(alice);
      expect(text).not.toContain(bob);
    }
    // The upstream never sees the ID-JAG either: only the AS's access token.
    for (const s of calls) for (const r of redeemed) expect(s.authorization).not.toContain(r.assertion);
    // The audit record says which credential kind and whose, never the credential.
    const records = gw.logs
      .map((l) => (l as { audit?: Record<string, unknown> }).audit)
      .filter((r) => r?.type === 'mcp.request' && r.method === 'tools/call' && r.upstream === 'crm');
    expect(records.map((r) => [r!.outbound, r!.upstreamSubject])).toEqual([
      ['id-jag', 'alice'],
      ['id-jag', 'bob'],
    ]);
    const secrets = [alice, bob, ...calls.map((s) => s.authorization!.slice(7)), ...redeemed.map((r) => r.assertion)];
    for (const line of gw.logs) {
      const text = JSON.stringify(line);
      for (const t of secrets) expect(text).not.toContain(t);
    }
  });

  it('the cache saves the second two-step exchange (counted at the IdP and the AS)', async () => {
    const carol = await gw.token({ sub: 'carol', scopes: ['tools'] });
    expect((await call(carol, 'crm__whoami')).text).toContain('carol');
    expect((await call(carol, 'crm__whoami')).text).toContain('carol');
    expect(idp.exchanges.filter((e) => e.subject === 'carol')).toHaveLength(1);
    expect(as.redemptions.filter((r) => r.subject === 'carol')).toHaveLength(1);
    expect(crm.seen.filter((s) => s.subject === 'carol')).toHaveLength(2);
  });

  it('ATTACK: an ID-JAG minted for another AS is refused by this AS (aud), and the call fails closed', async () => {
    const dave = await gw.token({ sub: 'dave', scopes: ['tools'] });
    const res = await call(dave, 'misrouted__whoami');
    expect(res.text).toContain('Upstream credential unavailable');
    expect(res.text).toContain('misrouted');
    // The AS's words stay off the wire.
    expect(res.text).not.toContain('invalid_client');
    expect(res.text).not.toContain('invalid_grant');
    expect(misrouted.seen.filter((s) => s.method === 'tools/call')).toEqual([]);
    const record = gw.logs
      .map((l) => (l as { audit?: Record<string, unknown> }).audit)
      .find((r) => r?.type === 'mcp.request' && r.upstream === 'misrouted' && r.errorCode !== undefined);
    expect(record?.errorCode).toBe('GW_UPSTREAM_CREDENTIAL_FAILED');
    expect(String(record?.detail)).toContain('the authorization server refused the ID-JAG');
    // The IdP did mint an ID-JAG for the other AS; presented here even with this AS's valid client authentication,
    // the AS refuses it on its audience (extension §5.1).
    const minted = idp.exchanges.filter((e) => e.subject === 'dave');
    expect(minted.map((e) => [e.audience, e.ok])).toEqual([[OTHER_AS, true]]);
    expect(decodeJwt(minted[0]!.jag!).aud).toBe(OTHER_AS);
    const direct = await redeemDirectly(minted[0]!.jag!);
    expect(direct.status).toBe(400);
    expect(((await direct.json()) as { error: string }).error).toBe('invalid_grant');
    expect(as.redemptions.at(-1)).toMatchObject({
      ok: false,
      reason: 'assertion invalid: ERR_JWT_CLAIM_VALIDATION_FAILED',
    });
    expect(as.redemptions.filter((r) => r.ok && r.subject === 'dave')).toEqual([]);
  });

  it('ATTACK: a replayed ID-JAG (same jti) is refused by the AS', async () => {
    const used = as.redemptions.find((r) => r.ok && r.subject === 'alice');
    expect(used).toBeDefined();
    const res = await redeemDirectly(used!.assertion);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe('invalid_grant');
    expect(as.redemptions.at(-1)).toMatchObject({ ok: false, reason: 'jti replayed' });
  });
});
