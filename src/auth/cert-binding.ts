/**
 * RFC 8705 §3: a certificate-bound access token carries `cnf: {"x5t#S256": base64url(SHA-256(DER))}` and is
 * accepted only on a connection that presents that certificate. A pure check: no I/O, no clock.
 */
import { timingSafeEqual } from 'node:crypto';
import type { AuthFailureReason } from './authenticator.js';

export type BindingResult =
  | { ok: true }
  | {
      ok: false;
      reason: Extract<AuthFailureReason, 'invalid_token' | 'certificate_required' | 'certificate_mismatch'>;
      detail: string;
    };

const X5T_S256 = 'x5t#S256';

/**
 * @param cnf the token's (or introspection response's) `cnf` member, `undefined` when absent
 * @param certThumbprint `x5t#S256` of the client certificate on this request, when there is one
 *
 * A `cnf` we cannot check (e.g. only `jkt`, RFC 9449 DPoP, or any member besides `x5t#S256`) is refused:
 * ignoring a binding would turn a sender-constrained token back into a bearer token (threat model #4).
 */
export function checkCertificateBinding(cnf: unknown, certThumbprint: string | undefined): BindingResult {
  if (cnf === undefined) return { ok: true };
  if (typeof cnf !== 'object' || cnf === null || Array.isArray(cnf))
    return { ok: false, reason: 'invalid_token', detail: 'cnf is not an object' };
  const members = Object.keys(cnf);
  const unknown = members.filter((m) => m !== X5T_S256);
  if (unknown.length > 0)
    return {
      ok: false,
      reason: 'invalid_token',
      detail: `cnf member(s) we cannot verify: ${unknown.slice(0, 5).join(', ').slice(0, 100)}`,
    };
  const expected = (cnf as Record<string, unknown>)[X5T_S256];
  if (typeof expected !== 'string' || expected === '')
    return { ok: false, reason: 'invalid_token', detail: 'cnf.x5t#S256 is not a string' };
  if (certThumbprint === undefined || certThumbprint === '')
    return {
      ok: false,
      reason: 'certificate_required',
      detail: 'token is bound to a client certificate; none was presented',
    };
  if (!constantTimeEqual(expected, certThumbprint))
    return { ok: false, reason: 'certificate_mismatch', detail: 'client certificate does not match cnf.x5t#S256' };
  return { ok: true };
}

/** Compares two strings without an early exit on the first differing byte (lengths are not secret here). */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}
