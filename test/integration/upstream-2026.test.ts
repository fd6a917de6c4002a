/**
 * A 2026-07-28-ONLY upstream behind the gateway (test/fixtures/servers/v2-modern.ts: the official v2 server SDK with
 * `legacy: 'reject'`, so `initialize` fails), over HTTP and over stdio with `protocol: auto`, beside one of our 2025
 * fixtures. A 1.x SDK client (2025-11-25 session) and the v2 client pinned to 2026-07-28 both list and call its tools,
 * read its resource and get its prompt; the upstream saw the gateway's envelope and headers and no `initialize`; its
 * list change reaches a 2025 client; its input_required result completes for both kinds of client; a wrong `protocol`
 * fails clearly; its -32021 becomes a gateway code. Real
 * processes, no mocks.
 */
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  ElicitRequestSchema,
  McpError,
  ResourceUpdatedNotificationSchema,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FIXTURE_HTTP,
  FIXTURE_STDIO,
  startGateway,
  stdioFixtureYaml,
  V2_MODERN_SERVER as V2_MODERN,
  type TestGateway,
} from '../helpers/gateway.js';
import { spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';
import { freePort } from '../helpers/upstream-tools.js';

const modernStdio = (name: string, extra: Record<string, unknown> = {}): string =>
  stdioFixtureYaml(name, { args: ['--import', 'tsx', V2_MODERN, '--stdio'], ...extra });
const httpUpstream = (name: string, url: string, extra: Record<string, unknown> = {}): string =>
  JSON.stringify({ name, transport: 'http', url, ...extra });

interface Seen {
  method: unknown;
  headers: Record<string, string>;
}

function structured<T>(result: unknown): T {
  return (result as { structuredContent: T }).structuredContent;
}

async function waitFor(check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('a 2026-07-28-only upstream behind the gateway (protocol auto)', () => {
  let upstream: SpawnedServer;
  let legacyHttp: SpawnedServer;
  let gw: TestGateway;
  const v2clients: ClientV2[] = [];

  beforeAll(async () => {
    [upstream, legacyHttp] = await Promise.all([spawnServer(V2_MODERN), spawnServer(FIXTURE_HTTP)]);
    gw = await startGateway([
      httpUpstream('mh', upstream.url!),
      modernStdio('ms'),
      stdioFixtureYaml('fx'),
      httpUpstream('fh', legacyHttp.url!),
    ]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(v2clients.map((c) => c.close().catch(() => undefined)));
    await gw?.close();
    await upstream?.close();
    await legacyHttp?.close();
  });

  async function v2(opts: { capabilities?: Record<string, unknown> } = {}): Promise<ClientV2> {
    const client = new ClientV2(
      { name: 'v2-test', version: '1.0.0' },
      {
        versionNegotiation: { mode: { pin: '2026-07-28' } },
        ...(opts.capabilities ? { capabilities: opts.capabilities } : {}),
      },
    );
    v2clients.push(client);
    await client.connect(new TransportV2(new URL(gw.url)));
    return client;
  }

  it('probes each upstream and logs its era: modern for both v2 ones, legacy for the 2025 fixture', () => {
    const ready = (name: string): Record<string, unknown> | undefined =>
      gw.logs.find((l) => l.msg === 'upstream ready' && l.upstream === name);
    expect(ready('mh')).toMatchObject({ era: 'modern', protocolVersion: '2026-07-28', server: 'v2-modern' });
    expect(ready('ms')).toMatchObject({ era: 'modern', protocolVersion: '2026-07-28', server: 'v2-modern' });
    expect(ready('fx')).toMatchObject({ era: 'legacy', protocolVersion: '2025-11-25' });
    const verdict = (name: string) =>
      gw.logs.find((l) => l.msg === 'upstream era: legacy (initialize)' && l.upstream === name)?.reason;
    expect(verdict('fx')).toMatch(/server\/discover answered -32601/);
    // A 2025 Streamable HTTP server refuses a session-less POST with 400 and an id-less error: legacy, not a failure.
    expect(ready('fh')).toMatchObject({ era: 'legacy', protocolVersion: '2025-11-25' });
    expect(verdict('fh')).toMatch(/server\/discover answered HTTP 400/);
    const health = gw.app.upstreams.health();
    expect(health.find((h) => h.name === 'mh')?.protocolVersion).toBe('2026-07-28');
  });

  it.each(['mh', 'ms'])('a 2025 client lists, calls, reads and gets from the modern upstream %s', async (u) => {
    const client = await gw.client();
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining([`${u}__echo`, `${u}__add`, 'fx__echo']));
    const echo = await client.callTool({ name: `${u}__echo`, arguments: { text: 'from 2025' } });
    expect(echo.structuredContent).toEqual({ text: 'from 2025' });
    const add = await client.callTool({ name: `${u}__add`, arguments: { a: 2, b: 40 } });
    expect(add.structuredContent).toEqual({ sum: 42 });
    const uri = `test://v2-modern/${u === 'mh' ? 'http' : 'stdio'}`;
    const read = await client.readResource({ uri });
    expect(read.contents[0]).toMatchObject({ uri, text: 'static text from v2-modern' });
    const prompt = await client.getPrompt({ name: `${u}__greet`, arguments: { name: 'alice' } });
    expect(prompt.messages[0]?.content).toEqual({ type: 'text', text: 'Hello, alice!' });
  });

  it.each(['mh', 'ms'])('the v2 client pinned to 2026-07-28 does the same through %s', async (u) => {
    const client = await v2();
    expect(client.getNegotiatedProtocolVersion()).toBe('2026-07-28');
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining([`${u}__echo`, 'fx__echo']));
    const echo = await client.callTool({ name: `${u}__echo`, arguments: { text: 'from 2026' } });
    expect(echo.structuredContent).toEqual({ text: 'from 2026' });
    const uri = `test://v2-modern/${u === 'mh' ? 'http' : 'stdio'}`;
    const read = await client.readResource({ uri });
    expect(read.contents[0]).toMatchObject({ uri, text: 'static text from v2-modern' });
    const prompt = await client.getPrompt({ name: `${u}__greet`, arguments: { name: 'bob' } });
    expect(prompt.messages[0]?.content).toEqual({ type: 'text', text: 'Hello, bob!' });
  });

  it.each(['mh', 'ms'])(
    '%s sees the envelope the gateway built: its version, its identity, the caller’s capabilities narrowed',
    async (u) => {
      const plain = await gw.client();
      const env = structured<{ envelope: Record<string, unknown> }>(
        await plain.callTool({ name: `${u}__envelope`, arguments: {} }),
      ).envelope;
      expect(env['io.modelcontextprotocol/protocolVersion']).toBe('2026-07-28');
      expect(env['io.modelcontextprotocol/clientInfo']).toMatchObject({ name: 'gatehouse' });
      // A client that declared nothing is declared as nothing upstream (not the gateway's whole relay allowance).
      expect(env['io.modelcontextprotocol/clientCapabilities']).toEqual({});
      expect(env['io.modelcontextprotocol/logLevel']).toBeUndefined();

      const able = await gw.client({ capabilities: { elicitation: { form: {} }, experimental: { x: {} } } });
      const env2 = structured<{ envelope: Record<string, unknown> }>(
        await able.callTool({ name: `${u}__envelope`, arguments: {} }),
      ).envelope;
      // Only what the gateway can relay survives (no experimental or extension keys).
      expect(env2['io.modelcontextprotocol/clientCapabilities']).toEqual({ elicitation: { form: {} } });

      // A 2026 client's own envelope is not copied: the upstream sees the gateway's identity.
      const modern = await v2();
      const env3 = structured<{ envelope: Record<string, unknown> }>(
        await modern.callTool({ name: `${u}__envelope`, arguments: {} }),
      ).envelope;
      expect(env3['io.modelcontextprotocol/clientInfo']).toMatchObject({ name: 'gatehouse' });
    },
  );

  it('a 2025 session’s log level rides on each modern request', async () => {
    const client = await gw.client({ capabilities: {} });
    await client.setLoggingLevel('warning');
    const env = structured<{ envelope: Record<string, unknown> }>(
      await client.callTool({ name: 'mh__envelope', arguments: {} }),
    ).envelope;
    expect(env['io.modelcontextprotocol/logLevel']).toBe('warning');
  });

  it('over HTTP: no initialize, no session, and the routing and Mcp-Param-* headers on every POST', async () => {
    const client = await gw.client();
    // The fixture's SDK refuses a region call whose Mcp-Param-Region is missing or wrong (-32020): these pass.
    for (const region of ['eu-west-1', 'Zürich ', '=?base64?x?=']) {
      const r = await client.callTool({ name: 'mh__region', arguments: { region, text: 't' } });
      expect(structured<{ region: string }>(r).region).toBe(region);
    }
    const { requests } = structured<{ requests: Seen[] }>(await client.callTool({ name: 'mh__seen', arguments: {} }));
    const methods = requests.map((r) => r.method);
    expect(methods[0]).toBe('server/discover');
    expect(methods).not.toContain('initialize');
    expect(methods).not.toContain('notifications/initialized');
    for (const r of requests) {
      expect(r.headers['mcp-session-id']).toBeUndefined();
      expect(r.headers['mcp-protocol-version']).toBe('2026-07-28');
      expect(r.headers['mcp-method']).toBe(r.method);
    }
    const regionCalls = requests.filter((r) => r.method === 'tools/call' && r.headers['mcp-name'] === 'region');
    expect(regionCalls.map((r) => r.headers['mcp-param-region'])).toEqual([
      'eu-west-1',
      `=?base64?${Buffer.from('Zürich ').toString('base64')}?=`,
      `=?base64?${Buffer.from('=?base64?x?=').toString('base64')}?=`,
    ]);
    const read = requests.find((r) => r.method === 'resources/read');
    expect(read?.headers['mcp-name']).toBe('test://v2-modern/http');
    expect(methods).toContain('subscriptions/listen');
  });

  it.each(['mh', 'ms'])(
    'a tools list change on %s reaches a 2025 client as notifications/tools/list_changed',
    async (u) => {
      const client: Client = await gw.client();
      let changed = 0;
      client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
        changed++;
      });
      expect((await client.listTools()).tools.map((t) => t.name)).not.toContain(`${u}__late_tool`);
      await client.callTool({ name: `${u}__add_tool`, arguments: {} });
      await waitFor(() => changed > 0);
      await waitFor(() => gw.app.router.catalogue.tools.has(`${u}__late_tool`));
      expect((await client.listTools()).tools.map((t) => t.name)).toContain(`${u}__late_tool`);
    },
  );

  it.each(['mh', 'ms'])(
    'resources/subscribe to %s becomes the listen filter, and its resources/updated reaches the subscriber',
    async (u) => {
      const uri = `test://v2-modern/${u === 'mh' ? 'http' : 'stdio'}`;
      const client = await gw.client();
      const updated: string[] = [];
      client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
        updated.push(n.params.uri);
      });
      await client.subscribeResource({ uri });
      await client.callTool({ name: `${u}__touch`, arguments: {} });
      await waitFor(() => updated.includes(uri));
      await client.unsubscribeResource({ uri });
      if (u !== 'mh') return;
      const { requests } = structured<{ requests: (Seen & { body?: unknown })[] }>(
        await client.callTool({ name: 'mh__seen', arguments: {} }),
      );
      // The removed methods never reach the upstream; listens do, the filter naming the URI once subscribed.
      const methods = requests.map((r) => r.method);
      expect(methods).not.toContain('resources/subscribe');
      expect(methods).not.toContain('resources/unsubscribe');
      expect(methods.filter((m) => m === 'subscriptions/listen').length).toBeGreaterThanOrEqual(3);
    },
  );

  it('cancelling a call to a modern HTTP upstream closes its stream: no notifications/cancelled is posted', async () => {
    const client = await gw.client();
    const controller = new AbortController();
    const call = client.callTool({ name: 'mh__slow', arguments: {} }, undefined, { signal: controller.signal });
    await new Promise((r) => setTimeout(r, 300));
    controller.abort();
    await expect(call).rejects.toThrow();
    const seenNow = async (): Promise<unknown[]> =>
      structured<{ requests: Seen[] }>(await client.callTool({ name: 'mh__seen', arguments: {} })).requests.map(
        (r) => r.method,
      );
    // The upstream's handler saw its request aborted (the SDK ties the signal to the POST's stream).
    let methods: unknown[] = [];
    const end = Date.now() + 5000;
    while (!methods.includes('slow aborted') && Date.now() < end) {
      methods = await seenNow();
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(methods).toContain('slow aborted');
    expect(methods).not.toContain('notifications/cancelled');
  });

  it('an upstream -32021 becomes GW_UPSTREAM_CAPABILITY_REQUIRED (2025 clients), or -32021 for a 2026 client', async () => {
    const client = await gw.client();
    const err = await client.callTool({ name: 'mh__needs_sampling', arguments: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(McpError);
    expect((err as McpError).code).toBe(-32603);
    expect((err as McpError).message).toContain('Upstream requires a client capability');
    expect((err as McpError).data).toEqual({ requiredCapabilities: { sampling: {} } });
    // A 2026 client whose request did not declare sampling hears the revision's own -32021, naming it.
    const modern = await v2();
    const e2 = (await modern.callTool({ name: 'mh__needs_sampling', arguments: {} }).catch((e: unknown) => e)) as {
      code?: unknown;
      data?: unknown;
    };
    expect(e2.code).toBe(-32021);
    expect(e2.data).toEqual({ requiredCapabilities: { sampling: {} } });
  });

  it.each(['mh', 'ms'])(
    'confirm_action on %s: its input_required result reaches the multi round-trip path, for a 2025 and a 2026 client',
    async (u) => {
      // 2025: the question becomes an elicitation request on the session; the gateway retries upstream with the answer.
      const legacy = await gw.client({ capabilities: { elicitation: { form: {} } } });
      legacy.setRequestHandler(ElicitRequestSchema, () => ({ action: 'accept', content: { confirm: true } }));
      const a = await legacy.callTool({ name: `${u}__confirm_action`, arguments: { action: 'deploy' } });
      expect(a.content).toEqual([{ type: 'text', text: 'deploy: confirmed=true (state pending:deploy)' }]);
      // 2026: the v2 client answers the input request itself and retries with the (gateway-sealed) requestState.
      const modern = await v2({ capabilities: { elicitation: { form: {} } } });
      modern.setRequestHandler('elicitation/create', () => ({ action: 'accept', content: { confirm: false } }));
      const b = await modern.callTool({ name: `${u}__confirm_action`, arguments: { action: 'undo' } });
      expect(b.content).toEqual([{ type: 'text', text: 'undo: confirmed=false (state pending:undo)' }]);
    },
  );
});

describe('a modern HTTP upstream that restarts', () => {
  let port: number;
  let upstream: SpawnedServer;
  let gw: TestGateway;

  beforeAll(async () => {
    port = await freePort();
    upstream = await spawnServer(V2_MODERN, { args: ['--port', String(port)] });
    gw = await startGateway([httpUpstream('rh', upstream.url!)]);
  }, 60_000);

  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  it('its listen is opened again after the drop, so the restarted server’s list change still reaches clients', async () => {
    const client = await gw.client();
    let changed = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      changed++;
    });
    const acks = (): number =>
      gw.logs.filter((l) => l.upstream === 'rh' && l.msg === 'upstream listen acknowledged').length;
    expect(acks()).toBe(1);
    await upstream.close();
    upstream = await spawnServer(V2_MODERN, { args: ['--port', String(port)] });
    await waitFor(() => acks() === 2, 20_000);
    expect(gw.logs.some((l) => l.upstream === 'rh' && l.msg === 'upstream listen lost; listening again')).toBe(true);
    await client.callTool({ name: 'rh__add_tool', arguments: {} });
    await waitFor(() => changed > 0);
    await waitFor(() => gw.app.router.catalogue.tools.has('rh__late_tool'));
  }, 40_000);
});

