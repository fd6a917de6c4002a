import type { Logger } from 'pino';
import type { AuditEvent, AuditSink } from '../audit/audit-sink.js';
import type { RequestSpan, RequestTracing } from '../telemetry/tracing.js';
import { SESSIONS_DEFAULTS } from '../config/sessions-config.js';
import type { GatehouseConfig } from '../config/types.js';
import { GatewayError, toGatewayError, toRpcError } from '../errors/gateway-error.js';
import {
  isJsonObject,
  rpcError,
  rpcResult,
  type JsonObject,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
  type RequestId,
} from '../lib/json-rpc.js';
import { Cancellation } from '../lib/cancellation.js';
import { principalKey, type Principal } from '../identity/principal.js';
import type { AllowDecision, Decision, DecisionInput, PolicyEngine, TargetKind } from '../policy/decision.js';
import { redactArguments } from '../policy/field-path.js';
import { PERMIT_ALL_RULE_ID } from '../policy/permit-all.js';
import { upstreamRequestOf } from '../policy/upstream-requests.js';
import {
  unknownPrompt,
  unknownResource,
  unknownTool,
  type CallOrigin,
  type ChangeKind,
  type RouteContext,
  type Router,
} from '../router/router.js';
import { LATEST_PROTOCOL_VERSION, isSupportedVersion } from './protocol-versions.js';
import { ClientSession, idKey, LOG_LEVELS, type LogLevel } from './session.js';
import { SessionHolders, type Admission } from './session-admission.js';
import type { SessionAuthority } from './session-authority.js';
import type { RequestStream, SessionStream } from './streams.js';
import { auditErrorCode, type CallLimiter } from './limits.js';
import { ListCache, type CachedList } from './list-cache.js';
import { clientSupports } from './relay-capabilities.js';

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
  now?: () => number;
}

/** What the gateway's origin handle for an upstream call carries: the session and the exact request. */
interface RequestOrigin extends CallOrigin {
  requestKey: string;
}

const RELAY_TIMEOUT_MS = 120_000;
/**
 * How long the edge's pre-authentication answer "could anyone be admitted at the full table" is reused: the scan
 * is over every held session when all are busy, and a flood of `initialize` at the cap must not repeat it each time.
 */
const ROOM_ANSWER_MS = 250;

/**
 * The transport-agnostic half of the front door (docs/architecture.md §1 ③): sessions, version negotiation and every
 * MCP method the gateway answers, forwards or relays. The edge owns HTTP; this owns meaning.
 */
export class FrontDoor {
  private readonly sessions = new Map<string, ClientSession>();
  private readonly byKey = new Map<string, ClientSession>();
  /** The same sessions by subject and client, for the session caps (session-admission.ts). */
  private readonly holders: SessionHolders<ClientSession>;
  /** `sessions.unusedTimeoutMs`: a held session not established by then is let go (the store ends it). */
  private readonly unusedTimeoutMs: number;
  private readonly now: () => number;
  private sweeper: NodeJS.Timeout | undefined;
  private draining = false;
  private room = { until: 0, answer: false };
  /** `sessions.maxSubscriptions`: resource URIs one session may be subscribed to at once. */
  private readonly maxSubscriptions: number;
  /** Filtered lists per listing key (list-cache.ts): the policy decides each list item once per key, not per request. */
  private readonly lists = new ListCache();

