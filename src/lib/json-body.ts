import type { JsonObject, JsonRpcResponse } from './json-rpc.js';

/**
 * Results serialised once and sent many times (the filtered lists of mcp/list-cache.ts: 2,000 tools are ~0.5 MB
 * of JSON, and `JSON.stringify` of that costs more than everything else a cached `tools/list` does). A result
 * is remembered by identity, so it must be frozen (never changed) before `serializeOnce` sees it. Only this
 * module holds the bytes: anything that serialises the response itself (`JSON.stringify`, an SSE frame) gets
 * the same text the ordinary way.
 */
const bodies = new WeakMap<object, Buffer>();

/** Serialise a frozen result now and remember the UTF-8 bytes; returns their length (for the cache's budget). */
export function serializeOnce(result: Readonly<JsonObject>): number {
  if (!Object.isFrozen(result)) throw new TypeError('serializeOnce: the result must be frozen');
  let bytes = bodies.get(result);
  if (bytes === undefined) {
    bytes = Buffer.from(JSON.stringify(result), 'utf8');
    bodies.set(result, bytes);
  }
  return bytes.length;
}

/**
 * The HTTP body of a JSON-RPC response: the remembered bytes of its result behind a freshly written envelope
 * when there are some, else `JSON.stringify(response)`. Both give the same JSON text.
 */
export function responseBody(response: JsonRpcResponse): string | Buffer {
  const bytes = 'result' in response ? bodies.get(response.result) : undefined;
  if (bytes === undefined) return JSON.stringify(response);
  return Buffer.concat([
    Buffer.from(`{"jsonrpc":"2.0","id":${JSON.stringify(response.id)},"result":`, 'utf8'),
    bytes,
    CLOSE,
  ]);
}

const CLOSE = Buffer.from('}', 'utf8');
