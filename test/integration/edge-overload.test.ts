/**
 * Overload protection of the listener over real sockets: the `maxSessions` cap against a flood of new sessions
 * (an existing session keeps working), slow clients dropped at the header and request timeouts (slowloris),
 * `maxConnections`, and back-pressure (`server.overload`) answering 503 + Retry-After while `/healthz` answers.
 * Time bounds here are correctness bounds (dropped by the timeout, not by the test's end), not benchmarks.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { secretValue } from '../../src/config/secrets.js';
import type { GatehouseConfig } from '../../src/config/types.js';
import { MemorySessionStore } from '../../src/stores/sessions/memory-session-store.js';
import {
  initializeBody,
  post,
  startGateway,
  stdioFixtureYaml,
  type LogLine,
  type TestGateway,
} from '../helpers/gateway.js';
import { makeTestPki } from '../helpers/test-pki.js';
import { waitFor } from '../helpers/upstream-tools.js';

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

function rejections(g: TestGateway): Record<string, unknown>[] {
  return g.logs
    .map((l: LogLine) => l.audit as Record<string, unknown> | undefined)
    .filter((a): a is Record<string, unknown> => a?.type === 'http.rejected');
}

function portOf(g: TestGateway): number {
  return Number(new URL(g.url).port);
}

interface Dribble {
  /** Milliseconds from connect to close. */
  closedAfterMs: number;
  /** What the server wrote before closing. */
  answer: string;
}

/** Opens the connection: plain TCP to the port, or TLS (see the TLS test); `onConnect` once it is up. */
type Open = (onConnect: () => void) => net.Socket;

/**
 * A raw socket that sends `first`, then `next` every `everyMs`, until the server closes it (or `giveUpMs`).
 * `port` is a plain TCP connection to 127.0.0.1.
 */
function dribble(
  port: number | Open,
  first: string,
  next: string,
  everyMs: number,
  giveUpMs: number,
): Promise<Dribble> {
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const onConnect = (): void => {
      socket.write(first);
      timer = setInterval(() => {
        if (!socket.destroyed) socket.write(next);
      }, everyMs);
    };
    const socket = typeof port === 'number' ? net.connect(port, '127.0.0.1', onConnect) : port(onConnect);
    const started = Date.now();
    let answer = '';
    const giveUp = setTimeout(() => {
      clearInterval(timer);
      socket.destroy();
      reject(new Error(`still open after ${giveUpMs} ms`));
    }, giveUpMs);
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (answer += d));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(timer);
      clearTimeout(giveUp);
      resolve({ closedAfterMs: Date.now() - started, answer });
    });
  });
}

const ACCEPT = { accept: 'application/json, text/event-stream' };

describe('maxSessions', () => {
  it('stops a flood of new sessions at the cap with 503 + Retry-After while an existing session keeps working', async () => {
    gw = await startGateway([stdioFixtureYaml('fx')], { server: { maxSessions: 3 } });
    const client = await gw.client();
    const flood = await Promise.all(Array.from({ length: 12 }, (_, i) => post(gw!.url, initializeBody(i + 1), ACCEPT)));
    const statuses = flood.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(2);
    const refused = flood.filter((r) => r.status !== 200);
    expect(refused).toHaveLength(10);
    for (const r of refused) {
      expect(r.status).toBe(503);
      expect(r.headers.get('retry-after')).toBe('10');
      expect(r.json).toEqual({ jsonrpc: '2.0', id: null, error: { code: -32603, message: 'Too many sessions' } });
    }
    expect(gw.app.frontDoor.sessionCount).toBe(3);
    // Refused before authentication while nothing could make room (the sessions being opened are not held yet),
    // by the front door after it otherwise (one caller, `anonymous`, holds them all: nobody holds more to give
    // one up, src/mcp/session-admission.ts). Either way the same 503, and a record.
    const records = gw.logs.map((l: LogLine) => l.audit as Record<string, unknown> | undefined);
    const refusals = records.filter(
      (a) =>
        (a?.type === 'http.rejected' && a.reason === 'max_sessions') ||
        (a?.type === 'mcp.session' && a.errorCode === 'GW_MCP_SESSION_LIMIT'),
    );
    expect(refusals.length).toBeGreaterThan(0);
    for (const r of refusals)
      expect(r).toMatchObject(
        r!.type === 'http.rejected'
          ? { status: 503, remoteAddress: '127.0.0.1' }
          : { outcome: 'error', detail: expect.stringMatching(/^server\.maxSessions: /) },
      );

    const result = await client.callTool({ name: 'fx__echo', arguments: { text: 'at the cap' } });
    expect((result.content as { text: string }[])[0]!.text).toBe('at the cap');

    // The slots of answered requests are free again: closing one session makes room for exactly one more.
    const sid = flood.find((r) => r.status === 200)!.headers.get('mcp-session-id')!;
    const deleted = await fetch(gw.url, {
      method: 'DELETE',
      headers: { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' },
    });
    expect(deleted.status).toBe(200);
    expect((await post(gw.url, initializeBody(99), ACCEPT)).status).toBe(200);
    expect((await post(gw.url, initializeBody(100), ACCEPT)).status).toBe(503);
  });
});

describe('maxSessions in the front door itself', () => {
  it('holds exactly at the cap when initializations race (a transport without the edge reservation)', async () => {
    gw = await startGateway([stdioFixtureYaml('fx')], { server: { maxSessions: 2 } });
    const principal = { subject: 'racer', scopes: new Set<string>(), groups: [], anonymous: false };
    const message = JSON.parse(initializeBody(1)) as Parameters<TestGateway['app']['frontDoor']['initialize']>[0];
    // Each one awaits issuing its id (sealing a JWE) between the cap check and counting the session.
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, () => gw!.app.frontDoor.initialize(message, principal)),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(2);
    expect(gw.app.frontDoor.sessionCount).toBe(2);
  });
});

