/**
 * Per-user OAuth to an upstream that runs its own authorization server (docs/authentication.md "Per-user OAuth to
 * upstreams"; threat model #2). The gateway is an OAuth 2.1 client of that server (authorization code, PKCE S256,
 * RFC 8707 `resource`) and keeps one grant per principal and upstream, sealed at rest (AEAD, key ids for rotation).
 *
 * - `credentialFor`: the grant's access token while it lasts, else a refresh (one at a time per grant); a refresh the
 *   server refuses drops the grant. No grant: `ConsentRequiredError` with a consent URL on the gateway.
 * - The consent URL carries a sealed *ticket* bound to the principal (hashes only) and the upstream, short-lived and
 *   single-use. `/start` turns it into a sealed *state* (principal binding, PKCE verifier, a one-time nonce, the hash
 *   of a browser secret) and sets that secret as a cookie; `/callback` needs the state, the same browser's cookie and
 *   an unused nonce before the code is exchanged, and the grant lands on the binding the state names — never on
 *   whoever presents the callback.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { decodeJwt } from 'jose';
import * as oauth from 'oauth4webapi';
import type { UpstreamOAuthConfig } from '../../config/types.js';
import { principalKey, type Principal } from '../../identity/principal.js';
import type { JsonObject } from '../../lib/json-rpc.js';
import type { GrantStore } from '../../stores/grants/grant-store.js';
import type { CredentialProvider, CredentialRequest, OutboundCredential } from '../credential-provider.js';
import { ConsentRequiredError, credentialFailed, sanitiseIdpText } from '../errors.js';
import { UpstreamOAuthDiscovery } from './discovery.js';
import type { Sealer } from './sealer.js';

/** An access token is used until this long before it expires. */
const EXPIRY_SKEW_MS = 30_000;
/** A grant without a refresh token lives as long as its access token; one with lives at most this long unused. */
const GRANT_TTL_SECONDS = 90 * 24 * 3600;
/** The gateway's paths (the edge registers them). */
export const CONSENT_PATH_PREFIX = '/oauth/upstream';
export const CALLBACK_PATH = `${CONSENT_PATH_PREFIX}/callback`;
/** The browser secret's cookie: one per flow (its nonce's prefix), so two consents in one browser do not collide. */
export const CONSENT_COOKIE_PREFIX = 'gatehouse_consent_';

/** Hash of the subject alone: an operator revokes by subject (`gatehouse grants revoke`). */
export function grantSubjectKey(subject: string): string {
  return createHash('sha256')
    .update('gatehouse upstream grant subject\0')
    .update(subject)
    .digest('base64url')
    .slice(0, 22);
}

/** Hash of the whole principal binding (issuer, subject, client, certificate): one grant per principal. */
export function grantBindingKey(p: Principal): string {
  return createHash('sha256')
    .update('gatehouse upstream grant binding\0')
    .update(principalKey(p))
    .digest('base64url')
    .slice(0, 22);
}

/** What happened, for the audit trail (never a token, a code or a state). */
export type UserOAuthEvent =
  | { readonly type: 'consent.required'; readonly upstream: string }
  | { readonly type: 'consent.started'; readonly upstream: string }
  | { readonly type: 'consent.refused'; readonly upstream: string; readonly reason: string }
  | { readonly type: 'consent.granted'; readonly upstream: string; readonly upstreamSubject?: string }
  | { readonly type: 'grant.refreshed'; readonly upstream: string }
  | { readonly type: 'grant.dropped'; readonly upstream: string; readonly reason: string }
  | {
      readonly type: 'grant.revoked';
      readonly upstream: string;
      readonly by: 'user' | 'operator';
      readonly count: number;
    };

