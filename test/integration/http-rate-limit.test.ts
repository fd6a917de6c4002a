/**
 * `server.httpRateLimit` over real sockets: the built-in authorization server's registration and token endpoints
 * per client address and per `client_id`, and MCP session creation per address and per authenticated caller.
 * Requests leave from different loopback addresses (127.0.0.x), so "another client" really is another peer; a
 * spoofed `X-Forwarded-For` from an untrusted peer counts against that peer, and is honoured only from a
 * configured trusted proxy.
 */
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { privateJwk } from '../helpers/as-harness.js';
import { initializeBody, startGateway, stdioFixtureYaml, type LogLine, type TestGateway } from '../helpers/gateway.js';
import { startOidcIdp, type TestIdp } from '../helpers/oidc-idp.js';
import { freePort, waitFor } from '../helpers/upstream-tools.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  json: unknown;
}

/** One request from `from` (a local address) with its own connection. */
function send(
  url: string,
  opts: { from?: string; method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: opts.method ?? 'GET', headers: opts.headers, localAddress: opts.from ?? '127.0.0.1', agent: false },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, json });
        });
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

const REGISTRATION = JSON.stringify({ redirect_uris: ['http://127.0.0.1:47333/cb'], client_name: 'rate limit test' });
const JSON_HEADERS = { 'content-type': 'application/json' };
const FORM_HEADERS = { 'content-type': 'application/x-www-form-urlencoded' };

function rejections(gw: TestGateway): Record<string, unknown>[] {
  return gw.logs
    .map((l: LogLine) => l.audit as Record<string, unknown> | undefined)
    .filter((a): a is Record<string, unknown> => a?.type === 'http.rejected');
}

function expectRetryAfter(a: Answer, max: number): void {
  const value = Number(a.headers['retry-after']);
  expect(Number.isInteger(value)).toBe(true);
  expect(value).toBeGreaterThanOrEqual(1);
  expect(value).toBeLessThanOrEqual(max);
}

async function builtinGateway(
  idp: TestIdp,
  server: Record<string, unknown>,
): Promise<{ gw: TestGateway; origin: string }> {
  const port = await freePort();
  const gw = await startGateway([stdioFixtureYaml('fx')], {
    port,
    server,
    env: { GW_SIGNING_KEY: JSON.stringify(await privateJwk('ES256', 'gw-1')), GW_IDP_SECRET: idp.clientSecret },
    top: [
      'auth:',
      '  mode: builtin',
      '  scopesSupported: [mcp:tools]',
      '  builtin:',
      '    signingKeys: [{ fromEnv: GW_SIGNING_KEY }]',
      '    idp:',
      `      issuer: ${idp.issuer}`,
      `      clientId: ${idp.clientId}`,
      '      clientSecret: { fromEnv: GW_IDP_SECRET }',
      '      scopes: [openid]',
    ].join('\n'),
  });
  return { gw, origin: `http://127.0.0.1:${port}` };
}

