/**
 * Real upstream servers through the gateway, with the official SDK client as the agent:
 * server-everything over stdio and Streamable HTTP, the orders example with its static key (right and wrong),
 * the legacy HTTP+SSE transport, and what headers reach an HTTP upstream.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EVERYTHING,
  everythingStdioYaml,
  FIXTURE_HTTP,
  ORDERS_SERVER,
  startGateway,
  stdioFixtureYaml,
  type TestGateway,
} from '../helpers/gateway.js';
import { spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';
import { freePort, readRecord } from '../helpers/upstream-tools.js';

const ORDERS_KEY = 'orders-key-for-tests-0001';

function textOf(r: unknown): string {
  const content = (r as CallToolResult).content;
  const first = content[0];
  return first?.type === 'text' ? first.text : '';
}

async function callError(client: Client, name: string, args: Record<string, unknown> = {}): Promise<Error> {
  try {
    const r = await client.callTool({ name, arguments: args });
    throw new Error(`expected ${name} to fail, got ${JSON.stringify(r)}`);
  } catch (err) {
    return err as Error;
  }
}

async function readyz(gw: TestGateway): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(new URL('/readyz', gw.url));
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('server-everything over stdio and Streamable HTTP in one gateway', () => {
  let everythingHttp: SpawnedServer;
  let gw: TestGateway;
  let client: Client;

  beforeAll(async () => {
    const port = await freePort();
    everythingHttp = await spawnServer(EVERYTHING, {
      args: ['streamableHttp'],
      env: { PORT: String(port) },
      ready: /Streamable HTTP Server listening on port \d+/,
    });
    gw = await startGateway([
      everythingStdioYaml('ev-stdio'),
      // Both list the same demo resources: one side exposes none, so no URI is ambiguous.
      JSON.stringify({
        name: 'ev-http',
        transport: 'http',
        url: `http://127.0.0.1:${port}/mcp`,
        expose: { resources: false },
      }),
    ]);
    client = await gw.client();
  });

  afterAll(async () => {
    await gw?.close();
    await everythingHttp?.close();
  });

  it('lists the tools of both namespaced, the same set on each side', async () => {
    const names = (await client.listTools()).tools.map((t) => t.name);
    const stdio = names.filter((n) => n.startsWith('ev-stdio__')).map((n) => n.slice('ev-stdio__'.length));
    const http = names.filter((n) => n.startsWith('ev-http__')).map((n) => n.slice('ev-http__'.length));
    expect(stdio).toContain('echo');
    expect(stdio.length).toBeGreaterThan(5);
    expect(http.sort()).toEqual(stdio.sort());
    // Nothing unprefixed, and every name passes the MCP rule.
    expect(names.every((n) => n.startsWith('ev-stdio__') || n.startsWith('ev-http__'))).toBe(true);
    for (const n of names) expect(n).toMatch(/^[A-Za-z0-9._-]{1,128}$/);
    expect(gw.app.upstreams.health().map((h) => [h.name, h.state])).toEqual([
      ['ev-stdio', 'ready'],
      ['ev-http', 'ready'],
    ]);
  });

  it('calls echo through each transport', async () => {
    const [viaStdio, viaHttp] = await Promise.all([
      client.callTool({ name: 'ev-stdio__echo', arguments: { message: 'over stdio' } }),
      client.callTool({ name: 'ev-http__echo', arguments: { message: 'over http' } }),
    ]);
    expect(textOf(viaStdio)).toBe('Echo: over stdio');
    expect(textOf(viaHttp)).toBe('Echo: over http');
  });

  it('routes resources of the exposing upstream only', async () => {
    const { resources } = await client.listResources();
    expect(resources.length).toBeGreaterThan(0);
    const first = resources[0]!;
    expect(gw.app.router.catalogue.resolveResource(first.uri)).toBe('ev-stdio');
    const read = await client.readResource({ uri: first.uri });
    expect(read.contents[0]?.uri).toBe(first.uri);
    expect(gw.logs.some((l) => l.issue === 'ambiguous-resource')).toBe(false);
  });
});

describe('the orders example over HTTP with its static key', () => {
  let orders: SpawnedServer;
  let ordersUrl: string;

  const ordersYaml = (extra: Record<string, unknown> = {}): string =>
    JSON.stringify({
      name: 'orders',
      transport: 'http',
      url: ordersUrl,
      headers: { 'X-API-Key': { fromEnv: 'ORDERS_KEY' } },
      timeoutMs: 5000,
      ...extra,
    });

  beforeAll(async () => {
    orders = await spawnServer(ORDERS_SERVER, { args: ['--port', '0'], env: { ORDERS_API_KEY: ORDERS_KEY } });
    ordersUrl = orders.url!;
  });

  afterAll(async () => {
    await orders?.close();
  });

  it('with the right key: orders__get_order works', async () => {
    await using gw = await startGateway([ordersYaml()], { env: { ORDERS_KEY } });
    const client = await gw.client();
    const names = (await client.listTools()).tools.map((t) => t.name).sort();
    expect(names).toEqual(['orders__get_order', 'orders__search_orders', 'orders__update_order_status']);
    const r = await client.callTool({ name: 'orders__get_order', arguments: { order_id: 'ord-1001' } });
    expect(r.isError).toBeFalsy();
    expect(r.structuredContent).toMatchObject({ id: 'ord-1001', customer_id: 'cust-1', status: 'pending' });
    expect((await readyz(gw)).status).toBe(200);
    // The key is never written to the logs, not even at debug level.
    expect(JSON.stringify(gw.logs)).not.toContain(ORDERS_KEY);
  });

  it('with a wrong key and required: false: the gateway starts, orders is unhealthy, /readyz is 200, others serve', async () => {
    await using gw = await startGateway([ordersYaml({ required: false }), stdioFixtureYaml('fx')], {
      env: { ORDERS_KEY: 'wrong-key-for-tests' },
    });
    const orders = gw.app.readiness().detail.upstreams as { name: string; state: string }[];
    expect(orders.find((u) => u.name === 'orders')?.state).toBe('unhealthy');
    expect(gw.app.readiness().ready).toBe(true);
    const r = await readyz(gw);
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('ready');

    const client = await gw.client();
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names.some((n) => n.startsWith('orders__'))).toBe(false);
    expect(names).toContain('fx__echo');
    // Never listed, so unknown — a generic answer naming the tool, nothing from the upstream.
    const err = await callError(client, 'orders__get_order', { order_id: 'ord-1001' });
    expect(err.message).toContain('orders__get_order');
    expect(err.message).not.toMatch(/invalid_api_key|401/);
    expect(textOf(await client.callTool({ name: 'fx__echo', arguments: { text: 'still here' } }))).toBe('still here');
    // Why it is down is in the operator's log.
    expect(
      gw.logs.some(
        (l) => l.msg === 'upstream unhealthy' && l.upstream === 'orders' && String(l.detail).includes('HTTP 401'),
      ),
    ).toBe(true);
  });

  it('with a wrong key and required (the default): /readyz is 503 and names the upstream', async () => {
    await using gw = await startGateway([ordersYaml(), stdioFixtureYaml('fx')], {
      env: { ORDERS_KEY: 'wrong-key-for-tests' },
    });
    expect(gw.app.readiness().ready).toBe(false);
    const r = await readyz(gw);
    expect(r.status).toBe(503);
    expect(r.body).toMatchObject({ status: 'not ready', waitingFor: ['orders'] });
  });

  it('a key the upstream stops accepting: the call answers a generic error naming the tool', async () => {
    // Our own orders process, restarted on the same port with another key after the gateway connected.
    let own = await spawnServer(ORDERS_SERVER, { args: ['--port', '0'], env: { ORDERS_API_KEY: ORDERS_KEY } });
    try {
      await using gw = await startGateway(
        [
          JSON.stringify({
            name: 'orders',
            transport: 'http',
            url: own.url,
            headers: { 'X-API-Key': { fromEnv: 'ORDERS_KEY' } },
            timeoutMs: 5000,
          }),
        ],
        {
          env: { ORDERS_KEY },
        },
      );
      const client = await gw.client();
      expect(
        (await client.callTool({ name: 'orders__get_order', arguments: { order_id: 'ord-1002' } })).structuredContent,
      ).toMatchObject({ id: 'ord-1002' });
      const port = own.port!;
      await own.close();
      own = await spawnServer(ORDERS_SERVER, {
        args: ['--port', String(port)],
        env: { ORDERS_API_KEY: 'rotated-key-for-tests' },
      });
      const err = await callError(client, 'orders__get_order', { order_id: 'ord-1002' });
      expect(err.message).toContain('Tool orders__get_order is temporarily unavailable');
      expect(err.message).not.toMatch(/invalid_api_key|401|HTTP/);
      expect((err as Error & { code?: number }).code).toBe(-32603);
      // The operator sees the real reason.
      const audit = gw.logs
        .map((l) => l.audit as Record<string, unknown> | undefined)
        .find((a) => a?.tool === 'orders__get_order' && a.outcome === 'error');
      expect(audit).toMatchObject({ upstream: 'orders', errorCode: 'GW_UPSTREAM_UNAVAILABLE' });
      expect(String(audit?.detail)).toContain('HTTP 401');
    } finally {
      await own.close();
    }
  });
});

describe('HTTP upstreams: legacy SSE transport and outbound headers', () => {
  let fixture: SpawnedServer;
  let dir: string;
  let record: string;
  let gw: TestGateway;
  let client: Client;
  const CANARY = 'Bearer canary-token-123';
  const LIMITS = { maxMessageBytes: 65_536, timeoutMs: 20_000 };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-upstreams-'));
    record = join(dir, 'record.jsonl');
    fixture = await spawnServer(FIXTURE_HTTP, { env: { FIXTURE_RECORD_FILE: record } });
    const base = new URL(fixture.url!).origin;
    gw = await startGateway(
      [
        JSON.stringify({
          name: 'legacy',
          transport: 'sse',
          url: `${base}/sse`,
          headers: { 'X-Static-Header': 'static-value-1' },
          expose: { resources: false },
          ...LIMITS,
        }),
        JSON.stringify({
          name: 'fxhttp',
          transport: 'http',
          url: `${base}/mcp`,
          headers: { 'X-Static-Header': 'static-value-2', 'X-API-Key': { fromEnv: 'FX_KEY' } },
          ...LIMITS,
        }),
      ],
      { env: { FX_KEY: 'fixture-upstream-key' } },
    );
    client = await gw.client({
      transport: { requestInit: { headers: { Authorization: CANARY, Cookie: 'sid=client-cookie' } } },
    });
  });

  afterAll(async () => {
    await gw?.close();
    await fixture?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves list and call over the legacy SSE transport', async () => {
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toContain('legacy__echo');
    expect(names).toContain('fxhttp__echo');
    expect(gw.app.upstreams.health().find((h) => h.name === 'legacy')).toMatchObject({
      transport: 'sse',
      state: 'ready',
      protocolVersion: expect.any(String),
    });
    const r = await client.callTool({ name: 'legacy__echo', arguments: { text: 'over sse' } });
    expect(textOf(r)).toBe('over sse');
    expect(r.structuredContent).toEqual({ text: 'over sse' });
    const sum = await client.callTool({ name: 'legacy__add', arguments: { a: 2, b: 3 } });
    expect(textOf(sum)).toContain('5');
    expect(readRecord(record).some((l) => l.transport === 'sse' && l.method === 'tools/call')).toBe(true);
  });

  it("never forwards the client's Authorization (or cookie, or session id) upstream; sends the configured headers", async () => {
    const seen = JSON.parse(textOf(await client.callTool({ name: 'fxhttp__headers_report', arguments: {} }))) as Record<
      string,
      string
    >;
    expect(seen['x-static-header']).toBe('static-value-2');
    // The upstream got the key (the record below has the exact value); its echo of it is redacted (threat model #17).
    expect(seen['x-api-key']).toBe('[REDACTED]');
    expect(seen.authorization).toBeUndefined();
    expect(seen.cookie).toBeUndefined();
    await client.callTool({ name: 'legacy__headers_report', arguments: {} });

    const sessionId = (client.transport as StreamableHTTPClientTransport).sessionId!;
    expect(sessionId).toBeTruthy();
    const lines = readRecord(record);
    expect(lines.length).toBeGreaterThan(4);
    for (const line of lines) {
      expect(line.headers?.authorization, JSON.stringify(line)).toBeUndefined();
      expect(line.headers?.cookie).toBeUndefined();
      expect(line.headers?.['x-static-header']).toBe(line.transport === 'sse' ? 'static-value-1' : 'static-value-2');
      if (line.transport !== 'sse') expect(line.headers?.['x-api-key']).toBe('fixture-upstream-key');
    }
    // Nowhere, in no form: not in headers, not in any message body.
    const raw = readFileSync(record, 'utf8');
    expect(raw).not.toContain('canary-token-123');
    expect(raw).not.toContain('client-cookie');
    expect(raw).not.toContain(sessionId);
  });

  it.each(['legacy', 'fxhttp'])(
    '%s: a reply over maxMessageBytes fails promptly naming the tool, and the next call works',
    async (upstream) => {
      const t0 = Date.now();
      const err = await callError(client, `${upstream}__huge`, { bytes: 200_000 });
      // From the dropped message's own id (SSE: the POST's stream; legacy: the id found in the kept ends), not the 20 s deadline.
      expect(Date.now() - t0).toBeLessThan(3000);
      expect(err.message).toContain(`Tool ${upstream}__huge returned a response that is too large`);
      expect(gw.logs.some((l) => l.msg?.includes('over maxMessageBytes') && l.upstream === upstream)).toBe(true);
      expect(textOf(await client.callTool({ name: `${upstream}__echo`, arguments: { text: 'after huge' } }))).toBe(
        'after huge',
      );
    },
  );
});
