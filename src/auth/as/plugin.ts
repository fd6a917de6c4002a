/**
 * The built-in authorization server (docs/architecture.md §6) as one encapsulated fastify plugin:
 *
 *   GET  /.well-known/oauth-authorization-server[/<path>]   RFC 8414 metadata (also at openid-configuration)
 *   GET  <issuer>/jwks                                      public signing keys (first signs, all published)
 *   POST <issuer>/register                                  RFC 7591, public clients only (when enabled)
 *   GET  <issuer>/authorize                                 code + PKCE S256, exact redirect URI, RFC 8707 resource
 *   GET  <issuer>/authorize/callback                        back from the corporate IdP (oauth4webapi)
 *   GET  <issuer>/consent · POST <issuer>/consent           per (user, client) consent, remembered
 *   POST <issuer>/token                                     authorization_code, refresh_token, client_credentials
 *   POST <issuer>/revoke                                    RFC 7009
 *
 * Browser state. Everything a login needs is kept server-side (the store), keyed by opaque 256-bit random ids
 * that travel in URLs and forms: the IdP `state` (callback) and the consent id (consent page), plus a CSRF
 * token that travels only in the consent form's body. When the issuer is https, the login is also bound to
 * the browser that started it with a `__Host-gatehouse-login` cookie (Secure, HttpOnly, SameSite=Lax, Path=/;
 * only its SHA-256 is stored): a victim sent a link to someone else's login cannot finish it. `__Host-`
 * cookies need https, so a plain-http loopback issuer (tests, local development) runs without that binding.
 *
 * Errors found before the redirect URI is validated render an HTML error page; after that they are
 * redirected to the client with `error`, `state` and `iss` (RFC 9207). Token endpoint errors are RFC 6749
 * §5.2 JSON with `Cache-Control: no-store`. The plugin parses its own bodies (form and JSON, 16 KiB).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuthorizationRequestRecord, PendingConsent } from '../../stores/as/as-store.js';
import { StoreFullError } from '../../stores/as/as-store.js';
import { readUtf8Body } from '../../lib/utf8-body.js';
import { strictFormParams } from '../../lib/utf8.js';
import { ASSERTION_ALGORITHMS } from './client-auth.js';
import { validateClientMetadata } from './client-metadata.js';
import { buildContext, nowSeconds, type AsContext, type AuthorizationServerOptions } from './context.js';
import { IdpClient } from './idp.js';
import { isOAuthError, OAuthError, type OAuthErrorCode } from './oauth-error.js';
import type { AsRouteLimits } from './route-limits.js';
import { consentPage, errorPage, PAGE_HEADERS } from './pages.js';
import { isValidCodeChallenge } from './pkce.js';
import { matchesRegisteredRedirectUri } from './redirect-uri.js';
import { groupsFromClaim, parseScope, scopesFromClaims } from './scopes.js';
import { hashToken, randomToken } from './tokens.js';
import { handleRevocation, handleToken, sendOAuthError } from './token-endpoint.js';

export type { AuthorizationServerOptions } from './context.js';

export const BODY_LIMIT_BYTES = 16 * 1024;
const BINDING_COOKIE = '__Host-gatehouse-login';
const MAX_STATE_LENGTH = 1024;

export interface AuthorizationServer {
  readonly issuer: string;
  /** The RFC 8414 document as served. */
  readonly metadata: Readonly<Record<string, unknown>>;
  /** The public JWKS as served at `/jwks` (the resource server can verify locally with it). */
  readonly jwks: { readonly keys: readonly Readonly<Record<string, unknown>>[] };
  /** True when an access token was revoked before its expiry (RFC 7009, code reuse, refresh-token reuse). */
  isRevoked(jti: string): Promise<boolean>;
}

/**
 * Registers the authorization server in its own encapsulated scope of `app`. `limits`: the edge's HTTP rate limits
 * (`server.httpRateLimit`, edge/http-limits.ts) for every endpoint but the metadata and keys (cheap, cacheable).
 */
