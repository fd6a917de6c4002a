/**
 * THE cross-process test: three real `gatehouse start` processes share one Redis and one global limit of 50 per
 * hour (so refill cannot blur the count). 150 tools/call through the official SDK Client, spread over the three:
 * exactly 50 reach the upstream (counted by the fixture's record file, which all three upstream processes append
 * to) and exactly 100 get the rate-limit error with data.retryAfterMs > 0.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, expect, it } from 'vitest';
import { cli, finished, killAllCli, type CliRun } from '../helpers/cli.js';
import { stdioFixtureYaml } from '../helpers/gateway.js';
import { describeRedis, probeRedis, REDIS_URL, redisClient } from '../helpers/redis.js';
import { toolCalls, waitFor } from '../helpers/upstream-tools.js';

const available = await probeRedis();
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-limits-cli-'));
const prefix = `gatehouse-test:${randomBytes(6).toString('hex')}:`;

afterAll(async () => {
  killAllCli();
  rmSync(dir, { recursive: true, force: true });
  if (!available) return;
  const redis = redisClient();
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

async function listening(run: CliRun): Promise<string> {
  const line = await waitFor(
    'gatehouse listening',
    () =>
      run.stdout
        .join('')
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { msg?: string; address?: string })
        .find((l) => l.msg === 'gatehouse listening'),
    60_000,
  );
  return line.address!;
}

describeRedis(available)('three gateway processes share one Redis budget', () => {
  it(
    '150 calls against a global 50 per hour: exactly 50 reach the upstream, exactly 100 are rate limited',
    { timeout: 180_000 },
    async () => {
      const record = join(dir, 'record.jsonl');
      const file = join(dir, 'gatehouse.yaml');
      writeFileSync(
        file,
        [
          'server:',
          '  host: 127.0.0.1',
          '  port: 0',
          'logging:',
          '  level: info',
          'redis:',
          `  url: ${REDIS_URL}`,
          `  keyPrefix: "${prefix}"`,
          'limits:',
          '  store: redis',
          '  rules:',
          '    - { id: global-hourly, rate: { perHour: 50 } }',
          'upstreams:',
          `  - ${stdioFixtureYaml('fx', { env: { FIXTURE_RECORD_FILE: record } })}`,
          '',
        ].join('\n'),
      );
      const runs = [
        cli(['start', '--config', file]),
        cli(['start', '--config', file]),
        cli(['start', '--config', file]),
      ];
      const clients: Client[] = [];
      try {
        const addresses = await Promise.all(runs.map(listening));
        expect(new Set(addresses).size).toBe(3);
        for (const address of addresses) {
          const client = new Client({ name: 'limits-cli', version: '1.0.0' });
          await client.connect(new StreamableHTTPClientTransport(new URL(address)));
          clients.push(client);
        }
        let ok = 0;
        const limited: number[] = [];
        const other: unknown[] = [];
        // 150 attempts, round-robin over the three gateways, 15 in flight at a time.
        for (let batch = 0; batch < 10; batch++) {
          await Promise.all(
            Array.from({ length: 15 }, async (_, i) => {
              const n = batch * 15 + i;
              try {
                await clients[n % 3]!.callTool({ name: 'fx__echo', arguments: { text: `call ${n}` } });
                ok++;
              } catch (err) {
                if (err instanceof McpError && err.code === -31000)
                  limited.push((err.data as { retryAfterMs: number }).retryAfterMs);
                else other.push(err);
              }
            }),
          );
        }
        expect(other).toEqual([]);
        expect(ok).toBe(50);
        expect(limited).toHaveLength(100);
        for (const ms of limited) expect(ms).toBeGreaterThan(0);
        // The upstream (three fixture processes, one record file) saw exactly the 50 admitted calls.
        expect(toolCalls(record, 'echo')).toHaveLength(50);
      } finally {
        await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
        for (const run of runs) run.proc.kill('SIGTERM');
        await Promise.all(runs.map((run) => finished(run, 15_000)));
      }
    },
  );
});
