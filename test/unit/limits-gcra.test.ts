/**
 * GCRA arithmetic and the memory limiter with an injected clock: burst, refill, exact retryAfterMs,
 * all-or-nothing admission, leases (release, expiry), and bounded memory with sweeping.
 */
import { describe, expect, it } from 'vitest';
import { gcra } from '../../src/stores/rate-limits/gcra.js';
import {
  CONCURRENCY_RETRY_MS,
  LimiterUnavailableError,
  type RateSpec,
} from '../../src/stores/rate-limits/rate-limiter.js';
import { MemoryLimiter } from '../../src/stores/rate-limits/memory-limiter.js';

const perMinute = (count: number, burst = count): RateSpec => ({ count, periodMs: 60_000, burst });

describe('gcra', () => {
  it('lets a full bucket of `burst` through at once, then refuses with the exact wait for one emission interval', () => {
    const rate = perMinute(6, 3); // T = 10 s, bucket of 3
    let tat: number | undefined;
    const now = 1_000_000;
    const remaining: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = gcra(tat, now, rate);
      if (!r.ok) throw new Error(`call ${i} refused`);
      tat = r.tat;
      remaining.push(r.remaining);
    }
    expect(remaining).toEqual([2, 1, 0]);
    expect(tat).toBe(now + 30_000);
    expect(gcra(tat, now, rate)).toEqual({ ok: false, retryAfterMs: 10_000 });
    expect(gcra(tat, now + 4_000, rate)).toEqual({ ok: false, retryAfterMs: 6_000 });
    expect(gcra(tat, now + 9_999, rate)).toEqual({ ok: false, retryAfterMs: 1 });
    // One interval later exactly one token is back.
    const later = gcra(tat, now + 10_000, rate);
    expect(later).toEqual({ ok: true, tat: now + 40_000, remaining: 0 });
  });

  it('refills at the sustained rate and never beyond the burst', () => {
    const rate = perMinute(60, 5); // T = 1 s
    const first = gcra(undefined, 0, rate);
    expect(first).toEqual({ ok: true, tat: 1000, remaining: 4 });
    // An hour idle: still only 5 at once.
    const now = 3_600_000;
    let tat: number | undefined = 1000;
    for (let i = 0; i < 5; i++) {
      const r = gcra(tat, now, rate);
      expect(r.ok).toBe(true);
      if (r.ok) tat = r.tat;
    }
    expect(gcra(tat, now, rate)).toEqual({ ok: false, retryAfterMs: 1000 });
  });

  it('rounds a fractional wait up to whole milliseconds (7 per day)', () => {
    const rate: RateSpec = { count: 7, periodMs: 86_400_000, burst: 1 };
    const r = gcra(undefined, 0, rate);
    expect(r.ok).toBe(true);
    const refused = gcra(r.ok ? r.tat : 0, 0, rate);
    expect(refused).toEqual({ ok: false, retryAfterMs: Math.ceil(86_400_000 / 7) });
  });
});

