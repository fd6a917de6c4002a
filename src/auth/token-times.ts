/**
 * The time rules every access token is held to, as one pure function with the clock passed in (docs/style.md habit 4).
 * `JwtVerifier` and `IntrospectionVerifier` run it on every request, cache hit or not, so a remembered
 * verification never outlives a rule that depends on the moment (threat model #3, #4).
 *
 * Times are NumericDate seconds (RFC 7519 §2); `now` (epoch ms) is floored to seconds and the comparisons are
 * jose's own (`validateClaimsSet`), so a cached answer and a fresh verification agree to the second:
 * - `exp` (RFC 7519 §4.1.4): refused once exp ≤ now − skew;
 * - `nbf` (RFC 7519 §4.1.5): refused while nbf > now + skew;
 * - `iat` (RFC 7519 §4.1.6): refused when iat > now + skew. No token is issued in the future: an `iat` ahead of
 *   our clock by more than the skew is a broken issuer clock or a token minted to look fresh later. jose checks this
 *   only when `maxTokenAge` is given, so it is checked here, whatever the options;
 * - maximum age (off unless configured; OpenID Connect Core §3.1.3.7 item 10 "reject tokens that were issued too
 *   far away from the current time"): refused when now − iat − skew > maxAge, and refused without `iat`.
 */

/** NumericDate seconds; absent claims are undefined (their presence rules are the caller's). */
export interface TokenTimes {
  readonly exp?: number | undefined;
  readonly nbf?: number | undefined;
  readonly iat?: number | undefined;
}

export interface TimeRules {
  /** Tolerance for clock differences between the issuer and us (`auth.clockSkewSeconds`). */
  readonly skewSeconds: number;
  /** Refuse tokens issued longer ago than this (`auth.jwt.maxTokenAgeSeconds`); undefined: no limit. */
  readonly maxAgeSeconds?: number | undefined;
}

export interface TimeFailure {
  readonly ok: false;
  readonly reason: 'expired' | 'not_yet_valid' | 'invalid_token';
  readonly detail: string;
}

/** Throws `TypeError` on rules that cannot be applied (docs/style.md habit 5: checked once, at construction). */
export function checkTimeRules(rules: TimeRules, who: string): TimeRules {
  if (!Number.isFinite(rules.skewSeconds) || rules.skewSeconds < 0) {
    throw new TypeError(`${who}: "clockSkewSeconds" must be a non-negative number`);
  }
  const max = rules.maxAgeSeconds;
  if (max !== undefined && (!Number.isInteger(max) || max <= 0)) {
    throw new TypeError(`${who}: "maxTokenAgeSeconds" must be a positive integer`);
  }
  return Object.freeze({ skewSeconds: rules.skewSeconds, ...(max !== undefined ? { maxAgeSeconds: max } : {}) });
}

/** undefined when the token's times are acceptable at `nowMs`; otherwise why not (no allocation on success). */
export function checkTokenTimes(times: TokenTimes, nowMs: number, rules: TimeRules): TimeFailure | undefined {
  const now = Math.floor(nowMs / 1000);
  const skew = rules.skewSeconds;
  const { exp, nbf, iat } = times;
  if (exp !== undefined && exp <= now - skew) return { ok: false, reason: 'expired', detail: 'exp is in the past' };
  if (nbf !== undefined && nbf > now + skew) {
    return { ok: false, reason: 'not_yet_valid', detail: 'nbf is in the future' };
  }
  if (iat !== undefined && iat > now + skew) {
    return { ok: false, reason: 'not_yet_valid', detail: 'iat is in the future (beyond the clock skew)' };
  }
  const max = rules.maxAgeSeconds;
  if (max !== undefined) {
    if (iat === undefined) {
      return { ok: false, reason: 'invalid_token', detail: 'iat missing (maxTokenAgeSeconds needs it)' };
    }
    if (now - iat - skew > max) {
      return { ok: false, reason: 'expired', detail: `iat is more than ${max} s ago (maxTokenAgeSeconds)` };
    }
  }
  return undefined;
}
