/**
 * Token time claims and required claims end to end (threat model #3, #4; RFC 9068 §2.2, RFC 7519 §4.1.6,
 * RFC 6750 §3.1): a real gateway in mode `oauth` with a local JWKS file, the official SDK client as the agent,
 * a real stdio upstream, tokens signed with jose. The gateway runs on the real clock, so every token's times
 * are hours away from the edges: nothing here depends on how fast it runs.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initializeBody, post, startGateway, stdioFixtureYaml, type TestGateway } from '../helpers/gateway.js';

const ISSUER = 'https://idp.example.test';
const HOUR = 3600;

let gw: TestGateway;
let privateKey: CryptoKey;
let jwksFile: string;
let dir: string;

/** A gateway with `requireTokenType: true` (so RFC 9068's iat, jti, client_id are required) and `jwt` settings. */
async function gateway(jwt: string): Promise<TestGateway> {
  const top = [
    'auth:',
    '  mode: oauth',
    '  requireTokenType: true',
    '  algorithms: [ES256]',
    '  jwt:',
    `    issuer: ${ISSUER}`,
    `    jwksFile: ${jwksFile}`,
    jwt,
  ].join('\n');
  return startGateway([stdioFixtureYaml('fx')], { top });
}

/** An RFC 9068 access token for `gw`, issued `ageSeconds` ago (negative: in the future); `undefined` drops a claim. */
function token(target: TestGateway, claims: Record<string, unknown> = {}, ageSeconds = 60): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload = {
    iss: ISSUER,
    aud: target.app.config.auth.resource,
    sub: 'alice',
    client_id: 'agent-1',
    jti: `t-${Math.random()}`,
    iat: now - ageSeconds,
    exp: now + 2 * HOUR,
    ...claims,
  };
  const clean = Object.fromEntries(Object.entries(payload).filter(([, v]) => v !== undefined));
  return new SignJWT(clean).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k1' }).sign(privateKey);
}

/** The reason and detail the gateway logged for its latest refusal (the wire only ever says invalid_token). */
function lastRefusal(target: TestGateway): { reason: unknown; detail: unknown } | undefined {
  const line = target.logs.filter((l) => l.msg === 'authentication refused').at(-1);
  return line && { reason: line.reason, detail: line.detail };
}

async function expectInvalidToken(target: TestGateway, t: string, reason: string, detail: RegExp): Promise<void> {
  const r = await post(target.url, initializeBody(), { authorization: `Bearer ${t}` });
  expect(r.status).toBe(401);
  expect(r.headers.get('www-authenticate')).toMatch(
    /^Bearer error="invalid_token", error_description="The access token is invalid", resource_metadata="[^"]+"$/,
  );
  expect(r.text).not.toContain('iat');
  expect(lastRefusal(target)).toMatchObject({ reason, detail: expect.stringMatching(detail) });
}

beforeAll(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true });
  privateKey = pair.privateKey;
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-token-times-'));
  jwksFile = join(dir, 'jwks.json');
  writeFileSync(
    jwksFile,
    JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] }),
  );
  gw = await gateway('    maxTokenAgeSeconds: 86400');
}, 60_000);

afterAll(async () => {
  await gw?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('JWT time claims and required claims at the gateway', () => {
  it('an SDK client with a well-formed RFC 9068 token lists tools', async () => {
    const client = await gw.client({
      transport: { requestInit: { headers: { authorization: `Bearer ${await token(gw)}` } } },
    });
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('fx__echo');
  });

  it('401 invalid_token for a token issued an hour in the future (beyond the 30 s skew)', async () => {
    await expectInvalidToken(gw, await token(gw, {}, -HOUR), 'not_yet_valid', /^iat is in the future/);
  });

  it('401 invalid_token for a token without iat, jti or client_id (RFC 9068 §2.2, required with requireTokenType)', async () => {
    for (const claim of ['iat', 'jti', 'client_id']) {
      await expectInvalidToken(
        gw,
        await token(gw, { [claim]: undefined }),
        'invalid_token',
        new RegExp(`^${claim} missing`),
      );
    }
  });

  it('401 invalid_token for a token older than maxTokenAgeSeconds, though its exp is hours away', async () => {
    await expectInvalidToken(gw, await token(gw, {}, 2 * 86_400), 'expired', /maxTokenAgeSeconds/);
  });

  it('400 invalid_request, with the challenge, for a token in the query string or two credentials', async () => {
    const t = await token(gw);
    for (const [url, headers] of [
      [`${gw.url}?access_token=${t}`, {}],
      [gw.url, { authorization: `Bearer ${t}, Bearer ${t}` }],
    ] as const) {
      const r = await post(url, initializeBody(), headers);
      expect(r.status).toBe(400);
      expect(r.headers.get('www-authenticate')).toMatch(
        /^Bearer error="invalid_request", error_description="[^"]+", resource_metadata="[^"]+"$/,
      );
      expect(r.text).not.toContain(t);
    }
  });
});
