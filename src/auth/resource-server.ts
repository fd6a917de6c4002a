/**
 * Step ② of the pipeline for `auth.mode: dev`, `oauth` and `builtin`: the gateway as an OAuth 2.1 resource server
 * (MCP authorization §Token Handling, RFC 6750, RFC 9728). A request becomes a `Principal` or a challenge:
 *
 *   no bearer token                 → 401 `Bearer resource_metadata=…, scope=…` (no error code, RFC 6750 §3.1)
 *   malformed or repeated header    → 400 `error="invalid_request"` (RFC 6750 §3.1: no token was looked at)
 *   bad token                       → 401 `error="invalid_token"` (one generic description for every reason)
 *   key source / AS unreachable     → 503 (the token may be fine; the edge adds Retry-After)
 *   valid token, a required scope missing → 403 `error="insufficient_scope", scope=…`
 *
 * The rich reason and detail go to the caller (audit, metrics), never to the wire; `detail` never holds the token.
 */
import { decodeProtectedHeader, type JSONWebKeySet } from 'jose';
import { secretValue } from '../config/secrets.js';
import type { AuthConfig, GatehouseConfig } from '../config/types.js';
import type { Principal } from '../identity/principal.js';
import { LoopbackOnlyAnonymous, type AuthRequest, type AuthResult, type Authenticator } from './authenticator.js';
import { extractBearer } from './bearer.js';
import {
  insufficientScopeChallenge,
  invalidRequestChallenge,
  invalidTokenChallenge,
  missingTokenChallenge,
  protectedResourceMetadataUrl,
  type ChallengeContext,
} from './challenge.js';
import { IntrospectionVerifier, introspectionOptions } from './introspection-verifier.js';
import { JwtVerifier, type JwtKeySource } from './jwt-verifier.js';
import type { TokenVerifier } from './token-verifier.js';

export interface ResourceServerOptions {
  /** Our resource identifier (`auth.resource`); the metadata URL in challenges is derived from it. */
  resource: string;
  requiredScopes: readonly string[];
  /** Verifies JWT-shaped tokens (three dot-separated parts, the first a JOSE header). */
  jwt?: TokenVerifier;
  /** Verifies every other token, and JWT-shaped ones too when there is no `jwt` verifier. */
  introspection?: TokenVerifier;
  /** Epoch milliseconds; tests freeze it. Default `Date.now`. */
  now?: () => number;
  /**
   * Asked after a token verified: true refuses it (401 `invalid_token`, reason `revoked`). Tokens without a `jti`
   * are then refused too (their revocation cannot be checked); a throw means the store is down (503).
   */
  isRevoked?: (jti: string) => Promise<boolean>;
}

/** A JWS in compact serialisation: three base64url parts (RFC 7515 §7.1). A JWE has five and is not ours. */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** Three parts whose first decodes to a JOSE header with an `alg`: an opaque token that merely has two dots is not one. */
function looksLikeJws(token: string): boolean {
  if (!JWT_SHAPE.test(token)) return false;
  try {
    return typeof decodeProtectedHeader(token).alg === 'string';
  } catch {
    return false;
  }
}

export class ResourceServerAuthenticator implements Authenticator {
  readonly #jwt: TokenVerifier | undefined;
  readonly #introspection: TokenVerifier | undefined;
  readonly #required: readonly string[];
  readonly #challenge: ChallengeContext;
  readonly #now: () => number;
  readonly #isRevoked: ((jti: string) => Promise<boolean>) | undefined;