  constructor(private readonly opts: FrontDoorOptions) {
    this.now = opts.now ?? Date.now;
    opts.router.onChange((kinds) => this.announceChanges(kinds));
    const { server } = opts.config;
    const sessions = opts.config.sessions ?? SESSIONS_DEFAULTS.sessions;
    this.holders = new SessionHolders({
      total: server.maxSessions,
      perSubject: sessions.maxPerSubject,
      perClient: sessions.maxPerClient,
    });
    // Never above the idle timeout (the loader checks it; a config built in code may not have).
    this.unusedTimeoutMs = Math.min(sessions.unusedTimeoutMs, server.sessionIdleTimeoutMs);
    this.maxSubscriptions = sessions.maxSubscriptions;
    // Sweeps as often as the shorter clock needs: a quarter of it, 1 s to 60 s.
    this.sweeper = setInterval(
      () => this.sweepIdle(),
      Math.min(60_000, Math.max(1_000, Math.floor(this.unusedTimeoutMs / 4))),
    );
    this.sweeper.unref();
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** At a full table, before authentication: whether any caller could still be admitted (session-admission.ts). */
  mayMakeRoom(): boolean {
    const now = this.now();
    if (now >= this.room.until) this.room = { until: now + ROOM_ANSWER_MS, answer: this.holders.mayMakeRoom() };
    return this.room.answer;
  }

  get inFlightCount(): number {
    let n = 0;
    for (const s of this.sessions.values()) n += s.inflight.size;
    return n;
  }

  // ---------------------------------------------------------------- sessions

  /** `initialize` opens a session (MCP lifecycle §Initialization). */
  async initialize(
    message: JsonRpcRequest,
    principal: Principal,
  ): Promise<{ session: ClientSession; response: JsonRpcResponse }> {
    const refused: AuditEvent = {
      type: 'mcp.session',
      subject: principal.subject,
      ...whoFields(principal),
      method: 'initialize',
    };
    this.requireAudit(refused);
    try {
      return await this.openSession(message, principal);
    } catch (err) {
      // A session refused (cap reached, shutting down, bad params, store down) is an outcome too: one record.
      const e = toGatewayError(err);
      this.audit({
        ...refused,
        outcome: 'error',
        errorCode: e.code,
        ...(e.detail !== undefined ? { detail: e.detail } : {}),
      });
      throw err;
    }
  }

  private async openSession(
    message: JsonRpcRequest,
    principal: Principal,
  ): Promise<{ session: ClientSession; response: JsonRpcResponse }> {
    if (this.draining) throw new GatewayError('GW_HTTP_SHUTTING_DOWN');
    admitted(this.holders.admit(principal));
    const params = message.params ?? {};
    const requested = params.protocolVersion;
    if (
      typeof requested !== 'string' ||
      !isJsonObject(params.capabilities ?? {}) ||
      !isJsonObject(params.clientInfo ?? {})
    ) {
      throw new GatewayError('GW_MCP_INVALID_PARAMS', {
        detail: 'initialize needs protocolVersion, capabilities and clientInfo',
      });
    }
    // Echo a version we support, else offer our latest (lifecycle §Version Negotiation).
    const version = isSupportedVersion(requested) ? requested : LATEST_PROTOCOL_VERSION;
    const session = await this.opts.sessions.issue(
      principal,
      version,
      (params.capabilities as JsonObject | undefined) ?? {},
      (params.clientInfo as JsonObject | undefined) ?? {},
      this.now(),
    );
    // Again after the await: concurrent initializations all passed the check above on the same table. The id
    // issued never reaches anyone; its record in the store ends with the unused timeout.
    const evict = admitted(this.holders.admit(principal));
    // A new session at a cap ends the session chosen to make room, on every replica (404 on its next use).
    const evicted = evict.map((v) => this.evict(v, session));
    this.hold(session);
    await Promise.all(evicted);
    this.audit({
      type: 'mcp.session',
      session: session.key,
      subject: principal.subject,
      ...whoFields(principal),
      method: 'initialize',
      outcome: 'ok',
    });
    const result: JsonObject = {
      protocolVersion: version,
      capabilities: this.opts.router.capabilities(),
      serverInfo: { name: 'gatehouse', version: this.opts.version },
      instructions: 'Tools, resources and prompts from several MCP servers, namespaced as <server>__<name>.',
    };
    return { session, response: rpcResult(message.id, result) };
  }

  /**
   * The session a request names, if it exists and belongs to this principal. Another principal's session
   * answers exactly like an unknown one (404): ids are not capabilities (threat model #6).
   */
  async lookup(sessionId: string, principal: Principal): Promise<ClientSession> {
    try {
      const held = this.sessions.get(sessionId);
      const session = held ?? (await this.restore(sessionId, principal));
      if (session.closed || session.principalKey !== principalKey(principal)) {
        throw new GatewayError('GW_MCP_SESSION_NOT_FOUND', { detail: 'session belongs to another principal' });
      }
      if (held) await this.verifyHeld(held);
      session.lastSeen = this.now();
      return session;
    } catch (err) {
      const e = toGatewayError(err);
      // Every refusal leaves its record: an unknown/foreign session (denied), or a store or cap problem (error).
      const denied = e.code === 'GW_MCP_SESSION_NOT_FOUND';
      this.audit({
        type: 'mcp.session',
        subject: principal.subject,
        ...whoFields(principal),
        method: 'lookup',
        outcome: denied ? 'denied' : 'error',
        errorCode: e.code,
        detail: e.detail ?? (denied ? 'no such session' : e.message),
      });
      throw e;
    }
  }

  /**
   * A session another replica issued (or this one before it let it go): rebuilt from its id (docs/architecture.md §7).
   */
  private async restore(sessionId: string, principal: Principal): Promise<ClientSession> {
    if (this.draining) throw new GatewayError('GW_HTTP_SHUTTING_DOWN');
    const restored = await this.opts.sessions.restore(sessionId, principal, this.now());
    // Two requests may restore the same session at once: the first one in wins.
    const raced = this.sessions.get(sessionId);
    if (raced) return raced;
    // The same caps as a new session. The copies let go to make room are only copies: their sessions live on in
    // their ids (and come back here, under the same caps, when used); nothing is revoked for a session not new.
    for (const v of admitted(this.holders.admit(principal)))
      void this.closeSession(v, `let go at a session cap for a session restored here`);
    this.hold(restored);
    this.audit({
      type: 'mcp.session',
      session: restored.key,
      subject: principal.subject,
      ...whoFields(principal),
      method: 'restore',
      outcome: 'ok',
    });
    return restored;
  }

  private hold(session: ClientSession): void {
    this.sessions.set(session.id, session);
    this.byKey.set(session.key, session);
    this.holders.add(session);
  }

  /**
   * Ends a session to make room for `newcomer` (session-admission.ts): closed here at once — its GET stream and
   * per-session upstreams stopped, audited as `evict` — and ended in the store, so that it is refused (404)
   * wherever it is used next. Ended like an idle session, not revoked: a loop of evictions leaves no records.
   */
  private async evict(victim: ClientSession, newcomer: ClientSession): Promise<void> {
    const closed = this.closeSession(
      victim,
      `evicted at a session cap for session ${newcomer.key} (subject ${newcomer.principal.subject})`,
      'evict',
    );
    try {
      await this.opts.sessions.end(victim, this.now());
    } catch (err) {
      // Already let go here; its id could still be brought back (under the same caps) until the store answers.
      this.opts.logger.warn(
        { err: toGatewayError(err).detail, session: victim.key },
        'evicted session could not be ended in the session store',
      );
    }
    await closed;
  }

  /** A held session may have been deleted on another replica, gone idle, or reached its lifetime. */
  private async verifyHeld(session: ClientSession): Promise<void> {
    try {
      await this.opts.sessions.verify(session, this.now());
    } catch (err) {
      if (err instanceof GatewayError && err.code === 'GW_MCP_SESSION_NOT_FOUND')
        await this.closeSession(session, err.detail ?? 'refused');
      throw err;
    }
  }

  /** DELETE (transports §Session Management): revoked on every replica, then closed here. */
  async deleteSession(session: ClientSession): Promise<void> {
    await this.opts.sessions.revoke(session, this.now());
    await this.closeSession(session, 'deleted by client');
  }

  /** `method`: `evict` when a session cap ended it (the audit record says so), `close` otherwise. */
  async closeSession(session: ClientSession, reason: string, method: 'close' | 'evict' = 'close'): Promise<void> {
    if (session.closed) return;
    session.closed = true;
    this.sessions.delete(session.id);
    this.byKey.delete(session.key);
    this.holders.delete(session);
    for (const f of session.inflight.values()) f.cancel.abort();
    for (const p of session.pendingToClient.values()) {
      clearTimeout(p.timer);
      p.reject(new GatewayError('GW_RELAY_UNROUTABLE', { detail: 'client session closed' }));
    }
    session.pendingToClient.clear();
    session.getStream?.close();
    this.audit({
      type: 'mcp.session',
      session: session.key,
      subject: session.principal.subject,
      ...whoFields(session.principal),
      method,
      detail: reason,
      outcome: 'ok',
    });
    await this.opts.router.releaseSession(session.key);
  }

  openStream(session: ClientSession, stream: SessionStream): boolean {
    if (session.getStream && !session.getStream.closed) return false;
    session.getStream = stream;
    return true;
  }

  /**
   * Lets go of sessions idle here; the session itself lives on in its id (another replica may be serving it).
   * A session with an open stream or a call in flight is in use: its shared idle clock is kept running, which
   * is also how a deletion or expiry elsewhere reaches a GET stream held here. One not established within
   * `sessions.unusedTimeoutMs` goes sooner: the store has ended it already (its clock is not pushed back).
   */
  private sweepIdle(): void {
    const now = this.now();
    const limit = now - this.opts.config.server.sessionIdleTimeoutMs;
    const unusedLimit = now - this.unusedTimeoutMs;
    for (const s of [...this.sessions.values()]) {
      if (now >= s.expiresAt) void this.closeSession(s, 'lifetime over');
      else if (s.busy)
        this.verifyHeld(s).catch((err: unknown) =>
          this.opts.logger.debug({ err: toGatewayError(err).detail }, 'session keep-alive refused'),
        );
      else if (!s.established && s.lastSeen < unusedLimit)
        void this.closeSession(s, 'never used (sessions.unusedTimeoutMs)');
      else if (s.lastSeen < limit) void this.closeSession(s, 'idle');
    }
  }

  private async establish(session: ClientSession): Promise<void> {
    await this.opts.sessions.establish(session, this.now());
    session.established = true;
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
    if (message.id === null) return;
    const pending = session.pendingToClient.get(idKey(message.id));
    if (!pending) return;
    session.pendingToClient.delete(idKey(message.id));
    clearTimeout(pending.timer);
    if ('result' in message) pending.resolve(message.result);
    else pending.reject(new GatewayError('GW_UPSTREAM_REJECTED', { detail: `client answered ${message.error.code}` }));
  }

  /** Answer one client request. Every outcome, error or not, ends in `stream.finish`. */
  /** `traceparent`: the client's W3C trace context header, if it sent one (continued when tracing accepts it). */
  async request(
    session: ClientSession,
    message: JsonRpcRequest,
    stream: RequestStream,
    traceparent?: string,
  ): Promise<void> {
    // Monotonic and sub-millisecond: the duration histogram's lowest buckets are 0.5 and 1 ms (telemetry/metrics.ts).
    const started = performance.now();
    const key = idKey(message.id);
    if (session.inflight.has(key)) {
      // Ids must be unique among a session's requests in flight (basic §Requests).
      stream.finish(
        rpcError(
          message.id,
          toRpcError(new GatewayError('GW_MCP_INVALID_REQUEST', { detail: 'duplicate request id in flight' })),
        ),
      );
      this.audit({
        type: 'mcp.request',
        requestId: auditRequestId(message.id),
        session: session.key,
        subject: session.principal.subject,
        ...whoFields(session.principal),
        method: message.method,
        outcome: 'error',
        errorCode: 'GW_MCP_INVALID_REQUEST',
        detail: 'duplicate request id in flight',
        durationMs: 0,
      });
      return;
    }
    const cancel = new Cancellation();
    session.inflight.set(key, { cancel, stream });
    const event: AuditEvent = {
      type: 'mcp.request',
      requestId: auditRequestId(message.id),
      session: session.key,
      subject: session.principal.subject,
      ...whoFields(session.principal),
      method: message.method,
    };
    const span = this.opts.tracing?.startRequest(message.method, traceparent);
    try {
      this.requireAudit();
      // The first request after `notifications/initialized`: the session is in use, the store's idle clock takes over.
      if (!session.established && session.initialized) await this.establish(session);
      const result = await this.dispatch(session, message, stream, cancel, key, event, span);
      stream.finish(rpcResult(message.id, result));
      event.outcome = 'ok';
    } catch (err) {
      const e = toGatewayError(err);
      event.outcome =
        e.code === 'GW_MCP_REQUEST_CANCELLED' ? 'cancelled' : event.decision === 'deny' ? 'denied' : 'error';
      event.errorCode = auditErrorCode(e.code);
      if (e.detail !== undefined) event.detail = e.detail;
      if (e.code === 'GW_INTERNAL') this.opts.logger.error({ err, method: message.method }, 'internal error');
      const response = rpcError(message.id, toRpcError(e));
      // A missing scope is an HTTP-level answer (403 + challenge) where the transport can still give one.
      if (e.code === 'GW_AUTH_INSUFFICIENT_SCOPE' && stream.refuse?.(e, response) === true) return;
      // Even a cancelled request's POST must end; the client ignores an answer to an id it cancelled.
      stream.finish(response);
    } finally {
      session.inflight.delete(key);
      session.lastSeen = this.now();
      event.durationMs = elapsedMs(started);
      this.audit(event);
      span?.end(event);
    }
  }

  /**
   * The policy step (docs/architecture.md §4) for one targeted request, or an untargeted one (lists, ping). Records the
   * decision on the audit event and turns a deny into the answer the client gets:
   *   no_matching_rule, denied_by_rule, quarantined → `hidden()`: exactly the answer for a target that does not exist;
   *   insufficient_scope → GW_AUTH_INSUFFICIENT_SCOPE (the edge answers 403 with the scopes to step up to);
   *   invalid_arguments → GW_MCP_INVALID_PARAMS with the generic message; the violation goes to audit only.
   */
  private decide(
    session: ClientSession,
    method: string,
    target: DecisionInput['target'],
    args: JsonObject | undefined,
    event: AuditEvent,
    hidden: (detail: string) => GatewayError,
    quarantined = false,
  ): AllowDecision {
    // Assigned, not spread: a conditional spread allocates an object per member on every call.
    const input: DecisionInput = { principal: session.principal, method, now: this.now() };
    if (target !== undefined) input.target = target;
    if (args !== undefined) input.args = args;
    if (quarantined) input.quarantined = true;
    const d = this.opts.policy.decide(input);
    recordDecision(event, d);
    if (d.effect === 'allow') {
      // Never the arguments as sent: only with the fields the policy marks `redact` replaced. Without a policy
      // (permit-all, auth.mode none) nothing says which fields are secret, so none are recorded.
      if (args !== undefined && d.ruleId !== PERMIT_ALL_RULE_ID)
        event.arguments = redactArguments(args, d.redact ?? []);
      return d;
    }
    throw denial(d, hidden);
  }

  /** Whether a listing shows this item: the call's decision without the argument step (the same function decides both). */
  /** The longest a call to this upstream can live (its maxTotalTimeoutMs, or the policy's timeoutMs if smaller). */
  private maxCallMs(upstream: string, timeoutMs: number | undefined): number {
    const max = this.opts.config.upstreams.find((u) => u.name === upstream)?.maxTotalTimeoutMs ?? 300_000;
    return timeoutMs !== undefined ? Math.min(max, timeoutMs) : max;
  }

  private shows(
    session: ClientSession,
    method: string,
    kind: TargetKind,
    name: string,
    upstream: string,
    now: number,
    quarantined = false,
  ): boolean {
    const input: DecisionInput = {
      principal: session.principal,
      method,
      now,
      target: { kind, name, upstream },
      argumentsUnchecked: true,
    };
    if (quarantined) input.quarantined = true;
    return this.opts.policy.decide(input).effect === 'allow';
  }

  /**
   * A filtered list from the cache, or built by `build` and kept. Read synchronously with the build: the
   * catalogue, pin state and policy it is keyed by are the ones `build` sees.
   */
  private cachedList(session: ClientSession, list: CachedList, build: () => JsonObject): JsonObject {
    const { router, policy } = this.opts;
    const generation = { catalogue: router.catalogue, pins: router.pins, policyRevision: policy.revision };
    return this.lists.get(list, policy.listingKey?.(session.principal), generation, build);
  }

  private async dispatch(
    session: ClientSession,
    message: JsonRpcRequest,
    stream: RequestStream,
    cancel: Cancellation,
    key: string,
    event: AuditEvent,
    span: RequestSpan | undefined,
  ): Promise<JsonObject> {
    const params = message.params ?? {};
    const router = this.opts.router;
    const catalogue = router.catalogue;
    const ctx = (): RouteContext => this.routeContext(session, params, stream, cancel, key, span);

    switch (message.method) {
      case 'ping':
        return {};
      case 'initialize':
        throw new GatewayError('GW_MCP_ALREADY_INITIALIZED');
      case 'tools/list': {
        rejectCursor(params);
        this.decide(session, message.method, undefined, undefined, event, hiddenMethod(message.method));
        const now = this.now();
        return this.cachedList(session, 'tools', () => {
          // The whole list in one pass where the engine can (the same answers as one decision per tool).
          const allowed = this.opts.policy.visibleTargets?.(session.principal, catalogue.toolTargets);
          // Pinning (docs/architecture.md §4): a quarantined tool is hidden, like one the policy does not show.
          const shown = [...catalogue.tools.values()].filter((t, i) =>
            allowed !== undefined
              ? allowed[i] === true && !router.isQuarantined(t.upstream, t.original)
              : this.shows(
                  session,
                  'tools/call',
                  'tool',
                  t.exposed,
                  t.upstream,
                  now,
                  router.isQuarantined(t.upstream, t.original),
                ),
          );
          return { tools: shown.map((t) => t.definition) };
        });
      }
      case 'tools/call': {
        const name = params.name;
        if (typeof name !== 'string')
          throw new GatewayError('GW_MCP_INVALID_PARAMS', { detail: 'tools/call without a string name' });
        if (params.arguments !== undefined && !isJsonObject(params.arguments))
          throw new GatewayError('GW_MCP_INVALID_PARAMS', { detail: 'arguments must be an object' });
        const entry = catalogue.tools.get(name);
        event.tool = name;
        if (!entry) throw unknownTarget(event, 'unknown_tool', unknownTool(name));
        event.upstream = entry.upstream;
        const quarantined = router.isQuarantined(entry.upstream, entry.original);
        const allowed = this.decide(
          session,
          message.method,
          { kind: 'tool', name, upstream: entry.upstream },
          (params.arguments as JsonObject | undefined) ?? {},
          event,
          (detail) => unknownTool(name, detail),
          quarantined,
        );
        // Rate limits, the last step before forward (docs/architecture.md §4); the policy's timeoutMs caps the call's
        // deadline.
        const timeoutMs = allowed.limits?.timeoutMs;
        const admission = await this.opts.limits?.admit(
          {
            principal: session.principal,
            tool: name,
            upstream: entry.upstream,
            decision: allowed,
            maxDurationMs: this.maxCallMs(entry.upstream, timeoutMs),
          },
          event,
        );
        try {
          return await router.callTool(
            name,
            params,
            timeoutMs !== undefined ? { ...ctx(), deadlineMs: timeoutMs } : ctx(),
          );
        } finally {
          admission?.release();
        }
      }
      case 'resources/list': {
        rejectCursor(params);
        this.decide(session, message.method, undefined, undefined, event, hiddenMethod(message.method));
        const now = this.now();
        return this.cachedList(session, 'resources', () => {
          const shown = [...catalogue.resources].filter(([uri, r]) =>
            this.shows(session, 'resources/read', 'resource', uri, r.upstream, now),
          );
          return { resources: shown.map(([, r]) => r.definition) };
        });
      }
      case 'resources/templates/list': {
        rejectCursor(params);
        this.decide(session, message.method, undefined, undefined, event, hiddenMethod(message.method));
        const now = this.now();
        // A template is decided by its URI template text: a rule's resource glob (e.g. `notes://**`) covers it as it covers the URIs.
        return this.cachedList(session, 'resourceTemplates', () => {
          const shown = catalogue.templates.filter((t) =>
            this.shows(session, 'resources/read', 'resource', templateText(t.definition), t.upstream, now),
          );
          return { resourceTemplates: shown.map((t) => t.definition) };
        });
      }
      case 'resources/read':
      case 'resources/subscribe':
      case 'resources/unsubscribe': {
        const uri = params.uri;
        if (typeof uri !== 'string' || uri.length === 0 || uri.length > 8192)
          throw new GatewayError('GW_MCP_INVALID_PARAMS', { detail: `${message.method} without a usable uri` });
        event.resource = uri.slice(0, 512);
        const owner = catalogue.resolveResource(uri);
        if (owner === undefined) throw unknownTarget(event, 'unknown_resource', unknownResource(uri));
        event.upstream = owner;
        this.decide(
          session,
          message.method,
          { kind: 'resource', name: uri, upstream: owner },
          undefined,
          event,
          (detail) => unknownResource(uri, detail),
        );
        // Each subscription is held here and by the upstream for the session's life: bounded like sessions are
        // (threat model #9), and refused before the upstream is asked.
        if (
          message.method === 'resources/subscribe' &&
          !session.subscriptions.has(uri) &&
          session.subscriptions.size >= this.maxSubscriptions
        ) {
          throw new GatewayError('GW_MCP_SUBSCRIPTION_LIMIT', {
            detail: `session holds ${session.subscriptions.size} subscriptions (sessions.maxSubscriptions ${this.maxSubscriptions})`,
          });
        }
        const result = await router.resourceRequest(message.method, uri, params, ctx());
        if (message.method === 'resources/subscribe') session.subscriptions.add(uri);
        if (message.method === 'resources/unsubscribe') session.subscriptions.delete(uri);
        return result;
      }
      case 'prompts/list': {
        rejectCursor(params);
        this.decide(session, message.method, undefined, undefined, event, hiddenMethod(message.method));
        const now = this.now();
        return this.cachedList(session, 'prompts', () => ({
          prompts: [...catalogue.prompts]
            .filter(([name, p]) => this.shows(session, 'prompts/get', 'prompt', name, p.upstream, now))
            .map(([, p]) => p.definition),
        }));
      }
      case 'prompts/get': {
        const name = params.name;
        if (typeof name !== 'string')
          throw new GatewayError('GW_MCP_INVALID_PARAMS', { detail: 'prompts/get without a string name' });
        event.prompt = name;
        const entry = catalogue.prompts.get(name);
        if (!entry) throw unknownTarget(event, 'unknown_prompt', unknownPrompt(name));
        event.upstream = entry.upstream;
        const args = params.arguments;
        this.decide(
          session,
          message.method,
          { kind: 'prompt', name, upstream: entry.upstream },
          isJsonObject(args) ? args : undefined,
          event,
          (detail) => unknownPrompt(name, detail),
        );
        return router.getPrompt(name, params, ctx());
      }
      case 'completion/complete': {
        // Completing a prompt's or a template's arguments needs that target to exist for this principal
        // (docs/architecture.md §4).
        const ref = params.ref;
        const now = this.now();
        if (isJsonObject(ref) && ref.type === 'ref/prompt' && typeof ref.name === 'string') {
          const entry = catalogue.prompts.get(ref.name);
          if (entry !== undefined && !this.shows(session, 'prompts/get', 'prompt', ref.name, entry.upstream, now))
            throw unknownPrompt(ref.name, 'completion: prompt hidden by policy');
        } else if (isJsonObject(ref) && ref.type === 'ref/resource' && typeof ref.uri === 'string') {
          const template = catalogue.templates.find((t) => t.definition.uriTemplate === ref.uri);
          if (
            template !== undefined &&
            !this.shows(session, 'resources/read', 'resource', ref.uri, template.upstream, now)
          ) {
            throw new GatewayError('GW_MCP_RESOURCE_UNKNOWN', { detail: 'completion: template hidden by policy' });
          }
        }
        return router.complete(params, ctx());
      }
      case 'logging/setLevel': {
        const level = params.level;
        if (typeof level !== 'string' || !(LOG_LEVELS as readonly string[]).includes(level))
          throw new GatewayError('GW_MCP_INVALID_PARAMS', { detail: 'unknown log level' });
        session.logLevel = level as LogLevel;
        await router.requestSessionUpstreams(session.key, 'logging/setLevel', { level });
        return {};
      }
      default:
        throw new GatewayError('GW_MCP_METHOD_NOT_FOUND', { detail: `method ${message.method.slice(0, 64)}` });
    }
  }

  private routeContext(
    session: ClientSession,
    params: JsonObject,
    stream: RequestStream,
    cancel: Cancellation,
    requestKey: string,
    span: RequestSpan | undefined,
  ): RouteContext {
    const origin: RequestOrigin = { sessionKey: session.key, requestKey };
    const ctx: RouteContext = {
      sessionKey: session.key,
      clientCapabilities: session.clientCapabilities,
      cancel,
      origin,
    };
    if (span !== undefined) ctx.trace = span.calls;
    const meta = params._meta;
    const token = isJsonObject(meta) ? meta.progressToken : undefined;
    if (typeof token === 'string' || typeof token === 'number') {
      // Re-emit upstream progress under the client's own token (utilities/progress; the SDK drops unknown tokens).
      ctx.onProgress = (u) => {
        stream.sendRelated({
          jsonrpc: '2.0',
          method: 'notifications/progress',
          params: { progressToken: token, ...u },
        });
      };
    }
    return ctx;
  }

  // ---------------------------------------------------------------- messages from upstreams

  /**
   * An upstream asks the client something (sampling, elicitation, roots; threat model #19). A request in the other
   * direction, decided like one from the client: only the session whose call caused it is asked, only if the
   * policy lets this upstream ask this principal (default deny) and the client declared the capability. One audit
   * record (`mcp.relay`) per request, with the decision and how it ended. Every refusal is a JSON-RPC error to the
   * upstream at once; a policy refusal answers exactly as a client without the capability would (-32601).
   */
  async relay(upstream: string, request: JsonRpcRequest, origin: CallOrigin | undefined): Promise<JsonObject> {
    const started = performance.now();
    const event: AuditEvent = { type: 'mcp.relay', method: request.method.slice(0, 64), upstream };
    try {
      this.requireAudit();
      const result = await this.relayToClient(upstream, request, origin, event);
      event.outcome = 'ok';
      return result;
    } catch (err) {
      const e = toGatewayError(err);
      event.outcome =
        e.code === 'GW_MCP_REQUEST_CANCELLED' ? 'cancelled' : event.decision === 'deny' ? 'denied' : 'error';
      event.errorCode = e.code;
      if (e.detail !== undefined) event.detail = e.detail;
      throw e;
    } finally {
      event.durationMs = elapsedMs(started);
      this.audit(event);
    }
  }

  private relayToClient(
    upstream: string,
    request: JsonRpcRequest,
    origin: CallOrigin | undefined,
    event: AuditEvent,
  ): Promise<JsonObject> {
    const session = origin ? this.byKey.get(origin.sessionKey) : undefined;
    if (!session || session.closed)
      throw new GatewayError('GW_RELAY_UNROUTABLE', {
        detail: `${upstream}: ${request.method} has no originating session`,
      });
    event.session = session.key;
    event.subject = session.principal.subject;
    Object.assign(event, whoFields(session.principal));
    const name = upstreamRequestOf(request.method, request.params?.mode);
    if (name === undefined)
      throw new GatewayError('GW_RELAY_CAPABILITY_MISSING', {
        detail: `${upstream}: ${request.method.slice(0, 64)} is not a request the gateway relays`,
      });
    event.relay = name;
    // The policy step (docs/architecture.md §10 "Server→client traffic"): the same decide, for the originating
    // principal.
    const d = this.opts.policy.decide({
      principal: session.principal,
      method: request.method,
      target: { kind: 'request', name, upstream },
      now: this.now(),
    });
    recordDecision(event, d);
    if (d.effect !== 'allow') {
      const scopes = d.requiredScopes !== undefined ? `: needs ${d.requiredScopes.join(' ')}` : '';
      throw new GatewayError('GW_RELAY_DENIED', {
        detail: `${upstream}: ${name} denied ${d.reason}${d.ruleId !== undefined ? ` by rule ${d.ruleId}` : ''}${scopes}`,
      });
    }
    if (!clientSupports(session.clientCapabilities, name)) {
      throw new GatewayError('GW_RELAY_CAPABILITY_MISSING', {
        detail: `${upstream}: client did not declare support for ${name}`,
      });
    }
    const id = session.nextOutboundId();
    const outbound: JsonRpcRequest =
      request.params === undefined
        ? { jsonrpc: '2.0', id, method: request.method }
        : { jsonrpc: '2.0', id, method: request.method, params: request.params };
    const requestKey = (origin as Partial<RequestOrigin>).requestKey;
    const related = requestKey === undefined ? undefined : session.inflight.get(requestKey)?.stream;
    const sent =
      (related !== undefined && !related.closed && related.sendRelated(outbound)) ||
      (session.getStream?.send(outbound) ?? false);
    if (!sent)
      throw new GatewayError('GW_RELAY_UNROUTABLE', {
        detail: `${upstream}: no open stream to the client for ${request.method}`,
      });
    return new Promise<JsonObject>((resolve, reject) => {
      const timer = setTimeout(() => {
        session.pendingToClient.delete(idKey(id));
        reject(
          new GatewayError('GW_RELAY_TIMEOUT', { detail: `${upstream}: client did not answer ${request.method}` }),
        );
      }, RELAY_TIMEOUT_MS);
      timer.unref();
      session.pendingToClient.set(idKey(id), { resolve, reject, timer, upstream, upstreamRequestId: request.id });
    });
  }

  upstreamNotification(upstream: string, n: JsonRpcNotification, origin: CallOrigin | undefined): void {
    const p = n.params ?? {};
    switch (n.method) {
      case 'notifications/tools/list_changed':
      case 'notifications/resources/list_changed':
      case 'notifications/prompts/list_changed':
        void this.opts.router.refresh(upstream);
        return;
      case 'notifications/resources/updated': {
        const uri = p.uri;
        if (typeof uri !== 'string' || this.opts.router.catalogue.resolveResource(uri) !== upstream) return;
        for (const s of this.sessions.values())
          if (s.subscriptions.has(uri)) s.getStream?.send({ jsonrpc: '2.0', method: n.method, params: { uri } });
        return;
      }
      case 'notifications/message': {
        const session = origin ? this.byKey.get(origin.sessionKey) : undefined;
        if (!session || !levelAllows(session.logLevel, p.level)) return;
        const out: JsonRpcNotification = {
          jsonrpc: '2.0',
          method: n.method,
          params: { ...p, logger: typeof p.logger === 'string' ? `${upstream}/${p.logger}` : upstream },
        };
        this.sendToSession(session, origin, out);
        return;
      }
      case 'notifications/cancelled': {
        // The upstream withdraws a request it relayed to a client: tell that client, stop waiting.
        for (const s of this.sessions.values()) {
          for (const [k, pending] of s.pendingToClient) {
            if (pending.upstream !== upstream || pending.upstreamRequestId !== p.requestId) continue;
            s.pendingToClient.delete(k);
            clearTimeout(pending.timer);
            pending.reject(new GatewayError('GW_MCP_REQUEST_CANCELLED'));
            const downstreamId: RequestId = k.startsWith('n') ? Number(k.slice(1)) : k.slice(1);
            s.getStream?.send({
              jsonrpc: '2.0',
              method: n.method,
              params: { requestId: downstreamId, ...(typeof p.reason === 'string' ? { reason: p.reason } : {}) },
            });
          }
        }
        return;
      }
      case 'notifications/elicitation/complete': {
        const session = origin ? this.byKey.get(origin.sessionKey) : undefined;
        if (session) this.sendToSession(session, origin, n);
        return;
      }
      default:
        this.opts.logger.debug({ upstream, method: n.method }, 'upstream notification not relayed');
    }
  }

  private sendToSession(session: ClientSession, origin: CallOrigin | undefined, message: JsonRpcNotification): void {
    const requestKey = (origin as Partial<RequestOrigin> | undefined)?.requestKey;
    const related = requestKey === undefined ? undefined : session.inflight.get(requestKey)?.stream;
    if (related && !related.closed && related.sendRelated(message)) return;
    session.getStream?.send(message);
  }

  /**
   * Each session hears a list change once, on its own GET stream (transports §Multiple Connections). Also
   * called after a policy reload or a quarantine change: what a session may see changed, not the upstreams.
   */
  announceChanges(kinds: ReadonlySet<ChangeKind>): void {
    for (const s of this.sessions.values()) {
      if (!s.initialized || !s.getStream || s.getStream.closed) continue;
      for (const kind of kinds) s.getStream.send({ jsonrpc: '2.0', method: `notifications/${kind}/list_changed` });
    }
  }

  // ---------------------------------------------------------------- shutdown

  /** Stop opening sessions; wait for calls in flight up to the deadline, then close every session. */
  async drain(deadlineMs: number): Promise<void> {
    this.draining = true;
    const until = this.now() + deadlineMs;
    while (this.inFlightCount > 0 && this.now() < until) await new Promise((r) => setTimeout(r, 25));
    for (const s of [...this.sessions.values()]) await this.closeSession(s, 'shutdown');
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** `audit.onFailure: closed` while records cannot be written: nothing happens that is not recorded. */
  private requireAudit(refused?: AuditEvent): void {
    if (this.opts.audit.accepting?.() !== false) return;
    const e = new GatewayError('GW_AUDIT_UNAVAILABLE', {
      detail: 'the audit sink cannot write (audit.onFailure closed)',
    });
    // Queued with the rest: written if the sink recovers before the backlog is full, counted as lost otherwise.
    if (refused !== undefined) this.audit({ ...refused, outcome: 'error', errorCode: e.code, detail: e.detail ?? '' });
    throw e;
  }

  private audit(event: AuditEvent): void {
    this.opts.audit.record(event);
  }
}

/** The sessions an admission ends to make room; a refusal is the 503 `GW_MCP_SESSION_LIMIT`, the cap in its detail. */
function admitted(a: Admission<ClientSession>): readonly ClientSession[] {
  if (!a.ok) throw new GatewayError('GW_MCP_SESSION_LIMIT', { detail: `${a.cap}: ${a.detail}` });
  return a.evict;
}

/** Who called, for audit records: the client and the certificate thumbprint where there is one (never the token). */
function whoFields(p: Principal): Pick<AuditEvent, 'clientId' | 'certThumbprint'> {
  return {
    ...(p.clientId !== undefined ? { clientId: p.clientId } : {}),
    ...(p.certThumbprint !== undefined ? { certThumbprint: p.certThumbprint } : {}),
  };
}

/** Milliseconds since a `performance.now()` reading, to 0.01 ms (finer is noise; whole ms would hide a fast deny). */
function elapsedMs(started: number): number {
  return Math.round((performance.now() - started) * 100) / 100;
}

/** The client's JSON-RPC id, as text and bounded (ids are the client's to choose). */
function auditRequestId(id: RequestId): string {
  return String(id).slice(0, 128);
}

/** A target that does not exist is a deny of its own kind in the record; the client's answer stays "unknown". */
function unknownTarget(
  event: AuditEvent,
  reason: 'unknown_tool' | 'unknown_resource' | 'unknown_prompt',
  err: GatewayError,
): GatewayError {
  event.decision = 'deny';
  event.reason = reason;
  return err;
}

/** The decision on the audit record: effect, rule, policy revision, and a deny's reason (docs/architecture.md §4). */
function recordDecision(event: AuditEvent, d: Decision): void {
  event.decision = d.effect;
  event.rule = d.ruleId ?? '';
  event.policyRevision = d.policyRevision;
  if (d.effect !== 'allow') event.reason = d.reason;
}

/** A policy deny as the client sees it (see `FrontDoor.decide`); the detail is for audit only. */
function denial(d: Exclude<Decision, { effect: 'allow' }>, hidden: (detail: string) => GatewayError): GatewayError {
  const rule = d.ruleId !== undefined ? ` by rule ${d.ruleId}` : '';
  switch (d.reason) {
    case 'insufficient_scope': {
      const requiredScopes = [...(d.requiredScopes ?? [])];
      return new GatewayError('GW_AUTH_INSUFFICIENT_SCOPE', {
        detail: `denied insufficient_scope${rule}: needs ${requiredScopes.join(' ')}`,
        data: { requiredScopes },
      });
    }
    case 'invalid_arguments': {
      const v = d.violation;
      const where = v !== undefined ? `: rule ${v.ruleId} field ${v.field || '/'} constraint ${v.constraint}` : rule;
      return new GatewayError('GW_MCP_INVALID_PARAMS', { detail: `denied invalid_arguments${where}` });
    }
    default:
      return hidden(`denied ${d.reason}${rule}`);
  }
}

/** An untargeted method the policy refuses (it allows every listing method today): as if it did not exist. */
function hiddenMethod(method: string): (detail: string) => GatewayError {
  return (detail) => new GatewayError('GW_MCP_METHOD_NOT_FOUND', { detail: `${method.slice(0, 64)}: ${detail}` });
}

function templateText(definition: JsonObject): string {
  return typeof definition.uriTemplate === 'string' ? definition.uriTemplate : '';
}

function rejectCursor(params: JsonObject): void {
  // One page holds the whole merged list, so any cursor is one we never issued (utilities/pagination: -32602).
  if (params.cursor !== undefined)
    throw new GatewayError('GW_MCP_INVALID_CURSOR', { detail: 'cursor not issued by the gateway' });
}

function levelAllows(min: LogLevel | undefined, level: unknown): boolean {
  if (min === undefined || typeof level !== 'string') return false; // nothing is relayed until the client asks
  const at = LOG_LEVELS.indexOf(level as LogLevel);
  return at >= 0 && at >= LOG_LEVELS.indexOf(min);
}
