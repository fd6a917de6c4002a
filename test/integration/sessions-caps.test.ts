/**
 * One principal cannot fill the session table (threat model #9, #6; OWASP API4): a real gateway (dev-mode
 * tokens, a stdio fixture upstream), raw HTTP for the flood and the official SDK client for the one who must
 * still get in. Caps: `server.maxSessions` (fair share: the subject holding the most gives up its least
 * recently used idle session, never to someone holding as many), `sessions.maxPerSubject` (the subject's own
 * oldest idle session ends, or the subject is refused when all of its sessions are busy — never another
 * subject), and `sessions.unusedTimeoutMs` (a session never initialized, or never used, ends soon).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { initializeBody, post, startGateway, stdioFixtureYaml, type TestGateway } from '../helpers/gateway.js';
import { isAlive, toolCalls, waitFor } from '../helpers/upstream-tools.js';

const V = '2025-11-25';
const DEV = 'auth:\n  mode: dev\n';

let gw: TestGateway | undefined;
const streams: AbortController[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const s of streams.splice(0)) s.abort();
  await gw?.close();
  gw = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function headers(token: string, sid?: string): Record<string, string> {
  return {
    authorization: `Bearer ${token}`,
    'mcp-protocol-version': V,
    ...(sid !== undefined ? { 'mcp-session-id': sid } : {}),
  };
}

const ping = (id = 1): string => JSON.stringify({ jsonrpc: '2.0', id, method: 'ping' });
const initialized = JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' });

/** `initialize`; then, unless told otherwise, `notifications/initialized` and a ping (a session in use). */
async function open(
  g: TestGateway,
  token: string,
  steps: 'initialize' | 'initialized' | 'used' = 'used',
): Promise<{ status: number; sid: string | null; text: string }> {
  const r = await post(g.url, initializeBody(1, V), { authorization: `Bearer ${token}` });
  const sid = r.headers.get('mcp-session-id');
  if (r.status === 200 && sid !== null && steps !== 'initialize') {
    expect((await post(g.url, initialized, headers(token, sid))).status).toBe(202);
    if (steps === 'used') expect((await post(g.url, ping(), headers(token, sid))).status).toBe(200);
  }
  return { status: r.status, sid, text: r.text };
}

async function pingStatus(g: TestGateway, token: string, sid: string): Promise<number> {
  return (await post(g.url, ping(7), headers(token, sid))).status;
}

/** An open GET stream: the session is busy (never evicted) until the test ends. */
async function holdStream(g: TestGateway, token: string, sid: string): Promise<void> {
  const ac = new AbortController();
  streams.push(ac);
  const r = await fetch(g.url, { headers: { ...headers(token, sid), accept: 'text/event-stream' }, signal: ac.signal });
  expect(r.status).toBe(200);
}

function sessionRecords(g: TestGateway): Record<string, unknown>[] {
  return g.logs
    .map((l) => l.audit as Record<string, unknown> | undefined)
    .filter((a): a is Record<string, unknown> => a?.type === 'mcp.session');
}

async function sdkCall(g: TestGateway, token: string): Promise<string> {
  const client = await g.client({
    name: 'bob',
    transport: { requestInit: { headers: { authorization: `Bearer ${token}` } } },
  });
  const result = await client.callTool({ name: 'fx__echo', arguments: { text: 'still served' } });
  return (result.content as { text: string }[])[0]!.text;
}

