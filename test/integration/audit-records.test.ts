/**
 * Audit records from a real gateway (file sink, dev-mode tokens, a policy written here, two stdio fixture
 * upstreams — `pq` pinned against an empty lock, so its tools are quarantined): every deny reason and every
 * outcome leaves exactly ONE record with the fields that say who, what, which rule and how it ended; the file's
 * chain verifies; a value that looks like a record stays inside its line.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditFiles } from '../../src/audit/verify.js';
import { emptyToolsLock } from '../../src/policy/pinning/lock-file.js';
import { writeToolsLock } from '../../src/policy/pinning/lock-io.js';
import { initializeBody, post, startGateway, stdioFixtureYaml, type TestGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/upstream-tools.js';

const POLICY = `version: 1
rules:
  - id: fx.no-env
    effect: deny
    match:
      tools: ["fx__env_*"]
  - id: fx.echo
    effect: allow
    match:
      tools: [fx__echo]
    when:
      authenticated: true
      scopes: { allOf: ["fx:echo"] }
    arguments:
      properties:
        text: { type: string, maxLength: 200 }
      additionalProperties: false
    redact: []
  - id: fx.rest
    effect: allow
    match:
      tools: [fx__hang, fx__huge, fx__env_report, pq__echo]
    when:
      authenticated: true
`;

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-audit-records-'));
const policyDir = join(dir, 'policy');
const auditFile = join(dir, 'audit.jsonl');
let gw: TestGateway;

interface Rec {
  chain: string;
  seq: number;
  audit: Record<string, unknown>;
}

beforeAll(async () => {
  mkdirSync(policyDir);
  writeFileSync(join(policyDir, 'fx.yaml'), POLICY);
  writeToolsLock(join(policyDir, 'tools.lock'), emptyToolsLock());
  gw = await startGateway(
    [
      stdioFixtureYaml('fx', { timeoutMs: 1500, maxMessageBytes: 65536 }),
      stdioFixtureYaml('pq', { pinning: 'enforce' }),
    ],
    {
      top: `auth:\n  mode: dev\npolicy:\n  dir: ${JSON.stringify(policyDir)}\naudit:\n  sink: file\n  file: ${JSON.stringify(auditFile)}\n`,
    },
  );
}, 30_000);

afterAll(async () => {
  await gw?.close();
  rmSync(dir, { recursive: true, force: true });
});

function records(): Rec[] {
  return readFileSync(auditFile, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Rec);
}

/** A raw session for `sub`: sends one request (a fresh id each time) and returns the answer and the id. */
async function session(
  sub: string,
  scopes: string[],
): Promise<{
  call: (method: string, params: Record<string, unknown>) => Promise<{ id: number; json: unknown }>;
  headers: Record<string, string>;
}> {
  const auth = { authorization: `Bearer ${await gw.token({ sub, scopes, clientId: `client-${sub}` })}` };
  const init = await post(gw.url, initializeBody(), auth);
  const sid = init.headers.get('mcp-session-id');
  if (init.status !== 200 || sid === null) throw new Error(`initialize failed: ${init.status} ${init.text}`);
  const headers = { ...auth, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
  await post(gw.url, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), headers);
  return {
    headers,
    call: async (method, params) => {
      const id = nextId++;
      const r = await post(gw.url, JSON.stringify({ jsonrpc: '2.0', id, method, params }), headers);
      return { id, json: r.json ?? r.text };
    },
  };
}
let nextId = 1000;

/** The one mcp.request record of this request (fails unless there is exactly one). */
async function theRecord(sub: string, id: number): Promise<Record<string, unknown>> {
  const found = await waitFor(`record of ${sub} #${id}`, () => {
    const r = records().filter(
      (x) => x.audit.type === 'mcp.request' && x.audit.subject === sub && x.audit.requestId === String(id),
    );
    return r.length > 0 ? r : undefined;
  });
  await new Promise((r) => setTimeout(r, 100)); // a second record would have been written by now
  expect(
    records().filter(
      (x) => x.audit.type === 'mcp.request' && x.audit.subject === sub && x.audit.requestId === String(id),
    ),
  ).toHaveLength(1);
  return found[0]!.audit;
}

