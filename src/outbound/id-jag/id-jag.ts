/**
 * Enterprise-managed authorization (docs/authentication.md "Outbound identity: ID-JAG"): the MCP extension
 * `io.modelcontextprotocol/enterprise-managed-authorization` ("the extension" below), a profile of
 * draft-ietf-oauth-identity-assertion-authz-grant. Per caller and upstream, two token requests:
 *
 * 1. At the corporate IdP, an RFC 8693 token exchange (extension §4): `requested_token_type` id-jag, `audience` = the
 *    upstream AS's issuer, `resource` = the upstream (RFC 9728 identifier), `scope`, and the caller's verified token as
 *    `subject_token`. The extension's client presents its SSO ID token there; a gateway holds the caller's access
 *    token instead, so the IdP must accept that (`subject_token_type` access_token) — a deployment choice at the IdP.
 *    No `actor_token` (extension §4: not used).
 * 2. At the upstream's AS, the RFC 7523 jwt-bearer grant (RFC 7523 §2.1, extension §5) with the ID-JAG as
 *    `assertion`, the gateway authenticating as the client the ID-JAG names (`client_id`, extension §5.1).
 *
 * The access token is what the upstream sees; the ID-JAG is a one-use grant the gateway neither keeps nor inspects
 * (the AS validates it: extension §5.1, RFC 7521 §5.2). The inbound token goes to the IdP only. Access tokens are
 * cached like exchanged tokens (exchange-cache.ts); a refresh token, if the AS sends one, is dropped: the next miss
 * obtains a fresh ID-JAG, so the IdP's policy is asked again (extension §6.2).
 */
import type { IdJagConfig } from '../../config/types.js';
import type { GatewayError } from '../../errors/gateway-error.js';
import type { CredentialProvider, CredentialRequest, OutboundCredential } from '../credential-provider.js';
import { credentialFailed } from '../errors.js';
import { CallerTokens } from '../token-exchange/caller-tokens.js';
import type { CachedCredential } from '../token-exchange/exchange-cache.js';
import { subjectOf, TokenEndpoint } from '../token-exchange/token-endpoint.js';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
export const TOKEN_TYPE_ID_JAG = 'urn:ietf:params:oauth:token-type:id-jag';
const SUBJECT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
/** An access token that says nothing of its lifetime is used for at most this long. */
const DEFAULT_LIFETIME_MS = 5 * 60 * 1000;

export interface IdJagOptions {
  readonly upstream: string;
  readonly config: IdJagConfig;
  readonly now?: () => number;
  /** Told of each two-step exchange and its outcome (no token): for the log. */
  readonly onExchange?: (e: { upstream: string; ok: boolean; detail?: string }) => void;
}

export class IdJagProvider implements CredentialProvider {
  readonly kind = 'id-jag' as const;
  readonly #upstream: string;
  readonly #config: IdJagConfig;
  readonly #now: () => number;
  readonly #tokens: CallerTokens;
  readonly #idp: TokenEndpoint;
  readonly #as: TokenEndpoint;
  readonly #onExchange: IdJagOptions['onExchange'];

  constructor(opts: IdJagOptions) {
    const c = opts.config;
    this.#upstream = opts.upstream;
    this.#config = c;
    this.#now = opts.now ?? Date.now;
    this.#tokens = new CallerTokens(this.#upstream, 'id-jag', c.cacheMaxEntries, this.#now);
    this.#onExchange = opts.onExchange;
    const fail = (reason: string, cause?: unknown): GatewayError => this.#failed(reason, cause);
    this.#idp = new TokenEndpoint({
      config: { ...c.idp, timeoutMs: c.timeoutMs },
      now: this.#now,
      words: {
        discovery: 'IdP discovery failed',
        refused: 'the IdP refused the ID-JAG request',
        failed: 'ID-JAG request failed',
      },
      fail,
    });
    this.#as = new TokenEndpoint({
      config: { ...c.authorizationServer, timeoutMs: c.timeoutMs },
      now: this.#now,
      words: {
        discovery: 'authorization server discovery failed',
        refused: 'the authorization server refused the ID-JAG',
        failed: 'ID-JAG redemption failed',
      },
      fail,
    });
  }

  get cached(): number {
    return this.#tokens.size;
  }

  credentialFor(req: CredentialRequest): Promise<OutboundCredential> {
    return this.#tokens.credentialFor(
      req,
      (t, exp) => this.#obtain(t, exp),
      'the request carried no token to obtain an ID-JAG with',
    );
  }

  close(): void {
    this.#tokens.close();
  }

  async #obtain(subjectToken: string, inboundExpiresAt: number | undefined): Promise<CachedCredential> {
    const c = this.#config;
    // Step 1, extension §4: the ID-JAG for this caller, this AS (audience = its issuer) and this resource.
    const request = new URLSearchParams();
    request.set('requested_token_type', TOKEN_TYPE_ID_JAG);
    request.set('audience', c.authorizationServer.issuer);
    request.set('resource', c.resource);
    if (c.scope !== undefined) request.set('scope', c.scope);
    request.set('subject_token', subjectToken);
    request.set('subject_token_type', SUBJECT_TOKEN_TYPE);
    const grant = await this.#idp.request(TOKEN_EXCHANGE, request, {
      // Extension §4.2: token_type `N_A`, the ID-JAG is not an access token.
      recognizedTokenTypes: { n_a: () => undefined },
    });
    // Extension §4.2: issued_token_type is REQUIRED and names the ID-JAG; anything else is not one.
    if (grant.issued_token_type !== TOKEN_TYPE_ID_JAG)
      throw this.#failed(
        `the IdP issued ${typeof grant.issued_token_type === 'string' ? `a ${grant.issued_token_type.slice(0, 80)}` : 'no issued_token_type'}, not an ID-JAG`,
      );

    // Step 2, extension §5 / RFC 7523 §2.1: the ID-JAG as the assertion, with the gateway's client authentication.
    // No scope: the ID-JAG carries the scopes the IdP granted (extension §4.3), and the AS decides from them.
    const redeem = new URLSearchParams();
    redeem.set('assertion', grant.access_token);
    const body = await this.#as.request(JWT_BEARER, redeem);
    // No refresh token is kept (body.refresh_token is dropped): a new ID-JAG is the way to a new access token.

    const now = this.#now();
    const lifetime = typeof body.expires_in === 'number' ? body.expires_in * 1000 : DEFAULT_LIFETIME_MS;
    let usableUntil = now + lifetime - c.expirySkewSeconds * 1000;
    // Never beyond the inbound token: a caller whose own token ended has no upstream token either.
    if (inboundExpiresAt !== undefined) usableUntil = Math.min(usableUntil, inboundExpiresAt);
    // The subject the upstream sees: the access token's, else the ID-JAG's (extension §4.3: "the user at the MCP
    // Server"), both unverified and for the audit record only.
    const subject = subjectOf(body.access_token) ?? subjectOf(grant.access_token);
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
