/**
 * A result as MCP 2026-07-28 wants it (basic §ResultType, server/utilities/caching): `resultType` on every result,
 * the gateway's own `serverInfo` in `_meta`, and caching hints on the cacheable ones. The hints are honest: what a
 * principal may see is decided by policy per request, so nothing is `public`. `ttlMs` stays 0 even though
 * `subscriptions/listen` now announces changes: a client that does not listen has no other signal, and the gateway
 * cannot say how long a merged list stays true — its legacy upstreams give no hint (caching §Cacheable Results:
 * use 0 when a source lacks one), and a policy reload or a quarantine can hide a tool at any moment. A client that
 * listens may keep its list until told (caching: "a notification … invalidates it"); one that does not asks again.
 */
import { toRpcError, type GatewayError } from '../errors/gateway-error.js';
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

/**
 * The cacheable results are copied (a list may be the list cache's shared object); any other result is this
 * request's own, fresh from its upstream, and is completed in place (a copy of every tool result showed in the
 * profile of each 2026 call).
 */
export function shapeModernResult(method: string, result: JsonObject, serverInfo: JsonObject): JsonObject {
  // An input-required result is an interim answer: it is never cached (server/utilities/caching) and stays what it is.
  const inputRequired = result.resultType === 'input_required';
  const cacheable = !inputRequired && CACHEABLE.has(method);
  const out: JsonObject = cacheable ? { ...result } : result;
  out.resultType = inputRequired ? 'input_required' : 'complete';
  const meta = result._meta;
  out._meta = isJsonObject(meta) ? { ...meta, [META_SERVER_INFO]: serverInfo } : { [META_SERVER_INFO]: serverInfo };
  if (cacheable) {
    out.ttlMs = 0;
    out.cacheScope = 'private';
  }
  return out;
}

/**
 * An error as 2026-07-28 allows it (basic §Error Codes): a missing resource is -32602, not -32002, and -32042 (URL
 * elicitation required) may not be emitted — until input-required results are relayed, it is an internal error to a
 * 2026 client. The public message and data stay as they are.
 */
export function modernRpcError(e: GatewayError): ReturnType<typeof toRpcError> {
  const rpc = toRpcError(e);
  if (rpc.code === -32002) return { ...rpc, code: -32602 };
  if (rpc.code === -32042) return { ...rpc, code: -32603 };
  return rpc;
}

/**
 * A result for a 2025 client: what a 2026-07-28 upstream added that the 2025 generation does not have (`resultType`, the
 * cache hints, the upstream's `serverInfo`) is taken off, so each client gets exactly its own generation's wire format.
 * Most results have none of it and pass untouched.
 */
export function shapeLegacyResult(result: JsonObject): JsonObject {
  if (result.resultType === undefined && result.ttlMs === undefined && result.cacheScope === undefined) return result;
  const { resultType: _type, ttlMs: _ttl, cacheScope: _scope, ...rest } = result;
  const meta = rest._meta;
  if (isJsonObject(meta) && META_SERVER_INFO in meta) {
    const { [META_SERVER_INFO]: _info, ...others } = meta;
    if (Object.keys(others).length > 0) rest._meta = others;
    else delete rest._meta;
  }
  return rest;
}
