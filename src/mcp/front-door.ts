/**
 * The transport-agnostic half of the front door (docs/architecture.md §1 ③): what the edge calls for each MCP message.
 * It owns meaning, the edge owns HTTP. Sessions live in the session table, requests run through the pipeline, and
 * traffic from upstreams goes through the relay; this file only joins them.
 */
import type { Logger } from 'pino';
import type { AuditEvent, AuditSink } from '../audit/audit-sink.js';
import { sessionKeyBytes, SESSIONS_DEFAULTS } from '../config/sessions-config.js';
import type { GatehouseConfig, SecretValue } from '../config/types.js';
import type { CredentialProviders } from '../outbound/credential-provider.js';
import { GatewayError, toRpcError } from '../errors/gateway-error.js';
import type { Principal } from '../identity/principal.js';
import { Cancellation } from '../lib/cancellation.js';
import {
  rpcError,
  type JsonObject,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
} from '../lib/json-rpc.js';
import type { PolicyEngine } from '../policy/decision.js';
import type { CallOrigin, ChangeKind, Router } from '../router/router.js';
import type { RequestTracing } from '../telemetry/tracing.js';
import { auditRequestId, whoFields } from './audit-fields.js';
import type { CallLimiter } from './limits.js';
import type { ResultCache } from './result-cache.js';
import { ListCache } from './list-cache.js';
import { ListenHub } from './listen.js';
import { Pipeline, type PipelineDeps } from './pipeline.js';
import type { RequestMeta } from './request-meta.js';
import { ParkedCalls } from './parked-calls.js';
import { Relay } from './relay.js';
import { RequestStateCodec } from './request-state.js';
import { idKey, type ClientSession } from './session.js';
import type { SessionAuthority } from './session-authority.js';
import { SessionTable } from './session-table.js';
import type { RequestStream, SessionStream } from './streams.js';
import { sessionHolder, UpstreamSubscriptions } from './upstream-subscriptions.js';

export interface FrontDoorOptions {
  config: GatehouseConfig;
  router: Router;
  policy: PolicyEngine;
  audit: AuditSink;
  logger: Logger;
  version: string;
  /** Issues session ids any replica can open and checks revocation/idleness (docs/architecture.md §7). */
  sessions: SessionAuthority;
  /**
   * The rate-limit step of `tools/call` (docs/architecture.md §4); absent: no limits (code-built front doors in tests).
   */
  limits?: CallLimiter;
  /** A span per request, a child per upstream call (docs/architecture.md §9); absent when traces are off. */
  tracing?: RequestTracing | undefined;
  /** Outbound identity: the credential providers of the upstreams with `credentials:`; absent: none. */
  credentials?: CredentialProviders | undefined;
  /** The result cache and idempotency ledger (docs/policy.md "Result cache"); absent: neither. */
  results?: ResultCache | undefined;
  now?: () => number;
}

/** What a 2026-07-28 request brings besides its message and `_meta`. */
export interface StatelessExtras {
  /** Its trace context (`_meta`, else the header). */
  readonly traceparent?: string | undefined;
  /** Its `Mcp-Param-*` headers by lower-case name. */
  readonly paramHeaders?: ReadonlyMap<string, string> | undefined;
  /** The bearer token it was authenticated with, for outbound identity only (never logged or forwarded). */
  readonly inboundToken?: SecretValue | undefined;
}

export class FrontDoor {
  private readonly now: () => number;
  private readonly table: SessionTable;
  private readonly pipeline: Pipeline;
  private readonly relayer: Relay;
  /** 2026-07-28 `subscriptions/listen` streams (listen.ts). */
  private readonly listens: ListenHub;
  private readonly subscriptions: UpstreamSubscriptions;
  /** 2026-07-28 requests in flight (they have no session to count them in). */
  private stateless = 0;
  /** 2026-07-28 calls parked on a 2025 upstream that asked its client something (parked-calls.ts). */
  private readonly parked = new ParkedCalls();

