import type { ServerConfig, TelemetryConfig } from './types.js';

/**
 * The `telemetry` section's defaults (spread into `CONFIG_DEFAULTS`; the schema's `default` annotations repeat
 * them, and test/unit/telemetry-config.test.ts keeps both equal). Everything is off until asked for: a metrics
 * listener is one more open port, and traces leave the process.
 */
export const TELEMETRY_DEFAULTS = {
  telemetry: { serviceName: 'gatehouse' },
  telemetryPrometheus: { enabled: false, host: '127.0.0.1', port: 9464, path: '/metrics' },
  telemetryMetricsOtlp: { intervalMs: 60_000 },
  telemetryTraces: { enabled: false, acceptTraceparent: true, sampleRatio: 1 },
} as const;

/** `telemetry` as written (the schema has checked the shapes and ranges). */
export interface RawTelemetry {
  serviceName?: string;
  metrics?: {
    prometheus?: Partial<TelemetryConfig['metrics']['prometheus']>;
    otlp?: { endpoint: string; intervalMs?: number };
  };
  traces?: {
    enabled?: boolean;
    acceptTraceparent?: boolean;
    sampleRatio?: number;
    otlp?: { endpoint: string };
  };
}

/**
 * Fills the defaults and checks what the schema cannot: the endpoints are usable URLs without credentials,
 * the metrics listener does not take the MCP port, and traces that are on have somewhere to go.
 */
export function normaliseTelemetry(
  raw: RawTelemetry,
  server: ServerConfig | undefined,
  report: (pointer: string, message: string) => void,
): TelemetryConfig {
  const d = TELEMETRY_DEFAULTS;
  const prometheus = { ...d.telemetryPrometheus, ...raw.metrics?.prometheus };
  if (prometheus.enabled && server !== undefined && prometheus.port !== 0 && prometheus.port === server.port) {
    // Its own listener (no auth, no TLS): sharing the MCP port is impossible, and a typo here should say so.
    report(
      '/telemetry/metrics/prometheus/port',
      `is the MCP port (server.port ${server.port}); the metrics endpoint needs its own port`,
    );
  }
  const metricsOtlp = raw.metrics?.otlp;
  if (metricsOtlp !== undefined) checkEndpoint(metricsOtlp.endpoint, '/telemetry/metrics/otlp/endpoint', report);
  const tracesRaw = raw.traces ?? {};
  if (tracesRaw.otlp !== undefined) checkEndpoint(tracesRaw.otlp.endpoint, '/telemetry/traces/otlp/endpoint', report);
  const traces = {
    enabled: tracesRaw.enabled ?? d.telemetryTraces.enabled,
    acceptTraceparent: tracesRaw.acceptTraceparent ?? d.telemetryTraces.acceptTraceparent,
    sampleRatio: tracesRaw.sampleRatio ?? d.telemetryTraces.sampleRatio,
    ...(tracesRaw.otlp !== undefined ? { otlp: { endpoint: tracesRaw.otlp.endpoint } } : {}),
  };
  if (traces.enabled && traces.otlp === undefined)
    report(
      '/telemetry/traces/enabled',
      'traces are enabled but have nowhere to go: set telemetry.traces.otlp.endpoint',
    );
  return {
    serviceName: raw.serviceName ?? d.telemetry.serviceName,
    metrics: {
      prometheus,
      ...(metricsOtlp !== undefined
        ? {
            otlp: {
              endpoint: metricsOtlp.endpoint,
              intervalMs: metricsOtlp.intervalMs ?? d.telemetryMetricsOtlp.intervalMs,
            },
          }
        : {}),
    },
    traces,
  };
}

/** An OTLP/HTTP endpoint: http(s), no credentials in the URL (they would end up in logs; use OTEL_EXPORTER_OTLP_HEADERS). */
function checkEndpoint(raw: string, pointer: string, report: (pointer: string, message: string) => void): void {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    report(pointer, 'is not a valid URL');
    return;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') report(pointer, 'must use http: or https:');
  if (url.username !== '' || url.password !== '')
    report(pointer, 'must not contain user:password@; send credentials with OTEL_EXPORTER_OTLP_HEADERS');
  if (url.search !== '' || raw.includes('#'))
    report(pointer, 'must not contain a ?query or #fragment; send credentials with OTEL_EXPORTER_OTLP_HEADERS');
}
