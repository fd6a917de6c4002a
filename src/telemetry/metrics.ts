import type { Attributes, Counter, Histogram, Meter, ObservableResult } from '@opentelemetry/api';
import type { AuditEvent } from '../audit/audit-sink.js';

/**
 * Seconds, from the half millisecond a policy-denied call takes to the minute a slow tool may run (upstream
 * `timeoutMs` defaults to 60 s). Denser below 100 ms, where a gateway's own overhead shows.
 */
export const DURATION_BUCKETS_SECONDS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

export interface MetricDefinition {
  /** The OpenTelemetry name; Prometheus writes it with `_` for `.`, and `_total` after a counter's. */
  readonly name: string;
  /** As exported: a counter is a monotonic sum (an observable counter included), a gauge is read at collection. */
  readonly kind: 'counter' | 'gauge' | 'histogram';
  readonly unit?: string;
  /** Every attribute (label) name its series carry; each value is from a bounded set. */
  readonly labels: readonly string[];
  /** The description (Prometheus `# HELP`). */
  readonly description: string;
  /** A histogram's bucket boundaries, in `unit`. */
  readonly buckets?: readonly number[];
}

/**
 * The gateway's metrics (docs/architecture.md §9). Counters are derived from audit events — everything observable is
 * already an audit event, so no other part of the gateway knows metrics exist — and gauges are read from the
 * components when a reader collects (a scrape), never on the request path.
 *
 * Names are OpenTelemetry's; the Prometheus exporter turns dots into `_` and adds `_total` to counters
 * (docs/reference/metrics.md lists each). Every label value is from a bounded set: tool names only when the
 * catalogue knows the tool, methods only from the MCP method list, codes from the error table.
 *
 * Every metric is in this one table: the instruments below are created from it, and docs/reference/metrics.md is
 * generated from it (`npm run docs`), so the reference cannot drift from what is exported.
 */
export const METRICS = {
  toolCalls: {
    name: 'mcp.tool.calls',
    kind: 'counter',
    labels: ['tool', 'upstream', 'outcome', 'error_code'],
    description: 'tools/call requests answered, by exposed tool, upstream, outcome and error code',
  },
  toolDuration: {
    name: 'mcp.tool.duration',
    kind: 'histogram',
    unit: 's',
    buckets: DURATION_BUCKETS_SECONDS,
    labels: ['tool', 'upstream', 'outcome'],
    description: 'Time to answer tools/call (policy, rate limits and the upstream call), by tool, upstream and outcome',
  },
  requests: {
    name: 'mcp.requests',
    kind: 'counter',
    labels: ['method', 'outcome', 'protocol_version'],
    description:
      'MCP requests answered, by method, outcome and the protocol version they were made in (unknown: refused before it was read)',
  },
  activeSessions: { name: 'mcp.server.active_sessions', kind: 'gauge', labels: [], description: 'Open MCP sessions' },
  authFailures: {
    name: 'mcp.auth.failures',
    kind: 'counter',
    labels: ['reason'],
    description: 'Requests refused by authentication, by reason',
  },
  outputInvalid: {
    name: 'mcp.output.invalid',
    kind: 'counter',
    labels: ['tool', 'upstream', 'action'],
    description:
      'Results that broke what their upstream declares (outputSchema, resource mimeType), by tool (empty for a resource), upstream and action: refused (outputValidation enforce) or passed (warn)',
  },
  rateLimitRejections: {
    name: 'mcp.ratelimit.rejections',
    kind: 'counter',
    labels: ['limit', 'tool'],
    description: 'Calls refused by a rate or concurrency limit, by limit rule and tool',
  },
  httpRejections: {
    name: 'mcp.http.rejections',
    kind: 'counter',
    labels: ['reason', 'status'],
    description: 'HTTP requests refused at the edge (flood, overload, connections), by reason and status',
  },
  upstreamHealth: {
    name: 'mcp.upstream.health',
    kind: 'gauge',
    labels: ['upstream', 'state'],
    description: '1 for the state each upstream is in now (starting, ready, unhealthy, closed), 0 for the others',
  },
  upstreamBreakerState: {
    name: 'mcp.upstream.breaker_state',
    kind: 'gauge',
    labels: ['upstream'],
    description: 'Circuit breaker per upstream: 0 closed, 1 half-open, 2 open',
  },
  upstreamBreakerTransitions: {
    name: 'mcp.upstream.breaker_transitions',
    kind: 'counter',
    labels: ['upstream', 'state'],
    description: 'Circuit breaker state changes, by upstream and new state',
  },
  cacheRequests: {
    name: 'mcp.cache.requests',
    kind: 'counter',
    labels: ['result'],
    description:
      'Calls whose policy declares a result cache, by result: hit (not forwarded), miss (forwarded), bypass (store down)',
  },
  idempotentCalls: {
    name: 'mcp.idempotency.calls',
    kind: 'counter',
    labels: ['result'],
    description:
      'Calls carrying the idempotency key their policy names, by result: first (forwarded), replay (not forwarded), conflict (refused)',
  },
  policyReloads: {
    name: 'mcp.policy.reloads',
    kind: 'counter',
    labels: ['result'],
    description: 'Policy (and tools lock) reloads, by result',
  },
  policyRevision: {
    name: 'mcp.policy.revision_info',
    kind: 'gauge',
    labels: ['revision'],
    description: '1, labelled with the policy revision serving now',
  },
  policyReloadFailing: {
    name: 'mcp.policy.reload_failing',
    kind: 'gauge',
    labels: [],
    description: '1 while the last policy reload failed (the previous policy keeps serving)',
  },
  auditLost: {
    name: 'mcp.audit.lost',
    kind: 'counter',
    labels: [],
    description: 'Audit records that could not be written',
  },
  redisUp: {
    name: 'mcp.redis.up',
    kind: 'gauge',
    labels: [],
    description: '1 while the shared Redis client is connected',
  },
  rateLimitFailOpen: {
    name: 'mcp.ratelimit.fail_open',
    kind: 'counter',
    labels: [],
    description:
      'tools/call let through unlimited because the limits store was down and every applicable limit fails open',
  },
  rateLimitStoreErrors: {
    name: 'mcp.ratelimit.store_errors',
    kind: 'counter',
    labels: [],
    description: 'Limit checks the limits store could not answer (Redis down or slow, memory store full)',
  },
} as const satisfies Record<string, MetricDefinition>;

