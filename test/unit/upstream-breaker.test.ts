/**
 * Upstream resilience, unit level: the circuit breaker state machine (clock injected), the call gate (bounded
 * in-flight calls and queue) and the retry rules of `Resilience` (idempotent reads only, transient failures only).
 * The integration side, against real fixture servers, is test/integration/upstream-resilience.test.ts.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import type { UpstreamResilienceConfig } from '../../src/config/types.js';
import { ConfigError } from '../../src/errors/config-error.js';
import { GatewayError } from '../../src/errors/gateway-error.js';
import { Cancellation } from '../../src/lib/cancellation.js';
import { SseParser } from '../../src/lib/sse.js';
import type { JsonObject } from '../../src/lib/json-rpc.js';
import { CircuitBreaker, type BreakerState } from '../../src/upstream/breaker.js';
import { CallGate } from '../../src/upstream/call-gate.js';
import { Resilience, type AttemptTarget } from '../../src/upstream/resilience.js';
import { globToRegExp, isIdempotent } from '../../src/upstream/retry-policy.js';
import type { CallOptions } from '../../src/upstream/rpc-peer.js';

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

function breaker(threshold = 3, openMs = 1000): { b: CircuitBreaker; c: ReturnType<typeof clock>; moves: string[] } {
  const c = clock();
  const moves: string[] = [];
  const b = new CircuitBreaker({ failureThreshold: threshold, openMs }, c.now, (to: BreakerState, from: BreakerState) =>
    moves.push(`${from}->${to}`),
  );
  return { b, c, moves };
}

describe('CircuitBreaker', () => {
  it('stays closed below the threshold; a success resets the count', () => {
    const { b, moves } = breaker(3);
    b.failure(false);
    b.failure(false);
    b.success(false);
    b.failure(false);
    b.failure(false);
    expect(b.state).toBe('closed');
    expect(b.snapshot()).toEqual({ state: 'closed', consecutiveFailures: 2 });
    expect(b.admit()).toEqual({ ok: true, probe: false });
    expect(moves).toEqual([]);
  });

  it('opens after N consecutive failures and fails fast with the time left until the probe', () => {
    const { b, c, moves } = breaker(3, 1000);
    for (let i = 0; i < 3; i++) b.failure(false);
    expect(b.state).toBe('open');
    expect(moves).toEqual(['closed->open']);
    c.advance(400);
    expect(b.admit()).toEqual({ ok: false, retryAfterMs: 600 });
    expect(b.snapshot()).toEqual({ state: 'open', consecutiveFailures: 3, retryAfterMs: 600 });
  });

  it('after openMs lets exactly ONE probe through; a successful probe closes it', () => {
    const { b, c, moves } = breaker(2, 1000);
    b.failure(false);
    b.failure(false);
    c.advance(999);
    expect(b.admit().ok).toBe(false);
    c.advance(1);
    expect(b.state).toBe('half-open');
    expect(b.admit()).toEqual({ ok: true, probe: true });
    // While the probe is out, everyone else still fails fast.
    expect(b.admit()).toEqual({ ok: false, retryAfterMs: 0 });
    expect(b.admit().ok).toBe(false);
    b.success(true);
    expect(b.state).toBe('closed');
    expect(b.snapshot().consecutiveFailures).toBe(0);
    expect(b.admit()).toEqual({ ok: true, probe: false });
    expect(moves).toEqual(['closed->open', 'open->half-open', 'half-open->closed']);
  });

  it('a failed probe re-opens it for another openMs', () => {
    const { b, c, moves } = breaker(1, 500);
    b.failure(false);
    c.advance(500);
    const probe = b.admit();
    expect(probe).toEqual({ ok: true, probe: true });
    c.advance(100);
    b.failure(true);
    expect(b.state).toBe('open');
    expect(b.admit()).toEqual({ ok: false, retryAfterMs: 500 });
    c.advance(500);
    expect(b.admit()).toEqual({ ok: true, probe: true });
    expect(moves).toEqual(['closed->open', 'open->half-open', 'half-open->open', 'open->half-open']);
  });

  it('a probe that ends with no verdict (cancelled) hands the probe slot back, still half-open', () => {
    const { b, c } = breaker(1, 100);
    b.failure(false);
    c.advance(100);
    expect(b.admit()).toEqual({ ok: true, probe: true });
    b.release(true);
    expect(b.state).toBe('half-open');
    expect(b.admit()).toEqual({ ok: true, probe: true });
  });

  it('late outcomes of calls admitted before it opened do not close or re-open it', () => {
    const { b, c } = breaker(2, 1000);
    b.failure(false);
    b.failure(false);
    b.success(false); // a slow call that was admitted while closed
    expect(b.state).toBe('open');
    c.advance(1000);
    expect(b.admit().ok).toBe(true);
    b.failure(false); // another straggler: the probe decides, not it
    expect(b.state).toBe('half-open');
  });

  it('refuses nonsense options at construction', () => {
    expect(() => new CircuitBreaker({ failureThreshold: 0, openMs: 10 })).toThrow(TypeError);
    expect(() => new CircuitBreaker({ failureThreshold: 1.5, openMs: 10 })).toThrow(TypeError);
    expect(() => new CircuitBreaker({ failureThreshold: 1, openMs: -1 })).toThrow(TypeError);
  });
});

describe('CallGate', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('admits maxInFlight at once, queues maxQueued in order, refuses the rest at once with GW_UPSTREAM_BUSY', async () => {
    const gate = new CallGate({ maxInFlight: 2, maxQueued: 1, queueTimeoutMs: 60_000 }, 'upstream t');
    const r1 = await gate.acquire();
    const r2 = await gate.acquire();
    const order: string[] = [];
    const queued = gate.acquire().then((r) => {
      order.push('queued');
      return r;
    });
    await expect(gate.acquire()).rejects.toMatchObject({ code: 'GW_UPSTREAM_BUSY' });
    expect(gate.inFlight).toBe(2);
    expect(gate.queued).toBe(1);
    r1();
    r1(); // twice is once
    const r3 = await queued;
    expect(order).toEqual(['queued']);
    expect(gate.inFlight).toBe(2);
    expect(gate.queued).toBe(0);
    r2();
    r3();
    expect(gate.inFlight).toBe(0);
  });

  it('maxQueued 0 refuses as soon as every slot is taken', async () => {
    const gate = new CallGate({ maxInFlight: 1, maxQueued: 0, queueTimeoutMs: 1000 }, 'upstream t');
    const r = await gate.acquire();
    await expect(gate.acquire()).rejects.toBeInstanceOf(GatewayError);
    r();
    (await gate.acquire())();
  });

  it('tryAcquire takes a free slot at once, and none while all are taken or a call queues (no overtaking)', async () => {
    const gate = new CallGate({ maxInFlight: 1, maxQueued: 1, queueTimeoutMs: 60_000 }, 'upstream t');
    const r1 = gate.tryAcquire();
    expect(r1).toBeTypeOf('function');
    expect(gate.inFlight).toBe(1);
    expect(gate.tryAcquire()).toBeUndefined();
    const queued = gate.acquire();
    r1?.();
    // The slot went to the queued call, not to a newcomer.
    expect(gate.tryAcquire()).toBeUndefined();
    const r2 = await queued;
    expect(gate.inFlight).toBe(1);
    r2();
    expect(gate.inFlight).toBe(0);
    const r3 = gate.tryAcquire();
    expect(gate.inFlight).toBe(1);
    r3?.();
    r3?.(); // twice is once
    expect(gate.inFlight).toBe(0);
  });

  it('a queued call gives up after queueTimeoutMs (or the call deadline), and when its client cancels', async () => {
    vi.useFakeTimers();
    const gate = new CallGate({ maxInFlight: 1, maxQueued: 5, queueTimeoutMs: 1000 }, 'upstream t');
    const hold = await gate.acquire();
    const waitLong = gate.acquire();
    const waitShort = gate.acquire(undefined, 200);
    const cancel = new Cancellation();
    const waitCancelled = gate.acquire(cancel);
    const outcomes = Promise.allSettled([waitLong, waitShort, waitCancelled]);
    cancel.abort();
    await vi.advanceTimersByTimeAsync(1000);
    const [long, short, cancelled] = await outcomes;
    expect(long).toMatchObject({ status: 'rejected', reason: { code: 'GW_UPSTREAM_BUSY' } });
    expect(short).toMatchObject({
      status: 'rejected',
      reason: { code: 'GW_UPSTREAM_BUSY', detail: expect.stringContaining('200 ms') },
    });
    expect(cancelled).toMatchObject({ status: 'rejected', reason: { code: 'GW_MCP_REQUEST_CANCELLED' } });
    expect(gate.queued).toBe(0);
    hold();
    expect(gate.inFlight).toBe(0);
  });
});

describe('retry rules', () => {
  it('reads are idempotent; tools/call only for the listed original names', () => {
    const m = ['get_*', 'search'].map(globToRegExp);
    for (const method of [
      'tools/list',
      'resources/list',
      'resources/templates/list',
      'resources/read',
      'prompts/list',
      'prompts/get',
    ])
      expect(isIdempotent(method, {}, [])).toBe(true);
    expect(isIdempotent('tools/call', { name: 'get_order' }, m)).toBe(true);
    expect(isIdempotent('tools/call', { name: 'search' }, m)).toBe(true);
    expect(isIdempotent('tools/call', { name: 'search2' }, m)).toBe(false);
    expect(isIdempotent('tools/call', { name: 'delete_order' }, m)).toBe(false);
    expect(isIdempotent('completion/complete', {}, m)).toBe(false);
    expect(globToRegExp('a.b?c').test('a.bxc')).toBe(true);
    expect(globToRegExp('a.b?c').test('aXbxc')).toBe(false);
  });
});

const CONFIG: UpstreamResilienceConfig = {
  maxInFlight: 4,
  maxQueued: 4,
  queueTimeoutMs: 1000,
  breaker: { enabled: true, failureThreshold: 3, openMs: 60_000 },
  retry: { attempts: 3, backoffMs: 1, tools: ['read_*'] },
};
const OPTS: CallOptions = { timeoutMs: 5000, maxTotalTimeoutMs: 5000 };

/** A target that fails with the queued errors in turn, then answers. */
function target(failures: GatewayError[]): AttemptTarget & { sent: number } {
  const t = {
    sent: 0,
    notReady: () => undefined,
    send: (): Promise<JsonObject> => {
      t.sent++;
      const err = failures.shift();
      return err ? Promise.reject(err) : Promise.resolve({ ok: true });
    },
  };
  return t;
}