  constructor(private readonly opts: FrontDoorOptions) {
    const now = (this.now = opts.now ?? Date.now);
    const audit = (event: AuditEvent): void => opts.audit.record(event);
    const sessionsConfig = opts.config.sessions ?? SESSIONS_DEFAULTS.sessions;
    const subscriptions = (this.subscriptions = new UpstreamSubscriptions(opts.config, opts.router, opts.logger));
    const deps: PipelineDeps = {
      config: opts.config,
      router: opts.router,
      policy: opts.policy,
      limits: opts.limits,
      lists: new ListCache(),
      logger: opts.logger,
      now,
      maxSubscriptions: sessionsConfig.maxSubscriptions,
      serverInfo: { name: 'gatehouse', version: opts.version },
      upstreamSubscriptions: subscriptions,
      requestState: requestStateCodec(opts.config),
      parked: this.parked,
      credentials: opts.credentials,
      results: opts.results,
      // The relay is built below, with the session table the pipeline's audit gate is handed to.
      relay: {
        relay: (upstream, request, origin) => this.relayer.relay(upstream, request, origin),
        permitInput: (upstream, request, principal, caps) =>
          this.relayer.permitInput(upstream, request, principal, caps),
      },
    };
    this.listens = new ListenHub({
      deps,
      subscriptions,
      maxPerPrincipal: sessionsConfig.maxListensPerPrincipal,
      logger: opts.logger,
    });
    this.pipeline = new Pipeline({ ...deps, listens: this.listens, audit: opts.audit, tracing: opts.tracing });
    const requireAudit = (refused?: AuditEvent): void => this.pipeline.requireAudit(refused);
    this.table = new SessionTable({
      config: opts.config,
      router: opts.router,
      logger: opts.logger,
      version: opts.version,
      sessions: opts.sessions,
      audit,
      requireAudit,
      now,
      // What a closed session held at shared upstreams is withdrawn there unless another client still needs it.
      onClosed: (session) => subscriptions.releaseAll(sessionHolder(session.key)),
    });
    this.relayer = new Relay({
      sessions: this.table,
      router: opts.router,
      policy: opts.policy,
      logger: opts.logger,
      audit,
      requireAudit,
      now,
    });
    opts.router.onChange((kinds) => this.announceChanges(kinds));
  }

  get sessionCount(): number {
    return this.table.count;
  }

  /** At a full table, before authentication: whether any caller could still be admitted (session-admission.ts). */
  mayMakeRoom(): boolean {
    return this.table.mayMakeRoom();
  }

  /** Calls in flight: in sessions, and 2026-07-28 requests without one (shutdown waits for both). */
  get inFlightCount(): number {
    return this.table.inFlightCount + this.stateless;
  }

  // ---------------------------------------------------------------- sessions (session-table.ts)

  /** `initialize` opens a session (MCP lifecycle §Initialization). */
  initialize(
    message: JsonRpcRequest,
    principal: Principal,
  ): Promise<{ session: ClientSession; response: JsonRpcResponse }> {
    return this.table.initialize(message, principal);
  }

  /** The session a request names, if it exists and belongs to this principal (else 404, threat model #6). */
  lookup(sessionId: string, principal: Principal): Promise<ClientSession> {
    return this.table.lookup(sessionId, principal);
  }

  /** DELETE (transports §Session Management): revoked on every replica, then closed here. */
  deleteSession(session: ClientSession): Promise<void> {
    return this.table.deleteSession(session);
  }

  closeSession(session: ClientSession, reason: string, method: 'close' | 'evict' = 'close'): Promise<void> {
    return this.table.closeSession(session, reason, method);
  }

  openStream(session: ClientSession, stream: SessionStream): boolean {
    return this.table.openStream(session, stream);
  }

  // ---------------------------------------------------------------- messages from the client

  notification(session: ClientSession, message: JsonRpcNotification): void {
    const p = message.params ?? {};
    switch (message.method) {
      case 'notifications/initialized':
        session.initialized = true;
        return;
      case 'notifications/cancelled': {
        // Cancel only what this session has in flight (utilities/cancellation: unknown ids are ignored).
        const id = p.requestId;
        if (typeof id === 'string' || typeof id === 'number') session.inflight.get(idKey(id))?.cancel.abort();
        return;
      }
      case 'notifications/roots/list_changed':
        void this.opts.router.notifySessionUpstreams(session.key, message.method);
        return;
      default:
        return; // notifications we do not know are ignored, never answered (basic §Notifications)
    }
  }

  /** A client's answer to a request the gateway relayed to it from an upstream. */
  response(session: ClientSession, message: JsonRpcResponse): void {
    this.relayer.response(session, message);
  }

  /**
   * Answer one client request of a session through the pipeline. Every outcome, error or not, ends in
   * `stream.finish`. `traceparent`: the client's W3C trace context header, if it sent one.
   */
  request(
    session: ClientSession,
    message: JsonRpcRequest,
    stream: RequestStream,
    traceparent?: string,
    inboundToken?: SecretValue,
  ): Promise<void> {
    const key = idKey(message.id);
    if (session.inflight.has(key)) {
      this.refuseDuplicate(session, message, stream);
      return Promise.resolve();
    }
    const cancel = new Cancellation();
    // The pipeline takes it out again when the request ends, however it ends.
    session.inflight.set(key, { cancel, stream });
    return this.pipeline.run(
      {
        principal: session.principal,
        protocolVersion: session.protocolVersion,
        clientCapabilities: session.clientCapabilities,
        session,
        message,
        stream,
        cancel,
        traceparent,
        // Each request of a session carries its own token (the session is bound to the principal, not to a token).
        inboundToken,
      },
      // The first request after `notifications/initialized`: the session is in use, the store's clock takes over.
      !session.established && session.initialized ? () => this.table.establish(session) : undefined,
    );
  }

