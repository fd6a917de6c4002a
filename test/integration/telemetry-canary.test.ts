/**
 * Canaries for the telemetry (docs/architecture.md §2: the token never leaves edge/ and auth/; arguments are never
 * recorded raw). A real gateway with metrics and traces on is fed a bearer token, an upstream's static key, arguments,
 * a `_meta` field, an unknown tool name and a bad token, each carrying a unique marker; none may show up in the
 * Prometheus output or in any exported span (name, attributes, status, events, resource).
 */
import { randomBytes } from 'node:crypto';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FIXTURE_HTTP,
  initializeBody,
  post,
  startGateway,
  stdioFixtureYaml,
  type TestGateway,
} from '../helpers/gateway.js';
import { spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';
import { scrape } from '../helpers/telemetry-scrape.js';
import { waitFor } from '../helpers/upstream-tools.js';

const marker = (what: string): string => `canary${what}${randomBytes(8).toString('hex')}`;
const KEY = marker('key');
const ARG = marker('arg');
const META = marker('meta');
const TOOL = marker('tool');
const BAD_TOKEN = marker('badtoken');
const exporter = new InMemorySpanExporter();
let web: SpawnedServer;
let gw: TestGateway;
let token: string;

beforeAll(async () => {
  web = await spawnServer(FIXTURE_HTTP);
  gw = await startGateway(
    [
      stdioFixtureYaml('fx'),
      JSON.stringify({
        name: 'web',
        transport: 'http',
        url: web.url,
        headers: { 'X-API-Key': { fromEnv: 'CANARY_KEY' } },
      }),
    ],
    {
      top: 'auth:\n  mode: dev\ntelemetry:\n  metrics:\n    prometheus: { enabled: true, port: 0 }\n',
      env: { ...process.env, CANARY_KEY: KEY },
      deps: { telemetry: { spanExporter: exporter } },
    },
  );
  token = await gw.token({ sub: 'canary-subject', scopes: [] });
}, 30_000);

afterAll(async () => {
  await gw?.close();
  await web?.close();
});

describe('telemetry canaries', () => {
  it('no token, key, argument, _meta or unknown tool name in /metrics or in spans', async () => {
    const client = await gw.client({ transport: { requestInit: { headers: { Authorization: `Bearer ${token}` } } } });
    await client.callTool({ name: 'fx__echo', arguments: { text: ARG }, _meta: { note: META } });
    const headers = await client.callTool({ name: 'web__headers_report', arguments: {} });
    // The key did reach the upstream, so its absence below means something (its echo comes back redacted:
    // threat model #17, test/integration/secret-redaction.test.ts).
    expect(JSON.stringify(headers)).toContain('x-api-key\\":\\"[REDACTED]');
    await client.callTool({ name: 'web__echo', arguments: { text: ARG } });
    await expect(client.callTool({ name: TOOL, arguments: { text: ARG } })).rejects.toThrow();
    expect((await post(gw.url, initializeBody(), { authorization: `Bearer ${BAD_TOKEN}` })).status).toBe(401);
    await waitFor('the spans of the unknown tool call', () =>
      exporter.getFinishedSpans().some((s) => s.name === 'mcp.tools/call'),
    );

    const metrics = (await scrape(gw.app.telemetry.metricsUrl!)).text;
    expect(metrics).toContain('mcp_tool_calls_total');
    const spans = exporter.getFinishedSpans();
    expect(spans.length).toBeGreaterThanOrEqual(6);
    const spanText = JSON.stringify(
      spans.map((s) => ({
        name: s.name,
        attributes: s.attributes,
        status: s.status,
        events: s.events,
        links: s.links,
        resource: s.resource.attributes,
      })),
    );
    // The token as a whole and each of its parts (header, claims, signature).
    const secrets = [KEY, ARG, META, TOOL, BAD_TOKEN, token, ...token.split('.')];
    for (const secret of secrets) {
      expect(metrics.includes(secret), `metrics contain ${secret.slice(0, 24)}`).toBe(false);
      expect(spanText.includes(secret), `spans contain ${secret.slice(0, 24)}`).toBe(false);
    }
    // Nor the subject: spans leave the process for a collector with its own readers.
    expect(spanText).not.toContain('canary-subject');
  });

  it('closes the metrics endpoint with the app', async () => {
    const url = gw.app.telemetry.metricsUrl!;
    expect((await fetch(url)).status).toBe(200);
    await gw.close();
    await expect(fetch(url)).rejects.toThrow();
  });
});
