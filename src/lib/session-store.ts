/**
 * The port of the session state that must be global across replicas (DESIGN.md §7): revocations (DELETE on one replica is
 * refused on all) and the sliding idle clock. Everything else a session needs travels in its id (session-token.ts).
 * Two implementations: memory (one replica, the default) and Redis (many replicas).
 */

/** What a request may do with a session: go on, or 404 because it was deleted or left idle too long. */
export type SessionCheck = 'ok' | 'revoked' | 'idle';

export interface SessionStore {
  /** A session was just created: its idle clock starts now. */
  opened(jti: string, expiresAt: number, now: number): Promise<void>;
  /**
   * A request (or an open stream's keep-alive) uses the session: refuse it if revoked or idle longer than the
   * idle timeout; otherwise restart its idle clock. Rejects when the store cannot answer (the caller fails closed).
   */
  touch(jti: string, expiresAt: number, now: number): Promise<SessionCheck>;
  /** DELETE: refused everywhere from now until the token's own expiry (after that the token is refused anyway). */
  revoke(jti: string, expiresAt: number, now: number): Promise<void>;
}
