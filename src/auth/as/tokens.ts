/**
 * Credentials the authorization server hands out. Codes and refresh tokens are 256-bit random strings
 * (only their SHA-256 is stored); access tokens are JWTs per RFC 9068 (`typ: at+jwt`, `iss`, `sub`,
 * `aud`, `client_id`, `scope`, `iat`, `exp`, `jti`), optionally certificate-bound (RFC 8705 §3).
 */
import { createHash, randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import type { SigningKey } from './keys.js';

/** 256 bits of CSPRNG output, base64url. */
export function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

/** The store key for a credential: a dump of the store does not hand out working codes or tokens. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

export interface AccessTokenClaims {
  readonly issuer: string;
  readonly subject: string;
  readonly audience: string;
  readonly clientId: string;
  readonly scopes: readonly string[];
  /** Epoch seconds. */
  readonly now: number;
  readonly ttlSeconds: number;
  /** Claim name → groups (from the IdP), when the user has any. */
  readonly groups?: { readonly claim: string; readonly values: readonly string[] };
  /** RFC 8705 `cnf.x5t#S256`. */
  readonly certThumbprint?: string;
}

export interface MintedAccessToken {
  readonly token: string;
  readonly jti: string;
  /** Epoch seconds. */
  readonly expiresAt: number;
}

export async function mintAccessToken(key: SigningKey, c: AccessTokenClaims): Promise<MintedAccessToken> {
  const jti = randomBytes(16).toString('base64url');
  const expiresAt = c.now + c.ttlSeconds;
  const payload: Record<string, unknown> = { client_id: c.clientId, scope: c.scopes.join(' ') };
  if (c.groups !== undefined && c.groups.values.length > 0) payload[c.groups.claim] = [...c.groups.values];
  if (c.certThumbprint !== undefined) payload.cnf = { 'x5t#S256': c.certThumbprint };
  const token = await new SignJWT(payload)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' })
    .setIssuer(c.issuer)
    .setSubject(c.subject)
    .setAudience(c.audience)
    .setIssuedAt(c.now)
    .setExpirationTime(expiresAt)
    .setJti(jti)
    .sign(key.privateKey);
  return { token, jti, expiresAt };
}
