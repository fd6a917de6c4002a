/**
 * Per-user OAuth to an upstream that runs its own authorization server (docs/authentication.md "Per-user OAuth to
 * upstreams"; threat model #2), end to end with real parts: a second oidc-provider as the upstream's AS, an MCP
 * server that accepts only that AS's tokens for its own resource, the official SDK client through the gateway, and a
 * scripted browser (cookie jar, manual redirects, oidc-provider's login and consent forms).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { Browser } from '../helpers/as-harness.js';
import { cli, finished } from '../helpers/cli.js';
import { post, startGateway, type TestGateway } from '../helpers/gateway.js';
import { describeRedis, probeRedis, REDIS_URL, redisClient } from '../helpers/redis.js';
import { freePort, startOAuthUpstream, type OAuthUpstream } from '../helpers/upstream-oauth.js';

let upstream: OAuthUpstream;
let gw: TestGateway;
let callbackBase: string;

beforeAll(async () => {
  upstream = await startOAuthUpstream();
  const port = await freePort();
  callbackBase = `http://127.0.0.1:${port}/oauth/upstream/callback`;
  gw = await startGateway(
    [
      JSON.stringify({
        name: 'crm',
        transport: 'http',
        url: upstream.url,
        protocol: 'legacy',
        credentials: { oauth: {} },
      }),
    ],
    { top: 'auth:\n  mode: dev\n', port },
  );
}, 30_000);

afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

async function clientFor(
  sub: string,
  capabilities: Record<string, unknown> = { elicitation: { url: {} } },
): Promise<Client> {
  const token = await gw.token({ sub, scopes: [] });
  return gw.client({ capabilities, transport: { requestInit: { headers: { authorization: `Bearer ${token}` } } } });
}

/** The consent URL of a first call (URL-mode elicitation error, -32042). */
async function consentUrl(client: Client): Promise<string> {
  const err = await client.callTool({ name: 'crm__whoami', arguments: {} }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(McpError);
  const e = err as McpError;
  expect(e.code).toBe(-32042);
  const elicitations = (e.data as { elicitations: { mode: string; url: string; elicitationId: string }[] })
    .elicitations;
  expect(elicitations[0]!.mode).toBe('url');
  expect(elicitations[0]!.elicitationId).toMatch(/^[0-9a-f-]{36}$/);
  return elicitations[0]!.url;
}

/** A browser opens the consent URL, logs in and consents at the upstream's AS; returns the callback URL, unfetched. */
async function consentIn(browser: Browser, url: string): Promise<URL> {
  const outcome = await browser.run(url, callbackBase);
  if (outcome.kind !== 'redirect') throw new Error(`browser stopped at ${outcome.url}: ${outcome.status}`);
  return outcome.location;
}

function audits(): Record<string, unknown>[] {
  return gw.logs.flatMap((l) => (l.audit !== undefined ? [l.audit as Record<string, unknown>] : []));
}

function text(result: unknown): string {
  return (result as { content: { text: string }[] }).content[0]!.text;
}

describe('per-user OAuth to an upstream with its own authorization server', () => {
  it('asks for consent, then calls as that user; two users are two subjects upstream', async () => {
    const alice = await clientFor('alice');
    const url = await consentUrl(alice);
    expect(url.startsWith(`http://127.0.0.1:${new URL(callbackBase).port}/oauth/upstream/crm/start?ticket=`)).toBe(
      true,
    );
    const browser = new Browser({ login: 'alice-at-crm' });
    const callback = await consentIn(browser, url);
    const page = await browser.request(callback.href, 'GET');
    expect(page.status).toBe(200);
    expect(text(await alice.callTool({ name: 'crm__whoami', arguments: {} }))).toBe('alice-at-crm');

    const bob = await clientFor('bob');
    const bobBrowser = new Browser({ login: 'bob-at-crm' });
    await bobBrowser.request((await consentIn(bobBrowser, await consentUrl(bob))).href, 'GET');
    expect(text(await bob.callTool({ name: 'crm__whoami', arguments: {} }))).toBe('bob-at-crm');
    expect(text(await alice.callTool({ name: 'crm__whoami', arguments: {} }))).toBe('alice-at-crm');
    expect(upstream.subjects.slice(-3)).toEqual(['alice-at-crm', 'bob-at-crm', 'alice-at-crm']);
    // The audit trail says which credential kind each call carried and the upstream-side subject.
    const calls = audits().filter((a) => a.type === 'mcp.request' && a.tool === 'crm__whoami' && a.outcome === 'ok');
    expect(calls.at(-1)).toMatchObject({ upstreamSubject: 'alice-at-crm' });
  }, 30_000);

  it('refuses a replayed callback, a swapped state and a callback without the start cookie', async () => {
    const carol = await clientFor('carol');
    // Carol's browser opens the consent URL: the gateway sets the flow's cookie and redirects to the upstream's AS.
    const start = await fetch(await consentUrl(carol), { redirect: 'manual' });
    expect(start.status).toBe(302);
    const setCookie = start.headers.getSetCookie()[0]!;
    expect(setCookie).toMatch(/; HttpOnly; SameSite=Lax/);
    const cookie = setCookie.split(';')[0]!;
    const carolBrowser = new Browser({ login: 'carol-at-crm' });
    const callback = await consentIn(carolBrowser, start.headers.get('location')!);
    const get = (u: string, c?: string): Promise<Response> =>
      fetch(u, { redirect: 'manual', ...(c !== undefined ? { headers: { cookie: c } } : {}) });

    // Without the start's cookie (another browser, an attacker's forwarded link): refused, nothing is exchanged.
    expect((await get(callback.href)).status).toBe(400);
    // With a cookie of that name but another browser's value: refused.
    expect((await get(callback.href, `${cookie.split('=')[0]}=forged-value`)).status).toBe(400);

    // State swap: mallory's state (her own flow) with carol's cookie and code, and carol's state with mallory's code.
    const mallory = await clientFor('mallory');
    const malloryBrowser = new Browser({ login: 'mallory-at-crm' });
    const malloryCallback = await consentIn(malloryBrowser, await consentUrl(mallory));
    const swapped = new URL(callback);
    swapped.searchParams.set('state', malloryCallback.searchParams.get('state')!);
    expect((await get(swapped.href, cookie)).status).toBe(400);
    const swapped2 = new URL(malloryCallback);
    swapped2.searchParams.set('state', callback.searchParams.get('state')!);
    // (mallory's code was issued against her PKCE challenge: the AS refuses it with carol's verifier)
    expect((await get(swapped2.href, cookie)).status).toBe(400);
    // A state is spent by any callback that got past the cookie check: carol's genuine one is refused now too.
    expect((await get(callback.href, cookie)).status).toBe(400);

    // Carol starts again, in her browser: her own callback works once; replayed, even with her cookie: refused.
    const again = await consentIn(carolBrowser, await consentUrl(carol));
    expect((await carolBrowser.request(again.href, 'GET')).status).toBe(200);
    expect((await carolBrowser.request(again.href, 'GET')).status).toBe(400);
    expect(text(await carol.callTool({ name: 'crm__whoami', arguments: {} }))).toBe('carol-at-crm');

    // Mallory never completed her flow: she has no grant, and carol's is not hers to use (keyed by principal).
    await consentUrl(mallory);
    expect(upstream.subjects).not.toContain('mallory-at-crm');
    const refusals = audits().filter((a) => a.type === 'upstream.grant' && a.reason === 'consent_refused');
    expect(refusals.map((r) => r.detail)).toEqual(
      expect.arrayContaining(['no_browser_cookie', 'wrong_browser', 'state_used', 'token_endpoint: 400 invalid_grant']),
    );
  }, 30_000);

  it('a consent URL is single use and bound to its upstream', async () => {
    const dave = await clientFor('dave');
    const url = await consentUrl(dave);
    const b = new Browser({ login: 'dave-at-crm' });
    await consentIn(b, url);
    expect((await b.request(url, 'GET')).status).toBe(400);
    const other = url.replace('/crm/start', '/nope/start');
    expect((await b.request(other, 'GET')).status).toBe(400);
  }, 30_000);

  it('a client without URL elicitation gets the consent URL in the error data', async () => {
    const erin = await clientFor('erin', {});
    const err = (await erin.callTool({ name: 'crm__whoami', arguments: {} }).catch((e: unknown) => e)) as McpError;
    expect(err).toBeInstanceOf(McpError);
    expect(err.code).toBe(-32603);
    expect(String((err.data as { url: string }).url)).toContain('/oauth/upstream/crm/start?ticket=');
  });

  it('a user revokes their own grant; the next call asks for consent again', async () => {
    const frank = await clientFor('frank');
    const b = new Browser({ login: 'frank-at-crm' });
    await b.request((await consentIn(b, await consentUrl(frank))).href, 'GET');
    expect(text(await frank.callTool({ name: 'crm__whoami', arguments: {} }))).toBe('frank-at-crm');
    const token = await gw.token({ sub: 'frank', scopes: [] });
    const base = new URL(callbackBase).origin;
    expect((await fetch(`${base}/oauth/upstream/crm/grant`, { method: 'DELETE' })).status).toBe(401);
    const res = await fetch(`${base}/oauth/upstream/crm/grant`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ upstream: 'crm', revoked: true });
    await consentUrl(frank);
  }, 30_000);
});

