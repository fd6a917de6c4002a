/** `auth.builtin`: the built-in authorization server's keys, lifetimes, IdP, machine clients and store. */
import path from 'node:path';
import { isLoopbackHost } from './addresses.js';
import { checkAuthUrl } from './auth-urls.js';
import { CONFIG_DEFAULTS } from './defaults.js';
import { checkJwksFile, checkSigningJwk } from './key-material.js';
import { checkRedisUrl } from './limits-config.js';
import { report, resolveSecret, type LoadContext } from './load-context.js';
import { credentialKind, INLINE_SECRET_MESSAGE, type SecretRef } from './secrets.js';
import type { BuiltinAsConfig, SecretValue } from './types.js';

/** `auth.builtin` as written (the schema has checked the shapes and ranges). */
export interface RawBuiltin {
  issuer?: string;
  signingKeys: SecretRef[];
  accessTokenTtlSeconds?: number;
  refreshTokenTtlSeconds?: number;
  codeTtlSeconds?: number;
  registration?: { enabled?: boolean; initialAccessToken?: SecretRef };
  clientIdMetadataDocuments?: boolean;
  idp: { issuer: string; clientId: string; clientSecret?: SecretRef; scopes?: string[] };
  scopeMapping?: { claim: string; value: string; scopes: string[] }[];
  clients?: {
    clientId: string;
    auth: 'private_key_jwt' | 'tls_client_auth';
    jwksFile?: string;
    tlsSubject?: string;
    scopes: string[];
  }[];
  store?: { kind: 'memory' | 'redis'; url?: string | SecretRef; keyPrefix?: string };
}

/**
 * `auth.builtin`. Everything the authorization server would refuse at start is reported here, with the file
 * line: key material (never quoted), lifetimes, the IdP, machine clients and the store.
 */
