import type { CompiledPolicy } from './model.js';

/**
 * Requests an upstream sends to the client (threat model #19): they spend the user's model budget (sampling), ask
 * the user for data or send them to a web page (elicitation), and read their workspace roots (roots). Each is a
 * privilege the policy grants per upstream and principal with `match.requests`, denied by default.
 *
 * Elicitation is named by mode: URL mode (MCP 2025-11-25 client/elicitation §URL Mode) points the user at a page
 * the upstream chose, a phishing vector, so a rule that grants form elicitation never grants it.
 */
export const UPSTREAM_REQUESTS = [
  'sampling/createMessage',
  'elicitation/create:form',
  'elicitation/create:url',
  'roots/list',
] as const;

export type UpstreamRequest = (typeof UPSTREAM_REQUESTS)[number];

/** The methods the gateway relays to clients; anything else an upstream asks is refused before any decision. */
export const UPSTREAM_REQUEST_METHODS: ReadonlySet<string> = new Set([
  'sampling/createMessage',
  'elicitation/create',
  'roots/list',
]);

/**
 * The policy's name for an upstream's request, or undefined when the gateway relays no such request. `mode` is the
 * elicitation's `params.mode`: absent means form (client/elicitation: "mode … defaults to form"); an unknown
 * mode is nothing the gateway relays.
 */
export function upstreamRequestOf(method: string, mode: unknown): UpstreamRequest | undefined {
  switch (method) {
    case 'sampling/createMessage':
    case 'roots/list':
      return method;
    case 'elicitation/create':
      return mode === undefined || mode === 'form'
        ? 'elicitation/create:form'
        : mode === 'url'
          ? 'elicitation/create:url'
          : undefined;
    default:
      return undefined;
  }
}

/**
 * The requests some principal might be allowed from `upstream` under this policy: an allow rule lists it (for this
 * upstream or every upstream) and no deny rule without conditions takes it back. The gateway declares to the
 * upstream only the client capabilities behind these (mcp/relay-capabilities.ts), so an upstream the policy never
 * lets ask does not ask. An over-approximation: each request is still decided by `decide` for its principal.
 */
export function possibleUpstreamRequests(policy: CompiledPolicy, upstream: string): ReadonlySet<UpstreamRequest> {
  const out = new Set<UpstreamRequest>();
  for (const name of UPSTREAM_REQUESTS) {
    let allowed = false;
    let denied = false;
    policy.index.request.patterns.lookup(name, (rule) => {
      const ups = rule.match.upstreams;
      if (ups !== undefined && !ups.has(upstream)) return;
      if (rule.effect === 'allow') allowed = true;
      else if (rule.identity.length === 0 && rule.scopes === undefined) denied = true;
    });
    if (allowed && !denied) out.add(name);
  }
  return out;
}