describe('per-user OAuth for a 2026-07-28 client', () => {
  it('asks for consent with an input-required URL elicitation; the retry after consent calls as the user', async () => {
    const token = await gw.token({ sub: 'ivy', scopes: [] });
    const send = (id: number, extra: Record<string, unknown> = {}): Promise<{ json: unknown }> =>
      post(
        gw.url,
        JSON.stringify({
          jsonrpc: '2.0',
          id,
          method: 'tools/call',
          params: {
            name: 'crm__whoami',
            arguments: {},
            ...extra,
            _meta: {
              'io.modelcontextprotocol/protocolVersion': '2026-07-28',
              'io.modelcontextprotocol/clientCapabilities': { elicitation: { url: {} } },
            },
          },
        }),
        {
          authorization: `Bearer ${token}`,
          'mcp-protocol-version': '2026-07-28',
          'mcp-method': 'tools/call',
          'mcp-name': 'crm__whoami',
        },
      );
    const first = (await send(1)).json as {
      result: {
        resultType: string;
        inputRequests: Record<string, { method: string; params: { mode: string; url: string } }>;
        requestState: string;
      };
    };
    expect(first.result.resultType).toBe('input_required');
    const [[key, question]] = Object.entries(first.result.inputRequests) as [
      [string, { method: string; params: { mode: string; url: string } }],
    ];
    expect(question).toMatchObject({ method: 'elicitation/create', params: { mode: 'url' } });
    const b = new Browser({ login: 'ivy-at-crm' });
    await b.request((await consentIn(b, question.params.url)).href, 'GET');
    const done = (
      await send(2, { inputResponses: { [key]: { action: 'accept' } }, requestState: first.result.requestState })
    ).json as { result: { resultType: string; content: { text: string }[] } };
    expect(done.result.resultType).toBe('complete');
    expect(done.result.content[0]!.text).toBe('ivy-at-crm');
    expect(upstream.subjects.at(-1)).toBe('ivy-at-crm');
  }, 30_000);
});

