/**
 * Redis for tests. Redis-backed suites run when Redis answers at `GATEHOUSE_TEST_REDIS_URL`
 * (default redis://127.0.0.1:6379); when it does not, they FAIL under CI (`process.env.CI` set) — a CI
 * without Redis must not pass silently — and are skipped locally with a hint on how to start it.
 */
import { Redis } from 'ioredis';
import { describe, it } from 'vitest';

export const REDIS_URL = process.env.GATEHOUSE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const START_REDIS_HINT = 'start Redis: redis-server --daemonize yes';

/** True when a PING answers within `timeoutMs`. Never retries, never leaves a connection open. */
export async function probeRedis(url = REDIS_URL, timeoutMs = 1000): Promise<boolean> {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

/** A fresh client for one test file; the caller quits it. */
export function redisClient(url = REDIS_URL): Redis {
  return new Redis(url, { maxRetriesPerRequest: 1, connectTimeout: 2000 });
}

/**
 * `describe` for a Redis-backed suite: the real one when Redis answers; otherwise a suite with one failing
 * test under CI, or a skipped suite (and a console hint) locally.
 */
export function describeRedis(available: boolean): (name: string, body: () => void) => void {
  if (available) return (name, body) => describe(name, body);
  if (process.env.CI) {
    return (name) =>
      describe(name, () => {
        it('needs Redis', () => {
          throw new Error(`Redis is not reachable at ${REDIS_URL} and CI is set: ${START_REDIS_HINT}`);
        });
      });
  }
  return (name, body) => {
    console.warn(`[gatehouse tests] skipping "${name}": Redis is not reachable at ${REDIS_URL} (${START_REDIS_HINT})`);
    describe.skip(`${name} (${START_REDIS_HINT})`, body);
  };
}
