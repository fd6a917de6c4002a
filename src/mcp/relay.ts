/**
 * Traffic that starts at an upstream (docs/architecture.md §10 "Server→client traffic"; threat model #19): its requests
 * to the client (sampling, elicitation, roots) decided by policy and sent only to the session whose call caused them,
 * the client's answers back, and its notifications (list changes, resource updates, log messages, cancellations)
 * relayed to the sessions they concern.
 */
import type { Logger } from 'pino';
import type { AuditEvent } from '../audit/audit-sink.js';
import { GatewayError, toGatewayError } from '../errors/gateway-error.js';
import {
  isJsonObject,
  type JsonObject,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
  type RequestId,
} from '../lib/json-rpc.js';
import type { PolicyEngine } from '../policy/decision.js';
import { upstreamRequestOf, type UpstreamRequest } from '../policy/upstream-requests.js';
import type { Principal } from '../identity/principal.js';
import type { CallOrigin, ChangeKind, Router } from '../router/router.js';
import { elapsedMs, whoFields } from './audit-fields.js';
import { clientSupports } from './relay-capabilities.js';
import type { RequestOrigin } from './request-context.js';
import { idKey, LOG_LEVELS, type ClientSession, type LogLevel } from './session.js';
import type { SessionTable } from './session-table.js';
import { recordDecision } from './steps/decide.js';

export interface RelayOptions {
  sessions: SessionTable;
  router: Router;
  policy: PolicyEngine;
  logger: Logger;
  audit: (event: AuditEvent) => void;
  requireAudit: () => void;
  now: () => number;
}

const RELAY_TIMEOUT_MS = 120_000;

export class Relay {
  constructor(private readonly opts: RelayOptions) {}

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
      this.opts.requireAudit();
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
      this.opts.audit(event);
    }
  }

  private relayToClient(
    upstream: string,
    request: JsonRpcRequest,
    origin: CallOrigin | undefined,
    event: AuditEvent,
  ): Promise<JsonObject> {
    // A 2026-07-28 request has no stream for a request to its client: its call is parked and the question goes back
    // to the client as an input request (parked-calls.ts), decided exactly like one sent on a session.
    const alone = (origin as Partial<RequestOrigin> | undefined)?.alone;
    if (alone?.ask !== undefined) {
      this.permit(upstream, request.method, request.params, alone.principal, alone.clientCapabilities, event);
      return alone.ask(request);
    }
    const session = origin ? this.opts.sessions.byKey(origin.sessionKey) : undefined;
    if (!session || session.closed)
      throw new GatewayError('GW_RELAY_UNROUTABLE', {
        detail: `${upstream}: ${request.method} has no originating session`,
      });
    event.session = session.key;
    this.permit(upstream, request.method, request.params, session.principal, session.clientCapabilities, event);
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

  /**
   * An upstream's 2026-07-28 input request (an `InputRequiredResult`'s `inputRequests` entry) on its way to the
   * client: decided and audited like a relayed request (one `mcp.relay` record each), then put to the client in the
   * result. Throws the refusal.
   */
  permitInput(
    upstream: string,
    request: JsonObject,
    principal: Principal,
    clientCapabilities: JsonObject,
  ): UpstreamRequest {
    const method = typeof request.method === 'string' ? request.method : '';
    const params = isJsonObject(request.params) ? request.params : undefined;
    const event: AuditEvent = { type: 'mcp.relay', method: method.slice(0, 64), upstream };
    try {
      this.opts.requireAudit();
      const name = this.permit(upstream, method, params, principal, clientCapabilities, event);
      event.outcome = 'ok';
      return name;
    } catch (err) {
      const e = toGatewayError(err);
      event.outcome = event.decision === 'deny' ? 'denied' : 'error';
      event.errorCode = e.code;
      if (e.detail !== undefined) event.detail = e.detail;
      throw e;
    } finally {
      this.opts.audit(event);
    }
  }

  /**
   * The policy step for an upstream's request to a client (docs/architecture.md §10 "Server→client traffic"): only a
   * request the gateway relays, only if the policy lets this upstream ask this principal (default deny), and only if
   * the client declared the capability. Fills the audit record; throws the refusal.
   */
  private permit(
    upstream: string,
    method: string,
    params: JsonObject | undefined,
    principal: Principal,
    clientCapabilities: JsonObject,
    event: AuditEvent,
  ): UpstreamRequest {
    event.subject = principal.subject;
    Object.assign(event, whoFields(principal));
    const name = upstreamRequestOf(method, params?.mode);
    if (name === undefined)
      throw new GatewayError('GW_RELAY_CAPABILITY_MISSING', {
        detail: `${upstream}: ${method.slice(0, 64)} is not a request the gateway relays`,
      });
    event.relay = name;
    const d = this.opts.policy.decide({
      principal,
      method,
      target: { kind: 'request', name, upstream },
      now: this.opts.now(),
    });
    recordDecision(event, d);
    if (d.effect !== 'allow') {
      const scopes = d.requiredScopes !== undefined ? `: needs ${d.requiredScopes.join(' ')}` : '';
      throw new GatewayError('GW_RELAY_DENIED', {
        detail: `${upstream}: ${name} denied ${d.reason}${d.ruleId !== undefined ? ` by rule ${d.ruleId}` : ''}${scopes}`,
      });
    }
    if (!clientSupports(clientCapabilities, name)) {
      throw new GatewayError('GW_RELAY_CAPABILITY_MISSING', {
        detail: `${upstream}: client did not declare support for ${name}`,
      });
    }
    return name;
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
        for (const s of this.opts.sessions.values())
          if (s.subscriptions.has(uri)) s.getStream?.send({ jsonrpc: '2.0', method: n.method, params: { uri } });
        return;
      }
      case 'notifications/message': {
        const out = (): JsonRpcNotification => ({
          jsonrpc: '2.0',
          method: n.method,
          params: { ...p, logger: typeof p.logger === 'string' ? `${upstream}/${p.logger}` : upstream },
        });
        // A request without a session (2026-07-28): only on its own response stream, only at or above the level
        // its `_meta` asked for, and never when it asked for none (server/utilities/logging).
        const alone = (origin as Partial<RequestOrigin> | undefined)?.alone;
        if (alone !== undefined) {
          if (levelAllows(alone.logLevel, p.level) && !alone.stream.closed) alone.stream.sendRelated(out());
          return;
        }
        const session = origin ? this.opts.sessions.byKey(origin.sessionKey) : undefined;
        if (!session || !levelAllows(session.logLevel, p.level)) return;
        this.sendToSession(session, origin, out());
        return;
      }
      case 'notifications/cancelled': {
        // The upstream withdraws a request it relayed to a client: tell that client, stop waiting.
        for (const s of this.opts.sessions.values()) {
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
        const session = origin ? this.opts.sessions.byKey(origin.sessionKey) : undefined;
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
    for (const s of this.opts.sessions.values()) {
      if (!s.initialized || !s.getStream || s.getStream.closed) continue;
      for (const kind of kinds) s.getStream.send({ jsonrpc: '2.0', method: `notifications/${kind}/list_changed` });
    }
  }
}

function levelAllows(min: LogLevel | undefined, level: unknown): boolean {
  if (min === undefined || typeof level !== 'string') return false; // nothing is relayed until the client asks
  const at = LOG_LEVELS.indexOf(level as LogLevel);
  return at >= 0 && at >= LOG_LEVELS.indexOf(min);
}
