/**
 * The one-replica `SessionStore`: revocations and idle clocks in this process. Shared by two apps only when the
 * same object is handed to both (tests). A session this replica has never seen starts its idle clock on first
 * use: without a shared store, idleness can only be measured per replica (README "Sessions across replicas").
 */
import type { SessionCheck, SessionStore } from '../lib/session-store.js';

interface Entry {
  lastSeen: number;
  expiresAt: number;
  state: 'live' | 'revoked' | 'idle';
}

/** How often, at most, expired entries are dropped (on a write; no timer to clean up). */
const PRUNE_EVERY_MS = 60_000;

export class MemorySessionStore implements SessionStore {
  private readonly entries = new Map<string, Entry>();
  private lastPrune = 0;

  constructor(private readonly idleTimeoutMs: number) {}

  opened(jti: string, expiresAt: number, now: number): Promise<void> {
    this.prune(now);
    this.entries.set(jti, { lastSeen: now, expiresAt, state: 'live' });
    return Promise.resolve();
  }

  touch(jti: string, expiresAt: number, now: number): Promise<SessionCheck> {
    this.prune(now);
    const e = this.entries.get(jti);
    if (e === undefined) {
      this.entries.set(jti, { lastSeen: now, expiresAt, state: 'live' });
      return Promise.resolve('ok');
    }
    if (e.state !== 'live') return Promise.resolve(e.state);
    if (now - e.lastSeen > this.idleTimeoutMs) {
      // Idle once is idle for good: the session does not come back if a request arrives later still.
      e.state = 'idle';
      return Promise.resolve('idle');
    }
    e.lastSeen = now;
    return Promise.resolve('ok');
  }

  revoke(jti: string, expiresAt: number, now: number): Promise<void> {
    this.prune(now);
    this.entries.set(jti, { lastSeen: now, expiresAt, state: 'revoked' });
    return Promise.resolve();
  }

  /** Entries outlive nothing: past the token's expiry the token itself is refused. */
  private prune(now: number): void {
    if (now - this.lastPrune < PRUNE_EVERY_MS) return;
    this.lastPrune = now;
    for (const [jti, e] of this.entries) if (e.expiresAt <= now) this.entries.delete(jti);
  }
}
