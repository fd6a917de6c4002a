/**
 * The built-in AS's other endpoints over real HTTP: metadata and keys, RFC 7591 registration, machine
 * clients (client_credentials with private_key_jwt and tls_client_auth), RFC 7009 revocation, client ID
 * metadata documents (served from a local server through the explicit unsafe switch; private addresses
 * refused), and the browser binding of an https issuer.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify from 'fastify';
import { pino } from 'pino';
import {
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  jwtVerify,
  SignJWT,
  type CryptoKey,
} from 'jose';
import { secretValue } from '../../src/config/secrets.js';
import type { BuiltinAsConfig } from '../../src/config/types.js';
import { registerAuthorizationServer } from '../../src/auth/as/plugin.js';
import { hashToken } from '../../src/auth/as/tokens.js';
import { MemoryAsStore } from '../../src/stores/as/memory-as-store.js';
import {
  authorizeUrl,
  Browser,
  pkcePair,
  postForm,
  privateJwk,
  registerClient,
  startAs,
  testConfig,
  type AsHarness,
} from '../helpers/as-harness.js';
import { startOidcIdp } from '../helpers/oidc-idp.js';

const REDIRECT = 'http://127.0.0.1:47222/cb';
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-as-'));

let agentKey: CryptoKey;
let strangerKey: CryptoKey;
let h: AsHarness;
let docs: Server;
let docsBase: string;
const documents = new Map<string, { status?: number; headers?: Record<string, string>; body: unknown }>();

beforeAll(async () => {
  const agent = await generateKeyPair('ES256');
  agentKey = agent.privateKey;
  strangerKey = (await generateKeyPair('ES256')).privateKey;
  const jwksFile = join(dir, 'agent-jwks.json');
  writeFileSync(
    jwksFile,
    JSON.stringify({ keys: [{ ...(await exportJWK(agent.publicKey)), kid: 'agent-1', alg: 'ES256' }] }),
  );

  // A local document server for client ID metadata documents (allowed only through the unsafe switch).
  docs = createServer((req, res) => {
    const doc = documents.get(req.url ?? '');
    if (doc === undefined) {
      res.writeHead(404).end();
      return;
    }
    res
      .writeHead(doc.status ?? 200, { 'content-type': 'application/json', ...doc.headers })
      .end(JSON.stringify(doc.body));
  });
  await new Promise<void>((r) => docs.listen(0, '127.0.0.1', r));
  docsBase = `http://127.0.0.1:${(docs.address() as AddressInfo).port}`;

  h = await startAs({
    as: {
      signingKeys: [
        secretValue('test:k-new', JSON.stringify(await privateJwk('ES256', 'k-new'))),
        secretValue('test:k-old', JSON.stringify(await privateJwk('RS256', 'k-old'))),
      ],
      clients: [
        { clientId: 'agent-jwt', auth: 'private_key_jwt', jwksFile, scopes: ['mcp:tools', 'mcp:read'] },
        {
          clientId: 'agent-mtls',
          auth: 'tls_client_auth',
          tlsSubject: 'CN=agent-mtls,O=Example',
          scopes: ['mcp:tools'],
        },
      ],
    },
    unsafe: { allowLoopbackClientMetadata: true },
    // The edge's mTLS layer provides this; here a test header stands in for the verified certificate.
    clientCertOf: (req) => {
      const subject = req.headers['x-test-cert-subject'];
      return typeof subject === 'string'
        ? { subject, sans: [], thumbprint: 'dGh1bWJwcmludC1vZi10aGUtdGVzdC1jZXJ0aWZpY2F0ZQ' }
        : undefined;
    },
  });
});
afterAll(async () => {
  await h?.close();
  docs?.closeAllConnections();
  await new Promise<void>((r) => docs?.close(() => r()));
});

describe('metadata and keys', () => {
  it('publishes RFC 8414 metadata (and the same at openid-configuration)', async () => {
    const res = await fetch(`${h.issuer}/.well-known/oauth-authorization-server`);
    expect(res.status).toBe(200);
    const m = (await res.json()) as Record<string, unknown>;
    expect(m).toMatchObject({
      issuer: h.issuer,
      authorization_endpoint: `${h.issuer}/authorize`,
      token_endpoint: `${h.issuer}/token`,
      registration_endpoint: `${h.issuer}/register`,
      revocation_endpoint: `${h.issuer}/revoke`,
      jwks_uri: `${h.issuer}/jwks`,
      response_types_supported: ['code'],
      grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
      code_challenge_methods_supported: ['S256'],
      token_endpoint_auth_methods_supported: ['none', 'private_key_jwt', 'tls_client_auth'],
      client_id_metadata_document_supported: true,
      authorization_response_iss_parameter_supported: true,
      scopes_supported: ['mcp:tools', 'mcp:admin', 'mcp:read'],
    });
    expect(await (await fetch(`${h.issuer}/.well-known/openid-configuration`)).json()).toEqual(m);
  });

  it('publishes every key without private parts; the first one signs', async () => {
    const jwks = (await (await fetch(`${h.issuer}/jwks`)).json()) as { keys: Record<string, unknown>[] };
    expect(jwks.keys.map((k) => k.kid)).toEqual(['k-new', 'k-old']);
    expect(jwks.keys.map((k) => k.alg)).toEqual(['ES256', 'RS256']);
    for (const k of jwks.keys) for (const p of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(k).not.toHaveProperty(p);
    const token = await clientCredentials();
    expect(decodeProtectedHeader(token).kid).toBe('k-new');
  });
});

describe('dynamic client registration (RFC 7591)', () => {
  async function register(
    body: unknown,
    headers: Record<string, string> = {},
    issuer = h.issuer,
  ): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
    const res = await fetch(`${issuer}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return {
      status: res.status,
      body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>),
      headers: res.headers,
    };
  }

  it('registers a public client with loopback and https redirect URIs', async () => {
    const res = await register({
      client_name: 'CLI',
      redirect_uris: [
        'http://127.0.0.1:9000/cb',
        'http://localhost:8080/cb',
        'http://[::1]:7/cb',
        'https://app.example/cb',
      ],
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      client_name: 'CLI',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
    });
    expect(res.body.client_id).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(res.body).not.toHaveProperty('client_secret');
    expect(await h.store.findClient(String(res.body.client_id))).toBeDefined();
  });

  it.each([
    ['javascript:', 'javascript:alert(1)'],
    ['a fragment', 'https://app.example/cb#frag'],
    ['non-loopback http', 'http://app.example/cb'],
    ['http on a private address', 'http://10.0.0.5/cb'],
    ['data:', 'data:text/html,hi'],
    ['a custom scheme', 'myapp://callback'],
    ['userinfo', 'https://user:pw@app.example/cb'],
    ['not a URL', '/relative/cb'],
  ])('refuses a redirect URI with %s', async (_what, uri) => {
    const res = await register({ redirect_uris: [uri] });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_redirect_uri');
  });

  it('refuses confidential clients, unknown scopes and grant types, and non-JSON', async () => {
    expect(
      (await register({ redirect_uris: [REDIRECT], token_endpoint_auth_method: 'client_secret_basic' })).body.error,
    ).toBe('invalid_client_metadata');
    expect((await register({ redirect_uris: [REDIRECT], scope: 'mcp:tools root' })).body.error).toBe(
      'invalid_client_metadata',
    );
    expect(
      (await register({ redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'password'] })).body.error,
    ).toBe('invalid_client_metadata');
    expect((await register({ redirect_uris: [] })).body.error).toBe('invalid_redirect_uri');
    expect((await register('{not json')).status).toBe(400);
    expect((await register(['array'])).body.error).toBe('invalid_client_metadata');
  });

  it('refuses bodies over 16 KiB', async () => {
    const res = await register({ redirect_uris: [REDIRECT], client_name: 'x'.repeat(17 * 1024) });
    expect(res.status).toBe(413);
  });

  it('when disabled: no endpoint (404) and no registration_endpoint in metadata', async () => {
    await using off = await startAs({ idp: false, as: { registration: { enabled: false } } });
    expect((await register({ redirect_uris: [REDIRECT] }, {}, off.issuer)).status).toBe(404);
    const m = (await (await fetch(`${off.issuer}/.well-known/oauth-authorization-server`)).json()) as Record<
      string,
      unknown
    >;
    expect(m).not.toHaveProperty('registration_endpoint');
  });

  it('requires the initial access token when one is configured', async () => {
    const iat = 'initial-access-token-0123456789';
    await using guarded = await startAs({
      idp: false,
      as: { registration: { enabled: true, initialAccessToken: secretValue('test:iat', iat) } },
    });
    const missing = await register({ redirect_uris: [REDIRECT] }, {}, guarded.issuer);
    expect(missing.status).toBe(401);
    expect(missing.body.error).toBe('invalid_token');
    // RFC 6750 §3.1: no credentials, no error code in the challenge; a wrong token is invalid_token.
    expect(missing.headers.get('www-authenticate')).toBe('Bearer');
    const wrong = await register({ redirect_uris: [REDIRECT] }, { authorization: `Bearer ${iat}x` }, guarded.issuer);
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    expect(
      (await register({ redirect_uris: [REDIRECT] }, { authorization: `Bearer ${iat}` }, guarded.issuer)).status,
    ).toBe(201);
  });
});

async function assertion(
  key: CryptoKey,
  claims: Record<string, unknown> = {},
  opts: { exp?: number; kid?: string } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  // Claims given by the test win over the defaults (a test of a wrong `aud` must really send it).
  return new SignJWT({
    iss: 'agent-jwt',
    sub: 'agent-jwt',
    aud: h.issuer,
    iat: now,
    exp: opts.exp ?? now + 60,
    jti: crypto.randomUUID(),
    ...claims,
  })
    .setProtectedHeader({ alg: 'ES256', kid: opts.kid ?? 'agent-1' })
    .sign(key);
}

async function clientCredentials(): Promise<string> {
  const res = await postForm(`${h.issuer}/token`, {
    grant_type: 'client_credentials',
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: await assertion(agentKey),
  });
  expect(res.status).toBe(200);
  return String(res.body.access_token);
}

describe('client_credentials for machine clients', () => {
  const ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

  it('private_key_jwt: a good assertion gets a token for the client', async () => {
    const res = await postForm(`${h.issuer}/token`, {
      grant_type: 'client_credentials',
      client_assertion_type: ASSERTION,
      client_assertion: await assertion(agentKey),
      scope: 'mcp:read',
      resource: h.resource,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.body).not.toHaveProperty('refresh_token');
    const { payload } = await jwtVerify(
      String(res.body.access_token),
      createRemoteJWKSet(new URL(`${h.issuer}/jwks`)),
      { issuer: h.issuer, audience: h.resource, typ: 'at+jwt' },
    );
    expect(payload).toMatchObject({ sub: 'agent-jwt', client_id: 'agent-jwt', scope: 'mcp:read' });
  });

  it('private_key_jwt: the token endpoint URL is an accepted audience too', async () => {
    const a = await assertion(agentKey, { aud: `${h.issuer}/token` });
    expect(
      (
        await postForm(`${h.issuer}/token`, {
          grant_type: 'client_credentials',
          client_assertion_type: ASSERTION,
          client_assertion: a,
        })
      ).status,
    ).toBe(200);
  });

  it('private_key_jwt: a replayed jti is refused', async () => {
    const a = await assertion(agentKey);
    expect(
      (
        await postForm(`${h.issuer}/token`, {
          grant_type: 'client_credentials',
          client_assertion_type: ASSERTION,
          client_assertion: a,
        })
      ).status,
    ).toBe(200);
    const replay = await postForm(`${h.issuer}/token`, {
      grant_type: 'client_credentials',
      client_assertion_type: ASSERTION,
      client_assertion: a,
    });
    expect(replay.status).toBe(401);
    expect(replay.body.error).toBe('invalid_client');
    expect(String(h.logs.filter((l) => l.event === 'as.refused').at(-1)?.detail)).toMatch(/jti replayed/);
  });

  it('private_key_jwt: an assertion signed by another key is refused', async () => {
    const res = await postForm(`${h.issuer}/token`, {
      grant_type: 'client_credentials',
      client_assertion_type: ASSERTION,
      client_assertion: await assertion(strangerKey),
    });
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_client');
    expect(String(h.logs.filter((l) => l.event === 'as.refused').at(-1)?.detail)).toMatch(
      /ERR_JWS_SIGNATURE_VERIFICATION_FAILED/,
    );
  });

  it('private_key_jwt: wrong audience, a far expiry, a future iat, no or a non-string jti, or a mismatching client_id are refused', async () => {
    const now = Math.floor(Date.now() / 1000);
    const cases: [string, RegExp][] = [
      [await assertion(agentKey, { aud: 'https://elsewhere.example' }), /ERR_JWT_CLAIM_VALIDATION_FAILED/],
      [await assertion(agentKey, {}, { exp: now + 3600 }), /too far in the future/],
      [await assertion(agentKey, { jti: undefined }), /ERR_JWT_CLAIM_VALIDATION_FAILED/],
      [await assertion(agentKey, { sub: 'someone-else' }), /ERR_JWT_CLAIM_VALIDATION_FAILED/],
      [await assertion(agentKey, { exp: now - 120 }), /ERR_JWT_EXPIRED/],
      // Issued an hour from now (jose alone lets it through), or with a jti that is not a string.
      [await assertion(agentKey, { iat: now + 3600 }), /iat is in the future/],
      [await assertion(agentKey, { jti: 42 }), /jti unusable/],
      [await assertion(agentKey, { jti: { id: 'x' } }), /jti unusable/],
    ];
    for (const [a, why] of cases) {
      expect(
        (
          await postForm(`${h.issuer}/token`, {
            grant_type: 'client_credentials',
            client_assertion_type: ASSERTION,
            client_assertion: a,
          })
        ).body.error,
      ).toBe('invalid_client');
      expect(String(h.logs.filter((l) => l.event === 'as.refused').at(-1)?.detail)).toMatch(why);
    }
    const mismatch = await postForm(`${h.issuer}/token`, {
      grant_type: 'client_credentials',
      client_id: 'agent-mtls',
      client_assertion_type: ASSERTION,
      client_assertion: await assertion(agentKey),
    });
    expect(mismatch.body.error).toBe('invalid_client');
  });

  it('scope beyond the registration → invalid_scope; another resource → invalid_target', async () => {
    expect(
      (
        await postForm(`${h.issuer}/token`, {
          grant_type: 'client_credentials',
          client_assertion_type: ASSERTION,
          client_assertion: await assertion(agentKey),
          scope: 'mcp:admin',
        })
      ).body.error,
    ).toBe('invalid_scope');
    expect(
      (
        await postForm(`${h.issuer}/token`, {
          grant_type: 'client_credentials',
          client_assertion_type: ASSERTION,
          client_assertion: await assertion(agentKey),
          resource: 'https://x.example',
        })
      ).body.error,
    ).toBe('invalid_target');
  });

  it('tls_client_auth: the certificate subject must match, and the token is bound to the certificate', async () => {
    const ok = await postForm(
      `${h.issuer}/token`,
      { grant_type: 'client_credentials', client_id: 'agent-mtls' },
      { 'x-test-cert-subject': 'CN=agent-mtls,O=Example' },
    );
    expect(ok.status).toBe(200);
    expect(decodeJwt(String(ok.body.access_token)).cnf).toEqual({
      'x5t#S256': 'dGh1bWJwcmludC1vZi10aGUtdGVzdC1jZXJ0aWZpY2F0ZQ',
    });
    expect(
      (
        await postForm(
          `${h.issuer}/token`,
          { grant_type: 'client_credentials', client_id: 'agent-mtls' },
          { 'x-test-cert-subject': 'CN=agent-mtls,O=Evil' },
        )
      ).body.error,
    ).toBe('invalid_client');
    expect(
      (await postForm(`${h.issuer}/token`, { grant_type: 'client_credentials', client_id: 'agent-mtls' })).body.error,
    ).toBe('invalid_client');
  });

  it('public clients cannot use client_credentials; machine clients cannot skip their authentication', async () => {
    const pub = await registerClient(h.issuer, REDIRECT);
    expect((await postForm(`${h.issuer}/token`, { grant_type: 'client_credentials', client_id: pub })).body.error).toBe(
      'unauthorized_client',
    );
    expect(
      (await postForm(`${h.issuer}/token`, { grant_type: 'client_credentials', client_id: 'agent-jwt' })).body.error,
    ).toBe('invalid_client');
  });
});

describe('token endpoint hygiene', () => {
  it('refuses JSON bodies, repeated parameters, unknown grants, client secrets and unknown clients', async () => {
    const json = await fetch(`${h.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'client_credentials' }),
    });
    expect(json.status).toBe(400);
    expect(((await json.json()) as { error: string }).error).toBe('invalid_request');
    const dup = await fetch(`${h.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=refresh_token&grant_type=client_credentials',
    });
    expect(((await dup.json()) as { error: string }).error).toBe('invalid_request');
    expect(
      (await postForm(`${h.issuer}/token`, { grant_type: 'password', username: 'a', password: 'b' })).body.error,
    ).toBe('unsupported_grant_type');
    expect(
      (
        await postForm(
          `${h.issuer}/token`,
          { grant_type: 'authorization_code', code: 'x' },
          { authorization: `Basic ${btoa('c:s')}` },
        )
      ).body.error,
    ).toBe('invalid_client');
    expect(
      (
        await postForm(`${h.issuer}/token`, {
          grant_type: 'authorization_code',
          client_id: 'ghost',
          code: 'x',
          redirect_uri: REDIRECT,
          code_verifier: 'v'.repeat(43),
        })
      ).body.error,
    ).toBe('invalid_client');
  });

  it('refuses a form or a JSON body that is not UTF-8, raw or percent-encoded, instead of repairing it (threat model #8)', async () => {
    const form = (body: string | Buffer) =>
      fetch(`${h.issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body,
      });
    for (const body of [
      Buffer.concat([Buffer.from('grant_type=client_credentials&client_id=a'), Buffer.from([0xc0, 0xaf])]),
      'grant_type=client_credentials&client_id=a%C0%AF',
      'grant_type=client_credentials&client_id=a%zz',
    ]) {
      const res = await form(body);
      expect(res.status, String(body)).toBe(400);
      expect(((await res.json()) as { error: string }).error).toBe('invalid_request');
    }
    const register = await fetch(`${h.issuer}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: Buffer.concat([
        Buffer.from('{"client_name":"CLI'),
        Buffer.from([0xff]),
        Buffer.from('","redirect_uris":["http://127.0.0.1:9000/cb"]}'),
      ]),
    });
    expect(register.status).toBe(400);
    expect(((await register.json()) as { error: string }).error).toBe('invalid_request');
  });

  it('an expired code is refused', async () => {
    const clientId = await registerClient(h.issuer, REDIRECT);
    const { verifier, challenge } = pkcePair();
    await seedCode(clientId, challenge, 'expired-code', -1);
    const res = await postForm(`${h.issuer}/token`, {
      grant_type: 'authorization_code',
      client_id: clientId,
      code: 'expired-code',
      redirect_uri: REDIRECT,
      code_verifier: verifier,
    });
    expect(res.body.error).toBe('invalid_grant');
  });
});

/** A code as /consent would have issued it (skips the browser when the test is about the back channel). */
async function seedCode(clientId: string, challenge: string, code: string, expiresIn = 60): Promise<void> {
  await h.store.saveCode(
    hashToken(code),
    {
      clientId,
      redirectUri: REDIRECT,
      codeChallenge: challenge,
      resource: h.resource,
      scopes: ['mcp:tools'],
      subject: 'alice',
      familyId: `fam-${code}`,
      expiresAt: Math.floor(Date.now() / 1000) + expiresIn,
    },
    60,
  );
}

