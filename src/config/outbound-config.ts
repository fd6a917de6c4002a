/**
 * `upstreams[].credentials` (docs/configuration.md "Outbound identity"): per-caller credentials for an HTTP upstream.
 * The schema has checked the shapes; here: secret references resolved, URLs checked (https except on loopback), key
 * material loadable, and what the schema cannot say — stdio upstreams cannot take per-caller credentials.
 */
import { createPrivateKey } from 'node:crypto';
import { canonicalResource, checkAuthUrl } from './auth-urls.js';
import { checkPrivateKey } from './key-material.js';
import { report, resolveSecret, type LoadContext } from './load-context.js';
import { normaliseUpstreamOAuth, type RawUpstreamOAuth } from './outbound-oauth-config.js';
import type { SecretRef } from './secrets.js';
import type {
  IdJagConfig,
  SecretValue,
  TokenEndpointAuthConfig,
  TokenExchangeConfig,
  UpstreamCredentialsConfig,
} from './types.js';

export const TOKEN_TYPE_ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';

type RawClientAuth = NonNullable<RawCredentials['tokenExchange']>['clientAuth'];

/** `credentials` as written. */
export interface RawCredentials {
  oauth?: RawUpstreamOAuth;
  idJag?: {
    idp: { tokenEndpoint?: string; issuer?: string; clientAuth: RawClientAuth };
    authorizationServer: { issuer: string; tokenEndpoint?: string; clientAuth: RawClientAuth };
    resource?: string;
    scope?: string | string[];
    timeoutMs?: number;
    cacheMaxEntries?: number;
    expirySkewSeconds?: number;
  };
  tokenExchange?: {
    tokenEndpoint?: string;
    issuer?: string;
    audience?: string | string[];
    resource?: string | string[];
    scope?: string | string[];
    requestedTokenType?: string;
    clientAuth: {
      method: TokenEndpointAuthConfig['method'];
      clientId: string;
      key?: SecretRef;
      keyId?: string;
      alg?: 'ES256' | 'ES384' | 'RS256' | 'PS256' | 'EdDSA';
      cert?: SecretRef;
      clientSecret?: SecretRef;
    };
    actor?: 'none' | 'self-signed';
    timeoutMs?: number;
    cacheMaxEntries?: number;
    expirySkewSeconds?: number;
  };
}

const list = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

export function normaliseCredentials(
  raw: RawCredentials,
  transport: 'stdio' | 'http' | 'sse',
  pointer: string,
  ctx: LoadContext,
  /** The upstream's url: `credentials.oauth.resource` defaults to it. */
  upstreamUrl = '',
): UpstreamCredentialsConfig | undefined {
  if (transport === 'stdio') {
    report(
      ctx,
      pointer,
      'stdio upstreams cannot take per-user credentials: one child process serves every caller and has no per-request headers; run the server over http to give it each caller’s identity',
      'key',
    );
    return undefined;
  }
  if (raw.oauth !== undefined) {
    const oauth = normaliseUpstreamOAuth(raw.oauth, upstreamUrl, `${pointer}/oauth`, ctx);
    return oauth === undefined ? undefined : { oauth };
  }
  if (raw.idJag !== undefined) {
    const idJag = normaliseIdJag(raw.idJag, upstreamUrl, `${pointer}/idJag`, ctx);
    return idJag === undefined ? undefined : { idJag };
  }
  const te = raw.tokenExchange;
  if (te === undefined) return undefined;
  const at = `${pointer}/tokenExchange`;
  const before = ctx.problems.length;
  if (te.tokenEndpoint === undefined && te.issuer === undefined)
    report(ctx, at, 'needs tokenEndpoint, or issuer to discover it from', 'key');
  if (te.tokenEndpoint !== undefined) checkAuthUrl(te.tokenEndpoint, `${at}/tokenEndpoint`, 'endpoint', ctx);
  if (te.issuer !== undefined) checkAuthUrl(te.issuer, `${at}/issuer`, 'issuer', ctx);
  const audience = list(te.audience);
  const resource = list(te.resource).map((r, i) => {
    const url = checkAuthUrl(r, `${at}/resource${Array.isArray(te.resource) ? `/${i}` : ''}`, 'resource', ctx);
    return url === undefined ? r : canonicalResource(url);
  });
  if (audience.length === 0 && resource.length === 0)
    report(ctx, at, 'needs an audience or a resource: the exchanged token must be for this upstream alone', 'key');
  const scope = te.scope === undefined ? undefined : list(te.scope).join(' ').trim();
  const clientAuth = normaliseClientAuth(te.clientAuth, `${at}/clientAuth`, ctx);
  const actor = te.actor ?? 'none';
  if (actor === 'self-signed' && clientAuth !== undefined && clientAuth.method !== 'private_key_jwt')
    // The actor token is signed with the private_key_jwt key: no other method gives the gateway a signing key.
    report(
      ctx,
      `${at}/actor`,
      'self-signed needs clientAuth.method private_key_jwt (its key signs the actor token)',
      'value',
    );
  if (clientAuth === undefined || ctx.problems.length > before) return undefined;
  const config: TokenExchangeConfig = {
    ...(te.tokenEndpoint !== undefined ? { tokenEndpoint: te.tokenEndpoint } : {}),
    ...(te.issuer !== undefined ? { issuer: te.issuer } : {}),
    audience,
    resource,
    ...(scope !== undefined && scope !== '' ? { scope } : {}),
    requestedTokenType: te.requestedTokenType ?? TOKEN_TYPE_ACCESS_TOKEN,
    clientAuth,
    actor,
    timeoutMs: te.timeoutMs ?? 5000,
    cacheMaxEntries: te.cacheMaxEntries ?? 10_000,
    expirySkewSeconds: te.expirySkewSeconds ?? 30,
  };
  return { tokenExchange: config };
}

