/**
 * Builds per-user OAuth for the upstreams with `credentials.oauth` (called by the composition root, which alone picks
 * the store implementation: this file is wired from app.ts and imports the store factory on its behalf). Grants and
 * registered clients are sealed with `outbound.oauth.keys` (first seals, all open: rotation), tickets and states with
 * keys derived from them under their own label (HKDF), so no key serves two purposes.
 */
import { hkdfSync, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditSink } from '../../audit/audit-sink.js';
import { isLoopbackHost } from '../../config/addresses.js';
import { parseSessionKey } from '../../config/sessions-config.js';
import type { GatehouseConfig, OutboundOAuthConfig } from '../../config/types.js';
import type { GrantStore } from '../../stores/grants/grant-store.js';
import type { Sealer } from './sealer.js';
import { UserOAuthFlows } from './flows.js';
import { UserOAuthProvider, type UserOAuthEvent } from './user-oauth.js';

export interface UserOAuth {
  readonly providers: ReadonlyMap<string, UserOAuthProvider>;
  readonly flows: UserOAuthFlows;
  readonly store: GrantStore;
  readonly secureCookies: () => boolean;
}

export interface UserOAuthParts {
  readonly config: GatehouseConfig;
  readonly store: GrantStore;
  /** Builds a sealer from keys and a key-id label (the composition root passes mcp/sealed-json.ts's SealedJson). */
  readonly sealer: (keys: readonly Uint8Array[], label: string) => Sealer;
  readonly audit?: AuditSink;
  readonly logger?: Logger;
  readonly now?: () => number;
}

const DEFAULT_OAUTH: OutboundOAuthConfig = {
  store: 'memory',
  keys: [],
  consentTtlSeconds: 600,
  memoryMaxEntries: 100_000,
};

/** The grant keys of the config, or one random key for this process (memory store only: the loader insists). */
export function grantKeys(oauth: OutboundOAuthConfig): Uint8Array[] {
  if (oauth.keys.length === 0) return [new Uint8Array(randomBytes(32))];
  return oauth.keys.map((k) => {
    const parsed = parseSessionKey(k.reveal());
    if (typeof parsed === 'string') throw new TypeError(`grant key ${k.source} ${parsed}`);
    return parsed;
  });
}

/** The public base the consent and callback URLs are built on. */
export function publicBaseOf(config: GatehouseConfig): string {
  const oauth = config.outbound?.oauth;
  if (oauth?.callbackBaseUrl !== undefined) return oauth.callbackBaseUrl;
  return new URL(config.auth.resource).origin;
}

export function buildUserOAuth(parts: UserOAuthParts): UserOAuth | undefined {
  const { config, store } = parts;
  const oauth = config.outbound?.oauth ?? DEFAULT_OAUTH;
  const keys = grantKeys(oauth);
  const grantBox = parts.sealer(keys, 'gatehouse upstream grant key id');
  const flowKeys = keys.map(
    (k) => new Uint8Array(hkdfSync('sha256', k, new Uint8Array(0), 'gatehouse upstream consent flow v1', 32)),
  );
  const flowBox = parts.sealer(flowKeys, 'gatehouse upstream consent key id');
  const onEvent = (e: UserOAuthEvent): void => {
    const { type, upstream, ...rest } = e;
    parts.audit?.record({
      type: 'upstream.grant',
      upstream,
      reason: type,
      ...('reason' in rest ? { detail: rest.reason } : {}),
      ...('upstreamSubject' in rest && rest.upstreamSubject !== undefined
        ? { upstreamSubject: rest.upstreamSubject }
        : {}),
      ...('count' in rest ? { count: rest.count, detail: `by ${rest.by}` } : {}),
    });
    parts.logger?.info({ upstream, event: type }, 'upstream grant');
  };
  const providers = new Map<string, UserOAuthProvider>();
  for (const u of config.upstreams) {
    if (u.transport === 'stdio' || u.credentials?.oauth === undefined) continue;
    const host = new URL(u.url).hostname.replace(/^\[|\]$/g, '');
    providers.set(
      u.name,
      new UserOAuthProvider({
        upstream: u.name,
        upstreamUrl: u.url,
        config: u.credentials.oauth,
        store,
        grantBox,
        flowBox,
        publicBase: () => publicBaseOf(config),
        consentTtlSeconds: oauth.consentTtlSeconds,
        // Plain http to the upstream's metadata and authorization server only on loopback (the loader's rule).
        allowInsecure: isLoopbackHost(host),
        ...(parts.now !== undefined ? { now: parts.now } : {}),
        onEvent,
      }),
    );
  }
  if (providers.size === 0) return undefined;
  return {
    providers,
    flows: new UserOAuthFlows(providers, flowBox, parts.now),
    store,
    secureCookies: () => publicBaseOf(config).startsWith('https:'),
  };
}