export function normaliseBuiltin(
  raw: RawBuiltin,
  resource: string,
  scopesSupported: readonly string[],
  ctx: LoadContext,
): BuiltinAsConfig {
  const at = '/auth/builtin';
  const d = CONFIG_DEFAULTS.builtin;

  // RFC 8414 §2: compared exactly by clients, so it must be written as URL parsers normalise it.
  let issuer = '';
  let issuerUrl: URL | undefined;
  if (raw.issuer !== undefined) {
    issuerUrl = checkAuthUrl(raw.issuer, `${at}/issuer`, 'issuer', ctx);
    if (issuerUrl !== undefined) {
      const canonical = `${issuerUrl.origin}${issuerUrl.pathname.replace(/\/+$/, '')}`;
      if (canonical !== raw.issuer)
        report(
          ctx,
          `${at}/issuer`,
          `must be written exactly as "${canonical}" (lower-case scheme and host, no default port, no trailing "/")`,
        );
    }
    issuer = raw.issuer;
  } else if (resource !== '') {
    // Checked against the listener in checkAuthAgainstHost (https unless loopback).
    issuerUrl = new URL(resource);
    issuer = issuerUrl.origin;
  }

  const signingKeys: SecretValue[] = [];
  const kids = new Map<string, number>();
  raw.signingKeys.forEach((ref, i) => {
    const pointer = `${at}/signingKeys/${i}`;
    const key = resolveSecret(ref, pointer, ctx);
    if (key === undefined) return;
    const kid = checkSigningJwk(key, pointer, ctx);
    if (kid !== undefined) {
      const first = kids.get(kid);
      if (first !== undefined)
        report(
          ctx,
          pointer,
          `has the same key id as ${at}/signingKeys/${first}; every signing key needs its own "kid" (and key)`,
        );
      else kids.set(kid, i);
    }
    signingKeys.push(key);
  });

  const registrationRaw = raw.registration ?? {};
  const initialAccessToken =
    registrationRaw.initialAccessToken === undefined
      ? undefined
      : resolveSecret(registrationRaw.initialAccessToken, `${at}/registration/initialAccessToken`, ctx);
  if (initialAccessToken !== undefined) {
    const token = initialAccessToken.reveal();
    // It is compared with a Bearer header: header-safe, and long enough not to be guessed.
    if (token.length < 16)
      report(
        ctx,
        `${at}/registration/initialAccessToken`,
        `the secret from ${initialAccessToken.source} is shorter than 16 characters`,
      );
    else if (!/^[\x21-\x7e]+$/.test(token))
      report(
        ctx,
        `${at}/registration/initialAccessToken`,
        `the secret from ${initialAccessToken.source} must be printable ASCII without spaces (it is sent as a Bearer token)`,
      );
  }

  const idpUrl = checkAuthUrl(raw.idp.issuer, `${at}/idp/issuer`, 'issuer', ctx);
  // Plain http to a loopback IdP is for a gateway that is itself a plain-http loopback development setup.
  const localDevelopment =
    issuerUrl !== undefined &&
    issuerUrl.protocol === 'http:' &&
    isLoopbackHost(issuerUrl.hostname.replace(/^\[|\]$/g, ''));
  if (idpUrl !== undefined && idpUrl.protocol === 'http:' && !localDevelopment) {
    report(
      ctx,
      `${at}/idp/issuer`,
      'must use https: (a plain-http IdP on a loopback host is accepted only while auth.builtin.issuer is plain http on loopback too, for local development)',
    );
  }
  const idpSecret =
    raw.idp.clientSecret === undefined ? undefined : resolveSecret(raw.idp.clientSecret, `${at}/idp/clientSecret`, ctx);
  if (idpSecret !== undefined && /[^\t\x20-\x7e\x80-\xff]/.test(idpSecret.reveal())) {
    report(
      ctx,
      `${at}/idp/clientSecret`,
      `the secret from ${idpSecret.source} contains line breaks or control characters`,
    );
  }
  const idpScopes = raw.idp.scopes ?? CONFIG_DEFAULTS.builtinIdp.scopes;
  if (!idpScopes.includes('openid'))
    report(ctx, `${at}/idp/scopes`, 'must include "openid" (the login is OpenID Connect)');

  const scopeMapping = raw.scopeMapping ?? d.scopeMapping;
  scopeMapping.forEach((m, i) =>
    m.scopes.forEach((scope, j) => {
      // Clients may only request advertised scopes, so an unadvertised one could never be granted.
      if (!scopesSupported.includes(scope))
        report(
          ctx,
          `${at}/scopeMapping/${i}/scopes/${j}`,
          `scope "${scope}" is missing from auth.scopesSupported, so no client could ever request it`,
        );
    }),
  );

  const clientIds = new Map<string, number>();
  const clients = (raw.clients ?? d.clients).map((c, i) => {
    const pointer = `${at}/clients/${i}`;
    const first = clientIds.get(c.clientId);
    if (first !== undefined)
      report(ctx, `${pointer}/clientId`, `duplicate clientId "${c.clientId}" (also used by ${at}/clients/${first})`);
    else clientIds.set(c.clientId, i);
    // URL-shaped ids are client ID metadata documents; a pre-registered client must not look like one.
    if (/^[a-z][a-z0-9+.-]*:/i.test(c.clientId))
      report(ctx, `${pointer}/clientId`, 'must not be URL-shaped (such client ids name client ID metadata documents)');
    const jwksFile = c.jwksFile === undefined ? undefined : path.resolve(ctx.secrets.baseDir, c.jwksFile);
    if (jwksFile !== undefined) checkJwksFile(jwksFile, `${pointer}/jwksFile`, ctx);
    return {
      clientId: c.clientId,
      auth: c.auth,
      ...(jwksFile !== undefined ? { jwksFile } : {}),
      ...(c.tlsSubject !== undefined ? { tlsSubject: c.tlsSubject } : {}),
      scopes: c.scopes,
    };
  });

  return {
    issuer,
    signingKeys,
    accessTokenTtlSeconds: raw.accessTokenTtlSeconds ?? d.accessTokenTtlSeconds,
    refreshTokenTtlSeconds: raw.refreshTokenTtlSeconds ?? d.refreshTokenTtlSeconds,
    codeTtlSeconds: raw.codeTtlSeconds ?? d.codeTtlSeconds,
    registration: {
      enabled: registrationRaw.enabled ?? CONFIG_DEFAULTS.builtinRegistration.enabled,
      ...(initialAccessToken !== undefined ? { initialAccessToken } : {}),
    },
    clientIdMetadataDocuments: raw.clientIdMetadataDocuments ?? d.clientIdMetadataDocuments,
    idp: {
      issuer: raw.idp.issuer,
      clientId: raw.idp.clientId,
      ...(idpSecret !== undefined ? { clientSecret: idpSecret } : {}),
      scopes: idpScopes,
    },
    scopeMapping,
    clients,
    store: normaliseStore(raw.store, `${at}/store`, ctx),
  };
}

function normaliseStore(raw: RawBuiltin['store'], pointer: string, ctx: LoadContext): BuiltinAsConfig['store'] {
  if (raw === undefined || raw.kind === 'memory') return CONFIG_DEFAULTS.builtin.store;
  const keyPrefix = raw.keyPrefix ?? CONFIG_DEFAULTS.builtinStore.keyPrefix;
  const rawUrl = raw.url ?? '';
  if (typeof rawUrl === 'string') {
    // A password belongs in a secret reference; a redis URL without one may stay inline.
    if (credentialKind(rawUrl) !== undefined || /^[a-z]+:\/\/[^/@]*@/i.test(rawUrl)) {
      report(ctx, `${pointer}/url`, `${INLINE_SECRET_MESSAGE} (the URL carries credentials)`);
    } else checkRedisUrl(rawUrl, `${pointer}/url`, undefined, (p, m) => report(ctx, p, m));
    return { kind: 'redis', url: rawUrl, keyPrefix };
  }
  const url = resolveSecret(rawUrl, `${pointer}/url`, ctx);
  if (url !== undefined)
    checkRedisUrl(url.reveal(), `${pointer}/url/${'fromEnv' in rawUrl ? 'fromEnv' : 'fromFile'}`, url.source, (p, m) =>
      report(ctx, p, m),
    );
  return { kind: 'redis', url: url ?? '', keyPrefix };
}
