/**
 * The built-in authorization server end to end, with real parts: the MCP SDK's own client-side OAuth
 * (`auth()` + an in-memory `OAuthClientProvider`) against our AS, which federates the login to a real
 * OpenID provider (oidc-provider, devInteractions). Then the attacks of threat-model row 21 on the same
 * flow — each must fail the right way.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth } from '@modelcontextprotocol/sdk/client/auth.js';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import {
  authorizeUrl,
  Browser,
  MemoryOAuthProvider,
  pkcePair,
  postForm,
  registerClient,
  startAs,
  type AsHarness,
} from '../helpers/as-harness.js';

const CLIENT_REDIRECT = 'http://127.0.0.1:47111/callback';

let h: AsHarness;
/** The internal reason of the last refusal at the token endpoint (the wire only says invalid_grant). */
const lastRefusal = (): string => String(h.logs.filter((l) => l.event === 'as.refused').at(-1)?.detail);
beforeAll(async () => {
  h = await startAs({ users: { alice: { groups: ['engineering'] }, mallory: { groups: [] } } });
});
afterAll(() => h?.close());

/** One full browser login for a registered client; returns the code (and the final redirect). */
async function loginFor(
  clientId: string,
  opts: { challenge: string; state?: string; scope?: string; resource?: string; login?: string },
): Promise<URL> {
  const browser = new Browser({ login: opts.login ?? 'alice', consent: 'approve' });
  const out = await browser.run(
    authorizeUrl(h.issuer, {
      response_type: 'code',
      client_id: clientId,
      redirect_uri: CLIENT_REDIRECT,
      code_challenge: opts.challenge,
      code_challenge_method: 'S256',
      state: opts.state ?? 'st',
      scope: opts.scope ?? 'mcp:tools',
      resource: opts.resource ?? h.resource,
    }),
    CLIENT_REDIRECT,
  );
  if (out.kind !== 'redirect') throw new Error(`login ended on a page: ${out.status} ${out.html.slice(0, 300)}`);
  return out.location;
}

async function exchange(clientId: string, code: string, verifier: string, extra: Record<string, string> = {}) {
  return postForm(`${h.issuer}/token`, {
    grant_type: 'authorization_code',
    client_id: clientId,
    code,
    redirect_uri: CLIENT_REDIRECT,
    code_verifier: verifier,
    resource: h.resource,
    ...extra,
  });
}

describe('MCP SDK client against the built-in AS (real IdP)', () => {
  it('discovers, registers, logs in through the IdP, consents, exchanges the code and refreshes', async () => {
    const provider = new MemoryOAuthProvider(CLIENT_REDIRECT, 'SDK test client', 'sdk-state-4711');
    expect(await auth(provider, { serverUrl: h.resource })).toBe('REDIRECT');
    expect(provider.info?.client_id).toBeTypeOf('string');
    const authUrl = provider.authorizationUrl!;
    expect(authUrl.origin + authUrl.pathname).toBe(`${h.issuer}/authorize`);
    expect(authUrl.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authUrl.searchParams.get('resource')).toBe(h.resource);

    // The browser: our /authorize → IdP login → IdP consent → our callback → our consent page → client.
    const browser = new Browser({ login: 'alice', consent: 'approve' });
    const out = await browser.run(authUrl.href, CLIENT_REDIRECT);
    expect(out.kind).toBe('redirect');
    const back = (out as { location: URL }).location;
    expect(back.searchParams.get('state')).toBe('sdk-state-4711');
    expect(back.searchParams.get('iss')).toBe(h.issuer);
    expect(browser.visited.some((v) => v.startsWith(`GET ${h.idp!.issuer}`))).toBe(true);
    expect(browser.visited.some((v) => v.startsWith(`POST ${h.issuer}/consent`))).toBe(true);

    expect(await auth(provider, { serverUrl: h.resource, authorizationCode: back.searchParams.get('code')! })).toBe(
      'AUTHORIZED',
    );
    const tokens = provider.saved!;
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    expect(tokens.refresh_token).toBeTypeOf('string');

    const jwks = createRemoteJWKSet(new URL(`${h.issuer}/jwks`));
    const { payload, protectedHeader } = await jwtVerify(tokens.access_token, jwks, {
      issuer: h.issuer,
      audience: h.resource,
      typ: 'at+jwt',
    });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload.sub).toBe('alice');
    expect(payload.client_id).toBe(provider.info!.client_id);
    // Requested: the PRM's scopes_supported; granted: only what alice's groups map to.
    expect(String(payload.scope).split(' ').sort()).toEqual(['mcp:read', 'mcp:tools']);
    expect(payload.groups).toEqual(['engineering']);
    expect(payload.exp! - payload.iat!).toBe(300);
    expect(payload.jti).toBeTypeOf('string');

    // The SDK refreshes with the stored refresh token; the token rotates.
    const firstRefresh = tokens.refresh_token!;
    expect(await auth(provider, { serverUrl: h.resource })).toBe('AUTHORIZED');
    expect(provider.saved!.refresh_token).toBeTypeOf('string');
    expect(provider.saved!.refresh_token).not.toBe(firstRefresh);
    expect(provider.saved!.access_token).not.toBe(tokens.access_token);
  });
});

