/**
 * The proof on one machine (docs/architecture.md §7): Redis, three gateway processes (the real CLI) and nginx
 * round-robin in front of them on loopback. Several official SDK clients keep long sessions going through nginx while
 * one gateway process is killed (SIGKILL: no goodbye) and started again on its port.
 *
 * What must hold:
 * - every session goes on: the same session id before and after, calls succeed after the loss on whichever replica
 *   nginx picks (the session id is an encrypted token any replica can open);
 * - the global rate limit (Redis) holds across the replicas and the restart;
 * - no accepted call is lost or duplicated: each call a client saw succeed reached the recording upstream exactly
 *   once; nothing reached it twice; a call cut off by the kill reached it at most once;
 * - each replica's audit hash chain verifies, the killed one's across its two runs.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadOrCreateDevKey, type DevKey } from '../../src/auth/dev-keys.js';
import { cli, finished, killAllCli, type CliRun } from '../helpers/cli.js';
import { FIXTURE_HTTP, permissivePolicyDir } from '../helpers/gateway.js';
import { describeNginx, startNginx, type Nginx } from '../helpers/nginx.js';
import { probeRedis, REDIS_URL, redisClient, describeRedis } from '../helpers/redis.js';
import { spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';
import { freePort, readRecord, waitFor } from '../helpers/upstream-tools.js';

const REPLICAS = 3;
const CLIENTS = 4;
/** The loss happens once this many calls (of all clients) have been answered. */
const KILL_AFTER = 40;
/**
 * Per client, at most, before the loss: clients keep calling while the kill lands (so calls are cut off in
 * flight), but a slow kill on a loaded machine cannot spend the global budget the later phases need.
 */
const BEFORE_MAX_PER_CLIENT = 20;
/** Per client, at most, while one replica is down (paced, so the survivors serve them). */
const CALLS_WHILE_DOWN = 8;
/** Per client, after the restart, before the budget runs out: these must succeed. */
const CALLS_AFTER_RESTART = 10;
/** Per client, then: more than the global budget has left. */
const CALLS_TO_EXHAUST = 25;
/**
 * Global calls per day over all replicas — per day, so the bucket refills one call per ~10 minutes and none
 * during the test however slow the machine: the counts below are exact. At most 4×20 + 4×8 = 112 calls
 * before the restart, so every client's first calls after it still fit; far fewer than all attempts (≥ 40 + 4×35).
 */
const GLOBAL_LIMIT = 140;
const VICTIM = 1;

const redisUp = await probeRedis();

