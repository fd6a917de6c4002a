import { isJsonObject, type JsonObject } from '../lib/json-rpc.js';
import { UPSTREAM_REQUESTS, type UpstreamRequest } from '../policy/upstream-requests.js';

/**
 * Which client capability each request an upstream sends the client needs (MCP 2025-11-25 client/sampling,
 * client/elicitation, client/roots), in both directions: what a client declared to the gateway, and what the
 * gateway declares to an upstream.
 */

/** Whether the client declared the capability this request needs. `elicitation: {}` means form only. */
export function clientSupports(caps: JsonObject, request: UpstreamRequest): boolean {
  switch (request) {
    case 'sampling/createMessage':
      return caps.sampling !== undefined;
    case 'roots/list':
      return caps.roots !== undefined;
    case 'elicitation/create:form':
    case 'elicitation/create:url': {
      const e = caps.elicitation;
      if (!isJsonObject(e)) return false;
      if (request === 'elicitation/create:url') return isJsonObject(e.url);
      return Object.keys(e).length === 0 || isJsonObject(e.form);
    }
  }
}

/**
 * The client capabilities to declare to an upstream that may send these requests: none for a request the policy
 * can never allow from it, so an upstream that would only be refused is not invited to ask (server-everything
 * registers its sampling, elicitation and roots tools only for a client that declares them; server-filesystem
 * replaces its allowed folders with the client's roots when the client declares `roots`).
 */
export function declarableCapabilities(requests: ReadonlySet<UpstreamRequest>): JsonObject {
  const out: JsonObject = {};
  if (requests.has('sampling/createMessage')) out.sampling = {};
  const elicitation: JsonObject = {};
  if (requests.has('elicitation/create:form')) elicitation.form = {};
  if (requests.has('elicitation/create:url')) elicitation.url = {};
  if (Object.keys(elicitation).length > 0) out.elicitation = elicitation;
  if (requests.has('roots/list')) out.roots = {};
  return out;
}

/** Every request the gateway relays: for an engine that does not say which it could allow (permit-all). */
export const ALL_UPSTREAM_REQUESTS: ReadonlySet<UpstreamRequest> = new Set(UPSTREAM_REQUESTS);
