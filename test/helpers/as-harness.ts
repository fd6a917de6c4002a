/**
 * The built-in authorization server in a test: a fastify app on 127.0.0.1:0 (issuer `http://127.0.0.1:<port>`)
 * with the AS plugin and a minimal RFC 9728 document for the MCP resource, optionally a real OpenID provider
 * as the corporate IdP, and a tiny "browser" (cookie jar, manual redirects, HTML form submission) to walk
 * through the IdP's and our pages.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { pino, type Logger } from 'pino';
import type { BuiltinAsConfig, GatehouseConfig } from '../../src/config/types.js';
import { secretValue } from '../../src/config/secrets.js';
import { CONFIG_DEFAULTS } from '../../src/config/index.js';
import { registerAuthorizationServer, type AuthorizationServer } from '../../src/auth/as/plugin.js';
import type { CertIdentity } from '../../src/auth/authenticator.js';
import type { SafeFetcher } from '../../src/auth/as/safe-fetch.js';
import type { AsStore } from '../../src/stores/as/as-store.js';
import { MemoryAsStore } from '../../src/stores/as/memory-as-store.js';
import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from '@modelcontextprotocol/sdk/shared/auth.js';
import { startOidcIdp, type TestIdp } from './oidc-idp.js';

export const SCOPES = ['mcp:tools', 'mcp:admin', 'mcp:read'];

export async function privateJwk(alg: 'ES256' | 'RS256' = 'ES256', kid?: string): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(privateKey);
  return kid === undefined ? jwk : { ...jwk, kid };
}

export interface AsHarnessOptions {
  /** Start a real IdP (default true). Without one, the IdP issuer is an address nothing answers on. */
  idp?: boolean;
  users?: Record<string, { groups: string[] }>;
  as?: Partial<BuiltinAsConfig>;
  store?: AsStore;
  fetchClientMetadata?: SafeFetcher;
  clientCertOf?: (request: FastifyRequest) => CertIdentity | undefined;
  unsafe?: { allowLoopbackClientMetadata?: boolean; allowInsecureIdp?: boolean };
  now?: () => number;
}

export interface LogLine {
  level: number;
  msg: string;
  event?: string;
  [k: string]: unknown;
}

export interface AsHarness extends AsyncDisposable {
  readonly issuer: string;
  readonly resource: string;
  readonly app: FastifyInstance;
  readonly server: AuthorizationServer;
  readonly store: AsStore;
  readonly idp: TestIdp | undefined;
  readonly logs: LogLine[];
  readonly config: GatehouseConfig;
  close(): Promise<void>;
}

export async function startAs(opts: AsHarnessOptions = {}): Promise<AsHarness> {
  const http: Server = createServer();
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const resource = `${issuer}/mcp`;

  const idp =
    opts.idp === false
      ? undefined
      : await startOidcIdp({
          redirectUris: [`${issuer}/authorize/callback`],
          users: opts.users ?? { alice: { groups: ['engineering'] } },
        });

  const as: BuiltinAsConfig = {
    issuer,
    signingKeys: [secretValue('test:signing-key', JSON.stringify(await privateJwk('ES256', 'k1')))],
    accessTokenTtlSeconds: 300,
    refreshTokenTtlSeconds: 3600,
    codeTtlSeconds: 60,
    registration: { enabled: true },
    clientIdMetadataDocuments: true,
    idp: {
      issuer: idp?.issuer ?? 'http://127.0.0.1:9',
      clientId: idp?.clientId ?? 'gatehouse',
      ...(idp !== undefined ? { clientSecret: secretValue('test:idp-secret', idp.clientSecret) } : {}),
      scopes: ['openid', 'groups'],
    },
    scopeMapping: [
      { claim: 'groups', value: 'engineering', scopes: ['mcp:tools', 'mcp:read'] },
      { claim: 'groups', value: 'admins', scopes: ['mcp:admin'] },
    ],
    clients: [],
    store: { kind: 'memory' },
    ...opts.as,
  };
  const config = testConfig(resource, issuer, as);

  const logs: LogLine[] = [];
  const logger: Logger = pino(
    { level: 'debug' },
    { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) },
  );
  const store = opts.store ?? new MemoryAsStore();

  const app = Fastify({
    logger: false,
    serverFactory: (handler: (req: IncomingMessage, res: ServerResponse) => void) => {
      http.on('request', handler);
      return http;
    },
  });
  // RFC 9728 for the MCP endpoint (the edge serves the real one; this app has only the AS).
  const prm = {
    resource,
    authorization_servers: [issuer],
    scopes_supported: SCOPES,
    bearer_methods_supported: ['header'],
  };
  app.get('/.well-known/oauth-protected-resource/mcp', async () => prm);
  app.get('/.well-known/oauth-protected-resource', async () => prm);
  const server = await registerAuthorizationServer(app, {
    config,
    as,
    store,
    logger,
    unsafe: { allowInsecureIdp: true, ...opts.unsafe },
    ...(opts.now !== undefined ? { now: opts.now } : {}),
    ...(opts.fetchClientMetadata !== undefined ? { fetchClientMetadata: opts.fetchClientMetadata } : {}),
    ...(opts.clientCertOf !== undefined ? { clientCertOf: opts.clientCertOf } : {}),
  });
  await app.ready();

  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    http.closeAllConnections();
    await app.close();
    await store.close();
    await idp?.close();
  };
  return { issuer, resource, app, server, store, idp, logs, config, close, [Symbol.asyncDispose]: close };
}

