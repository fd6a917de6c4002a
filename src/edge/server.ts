import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { AuditSink, ReasonCounter } from '../audit/audit-sink.js';
import type { Authenticator } from '../auth/authenticator.js';
import { hasQueryToken } from '../auth/bearer.js';
import { invalidRequestChallenge, policyScopeChallenge, protectedResourceMetadataUrl } from '../auth/challenge.js';
import type { GatehouseConfig, SecretValue } from '../config/types.js';
import { GatewayError, toGatewayError, toRpcError } from '../errors/gateway-error.js';
import type { ErrorCode } from '../errors/codes.js';
import { Cancellation } from '../lib/cancellation.js';
import { classify, rpcError, type JsonRpcRequest, type JsonRpcResponse } from '../lib/json-rpc.js';
import type { Principal } from '../identity/principal.js';
import type { FrontDoor } from '../mcp/front-door.js';
import { allowsBatches, isModernVersion, isSupportedVersion } from '../mcp/protocol-versions.js';
import { auditRequestId, whoFields } from '../mcp/audit-fields.js';
import { claimsModern, readRequestMeta } from '../mcp/request-meta.js';
import type { ClientSession } from '../mcp/session.js';
import type { RequestStream } from '../mcp/streams.js';
import { addJsonTextParser, parseJsonBody } from './body-text.js';
import { clientCertReader, type ClientCertOf } from './client-cert.js';
import { registerHttpLimits, type HttpLimitsOptions } from './http-limits.js';
import { ANSWER_UNDER_PRESSURE, registerOverload, socketTimeouts } from './overload.js';
import { HttpRequestStream, HttpSessionStream } from './http-streams.js';
import { isLoopbackHostname, OriginPolicy } from './origin.js';
import { checkRoutingHeaders, checkVersionHeader } from './routing-headers.js';
import { httpsOptions } from './tls.js';
import { registerWellKnown } from './well-known.js';
import { registerUpstreamConsent } from './upstream-consent.js';
import type { UserOAuthFlows } from '../outbound/user-oauth/flows.js';

export interface Readiness {
  ready: boolean;
  detail: Record<string, unknown>;
}

export interface EdgeOptions {
  audit: AuditSink;
  authFailures: ReasonCounter;
  config: GatehouseConfig;
  frontDoor: FrontDoor;
  authenticator: Authenticator;
  logger: Logger;
  readiness: () => Readiness;
  /**
   * Reads (and strips) a request's client certificate. Default: `clientCertReader(config.server)`. The composition
   * root passes its own when another part of the edge app (the built-in authorization server) needs the same reader.
   */
  clientCertOf?: ClientCertOf;
  /** The shared Redis connection for `server.httpRateLimit` counters (many replicas), and what to do when it fails. */
  httpRateLimitStore?: Pick<HttpLimitsOptions, 'redis' | 'onStoreError'>;
  /** Per-user OAuth to upstreams: the consent, callback and revocation routes (upstream-consent.ts); absent: none. */
  userOAuth?: { flows: UserOAuthFlows; secureCookies: () => boolean };
}

/** The edge's client-certificate reader for this config (forwarded certificates that are ignored are logged at debug). */
export function edgeClientCertReader(config: GatehouseConfig, logger: Logger): ClientCertOf {
  return clientCertReader(config.server, {
    onIgnored: (reason, remoteAddress) =>
      logger.debug({ reason, remoteAddress }, 'forwarded client certificate ignored'),
  });
}

/** The JSON-RPC error message of each authentication refusal status (the reason goes to audit only). */
const AUTH_FAILURE_MESSAGES = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  503: 'Service unavailable',
} as const;

/** A request the authenticator accepted: who, and the token it was verified with (never printed: a SecretValue). */
interface Authenticated {
  readonly principal: Principal;
  readonly token: SecretValue | undefined;
}

/** Batches are bounded like everything else an unauthenticated byte stream can ask for. */
const MAX_BATCH = 32;

