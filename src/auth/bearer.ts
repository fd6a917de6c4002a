/**
 * Reads the bearer token from the `Authorization` request header (RFC 6750 §2.1). The only place a token
 * is taken from a request: never from the query string (MCP authorization §Token Requirements; the edge
 * refuses `?access_token=`, see `hasQueryToken`) nor from a form body (RFC 6750 §2.2, which we do not support).
 */
import type { IncomingHttpHeaders } from 'node:http';

/** Tokens longer than this are refused before any parsing (a JWT from a real IdP is a few KiB). */
export const MAX_BEARER_TOKEN_LENGTH = 16 * 1024;

export type BearerResult =
  | { ok: true; token: string }
  /** No `Authorization` header, or one with another scheme (RFC 6750 §3.1: then no error code is sent). */
  | { ok: false; reason: 'missing_token'; detail: string }
  /** A `Bearer` credential that is not one token68 value, too long, or sent in more than one header. */
  | { ok: false; reason: 'malformed_header'; detail: string };

/**
 * RFC 6750 §2.1: `credentials = "Bearer" 1*SP b64token`, `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
 * The scheme is case-insensitive (RFC 9110 §11.1). Node trims the surrounding whitespace of header values.
 */
const BEARER = /^bearer +([A-Za-z0-9\-._~+/]+=*)$/i;
const SCHEME = /^([A-Za-z0-9!#$%&'*+\-.^_`|~]+)(?: |$)/;

/**
 * @param headers the parsed request headers (Node keeps only the first of repeated `Authorization` headers)
 * @param rawHeaders the raw name/value list, when available, so that a repeated header is refused rather than
 *   silently reduced to its first value (two credentials in one request are ambiguous: RFC 6750 §3.1 `invalid_request`)
 */
export function extractBearer(headers: IncomingHttpHeaders, rawHeaders?: readonly string[]): BearerResult {
  const value = headers.authorization as string | string[] | undefined;
  if (value === undefined) return { ok: false, reason: 'missing_token', detail: 'no Authorization header' };
  if (Array.isArray(value) || (rawHeaders !== undefined && countHeader(rawHeaders, 'authorization') > 1)) {
    return { ok: false, reason: 'malformed_header', detail: 'more than one Authorization header' };
  }
  if (value.length > MAX_BEARER_TOKEN_LENGTH + 64)
    return { ok: false, reason: 'malformed_header', detail: `Authorization header of ${value.length} characters` };
  const scheme = SCHEME.exec(value)?.[1];
  if (scheme === undefined)
    return { ok: false, reason: 'malformed_header', detail: 'Authorization header without a scheme' };
  if (scheme.toLowerCase() !== 'bearer')
    return { ok: false, reason: 'missing_token', detail: `Authorization scheme ${scheme.slice(0, 20)} is not Bearer` };
  const token = BEARER.exec(value)?.[1];
  if (token === undefined)
    return { ok: false, reason: 'malformed_header', detail: 'Bearer credential is not a single token68 value' };
  if (token.length > MAX_BEARER_TOKEN_LENGTH)
    return { ok: false, reason: 'malformed_header', detail: `bearer token of ${token.length} characters` };
  return { ok: true, token };
}

function countHeader(rawHeaders: readonly string[], name: string): number {
  let n = 0;
  // The length test first: no lower-cased copy of every other header name per request.
  for (let i = 0; i < rawHeaders.length; i += 2)
    if (rawHeaders[i]!.length === name.length && rawHeaders[i]!.toLowerCase() === name) n++;
  return n;
}

/**
 * Whether a request target carries an RFC 6750 §2.3 `access_token` query parameter, which the edge refuses with
 * 400 `invalid_request` (MCP authorization §Token Requirements: never in the query string; RFC 6750 §3.1). The
 * name is decoded as a form parser would, so `access%5Ftoken=` is refused too. Cheap when there is no query.
 */
export function hasQueryToken(url: string): boolean {
  const q = url.indexOf('?');
  if (q === -1) return false;
  const query = url.slice(q + 1);
  // Only a query that could spell the name, literally or percent-encoded, is parsed.
  if (!query.includes('access_token') && !query.includes('%')) return false;
  return new URLSearchParams(query).has('access_token');
}
