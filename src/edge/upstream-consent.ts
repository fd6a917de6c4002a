/**
 * The HTTP side of per-user OAuth to upstreams (docs/authentication.md "Per-user OAuth to upstreams"):
 *
 * - `GET /oauth/upstream/<upstream>/start?ticket=…` — the consent URL a client showed its user. The single-use ticket
 *   becomes a redirect to the upstream's authorization server, and the browser gets a secret cookie (HttpOnly,
 *   SameSite=Lax, Secure on https, path `/oauth/upstream/`) whose hash the sealed `state` carries.
 * - `GET /oauth/upstream/callback` — needs that state, the same browser's cookie and an unused nonce (threat model
 *   #2: a replayed callback, a swapped state, a callback without the user's start are refused).
 * - `DELETE /oauth/upstream/<upstream>/grant` — the caller revokes their own grant, authenticated like `/mcp`.
 *
 * Pages are plain, say nothing of why a flow was refused (the reason goes to the log and the audit), and are never
 * cached or framed.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditSink } from '../audit/audit-sink.js';
import type { Principal } from '../identity/principal.js';
import type { UserOAuthFlows } from '../outbound/user-oauth/flows.js';
import {
  CALLBACK_PATH,
  CONSENT_COOKIE_PREFIX,
  CONSENT_PATH_PREFIX,
  ConsentFlowError,
} from '../outbound/user-oauth/user-oauth.js';
import type { Logger } from 'pino';

export interface UpstreamConsentOptions {
  readonly flows: UserOAuthFlows;
  readonly audit: AuditSink;
  readonly logger: Logger;
  /** Whether the public base is https (the cookie is Secure then). */
  readonly secureCookies: () => boolean;
  /** The edge's authentication of a request (answers the refusal itself and returns undefined). */
  readonly authenticate: (
    request: FastifyRequest,
    reply: FastifyReply,
  ) => Promise<{ principal: Principal } | undefined>;
}

const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
};

function page(reply: FastifyReply, status: number, title: string, text: string): FastifyReply {
  return reply
    .code(status)
    .headers(PAGE_HEADERS)
    .send(`<!doctype html><meta charset="utf-8"><title>${title}</title><h1>${title}</h1><p>${text}</p>`);
}

/** `Cookie` header → name → value (the first of a name wins). */
export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    if (!out.has(name)) out.set(name, part.slice(eq + 1).trim());
  }
  return out;
}

export function registerUpstreamConsent(app: FastifyInstance, opts: UpstreamConsentOptions): void {
  const { flows, audit, logger } = opts;
  const refused = (reply: FastifyReply, upstream: string | undefined, err: unknown): FastifyReply => {
    const reason = err instanceof ConsentFlowError ? err.reason : err instanceof Error ? err.name : 'failed';
    logger.info({ upstream, reason }, 'upstream consent refused');
    audit.record({
      type: 'upstream.grant',
      reason: 'consent_refused',
      detail: reason,
      ...(upstream !== undefined ? { upstream } : {}),
    });
    return page(
      reply,
      400,
      'This authorization link cannot be used',
      'It has expired, was already used, or was opened in another browser. Retry the call in your MCP client to get a new link.',
    );
  };

  app.get<{ Params: { upstream: string }; Querystring: { ticket?: string } }>(
    `${CONSENT_PATH_PREFIX}/:upstream/start`,
    async (request, reply) => {
      const { upstream } = request.params;
      if (!flows.has(upstream)) return refused(reply, undefined, new ConsentFlowError('unknown_upstream'));
      const ticket = typeof request.query.ticket === 'string' ? request.query.ticket : '';
      try {
        const started = await flows.start(upstream, ticket);
        const secure = opts.secureCookies() ? '; Secure' : '';
        return reply
          .code(302)
          .headers({ ...PAGE_HEADERS, location: started.location })
          .header(
            'set-cookie',
            `${started.cookie.name}=${started.cookie.value}; Path=${CONSENT_PATH_PREFIX}/; Max-Age=${started.cookie.maxAgeSeconds}; HttpOnly; SameSite=Lax${secure}`,
          )
          .send();
      } catch (err) {
        return refused(reply, upstream, err);
      }
    },
  );

  app.get(CALLBACK_PATH, async (request, reply) => {
    const params = new URL(request.url, 'http://callback.invalid').searchParams;
    const cookies = parseCookies(request.headers.cookie);
    try {
      const upstream = await flows.callback(params, cookies);
      // The flow's cookie has done its job.
      const clear = [...cookies.keys()]
        .filter((n) => n.startsWith(CONSENT_COOKIE_PREFIX))
        .map((n) => `${n}=; Path=${CONSENT_PATH_PREFIX}/; Max-Age=0; HttpOnly; SameSite=Lax`);
      if (clear.length > 0) void reply.header('set-cookie', clear);
      return page(
        reply,
        200,
        'Authorized',
        `The gateway may now call ${escapeHtml(upstream)} on your behalf. You can close this window and retry in your MCP client.`,
      );
    } catch (err) {
      return refused(reply, undefined, err);
    }
  });

  app.delete<{ Params: { upstream: string } }>(`${CONSENT_PATH_PREFIX}/:upstream/grant`, async (request, reply) => {
    const authenticated = await opts.authenticate(request, reply);
    if (authenticated === undefined) return reply;
    const { upstream } = request.params;
    if (!flows.has(upstream))
      return reply.code(404).headers({ 'cache-control': 'no-store' }).send({ error: 'unknown upstream' });
    const revoked = await flows.revokeOwn(upstream, authenticated.principal);
    return reply.code(200).headers({ 'cache-control': 'no-store' }).send({ upstream, revoked });
  });
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
