import type { Attributes, Counter, Histogram, Meter, ObservableResult } from '@opentelemetry/api';
import type { AuditEvent } from '../audit/audit-sink.js';

/**
 * The gateway's metrics (docs/architecture.md §9). Counters are derived from audit events — everything observable is
 * already an audit event, so no other part of the gateway knows metrics exist — and gauges are read from the
 * components when a reader collects (a scrape), never on the request path.
 *
 * Names are OpenTelemetry's; the Prometheus exporter turns dots into `_` and adds `_total` to counters
 * (README "Metrics and traces" lists each). Every label value is from a bounded set: tool names only when the
 * catalogue knows the tool, methods only from the MCP method list, codes from the error table.
 */
export const METRIC = {
  toolCalls: 'mcp.tool.calls',
  toolDuration: 'mcp.tool.duration',
  requests: 'mcp.requests',
  activeSessions: 'mcp.server.active_sessions',
  authFailures: 'mcp.auth.failures',
  rateLimitRejections: 'mcp.ratelimit.rejections',
  httpRejections: 'mcp.http.rejections',
  upstreamHealth: 'mcp.upstream.health',
  upstreamBreakerState: 'mcp.upstream.breaker_state',
  upstreamBreakerTransitions: 'mcp.upstream.breaker_transitions',
  policyReloads: 'mcp.policy.reloads',
  policyRevision: 'mcp.policy.revision_info',
  policyReloadFailing: 'mcp.policy.reload_failing',
  auditLost: 'mcp.audit.lost',
  redisUp: 'mcp.redis.up',
  rateLimitFailOpen: 'mcp.ratelimit.fail_open',
  rateLimitStoreErrors: 'mcp.ratelimit.store_errors',
} as const;

/**
 * Seconds, from the half millisecond a policy-denied call takes to the minute a slow tool may run (upstream
 * `timeoutMs` defaults to 60 s). Denser below 100 ms, where a gateway's own overhead shows.
 */
export const DURATION_BUCKETS_SECONDS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

/** The upstream states a `mcp.upstream.health` series exists for (one series per state, 1 for the current one). */
const UPSTREAM_STATES = ['starting', 'ready', 'unhealthy', 'closed'] as const;
const BREAKER_VALUE: Readonly<Record<string, number>> = { closed: 0, 'half-open': 1, open: 2 };

/** Methods counted by name in `mcp.requests`; anything else a client sends is `other` (a label is not a free text field). */
const KNOWN_METHODS = new Set([
  'ping',
  'tools/list',
  'tools/call',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'resources/subscribe',
  'resources/unsubscribe',
  'prompts/list',
  'prompts/get',
  'completion/complete',
  'logging/setLevel',
  'initialize',
  'sampling/createMessage',
  'elicitation/create',
  'roots/list',
]);

/** Bounds the attribute-object cache; past it, new combinations are still counted, just not cached. */
const MAX_CACHED_ATTRIBUTE_SETS = 4096;

/** What the gauges read at collection time (the composition root wires them to the app's components). */
export interface MetricSources {
  /** Open MCP sessions (the front door). */
  sessions(): number;
  /** Per upstream: its state and, when the resilience layer reports one, its breaker (`closed`/`half-open`/`open` or `{ state }`). */
  upstreams(): readonly { name: string; state: string; breaker?: unknown }[];
  /** The serving policy revision and whether the last reload failed; undefined without a reloadable policy. */
  policy?(): { revision: string; lastError?: string } | undefined;
  /** Audit records the sink could not write since start (when the sink counts them). */
  auditLost?(): number;
  /** Redis as the shared client reports it (`up`/`down`), when one is configured. */
  redis?(): string | undefined;
  /** The call limiter's counters since start (`CallLimiter.counters`): calls let through unlimited by fail-open limits, store failures. */
  limits?(): { openPassed: number; storeErrors: number } | undefined;
}

/**
 * Precreated instruments and the audit-event → metric mapping. `observe` is on the request path: a switch, a
 * cached attribute lookup and an `add`/`record` per instrument; the sink guards it, so it never fails a call.
 */
export class GatewayMetrics {
  /** Counted here, reported when a reader collects (see `Tally`): the two counters every call moves. */
  private readonly toolCalls = new Tally();
  private readonly toolDuration: Histogram;
  private readonly requests = new Tally();
  private readonly authFailures: Counter;
  private readonly rateLimited: Counter;
  private readonly httpRejections: Counter;
  private readonly breakerTransitions: Counter;
  private readonly policyReloads: Counter;
  private readonly attributeCache = new Map<string, Attributes>();

