/**
 * Builds the `AsStore` the config names: memory (one node) or Redis (many replicas, DESIGN.md §7).
 */
import { Redis } from 'ioredis';
import type { BuiltinAsConfig } from '../config/types.js';
import type { AsStore } from './as-store.js';
import { MemoryAsStore } from './memory-as-store.js';
import { RedisAsStore } from './redis-as-store.js';

export function createAsStore(config: BuiltinAsConfig['store']): AsStore {
  switch (config.kind) {
    case 'memory':
      return new MemoryAsStore();
    case 'redis': {
      // Fail a command fast rather than queueing it forever while Redis is away: a login waits at most a few seconds.
      const url = typeof config.url === 'string' ? config.url : config.url.reveal();
      const redis = new Redis(url, { maxRetriesPerRequest: 2, connectTimeout: 5000, lazyConnect: false });
      return new RedisAsStore(redis, { keyPrefix: config.keyPrefix });
    }
  }
}