describe('MemoryLimiter', () => {
  function limiter(opts: { maxKeys?: number } = {}): { store: MemoryLimiter; clock: { now: number } } {
    const clock = { now: 5_000_000 };
    return { store: new MemoryLimiter({ now: () => clock.now, sweepEveryMs: 0, ...opts }), clock };
  }

  it('consume: burst, then refusal with retryAfterMs, then refill as the clock moves', async () => {
    const { store, clock } = limiter();
    const rate = perMinute(2); // T = 30 s, burst 2
    expect(await store.consume('k', rate)).toEqual({ ok: true, retryAfterMs: 0, remaining: 1 });
    expect(await store.consume('k', rate)).toEqual({ ok: true, retryAfterMs: 0, remaining: 0 });
    expect(await store.consume('k', rate)).toEqual({ ok: false, retryAfterMs: 30_000, remaining: 0 });
    clock.now += 29_000;
    expect(await store.consume('k', rate)).toEqual({ ok: false, retryAfterMs: 1000, remaining: 0 });
    clock.now += 1000;
    expect(await store.consume('k', rate)).toEqual({ ok: true, retryAfterMs: 0, remaining: 0 });
    // Another key has its own bucket.
    expect((await store.consume('other', rate)).ok).toBe(true);
  });

  it('counts exactly at a wall-clock epoch even when one interval is far below a millisecond', async () => {
    // At epoch ms (~1.8e12) a double's step is ~0.24 µs: adding T = 60 ns (perMinute 1e9) to an absolute
    // arrival time changes nothing, so a bucket kept in epoch ms would never empty.
    const clock = { now: 1_764_000_000_000 };
    const store = new MemoryLimiter({ now: () => clock.now, sweepEveryMs: 0 });
    const rate: RateSpec = { count: 1_000_000_000, periodMs: 60_000, burst: 5 };
    const seen = [];
    for (let i = 0; i < 6; i++) seen.push(await store.consume('fine', rate));
    expect(seen.map((r) => r.ok)).toEqual([true, true, true, true, true, false]);
    expect(seen.map((r) => r.remaining)).toEqual([4, 3, 2, 1, 0, 0]);
    await store.close();
  });

  it('admit is all-or-nothing: a refused bucket spends nothing from the others', async () => {
    const { store } = limiter();
    const roomy = perMinute(100);
    const tight = perMinute(1);
    expect(
      await store.admit({
        rates: [
          { key: 'a', rate: roomy },
          { key: 'b', rate: tight },
        ],
        leases: [],
        leaseId: 'x',
        leaseTtlMs: 1000,
      }),
    ).toEqual({ ok: true, remaining: 0 });
    expect(
      await store.admit({
        rates: [
          { key: 'a', rate: roomy },
          { key: 'b', rate: tight },
        ],
        leases: [],
        leaseId: 'y',
        leaseTtlMs: 1000,
      }),
    ).toEqual({ ok: false, kind: 'rate', index: 1, retryAfterMs: 60_000 });
    // `a` was charged once only: 98 left after this one.
    expect(await store.consume('a', roomy)).toEqual({ ok: true, retryAfterMs: 0, remaining: 98 });
  });

  it('leases: the (max+1)th is refused until one is released; a refused lease takes no token', async () => {
    const { store } = limiter();
    const rate = perMinute(10);
    const req = (id: string) => ({
      rates: [{ key: 'r', rate }],
      leases: [{ key: 'c', max: 2 }],
      leaseId: id,
      leaseTtlMs: 60_000,
    });
    expect((await store.admit(req('1'))).ok).toBe(true);
    expect((await store.admit(req('2'))).ok).toBe(true);
    expect(await store.admit(req('3'))).toEqual({
      ok: false,
      kind: 'concurrency',
      index: 0,
      retryAfterMs: CONCURRENCY_RETRY_MS,
    });
    await store.release(['c'], '1');
    expect((await store.admit(req('4'))).ok).toBe(true);
    // 3 tokens spent (1, 2, 4), not 4.
    expect(await store.consume('r', rate)).toEqual({ ok: true, retryAfterMs: 0, remaining: 6 });
  });

  it('a lease never released (a crashed call) expires after its TTL', async () => {
    const { store, clock } = limiter();
    const req = (id: string) => ({ rates: [], leases: [{ key: 'c', max: 1 }], leaseId: id, leaseTtlMs: 5000 });
    expect((await store.admit(req('lost'))).ok).toBe(true);
    expect((await store.admit(req('next'))).ok).toBe(false);
    clock.now += 5000;
    expect((await store.admit(req('next'))).ok).toBe(true);
  });

  it('is bounded: full buckets are swept, and a table still full refuses with LimiterUnavailableError', async () => {
    const { store, clock } = limiter({ maxKeys: 3 });
    const rate = perMinute(60, 1); // T = 1 s: a key is forgettable 1 s after use
    for (const k of ['a', 'b', 'c']) expect((await store.consume(k, rate)).ok).toBe(true);
    expect(store.size).toBe(3);
    await expect(store.consume('d', rate)).rejects.toBeInstanceOf(LimiterUnavailableError);
    // Known keys still work while full.
    expect((await store.consume('a', rate)).ok).toBe(false);
    clock.now += 1000;
    expect((await store.consume('d', rate)).ok).toBe(true);
    expect(store.size).toBe(1);
    store.sweep();
    await store.close();
  });
});
