/**
 * The back channel: the token endpoint (OAuth 2.1 §3.2; RFC 6749 §5) and revocation (RFC 7009).
 *
 * - `authorization_code`: public clients; the code is taken atomically (single use). A second redemption
 *   fails AND revokes the token family the first one produced (RFC 9700 §4.5.3: "SHOULD revoke"); PKCE S256
 *   verifier, redirect URI and resource must match what the code was issued for.
 * - `refresh_token`: rotated on every use (OAuth 2.1 §4.3.1 for public clients); presenting an already-used
 *   refresh token revokes the whole family (RFC 9700 §4.14.2); bound to the client.
 * - `client_credentials`: pre-registered machine clients (private_key_jwt or tls_client_auth); mTLS clients
 *   get certificate-bound tokens (RFC 8705 §3, `cnf.x5t#S256`). No refresh token.
 * Every answer carries `Cache-Control: no-store` (RFC 6749 §5.1).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';
import { authenticateClient, type AuthenticatedClient } from './client-auth.js';
import { nowSeconds, type AsContext } from './context.js';
import { OAuthError } from './oauth-error.js';
import { verifyS256 } from './pkce.js';
import { parseScope } from './scopes.js';
import { hashToken, mintAccessToken, randomToken } from './tokens.js';

export function sendOAuthError(reply: FastifyReply, err: OAuthError, ctx: AsContext): FastifyReply {
  if (err.status >= 500)
    ctx.logger.error({ event: 'as.error', error: err.error, detail: err.detail }, 'authorization server error');
  else
    ctx.logger.info(
      { event: 'as.refused', error: err.error, detail: err.detail },
      'authorization server refused a request',
    );
  return reply
    .code(err.status)
    .header('cache-control', 'no-store')
    .header('pragma', 'no-cache')
    .header('content-type', 'application/json')
    .send(JSON.stringify(err.toJSON()));
}

/** RFC 6749 §3.2, §3.1: form-encoded, and no parameter more than once. */
function formOf(request: FastifyRequest): URLSearchParams {
  if (!(request.body instanceof URLSearchParams))
    throw new OAuthError('invalid_request', 'body must be application/x-www-form-urlencoded');
  const form = request.body;
  for (const name of new Set(form.keys()))
    if (form.getAll(name).length > 1) throw new OAuthError('invalid_request', `parameter ${name} repeated`);
  return form;
}

function required(form: URLSearchParams, name: string): string {
  const v = form.get(name);
  if (v === null || v === '') throw new OAuthError('invalid_request', `${name} missing`);
  return v;
}

async function authenticate(
  request: FastifyRequest,
  form: URLSearchParams,
  ctx: AsContext,
): Promise<AuthenticatedClient> {
  return authenticateClient(form, request.headers.authorization, ctx.clientCertOf(request), {
    issuer: ctx.issuer,
    tokenEndpoint: ctx.endpoints.token,
    store: ctx.store,
    machineClients: ctx.machineClients,
    findPublicClient: (id) => ctx.findPublicClient(id),
    now: nowSeconds(ctx),
  });
}

export async function handleToken(request: FastifyRequest, reply: FastifyReply, ctx: AsContext): Promise<FastifyReply> {
  const form = formOf(request);
  const grantType = required(form, 'grant_type');
  if (!['authorization_code', 'refresh_token', 'client_credentials'].includes(grantType))
    throw new OAuthError('unsupported_grant_type', `grant_type ${grantType.slice(0, 40)}`);
  const client = await authenticate(request, form, ctx);
  let body: Record<string, unknown>;
  switch (grantType) {
    case 'authorization_code':
      body = await authorizationCodeGrant(form, client, ctx);
      break;
    case 'refresh_token':
      body = await refreshTokenGrant(form, client, ctx);
      break;
    default:
      body = await clientCredentialsGrant(form, client, ctx);
  }
  return reply.code(200).header('cache-control', 'no-store').header('pragma', 'no-cache').send(body);
}

async function authorizationCodeGrant(
  form: URLSearchParams,
  client: AuthenticatedClient,
  ctx: AsContext,
): Promise<Record<string, unknown>> {
  if (client.kind !== 'public' || !client.client.grantTypes.includes('authorization_code'))
    throw new OAuthError('unauthorized_client', 'client may not use authorization_code');
  const code = required(form, 'code');
  const redirectUri = required(form, 'redirect_uri');
  const verifier = required(form, 'code_verifier');
  const resource = form.get('resource');

  const taken = await ctx.store.takeCode(hashToken(code), ctx.ttl.codeTombstone);
  if (taken.state === 'missing') throw new OAuthError('invalid_grant', 'unknown or expired code');
  const rec = taken.record;
  if (taken.state === 'used') {
    // RFC 9700 §4.5.3 / OAuth 2.1 §4.1.3: a replayed code means it leaked; what it produced is revoked.
    await ctx.store.revokeFamily(rec.familyId, familyTtl(ctx), nowSeconds(ctx));
    ctx.logger.warn(
      { event: 'as.code_reuse', clientId: rec.clientId, subject: rec.subject },
      'authorization code reused: its tokens are revoked',
    );
    throw new OAuthError('invalid_grant', 'code already used');
  }
  if (rec.expiresAt <= nowSeconds(ctx)) throw new OAuthError('invalid_grant', 'code expired');
  if (rec.clientId !== client.clientId) throw new OAuthError('invalid_grant', 'code issued to another client');
  if (rec.redirectUri !== redirectUri)
    throw new OAuthError('invalid_grant', 'redirect_uri differs from the authorization request');
  if (!verifyS256(verifier, rec.codeChallenge)) throw new OAuthError('invalid_grant', 'PKCE verifier does not match');
  if (resource !== null && resource !== rec.resource)
    throw new OAuthError('invalid_target', 'resource differs from the authorization request');

  return issueFamilyTokens(ctx, {
    familyId: rec.familyId,
    clientId: rec.clientId,
    subject: rec.subject,
    scopes: rec.scopes,
    resource: rec.resource,
    groups: rec.groups ?? [],
    withRefresh: client.client.grantTypes.includes('refresh_token'),
  });
}

