/**
 * The single-node `RateLimiter`: buckets and leases in this process's memory (the default store). Bounded: at
 * most `maxKeys` keys; expired keys (full buckets, leases past their expiry) are swept on a timer and whenever
 * the table is full. A table still full after a sweep makes the store unavailable — never silently forget a
 * live bucket, which would hand its owner a fresh budget — and each limit's `onStoreError` decides.
 */
import { assertRateSpec, gcra } from './gcra.js';
import {
  CONCURRENCY_RETRY_MS,
  LimiterUnavailableError,
  type AdmitRequest,
  type AdmitResult,
  type ConsumeResult,
  type RateLimiter,
  type RateSpec,
} from './rate-limiter.js';

export interface MemoryLimiterOptions {
  /** Epoch ms; injected for tests. Default `Date.now`. */
  now?: () => number;
  /** Keys (buckets + lease sets) kept at most. Default 100 000. */
  maxKeys?: number;
  /** Sweep period. Default 30 s; 0 disables the timer (tests sweep through the table-full path or `sweep()`). */
  sweepEveryMs?: number;
}

const EMPTY: number[] = [];

export class MemoryLimiter implements RateLimiter {
  readonly #now: () => number;
  readonly #maxKeys: number;
  /**
   * key → theoretical arrival time, as whole ms (`at`) plus a fraction, and GCRA runs on the debt `tat − now`
   * (at most tau), never on epoch ms: at ~1.8e12 a double's step is ~0.24 µs, so adding a sub-millisecond
   * emission interval (the config allows 60 ns) to an absolute time would round it away and the bucket would
   * never empty. The Redis script keeps the same form.
   */
  readonly #tats = new Map<string, { at: number; frac: number }>();
  /** key → leaseId → expiry (ms). */
  readonly #leases = new Map<string, Map<string, number>>();
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: MemoryLimiterOptions = {}) {
    this.#now = opts.now ?? Date.now;
    this.#maxKeys = opts.maxKeys ?? 100_000;
    if (!Number.isSafeInteger(this.#maxKeys) || this.#maxKeys < 1)
      throw new TypeError('"maxKeys" must be a positive integer');
    const every = opts.sweepEveryMs ?? 30_000;
    if (every > 0) {
      this.#timer = setInterval(() => this.sweep(), every);
      this.#timer.unref();
    }
  }

  /** Keys held now (buckets + lease sets). */
  get size(): number {
    return this.#tats.size + this.#leases.size;
  }

  async consume(key: string, rate: RateSpec): Promise<ConsumeResult> {
    const r = await this.admit({ rates: [{ key, rate }], leases: [], leaseId: '', leaseTtlMs: 1 });
    return r.ok
      ? { ok: true, retryAfterMs: 0, remaining: r.remaining }
      : { ok: false, retryAfterMs: r.retryAfterMs, remaining: 0 };
  }

  admit(request: AdmitRequest): Promise<AdmitResult> {
    try {
      return Promise.resolve(this.#admit(request));
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  #admit(request: AdmitRequest): AdmitResult {
    // Index loops and one small array: this runs on every limited call (no iterator or closure per call).
    const { rates, leases } = request;
    const now = this.#now();
    const next = rates.length === 0 ? EMPTY : new Array<number>(rates.length);
    let remaining = Infinity;
    let fresh = 0;
    for (let index = 0; index < rates.length; index++) {
      const { key, rate } = rates[index]!;
      assertRateSpec(rate);
      const held = this.#tats.get(key);
      if (held === undefined) fresh++;
      // Relative to now: the debt in, the new debt out.
      const r = gcra(held === undefined ? undefined : held.at - now + held.frac, 0, rate);
      if (!r.ok) return { ok: false, kind: 'rate', index, retryAfterMs: r.retryAfterMs };
      next[index] = r.tat;
      remaining = Math.min(remaining, r.remaining);
    }
    for (let index = 0; index < leases.length; index++) {
      const { key, max } = leases[index]!;
      const set = this.#leases.get(key);
      if (set === undefined) {
        fresh++;
        continue;
      }
      for (const [id, expires] of set) if (expires <= now) set.delete(id);
      if (set.size >= max) return { ok: false, kind: 'concurrency', index, retryAfterMs: CONCURRENCY_RETRY_MS };
    }
    if (fresh > 0 && this.size + fresh > this.#maxKeys) {
      this.sweep();
      // The sweep may have dropped some of this request's own (full) buckets: count again.
      fresh = 0;
      for (const { key } of rates) if (!this.#tats.has(key)) fresh++;
      for (const { key } of leases) if (!this.#leases.has(key)) fresh++;
      if (this.size + fresh > this.#maxKeys)
        throw new LimiterUnavailableError(`memory limiter full (${this.#maxKeys} keys)`);
    }
    for (let i = 0; i < rates.length; i++) {
      const key = rates[i]!.key;
      const debt = next[i]!;
      const whole = Math.floor(debt);
      const held = this.#tats.get(key);
      // Updated in place when the bucket exists: no object per call.
      if (held === undefined) this.#tats.set(key, { at: now + whole, frac: debt - whole });
      else {
        held.at = now + whole;
        held.frac = debt - whole;
      }
    }
    for (const { key } of leases) {
      let set = this.#leases.get(key);
      if (set === undefined) this.#leases.set(key, (set = new Map()));
      set.set(request.leaseId, now + request.leaseTtlMs);
    }
    return { ok: true, remaining };
  }

  release(keys: readonly string[], leaseId: string): Promise<void> {
    for (const key of keys) {
      const set = this.#leases.get(key);
      if (set === undefined) continue;
      set.delete(leaseId);
      if (set.size === 0) this.#leases.delete(key);
    }
    return Promise.resolve();
  }

  /** Forget full buckets (`tat` passed: the key would start from a full bucket anyway) and expired leases. */
  sweep(): void {
    const now = this.#now();
    for (const [key, { at, frac }] of this.#tats) if (at - now + frac <= 0) this.#tats.delete(key);
    for (const [key, set] of this.#leases) {
      for (const [id, expires] of set) if (expires <= now) set.delete(id);
      if (set.size === 0) this.#leases.delete(key);
    }
  }

  close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    return Promise.resolve();
  }
}