/**
 * Step ① of the pipeline: the HTTP server, its limits, the Origin/Host checks, health endpoints and the
 * Streamable HTTP endpoint (POST/GET/DELETE on one path). All status codes come from the error table.
 */
export function buildEdge(opts: EdgeOptions): FastifyInstance {
  const { config, frontDoor, authenticator } = opts;
  const server = config.server;
  const origins = edgeOriginPolicy(config);
  /** Threat model #7: a foreign Origin or Host gets one answer, whatever the route (or a URL no route can parse). */
  const refuseForeign = (request: FastifyRequest, reply: FastifyReply): FastifyReply | undefined => {
    const origin = request.headers.origin;
    if (!origins.originAllowed(origin, request.socket.localPort)) {
      const detail = `origin ${String(origin).slice(0, 100)}`;
      return sendError(reply, new GatewayError('GW_HTTP_ORIGIN_FORBIDDEN', { detail }));
    }
    if (!origins.hostAllowed(request.headers.host)) return sendError(reply, new GatewayError('GW_HTTP_HOST_FORBIDDEN'));
    return undefined;
  };
  const app = Fastify({
    // HTTPS, and client certificates from the configured CA only (docs/architecture.md §6; see tls.ts).
    // Slow clients (edge/overload.ts): Node checks these timeouts only every connectionsCheckingInterval.
    ...(server.tls !== undefined
      ? { https: { ...httpsOptions(server.tls), ...socketTimeouts(server), handshakeTimeout: server.headersTimeoutMs } }
      : { http: socketTimeouts(server) }),
    logger: false,
    bodyLimit: server.bodyLimitBytes,
    keepAliveTimeout: server.keepAliveTimeoutMs,
    requestTimeout: server.requestTimeoutMs,
    return503OnClosing: true,
    exposeHeadRoutes: false,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // A malformed URL (FST_ERR_BAD_URL) skips the error handler; fastify would echo the URL in its own message.
    frameworkErrors: (_err, request, reply) =>
      void (refuseForeign(request, reply) ?? sendError(reply, new GatewayError('GW_MCP_INVALID_REQUEST'))),
  });
  app.server.headersTimeout = server.headersTimeoutMs;
  // Overload protection and HTTP rate limits (edge/overload.ts, edge/http-limits.ts): registered before the routes.
  const limits = registerHttpLimits(app, {
    server,
    audit: opts.audit,
    logger: opts.logger,
    sessionCount: () => frontDoor.sessionCount,
    mayMakeRoom: () => frontDoor.mayMakeRoom(),
    ...opts.httpRateLimitStore,
  });
  const overload = registerOverload(app, { server, audit: opts.audit, addressOf: limits.addressOf });
  // RFC 6750 §3.1: a token in the query string is an `invalid_request` (400), with the challenge that says so.
  const prm = { resourceMetadata: protectedResourceMetadataUrl(config.auth.resource) };
  const queryTokenChallenge = invalidRequestChallenge(config.auth.mode === 'none' ? undefined : prm);

  // Our own JSON handling: strict parsing, prototype-poisoning refusal and batch rules live in one place.
  // All defaults go, not just JSON: fastify's text/plain parser would hand a JSON text to the handler (415 expected).
  app.removeAllContentTypeParsers();
  addJsonTextParser(app, server.bodyLimitBytes);

  // Threat model #7: one hook at the root, so every route — MCP, metadata, health, the authorization server's
  // scope, 404s — answers a foreign Origin or Host the same way.
  app.addHook('onRequest', async (request, reply) => {
    const refused = refuseForeign(request, reply);
    if (refused !== undefined) return refused;
    // MCP authorization §Token Requirements: never in the query string.
    if (hasQueryToken(request.url)) {
      void reply.header('www-authenticate', queryTokenChallenge);
      return sendError(reply, new GatewayError('GW_HTTP_TOKEN_IN_QUERY'));
    }
    return undefined;
  });

  app.setErrorHandler((err: { code?: string; statusCode?: number }, _request, reply) => {
    const mapped: Record<string, ErrorCode> = {
      FST_ERR_CTP_BODY_TOO_LARGE: 'GW_HTTP_BODY_TOO_LARGE',
      FST_ERR_CTP_INVALID_MEDIA_TYPE: 'GW_HTTP_UNSUPPORTED_MEDIA_TYPE',
      FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'GW_MCP_INVALID_REQUEST',
      FST_ERR_CTP_EMPTY_JSON_BODY: 'GW_MCP_PARSE_ERROR',
    };
    const code =
      (err.code !== undefined ? mapped[err.code] : undefined) ??
      ((err.statusCode ?? 500) < 500 ? 'GW_MCP_INVALID_REQUEST' : 'GW_INTERNAL');
    if (code === 'GW_INTERNAL') opts.logger.error({ err }, 'unhandled edge error');
    // Never the library's message or a stack (fastify would serialise error.message).
    return sendError(reply, new GatewayError(code));
  });

  app.setNotFoundHandler((_request, reply) => sendError(reply, new GatewayError('GW_HTTP_NOT_FOUND')));

  app.get('/healthz', { config: ANSWER_UNDER_PRESSURE }, async () => ({ status: 'ok' }));
  app.get('/readyz', { config: ANSWER_UNDER_PRESSURE }, async (request, reply) => {
    const r = opts.readiness();
    const pressure = overload.pressure();
    const ready = r.ready && pressure?.underPressure !== true;
    const status = ready ? 'ready' : 'not ready';
    // The detail names upstreams, stores and the policy revision: not for the internet (server.readinessDetail).
    const detail =
      server.readinessDetail === 'all' ||
      (server.readinessDetail === 'loopback' && isLoopbackPeer(request.socket.remoteAddress));
    if (!detail) return reply.code(ready ? 200 : 503).send({ status });
    return reply
      .code(ready ? 200 : 503)
      .send({ status, ...r.detail, ...(pressure !== undefined ? { overload: pressure } : {}) });
  });
  registerWellKnown(app, config);

  // The client certificate of the connection, or one forwarded by a trusted proxy; a forwarded header is stripped either way.
  const clientCertOf = opts.clientCertOf ?? edgeClientCertReader(config, opts.logger);
  /**
   * The request's principal, and the token it was verified with as a SecretValue (for outbound identity: the
   * credentials step of a forwarded call), or undefined once the refusal has been answered.
   */
  const authenticate = async (request: FastifyRequest, reply: FastifyReply): Promise<Authenticated | undefined> => {
    // An address that keeps failing is refused before its token is looked at (server.httpRateLimit.authFailures).
    if (limits.refuseAfterAuthFailures(request, reply.raw)) return undefined;
    // Read (and strip) first, so the headers auth sees never hold a forwarded certificate.
    const clientCert = clientCertOf(request);
    const result = await authenticator.authenticate({
      headers: request.headers,
      rawHeaders: request.raw.rawHeaders,
      remoteAddress: request.socket.remoteAddress,
      ...(clientCert ? { clientCert } : {}),
    });
    if (result.ok) {
      // docs/architecture.md §2: the inbound token exists only inside edge/ and auth/ — nothing after this step
      // sees it, except as the SecretValue handed to the credentials step (outbound identity).
      stripAuthorization(request);
      return { principal: result.principal, token: result.token };
    }
    opts.logger.debug(
      { status: result.status, reason: result.reason, detail: result.detail },
      'authentication refused',
    );
    // Counted by reason and recorded, never with the token (issue: every authentication failure leaves a record).
    opts.authFailures.inc(result.reason);
    // A malformed Authorization header (400 invalid_request) is a failed authentication too.
    if (result.status === 401 || result.status === 400) limits.authFailed(request);
    opts.audit.record({
      type: 'auth.failure',
      reason: result.reason,
      status: result.status,
      ...(result.detail !== undefined ? { detail: result.detail } : {}),
      ...(request.socket.remoteAddress !== undefined ? { remoteAddress: request.socket.remoteAddress } : {}),
      ...(clientCert ? { certThumbprint: clientCert.thumbprint } : {}),
    });
    // 503: the key source or introspection endpoint is down; the token may be fine, so no challenge, and a retry hint.
    const headers: Record<string, string> = { 'content-type': 'application/json', 'cache-control': 'no-store' };
    if (result.wwwAuthenticate !== '') headers['www-authenticate'] = result.wwwAuthenticate;
    if (result.status === 503) headers['retry-after'] = '5';
    reply.raw.writeHead(result.status, headers);
    const message = AUTH_FAILURE_MESSAGES[result.status];
    reply.raw.end(JSON.stringify(rpcError(null, { code: result.status === 503 ? -32603 : -32600, message })));
    return undefined;
  };

  if (opts.userOAuth !== undefined && opts.userOAuth.flows.size > 0)
    registerUpstreamConsent(app, {
      ...opts.userOAuth,
      audit: opts.audit,
      logger: opts.logger,
      authenticate,
    });

  const path = server.path;
  const resourceMetadata = protectedResourceMetadataUrl(config.auth.resource);
  /** The policy's insufficient_scope, as the 403 challenge auth answers with (MCP §Scope Challenge Handling). */
  const scopeChallenge = (err: GatewayError, principal: Principal): string | undefined => {
    if (err.code !== 'GW_AUTH_INSUFFICIENT_SCOPE') return undefined;
    const required = Array.isArray(err.data?.requiredScopes)
      ? (err.data.requiredScopes as unknown[]).filter((s): s is string => typeof s === 'string')
      : [];
    return policyScopeChallenge({ resourceMetadata }, principal.scopes, required);
  };

  app.post(path, { onRequest: limits.newSession }, async (request, reply) => {
    reply.hijack();
    const res = reply.raw;
    try {
      if (!acceptsBoth(request.headers.accept)) throw new GatewayError('GW_HTTP_NOT_ACCEPTABLE');
      const authenticated = await authenticate(request, reply);
      if (!authenticated) return;
      const { principal, token } = authenticated;
      const admitted = limits.admitSession(request, res, principal);
      if (admitted !== true && !(await admitted)) return;
      const parsed = parseJsonBody(request.body);
      if (!parsed.ok) throw new GatewayError('GW_MCP_PARSE_ERROR', { detail: parsed.reason });
      const sessionId = headerValue(request.headers['mcp-session-id']);

      if (Array.isArray(parsed.value)) {
        await handleBatch(parsed.value, sessionId, principal, token, request, res);
        return;
      }
      const c = classify(parsed.value);
      if (c.kind === 'invalid') {
        // The id is echoed when it could be read (JSON-RPC 2.0 §5), the reason goes to the log only.
        opts.logger.debug({ reason: c.reason }, 'invalid JSON-RPC message');
        writeJson(res, 400, rpcError(c.id, toRpcError(new GatewayError('GW_MCP_INVALID_REQUEST'))));
        return;
      }
      // MCP 2026-07-28 is chosen by the body (basic/versioning §Backward Compatibility): a `_meta` version claim.
      if (claimsModern(c.message)) {
        if (c.kind === 'request') await handleStateless(c.message, principal, token, request, res);
        else if (c.kind === 'notification')
          writeAccepted(res); // nothing to do: HTTP cancels by closing the stream
        else throw new GatewayError('GW_MCP_INVALID_REQUEST', { detail: 'a 2026-07-28 client sent a response' });
        return;
      }
      // A 2026-07-28 header on a body without the claim is a malformed 2026 request, never a 2025 one.
      if (isModernVersion(headerValue(request.headers['mcp-protocol-version']))) {
        const e = new GatewayError('GW_MCP_META_INVALID', { detail: 'MCP-Protocol-Version 2026-07-28 without _meta' });
        writeJson(res, e.httpStatus, rpcError(c.kind === 'notification' ? null : c.message.id, toRpcError(e)));
        return;
      }

      if (c.kind === 'request' && c.message.method === 'initialize') {
        if (sessionId !== undefined) throw new GatewayError('GW_MCP_ALREADY_INITIALIZED');
        const { session, response } = await frontDoor.initialize(c.message, principal);
        writeJson(res, 200, response, { 'mcp-session-id': session.id });
        return;
      }
      const session = await sessionFor(sessionId, principal, request);
      switch (c.kind) {
        case 'notification':
          frontDoor.notification(session, c.message);
          writeAccepted(res);
          return;
        case 'response':
          frontDoor.response(session, c.message);
          writeAccepted(res);
          return;
        case 'request':
          await frontDoor.request(
            session,
            c.message,
            new HttpRequestStream(res, {}, (err) => scopeChallenge(err, principal)),
            traceparentOf(request),
            token,
          );
          return;
      }
    } catch (err) {
      writeError(res, toGatewayError(err), opts.logger, server.overload.retryAfterSeconds);
    }
  });

  /**
   * A 2026-07-28 request: no session. Its `_meta` (request-meta.ts) and its routing headers (routing-headers.ts) are
   * checked before anything is decided, and refused with the status the revision gives and the request's id; then
   * it runs the same pipeline as a 2025 request. Closing the response stream cancels the call (basic/patterns/
   * cancellation).
   */
  async function handleStateless(
    message: JsonRpcRequest,
    principal: Principal,
    token: SecretValue | undefined,
    request: FastifyRequest,
    res: ServerResponse,
  ): Promise<void> {
    let meta;
    try {
      const h = request.headers;
      checkVersionHeader(headerValue(h['mcp-protocol-version']), message);
      meta = readRequestMeta(message);
      checkRoutingHeaders(
        {
          protocolVersion: headerValue(h['mcp-protocol-version']),
          method: headerValue(h['mcp-method']),
          name: headerValue(h['mcp-name']),
        },
        message,
        meta.protocolVersion,
      );
    } catch (err) {
      const e = toGatewayError(err);
      opts.audit.record({
        type: 'mcp.request',
        requestId: auditRequestId(message.id),
        ...(meta !== undefined ? { protocolVersion: meta.protocolVersion } : {}),
        subject: principal.subject,
        ...whoFields(principal),
        method: message.method.slice(0, 64),
        outcome: 'error',
        errorCode: e.code,
        ...(e.detail !== undefined ? { detail: e.detail } : {}),
      });
      writeJson(res, e.httpStatus, rpcError(message.id, toRpcError(e)));
      return;
    }
    const cancel = new Cancellation();
    res.once('close', () => {
      if (!res.writableEnded) cancel.abort();
    });
    const stream = new HttpRequestStream(res, {}, (err) => scopeChallenge(err, principal), true);
    // 2026-07-28 carries trace context in `_meta` (basic §OpenTelemetry trace context); the header is the fallback.
    const traceparent = meta.traceparent ?? traceparentOf(request);
    await frontDoor.statelessRequest(principal, message, meta, stream, cancel, {
      traceparent,
      paramHeaders: paramHeadersOf(request),
      inboundToken: token,
    });
  }

  /** 2025-03-26 sessions may send batches (MCP 2025-03-26 basic §Batching); later versions may not. */
  async function handleBatch(
    items: unknown[],
    sessionId: string | undefined,
    principal: Principal,
    token: SecretValue | undefined,
    request: FastifyRequest,
    res: ServerResponse,
  ): Promise<void> {
    if (sessionId === undefined) throw new GatewayError('GW_MCP_BATCH_REJECTED', { detail: 'batch without a session' });
    const session = await sessionFor(sessionId, principal, request);
    if (!allowsBatches(session.protocolVersion)) throw new GatewayError('GW_MCP_BATCH_REJECTED');
    if (items.length === 0 || items.length > MAX_BATCH)
      throw new GatewayError('GW_MCP_INVALID_REQUEST', { detail: `batch of ${items.length}` });
    const responses: JsonRpcResponse[] = [];
    const work: Promise<void>[] = [];
    for (const item of items) {
      const c = classify(item);
      if (c.kind === 'invalid') {
        responses.push(rpcError(c.id, toRpcError(new GatewayError('GW_MCP_INVALID_REQUEST'))));
      } else if (c.kind === 'notification') {
        frontDoor.notification(session, c.message);
      } else if (c.kind === 'response') {
        frontDoor.response(session, c.message);
      } else if (c.message.method === 'initialize') {
        responses.push(rpcError(c.message.id, toRpcError(new GatewayError('GW_MCP_ALREADY_INITIALIZED'))));
      } else {
        work.push(frontDoor.request(session, c.message, collectingStream(responses), traceparentOf(request), token));
      }
    }
    await Promise.all(work);
    if (responses.length === 0) writeAccepted(res);
    else writeJson(res, 200, responses);
  }

  /** The session a request names; one another replica issued is rebuilt from its id (docs/architecture.md §7). */
  async function sessionFor(
    sessionId: string | undefined,
    principal: Principal,
    request: FastifyRequest,
  ): Promise<ClientSession> {
    if (sessionId === undefined) throw new GatewayError('GW_MCP_SESSION_REQUIRED');
    const version = headerValue(request.headers['mcp-protocol-version']);
    // transports §Protocol Version Header: an invalid or unsupported value is a 400.
    if (version !== undefined && !isSupportedVersion(version))
      throw new GatewayError('GW_MCP_PROTOCOL_VERSION_UNSUPPORTED', { detail: `version ${version.slice(0, 40)}` });
    return frontDoor.lookup(sessionId, principal);
  }

  app.get(path, async (request, reply) => {
    reply.hijack();
    const res = reply.raw;
    try {
      if (!(request.headers.accept ?? '').includes('text/event-stream'))
        throw new GatewayError('GW_HTTP_NOT_ACCEPTABLE');
      const principal = (await authenticate(request, reply))?.principal;
      if (!principal) return;
      const session = await sessionFor(headerValue(request.headers['mcp-session-id']), principal, request);
      if (session.getStream && !session.getStream.closed) throw new GatewayError('GW_MCP_STREAM_CONFLICT');
      frontDoor.openStream(session, new HttpSessionStream(res));
    } catch (err) {
      writeError(res, toGatewayError(err), opts.logger, server.overload.retryAfterSeconds);
    }
  });

  app.delete(path, async (request, reply) => {
    reply.hijack();
    const res = reply.raw;
    try {
      const principal = (await authenticate(request, reply))?.principal;
      if (!principal) return;
      const session = await sessionFor(headerValue(request.headers['mcp-session-id']), principal, request);
      await frontDoor.deleteSession(session);
      res.writeHead(200, { 'content-length': '0' });
      res.end();
    } catch (err) {
      writeError(res, toGatewayError(err), opts.logger, server.overload.retryAfterSeconds);
    }
  });

  app.route({
    method: ['PUT', 'PATCH', 'OPTIONS', 'HEAD'],
    url: path,
    handler: async (_request, reply) => {
      void reply.header('allow', 'GET, POST, DELETE');
      return sendError(reply, new GatewayError('GW_HTTP_METHOD_NOT_ALLOWED'));
    },
  });

  return app;
}