async function refreshTokenGrant(
  form: URLSearchParams,
  client: AuthenticatedClient,
  ctx: AsContext,
): Promise<Record<string, unknown>> {
  if (client.kind !== 'public' || !client.client.grantTypes.includes('refresh_token'))
    throw new OAuthError('unauthorized_client', 'client may not use refresh_token');
  const token = required(form, 'refresh_token');
  const hash = hashToken(token);
  const scopeParam = form.get('scope');
  const asked = scopeParam === null ? undefined : parseScope(scopeParam);
  if (scopeParam !== null && asked === undefined) throw new OAuthError('invalid_scope', 'scope malformed');
  const resource = form.get('resource');

  const taken = await ctx.store.takeRefreshToken(hash, ctx.ttl.refresh);
  if (taken.state === 'missing') throw new OAuthError('invalid_grant', 'unknown or expired refresh token');
  const rec = taken.record;
  if (taken.state === 'used') {
    await ctx.store.revokeFamily(rec.familyId, familyTtl(ctx), nowSeconds(ctx));
    ctx.logger.warn(
      { event: 'as.refresh_reuse', clientId: rec.clientId, subject: rec.subject },
      'refresh token reused: the family is revoked',
    );
    throw new OAuthError('invalid_grant', 'refresh token already used');
  }
  if (rec.clientId !== client.clientId) {
    await ctx.store.revokeFamily(rec.familyId, familyTtl(ctx), nowSeconds(ctx));
    ctx.logger.warn(
      { event: 'as.refresh_wrong_client', clientId: client.clientId, owner: rec.clientId },
      'refresh token presented by another client: the family is revoked',
    );
    throw new OAuthError('invalid_grant', 'refresh token issued to another client');
  }
  const now = nowSeconds(ctx);
  if (rec.expiresAt <= now) throw new OAuthError('invalid_grant', 'refresh token expired');
  if (await ctx.store.isFamilyRevoked(rec.familyId))
    throw new OAuthError('invalid_grant', 'refresh token family revoked');
  // A malformed request by the rightful client must not cost it the token: put it back as it was.
  const refuse = async (err: OAuthError): Promise<never> => {
    await ctx.store.saveRefreshToken(hash, rec, Math.max(1, rec.expiresAt - now));
    throw err;
  };
  if (asked !== undefined && !asked.every((s) => rec.scopes.includes(s)))
    await refuse(new OAuthError('invalid_scope', 'refresh may only narrow the scope'));
  if (resource !== null && resource !== rec.resource)
    await refuse(new OAuthError('invalid_target', 'resource differs from the grant'));
  const scopes = asked;

  return issueFamilyTokens(ctx, {
    familyId: rec.familyId,
    clientId: rec.clientId,
    subject: rec.subject,
    scopes: scopes ?? rec.scopes,
    grantScopes: rec.scopes,
    resource: rec.resource,
    groups: rec.groups ?? [],
    withRefresh: true,
  });
}

async function clientCredentialsGrant(
  form: URLSearchParams,
  client: AuthenticatedClient,
  ctx: AsContext,
): Promise<Record<string, unknown>> {
  if (client.kind !== 'machine')
    throw new OAuthError('unauthorized_client', 'client_credentials is for pre-registered machine clients');
  const resource = form.get('resource');
  if (resource !== null && resource !== ctx.resource) throw new OAuthError('invalid_target', 'resource is not ours');
  const scopeParam = form.get('scope');
  let scopes: readonly string[] = client.client.scopes;
  if (scopeParam !== null) {
    const asked = parseScope(scopeParam);
    if (asked === undefined || !asked.every((s) => client.client.scopes.includes(s)))
      throw new OAuthError('invalid_scope', 'scope beyond the client registration');
    scopes = asked;
  }
  const now = nowSeconds(ctx);
  const at = await mintAccessToken(ctx.keys.active, {
    issuer: ctx.issuer,
    subject: client.clientId,
    audience: ctx.resource,
    clientId: client.clientId,
    scopes,
    now,
    ttlSeconds: ctx.ttl.access,
    ...(client.certThumbprint !== undefined ? { certThumbprint: client.certThumbprint } : {}),
  });
  ctx.logger.info(
    {
      event: 'as.token_issued',
      grant: 'client_credentials',
      clientId: client.clientId,
      scopes,
      jti: at.jti,
      bound: client.certThumbprint !== undefined,
    },
    'token issued',
  );
  return { access_token: at.token, token_type: 'Bearer', expires_in: ctx.ttl.access, scope: scopes.join(' ') };
}

