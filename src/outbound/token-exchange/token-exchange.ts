/**
 * RFC 8693 token exchange (docs/authentication.md "Outbound identity"): the caller's verified token goes to the
 * configured token endpoint as `subject_token` — and nowhere else — with this upstream's `audience`/`resource`
 * (RFC 8693 §2.1, RFC 8707); the token the authorization server issues is what the upstream sees, as
 * `Authorization: Bearer`. The gateway authenticates there with private_key_jwt (preferred), mutual TLS or, where
 * nothing else is offered, a client secret. Results are cached per caller and upstream (exchange-cache.ts).
 *
 * Failures become GW_UPSTREAM_CREDENTIAL_FAILED naming the upstream; the authorization server's own words go to the
 * detail (log and audit), sanitised and truncated, never to the wire.
 */
import type { TokenExchangeConfig } from '../../config/types.js';
import type { GatewayError } from '../../errors/gateway-error.js';
import type { CredentialProvider, CredentialRequest, OutboundCredential } from '../credential-provider.js';
import { credentialFailed } from '../errors.js';
import { CallerTokens } from './caller-tokens.js';
import type { CachedCredential } from './exchange-cache.js';
import { subjectOf, TokenEndpoint } from './token-endpoint.js';

const GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const SUBJECT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const ACTOR_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
/** An exchanged token that says nothing of its lifetime is used for at most this long. */
const DEFAULT_LIFETIME_MS = 5 * 60 * 1000;

export interface TokenExchangeOptions {
  readonly upstream: string;
  readonly config: TokenExchangeConfig;
  readonly now?: () => number;
  /** Told of each exchange and its outcome (no token): for the log. */
  readonly onExchange?: (e: { upstream: string; ok: boolean; detail?: string }) => void;
}

export class TokenExchangeProvider implements CredentialProvider {
  readonly kind = 'exchanged' as const;
  readonly #upstream: string;
  readonly #config: TokenExchangeConfig;
  readonly #now: () => number;
  readonly #tokens: CallerTokens;
  readonly #endpoint: TokenEndpoint;
  readonly #onExchange: TokenExchangeOptions['onExchange'];

  constructor(opts: TokenExchangeOptions) {
    this.#upstream = opts.upstream;
    this.#config = opts.config;
    this.#now = opts.now ?? Date.now;
    this.#tokens = new CallerTokens(this.#upstream, 'exchanged', opts.config.cacheMaxEntries, this.#now);
    this.#onExchange = opts.onExchange;
    this.#endpoint = new TokenEndpoint({
      config: opts.config,
      now: this.#now,
      words: {
        discovery: 'token endpoint discovery failed',
        refused: 'token endpoint refused the exchange',
        failed: 'token exchange failed',
      },
      fail: (reason, cause) => this.#failed(reason, cause),
    });
  }

  /** Exchanges performed so far are not counted here; the cache's size is, for tests and diagnostics. */
  get cached(): number {
    return this.#tokens.size;
  }

  credentialFor(req: CredentialRequest): Promise<OutboundCredential> {
    return this.#tokens.credentialFor(
      req,
      (t, exp) => this.#exchange(t, exp),
      'the request carried no token to exchange',
    );
  }

  close(): void {
    this.#tokens.close();
  }

  async #exchange(subjectToken: string, inboundExpiresAt: number | undefined): Promise<CachedCredential> {
    const c = this.#config;
    const as = await this.#endpoint.metadata();
    const auth = await this.#endpoint.auth();
    const params = new URLSearchParams();
    params.set('subject_token', subjectToken);
    params.set('subject_token_type', SUBJECT_TOKEN_TYPE);
    params.set('requested_token_type', c.requestedTokenType);
    for (const a of c.audience) params.append('audience', a);
    for (const r of c.resource) params.append('resource', r);
    if (c.scope !== undefined) params.set('scope', c.scope);
    // Delegation on the record (RFC 8693 §1.1, §4.1): the gateway acts for the subject, and says so.
    if (c.actor === 'self-signed' && auth.actorToken !== undefined) {
      params.set('actor_token', await auth.actorToken(as.issuer));
      params.set('actor_token_type', ACTOR_TOKEN_TYPE);
    }
    const body = await this.#endpoint.request(GRANT_TYPE, params, {
      as,
      // RFC 8693 §2.2.1: `N_A` when the issued token is not an access token (requested_token_type jwt).
      recognizedTokenTypes: { n_a: () => undefined },
    });
    const issued = body.issued_token_type;
    if (typeof issued === 'string' && issued !== c.requestedTokenType && issued !== SUBJECT_TOKEN_TYPE)
      throw this.#failed(`token endpoint issued a ${issued.slice(0, 80)}, not the requested token type`);
    const now = this.#now();
    const lifetime = typeof body.expires_in === 'number' ? body.expires_in * 1000 : DEFAULT_LIFETIME_MS;
    let usableUntil = now + lifetime - c.expirySkewSeconds * 1000;
    // Never beyond the inbound token: a caller whose own token ended has no exchanged token either.
    if (inboundExpiresAt !== undefined) usableUntil = Math.min(usableUntil, inboundExpiresAt);
    const subject = subjectOf(body.access_token);
    this.#onExchange?.({ upstream: this.#upstream, ok: true });
    return { token: body.access_token, usableUntil, ...(subject !== undefined ? { subject } : {}) };
  }

  #failed(reason: string, cause?: unknown): GatewayError {
    const err = credentialFailed(this.#upstream, reason, cause);
    this.#onExchange?.({
      upstream: this.#upstream,
      ok: false,
      ...(err.detail !== undefined ? { detail: err.detail } : {}),
    });
    return err;
  }
}
