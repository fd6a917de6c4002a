/**
 * stdio upstreams under stress, through the gateway, with real fixture processes: the environment a child
 * gets, crashes, hangs, junk and huge output, pagination, unhealthy neighbours, per-session processes and
 * name collisions at start-up.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors/config-error.js';
import { exposedName } from '../../src/router/naming.js';
import { FIXTURE_STDIO, startGateway, stdioFixtureYaml, type TestGateway } from '../helpers/gateway.js';
import { DUP_SERVER, isAlive, readRecord, timed, toolCalls, waitFor } from '../helpers/upstream-tools.js';
import { NullAuditSink } from '../../src/audit/audit-sink.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'gatehouse-stdio-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function textOf(r: unknown): string {
  const first = (r as CallToolResult).content[0];
  return first?.type === 'text' ? first.text : '';
}

async function readyz(gw: TestGateway): Promise<number> {
  const res = await fetch(new URL('/readyz', gw.url));
  await res.body?.cancel();
  return res.status;
}

describe('the environment of a stdio child', () => {
  let gw: TestGateway;
  let client: Client;
  const CANARY = 'GATEHOUSE_CANARY_SECRET';

  beforeAll(async () => {
    const dir = tempDir();
    const secretFile = join(dir, 'child.secret');
    writeFileSync(secretFile, 'secret-from-a-file\n', { mode: 0o600 });
    process.env[CANARY] = 'canary-value-must-not-leak';
    gw = await startGateway(
      [
        stdioFixtureYaml('fx', {
          envAllow: ['PATH', 'HOME', 'GATEHOUSE_NOT_SET_ANYWHERE'],
          env: {
            PLAIN_SETTING: 'plain-value',
            FILE_SECRET: { fromFile: secretFile },
            ENV_SECRET: { fromEnv: 'SOURCE_OF_SECRET' },
          },
        }),
      ],
      { env: { SOURCE_OF_SECRET: 'secret-from-the-environment' } },
    );
    client = await gw.client();
  });

  afterAll(async () => {
    delete process.env[CANARY];
    await gw?.close();
  });

  it('has only the allow-listed names and the configured values; secrets are injected, nothing else leaks', async () => {
    const env = JSON.parse(textOf(await client.callTool({ name: 'fx__env_report', arguments: {} }))) as Record<
      string,
      string
    >;
    expect(env.PATH).toBe(process.env.PATH);
    expect(env.HOME).toBe(process.env.HOME);
    expect(env.PLAIN_SETTING).toBe('plain-value');
    // The child got both secrets; its echo of them comes back redacted (threat model #17). That fromFile drops the
    // final newline an editor adds is checked in test/unit/config.test.ts.
    expect(env.FILE_SECRET).toBe('[REDACTED]');
    expect(env.ENV_SECRET).toBe('[REDACTED]');
    expect(env[CANARY]).toBeUndefined();
    expect(env.GATEHOUSE_TEST).toBeUndefined(); // set in this process by the global setup
    expect(env.GATEHOUSE_NOT_SET_ANYWHERE).toBeUndefined();
    expect(JSON.stringify(env)).not.toContain('canary-value-must-not-leak');
    // Whatever node itself adds at start-up aside, nothing of ours beyond the list.
    const ours = Object.keys(env).filter((k) => k in process.env && !['PATH', 'HOME'].includes(k));
    expect(ours).toEqual([]);
  });

  it('never writes the secrets into the logs', () => {
    const text = JSON.stringify(gw.logs);
    expect(text).not.toContain('secret-from-a-file');
    expect(text).not.toContain('secret-from-the-environment');
  });
});

describe('a crashing and a hung upstream', () => {
  let gw: TestGateway;
  let client: Client;
  let crashRecord: string;
  let hungRecord: string;

  beforeAll(async () => {
    const dir = tempDir();
    crashRecord = join(dir, 'crash.jsonl');
    hungRecord = join(dir, 'hung.jsonl');
    gw = await startGateway([
      stdioFixtureYaml('fx', {
        env: { FIXTURE_RECORD_FILE: crashRecord },
        restart: { initialDelayMs: 100, maxDelayMs: 1000 },
      }),
      // A cold start (1.5 s) longer than the per-call deadline (1 s).
      stdioFixtureYaml('hung', {
        env: { FIXTURE_RECORD_FILE: hungRecord },
        timeoutMs: 1000,
        args: [
          '--import',
          'tsx',
          '--input-type=module',
          '-e',
          `await new Promise((r) => setTimeout(r, 1500)); await import(${JSON.stringify(pathToFileURL(FIXTURE_STDIO).href)});`,
        ],
      }),
    ]);
    client = await gw.client();
  });

  it('an upstream whose cold start takes longer than its call timeout still comes up at the first attempt', () => {
    expect(gw.app.upstreams.health().map((h) => [h.name, h.state])).toEqual([
      ['fx', 'ready'],
      ['hung', 'ready'],
    ]);
    expect(gw.app.router.catalogue.tools.has('hung__hang')).toBe(true);
    expect(readRecord(hungRecord).filter((l) => l.method === 'initialize')).toHaveLength(1);
  });

  afterAll(async () => {
    await gw?.close();
  });

  it('a hung call fails at its deadline with a message naming the tool, and is cancelled upstream with our id', async () => {
    const { ms, error } = await timed(client.callTool({ name: 'hung__hang', arguments: {} }));
    const err = error as Error & { code?: number };
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toContain('Tool hung__hang did not answer in time');
    expect(err.code).toBe(-32603);
    expect(ms).toBeGreaterThanOrEqual(950);
    expect(ms).toBeLessThan(4000);

    const call = toolCalls(hungRecord, 'hang').at(-1)!;
    expect(typeof call.id).toBe('number');
    const cancelled = await waitFor('notifications/cancelled in the record', () =>
      readRecord(hungRecord).find((l) => l.method === 'notifications/cancelled' && l.params?.requestId === call.id),
    );
    expect(cancelled.params).toMatchObject({ requestId: call.id, reason: 'timeout' });
    // The fixture saw the cancellation reach its handler.
    await waitFor('cancelled-observed', () =>
      readRecord(hungRecord).some((l) => l.event === 'cancelled-observed' && l.requestId === call.id),
    );
    // The upstream is still healthy and serves the next call.
    expect(textOf(await client.callTool({ name: 'hung__echo', arguments: { text: 'after hang' } }))).toBe('after hang');
  });

  it('a crash mid-call fails the calls in flight promptly, the upstream restarts and serves again', async () => {
    const pidBefore = readRecord(crashRecord).find((l) => l.method === 'initialize')!.pid;
    const slow = timed(client.callTool({ name: 'fx__slow', arguments: { ms: 3000 } }));
    await waitFor('slow call reached the fixture', () => toolCalls(crashRecord, 'slow').length > 0);
    const crash = timed(client.callTool({ name: 'fx__crash', arguments: {} }));
    const [s, c] = await Promise.all([slow, crash]);
    expect(s.error).toBeInstanceOf(Error);
    expect((s.error as Error).message).toContain('Tool fx__slow is temporarily unavailable');
    // Failed by the exit, not by waiting out the 3 s sleep or the 60 s deadline.
    expect(s.ms).toBeLessThan(2500);
    expect((c.error as Error).message).toContain('Tool fx__crash is temporarily unavailable');
    expect(gw.logs.some((l) => l.msg === 'upstream unhealthy' && l.upstream === 'fx')).toBe(true);

    await waitFor(
      'fx ready again',
      () => gw.app.upstreams.health().find((h) => h.name === 'fx')?.state === 'ready',
      10_000,
    );
    expect(textOf(await client.callTool({ name: 'fx__echo', arguments: { text: 'after crash' } }))).toBe('after crash');
    const pidAfter = toolCalls(crashRecord, 'echo').at(-1)!.pid;
    expect(pidAfter).not.toBe(pidBefore);
    expect(isAlive(pidBefore)).toBe(false);
    // The neighbour never noticed.
    expect(gw.app.upstreams.health().find((h) => h.name === 'hung')?.state).toBe('ready');
  });
});

describe('junk, huge results, pagination and an unhealthy optional neighbour', () => {
  let gw: TestGateway;
  let client: Client;

  beforeAll(async () => {
    gw = await startGateway([
      stdioFixtureYaml('fx', {
        env: { FIXTURE_MANY_TOOLS: '30', FIXTURE_PAGE_SIZE: '7' },
        maxMessageBytes: 65_536,
        timeoutMs: 20_000,
      }),
      JSON.stringify({
        name: 'dead',
        transport: 'stdio',
        command: process.execPath,
        args: ['-e', 'process.exit(3)'],
        required: false,
        restart: { initialDelayMs: 200, maxDelayMs: 400 },
      }),
    ]);
    client = await gw.client();
  });

  afterAll(async () => {
    await gw?.close();
  });

  it('junk on stdout is logged as a warning and the call still succeeds', async () => {
    const r = await client.callTool({ name: 'fx__junk', arguments: {} });
    expect(textOf(r)).toBe('ok');
    const warnings = gw.logs.filter((l) => l.level === 40 && l.upstream === 'fx' && l.msg?.includes('not JSON-RPC'));
    expect(warnings.map((w) => w.sample)).toEqual(expect.arrayContaining(['this is not json', '{"hello":1}']));
  });

  it('a result over maxMessageBytes fails promptly with a message naming the tool, and the next call works', async () => {
    const { ms, error } = await timed(client.callTool({ name: 'fx__huge', arguments: { bytes: 200_000 } }));
    const err = error as Error & { code?: number };
    expect(err.message).toContain('Tool fx__huge returned a response that is too large');
    expect(err.code).toBe(-32603);
    // Failed from the dropped line's id, not by the 20 s deadline.
    expect(ms).toBeLessThan(3000);
    const warning = gw.logs.find((l) => l.msg?.includes('over maxMessageBytes') && l.upstream === 'fx');
    expect(warning?.bytes).toBeGreaterThan(200_000);
    expect(textOf(await client.callTool({ name: 'fx__echo', arguments: { text: 'after huge' } }))).toBe('after huge');
    expect(gw.app.upstreams.health().find((h) => h.name === 'fx')?.state).toBe('ready');
  });

  it('a 32 MB result is dropped without buffering it: memory stays far below what holding it would take', async () => {
    const base = process.memoryUsage();
    let peak = 0;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peak = Math.max(peak, m.heapUsed + m.arrayBuffers - base.heapUsed - base.arrayBuffers);
    }, 5);
    const { ms, error } = await timed(client.callTool({ name: 'fx__huge', arguments: { bytes: 32 * 1024 * 1024 } }));
    clearInterval(sampler);
    expect((error as Error).message).toContain('Tool fx__huge returned a response that is too large');
    expect(ms).toBeLessThan(15_000);
    // Measured: ~33 MB of short-lived pipe chunks when skipping, ~320 MB when the same reply is accepted whole.
    expect(peak).toBeLessThan(128 * 1024 * 1024);
    expect(textOf(await client.callTool({ name: 'fx__echo', arguments: { text: 'still fine' } }))).toBe('still fine');
  });

  it('follows nextCursor: all tools of a paginated upstream appear', async () => {
    const names = (await client.listTools()).tools.map((t) => t.name);
    const bulk = names.filter((n) => /^fx__tool_\d{4}$/.test(n));
    expect(bulk).toHaveLength(30);
    expect(bulk).toContain('fx__tool_0001');
    expect(bulk).toContain('fx__tool_0030');
    for (const base of ['echo', 'add', 'slow', 'hang', 'crash', 'junk', 'huge', 'env_report'])
      expect(names).toContain(`fx__${base}`);
    expect(names.filter((n) => n.startsWith('fx__')).length).toBeGreaterThanOrEqual(46);
    expect(textOf(await client.callTool({ name: 'fx__tool_0030', arguments: { text: 'last page' } }))).toBe(
      'tool_0030: last page',
    );
  });

  it('an optional upstream that exits at once is unhealthy, does not stop the other, and /readyz stays 200', async () => {
    const dead = gw.app.upstreams.health().find((h) => h.name === 'dead');
    expect(dead).toMatchObject({ required: false });
    expect(['unhealthy', 'starting']).toContain(dead?.state);
    expect(gw.app.upstreams.health().find((h) => h.name === 'fx')?.state).toBe('ready');
    expect(await readyz(gw)).toBe(200);
    expect(textOf(await client.callTool({ name: 'fx__echo', arguments: { text: 'neighbour down' } }))).toBe(
      'neighbour down',
    );
    // It keeps being retried, with backoff.
    await waitFor(
      'a retry',
      () => gw.logs.filter((l) => l.msg === 'upstream unhealthy' && l.upstream === 'dead').length >= 2,
      5000,
    );
  });
});

describe('a required upstream that is down', () => {
  it('makes /readyz answer 503 while the other upstream still serves', async () => {
    await using gw = await startGateway([
      stdioFixtureYaml('fx'),
      JSON.stringify({ name: 'dead', transport: 'stdio', command: process.execPath, args: ['-e', 'process.exit(3)'] }),
    ]);
    expect(await readyz(gw)).toBe(503);
    const res = await fetch(new URL('/readyz', gw.url));
    expect(await res.json()).toMatchObject({ status: 'not ready', waitingFor: ['dead'] });
    const client = await gw.client();
    expect(textOf(await client.callTool({ name: 'fx__echo', arguments: { text: 'serving' } }))).toBe('serving');
  });
});

describe('per-session upstreams', () => {
  let gw: TestGateway;
  let record: string;

  beforeAll(async () => {
    record = join(tempDir(), 'per-session.jsonl');
    gw = await startGateway([stdioFixtureYaml('fx', { mode: 'per-session', env: { FIXTURE_RECORD_FILE: record } })]);
  });

  afterAll(async () => {
    await gw?.close();
  });

  it('gives each client session its own process and stops it when the session is deleted', async () => {
    const sharedPid = readRecord(record).find((l) => l.method === 'tools/list')!.pid;
    const a = await gw.client({ name: 'client-a' });
    const b = await gw.client({ name: 'client-b' });
    expect(textOf(await a.callTool({ name: 'fx__echo', arguments: { text: 'from-a' } }))).toBe('from-a');
    expect(textOf(await b.callTool({ name: 'fx__echo', arguments: { text: 'from-b' } }))).toBe('from-b');
    const pidOf = (text: string): number =>
      toolCalls(record, 'echo').find((l) => (l.params?.arguments as { text?: string } | undefined)?.text === text)!.pid;
    const pidA = pidOf('from-a');
    const pidB = pidOf('from-b');
    expect(pidA).not.toBe(pidB);
    expect(pidA).not.toBe(sharedPid);
    expect(pidB).not.toBe(sharedPid);
    // A second call of the same session goes to the same process.
    await a.callTool({ name: 'fx__echo', arguments: { text: 'from-a-again' } });
    expect(pidOf('from-a-again')).toBe(pidA);
    expect(gw.app.upstreams.health()[0]).toMatchObject({ mode: 'per-session', sessions: 2 });

    // DELETE of session a stops a's process only.
    await (a.transport as StreamableHTTPClientTransport).terminateSession();
    await a.close();
    await waitFor('process of session a gone', () => !isAlive(pidA), 10_000);
    expect(isAlive(pidB)).toBe(true);
    expect(isAlive(sharedPid)).toBe(true);
    expect(gw.app.upstreams.health()[0]?.sessions).toBe(1);
    expect(textOf(await b.callTool({ name: 'fx__echo', arguments: { text: 'b goes on' } }))).toBe('b goes on');
  });
});

describe('a name collision at start-up', () => {
  it('refuses to start, naming both sources, and leaves no child process behind', async () => {
    const dir = tempDir();
    const pidFile = join(dir, 'pid');
    const server = join(dir, 'dup-server.mjs');
    // A minimal MCP server whose two tools meet under one exposed name: a name that had to be cleaned (and so
    // got a hash) and a literal name equal to the result. Upstream names cannot contain the separator, so
    // this — or a duplicate in one listing — is the only way two tools can collide.
    writeFileSync(server, DUP_SERVER);
    const cleaned = exposedName('dup', 'a b', { separator: '__', maxNameLength: 64, prefixed: true });
    const literal = cleaned.slice('dup__'.length);
    const file = join(dir, 'gatehouse.yaml');
    writeFileSync(
      file,
      `server:\n  host: 127.0.0.1\n  port: 0\nupstreams:\n  - ${JSON.stringify({ name: 'dup', transport: 'stdio', command: process.execPath, args: [server, pidFile, 'a b', literal] })}\n  - ${stdioFixtureYaml('fx')}\n`,
    );
    const app = buildApp(loadConfig(file), { logger: pino({ level: 'silent' }), audit: new NullAuditSink() });
    try {
      const err = await app.start().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ConfigError);
      const message = (err as ConfigError).message;
      expect(message).toContain(`${file}: /upstreams: tool name "${cleaned}"`);
      expect(message).toContain('upstream "dup" (tool "a b")');
      expect(message).toContain(`upstream "dup" (tool "${literal}")`);
    } finally {
      await app.close(1000);
    }
    const pid = Number(readFileSync(pidFile, 'utf8'));
    await waitFor('dup server gone', () => !isAlive(pid), 5000);
  });
});
