/**
 * Proves the example and fixture servers behave as the gateway's integration tests assume:
 * real processes, real transports, the official SDK client.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { Client, type ClientOptions } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
  ToolListChangedNotificationSchema,
  type CallToolResult,
  type Progress,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { REPO_ROOT, spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';
import { readRecord } from '../helpers/upstream-tools.js';

const ORDERS_SERVER = 'examples/orders/server.ts';
const FIXTURE_STDIO = resolve(REPO_ROOT, 'test/fixtures/servers/fixture-stdio.ts');
const FIXTURE_HTTP = 'test/fixtures/servers/fixture-http.ts';
const ORDERS_KEY = 'test-orders-key-0123456789';
const DEMO_KEY = 'demo-orders-key-NOT-A-SECRET-change-me';

/** Base tools of the fixture (without FIXTURE_MANY_TOOLS extras). */
const FIXTURE_TOOLS = [
  'echo',
  'add',
  'slow',
  'hang',
  'crash',
  'junk',
  'huge',
  'flaky',
  'flaky_write',
  'progress',
  'mutable',
  'change_tools',
  'sample',
  'elicit',
  'roots',
  'env_report',
  'headers_report',
  'log',
];

type RecordLine = Record<string, unknown> & { headers?: Record<string, string> };

const tmp = mkdtempSync(join(tmpdir(), 'gatehouse-fixtures-'));
const servers: SpawnedServer[] = [];
const clients: Client[] = [];

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await Promise.allSettled(servers.map((s) => s.close()));
  rmSync(tmp, { recursive: true, force: true });
});

async function spawnTracked(...args: Parameters<typeof spawnServer>): Promise<SpawnedServer> {
  const server = await spawnServer(...args);
  servers.push(server);
  return server;
}

async function connect(
  transport: Transport,
  options?: ClientOptions,
  setup?: (client: Client) => void,
): Promise<Client> {
  const client = new Client({ name: 'fixtures-test', version: '1.0.0' }, options);
  setup?.(client);
  clients.push(client);
  await client.connect(transport);
  return client;
}

function stdioFixture(env: Record<string, string>): StdioClientTransport {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: ['--import', 'tsx', FIXTURE_STDIO],
    cwd: REPO_ROOT,
    env,
    stderr: 'pipe',
  });
  // Drain stderr so a chatty child never blocks on a full pipe.
  transport.stderr?.on('data', () => undefined);
  return transport;
}

function textOf(result: unknown): string {
  const first = (result as CallToolResult).content[0];
  if (first?.type !== 'text') throw new Error(`expected a text block, got ${JSON.stringify(first)}`);
  return first.text;
}