describe('per-user OAuth: refresh', () => {
  it('an expiring access token is refreshed with the stored refresh token, for the same user', async () => {
    await using up = await startOAuthUpstream({ accessTokenTtl: 10 });
    const port = await freePort();
    const base = `http://127.0.0.1:${port}/oauth/upstream/callback`;
    await using g = await startGateway(
      [JSON.stringify({ name: 'crm', transport: 'http', url: up.url, protocol: 'legacy', credentials: { oauth: {} } })],
      { top: 'auth:\n  mode: dev\n', port },
    );
    const token = await g.token({ sub: 'gina', scopes: [] });
    const c = await g.client({
      capabilities: { elicitation: { url: {} } },
      transport: { requestInit: { headers: { authorization: `Bearer ${token}` } } },
    });
    const err = (await c.callTool({ name: 'crm__whoami', arguments: {} }).catch((e: unknown) => e)) as McpError;
    const url = (err.data as { elicitations: { url: string }[] }).elicitations[0]!.url;
    const b = new Browser({ login: 'gina-at-crm' });
    const outcome = await b.run(url, base);
    if (outcome.kind !== 'redirect') throw new Error('no callback');
    expect((await b.request(outcome.location.href, 'GET')).status).toBe(200);
    // A 10 s token is inside the 30 s expiry margin: each call refreshes first.
    expect(text(await c.callTool({ name: 'crm__whoami', arguments: {} }))).toBe('gina-at-crm');
    expect(text(await c.callTool({ name: 'crm__whoami', arguments: {} }))).toBe('gina-at-crm');
    const records = g.logs.flatMap((l) => (l.audit !== undefined ? [l.audit as Record<string, unknown>] : []));
    expect(records.filter((a) => a.type === 'upstream.grant' && a.reason === 'grant.refreshed').length).toBe(2);
  }, 30_000);
});