export async function registerAuthorizationServer(
  app: FastifyInstance,
  opts: AuthorizationServerOptions,
  limits?: AsRouteLimits,
): Promise<AuthorizationServer> {
  const ctx = await buildContext(opts);
  const metadata = buildMetadata(ctx);
  await app.register(async (scope) => routes(scope, ctx, metadata, limits));
  return Object.freeze({
    issuer: ctx.issuer,
    metadata,
    jwks: ctx.keys.jwks as AuthorizationServer['jwks'],
    isRevoked: (jti: string) => ctx.store.isAccessTokenRevoked(jti),
  });
}

export function buildMetadata(ctx: AsContext): Readonly<Record<string, unknown>> {
  const authMethods = ['none', 'private_key_jwt', 'tls_client_auth'];
  return Object.freeze({
    issuer: ctx.issuer,
    authorization_endpoint: ctx.endpoints.authorize,
    token_endpoint: ctx.endpoints.token,
    ...(ctx.as.registration.enabled ? { registration_endpoint: ctx.endpoints.register } : {}),
    revocation_endpoint: ctx.endpoints.revoke,
    jwks_uri: ctx.endpoints.jwks,
    scopes_supported: [...ctx.scopesSupported],
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
    code_challenge_methods_supported: ['S256'],
    token_endpoint_auth_methods_supported: authMethods,
    token_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGORITHMS,
    revocation_endpoint_auth_methods_supported: authMethods,
    revocation_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGORITHMS,
    client_id_metadata_document_supported: ctx.as.clientIdMetadataDocuments,
    authorization_response_iss_parameter_supported: true,
    tls_client_certificate_bound_access_tokens: true,
  });
}

async function routes(
  app: FastifyInstance,
  ctx: AsContext,
  metadata: Readonly<Record<string, unknown>>,
  limits: AsRouteLimits | undefined,
): Promise<void> {
  // Per address before the body is read, per named client_id once it is parsed.
  const limited =
    limits !== undefined ? { onRequest: limits.oauth.onRequest, preHandler: limits.oauth.preHandler } : {};
  const registerLimited =
    limits !== undefined ? { ...limited, onRequest: [limits.oauth.onRequest, limits.registration.onRequest] } : {};
  // Our own parsers, in our scope only: forms (token, revoke, consent) and JSON (register).
  app.removeAllContentTypeParsers();
  // Bodies are strictly UTF-8 (lib/utf8.ts): a client_id or redirect_uri repaired with U+FFFD is not what was sent.
  const form = { bodyLimit: BODY_LIMIT_BYTES };
  app.addContentTypeParser('application/x-www-form-urlencoded', form, (request, payload, done) => {
    readStrictBody(
      request,
      payload,
      done,
      (text) => strictFormParams(text) ?? new OAuthError('invalid_request', 'not UTF-8'),
    );
  });
  app.addContentTypeParser('application/json', { bodyLimit: BODY_LIMIT_BYTES }, (request, payload, done) => {
    readStrictBody(request, payload, done, (text) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        return new OAuthError('invalid_request', 'body is not JSON');
      }
    });
  });

  app.setErrorHandler((err: { code?: string; statusCode?: number }, request, reply) => {
    if (isOAuthError(err)) return sendOAuthError(reply, err, ctx);
    if (err instanceof StoreFullError)
      return sendOAuthError(reply, new OAuthError('temporarily_unavailable', 'store full'), ctx);
    const status = err.statusCode ?? 500;
    if (status >= 500) ctx.logger.error({ err, url: request.url.split('?')[0] }, 'built-in AS: unexpected error');
    const oauthErr =
      err.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
        ? new OAuthError('invalid_request', 'body too large', { status: 413 })
        : status < 500
          ? new OAuthError('invalid_request', `request refused (${err.code ?? status})`, {
              status: status === 415 ? 400 : status,
            })
          : new OAuthError('server_error', 'unexpected');
    return sendOAuthError(reply, oauthErr, ctx);
  });

  // ── metadata and keys ──
  const sendMetadata = async (_req: FastifyRequest, reply: FastifyReply) =>
    reply.header('cache-control', 'public, max-age=300').send(metadata);
  app.get(`/.well-known/oauth-authorization-server${ctx.prefix}`, sendMetadata);
  app.get(`/.well-known/openid-configuration${ctx.prefix}`, sendMetadata);
  if (ctx.prefix !== '') app.get(`${ctx.prefix}/.well-known/openid-configuration`, sendMetadata);
  app.get(ctx.paths.jwks, async (_req, reply) =>
    reply.header('cache-control', 'public, max-age=300').send(ctx.keys.jwks),
  );

  // ── RFC 7591 dynamic registration ──
  if (ctx.as.registration.enabled)
    app.post(ctx.paths.register, registerLimited, (req, reply) => register(req, reply, ctx));

  // ── the browser flow ──
  app.get(ctx.paths.authorize, limited, (req, reply) => guardPage(reply, ctx, () => authorize(req, reply, ctx)));
  app.get(ctx.paths.callback, limited, (req, reply) => guardPage(reply, ctx, () => callback(req, reply, ctx)));
  app.get(ctx.paths.consent, limited, (req, reply) => guardPage(reply, ctx, () => showConsent(req, reply, ctx)));
  app.post(ctx.paths.consent, limited, (req, reply) => guardPage(reply, ctx, () => decideConsent(req, reply, ctx)));

  // ── back channel ──
  app.post(ctx.paths.token, limited, (req, reply) => handleToken(req, reply, ctx));
  app.post(ctx.paths.revoke, limited, (req, reply) => handleRevocation(req, reply, ctx));
}