describeNginx('replica loss behind nginx', () => {
  describeRedis(redisUp)('three gateway processes, Redis and nginx round-robin', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-replicas-'));
    const keyPrefix = `gatehouse-test:${randomUUID()}:`;
    const sessionKey = randomBytes(32).toString('base64url');
    const recordFile = join(dir, 'upstream-record.jsonl');
    const ports: number[] = [];
    const runs: (CliRun | undefined)[] = [];
    const configs: string[] = [];
    const auditFiles: string[] = [];
    let fixture: SpawnedServer;
    let nginx: Nginx;
    let devKey: DevKey;

    const startReplica = async (i: number): Promise<void> => {
      const run = cli(['start', '--config', configs[i]!], { env: { GATEHOUSE_SESSION_KEY: sessionKey } });
      runs[i] = run;
      await waitFor(
        `replica ${i} ready on ${ports[i]}`,
        async () => {
          if (run.proc.exitCode !== null)
            throw new Error(
              `replica ${i} exited ${run.proc.exitCode}: ${run.stderr.join('')}${run.stdout.join('').slice(-2000)}`,
            );
          const res = await fetch(`http://127.0.0.1:${ports[i]}/readyz`).catch(() => undefined);
          return res?.status === 200;
        },
        // Generous: a cold `tsx` start on a loaded 2-core CI machine; only a hang would take this long.
        60_000,
        100,
      );
    };

    beforeAll(async () => {
      fixture = await spawnServer(FIXTURE_HTTP, { env: { FIXTURE_RECORD_FILE: recordFile } });
      devKey = await loadOrCreateDevKey(join(dir, 'dev-key.json'));
      const policyDir = permissivePolicyDir(dir);
      for (let i = 0; i < REPLICAS; i++) ports.push(await freePort());
      nginx = await startNginx(join(dir, 'nginx'), ports);
      for (let i = 0; i < REPLICAS; i++) {
        const auditFile = join(dir, `audit-${i}.jsonl`);
        auditFiles.push(auditFile);
        const file = join(dir, `gatehouse-${i}.yaml`);
        writeFileSync(
          file,
          [
            'server:',
            '  host: 127.0.0.1',
            `  port: ${ports[i]}`,
            'auth:',
            '  mode: dev',
            // Every replica serves the one public URL: nginx's.
            `  resource: http://127.0.0.1:${nginx.port}/mcp`,
            '  dev:',
            `    keyFile: ${join(dir, 'dev-key.json')}`,
            'policy:',
            `  dir: ${policyDir}`,
            'redis:',
            `  url: ${REDIS_URL}`,
            `  keyPrefix: "${keyPrefix}"`,
            'limits:',
            '  store: redis',
            '  rules:',
            '    - id: global',
            '      per: []',
            `      rate: { perDay: ${GLOBAL_LIMIT}, burst: ${GLOBAL_LIMIT} }`,
            'sessions:',
            '  keys:',
            '    - fromEnv: GATEHOUSE_SESSION_KEY',
            '  store: redis',
            'audit:',
            '  sink: file',
            `  file: ${auditFile}`,
            'logging:',
            '  level: warn',
            'upstreams:',
            `  - { name: rec, transport: http, url: "${fixture.url}" }`,
            '',
          ].join('\n'),
        );
        configs.push(file);
      }
      await Promise.all(configs.map((_, i) => startReplica(i)));
      // nginx's own start-up probe met no backend and marked each failed for `fail_timeout` (2 s): replicas that
      // are ready sooner would still get 502 "no live upstreams". Wait until it routes to every one of them.
      await waitFor(
        'nginx routing to every replica',
        async () => {
          for (let i = 0; i < REPLICAS; i++) if ((await fetch(`${nginx.url}/readyz`)).status !== 200) return false;
          return true;
        },
        20_000,
        200,
      );
    }, 120_000);

    afterAll(async () => {
      await Promise.all(
        runs.map(async (run) => {
          if (run && run.proc.exitCode === null) {
            run.proc.kill('SIGTERM');
            await finished(run, 10_000);
          }
        }),
      );
      killAllCli();
      await nginx?.close();
      await fixture?.close();
      const redis = redisClient();
      const keys = await redis.keys(`${keyPrefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      await redis.quit();
      rmSync(dir, { recursive: true, force: true });
    });

    it('keeps every session, the global limit and every accepted call through a SIGKILL and restart', async () => {
      const endpoint = new URL(`${nginx.url}/mcp`);
      const clients: { client: Client; transport: StreamableHTTPClientTransport; sessionAtStart: string }[] = [];
      for (let k = 0; k < CLIENTS; k++) {
        const token = await devKey.mint({
          sub: `agent-${k}`,
          scopes: [],
          audience: endpoint.href,
          issuer: 'urn:gatehouse:dev',
        });
        const transport = new StreamableHTTPClientTransport(endpoint, {
          requestInit: { headers: { Authorization: `Bearer ${token}` } },
        });
        const client = new Client({ name: `agent-${k}`, version: '1.0.0' });
        client.onerror = () => undefined; // the GET stream to the killed replica breaks; the SDK reconnects it
        await client.connect(transport);
        clients.push({ client, transport, sessionAtStart: transport.sessionId! });
      }
      expect(new Set(clients.map((c) => c.sessionAtStart)).size).toBe(CLIENTS);

      // Four phases, so the loss falls in the middle of the sessions and the limit is reached only at the end:
      // calls until the kill; a few paced calls while one replica is down (two replicas serve); calls after the
      // restart (three replicas); then more calls than the global budget has left.
      let answered = 0;
      let phase: 'before' | 'down' | 'after' = 'before';
      const ok: string[] = [];
      const okWhileDown = new Map<number, number>();
      const okAfterRestart = new Map<number, number>();
      const triedWhileDown = new Map<number, number>();
      const rateLimited: string[] = [];
      const rateLimitedEarly: string[] = [];
      const failed: { message: string; error: string }[] = [];
      let attempts = 0;
      let markRestarted!: () => void;
      const restarted = new Promise<void>((r) => (markRestarted = r));
      let markDown!: () => void;
      const down = new Promise<void>((r) => (markDown = r));
      const loss = (async () => {
        await waitFor('enough calls before the loss', () => answered >= KILL_AFTER, 120_000, 10);
        runs[VICTIM]!.proc.kill('SIGKILL');
        await runs[VICTIM]!.exited;
        phase = 'down';
        markDown();
        // The survivors serve alone until every client has had a call answered by them (or used its attempts,
        // which the assertions below report): an event, not a guess at how long that takes on this machine.
        const downSince = Date.now();
        await waitFor(
          'every client tried the survivors',
          () =>
            clients.every((_, k) => (okWhileDown.get(k) ?? 0) > 0 || (triedWhileDown.get(k) ?? 0) >= CALLS_WHILE_DOWN),
          120_000,
          10,
        );
        await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - downSince))));
        await startReplica(VICTIM);
        phase = 'after';
        markRestarted();
      })();

      const call = async (client: Client, k: number, n: number): Promise<void> => {
        const message = `agent-${k}-call-${n}`;
        const during = phase;
        attempts++;
        try {
          const result = (await client.callTool({ name: 'rec__echo', arguments: { text: message } })) as CallToolResult;
          expect(result.isError).toBeFalsy();
          expect(result.structuredContent).toEqual({ text: message });
          ok.push(message);
          if (during === 'down') okWhileDown.set(k, (okWhileDown.get(k) ?? 0) + 1);
          if (during === 'after') okAfterRestart.set(k, (okAfterRestart.get(k) ?? 0) + 1);
        } catch (err) {
          const data = (err as { data?: { retryAfterMs?: unknown } }).data;
          if (typeof data?.retryAfterMs === 'number') {
            rateLimited.push(message);
            if (during !== 'after') rateLimitedEarly.push(message);
          } else failed.push({ message, error: String(err) });
        } finally {
          answered++;
          if (during === 'down') triedWhileDown.set(k, (triedWhileDown.get(k) ?? 0) + 1);
        }
      };

      await Promise.all(
        clients.map(async ({ client }, k) => {
          let n = 0;
          while (phase === 'before' && n < BEFORE_MAX_PER_CLIENT) await call(client, k, n++);
          await down;
          for (let i = 0; i < CALLS_WHILE_DOWN && phase === 'down'; i++) {
            await call(client, k, n++);
            await new Promise((r) => setTimeout(r, 100));
          }
          await restarted;
          for (let i = 0; i < CALLS_AFTER_RESTART + CALLS_TO_EXHAUST; i++) await call(client, k, n++);
        }),
      );
      await loss;

      // Sessions continued: same ids, and each client had successful calls after the restart.
      for (const [k, c] of clients.entries()) {
        expect(c.transport.sessionId).toBe(c.sessionAtStart);
        expect(okWhileDown.get(k) ?? 0, `agent-${k} succeeded while a replica was down`).toBeGreaterThan(0);
        expect(okAfterRestart.get(k) ?? 0, `agent-${k} succeeded after the restart`).toBeGreaterThan(0);
      }

      // Nothing was refused before the restart: those phases fit in the budget, so the limit counted no call twice.
      expect(rateLimitedEarly).toEqual([]);
      // Accounting: every attempt is exactly one of ok, rate limited, cut off.
      expect(ok.length + rateLimited.length + failed.length).toBe(attempts);
      // Only the calls in flight on the killed replica may fail (nginx cannot replay a sent POST): a handful.
      expect(failed.length, JSON.stringify(failed)).toBeLessThanOrEqual(CLIENTS);

      // No accepted call lost, none duplicated.
      const reached = readRecord(recordFile)
        .filter((l) => l.method === 'tools/call' && (l.params as { name?: string } | undefined)?.name === 'echo')
        .map((l) => (l.params as { arguments?: { text?: string } }).arguments?.text ?? '');
      const counts = new Map<string, number>();
      for (const m of reached) counts.set(m, (counts.get(m) ?? 0) + 1);
      for (const m of ok) expect(counts.get(m), `${m} reached the upstream once`).toBe(1);
      for (const [m, n] of counts) expect(n, `${m} reached the upstream at most once`).toBe(1);
      const attempted = new Set([...ok, ...failed.map((f) => f.message)]);
      for (const m of counts.keys()) expect(attempted.has(m), `${m} was a call that was not refused`).toBe(true);

      // The global limit held over the three replicas and the restart.
      expect(reached.length).toBeLessThanOrEqual(GLOBAL_LIMIT);
      expect(ok.length).toBeLessThanOrEqual(GLOBAL_LIMIT);
      expect(rateLimited.length).toBeGreaterThanOrEqual(attempts - GLOBAL_LIMIT - failed.length);
      expect(rateLimited.length).toBeGreaterThan(0);

      // Sessions really moved between replicas: each agent's calls are in the audit of at least two of them.
      await Promise.all(clients.map(({ client }) => client.close()));
      for (const run of runs) {
        run!.proc.kill('SIGTERM');
        const r = await finished(run!, 15_000);
        expect(r.code).toBe(0);
      }
      const subjectsByReplica = auditFiles.map(
        (f) =>
          new Set(
            readRecord<{ audit?: { subject?: string; tool?: string } }>(f)
              .filter((l) => l.audit?.tool === 'rec__echo')
              .map((l) => l.audit?.subject),
          ),
      );
      for (let k = 0; k < CLIENTS; k++) {
        const servedBy = subjectsByReplica.filter((s) => s.has(`agent-${k}`)).length;
        expect(servedBy, `agent-${k} served by several replicas`).toBeGreaterThanOrEqual(2);
      }

      // Each replica's audit chain verifies (the victim's across its killed and its new run).
      for (const file of auditFiles) {
        const v = await finished(cli(['audit', 'verify', file]), 20_000);
        expect(v.code, `${file}: ${v.stdout}${v.stderr}`).toBe(0);
      }
    }, 180_000);
  });
});
