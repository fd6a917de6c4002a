/**
 * The gateway as an OAuth resource server in front of a real authorization server: `oidc-provider` (a certified
 * OpenID provider) on 127.0.0.1 issues access tokens through the client_credentials grant with RFC 8707 resource
 * indicators — JWT access tokens (RFC 9068) for one gateway, opaque ones (RFC 7662 introspection) for another.
 * Real SDK clients, a real recording HTTP upstream. MCP authorization §Token Handling, RFC 6750, RFC 9728;
 * threat model #1 (audience, no passthrough).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_HTTP, initializeBody, post, startGateway, type TestGateway } from '../helpers/gateway.js';
import { spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';
import { freePort, readRecord } from '../helpers/upstream-tools.js';

const UPSTREAM_AUDIENCE = 'http://127.0.0.1:9101/mcp';
/** Another resource server of the same provider that gets opaque tokens. */
const OPAQUE_OTHER = 'http://127.0.0.1:9102/mcp';
const AGENT = { id: 'agent', secret: 'agent-secret-5f1c' };
const GATEHOUSE_CLIENT = { id: 'gatehouse', secret: 'gatehouse-introspection-secret-9a7e' };

interface AsMetadata {
  issuer: string;
  token_endpoint: string;
  jwks_uri: string;
  introspection_endpoint: string;
}

let idp: Server;
let as: AsMetadata;
let fixture: SpawnedServer;
let dir: string;
let record: string;
let gwJwt: TestGateway;
let gwIntro: TestGateway;
let resJwt: string;
let resIntro: string;
/** The resource of the gateway started by the flood test (opaque tokens too). */
let resFlood: string;
/** Introspection requests the provider received. */
let introspections = 0;
/** Every token handed to a gateway in this file, to prove none of them reached the upstream. */
const issued: string[] = [];

/** client_credentials with a resource indicator (RFC 8707 §2.2). */
async function token(resource: string, scope: string): Promise<string> {
  const res = await fetch(as.token_endpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${AGENT.id}:${AGENT.secret}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope }),
  });
  const body = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
  if (!res.ok || body.access_token === undefined)
    throw new Error(`token request failed: ${res.status} ${body.error} ${body.error_description}`);
  issued.push(body.access_token);
  return body.access_token;
}

function bearer(t: string): Record<string, string> {
  return { authorization: `Bearer ${t}` };
}

/** `auth:` for a gateway that takes opaque tokens by introspection at the provider (secret in GW_INTROSPECTION_SECRET). */
function introspectionAuth(): string {
  return [
    'auth:',
    '  mode: oauth',
    '  introspection:',
    `    endpoint: ${as.introspection_endpoint}`,
    `    issuer: ${as.issuer}`,
    `    clientId: ${GATEHOUSE_CLIENT.id}`,
    '    clientSecret: { fromEnv: GW_INTROSPECTION_SECRET }',
  ].join('\n');
}

/** The reason the gateway logged for its latest refusal (the wire only ever says invalid_token). */
function lastRefusal(gw: TestGateway): unknown {
  return gw.logs.filter((l) => l.msg === 'authentication refused').at(-1)?.reason;
}

function textOf(result: unknown): string {
  const content = (result as { content?: { type: string; text?: string }[] }).content ?? [];
  return content.map((c) => c.text ?? '').join('');
}