describe('revocation (RFC 7009)', () => {
  async function tokensFor(clientId: string): Promise<{ access: string; refresh: string }> {
    const { verifier, challenge } = pkcePair();
    const code = `code-${crypto.randomUUID()}`;
    await seedCode(clientId, challenge, code);
    const res = await postForm(`${h.issuer}/token`, {
      grant_type: 'authorization_code',
      client_id: clientId,
      code,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
    });
    expect(res.status).toBe(200);
    return { access: String(res.body.access_token), refresh: String(res.body.refresh_token) };
  }

  it('revoking a refresh token revokes its family and the access tokens issued in it', async () => {
    const clientId = await registerClient(h.issuer, REDIRECT);
    const t = await tokensFor(clientId);
    const res = await postForm(`${h.issuer}/revoke`, {
      client_id: clientId,
      token: t.refresh,
      token_type_hint: 'refresh_token',
    });
    expect(res.status).toBe(200);
    expect(await h.server.isRevoked(decodeJwt(t.access).jti!)).toBe(true);
    expect(
      (
        await postForm(`${h.issuer}/token`, {
          grant_type: 'refresh_token',
          client_id: clientId,
          refresh_token: t.refresh,
        })
      ).body.error,
    ).toBe('invalid_grant');
  });

  it('revoking an access token records its jti until it expires', async () => {
    const clientId = await registerClient(h.issuer, REDIRECT);
    const t = await tokensFor(clientId);
    expect((await postForm(`${h.issuer}/revoke`, { client_id: clientId, token: t.access })).status).toBe(200);
    expect(await h.server.isRevoked(decodeJwt(t.access).jti!)).toBe(true);
    // The refresh token of the same grant still works (only that access token was revoked).
    expect(
      (
        await postForm(`${h.issuer}/token`, {
          grant_type: 'refresh_token',
          client_id: clientId,
          refresh_token: t.refresh,
        })
      ).status,
    ).toBe(200);
  });

  it("another client's token is refused; unknown tokens answer 200", async () => {
    const owner = await registerClient(h.issuer, REDIRECT);
    const other = await registerClient(h.issuer, REDIRECT);
    const t = await tokensFor(owner);
    expect((await postForm(`${h.issuer}/revoke`, { client_id: other, token: t.refresh })).body.error).toBe(
      'unauthorized_client',
    );
    expect((await postForm(`${h.issuer}/revoke`, { client_id: other, token: t.access })).body.error).toBe(
      'unauthorized_client',
    );
    expect(await h.server.isRevoked(decodeJwt(t.access).jti!)).toBe(false);
    expect((await postForm(`${h.issuer}/revoke`, { client_id: other, token: 'no-such-token' })).status).toBe(200);
    expect((await postForm(`${h.issuer}/revoke`, { token: t.access })).body.error).toBe('invalid_client');
  });

  it('machine clients revoke their own access tokens', async () => {
    const token = await clientCredentials();
    const res = await postForm(`${h.issuer}/revoke`, {
      token,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await assertion(agentKey),
    });
    expect(res.status).toBe(200);
    expect(await h.server.isRevoked(decodeJwt(token).jti!)).toBe(true);
  });
});

