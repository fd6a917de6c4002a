/**
 * `server/discover` (MCP 2026-07-28 server/discover): what the gateway serves, answered from the merged catalogue's
 * capabilities. Only what this generation can use is declared: no `listChanged` or `subscribe` (they need
 * `subscriptions/listen`, which the gateway does not serve yet), so a client never waits for something that will not
 * come; `logging`, because upstream log messages reach a request that asks for them in its `_meta`.
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

/** The 2025 capabilities object without what needs a session or a listen stream. */
export function statelessCapabilities(caps: JsonObject): JsonObject {
  const out: JsonObject = { tools: {}, logging: {} };
  if (isJsonObject(caps.resources)) out.resources = {};
  if (caps.prompts !== undefined) out.prompts = {};
  if (caps.completions !== undefined) out.completions = {};
  return out;
}
