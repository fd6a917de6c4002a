/**
 * gatehouse-redis's Redis (shared with others on this machine): is it answering, and the keys under a run's
 * prefix, counted and removed — by SCAN + UNLINK, never FLUSH.
 */
import { execFileSync } from 'node:child_process';
import { Redis } from 'ioredis';

/** Why Redis cannot be used (undefined: it answers PING). */
export async function redisUnavailable(url: string): Promise<string | undefined> {
  const r = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 1000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  // The 'error' event carries the cause (ECONNREFUSED …); the rejected promise only says the connection closed.
  let cause: string | undefined;
  r.on('error', (err: Error) => {
    cause ??= err.message;
  });
  try {
    await r.connect();
    const pong = await r.ping();
    return pong === 'PONG' ? undefined : `PING answered ${pong}`;
  } catch (err) {
    return cause ?? (err instanceof Error ? err.message : String(err));
  } finally {
    r.disconnect();
  }
}

/** Calls `each` with every batch of keys under `prefix` (SCAN, on a short-lived connection; Redis is shared). */
async function scanPrefix(
  url: string,
  prefix: string,
  each: (r: Redis, keys: string[]) => Promise<void>,
): Promise<void> {
  const r = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 1000,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
  r.on('error', () => {});
  try {
    await r.connect();
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await each(r, keys);
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
}

/** Removes every key under `prefix` (SCAN + UNLINK: never FLUSH, Redis is shared). */
export async function deleteRedisPrefix(url: string, prefix: string): Promise<number> {
  let removed = 0;
  try {
    await scanPrefix(url, prefix, async (r, keys) => {
      removed += await r.unlink(...keys);
    });
  } catch (err) {
    process.stderr.write(
      `bench: could not remove the Redis keys under ${prefix}: ${err instanceof Error ? err.message : String(err)}\n`,
    );
  }
  return removed;
}

export async function countRedisKeys(url: string, prefix: string): Promise<number> {
  let n = 0;
  try {
    await scanPrefix(url, prefix, async (_r, keys) => {
      n += keys.length;
    });
  } catch {
    return -1;
  }
  return n;
}

/** Key prefixes of gatehouse-redis instances still running (removed from Redis on the way out too) → their Redis. */
const redisPrefixes = new Map<string, string>();

export function trackRedisPrefix(url: string, prefix: string): void {
  redisPrefixes.set(prefix, url);
}

export function untrackRedisPrefix(prefix: string): void {
  redisPrefixes.delete(prefix);
}

/** Redis keys of a gatehouse-redis interrupted half-way: best effort, in a child (exit handlers cannot wait). */
export function unlinkLivePrefixesSync(): void {
  for (const [prefix, url] of redisPrefixes) {
    try {
      const u = new URL(url);
      const where = ['-h', u.hostname, '-p', u.port || '6379'];
      execFileSync('redis-cli', [...where, '--scan', '--pattern', `${prefix}*`], { encoding: 'utf8', timeout: 5000 })
        .split('\n')
        .filter(Boolean)
        .forEach((key) => execFileSync('redis-cli', [...where, 'UNLINK', key], { timeout: 2000 }));
    } catch {
      // no redis-cli, or Redis gone
    }
  }
  redisPrefixes.clear();
}
