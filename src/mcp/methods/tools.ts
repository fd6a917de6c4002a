/** `tools/list` and `tools/call` (MCP server/tools). */
import { GatewayError } from '../../errors/gateway-error.js';
import { isJsonObject, type JsonObject } from '../../lib/json-rpc.js';
import { unknownTool } from '../../router/router.js';
import { runCall } from '../call.js';
import { describedTool, describeTerms } from '../describe.js';
import type { MethodHandler } from '../pipeline.js';
import { shows, unknownTarget } from '../steps/decide.js';
import { beginList, cachedList } from './listing.js';

export const listTools: MethodHandler = (ctx, deps) => {
  beginList(ctx, deps);
  const { router, policy } = deps;
  const catalogue = router.catalogue;
  const now = deps.now();
  return cachedList(ctx, deps, 'tools', () => {
    // The whole list in one pass where the engine can (the same answers as one decision per tool).
    const allowed = policy.visibleTargets?.(ctx.principal, catalogue.toolTargets);
    // Pinning (docs/architecture.md §4): a quarantined tool is hidden, like one the policy does not show.
    const shown = [...catalogue.tools.values()].filter((t, i) =>
      allowed !== undefined
        ? allowed[i] === true && !router.isQuarantined(t.upstream, t.original)
        : shows(
            policy,
            ctx.principal,
            'tools/call',
            'tool',
            t.exposed,
            t.upstream,
            now,
            router.isQuarantined(t.upstream, t.original),
          ),
    );
    if (policy.describes !== true) return { tools: shown.map((t) => t.definition) };
    // Policy `describe` (mcp/describe.ts): the decision a call would get words the terms; built once per listing key.
    return {
      tools: shown.map((t) => {
        const decision = policy.decide({
          principal: ctx.principal,
          method: 'tools/call',
          target: { kind: 'tool', name: t.exposed, upstream: t.upstream },
          now,
          argumentsUnchecked: true,
        });
        // A cached result may be as old as the decision's cache ttl: the agent is told so.
        const terms =
          decision.effect === 'allow'
            ? describeTerms(decision, decision.cache !== undefined ? { cacheTtlMs: decision.cache.ttlMs } : {})
            : undefined;
        return terms === undefined ? t.definition : describedTool(t.definition, terms);
      }),
    };
  });
};

export const callTool: MethodHandler = (ctx, deps) => {
  const { params, event } = ctx;
  const name = params.name;
  if (typeof name !== 'string')
    throw new GatewayError('GW_MCP_INVALID_PARAMS', { detail: 'tools/call without a string name' });
  if (params.arguments !== undefined && !isJsonObject(params.arguments))
    throw new GatewayError('GW_MCP_INVALID_PARAMS', { detail: 'arguments must be an object' });
  event.tool = name;
  const target = deps.router.resolve('tool', name);
  if (target === undefined) throw unknownTarget(event, 'unknown_tool', unknownTool(name));
  event.upstream = target.upstream;
  return runCall({
    ctx,
    deps,
    target,
    args: (params.arguments as JsonObject | undefined) ?? {},
    hidden: (detail) => unknownTool(name, detail),
  });
};
