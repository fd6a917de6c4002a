/**
 * The many-replica `SessionStore` on Redis (ioredis). Per session two keys sharing a hash tag (`{jti}`, so the
 * script runs on a Redis Cluster too): `…:revoked`, kept until the token's expiry, and `…:seen`, whose expiry
 * is the idle timeout and is pushed back on every use — the sliding idle clock shared by every replica.
 * The client belongs to the composition root (src/stores/redis-client.ts), which closes it.
 */
import type { Redis } from 'ioredis';
import type { SessionCheck, SessionStore } from '../lib/session-store.js';

export interface RedisSessionStoreOptions {
  /** Prepended to every key, e.g. `gatehouse:session:`. */
  keyPrefix: string;
  idleTimeoutMs: number;
}

/** KEYS[1] = revoked, KEYS[2] = seen; ARGV[1] = idle TTL (ms). `XX`: an expired clock is not restarted. */
const TOUCH = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 'revoked' end
if redis.call('SET', KEYS[2], '1', 'PX', ARGV[1], 'XX') then return 'ok' end
return 'idle'
`;

type EvalFn = (script: string, numKeys: number, ...args: (string | number)[]) => Promise<unknown>;

export class RedisSessionStore implements SessionStore {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #idleMs: number;

  constructor(redis: Redis, opts: RedisSessionStoreOptions) {
    this.#redis = redis;
    this.#prefix = opts.keyPrefix;
    this.#idleMs = opts.idleTimeoutMs;
  }

  #keys(jti: string): [revoked: string, seen: string] {
    return [`${this.#prefix}{${jti}}:revoked`, `${this.#prefix}{${jti}}:seen`];
  }

  /** The idle clock never outlives the token. */
  #idleTtl(expiresAt: number, now: number): number {
    return Math.max(1, Math.min(this.#idleMs, expiresAt - now));
  }

  async opened(jti: string, expiresAt: number, now: number): Promise<void> {
    await this.#redis.set(this.#keys(jti)[1], '1', 'PX', this.#idleTtl(expiresAt, now));
  }

  async touch(jti: string, expiresAt: number, now: number): Promise<SessionCheck> {
    const [revoked, seen] = this.#keys(jti);
    const answer = await (this.#redis.eval as unknown as EvalFn).call(this.#redis, TOUCH, 2, revoked, seen, this.#idleTtl(expiresAt, now));
    if (answer === 'ok' || answer === 'revoked' || answer === 'idle') return answer;
    throw new Error(`unexpected session store answer ${typeof answer}`);
  }

  async revoke(jti: string, expiresAt: number, now: number): Promise<void> {
    const [revoked, seen] = this.#keys(jti);
    const results = await this.#redis.multi().set(revoked, '1', 'PX', Math.max(1, expiresAt - now)).del(seen).exec();
    const failed = results === null ? new Error('session revocation aborted') : results.find(([err]) => err !== null)?.[0];
    if (failed) throw failed;
  }
}
