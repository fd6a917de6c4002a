import type { RateSpec } from './rate-limiter.js';

/**
 * GCRA — the generic cell rate algorithm (ITU-T I.371), the token bucket expressed as one number per key: the
 * theoretical arrival time `tat` of the next call at the sustained rate. Emission interval `T = period / count`;
 * a full bucket lets `burst` calls through at once, i.e. a call at `now` is allowed when
 * `max(tat, now) + T - now <= burst · T`. Pure: the clock is an argument. `src/stores/rate-limits/redis-limiter.ts` runs
 * the same arithmetic in Lua with Redis's own clock.
 *
 * The stores call it relative to now (`tat` = what is owed, `now` = 0): with epoch ms (~1.8e12, a double's step
 * ~0.24 µs) a sub-millisecond interval added to `tat` would round away.
 */
export type GcraResult =
  | {
      readonly ok: true;
      /** The new theoretical arrival time; the key may be forgotten once `now >= tat` (bucket full). */ readonly tat: number;
      readonly remaining: number;
    }
  | { readonly ok: false; /** Rounded up to whole ms. */ readonly retryAfterMs: number };

export function emissionInterval(rate: RateSpec): number {
  return rate.periodMs / rate.count;
}

export function gcra(tat: number | undefined, now: number, rate: RateSpec): GcraResult {
  const t = emissionInterval(rate);
  const tau = rate.burst * t;
  const next = Math.max(tat ?? now, now) + t;
  const over = next - now - tau;
  if (over > 0) return { ok: false, retryAfterMs: Math.max(1, Math.ceil(over)) };
  return { ok: true, tat: next, remaining: Math.floor((tau - (next - now)) / t + 1e-9) };
}

/** A spec must describe a positive, finite rate (the config loader guarantees it; stores check again). */
export function assertRateSpec(rate: RateSpec): void {
  const ok =
    Number.isSafeInteger(rate.count) &&
    rate.count > 0 &&
    Number.isSafeInteger(rate.periodMs) &&
    rate.periodMs > 0 &&
    Number.isSafeInteger(rate.burst) &&
    rate.burst > 0;
  if (!ok) throw new TypeError(`invalid rate: ${JSON.stringify(rate)}`);
}
