/**
 * Traces through a real gateway (docs/architecture.md §9): the SDK client sends a W3C `traceparent`, the gateway opens
 * a request span under it and a child span per upstream call, and the upstreams receive the child's context —
 * a stdio fixture in `params._meta.traceparent`, a Streamable HTTP fixture as the `traceparent` header (it
 * reports the headers it got). Spans go to an in-memory exporter injected through `AppDeps`.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FIXTURE_HTTP, post, startGateway, stdioFixtureYaml, type TestGateway } from '../helpers/gateway.js';
import { spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';
import { toolCalls, waitFor } from '../helpers/upstream-tools.js';

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-telemetry-traces-'));
const stdioRecord = join(dir, 'stdio.jsonl');
const httpRecord = join(dir, 'http.jsonl');
const exporter = new InMemorySpanExporter();
let web: SpawnedServer;
let gw: TestGateway;

beforeAll(async () => {
  web = await spawnServer(FIXTURE_HTTP, { env: { FIXTURE_RECORD_FILE: httpRecord } });
  gw = await startGateway(
    [
      stdioFixtureYaml('fx', { env: { FIXTURE_RECORD_FILE: stdioRecord } }),
      JSON.stringify({ name: 'web', transport: 'http', url: web.url, timeoutMs: 1000 }),
    ],
    {
      deps: { telemetry: { spanExporter: exporter } },
    },
  );
}, 30_000);

afterAll(async () => {
  await gw?.close();
  await web?.close();
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => exporter.reset());

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/;

function clientContext(): { traceId: string; spanId: string; header: string } {
  const traceId = randomBytes(16).toString('hex');
  const spanId = randomBytes(8).toString('hex');
  return { traceId, spanId, header: `00-${traceId}-${spanId}-01` };
}

async function tracedClient(traceparent?: string): ReturnType<TestGateway['client']> {
  return gw.client(traceparent === undefined ? {} : { transport: { requestInit: { headers: { traceparent } } } });
}

/** The spans of one trace, once the request span has ended (it ends after the answer is written). */
async function traceOf(
  traceId: string,
  requestSpan: string,
): Promise<{ request: ReadableSpan; spans: ReadableSpan[] }> {
  const request = await waitFor(`span ${requestSpan}`, () =>
    exporter.getFinishedSpans().find((s) => s.name === requestSpan && s.spanContext().traceId === traceId),
  );
  return { request, spans: exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId) };
}