/**
 * The Origin/Host policy of this config: the gateway's own origins (its loopback names at its port when it listens
 * on loopback; the origins of `auth.resource` and the built-in issuer, whose consent page posts forms) plus
 * `server.allowedOrigins`; the host names of the same URLs plus `server.allowedHosts`.
 */
export function edgeOriginPolicy(config: GatehouseConfig): OriginPolicy {
  const server = config.server;
  const builtinIssuer = config.auth.mode === 'builtin' ? config.auth.builtin?.issuer : undefined;
  const own = [config.auth.resource, builtinIssuer].filter((u): u is string => u !== undefined && u !== '');
  const urls = own.map((u) => new URL(u));
  return new OriginPolicy({
    allowedOrigins: [...server.allowedOrigins, ...urls.map((u) => u.origin)],
    allowedHosts: [...server.allowedHosts, ...urls.map((u) => u.hostname)],
    loopback: isLoopbackHostname(server.host),
    scheme: server.tls !== undefined ? 'https' : 'http',
  });
}

/** Removes the credential from the request once auth has consumed it (agentgateway `jwt.rs` does the same). */
function stripAuthorization(request: FastifyRequest): void {
  // Overwritten, not deleted: `delete` would turn the headers object into a slow dictionary for every later read.
  request.headers.authorization = undefined;
  request.raw.headers.authorization = undefined;
  const raw = request.raw.rawHeaders;
  // The length test first: no lower-cased copy of every other header name per request.
  for (let i = raw.length - 2; i >= 0; i -= 2)
    if (raw[i]!.length === 13 && raw[i]!.toLowerCase() === 'authorization') raw.splice(i, 2);
}

