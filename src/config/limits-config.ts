import { credentialKind, INLINE_SECRET_MESSAGE, type SecretRef } from './secrets.js';
import type {
  LimitDimension,
  LimitRuleConfig,
  LimitsConfig,
  RateLimitSpec,
  RedisConfig,
  SecretValue,
  StoreErrorMode,
} from './types.js';

/**
 * The `redis` and `limits` sections (docs/configuration.md "Rate limits and quotas"). Defaults are spread into
 * `CONFIG_DEFAULTS`; the schema's `default` annotations repeat them (test/unit/limits-config.test.ts keeps both equal).
 */
export const LIMITS_DEFAULTS = {
  redis: { keyPrefix: 'gatehouse:', connectTimeoutMs: 5000, commandTimeoutMs: 1000 },
  limits: { store: 'memory' as const, onStoreError: 'closed' as const, rules: [] as never[] },
} as const;

export interface RawRedis {
  url: string | SecretRef;
  keyPrefix?: string;
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
}

type RawRate = { [K in 'perSecond' | 'perMinute' | 'perHour' | 'perDay']?: number } & { burst?: number };

export interface RawLimits {
  store?: LimitsConfig['store'];
  onStoreError?: StoreErrorMode;
  rules?: {
    id: string;
    per?: LimitDimension[];
    tools?: string[];
    rate?: RawRate;
    concurrency?: number;
    onStoreError?: StoreErrorMode;
  }[];
}

export interface LimitsContext {
  report(pointer: string, message: string): void;
  resolveSecret(ref: SecretRef, pointer: string): SecretValue | undefined;
}

const PERIODS = { perSecond: 1000, perMinute: 60_000, perHour: 3_600_000, perDay: 86_400_000 } as const;

/** `redis`: the URL is checked like `auth.builtin.store.url` — a password only through a secret reference. */
export function normaliseRedis(raw: RawRedis, ctx: LimitsContext): RedisConfig | undefined {
  const d = LIMITS_DEFAULTS.redis;
  const rest = {
    keyPrefix: raw.keyPrefix ?? d.keyPrefix,
    connectTimeoutMs: raw.connectTimeoutMs ?? d.connectTimeoutMs,
    commandTimeoutMs: raw.commandTimeoutMs ?? d.commandTimeoutMs,
  };
  if (typeof raw.url === 'string') {
    // Userinfo, or a `password` query parameter (ioredis reads its options from the query string too).
    if (
      credentialKind(raw.url) !== undefined ||
      /^[a-z]+:\/\/[^/@]*@/i.test(raw.url) ||
      /[?&]password=/i.test(raw.url)
    ) {
      ctx.report('/redis/url', `${INLINE_SECRET_MESSAGE} (the URL carries credentials)`);
      return undefined;
    }
    checkRedisUrl(raw.url, '/redis/url', undefined, (p, m) => ctx.report(p, m));
    return { url: raw.url, ...rest };
  }
  const pointer = `/redis/url/${'fromEnv' in raw.url ? 'fromEnv' : 'fromFile'}`;
  const url = ctx.resolveSecret(raw.url, '/redis/url');
  if (url === undefined) return undefined;
  checkRedisUrl(url.reveal(), pointer, url.source, (p, m) => ctx.report(p, m));
  return { url, ...rest };
}

/** `limits`: each rule's period is exactly one of perSecond…perDay; ids are unique; `redis` store needs `redis`. */
export function normaliseLimits(raw: RawLimits, hasRedis: boolean, ctx: LimitsContext): LimitsConfig {
  const d = LIMITS_DEFAULTS.limits;
  const store = raw.store ?? d.store;
  const onStoreError = raw.onStoreError ?? d.onStoreError;
  if (store === 'redis' && !hasRedis)
    ctx.report('/limits/store', 'is "redis" but there is no top-level redis section (redis.url) to connect with');
  const seen = new Set<string>();
  const rules: LimitRuleConfig[] = [];
  (raw.rules ?? []).forEach((r, i) => {
    const at = `/limits/rules/${i}`;
    if (seen.has(r.id)) ctx.report(`${at}/id`, `duplicate limit id "${r.id}"`);
    seen.add(r.id);
    if (r.rate === undefined && r.concurrency === undefined)
      ctx.report(at, `limit "${r.id}" has neither rate nor concurrency`);
    const rate = r.rate === undefined ? undefined : normaliseRate(r.rate, `${at}/rate`, ctx);
    rules.push({
      id: r.id,
      per: [...new Set(r.per ?? [])],
      ...(r.tools !== undefined ? { tools: r.tools } : {}),
      ...(rate !== undefined ? { rate } : {}),
      ...(r.concurrency !== undefined ? { concurrency: r.concurrency } : {}),
      onStoreError: r.onStoreError ?? onStoreError,
    });
  });
  return { store, onStoreError, rules };
}

function normaliseRate(raw: RawRate, pointer: string, ctx: LimitsContext): RateLimitSpec | undefined {
  const periods = (Object.keys(PERIODS) as (keyof typeof PERIODS)[]).filter((k) => raw[k] !== undefined);
  if (periods.length !== 1) {
    ctx.report(
      pointer,
      periods.length === 0
        ? 'needs one of perSecond, perMinute, perHour, perDay'
        : `has ${periods.join(' and ')}: give exactly one period (one rule per period for several)`,
    );
    return undefined;
  }
  const period = periods[0]!;
  const count = raw[period]!;
  return { count, periodMs: PERIODS[period], burst: raw.burst ?? count };
}

/** redis:// or rediss://, a host. `source` set: the URL is a secret, so messages never quote it. Also for `auth.builtin.store.url`. */
export function checkRedisUrl(
  raw: string,
  pointer: string,
  source: string | undefined,
  report: LimitsContext['report'],
): void {
  const what = source === undefined ? 'is' : `the secret from ${source} is`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    report(pointer, `${what} not a valid URL`);
    return;
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:')
    report(pointer, `${what} not a redis:// or rediss:// URL`);
  else if (url.hostname === '') report(pointer, `${what} a URL without a host`);
}