describe('server.maxSessions reached by one subject', () => {
  it('another subject still opens a session and calls a tool: the heaviest subject gives up its least recently used idle session', async () => {
    gw = await startGateway([stdioFixtureYaml('fx')], { top: DEV, server: { maxSessions: 4 } });
    const mallory = await gw.token({ sub: 'mallory', scopes: [] });
    const bob = await gw.token({ sub: 'bob', scopes: [] });

    // Mallory opens sessions in a loop, past the cap: the table fills, then she is refused — she holds the most.
    const opened: string[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await open(gw, mallory);
      if (r.status === 200) opened.push(r.sid!);
      else expect(r.status, r.text).toBe(503);
    }
    expect(opened).toHaveLength(4);
    expect(gw.app.frontDoor.sessionCount).toBe(4);

    // Bob holds none: Mallory's least recently used idle session makes room for his.
    expect(await sdkCall(gw, bob)).toBe('still served');
    expect(gw.app.frontDoor.sessionCount).toBe(4);
    expect(await pingStatus(gw, mallory, opened[0]!)).toBe(404);
    for (const sid of opened.slice(1)) expect(await pingStatus(gw, mallory, sid)).toBe(200);
    expect(sessionRecords(gw)).toContainEqual(
      expect.objectContaining({
        method: 'evict',
        subject: 'mallory',
        outcome: 'ok',
        detail: expect.stringContaining('subject bob'),
      }),
    );

    // Fair share, not ping-pong: Mallory (3) cannot take Bob's (1) back; one more of hers is refused.
    const again = await open(gw, mallory);
    expect(again.status).toBe(503);
    expect(again.text).toBe(
      JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32603, message: 'Too many sessions' } }),
    );
  });

  it('when every session at the cap is busy, a new one is refused before authentication and nobody loses a session', async () => {
    gw = await startGateway([stdioFixtureYaml('fx')], { top: DEV, server: { maxSessions: 2 } });
    const mallory = await gw.token({ sub: 'mallory', scopes: [] });
    const bob = await gw.token({ sub: 'bob', scopes: [] });
    const held = [(await open(gw, mallory)).sid!, (await open(gw, mallory)).sid!];
    for (const sid of held) await holdStream(gw, mallory, sid);
    const r = await post(gw.url, initializeBody(1, V), { authorization: `Bearer ${bob}` });
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBe('10');
    expect(gw.logs.map((l) => l.audit as Record<string, unknown> | undefined)).toContainEqual(
      expect.objectContaining({ type: 'http.rejected', reason: 'max_sessions' }),
    );
    for (const sid of held) expect(await pingStatus(gw, mallory, sid)).toBe(200);
  });
});

describe('sessions.maxPerSubject', () => {
  it("a subject opening sessions in a loop ends its own oldest idle ones (404 after), never another subject's", async () => {
    gw = await startGateway([stdioFixtureYaml('fx')], {
      top: `${DEV}sessions:\n  maxPerSubject: 3\n`,
      server: { maxSessions: 100 },
    });
    const mallory = await gw.token({ sub: 'mallory', scopes: [] });
    const bob = await gw.token({ sub: 'bob', scopes: [] });
    const bobs = (await open(gw, bob)).sid!;

    const opened: string[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await open(gw, mallory);
      expect(r.status, r.text).toBe(200);
      opened.push(r.sid!);
    }
    expect(gw.app.frontDoor.sessionCount).toBe(4);
    for (const sid of opened.slice(0, 7)) expect(await pingStatus(gw, mallory, sid)).toBe(404);
    for (const sid of opened.slice(7)) expect(await pingStatus(gw, mallory, sid)).toBe(200);
    expect(await pingStatus(gw, bob, bobs)).toBe(200);
    expect(await sdkCall(gw, bob)).toBe('still served');
    const evictions = sessionRecords(gw).filter((a) => a.method === 'evict');
    expect(evictions).toHaveLength(7);
    for (const e of evictions) expect(e).toMatchObject({ subject: 'mallory', outcome: 'ok' });
  });

  it('refuses the subject itself (503) when all of its sessions are busy', async () => {
    gw = await startGateway([stdioFixtureYaml('fx')], { top: `${DEV}sessions:\n  maxPerSubject: 2\n` });
    const mallory = await gw.token({ sub: 'mallory', scopes: [] });
    const bob = await gw.token({ sub: 'bob', scopes: [] });
    const held = [(await open(gw, mallory)).sid!, (await open(gw, mallory)).sid!];
    for (const sid of held) await holdStream(gw, mallory, sid);
    const refused = await open(gw, mallory);
    expect(refused.status).toBe(503);
    expect(sessionRecords(gw)).toContainEqual(
      expect.objectContaining({
        method: 'initialize',
        subject: 'mallory',
        outcome: 'error',
        errorCode: 'GW_MCP_SESSION_LIMIT',
        detail: expect.stringContaining('sessions.maxPerSubject'),
      }),
    );
    for (const sid of held) expect(await pingStatus(gw, mallory, sid)).toBe(200);
    expect((await open(gw, bob)).status).toBe(200);
  });
});

