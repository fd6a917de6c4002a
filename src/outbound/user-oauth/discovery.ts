/**
 * Where an upstream's authorization server is, and how the gateway is its client: the upstream's RFC 9728 protected
 * resource metadata (named by its 401's `WWW-Authenticate: Bearer resource_metadata=…`, else at the well-known path),
 * the authorization server's RFC 8414 metadata (OpenID discovery as a fallback), and the client — configured, or
 * registered once per upstream by RFC 7591 and kept (sealed) in the grant store so every replica uses the same one.
 */
import * as oauth from 'oauth4webapi';
import type { UpstreamOAuthConfig } from '../../config/types.js';
import type { GrantStore } from '../../stores/grants/grant-store.js';
import type { Sealer } from './sealer.js';

export interface DiscoveryOptions {
  readonly upstream: string;
  /** The upstream's MCP endpoint (probed for its 401 challenge). */
  readonly upstreamUrl: string;
  readonly config: UpstreamOAuthConfig;
  /** http is accepted for loopback hosts only (local development, tests): the loader has checked the URLs. */
  readonly allowInsecure: boolean;
}

/** What a flow needs: the authorization server, the client and how it authenticates. */
export interface OAuthClientContext {
  readonly as: oauth.AuthorizationServer;
  readonly client: oauth.Client;
  readonly auth: oauth.ClientAuth;
  readonly http: { signal: () => AbortSignal; [oauth.allowInsecureRequests]?: boolean };
}

/** `resource_metadata="…"` of a Bearer challenge (RFC 9728 §5.1). */
export function resourceMetadataOf(wwwAuthenticate: string | null): string | undefined {
  if (wwwAuthenticate === null) return undefined;
  return /(?:^|[\s,])resource_metadata="([^"]+)"/i.exec(wwwAuthenticate)?.[1];
}

export class UpstreamOAuthDiscovery {
  #context: Promise<OAuthClientContext> | undefined;

  constructor(
    private readonly opts: DiscoveryOptions,
    private readonly store: GrantStore,
    private readonly box: Sealer,
    private readonly redirectUri: () => string,
  ) {}