export interface UserOAuthOptions {
  readonly upstream: string;
  readonly upstreamUrl: string;
  readonly config: UpstreamOAuthConfig;
  readonly store: GrantStore;
  /** Seals grants and registered clients (outbound.oauth.keys). */
  readonly grantBox: Sealer;
  /** Seals tickets and states (short-lived; may share the keys under another label). */
  readonly flowBox: Sealer;
  /** The gateway's public base (`outbound.oauth.callbackBaseUrl` or the origin of `auth.resource`), read per use. */
  readonly publicBase: () => string;
  readonly consentTtlSeconds: number;
  readonly allowInsecure: boolean;
  readonly now?: () => number;
  readonly onEvent?: (event: UserOAuthEvent) => void;
}

/** What `/start` answers: a redirect to the authorization server and the browser secret to set as a cookie. */
export interface StartResult {
  readonly location: string;
  readonly cookie: { readonly name: string; readonly value: string; readonly maxAgeSeconds: number };
}

/** A refusal of the browser flow: the reason for the log and audit, never shown in detail to the browser. */
export class ConsentFlowError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'ConsentFlowError';
  }
}

interface Grant {
  readonly at?: string;
  readonly atExp?: number;
  readonly rt?: string;
  readonly sub?: string;
}

export class UserOAuthProvider implements CredentialProvider {
  readonly kind = 'user-grant' as const;
  readonly #discovery: UpstreamOAuthDiscovery;
  readonly #now: () => number;
  /** Refreshes in flight by binding: concurrent calls of one user share one refresh (a rotated refresh token is single use). */
  readonly #refreshing = new Map<string, Promise<Grant | undefined>>();

