/**
 * `auth.jwt.requiredClaims`: the claims a JWT access token must carry besides `iss`, `aud`, `exp` and `sub`, which
 * are always required. RFC 9068 §2.2 makes `iat`, `jti` and `client_id` REQUIRED in JWT access tokens too, but
 * many IdPs omit one of them, so the set is the deployment's: by default RFC 9068's when `auth.requireTokenType`
 * says the tokens are RFC 9068 tokens (`typ: at+jwt`), none otherwise.
 */

/** RFC 9068 §2.2 required claims beyond `iss`, `exp`, `aud` and `sub`. */
export const RFC9068_REQUIRED_CLAIMS: readonly string[] = Object.freeze(['iat', 'jti', 'client_id']);

/** The default of `auth.jwt.requiredClaims` (and of the dev and built-in verifiers, which have no `jwt` block). */
export function defaultRequiredClaims(requireTokenType: boolean): readonly string[] {
  return requireTokenType ? RFC9068_REQUIRED_CLAIMS : Object.freeze([]);
}
