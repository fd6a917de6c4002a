/**
 * What a 2026-07-28 request says about itself (basic §General fields → `_meta`): there is no handshake, so every
 * request names its protocol version and the client's capabilities (required) and may name the client and a log
 * level. The client's self-description is never identity: the principal comes from the token.
 */
import { GatewayError } from '../errors/gateway-error.js';
import { isJsonObject, type JsonObject, type JsonRpcMessage } from '../lib/json-rpc.js';
import { isModernVersion, MODERN_PROTOCOL_VERSIONS } from './protocol-versions.js';
import { LOG_LEVELS, type LogLevel } from './session.js';

export const META_PROTOCOL_VERSION = 'io.modelcontextprotocol/protocolVersion';
export const META_CLIENT_CAPABILITIES = 'io.modelcontextprotocol/clientCapabilities';
export const META_CLIENT_INFO = 'io.modelcontextprotocol/clientInfo';
export const META_LOG_LEVEL = 'io.modelcontextprotocol/logLevel';
export const META_SERVER_INFO = 'io.modelcontextprotocol/serverInfo';

/** The envelope keys a 2026-07-28 request carries in place of the 2025 handshake (basic §General fields → `_meta`). */
const REQUEST_ENVELOPE_KEYS: readonly string[] = [
  META_PROTOCOL_VERSION,
  META_CLIENT_CAPABILITIES,
  META_CLIENT_INFO,
  META_LOG_LEVEL,
];

/**
 * A request's params as an upstream's 2025 session should see them: without the downstream client's 2026 envelope.
 * The gateway speaks to its upstreams in its own name (their session was opened by the gateway's `initialize`), so
 * the client's version claim and capabilities are not the upstream's business; left in, they make a dual-era
 * upstream (the v2 SDK's `isLegacyRequest`) take the sessionful request for a 2026 one and refuse it (400 -32020).
 * The other `_meta` keys (progressToken, traceparent, extensions) stay; an emptied `_meta` is dropped. The same
 * object comes back when there is nothing to remove.
 */
export function withoutRequestEnvelope(params: JsonObject): JsonObject {
  const meta = params._meta;
  if (!isJsonObject(meta) || !REQUEST_ENVELOPE_KEYS.some((k) => Object.hasOwn(meta, k))) return params;
  const kept: JsonObject = {};
  for (const [k, v] of Object.entries(meta)) if (!REQUEST_ENVELOPE_KEYS.includes(k)) kept[k] = v;
  const { _meta: _dropped, ...rest } = params;
  return Object.keys(kept).length === 0 ? rest : { ...rest, _meta: kept };
}

export interface RequestMeta {
  readonly protocolVersion: string;
  readonly clientCapabilities: JsonObject;
  readonly clientInfo: JsonObject | undefined;
  readonly logLevel: LogLevel | undefined;
  /** W3C Trace Context carried in `_meta` (basic §OpenTelemetry trace context); checked where it is used. */
  readonly traceparent: string | undefined;
}

/**
 * Whether a message claims the stateless generation: its `_meta` names a protocol version (known or not — an unknown
 * one is answered with -32022, not treated as a 2025 request). Body first, as the specification's dual-era rule reads.
 */
export function claimsModern(message: unknown): boolean {
  if (!isJsonObject(message) || !isJsonObject(message.params)) return false;
  const meta = message.params._meta;
  return isJsonObject(meta) && Object.hasOwn(meta, META_PROTOCOL_VERSION);
}

/** The `_meta` of a 2026-07-28 request, or GW_MCP_META_INVALID (400, -32602) / GW_MCP_VERSION_UNSUPPORTED (400, -32022). */
export function readRequestMeta(message: JsonRpcMessage): RequestMeta {
  const params = 'params' in message ? message.params : undefined;
  const meta = isJsonObject(params) ? params._meta : undefined;
  if (!isJsonObject(meta)) throw invalid('no params._meta');
  const version = meta[META_PROTOCOL_VERSION];
  if (typeof version !== 'string') throw invalid(`${META_PROTOCOL_VERSION} is not a string`);
  if (!isModernVersion(version)) {
    throw new GatewayError('GW_MCP_VERSION_UNSUPPORTED', {
      detail: `version ${version.slice(0, 40)}`,
      // Only what a request with this envelope can name: the versions `server/discover` lists (the conformance suite
      // requires the one list inside the other; the v2 SDK answers the same). A client that wants 2025 finds it the way
      // the revision describes, by falling back to `initialize` (basic/versioning §Backward Compatibility).
      data: {
        supported: [...MODERN_PROTOCOL_VERSIONS],
        requested: version.slice(0, 64),
      },
    });
  }
  const caps = meta[META_CLIENT_CAPABILITIES];
  if (!isJsonObject(caps)) throw invalid(`${META_CLIENT_CAPABILITIES} is not an object`);
  const info = meta[META_CLIENT_INFO];
  if (info !== undefined && !isJsonObject(info)) throw invalid(`${META_CLIENT_INFO} is not an object`);
  const level = meta[META_LOG_LEVEL];
  if (level !== undefined && !(typeof level === 'string' && (LOG_LEVELS as readonly string[]).includes(level)))
    throw invalid(`${META_LOG_LEVEL} is not a log level`);
  return {
    protocolVersion: version,
    clientCapabilities: caps,
    clientInfo: info,
    logLevel: level as LogLevel | undefined,
    traceparent: typeof meta.traceparent === 'string' ? meta.traceparent : undefined,
  };
}

function invalid(detail: string): GatewayError {
  return new GatewayError('GW_MCP_META_INVALID', { detail });
}
