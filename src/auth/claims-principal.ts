/**
 * Builds a `Principal` from verified token claims (a JWT payload or an RFC 7662 introspection response).
 * Pure: the claims were already checked for signature, issuer, audience and time by the caller.
 */
import type { AuthConfig } from '../config/types.js';
import type { Principal } from '../identity/principal.js';

export type ClaimNames = AuthConfig['claims'];

export interface PrincipalInput {
  claims: Readonly<Record<string, unknown>>;
  names: ClaimNames;
  /** The verified subject (JWT `sub`; for introspection `sub`, else `client_id`). */
  subject: string;
  certThumbprint?: string;
}

/** Scopes: a space-separated string (RFC 6749 §3.3, RFC 9068 §2.2.3) or an array of strings (some IdPs, `scp`). */
export function scopesOf(value: unknown): Set<string> {
  if (typeof value === 'string') return new Set(value.split(' ').filter((s) => s !== ''));
  if (Array.isArray(value)) return new Set(value.filter((s): s is string => typeof s === 'string' && s !== ''));
  return new Set();
}

export function principalFromClaims(input: PrincipalInput): Principal {
  const { claims, names } = input;
  const clientId = firstString(claims[names.clientId], claims.azp, claims.client_id);
  const groups = Array.isArray(claims[names.groups])
    ? (claims[names.groups] as unknown[]).filter((g): g is string => typeof g === 'string')
    : [];
  const exp = claims.exp;
  return Object.freeze({
    subject: input.subject,
    ...(clientId !== undefined ? { clientId } : {}),
    ...(typeof claims.iss === 'string' ? { issuer: claims.iss } : {}),
    scopes: scopesOf(claims[names.scope]),
    groups: Object.freeze(groups),
    ...(input.certThumbprint !== undefined ? { certThumbprint: input.certThumbprint } : {}),
    claims: Object.freeze({ ...claims }),
    ...(typeof exp === 'number' && Number.isFinite(exp) ? { expiresAt: exp * 1000 } : {}),
    ...(typeof claims.jti === 'string' ? { tokenId: claims.jti } : {}),
    anonymous: false,
  });
}

function firstString(...values: unknown[]): string | undefined {
  for (const v of values) if (typeof v === 'string' && v !== '') return v;
  return undefined;
}
