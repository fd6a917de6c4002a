/** The `auth` section: the mode, the resource, scopes, and the jwt, introspection and dev blocks. */
import path from 'node:path';
import { canonicalResource, checkAuthUrl, defaultResource } from './auth-urls.js';
import { normaliseBuiltin, type RawBuiltin } from './builtin-as-config.js';
import { CONFIG_DEFAULTS } from './defaults.js';
import { defaultRequiredClaims } from './jwt-config.js';
import { checkJwksFile } from './key-material.js';
import { isDirectory, report, resolveSecret, type LoadContext } from './load-context.js';
import type { SecretRef } from './secrets.js';
import type { AuthConfig, DevAuthConfig, IntrospectionConfig, JwtConfig, ServerConfig } from './types.js';

/** `auth` as written (the schema has checked the shapes, and which blocks each mode allows). */
export interface RawAuth {
  mode?: AuthConfig['mode'];
  resource?: string;
  authorizationServers?: string[];
  scopesSupported?: string[];
  requiredScopes?: string[];
  algorithms?: string[];
  clockSkewSeconds?: number;
  requireTokenType?: boolean;
  claims?: Partial<AuthConfig['claims']>;
  jwt?: { issuer: string; jwksUri?: string; jwksFile?: string; requiredClaims?: string[]; maxTokenAgeSeconds?: number };
  introspection?: {
    endpoint: string;
    issuer: string;
    clientId: string;
    clientSecret: SecretRef;
    cacheSeconds?: number;
    cacheMaxEntries?: number;
  };
  dev?: { keyFile?: string; issuer?: string };
  builtin?: RawBuiltin;
}

export function normaliseAuth(raw: RawAuth, server: ServerConfig | undefined, ctx: LoadContext): AuthConfig {
  const d = CONFIG_DEFAULTS.auth;
  const mode = raw.mode ?? d.mode;
  // The schema refuses `jwt`/`introspection` outside mode oauth and `dev` outside mode dev.
  const requireTokenType = raw.requireTokenType ?? d.requireTokenType;
  const jwt = raw.jwt === undefined ? undefined : normaliseJwt(raw.jwt, requireTokenType, ctx);
  const introspection = raw.introspection === undefined ? undefined : normaliseIntrospection(raw.introspection, ctx);
  const dev = mode === 'dev' ? normaliseDev(raw.dev ?? {}, ctx) : undefined;
  if (mode === 'oauth' && raw.jwt === undefined && raw.introspection === undefined) {
    report(
      ctx,
      '/auth/mode',
      'auth.mode "oauth" needs a "jwt" block (JWT access tokens), an "introspection" block (opaque tokens), or both',
    );
  }

  let resource = '';
  if (raw.resource !== undefined) {
    const url = checkAuthUrl(raw.resource, '/auth/resource', 'resource', ctx);
    if (url !== undefined) resource = canonicalResource(url);
  } else if (server !== undefined && !ctx.problems.some((p) => p.path === '/server/host')) {
    // (A host already reported, e.g. "1:2:3", would make no URL.)
    resource = defaultResource(server);
  }

  // The schema refuses `builtin` outside mode builtin.
  if (mode === 'builtin' && raw.builtin === undefined) {
    report(
      ctx,
      '/auth/mode',
      'auth.mode "builtin" needs a "builtin" block (at least signingKeys and idp: the built-in authorization server\'s keys and the OpenID provider users log in at)',
    );
  }
  const builtin =
    mode === 'builtin' && raw.builtin !== undefined
      ? normaliseBuiltin(raw.builtin, resource, raw.scopesSupported ?? d.scopesSupported, ctx)
      : undefined;

  raw.authorizationServers?.forEach((issuer, i) =>
    checkAuthUrl(issuer, `/auth/authorizationServers/${i}`, 'issuer', ctx),
  );
  const authorizationServers =
    raw.authorizationServers ??
    // Dev tokens come from `gatehouse token`, not from an authorization server a client could discover: advertise
    // none (RFC 9728 expects issuer URLs; `urn:gatehouse:dev` made mcp-remote's discovery crash).
    (mode === 'dev'
      ? []
      : mode === 'builtin'
        ? builtin !== undefined && builtin.issuer !== ''
          ? [builtin.issuer]
          : []
        : [...new Set([raw.jwt?.issuer, raw.introspection?.issuer].filter((i): i is string => i !== undefined))]);

  const scopesSupported = raw.scopesSupported ?? d.scopesSupported;
  const requiredScopes = raw.requiredScopes ?? d.requiredScopes;
  if (scopesSupported.length > 0) {
    // Clients request what the metadata advertises; a required scope missing there would refuse every token.
    requiredScopes.forEach((scope, i) => {
      if (!scopesSupported.includes(scope))
        report(ctx, `/auth/requiredScopes/${i}`, `scope "${scope}" is required but missing from auth.scopesSupported`);
    });
  }

  return {
    mode,
    resource,
    authorizationServers,
    scopesSupported,
    requiredScopes,
    algorithms: raw.algorithms ?? d.algorithms,
    clockSkewSeconds: raw.clockSkewSeconds ?? d.clockSkewSeconds,
    requireTokenType: raw.requireTokenType ?? d.requireTokenType,
    claims: { ...d.claims, ...raw.claims },
    ...(jwt !== undefined ? { jwt } : {}),
    ...(introspection !== undefined ? { introspection } : {}),
    ...(dev !== undefined ? { dev } : {}),
    ...(builtin !== undefined ? { builtin } : {}),
  };
}

