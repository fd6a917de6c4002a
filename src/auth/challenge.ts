/**
 * `WWW-Authenticate` challenges of the resource server (RFC 6750 §3, RFC 9728 §5.1, MCP authorization
 * §Protected Resource Metadata Discovery and §Scope Challenge Handling). The wire text is fixed and generic:
 * the rich failure reason goes to audit and metrics, never into `error_description`.
 */

/** RFC 9728 §3.1: the metadata of `https://gw.example/mcp` lives at `https://gw.example/.well-known/oauth-protected-resource/mcp`. */
export const PRM_WELL_KNOWN = '/.well-known/oauth-protected-resource';

/**
 * The protected resource metadata URL for a resource identifier: its origin, the well-known prefix, then
 * its path (RFC 9728 §3.1 inserts the well-known segment between host and path; a bare `/` path adds nothing).
 */
export function protectedResourceMetadataUrl(resource: string): string {
  const url = new URL(resource);
  return `${url.origin}${PRM_WELL_KNOWN}${resourcePath(resource)}`;
}

/** The path of a resource identifier without a trailing slash; `''` for the origin itself. */
export function resourcePath(resource: string): string {
  const path = new URL(resource).pathname;
  return path === '/' ? '' : path.replace(/\/+$/, '');
}

export interface ChallengeContext {
  /** URL of our protected resource metadata (RFC 9728 §5.1 `resource_metadata`). */
  resourceMetadata: string;
  /** Scopes every request needs (`auth.requiredScopes`), advertised so clients ask for them up front. */
  requiredScopes: readonly string[];
}

/**
 * 401 for a request without a bearer token. RFC 6750 §3.1: "If the request lacks any authentication
 * information … the resource server SHOULD NOT include an error code or other error information."
 */
export function missingTokenChallenge(ctx: ChallengeContext): string {
  return bearer([
    ['resource_metadata', ctx.resourceMetadata],
    ...(ctx.requiredScopes.length > 0 ? ([['scope', ctx.requiredScopes.join(' ')]] as const) : []),
  ]);
}

/** 401 for a token that is malformed, expired, revoked, not ours or otherwise refused (RFC 6750 §3.1 `invalid_token`). */
export function invalidTokenChallenge(ctx: ChallengeContext): string {
  return bearer([
    ['error', 'invalid_token'],
    ['error_description', 'The access token is invalid'],
    ['resource_metadata', ctx.resourceMetadata],
  ]);
}

/**
 * 400 for a request that carries its token the wrong way (RFC 6750 §3.1 `invalid_request`: "uses more than one
 * method for including an access token, or is otherwise malformed"): in the query string, in two `Authorization`
 * headers, or as a `Bearer` credential that is not one token68 value. No token was looked at, so no
 * `invalid_token`; `resource_metadata` only where metadata is served (not in `auth.mode: none`).
 */
export function invalidRequestChallenge(ctx: Pick<ChallengeContext, 'resourceMetadata'> | undefined): string {
  return bearer([
    ['error', 'invalid_request'],
    ['error_description', 'Send the access token once, in one Authorization: Bearer header'],
    ...(ctx !== undefined ? ([['resource_metadata', ctx.resourceMetadata]] as const) : []),
  ]);
}

/**
 * 403 for a valid token without the scopes needed (RFC 6750 §3.1 `insufficient_scope`; MCP §Scope Challenge
 * Handling). `scopes` is the full set the request needs, so a client can step up in one authorization.
 */
export function insufficientScopeChallenge(ctx: ChallengeContext, scopes: readonly string[]): string {
  return bearer([
    ['error', 'insufficient_scope'],
    ['scope', scopes.join(' ')],
    ['resource_metadata', ctx.resourceMetadata],
    ['error_description', 'The access token does not grant the required scope'],
  ]);
}

/**
 * 403 for a call the policy refuses for a missing scope (MCP §Scope Challenge Handling): `scope` lists the scopes
 * the token already holds plus the ones the target needs, so that a step-up authorization keeps what the client
 * had (the spec asks for the scopes needed "in addition to" the existing ones, not instead of them).
 */
export function policyScopeChallenge(
  ctx: Pick<ChallengeContext, 'resourceMetadata'>,
  held: Iterable<string>,
  required: readonly string[],
): string {
  const scopes = [...new Set([...held, ...required])];
  return insufficientScopeChallenge({ resourceMetadata: ctx.resourceMetadata, requiredScopes: [] }, scopes);
}

function bearer(params: readonly (readonly [string, string])[]): string {
  return `Bearer ${params.map(([k, v]) => `${k}=${quote(v)}`).join(', ')}`;
}

/**
 * RFC 9110 §5.6.4 quoted-string: `"` and `\` are escaped with `\`; control characters (CR/LF above all) and
 * non-ASCII are dropped, so no value can split the header or smuggle a second challenge.
 */
export function quote(value: string): string {
  return `"${value.replace(/[^\x20-\x7e]/g, '').replace(/["\\]/g, '\\$&')}"`;
}
