/**
 * Federation of the user's login to the corporate OpenID provider, with oauth4webapi: discovery of the
 * configured issuer, authorization code + PKCE (S256) with our own `state` and `nonce`, and on return
 * `validateAuthResponse` (RFC 9207 `iss`, `state`), the code exchange and `processAuthorizationCodeResponse`
 * (ID token claims, `nonce`). oauth4webapi relies on TLS for the ID token's origin and does not check its
 * signature; we check it as well, against the IdP's `jwks_uri`, so a plain-http test IdP is no weaker.
 * Claims for scope mapping come from the ID token, completed from UserInfo when the IdP has that endpoint.
 */
import * as oauth from 'oauth4webapi';
import { createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { SecretValue } from '../../config/types.js';

export interface IdpOptions {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret?: SecretValue;
  readonly scopes: readonly string[];
  /** Our callback, registered at the IdP. */
  readonly redirectUri: string;
  /** Plain http to the IdP. Only for a loopback test IdP (the plugin enforces that). */
  readonly allowInsecureRequests: boolean;
  /** Epoch milliseconds. */
  readonly now: () => number;
  readonly timeoutMs?: number;
}

export interface IdpLoginState {
  readonly state: string;
  readonly nonce: string;
  readonly codeVerifier: string;
}

export type IdpLoginResult =
  | {
      readonly ok: true;
      readonly subject: string;
      readonly claims: Readonly<Record<string, unknown>>;
      readonly warning?: string;
    }
  | { readonly ok: false; readonly reason: 'idp_denied' | 'invalid_response' | 'unavailable'; readonly detail: string };

const DISCOVERY_MAX_AGE_MS = 60 * 60 * 1000;
const ASYMMETRIC = /^(?:RS|PS|ES)(?:256|384|512)$|^EdDSA$/;

export class IdpClient {
  readonly #opts: IdpOptions;
  readonly #client: oauth.Client;
  readonly #auth: oauth.ClientAuth;
  #metadata: { as: Promise<oauth.AuthorizationServer>; at: number } | undefined;
  #jwks: JWTVerifyGetKey | undefined;

  constructor(opts: IdpOptions) {
    this.#opts = opts;
    this.#client = { client_id: opts.clientId };
    this.#auth = opts.clientSecret !== undefined ? oauth.ClientSecretBasic(opts.clientSecret.reveal()) : oauth.None();
  }

  #http(): { signal: () => AbortSignal; [oauth.allowInsecureRequests]: boolean } {
    return {
      signal: () => AbortSignal.timeout(this.#opts.timeoutMs ?? 5000),
      [oauth.allowInsecureRequests]: this.#opts.allowInsecureRequests,
    };
  }

  /** Discovery, cached for an hour; a failed discovery is retried on the next login. */
  metadata(): Promise<oauth.AuthorizationServer> {
    const now = this.#opts.now();
    if (this.#metadata === undefined || now - this.#metadata.at > DISCOVERY_MAX_AGE_MS) {
      const issuer = new URL(this.#opts.issuer);
      const as = oauth
        .discoveryRequest(issuer, { ...this.#http(), algorithm: 'oidc' })
        .then((res) => oauth.processDiscoveryResponse(issuer, res));
      const entry = { as, at: now };
      this.#metadata = entry;
      as.catch(() => {
        if (this.#metadata === entry) this.#metadata = undefined;
      });
    }
    return this.#metadata.as;
  }

  static newLoginState(): IdpLoginState {
    return {
      state: oauth.generateRandomState(),
      nonce: oauth.generateRandomNonce(),
      codeVerifier: oauth.generateRandomCodeVerifier(),
    };
  }

  async authorizationUrl(login: IdpLoginState): Promise<URL> {
    const as = await this.metadata();
    if (as.authorization_endpoint === undefined) throw new Error('IdP metadata has no authorization_endpoint');
    const url = new URL(as.authorization_endpoint);
    url.searchParams.set('client_id', this.#opts.clientId);
    url.searchParams.set('redirect_uri', this.#opts.redirectUri);
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('scope', this.#opts.scopes.join(' '));
    url.searchParams.set('state', login.state);
    url.searchParams.set('nonce', login.nonce);
    url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(login.codeVerifier));
    url.searchParams.set('code_challenge_method', 'S256');
    return url;
  }

  async completeLogin(callback: URLSearchParams, login: IdpLoginState): Promise<IdpLoginResult> {
    let as: oauth.AuthorizationServer;
    try {
      as = await this.metadata();
    } catch (err) {
      return { ok: false, reason: 'unavailable', detail: `IdP discovery failed: ${describe(err)}` };
    }
    let params: URLSearchParams;
    try {
      params = oauth.validateAuthResponse(as, this.#client, callback, login.state);
    } catch (err) {
      if (err instanceof oauth.AuthorizationResponseError)
        return { ok: false, reason: 'idp_denied', detail: `IdP answered ${err.error.slice(0, 64)}` };
      return { ok: false, reason: 'invalid_response', detail: `IdP authorization response rejected: ${describe(err)}` };
    }
    let tokens: oauth.TokenEndpointResponse;
    try {
      const res = await oauth.authorizationCodeGrantRequest(
        as,
        this.#client,
        this.#auth,
        params,
        this.#opts.redirectUri,
        login.codeVerifier,
        this.#http(),
      );
      tokens = await oauth.processAuthorizationCodeResponse(as, this.#client, res, {
        expectedNonce: login.nonce,
        requireIdToken: true,
      });
    } catch (err) {
      return { ok: false, reason: 'invalid_response', detail: `IdP code exchange failed: ${describe(err)}` };
    }
    const idClaims = oauth.getValidatedIdTokenClaims(tokens);
    if (idClaims === undefined || typeof tokens.id_token !== 'string')
      return { ok: false, reason: 'invalid_response', detail: 'no ID token' };
    try {
      await this.#verifyIdTokenSignature(as, tokens.id_token);
    } catch (err) {
      return { ok: false, reason: 'invalid_response', detail: `ID token signature rejected: ${describe(err)}` };
    }
    const claims: Record<string, unknown> = { ...idClaims };
    if (as.userinfo_endpoint !== undefined) {
      try {
        const res = await oauth.userInfoRequest(as, this.#client, tokens.access_token, this.#http());
        const info = await oauth.processUserInfoResponse(as, this.#client, idClaims.sub, res);
        // The ID token wins where both speak (iss, sub, aud, nonce …).
        for (const [k, v] of Object.entries(info)) if (!Object.hasOwn(claims, k)) claims[k] = v;
      } catch (err) {
        // Fewer claims can only mean fewer scopes: continue with the ID token alone.
        return { ok: true, subject: idClaims.sub, claims, warning: `UserInfo failed: ${describe(err)}` };
      }
    }
    return { ok: true, subject: idClaims.sub, claims };
  }

  async #verifyIdTokenSignature(as: oauth.AuthorizationServer, idToken: string): Promise<void> {
    if (as.jwks_uri === undefined) throw new Error('IdP metadata has no jwks_uri');
    this.#jwks ??= createRemoteJWKSet(new URL(as.jwks_uri), { timeoutDuration: this.#opts.timeoutMs ?? 5000 });
    const advertised = (as.id_token_signing_alg_values_supported ?? []).filter((a) => ASYMMETRIC.test(a));
    await jwtVerify(idToken, this.#jwks, {
      issuer: as.issuer,
      audience: this.#opts.clientId,
      algorithms: advertised.length > 0 ? advertised : ['RS256', 'PS256', 'ES256', 'EdDSA'],
      currentDate: new Date(this.#opts.now()),
      clockTolerance: 30,
    });
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return `${err.name}${typeof code === 'string' ? ` ${code}` : ''}: ${err.message.slice(0, 200)}`;
  }
  return 'unknown error';
}