// ─── RFC 7591 ────────────────────────────────────────────────────────────────────────────────────────────

async function register(request: FastifyRequest, reply: FastifyReply, ctx: AsContext): Promise<FastifyReply> {
  const iat = ctx.as.registration.initialAccessToken;
  if (iat !== undefined) {
    const header = request.headers.authorization ?? '';
    const presented = /^Bearer ([\x21-\x7e]+)$/i.exec(header)?.[1];
    if (presented === undefined || !constantTimeEqual(presented, iat.reveal())) {
      // RFC 6750 §3.1: a request without credentials gets no error code; a wrong token gets invalid_token.
      const challenge = request.headers.authorization === undefined ? 'Bearer' : 'Bearer error="invalid_token"';
      void reply.header('www-authenticate', challenge);
      throw new OAuthError('invalid_token', 'initial access token missing or wrong');
    }
  }
  if (!(request.headers['content-type'] ?? '').toLowerCase().startsWith('application/json'))
    throw new OAuthError('invalid_client_metadata', 'not JSON');
  const checked = validateClientMetadata(request.body, {
    scopesSupported: ctx.scopesSupported,
    requireClientName: false,
  });
  if (!checked.ok) throw new OAuthError(checked.error, checked.detail);
  const m = checked.value;
  const clientId = randomBytes(18).toString('base64url');
  const issuedAt = nowSeconds(ctx);
  await ctx.store.saveClient(
    { clientId, ...m, tokenEndpointAuthMethod: 'none', issuedAt, source: 'registration' },
    ctx.ttl.registration,
  );
  ctx.logger.info({ event: 'as.client_registered', clientId, redirectUris: m.redirectUris }, 'client registered');
  return reply
    .code(201)
    .header('cache-control', 'no-store')
    .send({
      client_id: clientId,
      client_id_issued_at: issuedAt,
      ...(m.clientName !== undefined ? { client_name: m.clientName } : {}),
      redirect_uris: m.redirectUris,
      grant_types: m.grantTypes,
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      ...(m.scope !== undefined ? { scope: m.scope } : {}),
    });
}

// ─── /authorize ──────────────────────────────────────────────────────────────────────────────────────────