async function waitFor<T>(probe: () => T | undefined | false, what: string, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function isToolCall(record: RecordLine, tool: string): boolean {
  const params = record.params as { name?: unknown } | undefined;
  return record.method === 'tools/call' && params?.name === tool;
}

describe('orders server over HTTP', () => {
  let orders: SpawnedServer;
  let client: Client;

  beforeAll(async () => {
    orders = await spawnTracked(ORDERS_SERVER, {
      args: ['--http', '--port', '0'],
      env: { ORDERS_API_KEY: ORDERS_KEY },
    });
    client = await connect(
      new StreamableHTTPClientTransport(new URL(orders.url!), {
        requestInit: { headers: { 'X-API-Key': ORDERS_KEY } },
      }),
    );
  });

  it('prints the readiness line with the chosen port', () => {
    expect(orders.stderrLines).toContain(`orders listening on http://127.0.0.1:${orders.port}/mcp`);
  });

  it.each([
    ['no key', {}],
    ['a wrong key', { 'X-API-Key': 'wrong' }],
    ['a wrong key of the right length', { 'X-API-Key': ORDERS_KEY.replace(/.$/, 'X') }],
  ])('answers 401 invalid_api_key to %s', async (_label, headers: Record<string, string>) => {
    const response = await fetch(orders.url!, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...headers },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ error: 'invalid_api_key' });
  });

  it.each([
    ['a Host that is not loopback (DNS rebinding)', { Host: 'evil.example' }],
    ['a browser Origin', { Origin: `http://evil.example` }],
  ])('answers 403 to %s even with the right key', async (_label, headers: Record<string, string>) => {
    // node:http, not fetch: fetch does not let a caller set Host.
    const status = await new Promise<number>((resolveStatus, reject) => {
      const req = request(orders.url!, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          Accept: 'application/json',
          'X-API-Key': ORDERS_KEY,
          ...headers,
        },
      });
      req.on('response', (res) => {
        res.resume();
        resolveStatus(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }));
    });
    expect(status).toBe(403);
  });

  it('lists three tools with strict input schemas and hints', async () => {
    const { tools } = await client.listTools();
    const byName = new Map(tools.map((t) => [t.name, t]));
    expect([...byName.keys()].sort()).toEqual(['get_order', 'search_orders', 'update_order_status']);
    for (const tool of tools) expect(tool.inputSchema.additionalProperties).toBe(false);
    expect(byName.get('get_order')?.annotations?.readOnlyHint).toBe(true);
    expect(byName.get('update_order_status')?.annotations).toMatchObject({
      destructiveHint: true,
      idempotentHint: true,
    });
  });

  it('get_order returns the order, and not_found for an unknown id', async () => {
    const found = await client.callTool({ name: 'get_order', arguments: { order_id: 'ord-1001' } });
    expect(found.isError).toBeFalsy();
    expect(found.structuredContent).toMatchObject({ id: 'ord-1001', customer_id: 'cust-1', status: 'pending' });
    expect(JSON.parse(textOf(found))).toEqual(found.structuredContent);

    const missing = await client.callTool({ name: 'get_order', arguments: { order_id: 'ord-9999' } });
    expect(missing.isError).toBe(true);
    expect(missing.structuredContent).toEqual({ error: { code: 'not_found', message: 'order ord-9999 not found' } });
  });

  it('search_orders filters by customer and status', async () => {
    const result = await client.callTool({
      name: 'search_orders',
      arguments: { customer_id: 'cust-1', status: 'shipped' },
    });
    const { orders: found } = result.structuredContent as { orders: { id: string }[] };
    expect(found.map((o) => o.id)).toEqual(['ord-1002']);
  });

  it('rejects invalid arguments (bad enum, unknown property, bad pattern)', async () => {
    for (const args of [
      { order_id: 'ord-1001', new_status: 'lost' },
      { order_id: 'ord-1001', new_status: 'shipped', extra: true },
      { order_id: '1001', new_status: 'shipped' },
    ]) {
      // SDK 1.32.2 reports input validation failures as isError tool results, not JSON-RPC errors.
      const result = await client.callTool({ name: 'update_order_status', arguments: args });
      expect(result.isError).toBe(true);
      expect(textOf(result)).toContain('Input validation error');
    }
    const unchanged = await client.callTool({ name: 'get_order', arguments: { order_id: 'ord-1001' } });
    expect(unchanged.structuredContent).toMatchObject({ status: 'pending' });
  });

  it('update_order_status replays an idempotency key and refuses final orders', async () => {
    const args = { order_id: 'ord-1007', new_status: 'shipped', idempotency_key: 'key-ord-1007-a' };
    const first = await client.callTool({ name: 'update_order_status', arguments: args });
    expect(first.structuredContent).toMatchObject({ id: 'ord-1007', status: 'shipped' });
    const replay = await client.callTool({ name: 'update_order_status', arguments: args });
    expect(replay.structuredContent).toEqual(first.structuredContent);

    const reused = await client.callTool({
      name: 'update_order_status',
      arguments: { ...args, new_status: 'cancelled' },
    });
    expect(reused.isError).toBe(true);
    expect(reused.structuredContent).toMatchObject({ error: { code: 'idempotency_key_reused' } });

    const final = await client.callTool({
      name: 'update_order_status',
      arguments: { order_id: 'ord-1003', new_status: 'pending' },
    });
    expect(final.isError).toBe(true);
    expect(final.structuredContent).toMatchObject({ error: { code: 'invalid_transition' } });
  });
});

