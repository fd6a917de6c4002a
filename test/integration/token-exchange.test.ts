/**
 * Outbound identity by RFC 8693 token exchange, all real parts (docs/authentication.md "Outbound identity"):
 * `oidc-provider` as the corporate authorization server with the token-exchange grant registered, authenticating the
 * gateway with private_key_jwt and issuing JWT access tokens for the upstream's resource with the caller's `sub`;
 * two HTTP MCP servers that accept a call only with a bearer JWT for their own audience (checked against the IdP's
 * JWKS) and record what they see. Two users arrive upstream as two subjects; the inbound token never reaches an
 * upstream; a token minted for A is refused by B and never sent to B; a cached token saves the second exchange; an
 * IdP refusal is a clear error with none of the IdP's text on the wire.
 */
import { createLocalJWKSet, decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateDevKey } from '../../src/auth/dev-keys.js';
import {
  startAudienceUpstream as startAudienceUpstreamOf,
  type AudienceUpstream,
} from '../helpers/audience-upstream.js';
import { startExchangeIdp, EXCHANGE_CLIENT_ID, IDP_SECRET_TEXT, type ExchangeIdp } from '../helpers/exchange-idp.js';
import { modernToolCall, startGateway, type TestGateway } from '../helpers/gateway.js';

let idp: ExchangeIdp;
/** An upstream that takes only the IdP's tokens for its own URL. */
const startAudienceUpstream = (i: ExchangeIdp): Promise<AudienceUpstream> =>
  startAudienceUpstreamOf({ issuer: i.issuer, jwksUrl: `${i.issuer}/jwks` });
let crm: AudienceUpstream;
let wiki: AudienceUpstream;
let broken: AudienceUpstream;
let gw: TestGateway;

function upstreamYaml(
  name: string,
  u: AudienceUpstream,
  how: 'endpoint' | 'discovery',
  extra: Record<string, unknown> = {},
): string {
  return JSON.stringify({
    name,
    transport: 'http',
    url: u.url,
    protocol: 'legacy',
    credentials: {
      tokenExchange: {
        ...(how === 'endpoint' ? { tokenEndpoint: idp.tokenEndpoint } : { issuer: idp.issuer }),
        resource: u.url,
        scope: 'tools',
        clientAuth: { method: 'private_key_jwt', clientId: EXCHANGE_CLIENT_ID, key: { fromEnv: 'GW_EXCHANGE_KEY' } },
        ...extra,
      },
    },
  });
}

beforeAll(async () => {
  idp = await startExchangeIdp();
  crm = await startAudienceUpstream(idp);
  wiki = await startAudienceUpstream(idp);
  broken = await startAudienceUpstream(idp);
  // The IdP refuses exchanges for this one upstream's resource, with text of its own.
  idp.failResource = broken.url;
  gw = await startGateway(
    [
      upstreamYaml('crm', crm, 'endpoint', { actor: 'self-signed' }),
      upstreamYaml('wiki', wiki, 'discovery'),
      upstreamYaml('broken', broken, 'endpoint'),
    ],
    { top: 'auth:\n  mode: dev\n', env: { GW_EXCHANGE_KEY: idp.clientKey } },
  );
  // The corporate AS trusts the tokens the gateway accepts (here: the dev issuer's).
  const dev = await loadOrCreateDevKey(gw.app.config.auth.dev!.keyFile);
  idp.trustSubjectTokens(createLocalJWKSet(dev.publicJwks()), gw.app.config.auth.dev!.issuer);
}, 30_000);

afterAll(async () => {
  await gw?.close();
  await Promise.all([crm?.close(), wiki?.close(), broken?.close(), idp?.close()]);
});

function call(token: string, tool: string): ReturnType<typeof modernToolCall> {
  return modernToolCall(gw.url, token, tool);
}

