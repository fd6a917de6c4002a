/**
 * OAuth protocol errors of the built-in authorization server (RFC 6749 §4.1.2.1, §5.2; RFC 7591 §3.2.2;
 * RFC 8707 §2; RFC 7009 §2.2.1). The wire gets the code and a fixed description this module owns; the
 * `detail` — what exactly was wrong — goes to the log only (docs/style.md habit 3).
 */

export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'unsupported_response_type'
  | 'invalid_scope'
  | 'invalid_target'
  | 'access_denied'
  | 'server_error'
  | 'temporarily_unavailable'
  | 'invalid_redirect_uri'
  | 'invalid_client_metadata'
  | 'unsupported_token_type'
  | 'invalid_token';

const DESCRIPTIONS: Record<OAuthErrorCode, string> = {
  invalid_request: 'The request is missing a parameter, repeats one, or is otherwise malformed',
  invalid_client: 'Client authentication failed',
  invalid_grant: 'The grant is invalid, expired, revoked or was issued to another client',
  unauthorized_client: 'The client may not use this grant type',
  unsupported_grant_type: 'Unsupported grant type',
  unsupported_response_type: 'Only response_type=code is supported',
  invalid_scope: 'The requested scope is invalid or not allowed',
  invalid_target: 'The requested resource is not served by this authorization server',
  access_denied: 'Access denied',
  server_error: 'The authorization server could not complete the request',
  temporarily_unavailable: 'The authorization server is temporarily unavailable',
  invalid_redirect_uri: 'Redirect URIs must be https, or http on a loopback address, without fragment',
  invalid_client_metadata: 'The client metadata is invalid',
  unsupported_token_type: 'Unsupported token type',
  invalid_token: 'A valid initial access token is required',
};

export class OAuthError extends Error {
  readonly error: OAuthErrorCode;
  /** Public: a fixed text, or one this server composed (never request or upstream text). */
  readonly description: string;
  readonly status: number;
  /** For the log only. */
  readonly detail: string;

  constructor(error: OAuthErrorCode, detail: string, opts: { description?: string; status?: number } = {}) {
    super(`${error}: ${detail}`);
    this.name = 'OAuthError';
    this.error = error;
    this.detail = detail;
    this.description = opts.description ?? DESCRIPTIONS[error];
    this.status = opts.status ?? defaultStatus(error);
  }

  toJSON(): { error: OAuthErrorCode; error_description: string } {
    return { error: this.error, error_description: this.description };
  }
}

function defaultStatus(error: OAuthErrorCode): number {
  switch (error) {
    case 'invalid_client':
    case 'invalid_token':
      return 401;
    case 'server_error':
      return 500;
    case 'temporarily_unavailable':
      return 503;
    default:
      return 400;
  }
}

export function isOAuthError(err: unknown): err is OAuthError {
  return err instanceof OAuthError;
}