describe('client ID metadata documents', () => {
  function doc(
    path: string,
    overrides: Record<string, unknown> = {},
    extra: { status?: number; headers?: Record<string, string> } = {},
  ): string {
    const url = `${docsBase}${path}`;
    documents.set(path, {
      ...extra,
      body: {
        client_id: url,
        client_name: 'Metadata Client',
        redirect_uris: [REDIRECT],
        token_endpoint_auth_method: 'none',
        ...overrides,
      },
    });
    return url;
  }

  it('a URL client id is fetched and validated, then the whole flow works with it', async () => {
    const clientId = doc('/clients/good.json');
    const { challenge, verifier } = pkcePair();
    const browser = new Browser({ login: 'alice', consent: 'approve' });
    const out = await browser.run(
      authorizeUrl(h.issuer, {
        response_type: 'code',
        client_id: clientId,
        redirect_uri: REDIRECT,
        code_challenge: challenge,
        code_challenge_method: 'S256',
        scope: 'mcp:tools',
        state: 'm',
      }),
      REDIRECT,
    );
    expect(out.kind).toBe('redirect');
    const code = (out as { location: URL }).location.searchParams.get('code')!;
    const res = await postForm(`${h.issuer}/token`, {
      grant_type: 'authorization_code',
      client_id: clientId,
      code,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
    });
    expect(res.status).toBe(200);
    expect(decodeJwt(String(res.body.access_token)).client_id).toBe(clientId);
  });

  async function authorizeStatus(clientId: string, issuer = h.issuer): Promise<Response> {
    return fetch(
      authorizeUrl(issuer, {
        response_type: 'code',
        client_id: clientId,
        redirect_uri: REDIRECT,
        code_challenge: pkcePair().challenge,
        code_challenge_method: 'S256',
      }),
      { redirect: 'manual' },
    );
  }

  it.each([
    [
      'a client_id that is not the URL',
      '/clients/mismatch.json',
      { client_id: 'https://someone-else.example/client.json' },
    ],
    ['no client_name', '/clients/noname.json', { client_name: undefined }],
    [
      'a redirect URI that is not registered in it',
      '/clients/other-redirect.json',
      { redirect_uris: ['http://127.0.0.1:1/elsewhere'] },
    ],
    ['a client secret', '/clients/secret.json', { client_secret: 'x' }],
  ])('refuses a document with %s (error page, no redirect)', async (_what, path, overrides) => {
    const res = await authorizeStatus(doc(path, overrides));
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
  });

  it('refuses a document that redirects, or is not JSON', async () => {
    documents.set('/clients/redirect.json', {
      status: 302,
      headers: { location: `${docsBase}/clients/good.json` },
      body: {},
    });
    expect((await authorizeStatus(`${docsBase}/clients/redirect.json`)).status).toBe(400);
    documents.set('/clients/html.json', { headers: { 'content-type': 'text/html' }, body: {} });
    expect((await authorizeStatus(`${docsBase}/clients/html.json`)).status).toBe(400);
  });

  it('without the unsafe switch: private and loopback addresses are refused before any fetch', async () => {
    await using strict = await startAs({ idp: false });
    const started = Date.now();
    for (const clientId of [
      'https://10.0.0.1/client.json',
      'https://localhost/client.json',
      'https://169.254.169.254/latest/meta-data',
      'https://[::1]/client.json',
      `${docsBase}/clients/good.json`,
    ]) {
      const res = await authorizeStatus(clientId, strict.issuer);
      expect(res.status).toBe(400);
      expect(res.headers.get('location')).toBeNull();
    }
    expect(Date.now() - started).toBeLessThan(3000);
    const refusals = strict.logs.filter((l) => l.event === 'as.client_metadata_refused').map((l) => String(l.detail));
    expect(refusals.filter((d) => d.includes('blocked_address'))).toHaveLength(4);
    expect(refusals.some((d) => d.includes('not https'))).toBe(true);
  });

  it('when disabled, URL client ids are unknown clients', async () => {
    let fetched = 0;
    await using off = await startAs({
      idp: false,
      as: { clientIdMetadataDocuments: false },
      fetchClientMetadata: async () => ((fetched += 1), { ok: false, reason: 'network', detail: 'x' }),
    });
    expect((await authorizeStatus('https://app.example/client.json', off.issuer)).status).toBe(400);
    expect(fetched).toBe(0);
    const m = (await (await fetch(`${off.issuer}/.well-known/oauth-authorization-server`)).json()) as Record<
      string,
      unknown
    >;
    expect(m.client_id_metadata_document_supported).toBe(false);
  });
});