const unavailable = (): GatewayError => new GatewayError('GW_UPSTREAM_UNAVAILABLE', { detail: 'connection reset' });

describe('Resilience', () => {
  it('retries an idempotent read after transport failures, up to attempts', async () => {
    const r = new Resilience({ config: CONFIG, label: 'upstream t' });
    const t = target([unavailable(), new GatewayError('GW_UPSTREAM_TIMEOUT')]);
    await expect(r.call('resources/read', { uri: 'x' }, OPTS, t)).resolves.toEqual({ ok: true });
    expect(t.sent).toBe(3);
    const t2 = target([unavailable(), unavailable(), unavailable()]);
    await expect(r.call('tools/call', { name: 'read_thing' }, OPTS, t2)).rejects.toMatchObject({
      code: 'GW_UPSTREAM_UNAVAILABLE',
    });
    expect(t2.sent).toBe(3);
  });

  it('never retries a tool not marked idempotent, a JSON-RPC error answer, or a cancelled call', async () => {
    const r = new Resilience({ config: CONFIG, label: 'upstream t' });
    const write = target([unavailable()]);
    await expect(r.call('tools/call', { name: 'write_thing' }, OPTS, write)).rejects.toMatchObject({
      code: 'GW_UPSTREAM_UNAVAILABLE',
    });
    expect(write.sent).toBe(1);
    const answered = target([new GatewayError('GW_UPSTREAM_INVALID_PARAMS')]);
    await expect(r.call('tools/call', { name: 'read_thing' }, OPTS, answered)).rejects.toMatchObject({
      code: 'GW_UPSTREAM_INVALID_PARAMS',
    });
    expect(answered.sent).toBe(1);
    const cancel = new Cancellation();
    const cancelled: AttemptTarget & { sent: number } = {
      sent: 0,
      notReady: () => undefined,
      send() {
        this.sent++;
        cancel.abort();
        return Promise.reject(unavailable());
      },
    };
    await expect(r.call('tools/list', {}, { ...OPTS, cancel }, cancelled)).rejects.toMatchObject({
      code: 'GW_UPSTREAM_UNAVAILABLE',
    });
    expect(cancelled.sent).toBe(1);
  });

  it('does not retry past the overall deadline', async () => {
    const r = new Resilience({
      config: { ...CONFIG, retry: { attempts: 5, backoffMs: 400, tools: [] } },
      label: 'upstream t',
    });
    const t = target([unavailable(), unavailable(), unavailable(), unavailable()]);
    await expect(r.call('tools/list', {}, { timeoutMs: 300, maxTotalTimeoutMs: 300 }, t)).rejects.toMatchObject({
      code: 'GW_UPSTREAM_UNAVAILABLE',
    });
    expect(t.sent).toBe(1);
  });

  it('counts transport failures (not JSON-RPC errors) towards the breaker, then fails fast without sending', async () => {
    const moves: string[] = [];
    const c = clock();
    const r = new Resilience({
      config: { ...CONFIG, retry: { attempts: 1, backoffMs: 1, tools: [] } },
      label: 'upstream t',
      now: c.now,
      onBreaker: (to) => moves.push(to),
    });
    for (let i = 0; i < 5; i++)
      await r
        .call('tools/call', { name: 'x' }, OPTS, target([new GatewayError('GW_UPSTREAM_REJECTED')]))
        .catch(() => undefined);
    expect(r.snapshot().breaker?.state).toBe('closed');
    for (let i = 0; i < 3; i++)
      await r.call('tools/call', { name: 'x' }, OPTS, target([unavailable()])).catch(() => undefined);
    expect(moves).toEqual(['open']);
    const t = target([]);
    const err = await r.call('tools/call', { name: 'x' }, OPTS, t).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'GW_UPSTREAM_CIRCUIT_OPEN', data: { retryAfterMs: 60_000 } });
    expect(t.sent).toBe(0);
    c.advance(60_000);
    await expect(r.call('tools/call', { name: 'x' }, OPTS, t)).resolves.toEqual({ ok: true });
    expect(moves).toEqual(['open', 'half-open', 'closed']);
    expect(r.snapshot()).toEqual({ breaker: { state: 'closed', consecutiveFailures: 0 }, inFlight: 0, queued: 0 });
  });
});