describe('a traced tools/call', () => {
  it("continues a 2026-07-28 request's trace from its _meta.traceparent, and says the generation", async () => {
    const ctx = clientContext();
    const params = {
      name: 'fx__echo',
      arguments: { text: 'traced 2026' },
      _meta: {
        'io.modelcontextprotocol/protocolVersion': '2026-07-28',
        'io.modelcontextprotocol/clientCapabilities': {},
        traceparent: ctx.header,
      },
    };
    const r = await post(gw.url, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params }), {
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': 'tools/call',
      'mcp-name': 'fx__echo',
    });
    expect(r.status).toBe(200);
    const { request, spans } = await traceOf(ctx.traceId, 'tool.fx__echo');
    expect(request.parentSpanContext?.spanId).toBe(ctx.spanId);
    expect(request.attributes).toMatchObject({ 'mcp.protocol.version': '2026-07-28', 'mcp.outcome': 'ok' });
    expect(spans.filter((s) => s.name === 'upstream.tools/call')).toHaveLength(1);
  });

  it('keeps the client trace id: request span under the client span, upstream call span under it', async () => {
    const ctx = clientContext();
    const client = await tracedClient(ctx.header);
    await client.callTool({ name: 'fx__echo', arguments: { text: 'traced' } });

    const { request, spans } = await traceOf(ctx.traceId, 'tool.fx__echo');
    expect(request.kind).toBe(SpanKind.SERVER);
    expect(request.parentSpanContext?.spanId).toBe(ctx.spanId);
    expect(request.attributes).toMatchObject({
      'mcp.method': 'tools/call',
      'mcp.tool': 'fx__echo',
      'mcp.upstream': 'fx',
      'mcp.outcome': 'ok',
    });

    const calls = spans.filter((s) => s.name === 'upstream.tools/call');
    expect(calls).toHaveLength(1);
    const call = calls[0]!;
    expect(call.kind).toBe(SpanKind.CLIENT);
    expect(call.parentSpanContext?.spanId).toBe(request.spanContext().spanId);
    expect(call.spanContext().traceId).toBe(ctx.traceId);
    expect(call.attributes).toMatchObject({ 'mcp.upstream': 'fx', 'mcp.method': 'tools/call' });

    // The stdio upstream got the upstream call span's context in _meta (no headers on stdio).
    const sent = toolCalls(stdioRecord, 'echo').at(-1)!;
    const meta = sent.params?._meta as Record<string, unknown> | undefined;
    expect(meta?.traceparent).toBe(`00-${ctx.traceId}-${call.spanContext().spanId}-01`);
  });

  it('sends the traceparent header to a Streamable HTTP upstream', async () => {
    const ctx = clientContext();
    const client = await tracedClient(ctx.header);
    const result = await client.callTool({ name: 'web__headers_report', arguments: {} });
    const headers = JSON.parse((result.content as { text: string }[])[0]!.text) as Record<string, string>;

    const { spans } = await traceOf(ctx.traceId, 'tool.web__headers_report');
    const call = spans.find((s) => s.name === 'upstream.tools/call')!;
    expect(call.attributes['mcp.upstream']).toBe('web');
    expect(headers.traceparent).toBe(`00-${ctx.traceId}-${call.spanContext().spanId}-01`);
    // …and in _meta too, the same value.
    const sent = toolCalls(httpRecord, 'headers_report').at(-1)!;
    expect((sent.params?._meta as Record<string, unknown>).traceparent).toBe(headers.traceparent);
  });

  it("preserves the client's own _meta, and the gateway's traceparent replaces the client's", async () => {
    const ctx = clientContext();
    const client = await tracedClient(ctx.header);
    const forged = `00-${'ab'.repeat(16)}-${'cd'.repeat(8)}-01`;
    await client.callTool({
      name: 'fx__echo',
      arguments: { text: 'meta' },
      _meta: { traceparent: forged, 'example.com/note': 'kept' },
    });

    const { spans } = await traceOf(ctx.traceId, 'tool.fx__echo');
    const call = spans.find((s) => s.name === 'upstream.tools/call')!;
    const meta = toolCalls(stdioRecord, 'echo').at(-1)!.params?._meta as Record<string, unknown>;
    expect(meta['example.com/note']).toBe('kept');
    expect(meta.traceparent).toBe(`00-${ctx.traceId}-${call.spanContext().spanId}-01`);
  });

  it('starts a new trace when the client sends none, and names other methods mcp.<method>', async () => {
    const client = await tracedClient();
    await client.listTools();
    const list = await waitFor('tools/list span', () =>
      exporter.getFinishedSpans().find((s) => s.name === 'mcp.tools/list'),
    );
    expect(list.parentSpanContext).toBeUndefined();
    expect(list.attributes['mcp.outcome']).toBe('ok');
  });

  it('marks a failed upstream call: error status and code on both spans', async () => {
    const ctx = clientContext();
    const client = await tracedClient(ctx.header);
    // web's timeoutMs is 1000: a 3 s call times out (GW_UPSTREAM_TIMEOUT).
    await expect(client.callTool({ name: 'web__slow', arguments: { ms: 3000 } })).rejects.toThrow();
    const { request, spans } = await traceOf(ctx.traceId, 'tool.web__slow');
    const call = spans.find((s) => s.name === 'upstream.tools/call')!;
    expect(request.attributes).toMatchObject({ 'mcp.outcome': 'error', 'mcp.error_code': 'GW_UPSTREAM_TIMEOUT' });
    expect(request.status).toEqual({ code: SpanStatusCode.ERROR, message: 'GW_UPSTREAM_TIMEOUT' });
    expect(call.attributes['mcp.error_code']).toBe('GW_UPSTREAM_TIMEOUT');
    expect(call.status).toEqual({ code: SpanStatusCode.ERROR, message: 'GW_UPSTREAM_TIMEOUT' });
  });

  it('sends a well-formed traceparent even to an untraced request', () => {
    // Every upstream tools/call recorded in this file carried a gateway traceparent.
    for (const line of toolCalls(stdioRecord, 'echo'))
      expect(String((line.params?._meta as Record<string, unknown>).traceparent)).toMatch(TRACEPARENT);
  });
});
