/**
 * The many-replica `SessionStore` on Redis (ioredis). Per session two keys sharing a hash tag (`{jti}`, so the
 * script runs on a Redis Cluster too): `…:revoked`, kept until the token's expiry, and `…:seen`, whose expiry
 * is the idle timeout and is pushed back on every use — the sliding idle clock shared by every replica. A session
 * not yet established has `seen` = `new` with the unused timeout as its expiry, which a touch does not push back.
 * A missing `seen` is an ended session (idle, never used, or deleted).
 * The client belongs to the composition root (src/stores/redis/redis-client.ts), which closes it.
 */
import type { Redis } from 'ioredis';
import type { SessionCheck, SessionStore } from './session-store.js';

export interface RedisSessionStoreOptions {
  /** Prepended to every key, e.g. `gatehouse:session:`. */
  keyPrefix: string;
  idleTimeoutMs: number;
  /** `sessions.unusedTimeoutMs`; absent: the idle timeout. */
  unusedTimeoutMs?: number;
}

/**
 * KEYS[1] = revoked, KEYS[2] = seen; ARGV[1] = idle TTL (ms). An expired clock is not restarted; a `new` one
 * keeps the expiry `opened` gave it.
 */
const TOUCH = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 'revoked' end
local seen = redis.call('GET', KEYS[2])
if not seen then return 'idle' end
if seen ~= 'new' then redis.call('SET', KEYS[2], '1', 'PX', ARGV[1]) end
return 'ok'
`;

type EvalFn = (script: string, numKeys: number, ...args: (string | number)[]) => Promise<unknown>;

export class RedisSessionStore implements SessionStore {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #idleMs: number;
  readonly #unusedMs: number;

  constructor(redis: Redis, opts: RedisSessionStoreOptions) {
    this.#redis = redis;
    this.#prefix = opts.keyPrefix;
    this.#idleMs = opts.idleTimeoutMs;
    this.#unusedMs = opts.unusedTimeoutMs ?? opts.idleTimeoutMs;
    if (!(this.#unusedMs > 0 && this.#unusedMs <= this.#idleMs))
      throw new TypeError('unusedTimeoutMs must be positive and at most idleTimeoutMs');
  }

  #keys(jti: string): [revoked: string, seen: string] {
    return [`${this.#prefix}{${jti}}:revoked`, `${this.#prefix}{${jti}}:seen`];
  }

  /** The clock never outlives the token. */
  #ttl(clockMs: number, expiresAt: number, now: number): number {
    return Math.max(1, Math.min(clockMs, expiresAt - now));
  }

  async opened(jti: string, expiresAt: number, now: number): Promise<void> {
    await this.#redis.set(this.#keys(jti)[1], 'new', 'PX', this.#ttl(this.#unusedMs, expiresAt, now));
  }

  async established(jti: string, expiresAt: number, now: number): Promise<void> {
    // `XX`: a session already ended (never used in time, idle, deleted) stays ended.
    await this.#redis.set(this.#keys(jti)[1], '1', 'PX', this.#ttl(this.#idleMs, expiresAt, now), 'XX');
  }

  async touch(jti: string, expiresAt: number, now: number): Promise<SessionCheck> {
    const [revoked, seen] = this.#keys(jti);
    const answer = await (this.#redis.eval as unknown as EvalFn).call(
      this.#redis,
      TOUCH,
      2,
      revoked,
      seen,
      this.#ttl(this.#idleMs, expiresAt, now),
    );
    if (answer === 'ok' || answer === 'revoked' || answer === 'idle') return answer;
    throw new Error(`unexpected session store answer ${typeof answer}`);
  }

  async end(jti: string): Promise<void> {
    // No clock is an ended session (TOUCH answers idle): nothing is left behind to expire.
    await this.#redis.del(this.#keys(jti)[1]);
  }

  async revoke(jti: string, expiresAt: number, now: number): Promise<void> {
    const [revoked, seen] = this.#keys(jti);
    const results = await this.#redis
      .multi()
      .set(revoked, '1', 'PX', Math.max(1, expiresAt - now))
      .del(seen)
      .exec();
    const failed =
      results === null ? new Error('session revocation aborted') : results.find(([err]) => err !== null)?.[0];
    if (failed) throw failed;
  }
}
