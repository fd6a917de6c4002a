/**
 * `completion/complete` (MCP server/utilities/completion): completing a prompt's or a template's arguments needs that
 * target to exist for this principal (docs/architecture.md §4); the answer for a hidden one is the unknown one.
 */
import { GatewayError } from '../../errors/gateway-error.js';
import { isJsonObject } from '../../lib/json-rpc.js';
import { unknownPrompt, type Target } from '../../router/router.js';
import { forwardContext } from '../request-context.js';
import { withoutRequestEnvelope } from '../request-meta.js';
import type { MethodHandler } from '../pipeline.js';
import { shows } from '../steps/decide.js';

export const complete: MethodHandler = (ctx, deps) => {
  const { router, policy } = deps;
  const ref = ctx.params.ref;
  if (!isJsonObject(ref)) throw new GatewayError('GW_MCP_INVALID_PARAMS', { detail: 'completion without ref' });
  const now = deps.now();
  let target: Target | undefined;
  if (ref.type === 'ref/prompt' && typeof ref.name === 'string') {
    target = router.resolve('prompt', ref.name);
    if (target === undefined) throw unknownPrompt(ref.name);
    if (!shows(policy, ctx.principal, 'prompts/get', 'prompt', ref.name, target.upstream, now))
      throw unknownPrompt(ref.name, 'completion: prompt hidden by policy');
  } else if (ref.type === 'ref/resource' && typeof ref.uri === 'string') {
    target = router.resolve('template', ref.uri);
    if (target === undefined)
      throw new GatewayError('GW_MCP_RESOURCE_UNKNOWN', { detail: 'no template for completion' });
    if (!shows(policy, ctx.principal, 'resources/read', 'resource', ref.uri, target.upstream, now))
      throw new GatewayError('GW_MCP_RESOURCE_UNKNOWN', { detail: 'completion: template hidden by policy' });
  } else {
    throw new GatewayError('GW_MCP_INVALID_PARAMS', { detail: 'unknown completion ref type' });
  }
  // As in the forward step: the client's 2026 envelope is not the upstream session's business (request-meta.ts).
  return router.forward(target, ctx.message.method, withoutRequestEnvelope(ctx.params), forwardContext(ctx));
};
