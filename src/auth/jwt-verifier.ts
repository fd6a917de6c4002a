/**
 * JWT access tokens (RFC 9068) checked locally with jose (DESIGN.md §6, threat model #1, #3, #4).
 *
 * - Keys come only from the configured source: a JWKS URL (cached, refetched on an unknown `kid` at most every
 *   30 s), a JWKS file, or an in-memory JWKS (dev mode). jose never dereferences `jku`/`x5u` and never uses an
 *   embedded `jwk`/`x5c` unless told to; we never tell it to, and `kid` is only compared, never used as a path.
 * - `algorithms` is an allowlist of asymmetric algorithms, checked at construction, so `none` and
 *   HS256-keyed-with-the-public-key cannot be verified at all.
 * - `iss`, `aud` (= our resource, RFC 8707), `exp` (required), `nbf`, `sub` (required) and, when configured, the
 *   header `typ: at+jwt` (RFC 9068 §4) are checked with the injected clock and the configured skew.
 * - RFC 8705 certificate binding (`cnf.x5t#S256`) is enforced against the request's client certificate.
 */
import { readFileSync } from 'node:fs';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  jwtVerify,
  type CryptoKey,
  type FlattenedJWSInput,
  type JSONWebKeySet,
  type JWSHeaderParameters,
  type JWTPayload,
  type JWTVerifyOptions,
} from 'jose';
import type { AuthFailureReason } from './authenticator.js';
import { checkCertificateBinding } from './cert-binding.js';
import { principalFromClaims, type ClaimNames } from './claims-principal.js';
import type { TokenVerifier, VerifyContext, VerifyResult } from './token-verifier.js';

