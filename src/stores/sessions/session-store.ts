/**
 * The port of the session state that must be global across replicas (docs/architecture.md §7): revocations (DELETE on
 * one replica is refused on all) and the sliding idle clock. Everything else a session needs travels in its id
 * (session-token.ts). Two implementations: memory (one replica, the default) and Redis (many replicas).
 *
 * A new session's clock is the short one (`sessions.unusedTimeoutMs`, threat model #9): counted from `opened`,
 * not pushed back by `touch`, until the session is `established` (initialized and a first request); from then
 * on it is the sliding idle clock. A session that never gets that far ends soon, on every replica.
 */

/** What a request may do with a session: go on, or 404 because it was deleted or left idle too long. */
export type SessionCheck = 'ok' | 'revoked' | 'idle';

export interface SessionStore {
  /** A session was just created: its short, not-yet-used clock starts now. */
  opened(jti: string, expiresAt: number, now: number): Promise<void>;
  /**
   * The session completed `initialize` and made its first request: from now on its clock is the idle timeout.
   * Idempotent (every replica holding a copy may say it once); nothing happens to a session already ended.
   */
  established(jti: string, expiresAt: number, now: number): Promise<void>;
  /**
   * A request (or an open stream's keep-alive) uses the session: refuse it if revoked, idle longer than the
   * idle timeout, or not established within the unused timeout; otherwise restart its idle clock (established
   * sessions only). Rejects when the store cannot answer (the caller fails closed).
   */
  touch(jti: string, expiresAt: number, now: number): Promise<SessionCheck>;
  /**
   * The gateway ended the session (a session cap chose it): refused from now on like one left idle — it keeps no
   * record of its own until the token's expiry, as `revoke` does, so ending sessions in a loop cannot fill the store.
   */
  end(jti: string, expiresAt: number, now: number): Promise<void>;
  /** DELETE: refused everywhere from now until the token's own expiry (after that the token is refused anyway). */
  revoke(jti: string, expiresAt: number, now: number): Promise<void>;
}
