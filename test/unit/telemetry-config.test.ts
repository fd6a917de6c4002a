/** `telemetry:` in gatehouse.yaml: defaults (mirrored in the schema), and what the loader refuses, where. */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CONFIG_DEFAULTS } from '../../src/config/index.js';
import { useConfigFolder } from '../helpers/config-folder.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const schema = JSON.parse(fs.readFileSync(path.join(root, 'schemas/gatehouse.schema.json'), 'utf8')) as {
  $defs: Record<string, { properties: Record<string, { default?: unknown }> }>;
};

const STDIO = `upstreams:
  - name: everything
    transport: stdio
    command: npx
`;

const { load, problems } = useConfigFolder('telemetry-config');

describe('telemetry config', () => {
  it('is all off by default, with the documented defaults filled in', () => {
    expect(load(STDIO).telemetry).toEqual({
      serviceName: 'gatehouse',
      metrics: { prometheus: { enabled: false, host: '127.0.0.1', port: 9464, path: '/metrics' } },
      traces: { enabled: false, acceptTraceparent: true, sampleRatio: 1 },
    });
  });

  it("states the loader's defaults in the schema", () => {
    const d = schema.$defs;
    for (const [key, value] of Object.entries(CONFIG_DEFAULTS.telemetry))
      expect(d.telemetry!.properties[key]!.default, `telemetry.${key}`).toEqual(value);
    for (const [key, value] of Object.entries(CONFIG_DEFAULTS.telemetryPrometheus))
      expect(d.telemetryPrometheus!.properties[key]!.default, `prometheus.${key}`).toEqual(value);
    for (const [key, value] of Object.entries(CONFIG_DEFAULTS.telemetryMetricsOtlp))
      expect(d.telemetryMetricsOtlp!.properties[key]!.default, `metrics.otlp.${key}`).toEqual(value);
    for (const [key, value] of Object.entries(CONFIG_DEFAULTS.telemetryTraces))
      expect(d.telemetryTraces!.properties[key]!.default, `traces.${key}`).toEqual(value);
  });

  it('takes a full section', () => {
    const t = load(`${STDIO}telemetry:
  serviceName: gw-eu
  metrics:
    prometheus: { enabled: true, host: 0.0.0.0, port: 9100, path: /prom }
    otlp: { endpoint: "http://collector:4318/v1/metrics", intervalMs: 15000 }
  traces:
    enabled: true
    acceptTraceparent: false
    sampleRatio: 0.25
    otlp: { endpoint: "https://collector.example:4318/v1/traces" }
`).telemetry;
    expect(t).toEqual({
      serviceName: 'gw-eu',
      metrics: {
        prometheus: { enabled: true, host: '0.0.0.0', port: 9100, path: '/prom' },
        otlp: { endpoint: 'http://collector:4318/v1/metrics', intervalMs: 15000 },
      },
      traces: {
        enabled: true,
        acceptTraceparent: false,
        sampleRatio: 0.25,
        otlp: { endpoint: 'https://collector.example:4318/v1/traces' },
      },
    });
    expect(Object.isFrozen(t!.metrics.prometheus)).toBe(true);
  });

  it('refuses traces that are on with nowhere to go', () => {
    const p = problems(`${STDIO}telemetry:\n  traces: { enabled: true }\n`);
    expect(p.map((x) => [x.path, x.message])).toEqual([
      ['/telemetry/traces/enabled', 'traces are enabled but have nowhere to go: set telemetry.traces.otlp.endpoint'],
    ]);
    expect(p[0]!.line).toBe(6);
  });

  it('refuses the MCP port for metrics, and an impossible port', () => {
    const same = problems(
      `server:\n  port: 8080\n${STDIO}telemetry:\n  metrics:\n    prometheus: { enabled: true, port: 8080 }\n`,
    );
    expect(same.map((x) => x.path)).toEqual(['/telemetry/metrics/prometheus/port']);
    expect(same[0]!.message).toContain('is the MCP port');
    const range = problems(`${STDIO}telemetry:\n  metrics:\n    prometheus: { enabled: true, port: 70000 }\n`);
    expect(range.map((x) => x.path)).toEqual(['/telemetry/metrics/prometheus/port']);
  });

  it('refuses endpoints with credentials, a query or another scheme', () => {
    const creds = problems(
      `${STDIO}telemetry:\n  traces:\n    enabled: true\n    otlp: { endpoint: "https://user:pw@collector:4318/v1/traces" }\n`,
    );
    expect(creds.map((x) => x.path)).toEqual(['/telemetry/traces/otlp/endpoint']);
    expect(creds[0]!.message).toContain('OTEL_EXPORTER_OTLP_HEADERS');
    // The secret itself is never repeated back.
    expect(creds[0]!.message).not.toContain('pw');
    const query = problems(
      `${STDIO}telemetry:\n  metrics:\n    otlp: { endpoint: "http://collector:4318/v1/metrics?api_key=abc" }\n`,
    );
    expect(query.map((x) => x.path)).toEqual(['/telemetry/metrics/otlp/endpoint']);
    const scheme = problems(`${STDIO}telemetry:\n  metrics:\n    otlp: { endpoint: "ftp://collector/v1/metrics" }\n`);
    expect(scheme.map((x) => x.path)).toEqual(['/telemetry/metrics/otlp/endpoint']);
  });

  it('refuses unknown keys and a ratio outside 0..1 (schema)', () => {
    expect(problems(`${STDIO}telemetry:\n  tracing: {}\n`).map((x) => x.path)).toEqual(['/telemetry/tracing']);
    expect(problems(`${STDIO}telemetry:\n  traces: { sampleRatio: 1.5 }\n`).map((x) => x.path)).toEqual([
      '/telemetry/traces/sampleRatio',
    ]);
  });
});
