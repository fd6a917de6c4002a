/**
 * The audit-event → metric mapping and the request tracer, on their own: a real meter provider read through the
 * Prometheus serializer, a real tracer provider into an in-memory exporter. The gateway-level tests are in
 * test/integration/telemetry-*.test.ts.
 */
import { SpanKind } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/audit-sink.js';
import { isRateLimited, type MetricSources } from '../../src/telemetry/metrics.js';
import { TelemetryAuditSink } from '../../src/telemetry/telemetry-sink.js';
import { gatewaySampler, Telemetry } from '../../src/telemetry/telemetry.js';
import type { TelemetryConfig } from '../../src/config/types.js';
import { formatTraceparent, RequestTracing } from '../../src/telemetry/tracing.js';
import { parseExposition } from '../helpers/telemetry-scrape.js';
import { shutdownAfterTest, shutdownTestMeters, testMeter } from '../helpers/test-meter.js';

afterEach(shutdownTestMeters);

const call = (over: Partial<AuditEvent>): AuditEvent => ({
  type: 'mcp.request',
  method: 'tools/call',
  tool: 'fx__echo',
  upstream: 'fx',
  outcome: 'ok',
  durationMs: 3,
  ...over,
});

describe('GatewayMetrics', () => {
  it('counts requests by the protocol version they were made in, a bounded label', async () => {
    const { metrics, read } = testMeter();
    metrics.observe(call({ protocolVersion: '2025-11-25' }));
    metrics.observe(call({ protocolVersion: '2026-07-28' }));
    metrics.observe(call({ method: 'server/discover', protocolVersion: '2026-07-28', tool: undefined }));
    // Refused before its version was read, or a value that is not a version: never a free-text label.
    metrics.observe(call({ protocolVersion: undefined }));
    metrics.observe(call({ protocolVersion: 'x'.repeat(40) }));
    const s = await read();
    expect(s.sum('mcp_requests_total', { method: 'tools/call', protocol_version: '2025-11-25' })).toBe(1);
    expect(s.sum('mcp_requests_total', { protocol_version: '2026-07-28' })).toBe(2);
    expect(s.sum('mcp_requests_total', { method: 'server/discover' })).toBe(1);
    expect(s.sum('mcp_requests_total', { protocol_version: 'unknown' })).toBe(2);
    expect(s.text).not.toContain('xxxxxxxx');
  });

  it('maps audit events to counters with bounded labels', async () => {
    const { metrics, read } = testMeter();
    metrics.observe(call({}));
    metrics.observe(call({ outcome: 'error', errorCode: 'GW_UPSTREAM_TIMEOUT', durationMs: 1000 }));
    // An unknown tool has no upstream on its record: its name is the client's text and never a label.
    metrics.observe(
      call({
        tool: 'anything the client typed',
        upstream: undefined,
        outcome: 'denied',
        errorCode: 'GW_MCP_TOOL_UNKNOWN',
      }),
    );
    metrics.observe(call({ outcome: 'denied', decision: 'deny', errorCode: 'rate_limited', rule: 'per-user' }));
    metrics.observe({ type: 'mcp.request', method: 'x-custom/method', outcome: 'error' });
    // A relayed server→client request is an `mcp.relay` record: not an answer to a client, not counted.
    metrics.observe({
      type: 'mcp.relay',
      method: 'sampling/createMessage',
      upstream: 'fx',
      decision: 'allow',
      outcome: 'ok',
      durationMs: 2,
    });
    metrics.observe({ type: 'auth.failure', reason: 'expired', status: 401 });
    metrics.observe({ type: 'http.rejected', reason: 'rate_limited', status: 429 });
    metrics.observe({ type: 'upstream.state', upstream: 'fx', outcome: 'error', detail: 'breaker open' });
    metrics.observe({ type: 'upstream.state', upstream: 'fx', outcome: 'error', detail: 'connect failed: boom' });
    metrics.observe({ type: 'config', outcome: 'error', detail: 'policy reload (watch) failed: bad yaml' });
    metrics.observe({ type: 'config', outcome: 'ok', detail: 'policy reload (SIGHUP): a -> b' });

    const s = await read();
    expect(s.sum('mcp_tool_calls_total', { tool: 'fx__echo', upstream: 'fx', outcome: 'ok', error_code: '' })).toBe(1);
    expect(
      s.sum('mcp_tool_calls_total', { tool: 'fx__echo', outcome: 'error', error_code: 'GW_UPSTREAM_TIMEOUT' }),
    ).toBe(1);
    expect(s.sum('mcp_tool_calls_total', { tool: '(unknown)', upstream: '' })).toBe(1);
    expect(s.text).not.toContain('anything the client typed');
    expect(s.sum('mcp_ratelimit_rejections_total', { limit: 'per-user', tool: 'fx__echo' })).toBe(1);
    expect(s.sum('mcp_requests_total', { method: 'other' })).toBe(1);
    expect(s.text).not.toContain('x-custom');
    expect(s.sum('mcp_requests_total')).toBe(5);
    expect(s.sum('mcp_tool_duration_sum', { outcome: 'error' })).toBe(1);
    expect(s.sum('mcp_tool_duration_bucket', { outcome: 'ok', le: '0.0025' })).toBe(0);
    expect(s.sum('mcp_tool_duration_bucket', { outcome: 'ok', le: '0.005' })).toBe(1);
    expect(s.sum('mcp_auth_failures_total', { reason: 'expired' })).toBe(1);
    expect(s.sum('mcp_http_rejections_total', { reason: 'rate_limited', status: '429' })).toBe(1);
    expect(s.sum('mcp_upstream_breaker_transitions_total', { upstream: 'fx', state: 'open' })).toBe(1);
    expect(s.sum('mcp_upstream_breaker_transitions_total')).toBe(1);
    expect(s.sum('mcp_policy_reloads_total', { result: 'error' })).toBe(1);
    expect(s.sum('mcp_policy_reloads_total', { result: 'ok' })).toBe(1);
  });

  it('reads gauges from the sources at collection time', async () => {
    let sessions = 2;
    const { read } = testMeter({
      sessions: () => sessions,
      upstreams: () => [
        { name: 'a', state: 'ready', breaker: { state: 'closed' } },
        { name: 'b', state: 'unhealthy', breaker: 'open' },
        { name: 'c', state: 'ready' },
      ],
      policy: () => ({ revision: 'rev1', lastError: 'bad' }),
      auditLost: () => 4,
      redis: () => 'down',
    });
    let s = await read();
    expect(s.sum('mcp_server_active_sessions')).toBe(2);
    expect(s.sum('mcp_upstream_health', { upstream: 'b', state: 'unhealthy' })).toBe(1);
    expect(s.sum('mcp_upstream_health', { upstream: 'b' })).toBe(1);
    expect(s.sum('mcp_upstream_breaker_state', { upstream: 'a' })).toBe(0);
    expect(s.sum('mcp_upstream_breaker_state', { upstream: 'b' })).toBe(2);
    // No breaker reported for c: no series, rather than a made-up "closed".
    expect(s.samples.some((x) => x.name === 'mcp_upstream_breaker_state' && x.labels.upstream === 'c')).toBe(false);
    expect(s.sum('mcp_policy_revision_info', { revision: 'rev1' })).toBe(1);
    expect(s.sum('mcp_policy_reload_failing')).toBe(1);
    expect(s.sum('mcp_audit_lost_total')).toBe(4);
    expect(s.sum('mcp_redis_up')).toBe(0);
    sessions = 5;
    s = await read();
    expect(s.sum('mcp_server_active_sessions')).toBe(5);
  });

  it('knows the rate-limit codes', () => {
    expect(isRateLimited('rate_limited')).toBe(true);
    expect(isRateLimited('GW_MCP_RATE_LIMITED')).toBe(true);
    expect(isRateLimited('GW_UPSTREAM_TIMEOUT')).toBe(false);
    expect(isRateLimited('')).toBe(false);
  });
});

