/**
 * CallLimiter remembers each call's buckets and lease sets per principal object and tool (the verified-token
 * cache gives every request with one token the same principal). A remembered plan must be used only when
 * every other input is the same: another upstream, allow rule or policy limit builds the right plan, and the
 * keys are exactly those a fresh principal with the same identity gets.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/audit-sink.js';
import type { LimitRuleConfig } from '../../src/config/types.js';
import { GatewayError } from '../../src/errors/gateway-error.js';
import type { Principal } from '../../src/identity/principal.js';
import { CallLimiter, type LimitedCall } from '../../src/mcp/limits.js';
import type { AllowDecision } from '../../src/policy/decision.js';
import type { AdmitRequest, RateLimiter } from '../../src/stores/rate-limits/rate-limiter.js';
import { MemoryLimiter } from '../../src/stores/rate-limits/memory-limiter.js';

const principal = (subject: string): Principal =>
  Object.freeze({
    subject,
    issuer: 'https://idp',
    clientId: 'app',
    scopes: new Set<string>(),
    groups: [],
    anonymous: false,
  });
const ALLOW: AllowDecision = { effect: 'allow', ruleId: 'r.allow', policyRevision: 'rev' };
const call = (p: Principal, tool: string, upstream: string, decision = ALLOW): LimitedCall => ({
  principal: p,
  tool,
  upstream,
  decision,
  maxDurationMs: 1000,
});
const perHour = (count: number) => ({ count, periodMs: 3_600_000, burst: count });
const logger = pino({ level: 'silent' });

function recording(): { store: RateLimiter; requests: AdmitRequest[] } {
  const memory = new MemoryLimiter({ sweepEveryMs: 0, now: () => 1e12 });
  const requests: AdmitRequest[] = [];
  const store: RateLimiter = {
    consume: (k, r) => memory.consume(k, r),
    admit: (r) => (requests.push(r), memory.admit(r)),
    release: (k, id) => memory.release(k, id),
    close: () => memory.close(),
  };
  return { store, requests };
}

async function outcome(l: CallLimiter, c: LimitedCall): Promise<{ ok: boolean; rule?: string }> {
  const event: AuditEvent = { type: 'mcp.request' };
  try {
    (await l.admit(c, event)).release();
    return { ok: true };
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err;
    return { ok: false, ...(event.rule !== undefined ? { rule: event.rule } : {}) };
  }
}

describe('CallLimiter plan memo', () => {
  it('the same principal object on another upstream gets that upstream’s budget', async () => {
    const rules: LimitRuleConfig[] = [{ id: 'u', per: ['upstream'], onStoreError: 'closed', rate: perHour(1) }];
    const limits = new CallLimiter({
      limits: { store: 'memory', onStoreError: 'closed', rules },
      store: new MemoryLimiter({ sweepEveryMs: 0, now: () => 1e12 }),
      logger,
    });
    const alice = principal('alice');
    expect((await outcome(limits, call(alice, 'x__t', 'up1'))).ok).toBe(true);
    expect((await outcome(limits, call(alice, 'x__t', 'up2'))).ok).toBe(true);
    expect(await outcome(limits, call(alice, 'x__t', 'up1'))).toEqual({ ok: false, rule: 'u' });
    expect(await outcome(limits, call(alice, 'x__t', 'up2'))).toEqual({ ok: false, rule: 'u' });
  });

  it('another allow rule or other policy limits for the same principal and tool are applied, not the remembered ones', async () => {
    const { store, requests } = recording();
    const limits = new CallLimiter({ limits: { store: 'memory', onStoreError: 'closed', rules: [] }, store, logger });
    const alice = principal('alice');
    expect((await outcome(limits, call(alice, 'x__t', 'x'))).ok).toBe(true);
    expect(requests).toHaveLength(0); // no limit applies: the store is not asked
    const first: AllowDecision = { ...ALLOW, ruleId: 'r.first', limits: { rate: { perMinute: 1, burst: 1 } } };
    const second: AllowDecision = { ...ALLOW, ruleId: 'r.second', limits: { rate: { perMinute: 1, burst: 1 } } };
    expect((await outcome(limits, call(alice, 'x__t', 'x', first))).ok).toBe(true);
    // The same budget (principal + tool), refused in the name of the rule that applied now.
    expect(await outcome(limits, call(alice, 'x__t', 'x', second))).toEqual({ ok: false, rule: 'r.second' });
    const roomier: AllowDecision = { ...ALLOW, ruleId: 'r.second', limits: { rate: { perMinute: 1, burst: 5 } } };
    expect((await outcome(limits, call(alice, 'x__t', 'x', roomier))).ok).toBe(true);
    expect(requests.at(-1)!.rates[0]!.rate).toEqual({ count: 1, periodMs: 60_000, burst: 5 });
    const leased: AllowDecision = { ...roomier, limits: { ...roomier.limits, concurrency: 1 } };
    const event: AuditEvent = { type: 'mcp.request' };
    const held = await limits.admit(call(alice, 'x__t', 'x', leased), event);
    expect(requests.at(-1)!.leases).toHaveLength(1);
    expect(await outcome(limits, call(alice, 'x__t', 'x', leased))).toEqual({ ok: false, rule: 'r.second' });
    held.release();
    expect((await outcome(limits, call(alice, 'x__t', 'x', leased))).ok).toBe(true);
  });

  it('keys are the same for a remembered plan as for a fresh principal with the same identity', async () => {
    const rules: LimitRuleConfig[] = [
      { id: 'g', per: [], onStoreError: 'closed', rate: perHour(100) },
      {
        id: 's',
        per: ['subject', 'client', 'tool', 'upstream'],
        onStoreError: 'closed',
        rate: perHour(100),
        concurrency: 5,
      },
    ];
    const { store, requests } = recording();
    const limits = new CallLimiter({ limits: { store: 'memory', onStoreError: 'closed', rules }, store, logger });
    const decision: AllowDecision = { ...ALLOW, limits: { rate: { perMinute: 100, burst: 100 }, concurrency: 3 } };
    const alice = principal('alice');
    await outcome(limits, call(alice, 'x__t', 'x', decision));
    await outcome(limits, call(alice, 'x__t', 'x', decision));
    await outcome(limits, call(principal('alice'), 'x__t', 'x', decision));
    await outcome(limits, call(principal('bob'), 'x__t', 'x', decision));
    const keys = requests.map((r) => [...r.rates.map((x) => x.key), ...r.leases.map((x) => x.key)]);
    expect(keys[0]).toHaveLength(5);
    expect(keys[1]).toEqual(keys[0]);
    expect(keys[2]).toEqual(keys[0]);
    // Another subject shares only the global bucket.
    expect(keys[3]!.filter((k) => keys[0]!.includes(k))).toEqual([keys[0]![0]]);
    // Each call leases under its own id.
    expect(new Set(requests.map((r) => r.leaseId)).size).toBe(4);
  });
});
