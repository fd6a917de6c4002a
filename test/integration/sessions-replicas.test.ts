/**
 * Sessions any replica can serve (docs/architecture.md §7; docs/deployment.md "Sessions across replicas"): real
 * gateways on port 0, each with its own fixture upstream, the official SDK client, and raw HTTP for what a client would
 * never send.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Redis } from 'ioredis';
import { decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_DEFAULT_CLIENT_ID } from '../../src/auth/dev-keys.js';
import type { Principal } from '../../src/identity/principal.js';
import { keyId, principalBinding, SessionTokenCodec } from '../../src/mcp/session-token.js';
import { MemorySessionStore } from '../../src/stores/sessions/memory-session-store.js';
import { RedisSessionStore } from '../../src/stores/sessions/redis-session-store.js';
import type { SessionStore } from '../../src/stores/sessions/session-store.js';
import { initializeBody, post, startGateway, stdioFixtureYaml, type TestGateway } from '../helpers/gateway.js';
import { describeRedis, probeRedis, redisClient } from '../helpers/redis.js';
import { freePort } from '../helpers/upstream-tools.js';

const redisUp = await probeRedis();

const K1 = randomBytes(32);
const K2 = randomBytes(32);
const ENV = { K1: K1.toString('base64url'), K2: K2.toString('base64url') };
const V = '2025-11-25';

let shared: string;
beforeAll(() => {
  shared = mkdtempSync(join(tmpdir(), 'gatehouse-sessions-'));
});
afterAll(() => rmSync(shared, { recursive: true, force: true }));

/** Dev-mode auth with one signing key for every replica (as one IdP would be), and the named session keys. */
function top(keys: ('K1' | 'K2')[]): string {
  const keyLines = keys.map((k) => `    - fromEnv: ${k}\n`).join('');
  return `auth:\n  mode: dev\n  dev:\n    keyFile: ${join(shared, 'dev-key.json')}\nsessions:\n${keys.length > 0 ? `  keys:\n${keyLines}` : '  keys: []\n'}`;
}

function replica(keys: ('K1' | 'K2')[], store?: SessionStore): Promise<TestGateway> {
  return startGateway([stdioFixtureYaml('fx')], {
    top: top(keys),
    env: ENV,
    ...(store ? { deps: { sessionStore: store } } : {}),
  });
}

const rpc = (method: string, params: Record<string, unknown> = {}, id = 1): string =>
  JSON.stringify({ jsonrpc: '2.0', id, method, params });

function headers(token: string, sid?: string): Record<string, string> {
  return {
    authorization: `Bearer ${token}`,
    'mcp-protocol-version': V,
    ...(sid !== undefined ? { 'mcp-session-id': sid } : {}),
  };
}

async function rawInitialize(gw: TestGateway, token: string): Promise<string> {
  const r = await post(gw.url, initializeBody(1, V), { authorization: `Bearer ${token}` });
  const sid = r.headers.get('mcp-session-id');
  expect(r.status, r.text).toBe(200);
  await post(gw.url, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), headers(token, sid!));
  return sid!;
}

/** A 404 exactly like an unknown session's: the table's body, no stack, no library text (docs/architecture.md §5). */
function expectNotFound(r: { status: number; text: string }): void {
  expect(r.status, r.text).toBe(404);
  expect(JSON.parse(r.text)).toEqual({
    jsonrpc: '2.0',
    id: null,
    error: { code: -32001, message: 'Session not found' },
  });
}

/** An SDK client continuing an existing session at `gw` (Client.connect skips initialize when the id is set). */
async function resume(gw: TestGateway, sessionId: string, token: string): Promise<Client> {
  const client = new Client({ name: 'resumed', version: '1' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(gw.url), {
      sessionId,
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    }),
  );
  return client;
}