describe('TelemetryAuditSink', () => {
  it('counts, then records unchanged, and passes the real sink’s verdict and failures through', async () => {
    const { metrics, read } = testMeter();
    const seen: AuditEvent[] = [];
    let accepting = true;
    const sink = new TelemetryAuditSink({ record: (e) => seen.push(e), accepting: () => accepting }, metrics);
    const e = call({});
    sink.record(e);
    expect(seen).toEqual([e]);
    expect(sink.accepting()).toBe(true);
    accepting = false;
    expect(sink.accepting()).toBe(false);
    expect((await read()).sum('mcp_tool_calls_total')).toBe(1);
    // A sink without `accepting` always accepts.
    expect(new TelemetryAuditSink({ record: () => undefined }, metrics).accepting()).toBe(true);
    // The real sink's throw is its policy (fail closed): not swallowed here.
    const throwing = new TelemetryAuditSink(
      {
        record: () => {
          throw new Error('disk full');
        },
      },
      metrics,
    );
    expect(() => throwing.record(call({}))).toThrow('disk full');
  });
});

describe('RequestTracing', () => {
  function tracer(opts: { ratio?: number; accept?: boolean } = {}): {
    tracing: RequestTracing;
    exporter: InMemorySpanExporter;
  } {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
      sampler: gatewaySampler(opts.ratio ?? 1),
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    shutdownAfterTest(provider);
    return { tracing: new RequestTracing(provider.getTracer('test'), opts.accept ?? true), exporter };
  }
  const remote = `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`;

  it('continues a valid traceparent, and gives the upstream call a child of the request span', () => {
    const { tracing, exporter } = tracer();
    const span = tracing.startRequest('tools/call', remote);
    const child = span.calls.start('fx', 'tools/call');
    expect(child.traceparent).toMatch(new RegExp(`^00-${'1'.repeat(32)}-[0-9a-f]{16}-01$`));
    child.end();
    span.end(call({}));
    const [upstream, request] = exporter.getFinishedSpans();
    expect(request!.name).toBe('tool.fx__echo');
    expect(request!.kind).toBe(SpanKind.SERVER);
    expect(request!.parentSpanContext?.spanId).toBe('2'.repeat(16));
    expect(upstream!.parentSpanContext?.spanId).toBe(request!.spanContext().spanId);
    expect(formatTraceparent(upstream!.spanContext())).toBe(child.traceparent);
  });

  it('starts a new trace for a malformed traceparent, or for any when acceptTraceparent is off', () => {
    for (const [tp, accept] of [
      ['00-zz-yy-01', true],
      [`00-${'0'.repeat(32)}-${'2'.repeat(16)}-01`, true],
      [`${remote}, ${remote}`, true],
      [remote, false],
    ] as const) {
      const { tracing, exporter } = tracer({ accept });
      tracing.startRequest('ping', tp).end({ type: 'mcp.request', method: 'ping', outcome: 'ok' });
      const [s] = exporter.getFinishedSpans();
      expect(s!.name).toBe('mcp.ping');
      expect(s!.parentSpanContext, `${tp} accept=${accept}`).toBeUndefined();
      expect(s!.spanContext().traceId).not.toBe('1'.repeat(32));
    }
  });

  it("samples by its own ratio, not the client's flag, and still propagates the trace", () => {
    const { tracing, exporter } = tracer({ ratio: 0 });
    const span = tracing.startRequest('tools/call', remote);
    const child = span.calls.start('fx', 'tools/call');
    // Not recorded, yet the upstream still gets the trace id (flags 00: not sampled).
    expect(child.traceparent).toMatch(new RegExp(`^00-${'1'.repeat(32)}-[0-9a-f]{16}-00$`));
    child.end(new Error('whatever'));
    span.end(call({}));
    expect(exporter.getFinishedSpans()).toHaveLength(0);
  });

  it("a client cannot choose a trace id that is always sampled: under a remote parent the draw is the gateway's", () => {
    // The trace-id ratio sampler is a fixed function of the id: at 0.5 this id is always in (or always out).
    const { tracing, exporter } = tracer({ ratio: 0.5 });
    for (const id of ['0'.repeat(31) + '1', 'f'.repeat(32)]) {
      const before = exporter.getFinishedSpans().length;
      for (let i = 0; i < 200; i++)
        tracing
          .startRequest('ping', `00-${id}-${'2'.repeat(16)}-01`)
          .end({ type: 'mcp.request', method: 'ping', outcome: 'ok' });
      const sampled = exporter.getFinishedSpans().length - before;
      expect(sampled, id).toBeGreaterThan(0);
      expect(sampled, id).toBeLessThan(200);
    }
  });

  it('names methods it does not know `mcp.other`, and records an unknown tool without its name', () => {
    const { tracing, exporter } = tracer();
    tracing
      .startRequest('x/made-up', undefined)
      .end({ type: 'mcp.request', method: 'x/made-up', outcome: 'error', errorCode: 'GW_MCP_METHOD_NOT_FOUND' });
    tracing
      .startRequest('tools/call', undefined)
      .end({ type: 'mcp.request', method: 'tools/call', tool: 'typed by client', outcome: 'denied' });
    const [a, b] = exporter.getFinishedSpans();
    expect(a!.name).toBe('mcp.other');
    expect(a!.status).toEqual({ code: 2, message: 'GW_MCP_METHOD_NOT_FOUND' });
    expect(b!.name).toBe('mcp.tools/call');
    expect(JSON.stringify(b!.attributes)).not.toContain('typed by client');
  });

  it('puts only the error code of a failed upstream call on its span', () => {
    const { tracing, exporter } = tracer();
    const span = tracing.startRequest('tools/call', undefined);
    span.calls
      .start('fx', 'tools/call')
      .end(Object.assign(new Error('upstream said: secret stuff'), { code: 'GW_UPSTREAM_REJECTED' }));
    span.calls.start('fx', 'tools/call').end(new Error('plain failure with text'));
    span.end(call({ outcome: 'error', errorCode: 'GW_UPSTREAM_REJECTED' }));
    const spans = exporter.getFinishedSpans();
    expect(spans[0]!.attributes['mcp.error_code']).toBe('GW_UPSTREAM_REJECTED');
    expect(spans[1]!.attributes['mcp.error_code']).toBe('GW_INTERNAL');
    expect(JSON.stringify(spans.map((s) => [s.attributes, s.status, s.events]))).not.toMatch(
      /secret stuff|plain failure/,
    );
  });
});

