/**
 * The many-replica `AsStore` on Redis (ioredis). Every key starts with `keyPrefix` and every write sets an
 * expiry. Single use (codes, refresh tokens) is one Lua script: the record is read and deleted and its
 * tombstone written in one step, so two replicas racing on one code cannot both win. The two keys of such a
 * pair share a hash tag (`{…}`), so the script also runs on a Redis Cluster.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type {
  AsStore,
  CodeRecord,
  ConsentRecord,
  PendingConsent,
  PendingLogin,
  RefreshRecord,
  StoredClient,
  TakeResult,
} from './as-store.js';

export interface RedisAsStoreOptions {
  /** Prepended to every key, e.g. `gatehouse:as:`. */
  keyPrefix: string;
}

/** KEYS[1] = record, KEYS[2] = tombstone; ARGV[1] = tombstone TTL (s). Returns {state, json} or false. */
const TAKE_ONCE = `
local v = redis.call('GET', KEYS[1])
if v then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], v, 'EX', ARGV[1])
  return {'fresh', v}
end
local u = redis.call('GET', KEYS[2])
if u then return {'used', u} end
return false
`;

/** KEYS[1] = family revoked marker, KEYS[2] = family token set; ARGV = member, TTL. */
const ADD_FAMILY_TOKEN = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
`;

/** KEYS as above; ARGV[1] = TTL. Marks the family revoked and returns its members in the same step. */
const REVOKE_FAMILY = `
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
return redis.call('SMEMBERS', KEYS[2])
`;

type EvalFn = (script: string, numKeys: number, ...args: (string | number)[]) => Promise<unknown>;

export class RedisAsStore implements AsStore {
  readonly #redis: Redis;
  readonly #prefix: string;

  constructor(redis: Redis, opts: RedisAsStoreOptions) {
    this.#redis = redis;
    this.#prefix = opts.keyPrefix;
  }

  #key(...parts: string[]): string {
    return this.#prefix + parts.join(':');
  }

  #eval(script: string, keys: string[], args: (string | number)[]): Promise<unknown> {
    return (this.#redis.eval as unknown as EvalFn).call(this.#redis, script, keys.length, ...keys, ...args);
  }

  async #set(key: string, value: string, ttlSeconds: number): Promise<void> {
    assertTtl(ttlSeconds);
    await this.#redis.set(key, value, 'EX', ttlSeconds);
  }

  async #getJson<T>(key: string): Promise<T | undefined> {
    const v = await this.#redis.get(key);
    return v === null ? undefined : (JSON.parse(v) as T);
  }

  async #take<T>(key: string): Promise<T | undefined> {
    const v = await this.#redis.getdel(key);
    return v === null ? undefined : (JSON.parse(v) as T);
  }

  async #takeOnce<T>(kind: string, id: string, tombstoneTtlSeconds: number): Promise<TakeResult<T>> {
    assertTtl(tombstoneTtlSeconds);
    const reply = await this.#eval(
      TAKE_ONCE,
      [this.#key(kind, `{${id}}`), this.#key(`${kind}-used`, `{${id}}`)],
      [tombstoneTtlSeconds],
    );
    if (!Array.isArray(reply)) return { state: 'missing' };
    const [state, json] = reply as [string, string];
    return { state: state === 'fresh' ? 'fresh' : 'used', record: JSON.parse(json) as T };
  }

  async saveClient(client: StoredClient, ttlSeconds: number): Promise<void> {
    await this.#set(this.#key('client', client.clientId), JSON.stringify(client), ttlSeconds);
  }

  findClient(clientId: string): Promise<StoredClient | undefined> {
    return this.#getJson(this.#key('client', clientId));
  }

  async savePendingLogin(id: string, login: PendingLogin, ttlSeconds: number): Promise<void> {
    await this.#set(this.#key('login', id), JSON.stringify(login), ttlSeconds);
  }

  takePendingLogin(id: string): Promise<PendingLogin | undefined> {
    return this.#take(this.#key('login', id));
  }

  async savePendingConsent(id: string, consent: PendingConsent, ttlSeconds: number): Promise<void> {
    await this.#set(this.#key('consent-req', id), JSON.stringify(consent), ttlSeconds);
  }

  findPendingConsent(id: string): Promise<PendingConsent | undefined> {
    return this.#getJson(this.#key('consent-req', id));
  }

  takePendingConsent(id: string): Promise<PendingConsent | undefined> {
    return this.#take(this.#key('consent-req', id));
  }

  async saveCode(codeHash: string, code: CodeRecord, ttlSeconds: number): Promise<void> {
    await this.#set(this.#key('code', `{${codeHash}}`), JSON.stringify(code), ttlSeconds);
  }

  takeCode(codeHash: string, tombstoneTtlSeconds: number): Promise<TakeResult<CodeRecord>> {
    return this.#takeOnce('code', codeHash, tombstoneTtlSeconds);
  }

  async saveRefreshToken(tokenHash: string, token: RefreshRecord, ttlSeconds: number): Promise<void> {
    await this.#set(this.#key('rt', `{${tokenHash}}`), JSON.stringify(token), ttlSeconds);
  }

  takeRefreshToken(tokenHash: string, tombstoneTtlSeconds: number): Promise<TakeResult<RefreshRecord>> {
    return this.#takeOnce('rt', tokenHash, tombstoneTtlSeconds);
  }

  async findRefreshToken(tokenHash: string): Promise<RefreshRecord | undefined> {
    return (
      (await this.#getJson<RefreshRecord>(this.#key('rt', `{${tokenHash}}`))) ??
      this.#getJson(this.#key('rt-used', `{${tokenHash}}`))
    );
  }

  async addFamilyAccessToken(familyId: string, jti: string, expiresAt: number, ttlSeconds: number): Promise<boolean> {
    assertTtl(ttlSeconds);
    const reply = await this.#eval(ADD_FAMILY_TOKEN, this.#familyKeys(familyId), [`${jti} ${expiresAt}`, ttlSeconds]);
    return reply === 1;
  }

  async isFamilyRevoked(familyId: string): Promise<boolean> {
    return (await this.#redis.exists(this.#familyKeys(familyId)[0]!)) === 1;
  }

  async revokeFamily(familyId: string, ttlSeconds: number, nowSeconds: number): Promise<void> {
    assertTtl(ttlSeconds);
    const members = (await this.#eval(REVOKE_FAMILY, this.#familyKeys(familyId), [ttlSeconds])) as string[];
    // Issuance after this point sees the marker; tokens issued before are in `members`.
    const pipeline = this.#redis.pipeline();
    for (const member of members) {
      const [jti, exp] = member.split(' ');
      const ttl = Number(exp) - nowSeconds;
      if (jti !== undefined && Number.isSafeInteger(ttl) && ttl > 0)
        pipeline.set(this.#key('revoked', jti), '1', 'EX', ttl);
    }
    if (pipeline.length > 0) await pipeline.exec();
  }

  #familyKeys(familyId: string): [string, string] {
    return [this.#key('family-revoked', `{${familyId}}`), this.#key('family-jtis', `{${familyId}}`)];
  }

  async saveConsent(subject: string, clientId: string, consent: ConsentRecord, ttlSeconds: number): Promise<void> {
    await this.#set(this.#key('consent', digest([subject, clientId])), JSON.stringify(consent), ttlSeconds);
  }

  findConsent(subject: string, clientId: string): Promise<ConsentRecord | undefined> {
    return this.#getJson(this.#key('consent', digest([subject, clientId])));
  }

  async markJtiUsed(clientId: string, jti: string, ttlSeconds: number): Promise<boolean> {
    assertTtl(ttlSeconds);
    const reply = await this.#redis.set(this.#key('jti', digest([clientId, jti])), '1', 'EX', ttlSeconds, 'NX');
    return reply === 'OK';
  }

  async revokeAccessToken(jti: string, ttlSeconds: number): Promise<void> {
    await this.#set(this.#key('revoked', jti), '1', ttlSeconds);
  }

  async isAccessTokenRevoked(jti: string): Promise<boolean> {
    return (await this.#redis.exists(this.#key('revoked', jti))) === 1;
  }

  async close(): Promise<void> {
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }
}

/** User-controlled parts of a key are hashed: bounded length, no separator games. */
function digest(parts: readonly string[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('base64url');
}

function assertTtl(ttlSeconds: number): void {
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1)
    throw new TypeError(`ttl must be a positive integer number of seconds, got ${ttlSeconds}`);
}
