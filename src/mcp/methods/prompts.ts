/** `prompts/list` and `prompts/get` (MCP server/prompts). */
import { GatewayError } from '../../errors/gateway-error.js';
import { isJsonObject } from '../../lib/json-rpc.js';
import { unknownPrompt } from '../../router/router.js';
import { runCall } from '../call.js';
import type { MethodHandler } from '../pipeline.js';
import { shows, unknownTarget } from '../steps/decide.js';
import { beginList, cachedList } from './listing.js';

export const listPrompts: MethodHandler = (ctx, deps) => {
  beginList(ctx, deps);
  const { router, policy } = deps;
  const now = deps.now();
  return cachedList(ctx, deps, 'prompts', () => ({
    prompts: [...router.catalogue.prompts]
      .filter(([name, p]) => shows(policy, ctx.principal, 'prompts/get', 'prompt', name, p.upstream, now))
      .map(([, p]) => p.definition),
  }));
};

export const getPrompt: MethodHandler = (ctx, deps) => {
  const { params, event } = ctx;
  const name = params.name;
  if (typeof name !== 'string')
    throw new GatewayError('GW_MCP_INVALID_PARAMS', { detail: 'prompts/get without a string name' });
  event.prompt = name;
  const target = deps.router.resolve('prompt', name);
  if (target === undefined) throw unknownTarget(event, 'unknown_prompt', unknownPrompt(name));
  event.upstream = target.upstream;
  const args = params.arguments;
  return runCall({
    ctx,
    deps,
    target,
    args: isJsonObject(args) ? args : undefined,
    hidden: (detail) => unknownPrompt(name, detail),
  });
};