beforeAll(async () => {
  // The authorization server: its issuer needs its port, so listen first and attach the provider after.
  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => void res.writeHead(503).end();
  idp = createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => idp.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(idp.address() as AddressInfo).port}`;

  const [pJwt, pIntro, pFlood] = [await freePort(), await freePort(), await freePort()];
  resJwt = `http://127.0.0.1:${pJwt}/mcp`;
  resIntro = `http://127.0.0.1:${pIntro}/mcp`;
  resFlood = `http://127.0.0.1:${pFlood}/mcp`;
  const formats = new Map<string, 'jwt' | 'opaque'>([
    [resJwt, 'jwt'],
    [resIntro, 'opaque'],
    [resFlood, 'opaque'],
    [UPSTREAM_AUDIENCE, 'jwt'],
    [OPAQUE_OTHER, 'opaque'],
  ]);

  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const signingKey = { ...(await exportJWK(privateKey)), kid: 'idp-key-1', alg: 'RS256', use: 'sig' };
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: AGENT.id,
        client_secret: AGENT.secret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
      },
      {
        client_id: GATEHOUSE_CLIENT.id,
        client_secret: GATEHOUSE_CLIENT.secret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
      },
    ],
    jwks: { keys: [signingKey] },
    ttl: { ClientCredentials: 300 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true, allowedPolicy: () => true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resJwt,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, resourceIndicator: string) => {
          const accessTokenFormat = formats.get(resourceIndicator);
          if (accessTokenFormat === undefined) throw new Provider.errors.InvalidTarget();
          return {
            scope: 'mcp:read mcp:write',
            audience: resourceIndicator,
            accessTokenTTL: 300,
            accessTokenFormat,
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
  });
  const callback = provider.callback() as typeof handler;
  handler = (req, res) => {
    if (req.method === 'POST' && (req.url ?? '').includes('introspection')) introspections++;
    callback(req, res);
  };
  as = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as AsMetadata;

  // The upstream records every message with its request headers.
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-auth-'));
  record = join(dir, 'record.jsonl');
  fixture = await spawnServer(FIXTURE_HTTP, { env: { FIXTURE_RECORD_FILE: record } });
  const upstream = JSON.stringify({ name: 'fx', transport: 'http', url: fixture.url, timeoutMs: 20_000 });

  gwJwt = await startGateway([upstream], {
    port: pJwt,
    top: [
      'auth:',
      '  mode: oauth',
      '  scopesSupported: [mcp:read, mcp:write]',
      '  requiredScopes: [mcp:read]',
      '  requireTokenType: true',
      '  jwt:',
      `    issuer: ${as.issuer}`,
      `    jwksUri: ${as.jwks_uri}`,
    ].join('\n'),
  });
  gwIntro = await startGateway([upstream], {
    port: pIntro,
    env: { GW_INTROSPECTION_SECRET: GATEHOUSE_CLIENT.secret },
    top: introspectionAuth(),
  });
  expect(gwJwt.app.config.auth.resource).toBe(resJwt);
  expect(gwIntro.app.config.auth.resource).toBe(resIntro);
});