  /** Discovered once and kept; a failure is not kept, so the next call tries again. */
  context(): Promise<OAuthClientContext> {
    this.#context ??= this.#discover().catch((err: unknown) => {
      this.#context = undefined;
      throw err;
    });
    return this.#context;
  }

  /** Forgets the client (the authorization server no longer knows it: `invalid_client`). */
  async forgetClient(): Promise<void> {
    this.#context = undefined;
    if ('registration' in this.opts.config.client) await this.store.deleteClient(this.opts.upstream);
  }

  #http(): OAuthClientContext['http'] {
    const timeout = this.opts.config.timeoutMs;
    return {
      signal: () => AbortSignal.timeout(timeout),
      ...(this.opts.allowInsecure ? { [oauth.allowInsecureRequests]: true } : {}),
    };
  }

  async #discover(): Promise<OAuthClientContext> {
    const http = this.#http();
    const issuer = this.opts.config.authorizationServer ?? (await this.#issuerFromResource(http));
    const as = await this.#authorizationServer(new URL(issuer), http);
    if (as.code_challenge_methods_supported?.includes('S256') === false)
      throw new Error(`${issuer} does not offer PKCE S256`);
    const { client, auth } = await this.#client(as, http);
    return { as, client, auth, http };
  }

  async #issuerFromResource(http: OAuthClientContext['http']): Promise<string> {
    // The upstream's challenge names its metadata (MCP authorization §Protected Resource Metadata Discovery).
    let metadataUrl: string | undefined;
    try {
      const res = await fetch(this.opts.upstreamUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: '{"jsonrpc":"2.0","id":0,"method":"ping"}',
        redirect: 'manual',
        signal: http.signal(),
      });
      await res.body?.cancel();
      if (res.status === 401) metadataUrl = resourceMetadataOf(res.headers.get('www-authenticate'));
    } catch {
      // The well-known path below is the fallback.
    }
    const resource = new URL(this.opts.config.resource);
    const response =
      metadataUrl !== undefined
        ? await fetch(metadataUrl, {
            headers: { accept: 'application/json' },
            redirect: 'manual',
            signal: http.signal(),
          })
        : await oauth.resourceDiscoveryRequest(resource, http);
    const metadata = await oauth.processResourceDiscoveryResponse(resource, response);
    const issuer = metadata.authorization_servers?.[0];
    if (issuer === undefined)
      throw new Error(`${resource.href}: protected resource metadata names no authorization server`);
    return issuer;
  }

  async #authorizationServer(issuer: URL, http: OAuthClientContext['http']): Promise<oauth.AuthorizationServer> {
    try {
      return await oauth.processDiscoveryResponse(
        issuer,
        await oauth.discoveryRequest(issuer, { ...http, algorithm: 'oauth2' }),
      );
    } catch {
      return oauth.processDiscoveryResponse(
        issuer,
        await oauth.discoveryRequest(issuer, { ...http, algorithm: 'oidc' }),
      );
    }
  }

  async #client(
    as: oauth.AuthorizationServer,
    http: OAuthClientContext['http'],
  ): Promise<{ client: oauth.Client; auth: oauth.ClientAuth }> {
    const c = this.opts.config.client;
    if (!('registration' in c)) {
      const auth =
        c.clientAuth === 'none'
          ? oauth.None()
          : c.clientAuth === 'client_secret_post'
            ? oauth.ClientSecretPost(c.clientSecret.reveal())
            : oauth.ClientSecretBasic(c.clientSecret.reveal());
      return { client: { client_id: c.clientId }, auth };
    }
    const redirectUri = this.redirectUri();
    const stored = await this.store.getClient(this.opts.upstream);
    if (stored !== undefined) {
      const opened = await this.box.open(stored);
      const p = opened.ok ? opened.payload : undefined;
      if (
        p !== undefined &&
        p.t === 'client' &&
        p.u === this.opts.upstream &&
        p.iss === as.issuer &&
        p.ru === redirectUri &&
        typeof p.id === 'string'
      )
        return clientOf(p.id, typeof p.sec === 'string' ? p.sec : undefined);
      // Another issuer, another callback URL, an old key: register again.
      await this.store.deleteClient(this.opts.upstream);
    }
    if (as.registration_endpoint === undefined)
      throw new Error(`${as.issuer} offers no dynamic registration: configure credentials.oauth.client`);
    const registered = await oauth.processDynamicClientRegistrationResponse(
      await oauth.dynamicClientRegistrationRequest(
        as,
        {
          client_name: `Gatehouse (${this.opts.upstream})`,
          redirect_uris: [redirectUri],
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          token_endpoint_auth_method: 'client_secret_basic',
        },
        http,
      ),
    );
    const secret = typeof registered.client_secret === 'string' ? registered.client_secret : undefined;
    const sealed = await this.box.seal({
      t: 'client',
      u: this.opts.upstream,
      iss: as.issuer,
      ru: redirectUri,
      id: registered.client_id,
      ...(secret !== undefined ? { sec: secret } : {}),
    });
    // Two replicas registering at once agree on the first one kept.
    const kept = await this.box.open(await this.store.putClientOnce(this.opts.upstream, sealed));
    if (kept.ok && typeof kept.payload.id === 'string')
      return clientOf(kept.payload.id, typeof kept.payload.sec === 'string' ? kept.payload.sec : undefined);
    return clientOf(registered.client_id, secret);
  }
}

function clientOf(id: string, secret: string | undefined): { client: oauth.Client; auth: oauth.ClientAuth } {
  return { client: { client_id: id }, auth: secret !== undefined ? oauth.ClientSecretBasic(secret) : oauth.None() };
}
