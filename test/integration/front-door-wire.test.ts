/**
 * Wire rules of the front door (MCP 2025-11-25 basic/transports §Streamable HTTP, basic §Messages; docs/architecture.md
 * §5), checked with raw HTTP against a real gateway and a real stdio fixture upstream.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  initializeBody,
  post,
  rawSession,
  startGateway,
  stdioFixtureYaml,
  type TestGateway,
} from '../helpers/gateway.js';
import { readRecord } from '../helpers/upstream-tools.js';

const BODY_LIMIT = 2048;
const ALLOWED_ORIGIN = 'https://app.example';

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** node:http, not fetch: fetch would not let us set Host, and we want every header exactly as written. */
function raw(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string; path?: string } = {},
): Promise<RawResponse> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: u.hostname,
        port: u.port,
        method: opts.method ?? 'GET',
        path: opts.path ?? `${u.pathname}${u.search}`,
        headers: opts.headers ?? {},
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

const JSON_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

/** docs/architecture.md §5: no stack, no library message, only the gateway's fixed texts. */
function expectCleanError(text: string): void {
  expect(text).not.toMatch(/\bat [\w.<>]+ \(|node:internal|node_modules|\.ts:\d+|\.js:\d+/);
  expect(text).not.toMatch(/\b(?:Type|Syntax|Range|Reference)?Error:/);
  expect(text).not.toMatch(/FST_|Unexpected token|JSON at position/);
}

function errorOf(json: unknown): { code: number; message: string } {
  const e = (json as { error?: { code: number; message: string } }).error;
  expect(e).toBeDefined();
  return e!;
}

function ping(id: number | string = 1): string {
  return JSON.stringify({ jsonrpc: '2.0', id, method: 'ping' });
}

let gw: TestGateway;
let url: string;
let recordDir: string;
let recordFile: string;

beforeAll(async () => {
  recordDir = mkdtempSync(join(tmpdir(), 'gatehouse-fd-wire-'));
  recordFile = join(recordDir, 'record.jsonl');
  gw = await startGateway([stdioFixtureYaml('fx', { env: { FIXTURE_RECORD_FILE: recordFile } })], {
    server: { allowedOrigins: [ALLOWED_ORIGIN], bodyLimitBytes: BODY_LIMIT },
  });
  url = gw.url;
});

afterAll(async () => {
  await gw?.close();
  rmSync(recordDir, { recursive: true, force: true });
});

describe('Origin and Host (transports §Security Warning: DNS rebinding)', () => {
  it.each([
    ['POST', '/mcp'],
    ['GET', '/mcp'],
    ['GET', '/healthz'],
  ])('a foreign Origin gets 403 on %s %s', async (method, path) => {
    const r = await raw(url, {
      method,
      path,
      headers: { ...JSON_HEADERS, origin: 'http://evil.example' },
      ...(method === 'POST' ? { body: initializeBody() } : {}),
    });
    expect(r.status).toBe(403);
    expect(r.headers['mcp-session-id']).toBeUndefined();
    expect(errorOf(JSON.parse(r.text)).message).toBe('Forbidden origin');
  });

  it('refuses Origin: null, a look-alike of the allowed origin, and loopback pages on other ports (threat model #7)', async () => {
    const others = ['http://localhost:5173', 'http://127.0.0.1:9999', 'http://[::1]:3000'];
    for (const origin of [
      'null',
      'https://app.example.evil',
      'http://app.example',
      'http://localhost.evil.example',
      ...others,
    ]) {
      const r = await raw(url, { method: 'POST', headers: { ...JSON_HEADERS, origin }, body: initializeBody() });
      expect(r.status, origin).toBe(403);
    }
  });

  it('allows its own origin (127.0.0.1, localhost, [::1] at its port) and the configured one', async () => {
    const port = new URL(url).port;
    for (const origin of [
      `http://127.0.0.1:${port}`,
      `http://localhost:${port}`,
      `http://[::1]:${port}`,
      ALLOWED_ORIGIN,
    ]) {
      const r = await raw(url, { method: 'POST', headers: { ...JSON_HEADERS, origin }, body: initializeBody() });
      expect(r.status, origin).toBe(200);
      expect(r.headers['mcp-session-id']).toBeTypeOf('string');
    }
  });

  it('allows a request without Origin (non-browser clients)', async () => {
    const r = await raw(url, { method: 'POST', headers: JSON_HEADERS, body: initializeBody() });
    expect(r.status).toBe(200);
  });

  it('refuses a foreign Host header on a loopback gateway', async () => {
    const r = await raw(url, {
      method: 'POST',
      headers: { ...JSON_HEADERS, host: 'evil.example' },
      body: initializeBody(),
    });
    expect(r.status).toBe(403);
    expect(errorOf(JSON.parse(r.text)).message).toBe('Forbidden host');
    const health = await raw(url, { path: '/healthz', headers: { host: 'evil.example:80' } });
    expect(health.status).toBe(403);
  });
});

describe('sessions and versions (transports §Session Management, §Protocol Version Header; lifecycle)', () => {
  it('initialize returns a visible-ASCII session id of at least 128 bits, distinct per session', async () => {
    const a = await post(url, initializeBody());
    const b = await post(url, initializeBody());
    const ida = a.headers.get('mcp-session-id');
    const idb = b.headers.get('mcp-session-id');
    for (const id of [ida, idb]) {
      // A compact JWE (docs/deployment.md "Sessions across replicas"): base64url parts; its jti alone is 128 random
      // bits.
      expect(id).toMatch(/^[A-Za-z0-9_-]+\.\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22,}\.[A-Za-z0-9_-]{22}$/);
      expect([...id!].every((c) => c.charCodeAt(0) >= 0x21 && c.charCodeAt(0) <= 0x7e)).toBe(true);
    }
    expect(ida).not.toBe(idb);
    expect(a.headers.get('content-type')).toMatch(/^application\/json/);
    const result = (
      a.json as {
        result: { protocolVersion: string; serverInfo: { name: string }; capabilities: Record<string, unknown> };
      }
    ).result;
    expect(result.protocolVersion).toBe('2025-11-25');
    expect(result.serverInfo.name).toBe('gatehouse');
    expect(result.capabilities.tools).toEqual({ listChanged: true });
  });

  it('echoes a supported requested version and offers its latest for an unknown one', async () => {
    const older = await post(url, initializeBody(1, '2025-06-18'));
    expect((older.json as { result: { protocolVersion: string } }).result.protocolVersion).toBe('2025-06-18');
    const unknown = await post(url, initializeBody(1, '1999-01-01'));
    expect(unknown.status).toBe(200);
    expect((unknown.json as { result: { protocolVersion: string } }).result.protocolVersion).toBe('2025-11-25');
  });

  it('answers an unsupported MCP-Protocol-Version with 400', async () => {
    const sid = await rawSession(url);
    const r = await post(url, ping(), { 'mcp-session-id': sid, 'mcp-protocol-version': '1999-01-01' });
    expect(r.status).toBe(400);
    expectCleanError(r.text);
    // The session itself is fine: the right header works.
    expect((await post(url, ping(), { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' })).status).toBe(200);
  });

  it('answers a request without Mcp-Session-Id with 400 and an unknown id with 404', async () => {
    const missing = await post(url, ping());
    expect(missing.status).toBe(400);
    expect(errorOf(missing.json).message).toMatch(/Mcp-Session-Id/);
    const unknown = await post(url, ping(), { 'mcp-session-id': 'A'.repeat(43), 'mcp-protocol-version': '2025-11-25' });
    expect(unknown.status).toBe(404);
    expectCleanError(unknown.text);
  });

  it('DELETE ends the session: 200, then the same id is 404', async () => {
    const sid = await rawSession(url);
    const del = await raw(url, {
      method: 'DELETE',
      headers: { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' },
    });
    expect(del.status).toBe(200);
    const after = await post(url, ping(), { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' });
    expect(after.status).toBe(404);
    const again = await raw(url, { method: 'DELETE', headers: { 'mcp-session-id': sid } });
    expect(again.status).toBe(404);
  });

  it('DELETE during a call cancels it upstream and ends the GET stream', async () => {
    const sid = await rawSession(url);
    const headers = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
    const get = await fetch(url, { headers: { ...headers, accept: 'text/event-stream' } });
    expect(get.status).toBe(200);
    const marker = `del-${Date.now()}`;
    const call = post(
      url,
      JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'fx__hang', arguments: {}, _meta: { marker } },
      }),
      headers,
    );
    const upstreamCall = await vi.waitFor(
      () => {
        const found = readRecord<Record<string, unknown>>(recordFile).find(
          (e) => e.method === 'tools/call' && JSON.stringify(e.params).includes(marker),
        );
        expect(found).toBeDefined();
        return found!;
      },
      { timeout: 3000, interval: 20 },
    );
    const del = await raw(url, { method: 'DELETE', headers });
    expect(del.status).toBe(200);
    const answered = await call; // the POST ends; its answer is an error, never a result
    expect((answered.json as { result?: unknown }).result).toBeUndefined();
    await vi.waitFor(
      () => {
        const rec = readRecord<Record<string, unknown>>(recordFile);
        expect(
          rec.some(
            (e) =>
              e.method === 'notifications/cancelled' &&
              (e.params as { requestId?: unknown }).requestId === upstreamCall.id,
          ),
        ).toBe(true);
        expect(rec.some((e) => e.event === 'cancelled-observed' && e.requestId === upstreamCall.id)).toBe(true);
      },
      { timeout: 3000, interval: 20 },
    );
    // The session's GET stream is ended by the server, so reading it to the end finishes.
    await expect(get.text()).resolves.toBeTypeOf('string');
  });

  it('refuses initialize that carries an Mcp-Session-Id (400) and opens no session', async () => {
    const sid = await rawSession(url);
    const r = await post(url, initializeBody(), { 'mcp-session-id': sid });
    expect(r.status).toBe(400);
    expect(r.headers.get('mcp-session-id')).toBeNull();
    expectCleanError(r.text);
  });

  it('a second GET stream on the same session is 409', async () => {
    const sid = await rawSession(url);
    const headers = { accept: 'text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
    const ac = new AbortController();
    const first = await fetch(url, { headers, signal: ac.signal });
    try {
      expect(first.status).toBe(200);
      expect(first.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const second = await raw(url, { headers });
      expect(second.status).toBe(409);
      expectCleanError(second.text);
    } finally {
      ac.abort();
    }
  });
});

describe('messages (basic §Messages, transports §Sending Messages)', () => {
  let sid: string;
  const h = (): Record<string, string> => ({ 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' });
  beforeAll(async () => {
    sid = await rawSession(url);
  });

  it('answers ping with {}', async () => {
    const r = await post(url, ping(42), h());
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ jsonrpc: '2.0', id: 42, result: {} });
  });

  it('accepts notifications and responses with 202 and an empty body', async () => {
    const n = await post(url, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), h());
    expect(n.status).toBe(202);
    expect(n.text).toBe('');
    const unknownNote = await post(
      url,
      JSON.stringify({ jsonrpc: '2.0', method: 'notifications/whatever', params: {} }),
      h(),
    );
    expect(unknownNote.status).toBe(202);
    expect(unknownNote.text).toBe('');
    const resp = await post(url, JSON.stringify({ jsonrpc: '2.0', id: 'gatehouse-999', result: {} }), h());
    expect(resp.status).toBe(202);
    expect(resp.text).toBe('');
    const errResp = await post(
      url,
      JSON.stringify({ jsonrpc: '2.0', id: 'gatehouse-998', error: { code: -1, message: 'no' } }),
      h(),
    );
    expect(errResp.status).toBe(202);
    expect(errResp.text).toBe('');
  });

  it('refuses a batch on a 2025-11-25 session with 400', async () => {
    const r = await post(url, JSON.stringify([JSON.parse(ping(1)), JSON.parse(ping(2))]), h());
    expect(r.status).toBe(400);
    expect(Array.isArray(r.json)).toBe(false);
    expectCleanError(r.text);
  });

  it('answers a batch of two pings on a 2025-03-26 session with an array of two results', async () => {
    const old = await rawSession(url, '2025-03-26');
    const r = await post(url, JSON.stringify([JSON.parse(ping(1)), JSON.parse(ping('two'))]), {
      'mcp-session-id': old,
      'mcp-protocol-version': '2025-03-26',
    });
    expect(r.status).toBe(200);
    expect(Array.isArray(r.json)).toBe(true);
    const items = r.json as Array<{ id: unknown; result: unknown }>;
    expect(items).toHaveLength(2);
    expect(items).toEqual(
      expect.arrayContaining([
        { jsonrpc: '2.0', id: 1, result: {} },
        { jsonrpc: '2.0', id: 'two', result: {} },
      ]),
    );
  });

  it.each([
    ['id null', '{"jsonrpc":"2.0","id":null,"method":"ping"}'],
    ['float id', '{"jsonrpc":"2.0","id":1.5,"method":"ping"}'],
    ['params as array', '{"jsonrpc":"2.0","id":1,"method":"ping","params":[]}'],
    ['missing jsonrpc', '{"id":1,"method":"ping"}'],
    ['jsonrpc 1.0', '{"jsonrpc":"1.0","id":1,"method":"ping"}'],
    ['extra key "Method"', '{"jsonrpc":"2.0","id":1,"method":"ping","Method":"tools/call"}'],
    ['a bare string', '"ping"'],
  ])('refuses %s with 400 Invalid Request', async (_label, body) => {
    const r = await post(url, body, h());
    expect(r.status).toBe(400);
    const e = errorOf(r.json);
    expect(e.code).toBe(-32600);
    expect(e.message).toBe('Invalid Request');
    expect((r.json as { id: unknown }).id).not.toBe(1.5);
    expectCleanError(r.text);
  });

  it('refuses non-JSON with 400 and -32700', async () => {
    for (const body of ['{not json', '', '{"jsonrpc":"2.0","id":1,"method":"ping"']) {
      const r = await post(url, body, h());
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(errorOf(r.json).code).toBe(-32700);
      expectCleanError(r.text);
    }
  });

  it('refuses __proto__ and constructor.prototype anywhere, and keeps working', async () => {
    const bodies = [
      '{"__proto__":{"polluted":1},"jsonrpc":"2.0","id":1,"method":"ping"}',
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fx__echo","arguments":{"text":"x","__proto__":{"polluted":1}}}}',
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fx__echo","arguments":{"text":"x","constructor":{"prototype":{"polluted":1}}}}}',
      '{"jsonrpc":"2.0","id":1,"method":"ping","params":{"_meta":{"\\u005f_proto__":{"polluted":1}}}}',
    ];
    for (const body of bodies) {
      const r = await post(url, body, h());
      expect(r.status, body).toBe(400);
      expect(errorOf(r.json).code).toBe(-32700);
      expectCleanError(r.text);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const ok = await post(
      url,
      JSON.stringify({
        jsonrpc: '2.0',
        id: 9,
        method: 'tools/call',
        params: { name: 'fx__echo', arguments: { text: 'still here' } },
      }),
      h(),
    );
    expect(ok.status).toBe(200);
    expect((ok.json as { result: { content: unknown } }).result.content).toEqual([
      { type: 'text', text: 'still here' },
    ]);
  });

  it('refuses arguments nested deeper than the limit with 400, and keeps working', async () => {
    const deep = `${'['.repeat(500)}${']'.repeat(500)}`; // deeper than 128, within this gateway's 2 KiB body limit
    const body = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fx__echo","arguments":{"text":"x","deep":${deep}}}}`;
    const r = await post(url, body, h());
    expect(r.status).toBe(400);
    expectCleanError(r.text);
    // A bracket inside a string is not nesting.
    const inString = JSON.stringify({
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: { name: 'fx__echo', arguments: { text: '['.repeat(500) } },
    });
    const ok = await post(url, inString, h());
    expect(ok.status).toBe(200);
    expect((ok.json as { result: { content: unknown } }).result.content).toEqual([
      { type: 'text', text: '['.repeat(500) },
    ]);
  });

  it('routes duplicate keys to the last one, and the upstream sees exactly that (router and upstream agree)', async () => {
    const marker = `dup-${Date.now()}`;
    const body = `{"jsonrpc":"2.0","id":77,"method":"tools/call","params":{"name":"fx__hang","name":"fx__echo","arguments":{"text":"${marker}"}}}`;
    const r = await post(url, body, h());
    expect(r.status).toBe(200);
    expect((r.json as { result: { content: unknown } }).result.content).toEqual([{ type: 'text', text: marker }]);
    const calls = readRecord<Record<string, unknown>>(recordFile).filter((e) => e.method === 'tools/call');
    const mine = calls.filter((e) => JSON.stringify(e.params).includes(marker));
    expect(mine).toHaveLength(1);
    expect((mine[0]!.params as { name: string }).name).toBe('echo');
    expect(mine.some((e) => (e.params as { name?: string }).name === 'hang')).toBe(false);
  });

  it('refuses a second request with an id already in flight, without forwarding it', async () => {
    const marker = `twin-${Date.now()}`;
    const slow = post(
      url,
      JSON.stringify({
        jsonrpc: '2.0',
        id: 'same',
        method: 'tools/call',
        params: { name: 'fx__slow', arguments: { ms: 437 } },
      }),
      h(),
    );
    // Once the upstream has the call, the gateway has it in flight.
    await vi.waitFor(
      () =>
        expect(
          readRecord<Record<string, unknown>>(recordFile).some((e) =>
            JSON.stringify(e.params ?? null).includes('"ms":437'),
          ),
        ).toBe(true),
      { timeout: 3000, interval: 10 },
    );
    const twin = await post(
      url,
      JSON.stringify({
        jsonrpc: '2.0',
        id: 'same',
        method: 'tools/call',
        params: { name: 'fx__echo', arguments: { text: marker } },
      }),
      h(),
    );
    expect((twin.json as { id: unknown }).id).toBe('same');
    expect(errorOf(twin.json).code).toBe(-32600);
    const first = await slow;
    expect((first.json as { result: { content: unknown } }).result.content).toEqual([
      { type: 'text', text: 'done after 437ms' },
    ]);
    expect(
      readRecord<Record<string, unknown>>(recordFile).some((e) => JSON.stringify(e.params ?? null).includes(marker)),
    ).toBe(false);
  });

  it('answers an unknown tool with -32602 "Unknown tool: <name>"', async () => {
    const r = await post(
      url,
      JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'fx__nope', arguments: {} } }),
      h(),
    );
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ jsonrpc: '2.0', id: 3, error: { code: -32602, message: 'Unknown tool: fx__nope' } });
  });

  it('answers tools/list with a cursor with -32602 (we never issue cursors)', async () => {
    const r = await post(
      url,
      JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'tools/list', params: { cursor: 'abc' } }),
      h(),
    );
    expect(errorOf(r.json).code).toBe(-32602);
    const plain = await post(url, JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/list' }), h());
    const names = (plain.json as { result: { tools: Array<{ name: string }> } }).result.tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['fx__echo', 'fx__add', 'fx__hang']));
  });

  it('logging/setLevel answers {} and refuses an unknown level with -32602', async () => {
    const ok = await post(
      url,
      JSON.stringify({ jsonrpc: '2.0', id: 6, method: 'logging/setLevel', params: { level: 'warning' } }),
      h(),
    );
    expect(ok.json).toEqual({ jsonrpc: '2.0', id: 6, result: {} });
    const bad = await post(
      url,
      JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'logging/setLevel', params: { level: 'loud' } }),
      h(),
    );
    expect(bad.json).toEqual({ jsonrpc: '2.0', id: 7, error: { code: -32602, message: 'Invalid params' } });
  });

  it('answers an unknown method with -32601', async () => {
    const r = await post(url, JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'nope/nothing' }), h());
    expect(r.json).toEqual({ jsonrpc: '2.0', id: 8, error: { code: -32601, message: 'Method not found' } });
  });
});

