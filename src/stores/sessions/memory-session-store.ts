/**
 * The one-replica `SessionStore`: revocations and idle clocks in this process. Shared by two apps only when the
 * same object is handed to both (tests). A session this replica has never seen starts its idle clock on first
 * use: without a shared store, idleness can only be measured per replica
 * (docs/deployment.md "Sessions across replicas").
 *
 * A session opened here is held to `unusedTimeoutMs` until `established` (stores/sessions/session-store.ts).
 *
 * Bounded (`sessions.memoryMaxEntries`): entries live until their token's `exp`, so without a cap a steady stream
 * of new sessions (each one allowed by the session-creation rate limits) would grow it for a whole lifetime.
 * At the cap, expired entries go first; then the least recently used idle clock is forgotten (that session, if
 * used again, starts a new clock — idleness is housekeeping, every request still authenticates); a revocation is
 * never forgotten before its `exp` (that would bring a deleted session back): when revocations alone fill the
 * store, new entries are refused and the caller answers 503 (fail closed).
 */
import type { SessionCheck, SessionStore } from './session-store.js';

interface Clock {
  /** Last use; for a session not yet established, its opening (a touch does not move it then). */
  lastSeen: number;
  expiresAt: number;
  idle: boolean;
  /** Opened here and not yet established: held to `unusedTimeoutMs` instead of the idle timeout. */
  unused: boolean;
}

/** How often, at most, expired entries are dropped (on a write; no timer to clean up). */
const PRUNE_EVERY_MS = 60_000;
export const MEMORY_SESSION_STORE_DEFAULT_MAX_ENTRIES = 100_000;

export class MemorySessionStoreFull extends Error {
  constructor(max: number) {
    super(`memory session store full: ${max} unexpired revocations (sessions.memoryMaxEntries)`);
    this.name = 'MemorySessionStoreFull';
  }
}

export class MemorySessionStore implements SessionStore {
  /** Idle clocks, least recently used first (a use moves an entry to the end). */
  private readonly clocks = new Map<string, Clock>();
  /** Revoked jti → the token's `exp`. */
  private readonly revoked = new Map<string, number>();
  private lastPrune = 0;

  /** `unusedTimeoutMs` (`sessions.unusedTimeoutMs`): absent, a new session gets the idle timeout from the start. */
  constructor(
    private readonly idleTimeoutMs: number,
    private readonly maxEntries = MEMORY_SESSION_STORE_DEFAULT_MAX_ENTRIES,
    private readonly unusedTimeoutMs = idleTimeoutMs,
  ) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1)
      throw new TypeError('maxEntries must be a positive integer');
    if (!(unusedTimeoutMs > 0 && unusedTimeoutMs <= idleTimeoutMs))
      throw new TypeError('unusedTimeoutMs must be positive and at most idleTimeoutMs');
  }

  /** Entries held (clocks and revocations), for tests and diagnostics. */
  get size(): number {
    return this.clocks.size + this.revoked.size;
  }

  opened(jti: string, expiresAt: number, now: number): Promise<void> {
    return settle(() => this.openedNow(jti, expiresAt, now));
  }

  established(jti: string, expiresAt: number, now: number): Promise<void> {
    return settle(() => this.establishedNow(jti, expiresAt, now));
  }

  touch(jti: string, expiresAt: number, now: number): Promise<SessionCheck> {
    return settle(() => this.touchNow(jti, expiresAt, now));
  }

  revoke(jti: string, expiresAt: number, now: number): Promise<void> {
    return settle(() => this.revokeNow(jti, expiresAt, now));
  }

  end(jti: string, expiresAt: number, now: number): Promise<void> {
    return settle(() => this.endNow(jti, expiresAt, now));
  }

  private openedNow(jti: string, expiresAt: number, now: number): void {
    this.prune(now);
    this.clocks.delete(jti);
    this.makeRoom(now);
    this.clocks.set(jti, { lastSeen: now, expiresAt, idle: false, unused: true });
  }

  private establishedNow(jti: string, expiresAt: number, now: number): void {
    if (this.revoked.has(jti)) return;
    const e = this.clocks.get(jti);
    // A clock forgotten (or never seen here) starts as an established one, as `touch` would start it.
    if (e === undefined) {
      this.makeRoom(now);
      this.clocks.set(jti, { lastSeen: now, expiresAt, idle: false, unused: false });
    } else if (!e.idle && e.unused) {
      e.unused = false;
      e.lastSeen = now;
    }
  }

  private touchNow(jti: string, expiresAt: number, now: number): SessionCheck {
    this.prune(now);
    if (this.revoked.has(jti)) return 'revoked';
    const e = this.clocks.get(jti);
    if (e === undefined) {
      this.makeRoom(now);
      this.clocks.set(jti, { lastSeen: now, expiresAt, idle: false, unused: false });
      return 'ok';
    }
    if (e.idle) return 'idle';
    if (now - e.lastSeen > (e.unused ? this.unusedTimeoutMs : this.idleTimeoutMs)) {
      // Idle once is idle for good: the session does not come back if a request arrives later still.
      e.idle = true;
      return 'idle';
    }
    // Not established yet: its clock runs from the opening, whatever the requests in between.
    if (!e.unused) e.lastSeen = now;
    this.clocks.delete(jti);
    this.clocks.set(jti, e);
    return 'ok';
  }

  /** An idle clock like any other: forgotten first at the cap (its session, if used again, is under the caps again). */
  private endNow(jti: string, expiresAt: number, now: number): void {
    this.prune(now);
    if (this.revoked.has(jti)) return;
    const e = this.clocks.get(jti);
    if (e !== undefined) {
      e.idle = true;
      return;
    }
    this.makeRoom(now);
    this.clocks.set(jti, { lastSeen: now, expiresAt, idle: true, unused: false });
  }

  private revokeNow(jti: string, expiresAt: number, now: number): void {
    this.prune(now);
    if (this.revoked.has(jti)) return;
    // The revocation takes its clock's place; a session without a clock here needs a slot of its own.
    if (!this.clocks.delete(jti)) this.makeRoom(now);
    this.revoked.set(jti, expiresAt);
  }

  /** One free slot, or `MemorySessionStoreFull` (rejects the caller's promise: the authority answers 503). */
  private makeRoom(now: number): void {
    if (this.size < this.maxEntries) return;
    this.prune(now, true);
    if (this.size < this.maxEntries) return;
    const oldest = this.clocks.keys().next();
    if (oldest.done === true) throw new MemorySessionStoreFull(this.maxEntries);
    this.clocks.delete(oldest.value);
  }

  /** Entries outlive nothing: past the token's expiry the token itself is refused. */
  private prune(now: number, force = false): void {
    if (now - this.lastPrune < (force ? 1_000 : PRUNE_EVERY_MS)) return;
    this.lastPrune = now;
    for (const [jti, e] of this.clocks) if (e.expiresAt <= now) this.clocks.delete(jti);
    for (const [jti, exp] of this.revoked) if (exp <= now) this.revoked.delete(jti);
  }
}

/** The port's contract is a promise that rejects: a refusal (store full) must not throw synchronously. */
function settle<T>(op: () => T): Promise<T> {
  try {
    return Promise.resolve(op());
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}