describe('an evicted session with a per-session upstream', () => {
  it("stops that session's upstream process (and only that one) and audits the eviction", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-caps-'));
    dirs.push(dir);
    const record = join(dir, 'per-session.jsonl');
    gw = await startGateway([stdioFixtureYaml('fx', { mode: 'per-session', env: { FIXTURE_RECORD_FILE: record } })], {
      top: `${DEV}sessions:\n  maxPerSubject: 1\n`,
    });
    const mallory = await gw.token({ sub: 'mallory', scopes: [] });
    const bob = await gw.token({ sub: 'bob', scopes: [] });
    const call = async (token: string, sid: string, text: string): Promise<number> => {
      const r = await post(
        gw!.url,
        JSON.stringify({
          jsonrpc: '2.0',
          id: 2,
          method: 'tools/call',
          params: { name: 'fx__echo', arguments: { text } },
        }),
        headers(token, sid),
      );
      expect(r.status, r.text).toBe(200);
      return toolCalls(record, 'echo').find(
        (l) => (l.params?.arguments as { text?: string } | undefined)?.text === text,
      )!.pid;
    };
    const first = (await open(gw, mallory)).sid!;
    const bobs = (await open(gw, bob)).sid!;
    const pidFirst = await call(mallory, first, 'first');
    const pidBob = await call(bob, bobs, 'bob');
    expect(gw.app.upstreams.health()[0]).toMatchObject({ mode: 'per-session', sessions: 2 });

    const second = (await open(gw, mallory)).sid!;
    await waitFor("the evicted session's process gone", () => !isAlive(pidFirst));
    expect(isAlive(pidBob)).toBe(true);
    expect(await pingStatus(gw, mallory, first)).toBe(404);
    expect(await call(mallory, second, 'second')).not.toBe(pidFirst);
    expect(sessionRecords(gw)).toContainEqual(
      expect.objectContaining({ method: 'evict', subject: 'mallory', outcome: 'ok' }),
    );
  });
});

describe('sessions.unusedTimeoutMs', () => {
  it('ends a session never initialized, or initialized but never used, long before the idle timeout; a used one lives on', async () => {
    gw = await startGateway([stdioFixtureYaml('fx')], { top: `${DEV}sessions:\n  unusedTimeoutMs: 1000\n` });
    const alice = await gw.token({ sub: 'alice', scopes: [] });
    const neverUsed = (await open(gw, alice, 'initialized')).sid!;
    const neverInitialized = (await open(gw, alice, 'initialize')).sid!;
    const used = (await open(gw, alice, 'used')).sid!;
    // A ping before `notifications/initialized` does not make the session established: its clock keeps running.
    // Opened after `neverUsed`, so once it has ended so has `neverUsed` (the clocks run from the opening).
    await waitFor(
      'the uninitialized session to end',
      async () => (await pingStatus(gw!, alice, neverInitialized)) === 404 || undefined,
    );
    expect(await pingStatus(gw, alice, neverUsed)).toBe(404);
    expect(await pingStatus(gw, alice, used)).toBe(200);
    expect(gw.app.config.server.sessionIdleTimeoutMs).toBe(30 * 60_000);
  });
});