describe('the built-in authorization server, per client address and per client', () => {
  let idp: TestIdp;
  let direct: { gw: TestGateway; origin: string };
  let proxied: { gw: TestGateway; origin: string };

  beforeAll(async () => {
    idp = await startOidcIdp({ redirectUris: [], users: { alice: { groups: [] } } });
    const httpRateLimit = {
      oauth: { windowSeconds: 60, perIp: 5, perClient: 8 },
      registration: { windowSeconds: 600, perIp: 2 },
    };
    direct = await builtinGateway(idp, { httpRateLimit });
    // Behind a proxy at 127.0.0.1: X-Forwarded-For from it names the client.
    proxied = await builtinGateway(idp, { httpRateLimit, trustedProxies: ['127.0.0.1'] });
  }, 60_000);
  afterAll(async () => {
    await direct?.gw.close();
    await proxied?.gw.close();
    await idp?.close();
  });

  it('refuses the third registration from one address with 429, Retry-After and a JSON body; another address is unaffected', async () => {
    const url = `${direct.origin}/register`;
    for (let i = 0; i < 2; i++)
      expect((await send(url, { method: 'POST', headers: JSON_HEADERS, body: REGISTRATION })).status).toBe(201);
    const refused = await send(url, { method: 'POST', headers: JSON_HEADERS, body: REGISTRATION });
    expect(refused.status).toBe(429);
    expectRetryAfter(refused, 600);
    expect(refused.headers['content-type']).toMatch(/^application\/json/);
    expect(refused.json).toEqual({ error: 'temporarily_unavailable', error_description: 'Too many requests' });
    expect(rejections(direct.gw)).toContainEqual({
      type: 'http.rejected',
      reason: 'rate_limited',
      status: 429,
      rule: 'registration.perIp',
      remoteAddress: '127.0.0.1',
    });

    expect(
      (await send(url, { from: '127.0.0.2', method: 'POST', headers: JSON_HEADERS, body: REGISTRATION })).status,
    ).toBe(201);
  });

  it('does not let an untrusted peer buy a new budget with X-Forwarded-For', async () => {
    const url = `${direct.origin}/register`;
    for (const spoofed of ['203.0.113.7', '198.51.100.1, 203.0.113.8', '::1']) {
      const a = await send(url, {
        method: 'POST',
        headers: { ...JSON_HEADERS, 'x-forwarded-for': spoofed },
        body: REGISTRATION,
      });
      expect(a.status, spoofed).toBe(429);
    }
    // The audit names the real peer, not the claimed one.
    expect(
      rejections(direct.gw)
        .filter((r) => r.rule === 'registration.perIp')
        .every((r) => r.remoteAddress === '127.0.0.1'),
    ).toBe(true);
  });

  it('honours X-Forwarded-For from a trusted proxy: each forwarded client has its own budget', async () => {
    const url = `${proxied.origin}/register`;
    const from = (client: string) =>
      send(url, { method: 'POST', headers: { ...JSON_HEADERS, 'x-forwarded-for': client }, body: REGISTRATION });
    expect((await from('198.51.100.1')).status).toBe(201);
    expect((await from('198.51.100.1')).status).toBe(201);
    expect((await from('198.51.100.1')).status).toBe(429);
    // Only the hop the proxy appended counts: a forged entry to its left does not make a new client.
    expect((await from('10.9.9.9, 198.51.100.1')).status).toBe(429);
    expect((await from('198.51.100.2')).status).toBe(201);
    expect(rejections(proxied.gw)).toContainEqual(
      expect.objectContaining({ rule: 'registration.perIp', remoteAddress: '198.51.100.1' }),
    );
  });

  it('limits the token endpoint per address, and per client_id across addresses', async () => {
    const url = `${direct.origin}/token`;
    const token = (from: string, clientId: string) =>
      send(url, {
        from,
        method: 'POST',
        headers: FORM_HEADERS,
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId }).toString(),
      });
    // Five per address: answered by the endpoint itself (an unknown client), then 429.
    for (let i = 0; i < 5; i++) expect((await token('127.0.0.3', `c-${i}`)).status).not.toBe(429);
    const perIp = await token('127.0.0.3', 'c-9');
    expect(perIp.status).toBe(429);
    expectRetryAfter(perIp, 60);
    expect((await token('127.0.0.4', 'c-9')).status).not.toBe(429);

    // Eight per client_id, from any address: the ninth naming "shared" is refused although its address is fresh.
    const addresses = [
      '127.0.0.5',
      '127.0.0.5',
      '127.0.0.5',
      '127.0.0.5',
      '127.0.0.6',
      '127.0.0.6',
      '127.0.0.6',
      '127.0.0.6',
    ];
    for (const from of addresses) expect((await token(from, 'shared')).status).not.toBe(429);
    const perClient = await token('127.0.0.7', 'shared');
    expect(perClient.status).toBe(429);
    expect(perClient.json).toMatchObject({ error: 'temporarily_unavailable' });
    expect(rejections(direct.gw)).toContainEqual({
      type: 'http.rejected',
      reason: 'rate_limited',
      status: 429,
      rule: 'oauth.perClient',
      remoteAddress: '127.0.0.7',
      clientId: 'shared',
    });
    expect((await token('127.0.0.7', 'another')).status).not.toBe(429);
  });

  it('leaves the metadata and keys unlimited (cheap, cacheable, fetched by every client)', async () => {
    for (let i = 0; i < 8; i++)
      expect(
        (await send(`${direct.origin}/.well-known/oauth-authorization-server`, { from: '127.0.0.3' })).status,
      ).toBe(200);
  });
});