describe('orders server defaults', () => {
  it('falls back to demo.key when no key is configured', async () => {
    const orders = await spawnTracked(ORDERS_SERVER, {
      args: ['--port', '0'],
      env: { ORDERS_API_KEY: undefined, ORDERS_API_KEY_FILE: undefined, ORDERS_PORT: undefined },
    });
    const client = await connect(
      new StreamableHTTPClientTransport(new URL(orders.url!), { requestInit: { headers: { 'X-API-Key': DEMO_KEY } } }),
    );
    const result = await client.callTool({ name: 'get_order', arguments: { order_id: 'ord-1002' } });
    expect(result.structuredContent).toMatchObject({ id: 'ord-1002' });
  });

  it('runs over stdio without a key', async () => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: ['--import', 'tsx', resolve(REPO_ROOT, ORDERS_SERVER), '--stdio'],
      cwd: REPO_ROOT,
      stderr: 'pipe',
    });
    const client = await connect(transport);
    const result = await client.callTool({ name: 'get_order', arguments: { order_id: 'ord-1001' } });
    expect(result.structuredContent).toMatchObject({ id: 'ord-1001' });
  });
});

describe('fixture over stdio', () => {
  const recordFile = join(tmp, 'stdio-records.jsonl');
  let client: Client;
  const listChanged: number[] = [];
  const logs: unknown[] = [];

  beforeAll(async () => {
    client = await connect(
      stdioFixture({ FIXTURE_RECORD_FILE: recordFile, FIXTURE_MARKER: 'marker-123' }),
      { capabilities: { sampling: {}, elicitation: {}, roots: { listChanged: true } } },
      (c) => {
        c.setRequestHandler(CreateMessageRequestSchema, (request) => {
          const content = request.params.messages[0]?.content;
          const first = Array.isArray(content) ? content[0] : content;
          return {
            model: 'test-model',
            role: 'assistant',
            content: { type: 'text', text: `pong(${first?.type === 'text' ? first.text : '?'})` },
          };
        });
        c.setRequestHandler(ElicitRequestSchema, () => ({ action: 'accept', content: { answer: '42' } }));
        c.setRequestHandler(ListRootsRequestSchema, () => ({
          roots: [{ uri: 'file:///tmp/project', name: 'project' }],
        }));
        c.setNotificationHandler(ToolListChangedNotificationSchema, () => {
          listChanged.push(Date.now());
        });
        c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
          logs.push(n.params);
        });
      },
    );
  });

  it('identifies itself and lists the fixture tools', async () => {
    expect(client.getServerVersion()?.name).toBe('fixture');
    expect(client.getServerCapabilities()).toMatchObject({ tools: {}, logging: {}, resources: {}, prompts: {} });
    const { tools, nextCursor } = await client.listTools();
    expect(nextCursor).toBeUndefined();
    expect(tools.map((t) => t.name)).toEqual(FIXTURE_TOOLS);
  });

  it('echo and add return text and structured content', async () => {
    const echo = await client.callTool({ name: 'echo', arguments: { text: 'hi there' } });
    expect(textOf(echo)).toBe('hi there');
    expect(echo.structuredContent).toEqual({ text: 'hi there' });
    const add = await client.callTool({ name: 'add', arguments: { a: 2, b: 40 } });
    expect(add.structuredContent).toEqual({ sum: 42 });
  });

  it('records every incoming message', async () => {
    await client.callTool({ name: 'echo', arguments: { text: 'recorded' } });
    const records = readRecord<RecordLine>(recordFile);
    const methods = records.map((r) => r.method);
    expect(methods.slice(0, 2)).toEqual(['initialize', 'notifications/initialized']);
    const call = records.find((r) => isToolCall(r, 'echo') && JSON.stringify(r.params).includes('recorded'));
    expect(call).toMatchObject({ transport: 'stdio', kind: 'request' });
    expect(call).not.toHaveProperty('headers');
  });

  it('delivers progress notifications', async () => {
    const progress: Progress[] = [];
    const result = await client.callTool({ name: 'progress', arguments: { steps: 3, delayMs: 5 } }, undefined, {
      onprogress: (p) => progress.push(p),
    });
    expect(textOf(result)).toBe('finished 3 steps');
    expect(progress).toEqual([
      { progress: 1, total: 3, message: 'step 1' },
      { progress: 2, total: 3, message: 'step 2' },
      { progress: 3, total: 3, message: 'step 3' },
    ]);
  });

  it('round-trips sampling, elicitation and roots through the client', async () => {
    expect(textOf(await client.callTool({ name: 'sample', arguments: { prompt: 'ping' } }))).toBe(
      'sampled: pong(ping)',
    );
    expect(textOf(await client.callTool({ name: 'elicit', arguments: { message: 'answer?' } }))).toBe(
      'elicited: accept 42',
    );
    const roots = JSON.parse(textOf(await client.callTool({ name: 'roots', arguments: {} }))) as unknown;
    expect(roots).toEqual({ roots: [{ uri: 'file:///tmp/project', name: 'project' }] });
    // The client's answers are incoming messages too.
    expect(
      readRecord<RecordLine>(recordFile).some(
        (r) => r.kind === 'response' && JSON.stringify(r.result).includes('pong'),
      ),
    ).toBe(true);
  });

  it('observes cancellation of a hanging call', async () => {
    const abort = new AbortController();
    const call = client.callTool({ name: 'hang', arguments: {} }, undefined, { signal: abort.signal });
    await waitFor(
      () => readRecord<RecordLine>(recordFile).some((r) => isToolCall(r, 'hang')),
      'the hang call to arrive',
    );
    abort.abort('test abort');
    await expect(call).rejects.toThrow();
    const observed = await waitFor(
      () => readRecord<RecordLine>(recordFile).find((r) => r.event === 'cancelled-observed'),
      'cancelled-observed',
    );
    const cancelled = readRecord<RecordLine>(recordFile).find((r) => r.method === 'notifications/cancelled');
    expect(cancelled).toBeDefined();
    expect((cancelled?.params as { requestId: unknown }).requestId).toBe(observed.requestId);
  });

  it('change_tools adds a tool, edits "mutable" and emits tools/list_changed', async () => {
    const before = listChanged.length;
    expect(textOf(await client.callTool({ name: 'change_tools', arguments: {} }))).toBe('changed');
    await waitFor(() => listChanged.length > before, 'tools/list_changed');
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toContain('added_1');
    expect(tools.find((t) => t.name === 'mutable')?.description).toBe('changed description 1');
  });

  it('log sends notifications/message', async () => {
    await client.callTool({ name: 'log', arguments: { level: 'warning', message: 'careful' } });
    await waitFor(() => logs.length > 0, 'a log notification');
    expect(logs[0]).toEqual({ level: 'warning', data: 'careful' });
  });

  it('survives junk on stdout and keeps answering', async () => {
    expect(textOf(await client.callTool({ name: 'junk', arguments: {} }))).toBe('ok');
    expect(textOf(await client.callTool({ name: 'echo', arguments: { text: 'still here' } }))).toBe('still here');
  });

  it('reports its environment and returns huge payloads', async () => {
    const env = JSON.parse(textOf(await client.callTool({ name: 'env_report', arguments: {} }))) as Record<
      string,
      string
    >;
    expect(env.FIXTURE_MARKER).toBe('marker-123');
    expect(textOf(await client.callTool({ name: 'headers_report', arguments: {} }))).toBe('{}');
    const huge = await client.callTool({ name: 'huge', arguments: { bytes: 1024 * 1024 } });
    expect(textOf(huge)).toHaveLength(1024 * 1024);
  });

  it('serves the resource, the template, the prompt and completions', async () => {
    const hello = await client.readResource({ uri: 'fixture://static/hello' });
    expect(hello.contents[0]).toMatchObject({ text: 'hello from fixture' });
    const item = await client.readResource({ uri: 'fixture://items/7' });
    expect(item.contents[0]).toMatchObject({ text: 'item 7' });
    const { resourceTemplates } = await client.listResourceTemplates();
    expect(resourceTemplates.map((t) => t.uriTemplate)).toEqual(['fixture://items/{id}']);
    const prompt = await client.getPrompt({ name: 'greet', arguments: { name: 'alice' } });
    expect(prompt.messages[0]?.content).toEqual({ type: 'text', text: 'Please greet alice.' });
    const completion = await client.complete({
      ref: { type: 'ref/prompt', name: 'greet' },
      argument: { name: 'name', value: 'b' },
    });
    expect(completion.completion.values).toEqual(['bob']);
  });
});