describe('Resilience: whose timeout it was', () => {
  it('a timeout under a deadline shorter than the upstream’s own timeoutMs (a policy timeoutMs) does not count towards the breaker', async () => {
    const moves: string[] = [];
    const config = { ...CONFIG, timeoutMs: 5000, retry: { attempts: 1, backoffMs: 1, tools: [] } };
    const r = new Resilience({ config, label: 'upstream t', onBreaker: (to) => moves.push(to) });
    const timeout = () => target([new GatewayError('GW_UPSTREAM_TIMEOUT')]);
    // One principal's policy gives its calls 200 ms: their timeouts say nothing about the upstream, and must not
    // open the breaker for everybody else.
    for (let i = 0; i < 5; i++)
      await r
        .call('tools/call', { name: 'x' }, { timeoutMs: 200, maxTotalTimeoutMs: 200 }, timeout())
        .catch(() => undefined);
    expect(r.snapshot().breaker).toEqual({ state: 'closed', consecutiveFailures: 0 });
    // Timeouts at the upstream's own timeoutMs do.
    for (let i = 0; i < 3; i++) await r.call('tools/call', { name: 'x' }, OPTS, timeout()).catch(() => undefined);
    expect(moves).toEqual(['open']);
  });
});

describe('config: upstreams[i] resilience keys', () => {
  const upstream = (extra: string): string =>
    `upstreams:\n  - name: crm\n    transport: http\n    url: http://127.0.0.1:9/mcp\n${extra}`;
  const problems = (text: string): string[] => {
    try {
      parseConfigText(text, '/tmp/gatehouse.yaml');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as ConfigError).problems.map((p) => `${p.line ?? '?'} ${p.path}: ${p.message}`);
    }
    throw new Error('expected a ConfigError');
  };

  it('fills the defaults and keeps what is set', () => {
    const [u] = parseConfigText(
      upstream('    maxQueued: 0\n    breaker: { openMs: 500 }\n    retry: { attempts: 2, tools: [get_*] }\n'),
      '/tmp/gatehouse.yaml',
    ).upstreams;
    expect(u).toMatchObject({
      maxInFlight: 64,
      maxQueued: 0,
      queueTimeoutMs: 10_000,
      breaker: { enabled: true, failureThreshold: 5, openMs: 500 },
      retry: { attempts: 2, backoffMs: 200, tools: ['get_*'] },
    });
  });

  it('refuses a negative queue, a zero in-flight cap, a catch-all retry glob and retry.tools that could never retry', () => {
    expect(problems(upstream('    maxQueued: -1\n'))).toEqual([
      expect.stringMatching(/^5 \/upstreams\/0\/maxQueued: .*at least 0/),
    ]);
    expect(problems(upstream('    maxInFlight: 0\n'))).toEqual([
      expect.stringMatching(/^5 \/upstreams\/0\/maxInFlight: .*at least 1/),
    ]);
    expect(problems(upstream('    retry: { attempts: 3, tools: [get_x, "*"] }\n'))).toEqual([
      expect.stringMatching(/^5 \/upstreams\/0\/retry\/tools\/1: "\*" would mark every tool idempotent/),
    ]);
    expect(problems(upstream('    retry:\n      tools: [get_x]\n'))).toEqual([
      expect.stringMatching(/^5 \/upstreams\/0\/retry: retry.attempts is 1 \(the default\)/),
    ]);
    expect(problems(upstream('    breaker: { failureThreshold: 0, bogus: 1 }\n'))).toEqual(
      expect.arrayContaining([
        '5 /upstreams/0/breaker/failureThreshold: must be at least 1',
        expect.stringContaining('/upstreams/0/breaker/bogus: unknown key "bogus"'),
      ]),
    );
  });
});

