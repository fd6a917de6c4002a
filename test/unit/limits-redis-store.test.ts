/**
 * The Redis limiter against real Redis (own random prefix): the same behaviours as the memory store, keys that
 * expire, leases of a crashed caller that age out, and the fail-fast client while Redis is away.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  CONCURRENCY_RETRY_MS,
  LimiterUnavailableError,
  type RateSpec,
} from '../../src/stores/rate-limits/rate-limiter.js';
import { createRedisClient } from '../../src/stores/redis/redis-client.js';
import { RedisLimiter } from '../../src/stores/rate-limits/redis-limiter.js';
import { describeRedis, probeRedis, redisClient } from '../helpers/redis.js';
import { freePort, waitFor } from '../helpers/upstream-tools.js';

const available = await probeRedis();
const prefix = `gatehouse-test:${randomBytes(6).toString('hex')}:`;
const perHour = (count: number, burst = count): RateSpec => ({ count, periodMs: 3_600_000, burst });

describeRedis(available)('RedisLimiter on real Redis', () => {
  let redis: Redis;
  let store: RedisLimiter;
  beforeAll(() => {
    redis = redisClient();
    store = new RedisLimiter(redis, { keyPrefix: prefix });
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it('burst, then refusal with retryAfterMs of one emission interval; the key expires when the bucket is full again', async () => {
    const rate = perHour(3); // T = 20 min
    expect(await store.consume('b1', rate)).toEqual({ ok: true, retryAfterMs: 0, remaining: 2 });
    expect(await store.consume('b1', rate)).toEqual({ ok: true, retryAfterMs: 0, remaining: 1 });
    expect(await store.consume('b1', rate)).toEqual({ ok: true, retryAfterMs: 0, remaining: 0 });
    const refused = await store.consume('b1', rate);
    expect(refused.ok).toBe(false);
    // Redis's clock moved a few ms between calls: the wait is one interval minus that.
    expect(refused.retryAfterMs).toBeLessThanOrEqual(1_200_000);
    expect(refused.retryAfterMs).toBeGreaterThan(1_200_000 - 5_000);
    const ttl = await redis.pttl(`${prefix}b1`);
    // Three intervals to refill completely (60 min), less the ms elapsed.
    expect(ttl).toBeLessThanOrEqual(3_600_000);
    expect(ttl).toBeGreaterThan(3_600_000 - 5_000);
  });

  it('refills: a fast rate lets the next call through after one interval', async () => {
    const rate: RateSpec = { count: 10, periodMs: 1000, burst: 1 }; // T = 100 ms
    expect((await store.consume('fast', rate)).ok).toBe(true);
    const refused = await store.consume('fast', rate);
    expect(refused.ok).toBe(false);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(100);
    await new Promise((r) => setTimeout(r, refused.retryAfterMs + 5));
    expect((await store.consume('fast', rate)).ok).toBe(true);
  });

  it('admit is all-or-nothing across buckets and lease sets', async () => {
    const roomy = perHour(100);
    const req = (id: string) => ({
      rates: [{ key: 'aon-a', rate: roomy }],
      leases: [{ key: 'aon-c', max: 1 }],
      leaseId: id,
      leaseTtlMs: 60_000,
    });
    expect(await store.admit(req('1'))).toEqual({ ok: true, remaining: 99 });
    expect(await store.admit(req('2'))).toEqual({
      ok: false,
      kind: 'concurrency',
      index: 0,
      retryAfterMs: CONCURRENCY_RETRY_MS,
    });
    // The refused call spent no token.
    expect(await store.consume('aon-a', roomy)).toEqual({ ok: true, retryAfterMs: 0, remaining: 98 });
    await store.release(['aon-c'], '1');
    expect((await store.admit(req('3'))).ok).toBe(true);
    const leaseTtl = await redis.pttl(`${prefix}aon-c`);
    expect(leaseTtl).toBeGreaterThan(50_000);
    expect(leaseTtl).toBeLessThanOrEqual(60_000);
  });

  it('the same arithmetic as the memory store at the extremes the config allows (sub-µs intervals, a day-long burst)', async () => {
    // perHour 1e9: T = 3.6 µs; perMinute 1e9: T = 60 ns; perDay 1 with burst 1e9: a bucket 2700 years deep.
    const specs: RateSpec[] = [
      { count: 1_000_000_000, periodMs: 3_600_000, burst: 1000 },
      { count: 1_000_000_000, periodMs: 60_000, burst: 1_000_000_000 },
      { count: 1, periodMs: 86_400_000, burst: 1_000_000_000 },
      { count: 7, periodMs: 86_400_000, burst: 3 },
    ];
    for (const [i, rate] of specs.entries()) {
      const first = await store.consume(`edge-${i}`, rate);
      expect(first, JSON.stringify(rate)).toEqual({ ok: true, retryAfterMs: 0, remaining: rate.burst - 1 });
    }
    // A day-long bucket still expires (its PX is a plain integer), and a 7-per-day bucket refuses its 4th call
    // with the wait of one interval (86400000 / 7 ms), as the memory store computes it.
    expect(await redis.pttl(`${prefix}edge-2`)).toBeGreaterThan(0);
    await store.consume('edge-3', specs[3]!);
    await store.consume('edge-3', specs[3]!);
    const refused = await store.consume('edge-3', specs[3]!);
    expect(refused.ok).toBe(false);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(Math.ceil(86_400_000 / 7));
    expect(refused.retryAfterMs).toBeGreaterThan(Math.ceil(86_400_000 / 7) - 5_000);
  });

  it('reads a bucket written by an earlier release (a plain epoch-ms number) during a rolling upgrade', async () => {
    const [seconds, micros] = await redis.time();
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    // An earlier release's full spend of a 1-per-minute bucket: its arrival time one interval ahead.
    await redis.set(`${prefix}legacy`, (now + 60_000).toFixed(3), 'PX', 60_000);
    const refused = await store.consume('legacy', { count: 1, periodMs: 60_000, burst: 1 });
    expect(refused.ok).toBe(false);
    expect(refused.retryAfterMs).toBeGreaterThan(55_000);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(60_000);
  });

  it('a release whose command fails is reported (a pipeline resolves even then), so the caller can try again', async () => {
    await redis.set(`${prefix}not-a-lease-set`, 'x');
    await expect(store.release(['not-a-lease-set'], 'id')).rejects.toBeInstanceOf(LimiterUnavailableError);
  });

  it("a crashed caller's lease ages out after its TTL", async () => {
    const req = (id: string) => ({ rates: [], leases: [{ key: 'crash', max: 1 }], leaseId: id, leaseTtlMs: 150 });
    expect((await store.admit(req('lost'))).ok).toBe(true);
    expect((await store.admit(req('next'))).ok).toBe(false);
    await new Promise((r) => setTimeout(r, 200));
    expect((await store.admit(req('next'))).ok).toBe(true);
  });

  it('concurrent admissions never overspend (atomic script)', async () => {
    const rate = perHour(25);
    const results = await Promise.all(Array.from({ length: 60 }, () => store.consume('race', rate)));
    expect(results.filter((r) => r.ok)).toHaveLength(25);
  });

  it('a Redis that hangs (socket open, no answers) is reported down, and up again when it answers', async () => {
    const port = await freePort();
    const { spawn } = await import('node:child_process');
    const server = spawn('/usr/bin/redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    const handle = createRedisClient(
      { url: `redis://127.0.0.1:${port}`, keyPrefix: prefix, connectTimeoutMs: 1000, commandTimeoutMs: 200 },
      pino({ level: 'silent' }),
    );
    try {
      await waitFor('redis up', () => handle.health().state === 'up');
      // Stopped, not killed: the connection stays open, so ioredis never sees a 'close' — only commands time out.
      server.kill('SIGSTOP');
      await waitFor('redis down', () => handle.health().state === 'down', 10_000);
      expect(handle.health().lastError).toMatch(/timed out/i);
      server.kill('SIGCONT');
      await waitFor('redis up again', () => handle.health().state === 'up', 10_000);
    } finally {
      await handle.close();
      server.kill('SIGCONT');
      server.kill('SIGKILL');
    }
  });

  it('through the shared (auto-pipelined) client: concurrent admissions stay atomic, and a Redis without the cached script (NOSCRIPT) still answers', async () => {
    const port = await freePort();
    const { spawn } = await import('node:child_process');
    const server = spawn('/usr/bin/redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    const handle = createRedisClient(
      { url: `redis://127.0.0.1:${port}`, keyPrefix: prefix, connectTimeoutMs: 1000, commandTimeoutMs: 2000 },
      pino({ level: 'silent' }),
    );
    try {
      await waitFor('redis up', () => handle.health().state === 'up');
      const own = new RedisLimiter(handle.client, { keyPrefix: prefix });
      // A fresh server holds no script: the first calls fall back to EVAL, which caches it.
      const results = await Promise.all(Array.from({ length: 60 }, () => own.consume('race', perHour(25))));
      expect(results.filter((r) => r.ok)).toHaveLength(25);
      // Own server: flushing its script cache touches nobody else.
      await handle.client.script('FLUSH');
      expect((await own.consume('after-flush', perHour(5))).remaining).toBe(4);
      expect((await own.consume('after-flush', perHour(5))).remaining).toBe(3);
    } finally {
      await handle.close();
      server.kill('SIGKILL');
    }
  });

  it('the shared client fails fast while Redis is away and recovers by itself', async () => {
    const port = await freePort();
    const { spawn } = await import('node:child_process');
    const startServer = () =>
      spawn('/usr/bin/redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    let server = startServer();
    const handle = createRedisClient(
      { url: `redis://127.0.0.1:${port}`, keyPrefix: prefix, connectTimeoutMs: 1000, commandTimeoutMs: 500 },
      pino({ level: 'silent' }),
    );
    try {
      await waitFor('redis up', () => handle.health().state === 'up');
      const own = new RedisLimiter(handle.client, { keyPrefix: prefix });
      expect((await own.consume('x', perHour(5))).ok).toBe(true);
      server.kill('SIGKILL');
      await waitFor('redis down', () => handle.health().state === 'down');
      const t0 = Date.now();
      await expect(own.consume('x', perHour(5))).rejects.toBeInstanceOf(LimiterUnavailableError);
      expect(Date.now() - t0).toBeLessThan(1000);
      server = startServer();
      await waitFor('redis up again', () => handle.health().state === 'up', 15_000);
      expect((await own.consume('x', perHour(5))).ok).toBe(true);
    } finally {
      await handle.close();
      server.kill('SIGKILL');
    }
  });
});
