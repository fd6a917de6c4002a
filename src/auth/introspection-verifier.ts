/**
 * Opaque access tokens through RFC 7662 token introspection, with oauth4webapi (docs/architecture.md §6).
 *
 * Acceptance, in order (each refusal has its own reason; the wire only says `invalid_token`):
 * 1. `active: true` (RFC 7662 §2.2) — else `inactive`.
 * 2. `iss`, when the AS sends it, equals the configured issuer — else `wrong_issuer`.
 * 3. `aud` is present and contains our resource — else `wrong_audience`. RFC 7662 makes `aud` optional, but
 *    MCP authorization §Token Handling says we MUST reject tokens not issued for us (RFC 8707), and without an
 *    audience we cannot tell (threat model #1). An AS that omits `aud` must be configured to send it.
 * 4. `exp`, `nbf` and `iat`, when present, are NumericDates (else `invalid_token`) and pass the time rules of
 *    `token-times.ts` with the configured skew: `exp` in the future, `nbf` and `iat` not (RFC 7662 §2.2 carries
 *    all three; an `iat` ahead of our clock is as wrong here as in a JWT). Without `exp` the AS's `active` is
 *    authoritative and the cache TTL alone bounds how long we believe it. `auth.jwt.maxTokenAgeSeconds` is not
 *    applied: an opaque token's life is the AS's to end, and it says so live, by `active`.
 * 5. `token_type`, when present, is `Bearer` (a refresh token or a DPoP token is not a bearer access token).
 * 6. A subject: `sub`, else `client_id` (client-credentials tokens often have no `sub`).
 * 7. RFC 8705 binding (`cnf.x5t#S256`) against this request's client certificate — checked on every request,
 *    after the cache, because the certificate differs per request. The time rules run on every request too.
 *
 * Cache: keyed by SHA-256 of the token (the token itself is never a key or a log value), LRU-bounded by
 * `cacheMaxEntries`, positive answers for min(`cacheSeconds`, exp − now), refusals for 5 s; an AS failure is
 * never cached. Concurrent introspections of one token share one request.
 */
import { createHash } from 'node:crypto';
import * as oauth from 'oauth4webapi';
import type { IntrospectionConfig } from '../config/types.js';
import type { Principal } from '../identity/principal.js';
import type { AuthFailureReason } from './authenticator.js';
import { checkCertificateBinding } from './cert-binding.js';
import { principalFromClaims, type ClaimNames } from './claims-principal.js';
import { checkTimeRules, checkTokenTimes, type TimeRules, type TokenTimes } from './token-times.js';
import type { TokenVerifier, VerifyContext, VerifyResult } from './token-verifier.js';

/** How long a refusal is remembered: long enough to blunt a flood of bad tokens, short enough not to matter. */
export const NEGATIVE_CACHE_MS = 5000;
/** AS error codes (HTTP 400) that refuse the token itself rather than our request (RFC 7009 §2.2.1, RFC 6750 §3.1). */
const TOKEN_ERRORS = new Set(['unsupported_token_type', 'invalid_token']);
/** Introspection request deadline. */
export const INTROSPECTION_TIMEOUT_MS = 5000;

export interface IntrospectionVerifierOptions {
  endpoint: string;
  issuer: string;
  clientId: string;
  /** The client secret text (read from the `SecretValue` by the composition root). */
  clientSecret: string;
  /** RFC 7662 §2.1: the AS authenticates us; `client_secret_basic` (the default) or `client_secret_post`. */
  clientAuth?: 'client_secret_basic' | 'client_secret_post';
  /** Our resource identifier: the introspection `aud` must contain it. */
  audience: string;
  cacheSeconds: number;
  cacheMaxEntries: number;
  clockSkewSeconds: number;
  claims: ClaimNames;
}

/** What one introspection concluded, independent of the request's certificate (so it can be cached). */
type Outcome =
  | {
      ok: true;
      subject: string;
      claims: Readonly<Record<string, unknown>>;
      cnf: unknown;
      expiresAt: number | undefined;
      times: TokenTimes;
    }
  | { ok: false; reason: AuthFailureReason; detail: string };

interface CacheEntry {
  outcome: Outcome;
  until: number;
}