  constructor(meter: Meter, sources: MetricSources) {
    const toolCalls = this.toolCalls;
    meter
      .createObservableCounter(METRIC.toolCalls, {
        description: 'tools/call requests answered, by exposed tool, upstream, outcome and error code',
      })
      .addCallback((r: ObservableResult) => toolCalls.report(r));
    this.toolDuration = meter.createHistogram(METRIC.toolDuration, {
      description:
        'Time to answer tools/call (policy, rate limits and the upstream call), by tool, upstream and outcome',
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS_SECONDS },
    });
    const requests = this.requests;
    meter
      .createObservableCounter(METRIC.requests, { description: 'MCP requests answered, by method and outcome' })
      .addCallback((r: ObservableResult) => requests.report(r));
    this.authFailures = meter.createCounter(METRIC.authFailures, {
      description: 'Requests refused by authentication, by reason',
    });
    this.rateLimited = meter.createCounter(METRIC.rateLimitRejections, {
      description: 'Calls refused by a rate or concurrency limit, by limit rule and tool',
    });
    this.httpRejections = meter.createCounter(METRIC.httpRejections, {
      description: 'HTTP requests refused at the edge (flood, overload, connections), by reason and status',
    });
    this.breakerTransitions = meter.createCounter(METRIC.upstreamBreakerTransitions, {
      description: 'Circuit breaker state changes, by upstream and new state',
    });
    this.policyReloads = meter.createCounter(METRIC.policyReloads, {
      description: 'Policy (and tools lock) reloads, by result',
    });

    meter
      .createObservableGauge(METRIC.activeSessions, { description: 'Open MCP sessions' })
      .addCallback((r) => r.observe(sources.sessions()));
    meter
      .createObservableGauge(METRIC.upstreamHealth, {
        description: '1 for the state each upstream is in now (starting, ready, unhealthy, closed), 0 for the others',
      })
      .addCallback((r) => {
        for (const u of sources.upstreams())
          for (const state of UPSTREAM_STATES) r.observe(u.state === state ? 1 : 0, { upstream: u.name, state });
      });
    meter
      .createObservableGauge(METRIC.upstreamBreakerState, {
        description: 'Circuit breaker per upstream: 0 closed, 1 half-open, 2 open',
      })
      .addCallback((r) => {
        for (const u of sources.upstreams()) {
          const state = breakerState(u.breaker);
          if (state !== undefined) r.observe(BREAKER_VALUE[state]!, { upstream: u.name });
        }
      });
    if (sources.policy !== undefined) {
      const policy = sources.policy;
      meter
        .createObservableGauge(METRIC.policyRevision, {
          description: '1, labelled with the policy revision serving now',
        })
        .addCallback((r) => {
          const p = policy();
          if (p !== undefined) r.observe(1, { revision: p.revision });
        });
      meter
        .createObservableGauge(METRIC.policyReloadFailing, {
          description: '1 while the last policy reload failed (the previous policy keeps serving)',
        })
        .addCallback((r) => {
          const p = policy();
          if (p !== undefined) r.observe(p.lastError !== undefined ? 1 : 0);
        });
    }
    const auditLost = sources.auditLost;
    meter
      .createObservableCounter(METRIC.auditLost, { description: 'Audit records that could not be written' })
      .addCallback((r: ObservableResult) => r.observe(auditLost?.() ?? 0));
    if (sources.redis !== undefined) {
      const redis = sources.redis;
      meter
        .createObservableGauge(METRIC.redisUp, { description: '1 while the shared Redis client is connected' })
        .addCallback((r) => {
          const state = redis();
          if (state !== undefined) r.observe(state === 'up' ? 1 : 0);
        });
    }
    // Read from the limiter, not derived from audit events: a fail-open pass is not a refusal, and a store
    // failure is one per call (the log line about it is throttled).
    if (sources.limits !== undefined) {
      const limits = sources.limits;
      meter
        .createObservableCounter(METRIC.rateLimitFailOpen, {
          description:
            'tools/call let through unlimited because the limits store was down and every applicable limit fails open',
        })
        .addCallback((r: ObservableResult) => r.observe(limits()?.openPassed ?? 0));
      meter
        .createObservableCounter(METRIC.rateLimitStoreErrors, {
          description: 'Limit checks the limits store could not answer (Redis down or slow, memory store full)',
        })
        .addCallback((r: ObservableResult) => r.observe(limits()?.storeErrors ?? 0));
    }
  }

  observe(event: AuditEvent): void {
    switch (event.type) {
      case 'mcp.request':
        this.request(event);
        return;
      case 'auth.failure':
        this.authFailures.add(
          1,
          this.attrs(`a|${event.reason}`, () => ({ reason: event.reason ?? 'unknown' })),
        );
        return;
      case 'http.rejected':
        // A coalesced record (edge/rejection-recorder.ts) stands for `count` refusals.
        this.httpRejections.add(
          event.count ?? 1,
          this.attrs(`h|${event.reason}|${event.status}`, () => ({
            reason: event.reason ?? 'unknown',
            status: String(event.status ?? ''),
          })),
        );
        return;
      case 'upstream.state': {
        // Breaker transitions arrive as `detail: 'breaker open' | 'breaker half-open' | 'breaker closed'`.
        const m = event.detail === undefined ? null : /^breaker (open|half-open|closed)\b/.exec(event.detail);
        if (m !== null && event.upstream !== undefined) {
          this.breakerTransitions.add(
            1,
            this.attrs(`b|${event.upstream}|${m[1]}`, () => ({ upstream: event.upstream!, state: m[1]! })),
          );
        }
        return;
      }
      case 'config':
        // Policy and tools-lock reloads (app.ts records each reload that changed something or failed).
        if (event.detail !== undefined && /^(policy|tools lock) reload/.test(event.detail)) {
          const result = event.outcome === 'ok' ? 'ok' : 'error';
          this.policyReloads.add(
            1,
            this.attrs(`p|${result}`, () => ({ result })),
          );
        }
        return;
      default:
        return;
    }
  }

  private request(event: AuditEvent): void {
    // Only answers to a client count (relayed server→client requests are `mcp.relay` records, not counted here).
    if (event.outcome === undefined) return;
    const outcome = event.outcome;
    const code = event.errorCode ?? '';
    const method = boundedMethod(event.method);
    this.requests.add(`${method}|${outcome}`, () => ({ method, outcome }));
    const rateLimited = isRateLimited(code);
    // A tool the catalogue knows has an upstream on its record; any other name is the client's free text.
    const tool = event.upstream !== undefined && event.tool !== undefined ? event.tool : '(unknown)';
    const upstream = event.upstream ?? '';
    if (rateLimited)
      this.rateLimited.add(
        1,
        this.attrs(`l|${event.rule}|${tool}`, () => ({ limit: event.rule ?? '', tool })),
      );
    if (method !== 'tools/call') return;
    this.toolCalls.add(`${tool}|${upstream}|${outcome}|${code}`, () => ({ tool, upstream, outcome, error_code: code }));
    if (event.durationMs !== undefined) {
      this.toolDuration.record(
        event.durationMs / 1000,
        this.attrs(`d|${tool}|${upstream}|${outcome}`, () => ({ tool, upstream, outcome })),
      );
    }
  }

  /** One frozen attribute object per label combination, built on first use and reused by every later event. */
  private attrs(key: string, make: () => Attributes): Attributes {
    const hit = this.attributeCache.get(key);
    if (hit !== undefined) return hit;
    const made = Object.freeze(make());
    if (this.attributeCache.size < MAX_CACHED_ATTRIBUTE_SETS) this.attributeCache.set(key, made);
    return made;
  }
}

