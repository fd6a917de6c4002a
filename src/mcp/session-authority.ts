/**
 * Issues session ids and decides whether one may be used (docs/architecture.md §7): the id is a sealed token
 * (session-token.ts) any replica can open; the store says whether it was deleted or left idle. Every refusal —
 * garbage, another key, tampering, expiry, another principal, revocation, idleness — is the same 404 a session
 * that never existed gets (MCP transports §Session Management); the reason goes to the detail, for audit only.
 */
import { GatewayError } from '../errors/gateway-error.js';
import type { JsonObject } from '../lib/json-rpc.js';
import { principalKey, type Principal } from '../identity/principal.js';
import type { SessionStore } from '../stores/sessions/session-store.js';
import { ClientSession } from './session.js';
import { newSessionJti, principalBinding, sameBinding, type SessionTokenCodec } from './session-token.js';

export interface SessionAuthorityOptions {
  codec: SessionTokenCodec;
  store: SessionStore;
  /** Absolute lifetime of a session (`sessions.maxLifetimeMs`). */
  maxLifetimeMs: number;
}

/** The capabilities a session keeps: what the gateway acts on (relaying to the client); the rest is not needed. */
const KEPT_CAPABILITIES = ['sampling', 'elicitation', 'roots'] as const;
/** clientInfo fields kept (Implementation, MCP schema): enough to name the client; no icons in every header. */
const KEPT_CLIENT_INFO = ['name', 'title', 'version'] as const;
/** A session's capabilities and clientInfo together, serialised. Bounds the id's length. */
const MAX_CLIENT_DECLARATION_BYTES = 2048;

export class SessionAuthority {
  constructor(private readonly opts: SessionAuthorityOptions) {}

  /** A new session for `initialize`; its id is the sealed token. */
  async issue(
    principal: Principal,
    protocolVersion: string,
    capabilities: JsonObject,
    clientInfo: JsonObject,
    now: number,
  ): Promise<ClientSession> {
    const caps = pick(capabilities, KEPT_CAPABILITIES);
    const info = pick(clientInfo, KEPT_CLIENT_INFO);
    if (Buffer.byteLength(JSON.stringify([caps, info])) > MAX_CLIENT_DECLARATION_BYTES) {
      throw new GatewayError('GW_MCP_INVALID_PARAMS', {
        detail: `initialize: capabilities and clientInfo over ${MAX_CLIENT_DECLARATION_BYTES} bytes`,
      });
    }
    const jti = newSessionJti();
    // Whole seconds, as the token carries it (RFC 7519 NumericDate): every replica then agrees on the end.
    const expiresAt = Math.ceil((now + this.opts.maxLifetimeMs) / 1000) * 1000;
    const id = await this.opts.codec.seal({
      jti,
      binding: principalBinding(principal),
      protocolVersion,
      capabilities: caps,
      clientInfo: info,
      issuedAt: now,
      expiresAt,
    });
    await this.guard(() => this.opts.store.opened(jti, expiresAt, now));
    return new ClientSession(principal, principalKey(principal), protocolVersion, caps, info, now, {
      id,
      key: jti,
      expiresAt,
    });
  }

  /**
   * A session this replica does not hold: rebuilt from its id when the id is ours, current, bound to this
   * principal, not revoked and not idle. The client went through `initialize` on whichever replica issued it.
   */
  async restore(id: string, principal: Principal, now: number): Promise<ClientSession> {
    const opened = await this.opts.codec.open(id, now);
    if (!opened.ok) throw notFound(`session id refused: ${opened.reason}`);
    const c = opened.claims;
    // A lowered sessions.maxLifetimeMs applies to ids already issued too (iat and exp are whole seconds, rounded apart).
    if (c.expiresAt - c.issuedAt > Math.ceil(this.opts.maxLifetimeMs / 1000) * 1000 + 1000)
      throw notFound('session id refused: lifetime over sessions.maxLifetimeMs');
    if (!sameBinding(c.binding, principal)) throw notFound('session belongs to another principal');
    await this.check(c.jti, c.expiresAt, now);
    const session = new ClientSession(
      principal,
      principalKey(principal),
      c.protocolVersion,
      c.capabilities,
      c.clientInfo,
      c.issuedAt,
      { id, key: c.jti, expiresAt: c.expiresAt },
    );
    session.lastSeen = now;
    session.initialized = true;
    return session;
  }

  /** A request for a session this replica holds: still current, not revoked elsewhere, not idle. */
  verify(session: ClientSession, now: number): Promise<void> {
    // Every request passes here: no extra async layer (each is a promise and a microtask turn).
    return this.check(session.key, session.expiresAt, now);
  }

  /** The session made its first request after `notifications/initialized`: the idle clock replaces the unused one. */
  async establish(session: ClientSession, now: number): Promise<void> {
    await this.guard(() => this.opts.store.established(session.key, session.expiresAt, now));
  }

  /** A session cap ended the session: refused on every replica sharing the store, like an idle one (404). */
  async end(session: ClientSession, now: number): Promise<void> {
    await this.guard(() => this.opts.store.end(session.key, session.expiresAt, now));
  }

  /** DELETE: refused on every replica from now on. */
  async revoke(session: ClientSession, now: number): Promise<void> {
    await this.guard(() => this.opts.store.revoke(session.key, session.expiresAt, now));
  }

  private async check(jti: string, expiresAt: number, now: number): Promise<void> {
    if (now >= expiresAt) throw notFound('session expired (sessions.maxLifetimeMs)');
    // `guard`, inlined on the per-request path (no closure, one async layer fewer).
    let state: Awaited<ReturnType<SessionStore['touch']>>;
    try {
      state = await this.opts.store.touch(jti, expiresAt, now);
    } catch (err) {
      throw storeUnavailable(err);
    }
    if (state === 'revoked') throw notFound('session deleted');
    if (state === 'idle') throw notFound('session idle too long (server.sessionIdleTimeoutMs)');
  }

  /** The store could not answer: fail closed with a retryable 503, never as if the session did not exist. */
  private async guard<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      throw storeUnavailable(err);
    }
  }
}

function storeUnavailable(err: unknown): GatewayError {
  return new GatewayError('GW_MCP_SESSION_STORE_UNAVAILABLE', {
    detail: `session store: ${err instanceof Error ? err.message : String(err)}`,
    cause: err,
  });
}

function notFound(detail: string): GatewayError {
  return new GatewayError('GW_MCP_SESSION_NOT_FOUND', { detail });
}

function pick(from: JsonObject, keys: readonly string[]): JsonObject {
  const out: JsonObject = {};
  for (const k of keys) if (from[k] !== undefined) out[k] = from[k];
  return out;
}
