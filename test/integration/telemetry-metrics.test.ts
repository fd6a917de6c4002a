/**
 * Metrics through a real gateway (docs/architecture.md §9): dev-mode tokens, a policy written here, a stdio fixture
 * upstream, the SDK client — then the Prometheus endpoint on its own port is scraped like Prometheus would,
 * and every counter must hold exactly the calls made. The Grafana dashboard's queries are checked against the
 * same scrape, so a renamed metric breaks a test, not a dashboard.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  initializeBody,
  post,
  startGateway,
  stdioFixtureYaml,
  type LogLine,
  type TestGateway,
} from '../helpers/gateway.js';
import { REPO_ROOT } from '../helpers/spawn-server.js';
import { scrape, type Scrape } from '../helpers/telemetry-scrape.js';

const POLICY = `version: 1
rules:
  - id: fx.no-env
    effect: deny
    match:
      tools: ["fx__env_*"]
  - id: fx.all
    effect: allow
    match:
      tools: ["fx__*"]
    when:
      authenticated: true
`;

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-telemetry-metrics-'));
let gw: TestGateway;
let metricsUrl: string;
let token: string;

beforeAll(async () => {
  const policyDir = join(dir, 'policy');
  mkdirSync(policyDir);
  writeFileSync(join(policyDir, 'fx.yaml'), POLICY);
  gw = await startGateway([stdioFixtureYaml('fx')], {
    top: [
      'auth:\n  mode: dev',
      `policy:\n  dir: ${JSON.stringify(policyDir)}`,
      'telemetry:\n  metrics:\n    prometheus: { enabled: true, port: 0 }',
      'limits:\n  rules:\n    - { id: add-once, tools: ["fx__add"], rate: { perHour: 1 } }',
    ].join('\n'),
    // Few new sessions per address, so the dashboard test can run into the edge's limit (an http.rejected record).
    server: { httpRateLimit: { sessions: { windowSeconds: 600, perIp: 8, perClient: 8 } } },
  });
  metricsUrl = gw.app.telemetry.metricsUrl!;
  token = await gw.token({ sub: 'alice', scopes: [] });
}, 30_000);

afterAll(async () => {
  await gw?.close();
  rmSync(dir, { recursive: true, force: true });
});

function audit(): Record<string, unknown>[] {
  return gw.logs.filter((l: LogLine) => l.audit !== undefined).map((l) => l.audit as Record<string, unknown>);
}

async function rawSession(): Promise<string> {
  const r = await post(gw.url, initializeBody(), { authorization: `Bearer ${token}` });
  const sid = r.headers.get('mcp-session-id');
  if (r.status !== 200 || sid === null) throw new Error(`initialize failed: ${r.status} ${r.text}`);
  return sid;
}

describe('the Prometheus endpoint', () => {
  let s: Scrape;

  beforeAll(async () => {
    const client = await gw.client({ transport: { requestInit: { headers: { Authorization: `Bearer ${token}` } } } });
    for (let i = 0; i < 3; i++)
      expect((await client.callTool({ name: 'fx__echo', arguments: { text: `hi ${i}` } })).isError).toBeFalsy();
    // Denied by rule fx.no-env: answered as an unknown tool, counted as denied.
    for (let i = 0; i < 2; i++)
      await expect(client.callTool({ name: 'fx__env_report', arguments: {} })).rejects.toThrow();
    // A name the catalogue does not know: one bounded label, never the client's text.
    await expect(client.callTool({ name: 'made-up-tool-name-123', arguments: {} })).rejects.toThrow();
    // One call per hour: the second is refused by the limit add-once.
    expect((await client.callTool({ name: 'fx__add', arguments: { a: 1, b: 2 } })).isError).toBeFalsy();
    await expect(client.callTool({ name: 'fx__add', arguments: { a: 1, b: 2 } })).rejects.toThrow();
    const refused = await post(gw.url, initializeBody(), { authorization: 'Bearer not.a.jwt' });
    expect(refused.status).toBe(401);
    s = await scrape(metricsUrl);
  });

  it('is served on its own port, and only at its path', async () => {
    expect(new URL(metricsUrl).port).not.toBe(new URL(gw.url).port);
    expect(new URL(metricsUrl).pathname).toBe('/metrics');
    expect((await fetch(new URL('/other', metricsUrl))).status).toBe(404);
    // Nothing of the metrics on the MCP listener.
    expect((await fetch(new URL('/metrics', gw.url))).status).toBe(404);
  });

  it('counts tool calls by tool, upstream and outcome, exactly', () => {
    expect(s.sum('mcp_tool_calls_total', { tool: 'fx__echo', upstream: 'fx', outcome: 'ok', error_code: '' })).toBe(3);
    expect(s.sum('mcp_tool_calls_total', { tool: 'fx__env_report', upstream: 'fx', outcome: 'denied' })).toBe(2);
    const deniedCodes = new Set(
      audit()
        .filter((e) => e.tool === 'fx__env_report')
        .map((e) => e.errorCode),
    );
    expect(deniedCodes.size).toBe(1);
    expect(s.sum('mcp_tool_calls_total', { tool: 'fx__env_report', error_code: String([...deniedCodes][0]) })).toBe(2);
    expect(s.sum('mcp_tool_calls_total', { tool: '(unknown)', upstream: '' })).toBe(1);
    expect(s.text).not.toContain('made-up-tool-name-123');
    expect(s.sum('mcp_tool_calls_total', { tool: 'fx__add', outcome: 'ok' })).toBe(1);
    expect(s.sum('mcp_tool_calls_total', { tool: 'fx__add', outcome: 'denied', error_code: 'rate_limited' })).toBe(1);
    expect(s.sum('mcp_tool_calls_total')).toBe(8);
    expect(s.sum('mcp_requests_total', { method: 'tools/call' })).toBe(8);
    // The SDK 1.x client's session: every call counted under the version it negotiated.
    expect(s.sum('mcp_requests_total', { method: 'tools/call', protocol_version: '2025-11-25' })).toBe(8);
  });

  it('counts rate-limit refusals by limit and tool', () => {
    expect(s.sum('mcp_ratelimit_rejections_total', { limit: 'add-once', tool: 'fx__add' })).toBe(1);
    expect(s.sum('mcp_ratelimit_rejections_total')).toBe(1);
  });

  it('records a duration histogram per tool in seconds with gateway-sized buckets', () => {
    expect(s.families.has('mcp_tool_duration')).toBe(true);
    expect(s.sum('mcp_tool_duration_count', { tool: 'fx__echo', outcome: 'ok' })).toBe(3);
    expect(s.sum('mcp_tool_duration_bucket', { tool: 'fx__echo', outcome: 'ok', le: '+Inf' })).toBe(3);
    const bounds = s.samples
      .filter((x) => x.name === 'mcp_tool_duration_bucket' && x.labels.tool === 'fx__echo')
      .map((x) => x.labels.le);
    expect(bounds).toContain('0.0005');
    expect(bounds).toContain('60');
    // A local echo takes well under 10 s: the 10 s bucket holds every call.
    expect(s.sum('mcp_tool_duration_bucket', { tool: 'fx__echo', le: '10' })).toBe(3);
  });

  it('counts authentication failures by reason', () => {
    const reasons = audit()
      .filter((e) => e.type === 'auth.failure')
      .map((e) => String(e.reason));
    expect(reasons).toHaveLength(1);
    expect(s.sum('mcp_auth_failures_total')).toBe(1);
    expect(s.sum('mcp_auth_failures_total', { reason: reasons[0]! })).toBe(1);
  });

  it('reports each upstream state as a gauge', () => {
    expect(s.sum('mcp_upstream_health', { upstream: 'fx', state: 'ready' })).toBe(1);
    expect(s.sum('mcp_upstream_health', { upstream: 'fx', state: 'unhealthy' })).toBe(0);
    expect(s.sum('mcp_policy_revision_info', { revision: gw.app.policyReload!.revision })).toBe(1);
    expect(s.sum('mcp_policy_reload_failing')).toBe(0);
    expect(s.sum('mcp_audit_lost_total')).toBe(0);
    // The resilience layer's breaker (on by default): closed.
    expect(s.sum('mcp_upstream_breaker_state', { upstream: 'fx' })).toBe(0);
  });

  it('follows sessions as they open and close', async () => {
    const before = (await scrape(metricsUrl)).sum('mcp_server_active_sessions');
    expect(before).toBe(gw.app.frontDoor.sessionCount);
    expect(before).toBeGreaterThanOrEqual(1);
    const sid = await rawSession();
    expect((await scrape(metricsUrl)).sum('mcp_server_active_sessions')).toBe(before + 1);
    const del = await fetch(gw.url, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${token}`, 'mcp-session-id': sid },
    });
    expect(del.status).toBe(200);
    expect((await scrape(metricsUrl)).sum('mcp_server_active_sessions')).toBe(before);
  });
});

describe('the Grafana dashboard', () => {
  const file = join(REPO_ROOT, 'k8s/grafana/gatehouse-dashboard.json');

  it('parses, and every metric it queries is one the gateway exports', async () => {
    // Run into the edge's session limit once, so the HTTP rejection counter has data.
    let status = 0;
    for (let i = 0; i < 12 && status !== 429; i++)
      status = (await post(gw.url, initializeBody(), { authorization: `Bearer ${token}` })).status;
    expect(status).toBe(429);
    // …and reload a changed policy, so the reload counter has one.
    writeFileSync(
      join(dir, 'policy', 'fx.yaml'),
      `${POLICY}  - id: fx.extra\n    effect: deny\n    match:\n      tools: ["fx__crash"]\n`,
    );
    gw.app.reloadPolicy('test');
    const dashboard = JSON.parse(readFileSync(file, 'utf8')) as {
      panels: { title: string; targets?: { expr: string }[] }[];
    };
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
    expect(exprs.length).toBeGreaterThanOrEqual(7);
    const exported = await scrape(metricsUrl);
    // Every family is announced by `# TYPE`, with data or not; a histogram's series are `<family>_bucket|_sum|_count`.
    const series = new Set<string>();
    for (const f of exported.families)
      for (const suffix of ['', '_bucket', '_sum', '_count']) series.add(`${f}${suffix}`);
    for (const { panel, expr } of exprs) {
      const names = [...expr.matchAll(/\b(mcp_[a-z0-9_]+)/g)].map((m) => m[1]!);
      expect(names.length, `${panel}: ${expr}`).toBeGreaterThan(0);
      for (const name of names)
        expect(series.has(name), `${panel} queries ${name}, which /metrics does not export`).toBe(true);
    }
    expect(exported.sum('mcp_http_rejections_total', { status: '429' })).toBeGreaterThanOrEqual(1);
    expect(exported.sum('mcp_policy_reloads_total', { result: 'ok' })).toBeGreaterThanOrEqual(1);
  });
});