describe('fixture over stdio with pagination', () => {
  it('pages tools/list with an opaque nextCursor', async () => {
    const client = await connect(stdioFixture({ FIXTURE_PAGE_SIZE: '5', FIXTURE_MANY_TOOLS: '12' }));
    const pages: Tool[][] = [];
    let cursor: string | undefined;
    do {
      const page = await client.listTools(cursor === undefined ? undefined : { cursor });
      pages.push(page.tools);
      cursor = page.nextCursor;
      if (pages.length === 1) expect(cursor).toEqual(expect.any(String));
    } while (cursor !== undefined);

    const total = FIXTURE_TOOLS.length + 12;
    expect(pages.map((p) => p.length)).toEqual([
      ...Array<number>(Math.floor(total / 5)).fill(5),
      ...(total % 5 === 0 ? [] : [total % 5]),
    ]);
    const names = pages.flat().map((t) => t.name);
    expect(new Set(names).size).toBe(total);
    expect(names.slice(-12)).toEqual(Array.from({ length: 12 }, (_, i) => `tool_${String(i + 1).padStart(4, '0')}`));
    // Paginated definitions are the SDK's own: strict schemas survive.
    expect(pages[0]?.[0]?.inputSchema.additionalProperties).toBe(false);
    await expect(client.listTools({ cursor: 'not-a-cursor' })).rejects.toThrow(/invalid cursor/);
  });
});

