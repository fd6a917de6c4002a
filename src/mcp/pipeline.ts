/**
 * The request pipeline (docs/architecture.md §1, §4). Every MCP request becomes a `RequestContext` and runs here: the
 * method's handler (methods/) resolves its target once, runs the call through the steps of `CALL_STEPS` (call.ts) —
 * decide (pure policy) → … → forward — and shapes the reply. The audit record and the span of the request are
 * opened and closed here, whatever the outcome.
 */
import type { ResultCache } from './result-cache.js';
import type { Logger } from 'pino';
import type { AuditEvent, AuditSink } from '../audit/audit-sink.js';
import type { GatehouseConfig, SecretValue } from '../config/types.js';
import { GatewayError, toGatewayError, toRpcError } from '../errors/gateway-error.js';
import type { Principal } from '../identity/principal.js';
import type { Cancellation } from '../lib/cancellation.js';
import { rpcError, rpcResult, type JsonObject, type JsonRpcRequest } from '../lib/json-rpc.js';
import type { CredentialProviders } from '../outbound/credential-provider.js';
import type { PolicyEngine } from '../policy/decision.js';
import type { CallOrigin, Router } from '../router/router.js';
import type { RequestTracing } from '../telemetry/tracing.js';
import { auditRequestId, elapsedMs, whoFields } from './audit-fields.js';
import { auditErrorCode, type CallLimiter } from './limits.js';
import type { ListenHub } from './listen.js';
import type { ListCache } from './list-cache.js';
import { METHODS, MODERN_METHODS } from './methods/index.js';
import { modernRpcError, shapeLegacyResult, shapeModernResult } from './modern-result.js';
import { isModernVersion } from './protocol-versions.js';
import type { ParkedCalls } from './parked-calls.js';
import type { RequestContext } from './request-context.js';
import type { RequestStateCodec } from './request-state.js';
import type { ClientSession, LogLevel } from './session.js';
import { idKey } from './session.js';
import type { RequestStream } from './streams.js';
import type { UpstreamSubscriptions } from './upstream-subscriptions.js';

/** What the steps and handlers use: the same for every request. */
export interface PipelineDeps {
  readonly config: GatehouseConfig;
  readonly router: Router;
  readonly policy: PolicyEngine;
  /** The rate-limit step; absent: no limits (code-built front doors in tests). */
  readonly limits: CallLimiter | undefined;
  /** Filtered lists per listing key: the policy decides each list item once per key, not per request. */
  readonly lists: ListCache;
  readonly logger: Logger;
  readonly now: () => number;
  /** `sessions.maxSubscriptions`: resource URIs one session may be subscribed to at once. */
  readonly maxSubscriptions: number;
  /** The gateway's own name and version, for results that carry `serverInfo` (2026-07-28). */
  readonly serverInfo: JsonObject;
  /** Resource subscriptions held at shared upstreams, counted across sessions and listens; absent: not counted. */
  readonly upstreamSubscriptions?: UpstreamSubscriptions | undefined;
  /** The open 2026-07-28 `subscriptions/listen` streams; absent: the method is not served (code-built tests). */
  readonly listens?: ListenHub | undefined;
  /** Seals and opens the `requestState` of 2026-07-28 input-required results (request-state.ts). */
  readonly requestState: RequestStateCodec;
  /** Calls parked on a 2025 upstream while a 2026 client answers its questions (parked-calls.ts). */
  readonly parked: ParkedCalls;
  /** Upstreams' questions to clients: decided, audited and sent (relay.ts). */
  readonly relay: InputRelay;
  /** The result cache and idempotency ledger (cache and idempotency steps); absent: neither (code-built tests). */
  readonly results?: ResultCache | undefined;
  /** Outbound identity: the providers of the upstreams with `credentials:` (credentials step); absent: none. */
  readonly credentials?: CredentialProviders | undefined;
}

/** What the input-required step needs of the relay. */
export interface InputRelay {
  relay(upstream: string, request: JsonRpcRequest, origin: CallOrigin | undefined): Promise<JsonObject>;
  permitInput(upstream: string, request: JsonObject, principal: Principal, clientCapabilities: JsonObject): unknown;
}

/** A method's handler: resolve, run the call (or answer from the gateway), shape the reply. */
export type MethodHandler = (ctx: RequestContext, deps: PipelineDeps) => Promise<JsonObject> | JsonObject;

/** What the front door knows of a request before the pipeline builds its context. */
export interface RequestInput {
  readonly principal: Principal;
  readonly protocolVersion: string;
  readonly clientCapabilities: JsonObject;
  readonly session: ClientSession | undefined;
  readonly message: JsonRpcRequest;
  readonly stream: RequestStream;
  readonly cancel: Cancellation;
  /** The client's W3C trace context header, if it sent one (continued when tracing accepts it). */
  readonly traceparent?: string | undefined;
  /** 2026-07-28: the log level the request's `_meta` asked for. */
  readonly logLevel?: LogLevel | undefined;
  /** 2026-07-28: its `Mcp-Param-*` headers by lower-case name (absent for a 2025 request: nothing to check). */
  readonly paramHeaders?: ReadonlyMap<string, string> | undefined;
  /**
   * The bearer token this very request was authenticated with (a session's requests each carry their own), for the
   * credentials step only. A SecretValue: its printable forms are a placeholder.
   */
  readonly inboundToken?: SecretValue | undefined;
}