describe('one record per decision and outcome', () => {
  const common = (sub: string) => ({
    type: 'mcp.request',
    subject: sub,
    clientId: `client-${sub}`,
    method: 'tools/call',
    session: expect.any(String) as unknown,
    durationMs: expect.any(Number) as unknown,
  });

  it.each([
    [
      'no_matching_rule',
      'fx__add',
      { a: 1, b: 2 },
      ['fx:echo'],
      {
        decision: 'deny',
        reason: 'no_matching_rule',
        outcome: 'denied',
        errorCode: 'GW_MCP_TOOL_UNKNOWN',
        upstream: 'fx',
      },
    ],
    [
      'denied_by_rule',
      'fx__env_report',
      {},
      ['fx:echo'],
      {
        decision: 'deny',
        reason: 'denied_by_rule',
        rule: 'fx.no-env',
        outcome: 'denied',
        errorCode: 'GW_MCP_TOOL_UNKNOWN',
      },
    ],
    [
      'insufficient_scope',
      'fx__echo',
      { text: 'hi' },
      [],
      {
        decision: 'deny',
        reason: 'insufficient_scope',
        rule: 'fx.echo',
        outcome: 'denied',
        errorCode: 'GW_AUTH_INSUFFICIENT_SCOPE',
      },
    ],
    [
      'invalid_arguments',
      'fx__echo',
      { text: 'hi', extra: 1 },
      ['fx:echo'],
      {
        decision: 'deny',
        reason: 'invalid_arguments',
        rule: 'fx.echo',
        outcome: 'denied',
        errorCode: 'GW_MCP_INVALID_PARAMS',
      },
    ],
    [
      'quarantined',
      'pq__echo',
      { text: 'hi' },
      ['fx:echo'],
      { decision: 'deny', reason: 'quarantined', outcome: 'denied', errorCode: 'GW_MCP_TOOL_UNKNOWN', upstream: 'pq' },
    ],
    [
      'unknown tool',
      'fx__nope',
      {},
      ['fx:echo'],
      {
        decision: 'deny',
        reason: 'unknown_tool',
        outcome: 'denied',
        errorCode: 'GW_MCP_TOOL_UNKNOWN',
        tool: 'fx__nope',
      },
    ],
  ] as const)('deny %s', async (label, tool, args, scopes, expected) => {
    const sub = `deny-${label.replace(/ /g, '-')}`;
    const s = await session(sub, [...scopes]);
    const { id } = await s.call('tools/call', { name: tool, arguments: args });
    const rec = await theRecord(sub, id);
    expect(rec).toMatchObject({ ...common(sub), tool, ...expected });
    if (expected.decision === 'deny' && label !== 'unknown tool')
      expect(rec.policyRevision).toEqual(expect.any(String));
    expect(rec).not.toHaveProperty('arguments'); // denied calls: the arguments as sent are never recorded
  });

  it('ok: an allowed call names rule, revision, upstream, the (redacted) arguments and its duration', async () => {
    const s = await session('out-ok', ['fx:echo']);
    const { id } = await s.call('tools/call', { name: 'fx__echo', arguments: { text: 'hello' } });
    expect(await theRecord('out-ok', id)).toMatchObject({
      ...common('out-ok'),
      tool: 'fx__echo',
      upstream: 'fx',
      decision: 'allow',
      rule: 'fx.echo',
      policyRevision: expect.any(String) as unknown,
      outcome: 'ok',
      arguments: { text: 'hello' },
    });
  });

  it('error: an upstream answer that is too large', async () => {
    const s = await session('out-error', []);
    const { id } = await s.call('tools/call', { name: 'fx__huge', arguments: { bytes: 200_000 } });
    expect(await theRecord('out-error', id)).toMatchObject({
      ...common('out-error'),
      decision: 'allow',
      rule: 'fx.rest',
      outcome: 'error',
      errorCode: 'GW_UPSTREAM_RESPONSE_TOO_LARGE',
    });
  });

  it('upstream timeout', async () => {
    const s = await session('out-timeout', []);
    const { id } = await s.call('tools/call', { name: 'fx__hang', arguments: {} });
    const rec = await theRecord('out-timeout', id);
    expect(rec).toMatchObject({
      ...common('out-timeout'),
      decision: 'allow',
      outcome: 'error',
      errorCode: 'GW_UPSTREAM_TIMEOUT',
    });
    expect(rec.durationMs as number).toBeGreaterThanOrEqual(1400);
  });

  it('cancelled by the client', async () => {
    const s = await session('out-cancel', []);
    const pending = s.call('tools/call', { name: 'fx__hang', arguments: {} });
    const id = nextId - 1;
    await new Promise((r) => setTimeout(r, 300));
    await post(
      gw.url,
      JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: 'test' } }),
      s.headers,
    );
    await pending;
    expect(await theRecord('out-cancel', id)).toMatchObject({
      ...common('out-cancel'),
      outcome: 'cancelled',
      errorCode: 'GW_MCP_REQUEST_CANCELLED',
    });
  });

  it('a session deleted while its call is in flight: the call ends with ONE cancelled record', async () => {
    const s = await session('out-closed', []);
    const pending = s.call('tools/call', { name: 'fx__hang', arguments: {} });
    const id = nextId - 1;
    await new Promise((r) => setTimeout(r, 300));
    const del = await fetch(gw.url, { method: 'DELETE', headers: s.headers });
    expect(del.status).toBeLessThan(300);
    await pending;
    expect(await theRecord('out-closed', id)).toMatchObject({
      ...common('out-closed'),
      outcome: 'cancelled',
      errorCode: 'GW_MCP_REQUEST_CANCELLED',
    });
    // The session's own close record says who, like every other record.
    const closes = records().filter(
      (x) => x.audit.type === 'mcp.session' && x.audit.subject === 'out-closed' && x.audit.method === 'close',
    );
    expect(closes).toHaveLength(1);
    expect(closes[0]!.audit).toMatchObject({
      clientId: 'client-out-closed',
      session: expect.any(String) as unknown,
      detail: 'deleted by client',
    });
  });

  it('a refused initialize leaves one mcp.session record with its error code', async () => {
    const auth = {
      authorization: `Bearer ${await gw.token({ sub: 'bad-init', scopes: [], clientId: 'client-bad-init' })}`,
    };
    const r = await post(
      gw.url,
      JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { capabilities: {} } }),
      auth,
    );
    expect(r.json).toMatchObject({ error: { code: -32602 } });
    const found = await waitFor('initialize record', () => {
      const x = records().filter((rec) => rec.audit.type === 'mcp.session' && rec.audit.subject === 'bad-init');
      return x.length > 0 ? x : undefined;
    });
    await new Promise((res) => setTimeout(res, 100));
    expect(
      records().filter((rec) => rec.audit.type === 'mcp.session' && rec.audit.subject === 'bad-init'),
    ).toHaveLength(1);
    expect(found[0]!.audit).toMatchObject({
      method: 'initialize',
      outcome: 'error',
      errorCode: 'GW_MCP_INVALID_PARAMS',
      clientId: 'client-bad-init',
    });
  });

  it('durations are sub-millisecond (the 0.5 ms histogram bucket needs them), from a monotonic clock', async () => {
    const s = await session('fast-deny', []);
    const durations: number[] = [];
    for (let i = 0; i < 6; i++) {
      const { id } = await s.call('tools/call', { name: 'fx__nope', arguments: {} });
      durations.push((await theRecord('fast-deny', id)).durationMs as number);
    }
    for (const d of durations) expect(d).toBeGreaterThanOrEqual(0);
    // Whole milliseconds (Date.now()) would make every one an integer; 0.01 ms steps almost never are, six times over.
    expect(durations.some((d) => !Number.isInteger(d))).toBe(true);
    for (const d of durations) expect(Math.round(d * 100) / 100).toBe(d);
  });

  it("the session field is the session id's jti, never the Mcp-Session-Id (a bearer-like JWE)", async () => {
    const s = await session('sess-field', ['fx:echo']);
    const { id } = await s.call('tools/call', { name: 'fx__echo', arguments: { text: 'x' } });
    const rec = await theRecord('sess-field', id);
    const sid = s.headers['mcp-session-id']!;
    expect(rec.session).toEqual(expect.any(String));
    expect(rec.session).not.toBe(sid);
    expect((rec.session as string).length).toBeLessThanOrEqual(64);
    expect(readFileSync(auditFile, 'utf8')).not.toContain(sid);
  });

  it('keeps a value shaped like a record inside its own line, and the file verifies', async () => {
    const s = await session('forger', ['fx:echo']);
    const forged = 'x\n{"stream":"audit","audit":{"type":"mcp.request","decision":"allow"}}\n"}';
    const before = readFileSync(auditFile, 'utf8').split('\n').length;
    const { id } = await s.call('tools/call', { name: 'fx__echo', arguments: { text: forged } });
    const rec = await theRecord('forger', id);
    expect((rec.arguments as { text: string }).text).toBe(forged);
    const text = readFileSync(auditFile, 'utf8');
    // Every line parses as a record of this chain; the forged text added no line of its own.
    const ls = text.trim().split('\n');
    expect(ls.some((l) => l.startsWith('{"stream":"audit","audit":{"type":"mcp.request","decision":"allow"}}'))).toBe(
      false,
    );
    for (const l of ls) expect(JSON.parse(l)).toHaveProperty('hash');
    expect(ls.length).toBeGreaterThan(before - 1);
    expect(verifyAuditFiles([auditFile])).toMatchObject({ ok: true });
    expect(records()[0]!.audit).toMatchObject({ type: 'chain.start' });
  });
});