/** An instrument's options from its definition. */
function options(def: MetricDefinition): { description: string; unit?: string } {
  return def.unit === undefined ? { description: def.description } : { description: def.description, unit: def.unit };
}

/** The upstream states a `mcp.upstream.health` series exists for (one series per state, 1 for the current one). */
const UPSTREAM_STATES = ['starting', 'ready', 'unhealthy', 'closed'] as const;
const BREAKER_VALUE: Readonly<Record<string, number>> = { closed: 0, 'half-open': 1, open: 2 };

/** MCP protocol versions are dates (basic/versioning). */
const VERSION_SHAPE = /^\d{4}-\d{2}-\d{2}$/;

/** Methods counted by name in `mcp.requests`; anything else a client sends is `other` (a label is not a free text field). */
const KNOWN_METHODS = new Set([
  'server/discover',
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
  private readonly outputInvalid: Counter;
  private readonly httpRejections: Counter;
  private readonly breakerTransitions: Counter;
  private readonly policyReloads: Counter;
  private readonly cacheRequests: Counter;
  private readonly idempotentCalls: Counter;
  private readonly attributeCache = new Map<string, Attributes>();

  constructor(meter: Meter, sources: MetricSources) {
    const toolCalls = this.toolCalls;
    meter
      .createObservableCounter(METRICS.toolCalls.name, options(METRICS.toolCalls))
      .addCallback((r: ObservableResult) => toolCalls.report(r));
    this.toolDuration = meter.createHistogram(METRICS.toolDuration.name, {
      ...options(METRICS.toolDuration),
      advice: { explicitBucketBoundaries: DURATION_BUCKETS_SECONDS },
    });
    const requests = this.requests;
    meter
      .createObservableCounter(METRICS.requests.name, options(METRICS.requests))
      .addCallback((r: ObservableResult) => requests.report(r));
    this.authFailures = meter.createCounter(METRICS.authFailures.name, options(METRICS.authFailures));
    this.rateLimited = meter.createCounter(METRICS.rateLimitRejections.name, options(METRICS.rateLimitRejections));
    this.outputInvalid = meter.createCounter(METRICS.outputInvalid.name, options(METRICS.outputInvalid));
    this.httpRejections = meter.createCounter(METRICS.httpRejections.name, options(METRICS.httpRejections));
    this.breakerTransitions = meter.createCounter(
      METRICS.upstreamBreakerTransitions.name,
      options(METRICS.upstreamBreakerTransitions),
    );
    this.policyReloads = meter.createCounter(METRICS.policyReloads.name, options(METRICS.policyReloads));
    this.cacheRequests = meter.createCounter(METRICS.cacheRequests.name, options(METRICS.cacheRequests));
    this.idempotentCalls = meter.createCounter(METRICS.idempotentCalls.name, options(METRICS.idempotentCalls));

    meter
      .createObservableGauge(METRICS.activeSessions.name, options(METRICS.activeSessions))
      .addCallback((r) => r.observe(sources.sessions()));
    meter.createObservableGauge(METRICS.upstreamHealth.name, options(METRICS.upstreamHealth)).addCallback((r) => {
      for (const u of sources.upstreams())
        for (const state of UPSTREAM_STATES) r.observe(u.state === state ? 1 : 0, { upstream: u.name, state });
    });
    meter
      .createObservableGauge(METRICS.upstreamBreakerState.name, options(METRICS.upstreamBreakerState))
      .addCallback((r) => {
        for (const u of sources.upstreams()) {
          const state = breakerState(u.breaker);
          if (state !== undefined) r.observe(BREAKER_VALUE[state]!, { upstream: u.name });
        }
      });
    if (sources.policy !== undefined) {
      const policy = sources.policy;
      meter.createObservableGauge(METRICS.policyRevision.name, options(METRICS.policyRevision)).addCallback((r) => {
        const p = policy();
        if (p !== undefined) r.observe(1, { revision: p.revision });
      });
      meter
        .createObservableGauge(METRICS.policyReloadFailing.name, options(METRICS.policyReloadFailing))
        .addCallback((r) => {
          const p = policy();
          if (p !== undefined) r.observe(p.lastError !== undefined ? 1 : 0);
        });
    }
    const auditLost = sources.auditLost;
    meter
      .createObservableCounter(METRICS.auditLost.name, options(METRICS.auditLost))
      .addCallback((r: ObservableResult) => r.observe(auditLost?.() ?? 0));
    if (sources.redis !== undefined) {
      const redis = sources.redis;
      meter.createObservableGauge(METRICS.redisUp.name, options(METRICS.redisUp)).addCallback((r) => {
        const state = redis();
        if (state !== undefined) r.observe(state === 'up' ? 1 : 0);
      });
    }
    // Read from the limiter, not derived from audit events: a fail-open pass is not a refusal, and a store
    // failure is one per call (the log line about it is throttled).
    if (sources.limits !== undefined) {
      const limits = sources.limits;
      meter
        .createObservableCounter(METRICS.rateLimitFailOpen.name, options(METRICS.rateLimitFailOpen))
        .addCallback((r: ObservableResult) => r.observe(limits()?.openPassed ?? 0));
      meter
        .createObservableCounter(METRICS.rateLimitStoreErrors.name, options(METRICS.rateLimitStoreErrors))
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
    // Only versions the gateway serves reach a record; the shape check keeps the label bounded whatever happens.
    const version = event.protocolVersion;
    const protocol_version = version !== undefined && VERSION_SHAPE.test(version) ? version : 'unknown';
    this.requests.add(`${method}|${outcome}|${protocol_version}`, () => ({ method, outcome, protocol_version }));
    const rateLimited = isRateLimited(code);
    // A tool the catalogue knows has an upstream on its record; any other name is the client's free text.
    const tool = event.upstream !== undefined && event.tool !== undefined ? event.tool : '(unknown)';
    const upstream = event.upstream ?? '';
    if (rateLimited)
      this.rateLimited.add(
        1,
        this.attrs(`l|${event.rule}|${tool}`, () => ({ limit: event.rule ?? '', tool })),
      );
    if (event.outputValid === false) {
      const action = code === 'GW_UPSTREAM_OUTPUT_INVALID' ? 'refused' : 'passed';
      const outTool = method === 'tools/call' ? tool : '';
      this.outputInvalid.add(
        1,
        this.attrs(`o|${outTool}|${upstream}|${action}`, () => ({ tool: outTool, upstream, action })),
      );
    }
    const cache = event.cache;
    if (cache !== undefined)
      this.cacheRequests.add(
        1,
        this.attrs(`c|${cache}`, () => ({ result: cache })),
      );
    const idem = event.idempotency;
    if (idem !== undefined)
      this.idempotentCalls.add(
        1,
        this.attrs(`i|${idem}`, () => ({ result: idem })),
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

/**
 * The limits step's refusals (docs/configuration.md "Rate limits and quotas"): the contract's `rate_limited`, or a
 * `GW_…RATE_LIMIT…` code.
 */
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