async function authorize(request: FastifyRequest, reply: FastifyReply, ctx: AsContext): Promise<FastifyReply> {
  const params = queryOf(request);
  const single = (name: string): string | undefined =>
    params.getAll(name).length === 1 ? params.get(name)! : undefined;

  // 1. Until the redirect URI is validated, errors are shown here, never redirected (RFC 6749 §4.1.2.1).
  const clientIdValues = params.getAll('client_id');
  if (clientIdValues.length !== 1 || clientIdValues[0] === '')
    return page(reply, 400, 'Invalid request', 'The request does not name exactly one client.');
  const clientId = clientIdValues[0]!;
  const client = await ctx.findPublicClient(clientId);
  if (client === undefined || !client.grantTypes.includes('authorization_code')) {
    ctx.logger.info({ event: 'as.authorize_refused', reason: 'unknown_client' }, 'authorization request refused');
    return page(reply, 400, 'Unknown client', 'This application is not known to the sign-in service.');
  }
  const redirectUris = params.getAll('redirect_uri');
  if (redirectUris.length !== 1 || !matchesRegisteredRedirectUri(redirectUris[0]!, client.redirectUris)) {
    ctx.logger.warn(
      { event: 'as.authorize_refused', reason: 'redirect_uri_mismatch', clientId },
      'authorization request refused',
    );
    return page(
      reply,
      400,
      'Invalid redirect URI',
      'The application asked to return to an address it did not register.',
    );
  }
  const redirectUri = redirectUris[0]!;

  // 2. From here on, errors go back to the client.
  const stateValues = params.getAll('state');
  const state = stateValues.length === 1 && stateValues[0]!.length <= MAX_STATE_LENGTH ? stateValues[0] : undefined;
  const back = (error: OAuthErrorCode, detail: string) => {
    ctx.logger.info(
      { event: 'as.authorize_refused', reason: error, detail, clientId },
      'authorization request refused',
    );
    return redirectWithError(reply, ctx, redirectUri, error, state);
  };
  if (stateValues.length > 1 || (stateValues.length === 1 && state === undefined))
    return back('invalid_request', 'state repeated or too long');
  for (const name of new Set(params.keys()))
    if (params.getAll(name).length > 1) return back('invalid_request', `parameter ${name} repeated`);

  if (single('response_type') !== 'code') return back('unsupported_response_type', 'response_type');
  // RFC 9700 §2.1.1 / OAuth 2.1 §4.1.1: PKCE required, S256 only — a missing method would mean `plain`.
  const challenge = single('code_challenge');
  if (challenge === undefined) return back('invalid_request', 'code_challenge missing');
  if (single('code_challenge_method') !== 'S256') return back('invalid_request', 'code_challenge_method must be S256');
  if (!isValidCodeChallenge(challenge)) return back('invalid_request', 'code_challenge malformed');
  // RFC 8707 §2: the only resource we issue tokens for is ours.
  const resource = single('resource');
  if (resource !== undefined && resource !== ctx.resource) return back('invalid_target', 'resource is not ours');

  const allowed = client.scope !== undefined ? client.scope.split(' ') : ctx.scopesSupported;
  const scopeParam = single('scope');
  let scopes: string[];
  if (scopeParam === undefined) {
    scopes = [...allowed];
  } else {
    const parsed = parseScope(scopeParam);
    if (parsed === undefined || !parsed.every((s) => allowed.includes(s)))
      return back('invalid_scope', 'scope not allowed');
    scopes = parsed;
  }

  const authRequest: AuthorizationRequestRecord = {
    clientId,
    redirectUri,
    codeChallenge: challenge,
    ...(state !== undefined ? { state } : {}),
    resource: ctx.resource,
    scopes,
  };

  // 3. Send the browser to the corporate IdP, with our own state/nonce/PKCE bound to this request.
  const login = IdpClient.newLoginState();
  let idpUrl: URL;
  try {
    idpUrl = await ctx.idp.authorizationUrl(login);
  } catch (err) {
    ctx.logger.error({ event: 'as.idp_unavailable', err: describe(err) }, 'corporate IdP unavailable');
    return redirectWithError(reply, ctx, redirectUri, 'temporarily_unavailable', state);
  }
  const binding = browserBinding(request, reply, ctx);
  await ctx.store.savePendingLogin(
    login.state,
    {
      request: authRequest,
      idpCodeVerifier: login.codeVerifier,
      idpNonce: login.nonce,
      ...(binding !== undefined ? { browserBinding: binding } : {}),
      createdAt: nowSeconds(ctx),
    },
    ctx.ttl.pendingLogin,
  );
  return redirect(reply, 302, idpUrl.href);
}

