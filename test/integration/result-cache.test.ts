/**
 * The data path's result cache and idempotent writes (docs/policy.md "Result cache", "Idempotent writes") with real
 * parts: the bundled orders server over HTTP with its key, behind gateways deciding with the bundled policy
 * (policies/orders.yaml: get_order cached 30 s per principal; update_order_status deduplicated by idempotency_key and
 * invalidating get_order). The orders server's `GET /calls` counts what reached it.
 */
import { randomUUID } from 'node:crypto';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ORDERS_SERVER, startGateway, type TestGateway } from '../helpers/gateway.js';
import { probeRedis, describeRedis, REDIS_URL, redisClient } from '../helpers/redis.js';
import { REPO_ROOT, spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';
import { join } from 'node:path';

const ORDERS_KEY = 'result-cache-test-key-0123456789';
const redisUp = await probeRedis();

function textOf(result: unknown): string {
  return (result as { content: { text?: string }[] }).content.map((c) => c.text ?? '').join('');
}

async function calls(orders: SpawnedServer): Promise<Record<string, number>> {
  const res = await fetch(orders.url!.replace(/\/mcp$/, '/calls'), { headers: { 'x-api-key': ORDERS_KEY } });
  return (await res.json()) as Record<string, number>;
}

function ordersYaml(orders: SpawnedServer): string {
  return JSON.stringify({
    name: 'orders',
    transport: 'http',
    url: orders.url,
    headers: { 'X-API-Key': { fromEnv: 'CACHE_TEST_ORDERS_KEY' } },
  });
}

async function gateway(orders: SpawnedServer, extraTop = ''): Promise<TestGateway> {
  return startGateway([ordersYaml(orders)], {
    top: `auth:\n  mode: dev\npolicy:\n  dir: ${JSON.stringify(join(REPO_ROOT, 'policies'))}\n${extraTop}`,
    env: { ...process.env, CACHE_TEST_ORDERS_KEY: ORDERS_KEY },
  });
}

async function clientOf(gw: TestGateway, sub: string): Promise<Client> {
  const token = await gw.token({ sub, scopes: ['orders:read', 'orders:write'] });
  return gw.client({ transport: { requestInit: { headers: { authorization: `Bearer ${token}` } } } });
}

function auditOf(gw: TestGateway, field: 'cache' | 'idempotency'): unknown[] {
  return gw.logs
    .map((l) => l.audit as Record<string, unknown> | undefined)
    .filter((a) => a?.[field] !== undefined)
    .map((a) => a![field]);
}

describe('result cache and idempotent writes, one gateway (memory store)', () => {
  let orders: SpawnedServer;
  let gw: TestGateway;
  let alice: Client;
  let bob: Client;

  beforeAll(async () => {
    orders = await spawnServer(ORDERS_SERVER, { args: ['--http', '--port', '0'], env: { ORDERS_API_KEY: ORDERS_KEY } });
    gw = await gateway(orders);
    [alice, bob] = await Promise.all([clientOf(gw, 'alice'), clientOf(gw, 'bob')]);
  }, 90_000);

  afterAll(async () => {
    await gw?.close();
    await orders?.close();
  });

  it('serves a second identical get_order from the cache, per principal, and audits hit and miss', async () => {
    const before = (await calls(orders)).get_order ?? 0;
    const first = await alice.callTool({ name: 'orders__get_order', arguments: { order_id: 'ord-1002' } });
    const second = await alice.callTool({ name: 'orders__get_order', arguments: { order_id: 'ord-1002' } });
    expect(textOf(second)).toBe(textOf(first));
    expect((await calls(orders)).get_order).toBe(before + 1);
    // Another user's identical call is forwarded: scope principal never serves alice's entry to bob.
    await bob.callTool({ name: 'orders__get_order', arguments: { order_id: 'ord-1002' } });
    expect((await calls(orders)).get_order).toBe(before + 2);
    expect(auditOf(gw, 'cache')).toEqual(expect.arrayContaining(['miss', 'hit']));
  });

  it('a hit is still authorised: the same subject without the scope is refused, not served', async () => {
    await alice.callTool({ name: 'orders__get_order', arguments: { order_id: 'ord-1004' } });
    const token = await gw.token({ sub: 'alice', scopes: ['everything:use'] });
    const scopeless = await gw.client({
      transport: { requestInit: { headers: { authorization: `Bearer ${token}` } } },
    });
    await expect(
      scopeless.callTool({ name: 'orders__get_order', arguments: { order_id: 'ord-1004' } }),
    ).rejects.toThrow(/403|insufficient_scope|orders:read/);
  });

  it('collapses concurrent identical misses into one upstream call', async () => {
    const before = (await calls(orders)).get_order ?? 0;
    const results = await Promise.all(
      Array.from({ length: 5 }, () =>
        alice.callTool({ name: 'orders__get_order', arguments: { order_id: 'ord-1006' } }),
      ),
    );
    expect(new Set(results.map(textOf)).size).toBe(1);
    expect((await calls(orders)).get_order).toBe(before + 1);
  });

  it('never caches an isError result', async () => {
    const before = (await calls(orders)).get_order ?? 0;
    for (let i = 0; i < 2; i++) {
      const r = await alice.callTool({ name: 'orders__get_order', arguments: { order_id: 'ord-9999' } });
      expect(r.isError).toBe(true);
    }
    expect((await calls(orders)).get_order).toBe(before + 2);
  });

  it('a successful update_order_status makes the next get_order fresh (invalidates)', async () => {
    const read = () => alice.callTool({ name: 'orders__get_order', arguments: { order_id: 'ord-1001' } });
    expect(textOf(await read())).toContain('"pending"');
    const write = await alice.callTool({
      name: 'orders__update_order_status',
      arguments: { order_id: 'ord-1001', new_status: 'shipped' },
    });
    expect(write.isError).toBeFalsy();
    expect(textOf(await read())).toContain('"shipped"');
  });

  it('a retried update_order_status with the same key reaches the server once, sequentially and concurrently', async () => {
    // Its own callers: the write rule's rate limit (burst 5 per principal) counts replays too, as it should.
    const carol = await clientOf(gw, 'carol');
    const dave = await clientOf(gw, 'dave');
    const before = (await calls(orders)).update_order_status ?? 0;
    const key = `seq-${randomUUID().slice(0, 8)}`;
    const args = { order_id: 'ord-1007', new_status: 'shipped', idempotency_key: key };
    const seq = [];
    for (let i = 0; i < 3; i++)
      seq.push(await carol.callTool({ name: 'orders__update_order_status', arguments: args }));
    expect(new Set(seq.map(textOf)).size).toBe(1);
    expect((await calls(orders)).update_order_status).toBe(before + 1);

    const key2 = `con-${randomUUID().slice(0, 8)}`;
    const args2 = { order_id: 'ord-1007', new_status: 'pending', idempotency_key: key2 };
    const con = await Promise.all(
      Array.from({ length: 3 }, () => dave.callTool({ name: 'orders__update_order_status', arguments: args2 })),
    );
    expect(new Set(con.map(textOf)).size).toBe(1);
    expect((await calls(orders)).update_order_status).toBe(before + 2);
    expect(auditOf(gw, 'idempotency')).toEqual(expect.arrayContaining(['first', 'replay']));
  });

  it('refuses the same key with other arguments, and keys are per caller', async () => {
    const erin = await clientOf(gw, 'erin');
    const key = `cfl-${randomUUID().slice(0, 8)}`;
    await erin.callTool({
      name: 'orders__update_order_status',
      arguments: { order_id: 'ord-1005', new_status: 'shipped', idempotency_key: key },
    });
    await expect(
      erin.callTool({
        name: 'orders__update_order_status',
        arguments: { order_id: 'ord-1005', new_status: 'cancelled', idempotency_key: key },
      }),
    ).rejects.toThrow(/idempotency key already used with other arguments/);
    expect(auditOf(gw, 'idempotency')).toContain('conflict');
    // Bob's identical key is his own: it reaches the server (which answers from its own dedupe).
    const before = (await calls(orders)).update_order_status ?? 0;
    await bob.callTool({
      name: 'orders__update_order_status',
      arguments: { order_id: 'ord-1005', new_status: 'shipped', idempotency_key: key },
    });
    expect((await calls(orders)).update_order_status).toBe(before + 1);
  });
});

describeRedis(redisUp)('idempotent writes across two gateways sharing Redis', () => {
  let orders: SpawnedServer;
  let gws: TestGateway[];
  const prefix = `gatehouse-test:${randomUUID()}:`;

  beforeAll(async () => {
    orders = await spawnServer(ORDERS_SERVER, { args: ['--http', '--port', '0'], env: { ORDERS_API_KEY: ORDERS_KEY } });
    const top = `redis:\n  url: ${REDIS_URL}\n  keyPrefix: "${prefix}"\ncache:\n  store: redis\n`;
    gws = await Promise.all([gateway(orders, top), gateway(orders, top)]);
  }, 90_000);

  afterAll(async () => {
    await Promise.all((gws ?? []).map((g) => g.close()));
    await orders?.close();
    const redis = redisClient();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it('the same key 3× sequentially and 3× concurrently over both replicas reaches the server once each', async () => {
    const [a1, a2] = await Promise.all(gws.map((g) => clientOf(g, 'alice')));
    const pick = (i: number) => (i % 2 === 0 ? a1! : a2!);
    const before = (await calls(orders)).update_order_status ?? 0;
    const args = { order_id: 'ord-1007', new_status: 'shipped', idempotency_key: `r-seq-${randomUUID().slice(0, 8)}` };
    const seq = [];
    for (let i = 0; i < 3; i++)
      seq.push(await pick(i).callTool({ name: 'orders__update_order_status', arguments: args }));
    expect(new Set(seq.map(textOf)).size).toBe(1);
    expect((await calls(orders)).update_order_status).toBe(before + 1);

    const args2 = { order_id: 'ord-1007', new_status: 'pending', idempotency_key: `r-con-${randomUUID().slice(0, 8)}` };
    const con = await Promise.all(
      [0, 1, 2].map((i) => pick(i).callTool({ name: 'orders__update_order_status', arguments: args2 })),
    );
    expect(new Set(con.map(textOf)).size).toBe(1);
    expect((await calls(orders)).update_order_status).toBe(before + 2);

    await expect(
      a2!.callTool({ name: 'orders__update_order_status', arguments: { ...args2, new_status: 'shipped' } }),
    ).rejects.toThrow(/idempotency key already used/);
  });

  it('a cached read is shared by the replicas for the same caller, never for another', async () => {
    const [a1, a2] = await Promise.all(gws.map((g) => clientOf(g, 'alice')));
    const b2 = await clientOf(gws[1]!, 'bob');
    const before = (await calls(orders)).get_order ?? 0;
    await a1!.callTool({ name: 'orders__get_order', arguments: { order_id: 'ord-1003' } });
    await a2!.callTool({ name: 'orders__get_order', arguments: { order_id: 'ord-1003' } });
    expect((await calls(orders)).get_order).toBe(before + 1);
    await b2.callTool({ name: 'orders__get_order', arguments: { order_id: 'ord-1003' } });
    expect((await calls(orders)).get_order).toBe(before + 2);
  });
});
