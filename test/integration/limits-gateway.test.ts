/**
 * Call limits end to end through a real gateway (in process, real stdio fixture upstream, official SDK Client):
 * per-principal budgets that no new session, re-initialise or forged X-Forwarded-For resets; concurrency caps
 * that free on completion and on cancel; the policy rules' own `limits`; and a Redis store that goes away and
 * comes back (fail closed refuses and /readyz says so, fail open allows, recovery without a restart).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, stdioFixtureYaml, type LogLine, type TestGateway } from '../helpers/gateway.js';
import { describeRedis, probeRedis } from '../helpers/redis.js';
import { freePort, waitFor } from '../helpers/upstream-tools.js';

const available = await probeRedis();

/** The error a refused call rejects with (the SDK turns the JSON-RPC error into an McpError). */
async function refusal(p: Promise<unknown>): Promise<McpError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof McpError)) throw new Error(`expected an McpError, got ${String(err)}`);
  return err;
}

function auditRecords(logs: LogLine[]): Record<string, unknown>[] {
  return logs.filter((l) => l.audit !== undefined).map((l) => l.audit as Record<string, unknown>);
}

const echo = (client: Client, text = 'hi') =>
  client.callTool({ name: 'fx__echo', arguments: { text } }) as Promise<CallToolResult>;

describe('limits: per principal, never per session, connection or address', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway([stdioFixtureYaml('fx')], {
      server: { trustedProxies: ['127.0.0.1'] },
      top: [
        'auth:',
        '  mode: dev',
        'limits:',
        '  rules:',
        '    - { id: echo-per-subject, per: [subject], tools: [fx__echo], rate: { perHour: 2 } }',
        '    - { id: slow-in-flight, per: [subject], tools: [fx__slow], concurrency: 1 }',
        '',
      ].join('\n'),
    });
  });
  afterAll(async () => {
    await gw?.close();
  });

  const clientFor = async (sub: string, headers: Record<string, string> = {}): Promise<Client> => {
    const token = await gw.token({ sub, scopes: [] });
    return gw.client({ transport: { requestInit: { headers: { authorization: `Bearer ${token}`, ...headers } } } });
  };

  it('each subject has its own budget; the refusal is -31000 with data.retryAfterMs, audited as rate_limited', async () => {
    const alice = await clientFor('alice');
    const bob = await clientFor('bob');
    expect((await echo(alice)).isError).toBeFalsy();
    expect((await echo(alice)).isError).toBeFalsy();
    const err = await refusal(echo(alice));
    expect(err.code).toBe(-31000);
    expect(err.message).toContain('Rate limit exceeded');
    const data = err.data as { retryAfterMs: number };
    // perHour 2, burst 2: the next token comes 30 minutes after the first one.
    expect(data.retryAfterMs).toBeGreaterThan(29 * 60_000);
    expect(data.retryAfterMs).toBeLessThanOrEqual(30 * 60_000);
    // Bob is not affected.
    expect((await echo(bob)).isError).toBeFalsy();
    expect((await echo(bob)).isError).toBeFalsy();
    await refusal(echo(bob));
    const denied = auditRecords(gw.logs).filter((a) => a.type === 'mcp.request' && a.errorCode === 'rate_limited');
    expect(denied.length).toBe(2);
    expect(denied[0]).toMatchObject({
      decision: 'deny',
      outcome: 'denied',
      rule: 'echo-per-subject',
      tool: 'fx__echo',
      subject: 'alice',
      reason: 'rate_limited',
    });
    expect(String(denied[0]!.detail)).toContain('rate limit echo-per-subject');
  });

  it('a new session, a re-initialise on a new connection and a forged X-Forwarded-For do not reset the budget', async () => {
    const variants: Record<string, string>[] = [
      {},
      { 'x-forwarded-for': '203.0.113.7' },
      { 'x-forwarded-for': '198.51.100.1, 10.0.0.1', 'x-real-ip': '198.51.100.1' },
    ];
    for (const headers of variants) {
      const again = await clientFor('alice', headers);
      const err = await refusal(echo(again));
      expect(err.code).toBe(-31000);
      await again.close();
    }
  });

  it('concurrency: the (N+1)th call in flight is refused, other subjects are not, and the slot frees on completion', async () => {
    const alice = await clientFor('alice');
    const bob = await clientFor('bob');
    const long = alice.callTool({ name: 'fx__slow', arguments: { ms: 1500 } });
    // The first call holds the lease once the gateway has forwarded it: wait for its tools/call to be in flight.
    await waitFor('first slow call in flight', () => gw.app.frontDoor.inFlightCount >= 1);
    const err = await refusal(alice.callTool({ name: 'fx__slow', arguments: { ms: 1 } }));
    expect(err.code).toBe(-31000);
    expect((err.data as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(0);
    expect(auditRecords(gw.logs).some((a) => a.rule === 'slow-in-flight' && a.errorCode === 'rate_limited')).toBe(true);
    expect((await bob.callTool({ name: 'fx__slow', arguments: { ms: 1 } })).isError).toBeFalsy();
    expect(((await long) as CallToolResult).isError).toBeFalsy();
    expect((await alice.callTool({ name: 'fx__slow', arguments: { ms: 1 } })).isError).toBeFalsy();
  });

  it('concurrency: a cancelled call gives its slot back', async () => {
    const carol = await clientFor('carol');
    const abort = new AbortController();
    const hanging = carol
      .callTool({ name: 'fx__slow', arguments: { ms: 60_000 } }, undefined, { signal: abort.signal })
      .catch((e: unknown) => e);
    await waitFor('slow call in flight', () => gw.app.frontDoor.inFlightCount >= 1);
    await refusal(carol.callTool({ name: 'fx__slow', arguments: { ms: 1 } }));
    abort.abort('test');
    await hanging;
    await waitFor('the cancelled call released its lease', async () => {
      try {
        return !(await carol.callTool({ name: 'fx__slow', arguments: { ms: 1 } })).isError;
      } catch {
        return false;
      }
    });
  });
});