afterAll(async () => {
  await gwJwt?.close();
  await gwIntro?.close();
  await fixture?.close();
  idp?.closeAllConnections();
  await new Promise<void>((resolve) => (idp ? idp.close(() => resolve()) : resolve()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('JWT access tokens checked against the provider JWKS', () => {
  let client: Client;

  it('an SDK client with a token for this gateway lists and calls tools', async () => {
    const t = await token(resJwt, 'mcp:read mcp:write');
    expect(t.split('.')).toHaveLength(3);
    client = await gwJwt.client({ transport: { requestInit: { headers: bearer(t) } } });
    const names = (await client.listTools()).tools.map((tool) => tool.name);
    expect(names).toContain('fx__echo');
    expect(textOf(await client.callTool({ name: 'fx__echo', arguments: { text: 'through auth' } }))).toBe(
      'through auth',
    );
    // What the upstream saw: no Authorization header at all.
    const seen = JSON.parse(textOf(await client.callTool({ name: 'fx__headers_report', arguments: {} }))) as Record<
      string,
      unknown
    >;
    expect(seen.authorization).toBeUndefined();
  });

  it('401 without a token: a challenge pointing at the protected resource metadata, with the required scope', async () => {
    const r = await post(gwJwt.url, initializeBody());
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toBe(
      `Bearer resource_metadata="http://127.0.0.1:${new URL(resJwt).port}/.well-known/oauth-protected-resource/mcp", scope="mcp:read"`,
    );
    expect(r.headers.get('cache-control')).toBe('no-store');
  });

  it('401 invalid_token for a forged, garbled or malformed token, with a generic description; 400 for two credentials', async () => {
    const real = await token(resJwt, 'mcp:read');
    const [h, p] = real.split('.');
    for (const t of [`${h}.${p}.${'A'.repeat(342)}`, 'eyJhbGciOiJSUzI1NiJ9.e30.c2ln', 'not-a-jwt-at-all']) {
      const r = await post(gwJwt.url, initializeBody(), bearer(t));
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toMatch(
        /^Bearer error="invalid_token", error_description="The access token is invalid", resource_metadata="[^"]+"$/,
      );
    }
    const twoHeaders = await fetch(gwJwt.url, {
      method: 'POST',
      headers: [
        ['content-type', 'application/json'],
        ['accept', 'application/json, text/event-stream'],
        ['authorization', `Bearer ${real}`],
        ['authorization', 'Bearer other'],
      ],
      body: initializeBody(),
    });
    // Two credentials (fetch joins the headers into one value): RFC 6750 §3.1 invalid_request, 400.
    expect(twoHeaders.status).toBe(400);
    expect(twoHeaders.headers.get('www-authenticate')).toMatch(
      /^Bearer error="invalid_request", error_description="[^"]+", resource_metadata="[^"]+"$/,
    );
  });

  it('401 for a token the same provider issued for another audience (an upstream, or the other gateway)', async () => {
    const cases: [string, string][] = [
      [await token(UPSTREAM_AUDIENCE, 'mcp:read'), 'wrong_audience'],
      [await token(resIntro, 'mcp:read'), 'invalid_token'], // opaque, and this gateway has no introspection
    ];
    for (const [t, reason] of cases) {
      const r = await post(gwJwt.url, initializeBody(), bearer(t));
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toContain('error="invalid_token"');
      expect(lastRefusal(gwJwt)).toBe(reason);
    }
  });

  it('403 insufficient_scope, naming the scope, when the token lacks a required scope', async () => {
    const r = await post(gwJwt.url, initializeBody(), bearer(await token(resJwt, 'mcp:write')));
    expect(r.status).toBe(403);
    expect(r.headers.get('www-authenticate')).toMatch(
      /^Bearer error="insufficient_scope", scope="mcp:read", resource_metadata="[^"]+"/,
    );
  });

  it('refuses a token in the query string even when it is valid', async () => {
    const t = await token(resJwt, 'mcp:read');
    const prm = `http://127.0.0.1:${new URL(resJwt).port}/.well-known/oauth-protected-resource/mcp`;
    const challenge = `Bearer error="invalid_request", error_description="Send the access token once, in one Authorization: Bearer header", resource_metadata="${prm}"`;
    const r = await post(`${gwJwt.url}?access_token=${t}`, initializeBody());
    expect(r.status).toBe(400);
    // RFC 6750 §3.1: the 400 says why, in the challenge a client reads.
    expect(r.headers.get('www-authenticate')).toBe(challenge);
    const both = await post(`${gwJwt.url}?x=1&access_token=${t}`, initializeBody(), bearer(t));
    expect(both.status).toBe(400);
    expect(both.headers.get('www-authenticate')).toBe(challenge);
    expect(both.text).not.toContain(t);
  });

  it('serves RFC 9728 protected resource metadata at the path-suffixed and root locations', async () => {
    const origin = new URL(resJwt).origin;
    for (const path of ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource']) {
      const res = await fetch(`${origin}${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('max-age=300');
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await res.json()).toEqual({
        resource: resJwt,
        authorization_servers: [as.issuer],
        scopes_supported: ['mcp:read', 'mcp:write'],
        bearer_methods_supported: ['header'],
        resource_name: 'Gatehouse',
      });
    }
    const intro = (await (
      await fetch(`${new URL(resIntro).origin}/.well-known/oauth-protected-resource/mcp`)
    ).json()) as Record<string, unknown>;
    expect(intro).toMatchObject({ resource: resIntro, authorization_servers: [as.issuer] });
    expect((await fetch(`${origin}/.well-known/oauth-protected-resource/other`)).status).toBe(404);
  });
});

describe('opaque access tokens through RFC 7662 introspection', () => {
  it('an SDK client with an opaque token lists and calls tools', async () => {
    const t = await token(resIntro, 'mcp:read');
    expect(t.split('.')).toHaveLength(1);
    const client = await gwIntro.client({ transport: { requestInit: { headers: bearer(t) } } });
    expect((await client.listTools()).tools.map((tool) => tool.name)).toContain('fx__echo');
    expect(textOf(await client.callTool({ name: 'fx__echo', arguments: { text: 'introspected' } }))).toBe(
      'introspected',
    );
  });

  it('401 for an unknown token, a token for another audience, and a JWT it cannot introspect', async () => {
    const cases: [string, string][] = [
      ['unknown-opaque-token-value-1234567890', 'inactive'],
      [await token(resJwt, 'mcp:read'), 'invalid_token'], // oidc-provider will not introspect JWTs
      [await token(UPSTREAM_AUDIENCE, 'mcp:read'), 'invalid_token'],
    ];
    const opaqueForUpstream = await fetch(as.token_endpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${AGENT.id}:${AGENT.secret}`).toString('base64')}`,
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: OPAQUE_OTHER, scope: 'mcp:read' }),
    });
    const other = ((await opaqueForUpstream.json()) as { access_token: string }).access_token;
    issued.push(other);
    cases.push([other, 'wrong_audience']);
    for (const [t, reason] of cases) {
      const r = await post(gwIntro.url, initializeBody(), bearer(t));
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toContain('error="invalid_token"');
      expect(lastRefusal(gwIntro)).toBe(reason);
    }
  });
});

/** A POST of `initialize` from the local address `from`, on its own connection: the status and Retry-After. */
function initializeFrom(
  url: string,
  from: string,
  authorization: string,
): Promise<{ status: number; retryAfter: string | undefined }> {
  return new Promise((resolve, reject) => {
    const body = initializeBody();
    const req = httpRequest(
      url,
      {
        method: 'POST',
        localAddress: from,
        agent: false,
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('a flood of made-up tokens (server.httpRateLimit.authFailures)', () => {
  it('stops costing introspection requests once an address is over its budget; other addresses are unaffected', async () => {
    const gw = await startGateway(
      [JSON.stringify({ name: 'fx', transport: 'http', url: fixture.url, timeoutMs: 20_000 })],
      {
        port: Number(new URL(resFlood).port),
        env: { GW_INTROSPECTION_SECRET: GATEHOUSE_CLIENT.secret },
        server: { httpRateLimit: { authFailures: { windowSeconds: 60, perIp: 5 } } },
        top: introspectionAuth(),
      },
    );
    try {
      const before = introspections;
      const statuses: number[] = [];
      let last: { status: number; retryAfter: string | undefined } | undefined;
      for (let i = 0; i < 30; i++) {
        // Every token new: the refusal cache cannot help, each one would be an introspection.
        last = await initializeFrom(gw.url, '127.0.0.5', `Bearer made-up-${i}-${Math.random().toString(36).slice(2)}`);
        statuses.push(last.status);
      }
      // Five failures fit the budget; the sixth is answered (401) and exceeds it; from then on 429 before any check.
      expect(statuses.slice(0, 6)).toEqual([401, 401, 401, 401, 401, 401]);
      expect(new Set(statuses.slice(6))).toEqual(new Set([429]));
      expect(Number(last!.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(Number(last!.retryAfter)).toBeLessThanOrEqual(60);
      expect(introspections - before).toBe(6);
      // Refused before authentication: even a good token from that address waits out the window…
      const good = await token(resFlood, 'mcp:read');
      expect((await initializeFrom(gw.url, '127.0.0.5', `Bearer ${good}`)).status).toBe(429);
      // …while another address is served, and its token is introspected as usual.
      expect((await initializeFrom(gw.url, '127.0.0.6', `Bearer ${good}`)).status).toBe(200);
      // Recorded, coalesced per address: one audit record, not one per refused request.
      const rejected = gw.logs.filter(
        (l) => (l.audit as { type?: string; rule?: string } | undefined)?.rule === 'authFailures.perIp',
      );
      expect(rejected.length).toBeGreaterThanOrEqual(1);
      expect(rejected.length).toBeLessThan(5);
    } finally {
      await gw.close();
    }
  });
});

describe('503 when the key source is down', () => {
  it('answers 503 with Retry-After and no challenge', async () => {
    const gw = await startGateway(
      [JSON.stringify({ name: 'fx', transport: 'http', url: fixture.url, timeoutMs: 20_000 })],
      {
        top: [
          'auth:',
          '  mode: oauth',
          `  resource: ${resJwt}`,
          '  jwt:',
          `    issuer: ${as.issuer}`,
          `    jwksUri: http://127.0.0.1:${await freePort()}/jwks`,
        ].join('\n'),
      },
    );
    try {
      const r = await post(gw.url, initializeBody(), bearer(await token(resJwt, 'mcp:read')));
      expect(r.status).toBe(503);
      expect(r.headers.get('retry-after')).toBe('5');
      expect(r.headers.get('www-authenticate')).toBeNull();
    } finally {
      await gw.close();
    }
  });
});

describe('no token passthrough (threat model #1)', () => {
  it('no token string and no Authorization header ever reach the upstream, or the gateway logs', async () => {
    const raw = readFileSync(record, 'utf8');
    const lines = readRecord(record);
    expect(lines.length).toBeGreaterThan(5);
    expect(issued.length).toBeGreaterThan(5);
    for (const line of lines) {
      const headers = Object.keys(line.headers ?? {}).map((h) => h.toLowerCase());
      expect(headers).not.toContain('authorization');
    }
    for (const t of issued) {
      expect(raw).not.toContain(t);
      // The signature part alone is enough to identify a token.
      expect(raw).not.toContain(t.split('.').at(-1)!);
      expect(JSON.stringify(gwJwt.logs)).not.toContain(t);
      expect(JSON.stringify(gwIntro.logs)).not.toContain(t);
    }
  });
});
