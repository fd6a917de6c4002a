/**
 * The session store's short clock for sessions not yet used (`sessions.unusedTimeoutMs`, threat model #9):
 * counted from `opened`, not pushed back by `touch`, replaced by the idle clock at `established` — the same
 * contract in memory (clock injected) and in Redis (the key's expiry, read back with PTTL). And `end`, how a
 * session cap ends a session: refused like an idle one, with nothing kept until the token's expiry.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { MemorySessionStore } from '../../src/stores/sessions/memory-session-store.js';
import { RedisSessionStore } from '../../src/stores/sessions/redis-session-store.js';
import { describeRedis, probeRedis, redisClient } from '../helpers/redis.js';

const NOW = 1_800_000_000_000;
const EXP = NOW + 24 * 3600_000;
const IDLE = 600_000;
const UNUSED = 1_000;

describe('MemorySessionStore: sessions not yet used', () => {
  it('ends a session not established within the unused timeout, however often it is touched meanwhile', async () => {
    const store = new MemorySessionStore(IDLE, 1000, UNUSED);
    await store.opened('s', EXP, NOW);
    expect(await store.touch('s', EXP, NOW + UNUSED / 2)).toBe('ok');
    expect(await store.touch('s', EXP, NOW + UNUSED)).toBe('ok');
    expect(await store.touch('s', EXP, NOW + UNUSED + 1)).toBe('idle');
    // Ended for good: establishing it later does not bring it back.
    await store.established('s', EXP, NOW + UNUSED + 2);
    expect(await store.touch('s', EXP, NOW + UNUSED + 3)).toBe('idle');
  });

  it('once established, the sliding idle clock applies', async () => {
    const store = new MemorySessionStore(IDLE, 1000, UNUSED);
    await store.opened('s', EXP, NOW);
    await store.established('s', EXP, NOW + 10);
    expect(await store.touch('s', EXP, NOW + 10 + IDLE)).toBe('ok');
    expect(await store.touch('s', EXP, NOW + 10 + 2 * IDLE)).toBe('ok');
    expect(await store.touch('s', EXP, NOW + 10 + 3 * IDLE + 1)).toBe('idle');
  });

  it('end (a session cap chose the session): refused like an idle one, and a loop of them never fills the store', async () => {
    const store = new MemorySessionStore(IDLE, 3, UNUSED);
    await store.opened('s', EXP, NOW);
    await store.established('s', EXP, NOW + 1);
    await store.end('s', EXP, NOW + 2);
    expect(await store.touch('s', EXP, NOW + 3)).toBe('idle');
    // Unlike revocations (kept until exp, refused when they fill the store), ended clocks are forgotten first.
    for (let i = 0; i < 50; i++) {
      await store.opened(`e${i}`, EXP, NOW + 4);
      await store.end(`e${i}`, EXP, NOW + 4);
    }
    expect(store.size).toBe(3);
    await expect(store.opened('next', EXP, NOW + 5)).resolves.toBeUndefined();
  });

  it('without an unused timeout (code-built stores) a new session has the idle timeout; a bad one is refused', () => {
    expect(() => new MemorySessionStore(IDLE, 1000, IDLE + 1)).toThrow(TypeError);
    expect(() => new MemorySessionStore(IDLE, 1000, 0)).toThrow(TypeError);
  });
});

const redisUp = await probeRedis();

describeRedis(redisUp)('RedisSessionStore: sessions not yet used', () => {
  const redis = redisClient();
  const prefix = `gatehouse-test:${randomBytes(6).toString('hex')}:session:`;
  afterAll(async () => {
    const left = await redis.keys(`${prefix}*`);
    if (left.length > 0) await redis.del(...left);
    redis.disconnect();
  });
  const store = new RedisSessionStore(redis, { keyPrefix: prefix, idleTimeoutMs: IDLE, unusedTimeoutMs: UNUSED });
  const seen = (jti: string): string => `${prefix}{${jti}}:seen`;

  it('gives a new session the unused timeout, keeps it through touches, and the idle clock once established', async () => {
    const now = Date.now();
    await store.opened('a', now + 3600_000, now);
    expect(await redis.pttl(seen('a'))).toBeLessThanOrEqual(UNUSED);
    expect(await store.touch('a', now + 3600_000, now)).toBe('ok');
    expect(await redis.pttl(seen('a'))).toBeLessThanOrEqual(UNUSED);
    await store.established('a', now + 3600_000, now);
    expect(await redis.pttl(seen('a'))).toBeGreaterThan(UNUSED);
    expect(await store.touch('a', now + 3600_000, now)).toBe('ok');
    expect(await redis.pttl(seen('a'))).toBeGreaterThan(UNUSED);
  });

  it('end leaves no key behind, and the session is refused', async () => {
    const now = Date.now();
    await store.opened('c', now + 3600_000, now);
    await store.established('c', now + 3600_000, now);
    await store.end('c');
    expect(await redis.keys(`${prefix}{c}*`)).toEqual([]);
    expect(await store.touch('c', now + 3600_000, now)).toBe('idle');
  });

  it('a session whose unused clock ran out stays ended: establishing it creates nothing', async () => {
    const now = Date.now();
    await store.opened('b', now + 3600_000, now);
    await redis.del(seen('b')); // as when its expiry passes
    expect(await store.touch('b', now + 3600_000, now)).toBe('idle');
    await store.established('b', now + 3600_000, now);
    expect(await redis.exists(seen('b'))).toBe(0);
    expect(await store.touch('b', now + 3600_000, now)).toBe('idle');
  });
});