/** What the SDK reports past its cardinality limit (2,000 series per instrument by default), the same way here. */
const MAX_TALLY_SERIES = 2000;
const OVERFLOW_ATTRIBUTES: Attributes = Object.freeze({ 'otel.metric.overflow': true });

/**
 * A monotonic count per label set, kept in a Map and reported through an observable counter when a reader
 * collects (a scrape, an OTLP export). Exported exactly like a counter (a cumulative monotonic sum, `_total` in
 * Prometheus), but an increment on the request path is one Map hit: a synchronous `Counter.add` hashes its
 * attributes (sort + JSON.stringify) and walks the SDK's storage on every call.
 */
class Tally {
  private readonly series = new Map<string, { attrs: Attributes; n: number }>();

  add(key: string, make: () => Attributes): void {
    let s = this.series.get(key);
    if (s === undefined) {
      if (this.series.size >= MAX_TALLY_SERIES) {
        s = this.series.get('\0overflow');
        if (s === undefined) this.series.set('\0overflow', (s = { attrs: OVERFLOW_ATTRIBUTES, n: 0 }));
      } else {
        this.series.set(key, (s = { attrs: Object.freeze(make()), n: 0 }));
      }
    }
    s.n += 1;
  }

  report(r: ObservableResult): void {
    for (const s of this.series.values()) r.observe(s.n, s.attrs);
  }
}

/** The method as a label or span name: an MCP method we know, else `other`. */
export function boundedMethod(method: string | undefined): string {
  return method !== undefined && KNOWN_METHODS.has(method) ? method : 'other';
}

/** The limits step's refusals (README "Rate limits"): the contract's `rate_limited`, or a `GW_…RATE_LIMIT…` code. */
export function isRateLimited(code: string): boolean {
  return code === 'rate_limited' || (code.startsWith('GW_') && code.includes('RATE_LIMIT'));
}

function breakerState(breaker: unknown): string | undefined {
  const state =
    typeof breaker === 'string'
      ? breaker
      : typeof breaker === 'object' && breaker !== null
        ? (breaker as { state?: unknown }).state
        : undefined;
  return typeof state === 'string' && state in BREAKER_VALUE ? state : undefined;
}
