/**
 * `server.httpRateLimit`: HTTP-level limits of what is not an MCP call (MCP calls have `limits:`), with
 * `@fastify/rate-limit`'s fixed-window stores (memory, or Redis to share the counters between replicas):
 *
 *   oauth         the built-in authorization server's endpoints     per client address · per OAuth `client_id`
 *   registration  RFC 7591 registration, on top of `oauth`           per client address (no client exists yet)
 *   sessions      POST on the MCP path without `Mcp-Session-Id`     per client address · per authenticated caller
 *
 * Per-address checks run in `onRequest`, before a body is read or a token verified, so a flood costs little.
 * The address is the socket peer, or the `X-Forwarded-For` client when the peer is a trusted proxy
 * (client-address.ts): a spoofed header from anyone else counts against the sender's own address.
 *
 * A refusal is 429 with `Retry-After` (RFC 6585 §4, RFC 9110 §10.2.3) and a JSON body — an OAuth error object on
 * the authorization server's endpoints, a JSON-RPC error on the MCP path — and an audit record
 * `{ type: 'http.rejected', reason: 'rate_limited', status: 429, rule, remoteAddress }` (coalesced per limit and
 * address under a flood, with `count`: rejection-recorder.ts).
 *
 * `sessions` also enforces `server.maxSessions` before authentication, as far as it can without knowing the
 * caller: at a full table that no one could make room in (every session busy, or every subject holding one),
 * a flood of new sessions is answered 503 + `Retry-After` (reason `max_sessions`) while existing sessions keep
 * working. Otherwise the caller is authenticated and the front door decides who gives up a session
 * (src/mcp/session-admission.ts: one subject filling the table cannot lock out another).
 *
 * `perClient` on the OAuth endpoints counts by the `client_id` a request *names*: client ids of public clients
 * are not secret, so anyone can spend a client's budget. It is a ceiling on the traffic one client can cause (a
 * brute force spread over many addresses), kept well above `perIp` so that one abusive address cannot reach it.
 */
import fastifyRateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { AuditSink } from '../audit/audit-sink.js';
import type { AsRouteLimits } from '../auth/as/route-limits.js';
import type { ServerConfig } from '../config/types.js';
import { GatewayError, toRpcError } from '../errors/gateway-error.js';
import { rpcError } from '../lib/json-rpc.js';
import { principalKey, type Principal } from '../identity/principal.js';
import { isModernVersion } from '../mcp/protocol-versions.js';
import { clientAddress } from './client-address.js';
import { RejectionRecorder } from './rejection-recorder.js';
import { trustedProxyMatcher } from './trusted-proxies.js';

export interface HttpLimitsOptions {
  readonly server: Pick<ServerConfig, 'httpRateLimit' | 'trustedProxies' | 'maxSessions' | 'overload'>;
  readonly audit: AuditSink;
  readonly logger: Logger;
  /** Open MCP sessions now (`FrontDoor.sessionCount`), for the `maxSessions` check before authentication. */
  readonly sessionCount: () => number;
  /** At the cap: whether the front door could still admit some caller by ending an idle session (`FrontDoor.mayMakeRoom`). */
  readonly mayMakeRoom?: () => boolean;
  /**
   * The shared Redis connection (`createRedisClient`'s handle), when `limits.store` is `redis`: counters are then shared by
   * every replica, under `<keyPrefix>http-rl:`. Default: in memory, per process.
   */
  readonly redis?: { readonly client: Redis; readonly keyPrefix: string };
  /**
   * When the Redis store fails: `closed` (default) answers 503 — the limit cannot be checked, so the request is
   * refused; `open` lets the request through and logs. The composition root passes `limits.onStoreError`.
   */
  readonly onStoreError?: 'closed' | 'open';
}