describe('HTTP rules (transports §Sending Messages; docs/architecture.md §5)', () => {
  let sid: string;
  const h = (): Record<string, string> => ({ 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' });
  beforeAll(async () => {
    sid = await rawSession(url);
  });

  it('refuses Content-Type text/plain with 415 even when the body is valid JSON-RPC', async () => {
    const r = await post(url, ping(), { ...h(), 'content-type': 'text/plain' });
    expect(r.status).toBe(415);
    expectCleanError(r.text);
    const none = await raw(url, { method: 'POST', headers: { accept: JSON_HEADERS.accept, ...h() }, body: ping() });
    expect(none.status).toBe(415);
  });

  it('accepts application/json with a charset parameter', async () => {
    const r = await post(url, ping(), { ...h(), 'content-type': 'application/json; charset=utf-8' });
    expect(r.status).toBe(200);
  });

  it('refuses an Accept without text/event-stream with 406', async () => {
    const r = await post(url, ping(), { ...h(), accept: 'application/json' });
    expect(r.status).toBe(406);
    expectCleanError(r.text);
    const get = await raw(url, { headers: { ...h(), accept: 'application/json' } });
    expect(get.status).toBe(406);
  });

  it(`refuses a body over bodyLimitBytes (${BODY_LIMIT}) with 413`, async () => {
    const body = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'fx__echo', arguments: { text: 'x'.repeat(BODY_LIMIT) } },
    });
    const r = await post(url, body, h());
    expect(r.status).toBe(413);
    expectCleanError(r.text);
    // Just under the limit still works.
    const small = JSON.stringify({
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: { name: 'fx__echo', arguments: { text: 'x'.repeat(BODY_LIMIT - 200) } },
    });
    expect((await post(url, small, h())).status).toBe(200);
  });

  it('answers PUT with 405 and Allow: GET, POST, DELETE', async () => {
    const r = await raw(url, { method: 'PUT', headers: { ...JSON_HEADERS, ...h() }, body: ping() });
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('GET, POST, DELETE');
    expectCleanError(r.text);
  });

  it('answers an unknown path with 404', async () => {
    const r = await raw(url, { method: 'POST', path: '/mcp/extra', headers: JSON_HEADERS, body: ping() });
    expect(r.status).toBe(404);
    const g = await raw(url, { path: '/nope' });
    expect(g.status).toBe(404);
    expectCleanError(g.text);
  });

  it('answers a malformed URL with 400 and the gateway text, not the framework message', async () => {
    const r = await raw(url, { path: '/mcp%zz', headers: { accept: 'text/event-stream' } });
    expect(r.status).toBe(400);
    expect(JSON.parse(r.text)).toEqual({
      jsonrpc: '2.0',
      id: null,
      error: { code: -32600, message: 'Invalid Request' },
    });
    expect(r.text).not.toContain('%zz');
    expectCleanError(r.text);
  });

  it('refuses ?access_token= in the query with 400', async () => {
    const r = await raw(url, {
      method: 'POST',
      path: '/mcp?access_token=x',
      headers: { ...JSON_HEADERS, ...h() },
      body: ping(),
    });
    expect(r.status).toBe(400);
    expect(r.text).not.toContain('access_token=x');
    const other = await raw(url, {
      method: 'POST',
      path: '/mcp?foo=1&access_token=x',
      headers: { ...JSON_HEADERS, ...h() },
      body: ping(),
    });
    expect(other.status).toBe(400);
    // RFC 6750 §3.1 invalid_request, in the challenge (no resource_metadata: auth.mode none serves no metadata),
    // and the name is found however it is percent-encoded.
    const challenge =
      'Bearer error="invalid_request", error_description="Send the access token once, in one Authorization: Bearer header"';
    for (const path of ['/mcp?access_token=x', '/mcp?access%5Ftoken=x', '/mcp?%61ccess_token=x']) {
      const r2 = await raw(url, { method: 'POST', path, headers: { ...JSON_HEADERS, ...h() }, body: ping() });
      expect(r2.status, path).toBe(400);
      expect(r2.headers['www-authenticate'], path).toBe(challenge);
    }
  });
});

