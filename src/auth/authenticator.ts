import type { IncomingHttpHeaders } from 'node:http';
import type { SecretValue } from '../config/types.js';
import type { Principal } from '../identity/principal.js';

/** A client certificate as the edge saw it: on this TLS connection, or forwarded by a trusted proxy. */
export interface CertIdentity {
  subject: string;
  sans: readonly string[];
  /** base64url(SHA-256(DER)) — RFC 8705 §3.1 `x5t#S256`. */
  thumbprint: string;
}

/** What auth sees of a request. The token is read here and nowhere after (docs/architecture.md §2). */
export interface AuthRequest {
  headers: IncomingHttpHeaders;
  remoteAddress: string | undefined;
  /** Node's raw name/value list: `headers` keeps only the first of repeated `Authorization` headers, this shows them all. */
  rawHeaders?: readonly string[];
  clientCert?: CertIdentity;
}

/** Why a request was refused: the reason is for metrics and audit, never for the wire. */
export type AuthFailureReason =
  | 'missing_token'
  | 'malformed_header'
  | 'invalid_token'
  | 'expired'
  | 'not_yet_valid'
  | 'wrong_issuer'
  | 'wrong_audience'
  | 'wrong_type'
  | 'bad_signature'
  | 'unknown_key'
  | 'disallowed_algorithm'
  | 'inactive'
  | 'revoked'
  | 'certificate_required'
  | 'certificate_mismatch'
  | 'insufficient_scope'
  | 'verifier_unavailable';

export type AuthResult =
  | {
      ok: true;
      principal: Principal;
      /**
       * The bearer token that was verified, for outbound identity only (token exchange presents it at the configured
       * token endpoint): a SecretValue, so that no log or record can print it. Absent without a token (auth none).
       */
      token?: SecretValue;
    }
  | { ok: false; status: 400 | 401 | 403 | 503; wwwAuthenticate: string; reason: AuthFailureReason; detail?: string };

/** Step ② of the pipeline: a request becomes a Principal, or a challenge. */
export interface Authenticator {
  authenticate(req: AuthRequest): AuthResult | Promise<AuthResult>;
}

const ANONYMOUS: Principal = Object.freeze({
  subject: 'anonymous',
  scopes: new Set<string>(),
  groups: [],
  anonymous: true,
});

/**
 * `auth.mode: none`: every request is the anonymous principal. The config loader allows this mode only on
 * a loopback host, and the gateway logs a warning at start.
 */
export class LoopbackOnlyAnonymous implements Authenticator {
  authenticate(): AuthResult {
    return { ok: true, principal: ANONYMOUS };
  }
}