describe('MCP session creation', () => {
  let gw: TestGateway;
  const accept = { ...JSON_HEADERS, accept: 'application/json, text/event-stream' };
  afterAll(async () => gw?.close());

  it('limits new sessions per address (429 + Retry-After, JSON-RPC body) while requests in a session go on', async () => {
    gw = await startGateway([stdioFixtureYaml('fx')], {
      server: { httpRateLimit: { sessions: { windowSeconds: 60, perIp: 3, perClient: 100 } } },
    });
    const client = await gw.client(); // one session from 127.0.0.1
    for (let i = 0; i < 2; i++)
      expect((await send(gw.url, { method: 'POST', headers: accept, body: initializeBody() })).status).toBe(200);
    const refused = await send(gw.url, { method: 'POST', headers: accept, body: initializeBody() });
    expect(refused.status).toBe(429);
    expectRetryAfter(refused, 60);
    expect(refused.json).toEqual({ jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Too many requests' } });
    expect(rejections(gw)).toContainEqual({
      type: 'http.rejected',
      reason: 'rate_limited',
      status: 429,
      rule: 'sessions.perIp',
      remoteAddress: '127.0.0.1',
    });

    // Not a session creation: the client's calls are not counted and still work.
    const result = await client.callTool({ name: 'fx__echo', arguments: { text: 'still here' } });
    expect((result.content as { text: string }[])[0]!.text).toBe('still here');
    expect(
      (await send(gw.url, { from: '127.0.0.2', method: 'POST', headers: accept, body: initializeBody() })).status,
    ).toBe(200);
  });
});

describe('an IPv6 client behind a trusted proxy', () => {
  let gw: TestGateway;
  const accept = { ...JSON_HEADERS, accept: 'application/json, text/event-stream' };
  afterAll(async () => gw?.close());

  it('counts one /64 as one client, and records its refusals coalesced per /64 (not one record per address)', async () => {
    gw = await startGateway([stdioFixtureYaml('fx')], {
      server: {
        trustedProxies: ['127.0.0.1'],
        httpRateLimit: { sessions: { windowSeconds: 60, perIp: 2, perClient: 100 } },
      },
    });
    const open = (xff: string) =>
      send(gw.url, { method: 'POST', headers: { ...accept, 'x-forwarded-for': xff }, body: initializeBody() });
    expect((await open('2001:db8:1:2::1')).status).toBe(200);
    expect((await open('2001:db8:1:2::2')).status).toBe(200);
    // Every further address of that /64 is the same client, refused; each refusal is not an audit record of its own.
    const refused = await Promise.all(
      Array.from({ length: 20 }, (_, i) => open(`2001:db8:1:2:${(i + 1).toString(16)}::7`)),
    );
    expect(refused.every((r) => r.status === 429)).toBe(true);
    const recorded = () => rejections(gw).filter((r) => r.rule === 'sessions.perIp');
    expect(recorded().length).toBeLessThanOrEqual(2);
    // …and none is lost: the summary at the window's end carries the count.
    await waitFor(
      'coalesced summary',
      () => recorded().reduce((n, r) => n + (typeof r.count === 'number' ? r.count : 1), 0) === 20,
    );
    expect((await open('2001:db8:1:3::1')).status).toBe(200);
  });
});

describe('MCP session creation per authenticated caller', () => {
  let gw: TestGateway;
  afterAll(async () => gw?.close());

  it('counts new sessions per caller, whatever address they come from', async () => {
    gw = await startGateway([stdioFixtureYaml('fx')], {
      top: 'auth:\n  mode: dev\n',
      server: { httpRateLimit: { sessions: { windowSeconds: 60, perIp: 100, perClient: 2 } } },
    });
    const alice = await gw.token({ sub: 'alice', scopes: [] });
    const bob = await gw.token({ sub: 'bob', scopes: [] });
    const open = (token: string, from: string) =>
      send(gw.url, {
        from,
        method: 'POST',
        headers: { ...JSON_HEADERS, accept: 'application/json, text/event-stream', authorization: `Bearer ${token}` },
        body: initializeBody(),
      });
    expect((await open(alice, '127.0.0.1')).status).toBe(200);
    expect((await open(alice, '127.0.0.2')).status).toBe(200);
    const refused = await open(alice, '127.0.0.3');
    expect(refused.status).toBe(429);
    expectRetryAfter(refused, 60);
    expect(rejections(gw)).toContainEqual(
      expect.objectContaining({
        reason: 'rate_limited',
        status: 429,
        rule: 'sessions.perClient',
        remoteAddress: '127.0.0.3',
      }),
    );
    expect((await open(bob, '127.0.0.3')).status).toBe(200);
    // A refused token never reaches the limit: authentication comes first.
    expect((await open('not-a-token', '127.0.0.4')).status).toBe(401);
  });
});