describe('authorization request attacks', () => {
  let clientId: string;
  beforeAll(async () => {
    clientId = await registerClient(h.issuer, CLIENT_REDIRECT);
  });

  async function authorizeDirect(params: Record<string, string | undefined>): Promise<Response> {
    return fetch(
      authorizeUrl(h.issuer, {
        response_type: 'code',
        client_id: clientId,
        redirect_uri: CLIENT_REDIRECT,
        state: 'xyz',
        ...params,
      }),
      { redirect: 'manual' },
    );
  }
  function errorOf(res: Response): URLSearchParams {
    expect(res.status).toBe(302);
    const loc = new URL(res.headers.get('location')!);
    expect(loc.href.startsWith(CLIENT_REDIRECT)).toBe(true);
    return loc.searchParams;
  }

  it('PKCE missing → invalid_request back to the client (with state and iss)', async () => {
    const q = errorOf(await authorizeDirect({}));
    expect(q.get('error')).toBe('invalid_request');
    expect(q.get('state')).toBe('xyz');
    expect(q.get('iss')).toBe(h.issuer);
  });

  it('PKCE plain (or no method) → invalid_request', async () => {
    const { challenge } = pkcePair();
    expect(
      errorOf(await authorizeDirect({ code_challenge: challenge, code_challenge_method: 'plain' })).get('error'),
    ).toBe('invalid_request');
    expect(errorOf(await authorizeDirect({ code_challenge: challenge })).get('error')).toBe('invalid_request');
  });

  it('a resource for another audience → invalid_target', async () => {
    const { challenge } = pkcePair();
    const q = errorOf(
      await authorizeDirect({
        code_challenge: challenge,
        code_challenge_method: 'S256',
        resource: 'https://other.example/mcp',
      }),
    );
    expect(q.get('error')).toBe('invalid_target');
  });

  it('a scope we do not support → invalid_scope', async () => {
    const { challenge } = pkcePair();
    expect(
      errorOf(
        await authorizeDirect({ code_challenge: challenge, code_challenge_method: 'S256', scope: 'mcp:tools root' }),
      ).get('error'),
    ).toBe('invalid_scope');
  });

  it('redirect URI one character off → error page, never a redirect', async () => {
    const { challenge } = pkcePair();
    for (const bad of [
      `${CLIENT_REDIRECT}x`,
      CLIENT_REDIRECT.slice(0, -1),
      CLIENT_REDIRECT.replace('127.0.0.1', 'localhost'),
      `${CLIENT_REDIRECT}/`,
      CLIENT_REDIRECT.toUpperCase(),
    ]) {
      const res = await authorizeDirect({
        redirect_uri: bad,
        code_challenge: challenge,
        code_challenge_method: 'S256',
      });
      expect(res.status).toBe(400);
      expect(res.headers.get('location')).toBeNull();
      expect(res.headers.get('content-type')).toContain('text/html');
      expect(await res.text()).toContain('Invalid redirect URI');
    }
  });

  it('an unknown client → error page', async () => {
    const res = await authorizeDirect({ client_id: 'nobody' });
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
  });

  it('a repeated parameter → invalid_request', async () => {
    const { challenge } = pkcePair();
    const url = `${authorizeUrl(h.issuer, { response_type: 'code', client_id: clientId, redirect_uri: CLIENT_REDIRECT, code_challenge: challenge, code_challenge_method: 'S256' })}&scope=a&scope=b`;
    expect(errorOf(await fetch(url, { redirect: 'manual' })).get('error')).toBe('invalid_request');
  });
});

