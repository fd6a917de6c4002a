/**
 * The routing headers of MCP 2026-07-28 (basic/transports/streamable-http §Request Metadata): `MCP-Protocol-Version`,
 * `Mcp-Method` and, for `tools/call`, `resources/read` and `prompts/get`, `Mcp-Name` mirror the body so that a proxy
 * can route without parsing it. The gateway parses the body anyway and routes on it; a header that disagrees with it
 * is refused (HTTP 400, -32020) before anything is decided, so that no component in front of the gateway can have
 * acted on a value the gateway did not check (threat model #8, parser differentials).
 *
 * Values are encoded as lib/header-value.ts says.
 */
import { GatewayError } from '../errors/gateway-error.js';
import { isJsonObject, type JsonRpcRequest } from '../lib/json-rpc.js';
import { decodeHeaderValue } from '../lib/header-value.js';
import { META_PROTOCOL_VERSION } from '../mcp/request-meta.js';

/** The methods whose target is mirrored in `Mcp-Name`, and the body field it mirrors. */
const NAMED: Readonly<Record<string, 'name' | 'uri'>> = Object.freeze({
  'tools/call': 'name',
  'prompts/get': 'name',
  'resources/read': 'uri',
});

/** The routing headers of one request, as received (absent: undefined; repeated headers are refused earlier). */
export interface RoutingHeaders {
  readonly protocolVersion: string | undefined;
  readonly method: string | undefined;
  readonly name: string | undefined;
}

/**
 * The first check of a 2026-07-28 request, before its `_meta` is read: a `MCP-Protocol-Version` header that is
 * missing or names another version than the body's claim is a header mismatch (-32020), even when the claimed
 * version is one the gateway does not serve — era classification comes before the version gate (the conformance
 * suite's `sep-2575-http-server-header-mismatch-400`; the v2 SDK's validation ladder). A claim that is not a string
 * is left to the `_meta` check (-32602).
 */
export function checkVersionHeader(raw: string | undefined, message: JsonRpcRequest): void {
  const meta = message.params?._meta;
  const claim = isJsonObject(meta) ? meta[META_PROTOCOL_VERSION] : undefined;
  if (typeof claim === 'string') expectHeader('MCP-Protocol-Version', raw, claim);
}

/**
 * Refuses (GW_MCP_HEADER_MISMATCH) a 2026-07-28 request whose routing headers are missing, invalid, or say something
 * else than its body: `protocolVersion` is the version the body's `_meta` claims. The detail says which header and
 * why, for audit; the client gets the generic message.
 */
export function checkRoutingHeaders(headers: RoutingHeaders, message: JsonRpcRequest, protocolVersion: string): void {
  expectHeader('MCP-Protocol-Version', headers.protocolVersion, protocolVersion);
  expectHeader('Mcp-Method', headers.method, message.method);
  const field = Object.hasOwn(NAMED, message.method) ? NAMED[message.method] : undefined;
  if (field === undefined) return;
  const target = message.params?.[field];
  // A body without a usable target is the method's own invalid-params error, decided later; the header is still
  // required and must be valid.
  if (typeof target !== 'string') {
    if (headers.name === undefined) throw mismatch('Mcp-Name header missing');
    if (decodeHeaderValue(headers.name) === undefined) throw mismatch('Mcp-Name header is not a valid header value');
    return;
  }
  expectHeader('Mcp-Name', headers.name, target);
}

function expectHeader(header: string, raw: string | undefined, body: string): void {
  if (raw === undefined) throw mismatch(`${header} header missing`);
  const value = decodeHeaderValue(raw);
  if (value === undefined) throw mismatch(`${header} header is not a valid header value`);
  if (value !== body) throw mismatch(`${header} header ${clip(value)} does not match the body's ${clip(body)}`);
}

function mismatch(detail: string): GatewayError {
  return new GatewayError('GW_MCP_HEADER_MISMATCH', { detail });
}

function clip(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s);
}
