/**
 * JWT access tokens (RFC 9068) checked locally with jose (docs/architecture.md §6, threat model #1, #3, #4).
 *
 * - Keys come only from the configured source: a JWKS URL (cached, refetched on an unknown `kid` at most every
 *   30 s), a JWKS file, or an in-memory JWKS (dev mode). jose never dereferences `jku`/`x5u` and never uses an
 *   embedded `jwk`/`x5c` unless told to; we never tell it to, and `kid` is only compared, never used as a path.
 * - `algorithms` is an allowlist of asymmetric algorithms, checked at construction, so `none` and
 *   HS256-keyed-with-the-public-key cannot be verified at all.
 * - `iss`, `aud` (= our resource, RFC 8707), `exp` (required), `nbf`, `sub` (required) and, when configured, the
 *   header `typ: at+jwt` (RFC 9068 §4) are checked with the injected clock and the configured skew.
 * - `requiredClaims` (`auth.jwt.requiredClaims`; by default RFC 9068 §2.2's `iat`, `jti`, `client_id` when
 *   `typ: at+jwt` is required) must be present, `jti` and `client_id` as non-empty strings.
 * - Time (`token-times.ts`): `exp`, `nbf`, a future `iat` (which jose lets through unless given `maxTokenAge`)
 *   and, when configured, the token's age, all with the skew — on every request, cached or not.
 * - RFC 8705 certificate binding (`cnf.x5t#S256`) is enforced against the request's client certificate.
 * - A token that verified is remembered by its SHA-256 (`VerifiedTokenCache`): a repeat skips the signature, but
 *   `exp`/`nbf` (without skew: in the skew window it is verified afresh), the time rules, the certificate binding
 *   and everything the caller checks (revocation, scopes) run on every request. A remote JWKS reload, or a key
 *   set older than its `cacheMaxAge`, makes every cached token a miss: the cache never outlives the keys that
 *   verified it.
 */
import { readFileSync } from 'node:fs';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  errors,
  jwtVerify,
  type CryptoKey,
  type FlattenedJWSInput,
  type JSONWebKeySet,
  type JWSHeaderParameters,
  type JWTPayload,
  type JWTVerifyOptions,
} from 'jose';
import type { Principal } from '../identity/principal.js';
import type { AuthFailureReason } from './authenticator.js';
import { checkCertificateBinding } from './cert-binding.js';
import { principalFromClaims, type ClaimNames } from './claims-principal.js';
import { defaultRequiredClaims } from '../config/jwt-config.js';
import { checkTimeRules, checkTokenTimes, type TimeRules } from './token-times.js';
import type { TokenVerifier, VerifyContext, VerifyResult } from './token-verifier.js';
import {
  tokenCacheKey,
  VERIFIED_TOKEN_CACHE_DEFAULTS,
  VerifiedTokenCache,
  type VerifiedTokenCacheOptions,
} from './verified-token-cache.js';
import { deepFreeze } from '../lib/deep-freeze.js';

/** The only algorithms a verifier may be configured with: public-key signatures (RFC 7518 §3, RFC 8037, jose). */
export const ASYMMETRIC_ALGORITHMS: ReadonlySet<string> = new Set([
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
]);

/** Remote JWKS fetching (jose `createRemoteJWKSet`): 5 s timeout, unknown-`kid` refetch at most every 30 s, keys kept 10 min. */
export const REMOTE_JWKS_OPTIONS = Object.freeze({
  timeoutDuration: 5000,
  cooldownDuration: 30_000,
  cacheMaxAge: 600_000,
});

export type JwtKeySource = { jwksUri: string } | { jwksFile: string } | { jwks: JSONWebKeySet };

export interface JwtVerifierOptions {
  issuer: string;
  /** Our resource identifier (`auth.resource`); the token's `aud` must contain it exactly. */
  audience: string;
  algorithms: readonly string[];
  clockSkewSeconds: number;
  /** Require the header `typ: at+jwt` (RFC 9068 §2.1). */
  requireTokenType: boolean;
  /**
   * Claims required besides `iss`, `aud`, `exp` and `sub` (`auth.jwt.requiredClaims`). Default
   * `defaultRequiredClaims(requireTokenType)`: RFC 9068 §2.2's `iat`, `jti`, `client_id` for typed tokens.
   */
  requiredClaims?: readonly string[];
  /** Refuse tokens whose `iat` is longer ago than this (plus the skew); undefined: no limit. */
  maxTokenAgeSeconds?: number | undefined;
  claims: ClaimNames;
  keys: JwtKeySource;
  /** Verified-token cache bounds; default `VERIFIED_TOKEN_CACHE_DEFAULTS`, `maxEntries: 0` turns it off. */
  cache?: VerifiedTokenCacheOptions;
}