export class IntrospectionVerifier implements TokenVerifier {
  readonly #options: IntrospectionVerifierOptions;
  readonly #as: oauth.AuthorizationServer;
  readonly #client: oauth.Client;
  readonly #clientAuth: oauth.ClientAuth;
  readonly #insecure: boolean;
  readonly #times: TimeRules;
  /** Map iteration order is insertion order: the first key is the least recently used. */
  readonly #cache = new Map<string, CacheEntry>();
  readonly #inflight = new Map<string, Promise<Outcome>>();

  /** Throws `TypeError` on a misconfiguration (docs/style.md habit 5). */
  constructor(options: IntrospectionVerifierOptions) {
    const url = new URL(options.endpoint);
    // oauth4webapi refuses http: unless told otherwise; we tell it only for a loopback AS (tests, a sidecar).
    this.#insecure = url.protocol === 'http:' && isLoopback(url.hostname);
    if (url.protocol !== 'https:' && !this.#insecure)
      throw new TypeError('IntrospectionVerifier: the introspection endpoint must be https (http only on loopback)');
    if (!Number.isInteger(options.cacheMaxEntries) || options.cacheMaxEntries < 0)
      throw new TypeError('IntrospectionVerifier: "cacheMaxEntries" must be a non-negative integer');
    if (!Number.isFinite(options.cacheSeconds) || options.cacheSeconds < 0)
      throw new TypeError('IntrospectionVerifier: "cacheSeconds" must be a non-negative number');
    if (options.clientSecret === '') throw new TypeError('IntrospectionVerifier: the client secret is empty');
    this.#times = checkTimeRules({ skewSeconds: options.clockSkewSeconds }, 'IntrospectionVerifier');
    this.#options = options;
    this.#as = { issuer: options.issuer, introspection_endpoint: url.href };
    this.#client = { client_id: options.clientId };
    this.#clientAuth =
      options.clientAuth === 'client_secret_post'
        ? oauth.ClientSecretPost(options.clientSecret)
        : oauth.ClientSecretBasic(options.clientSecret);
  }

  /** Number of cached answers (for tests and metrics). */
  get cacheSize(): number {
    return this.#cache.size;
  }

  async verify(token: string, ctx: VerifyContext): Promise<VerifyResult> {
    const outcome = await this.#outcome(token, ctx.now);
    if (!outcome.ok) return outcome;
    // The time rules run on every hit: a cached answer never outlives the token.
    const late = checkTokenTimes(outcome.times, ctx.now, this.#times);
    if (late !== undefined) return late;
    const binding = checkCertificateBinding(outcome.cnf, ctx.certThumbprint);
    if (!binding.ok) return binding;
    const principal: Principal = principalFromClaims({
      claims: outcome.claims,
      names: this.#options.claims,
      subject: outcome.subject,
      ...(ctx.certThumbprint !== undefined ? { certThumbprint: ctx.certThumbprint } : {}),
    });
    return { ok: true, principal };
  }

  async #outcome(token: string, now: number): Promise<Outcome> {
    const key = createHash('sha256').update(token).digest('base64url');
    const hit = this.#cache.get(key);
    if (hit !== undefined) {
      this.#cache.delete(key);
      if (hit.until > now) {
        this.#cache.set(key, hit);
        return hit.outcome;
      }
    }
    let pending = this.#inflight.get(key);
    if (pending === undefined) {
      pending = this.#introspect(token, now).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, pending);
      const outcome = await pending;
      this.#remember(key, outcome, now);
      return outcome;
    }
    return pending;
  }

  #remember(key: string, outcome: Outcome, now: number): void {
    const max = this.#options.cacheMaxEntries;
    if (max === 0) return;
    let ttl: number;
    if (outcome.ok) {
      ttl = this.#options.cacheSeconds * 1000;
      if (outcome.expiresAt !== undefined) ttl = Math.min(ttl, outcome.expiresAt - now);
    } else {
      if (outcome.reason === 'verifier_unavailable') return;
      ttl = NEGATIVE_CACHE_MS;
    }
    if (ttl <= 0) return;
    this.#cache.delete(key);
    this.#cache.set(key, { outcome, until: now + ttl });
    while (this.#cache.size > max) this.#cache.delete(this.#cache.keys().next().value!);
  }

  async #introspect(token: string, now: number): Promise<Outcome> {
    let body: oauth.IntrospectionResponse;
    try {
      const response = await oauth.introspectionRequest(this.#as, this.#client, this.#clientAuth, token, {
        additionalParameters: { token_type_hint: 'access_token' },
        signal: AbortSignal.timeout(INTROSPECTION_TIMEOUT_MS),
        ...(this.#insecure ? { [oauth.allowInsecureRequests]: true } : {}),
      });
      body = await oauth.processIntrospectionResponse(this.#as, this.#client, response);
    } catch (err) {
      // Some ASs answer a token they will not introspect (e.g. a JWT at oidc-provider) with an error instead of
      // `active: false`; that is a statement about the token, not an outage.
      if (err instanceof oauth.ResponseBodyError && err.status === 400 && TOKEN_ERRORS.has(err.error))
        return { ok: false, reason: 'invalid_token', detail: `AS refused to introspect the token: ${err.error}` };
      return { ok: false, reason: 'verifier_unavailable', detail: `introspection failed: ${describe(err)}` };
    }
    return judge(body, { issuer: this.#options.issuer, audience: this.#options.audience, now, rules: this.#times });
  }
}

/** The acceptance rules above, as one pure function over the introspection response. Exported for tests. */
export function judge(
  body: oauth.IntrospectionResponse,
  expect: { issuer: string; audience: string; now: number; rules: TimeRules },
): Outcome {
  if (body.active !== true) return { ok: false, reason: 'inactive', detail: 'introspection says active: false' };
  if (body.iss !== undefined && body.iss !== expect.issuer)
    return { ok: false, reason: 'wrong_issuer', detail: `iss ${bounded(body.iss)}` };
  const aud = body.aud;
  const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
  if (!audiences.includes(expect.audience))
    return {
      ok: false,
      reason: 'wrong_audience',
      detail: aud === undefined ? 'introspection response has no aud' : `aud ${bounded(aud)}`,
    };
  for (const claim of ['exp', 'nbf', 'iat'] as const) {
    const value = body[claim];
    if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value))) {
      return { ok: false, reason: 'invalid_token', detail: `${claim} is not a NumericDate` };
    }
  }
  const times: TokenTimes = { exp: body.exp, nbf: body.nbf, iat: body.iat };
  const late = checkTokenTimes(times, expect.now, expect.rules);
  if (late !== undefined) return late;
  if (body.token_type !== undefined && String(body.token_type).toLowerCase() !== 'bearer')
    return { ok: false, reason: 'wrong_type', detail: `token_type ${bounded(body.token_type)}` };
  const subject =
    typeof body.sub === 'string' && body.sub !== ''
      ? body.sub
      : typeof body.client_id === 'string' && body.client_id !== ''
        ? body.client_id
        : undefined;
  if (subject === undefined)
    return { ok: false, reason: 'invalid_token', detail: 'introspection response has neither sub nor client_id' };
  const { active: _active, ...claims } = body;
  const expiresAt = typeof body.exp === 'number' ? body.exp * 1000 : undefined;
  return { ok: true, subject, claims: Object.freeze(claims), cnf: body.cnf, expiresAt, times };
}

