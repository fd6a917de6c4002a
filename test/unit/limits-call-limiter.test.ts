/**
 * CallLimiter: which limits apply to a call (tool globs, per subject/client/tool/upstream, global, policy
 * limits), the refusal it throws and the audit fields it sets, and the fail modes when the store is down.
 */
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import type { AuditEvent } from '../../src/audit/audit-sink.js';
import type { LimitRuleConfig, LimitsConfig } from '../../src/config/types.js';
import { GatewayError } from '../../src/errors/gateway-error.js';
import type { Principal } from '../../src/identity/principal.js';
import { auditErrorCode, CallLimiter, type LimitedCall } from '../../src/mcp/limits.js';
import type { AllowDecision } from '../../src/policy/decision.js';
import { LimiterUnavailableError, type RateLimiter } from '../../src/stores/rate-limits/rate-limiter.js';
import { MemoryLimiter } from '../../src/stores/rate-limits/memory-limiter.js';

const principal = (subject: string, clientId?: string, issuer = 'https://idp'): Principal => ({
  subject,
  issuer,
  ...(clientId ? { clientId } : {}),
  scopes: new Set(),
  groups: [],
  anonymous: false,
});
const ALLOW: AllowDecision = { effect: 'allow', ruleId: 'r.allow', policyRevision: 'rev' };
const call = (p: Principal, tool = 'fx__echo', upstream = 'fx', decision = ALLOW): LimitedCall => ({
  principal: p,
  tool,
  upstream,
  decision,
  maxDurationMs: 1000,
});
const rule = (r: Partial<LimitRuleConfig> & { id: string }): LimitRuleConfig => ({
  per: [],
  onStoreError: 'closed',
  ...r,
});
const perHour = (count: number) => ({ count, periodMs: 3_600_000, burst: count });

function limiter(
  rules: LimitRuleConfig[],
  store: RateLimiter = new MemoryLimiter({ sweepEveryMs: 0, now: () => 1e12 }),
  onStoreError: LimitsConfig['onStoreError'] = 'closed',
  now = () => 0,
) {
  const lines: { msg: string }[] = [];
  const logger = pino({ level: 'debug' }, { write: (l: string) => void lines.push(JSON.parse(l) as { msg: string }) });
  return { limits: new CallLimiter({ limits: { store: 'memory', onStoreError, rules }, store, logger, now }), lines };
}

async function outcome(
  l: CallLimiter,
  c: LimitedCall,
): Promise<{ ok: boolean; code?: string; event: AuditEvent; retryAfterMs?: number }> {
  const event: AuditEvent = { type: 'mcp.request' };
  try {
    (await l.admit(c, event)).release();
    return { ok: true, event };
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err;
    return { ok: false, code: err.code, event, retryAfterMs: (err.data as { retryAfterMs: number }).retryAfterMs };
  }
}

