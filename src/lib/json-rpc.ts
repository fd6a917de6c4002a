/**
 * JSON-RPC 2.0 message shapes as MCP uses them (MCP basic §Messages), and a strict classifier.
 *
 * The gateway never forwards raw bytes: it parses, validates, routes on what it parsed, and forwards a
 * re-serialisation of exactly that. So a duplicate key cannot make the router see one method and the
 * upstream another (threat model #8): `JSON.parse` keeps the last duplicate and that is all anyone sees.
 */

export type JsonObject = { [key: string]: unknown };
export type RequestId = string | number;

export interface JsonRpcRequest {
  jsonrpc: '2.0';
  id: RequestId;
  method: string;
  params?: JsonObject;
}

export interface JsonRpcNotification {
  jsonrpc: '2.0';
  method: string;
  params?: JsonObject;
}

export interface JsonRpcErrorObject {
  code: number;
  message: string;
  data?: unknown;
}

export interface JsonRpcSuccess {
  jsonrpc: '2.0';
  id: RequestId;
  result: JsonObject;
}

export interface JsonRpcFailure {
  jsonrpc: '2.0';
  id: RequestId | null;
  error: JsonRpcErrorObject;
}

export type JsonRpcResponse = JsonRpcSuccess | JsonRpcFailure;
export type JsonRpcMessage = JsonRpcRequest | JsonRpcNotification | JsonRpcResponse;

export type Classified =
  | { kind: 'request'; message: JsonRpcRequest }
  | { kind: 'notification'; message: JsonRpcNotification }
  | { kind: 'response'; message: JsonRpcResponse }
  | { kind: 'invalid'; reason: string; id: RequestId | null };

const MAX_METHOD_LENGTH = 256;
const MAX_STRING_ID_LENGTH = 256;

export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function validId(v: unknown): v is RequestId {
  // MCP: "MUST be a string or integer", never null; we also bound string ids.
  if (typeof v === 'string') return v.length > 0 && v.length <= MAX_STRING_ID_LENGTH && !LONE_SURROGATE.test(v);
  return Number.isSafeInteger(v);
}

/**
 * An unpaired UTF-16 surrogate (`"\ud800"` in JSON) is not Unicode text. An upstream decoding the forwarded JSON
 * may turn it into U+FFFD (RFC 8259 §8.2: "unpredictable"), so a routed string holding one would not be the
 * string the gateway routed and authorised (threat model #8).
 */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The params members the gateway routes or authorises on (tool and prompt names, resource URIs, arguments). */
const ROUTED_PARAMS: ReadonlySet<string> = new Set(['name', 'uri', 'arguments', '_meta']);

/**
 * A params member that is not a routed one but matches one case-insensitively (`"Name"`, `"ARGUMENTS"`, or
 * `"argumentſ"` under Unicode folding) is refused: a parser that matches keys that way — Go's encoding/json, as in
 * go-sdk CVE-2026-27896 — lets the last of them win upstream, so the tool called or the arguments used would not
 * be those the policy checked. Routed strings must be well-formed Unicode.
 */
function routedParamsProblem(params: JsonObject): string | undefined {
  for (const key of Object.keys(params)) {
    if (ROUTED_PARAMS.has(key)) {
      const v = params[key];
      if (typeof v === 'string' && LONE_SURROGATE.test(v)) return `params.${key} is not well-formed Unicode`;
    } else if (ROUTED_PARAMS.has(key.toLowerCase().replaceAll('ſ', 's'))) {
      return `params member "${truncate(key, 40)}" differs from a routed member only in case`;
    }
  }
  return undefined;
}

function readableId(v: unknown): RequestId | null {
  return validId(v) ? v : null;
}

/**
 * Classify one parsed value as a JSON-RPC message, strictly: `jsonrpc` must be "2.0", ids are strings or
 * integers, `params` is an object (MCP uses named params only), and no key outside the message's shape is
 * allowed — so `"Method"` next to `"method"` (go-sdk CVE-2026-27896) or a stray `result` on a request is
 * refused rather than interpreted.
 */