// ─── /authorize/callback ─────────────────────────────────────────────────────────────────────────────────

async function callback(request: FastifyRequest, reply: FastifyReply, ctx: AsContext): Promise<FastifyReply> {
  const params = queryOf(request);
  const state = params.get('state');
  const pending = state === null || state.length > 256 ? undefined : await ctx.store.takePendingLogin(state);
  if (pending === undefined)
    return page(
      reply,
      400,
      'Sign-in expired',
      'This sign-in has expired or was already completed. Start again from your application.',
    );
  if (!bindingMatches(request, ctx, pending.browserBinding)) {
    ctx.logger.warn(
      { event: 'as.browser_binding_mismatch', step: 'callback', clientId: pending.request.clientId },
      'login finished in another browser',
    );
    return page(
      reply,
      400,
      'Sign-in not started here',
      'This sign-in was started in another browser. Start again from your application.',
    );
  }
  const req = pending.request;
  const result = await ctx.idp.completeLogin(params, {
    state: state!,
    nonce: pending.idpNonce,
    codeVerifier: pending.idpCodeVerifier,
  });
  if (!result.ok) {
    ctx.logger.warn(
      { event: 'as.idp_login_failed', reason: result.reason, detail: result.detail, clientId: req.clientId },
      'IdP login failed',
    );
    const error: OAuthErrorCode =
      result.reason === 'idp_denied'
        ? 'access_denied'
        : result.reason === 'unavailable'
          ? 'temporarily_unavailable'
          : 'server_error';
    return redirectWithError(reply, ctx, req.redirectUri, error, req.state);
  }
  if (result.warning !== undefined)
    ctx.logger.warn(
      { event: 'as.idp_userinfo_failed', detail: result.warning },
      'IdP UserInfo failed; using ID token claims',
    );

  // Scopes: what was asked for, and what the user's IdP claims earn (auth.builtin.scopeMapping).
  const earned = scopesFromClaims(result.claims, ctx.as.scopeMapping);
  const granted = req.scopes.filter((s) => earned.has(s));
  if (req.scopes.length > 0 && granted.length === 0) {
    ctx.logger.info(
      { event: 'as.no_scopes', subject: result.subject, clientId: req.clientId, requested: req.scopes },
      'user earns none of the requested scopes',
    );
    return redirectWithError(reply, ctx, req.redirectUri, 'access_denied', req.state);
  }
  const groups = groupsFromClaim(result.claims[ctx.groupsClaim]);

  // Remembered consent (per user and client, for this redirect URI and at least these scopes): no page.
  const remembered = await ctx.store.findConsent(result.subject, req.clientId);
  if (
    remembered !== undefined &&
    remembered.redirectUri === req.redirectUri &&
    granted.every((s) => remembered.scopes.includes(s))
  ) {
    return issueCode(reply, ctx, req, result.subject, granted, groups, 302);
  }
  const id = randomToken();
  const consent: PendingConsent = {
    request: req,
    subject: result.subject,
    grantedScopes: granted,
    ...(groups.length > 0 ? { groups } : {}),
    csrf: randomToken(),
    ...(pending.browserBinding !== undefined ? { browserBinding: pending.browserBinding } : {}),
    createdAt: nowSeconds(ctx),
  };
  await ctx.store.savePendingConsent(id, consent, ctx.ttl.pendingConsent);
  return redirect(reply, 303, `${ctx.endpoints.consent}?id=${encodeURIComponent(id)}`);
}

// ─── /consent ────────────────────────────────────────────────────────────────────────────────────────────

