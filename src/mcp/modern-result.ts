/**
 * A result as MCP 2026-07-28 wants it (basic §ResultType, server/utilities/caching): `resultType` on every result,
 * the gateway's own `serverInfo` in `_meta`, and caching hints on the cacheable ones. The hints are honest: what a
 * principal may see is decided by policy per request, so nothing is `public`, and the gateway cannot tell a client
 * how long a merged list stays true (it cannot announce changes to a stateless client yet), so `ttlMs` is 0.
 */
import { isJsonObject, type JsonObject } from '../lib/json-rpc.js';
import { META_SERVER_INFO } from './request-meta.js';

const CACHEABLE: ReadonlySet<string> = new Set([
  'server/discover',
  'tools/list',
  'prompts/list',
  'resources/list',
  'resources/templates/list',
  'resources/read',
]);

/** A new object (results may be shared, e.g. cached lists): the caller's result is not changed. */
export function shapeModernResult(method: string, result: JsonObject, serverInfo: JsonObject): JsonObject {
  const meta = isJsonObject(result._meta) ? result._meta : {};
  const out: JsonObject = { ...result, resultType: 'complete', _meta: { ...meta, [META_SERVER_INFO]: serverInfo } };
  if (CACHEABLE.has(method)) {
    out.ttlMs = 0;
    out.cacheScope = 'private';
  }
  return out;
}
