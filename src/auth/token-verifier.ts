import type { Principal } from '../identity/principal.js';
import type { AuthFailureReason } from './authenticator.js';

export interface VerifyContext {
  /** The request's client certificate thumbprint, for RFC 8705 `cnf.x5t#S256` binding. */
  certThumbprint?: string;
  /** Epoch milliseconds (injected: tests freeze the clock). */
  now: number;
}

export type VerifyResult =
  { ok: true; principal: Principal } | { ok: false; reason: AuthFailureReason; detail: string };

/**
 * Turns a bearer token into a Principal (docs/architecture.md §3). Implementations: JWT (JWKS/file/dev key),
 * introspection.
 */
export interface TokenVerifier {
  verify(token: string, ctx: VerifyContext): Promise<VerifyResult>;
}
