/**
 * One MCP request as the pipeline sees it (docs/architecture.md §1): who asks, in which protocol generation with which
 * client capabilities, the message, where the answer goes, and — only when the transport has one — the session.
 * Built by the front door per request; every step reads it, none reaches past it to the transport.
 */
import type { AuditEvent } from '../audit/audit-sink.js';
import type { SecretValue } from '../config/types.js';
import type { Principal } from '../identity/principal.js';
import type { Cancellation } from '../lib/cancellation.js';
import { isJsonObject, type JsonObject, type JsonRpcRequest } from '../lib/json-rpc.js';
import type { CallOrigin, ForwardContext } from '../router/router.js';
import type { RequestSpan } from '../telemetry/tracing.js';
import type { ClientSession, LogLevel } from './session.js';
import type { RequestStream } from './streams.js';

export interface RequestContext {
  readonly principal: Principal;
  /** The negotiated (or, without a session, the request's own) protocol version. */
  readonly protocolVersion: string;
  readonly clientCapabilities: JsonObject;
  /** The client session (2025 generation, `Mcp-Session-Id`); absent for a request that stands alone. */
  readonly session: ClientSession | undefined;
  readonly message: JsonRpcRequest;
  readonly params: JsonObject;
  readonly stream: RequestStream;
  readonly cancel: Cancellation;
  /** The request id as a map key (session.ts `idKey`): how relayed traffic finds this request's stream. */
  readonly requestKey: string;
  /** The audit record of this request, filled in by each step and written once when it ends. */
  readonly event: AuditEvent;
  /** The request's span (docs/architecture.md §9); upstream calls open children of it. */
  readonly span: RequestSpan | undefined;
  /** A policy rule's `limits.timeoutMs`, set by the decide step: the call's deadline. */
  deadlineMs?: number;
  /** 2026-07-28: the level of log messages this request asked for in `_meta` (a session keeps its own instead). */
  readonly logLevel?: LogLevel | undefined;
  /** 2026-07-28: the request's `Mcp-Param-*` headers by lower-case name, to be checked against its arguments. */
  readonly paramHeaders?: ReadonlyMap<string, string> | undefined;
  /**
   * The bearer token this request was authenticated with, for the credentials step's provider only (token exchange
   * presents it as `subject_token` at the configured token endpoint). Never logged, audited or forwarded: a
   * SecretValue prints as a placeholder, and nothing but steps/credentials.ts reads it (threat model #1).
   */
  readonly inboundToken?: SecretValue | undefined;
}

/** What the gateway's origin handle for an upstream call carries: the session and the exact request. */
export interface RequestOrigin extends CallOrigin {
  requestKey: string;
  /**
   * A request without a session: where messages related to it go (its own response stream) and the log level it
   * asked for. Its `sessionKey` is empty, so nothing is ever routed to a session from it.
   */
  readonly alone?: AloneOrigin;
}

/** Where a request without a session is: its stream and log level, and who asks with which capabilities. */
export interface AloneOrigin {
  readonly stream: RequestStream;
  readonly logLevel: LogLevel | undefined;
  readonly principal: Principal;
  readonly clientCapabilities: JsonObject;
  /**
   * Puts an upstream's request to this client as an input request of an `InputRequiredResult` (the input-required
   * step parks the call); absent where the call cannot be parked.
   */
  readonly ask?: (request: JsonRpcRequest) => Promise<JsonObject>;
}

/** The router's view of a request: its session (for per-session upstreams), cancellation, progress, trace, deadline. */
export function forwardContext(
  ctx: RequestContext,
  ask?: (request: JsonRpcRequest) => Promise<JsonObject>,
  headers?: Readonly<Record<string, string>>,
): ForwardContext {
  const fwd: ForwardContext = { cancel: ctx.cancel, clientCapabilities: ctx.clientCapabilities };
  // The call's outbound credential (credentials step): for this one HTTP request to the target upstream.
  if (headers !== undefined) fwd.headers = headers;
  const { session } = ctx;
  // A 2026-07-28 upstream hears the level with each request: this request's own, else its session's (setLevel).
  const logLevel = ctx.logLevel ?? session?.logLevel;
  if (logLevel !== undefined) fwd.logLevel = logLevel;
  if (session !== undefined) {
    fwd.session = session;
    const origin: RequestOrigin = { sessionKey: session.key, requestKey: ctx.requestKey };
    fwd.origin = origin;
  } else {
    const alone: AloneOrigin =
      ask === undefined
        ? {
            stream: ctx.stream,
            logLevel: ctx.logLevel,
            principal: ctx.principal,
            clientCapabilities: ctx.clientCapabilities,
          }
        : {
            stream: ctx.stream,
            logLevel: ctx.logLevel,
            principal: ctx.principal,
            clientCapabilities: ctx.clientCapabilities,
            ask,
          };
    const origin: RequestOrigin = { sessionKey: '', requestKey: ctx.requestKey, alone };
    fwd.origin = origin;
  }
  if (ctx.span !== undefined) fwd.trace = ctx.span.calls;
  if (ctx.deadlineMs !== undefined) fwd.deadlineMs = ctx.deadlineMs;
  const meta = ctx.params._meta;
  const token = isJsonObject(meta) ? meta.progressToken : undefined;
  if (typeof token === 'string' || typeof token === 'number') {
    // Re-emit upstream progress under the client's own token (utilities/progress; the SDK drops unknown tokens).
    const stream = ctx.stream;
    fwd.onProgress = (u) => {
      stream.sendRelated({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: token, ...u } });
    };
  }
  return fwd;
}