type KeyGetter = (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey>;

/**
 * Where the keys come from, and whether what they verified may still be believed: `generation` changes whenever
 * the key set may have changed (a remote JWKS fetch starts), `settled` is false while a fetch is under way or the
 * fetched set is past its `cacheMaxAge` (then verification must go through jose, which refetches).
 */
interface KeyStore {
  getKey: KeyGetter;
  generation(): number;
  settled(): boolean;
}

/** What a successful verification concluded, independent of the request's time and certificate. */
interface Verified {
  /** The principal without any certificate fields (added per request). */
  principal: Principal;
  cnf: unknown;
  /** NumericDate seconds (RFC 7519 §2). */
  exp: number;
  nbf: number | undefined;
  iat: number | undefined;
}

/** The key source itself failed (network, timeout, non-200, not a JWKS): the token may be fine, so 503, not 401. */
class KeySourceUnavailable extends Error {
  override readonly name = 'KeySourceUnavailable';
}

/** Key-selection outcomes that are about the token, not about the key source being down. */
const TOKEN_KEY_ERRORS = new Set([
  'ERR_JWKS_NO_MATCHING_KEY',
  'ERR_JWKS_MULTIPLE_MATCHING_KEYS',
  'ERR_JOSE_NOT_SUPPORTED',
]);

export class JwtVerifier implements TokenVerifier {
  readonly #keys: KeyStore;
  readonly #options: JwtVerifierOptions;
  readonly #verifyOptions: Omit<JWTVerifyOptions, 'currentDate'>;
  readonly #cache: VerifiedTokenCache<Verified>;
  readonly #times: TimeRules;
  /** The configured required claims whose values are checked after jose (which checks presence only). */
  readonly #required: readonly string[];

  /** Throws `TypeError` on a misconfiguration (docs/style.md habit 5: validate at construction). */
  constructor(options: JwtVerifierOptions) {
    if (options.algorithms.length === 0)
      throw new TypeError('JwtVerifier: "algorithms" must name at least one algorithm');
    const bad = options.algorithms.filter((a) => !ASYMMETRIC_ALGORITHMS.has(a));
    if (bad.length > 0)
      throw new TypeError(`JwtVerifier: only asymmetric algorithms are allowed, not ${bad.join(', ')}`);
    const maxAgeSeconds = options.maxTokenAgeSeconds;
    this.#times = checkTimeRules({ skewSeconds: options.clockSkewSeconds, maxAgeSeconds }, 'JwtVerifier');
    if (options.issuer === '' || options.audience === '')
      throw new TypeError('JwtVerifier: "issuer" and "audience" are required');
    const required = options.requiredClaims ?? defaultRequiredClaims(options.requireTokenType);
    if (required.some((c) => typeof c !== 'string' || c === '')) {
      throw new TypeError('JwtVerifier: "requiredClaims" must be claim names');
    }
    // A maximum age is measured from `iat`: without one the age is unknown (jose's `maxTokenAge` rule too).
    this.#required = Object.freeze([...new Set([...required, ...(maxAgeSeconds !== undefined ? ['iat'] : [])])]);
    this.#options = options;
    this.#cache = new VerifiedTokenCache(options.cache ?? VERIFIED_TOKEN_CACHE_DEFAULTS);
    this.#keys = keyStore(options.keys);
    this.#verifyOptions = {
      algorithms: [...options.algorithms],
      issuer: options.issuer,
      audience: options.audience,
      clockTolerance: options.clockSkewSeconds,
      requiredClaims: [...new Set(['exp', 'sub', ...this.#required])],
      ...(options.requireTokenType ? { typ: 'at+jwt' } : {}),
    };
  }

  /** Number of tokens whose verification is remembered (for tests and metrics). */
  get cacheSize(): number {
    return this.#cache.size;
  }

  async verify(token: string, ctx: VerifyContext): Promise<VerifyResult> {
    const key = tokenCacheKey(token);
    const nowSeconds = Math.floor(ctx.now / 1000);
    const settled = this.#keys.settled();
    const generation = this.#keys.generation();
    let verified = settled ? this.#cache.get(key, ctx.now, generation) : undefined;
    // The hit is believed only inside the token's window without skew (jose's own test, tolerance 0); at its
    // edges the full verification below decides, with the skew, exactly as without a cache.
    if (
      verified !== undefined &&
      !(nowSeconds < verified.exp && (verified.nbf === undefined || verified.nbf <= nowSeconds))
    )
      verified = undefined;
    const fresh = verified === undefined;
    if (verified === undefined) {
      let payload: JWTPayload;
      try {
        payload = await verifyWithKeys(token, this.#keys.getKey, {
          ...this.#verifyOptions,
          currentDate: new Date(ctx.now),
        });
      } catch (err) {
        return { ok: false, ...joseFailure(err) };
      }
      if (typeof payload.sub !== 'string' || payload.sub === '')
        return { ok: false, reason: 'invalid_token', detail: 'sub is not a non-empty string' };
      const problem = requiredClaimProblem(payload, this.#required);
      if (problem !== undefined) return { ok: false, reason: 'invalid_token', detail: problem };
      // `exp` is a required claim and jose checked that it, `nbf` and `iat` are numbers. The principal is shared by
      // every request with this token, so its claims are frozen all the way down: no later step can change what the
      // next one sees.
      deepFreeze(payload);
      const principal = principalFromClaims({ claims: payload, names: this.#options.claims, subject: payload.sub });
      verified = { principal, cnf: payload.cnf, exp: payload.exp!, nbf: payload.nbf, iat: payload.iat };
    }
    // Every request, hit or not: a remembered verification must not outlive the iat and maximum-age rules.
    const late = checkTokenTimes(verified, ctx.now, this.#times);
    if (late !== undefined) return late;
    // Only what was verified under one settled key set is remembered (generation read before verifying).
    if (fresh && settled) this.#cache.set(key, verified, ctx.now, verified.exp * 1000, generation);
    const binding = checkCertificateBinding(verified.cnf, ctx.certThumbprint);
    if (!binding.ok) return binding;
    return {
      ok: true,
      principal:
        ctx.certThumbprint !== undefined
          ? Object.freeze({ ...verified.principal, certThumbprint: ctx.certThumbprint })
          : verified.principal,
    };
  }
}

function keyStore(keys: JwtKeySource): KeyStore {
  if (!('jwksUri' in keys)) return { getKey: localKeyGetter(keys), generation: () => 0, settled: () => true };
  let generation = 0;
  const url = new URL(keys.jwksUri);
  const remote = createRemoteJWKSet(url, {
    ...REMOTE_JWKS_OPTIONS,
    // Every fetch may change the key set: a key removed from the JWKS must stop vouching for cached tokens.
    [customFetch]: (input: string, init: RequestInit) => {
      generation++;
      return fetch(input, init);
    },
  });
  const getKey: KeyGetter = async (header, token) => {
    try {
      return await remote(header, token);
    } catch (err) {
      if (err instanceof errors.JOSEError && TOKEN_KEY_ERRORS.has(err.code)) throw err;
      throw new KeySourceUnavailable(
        `JWKS ${url.origin}${url.pathname}: ${err instanceof errors.JOSEError ? err.code : ((err as Error | undefined)?.name ?? 'error')}`,
        { cause: err },
      );
    }
  };
  return { getKey, generation: () => generation, settled: () => remote.fresh && !remote.reloading };
}

function localKeyGetter(keys: Exclude<JwtKeySource, { jwksUri: string }>): KeyGetter {
  if ('jwks' in keys) return createLocalJWKSet(publicOnly(keys.jwks, 'the in-memory JWKS'));
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(keys.jwksFile, 'utf8'));
  } catch (err) {
    throw new TypeError(`JwtVerifier: cannot read the JWKS file ${keys.jwksFile}: ${(err as Error).message}`);
  }
  return createLocalJWKSet(publicOnly(parsed, `the JWKS file ${keys.jwksFile}`));
}

/**
 * The values of the required claims, which jose checks only for presence (`iat` it checks is a number): RFC 9068
 * §2.2 `jti` and `client_id` are strings, and no required claim is null (a present-but-empty claim is no claim).
 */
function requiredClaimProblem(payload: JWTPayload, required: readonly string[]): string | undefined {
  for (const name of required) {
    const value = payload[name];
    if (value === null || value === undefined) return `${name} missing`;
    const isString = typeof value === 'string' && value !== '';
    if ((name === 'jti' || name === 'client_id') && !isString) return `${name} is not a non-empty string`;
  }
  return undefined;
}

/** A configured key set must be a JWKS of public keys: a private key in it is a leak waiting to happen. */
function publicOnly(jwks: unknown, what: string): JSONWebKeySet {
  const keys = (jwks as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) throw new TypeError(`JwtVerifier: ${what} is not a JWKS with keys`);
  for (const k of keys as unknown[]) {
    if (typeof k !== 'object' || k === null) throw new TypeError(`JwtVerifier: ${what} has a member that is not a JWK`);
    if ('d' in k || (k as { kty?: unknown }).kty === 'oct')
      throw new TypeError(`JwtVerifier: ${what} must hold public keys only`);
  }
  return jwks as JSONWebKeySet;
}

/**
 * jose's `jwtVerify`, plus the documented handling of `ERR_JWKS_MULTIPLE_MATCHING_KEYS` (a token without `kid`
 * against a set with several candidate keys, e.g. during rotation): try each candidate, first valid signature wins.
 */
async function verifyWithKeys(token: string, getKey: KeyGetter, options: JWTVerifyOptions): Promise<JWTPayload> {
  try {
    return (await jwtVerify(token, getKey, options)).payload;
  } catch (err) {
    if (!(err instanceof errors.JWKSMultipleMatchingKeys)) throw err;
    for await (const key of err as AsyncIterable<CryptoKey>) {
      try {
        return (await jwtVerify(token, key, options)).payload;
      } catch (inner) {
        if (!(inner instanceof errors.JWSSignatureVerificationFailed)) throw inner;
      }
    }
    throw new errors.JWSSignatureVerificationFailed();
  }
}

/**
 * jose error → our reason (rich, for audit and metrics; the wire only ever says `invalid_token`). Exported for
 * tests. `detail` never contains the token; claim values from the token are bounded.
 */
export function joseFailure(err: unknown): { reason: AuthFailureReason; detail: string } {
  if (err instanceof KeySourceUnavailable) return { reason: 'verifier_unavailable', detail: err.message };
  if (!(err instanceof errors.JOSEError))
    return { reason: 'invalid_token', detail: `unexpected ${(err as Error | undefined)?.name ?? typeof err}` };
  switch (err.code) {
    case 'ERR_JWT_EXPIRED':
      return { reason: 'expired', detail: 'exp is in the past' };
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
      const { claim, reason, payload } = err as errors.JWTClaimValidationFailed;
      const byClaim: Record<string, AuthFailureReason> = {
        nbf: 'not_yet_valid',
        iss: 'wrong_issuer',
        aud: 'wrong_audience',
        typ: 'wrong_type',
      };
      const mapped = reason === 'missing' ? 'invalid_token' : (byClaim[claim] ?? 'invalid_token');
      const got = claim === 'typ' ? '' : ` (token ${claim}: ${bounded(payload[claim])})`;
      return { reason: mapped, detail: `${claim} ${reason}${got}` };
    }
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return { reason: 'bad_signature', detail: 'signature does not verify' };
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return { reason: 'unknown_key', detail: 'no key in the JWKS matches the token header' };
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return { reason: 'disallowed_algorithm', detail: 'alg is not in the allowlist' };
    case 'ERR_JWKS_TIMEOUT':
      return { reason: 'verifier_unavailable', detail: 'JWKS request timed out' };
    default:
      return { reason: 'invalid_token', detail: err.code };
  }
}

function bounded(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? 'absent';
  } catch {
    text = typeof value;
  }
  return text.length > 120 ? `${text.slice(0, 120)}…` : text;
}
