/**
 * The cache step and the memory store in isolation (docs/policy.md "Result cache"): what makes two calls one entry,
 * what keeps them apart (cache poisoning), what is never stored, and the store's bounds.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/audit-sink.js';
import type { Principal } from '../../src/identity/principal.js';
import type { JsonObject } from '../../src/lib/json-rpc.js';
import type { Call } from '../../src/mcp/call.js';
import { ResultCache } from '../../src/mcp/result-cache.js';
import { cacheStep } from '../../src/mcp/steps/cache.js';
import type { AllowDecision } from '../../src/policy/decision.js';
import { MemoryResultStore } from '../../src/stores/results/memory-result-store.js';

const who = (subject: string): Principal => ({ subject, groups: [], anonymous: false, scopes: new Set() });

function harness(scope: 'principal' | 'public' = 'principal', perCallerCredentials = false) {
  const store = new MemoryResultStore({ maxEntries: 100, maxBytes: 1 << 20 });
  const cache = new ResultCache(store, pino({ level: 'silent' }));
  let forwarded = 0;
  let answer: (args: JsonObject | undefined) => JsonObject = (args) => ({
    content: [{ type: 'text', text: JSON.stringify(args) }],
  });
  const decision: AllowDecision = {
    effect: 'allow',
    ruleId: 'r',
    policyRevision: 'rev1',
    cache: { ttlMs: 30_000, scope },
  };
  const run = async (
    args: JsonObject,
    principal = who('alice'),
    uri?: string,
  ): Promise<{ result: JsonObject; event: AuditEvent }> => {
    const event: AuditEvent = { type: 'mcp.request' } as AuditEvent;
    const target =
      uri === undefined
        ? { kind: 'tool', name: 'up__t', upstream: 'up', original: 't' }
        : { kind: 'template', name: 'file:///{path}', upstream: 'up', original: 'file:///{path}' };
    const call = {
      ctx: { principal, protocolVersion: '2025-11-25', event, params: uri === undefined ? {} : { uri } },
      deps: { results: cache, credentials: perCallerCredentials ? new Map([['up', {}]]) : undefined },
      target: { ...target, quarantined: false, definition: undefined },
      args,
      decision,
    } as unknown as Call;
    const result = await cacheStep.run(call, (c) => {
      forwarded++;
      return Promise.resolve(answer(c.args));
    });
    return { result, event };
  };
  return {
    run,
    store,
    cache,
    forwarded: () => forwarded,
    setAnswer: (f: typeof answer) => (answer = f),
  };
}

describe('cache step', () => {
  it('canonical arguments: key order is the same call, "1" and 1 are not', async () => {
    const h = harness();
    await h.run({ a: 1, b: 2 });
    const again = await h.run({ b: 2, a: 1 });
    expect(again.event.cache).toBe('hit');
    expect(h.forwarded()).toBe(1);
    const str = await h.run({ a: '1', b: 2 });
    expect(str.event.cache).toBe('miss');
    expect(h.forwarded()).toBe(2);
    expect((str.result.content as { text: string }[])[0]!.text).toBe('{"a":"1","b":2}');
  });

  it("scope principal: one caller never gets another caller's entry", async () => {
    const h = harness();
    h.setAnswer(() => ({ content: [{ type: 'text', text: 'alice-secret' }] }));
    await h.run({ q: 1 }, who('alice'));
    h.setAnswer(() => ({ content: [{ type: 'text', text: 'bob' }] }));
    const bob = await h.run({ q: 1 }, who('bob'));
    expect(bob.event.cache).toBe('miss');
    expect(JSON.stringify(bob.result)).not.toContain('alice-secret');
  });

  it('scope public is shared, but an upstream cacheScope private narrows it to the caller', async () => {
    const h = harness('public');
    await h.run({ q: 1 }, who('alice'));
    expect((await h.run({ q: 1 }, who('bob'))).event.cache).toBe('hit');
    h.setAnswer(() => ({ content: [], cacheScope: 'private', ttlMs: 60_000 }));
    await h.run({ q: 2 }, who('alice'));
    expect((await h.run({ q: 2 }, who('bob'))).event.cache).toBe('miss');
    expect((await h.run({ q: 2 }, who('alice'))).event.cache).toBe('hit');
  });

  it('scope public is per caller at an upstream called with per-caller credentials', async () => {
    const h = harness('public', true);
    await h.run({ q: 1 }, who('alice'));
    expect((await h.run({ q: 1 }, who('bob'))).event.cache).toBe('miss');
  });

  it('never stores isError, input_required or ttlMs 0 results', async () => {
    const h = harness();
    for (const answer of [
      { isError: true, content: [] },
      { resultType: 'input_required', inputRequests: {} },
      { content: [], ttlMs: 0 },
    ]) {
      h.setAnswer(() => answer);
      await h.run({ x: JSON.stringify(answer) });
      expect((await h.run({ x: JSON.stringify(answer) })).event.cache).toBe('miss');
    }
  });

  it('an upstream bump (list_changed) and a policy revision change stop old entries matching', async () => {
    const h = harness();
    await h.run({ q: 1 });
    h.cache.invalidateUpstreams(['up']);
    await Promise.resolve();
    expect((await h.run({ q: 1 })).event.cache).toBe('miss');
    await h.store.bump(ResultCache.targetGen('up', 'up__t'));
    expect((await h.run({ q: 1 })).event.cache).toBe('miss');
  });

  it('a resource read is keyed by its URI, not by the template that matched it', async () => {
    const h = harness();
    await h.run({}, who('alice'), 'file:///a');
    expect((await h.run({}, who('alice'), 'file:///b')).event.cache).toBe('miss');
    expect((await h.run({}, who('alice'), 'file:///a')).event.cache).toBe('hit');
  });

  it('collapses concurrent identical misses', async () => {
    const h = harness();
    const all = await Promise.all([1, 2, 3, 4].map(() => h.run({ q: 9 })));
    expect(h.forwarded()).toBe(1);
    expect(all.filter((r) => r.event.cache === 'hit')).toHaveLength(3);
  });
});

describe('memory result store', () => {
  it('evicts the least recently used past maxEntries and maxBytes, and expires by ttl', async () => {
    let now = 0;
    const s = new MemoryResultStore({ maxEntries: 2, maxBytes: 1000, now: () => now });
    await s.set('c:a', 'A', 1000);
    await s.set('c:b', 'B', 1000);
    await s.get('c:a');
    await s.set('c:c', 'C', 1000);
    expect(await s.get('c:b')).toBeUndefined();
    expect(await s.get('c:a')).toBe('A');
    await s.set('c:big', 'x'.repeat(600), 1000);
    expect(s.size.bytes).toBeLessThanOrEqual(1000);
    now = 5000;
    expect(await s.get('c:a')).toBeUndefined();
  });

  it('evicts cached reads before idempotency claims', async () => {
    const s = new MemoryResultStore({ maxEntries: 2, maxBytes: 10_000 });
    const claim = await s.claim('i:k', 'f', 1000);
    for (const k of ['c:1', 'c:2', 'c:3']) await s.set(k, 'v', 1000);
    expect(claim.state).toBe('claimed');
    expect(await s.claim('i:k', 'f', 1000)).toEqual({ state: 'pending', fingerprint: 'f' });
  });

  it('claims are exclusive; a released claim can be taken again; a completed one replays', async () => {
    const s = new MemoryResultStore({ maxEntries: 10, maxBytes: 10_000 });
    const first = await s.claim('i:k', 'f1', 1000);
    expect(first.state).toBe('claimed');
    expect(await s.claim('i:k', 'f1', 1000)).toEqual({ state: 'pending', fingerprint: 'f1' });
    if (first.state === 'claimed') await s.release('i:k', first.token);
    const second = await s.claim('i:k', 'f1', 1000);
    expect(second.state).toBe('claimed');
    if (second.state === 'claimed') await s.complete('i:k', second.token, 'f1', '{"ok":1}', 1000);
    expect(await s.claim('i:k', 'f2', 1000)).toEqual({ state: 'done', fingerprint: 'f1', result: '{"ok":1}' });
  });
});
