/**
 * Origin and Host on every route (threat model #7: DNS rebinding, browser CSRF; MCP transports §Security
 * Warning). Real gateways with the built-in authorization server, raw HTTP (node:http: fetch cannot set Host).
 * A page on another loopback port is another origin; the gateway's own origin (127.0.0.1, localhost or [::1] at
 * its port) and configured ones pass; a foreign Host gets one identical answer everywhere.
 */
import { request as httpRequest } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, type App } from '../../src/app.js';
import { NullAuditSink } from '../../src/audit/audit-sink.js';
import { parseConfigText } from '../../src/config/load.js';
import { privateJwk } from '../helpers/as-harness.js';
import {
  initializeBody,
  permissivePolicyDir,
  startGateway,
  stdioFixtureYaml,
  type TestGateway,
} from '../helpers/gateway.js';
import { freePort } from '../helpers/upstream-tools.js';

interface RawResponse {
  status: number;
  text: string;
}

/** One request with exactly these headers (Host included) to 127.0.0.1:port. */
function send(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const JSON_POST = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

/** Every kind of route the edge app serves: MCP, metadata, the authorization server's scope, health, a 404. */
const ROUTES: readonly { method: string; path: string; headers?: Record<string, string>; body?: string }[] = [
  { method: 'POST', path: '/mcp', headers: JSON_POST, body: initializeBody() },
  { method: 'GET', path: '/mcp', headers: { accept: 'text/event-stream' } },
  { method: 'DELETE', path: '/mcp' },
  { method: 'GET', path: '/.well-known/oauth-protected-resource/mcp' },
  { method: 'GET', path: '/.well-known/oauth-authorization-server' },
  { method: 'GET', path: '/authorize?client_id=x&response_type=code' },
  { method: 'POST', path: '/consent', headers: FORM, body: 'id=x&csrf=y' },
  { method: 'POST', path: '/token', headers: FORM, body: 'grant_type=authorization_code&code=x' },
  { method: 'POST', path: '/revoke', headers: FORM, body: 'token=x' },
  { method: 'POST', path: '/register', headers: { 'content-type': 'application/json' }, body: '{}' },
  { method: 'GET', path: '/jwks' },
  { method: 'GET', path: '/healthz' },
  { method: 'GET', path: '/readyz' },
  { method: 'GET', path: '/no-such-route' },
];

const FORBIDDEN_ORIGIN = JSON.stringify({
  jsonrpc: '2.0',
  id: null,
  error: { code: -32600, message: 'Forbidden origin' },
});
const FORBIDDEN_HOST = JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Forbidden host' } });

interface Gateway {
  app: App;
  port: number;
  close(): Promise<void>;
}

/** The built-in authorization server (its routes are on the same listener), listening on 127.0.0.1. */
async function startBuiltin(serverYaml: string, authExtra: string[], port: number): Promise<Gateway> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-origin-'));
  const yaml = [
    serverYaml,
    'auth:',
    '  mode: builtin',
    ...authExtra,
    '  builtin:',
    '    signingKeys: [{ fromEnv: GW_SIGNING_KEY }]',
    // Never contacted: every request here is refused, or answered, before a login starts.
    '    idp: { issuer: https://idp.example.com, clientId: gatehouse }',
    `policy: { dir: ${JSON.stringify(permissivePolicyDir(dir))} }`,
    `upstreams:\n  - ${stdioFixtureYaml('fx', { required: false })}`,
  ].join('\n');
  const config = parseConfigText(yaml, join(dir, 'gatehouse.yaml'), {
    env: { GW_SIGNING_KEY: JSON.stringify(await privateJwk('ES256')) },
  });
  const app = buildApp(config, { logger: pino({ level: 'silent' }), audit: new NullAuditSink() });
  await app.http.listen({ host: '127.0.0.1', port });
  const bound = (app.http.server.address() as { port: number }).port;
  return {
    app,
    port: bound,
    async close() {
      await app.close(1000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('a gateway bound to 127.0.0.1 (port 0)', () => {
  let gw: Gateway;
  let other: number;
  beforeAll(async () => {
    gw = await startBuiltin('server:\n  host: 127.0.0.1\n  port: 0\n  allowedOrigins: ["https://app.example"]', [], 0);
    other = await freePort();
  }, 30_000);
  afterAll(async () => gw?.close());

  const ask = (r: (typeof ROUTES)[number], headers: Record<string, string>): Promise<RawResponse> =>
    send(gw.port, r.method, r.path, { host: `127.0.0.1:${gw.port}`, ...r.headers, ...headers }, r.body);

  it('refuses a page on another loopback port with 403 on every route', async () => {
    for (const origin of [
      `http://127.0.0.1:${other}`,
      `http://localhost:${other}`,
      `http://[::1]:${other}`,
      'http://localhost',
    ]) {
      for (const r of ROUTES) {
        const res = await ask(r, { origin });
        expect({ route: `${r.method} ${r.path}`, origin, status: res.status, text: res.text }).toEqual({
          route: `${r.method} ${r.path}`,
          origin,
          status: 403,
          text: FORBIDDEN_ORIGIN,
        });
      }
    }
  });

  it('lets its own origin (127.0.0.1, localhost and [::1] at its port) and a configured one through', async () => {
    const own = [
      `http://127.0.0.1:${gw.port}`,
      `http://localhost:${gw.port}`,
      `http://[::1]:${gw.port}`,
      'https://app.example',
    ];
    for (const origin of own) {
      for (const r of ROUTES) {
        const res = await ask(r, { origin });
        expect(res.text, `${r.method} ${r.path} from ${origin}`).not.toBe(FORBIDDEN_ORIGIN);
        expect(res.status, `${r.method} ${r.path} from ${origin}`).not.toBe(403);
      }
    }
  });

  it('answers a foreign Host identically on every route, with or without a port', async () => {
    for (const host of ['evil.example', `evil.example:${gw.port}`, `localhost.evil.example:${gw.port}`]) {
      for (const r of ROUTES) {
        const res = await ask(r, { host });
        expect({ route: `${r.method} ${r.path}`, host, status: res.status, text: res.text }).toEqual({
          route: `${r.method} ${r.path}`,
          host,
          status: 403,
          text: FORBIDDEN_HOST,
        });
      }
    }
  });

  it('answers a foreign Host the same way on a malformed URL', async () => {
    const res = await send(gw.port, 'GET', '/%zz', { host: 'evil.example' });
    expect({ status: res.status, text: res.text }).toEqual({ status: 403, text: FORBIDDEN_HOST });
  });
});

describe('a gateway on every interface behind a TLS proxy (https auth.resource)', () => {
  let gw: Gateway;
  beforeAll(async () => {
    gw = await startBuiltin(
      'server:\n  host: 0.0.0.0\n  port: 0\n  allowedHosts: [gatehouse.gatehouse.svc]',
      ['  resource: https://mcp.example.com/mcp'],
      0,
    );
  }, 30_000);
  afterAll(async () => gw?.close());

  const get = (host: string, origin?: string): Promise<RawResponse> =>
    send(gw.port, 'GET', '/.well-known/oauth-protected-resource/mcp', {
      host,
      ...(origin !== undefined ? { origin } : {}),
    });

  it('accepts the public host, a listed one, IP literals (probes) and loopback names in Host', async () => {
    for (const host of [
      'mcp.example.com',
      'mcp.example.com:443',
      'gatehouse.gatehouse.svc:8080',
      '10.1.2.3:8080',
      '[fd00::1]:8080',
      'localhost:8080',
    ]) {
      expect((await get(host)).status, host).toBe(200);
    }
  });

  it('refuses any other name in Host, on every route', async () => {
    for (const host of ['evil.example', 'gatehouse.gatehouse.svc.evil.example', 'example.com']) {
      for (const r of ROUTES) {
        const res = await send(gw.port, r.method, r.path, { ...r.headers, host }, r.body);
        expect({ route: `${r.method} ${r.path}`, host, status: res.status, text: res.text }).toEqual({
          route: `${r.method} ${r.path}`,
          host,
          status: 403,
          text: FORBIDDEN_HOST,
        });
      }
    }
  });

  it('takes the public origin as its own, and no loopback origin', async () => {
    expect((await get('mcp.example.com', 'https://mcp.example.com')).status).toBe(200);
    for (const origin of [`http://127.0.0.1:${gw.port}`, 'http://localhost:3000', 'https://evil.example']) {
      expect((await get('mcp.example.com', origin)).status, origin).toBe(403);
    }
  });
});

describe('the Prometheus listener (its own port)', () => {
  let gw: TestGateway;
  let port: number;
  beforeAll(async () => {
    gw = await startGateway([stdioFixtureYaml('fx')], {
      top: 'telemetry:\n  metrics:\n    prometheus: { enabled: true, port: 0 }',
    });
    port = Number(new URL(gw.app.telemetry.metricsUrl!).port);
  }, 30_000);
  afterAll(async () => gw?.close());

  // A rebinding page must not read the metrics.
  it('answers a scraper, and refuses a foreign Host or any Origin', async () => {
    expect((await send(port, 'GET', '/metrics', { host: `127.0.0.1:${port}` })).status).toBe(200);
    expect((await send(port, 'GET', '/metrics', { host: `10.1.2.3:${port}` })).status).toBe(200);
    expect((await send(port, 'GET', '/metrics', { host: 'evil.example' })).status).toBe(403);
    expect(
      (await send(port, 'GET', '/metrics', { host: `127.0.0.1:${port}`, origin: `http://127.0.0.1:${port}` })).status,
    ).toBe(403);
  });
});
