/**
 * `server/discover` (MCP 2026-07-28 server/discover): what the gateway serves, answered from the merged catalogue's
 * capabilities. Only what this generation can use is declared (conformance `discover-capabilities-match-handlers`):
 * `listChanged` on every list kind served, because `subscriptions/listen` delivers list changes (listen.ts);
 * `resources.subscribe` only when some upstream serves resource subscriptions, because a listen's
 * `resourceSubscriptions` are honoured only at such an upstream; `logging`, because upstream log messages reach a
 * request that asks for them in its `_meta`.
 */
import { isJsonObject, type JsonObject } from '../../lib/json-rpc.js';
import type { MethodHandler } from '../pipeline.js';
import { MODERN_PROTOCOL_VERSIONS } from '../protocol-versions.js';

export const INSTRUCTIONS = 'Tools, resources and prompts from several MCP servers, namespaced as <server>__<name>.';

export const discover: MethodHandler = (_ctx, deps) => ({
  supportedVersions: [...MODERN_PROTOCOL_VERSIONS],
  capabilities: statelessCapabilities(deps.router.capabilities()),
  instructions: INSTRUCTIONS,
});

/** The 2025 capabilities object as a client without a session can use it (list changes come by listen). */
export function statelessCapabilities(caps: JsonObject): JsonObject {
  const out: JsonObject = { tools: { listChanged: true }, logging: {} };
  if (isJsonObject(caps.resources))
    out.resources = { listChanged: true, ...(caps.resources.subscribe === true ? { subscribe: true } : {}) };
  if (caps.prompts !== undefined) out.prompts = { listChanged: true };
  if (caps.completions !== undefined) out.completions = {};
  return out;
}
