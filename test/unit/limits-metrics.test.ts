/**
 * What the limits and the edge's refusals show in metrics: a coalesced `http.rejected` record counts every
 * refusal it stands for, and the calls a fail-open limit let through while its store was down (and the store
 * failures) are counters read from the CallLimiter at scrape time.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/audit-sink.js';
import { CallLimiter } from '../../src/mcp/limits.js';
import { LimiterUnavailableError, type RateLimiter } from '../../src/stores/rate-limits/rate-limiter.js';
import { shutdownTestMeters, testMeter } from '../helpers/test-meter.js';

afterEach(shutdownTestMeters);

const down: RateLimiter = {
  consume: () => Promise.reject(new LimiterUnavailableError('redis: down')),
  admit: () => Promise.reject(new LimiterUnavailableError('redis: down')),
  release: () => Promise.resolve(),
  close: () => Promise.resolve(),
};

describe('limits in metrics', () => {
  it('a coalesced http.rejected record counts the refusals it stands for', async () => {
    const { metrics, read } = testMeter();
    metrics.observe({ type: 'http.rejected', reason: 'rate_limited', status: 429 });
    metrics.observe({ type: 'http.rejected', reason: 'rate_limited', status: 429, count: 41 });
    expect((await read()).sum('mcp_http_rejections_total', { reason: 'rate_limited', status: '429' })).toBe(42);
  });

  it('calls let through by a fail-open limit while the store is down, and store failures, are counted', async () => {
    const limiter = new CallLimiter({
      limits: {
        store: 'redis',
        onStoreError: 'open',
        rules: [{ id: 'global', per: [], rate: { count: 10, periodMs: 60_000, burst: 10 }, onStoreError: 'open' }],
      },
      store: down,
      logger: pino({ level: 'silent' }),
    });
    const { read } = testMeter({ limits: () => limiter.counters });
    const call = {
      principal: { subject: 'alice', issuer: 'https://as', scopes: [], anonymous: false },
      tool: 'fx__echo',
      upstream: 'fx',
      decision: { effect: 'allow', ruleId: 'r', policyRevision: 'p' },
      maxDurationMs: 1000,
    } as unknown as Parameters<CallLimiter['admit']>[0];
    for (let i = 0; i < 3; i++) {
      const event: AuditEvent = { type: 'mcp.request' };
      (await limiter.admit(call, event)).release();
      expect(event.detail).toMatch(/allowed by onStoreError open/);
    }
    const s = await read();
    expect(s.sum('mcp_ratelimit_fail_open_total')).toBe(3);
    expect(s.sum('mcp_ratelimit_store_errors_total')).toBe(3);
  });
});