describe('token exchange to upstreams', () => {
  it('two users calling the same tool arrive upstream as two subjects, and no inbound token reaches an upstream', async () => {
    const alice = await gw.token({ sub: 'alice', scopes: ['tools'] });
    const bob = await gw.token({ sub: 'bob', scopes: ['tools'] });
    const a = await call(alice, 'crm__whoami');
    const b = await call(bob, 'crm__whoami');
    expect(a.text).toContain('alice');
    expect(b.text).toContain('bob');
    const calls = crm.seen.filter((s) => s.method === 'tools/call');
    expect(calls.map((s) => s.subject)).toEqual(['alice', 'bob']);
    // crm asks for the delegation on the record (actor: self-signed): its tokens name the gateway as the actor.
    expect(calls.map((s) => s.actor)).toEqual([EXCHANGE_CLIENT_ID, EXCHANGE_CLIENT_ID]);
    for (const s of calls) expect(decodeJwt(s.authorization!.slice(7)).aud).toBe(crm.url);
    for (const u of [crm, wiki, broken])
      for (const s of u.seen) {
        expect(s.authorization ?? '').not.toContain(alice);
        expect(s.authorization ?? '').not.toContain(bob);
        expect(s.body).not.toContain(alice);
        expect(s.body).not.toContain(bob);
      }
    // The audit record says which credential and whose, never the credential.
    const records = gw.logs
      .map((l) => (l as { audit?: Record<string, unknown> }).audit)
      .filter((r) => r?.type === 'mcp.request' && r.method === 'tools/call' && r.upstream === 'crm');
    expect(records.map((r) => [r!.outbound, r!.upstreamSubject])).toEqual([
      ['exchanged', 'alice'],
      ['exchanged', 'bob'],
    ]);
    const exchanged = calls.map((s) => s.authorization!.slice(7));
    for (const line of gw.logs) {
      const text = JSON.stringify(line);
      for (const t of [alice, bob, ...exchanged]) expect(text).not.toContain(t);
    }
  });

  it('a cached token saves the second exchange (counted at the IdP)', async () => {
    const carol = await gw.token({ sub: 'carol', scopes: ['tools'] });
    const before = idp.exchanges.filter((e) => e.subject === 'carol').length;
    expect((await call(carol, 'crm__whoami')).text).toContain('carol');
    expect((await call(carol, 'crm__whoami')).text).toContain('carol');
    expect(idp.exchanges.filter((e) => e.subject === 'carol').length - before).toBe(1);
  });

  it('ATTACK: a token exchanged for A is refused by B, and the gateway never sends A’s token to B', async () => {
    const dave = await gw.token({ sub: 'dave', scopes: ['tools'] });
    expect((await call(dave, 'crm__whoami')).text).toContain('dave');
    // wiki is reached through discovery of the IdP's metadata; its token is its own.
    expect((await call(dave, 'wiki__whoami')).text).toContain('dave');
    const crmToken = crm.seen.filter((s) => s.subject === 'dave').at(-1)!.authorization!;
    const wikiTokens = wiki.seen.filter((s) => s.method === 'tools/call').map((s) => s.authorization);
    expect(wikiTokens).not.toContain(crmToken);
    for (const t of wikiTokens) expect(decodeJwt(t!.slice(7)).aud).toBe(wiki.url);
    // wiki does not ask for an actor token (actor: none): its tokens name no actor.
    expect(wiki.seen.filter((s) => s.subject === 'dave').map((s) => s.actor)).toEqual([undefined]);
    // Presented to B directly, A's token is refused: wrong audience.
    const refused = await fetch(wiki.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        authorization: crmToken,
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'whoami', arguments: {} } }),
    });
    expect(refused.status).toBe(401);
    expect(wiki.seen.at(-1)?.refused).toBe(true);
  });

  it('an IdP refusal is a clear error naming the upstream, with none of the IdP’s text on the wire', async () => {
    const erin = await gw.token({ sub: 'erin', scopes: ['tools'] });
    const res = await call(erin, 'broken__whoami');
    expect(res.text).toContain('Upstream credential unavailable');
    expect(res.text).toContain('broken');
    expect(res.text).not.toContain('idp-internal');
    expect(res.text).not.toContain('shard');
    expect(broken.seen.filter((s) => s.method === 'tools/call')).toEqual([]);
    const record = gw.logs
      .map((l) => (l as { audit?: Record<string, unknown> }).audit)
      .find((r) => r?.type === 'mcp.request' && r.upstream === 'broken' && r.errorCode !== undefined);
    expect(record?.errorCode).toBe('GW_UPSTREAM_CREDENTIAL_FAILED');
    expect(String(record?.detail)).toContain(IDP_SECRET_TEXT.slice(0, 20));
  });

  it('works on a 2025 session too: each request of the session exchanges (or reuses) its own caller’s token', async () => {
    const frank = await gw.token({ sub: 'frank', scopes: ['tools'] });
    const client = await gw.client({ transport: { requestInit: { headers: { authorization: `Bearer ${frank}` } } } });
    const result = await client.callTool({ name: 'crm__whoami', arguments: {} });
    expect(JSON.stringify(result.content)).toContain('frank');
    const seen = crm.seen.filter((x) => x.subject === 'frank');
    expect(seen).toHaveLength(1);
    expect(seen[0]!.authorization).not.toContain(frank);
  });
});
