import type { FastifyReply, FastifyRequest } from 'fastify';

type Hook = (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

/**
 * The rate-limit hooks the built-in authorization server's routes take. Declared here, by the routes that use
 * them, so that the edge (which builds them, edge/http-limits.ts) imports auth and never the other way round.
 */
export interface AsRouteLimits {
  /** Authorize, callback, consent, token, revoke, register: per address (onRequest) and per `client_id` (preHandler). */
  readonly oauth: { readonly onRequest: Hook; readonly preHandler: Hook };
  /** Registration only, on top of `oauth`. */
  readonly registration: { readonly onRequest: Hook };
}
