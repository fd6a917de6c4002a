/**
 * The bundled example's upstreams and policy (examples/gatehouse.yaml, policies/) used by both protocol generations at
 * once: the official v2 client pinned to 2026-07-28 and in automatic negotiation, and the 1.x client on 2025-11-25,
 * list and call the example's tools through one gateway. The legacy orders server (static key only) and the official
 * server-everything run as the example runs them; the gateway listens on port 0 instead of 8080.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { everythingStdioYaml, ORDERS_SERVER, startGateway, type TestGateway } from '../helpers/gateway.js';
import { REPO_ROOT, spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';

const ORDERS_KEY = 'example-generations-key-0123456789';

function textOf(result: unknown): string {
  const content = (result as { content: { type: string; text?: string }[] }).content;
  return content.map((c) => c.text ?? '').join('');
}

describe('the bundled example, both generations at once', () => {
  let dir: string;
  let orders: SpawnedServer;
  let gw: TestGateway;
  let token: string;
  const closers: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-example-gen-'));
    orders = await spawnServer(ORDERS_SERVER, { args: ['--http', '--port', '0'], env: { ORDERS_API_KEY: ORDERS_KEY } });
    gw = await startGateway(
      [
        JSON.stringify({
          name: 'orders',
          transport: 'http',
          url: orders.url,
          headers: { 'X-API-Key': { fromEnv: 'EXAMPLE_ORDERS_KEY' } },
        }),
        everythingStdioYaml('everything'),
      ],
      {
        top: `auth:\n  mode: dev\npolicy:\n  dir: ${JSON.stringify(join(REPO_ROOT, 'policies'))}\n`,
        env: { ...process.env, EXAMPLE_ORDERS_KEY: ORDERS_KEY },
      },
    );
    token = await gw.token({ sub: 'alice', scopes: ['orders:read', 'everything:use'] });
  }, 90_000);

  afterAll(async () => {
    await Promise.all(closers.map((c) => c().catch(() => undefined)));
    await gw?.close();
    await orders?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function v2(mode: 'auto' | { pin: string }): Promise<ClientV2> {
    const client = new ClientV2({ name: 'example-v2', version: '1.0.0' }, { versionNegotiation: { mode } });
    closers.push(() => client.close());
    await client.connect(
      new TransportV2(new URL(gw.url), { requestInit: { headers: { authorization: `Bearer ${token}` } } }),
    );
    return client;
  }

  it('a v2 client (pinned and auto) and a 1.x client list and call the same tools, each in its generation', async () => {
    const [pinned, auto, legacy] = await Promise.all([
      v2({ pin: '2026-07-28' }),
      v2('auto'),
      gw.client({ transport: { requestInit: { headers: { authorization: `Bearer ${token}` } } } }),
    ]);
    closers.push(() => legacy.close());
    expect(pinned.getNegotiatedProtocolVersion()).toBe('2026-07-28');
    expect(auto.getNegotiatedProtocolVersion()).toBe('2026-07-28');

    const lists = await Promise.all([pinned.listTools(), auto.listTools(), legacy.listTools()]);
    const names = lists.map((l) => l.tools.map((t) => t.name).sort());
    // The same policy filters all three the same way: alice reads orders (no write tool) and uses everything.
    expect(names[0]).toEqual(names[2]);
    expect(names[1]).toEqual(names[2]);
    expect(names[2]).toContain('orders__get_order');
    expect(names[2]).toContain('everything__echo');
    expect(names[2]).not.toContain('orders__update_order_status');
    // The example policy describes get_order's terms to the agent, in both generations alike (policies/orders.yaml).
    const described = lists.map((l) => l.tools.find((t) => t.name === 'orders__get_order')?.description ?? '');
    expect(described[0]).toContain('results may be up to 30 s old');
    expect(described[0]).toMatch(/Limited to 120 calls per minute/);
    expect(described[1]).toBe(described[0]);
    expect(described[2]).toBe(described[0]);

    const calls = await Promise.all([
      pinned.callTool({ name: 'orders__get_order', arguments: { order_id: 'ord-1001' } }),
      auto.callTool({ name: 'everything__echo', arguments: { message: 'auto' } }),
      legacy.callTool({ name: 'orders__get_order', arguments: { order_id: 'ord-1001' } }),
      legacy.callTool({ name: 'everything__echo', arguments: { message: 'legacy' } }),
    ]);
    expect(textOf(calls[0])).toContain('ord-1001');
    expect(textOf(calls[1])).toContain('auto');
    expect(textOf(calls[2])).toBe(textOf(calls[0]));
    expect(textOf(calls[3])).toContain('legacy');
    // Each generation's own wire format: the 2025 result carries none of the 2026 fields.
    expect(calls[2]).not.toHaveProperty('resultType');
  });

  it('refuses the write tool to both generations alike: the 403 scope challenge naming orders:write', async () => {
    const client = await v2({ pin: '2026-07-28' });
    const legacy = await gw.client({ transport: { requestInit: { headers: { authorization: `Bearer ${token}` } } } });
    closers.push(() => legacy.close());
    const args = { name: 'orders__update_order_status', arguments: { order_id: 'ord-1001', new_status: 'shipped' } };
    const outcomes = await Promise.all(
      [client.callTool(args), legacy.callTool(args)].map((p) =>
        p.then(
          () => 'allowed',
          (e: unknown) => (e instanceof Error ? e.message : String(e)),
        ),
      ),
    );
    for (const o of outcomes) {
      expect(o).not.toBe('allowed');
      expect(o).toMatch(/403|insufficient_scope|orders:write/);
    }
  });
});