  constructor(options: ResourceServerOptions) {
    if (!options.jwt && !options.introspection)
      throw new TypeError('ResourceServerAuthenticator: configure a JWT verifier, introspection, or both');
    this.#jwt = options.jwt;
    this.#introspection = options.introspection;
    this.#required = Object.freeze([...options.requiredScopes]);
    this.#challenge = Object.freeze({
      resourceMetadata: protectedResourceMetadataUrl(options.resource),
      requiredScopes: this.#required,
    });
    this.#now = options.now ?? Date.now;
    this.#isRevoked = options.isRevoked;
  }

  async authenticate(req: AuthRequest): Promise<AuthResult> {
    const bearer = extractBearer(req.headers, req.rawHeaders);
    if (!bearer.ok) {
      return bearer.reason === 'missing_token'
        ? {
            ok: false,
            status: 401,
            wwwAuthenticate: missingTokenChallenge(this.#challenge),
            reason: 'missing_token',
            detail: bearer.detail,
          }
        : {
            ok: false,
            status: 400,
            wwwAuthenticate: invalidRequestChallenge(this.#challenge),
            reason: 'malformed_header',
            detail: bearer.detail,
          };
    }
    const token = bearer.token;
    // Only with both verifiers is the token's shape a choice (decoding its header costs a parse per request).
    const verifier =
      this.#introspection === undefined
        ? this.#jwt!
        : this.#jwt !== undefined && looksLikeJws(token)
          ? this.#jwt
          : this.#introspection;
    const cert = req.clientCert;
    const result = await verifier.verify(token, {
      now: this.#now(),
      ...(cert !== undefined ? { certThumbprint: cert.thumbprint } : {}),
    });
    if (!result.ok) {
      if (result.reason === 'verifier_unavailable')
        return { ok: false, status: 503, wwwAuthenticate: '', reason: result.reason, detail: result.detail };
      return {
        ok: false,
        status: 401,
        wwwAuthenticate: invalidTokenChallenge(this.#challenge),
        reason: result.reason,
        detail: result.detail,
      };
    }
    if (this.#isRevoked !== undefined) {
      const refused = await this.#revocationCheck(result.principal.tokenId);
      if (refused !== undefined) return refused;
    }
    let principal: Principal = result.principal;
    if (cert !== undefined)
      principal = Object.freeze({
        ...principal,
        certThumbprint: cert.thumbprint,
        certSubject: cert.subject,
        certSans: cert.sans,
      });
    const missing = this.#required.filter((s) => !principal.scopes.has(s));
    if (missing.length > 0) {
      return {
        ok: false,
        status: 403,
        wwwAuthenticate: insufficientScopeChallenge(this.#challenge, this.#required),
        reason: 'insufficient_scope',
        detail: `missing scope(s): ${missing.join(' ').slice(0, 200)}`,
      };
    }
    return { ok: true, principal, token: secretValue('inbound bearer token', token) };
  }

  async #revocationCheck(jti: string | undefined): Promise<AuthResult | undefined> {
    if (jti === undefined)
      return {
        ok: false,
        status: 401,
        wwwAuthenticate: invalidTokenChallenge(this.#challenge),
        reason: 'invalid_token',
        detail: 'no jti: revocation cannot be checked',
      };
    let revoked: boolean;
    try {
      revoked = await this.#isRevoked!(jti);
    } catch (err) {
      // Fail closed, but as "try again": the token may well be fine.
      return {
        ok: false,
        status: 503,
        wwwAuthenticate: '',
        reason: 'verifier_unavailable',
        detail: `revocation check failed: ${(err as Error | undefined)?.name ?? 'error'}`,
      };
    }
    if (revoked)
      return {
        ok: false,
        status: 401,
        wwwAuthenticate: invalidTokenChallenge(this.#challenge),
        reason: 'revoked',
        detail: 'access token revoked',
      };
    return undefined;
  }
}

export interface AuthenticatorDeps {
  /** `auth.mode: dev`: the public JWKS of the local signing key (from `src/auth/dev-keys.ts`). */
  devJwks?: JSONWebKeySet;
  /** `auth.mode: builtin`: what the registered authorization server publishes (`registerAuthorizationServer`). */
  builtin?: {
    readonly jwks: JSONWebKeySet | { readonly keys: readonly Readonly<Record<string, unknown>>[] };
    isRevoked(jti: string): Promise<boolean>;
  };
  now?: () => number;
}

/** The authenticator `auth.mode` asks for. Throws on a configuration it cannot serve (fail fast at start). */
export function createAuthenticator(config: GatehouseConfig, deps: AuthenticatorDeps = {}): Authenticator {
  const auth = config.auth;
  switch (auth.mode) {
    case 'none':
      return new LoopbackOnlyAnonymous();
    case 'dev': {
      if (!deps.devJwks)
        throw new TypeError('auth.mode dev: the dev signing key was not loaded (no public JWKS given)');
      if (!auth.dev) throw new TypeError('auth.mode dev: auth.dev is missing');
      return new ResourceServerAuthenticator({
        resource: auth.resource,
        requiredScopes: auth.requiredScopes,
        jwt: new JwtVerifier(jwtOptions(auth, auth.dev.issuer, { jwks: deps.devJwks })),
        ...(deps.now ? { now: deps.now } : {}),
      });
    }
    case 'oauth': {
      const jwt = auth.jwt;
      const keys: JwtKeySource | undefined =
        jwt?.jwksUri !== undefined
          ? { jwksUri: jwt.jwksUri }
          : jwt?.jwksFile !== undefined
            ? { jwksFile: jwt.jwksFile }
            : undefined;
      if (jwt && !keys) throw new TypeError('auth.jwt needs jwksUri or jwksFile');
      const tokenRules = jwt && { requiredClaims: jwt.requiredClaims, maxTokenAgeSeconds: jwt.maxTokenAgeSeconds };
      return new ResourceServerAuthenticator({
        resource: auth.resource,
        requiredScopes: auth.requiredScopes,
        ...(jwt && keys ? { jwt: new JwtVerifier({ ...jwtOptions(auth, jwt.issuer, keys), ...tokenRules }) } : {}),
        ...(auth.introspection
          ? {
              introspection: new IntrospectionVerifier(
                introspectionOptions(auth.introspection, {
                  audience: auth.resource,
                  clockSkewSeconds: auth.clockSkewSeconds,
                  claims: auth.claims,
                }),
              ),
            }
          : {}),
        ...(deps.now ? { now: deps.now } : {}),
      });
    }
    case 'builtin': {
      if (!auth.builtin) throw new TypeError('auth.mode builtin: auth.builtin is missing');
      if (!deps.builtin)
        throw new TypeError(
          'auth.mode builtin: the built-in authorization server was not registered (no public JWKS given)',
        );
      const jwks = deps.builtin.jwks as JSONWebKeySet;
      // Our own tokens: signed with our keys' algorithms (auth.algorithms is about external issuers), RFC 9068 typed,
      // so RFC 9068 §2.2's iat, jti and client_id are required (as/tokens.ts mints them; revocation needs the jti).
      const algorithms = [...new Set(jwks.keys.map((k) => k.alg).filter((a): a is string => typeof a === 'string'))];
      return new ResourceServerAuthenticator({
        resource: auth.resource,
        requiredScopes: auth.requiredScopes,
        jwt: new JwtVerifier({
          ...jwtOptions(auth, auth.builtin.issuer, { jwks }),
          ...(algorithms.length > 0 ? { algorithms } : {}),
          requireTokenType: true,
        }),
        isRevoked: deps.builtin.isRevoked,
        ...(deps.now ? { now: deps.now } : {}),
      });
    }
    default:
      throw new TypeError(`auth.mode ${String(auth.mode)} is not available in this build`);
  }
}

function jwtOptions(
  auth: AuthConfig,
  issuer: string,
  keys: JwtKeySource,
): ConstructorParameters<typeof JwtVerifier>[0] {
  return {
    issuer,
    audience: auth.resource,
    algorithms: auth.algorithms,
    clockSkewSeconds: auth.clockSkewSeconds,
    requireTokenType: auth.requireTokenType,
    claims: auth.claims,
    keys,
  };
}