export function testConfig(resource: string, issuer: string, as: BuiltinAsConfig): GatehouseConfig {
  return {
    file: '/dev/null/gatehouse.yaml',
    server: {
      host: '127.0.0.1',
      port: 0,
      path: '/mcp',
      allowedOrigins: [],
      allowedHosts: [],
      bodyLimitBytes: 1024 * 1024,
      maxSessions: 100,
      sessionIdleTimeoutMs: 1_800_000,
      shutdownTimeoutMs: 5000,
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 300_000,
      keepAliveTimeoutMs: 5000,
      trustedProxies: [],
      maxConnections: CONFIG_DEFAULTS.server.maxConnections,
      readinessDetail: 'loopback',
      httpRateLimit: CONFIG_DEFAULTS.server.httpRateLimit,
      overload: CONFIG_DEFAULTS.server.overload,
    },
    auth: {
      mode: 'builtin',
      resource,
      authorizationServers: [issuer],
      scopesSupported: SCOPES,
      requiredScopes: [],
      algorithms: ['ES256', 'RS256'],
      clockSkewSeconds: 30,
      requireTokenType: true,
      claims: { scope: 'scope', groups: 'groups', clientId: 'client_id' },
      builtin: as,
    },
    catalogue: { separator: '__', maxNameLength: 64, unprefixedSingleUpstream: false },
    logging: { level: 'silent' },
    pinning: { mode: 'off' },
    audit: { sink: 'stdout', onFailure: 'closed', hashChain: { enabled: true }, redact: [] },
    upstreams: [],
  };
}

// ─── PKCE and forms ──────────────────────────────────────────────────────────────────────────────────────

export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export async function postForm(
  url: string,
  form: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form).toString(),
  });
  const text = await res.text();
  return {
    status: res.status,
    body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>),
    headers: res.headers,
  };
}

export async function registerClient(
  issuer: string,
  redirectUri: string,
  extra: Record<string, unknown> = {},
): Promise<string> {
  const res = await fetch(`${issuer}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: 'Test client',
      redirect_uris: [redirectUri],
      token_endpoint_auth_method: 'none',
      ...extra,
    }),
  });
  if (res.status !== 201) throw new Error(`registration failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { client_id: string }).client_id;
}

export function authorizeUrl(issuer: string, params: Record<string, string | undefined>): string {
  const url = new URL(`${issuer}/authorize`);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
  return url.href;
}

// ─── a small browser ─────────────────────────────────────────────────────────────────────────────────────

export type BrowserOutcome =
  { kind: 'redirect'; location: URL } | { kind: 'page'; status: number; html: string; url: string; headers: Headers };

/**
 * Follows redirects by hand (`redirect: 'manual'`), keeps cookies per host, and fills in the forms it knows:
 * the IdP's login (any password) and consent, and our consent page (approve or deny). Stops at the first
 * redirect to `stopAt` (the client's redirect URI, never fetched) or at a page it cannot handle.
 */
export class Browser {
  readonly #jar = new Map<string, Map<string, string>>();
  /** URLs visited, in order. */
  readonly visited: string[] = [];

