/**
 * Builds the `AsStore` the config names: memory (one node) or Redis (many replicas, docs/architecture.md §7).
 */
import type { BuiltinAsConfig } from '../../config/types.js';
import type { AsStore } from './as-store.js';
import { newRedis } from '../redis/ioredis.js';
import { MemoryAsStore } from './memory-as-store.js';
import { RedisAsStore } from './redis-as-store.js';

export function createAsStore(
  config: BuiltinAsConfig['store'],
  onError: (err: Error) => void = () => undefined,
): AsStore {
  switch (config.kind) {
    case 'memory':
      return new MemoryAsStore();
    case 'redis': {
      // Fail a command fast rather than queueing it forever while Redis is away: a login waits at most a few seconds.
      const url = typeof config.url === 'string' ? config.url : config.url.reveal();
      const redis = newRedis(url, { maxRetriesPerRequest: 2, connectTimeout: 5000, lazyConnect: false });
      // ioredis emits 'error' on every failed reconnect; unhandled, Node prints it as a crash-looking stack. The
      // message (never the URL, which may hold a password) goes to the caller's log; commands fail on their own.
      redis.on('error', (err: Error) => onError(err));
      return new RedisAsStore(redis, { keyPrefix: config.keyPrefix });
    }
  }
}
