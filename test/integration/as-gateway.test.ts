/**
 * `auth.mode: builtin` end to end, the gateway itself: one process serves the MCP endpoint, its protected
 * resource metadata and the built-in authorization server, which federates the login to a real OpenID provider
 * (oidc-provider). The official SDK client starts with nothing but an `OAuthClientProvider`: its first connect
 * gets 401, it discovers (RFC 9728 → RFC 8414), registers (RFC 7591), sends the browser through PKCE, the IdP
 * login and our consent, finishes with the code, and then lists and calls tools of an upstream that never sees
 * the bearer token. A revoked access token is refused at once, although it has not expired.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { buildApp } from '../../src/app.js';
import { parseConfigText } from '../../src/config/load.js';
import { Browser, MemoryOAuthProvider, postForm, privateJwk } from '../helpers/as-harness.js';
import {
  FIXTURE_HTTP,
  initializeBody,
  permissivePolicyDir,
  post,
  startGateway,
  stdioFixtureYaml,
  type TestGateway,
} from '../helpers/gateway.js';
import { startOidcIdp, type TestIdp } from '../helpers/oidc-idp.js';
import { spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';
import { freePort, readRecord } from '../helpers/upstream-tools.js';
import { NullAuditSink } from '../../src/audit/audit-sink.js';

const CLIENT_REDIRECT = 'http://127.0.0.1:47112/callback';

function textOf(result: unknown): string {
  return (result as { content: { type: string; text: string }[] }).content[0]!.text;
}

let origin: string;
let idp: TestIdp;
let fixture: SpawnedServer;
let gw: TestGateway;
let dir: string;
let record: string;

beforeAll(async () => {
  // A fixed port, so `auth.resource` and the issuer (its origin) default to the real URL, and the IdP knows our callback.
  const port = await freePort();
  origin = `http://127.0.0.1:${port}`;
  idp = await startOidcIdp({
    redirectUris: [`${origin}/authorize/callback`],
    users: { alice: { groups: ['engineering'] } },
  });

  dir = mkdtempSync(join(tmpdir(), 'gatehouse-as-gw-'));
  record = join(dir, 'record.jsonl');
  fixture = await spawnServer(FIXTURE_HTTP, { env: { FIXTURE_RECORD_FILE: record } });
  const upstream = JSON.stringify({ name: 'fx', transport: 'http', url: fixture.url, timeoutMs: 20_000 });

  gw = await startGateway([upstream], {
    port,
    env: { GW_SIGNING_KEY: JSON.stringify(await privateJwk('ES256', 'gw-1')), GW_IDP_SECRET: idp.clientSecret },
    top: [
      'auth:',
      '  mode: builtin',
      '  scopesSupported: [mcp:tools, mcp:read, mcp:admin]',
      '  requiredScopes: [mcp:tools]',
      '  builtin:',
      '    signingKeys: [{ fromEnv: GW_SIGNING_KEY }]',
      '    idp:',
      `      issuer: ${idp.issuer}`,
      `      clientId: ${idp.clientId}`,
      '      clientSecret: { fromEnv: GW_IDP_SECRET }',
      '      scopes: [openid, groups]',
      '    scopeMapping:',
      '      - { claim: groups, value: engineering, scopes: [mcp:tools, mcp:read] }',
      '      - { claim: groups, value: admins, scopes: [mcp:admin] }',
    ].join('\n'),
  });
}, 60_000);

afterAll(async () => {
  await gw?.close();
  await fixture?.close();
  await idp?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the gateway as its own authorization server (auth.mode builtin)', () => {
  const provider = new MemoryOAuthProvider(CLIENT_REDIRECT, 'SDK client of the gateway test', 'gw-state-4712');
  let client: Client;

  it('derives issuer and resource from the listener and advertises the issuer', async () => {
    expect(gw.url).toBe(`${origin}/mcp`);
    expect(gw.app.config.auth.resource).toBe(`${origin}/mcp`);
    expect(gw.app.config.auth.builtin!.issuer).toBe(origin);
    expect(gw.app.authorizationServer?.issuer).toBe(origin);

    const prm = (await (await fetch(`${origin}/.well-known/oauth-protected-resource/mcp`)).json()) as Record<
      string,
      unknown
    >;
    expect(prm).toMatchObject({ resource: `${origin}/mcp`, authorization_servers: [origin] });
    const meta = (await (await fetch(`${origin}/.well-known/oauth-authorization-server`)).json()) as Record<
      string,
      unknown
    >;
    expect(meta).toMatchObject({
      issuer: origin,
      authorization_endpoint: `${origin}/authorize`,
      token_endpoint: `${origin}/token`,
      registration_endpoint: `${origin}/register`,
    });
  });

  it('SDK client: 401 → discovery → registration → PKCE → IdP login and consent → finishAuth → tools', async () => {
    const first = new StreamableHTTPClientTransport(new URL(gw.url), { authProvider: provider });
    await expect(new Client({ name: 'gw-as-test', version: '1.0.0' }).connect(first)).rejects.toBeInstanceOf(
      UnauthorizedError,
    );
    expect(provider.info?.client_id).toBeTypeOf('string');
    const authUrl = provider.authorizationUrl!;
    expect(`${authUrl.origin}${authUrl.pathname}`).toBe(`${origin}/authorize`);
    expect(authUrl.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authUrl.searchParams.get('resource')).toBe(`${origin}/mcp`);

    // The browser: our /authorize → IdP login (alice) → IdP consent → our callback → our consent page → the client.
    const browser = new Browser({ login: 'alice', consent: 'approve' });
    const out = await browser.run(authUrl.href, CLIENT_REDIRECT);
    if (out.kind !== 'redirect') throw new Error(`login ended on a page: ${out.status} ${out.html.slice(0, 300)}`);
    expect(out.location.searchParams.get('state')).toBe('gw-state-4712');
    expect(out.location.searchParams.get('iss')).toBe(origin);
    expect(browser.visited.some((v) => v.startsWith(`GET ${idp.issuer}`))).toBe(true);
    expect(browser.visited.some((v) => v.startsWith(`POST ${origin}/consent`))).toBe(true);

    await first.finishAuth(out.location.searchParams.get('code')!);
    const token = provider.saved!.access_token;
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({
      iss: origin,
      aud: `${origin}/mcp`,
      sub: 'alice',
      client_id: provider.info!.client_id,
    });
    expect(String(claims.scope).split(' ')).toContain('mcp:tools');

    client = new Client({ name: 'gw-as-test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(gw.url), { authProvider: provider }));
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('fx__echo');
    expect(textOf(await client.callTool({ name: 'fx__echo', arguments: { text: 'through the built-in AS' } }))).toBe(
      'through the built-in AS',
    );

    // The upstream never sees the client's token: not in the tool's view of its headers, not in any recorded message.
    const seen = JSON.parse(textOf(await client.callTool({ name: 'fx__headers_report', arguments: {} }))) as Record<
      string,
      unknown
    >;
    expect(seen.authorization).toBeUndefined();
    const lines = readRecord(record);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      expect(line.headers?.authorization).toBeUndefined();
      expect(JSON.stringify(line)).not.toContain(token);
    }
  });

  it('a revoked access token is refused at once (401 invalid_token), and the SDK recovers with its refresh token', async () => {
    const revoked = provider.saved!.access_token;
    expect((await post(gw.url, initializeBody(), { authorization: `Bearer ${revoked}` })).status).toBe(200);

    const res = await postForm(`${origin}/revoke`, { token: revoked, client_id: provider.info!.client_id });
    expect(res.status).toBe(200);
    expect(await gw.app.authorizationServer!.isRevoked(decodeJwt(revoked).jti!)).toBe(true);

    const refused = await post(gw.url, initializeBody(), { authorization: `Bearer ${revoked}` });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toContain('error="invalid_token"');
    const failure = gw.logs.filter((l) => (l.audit as { type?: string } | undefined)?.type === 'auth.failure').at(-1);
    expect(failure?.audit).toMatchObject({ reason: 'revoked', status: 401 });
    expect(JSON.stringify(gw.logs)).not.toContain(revoked);

    // The session's next call meets the 401 too; the SDK refreshes (a new access token) and carries on.
    expect(textOf(await client.callTool({ name: 'fx__echo', arguments: { text: 'after revocation' } }))).toBe(
      'after revocation',
    );
    expect(provider.saved!.access_token).not.toBe(revoked);
  });

  it('a browser on the issuer origin may post the consent form; another origin may not', async () => {
    const ok = await fetch(`${origin}/consent`, {
      method: 'POST',
      headers: { origin, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'id=x&csrf=y',
    });
    expect(ok.status).toBe(400); // past the Origin check: our "request expired" page
    expect(ok.headers.get('content-type')).toContain('text/html');
    const evil = await fetch(`${origin}/consent`, {
      method: 'POST',
      headers: { origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
      body: 'id=x&csrf=y',
    });
    expect(evil.status).toBe(403);
  });
});

describe('behind a TLS-terminating proxy (non-loopback host, https resource)', () => {
  it('serves the authorization server under the public issuer and lets its own origin post the consent form', async () => {
    const yaml = [
      'server: { host: 0.0.0.0, port: 0 }',
      'auth:',
      '  mode: builtin',
      '  resource: https://mcp.example.com/mcp',
      '  builtin:',
      '    signingKeys: [{ fromEnv: GW_SIGNING_KEY }]',
      '    idp: { issuer: https://idp.example.com, clientId: gatehouse }',
      `policy: { dir: ${JSON.stringify(permissivePolicyDir(dir))} }`,
      `upstreams:\n  - ${stdioFixtureYaml('fx')}`,
    ].join('\n');
    const config = parseConfigText(yaml, join(tmpdir(), 'gatehouse.yaml'), {
      env: { GW_SIGNING_KEY: JSON.stringify(await privateJwk('ES256')) },
    });
    expect(config.auth.authorizationServers).toEqual(['https://mcp.example.com']);
    const app = buildApp(config, { logger: pino({ level: 'silent' }), audit: new NullAuditSink() });
    try {
      await app.http.ready();
      const meta = await app.http.inject({
        method: 'GET',
        url: '/.well-known/oauth-authorization-server',
        headers: { host: 'mcp.example.com' },
      });
      expect(meta.json()).toMatchObject({
        issuer: 'https://mcp.example.com',
        token_endpoint: 'https://mcp.example.com/token',
      });
      const consent = (origin: string) =>
        app.http.inject({
          method: 'POST',
          url: '/consent',
          headers: { host: 'mcp.example.com', origin, 'content-type': 'application/x-www-form-urlencoded' },
          payload: 'id=x&csrf=y',
        });
      const own = await consent('https://mcp.example.com');
      expect(own.statusCode).toBe(400); // past the Origin check: the "request expired" page
      expect(own.headers['content-type']).toContain('text/html');
      expect((await consent('https://evil.example')).statusCode).toBe(403);
      // The MCP endpoint refuses without a token, pointing at the metadata that names the issuer.
      const mcp = await app.http.inject({
        method: 'POST',
        url: '/mcp',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        payload: initializeBody(),
      });
      expect(mcp.statusCode).toBe(401);
      expect(mcp.headers['www-authenticate']).toContain(
        'resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"',
      );
    } finally {
      await app.close(1000);
    }
  });
});
