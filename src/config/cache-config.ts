import type { CacheConfig } from './types.js';

/**
 * The `cache` section (docs/configuration.md "Result cache and idempotency"): where the policy's `cache:` results and
 * `idempotency:` keys live. Defaults are spread into `CONFIG_DEFAULTS`; the schema's `default` annotations repeat them.
 */
export const CACHE_DEFAULTS = {
  cache: { store: 'memory' as const, maxEntries: 10_000, maxBytes: 64 * 1024 * 1024 },
} as const;

export interface RawCache {
  store?: CacheConfig['store'];
  maxEntries?: number;
  maxBytes?: number;
}

/** `cache.store: redis` needs the top-level `redis` section. */
export function normaliseCache(
  raw: RawCache,
  hasRedis: boolean,
  report: (pointer: string, message: string) => void,
): CacheConfig {
  const d = CACHE_DEFAULTS.cache;
  const store = raw.store ?? d.store;
  if (store === 'redis' && !hasRedis) report('/cache/store', 'is redis, but the top-level `redis` section is missing');
  return { store, maxEntries: raw.maxEntries ?? d.maxEntries, maxBytes: raw.maxBytes ?? d.maxBytes };
}