  constructor(readonly opts: { login: string; consent?: 'approve' | 'deny' } = { login: 'alice' }) {}

  async run(start: string, stopAt: string): Promise<BrowserOutcome> {
    let res = await this.request(start, 'GET');
    let current = start;
    for (let step = 0; step < 40; step++) {
      if (res.status >= 300 && res.status < 400) {
        const location = new URL(res.headers.get('location')!, current);
        if (location.href.startsWith(stopAt)) return { kind: 'redirect', location };
        current = location.href;
        res = await this.request(current, 'GET');
        continue;
      }
      const html = await res.text();
      const form = parseForm(html, current);
      if (res.status !== 200 || form === undefined)
        return { kind: 'page', status: res.status, html, url: current, headers: res.headers };
      let fields: Record<string, string>;
      if (/name="login"/.test(html)) fields = { ...form.fields, login: this.opts.login, password: 'any-password' };
      else if (form.fields.prompt === 'consent') fields = form.fields;
      else if ('csrf' in form.fields) {
        if (this.opts.consent === undefined)
          return { kind: 'page', status: res.status, html, url: current, headers: res.headers };
        fields = { ...form.fields, decision: this.opts.consent };
      } else return { kind: 'page', status: res.status, html, url: current, headers: res.headers };
      current = form.action;
      res = await this.request(form.action, 'POST', fields);
    }
    throw new Error('too many steps');
  }

  async request(url: string, method: 'GET' | 'POST', form?: Record<string, string>): Promise<Response> {
    this.visited.push(`${method} ${url}`);
    const u = new URL(url);
    const cookies = [...(this.#jar.get(u.host) ?? new Map<string, string>())].map(([k, v]) => `${k}=${v}`).join('; ');
    const headers: Record<string, string> = {};
    if (cookies !== '') headers.cookie = cookies;
    if (form !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(url, {
      method,
      redirect: 'manual',
      headers,
      ...(form !== undefined ? { body: new URLSearchParams(form).toString() } : {}),
    });
    const jar = this.#jar.get(u.host) ?? new Map<string, string>();
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*expires=Thu, 01 Jan 1970/i.test(a) || /^\s*max-age=0\b/i.test(a));
      if (expired || value === '') jar.delete(name);
      else jar.set(name, value);
    }
    this.#jar.set(u.host, jar);
    return res;
  }
}

function decodeEntities(s: string): string {
  return s
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

export function parseForm(html: string, base: string): { action: string; fields: Record<string, string> } | undefined {
  const action = /<form[^>]*action="([^"]*)"/i.exec(html)?.[1];
  if (action === undefined) return undefined;
  const fields: Record<string, string> = {};
  for (const m of html.matchAll(/<input[^>]*type="hidden"[^>]*>/gi)) {
    const name = /name="([^"]*)"/.exec(m[0])?.[1];
    const value = /value="([^"]*)"/.exec(m[0])?.[1] ?? '';
    if (name !== undefined) fields[decodeEntities(name)] = decodeEntities(value);
  }
  return { action: new URL(decodeEntities(action), base).href, fields };
}

/** An in-memory OAuthClientProvider for the SDK's own client-side flow: it only keeps what the SDK hands it. */
export class MemoryOAuthProvider implements OAuthClientProvider {
  info: OAuthClientInformationMixed | undefined;
  saved: OAuthTokens | undefined;
  verifier = '';
  authorizationUrl: URL | undefined;

  constructor(
    readonly redirectUrl: string,
    private readonly clientName: string,
    private readonly stateValue: string,
  ) {}

  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: this.clientName,
      redirect_uris: [this.redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  state(): string {
    return this.stateValue;
  }
  clientInformation(): OAuthClientInformationMixed | undefined {
    return this.info;
  }
  saveClientInformation(info: OAuthClientInformationMixed): void {
    this.info = info;
  }
  tokens(): OAuthTokens | undefined {
    return this.saved;
  }
  saveTokens(tokens: OAuthTokens): void {
    this.saved = tokens;
  }
  redirectToAuthorization(url: URL): void {
    this.authorizationUrl = url;
  }
  saveCodeVerifier(v: string): void {
    this.verifier = v;
  }
  codeVerifier(): string {
    return this.verifier;
  }
}