describe('slow clients (slowloris)', () => {
  it('drops a connection that dribbles its headers at headersTimeoutMs, and one that dribbles its body at requestTimeoutMs', async () => {
    gw = await startGateway([stdioFixtureYaml('fx')], { server: { headersTimeoutMs: 1000, requestTimeoutMs: 2000 } });
    const port = portOf(gw);
    const [headers, body] = await Promise.all([
      // A new header line every 200 ms: the connection is never idle, but the headers never end.
      dribble(port, 'POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n', 'X-Slow: 1\r\n', 200, 15_000),
      dribble(
        port,
        `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 100000\r\n\r\n`,
        ' ',
        200,
        15_000,
      ),
    ]);
    expect(headers.answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(headers.closedAfterMs).toBeGreaterThanOrEqual(900);
    expect(headers.closedAfterMs).toBeLessThan(5000);
    expect(body.answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(body.closedAfterMs).toBeGreaterThanOrEqual(1900);
    expect(body.closedAfterMs).toBeLessThan(7000);
    expect(rejections(gw)).toContainEqual(
      expect.objectContaining({ type: 'http.rejected', reason: 'request_timeout', status: 408 }),
    );
    // The gateway itself is fine.
    expect((await fetch(new URL('/healthz', gw.url))).status).toBe(200);
  }, 30_000);
});

describe('slow clients over TLS', () => {
  it('drops a stalled TLS handshake and dribbled headers at headersTimeoutMs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-edge-tls-'));
    try {
      const pki = makeTestPki(dir);
      const configure = (c: GatehouseConfig): GatehouseConfig => ({
        ...c,
        server: {
          ...c.server,
          tls: {
            certFile: pki.server.certFile,
            key: secretValue(`file:${pki.server.keyFile}`, pki.server.key),
            clientCertificates: 'none',
            minVersion: 'TLSv1.2',
          },
        },
      });
      gw = await startGateway([stdioFixtureYaml('fx')], {
        server: { headersTimeoutMs: 1000, requestTimeoutMs: 2000 },
        configure,
      });
      const port = portOf(gw);
      // A TCP connection that never starts the handshake.
      const stalled = dribble(port, '', '', 200, 15_000);
      // A finished handshake, then headers one line at a time.
      const overTls: Open = (onConnect) =>
        tls.connect({ port, host: '127.0.0.1', ca: pki.ca.cert, servername: 'localhost' }, onConnect);
      const slowHeaders = dribble(overTls, 'POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n', 'X-Slow: 1\r\n', 200, 15_000);
      const [handshake, headers] = await Promise.all([stalled, slowHeaders]);
      expect(handshake.closedAfterMs).toBeGreaterThanOrEqual(900);
      expect(handshake.closedAfterMs).toBeLessThan(5000);
      expect(headers.answer).toMatch(/^HTTP\/1\.1 408 /);
      expect(headers.closedAfterMs).toBeGreaterThanOrEqual(900);
      expect(headers.closedAfterMs).toBeLessThan(5000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});

describe('maxConnections', () => {
  it('refuses sockets beyond the cap while the first ones are held, and accepts again once one closes', async () => {
    gw = await startGateway([stdioFixtureYaml('fx')], { server: { maxConnections: 2 } });
    const port = portOf(gw);
    const connect = () =>
      new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () => resolve(s));
        s.on('error', reject);
      });
    const held = [await connect(), await connect()];
    // Let the server accept both before the third arrives.
    await new Promise((r) => setTimeout(r, 100));
    const extra = await connect().catch(() => undefined);
    if (extra !== undefined) {
      extra.on('error', () => undefined);
      // Accepted by the kernel, closed by Node at once: no answer, just the end of the stream.
      await waitFor(
        'the extra socket to be closed',
        () => extra.destroyed || extra.readyState === 'closed' || extra.readableEnded || undefined,
        5000,
      );
    }
    expect(held.every((s) => !s.destroyed && s.readyState === 'open')).toBe(true);
    // A held connection still works.
    held[0]!.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    const answer = await new Promise<string>((resolve) =>
      held[0]!.once('data', (d: Buffer) => resolve(d.toString('utf8'))),
    );
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(rejections(gw)).toContainEqual(
      expect.objectContaining({ type: 'http.rejected', reason: 'max_connections' }),
    );

    held[1]!.destroy();
    await waitFor('a new connection to be served', async () => {
      const again = await connect();
      again.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
      const text = await new Promise<string>((resolve) => {
        let t = '';
        again.on('data', (d: Buffer) => (t += d.toString('utf8')));
        again.on('close', () => resolve(t));
        again.on('error', () => resolve(t));
      });
      return /^HTTP\/1\.1 200 /.test(text) || undefined;
    });
    held[0]!.destroy();
  }, 20_000);
});