describe('IdP outage', () => {
  it('an unreachable IdP → temporarily_unavailable back to the (validated) client', async () => {
    await using down = await startAs({ idp: false });
    const clientId = await registerClient(down.issuer, REDIRECT);
    const res = await fetch(
      authorizeUrl(down.issuer, {
        response_type: 'code',
        client_id: clientId,
        redirect_uri: REDIRECT,
        code_challenge: pkcePair().challenge,
        code_challenge_method: 'S256',
        state: 'o',
      }),
      { redirect: 'manual' },
    );
    expect(res.status).toBe(302);
    const loc = new URL(res.headers.get('location')!);
    expect(loc.searchParams.get('error')).toBe('temporarily_unavailable');
    expect(loc.searchParams.get('state')).toBe('o');
  });
});

describe('browser binding (https issuer)', () => {
  it('a login finished in another browser is refused', async () => {
    const issuer = 'https://gw.example';
    const idp = await startOidcIdp({
      redirectUris: [`${issuer}/authorize/callback`],
      users: { alice: { groups: ['engineering'] } },
    });
    const app = Fastify();
    try {
      const as: BuiltinAsConfig = {
        issuer,
        signingKeys: [secretValue('test:k', JSON.stringify(await privateJwk()))],
        accessTokenTtlSeconds: 300,
        refreshTokenTtlSeconds: 3600,
        codeTtlSeconds: 60,
        registration: { enabled: true },
        clientIdMetadataDocuments: false,
        idp: {
          issuer: idp.issuer,
          clientId: idp.clientId,
          clientSecret: secretValue('test:idp', idp.clientSecret),
          scopes: ['openid', 'groups'],
        },
        scopeMapping: [{ claim: 'groups', value: 'engineering', scopes: ['mcp:tools'] }],
        clients: [],
        store: { kind: 'memory' },
      };
      const store = new MemoryAsStore();
      await registerAuthorizationServer(app, {
        config: testConfig(`${issuer}/mcp`, issuer, as),
        as,
        store,
        logger: pino({ level: 'silent' }),
        unsafe: { allowInsecureIdp: true },
      });
      const reg = await app.inject({
        method: 'POST',
        url: '/register',
        headers: { 'content-type': 'application/json' },
        payload: { redirect_uris: [REDIRECT] },
      });
      const clientId = (reg.json() as { client_id: string }).client_id;

      const start = await app.inject({
        method: 'GET',
        url: authorizeUrl(issuer, {
          response_type: 'code',
          client_id: clientId,
          redirect_uri: REDIRECT,
          code_challenge: pkcePair().challenge,
          code_challenge_method: 'S256',
        }).slice(issuer.length),
      });
      expect(start.statusCode).toBe(302);
      const setCookie = String(start.headers['set-cookie']);
      expect(setCookie).toMatch(/^__Host-gatehouse-login=[A-Za-z0-9_-]{43}; Path=\/; Secure; HttpOnly; SameSite=Lax/);

      // The victim logs in at the IdP; the IdP sends their browser back to our callback.
      const out = await new Browser({ login: 'alice' }).run(
        String(start.headers.location),
        `${issuer}/authorize/callback`,
      );
      expect(out.kind).toBe('redirect');
      const callbackPath = (out as { location: URL }).location.href.slice(issuer.length);

      const foreign = await app.inject({ method: 'GET', url: callbackPath });
      expect(foreign.statusCode).toBe(400);
      expect(foreign.body).toContain('another browser');
      expect(foreign.headers.location).toBeUndefined();
    } finally {
      await app.close();
      await idp.close();
    }
  });

  it('the same browser (cookie present) gets through to the consent page', async () => {
    const issuer = 'https://gw.example';
    const idp = await startOidcIdp({
      redirectUris: [`${issuer}/authorize/callback`],
      users: { alice: { groups: ['engineering'] } },
    });
    const app = Fastify();
    try {
      const as: BuiltinAsConfig = {
        issuer,
        signingKeys: [secretValue('test:k', JSON.stringify(await privateJwk()))],
        accessTokenTtlSeconds: 300,
        refreshTokenTtlSeconds: 3600,
        codeTtlSeconds: 60,
        registration: { enabled: true },
        clientIdMetadataDocuments: false,
        idp: {
          issuer: idp.issuer,
          clientId: idp.clientId,
          clientSecret: secretValue('test:idp', idp.clientSecret),
          scopes: ['openid', 'groups'],
        },
        scopeMapping: [{ claim: 'groups', value: 'engineering', scopes: ['mcp:tools'] }],
        clients: [],
        store: { kind: 'memory' },
      };
      await registerAuthorizationServer(app, {
        config: testConfig(`${issuer}/mcp`, issuer, as),
        as,
        store: new MemoryAsStore(),
        logger: pino({ level: 'silent' }),
        unsafe: { allowInsecureIdp: true },
      });
      const reg = await app.inject({
        method: 'POST',
        url: '/register',
        headers: { 'content-type': 'application/json' },
        payload: { redirect_uris: [REDIRECT] },
      });
      const clientId = (reg.json() as { client_id: string }).client_id;
      const start = await app.inject({
        method: 'GET',
        url: authorizeUrl(issuer, {
          response_type: 'code',
          client_id: clientId,
          redirect_uri: REDIRECT,
          code_challenge: pkcePair().challenge,
          code_challenge_method: 'S256',
          scope: 'mcp:tools',
        }).slice(issuer.length),
      });
      const cookie = String(start.headers['set-cookie']).split(';')[0]!;
      const out = await new Browser({ login: 'alice' }).run(
        String(start.headers.location),
        `${issuer}/authorize/callback`,
      );
      const callbackPath = (out as { location: URL }).location.href.slice(issuer.length);
      const back = await app.inject({ method: 'GET', url: callbackPath, headers: { cookie } });
      expect(back.statusCode).toBe(303);
      const consentPath = String(back.headers.location).slice(issuer.length);
      expect((await app.inject({ method: 'GET', url: consentPath })).statusCode).toBe(400);
      const page = await app.inject({ method: 'GET', url: consentPath, headers: { cookie } });
      expect(page.statusCode).toBe(200);
      expect(page.body).toContain('name="csrf"');
    } finally {
      await app.close();
      await idp.close();
    }
  });
});