describe('protocol pinned the wrong way round', () => {
  let upstream: SpawnedServer;
  let gw: TestGateway;

  beforeAll(async () => {
    upstream = await spawnServer(V2_MODERN);
    gw = await startGateway([
      httpUpstream('old', upstream.url!, {
        protocol: 'legacy',
        required: false,
        restart: { initialDelayMs: 60000, maxDelayMs: 60000 },
      }),
      stdioFixtureYaml(
        'new',
        { protocol: '2026-07-28', required: false, restart: { initialDelayMs: 60000, maxDelayMs: 60000 } },
        FIXTURE_STDIO,
      ),
      modernStdio('ok'),
    ]);
  }, 60_000);

  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  it('protocol: legacy against a 2026-only upstream: unhealthy, the log names the refused initialize', () => {
    const health = gw.app.upstreams.health();
    expect(health.find((h) => h.name === 'old')?.state).toBe('unhealthy');
    const line = gw.logs.find((l) => l.msg === 'upstream unhealthy' && l.upstream === 'old');
    expect(String(line?.detail)).toMatch(/initialize failed upstream with -32022/);
    expect(gw.logs.some((l) => l.upstream === 'old' && l.msg === 'server/discover probe')).toBe(false);
  });

  it('protocol: 2026-07-28 against a 2025-only upstream: unhealthy, the log says it does not speak 2026-07-28', () => {
    const health = gw.app.upstreams.health();
    expect(health.find((h) => h.name === 'new')?.state).toBe('unhealthy');
    const line = gw.logs.find((l) => l.msg === 'upstream unhealthy' && l.upstream === 'new');
    expect(String(line?.detail)).toMatch(/protocol 2026-07-28 is configured, but server\/discover answered -32601/);
    expect(health.find((h) => h.name === 'ok')?.state).toBe('ready');
  });
});