type Hook = (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
/** Fastify's callback form: no promise (and no microtask) for the common request that has nothing to check. */
type CallbackHook = (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => void;

export interface HttpLimits extends AsRouteLimits {
  /** onRequest of the MCP POST route: for a request opening a session, `maxSessions` and the per-address limit. */
  readonly newSession: CallbackHook;
  /**
   * Once the caller is authenticated, for a request opening a session: its per-caller limit. False when refused
   * (the answer has been written to `res`, for the hijacked MCP handler).
   */
  admitSession(request: FastifyRequest, res: ServerResponse, principal: Principal): boolean | Promise<boolean>;
  /** The client address of a request (trusted proxies applied), for audit records. */
  addressOf(request: FastifyRequest): string | undefined;
  /**
   * Before authentication on the MCP path: whether this request's address is over its failed-authentication
   * budget (`authFailures`). If so the 429 has been written to `res` and the caller stops — no token is verified.
   */
  refuseAfterAuthFailures(request: FastifyRequest, res: ServerResponse): boolean;
  /** A 401 was answered to this request: counted against its address. */
  authFailed(request: FastifyRequest): void;
}

/** Distinct keys per limiter: the Redis store puts every limiter of this kind under one namespace. */
type Rule =
  | 'oauth.perIp'
  | 'oauth.perClient'
  | 'registration.perIp'
  | 'sessions.perIp'
  | 'sessions.perClient'
  | 'authFailures.perIp';

/** Most keys each in-memory limiter remembers (an LRU): evicting a live key would reset its budget. */
const MEMORY_KEYS = 100_000;
/** Longest `client_id` used as a key (the authorization server refuses longer ones anyway). */
const MAX_CLIENT_ID = 256;

const byApp = new WeakMap<FastifyInstance, HttpLimits>();

/** The limits `registerHttpLimits` installed on this edge app (for the authorization server's routes). */
export function httpLimitsOf(app: FastifyInstance): HttpLimits | undefined {
  return byApp.get(app);
}

/** Registers `@fastify/rate-limit` (no global limit: only the hooks below limit anything) and builds the hooks. */
export function registerHttpLimits(app: FastifyInstance, opts: HttpLimitsOptions): HttpLimits {
  const cfg = opts.server.httpRateLimit;
  const isTrusted = trustedProxyMatcher(opts.server.trustedProxies);
  const addressOf = (request: FastifyRequest): string | undefined => clientAddress(request, isTrusted);
  const retryAfterBusy = opts.server.overload.retryAfterSeconds;

  void app.register(fastifyRateLimit, {
    global: false,
    ...(opts.redis !== undefined ? { redis: opts.redis.client, nameSpace: `${opts.redis.keyPrefix}http-rl:` } : {}),
  });

  /** The key each limiter counts a request under, set by the hook just before it asks. */
  const keyOf = new WeakMap<FastifyRequest, string>();
  const windows: Record<Rule, { max: number; windowSeconds: number }> = {
    'oauth.perIp': { max: cfg.oauth.perIp, windowSeconds: cfg.oauth.windowSeconds },
    'oauth.perClient': { max: cfg.oauth.perClient, windowSeconds: cfg.oauth.windowSeconds },
    'registration.perIp': { max: cfg.registration.perIp, windowSeconds: cfg.registration.windowSeconds },
    'sessions.perIp': { max: cfg.sessions.perIp, windowSeconds: cfg.sessions.windowSeconds },
    'sessions.perClient': { max: cfg.sessions.perClient, windowSeconds: cfg.sessions.windowSeconds },
    'authFailures.perIp': { max: cfg.authFailures.perIp, windowSeconds: cfg.authFailures.windowSeconds },
  };
  type Limiter = ReturnType<FastifyInstance['createRateLimit']>;
  const limiters = new Map<Rule, Limiter>();
  // Created on first use: `createRateLimit` exists once the plugin has loaded (before the first request). Each
  // limiter gets its own store; `cache` (the in-memory LRU size) is honoured there although the typings omit it.
  const limiterFor = (rule: Rule): Limiter => {
    let limiter = limiters.get(rule);
    if (limiter === undefined) {
      const w = windows[rule];
      limiter = app.createRateLimit({
        max: w.max,
        timeWindow: w.windowSeconds * 1000,
        cache: MEMORY_KEYS,
        keyGenerator: (req) => keyOf.get(req) ?? '',
      } as Parameters<FastifyInstance['createRateLimit']>[0]);
      limiters.set(rule, limiter);
    }
    return limiter;
  };

  type Verdict = { ok: true } | { ok: false; status: 429 | 503; retryAfter: number; reason: string; rule: Rule };
  /** Counts `request` under `rule`/`id`; the verdict, never a throw. */
  const consume = async (rule: Rule, id: string, request: FastifyRequest): Promise<Verdict> => {
    keyOf.set(request, `${rule}:${id}`);
    try {
      const r = await limiterFor(rule)(request);
      if (r.isAllowed || !r.isExceeded) return { ok: true };
      return { ok: false, status: 429, retryAfter: Math.max(1, r.ttlInSeconds), reason: 'rate_limited', rule };
    } catch (err) {
      // Only the Redis store can fail. Fail closed unless told otherwise: an unchecked limit is no limit.
      opts.logger.warn(
        { err: err instanceof Error ? err.message : String(err), rule },
        'HTTP rate-limit store unavailable',
      );
      if (opts.onStoreError === 'open') return { ok: true };
      return { ok: false, status: 503, retryAfter: retryAfterBusy, reason: 'rate_limit_store_unavailable', rule };
    }
  };

  // Coalesced per limit and address under a flood: a brute force must not turn into an audit-writing load.
  const recorder = new RejectionRecorder(opts.audit);
  app.addHook('onClose', async () => recorder.flushAll());
  const record = (request: FastifyRequest, v: Exclude<Verdict, { ok: true }>, clientId?: string): void => {
    const remoteAddress = addressOf(request);
    // Keyed like the limit counts (IPv6 per /64): an attacker rotating through its /64 must not get a record per address.
    recorder.record(`${v.rule}|${addressKey(remoteAddress)}|${clientId ?? ''}`, {
      type: 'http.rejected',
      reason: v.reason,
      status: v.status,
      rule: v.rule,
      ...(remoteAddress !== undefined ? { remoteAddress } : {}),
      ...(clientId !== undefined ? { clientId } : {}),
    });
  };

  /** Refusal on an authorization-server endpoint: an RFC 6749 §5.2-shaped error object. */
  const refuseOAuth = (reply: FastifyReply, v: Exclude<Verdict, { ok: true }>): FastifyReply =>
    reply
      .code(v.status)
      .header('retry-after', String(v.retryAfter))
      .header('cache-control', 'no-store')
      .header('content-type', 'application/json')
      .send(
        JSON.stringify({
          error: 'temporarily_unavailable',
          error_description: v.status === 429 ? 'Too many requests' : 'Service temporarily unavailable',
        }),
      );

  const mcpBody = (v: Exclude<Verdict, { ok: true }> | { status: 503; code: 'GW_MCP_SESSION_LIMIT' }): string => {
    const code = 'code' in v ? v.code : v.status === 429 ? 'GW_HTTP_RATE_LIMITED' : 'GW_HTTP_OVERLOADED';
    return JSON.stringify(rpcError(null, toRpcError(new GatewayError(code))));
  };

  const perAddress = (rule: 'oauth.perIp' | 'registration.perIp'): Hook => {
    return async (request, reply) => {
      if (!cfg.enabled) return undefined;
      const v = await consume(rule, addressKey(addressOf(request)), request);
      if (v.ok) return undefined;
      record(request, v);
      return refuseOAuth(reply, v);
    };
  };

  const oauthPerClient: Hook = async (request, reply) => {
    if (!cfg.enabled) return undefined;
    const clientId = namedClientId(request);
    if (clientId === undefined) return undefined;
    const v = await consume('oauth.perClient', clientId, request);
    if (v.ok) return undefined;
    record(request, v, clientId);
    return refuseOAuth(reply, v);
  };

  /**
   * Session creations admitted but not answered yet. Opening a session is asynchronous, so a burst of concurrent
   * requests would all see the same count: each one holds a slot until its response is done (by then the session
   * it opened, if any, is counted by `sessionCount`).
   */
  let opening = 0;
  const newSession: CallbackHook = (request, reply, done) => {
    // A request of an open session (nearly all of them), or a 2026-07-28 one (it opens none): nothing to count.
    if (request.headers['mcp-session-id'] !== undefined || opensNoSession(request)) return done();
    opensSession(request, reply).then(() => done(), done);
  };
  const opensSession: Hook = async (request, reply) => {
    const v: Verdict = cfg.enabled
      ? await consume('sessions.perIp', addressKey(addressOf(request)), request)
      : { ok: true };
    if (!v.ok) {
      record(request, v);
      return reply
        .code(v.status)
        .header('retry-after', String(v.retryAfter))
        .header('content-type', 'application/json')
        .send(mcpBody(v));
    }
    // Checked and reserved with no await in between, so concurrent requests cannot pass on the same count.
    if (opts.sessionCount() + opening >= opts.server.maxSessions && opts.mayMakeRoom?.() !== true) {
      const remoteAddress = addressOf(request);
      recorder.record('max_sessions', {
        type: 'http.rejected',
        reason: 'max_sessions',
        status: 503,
        detail: `${opts.sessionCount()} sessions open, ${opening} opening (maxSessions ${opts.server.maxSessions})`,
        ...(remoteAddress !== undefined ? { remoteAddress } : {}),
      });
      return reply
        .code(503)
        .header('retry-after', String(retryAfterBusy))
        .header('content-type', 'application/json')
        .send(mcpBody({ status: 503, code: 'GW_MCP_SESSION_LIMIT' }));
    }
    opening++;
    reply.raw.once('close', () => opening--);
    return undefined;
  };

  /**
   * Addresses over their failed-authentication budget, until their window ends (epoch ms). The count itself is in
   * the limiter's store (shared through Redis); this map only spares a refused address another count per request.
   * Bounded like the limiters' memory stores: expired entries go first, then the oldest.
   */
  const authBlocked = new Map<string, number>();
  const blockAddress = (key: string, untilMs: number): void => {
    authBlocked.delete(key);
    if (authBlocked.size >= MEMORY_KEYS) {
      const now = Date.now();
      for (const [k, until] of authBlocked) if (until <= now) authBlocked.delete(k);
      if (authBlocked.size >= MEMORY_KEYS) authBlocked.delete(authBlocked.keys().next().value!);
    }
    authBlocked.set(key, untilMs);
  };

  const limits: HttpLimits = {
    oauth: { onRequest: perAddress('oauth.perIp'), preHandler: oauthPerClient },
    registration: { onRequest: perAddress('registration.perIp') },
    newSession,
    admitSession(request, res, principal) {
      // Unauthenticated loopback development (auth.mode none): every caller is the same "anonymous".
      if (!cfg.enabled || principal.anonymous || request.headers['mcp-session-id'] !== undefined) return true;
      if (opensNoSession(request)) return true;
      return admitNewSession(request, res, principal);
    },
    addressOf,
    refuseAfterAuthFailures(request, res) {
      if (!cfg.enabled || authBlocked.size === 0) return false;
      const key = addressKey(addressOf(request));
      const until = authBlocked.get(key);
      if (until === undefined) return false;
      const left = until - Date.now();
      if (left <= 0) {
        authBlocked.delete(key);
        return false;
      }
      const v: Exclude<Verdict, { ok: true }> = {
        ok: false,
        status: 429,
        retryAfter: Math.max(1, Math.ceil(left / 1000)),
        reason: 'rate_limited',
        rule: 'authFailures.perIp',
      };
      record(request, v);
      const body = mcpBody(v);
      res.writeHead(429, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        'retry-after': String(v.retryAfter),
      });
      res.end(body);
      return true;
    },
    authFailed(request) {
      if (!cfg.enabled) return;
      const key = addressKey(addressOf(request));
      void consume('authFailures.perIp', key, request).then((v) => {
        // A store failure is not the client's: only a window really exceeded blocks the address.
        if (!v.ok && v.status === 429) blockAddress(key, Date.now() + v.retryAfter * 1000);
      });
    },
  };
  const admitNewSession = async (
    request: FastifyRequest,
    res: ServerResponse,
    principal: Principal,
  ): Promise<boolean> => {
    const v = await consume('sessions.perClient', principalKey(principal), request);
    if (v.ok) return true;
    record(request, v, principal.clientId);
    const body = mcpBody(v);
    res.writeHead(v.status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'retry-after': String(v.retryAfter),
    });
    res.end(body);
    return false;
  };
  byApp.set(app, limits);
  return limits;
}