/** The client's W3C `traceparent` (Trace Context §3.2); repeated headers arrive joined and fail its parsing, as they should. */
/** The `Mcp-Param-*` headers by lower-case name after the prefix (Node lower-cases header names). */
/** Most requests carry no `Mcp-Param-*` header: they share this one empty map (no allocation per request). */
const NO_PARAM_HEADERS: ReadonlyMap<string, string> = new Map();

function paramHeadersOf(request: FastifyRequest): ReadonlyMap<string, string> {
  let out: Map<string, string> | undefined;
  const headers = request.headers;
  for (const name in headers) {
    const value = headers[name];
    if (name.startsWith('mcp-param-') && typeof value === 'string')
      (out ??= new Map()).set(name.slice('mcp-param-'.length), value);
  }
  return out ?? NO_PARAM_HEADERS;
}

function traceparentOf(request: FastifyRequest): string | undefined {
  const v = request.headers.traceparent;
  return typeof v === 'string' ? v : undefined;
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** The client MUST accept both (transports §Sending Messages to the Server); the SDK server answers 406 too. */
function acceptsBoth(accept: string | undefined): boolean {
  if (accept === undefined) return false;
  return (
    (accept.includes('application/json') || accept.includes('*/*')) &&
    (accept.includes('text/event-stream') || accept.includes('*/*'))
  );
}

function writeJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function writeAccepted(res: ServerResponse): void {
  res.writeHead(202, { 'content-length': '0' });
  res.end();
}

/** A transport-level failure: the table's status, a JSON-RPC error without id, nothing else. */
function writeError(res: ServerResponse, err: GatewayError, logger: Logger, retryAfterSeconds: number): void {
  if (err.code === 'GW_INTERNAL') logger.error({ err: err.cause ?? err }, 'internal error at the edge');
  if (res.headersSent) {
    if (!res.writableEnded) res.end();
    return;
  }
  // A 503 (session cap, shutting down) says when to come back (RFC 9110 §10.2.3): `server.overload.retryAfterSeconds`,
  // as the edge's own 503s.
  writeJson(
    res,
    err.httpStatus,
    rpcError(null, toRpcError(err)),
    err.httpStatus === 503 ? { 'retry-after': String(retryAfterSeconds) } : {},
  );
}

function sendError(reply: FastifyReply, err: GatewayError): FastifyReply {
  return reply
    .code(err.httpStatus)
    .header('content-type', 'application/json')
    .send(JSON.stringify(rpcError(null, toRpcError(err))));
}

function collectingStream(into: JsonRpcResponse[]): RequestStream {
  let done = false;
  return {
    get closed() {
      return done;
    },
    sendRelated: () => false,
    finish(response) {
      done = true;
      into.push(response);
    },
  };
}

/** The socket peer is this host (an IPv4-mapped address when listening dual-stack on `::`). */
function isLoopbackPeer(address: string | undefined): boolean {
  if (address === undefined) return false;
  return isLoopbackHostname(address.startsWith('::ffff:') ? address.slice(7) : address);
}