/** `credentials.idJag`: the IdP and the upstream's AS, each with the gateway's client; the resource defaults to the url. */
function normaliseIdJag(
  raw: NonNullable<RawCredentials['idJag']>,
  upstreamUrl: string,
  at: string,
  ctx: LoadContext,
): IdJagConfig | undefined {
  const before = ctx.problems.length;
  const { idp, authorizationServer: as } = raw;
  if (idp.tokenEndpoint === undefined && idp.issuer === undefined)
    report(ctx, `${at}/idp`, 'needs tokenEndpoint, or issuer to discover it from', 'key');
  if (idp.tokenEndpoint !== undefined) checkAuthUrl(idp.tokenEndpoint, `${at}/idp/tokenEndpoint`, 'endpoint', ctx);
  if (idp.issuer !== undefined) checkAuthUrl(idp.issuer, `${at}/idp/issuer`, 'issuer', ctx);
  // The ID-JAG's `audience` is the AS's issuer (extension §4), so the issuer is required even with a token endpoint.
  checkAuthUrl(as.issuer, `${at}/authorizationServer/issuer`, 'issuer', ctx);
  if (as.tokenEndpoint !== undefined)
    checkAuthUrl(as.tokenEndpoint, `${at}/authorizationServer/tokenEndpoint`, 'endpoint', ctx);
  const rawResource = raw.resource ?? upstreamUrl;
  const url = checkAuthUrl(rawResource, `${at}/resource`, 'resource', ctx);
  const resource = url === undefined ? rawResource : canonicalResource(url);
  const scope = raw.scope === undefined ? undefined : list(raw.scope).join(' ').trim();
  const idpAuth = normaliseClientAuth(idp.clientAuth, `${at}/idp/clientAuth`, ctx);
  const asAuth = normaliseClientAuth(as.clientAuth, `${at}/authorizationServer/clientAuth`, ctx);
  if (idpAuth === undefined || asAuth === undefined || ctx.problems.length > before) return undefined;
  return {
    idp: {
      ...(idp.tokenEndpoint !== undefined ? { tokenEndpoint: idp.tokenEndpoint } : {}),
      ...(idp.issuer !== undefined ? { issuer: idp.issuer } : {}),
      clientAuth: idpAuth,
    },
    authorizationServer: {
      issuer: as.issuer,
      ...(as.tokenEndpoint !== undefined ? { tokenEndpoint: as.tokenEndpoint } : {}),
      clientAuth: asAuth,
    },
    resource,
    ...(scope !== undefined && scope !== '' ? { scope } : {}),
    timeoutMs: raw.timeoutMs ?? 5000,
    cacheMaxEntries: raw.cacheMaxEntries ?? 10_000,
    expirySkewSeconds: raw.expirySkewSeconds ?? 30,
  };
}

function normaliseClientAuth(
  raw: RawClientAuth,
  pointer: string,
  ctx: LoadContext,
): TokenEndpointAuthConfig | undefined {
  const secret = (ref: SecretRef | undefined, key: string): SecretValue | undefined =>
    ref === undefined ? undefined : resolveSecret(ref, `${pointer}/${key}`, ctx);
  switch (raw.method) {
    case 'private_key_jwt': {
      const key = secret(raw.key, 'key');
      if (key === undefined) return undefined;
      if (!checkAssertionKey(key, `${pointer}/key`, ctx)) return undefined;
      return {
        method: 'private_key_jwt',
        clientId: raw.clientId,
        key,
        ...(raw.keyId !== undefined ? { keyId: raw.keyId } : {}),
        ...(raw.alg !== undefined ? { alg: raw.alg } : {}),
      };
    }
    case 'tls_client_auth': {
      const cert = secret(raw.cert, 'cert');
      const key = secret(raw.key, 'key');
      if (cert === undefined || key === undefined) return undefined;
      checkPrivateKey(key, `${pointer}/key`, ctx);
      if (!/-----BEGIN CERTIFICATE-----/.test(cert.reveal()))
        report(ctx, `${pointer}/cert`, `the secret from ${cert.source} is not a PEM certificate`);
      return { method: 'tls_client_auth', clientId: raw.clientId, cert, key };
    }
    case 'client_secret_basic': {
      const clientSecret = secret(raw.clientSecret, 'clientSecret');
      if (clientSecret === undefined) return undefined;
      return { method: 'client_secret_basic', clientId: raw.clientId, clientSecret };
    }
  }
}

/** A private_key_jwt key: a private JWK or PEM PKCS#8 that Node can load as an asymmetric private key. */
function checkAssertionKey(key: SecretValue, pointer: string, ctx: LoadContext): boolean {
  const text = key.reveal().trim();
  try {
    const k = text.startsWith('{')
      ? createPrivateKey({ key: JSON.parse(text) as import('node:crypto').JsonWebKey, format: 'jwk' })
      : createPrivateKey(text);
    if (k.type !== 'private') throw new Error('not private');
    return true;
  } catch {
    report(
      ctx,
      `${pointer}/${key.source.startsWith('env:') ? 'fromEnv' : 'fromFile'}`,
      `the secret from ${key.source} is not a private key (a private JWK, or PEM -----BEGIN PRIVATE KEY-----)`,
    );
    return false;
  }
}
