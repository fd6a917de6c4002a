/**
 * Builds the `SessionStore` `sessions.store` names (docs/architecture.md §7): memory (one replica) or Redis on the
 * shared connection (`redis` section, src/stores/redis/redis-client.ts), under `<redis.keyPrefix>session:`.
 */
import type { GatehouseConfig } from '../../config/types.js';
import type { SessionStore } from './session-store.js';
import { MemorySessionStore } from './memory-session-store.js';
import type { RedisHandle } from '../redis/redis-client.js';
import { RedisSessionStore } from './redis-session-store.js';

export function createSessionStore(config: GatehouseConfig, redis: RedisHandle | undefined): SessionStore {
  const idleTimeoutMs = config.server.sessionIdleTimeoutMs;
  // Absent in code-built configs: no shorter clock for sessions not yet used.
  const unusedTimeoutMs = config.sessions?.unusedTimeoutMs ?? idleTimeoutMs;
  if ((config.sessions?.store ?? 'memory') === 'memory')
    return new MemorySessionStore(idleTimeoutMs, config.sessions?.memoryMaxEntries, unusedTimeoutMs);
  // The loader refuses `store: redis` without a redis section; a config built in code could still get here.
  if (redis === undefined)
    throw new TypeError('sessions.store redis needs the shared Redis connection (the redis section)');
  return new RedisSessionStore(redis.client, {
    keyPrefix: `${redis.keyPrefix}session:`,
    idleTimeoutMs,
    unusedTimeoutMs,
  });
}
