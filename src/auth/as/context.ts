/**
 * Everything the authorization server's endpoints share, built and checked once when the plugin is
 * registered (misuse fails there, never at request time — docs/style.md habits 2 and 5).
 */
import type { FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { BuiltinAsConfig, GatehouseConfig } from '../../config/types.js';
import type { AsStore, StoredClient } from '../../stores/as/as-store.js';
import type { CertIdentity } from '../authenticator.js';
import { ClientMetadataResolver, looksLikeUrl } from './client-metadata-document.js';
import { loadMachineClients, type MachineClient } from './client-auth.js';
import { IdpClient } from './idp.js';
import { loadSigningKeys, type SigningKeys } from './keys.js';
import { isLoopbackHost } from './redirect-uri.js';
import { createSafeJsonFetcher, type SafeFetcher } from './safe-fetch.js';

export interface AuthorizationServerOptions {
  config: GatehouseConfig;
  as: BuiltinAsConfig;
  store: AsStore;
  logger: Logger;
  /** Epoch milliseconds (tests freeze it). */
  now?: () => number;
  /** Replaces the SSRF-guarded fetch of client ID metadata documents. */
  fetchClientMetadata?: SafeFetcher;
  /** The request's client certificate (TLS or trusted-proxy header), for RFC 8705 `tls_client_auth`. */
  clientCertOf?: (request: FastifyRequest) => CertIdentity | undefined;
  /**
   * Switches that weaken security, for tests and local development only.
   * - `allowLoopbackClientMetadata`: metadata documents may be served from loopback addresses, over plain http.
   * - `allowInsecureIdp`: the corporate IdP may be reached over plain http — only when its host is loopback.
   */
  unsafe?: { readonly allowLoopbackClientMetadata?: boolean; readonly allowInsecureIdp?: boolean };
}

export interface AsTtls {
  readonly code: number;
  readonly access: number;
  readonly refresh: number;
  /** Used-code tombstones: long enough to revoke what a stolen code produced. */
  readonly codeTombstone: number;
  readonly pendingLogin: number;
  readonly pendingConsent: number;
  readonly consent: number;
  readonly registration: number;
}

export interface AsEndpoints {
  readonly authorize: string;
  readonly callback: string;
  readonly consent: string;
  readonly token: string;
  readonly revoke: string;
  readonly register: string;
  readonly jwks: string;
}

export interface AsContext {
  readonly issuer: string;
  /** The issuer's path ('' for a bare origin); every route lives under it. */
  readonly prefix: string;
  /** Absolute URLs. */
  readonly endpoints: AsEndpoints;
  /** Route paths (prefix included). */
  readonly paths: AsEndpoints;
  readonly resource: string;
  readonly scopesSupported: readonly string[];
  readonly groupsClaim: string;
  readonly as: BuiltinAsConfig;
  readonly keys: SigningKeys;
  readonly store: AsStore;
  readonly logger: Logger;
  readonly now: () => number;
  readonly idp: IdpClient;
  readonly resolver: ClientMetadataResolver | undefined;
  readonly machineClients: ReadonlyMap<string, MachineClient>;
  readonly clientCertOf: (request: FastifyRequest) => CertIdentity | undefined;
  /** https issuer: logins are bound to the browser with a `__Host-` cookie (see plugin.ts). */
  readonly bindBrowser: boolean;
  readonly ttl: AsTtls;
  findPublicClient(clientId: string): Promise<StoredClient | undefined>;
}

const DAY = 24 * 60 * 60;
const RESERVED_CLAIMS = new Set(['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'client_id', 'scope', 'cnf']);

export function nowSeconds(ctx: Pick<AsContext, 'now'>): number {
  return Math.floor(ctx.now() / 1000);
}

export async function buildContext(opts: AuthorizationServerOptions): Promise<AsContext> {
  const { as, config } = opts;
  const issuerUrl = checkIssuer(as.issuer);
  const unsafe = opts.unsafe ?? {};

  const idpUrl = parseUrl(as.idp.issuer, 'auth.builtin.idp.issuer');
  if (
    idpUrl.protocol !== 'https:' &&
    !(idpUrl.protocol === 'http:' && isLoopbackHost(idpUrl.hostname) && unsafe.allowInsecureIdp === true)
  ) {
    throw new TypeError(
      'auth.builtin.idp.issuer must be https (plain http only on loopback with unsafe.allowInsecureIdp)',
    );
  }
  checkInteger(as.codeTtlSeconds, 1, 60, 'codeTtlSeconds');
  checkInteger(as.accessTokenTtlSeconds, 1, DAY, 'accessTokenTtlSeconds');
  checkInteger(as.refreshTokenTtlSeconds, 1, 365 * DAY, 'refreshTokenTtlSeconds');
  if (config.auth.resource === '')
    throw new TypeError('auth.resource must be set for the built-in authorization server');
  if (RESERVED_CLAIMS.has(config.auth.claims.groups))
    throw new TypeError(`auth.claims.groups must not name the registered claim "${config.auth.claims.groups}"`);
  if (as.registration.initialAccessToken !== undefined && as.registration.initialAccessToken.reveal().length < 16) {
    throw new TypeError('auth.builtin.registration.initialAccessToken must be at least 16 characters');
  }
  const unknownScopes = [...as.scopeMapping.flatMap((m) => m.scopes), ...as.clients.flatMap((c) => c.scopes)].filter(
    (s) => !config.auth.scopesSupported.includes(s),
  );
  if (unknownScopes.length > 0)
    opts.logger.warn(
      { scopes: [...new Set(unknownScopes)] },
      'built-in AS: scopes in scopeMapping/clients are not in auth.scopesSupported',
    );
  if (issuerUrl.protocol === 'http:')
    opts.logger.warn({ issuer: as.issuer }, 'built-in AS on plain http: loopback development only');

  const keys = await loadSigningKeys(as.signingKeys);
  const machineClients = loadMachineClients(as.clients);
  const now = opts.now ?? Date.now;
  const prefix = issuerUrl.pathname === '/' ? '' : issuerUrl.pathname;
  const paths: AsEndpoints = {
    authorize: `${prefix}/authorize`,
    callback: `${prefix}/authorize/callback`,
    consent: `${prefix}/consent`,
    token: `${prefix}/token`,
    revoke: `${prefix}/revoke`,
    register: `${prefix}/register`,
    jwks: `${prefix}/jwks`,
  };
  const origin = issuerUrl.origin;
  const endpoints = Object.fromEntries(
    Object.entries(paths).map(([k, p]) => [k, `${origin}${p}`]),
  ) as unknown as AsEndpoints;

  const idp = new IdpClient({
    issuer: as.idp.issuer,
    clientId: as.idp.clientId,
    ...(as.idp.clientSecret !== undefined ? { clientSecret: as.idp.clientSecret } : {}),
    scopes: as.idp.scopes,
    redirectUri: endpoints.callback,
    allowInsecureRequests: idpUrl.protocol === 'http:',
    now,
  });

  const allowLoopback = unsafe.allowLoopbackClientMetadata === true;
  const resolver = as.clientIdMetadataDocuments
    ? new ClientMetadataResolver({
        fetch:
          opts.fetchClientMetadata ?? createSafeJsonFetcher(allowLoopback ? { unsafe: { allowLoopback: true } } : {}),
        scopesSupported: config.auth.scopesSupported,
        now,
        allowHttpLoopback: allowLoopback,
      })
    : undefined;

  const store = opts.store;
  const logger = opts.logger;
  const ttl: AsTtls = {
    code: as.codeTtlSeconds,
    access: as.accessTokenTtlSeconds,
    refresh: as.refreshTokenTtlSeconds,
    codeTombstone: Math.max(as.accessTokenTtlSeconds, Math.min(as.refreshTokenTtlSeconds, DAY)),
    pendingLogin: 600,
    pendingConsent: 600,
    consent: 30 * DAY,
    registration: 90 * DAY,
  };

  return Object.freeze({
    issuer: as.issuer,
    prefix,
    endpoints: Object.freeze(endpoints),
    paths: Object.freeze(paths),
    resource: config.auth.resource,
    scopesSupported: config.auth.scopesSupported,
    groupsClaim: config.auth.claims.groups,
    as,
    keys,
    store,
    logger,
    now,
    idp,
    resolver,
    machineClients,
    clientCertOf: opts.clientCertOf ?? (() => undefined),
    bindBrowser: issuerUrl.protocol === 'https:',
    ttl,
    async findPublicClient(clientId: string): Promise<StoredClient | undefined> {
      if (clientId.length > 2048) return undefined;
      if (looksLikeUrl(clientId)) {
        if (resolver === undefined) return undefined;
        const r = await resolver.resolve(clientId);
        if (!r.ok)
          logger.warn(
            { event: 'as.client_metadata_refused', clientId: clientId.slice(0, 200), detail: r.detail },
            'client ID metadata document refused',
          );
        return r.ok ? r.client : undefined;
      }
      if (machineClients.has(clientId)) return undefined;
      return store.findClient(clientId);
    },
  });
}

function parseUrl(value: string, name: string): URL {
  try {
    return new URL(value);
  } catch {
    throw new TypeError(`${name} must be an absolute URL`);
  }
}

/** RFC 8414 §2: https, no query, no fragment. Plain http only on a loopback host (development and tests). */
function checkIssuer(issuer: string): URL {
  const url = parseUrl(issuer, 'auth.builtin.issuer');
  if (url.search !== '' || url.hash !== '' || issuer.includes('?') || issuer.includes('#'))
    throw new TypeError('auth.builtin.issuer must not have a query or fragment');
  if (issuer.endsWith('/')) throw new TypeError('auth.builtin.issuer must not end with "/"');
  if (url.username !== '' || url.password !== '') throw new TypeError('auth.builtin.issuer must not carry credentials');
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    throw new TypeError('auth.builtin.issuer must be https (plain http only on a loopback host)');
  }
  return url;
}

function checkInteger(value: number, min: number, max: number, name: string): void {
  if (!Number.isSafeInteger(value) || value < min || value > max)
    throw new TypeError(`auth.builtin.${name} must be an integer from ${min} to ${max}`);
}
