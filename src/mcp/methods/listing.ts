/** What every list method shares: the method-level policy step, the cursor rule and the per-key list cache. */
import { GatewayError } from '../../errors/gateway-error.js';
import type { JsonObject } from '../../lib/json-rpc.js';
import type { CachedList } from '../list-cache.js';
import type { PipelineDeps } from '../pipeline.js';
import type { RequestContext } from '../request-context.js';
import { decide, hiddenMethod } from '../steps/decide.js';

/**
 * The start of a list request: any cursor refused, then the untargeted decision (it allows every listing method
 * today; a refusal answers as if the method did not exist).
 */
export function beginList(ctx: RequestContext, deps: PipelineDeps): void {
  // One page holds the whole merged list, so any cursor is one we never issued (utilities/pagination: -32602).
  if (ctx.params.cursor !== undefined)
    throw new GatewayError('GW_MCP_INVALID_CURSOR', { detail: 'cursor not issued by the gateway' });
  decide(deps, ctx, undefined, undefined, hiddenMethod(ctx.message.method));
}

/**
 * A filtered list from the cache, or built by `build` and kept. Read synchronously with the build: the catalogue,
 * pin state and policy it is keyed by are the ones `build` sees.
 */
export function cachedList(
  ctx: RequestContext,
  deps: PipelineDeps,
  list: CachedList,
  build: () => JsonObject,
): JsonObject {
  const { router, policy } = deps;
  const generation = { catalogue: router.catalogue, pins: router.pins, policyRevision: policy.revision };
  return deps.lists.get(list, policy.listingKey?.(ctx.principal), generation, build);
}
