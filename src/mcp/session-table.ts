/**
 * The client sessions this replica holds (docs/architecture.md §7; MCP lifecycle, transports §Session Management):
 * opened by `initialize` under the session caps, found again (or restored from an id another replica issued) for
 * each request, let go when idle, evicted at a cap, deleted, closed at shutdown. Every change leaves an
 * `mcp.session` audit record.
 */
import type { Logger } from 'pino';
import type { AuditEvent } from '../audit/audit-sink.js';
import { SESSIONS_DEFAULTS } from '../config/sessions-config.js';
import type { GatehouseConfig } from '../config/types.js';
import { GatewayError, toGatewayError } from '../errors/gateway-error.js';
import { principalKey, type Principal } from '../identity/principal.js';
import {
  isJsonObject,
  rpcResult,
  type JsonObject,
  type JsonRpcRequest,
  type JsonRpcResponse,
} from '../lib/json-rpc.js';
import type { Router } from '../router/router.js';
import { whoFields } from './audit-fields.js';
import { INSTRUCTIONS } from './methods/discover.js';
import { LATEST_PROTOCOL_VERSION, isSupportedVersion } from './protocol-versions.js';
import type { ClientSession } from './session.js';
import { SessionHolders, type Admission } from './session-admission.js';
import type { SessionAuthority } from './session-authority.js';
import type { SessionStream } from './streams.js';

export interface SessionTableOptions {
  config: GatehouseConfig;
  router: Router;
  logger: Logger;
  version: string;
  /** Issues session ids any replica can open and checks revocation/idleness (docs/architecture.md §7). */
  sessions: SessionAuthority;
  audit: (event: AuditEvent) => void;
  /** Throws (and records `refused`) while `audit.onFailure: closed` cannot write. */
  requireAudit: (refused?: AuditEvent) => void;
  now: () => number;
  /** A session closed (for whatever reason): what it held elsewhere is let go. */
  onClosed?: (session: ClientSession) => void;
}

/**
 * How long the edge's pre-authentication answer "could anyone be admitted at the full table" is reused: the scan
 * is over every held session when all are busy, and a flood of `initialize` at the cap must not repeat it each time.
 */
const ROOM_ANSWER_MS = 250;

export class SessionTable {
  private readonly sessions = new Map<string, ClientSession>();
  private readonly byKeyMap = new Map<string, ClientSession>();
  /** The same sessions by subject and client, for the session caps (session-admission.ts). */
  private readonly holders: SessionHolders<ClientSession>;
  /** `sessions.unusedTimeoutMs`: a held session not established by then is let go (the store ends it). */
  private readonly unusedTimeoutMs: number;
  private readonly now: () => number;
  private sweeper: NodeJS.Timeout | undefined;
  private draining = false;
  private room = { until: 0, answer: false };

  constructor(private readonly opts: SessionTableOptions) {
    this.now = opts.now;
    const { server } = opts.config;
    const sessions = opts.config.sessions ?? SESSIONS_DEFAULTS.sessions;
    this.holders = new SessionHolders({
      total: server.maxSessions,
      perSubject: sessions.maxPerSubject,
      perClient: sessions.maxPerClient,
    });
    // Never above the idle timeout (the loader checks it; a config built in code may not have).
    this.unusedTimeoutMs = Math.min(sessions.unusedTimeoutMs, server.sessionIdleTimeoutMs);
    // Sweeps as often as the shorter clock needs: a quarter of it, 1 s to 60 s.
    this.sweeper = setInterval(
      () => this.sweepIdle(),
      Math.min(60_000, Math.max(1_000, Math.floor(this.unusedTimeoutMs / 4))),
    );
    this.sweeper.unref();
  }

  get count(): number {
    return this.sessions.size;
  }

  /** Calls in flight in every held session. */
  get inFlightCount(): number {
    let n = 0;
    for (const s of this.sessions.values()) n += s.inflight.size;
    return n;
  }

  /** The held sessions (a snapshot is taken by callers that close some while iterating). */
  values(): IterableIterator<ClientSession> {
    return this.sessions.values();
  }

  /** A held session by its internal key (what upstream calls carry as their origin). */
  byKey(key: string): ClientSession | undefined {
    return this.byKeyMap.get(key);
  }

  /** At a full table, before authentication: whether any caller could still be admitted (session-admission.ts). */
  mayMakeRoom(): boolean {
    const now = this.now();
    if (now >= this.room.until) this.room = { until: now + ROOM_ANSWER_MS, answer: this.holders.mayMakeRoom() };
    return this.room.answer;
  }

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
    this.opts.requireAudit(refused);
    try {
      return await this.openSession(message, principal);
    } catch (err) {
      // A session refused (cap reached, shutting down, bad params, store down) is an outcome too: one record.
      const e = toGatewayError(err);
      this.opts.audit({
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
    this.opts.audit({
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
      instructions: INSTRUCTIONS,
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
      this.opts.audit({
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
    this.opts.audit({
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
    this.byKeyMap.set(session.key, session);
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
    this.byKeyMap.delete(session.key);
    this.holders.delete(session);
    for (const f of session.inflight.values()) f.cancel.abort();
    for (const p of session.pendingToClient.values()) {
      clearTimeout(p.timer);
      p.reject(new GatewayError('GW_RELAY_UNROUTABLE', { detail: 'client session closed' }));
    }
    session.pendingToClient.clear();
    session.getStream?.close();
    this.opts.onClosed?.(session);
    this.opts.audit({
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

  /** Stop opening and restoring sessions (shutdown). */
  startDraining(): void {
    this.draining = true;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Close every held session and stop the sweeper (the end of a drain). */
  async closeAll(reason: string): Promise<void> {
    for (const s of [...this.sessions.values()]) await this.closeSession(s, reason);
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  /** The first request after `notifications/initialized`: the session is in use, the store's idle clock takes over. */
  async establish(session: ClientSession): Promise<void> {
    await this.opts.sessions.establish(session, this.now());
    session.established = true;
  }
}

/** The sessions an admission ends to make room; a refusal is the 503 `GW_MCP_SESSION_LIMIT`, the cap in its detail. */
function admitted(a: Admission<ClientSession>): readonly ClientSession[] {
  if (!a.ok) throw new GatewayError('GW_MCP_SESSION_LIMIT', { detail: `${a.cap}: ${a.detail}` });
  return a.evict;
}