async function showConsent(request: FastifyRequest, reply: FastifyReply, ctx: AsContext): Promise<FastifyReply> {
  const id = queryOf(request).get('id');
  const pending = id === null || id.length > 100 ? undefined : await ctx.store.findPendingConsent(id);
  if (pending === undefined)
    return page(
      reply,
      400,
      'Request expired',
      'This request has expired or was already answered. Start again from your application.',
    );
  if (!bindingMatches(request, ctx, pending.browserBinding))
    return page(reply, 400, 'Sign-in not started here', 'This sign-in was started in another browser.');
  const client = await ctx.findPublicClient(pending.request.clientId);
  if (client === undefined)
    return page(reply, 400, 'Unknown client', 'This application is no longer known to the sign-in service.');
  const html = consentPage({
    action: ctx.endpoints.consent,
    id: id!,
    csrf: pending.csrf,
    clientId: client.clientId,
    clientName: client.clientName,
    source: client.source,
    redirectUri: pending.request.redirectUri,
    scopes: pending.grantedScopes,
    subject: pending.subject,
  });
  return reply.code(200).headers(PAGE_HEADERS).send(html);
}

async function decideConsent(request: FastifyRequest, reply: FastifyReply, ctx: AsContext): Promise<FastifyReply> {
  const form = request.body instanceof URLSearchParams ? request.body : new URLSearchParams();
  const id = form.get('id');
  const csrf = form.get('csrf');
  const decision = form.get('decision');
  const pending = id === null || id.length > 100 ? undefined : await ctx.store.findPendingConsent(id);
  if (pending === undefined)
    return page(reply, 400, 'Request expired', 'This request has expired or was already answered.');
  if (
    csrf === null ||
    !constantTimeEqual(csrf, pending.csrf) ||
    !bindingMatches(request, ctx, pending.browserBinding)
  ) {
    ctx.logger.warn({ event: 'as.consent_csrf_failed', clientId: pending.request.clientId }, 'consent form rejected');
    return page(reply, 400, 'Request rejected', 'The form could not be verified. Start again from your application.');
  }
  // Checked first, consumed second: only the verified submission can use the record up.
  if ((await ctx.store.takePendingConsent(id!)) === undefined)
    return page(reply, 400, 'Request expired', 'This request was already answered.');
  const req = pending.request;
  if (decision !== 'approve') {
    ctx.logger.info(
      { event: 'as.consent_denied', subject: pending.subject, clientId: req.clientId },
      'user denied consent',
    );
    return redirectWithError(reply, ctx, req.redirectUri, 'access_denied', req.state, 303);
  }
  await ctx.store.saveConsent(
    pending.subject,
    req.clientId,
    { scopes: pending.grantedScopes, redirectUri: req.redirectUri, grantedAt: nowSeconds(ctx) },
    ctx.ttl.consent,
  );
  ctx.logger.info(
    { event: 'as.consent_granted', subject: pending.subject, clientId: req.clientId, scopes: pending.grantedScopes },
    'user granted consent',
  );
  return issueCode(reply, ctx, req, pending.subject, pending.grantedScopes, pending.groups ?? [], 303);
}

/** A single-use code (256-bit, ≤ 60 s) bound to client, redirect URI, PKCE challenge, resource, scopes, subject. */
async function issueCode(
  reply: FastifyReply,
  ctx: AsContext,
  req: AuthorizationRequestRecord,
  subject: string,
  scopes: readonly string[],
  groups: readonly string[],
  status: 302 | 303,
): Promise<FastifyReply> {
  const code = randomToken();
  await ctx.store.saveCode(
    hashToken(code),
    {
      clientId: req.clientId,
      redirectUri: req.redirectUri,
      codeChallenge: req.codeChallenge,
      resource: req.resource,
      scopes: [...scopes],
      subject,
      ...(groups.length > 0 ? { groups: [...groups] } : {}),
      familyId: randomToken(),
      expiresAt: nowSeconds(ctx) + ctx.ttl.code,
    },
    ctx.ttl.code,
  );
  const url = new URL(req.redirectUri);
  url.searchParams.set('code', code);
  if (req.state !== undefined) url.searchParams.set('state', req.state);
  url.searchParams.set('iss', ctx.issuer);
  return redirect(reply, status, url.href);
}

// ─── helpers ─────────────────────────────────────────────────────────────────────────────────────────────