describe('error bodies never carry upstream text (docs/architecture.md §5)', () => {
  let sid: string;
  const h = (): Record<string, string> => ({ 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' });
  beforeAll(async () => {
    sid = await rawSession(url);
  });

  it('an upstream JSON-RPC error reaches the client as the gateway code and its fixed text', async () => {
    // prompts/get without the required argument: McpServer throws McpError(-32602, "Invalid arguments for prompt greet: …").
    const r = await post(
      url,
      JSON.stringify({ jsonrpc: '2.0', id: 11, method: 'prompts/get', params: { name: 'fx__greet', arguments: {} } }),
      h(),
    );
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ jsonrpc: '2.0', id: 11, error: { code: -32602, message: 'Invalid params' } });
    expect(r.text).not.toMatch(/greet|Invalid arguments|expected|MCP error/);
  });

  it('a tool input-validation failure is a tool result (isError) and passes through', async () => {
    // MCP 11-25 tools §Error Handling: input validation errors are tool execution errors, so the model can
    // correct itself. SDK McpServer turns them into `isError` results, not JSON-RPC errors; a tool result is
    // content and the gateway relays it unchanged. Only JSON-RPC errors are reduced to gateway text (above).
    const r = await post(
      url,
      JSON.stringify({
        jsonrpc: '2.0',
        id: 12,
        method: 'tools/call',
        params: { name: 'fx__add', arguments: { a: 'one', b: 2 } },
      }),
      h(),
    );
    expect(r.status).toBe(200);
    const body = r.json as {
      id: number;
      result?: { isError?: boolean; content: Array<{ type: string; text: string }> };
      error?: unknown;
    };
    expect(body.id).toBe(12);
    expect(body.error).toBeUndefined();
    expect(body.result?.isError).toBe(true);
    expect(body.result?.content[0]?.type).toBe('text');
    expect(body.result?.content[0]?.text).toMatch(/validation/i);
    expectCleanError(JSON.stringify(body.result?.content[0]?.text).replace(/MCP error -?\d+:/, ''));
  });
});
