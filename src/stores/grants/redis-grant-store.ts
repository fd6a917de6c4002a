/**
 * The many-replica `GrantStore` on Redis. A subject's grants at an upstream are one hash (field: the binding key), so
 * an operator's revocation is one HGETALL + DEL in a script; every key expires. Keys hold hashes and the upstream's
 * configured name only; values are sealed by the provider.
 */
import type { Redis } from 'ioredis';
import type { GrantStore } from './grant-store.js';

export interface RedisGrantStoreOptions {
  /** Prepended to every key, e.g. `gatehouse:grants:`. */
  keyPrefix: string;
}

/** KEYS[1] = the subject's hash. Returns its values and deletes it in one step. */
const TAKE_ALL = `
local v = redis.call('HVALS', KEYS[1])
redis.call('DEL', KEYS[1])
return v
`;

/** KEYS[1] = hash; ARGV = field, value, ttl. The TTL only ever grows (another binding's grant may live longer). */
const PUT = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local ttl = redis.call('TTL', KEYS[1])
if ttl < tonumber(ARGV[3]) then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
return 1
`;

type EvalFn = (script: string, numKeys: number, ...args: (string | number)[]) => Promise<unknown>;

export class RedisGrantStore implements GrantStore {
  readonly #redis: Redis;
  readonly #prefix: string;

  constructor(
    redis: Redis,
    opts: RedisGrantStoreOptions,
    /** Whether close() quits the connection (the CLI's own) or leaves it to its owner (the app's shared one). */
    private readonly ownsConnection = false,
  ) {
    this.#redis = redis;
    this.#prefix = opts.keyPrefix;
  }

  #grantKey(upstream: string, subjectKey: string): string {
    // One hash tag per subject and upstream: a Redis Cluster keeps the pair's script on one node.
    return `${this.#prefix}g:{${upstream}:${subjectKey}}`;
  }

  #eval(script: string, keys: string[], args: (string | number)[]): Promise<unknown> {
    return (this.#redis.eval as unknown as EvalFn).call(this.#redis, script, keys.length, ...keys, ...args);
  }

  async get(upstream: string, subjectKey: string, bindingKey: string): Promise<string | undefined> {
    return (await this.#redis.hget(this.#grantKey(upstream, subjectKey), bindingKey)) ?? undefined;
  }

  async put(
    upstream: string,
    subjectKey: string,
    bindingKey: string,
    sealed: string,
    ttlSeconds: number,
  ): Promise<void> {
    if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0) throw new TypeError('ttlSeconds must be positive');
    await this.#eval(PUT, [this.#grantKey(upstream, subjectKey)], [bindingKey, sealed, ttlSeconds]);
  }

  async delete(upstream: string, subjectKey: string, bindingKey: string): Promise<boolean> {
    return (await this.#redis.hdel(this.#grantKey(upstream, subjectKey), bindingKey)) > 0;
  }

  async takeSubject(upstream: string, subjectKey: string): Promise<string[]> {
    const reply = await this.#eval(TAKE_ALL, [this.#grantKey(upstream, subjectKey)], []);
    return Array.isArray(reply) ? (reply as string[]) : [];
  }

  async getClient(upstream: string): Promise<string | undefined> {
    return (await this.#redis.get(`${this.#prefix}c:${upstream}`)) ?? undefined;
  }

  async putClientOnce(upstream: string, sealed: string): Promise<string> {
    const key = `${this.#prefix}c:${upstream}`;
    const set = await this.#redis.set(key, sealed, 'NX');
    if (set === 'OK') return sealed;
    return (await this.#redis.get(key)) ?? sealed;
  }

  async deleteClient(upstream: string): Promise<void> {
    await this.#redis.del(`${this.#prefix}c:${upstream}`);
  }

  async useOnce(id: string, ttlSeconds: number): Promise<boolean> {
    return (await this.#redis.set(`${this.#prefix}n:${id}`, '1', 'EX', ttlSeconds, 'NX')) === 'OK';
  }

  async close(): Promise<void> {
    if (this.ownsConnection) await this.#redis.quit().catch(() => undefined);
  }
}