/** The query string as the client sent it: repeated parameters stay visible (fastify's parser would merge them). */
function queryOf(request: FastifyRequest): URLSearchParams {
  const q = request.url.indexOf('?');
  return new URLSearchParams(q === -1 ? '' : request.url.slice(q + 1));
}

function redirect(reply: FastifyReply, status: 302 | 303, location: string): FastifyReply {
  return reply
    .code(status)
    .header('location', location)
    .header('cache-control', 'no-store')
    .header('referrer-policy', 'no-referrer')
    .send();
}

/** RFC 6749 §4.1.2.1 with RFC 9207 `iss`: only ever to a redirect URI already matched against the registration. */
function redirectWithError(
  reply: FastifyReply,
  ctx: AsContext,
  redirectUri: string,
  error: OAuthErrorCode,
  state: string | undefined,
  status: 302 | 303 = 302,
): FastifyReply {
  const url = new URL(redirectUri);
  url.searchParams.set('error', error);
  url.searchParams.set('error_description', new OAuthError(error, '').description);
  if (state !== undefined) url.searchParams.set('state', state);
  url.searchParams.set('iss', ctx.issuer);
  return redirect(reply, status, url.href);
}

function page(reply: FastifyReply, status: number, title: string, message: string): FastifyReply {
  return reply.code(status).headers(PAGE_HEADERS).send(errorPage(title, message));
}

/** HTML endpoints answer with a page, even when something unexpected fails (never a stack, never JSON). */
async function guardPage(
  reply: FastifyReply,
  ctx: AsContext,
  work: () => Promise<FastifyReply>,
): Promise<FastifyReply> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof StoreFullError)
      return page(reply, 503, 'Temporarily unavailable', 'The sign-in service is busy. Try again in a moment.');
    ctx.logger.error({ err }, 'built-in AS: unexpected error on a browser endpoint');
    return page(reply, 500, 'Something went wrong', 'The sign-in service could not complete the request.');
  }
}

function cookieValue(request: FastifyRequest, name: string): string | undefined {
  const header = request.headers.cookie;
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Sets (or reuses — two tabs may log in at once) the browser-binding cookie; returns the hash to store. */
function browserBinding(request: FastifyRequest, reply: FastifyReply, ctx: AsContext): string | undefined {
  if (!ctx.bindBrowser) return undefined;
  let value = cookieValue(request, BINDING_COOKIE);
  if (value === undefined || !/^[A-Za-z0-9_-]{43}$/.test(value)) {
    value = randomToken();
    void reply.header(
      'set-cookie',
      `${BINDING_COOKIE}=${value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=${ctx.ttl.pendingLogin + ctx.ttl.pendingConsent}`,
    );
  }
  return hashToken(value);
}

function bindingMatches(request: FastifyRequest, ctx: AsContext, expected: string | undefined): boolean {
  if (!ctx.bindBrowser) return true;
  const value = cookieValue(request, BINDING_COOKIE);
  return expected !== undefined && value !== undefined && constantTimeEqual(hashToken(value), expected);
}

/** Compares secrets without leaking where they differ (both sides hashed to equal length first). */
export function constantTimeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb) && a.length === b.length;
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message.slice(0, 200)}` : 'unknown error';
}

/** A body as strict UTF-8 text, then `parse`d (an OAuthError result refuses the request). */
function readStrictBody(
  request: FastifyRequest,
  payload: Readable,
  done: (err: Error | null, body?: unknown) => void,
  parse: (text: string) => unknown,
): void {
  readUtf8Body(payload, BODY_LIMIT_BYTES, Number(request.headers['content-length']), (r) => {
    if (r.ok) {
      const body = parse(r.text);
      if (body instanceof OAuthError) done(body, undefined);
      else done(null, body);
      return;
    }
    const why = r.problem === 'not-utf8' ? 'body is not UTF-8' : `body could not be read (${r.problem})`;
    const status = r.problem === 'too-large' ? { status: 413 } : {};
    done(new OAuthError('invalid_request', r.problem === 'too-large' ? 'body too large' : why, status), undefined);
  });
}