describe('response size on SSE is counted in UTF-8 bytes', () => {
  it('an event of 8 characters but 24 bytes is over a 16-byte cap; 16 ASCII bytes are not', () => {
    const events: string[] = [];
    const oversized: number[] = [];
    const p = new SseParser(
      16,
      (e) => events.push(e.data),
      (d) => oversized.push(d.bytes),
    );
    p.push(Buffer.from('data: 日本語日本語日本\n\n'));
    p.push(Buffer.from('data: abcdefghijklmnop\n\n'));
    expect(oversized).toEqual([24]);
    expect(events).toEqual(['abcdefghijklmnop']);
  });
});

describe('Resilience: a retry waits for a restarting upstream', () => {
  it('waits (within the deadline) until the target is ready again, then sends', async () => {
    const r = new Resilience({ config: CONFIG, label: 'upstream t' });
    let ready = true;
    const waits: number[] = [];
    const t: AttemptTarget & { sent: number } = {
      sent: 0,
      notReady: () => (ready ? undefined : 'unhealthy'),
      whenReady: (maxMs) => {
        waits.push(maxMs);
        ready = true; // the restart completes
        return Promise.resolve();
      },
      send() {
        this.sent++;
        if (this.sent === 1) {
          ready = false; // the call crashed the upstream
          return Promise.reject(unavailable());
        }
        return Promise.resolve({ ok: true });
      },
    };
    await expect(r.call('prompts/get', { name: 'p' }, OPTS, t)).resolves.toEqual({ ok: true });
    expect(t.sent).toBe(2);
    expect(waits).toHaveLength(1);
    expect(waits[0]).toBeGreaterThan(4000);
    expect(waits[0]).toBeLessThanOrEqual(5000);
    // The crash counted as a failure; the answer after the restart reset the count.
    expect(r.snapshot().breaker).toEqual({ state: 'closed', consecutiveFailures: 0 });
  });
});
