/**
 * The many-replica `RateLimiter` on Redis. One Lua script admits a call: it reads Redis's own clock (`TIME`, so
 * replicas with skewed clocks agree), runs GCRA on every bucket (one string key each: the theoretical arrival
 * time, see src/stores/rate-limits/gcra.ts), counts every lease set (a sorted set: member = lease id, score = expiry), and
 * only if all pass writes them all — atomic, so concurrent replicas never overspend a budget. Every key carries
 * an expiry: a bucket's is the time it takes to refill completely, a lease set's that of its latest lease, so
 * idle keys vanish and a crashed replica's leases age out.
 *
 * The keys of one admission must live on one node: Redis standalone or Sentinel, not Cluster.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { assertRateSpec } from './gcra.js';
import {
  CONCURRENCY_RETRY_MS,
  LimiterUnavailableError,
  type AdmitRequest,
  type AdmitResult,
  type ConsumeResult,
  type RateLimiter,
  type RateSpec,
} from './rate-limiter.js';

/**
 * KEYS: nr bucket keys, then nl lease-set keys. ARGV: nr, nl, then (periodMs, count, burst) per bucket — integers,
 * so the script derives T = period / count and tau = burst · T in the same doubles as src/stores/rate-limits/gcra.ts — then
 * max per lease set, then lease id and lease TTL (ms). Returns {1, remaining} or
 * {0, 'rate'|'concurrency', index, retryAfterMs}. Numbers cross the boundary as strings: Redis truncates Lua
 * numbers to integers.
 *
 * A bucket's arrival time is stored as "<whole ms>:<fraction>" and the arithmetic runs on the debt (tat − now,
 * at most tau), never on epoch ms: at ~1.8e12 a double's step is ~0.24 µs, so adding a sub-millisecond interval
 * to an absolute time would round it away (the bucket would never empty) or skew it by up to 12 %.
 * A plain number (the format of earlier releases) is still read.
 */
const ADMIT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nr = tonumber(ARGV[1])
local nl = tonumber(ARGV[2])
local a = 3
local debts = {}
local remaining = -1
for i = 1, nr do
  local T = tonumber(ARGV[a]) / tonumber(ARGV[a + 1])
  local tau = tonumber(ARGV[a + 2]) * T
  a = a + 3
  local debt = 0
  local raw = redis.call('GET', KEYS[i])
  if raw then
    local whole, frac = string.match(raw, '^(%-?%d+):(.+)$')
    if whole then debt = (tonumber(whole) - now) + tonumber(frac) else debt = tonumber(raw) - now end
  end
  if debt < 0 then debt = 0 end
  local nd = debt + T
  local over = nd - tau
  if over > 0 then return {0, 'rate', i - 1, string.format('%.3f', over)} end
  debts[i] = nd
  local r = math.floor((tau - nd) / T + 1e-9)
  if remaining < 0 or r < remaining then remaining = r end
end
for j = 1, nl do
  local max = tonumber(ARGV[a])
  a = a + 1
  local k = KEYS[nr + j]
  redis.call('ZREMRANGEBYSCORE', k, '-inf', now)
  if redis.call('ZCARD', k) >= max then return {0, 'concurrency', j - 1, '0'} end
end
local lease = ARGV[a]
local ttl = tonumber(ARGV[a + 1])
for i = 1, nr do
  local whole = math.floor(debts[i])
  redis.call('SET', KEYS[i], string.format('%d:%.17g', now + whole, debts[i] - whole), 'PX', string.format('%d', math.max(1, math.ceil(debts[i]))))
end
for j = 1, nl do
  local k = KEYS[nr + j]
  redis.call('ZADD', k, now + ttl, lease)
  if redis.call('PTTL', k) < ttl then redis.call('PEXPIRE', k, ttl) end
end
return {1, string.format('%d', remaining)}
`;

type EvalFn = (scriptOrSha: string, numKeys: number, ...args: (string | number)[]) => Promise<unknown>;

/**
 * Calls run EVALSHA: the ~2 KB script text is sent and hashed by Redis once, not per call. A Redis that does not
 * hold it (restarted, failed over, SCRIPT FLUSH) answers NOSCRIPT, and that one call sends the text with EVAL,
 * which caches it again. Either way the script runs atomically.
 */
const ADMIT_SHA = createHash('sha1').update(ADMIT).digest('hex');

export interface RedisLimiterOptions {
  /** Prepended to every key, e.g. `gatehouse:limits:`. */
  keyPrefix: string;
}

export class RedisLimiter implements RateLimiter {
  readonly #redis: Redis;
  readonly #prefix: string;

  constructor(redis: Redis, opts: RedisLimiterOptions) {
    this.#redis = redis;
    this.#prefix = opts.keyPrefix;
  }

  async consume(key: string, rate: RateSpec): Promise<ConsumeResult> {
    const r = await this.admit({ rates: [{ key, rate }], leases: [], leaseId: '-', leaseTtlMs: 1 });
    return r.ok
      ? { ok: true, retryAfterMs: 0, remaining: r.remaining }
      : { ok: false, retryAfterMs: r.retryAfterMs, remaining: 0 };
  }

  async admit(request: AdmitRequest): Promise<AdmitResult> {
    if (!Number.isSafeInteger(request.leaseTtlMs) || request.leaseTtlMs < 1)
      throw new TypeError('"leaseTtlMs" must be a positive integer');
    const keys = [
      ...request.rates.map((r) => this.#prefix + r.key),
      ...request.leases.map((l) => this.#prefix + l.key),
    ];
    const args: (string | number)[] = [request.rates.length, request.leases.length];
    for (const { rate } of request.rates) {
      assertRateSpec(rate);
      args.push(rate.periodMs, rate.count, rate.burst);
    }
    for (const { max } of request.leases) args.push(max);
    args.push(request.leaseId, request.leaseTtlMs);
    let reply: unknown;
    try {
      try {
        reply = await (this.#redis.evalsha as unknown as EvalFn).call(
          this.#redis,
          ADMIT_SHA,
          keys.length,
          ...keys,
          ...args,
        );
      } catch (err) {
        if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
        reply = await (this.#redis.eval as unknown as EvalFn).call(this.#redis, ADMIT, keys.length, ...keys, ...args);
      }
    } catch (err) {
      throw new LimiterUnavailableError(`redis: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    if (!Array.isArray(reply)) throw new LimiterUnavailableError('redis: unexpected reply to the admit script');
    if (reply[0] === 1) {
      const remaining = Number(reply[1]);
      return { ok: true, remaining: remaining < 0 ? Infinity : remaining };
    }
    const kind = reply[1] === 'rate' ? 'rate' : 'concurrency';
    const retryAfterMs = kind === 'rate' ? Math.max(1, Math.ceil(Number(reply[3]))) : CONCURRENCY_RETRY_MS;
    return { ok: false, kind, index: Number(reply[2]), retryAfterMs };
  }

  async release(keys: readonly string[], leaseId: string): Promise<void> {
    if (keys.length === 0) return;
    try {
      const pipeline = this.#redis.pipeline();
      for (const key of keys) pipeline.zrem(this.#prefix + key, leaseId);
      // A pipeline resolves even when its commands failed (a command timeout, say): each result carries its error.
      const failed = (await pipeline.exec())?.find(([err]) => err !== null)?.[0];
      if (failed) throw failed;
    } catch (err) {
      throw new LimiterUnavailableError(`redis: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  /** The connection belongs to the shared handle (src/stores/redis/redis-client.ts), which closes it. */
  async close(): Promise<void> {}
}
