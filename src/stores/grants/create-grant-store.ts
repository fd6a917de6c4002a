/** Builds the `GrantStore` `outbound.oauth.store` names (only app.ts and main.ts call this). */
import type { OutboundOAuthConfig } from '../../config/types.js';
import type { RedisHandle } from '../redis/redis-client.js';
import type { GrantStore } from './grant-store.js';
import { MemoryGrantStore } from './memory-grant-store.js';
import { RedisGrantStore } from './redis-grant-store.js';

export function createGrantStore(config: OutboundOAuthConfig, redis: RedisHandle | undefined): GrantStore {
  if (config.store === 'redis') {
    if (redis === undefined) throw new TypeError('outbound.oauth.store redis: no redis connection');
    return new RedisGrantStore(redis.client, { keyPrefix: `${redis.keyPrefix}grants:` });
  }
  return new MemoryGrantStore(config.memoryMaxEntries);
}