function normaliseJwt(raw: NonNullable<RawAuth['jwt']>, requireTokenType: boolean, ctx: LoadContext): JwtConfig {
  const at = '/auth/jwt';
  checkAuthUrl(raw.issuer, `${at}/issuer`, 'issuer', ctx);
  if ((raw.jwksUri === undefined) === (raw.jwksFile === undefined)) {
    const pointer = raw.jwksFile !== undefined ? `${at}/jwksFile` : at;
    report(
      ctx,
      pointer,
      'needs exactly one of jwksUri (keys fetched from the issuer) and jwksFile (keys from a local file)',
      raw.jwksFile !== undefined ? 'key' : 'value',
    );
  }
  if (raw.jwksUri !== undefined) checkAuthUrl(raw.jwksUri, `${at}/jwksUri`, 'endpoint', ctx);
  const jwksFile = raw.jwksFile === undefined ? undefined : path.resolve(ctx.secrets.baseDir, raw.jwksFile);
  if (jwksFile !== undefined) checkJwksFile(jwksFile, `${at}/jwksFile`, ctx);
  return {
    issuer: raw.issuer,
    ...(raw.jwksUri !== undefined ? { jwksUri: raw.jwksUri } : {}),
    ...(jwksFile !== undefined ? { jwksFile } : {}),
    requiredClaims: raw.requiredClaims ?? defaultRequiredClaims(requireTokenType),
    ...(raw.maxTokenAgeSeconds !== undefined ? { maxTokenAgeSeconds: raw.maxTokenAgeSeconds } : {}),
  };
}

function normaliseIntrospection(
  raw: NonNullable<RawAuth['introspection']>,
  ctx: LoadContext,
): IntrospectionConfig | undefined {
  const at = '/auth/introspection';
  const d = CONFIG_DEFAULTS.introspection;
  checkAuthUrl(raw.endpoint, `${at}/endpoint`, 'endpoint', ctx);
  checkAuthUrl(raw.issuer, `${at}/issuer`, 'issuer', ctx);
  const clientSecret = resolveSecret(raw.clientSecret, `${at}/clientSecret`, ctx);
  if (clientSecret === undefined) return undefined;
  // It travels in an Authorization header (client_secret_basic).
  if (/[^\t\x20-\x7e\x80-\xff]/.test(clientSecret.reveal())) {
    report(
      ctx,
      `${at}/clientSecret`,
      `the secret from ${clientSecret.source} contains line breaks or control characters`,
    );
  }
  return {
    endpoint: raw.endpoint,
    issuer: raw.issuer,
    clientId: raw.clientId,
    clientSecret,
    cacheSeconds: raw.cacheSeconds ?? d.cacheSeconds,
    cacheMaxEntries: raw.cacheMaxEntries ?? d.cacheMaxEntries,
  };
}

function normaliseDev(raw: NonNullable<RawAuth['dev']>, ctx: LoadContext): DevAuthConfig {
  const d = CONFIG_DEFAULTS.devAuth;
  // The key file need not exist: `gatehouse start` or `gatehouse token` creates it.
  const keyFile = path.resolve(ctx.secrets.baseDir, raw.keyFile ?? d.keyFile);
  if (isDirectory(keyFile)) report(ctx, '/auth/dev/keyFile', `${keyFile} is a folder; name the key file inside it`);
  return { keyFile, issuer: raw.issuer ?? d.issuer };
}