const redisAvailable = await probeRedis();

describeRedis(redisAvailable)('per-user OAuth: an operator revokes a user’s grants (Redis grant store)', () => {
  it('gatehouse grants revoke ends the grants of that subject at that upstream; the running gateway asks again', async () => {
    await using up = await startOAuthUpstream();
    const port = await freePort();
    const base = `http://127.0.0.1:${port}/oauth/upstream/callback`;
    const prefix = `gh-test-grants-${randomUUID()}:`;
    const env = { ...process.env, GH_GRANT_KEY: randomBytes(32).toString('base64url') };
    await using g = await startGateway(
      [JSON.stringify({ name: 'crm', transport: 'http', url: up.url, protocol: 'legacy', credentials: { oauth: {} } })],
      {
        top: [
          'auth:\n  mode: dev',
          `redis:\n  url: ${REDIS_URL}\n  keyPrefix: "${prefix}"`,
          'outbound:\n  oauth:\n    store: redis\n    keys: [{ fromEnv: GH_GRANT_KEY }]',
          '',
        ].join('\n'),
        port,
        env,
      },
    );
    const token = await g.token({ sub: 'hank', scopes: [] });
    const c = await g.client({
      capabilities: { elicitation: { url: {} } },
      transport: { requestInit: { headers: { authorization: `Bearer ${token}` } } },
    });
    const ask = (): Promise<unknown> => c.callTool({ name: 'crm__whoami', arguments: {} }).catch((e: unknown) => e);
    const err = (await ask()) as McpError;
    const url = (err.data as { elicitations: { url: string }[] }).elicitations[0]!.url;
    const b = new Browser({ login: 'hank-at-crm' });
    const outcome = await b.run(url, base);
    if (outcome.kind !== 'redirect') throw new Error('no callback');
    expect((await b.request(outcome.location.href, 'GET')).status).toBe(200);
    expect(text(await c.callTool({ name: 'crm__whoami', arguments: {} }))).toBe('hank-at-crm');

    const config = join(g.dir, 'gatehouse.yaml');
    const run = await finished(
      cli(['grants', 'revoke', '--config', config, '--upstream', 'crm', '--sub', 'hank'], { env }),
    );
    expect(run.stderr).toBe('');
    expect(run.stdout.trim()).toBe('revoked 1 grant of hank at crm');
    expect(run.code).toBe(0);
    // The running gateway finds no grant any more: consent again.
    expect(((await ask()) as McpError).code).toBe(-32042);
    // Nothing left under the prefix of this subject's grants; a second run revokes nothing.
    const again = await finished(
      cli(['grants', 'revoke', '--config', config, '--upstream', 'crm', '--sub', 'hank'], { env }),
    );
    expect(again.stdout.trim()).toBe('revoked 0 grants of hank at crm');
    const redis = redisClient();
    try {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
    } finally {
      redis.disconnect();
    }
  }, 60_000);
});

describe('per-user OAuth: operator revocation with the memory store', () => {
  it('is refused with a message saying where the grants are and how a user revokes', async () => {
    const run = await finished(
      cli(['grants', 'revoke', '--config', join(gw.dir, 'gatehouse.yaml'), '--upstream', 'crm', '--sub', 'x']),
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('outbound.oauth.store is memory');
    expect(run.stderr).toContain('DELETE /oauth/upstream/<upstream>/grant');
  });
});