  constructor(private readonly opts: UserOAuthOptions) {
    this.#now = opts.now ?? Date.now;
    this.#discovery = new UpstreamOAuthDiscovery(
      {
        upstream: opts.upstream,
        upstreamUrl: opts.upstreamUrl,
        config: opts.config,
        allowInsecure: opts.allowInsecure,
      },
      opts.store,
      opts.grantBox,
      () => this.redirectUri(),
    );
  }

  get upstream(): string {
    return this.opts.upstream;
  }

  redirectUri(): string {
    return `${this.opts.publicBase()}${CALLBACK_PATH}`;
  }

  async credentialFor(req: CredentialRequest): Promise<OutboundCredential> {
    const sk = grantSubjectKey(req.principal.subject);
    const bk = grantBindingKey(req.principal);
    let grant = await this.#load(sk, bk);
    if (grant !== undefined && !(grant.at !== undefined && (grant.atExp ?? 0) - EXPIRY_SKEW_MS > this.#now())) {
      grant = grant.rt === undefined ? undefined : await this.#refreshOnce(sk, bk, grant.rt);
      if (grant === undefined) await this.opts.store.delete(this.opts.upstream, sk, bk);
    }
    if (grant?.at === undefined) throw await this.consentRequired(req.principal);
    return {
      kind: 'user-grant',
      headers: { authorization: `Bearer ${grant.at}` },
      ...(grant.sub !== undefined ? { subject: grant.sub } : {}),
    };
  }

  /** The consent URL for this principal: a sealed, single-use, short-lived ticket on the gateway's `/start`. */
  async consentRequired(principal: Principal): Promise<ConsentRequiredError> {
    const elicitationId = randomUUID();
    const ticket = await this.opts.flowBox.seal({
      t: 'ticket',
      u: this.opts.upstream,
      s: grantSubjectKey(principal.subject),
      b: grantBindingKey(principal),
      n: elicitationId,
      exp: this.#now() + this.opts.consentTtlSeconds * 1000,
    });
    this.opts.onEvent?.({ type: 'consent.required', upstream: this.opts.upstream });
    const url = `${this.opts.publicBase()}${CONSENT_PATH_PREFIX}/${encodeURIComponent(this.opts.upstream)}/start?ticket=${ticket}`;
    return new ConsentRequiredError({
      upstream: this.opts.upstream,
      url,
      elicitationId,
      message: `Authorize the gateway to call "${this.opts.upstream}" on your behalf`,
    });
  }

  /** `/oauth/upstream/<upstream>/start?ticket=…`: the redirect to the authorization server and the browser secret. */
  async start(ticket: string): Promise<StartResult> {
    const t = await this.#openFlow(ticket, 'ticket');
    if (!(await this.opts.store.useOnce(`ticket:${String(t.n)}`, this.opts.consentTtlSeconds)))
      throw new ConsentFlowError('ticket_used');
    const ctx = await this.#context();
    const verifier = oauth.generateRandomCodeVerifier();
    const nonce = randomBytes(16).toString('base64url');
    const browserSecret = randomBytes(32).toString('base64url');
    const state = await this.opts.flowBox.seal({
      t: 'state',
      u: this.opts.upstream,
      s: t.s as string,
      b: t.b as string,
      v: verifier,
      n: nonce,
      c: hashSecret(browserSecret),
      exp: this.#now() + this.opts.consentTtlSeconds * 1000,
    });
    const url = new URL(ctx.as.authorization_endpoint ?? '');
    if (ctx.as.authorization_endpoint === undefined) throw new ConsentFlowError('no_authorization_endpoint');
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('client_id', ctx.client.client_id);
    url.searchParams.set('redirect_uri', this.redirectUri());
    url.searchParams.set('state', state);
    url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier));
    url.searchParams.set('code_challenge_method', 'S256');
    url.searchParams.set('resource', this.opts.config.resource);
    const scopes = [...this.opts.config.scopes];
    // A refresh token from an OpenID provider needs offline_access (and its consent prompt).
    if (ctx.as.scopes_supported?.includes('offline_access') === true && !scopes.includes('offline_access'))
      scopes.push('offline_access');
    if (scopes.length > 0) url.searchParams.set('scope', scopes.join(' '));
    if (scopes.includes('offline_access')) url.searchParams.set('prompt', 'consent');
    this.opts.onEvent?.({ type: 'consent.started', upstream: this.opts.upstream });
    return {
      location: url.href,
      cookie: { name: consentCookieName(nonce), value: browserSecret, maxAgeSeconds: this.opts.consentTtlSeconds },
    };
  }

  /**
   * `/oauth/upstream/callback`, for a state this upstream sealed: the same browser (its cookie), the nonce unused,
   * then the code exchanged (PKCE verifier, `resource`) and the grant stored under the state's binding.
   */
  async callback(state: JsonObject, params: URLSearchParams, cookies: ReadonlyMap<string, string>): Promise<void> {
    const nonce = String(state.n);
    const secret = cookies.get(consentCookieName(nonce));
    if (secret === undefined) throw new ConsentFlowError('no_browser_cookie');
    const expected = Buffer.from(String(state.c));
    const got = Buffer.from(hashSecret(secret));
    if (expected.length !== got.length || !timingSafeEqual(expected, got)) throw new ConsentFlowError('wrong_browser');
    if (!(await this.opts.store.useOnce(`state:${nonce}`, this.opts.consentTtlSeconds)))
      throw new ConsentFlowError('state_used');
    const ctx = await this.#context();
    let callbackParams: URLSearchParams;
    try {
      // RFC 9207 `iss` when the server sends it, the state compared exactly (oauth4webapi).
      callbackParams = oauth.validateAuthResponse(ctx.as, ctx.client, params, params.get('state') ?? '');
    } catch (err) {
      throw new ConsentFlowError(`authorization_response: ${describe(err)}`);
    }
    let tokens: oauth.TokenEndpointResponse;
    try {
      const response = await oauth.authorizationCodeGrantRequest(
        ctx.as,
        ctx.client,
        ctx.auth,
        callbackParams,
        this.redirectUri(),
        String(state.v),
        { ...ctx.http, additionalParameters: { resource: this.opts.config.resource } },
      );
      tokens = await oauth.processAuthorizationCodeResponse(ctx.as, ctx.client, response);
    } catch (err) {
      throw new ConsentFlowError(`token_endpoint: ${describe(err)}`);
    }
    const grant = grantOf(tokens, this.#now(), undefined);
    await this.#save(String(state.s), String(state.b), grant);
    this.opts.onEvent?.({
      type: 'consent.granted',
      upstream: this.opts.upstream,
      ...(grant.sub !== undefined ? { upstreamSubject: grant.sub } : {}),
    });
  }

  /** A user's own revocation (`DELETE /oauth/upstream/<upstream>/grant`): whether there was a grant. */
  async revokeOwn(principal: Principal): Promise<boolean> {
    const sk = grantSubjectKey(principal.subject);
    const bk = grantBindingKey(principal);
    const grant = await this.#load(sk, bk);
    const had = await this.opts.store.delete(this.opts.upstream, sk, bk);
    if (grant !== undefined) await this.#revokeAtServer(grant);
    this.opts.onEvent?.({ type: 'grant.revoked', upstream: this.opts.upstream, by: 'user', count: had ? 1 : 0 });
    return had;
  }

  /** An operator's revocation of every grant of a subject at this upstream: how many there were. */
  async revokeSubject(subject: string): Promise<number> {
    const sealed = await this.opts.store.takeSubject(this.opts.upstream, grantSubjectKey(subject));
    for (const s of sealed) {
      const g = await this.#openGrant(s, undefined);
      if (g !== undefined) await this.#revokeAtServer(g);
    }
    this.opts.onEvent?.({ type: 'grant.revoked', upstream: this.opts.upstream, by: 'operator', count: sealed.length });
    return sealed.length;
  }

  /** Opens a `/start` ticket or a callback `state` of this gateway; the caller dispatches on its upstream. */
  async #openFlow(token: string, type: 'ticket' | 'state'): Promise<JsonObject> {
    return openFlow(this.opts.flowBox, token, type, this.#now());
  }

  async #context(): Promise<Awaited<ReturnType<UpstreamOAuthDiscovery['context']>>> {
    try {
      return await this.#discovery.context();
    } catch (err) {
      throw credentialFailed(this.opts.upstream, `authorization server discovery: ${describe(err)}`, err);
    }
  }

  async #load(sk: string, bk: string): Promise<Grant | undefined> {
    const sealed = await this.opts.store.get(this.opts.upstream, sk, bk);
    return sealed === undefined ? undefined : this.#openGrant(sealed, bk);
  }

  /** A grant opens only under the binding and upstream it was sealed for (a value moved to another key is refused). */
  async #openGrant(sealed: string, bk: string | undefined): Promise<Grant | undefined> {
    const opened = await this.opts.grantBox.open(sealed);
    if (!opened.ok) return undefined;
    const p = opened.payload;
    if (p.t !== 'grant' || p.u !== this.opts.upstream || (bk !== undefined && p.b !== bk)) return undefined;
    return {
      ...(typeof p.at === 'string' ? { at: p.at } : {}),
      ...(typeof p.atExp === 'number' ? { atExp: p.atExp } : {}),
      ...(typeof p.rt === 'string' ? { rt: p.rt } : {}),
      ...(typeof p.sub === 'string' ? { sub: p.sub } : {}),
    };
  }

  async #save(sk: string, bk: string, grant: Grant): Promise<void> {
    const sealed = await this.opts.grantBox.seal({ t: 'grant', u: this.opts.upstream, b: bk, ...grant });
    const ttl =
      grant.rt !== undefined
        ? GRANT_TTL_SECONDS
        : Math.max(1, Math.ceil(((grant.atExp ?? this.#now()) - this.#now()) / 1000));
    await this.opts.store.put(this.opts.upstream, sk, bk, sealed, ttl);
  }

  #refreshOnce(sk: string, bk: string, rt: string): Promise<Grant | undefined> {
    let p = this.#refreshing.get(bk);
    if (p === undefined) {
      p = this.#refresh(sk, bk, rt).finally(() => this.#refreshing.delete(bk));
      this.#refreshing.set(bk, p);
    }
    return p;
  }

  /** A new access token; undefined when the server refuses the refresh token (the grant is then dropped). */
  async #refresh(sk: string, bk: string, rt: string): Promise<Grant | undefined> {
    const ctx = await this.#context();
    let tokens: oauth.TokenEndpointResponse;
    try {
      const response = await oauth.refreshTokenGrantRequest(ctx.as, ctx.client, ctx.auth, rt, {
        ...ctx.http,
        additionalParameters: { resource: this.opts.config.resource },
      });
      tokens = await oauth.processRefreshTokenResponse(ctx.as, ctx.client, response);
    } catch (err) {
      if (err instanceof oauth.ResponseBodyError && err.status >= 400 && err.status < 500) {
        if (err.error === 'invalid_client') await this.#discovery.forgetClient();
        this.opts.onEvent?.({ type: 'grant.dropped', upstream: this.opts.upstream, reason: err.error });
        return undefined;
      }
      throw credentialFailed(this.opts.upstream, `refresh: ${describe(err)}`, err);
    }
    const previous = await this.#load(sk, bk);
    const grant = grantOf(tokens, this.#now(), rt, previous?.sub);
    await this.#save(sk, bk, grant);
    this.opts.onEvent?.({ type: 'grant.refreshed', upstream: this.opts.upstream });
    return grant;
  }

  /** RFC 7009 at the authorization server when it offers it; a failure there does not keep the grant. */
  async #revokeAtServer(grant: Grant): Promise<void> {
    const token = grant.rt ?? grant.at;
    if (token === undefined) return;
    try {
      const ctx = await this.#discovery.context();
      if (ctx.as.revocation_endpoint === undefined) return;
      await oauth.processRevocationResponse(
        await oauth.revocationRequest(ctx.as, ctx.client, ctx.auth, token, {
          ...ctx.http,
          additionalParameters: { token_type_hint: grant.rt !== undefined ? 'refresh_token' : 'access_token' },
        }),
      );
    } catch {
      // Best effort: the grant is gone from the gateway either way.
    }
  }
}