describe('limits: the policy rules’ own limits', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    const dir = join(tmpdir(), `gatehouse-limits-policy-${randomBytes(4).toString('hex')}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'limits.yaml'),
      [
        'version: 1',
        'rules:',
        '  - id: echo.limited',
        '    effect: allow',
        '    match: { tools: [fx__echo] }',
        '    when: { authenticated: true }',
        '    limits: { rate: { perMinute: 2, burst: 2 } }',
        '  - id: slow.deadline',
        '    effect: allow',
        '    match: { tools: [fx__slow] }',
        '    when: { authenticated: true }',
        '    limits: { timeoutMs: 300, concurrency: 5 }',
        '  - id: hang.one-at-a-time',
        '    effect: allow',
        '    match: { tools: [fx__hang] }',
        '    when: { authenticated: true }',
        '    limits: { concurrency: 1 }',
        '',
      ].join('\n'),
    );
    gw = await startGateway([stdioFixtureYaml('fx')], {
      top: `auth:\n  mode: dev\npolicy:\n  dir: ${JSON.stringify(dir)}\n`,
    });
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('rate: per principal and tool, refused with the policy rule named in the audit record', async () => {
    const token = await gw.token({ sub: 'dave', scopes: [] });
    const client = await gw.client({ transport: { requestInit: { headers: { authorization: `Bearer ${token}` } } } });
    await echo(client);
    await echo(client);
    const err = await refusal(echo(client));
    expect(err.code).toBe(-31000);
    const retry = (err.data as { retryAfterMs: number }).retryAfterMs;
    expect(retry).toBeGreaterThan(25_000);
    expect(retry).toBeLessThanOrEqual(30_000);
    const denied = auditRecords(gw.logs).find((a) => a.errorCode === 'rate_limited');
    expect(denied).toMatchObject({ rule: 'echo.limited', decision: 'deny', outcome: 'denied' });
    // Another principal has its own bucket.
    const other = await gw.client({
      transport: {
        requestInit: { headers: { authorization: `Bearer ${await gw.token({ sub: 'erin', scopes: [] })}` } },
      },
    });
    expect((await echo(other)).isError).toBeFalsy();
  });

  it('concurrency: one call in flight per principal and tool; the policy rule is named; cancel frees it', async () => {
    const token = await gw.token({ sub: 'frank', scopes: [] });
    const client = await gw.client({ transport: { requestInit: { headers: { authorization: `Bearer ${token}` } } } });
    const abort = new AbortController();
    const hanging = client
      .callTool({ name: 'fx__hang', arguments: {} }, undefined, { signal: abort.signal })
      .catch((e: unknown) => e);
    await waitFor('hang in flight', () => gw.app.frontDoor.inFlightCount >= 1);
    const err = await refusal(client.callTool({ name: 'fx__hang', arguments: {} }));
    expect(err.code).toBe(-31000);
    expect(
      auditRecords(gw.logs).some(
        (a) => a.errorCode === 'rate_limited' && a.rule === 'hang.one-at-a-time' && a.subject === 'frank',
      ),
    ).toBe(true);
    abort.abort('test');
    await hanging;
    await waitFor('gateway finished the cancelled call', () => gw.app.frontDoor.inFlightCount === 0);
    const again = new AbortController();
    const second = client
      .callTool({ name: 'fx__hang', arguments: {} }, undefined, { signal: again.signal })
      .catch((e: unknown) => e);
    await waitFor('second hang in flight', () => gw.app.frontDoor.inFlightCount >= 1);
    // Admitted (not refused): still in flight after a moment, then cancelled.
    await new Promise((r) => setTimeout(r, 100));
    expect(gw.app.frontDoor.inFlightCount).toBe(1);
    again.abort('test');
    // The SDK rejects an aborted call locally; whatever it says, it is not the rate-limit refusal.
    const outcome = await second;
    expect(outcome instanceof McpError ? outcome.code : undefined).not.toBe(-31000);
  });

  it('timeoutMs caps the call deadline', async () => {
    const token = await gw.token({ sub: 'dave', scopes: [] });
    const client = await gw.client({ transport: { requestInit: { headers: { authorization: `Bearer ${token}` } } } });
    const t0 = Date.now();
    const err = await refusal(client.callTool({ name: 'fx__slow', arguments: { ms: 5000 } }));
    expect(err.code).toBe(-32603);
    expect(err.message).toContain('did not answer in time');
    expect(Date.now() - t0).toBeLessThan(4000);
    expect((await client.callTool({ name: 'fx__slow', arguments: { ms: 10 } })).isError).toBeFalsy();
  });
});

describeRedis(available)('limits: the Redis store goes away and comes back', () => {
  let gw: TestGateway;
  let port: number;
  let server: ChildProcess | undefined;
  const startRedis = async (): Promise<void> => {
    server = spawn('/usr/bin/redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
  };
  const readyz = async (): Promise<{ status: number; body: { redis?: { state: string; limits?: string } } }> => {
    const res = await fetch(new URL('/readyz', gw.url));
    return { status: res.status, body: (await res.json()) as { redis?: { state: string; limits?: string } } };
  };

  beforeAll(async () => {
    port = await freePort();
    await startRedis();
    gw = await startGateway([stdioFixtureYaml('fx')], {
      top: [
        'redis:',
        `  url: redis://127.0.0.1:${port}`,
        `  keyPrefix: "gatehouse-test:${randomBytes(4).toString('hex')}:"`,
        '  connectTimeoutMs: 500',
        '  commandTimeoutMs: 500',
        'limits:',
        '  store: redis',
        '  rules:',
        '    - { id: echo-closed, tools: [fx__echo], rate: { perHour: 1000 } }',
        '    - { id: add-open, tools: [fx__add], rate: { perHour: 1000 }, onStoreError: open }',
        '',
      ].join('\n'),
    });
    await waitFor('redis up', async () => (await readyz()).status === 200);
  });
  afterAll(async () => {
    await gw?.close();
    server?.kill('SIGKILL');
  });

  it('fail closed refuses and /readyz says so; fail open allows; a restarted Redis heals the gateway without a restart', async () => {
    const client = await gw.client();
    expect((await echo(client)).isError).toBeFalsy();
    expect((await readyz()).body.redis).toMatchObject({ state: 'up', limits: 'ok' });

    server!.kill('SIGKILL');
    await new Promise<void>((r) => server!.once('exit', () => r()));
    const down = await waitFor('readyz 503', async () => {
      const r = await readyz();
      return r.status === 503 ? r : undefined;
    });
    expect(down.body.redis).toMatchObject({ state: 'down', limits: 'failing closed' });

    const err = await refusal(echo(client));
    expect(err.code).toBe(-32603);
    expect(err.message).toContain('Rate limiter unavailable');
    expect((err.data as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(0);
    const added = (await client.callTool({ name: 'fx__add', arguments: { a: 2, b: 3 } })) as CallToolResult;
    expect(added.isError).toBeFalsy();
    const records = auditRecords(gw.logs);
    expect(records.find((a) => a.errorCode === 'limiter_unavailable')).toMatchObject({
      rule: 'echo-closed',
      decision: 'deny',
      outcome: 'denied',
    });
    expect(records.some((a) => a.type === 'store.state' && a.outcome === 'error')).toBe(true);
    expect(gw.logs.filter((l) => String(l.msg).startsWith('limits store unavailable')).length).toBe(1);

    await startRedis();
    await waitFor('readyz 200 again', async () => (await readyz()).status === 200, 15_000);
    expect((await echo(client)).isError).toBeFalsy();
    expect(
      auditRecords(gw.logs).some((a) => a.type === 'store.state' && a.outcome === 'ok' && a.detail === 'redis up'),
    ).toBe(true);
  });
});
