/**
 * ioredis, loaded on first use (issue 8, ready ≤ 1 s): its module graph costs ~60 ms at every start, and only a
 * configuration with Redis needs it. ioredis is CommonJS only, so `require` returns the very module object a
 * static `import` gets (one instance, no dual-package hazard); only the types are imported statically.
 */
import { createRequire } from 'node:module';
import type { Redis, RedisOptions } from 'ioredis';

let RedisClass: typeof Redis | undefined;

/** `new Redis(url, options)`, loading ioredis the first time. */
export function newRedis(url: string, options: RedisOptions): Redis {
  RedisClass ??= (createRequire(import.meta.url)('ioredis') as { Redis: typeof Redis }).Redis;
  return new RedisClass(url, options);
}
