/**
 * The many-replica `ResultStore` on Redis. Cached results and remembered writes are plain strings with a PX expiry;
 * generations are INCR counters; a claim is one Lua script (GET, else SET … PX), so two replicas never both forward
 * the same idempotent write. Keys arrive hashed (the caller never passes subjects or arguments in clear).
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Claim, ResultStore } from './result-store.js';

/** KEYS[1]: the key. ARGV: pending value, pending ms. Returns the held value, or nil when the caller now holds it. */
const CLAIM = `
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
`;
/** KEYS[1]: the key. ARGV: the claimant's pending value, then the new value and ms ('' to delete). */
const SETTLE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
return 1
`;

type Held =
  { state: 'pending'; fingerprint: string; token: string } | { state: 'done'; fingerprint: string; result: string };

export class RedisResultStore implements ResultStore {
  /** Pending values by token: what SETTLE compares against (the fingerprint is part of it). */
  private readonly pending = new Map<string, string>();

  constructor(
    private readonly redis: Redis,
    private readonly options: { readonly keyPrefix: string },
  ) {}

  async generations(keys: readonly string[]): Promise<string> {
    if (keys.length === 0) return '';
    const values = await this.redis.mget(...keys.map((k) => this.k(`g:${k}`)));
    return values.map((v) => v ?? '0').join('.');
  }

  async bump(key: string): Promise<void> {
    await this.redis.incr(this.k(`g:${key}`));
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.redis.get(this.k(key))) ?? undefined;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    await this.redis.set(this.k(key), value, 'PX', Math.max(1, Math.ceil(ttlMs)));
  }

  async claim(key: string, fingerprint: string, pendingMs: number): Promise<Claim> {
    const token = randomUUID();
    const mine = JSON.stringify({ state: 'pending', fingerprint, token } satisfies Held);
    const held = (await this.redis.eval(CLAIM, 1, this.k(key), mine, String(Math.ceil(pendingMs)))) as string | null;
    if (held === null) {
      this.pending.set(token, mine);
      return { state: 'claimed', token };
    }
    const h = JSON.parse(held) as Held;
    return h.state === 'done'
      ? { state: 'done', fingerprint: h.fingerprint, result: h.result }
      : { state: 'pending', fingerprint: h.fingerprint };
  }

  async complete(key: string, token: string, fingerprint: string, result: string, ttlMs: number): Promise<void> {
    const mine = this.pending.get(token);
    this.pending.delete(token);
    if (mine === undefined) return;
    const done = JSON.stringify({ state: 'done', fingerprint, result } satisfies Held);
    await this.redis.eval(SETTLE, 1, this.k(key), mine, done, String(Math.ceil(ttlMs)));
  }

  async release(key: string, token: string): Promise<void> {
    const mine = this.pending.get(token);
    this.pending.delete(token);
    if (mine === undefined) return;
    await this.redis.eval(SETTLE, 1, this.k(key), mine, '', '0');
  }

  clearLocal(): void {
    // Nothing held locally: entries of an old policy revision stop matching and expire.
  }

  close(): Promise<void> {
    // The shared client belongs to the composition root.
    return Promise.resolve();
  }

  private k(key: string): string {
    return `${this.options.keyPrefix}${key}`;
  }
}