describe('one session, several replicas (memory store shared in-process)', () => {
  let a: TestGateway;
  let b: TestGateway;
  let c: TestGateway;
  let d: TestGateway;
  let alice: string;
  let bob: string;
  const store = new MemorySessionStore(30 * 60_000);

  beforeAll(async () => {
    a = await replica(['K1'], store); // creates the shared dev key first
    [b, c, d] = await Promise.all([replica(['K1'], store), replica(['K2']), replica(['K2', 'K1'])]);
    alice = await a.token({ sub: 'alice', scopes: [] });
    bob = await a.token({ sub: 'bob', scopes: [] });
  }, 60_000);

  afterAll(async () => {
    await Promise.all([a, b, c, d].map((g) => g?.close()));
  });

  it('a session opened on A is served by B with the same keys (SDK client on both)', async () => {
    const onA = await a.client({ transport: { requestInit: { headers: { authorization: `Bearer ${alice}` } } } });
    const sid = (onA as unknown as { transport: StreamableHTTPClientTransport }).transport.sessionId!;
    expect(sid.split('.')).toHaveLength(5);
    expect(decodeProtectedHeader(sid)).toEqual({ alg: 'dir', enc: 'A256GCM', kid: keyId(new Uint8Array(K1)) });

    const onB = await resume(b, sid, alice);
    const listed = await onB.listTools();
    expect(listed.tools.map((t) => t.name)).toContain('fx__echo');
    const called = await onB.callTool({ name: 'fx__echo', arguments: { text: 'via B' } });
    expect(called.structuredContent).toEqual({ text: 'via B' });
    expect(b.logs.some((l) => (l.audit as { method?: string } | undefined)?.method === 'restore')).toBe(true);
    // …and A still serves it too.
    expect((await onA.callTool({ name: 'fx__echo', arguments: { text: 'via A' } })).structuredContent).toEqual({
      text: 'via A',
    });
    await onB.close();
    // Records name the session by its jti, never by the id itself (a bearer-like value: it opens the session).
    const restoredRecord = b.logs.find((l) => (l.audit as { method?: string } | undefined)?.method === 'restore')!
      .audit as { session?: string };
    expect(restoredRecord.session).toMatch(/^[A-Za-z0-9_-]{22}$/);
    for (const gw of [a, b]) expect(JSON.stringify(gw.logs)).not.toContain(sid.split('.')[3]!);
  });

  it('a replica with other keys answers 404', async () => {
    const sid = await rawInitialize(a, alice);
    expectNotFound(await post(c.url, rpc('ping'), headers(alice, sid)));
  });

  it("the same id with another principal's token is 404 on the issuing replica and on another; the reason is audited", async () => {
    const sid = await rawInitialize(a, alice);
    expectNotFound(await post(a.url, rpc('ping'), headers(bob, sid)));
    expectNotFound(await post(b.url, rpc('ping'), headers(bob, sid)));
    expect(
      b.logs.some(
        (l) => (l.audit as { detail?: string } | undefined)?.detail === 'session belongs to another principal',
      ),
    ).toBe(true);
    // Bob's attempt did not open it for him, nor close it for Alice.
    expect((await post(b.url, rpc('ping'), headers(alice, sid))).status).toBe(200);
    expectNotFound(await post(b.url, rpc('ping'), headers(bob, sid)));
  });

  it('tampered, expired, unknown-key and garbage ids are 404 without a stack', async () => {
    const sid = await rawInitialize(a, alice);
    const parts = sid.split('.');
    const ct = parts[3]!;
    const tampered = [
      parts[0],
      '',
      parts[2],
      `${ct.slice(0, 4)}${ct[4] === 'x' ? 'y' : 'x'}${ct.slice(5)}`,
      parts[4],
    ].join('.');
    const alicePrincipal: Principal = {
      subject: 'alice',
      clientId: DEV_DEFAULT_CLIENT_ID,
      issuer: a.app.config.auth.dev!.issuer,
      scopes: new Set(),
      groups: [],
      anonymous: false,
    };
    const claims = {
      jti: 'x',
      binding: principalBinding(alicePrincipal),
      protocolVersion: V,
      capabilities: {},
      clientInfo: {},
      issuedAt: Date.now() - 120_000,
    };
    const expired = await new SessionTokenCodec([new Uint8Array(K1)]).seal({
      ...claims,
      expiresAt: Date.now() - 60_000,
    });
    const unknownKey = await new SessionTokenCodec([new Uint8Array(randomBytes(32))]).seal({
      ...claims,
      expiresAt: Date.now() + 60_000,
    });
    // Control: the same claims, current and under K1, are served — so each refusal below is for its one defect.
    const current = await new SessionTokenCodec([new Uint8Array(K1)]).seal({
      ...claims,
      jti: 'control',
      expiresAt: Date.now() + 60_000,
    });
    expect((await post(b.url, rpc('ping'), headers(alice, current))).status).toBe(200);
    const garbage = [
      randomBytes(32).toString('base64url'),
      'a.b.c.d.e',
      `${parts[0]}..${randomBytes(12).toString('base64url')}.AAAA.${randomBytes(16).toString('base64url')}`,
      'x'.repeat(5000),
    ];
    for (const id of [tampered, expired, unknownKey, ...garbage]) {
      for (const gw of [a, b]) expectNotFound(await post(gw.url, rpc('ping'), headers(alice, id)));
    }
    const details = a.logs
      .map((l) => (l.audit as { detail?: string } | undefined)?.detail)
      .filter((d) => d?.startsWith('session id refused'));
    expect(new Set(details)).toEqual(
      new Set([
        'session id refused: undecryptable',
        'session id refused: expired',
        'session id refused: unknown_key',
        'session id refused: malformed',
      ]),
    );
  });

  it('a 1 MB session id is refused at the HTTP layer (431) before authentication or any session work', async () => {
    const before = a.logs.length;
    const huge = `${'A'.repeat(40)}..${'A'.repeat(16)}.${'A'.repeat(1 << 20)}.${'A'.repeat(22)}`;
    const r = await fetch(a.url, {
      method: 'POST',
      headers: {
        ...headers(alice, huge),
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: rpc('ping'),
    }).then(
      (res) => res.status,
      () => 'connection closed',
    );
    expect([431, 'connection closed']).toContain(r);
    expect(
      a.logs
        .slice(before)
        .filter((l) => l.audit !== undefined && (l.audit as { type?: string }).type === 'mcp.session'),
    ).toEqual([]);
    // The replica is fine afterwards.
    expect((await post(a.url, rpc('ping'), headers(alice, await rawInitialize(a, alice)))).status).toBe(200);
  });

  it('key rotation: [K2, K1] accepts a K1 session and issues under K2; [K2] alone refuses the K1 session', async () => {
    const old = await rawInitialize(a, alice);
    expect((await post(d.url, rpc('ping'), headers(alice, old))).status).toBe(200);
    const fresh = await rawInitialize(d, alice);
    expect(decodeProtectedHeader(fresh).kid).toBe(keyId(new Uint8Array(K2)));
    expect((await post(c.url, rpc('ping'), headers(alice, fresh))).status).toBe(200);
    expectNotFound(await post(c.url, rpc('ping'), headers(alice, old)));
  });

  it('DELETE on A is refused on B, including a session B already holds', async () => {
    const sid = await rawInitialize(a, alice);
    const held = await rawInitialize(a, alice);
    expect((await post(b.url, rpc('ping'), headers(alice, held))).status).toBe(200);
    for (const id of [sid, held]) {
      const del = await fetch(a.url, { method: 'DELETE', headers: headers(alice, id) });
      expect(del.status).toBe(200);
      expectNotFound(await post(b.url, rpc('ping'), headers(alice, id)));
      expectNotFound(await post(a.url, rpc('ping'), headers(alice, id)));
    }
  });

  it('documented limit: logging/setLevel stays on the replica that received it (B relays no log until told)', async () => {
    const sid = await rawInitialize(a, alice);
    const logCall = (id: number): string =>
      rpc('tools/call', { name: 'fx__log', arguments: { level: 'warning', message: `line-${id}`, related: true } }, id);
    expect((await post(a.url, rpc('logging/setLevel', { level: 'debug' }, 2), headers(alice, sid))).status).toBe(200);
    const onA = await post(a.url, logCall(3), headers(alice, sid));
    expect(onA.status).toBe(200);
    expect(onA.text).toContain('line-3');
    const onB = await post(b.url, logCall(4), headers(alice, sid));
    expect(onB.status).toBe(200);
    expect(onB.text).toContain('logged'); // the call itself went through on B…
    expect(onB.text).not.toContain('line-4'); // …without its log message
    expect((await post(b.url, rpc('logging/setLevel', { level: 'debug' }, 5), headers(alice, sid))).status).toBe(200);
    expect((await post(b.url, logCall(6), headers(alice, sid))).text).toContain('line-6');
  });

  it('a GET stream opened on B hears list_changed from B for a session opened on A', async () => {
    const sid = await rawInitialize(a, alice);
    const controller = new AbortController();
    const stream = await fetch(b.url, {
      headers: { ...headers(alice, sid), accept: 'text/event-stream' },
      signal: controller.signal,
    });
    expect(stream.status).toBe(200);
    const reader = stream.body!.getReader();
    const heard = (async () => {
      let text = '';
      const decoder = new TextDecoder();
      while (!text.includes('notifications/tools/list_changed')) {
        const { done, value } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
      return text;
    })();
    // The change happens at B's own upstream connection (as every replica's connection to a shared upstream would hear it).
    const r = await post(b.url, rpc('tools/call', { name: 'fx__change_tools', arguments: {} }), headers(alice, sid));
    expect(r.status).toBe(200);
    expect(await heard).toContain('notifications/tools/list_changed');
    controller.abort();
  });
});

describe('without sessions.keys', () => {
  it('ids are sealed with a random key of the process, said once at start; another process refuses them', async () => {
    await using one = await startGateway([stdioFixtureYaml('fx')]);
    await using two = await startGateway([stdioFixtureYaml('fx')]);
    const r = await post(one.url, initializeBody(1, V));
    const sid = r.headers.get('mcp-session-id')!;
    expect((await post(one.url, rpc('ping'), { 'mcp-session-id': sid })).status).toBe(200);
    expectNotFound(await post(two.url, rpc('ping'), { 'mcp-session-id': sid }));
    expect(one.logs.filter((l) => String(l.msg).startsWith('sessions.keys not set'))).toHaveLength(1);
  }, 30_000);
});

describe('a session store that cannot answer', () => {
  it('fails closed with 503 "Session store unavailable", never 404 or 500', async () => {
    // Nothing listens there: every command fails at once (no offline queue), as with Redis down.
    const dead = new Redis({
      port: await freePort(),
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    dead.on('error', () => undefined);
    await using gw = await replica(
      ['K1'],
      new RedisSessionStore(dead, { keyPrefix: 'unused:', idleTimeoutMs: 60_000 }),
    );
    try {
      const token = await gw.token({ sub: 'alice', scopes: [] });
      const init = await post(gw.url, initializeBody(1, V), { authorization: `Bearer ${token}` });
      expect(init.status).toBe(503);
      expect(init.headers.get('mcp-session-id')).toBeNull();
      expect(JSON.parse(init.text)).toEqual({
        jsonrpc: '2.0',
        id: null,
        error: { code: -32603, message: 'Session store unavailable' },
      });
      // An id sealed elsewhere (valid) cannot be checked either: 503 too, not "not found".
      const alice: Principal = {
        subject: 'alice',
        clientId: DEV_DEFAULT_CLIENT_ID,
        issuer: gw.app.config.auth.dev!.issuer,
        scopes: new Set(),
        groups: [],
        anonymous: false,
      };
      const sid = await new SessionTokenCodec([new Uint8Array(K1)]).seal({
        jti: 'j',
        binding: principalBinding(alice),
        protocolVersion: V,
        capabilities: {},
        clientInfo: {},
        issuedAt: Date.now(),
        expiresAt: Date.now() + 60_000,
      });
      expect((await post(gw.url, rpc('ping'), headers(token, sid))).status).toBe(503);
    } finally {
      dead.disconnect();
    }
  }, 30_000);
});

describeRedis(redisUp)('DELETE across replicas with the Redis store', () => {
  it('a session deleted on A is refused on B; the keys expire', async () => {
    const prefix = `gatehouse-test:${randomBytes(6).toString('hex')}:session:`;
    const [ra, rb, admin] = [redisClient(), redisClient(), redisClient()];
    const idle = 30 * 60_000;
    await using a = await replica(['K1'], new RedisSessionStore(ra, { keyPrefix: prefix, idleTimeoutMs: idle }));
    await using b = await replica(['K1'], new RedisSessionStore(rb, { keyPrefix: prefix, idleTimeoutMs: idle }));
    try {
      const alice = await a.token({ sub: 'alice', scopes: [] });
      const sid = await rawInitialize(a, alice);
      expect((await post(b.url, rpc('ping'), headers(alice, sid))).status).toBe(200);
      const del = await fetch(b.url, { method: 'DELETE', headers: headers(alice, sid) });
      expect(del.status).toBe(200);
      expectNotFound(await post(a.url, rpc('ping'), headers(alice, sid)));
      const keys = await admin.keys(`${prefix}*`);
      expect(keys).toHaveLength(1);
      expect(keys[0]).toMatch(/:revoked$/);
      const ttl = await admin.pttl(keys[0]!);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(a.app.config.sessions!.maxLifetimeMs + 1000);
      // Idle: the shared clock is gone (as if it had expired) → every replica refuses the session.
      const idleSid = await rawInitialize(a, alice);
      await admin.del(...(await admin.keys(`${prefix}*:seen`)));
      expectNotFound(await post(b.url, rpc('ping'), headers(alice, idleSid)));
      expectNotFound(await post(a.url, rpc('ping'), headers(alice, idleSid)));
    } finally {
      const left = await admin.keys(`${prefix}*`);
      if (left.length > 0) await admin.del(...left);
      for (const r of [ra, rb, admin]) r.disconnect();
    }
  }, 60_000);
});