describe('CallLimiter', () => {
  it('a global rule is one budget for everyone; tool globs choose the tools it covers', async () => {
    const { limits } = limiter([rule({ id: 'g', tools: ['fx__e*'], rate: perHour(2) })]);
    expect((await outcome(limits, call(principal('a')))).ok).toBe(true);
    expect((await outcome(limits, call(principal('b')))).ok).toBe(true);
    const refused = await outcome(limits, call(principal('c'), 'fx__echo2'));
    expect(refused).toMatchObject({
      ok: false,
      code: 'GW_MCP_RATE_LIMITED',
      event: { decision: 'deny', rule: 'g', reason: 'rate_limited' },
    });
    expect(refused.retryAfterMs).toBe(1_800_000);
    expect((await outcome(limits, call(principal('c'), 'fx__add'))).ok).toBe(true);
  });

  it('per subject counts issuer + subject; per client the client id; per upstream the upstream; per tool the tool', async () => {
    const { limits } = limiter([
      rule({ id: 's', per: ['subject'], tools: ['s__*'], rate: perHour(1) }),
      rule({ id: 'c', per: ['client'], tools: ['c__*'], rate: perHour(1) }),
      rule({ id: 'u', per: ['upstream'], tools: ['u*'], rate: perHour(1) }),
      rule({ id: 't', per: ['tool'], tools: ['t__*'], rate: perHour(1) }),
    ]);
    expect((await outcome(limits, call(principal('alice'), 's__x'))).ok).toBe(true);
    expect((await outcome(limits, call(principal('alice'), 's__y'))).ok).toBe(false);
    expect((await outcome(limits, call(principal('alice', undefined, 'https://other-idp'), 's__x'))).ok).toBe(true);
    expect((await outcome(limits, call(principal('alice', 'app-1'), 'c__x'))).ok).toBe(true);
    expect((await outcome(limits, call(principal('bob', 'app-1'), 'c__x'))).ok).toBe(false);
    expect((await outcome(limits, call(principal('bob', 'app-2'), 'c__x'))).ok).toBe(true);
    expect((await outcome(limits, call(principal('a'), 'u__x', 'up1'))).ok).toBe(true);
    expect((await outcome(limits, call(principal('b'), 'u__y', 'up1'))).ok).toBe(false);
    expect((await outcome(limits, call(principal('b'), 'u__y', 'up2'))).ok).toBe(true);
    expect((await outcome(limits, call(principal('a'), 't__x'))).ok).toBe(true);
    expect((await outcome(limits, call(principal('b'), 't__x'))).ok).toBe(false);
    expect((await outcome(limits, call(principal('b'), 't__y'))).ok).toBe(true);
  });

  it("enforces the policy decision's limits per principal and tool, naming the allow rule", async () => {
    const { limits } = limiter([]);
    const decision: AllowDecision = { ...ALLOW, limits: { rate: { perMinute: 1, burst: 1 } } };
    expect((await outcome(limits, call(principal('a'), 'fx__echo', 'fx', decision))).ok).toBe(true);
    const refused = await outcome(limits, call(principal('a'), 'fx__echo', 'fx', decision));
    expect(refused).toMatchObject({
      ok: false,
      code: 'GW_MCP_RATE_LIMITED',
      retryAfterMs: 60_000,
      event: { rule: 'r.allow' },
    });
    expect((await outcome(limits, call(principal('a'), 'fx__add', 'fx', decision))).ok).toBe(true);
    expect((await outcome(limits, call(principal('b'), 'fx__echo', 'fx', decision))).ok).toBe(true);
  });

  it('store down: a closed limit refuses with GW_MCP_LIMITER_UNAVAILABLE; only-open limits allow, logged once per 30 s', async () => {
    const down: RateLimiter = {
      consume: () => Promise.reject(new LimiterUnavailableError('redis: Connection is closed.')),
      admit: () => Promise.reject(new LimiterUnavailableError('redis: Connection is closed.')),
      release: () => Promise.resolve(),
      close: () => Promise.resolve(),
    };
    const clock = { now: 0 };
    const { limits, lines } = limiter(
      [
        rule({ id: 'closed', tools: ['c__*'], rate: perHour(5) }),
        rule({ id: 'open', tools: ['*'], rate: perHour(5), onStoreError: 'open' }),
      ],
      down,
      'closed',
      () => clock.now,
    );
    const refused = await outcome(limits, call(principal('a'), 'c__x'));
    expect(refused).toMatchObject({
      ok: false,
      code: 'GW_MCP_LIMITER_UNAVAILABLE',
      retryAfterMs: 1000,
      event: { decision: 'deny', rule: 'closed', reason: 'limiter_unavailable' },
    });
    expect(auditErrorCode('GW_MCP_LIMITER_UNAVAILABLE')).toBe('limiter_unavailable');
    for (let i = 0; i < 5; i++) expect((await outcome(limits, call(principal('a'), 'o__x'))).ok).toBe(true);
    clock.now += 30_000;
    expect((await outcome(limits, call(principal('a'), 'o__x'))).ok).toBe(true);
    expect(lines.filter((l) => l.msg.startsWith('limits store unavailable'))).toHaveLength(2);
    expect(limits.counters).toEqual({ openPassed: 6, storeErrors: 7 });
    expect(limits.hasFailClosed).toBe(true);
  });

  it('a lease the store could not take back (Redis blip) is released again, not left to its expiry', async () => {
    vi.useFakeTimers();
    try {
      const memory = new MemoryLimiter({ sweepEveryMs: 0 });
      let failures = 2;
      const releases: string[][] = [];
      const flaky: RateLimiter = {
        consume: (k, r) => memory.consume(k, r),
        admit: (r) => memory.admit(r),
        release: (keys, id) => {
          releases.push([...keys]);
          if (failures-- > 0) return Promise.reject(new LimiterUnavailableError('redis: Connection is closed.'));
          return memory.release(keys, id);
        },
        close: () => memory.close(),
      };
      // maxDurationMs 10 min: without a retry the slot would stay taken for 10.5 min.
      const { limits } = limiter([rule({ id: 'one', per: ['subject'], concurrency: 1 })], flaky);
      const c = { ...call(principal('alice')), maxDurationMs: 600_000 };
      (await limits.admit(c, { type: 'mcp.request' })).release();
      await vi.advanceTimersByTimeAsync(10_000);
      expect(releases).toHaveLength(3);
      expect((await outcome(limits, c)).ok).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });

  it('no applicable limit: no store call at all', async () => {
    let calls = 0;
    const counting: RateLimiter = {
      consume: () => Promise.reject(new Error('no')),
      admit: () => (calls++, Promise.reject(new Error('no'))),
      release: () => Promise.resolve(),
      close: () => Promise.resolve(),
    };
    const { limits } = limiter([rule({ id: 'x', tools: ['other__*'], rate: perHour(1) })], counting);
    expect((await outcome(limits, call(principal('a')))).ok).toBe(true);
    expect(calls).toBe(0);
  });
});