/** Opens a ticket or state sealed by `box`, checking its type and expiry. */
export async function openFlow(box: Sealer, token: string, type: 'ticket' | 'state', now: number): Promise<JsonObject> {
  const opened = await box.open(token);
  if (!opened.ok) throw new ConsentFlowError(`${type}_${opened.reason}`);
  const p = opened.payload;
  if (
    p.t !== type ||
    typeof p.u !== 'string' ||
    typeof p.s !== 'string' ||
    typeof p.b !== 'string' ||
    typeof p.n !== 'string'
  )
    throw new ConsentFlowError(`${type}_invalid`);
  if (typeof p.exp !== 'number' || now >= p.exp) throw new ConsentFlowError(`${type}_expired`);
  return p;
}

export function consentCookieName(nonce: string): string {
  return `${CONSENT_COOKIE_PREFIX}${nonce.replace(/[^A-Za-z0-9_-]/g, '').slice(0, 16)}`;
}

function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url');
}

function grantOf(
  tokens: oauth.TokenEndpointResponse,
  now: number,
  previousRt: string | undefined,
  previousSub?: string,
): Grant {
  const rt = tokens.refresh_token ?? previousRt;
  const sub = subjectOf(tokens.access_token) ?? previousSub;
  return {
    at: tokens.access_token,
    atExp: now + (tokens.expires_in ?? 300) * 1000,
    ...(rt !== undefined ? { rt } : {}),
    ...(sub !== undefined ? { sub } : {}),
  };
}

/** The access token's `sub`, if it is a JWT, for the audit record only (the upstream verifies it, not us). */
function subjectOf(accessToken: string): string | undefined {
  try {
    const sub = decodeJwt(accessToken).sub;
    return typeof sub === 'string' ? sanitiseIdpText(sub) : undefined;
  } catch {
    return undefined;
  }
}

function describe(err: unknown): string {
  if (err instanceof oauth.ResponseBodyError) return `${err.status} ${err.error}`;
  if (err instanceof Error) return sanitiseIdpText(`${err.name}: ${err.message}`);
  return 'failed';
}