  /**
   * Answer one MCP 2026-07-28 request: no session, what a session would hold comes from the request's own `_meta`
   * (request-meta.ts). The same pipeline, the same policy, limits and audit as a session's request.
   */
  async statelessRequest(
    principal: Principal,
    message: JsonRpcRequest,
    meta: RequestMeta,
    stream: RequestStream,
    cancel: Cancellation,
    extra: StatelessExtras = {},
  ): Promise<void> {
    const { traceparent, paramHeaders, inboundToken } = extra;
    if (this.table.isDraining) throw new GatewayError('GW_HTTP_SHUTTING_DOWN');
    this.stateless += 1;
    try {
      await this.pipeline.run({
        principal,
        protocolVersion: meta.protocolVersion,
        clientCapabilities: meta.clientCapabilities,
        session: undefined,
        message,
        stream,
        cancel,
        traceparent,
        logLevel: meta.logLevel,
        paramHeaders: paramHeaders ?? new Map(),
        inboundToken,
      });
    } finally {
      this.stateless -= 1;
    }
  }

  /** Ids must be unique among a session's requests in flight (basic §Requests). */
  private refuseDuplicate(session: ClientSession, message: JsonRpcRequest, stream: RequestStream): void {
    const detail = 'duplicate request id in flight';
    stream.finish(rpcError(message.id, toRpcError(new GatewayError('GW_MCP_INVALID_REQUEST', { detail }))));
    this.opts.audit.record({
      type: 'mcp.request',
      requestId: auditRequestId(message.id),
      session: session.key,
      subject: session.principal.subject,
      ...whoFields(session.principal),
      method: message.method,
      outcome: 'error',
      errorCode: 'GW_MCP_INVALID_REQUEST',
      detail,
      durationMs: 0,
    });
  }

  // ---------------------------------------------------------------- messages from upstreams (relay.ts)

  /** An upstream asks the client something (sampling, elicitation, roots; threat model #19). */
  relay(upstream: string, request: JsonRpcRequest, origin: CallOrigin | undefined): Promise<JsonObject> {
    return this.relayer.relay(upstream, request, origin);
  }

  /** To the 2025 sessions it concerns (relay.ts), and a resource update to the listen streams subscribed to it. */
  upstreamNotification(upstream: string, n: JsonRpcNotification, origin: CallOrigin | undefined): void {
    this.relayer.upstreamNotification(upstream, n, origin);
    const uri = n.params?.uri;
    if (n.method === 'notifications/resources/updated' && typeof uri === 'string')
      this.listens.resourceUpdated(upstream, uri);
  }

  /**
   * Each session hears a list change once, on its own GET stream (transports §Multiple Connections), and each listen
   * stream that asked for the kind when its principal's view of the list changed. Also called after a policy reload
   * or a quarantine change: what a client may see changed, not the upstreams.
   */
  announceChanges(kinds: ReadonlySet<ChangeKind>): void {
    this.relayer.announceChanges(kinds);
    this.listens.announce(kinds);
  }

  /** Open `subscriptions/listen` streams, and resource URIs the gateway holds at shared upstreams. */
  get listenCount(): number {
    return this.listens.count;
  }

  get upstreamSubscriptionCount(): number {
    return this.subscriptions.size;
  }

  // ---------------------------------------------------------------- shutdown

  /**
   * Stop opening sessions; end every listen stream with its graceful result (a listen never ends by itself, so it
   * must not hold the drain for the whole deadline); wait for calls in flight up to the deadline, then close every
   * session.
   */
  async drain(deadlineMs: number): Promise<void> {
    this.table.startDraining();
    this.subscriptions.stop();
    this.listens.endAll('shutdown');
    const until = this.now() + deadlineMs;
    while (this.inFlightCount > 0 && this.now() < until) await new Promise((r) => setTimeout(r, 25));
    this.parked.closeAll();
    await this.table.closeAll('shutdown');
  }

  get isDraining(): boolean {
    return this.table.isDraining;
  }
}

/**
 * The `requestState` keys: derived from `sessions.keys`, so a retry may reach any replica that holds them; without
 * them, this process's own (said at start by the session authority, which has the same limit).
 */
function requestStateCodec(config: GatehouseConfig): RequestStateCodec {
  const keys = sessionKeyBytes(config.sessions ?? SESSIONS_DEFAULTS.sessions);
  return keys.length > 0 ? new RequestStateCodec(keys) : RequestStateCodec.ephemeral();
}