export interface PipelineOptions extends PipelineDeps {
  readonly audit: AuditSink;
  readonly tracing: RequestTracing | undefined;
}

export class Pipeline {
  private readonly deps: PipelineDeps;

  constructor(private readonly opts: PipelineOptions) {
    this.deps = opts;
  }

  /**
   * Answers one request. Every outcome, error or not, ends in `stream.finish` (or the transport's refusal) and one
   * audit record. `prepare` runs first, inside the same accounting (the session's first-use bookkeeping). A
   * session's request leaves its `inflight` map when it ends.
   */
  async run(input: RequestInput, prepare?: () => Promise<void>): Promise<void> {
    // Monotonic and sub-millisecond: the duration histogram's lowest buckets are 0.5 and 1 ms (telemetry/metrics.ts).
    const started = performance.now();
    const { message, session, principal, stream } = input;
    // Two literals rather than a conditional spread: this runs for every request.
    const event: AuditEvent =
      session !== undefined
        ? {
            type: 'mcp.request',
            requestId: auditRequestId(message.id),
            session: session.key,
            protocolVersion: input.protocolVersion,
            subject: principal.subject,
            ...whoFields(principal),
            method: message.method,
          }
        : {
            type: 'mcp.request',
            requestId: auditRequestId(message.id),
            protocolVersion: input.protocolVersion,
            subject: principal.subject,
            ...whoFields(principal),
            method: message.method,
          };
    const span = this.opts.tracing?.startRequest(message.method, input.traceparent);
    const modern = isModernVersion(input.protocolVersion);
    const ctx: RequestContext = {
      principal,
      protocolVersion: input.protocolVersion,
      clientCapabilities: input.clientCapabilities,
      session,
      message,
      params: message.params ?? {},
      stream,
      cancel: input.cancel,
      requestKey: idKey(message.id),
      event,
      span,
      logLevel: input.logLevel,
      paramHeaders: input.paramHeaders,
      inboundToken: input.inboundToken,
    };
    try {
      this.requireAudit();
      if (prepare !== undefined) await prepare();
      // The method table of the request's generation: 2026-07-28 removed some methods and added `server/discover`.
      const table = modern ? MODERN_METHODS : METHODS;
      const handler = Object.hasOwn(table, message.method) ? table[message.method] : undefined;
      if (handler === undefined) {
        const detail = `method ${message.method.slice(0, 64)}`;
        throw new GatewayError(modern ? 'GW_MCP_METHOD_UNKNOWN' : 'GW_MCP_METHOD_NOT_FOUND', { detail });
      }
      const answer = await handler(ctx, this.deps);
      const result = modern
        ? shapeModernResult(message.method, answer, this.deps.serverInfo)
        : shapeLegacyResult(answer);
      stream.finish(rpcResult(message.id, result));
      event.outcome = 'ok';
    } catch (err) {
      const e = toGatewayError(err);
      event.outcome =
        e.code === 'GW_MCP_REQUEST_CANCELLED' ? 'cancelled' : event.decision === 'deny' ? 'denied' : 'error';
      event.errorCode = auditErrorCode(e.code);
      if (e.detail !== undefined) event.detail = e.detail;
      if (e.code === 'GW_INTERNAL') this.opts.logger.error({ err, method: message.method }, 'internal error');
      const response = rpcError(message.id, modern ? modernRpcError(e) : toRpcError(e));
      // Some refusals are HTTP-level answers where the transport can still give one: a missing scope (403 and its
      // challenge), and in 2026-07-28 the errors the revision gives a status (a removed method's 404).
      if (stream.refuse?.(e, response) === true) return;
      // Even a cancelled request's POST must end; the client ignores an answer to an id it cancelled.
      stream.finish(response);
    } finally {
      // The session's own bookkeeping of this request ends here (the front door registered it).
      if (session !== undefined) {
        session.inflight.delete(ctx.requestKey);
        session.lastSeen = this.deps.now();
      }
      event.durationMs = elapsedMs(started);
      this.opts.audit.record(event);
      span?.end(event);
    }
  }

  /** `audit.onFailure: closed` while records cannot be written: nothing happens that is not recorded. */
  requireAudit(refused?: AuditEvent): void {
    if (this.opts.audit.accepting?.() !== false) return;
    const e = new GatewayError('GW_AUDIT_UNAVAILABLE', {
      detail: 'the audit sink cannot write (audit.onFailure closed)',
    });
    // Queued with the rest: written if the sink recovers before the backlog is full, counted as lost otherwise.
    if (refused !== undefined)
      this.opts.audit.record({ ...refused, outcome: 'error', errorCode: e.code, detail: e.detail ?? '' });
    throw e;
  }
}