describe('back-pressure (server.overload)', () => {
  it('answers 503 + Retry-After once the heap is above maxHeapUsedBytes; /healthz answers, /readyz reports the pressure', async () => {
    // 1 MiB: below what any Node process uses, so the first sample (after 1 s) finds the gateway under pressure.
    gw = await startGateway([stdioFixtureYaml('fx')], {
      server: { overload: { maxHeapUsedBytes: 1_048_576, retryAfterSeconds: 7 } },
    });
    const refused = await waitFor('a 503 from the MCP endpoint', async () => {
      const r = await post(gw!.url, initializeBody(), ACCEPT);
      return r.status === 503 ? r : undefined;
    });
    expect(refused.headers.get('retry-after')).toBe('7');
    expect(refused.json).toEqual({
      jsonrpc: '2.0',
      id: null,
      error: { code: -32603, message: 'Service temporarily overloaded' },
    });
    expect(rejections(gw)).toContainEqual(
      expect.objectContaining({ type: 'http.rejected', reason: 'overloaded', status: 503, remoteAddress: '127.0.0.1' }),
    );

    const health = await fetch(new URL('/healthz', gw.url));
    expect(health.status).toBe(200);
    const ready = await fetch(new URL('/readyz', gw.url));
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { overload: { underPressure: boolean } }).overload.underPressure).toBe(true);
  });

  it('answers 503 after the event loop was blocked beyond maxEventLoopDelayMs', async () => {
    gw = await startGateway([stdioFixtureYaml('fx')], { server: { overload: { maxEventLoopDelayMs: 100 } } });
    expect((await fetch(new URL('/readyz', gw.url))).status).toBe(200);
    let status = 0;
    for (let attempt = 0; attempt < 3 && status !== 503; attempt++) {
      // Block this process (gateway included) well beyond the threshold; the next sample sees the delay.
      const until = Date.now() + 1500;
      while (Date.now() < until) {
        /* busy */
      }
      status = (await post(gw.url, initializeBody(), ACCEPT)).status;
    }
    expect(status).toBe(503);
    expect((await fetch(new URL('/healthz', gw.url))).status).toBe(200);
  });

  it('lets requests through when the thresholds are not reached', async () => {
    gw = await startGateway([stdioFixtureYaml('fx')]);
    await new Promise((r) => setTimeout(r, 1200));
    expect((await post(gw.url, initializeBody(), ACCEPT)).status).toBe(200);
    const ready = await fetch(new URL('/readyz', gw.url));
    expect(ready.status).toBe(200);
    expect(((await ready.json()) as { overload: { underPressure: boolean } }).overload.underPressure).toBe(false);
  });
});

describe('maxSessions on a session restored from another replica', () => {
  let shared: string | undefined;
  let other: TestGateway | undefined;
  afterEach(async () => {
    await other?.close();
    other = undefined;
    if (shared !== undefined) rmSync(shared, { recursive: true, force: true });
    shared = undefined;
  });

  it('refuses it at the cap with 503 and the configured Retry-After (not a fixed one)', async () => {
    shared = mkdtempSync(join(tmpdir(), 'gatehouse-overload-'));
    const env = { K1: randomBytes(32).toString('base64url') };
    const top = `auth:\n  mode: dev\n  dev:\n    keyFile: ${join(shared, 'dev-key.json')}\nsessions:\n  keys:\n    - fromEnv: K1\n`;
    const store = new MemorySessionStore(30 * 60_000);
    other = await startGateway([stdioFixtureYaml('fx')], { top, env, deps: { sessionStore: store } });
    gw = await startGateway([stdioFixtureYaml('fx')], {
      top,
      env,
      deps: { sessionStore: store },
      server: { maxSessions: 1, overload: { retryAfterSeconds: 7 } },
    });
    const token = await other.token({ sub: 'alice', scopes: [] });
    const auth = { ...ACCEPT, authorization: `Bearer ${token}` };
    expect((await post(gw.url, initializeBody(1), auth)).status).toBe(200); // gw is at its cap now
    const elsewhere = await post(other.url, initializeBody(2), auth);
    const sid = elsewhere.headers.get('mcp-session-id')!;
    // The request names a session, so the edge's reservation does not apply: the front door refuses the restore.
    const r = await post(gw.url, JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'ping' }), {
      ...auth,
      'mcp-session-id': sid,
      'mcp-protocol-version': '2025-11-25',
    });
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBe('7');
    expect(r.json).toEqual({ jsonrpc: '2.0', id: null, error: { code: -32603, message: 'Too many sessions' } });
    expect(gw.app.frontDoor.sessionCount).toBe(1);
  });
});
