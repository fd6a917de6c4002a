/**
 * The two generations of MCP as the gateway meets them upstream, in pure functions: which one an upstream speaks
 * (the `server/discover` probe, docs/protocol-2026-07-28.md §2.1), the per-request `_meta` envelope of the stateless
 * generation (§2.2), and what a 2026-07-28 result may look like (§2.8, §2.9). No I/O; managed-upstream.ts drives them.
 */
import { GatewayError } from '../errors/gateway-error.js';
import { isJsonObject, type JsonObject } from '../lib/json-rpc.js';

/** Stateless revisions we speak to upstreams, newest first. Apart from the `initialize` list, as in the v2 SDK. */
export const MODERN_UPSTREAM_VERSIONS: readonly string[] = ['2026-07-28'];

/** Reserved `_meta` keys (MCP 2026-07-28 basic §_meta). */
export const META_PREFIX = 'io.modelcontextprotocol/';
export const META_PROTOCOL_VERSION = 'io.modelcontextprotocol/protocolVersion';
export const META_CLIENT_CAPABILITIES = 'io.modelcontextprotocol/clientCapabilities';
export const META_CLIENT_INFO = 'io.modelcontextprotocol/clientInfo';
export const META_LOG_LEVEL = 'io.modelcontextprotocol/logLevel';
export const META_SERVER_INFO = 'io.modelcontextprotocol/serverInfo';
export const META_SUBSCRIPTION_ID = 'io.modelcontextprotocol/subscriptionId';

export type UpstreamEra = 'legacy' | 'modern';

/** What the gateway knows of a ready upstream, from `initialize` (legacy) or `server/discover` (modern). */
export interface UpstreamInfo {
  era: UpstreamEra;
  protocolVersion: string;
  capabilities: JsonObject;
  serverInfo: JsonObject;
  instructions?: string;
}

/** The envelope the gateway builds for one upstream request; nothing of it is copied from a client. */
export interface Envelope {
  protocolVersion: string;
  /** Already narrowed to what this upstream may be told (capabilities.ts). */
  clientCapabilities: JsonObject;
  clientInfo: { name: string; version: string };
  logLevel?: string | undefined;
}

/**
 * `params` with the gateway's envelope in `_meta`. Other `_meta` keys stay (progressToken, traceparent: rpc-peer.ts
 * rewrites those), but every reserved `io.modelcontextprotocol/*` key a client sent is dropped first: a client must not
 * choose the upstream's protocol version or capabilities (§2.2 "the gateway builds it itself, it does not copy it").
 */
export function withEnvelope(params: JsonObject | undefined, envelope: Envelope): JsonObject {
  const meta: JsonObject = {};
  const prior = params?._meta;
  if (isJsonObject(prior)) for (const [k, v] of Object.entries(prior)) if (!k.startsWith(META_PREFIX)) meta[k] = v;
  meta[META_PROTOCOL_VERSION] = envelope.protocolVersion;
  meta[META_CLIENT_CAPABILITIES] = envelope.clientCapabilities;
  meta[META_CLIENT_INFO] = envelope.clientInfo;
  if (envelope.logLevel !== undefined) meta[META_LOG_LEVEL] = envelope.logLevel;
  return { ...(params ?? {}), _meta: meta };
}

/** How one `server/discover` attempt ended, as the transport saw it. */
export type ProbeOutcome =
  | { kind: 'result'; result: JsonObject }
  | { kind: 'error'; code: number; data?: unknown }
  /** An HTTP status without a JSON-RPC answer to the probe in its body. */
  | { kind: 'http'; status: number }
  | { kind: 'timeout' }
  /** The request could not be delivered or its connection died (refused, reset, a child that exited). */
  | { kind: 'failed'; detail: string };

export type ProbeVerdict =
  | { verdict: 'modern'; info: UpstreamInfo }
  /** `-32022` naming another stateless revision we speak: probe once more at that one. */
  | { verdict: 'retry'; version: string }
  /** Fall back to `initialize`; `restart`: on stdio, start a fresh process for it (the probe may have confused it). */
  | { verdict: 'legacy'; reason: string; restart?: boolean }
  /** Not era evidence (401/403, 5xx, an HTTP timeout or refused connection): the connect attempt fails. */
  | { verdict: 'unavailable'; reason: string };

/**
 * The era an upstream speaks, from its answer to `server/discover` at `sent`. Follows the v2 SDK's probe classifier
 * and the spec: only a DiscoverResult naming a revision we speak, or `-32022` naming one, means modern; any other
 * answer means legacy (fallback "MUST NOT be keyed to one specific error code", stdio §Backward Compatibility; so
 * `-32020`/`-32021` are not modern evidence either, §8 Q9). Authentication and server failures say nothing of the
 * era. On stdio an unanswered probe means legacy; over HTTP it is a failure (the SDK's RequestTimeout).
 */