/** A class name and code, never a message (an AS error text could echo what we sent). */
function describe(err: unknown): string {
  if (err instanceof oauth.ResponseBodyError) return `AS answered ${err.status} ${err.error}`;
  if (err instanceof oauth.OperationProcessingError) return `${err.code ?? 'invalid response'}`;
  const e = err as { name?: string; code?: string } | undefined;
  return `${e?.name ?? typeof err}${e?.code !== undefined ? ` ${e.code}` : ''}`;
}

function bounded(value: unknown): string {
  const text = JSON.stringify(value) ?? 'absent';
  return text.length > 120 ? `${text.slice(0, 120)}…` : text;
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127(?:\.\d{1,3}){3}$/.test(hostname);
}

/** `IntrospectionConfig` → options; the secret is read here, in auth/, and nowhere else. */
export function introspectionOptions(
  config: IntrospectionConfig,
  common: { audience: string; clockSkewSeconds: number; claims: ClaimNames },
): IntrospectionVerifierOptions {
  return {
    endpoint: config.endpoint,
    issuer: config.issuer,
    clientId: config.clientId,
    clientSecret: config.clientSecret.reveal(),
    audience: common.audience,
    cacheSeconds: config.cacheSeconds,
    cacheMaxEntries: config.cacheMaxEntries,
    clockSkewSeconds: common.clockSkewSeconds,
    claims: common.claims,
  };
}
