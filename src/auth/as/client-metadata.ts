/**
 * Validation of client metadata, shared by RFC 7591 registration and client ID metadata documents: both
 * describe public clients (`token_endpoint_auth_method: none`) using the authorization code flow with
 * PKCE. Pure: no I/O, no clock.
 */
import { redirectUriProblem } from './redirect-uri.js';

export const SUPPORTED_GRANT_TYPES = ['authorization_code', 'refresh_token'] as const;
export const MAX_REDIRECT_URIS = 10;
export const MAX_CLIENT_NAME_LENGTH = 200;

export interface ValidClientMetadata {
  readonly clientName?: string;
  readonly redirectUris: readonly string[];
  readonly grantTypes: readonly string[];
  readonly scope?: string;
}

export type ClientMetadataResult =
  | { readonly ok: true; readonly value: ValidClientMetadata }
  | { readonly ok: false; readonly error: 'invalid_redirect_uri' | 'invalid_client_metadata'; readonly detail: string };

const bad = (detail: string): ClientMetadataResult => ({ ok: false, error: 'invalid_client_metadata', detail });

export function validateClientMetadata(
  doc: unknown,
  opts: { scopesSupported: readonly string[]; requireClientName: boolean },
): ClientMetadataResult {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return bad('metadata is not a JSON object');
  const m = doc as Record<string, unknown>;

  const uris = m.redirect_uris;
  if (!Array.isArray(uris) || uris.length === 0)
    return { ok: false, error: 'invalid_redirect_uri', detail: 'redirect_uris missing or empty' };
  if (uris.length > MAX_REDIRECT_URIS)
    return { ok: false, error: 'invalid_redirect_uri', detail: `more than ${MAX_REDIRECT_URIS} redirect_uris` };
  for (const uri of uris) {
    if (typeof uri !== 'string')
      return { ok: false, error: 'invalid_redirect_uri', detail: 'redirect_uris entry is not a string' };
    const problem = redirectUriProblem(uri);
    if (problem !== undefined)
      return { ok: false, error: 'invalid_redirect_uri', detail: `redirect_uri refused: ${problem}` };
  }

  const method = m.token_endpoint_auth_method;
  if (method !== undefined && method !== 'none')
    return bad('only public clients (token_endpoint_auth_method "none") may register');
  if ('client_secret' in m) return bad('client_secret must not be supplied');

  let grantTypes: readonly string[] = SUPPORTED_GRANT_TYPES;
  if (m.grant_types !== undefined) {
    if (!isStringArray(m.grant_types) || m.grant_types.length === 0)
      return bad('grant_types must be a non-empty array of strings');
    if (!m.grant_types.every((g) => (SUPPORTED_GRANT_TYPES as readonly string[]).includes(g)))
      return bad('unsupported grant type');
    if (!m.grant_types.includes('authorization_code')) return bad('grant_types must include authorization_code');
    grantTypes = [...new Set(m.grant_types)];
  }
  if (m.response_types !== undefined) {
    if (!isStringArray(m.response_types) || !m.response_types.every((r) => r === 'code'))
      return bad('only response_type "code" is supported');
  }

  let clientName: string | undefined;
  if (m.client_name !== undefined) {
    if (typeof m.client_name !== 'string' || m.client_name.trim() === '')
      return bad('client_name must be a non-empty string');
    if (m.client_name.length > MAX_CLIENT_NAME_LENGTH || /[\u0000-\u001f\u007f]/.test(m.client_name))
      return bad('client_name too long or has control characters');
    clientName = m.client_name;
  } else if (opts.requireClientName) {
    return bad('client_name is required');
  }

  let scope: string | undefined;
  if (m.scope !== undefined) {
    if (typeof m.scope !== 'string') return bad('scope must be a string');
    const scopes = m.scope.split(' ').filter((s) => s !== '');
    if (!scopes.every((s) => opts.scopesSupported.includes(s))) return bad('scope includes an unsupported value');
    scope = scopes.join(' ');
  }

  return {
    ok: true,
    value: {
      ...(clientName !== undefined ? { clientName } : {}),
      redirectUris: [...(uris as string[])],
      grantTypes,
      ...(scope !== undefined ? { scope } : {}),
    },
  };
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}