export function classify(value: unknown): Classified {
  if (!isJsonObject(value)) return { kind: 'invalid', reason: 'message is not a JSON object', id: null };
  const id = readableId(value.id);
  if (value.jsonrpc !== '2.0') return { kind: 'invalid', reason: 'jsonrpc must be "2.0"', id };
  const hasMethod = Object.hasOwn(value, 'method');
  const hasId = Object.hasOwn(value, 'id');

  if (hasMethod) {
    const method = value.method;
    if (typeof method !== 'string' || method.length === 0 || method.length > MAX_METHOD_LENGTH) {
      return { kind: 'invalid', reason: 'method must be a non-empty string', id };
    }
    if (LONE_SURROGATE.test(method)) return { kind: 'invalid', reason: 'method is not well-formed Unicode', id };
    if (Object.hasOwn(value, 'params')) {
      if (!isJsonObject(value.params)) return { kind: 'invalid', reason: 'params must be an object', id };
      const problem = routedParamsProblem(value.params);
      if (problem !== undefined) return { kind: 'invalid', reason: problem, id };
    }
    for (const key of Object.keys(value)) {
      if (key !== 'jsonrpc' && key !== 'id' && key !== 'method' && key !== 'params') {
        return { kind: 'invalid', reason: `unexpected member "${truncate(key, 40)}"`, id };
      }
    }
    if (!hasId) return { kind: 'notification', message: value as unknown as JsonRpcNotification };
    if (!validId(value.id)) return { kind: 'invalid', reason: 'id must be a string or an integer', id: null };
    return { kind: 'request', message: value as unknown as JsonRpcRequest };
  }

  if (!hasId) return { kind: 'invalid', reason: 'message has neither method nor id', id: null };
  const hasResult = Object.hasOwn(value, 'result');
  const hasError = Object.hasOwn(value, 'error');
  if (hasResult === hasError) return { kind: 'invalid', reason: 'response needs exactly one of result and error', id };
  for (const key of Object.keys(value)) {
    if (key !== 'jsonrpc' && key !== 'id' && key !== 'result' && key !== 'error') {
      return { kind: 'invalid', reason: `unexpected member "${truncate(key, 40)}"`, id };
    }
  }
  if (hasResult) {
    if (!validId(value.id)) return { kind: 'invalid', reason: 'id must be a string or an integer', id: null };
    if (!isJsonObject(value.result)) return { kind: 'invalid', reason: 'result must be an object', id };
    return { kind: 'response', message: value as unknown as JsonRpcSuccess };
  }
  const err = value.error;
  if (!isJsonObject(err) || !Number.isInteger(err.code) || typeof err.message !== 'string') {
    return { kind: 'invalid', reason: 'error must have an integer code and a string message', id };
  }
  if (value.id !== null && !validId(value.id))
    return { kind: 'invalid', reason: 'id must be a string or an integer', id: null };
  return { kind: 'response', message: value as unknown as JsonRpcFailure };
}

/**
 * Parse one JSON text. Prototype-poisoning keys (`__proto__`, `constructor.prototype`) are refused outright
 * (fastify's default, threat model #8); the check costs nothing unless the text mentions `__proto__` or `prototype`
 * or uses \u escapes, in which case a reviver inspects every key.
 */
export function parseJson(
  text: string,
  maxDepth = DEFAULT_MAX_DEPTH,
): { ok: true; value: unknown } | { ok: false; reason: string } {
  // Bounded nesting: 200k levels parse fine but overflow the stack when re-serialised (threat model #9).
  if (text.length > maxDepth && !fewOpeners(text, maxDepth) && exceedsDepth(text, maxDepth))
    return { ok: false, reason: `JSON nested deeper than ${maxDepth} levels` };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'body is not valid JSON' };
  }
  // `__proto__` and `prototype` as written, or hidden behind a \u escape. Not merely "proto": every 2026-07-28 request
  // names `io.modelcontextprotocol/…` keys, and the second parse with a reviver nearly quadrupled their parse cost.
  if (text.includes('__proto__') || text.includes('prototype') || text.includes('\\u')) {
    try {
      JSON.parse(text, function reviver(this: unknown, key: string, v: unknown) {
        if (key === '__proto__') throw new Error('poison');
        if (key === 'constructor' && isJsonObject(v) && Object.hasOwn(v, 'prototype')) throw new Error('poison');
        return v;
      });
    } catch {
      return { ok: false, reason: 'body contains a forbidden "__proto__" or "constructor.prototype" key' };
    }
  }
  return { ok: true, value };
}

/** Deep enough for any real tool argument or result; shallow enough to keep every later step off the stack limit. */
export const DEFAULT_MAX_DEPTH = 128;

/** One pass over the text, skipping strings: does `[`/`{` nesting go past `limit`? */
/**
 * At most `limit` `{` and `[` in the whole text (strings included): then no nesting can be deeper, and the
 * character-by-character scan below is skipped — a few native searches instead, for the usual small message.
 */
function fewOpeners(text: string, limit: number): boolean {
  let n = 0;
  for (let i = text.indexOf('{'); i !== -1; i = text.indexOf('{', i + 1)) if (++n > limit) return false;
  for (let i = text.indexOf('['); i !== -1; i = text.indexOf('[', i + 1)) if (++n > limit) return false;
  return true;
}

function exceedsDepth(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

export function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max)}…`;
}

export function rpcError(id: RequestId | null, error: JsonRpcErrorObject): JsonRpcFailure {
  return { jsonrpc: '2.0', id, error };
}

export function rpcResult(id: RequestId, result: JsonObject): JsonRpcSuccess {
  return { jsonrpc: '2.0', id, result };
}
