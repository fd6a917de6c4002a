/**
 * An HTTP upstream that forgets our session (restarted on the same port: it answers 404 to the old
 * Mcp-Session-Id, MCP transports §Session Management) is re-initialised at once and the call is sent again:
 * the client sees its answer, never an opaque -32603. With a GET stream, the restart is found without a call:
 * the stream's reconnect meets the 404, and the new session's lists replace the old ones.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_HTTP, startGateway, type TestGateway } from '../helpers/gateway.js';
import { spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';
import { freePort, readRecord } from '../helpers/upstream-tools.js';

let dir: string;
let port: number;
let fixture: SpawnedServer | undefined;
let gw: TestGateway;
let front: Awaited<ReturnType<typeof holdingProxy>>;

const start = async (record: string): Promise<SpawnedServer> =>
  spawnServer(FIXTURE_HTTP, { args: ['--port', String(port)], env: { FIXTURE_RECORD_FILE: record } });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-upstream-expiry-'));
  port = await freePort();
  fixture = await start(join(dir, 'first.jsonl'));
  // Without a GET stream (the proxy answers 405): only a call can find the restart, which is what this tests.
  front = await holdingProxy(port, { get: 405 });
  // No retries of its own and a long reconnect backoff: only the session renewal can make the second call pass.
  const upstream = JSON.stringify({
    name: 'fx',
    transport: 'http',
    url: front.url,
    restart: { initialDelayMs: 60_000, maxDelayMs: 60_000 },
  });
  gw = await startGateway([upstream]);
}, 60_000);

afterAll(async () => {
  await gw?.close();
  await front?.close();
  await fixture?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('HTTP upstream session expiry', () => {
  it('re-initialises the upstream and answers the call that met the 404', async () => {
    const client = await gw.client();
    expect((await client.callTool({ name: 'fx__add', arguments: { a: 1, b: 2 } })).isError).toBeFalsy();

    await fixture!.close();
    const second = join(dir, 'second.jsonl');
    fixture = await start(second);

    const result = await client.callTool({ name: 'fx__add', arguments: { a: 2, b: 3 } });
    expect(result.isError).toBeFalsy();
    expect(JSON.stringify(result.content)).toContain('5');
    // The restarted upstream refused the call under the old session (404, recorded before its session check),
    // then saw a new initialize and the call once more — exactly once.
    const lines = readRecord(second);
    const init = lines.findIndex((l) => l.method === 'initialize');
    expect(init).toBeGreaterThan(0);
    expect(lines.slice(0, init).filter((l) => l.method === 'tools/call')).toHaveLength(1);
    expect(lines.slice(init).filter((l) => l.method === 'tools/call')).toHaveLength(1);
    expect(gw.logs.some((l) => l.msg === 'upstream session expired; starting a new one')).toBe(true);
  }, 60_000);
});

/**
 * A pass-through HTTP proxy in front of an upstream that can hold back the next `initialize` until released:
 * it makes the moment "the gateway is re-initialising the upstream session" last as long as the test needs.
 */