/**
 * The per-address key: IPv4 as is, IPv6 by its /64 (one host usually owns a whole /64, so counting single
 * addresses would give it 2^64 budgets). `normalizeIP` also folds IPv4-mapped IPv6 to IPv4.
 */
function addressKey(address: string | undefined): string {
  return address === undefined ? 'unknown' : fastifyRateLimit.normalizeIP(address, 64);
}

/** The OAuth `client_id` a request names: form body (token, revoke) or query (authorize); bounded and printable. */
function namedClientId(request: FastifyRequest): string | undefined {
  const body: unknown = request.body;
  let value: unknown;
  if (body instanceof URLSearchParams) value = body.get('client_id');
  if ((value === undefined || value === null) && request.method === 'GET') {
    const q = request.url.indexOf('?');
    if (q !== -1) value = new URLSearchParams(request.url.slice(q + 1)).get('client_id');
  }
  return typeof value === 'string' && value !== '' && value.length <= MAX_CLIENT_ID && /^[\x21-\x7e]+$/.test(value)
    ? value
    : undefined;
}

/**
 * A 2026-07-28 request opens no session, so the new-session limits do not count it. Its header decides here, before
 * the body is read; a body that does not then claim 2026-07-28 is refused (400) and so opens no session either.
 */
function opensNoSession(request: FastifyRequest): boolean {
  const v = request.headers['mcp-protocol-version'];
  return isModernVersion(Array.isArray(v) ? v[0] : v);
}