describe('Telemetry (the composition of both signals)', () => {
  const logger = pino({ level: 'silent' });
  const sources: MetricSources = { sessions: () => 0, upstreams: () => [] };
  const config = (prometheus: Partial<TelemetryConfig['metrics']['prometheus']>): TelemetryConfig => ({
    serviceName: 'gatehouse',
    metrics: { prometheus: { enabled: true, host: '127.0.0.1', port: 0, path: '/metrics', ...prometheus } },
    traces: { enabled: false, acceptTraceparent: true, sampleRatio: 1 },
  });

  it('is absent when off: the audit sink comes back unwrapped and there is no tracer', async () => {
    const t = new Telemetry({ config: undefined, serviceVersion: '0', logger, sources });
    const sink = { record: () => undefined };
    expect(t.audit(sink)).toBe(sink);
    expect(t.tracing).toBeUndefined();
    await t.start();
    expect(t.metricsUrl).toBeUndefined();
    await t.shutdown();
  });

  it('keeps two instances in one process apart (no global provider)', async () => {
    const a = new Telemetry({ config: config({}), serviceVersion: '0', logger, sources });
    const b = new Telemetry({ config: config({}), serviceVersion: '0', logger, sources });
    try {
      await a.start();
      await b.start();
      a.audit({ record: () => undefined }).record(call({}));
      a.audit({ record: () => undefined }).record(call({}));
      b.audit({ record: () => undefined }).record(call({}));
      expect(parseExposition(await (await fetch(a.metricsUrl!)).text()).sum('mcp_tool_calls_total')).toBe(2);
      expect(parseExposition(await (await fetch(b.metricsUrl!)).text()).sum('mcp_tool_calls_total')).toBe(1);
    } finally {
      await a.shutdown();
      await b.shutdown();
    }
  });

  it('fails to start on a port in use, and serves only its path', async () => {
    const a = new Telemetry({ config: config({ path: '/custom' }), serviceVersion: '0', logger, sources });
    await a.start();
    try {
      const port = Number(new URL(a.metricsUrl!).port);
      expect(new URL(a.metricsUrl!).pathname).toBe('/custom');
      expect((await fetch(new URL('/metrics', a.metricsUrl))).status).toBe(404);
      expect((await fetch(a.metricsUrl!, { method: 'POST' })).status).toBe(404);
      const b = new Telemetry({ config: config({ port }), serviceVersion: '0', logger, sources });
      await expect(b.start()).rejects.toThrow(/EADDRINUSE/);
      await b.shutdown();
    } finally {
      await a.shutdown();
    }
  });
});