interface FamilyGrant {
  familyId: string;
  clientId: string;
  subject: string;
  /** Scopes of this access token. */
  scopes: readonly string[];
  /** Scopes of the grant (a narrowed refresh keeps the full grant for the next refresh). */
  grantScopes?: readonly string[];
  resource: string;
  groups: readonly string[];
  withRefresh: boolean;
}

/** The family outlives every token in it. */
function familyTtl(ctx: AsContext): number {
  return Math.max(ctx.ttl.refresh, ctx.ttl.access);
}

async function issueFamilyTokens(ctx: AsContext, g: FamilyGrant): Promise<Record<string, unknown>> {
  const now = nowSeconds(ctx);
  const at = await mintAccessToken(ctx.keys.active, {
    issuer: ctx.issuer,
    subject: g.subject,
    audience: g.resource,
    clientId: g.clientId,
    scopes: g.scopes,
    now,
    ttlSeconds: ctx.ttl.access,
    ...(g.groups.length > 0 ? { groups: { claim: ctx.groupsClaim, values: g.groups } } : {}),
  });
  // Recorded in the family before it is handed out: a concurrent revocation either sees it or blocks it.
  if (!(await ctx.store.addFamilyAccessToken(g.familyId, at.jti, at.expiresAt, familyTtl(ctx)))) {
    throw new OAuthError('invalid_grant', 'grant revoked');
  }
  const body: Record<string, unknown> = {
    access_token: at.token,
    token_type: 'Bearer',
    expires_in: ctx.ttl.access,
    scope: g.scopes.join(' '),
  };
  if (g.withRefresh) {
    const refresh = randomToken();
    await ctx.store.saveRefreshToken(
      hashToken(refresh),
      {
        familyId: g.familyId,
        clientId: g.clientId,
        subject: g.subject,
        scopes: [...(g.grantScopes ?? g.scopes)],
        resource: g.resource,
        ...(g.groups.length > 0 ? { groups: [...g.groups] } : {}),
        expiresAt: now + ctx.ttl.refresh,
      },
      ctx.ttl.refresh,
    );
    body.refresh_token = refresh;
  }
  ctx.logger.info(
    { event: 'as.token_issued', clientId: g.clientId, subject: g.subject, scopes: g.scopes, jti: at.jti },
    'token issued',
  );
  return body;
}

// ─── RFC 7009 ────────────────────────────────────────────────────────────────────────────────────────────

export async function handleRevocation(
  request: FastifyRequest,
  reply: FastifyReply,
  ctx: AsContext,
): Promise<FastifyReply> {
  const form = formOf(request);
  const client = await authenticate(request, form, ctx);
  const token = required(form, 'token');
  const now = nowSeconds(ctx);
  const done = () => reply.code(200).header('cache-control', 'no-store').send();

  // A refresh token revokes its whole family (and the access tokens recorded in it).
  const refresh = await ctx.store.findRefreshToken(hashToken(token));
  if (refresh !== undefined) {
    if (refresh.clientId !== client.clientId)
      throw new OAuthError('unauthorized_client', 'token issued to another client');
    await ctx.store.revokeFamily(refresh.familyId, familyTtl(ctx), now);
    ctx.logger.info(
      { event: 'as.revoked', kind: 'refresh_token', clientId: client.clientId },
      'refresh token family revoked',
    );
    return done();
  }
  // An access token of ours: revoked by jti until it expires. Anything else: 200, nothing to do (§2.2).
  let claims;
  try {
    decodeJwt(token);
    ({ payload: claims } = await jwtVerify(token, jwks(ctx), {
      issuer: ctx.issuer,
      typ: 'at+jwt',
      algorithms: [...new Set(ctx.keys.all.map((k) => k.alg))],
      currentDate: new Date(now * 1000),
    }));
  } catch {
    return done();
  }
  if (claims.client_id !== client.clientId)
    throw new OAuthError('unauthorized_client', 'token issued to another client');
  if (typeof claims.jti === 'string' && typeof claims.exp === 'number' && claims.exp > now) {
    await ctx.store.revokeAccessToken(claims.jti, claims.exp - now);
    ctx.logger.info(
      { event: 'as.revoked', kind: 'access_token', clientId: client.clientId, jti: claims.jti },
      'access token revoked',
    );
  }
  return done();
}

const jwksCache = new WeakMap<AsContext, ReturnType<typeof createLocalJWKSet>>();
function jwks(ctx: AsContext): ReturnType<typeof createLocalJWKSet> {
  let set = jwksCache.get(ctx);
  if (set === undefined) {
    set = createLocalJWKSet({ keys: ctx.keys.jwks.keys.map((k) => ({ ...k })) });
    jwksCache.set(ctx, set);
  }
  return set;
}
