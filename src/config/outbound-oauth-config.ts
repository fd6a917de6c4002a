/**
 * `upstreams[].credentials.oauth` and the top-level `outbound.oauth` (docs/configuration.md "Per-user OAuth to
 * upstreams"). The schema has checked the shapes; here: URLs (https except on loopback), the grant keys (32 bytes
 * each, none twice), a Redis store has a Redis connection and keys (a grant sealed with a per-process key would be
 * unreadable by the next replica or restart), and stdio upstreams cannot take per-user credentials.
 */
import { canonicalResource, checkAuthUrl } from './auth-urls.js';
import { report, resolveSecret, type LoadContext } from './load-context.js';
import type { SecretRef } from './secrets.js';
import { parseSessionKey } from './sessions-config.js';
import type { OutboundConfig, SecretValue, UpstreamOAuthClientConfig, UpstreamOAuthConfig } from './types.js';

export const OUTBOUND_DEFAULTS = {
  outbound: {
    oauth: { store: 'memory' as const, keys: [] as never[], consentTtlSeconds: 600, memoryMaxEntries: 100_000 },
  },
} as const;

/** `credentials.oauth` as written. */
export interface RawUpstreamOAuth {
  resource?: string;
  scopes?: string | string[];
  client?: { registration: 'dynamic' } | { clientId: string; clientAuth?: string; clientSecret?: SecretRef };
  authorizationServer?: string;
  timeoutMs?: number;
}

/** `outbound` as written. */
export interface RawOutbound {
  oauth?: {
    callbackBaseUrl?: string;
    store?: 'memory' | 'redis';
    keys?: SecretRef[];
    consentTtlSeconds?: number;
    memoryMaxEntries?: number;
  };
}

export function normaliseUpstreamOAuth(
  raw: RawUpstreamOAuth,
  upstreamUrl: string,
  pointer: string,
  ctx: LoadContext,
): UpstreamOAuthConfig | undefined {
  const before = ctx.problems.length;
  let resource = raw.resource;
  if (resource !== undefined) {
    const url = checkAuthUrl(resource, `${pointer}/resource`, 'resource', ctx);
    if (url !== undefined) resource = canonicalResource(url);
  } else {
    try {
      resource = canonicalResource(new URL(upstreamUrl));
    } catch {
      return undefined; // the upstream's url has its own problem
    }
  }
  if (raw.authorizationServer !== undefined)
    checkAuthUrl(raw.authorizationServer, `${pointer}/authorizationServer`, 'issuer', ctx);
  const scopes =
    raw.scopes === undefined
      ? []
      : (Array.isArray(raw.scopes) ? raw.scopes : raw.scopes.split(' ')).filter((s) => s !== '');
  const client = normaliseClient(raw.client ?? { registration: 'dynamic' }, `${pointer}/client`, ctx);
  if (client === undefined || ctx.problems.length > before) return undefined;
  return {
    resource,
    scopes,
    client,
    ...(raw.authorizationServer !== undefined ? { authorizationServer: raw.authorizationServer } : {}),
    timeoutMs: raw.timeoutMs ?? 10_000,
  };
}

function normaliseClient(
  raw: NonNullable<RawUpstreamOAuth['client']>,
  pointer: string,
  ctx: LoadContext,
): UpstreamOAuthClientConfig | undefined {
  if ('registration' in raw) return { registration: 'dynamic' };
  const method = raw.clientAuth ?? (raw.clientSecret !== undefined ? 'client_secret_basic' : 'none');
  if (method === 'none') {
    if (raw.clientSecret !== undefined)
      report(ctx, `${pointer}/clientSecret`, 'is given but clientAuth is "none": say which method sends it');
    return { clientId: raw.clientId, clientAuth: 'none' };
  }
  if (method !== 'client_secret_basic' && method !== 'client_secret_post') {
    report(ctx, `${pointer}/clientAuth`, 'must be none, client_secret_basic or client_secret_post');
    return undefined;
  }
  if (raw.clientSecret === undefined) {
    report(ctx, pointer, `clientAuth ${method} needs clientSecret (a secret reference)`, 'key');
    return undefined;
  }
  const secret = resolveSecret(raw.clientSecret, `${pointer}/clientSecret`, ctx);
  if (secret === undefined) return undefined;
  return { clientId: raw.clientId, clientAuth: method, clientSecret: secret };
}

export interface OutboundContext {
  hasRedis: boolean;
  /** Whether any upstream has `credentials.oauth` (keys matter only then). */
  usesOAuth: boolean;
}

export function normaliseOutbound(raw: RawOutbound, ctx: LoadContext, oc: OutboundContext): OutboundConfig {
  const d = OUTBOUND_DEFAULTS.outbound.oauth;
  const o = raw.oauth ?? {};
  const at = '/outbound/oauth';
  if (o.callbackBaseUrl !== undefined) checkAuthUrl(o.callbackBaseUrl, `${at}/callbackBaseUrl`, 'resource', ctx);
  const keys: SecretValue[] = [];
  const seen = new Map<string, number>();
  (o.keys ?? []).forEach((ref, i) => {
    const pointer = `${at}/keys/${i}`;
    const key = resolveSecret(ref, pointer, ctx);
    if (key === undefined) return;
    const parsed = parseSessionKey(key.reveal());
    if (typeof parsed === 'string') return report(ctx, pointer, `grant key ${key.source} ${parsed}`);
    const text = Buffer.from(parsed).toString('base64url');
    const first = seen.get(text);
    if (first !== undefined) report(ctx, pointer, `is the same key as ${at}/keys/${first}`);
    seen.set(text, i);
    keys.push(key);
  });
  const store = o.store ?? d.store;
  if (store === 'redis' && !oc.hasRedis)
    report(ctx, `${at}/store`, 'is "redis" but there is no top-level redis section (redis.url) to connect with');
  if (store === 'redis' && oc.usesOAuth && keys.length === 0)
    report(
      ctx,
      `${at}/keys`,
      'is needed with store "redis": grants sealed with a per-process key could not be opened by another replica or after a restart',
      'key',
    );
  return {
    oauth: {
      ...(o.callbackBaseUrl !== undefined ? { callbackBaseUrl: o.callbackBaseUrl.replace(/\/+$/, '') } : {}),
      store,
      keys,
      consentTtlSeconds: o.consentTtlSeconds ?? d.consentTtlSeconds,
      memoryMaxEntries: o.memoryMaxEntries ?? d.memoryMaxEntries,
    },
  };
}
