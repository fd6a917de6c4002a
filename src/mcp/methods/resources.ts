/** `resources/list`, `resources/templates/list`, `resources/read`, `…/subscribe`, `…/unsubscribe` (MCP server/resources). */
import { GatewayError } from '../../errors/gateway-error.js';
import type { JsonObject } from '../../lib/json-rpc.js';
import { unknownResource } from '../../router/router.js';
import { runCall } from '../call.js';
import type { MethodHandler } from '../pipeline.js';
import { shows, unknownTarget } from '../steps/decide.js';
import { beginList, cachedList } from './listing.js';

export const listResources: MethodHandler = (ctx, deps) => {
  beginList(ctx, deps);
  const { router, policy } = deps;
  const now = deps.now();
  return cachedList(ctx, deps, 'resources', () => {
    const shown = [...router.catalogue.resources].filter(([uri, r]) =>
      shows(policy, ctx.principal, 'resources/read', 'resource', uri, r.upstream, now),
    );
    return { resources: shown.map(([, r]) => r.definition) };
  });
};

export const listResourceTemplates: MethodHandler = (ctx, deps) => {
  beginList(ctx, deps);
  const { router, policy } = deps;
  const now = deps.now();
  // A template is decided by its URI template text: a rule's resource glob (e.g. `notes://**`) covers it as it
  // covers the URIs.
  return cachedList(ctx, deps, 'resourceTemplates', () => {
    const shown = router.catalogue.templates.filter((t) =>
      shows(policy, ctx.principal, 'resources/read', 'resource', templateText(t.definition), t.upstream, now),
    );
    return { resourceTemplates: shown.map((t) => t.definition) };
  });
};

/** `resources/read`, `resources/subscribe` and `resources/unsubscribe`: routed by URI, decided on it. */
export const resourceRequest: MethodHandler = (ctx, deps) => {
  const { params, event, message } = ctx;
  const uri = params.uri;
  if (typeof uri !== 'string' || uri.length === 0 || uri.length > 8192)
    throw new GatewayError('GW_MCP_INVALID_PARAMS', { detail: `${message.method} without a usable uri` });
  event.resource = uri.slice(0, 512);
  const target = deps.router.resolve('resource', uri);
  if (target === undefined) throw unknownTarget(event, 'unknown_resource', unknownResource(uri));
  event.upstream = target.upstream;
  return runCall({ ctx, deps, target, args: undefined, hidden: (detail) => unknownResource(uri, detail) });
};

function templateText(definition: JsonObject): string {
  return typeof definition.uriTemplate === 'string' ? definition.uriTemplate : '';
}
