/**
 * The OTLP exporters as configured, against a local stand-in collector (a plain HTTP server that keeps what it
 * is sent): spans from `telemetry.traces.otlp.endpoint`, metrics from `telemetry.metrics.otlp.endpoint`, and
 * what is still buffered is flushed when the app closes.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, stdioFixtureYaml, type TestGateway } from '../helpers/gateway.js';

interface Received {
  path: string;
  contentType: string;
  body: Buffer;
}

const received: Received[] = [];
let collector: Server;
let base: string;
let gw: TestGateway | undefined;

beforeAll(async () => {
  collector = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({
        path: req.url ?? '',
        contentType: String(req.headers['content-type']),
        body: Buffer.concat(chunks),
      });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
}, 30_000);

afterAll(async () => {
  await gw?.close();
  await new Promise((resolve) => collector.close(resolve));
});

describe('OTLP export', () => {
  it('sends spans and metrics to the configured collector, flushing on close', async () => {
    gw = await startGateway([stdioFixtureYaml('fx')], {
      top: [
        'telemetry:',
        '  serviceName: gatehouse-otlp-test',
        '  metrics:',
        `    otlp: { endpoint: "${base}/v1/metrics", intervalMs: 60000 }`,
        '  traces:',
        '    enabled: true',
        `    otlp: { endpoint: "${base}/v1/traces" }`,
      ].join('\n'),
    });
    const client = await gw.client();
    await client.callTool({ name: 'fx__echo', arguments: { text: 'to the collector' } });
    // Nothing is due yet (the batch and the 60 s interval): close must flush both.
    await gw.close();

    const traces = received.filter((r) => r.path === '/v1/traces');
    const metrics = received.filter((r) => r.path === '/v1/metrics');
    expect(traces.length).toBeGreaterThanOrEqual(1);
    expect(metrics.length).toBeGreaterThanOrEqual(1);
    const traceBody = Buffer.concat(traces.map((t) => t.body)).toString('latin1');
    expect(traceBody).toContain('tool.fx__echo');
    expect(traceBody).toContain('upstream.tools/call');
    expect(traceBody).toContain('gatehouse-otlp-test');
    const metricBody = Buffer.concat(metrics.map((m) => m.body)).toString('latin1');
    expect(metricBody).toContain('mcp.tool.calls');
    expect(metricBody).toContain('mcp.server.active_sessions');
    // The argument went to the upstream, never to the collector.
    expect(traceBody + metricBody).not.toContain('to the collector');
  });
});