/** `get`: what a GET gets — passed on, 405 (a server need not offer the stream: transports §Listening for Messages), or 404. */
async function holdingProxy(
  targetPort: number,
  opts: { get: 'forward' | 404 | 405 },
): Promise<{ url: string; holdNextInitialize(): { arrived: Promise<void>; release(): void }; close(): Promise<void> }> {
  let hold: { arrived: () => void; released: Promise<void> } | undefined;
  const server: Server = createServer((req, res) => {
    if (req.method === 'GET' && opts.get !== 'forward') {
      res.writeHead(opts.get, opts.get === 405 ? { allow: 'POST, DELETE' } : {}).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const forward = (): void => {
        const up = request(
          { host: '127.0.0.1', port: targetPort, path: req.url, method: req.method, headers: req.headers },
          (ur) => {
            res.writeHead(ur.statusCode ?? 502, ur.headers);
            ur.pipe(res);
          },
        );
        up.on('error', () => res.destroy());
        up.end(body);
      };
      const h = hold;
      if (h !== undefined && body.includes('"method":"initialize"')) {
        hold = undefined;
        h.arrived();
        void h.released.then(forward);
      } else {
        forward();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    holdNextInitialize() {
      let arrived!: () => void;
      let release!: () => void;
      const arrivedP = new Promise<void>((r) => (arrived = r));
      const released = new Promise<void>((r) => (release = r));
      hold = { arrived, released };
      return { arrived: arrivedP, release };
    },
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('HTTP upstream session expiry, calls arriving during the re-initialisation', () => {
  it('a call that arrives while the new upstream session is being set up waits for it instead of failing', async () => {
    const localDir = mkdtempSync(join(tmpdir(), 'gatehouse-upstream-renew-'));
    const upstreamPort = await freePort();
    const spawnAt = (record: string): Promise<SpawnedServer> =>
      spawnServer(FIXTURE_HTTP, { args: ['--port', String(upstreamPort)], env: { FIXTURE_RECORD_FILE: record } });
    let upstream = await spawnAt(join(localDir, 'first.jsonl'));
    // No GET stream here either: the calls, not the stream's reconnect, must meet the 404.
    const proxy = await holdingProxy(upstreamPort, { get: 405 });
    const upstreamYaml = JSON.stringify({
      name: 'fx',
      transport: 'http',
      url: proxy.url,
      restart: { initialDelayMs: 60_000, maxDelayMs: 60_000 },
    });
    await using gateway = await startGateway([upstreamYaml]);
    try {
      const client = await gateway.client();
      expect((await client.callTool({ name: 'fx__add', arguments: { a: 1, b: 1 } })).isError).toBeFalsy();

      await upstream.close();
      const second = join(localDir, 'second.jsonl');
      upstream = await spawnAt(second);
      const held = proxy.holdNextInitialize();
      // The first call meets the 404 and starts a new upstream session, whose initialize the proxy holds…
      const first = client.callTool({ name: 'fx__add', arguments: { a: 2, b: 3 } });
      await held.arrived;
      // …while it is held, another call arrives: no upstream session exists at this instant.
      const during = client.callTool({ name: 'fx__add', arguments: { a: 10, b: 20 } });
      await new Promise((r) => setTimeout(r, 200)); // let it reach the upstream layer (it must wait there, not fail)
      held.release();
      const [r1, r2] = await Promise.all([first, during]);
      expect(r1.isError, JSON.stringify(r1)).toBeFalsy();
      expect(JSON.stringify(r1.content)).toContain('5');
      expect(r2.isError, JSON.stringify(r2)).toBeFalsy();
      expect(JSON.stringify(r2.content)).toContain('30');
      // Each reached the new session once; only the first was also refused (404) under the old one.
      const lines = readRecord(second);
      const init = lines.findIndex((l) => l.method === 'initialize');
      expect(lines.slice(0, init).filter((l) => l.method === 'tools/call')).toHaveLength(1);
      expect(lines.slice(init).filter((l) => l.method === 'tools/call')).toHaveLength(2);
    } finally {
      await proxy.close();
      await upstream.close();
      rmSync(localDir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('HTTP upstream session expiry found by the GET stream', () => {
  it('starts a new upstream session without waiting for a call, and lists what the restarted upstream offers', async () => {
    const localDir = mkdtempSync(join(tmpdir(), 'gatehouse-upstream-get-'));
    const upstreamPort = await freePort();
    const spawnAt = (record: string, env: Record<string, string> = {}): Promise<SpawnedServer> =>
      spawnServer(FIXTURE_HTTP, {
        args: ['--port', String(upstreamPort)],
        env: { FIXTURE_RECORD_FILE: record, ...env },
      });
    let upstream = await spawnAt(join(localDir, 'first.jsonl'));
    // A reconnect backoff longer than the test: only the GET stream's 404 can bring the new session in time.
    const upstreamYaml = JSON.stringify({
      name: 'fx',
      transport: 'http',
      url: `http://127.0.0.1:${upstreamPort}/mcp`,
      restart: { initialDelayMs: 60_000, maxDelayMs: 60_000 },
    });
    await using gateway = await startGateway([upstreamYaml]);
    try {
      const client = await gateway.client();
      const before = (await client.listTools()).tools.map((t) => t.name);
      expect(before).toContain('fx__add');
      expect(before).not.toContain('fx__tool_0001');

      await upstream.close();
      const second = join(localDir, 'second.jsonl');
      // Restarted with one more tool.
      upstream = await spawnAt(second, { FIXTURE_MANY_TOOLS: '1' });

      let after: string[] = [];
      for (const until = Date.now() + 20_000; Date.now() < until; await new Promise((r) => setTimeout(r, 200))) {
        after = (await client.listTools()).tools.map((t) => t.name);
        if (after.includes('fx__tool_0001')) break;
      }
      expect(after).toContain('fx__tool_0001');
      expect(after).toContain('fx__add');
      // Found by the stream: a GET under the old session was refused, then a new session listed the tools;
      // no call was made to find out.
      const lines = readRecord(second);
      expect(lines.some((l) => l.method === 'initialize')).toBe(true);
      expect(lines.some((l) => l.method === 'tools/list')).toBe(true);
      expect(lines.filter((l) => l.method === 'tools/call')).toHaveLength(0);
      expect(gateway.logs.some((l) => l.msg === 'upstream session expired; starting a new one')).toBe(true);
    } finally {
      await upstream.close();
      rmSync(localDir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('an HTTP upstream that answers 404 to every GET', () => {
  it('is not taken for a restarted one: one session, no re-initialising loop', async () => {
    const localDir = mkdtempSync(join(tmpdir(), 'gatehouse-upstream-get404-'));
    const upstreamPort = await freePort();
    const record = join(localDir, 'record.jsonl');
    const upstream = await spawnServer(FIXTURE_HTTP, {
      args: ['--port', String(upstreamPort)],
      env: { FIXTURE_RECORD_FILE: record },
    });
    const proxy = await holdingProxy(upstreamPort, { get: 404 });
    await using gateway = await startGateway([JSON.stringify({ name: 'fx', transport: 'http', url: proxy.url })]);
    try {
      const client = await gateway.client();
      expect((await client.callTool({ name: 'fx__add', arguments: { a: 1, b: 2 } })).isError).toBeFalsy();
      // Long enough for several GET attempts had each 404 started a new session.
      await new Promise((r) => setTimeout(r, 2_500));
      expect((await client.callTool({ name: 'fx__add', arguments: { a: 2, b: 2 } })).isError).toBeFalsy();
      expect(readRecord(record).filter((l) => l.method === 'initialize')).toHaveLength(1);
      expect(gateway.logs.some((l) => l.msg === 'upstream session expired; starting a new one')).toBe(false);
    } finally {
      await proxy.close();
      await upstream.close();
      rmSync(localDir, { recursive: true, force: true });
    }
  }, 60_000);
});