describe('fixture process lifecycle', () => {
  it('exits 0 on stdin EOF', async () => {
    const fixture = await spawnTracked(FIXTURE_STDIO, { ready: /^fixture ready pid=\d+$/ });
    expect(fixture.stderrLines[0]).toBe(`fixture ready pid=${fixture.proc.pid}`);
    fixture.proc.stdin?.end();
    expect(await fixture.exited).toBe(0);
  });

  it('exits 0 on SIGTERM', async () => {
    const fixture = await spawnTracked(FIXTURE_HTTP);
    fixture.proc.kill('SIGTERM');
    expect(await fixture.exited).toBe(0);
  });

  it('crash ends the process and the call fails', async () => {
    const transport = stdioFixture({});
    const client = await connect(transport);
    const closed = new Promise<void>((r) => {
      client.onclose = () => r();
    });
    await expect(client.callTool({ name: 'crash', arguments: { code: 3 } })).rejects.toThrow();
    await closed;
  });
});

describe('fixture over HTTP', () => {
  const recordFile = join(tmp, 'http-records.jsonl');
  let fixture: SpawnedServer;
  const headers = { 'X-Test-Header': 'abc', Authorization: 'Bearer visible-without-a-gateway' };

  beforeAll(async () => {
    fixture = await spawnTracked(FIXTURE_HTTP, {
      env: { FIXTURE_RECORD_FILE: recordFile, FIXTURE_NAME: 'fixture-http' },
    });
  });

  it('prints the readiness line', () => {
    expect(fixture.stderrLines).toContain(`fixture listening on http://127.0.0.1:${fixture.port}/mcp`);
  });

  it('works over Streamable HTTP and records headers per message', async () => {
    const client = await connect(
      new StreamableHTTPClientTransport(new URL(fixture.url!), { requestInit: { headers } }),
      { capabilities: { sampling: {} } },
      (c) =>
        c.setRequestHandler(CreateMessageRequestSchema, () => ({
          model: 'test-model',
          role: 'assistant',
          content: { type: 'text', text: 'over http' },
        })),
    );
    expect(client.getServerVersion()?.name).toBe('fixture-http');
    expect(textOf(await client.callTool({ name: 'echo', arguments: { text: 'streamable' } }))).toBe('streamable');
    // relatedRequestId puts the sampling request on the call's own response stream.
    expect(textOf(await client.callTool({ name: 'sample', arguments: { prompt: 'x' } }))).toBe('sampled: over http');

    const seen = JSON.parse(textOf(await client.callTool({ name: 'headers_report', arguments: {} }))) as Record<
      string,
      string
    >;
    expect(seen['x-test-header']).toBe('abc');
    expect(seen['mcp-session-id']).toEqual(expect.any(String));

    const call = readRecord<RecordLine>(recordFile).find(
      (r) => isToolCall(r, 'echo') && JSON.stringify(r.params).includes('streamable'),
    );
    expect(call).toMatchObject({ transport: 'streamable-http', kind: 'request', session: seen['mcp-session-id'] });
    expect(call?.headers).toMatchObject({ 'x-test-header': 'abc', authorization: headers.Authorization });
  });

  it('observes cancellation over Streamable HTTP', async () => {
    const client = await connect(new StreamableHTTPClientTransport(new URL(fixture.url!)));
    const abort = new AbortController();
    const call = client.callTool({ name: 'hang', arguments: {} }, undefined, { signal: abort.signal });
    await waitFor(
      () => readRecord<RecordLine>(recordFile).some((r) => isToolCall(r, 'hang')),
      'the hang call to arrive',
    );
    abort.abort('test abort');
    await expect(call).rejects.toThrow();
    await waitFor(
      () => readRecord<RecordLine>(recordFile).some((r) => r.event === 'cancelled-observed'),
      'cancelled-observed',
    );
    expect(readRecord<RecordLine>(recordFile).some((r) => r.method === 'notifications/cancelled')).toBe(true);
  });

  it('works over the legacy HTTP+SSE transport', async () => {
    const client = await connect(
      new SSEClientTransport(new URL('/sse', fixture.url), { requestInit: { headers } }),
      undefined,
      (c) => c.setNotificationHandler(LoggingMessageNotificationSchema, () => undefined),
    );
    expect(textOf(await client.callTool({ name: 'echo', arguments: { text: 'legacy' } }))).toBe('legacy');
    const seen = JSON.parse(textOf(await client.callTool({ name: 'headers_report', arguments: {} }))) as Record<
      string,
      string
    >;
    expect(seen['x-test-header']).toBe('abc');
    const call = readRecord<RecordLine>(recordFile).find(
      (r) => isToolCall(r, 'echo') && JSON.stringify(r.params).includes('legacy'),
    );
    expect(call).toMatchObject({ transport: 'sse', kind: 'request', headers: { 'x-test-header': 'abc' } });
  });

  it('rejects requests for unknown sessions', async () => {
    const response = await fetch(fixture.url!, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Accept: 'application/json, text/event-stream',
        'Mcp-Session-Id': 'no-such-session',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(response.status).toBe(404);
  });
});