export function classifyProbe(outcome: ProbeOutcome, sent: string, transport: 'stdio' | 'http'): ProbeVerdict {
  switch (outcome.kind) {
    case 'result':
      return discoverVerdict(outcome.result);
    case 'error': {
      if (outcome.code === -32022) {
        const supported = isJsonObject(outcome.data) ? outcome.data.supported : undefined;
        const version = Array.isArray(supported)
          ? MODERN_UPSTREAM_VERSIONS.find((v) => supported.includes(v))
          : undefined;
        if (version !== undefined && version !== sent) return { verdict: 'retry', version };
        return { verdict: 'legacy', reason: `server/discover answered -32022 without another revision we speak` };
      }
      return { verdict: 'legacy', reason: `server/discover answered ${outcome.code}` };
    }
    case 'http':
      if (outcome.status === 401 || outcome.status === 403)
        return { verdict: 'unavailable', reason: `server/discover refused with HTTP ${outcome.status} (credentials?)` };
      if (outcome.status >= 500)
        return { verdict: 'unavailable', reason: `server/discover got HTTP ${outcome.status}` };
      return { verdict: 'legacy', reason: `server/discover answered HTTP ${outcome.status}` };
    case 'timeout':
      return transport === 'stdio'
        ? { verdict: 'legacy', reason: 'server/discover unanswered', restart: true }
        : { verdict: 'unavailable', reason: 'server/discover timed out' };
    case 'failed':
      return transport === 'stdio'
        ? { verdict: 'legacy', reason: `server/discover failed: ${outcome.detail}`, restart: true }
        : { verdict: 'unavailable', reason: `server/discover failed: ${outcome.detail}` };
  }
}

/** A DiscoverResult (MCP 2026-07-28 server/discover) naming a revision we speak, or why it is not one. */
function discoverVerdict(result: JsonObject): ProbeVerdict {
  const supported = result.supportedVersions;
  if (!Array.isArray(supported) || !isJsonObject(result.capabilities))
    return { verdict: 'legacy', reason: 'server/discover answered with something that is not a DiscoverResult' };
  const version = MODERN_UPSTREAM_VERSIONS.find((v) => supported.includes(v));
  if (version === undefined) {
    const named = supported.filter((v): v is string => typeof v === 'string').slice(0, 5);
    return { verdict: 'legacy', reason: `server/discover lists only ${JSON.stringify(named)}` };
  }
  const meta = isJsonObject(result._meta) ? result._meta : {};
  const serverInfo = meta[META_SERVER_INFO];
  const info: UpstreamInfo = {
    era: 'modern',
    protocolVersion: version,
    capabilities: result.capabilities,
    serverInfo: isJsonObject(serverInfo) ? serverInfo : {},
  };
  if (typeof result.instructions === 'string') info.instructions = result.instructions;
  return { verdict: 'modern', info };
}

/** The only requests that may answer `input_required` (MCP 2026-07-28 basic/patterns/mrtr). */
const INPUT_REQUIRED_METHODS: ReadonlySet<string> = new Set(['tools/call', 'prompts/get', 'resources/read']);

/**
 * Why a 2026-07-28 result cannot be relayed, or undefined. It is kept as returned otherwise (the front door shapes
 * it): `resultType` other than `complete` and `input_required` is one the gateway never advertised (basic
 * §ResultType: unrecognized MUST be invalid; extensions are not relayed, §2.15), and `input_required` is allowed only
 * on the three methods above with at least one of `inputRequests` and `requestState`. Absent means complete.
 */
export function modernResultProblem(method: string, result: JsonObject): string | undefined {
  const type = result.resultType;
  if (type === undefined || type === 'complete') return undefined;
  if (type !== 'input_required') return `${method} answered with unknown resultType ${JSON.stringify(type)}`;
  if (!INPUT_REQUIRED_METHODS.has(method))
    return `${method} answered input_required, which only tools/call, prompts/get and resources/read may`;
  if (!isJsonObject(result.inputRequests) && typeof result.requestState !== 'string')
    return `${method} answered input_required without inputRequests or requestState`;
  return undefined;
}

/** A result check as a GatewayError (GW_UPSTREAM_PROTOCOL), or the result itself. */
export function checkModernResult(label: string, method: string, result: JsonObject): JsonObject {
  const problem = modernResultProblem(method, result);
  if (problem === undefined) return result;
  throw new GatewayError('GW_UPSTREAM_PROTOCOL', { detail: `${label}: ${problem}` });
}

/**
 * `data.requiredCapabilities` of an upstream's -32021, if it is the ClientCapabilities object the schema says (an
 * object of objects; conformance rejects arrays); anything else is dropped rather than relayed.
 */
export function requiredCapabilitiesOf(data: unknown): JsonObject | undefined {
  const caps = isJsonObject(data) ? data.requiredCapabilities : undefined;
  if (!isJsonObject(caps)) return undefined;
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(caps)) if (isJsonObject(v) && k.length <= 200) out[k] = v;
  return Object.keys(out).length > 0 && JSON.stringify(out).length <= 4096 ? out : undefined;
}

/** Notification params without the listen stream's `subscriptionId` (ours alone; clients never see it). */
export function withoutSubscriptionId(params: JsonObject | undefined): JsonObject | undefined {
  if (params === undefined || !isJsonObject(params._meta) || !Object.hasOwn(params._meta, META_SUBSCRIPTION_ID))
    return params;
  const { [META_SUBSCRIPTION_ID]: _id, ...meta } = params._meta;
  const { _meta: _old, ...rest } = params;
  return Object.keys(meta).length > 0 ? { ...rest, _meta: meta } : rest;
}