describe('token endpoint attacks', () => {
  let clientId: string;
  beforeAll(async () => {
    clientId = await registerClient(h.issuer, CLIENT_REDIRECT);
  });

  it('wrong PKCE verifier → invalid_grant', async () => {
    const { challenge } = pkcePair();
    const code = (await loginFor(clientId, { challenge })).searchParams.get('code')!;
    const res = await exchange(clientId, code, pkcePair().verifier);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_grant');
    expect(lastRefusal()).toBe('PKCE verifier does not match');
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  it('a code used twice: the second fails, and the tokens of the first are revoked', async () => {
    const { challenge, verifier } = pkcePair();
    const code = (await loginFor(clientId, { challenge })).searchParams.get('code')!;
    const first = await exchange(clientId, code, verifier);
    expect(first.status).toBe(200);
    const jti = decodeJwt(String(first.body.access_token)).jti!;
    expect(await h.server.isRevoked(jti)).toBe(false);

    const second = await exchange(clientId, code, verifier);
    expect(second.status).toBe(400);
    expect(second.body.error).toBe('invalid_grant');
    expect(lastRefusal()).toBe('code already used');
    expect(await h.server.isRevoked(jti)).toBe(true);
    const refresh = await postForm(`${h.issuer}/token`, {
      grant_type: 'refresh_token',
      client_id: clientId,
      refresh_token: String(first.body.refresh_token),
    });
    expect(refresh.body.error).toBe('invalid_grant');
    expect(h.logs.some((l) => l.event === 'as.code_reuse')).toBe(true);
  });

  it('redirect_uri or resource at the token endpoint must match the authorization request', async () => {
    const a = pkcePair();
    const codeA = (await loginFor(clientId, { challenge: a.challenge })).searchParams.get('code')!;
    expect((await exchange(clientId, codeA, a.verifier, { redirect_uri: `${CLIENT_REDIRECT}/x` })).body.error).toBe(
      'invalid_grant',
    );
    expect(lastRefusal()).toBe('redirect_uri differs from the authorization request');
    const b = pkcePair();
    const codeB = (await loginFor(clientId, { challenge: b.challenge })).searchParams.get('code')!;
    expect((await exchange(clientId, codeB, b.verifier, { resource: 'https://other.example/mcp' })).body.error).toBe(
      'invalid_target',
    );
  });

  it('a code redeemed by another client → invalid_grant', async () => {
    const other = await registerClient(h.issuer, CLIENT_REDIRECT);
    const { challenge, verifier } = pkcePair();
    const code = (await loginFor(clientId, { challenge })).searchParams.get('code')!;
    expect((await exchange(other, code, verifier)).body.error).toBe('invalid_grant');
    expect(lastRefusal()).toBe('code issued to another client');
  });

  it('a replayed refresh token → invalid_grant, and the rotated one stops working too (family revoked)', async () => {
    const { challenge, verifier } = pkcePair();
    const code = (await loginFor(clientId, { challenge })).searchParams.get('code')!;
    const tokens = await exchange(clientId, code, verifier);
    const rt1 = String(tokens.body.refresh_token);

    const rotated = await postForm(`${h.issuer}/token`, {
      grant_type: 'refresh_token',
      client_id: clientId,
      refresh_token: rt1,
    });
    expect(rotated.status).toBe(200);
    const rt2 = String(rotated.body.refresh_token);
    expect(rt2).not.toBe(rt1);
    const jti2 = decodeJwt(String(rotated.body.access_token)).jti!;

    const replay = await postForm(`${h.issuer}/token`, {
      grant_type: 'refresh_token',
      client_id: clientId,
      refresh_token: rt1,
    });
    expect(replay.status).toBe(400);
    expect(replay.body.error).toBe('invalid_grant');
    expect(lastRefusal()).toBe('refresh token already used');
    const afterReplay = await postForm(`${h.issuer}/token`, {
      grant_type: 'refresh_token',
      client_id: clientId,
      refresh_token: rt2,
    });
    expect(afterReplay.body.error).toBe('invalid_grant');
    expect(lastRefusal()).toBe('refresh token family revoked');
    expect(await h.server.isRevoked(jti2)).toBe(true);
  });

  it('a refresh token is bound to its client, and may only narrow the scope', async () => {
    const { challenge, verifier } = pkcePair();
    const code = (await loginFor(clientId, { challenge, scope: 'mcp:tools mcp:read' })).searchParams.get('code')!;
    const tokens = await exchange(clientId, code, verifier);
    expect(tokens.body.scope).toBe('mcp:tools mcp:read');
    const rt = String(tokens.body.refresh_token);
    const wider = await postForm(`${h.issuer}/token`, {
      grant_type: 'refresh_token',
      client_id: clientId,
      refresh_token: rt,
      scope: 'mcp:tools mcp:admin',
    });
    expect(wider.body.error).toBe('invalid_scope');
    const narrower = await postForm(`${h.issuer}/token`, {
      grant_type: 'refresh_token',
      client_id: clientId,
      refresh_token: rt,
      scope: 'mcp:read',
    });
    expect(narrower.status).toBe(200);
    expect(narrower.body.scope).toBe('mcp:read');
    // The next refresh may go back up to the original grant.
    const again = await postForm(`${h.issuer}/token`, {
      grant_type: 'refresh_token',
      client_id: clientId,
      refresh_token: String(narrower.body.refresh_token),
    });
    expect(again.body.scope).toBe('mcp:tools mcp:read');

    const thief = await registerClient(h.issuer, CLIENT_REDIRECT);
    const stolen = await postForm(`${h.issuer}/token`, {
      grant_type: 'refresh_token',
      client_id: thief,
      refresh_token: String(again.body.refresh_token),
    });
    expect(stolen.body.error).toBe('invalid_grant');
  });
});

describe('consent', () => {
  it('is remembered per (user, client): the second login skips our consent page', async () => {
    const clientId = await registerClient(h.issuer, CLIENT_REDIRECT);
    const first = pkcePair();
    await loginFor(clientId, { challenge: first.challenge });
    const browser = new Browser({ login: 'alice' }); // no consent answer: would stop at our page
    const out = await browser.run(
      authorizeUrl(h.issuer, {
        response_type: 'code',
        client_id: clientId,
        redirect_uri: CLIENT_REDIRECT,
        code_challenge: pkcePair().challenge,
        code_challenge_method: 'S256',
        scope: 'mcp:tools',
      }),
      CLIENT_REDIRECT,
    );
    expect(out.kind).toBe('redirect');
    expect(browser.visited.some((v) => v.includes('/consent'))).toBe(false);
  });

  it('shows the client, the redirect host and scopes, and forbids framing', async () => {
    const clientId = await registerClient(h.issuer, CLIENT_REDIRECT, { client_name: '<b>Evil</b> & Co' });
    const browser = new Browser({ login: 'alice' });
    const out = await browser.run(
      authorizeUrl(h.issuer, {
        response_type: 'code',
        client_id: clientId,
        redirect_uri: CLIENT_REDIRECT,
        code_challenge: pkcePair().challenge,
        code_challenge_method: 'S256',
        scope: 'mcp:tools',
      }),
      CLIENT_REDIRECT,
    );
    expect(out.kind).toBe('page');
    const page = out as { html: string; headers: Headers };
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(page.html).toContain('&lt;b&gt;Evil&lt;/b&gt; &amp; Co');
    expect(page.html).not.toContain('<b>Evil</b>');
    expect(page.html).toContain('127.0.0.1:47111');
    expect(page.html).toContain('mcp:tools');
    expect(page.html).toContain('name="csrf"');
  });

  it('a consent post with a wrong CSRF token is rejected; deny redirects access_denied', async () => {
    const clientId = await registerClient(h.issuer, CLIENT_REDIRECT);
    const browser = new Browser({ login: 'alice' });
    const out = (await browser.run(
      authorizeUrl(h.issuer, {
        response_type: 'code',
        client_id: clientId,
        redirect_uri: CLIENT_REDIRECT,
        code_challenge: pkcePair().challenge,
        code_challenge_method: 'S256',
        state: 's1',
      }),
      CLIENT_REDIRECT,
    )) as { html: string };
    const id = /name="id" value="([^"]+)"/.exec(out.html)![1]!;
    const forged = await fetch(`${h.issuer}/consent`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ id, csrf: 'forged', decision: 'approve' }),
    });
    expect(forged.status).toBe(400);
    expect(forged.headers.get('location')).toBeNull();
    const csrf = /name="csrf" value="([^"]+)"/.exec(out.html)![1]!;
    const denied = await fetch(`${h.issuer}/consent`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ id, csrf, decision: 'deny' }),
    });
    expect(denied.status).toBe(303);
    const loc = new URL(denied.headers.get('location')!);
    expect(loc.searchParams.get('error')).toBe('access_denied');
    expect(loc.searchParams.get('state')).toBe('s1');
    // Single use: the same form cannot be replayed to approve.
    const replay = await fetch(`${h.issuer}/consent`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ id, csrf, decision: 'approve' }),
    });
    expect(replay.status).toBe(400);
  });

  it('a user whose groups earn none of the requested scopes → access_denied', async () => {
    const clientId = await registerClient(h.issuer, CLIENT_REDIRECT);
    const loc = await loginFor(clientId, { challenge: pkcePair().challenge, login: 'mallory', scope: 'mcp:tools' });
    expect(loc.searchParams.get('error')).toBe('access_denied');
  });

  it('the IdP says no → access_denied to the client; a mix-up (wrong or missing iss at the callback) → server_error', async () => {
    const clientId = await registerClient(h.issuer, CLIENT_REDIRECT);
    const start = async (): Promise<string> => {
      const res = await fetch(
        authorizeUrl(h.issuer, {
          response_type: 'code',
          client_id: clientId,
          redirect_uri: CLIENT_REDIRECT,
          code_challenge: pkcePair().challenge,
          code_challenge_method: 'S256',
          state: 's9',
        }),
        { redirect: 'manual' },
      );
      const idpUrl = new URL(res.headers.get('location')!);
      expect(idpUrl.origin).toBe(h.idp!.issuer);
      expect(idpUrl.searchParams.get('code_challenge_method')).toBe('S256');
      expect(idpUrl.searchParams.get('nonce')).toBeTypeOf('string');
      return idpUrl.searchParams.get('state')!;
    };
    const back = async (query: Record<string, string>): Promise<URLSearchParams> => {
      const res = await fetch(`${h.issuer}/authorize/callback?${new URLSearchParams(query).toString()}`, {
        redirect: 'manual',
      });
      expect(res.status).toBe(302);
      const loc = new URL(res.headers.get('location')!);
      expect(loc.href.startsWith(CLIENT_REDIRECT)).toBe(true);
      expect(loc.searchParams.get('state')).toBe('s9');
      expect(loc.searchParams.get('iss')).toBe(h.issuer);
      return loc.searchParams;
    };
    expect((await back({ error: 'access_denied', state: await start(), iss: h.idp!.issuer })).get('error')).toBe(
      'access_denied',
    );
    expect(
      (await back({ code: 'stolen-code', state: await start(), iss: 'https://evil-idp.example' })).get('error'),
    ).toBe('server_error');
    expect((await back({ code: 'stolen-code', state: await start() })).get('error')).toBe('server_error');
    expect(h.logs.filter((l) => l.event === 'as.idp_login_failed' && l.reason === 'invalid_response')).toHaveLength(2);
  });

  it('the IdP callback cannot be replayed (state is single use)', async () => {
    const clientId = await registerClient(h.issuer, CLIENT_REDIRECT);
    const browser = new Browser({ login: 'alice', consent: 'approve' });
    await browser.run(
      authorizeUrl(h.issuer, {
        response_type: 'code',
        client_id: clientId,
        redirect_uri: CLIENT_REDIRECT,
        code_challenge: pkcePair().challenge,
        code_challenge_method: 'S256',
      }),
      CLIENT_REDIRECT,
    );
    const callback = browser.visited.find((v) => v.startsWith(`GET ${h.issuer}/authorize/callback`))!.slice(4);
    const replay = await fetch(callback, { redirect: 'manual' });
    expect(replay.status).toBe(400);
    expect(replay.headers.get('location')).toBeNull();
  });
});
