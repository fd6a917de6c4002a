/**
 * `server.httpRateLimit` with `limits.store: redis`: two gateways (two replicas) count new sessions, and failed
 * authentications, from one address in the same Redis window, under `<redis.keyPrefix>http-rl:`; and with its own Redis stopped, the limit
 * fails closed (503 + Retry-After) as `limits.onStoreError: closed` says.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  initializeBody,
  post,
  startGateway,
  stdioFixtureYaml,
  type LogLine,
  type TestGateway,
} from '../helpers/gateway.js';
import { describeRedis, probeRedis, REDIS_URL, redisClient } from '../helpers/redis.js';
import { freePort, waitFor } from '../helpers/upstream-tools.js';

const available = await probeRedis();
const ACCEPT = { accept: 'application/json, text/event-stream' };

function redisTop(url: string, prefix: string): string {
  return [
    'redis:',
    `  url: ${url}`,
    `  keyPrefix: "${prefix}"`,
    '  connectTimeoutMs: 500',
    '  commandTimeoutMs: 500',
    'limits:',
    '  store: redis',
    '  rules: []',
    '',
  ].join('\n');
}

/** Two gateways (replicas) on the shared Redis under a fresh key prefix, started and stopped by the calling describe's hooks. */
function replicas(opts: { top?: string; server: Record<string, unknown> }): { gws: TestGateway[]; prefix: string } {
  const prefix = `gatehouse-test:${randomBytes(4).toString('hex')}:`;
  const gws: TestGateway[] = [];
  beforeAll(async () => {
    for (let i = 0; i < 2; i++)
      gws.push(
        await startGateway([stdioFixtureYaml('fx')], {
          top: `${opts.top ?? ''}${redisTop(REDIS_URL, prefix)}`,
          server: opts.server,
        }),
      );
  });
  afterAll(async () => {
    await Promise.all(gws.map((g) => g.close()));
    const redis = redisClient();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });
  return { gws, prefix };
}

describeRedis(available)('HTTP rate limits shared through Redis', () => {
  const { gws, prefix } = replicas({
    server: { httpRateLimit: { sessions: { windowSeconds: 60, perIp: 2, perClient: 100 } } },
  });

  it('counts one address across replicas', async () => {
    const [a, b] = gws as [TestGateway, TestGateway];
    await waitFor('redis up', async () => (await fetch(new URL('/readyz', a.url))).status === 200 || undefined);
    expect((await post(a.url, initializeBody(), ACCEPT)).status).toBe(200);
    expect((await post(b.url, initializeBody(), ACCEPT)).status).toBe(200);
    const refused = await post(a.url, initializeBody(), ACCEPT);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await post(b.url, initializeBody(), ACCEPT)).status).toBe(429);

    const redis = redisClient();
    const keys = await redis.keys(`${prefix}http-rl:*`);
    await redis.quit();
    expect(keys.some((k) => k.endsWith('sessions.perIp:127.0.0.1'))).toBe(true);
  });
});

describeRedis(available)('failed authentications shared through Redis', () => {
  const { gws, prefix } = replicas({
    top: 'auth:\n  mode: dev\n',
    server: { httpRateLimit: { authFailures: { windowSeconds: 60, perIp: 3 } } },
  });

  it('counts the 401s of one address across replicas; each replica refuses it once its own count goes over', async () => {
    const [a, b] = gws as [TestGateway, TestGateway];
    await waitFor('redis up', async () => (await fetch(new URL('/readyz', a.url))).status === 200 || undefined);
    const bad = { ...ACCEPT, authorization: 'Bearer not-a-token' };
    const status = async (gw: TestGateway): Promise<number> => (await post(gw.url, initializeBody(), bad)).status;
    // Failures 1-2 on A, 3-4 on B: the fourth is over the shared budget of three.
    expect([await status(a), await status(a), await status(b), await status(b)]).toEqual([401, 401, 401, 401]);
    expect(await status(b)).toBe(429);
    // A counts its next failure in the same window, finds it over, and refuses from then on.
    expect([await status(a), await status(a)]).toEqual([401, 429]);
    // A good token from that address is refused too (before authentication).
    const good = await a.token({ sub: 'alice', scopes: [] });
    expect((await post(a.url, initializeBody(), { ...ACCEPT, authorization: `Bearer ${good}` })).status).toBe(429);

    const redis = redisClient();
    const keys = await redis.keys(`${prefix}http-rl:*`);
    await redis.quit();
    expect(keys.some((k) => k.endsWith('authFailures.perIp:127.0.0.1'))).toBe(true);
  });
});

describeRedis(available)('HTTP rate limits when Redis is down', () => {
  let gw: TestGateway;
  let server: ChildProcess | undefined;
  beforeAll(async () => {
    const port = await freePort();
    server = spawn('/usr/bin/redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    gw = await startGateway([stdioFixtureYaml('fx')], {
      top: redisTop(`redis://127.0.0.1:${port}`, `gatehouse-test:${randomBytes(4).toString('hex')}:`),
    });
    await waitFor('redis up', async () => (await fetch(new URL('/readyz', gw.url))).status === 200 || undefined);
  });
  afterAll(async () => {
    await gw?.close();
    server?.kill('SIGKILL');
  });

  it('fails closed: 503 + Retry-After, recorded', async () => {
    expect((await post(gw.url, initializeBody(), ACCEPT)).status).toBe(200);
    server!.kill('SIGKILL');
    await new Promise<void>((r) => server!.once('exit', () => r()));
    const refused = await waitFor('a 503', async () => {
      const r = await post(gw.url, initializeBody(), ACCEPT);
      return r.status === 503 ? r : undefined;
    });
    expect(refused.headers.get('retry-after')).toBe('10');
    expect(refused.json).toEqual({
      jsonrpc: '2.0',
      id: null,
      error: { code: -32603, message: 'Service temporarily overloaded' },
    });
    const audit = gw.logs
      .map((l: LogLine) => l.audit as Record<string, unknown> | undefined)
      .filter((e) => e?.type === 'http.rejected');
    expect(audit).toContainEqual(
      expect.objectContaining({ reason: 'rate_limit_store_unavailable', status: 503, rule: 'sessions.perIp' }),
    );
  });
});
