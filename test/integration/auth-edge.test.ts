/**
 * The edge around authentication, with fastify `inject` (no upstream is started): the credential is gone from
 * the request once auth has consumed it (docs/architecture.md §2), refusals carry the right status and headers, and the
 * RFC 9728 metadata exists only when there is something to discover.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, type App } from '../../src/app.js';
import type { Authenticator, AuthResult } from '../../src/auth/authenticator.js';
import { loadConfig } from '../../src/config/load.js';
import { initializeBody, permissivePolicyFor, stdioFixtureYaml } from '../helpers/gateway.js';
import { NullAuditSink } from '../../src/audit/audit-sink.js';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-auth-edge-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function app(authenticator?: Authenticator, top = ''): { app: App; seen: { authorization: unknown; raw: string[] }[] } {
  const file = join(dir, `gatehouse-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(
    file,
    `server:\n  host: 127.0.0.1\n  port: 0\n${top}\n${permissivePolicyFor(top, dir)}upstreams:\n  - ${stdioFixtureYaml('fx')}\n`,
  );
  const a = buildApp(loadConfig(file), {
    logger: pino({ level: 'silent' }),
    audit: new NullAuditSink(),
    ...(authenticator ? { authenticator } : {}),
  });
  const seen: { authorization: unknown; raw: string[] }[] = [];
  // onResponse runs after the hijacked handler has answered: what would any later step see of the request?
  a.http.addHook('onResponse', async (request) => {
    seen.push({
      authorization: request.headers.authorization ?? request.raw.headers.authorization,
      raw: [...request.raw.rawHeaders],
    });
  });
  return { app: a, seen };
}

const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

describe('edge: after authentication', () => {
  it('removes the Authorization header (parsed and raw) so nothing after auth sees the token', async () => {
    const { app: a, seen } = app();
    try {
      const res = await a.http.inject({
        method: 'POST',
        url: '/mcp',
        headers: { ...HEADERS, authorization: 'Bearer secret-token-value' },
        payload: initializeBody(),
      });
      expect(res.statusCode).toBe(200);
      expect(seen).toHaveLength(1);
      expect(seen[0]!.authorization).toBeUndefined();
      expect(seen[0]!.raw.join('\n')).not.toContain('secret-token-value');
    } finally {
      await a.close(500);
    }
  });

  it('answers 401/403 with the challenge and no-store, 503 with Retry-After and no challenge', async () => {
    const results: AuthResult[] = [
      { ok: false, status: 401, wwwAuthenticate: 'Bearer error="invalid_token"', reason: 'expired' },
      {
        ok: false,
        status: 403,
        wwwAuthenticate: 'Bearer error="insufficient_scope", scope="a"',
        reason: 'insufficient_scope',
      },
      { ok: false, status: 503, wwwAuthenticate: '', reason: 'verifier_unavailable', detail: 'JWKS down' },
    ];
    let i = 0;
    const { app: a, seen } = app({ authenticate: () => results[i++]! });
    try {
      const r401 = await a.http.inject({
        method: 'POST',
        url: '/mcp',
        headers: { ...HEADERS, authorization: 'Bearer x' },
        payload: initializeBody(),
      });
      expect(r401.statusCode).toBe(401);
      expect(r401.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
      expect(r401.headers['cache-control']).toBe('no-store');
      expect(r401.json()).toMatchObject({ error: { code: -32600, message: 'Unauthorized' } });
      const r403 = await a.http.inject({
        method: 'POST',
        url: '/mcp',
        headers: { ...HEADERS, authorization: 'Bearer x' },
        payload: initializeBody(),
      });
      expect(r403.statusCode).toBe(403);
      expect(r403.headers['www-authenticate']).toContain('insufficient_scope');
      const r503 = await a.http.inject({
        method: 'GET',
        url: '/mcp',
        headers: { accept: 'text/event-stream', authorization: 'Bearer x' },
      });
      expect(r503.statusCode).toBe(503);
      expect(r503.headers['retry-after']).toBe('5');
      expect(r503.headers['www-authenticate']).toBeUndefined();
      expect(r503.body).not.toContain('JWKS');
      expect(seen).toHaveLength(3);
    } finally {
      await a.close(500);
    }
  });

  it('serves no protected resource metadata when auth.mode is none', async () => {
    const { app: a } = app();
    try {
      expect((await a.http.inject({ method: 'GET', url: '/.well-known/oauth-protected-resource' })).statusCode).toBe(
        404,
      );
      expect(
        (await a.http.inject({ method: 'GET', url: '/.well-known/oauth-protected-resource/mcp' })).statusCode,
      ).toBe(404);
    } finally {
      await a.close(500);
    }
  });

  it('checks Origin on the metadata routes too (threat model #7)', async () => {
    const jwks = join(dir, 'jwks.json');
    writeFileSync(
      jwks,
      JSON.stringify({
        keys: [
          {
            kty: 'EC',
            crv: 'P-256',
            x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU',
            y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0',
            kid: 'k',
          },
        ],
      }),
    );
    const top = `auth:\n  mode: oauth\n  resource: https://gw.example.test/mcp\n  jwt:\n    issuer: https://idp.example.test\n    jwksFile: ${jwks}\n`;
    const { app: a } = app(undefined, top);
    try {
      const ok = await a.http.inject({ method: 'GET', url: '/.well-known/oauth-protected-resource/mcp' });
      expect(ok.statusCode).toBe(200);
      expect(ok.json()).toMatchObject({
        resource: 'https://gw.example.test/mcp',
        authorization_servers: ['https://idp.example.test'],
      });
      const evil = await a.http.inject({
        method: 'GET',
        url: '/.well-known/oauth-protected-resource/mcp',
        headers: { origin: 'https://evil.example' },
      });
      expect(evil.statusCode).toBe(403);
      const noToken = await a.http.inject({ method: 'POST', url: '/mcp', headers: HEADERS, payload: initializeBody() });
      expect(noToken.statusCode).toBe(401);
      expect(noToken.headers['www-authenticate']).toBe(
        'Bearer resource_metadata="https://gw.example.test/.well-known/oauth-protected-resource/mcp"',
      );
    } finally {
      await a.close(500);
    }
  });
});