/** The only algorithms a verifier may be configured with: public-key signatures (RFC 7518 §3, RFC 8037, jose). */
export const ASYMMETRIC_ALGORITHMS: ReadonlySet<string> = new Set(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519']);

/** Remote JWKS fetching (jose `createRemoteJWKSet`): 5 s timeout, unknown-`kid` refetch at most every 30 s, keys kept 10 min. */
export const REMOTE_JWKS_OPTIONS = Object.freeze({ timeoutDuration: 5000, cooldownDuration: 30_000, cacheMaxAge: 600_000 });

export type JwtKeySource = { jwksUri: string } | { jwksFile: string } | { jwks: JSONWebKeySet };

export interface JwtVerifierOptions {
  issuer: string;
  /** Our resource identifier (`auth.resource`); the token's `aud` must contain it exactly. */
  audience: string;
  algorithms: readonly string[];
  clockSkewSeconds: number;
  /** Require the header `typ: at+jwt` (RFC 9068 §2.1). */
  requireTokenType: boolean;
  claims: ClaimNames;
  keys: JwtKeySource;
}

type KeyGetter = (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey>;

/** The key source itself failed (network, timeout, non-200, not a JWKS): the token may be fine, so 503, not 401. */
class KeySourceUnavailable extends Error {
  override readonly name = 'KeySourceUnavailable';
}

/** Key-selection outcomes that are about the token, not about the key source being down. */
const TOKEN_KEY_ERRORS = new Set(['ERR_JWKS_NO_MATCHING_KEY', 'ERR_JWKS_MULTIPLE_MATCHING_KEYS', 'ERR_JOSE_NOT_SUPPORTED']);

export class JwtVerifier implements TokenVerifier {
  readonly #getKey: KeyGetter;
  readonly #options: JwtVerifierOptions;
  readonly #verifyOptions: Omit<JWTVerifyOptions, 'currentDate'>;

  /** Throws `TypeError` on a misconfiguration (STYLE.md habit 5: validate at construction). */
  constructor(options: JwtVerifierOptions) {
    if (options.algorithms.length === 0) throw new TypeError('JwtVerifier: "algorithms" must name at least one algorithm');
    const bad = options.algorithms.filter((a) => !ASYMMETRIC_ALGORITHMS.has(a));
    if (bad.length > 0) throw new TypeError(`JwtVerifier: only asymmetric algorithms are allowed, not ${bad.join(', ')}`);
    if (!Number.isFinite(options.clockSkewSeconds) || options.clockSkewSeconds < 0) throw new TypeError('JwtVerifier: "clockSkewSeconds" must be a non-negative number');
    if (options.issuer === '' || options.audience === '') throw new TypeError('JwtVerifier: "issuer" and "audience" are required');
    this.#options = options;
    this.#getKey = keyGetter(options.keys);
    this.#verifyOptions = {
      algorithms: [...options.algorithms],
      issuer: options.issuer,
      audience: options.audience,
      clockTolerance: options.clockSkewSeconds,
      requiredClaims: ['exp', 'sub'],
      ...(options.requireTokenType ? { typ: 'at+jwt' } : {}),
    };
  }

  async verify(token: string, ctx: VerifyContext): Promise<VerifyResult> {
    let payload: JWTPayload;
    try {
      payload = await verifyWithKeys(token, this.#getKey, { ...this.#verifyOptions, currentDate: new Date(ctx.now) });
    } catch (err) {
      return { ok: false, ...joseFailure(err) };
    }
    if (typeof payload.sub !== 'string' || payload.sub === '') return { ok: false, reason: 'invalid_token', detail: 'sub is not a non-empty string' };
    const binding = checkCertificateBinding(payload.cnf, ctx.certThumbprint);
    if (!binding.ok) return binding;
    return {
      ok: true,
      principal: principalFromClaims({
        claims: payload,
        names: this.#options.claims,
        subject: payload.sub,
        ...(ctx.certThumbprint !== undefined ? { certThumbprint: ctx.certThumbprint } : {}),
      }),
    };
  }
}

function keyGetter(keys: JwtKeySource): KeyGetter {
  if ('jwks' in keys) return createLocalJWKSet(publicOnly(keys.jwks, 'the in-memory JWKS'));
  if ('jwksFile' in keys) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(keys.jwksFile, 'utf8'));
    } catch (err) {
      throw new TypeError(`JwtVerifier: cannot read the JWKS file ${keys.jwksFile}: ${(err as Error).message}`);
    }
    return createLocalJWKSet(publicOnly(parsed, `the JWKS file ${keys.jwksFile}`));
  }
  const url = new URL(keys.jwksUri);
  const remote = createRemoteJWKSet(url, REMOTE_JWKS_OPTIONS);
  return async (header, token) => {
    try {
      return await remote(header, token);
    } catch (err) {
      if (err instanceof errors.JOSEError && TOKEN_KEY_ERRORS.has(err.code)) throw err;
      throw new KeySourceUnavailable(`JWKS ${url.origin}${url.pathname}: ${err instanceof errors.JOSEError ? err.code : ((err as Error | undefined)?.name ?? 'error')}`, { cause: err });
    }
  };
}

/** A configured key set must be a JWKS of public keys: a private key in it is a leak waiting to happen. */
function publicOnly(jwks: unknown, what: string): JSONWebKeySet {
  const keys = (jwks as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) throw new TypeError(`JwtVerifier: ${what} is not a JWKS with keys`);
  for (const k of keys as unknown[]) {
    if (typeof k !== 'object' || k === null) throw new TypeError(`JwtVerifier: ${what} has a member that is not a JWK`);
    if ('d' in k || (k as { kty?: unknown }).kty === 'oct') throw new TypeError(`JwtVerifier: ${what} must hold public keys only`);
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
  if (!(err instanceof errors.JOSEError)) return { reason: 'invalid_token', detail: `unexpected ${(err as Error | undefined)?.name ?? typeof err}` };
  switch (err.code) {
    case 'ERR_JWT_EXPIRED':
      return { reason: 'expired', detail: 'exp is in the past' };
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
      const { claim, reason, payload } = err as errors.JWTClaimValidationFailed;
      const byClaim: Record<string, AuthFailureReason> = { nbf: 'not_yet_valid', iss: 'wrong_issuer', aud: 'wrong_audience', typ: 'wrong_type' };
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
