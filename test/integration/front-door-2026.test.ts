/**
 * MCP 2026-07-28 beside 2025-11-25 on one endpoint (docs/protocol-2026-07-28.md): stateless requests chosen by their
 * `_meta` claim, checked (envelope, version, routing headers) before anything is decided, answered by the same
 * pipeline and policy as a session's request, in the 2026 wire format. Real gateway on port 0, real stdio fixture
 * upstream, raw HTTP as the client (the wire is what is asserted).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  PARAM_HEADERS_SERVER,
  post,
  rawSession,
  startPolicyGateway,
  stdioFixtureYaml,
  type TestGateway,
} from '../helpers/gateway.js';

const POLICY = `version: 1
rules:
  - id: echo
    effect: allow
    match: { tools: [fx__echo] }
    when: { scopes: { allOf: ["fx:echo"] } }
  - id: add
    effect: allow
    match: { tools: [fx__add] }
    when: { scopes: { allOf: ["fx:add"] } }
  - id: query
    effect: allow
    match: { tools: [ph__query] }
    when: { scopes: { allOf: ["ph:query"] } }
`;

const V = '2026-07-28';
const META = { 'io.modelcontextprotocol/protocolVersion': V, 'io.modelcontextprotocol/clientCapabilities': {} };

interface Reply {
  status: number;
  headers: Headers;
  json: unknown;
}

describe('MCP 2026-07-28 front door', () => {
  let dir: string;
  let gw: TestGateway;
  let token: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-2026-'));
    ({ gw } = await startPolicyGateway(dir, { 'fx.yaml': POLICY }, [
      stdioFixtureYaml('fx'),
      stdioFixtureYaml('ph', { args: ['--import', 'tsx', PARAM_HEADERS_SERVER] }),
    ]));
    token = await gw.token({ sub: 'alice', scopes: ['fx:echo'] });
  }, 60_000);

  afterAll(async () => {
    await gw?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A 2025-11-25 session of the same principal, opened with raw HTTP. */
  async function legacySession(): Promise<string> {
    return rawSession(gw.url, '2025-11-25', {}, { authorization: `Bearer ${token}` });
  }

  /** A 2026 request with the headers a conforming client sends (overridable). */
  function send(
    id: number,
    method: string,
    params: Record<string, unknown> = {},
    headers: Record<string, string> = {},
  ): Promise<Reply> {
    const name = typeof params.name === 'string' ? params.name : typeof params.uri === 'string' ? params.uri : '';
    return post(gw.url, JSON.stringify({ jsonrpc: '2.0', id, method, params: { ...params, _meta: META } }), {
      authorization: `Bearer ${token}`,
      'mcp-protocol-version': V,
      'mcp-method': method,
      ...(name !== '' ? { 'mcp-name': name } : {}),
      ...headers,
    });
  }

  it('answers server/discover, lists and calls without initialize or a session', async () => {
    const d = await send(1, 'server/discover');
    expect(d.status).toBe(200);
    expect(d.headers.get('mcp-session-id')).toBeNull();
    expect(d.json).toMatchObject({
      id: 1,
      result: {
        resultType: 'complete',
        supportedVersions: [V],
        capabilities: { tools: {} },
        cacheScope: 'private',
        ttlMs: 0,
        _meta: { 'io.modelcontextprotocol/serverInfo': { name: 'gatehouse' } },
      },
    });
    const list = await send(2, 'tools/list');
    const tools = (list.json as { result: { tools: { name: string }[]; cacheScope: string } }).result;
    // Filtered per principal by the same policy as a 2025 session: alice has fx:echo only.
    expect(tools.tools.map((t) => t.name)).toEqual(['fx__echo']);
    expect(tools.cacheScope).toBe('private');
    const call = await send(3, 'tools/call', { name: 'fx__echo', arguments: { text: 'hi' } });
    expect(call.status).toBe(200);
    expect(call.json).toMatchObject({ id: 3, result: { resultType: 'complete', structuredContent: { text: 'hi' } } });
    // The record says which generation the call was made in, and names no session.
    const record = await vi.waitFor(() => {
      const found = gw.logs
        .map((l) => l.audit as Record<string, unknown> | undefined)
        .find((a) => a?.type === 'mcp.request' && a.requestId === '3' && a.method === 'tools/call');
      expect(found).toBeDefined();
      return found;
    });
    expect(record).toMatchObject({ protocolVersion: V, subject: 'alice', tool: 'fx__echo', outcome: 'ok' });
    expect(record).not.toHaveProperty('session');
  });

  it('decides exactly as for a 2025 session: a missing scope is the same 403 challenge', async () => {
    const modern = await send(4, 'tools/call', { name: 'fx__add', arguments: { a: 1, b: 2 } });
    const legacySid = await legacySession();
    const legacy = await post(
      gw.url,
      JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'fx__add', arguments: {} } }),
      { authorization: `Bearer ${token}`, 'mcp-session-id': legacySid, 'mcp-protocol-version': '2025-11-25' },
    );
    expect(modern.status).toBe(403);
    expect(legacy.status).toBe(403);
    expect(modern.headers.get('www-authenticate')).toBe(legacy.headers.get('www-authenticate'));
    expect(modern.headers.get('www-authenticate')).toMatch(/insufficient_scope.*fx:add/);
    // A tool no rule shows is unknown in both generations.
    const hidden = await send(5, 'tools/call', { name: 'fx__env_report', arguments: {} });
    expect(hidden.json).toMatchObject({ id: 5, error: { code: -32602, message: 'Unknown tool: fx__env_report' } });
  });

  it('shapes its own copy of a cached list: a 2025 session listing after it gets the 2025 format', async () => {
    const modern = await send(40, 'tools/list');
    expect(modern.json).toMatchObject({ result: { resultType: 'complete', cacheScope: 'private' } });
    const sid = await legacySession();
    const legacy = await post(gw.url, JSON.stringify({ jsonrpc: '2.0', id: 41, method: 'tools/list' }), {
      authorization: `Bearer ${token}`,
      'mcp-session-id': sid,
      'mcp-protocol-version': '2025-11-25',
    });
    const result = (legacy.json as { result: Record<string, unknown> }).result;
    expect(Object.keys(result)).toEqual(['tools']);
  });

  it('refuses headers that disagree with the body before anything is decided, echoing the id', async () => {
    const forged = await send(
      6,
      'tools/call',
      { name: 'fx__echo', arguments: { text: 'x' } },
      { 'mcp-name': 'fx__add' },
    );
    expect(forged.status).toBe(400);
    expect(forged.json).toEqual({ jsonrpc: '2.0', id: 6, error: { code: -32020, message: 'Header mismatch' } });
    // A Base64 header that decodes to another name is the same refusal.
    const encoded = await send(
      7,
      'tools/call',
      { name: 'fx__echo', arguments: { text: 'x' } },
      { 'mcp-name': `=?base64?${Buffer.from('fx__add').toString('base64')}?=` },
    );
    expect(encoded.json).toMatchObject({ id: 7, error: { code: -32020 } });
    const noMethod = await send(8, 'tools/list', {}, { 'mcp-method': 'tools/call' });
    expect(noMethod.json).toMatchObject({ id: 8, error: { code: -32020 } });
    const noVersionHeader = await post(
      gw.url,
      JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list', params: { _meta: META } }),
      { authorization: `Bearer ${token}`, 'mcp-method': 'tools/list' },
    );
    expect(noVersionHeader.status).toBe(400);
    expect(noVersionHeader.json).toMatchObject({ id: 9, error: { code: -32020 } });
    // Recorded as the refusal it is, with no policy decision: nothing was decided or forwarded.
    const record = await vi.waitFor(() => {
      const found = gw.logs
        .map((l) => l.audit as Record<string, unknown> | undefined)
        .find((a) => a?.type === 'mcp.request' && a.requestId === '6' && a.subject === 'alice');
      expect(found).toBeDefined();
      return found;
    });
    expect(record).toMatchObject({ outcome: 'error', errorCode: 'GW_MCP_HEADER_MISMATCH', protocolVersion: V });
    // Who it was, as on every other record: the token's client (never the token).
    expect(record?.clientId).toEqual(expect.any(String));
    expect(record?.detail).toMatch(/Mcp-Name header "fx__add" does not match the body's "fx__echo"/);
    expect(record).not.toHaveProperty('decision');
  });

  it('refuses a malformed envelope, an unknown version and removed methods with the 2026 codes', async () => {
    const noCaps = await post(
      gw.url,
      JSON.stringify({
        jsonrpc: '2.0',
        id: 10,
        method: 'tools/list',
        params: { _meta: { 'io.modelcontextprotocol/protocolVersion': V } },
      }),
      { authorization: `Bearer ${token}`, 'mcp-protocol-version': V, 'mcp-method': 'tools/list' },
    );
    expect(noCaps.status).toBe(400);
    expect(noCaps.json).toMatchObject({ id: 10, error: { code: -32602 } });
    const future = await post(
      gw.url,
      JSON.stringify({
        jsonrpc: '2.0',
        id: 11,
        method: 'tools/list',
        params: { _meta: { ...META, 'io.modelcontextprotocol/protocolVersion': '2099-01-01' } },
      }),
      { authorization: `Bearer ${token}`, 'mcp-protocol-version': '2099-01-01', 'mcp-method': 'tools/list' },
    );
    expect(future.status).toBe(400);
    expect(future.json).toMatchObject({
      id: 11,
      error: { code: -32022, data: { requested: '2099-01-01', supported: [V] } },
    });
    // An unserved version claimed under a header that names another one: the mismatch (-32020) is decided first,
    // as the conformance suite's sep-2575-http-server-header-mismatch-400 and the v2 SDK's ladder have it.
    const mismatched = await post(
      gw.url,
      JSON.stringify({
        jsonrpc: '2.0',
        id: 12,
        method: 'server/discover',
        params: { _meta: { ...META, 'io.modelcontextprotocol/protocolVersion': '2099-01-01' } },
      }),
      { authorization: `Bearer ${token}`, 'mcp-protocol-version': V, 'mcp-method': 'server/discover' },
    );
    expect(mismatched.status).toBe(400);
    expect(mismatched.json).toMatchObject({ id: 12, error: { code: -32020 } });
    for (const [i, method] of ['initialize', 'ping', 'logging/setLevel', 'resources/subscribe'].entries()) {
      const r = await send(20 + i, method, method === 'resources/subscribe' ? { uri: 'x://y' } : {});
      expect({ method, status: r.status }).toEqual({ method, status: 404 });
      expect(r.json).toMatchObject({ id: 20 + i, error: { code: -32601 } });
    }
    // A 2026 header on a body without the claim is not a 2025 request either (it would otherwise open a session).
    const unclaimed = await post(
      gw.url,
      JSON.stringify({
        jsonrpc: '2.0',
        id: 12,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
      }),
      { authorization: `Bearer ${token}`, 'mcp-protocol-version': V },
    );
    expect(unclaimed.status).toBe(400);
    expect(unclaimed.headers.get('mcp-session-id')).toBeNull();
    expect(unclaimed.json).toMatchObject({ id: 12, error: { code: -32602 } });
  });

  it('serves a 2026 request that carries a 2025 session id statelessly, as that id were absent', async () => {
    // The id is served by nobody's rules but its own generation's: a real one, and one that never existed.
    for (const sid of [await legacySession(), 'not-a-session']) {
      const r = await send(30, 'tools/list', {}, { 'mcp-session-id': sid });
      expect(r.status).toBe(200);
      expect(r.headers.get('mcp-session-id')).toBeNull();
      expect(r.json).toMatchObject({ id: 30, result: { resultType: 'complete' } });
    }
    const r = await send(31, 'tools/list', {}, { 'mcp-session-id': 'not-a-session' });
    expect(r.status).toBe(200);
    expect(r.headers.get('mcp-session-id')).toBeNull();
    expect(r.json).toMatchObject({ id: 31, result: { resultType: 'complete' } });
  });

  it('checks Mcp-Param-* headers against the arguments of a tool that marks them, after the policy', async () => {
    const querier = await gw.token({ sub: 'bob', scopes: ['ph:query'] });
    const args = { region: 'eu-central1', sql: 'select 1', options: { dryRun: true } };
    const auth = { authorization: `Bearer ${querier}` };
    const ok = await send(
      50,
      'tools/call',
      { name: 'ph__query', arguments: args },
      {
        ...auth,
        'mcp-param-region': 'eu-central1',
        'Mcp-Param-Dry-Run': 'true',
      },
    );
    expect(ok.json).toMatchObject({ id: 50, result: { content: [{ text: JSON.stringify(args) }] } });
    const missing = await send(
      51,
      'tools/call',
      { name: 'ph__query', arguments: args },
      {
        ...auth,
        'mcp-param-region': 'eu-central1',
      },
    );
    expect(missing.status).toBe(400);
    expect(missing.json).toMatchObject({ id: 51, error: { code: -32020 } });
    const other = await send(
      52,
      'tools/call',
      { name: 'ph__query', arguments: args },
      {
        ...auth,
        'mcp-param-region': 'us-west1',
        'mcp-param-dry-run': 'true',
      },
    );
    expect(other.json).toMatchObject({ id: 52, error: { code: -32020 } });
    // A principal the policy does not let call it gets the policy's answer, whatever its headers say: the check
    // cannot tell anyone the tool exists.
    const notAllowed = await send(
      53,
      'tools/call',
      { name: 'ph__query', arguments: args },
      { 'mcp-param-region': 'x' },
    );
    expect(notAllowed.status).toBe(403);
    expect(notAllowed.json).toMatchObject({ id: 53, error: { message: 'Forbidden: insufficient scope' } });
  });

  it('answers a missing resource with -32602, never the 2025 -32002 the revision forbids', async () => {
    const r = await send(60, 'resources/read', { uri: 'nothere://x' });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ id: 60, error: { code: -32602, data: { uri: 'nothere://x' } } });
  });
});
