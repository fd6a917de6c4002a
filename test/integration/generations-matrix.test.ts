/**
 * One authorisation for both protocol generations (docs/protocol-2026-07-28.md; docs/architecture.md §11 "Same
 * authorisation on every path"). Another MCP gateway once skipped its scope checks for an older protocol version; here
 * every case of the policy, rate-limit, audit and secret-redaction suites runs as a 2025-11-25 session request and as a
 * 2026-07-28 stateless request against one real gateway, and both must end the same way: the same answer (in each
 * generation's format), the same decision in the audit record, the same redaction. A case that passes in one
 * generation and not the other fails here.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { post, rawSession, startGateway, stdioFixtureYaml, type TestGateway } from '../helpers/gateway.js';
import { openListen } from '../helpers/listen.js';
import { REPO_ROOT } from '../helpers/spawn-server.js';

const LEAKY = join(REPO_ROOT, 'test/fixtures/servers/leaky.ts');
const KEY = 'matrix-canary-7Hk2Zp0wQ';

const POLICY = `version: 1
rules:
  - id: fx.no-env
    effect: deny
    match: { tools: ["fx__env_*"] }
  - id: fx.echo
    effect: allow
    match: { tools: [fx__echo] }
    when: { scopes: { allOf: ["fx:echo"] } }
    arguments:
      properties:
        text: { type: string, maxLength: 16 }
      additionalProperties: false
    redact: [text]
  - id: fx.add
    effect: allow
    match: { tools: [fx__add] }
    when: { scopes: { allOf: ["fx:add"] } }
    limits:
      rate: { perMinute: 2, burst: 2 }
  - id: lk.leak
    effect: allow
    match: { tools: [lk__leak] }
    when: { scopes: { allOf: ["fx:echo"] } }
`;

type Generation = '2025-11-25' | '2026-07-28';
const GENERATIONS: readonly Generation[] = ['2025-11-25', '2026-07-28'];

interface Outcome {
  status: number;
  challenge: string | null;
  /** The JSON-RPC error code, or 'ok'. */
  answer: number | 'ok';
  text: string;
  record: Record<string, unknown> | undefined;
}

describe('the same decisions in both protocol generations', () => {
  let dir: string;
  let gw: TestGateway;
  const tokens = new Map<string, string>();
  const sessions = new Map<string, string>();
  let nextId = 1;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-matrix-'));
    const policyDir = join(dir, 'policy');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(policyDir);
    writeFileSync(join(policyDir, 'matrix.yaml'), POLICY);
    gw = await startGateway(
      [
        stdioFixtureYaml('fx'),
        stdioFixtureYaml('lk', {
          args: ['--import', 'tsx', LEAKY, '--stdio'],
          env: { LEAKY_KEY: { fromEnv: 'MATRIX_KEY' } },
        }),
      ],
      {
        top: `auth:\n  mode: dev\npolicy:\n  dir: ${JSON.stringify(policyDir)}\n`,
        env: { ...process.env, MATRIX_KEY: KEY },
      },
    );
  }, 60_000);

  afterAll(async () => {
    await gw?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A token per (subject, scopes); subjects differ per generation so that rate budgets do not mix. */
  async function tokenFor(sub: string, scopes: string[]): Promise<string> {
    const k = `${sub}|${scopes.join(' ')}`;
    if (!tokens.has(k)) tokens.set(k, await gw.token({ sub, scopes }));
    return tokens.get(k)!;
  }

  async function sessionFor(token: string): Promise<string> {
    if (!sessions.has(token))
      sessions.set(token, await rawSession(gw.url, '2025-11-25', {}, { authorization: `Bearer ${token}` }));
    return sessions.get(token)!;
  }

  async function call(
    generation: Generation,
    sub: string,
    scopes: string[],
    name: string,
    args: Record<string, unknown>,
  ): Promise<Outcome> {
    const token = await tokenFor(`${sub}-${generation}`, scopes);
    const id = nextId++;
    const params: Record<string, unknown> = { name, arguments: args };
    let headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (generation === '2026-07-28') {
      params._meta = {
        'io.modelcontextprotocol/protocolVersion': generation,
        'io.modelcontextprotocol/clientCapabilities': {},
      };
      headers = { ...headers, 'mcp-protocol-version': generation, 'mcp-method': 'tools/call', 'mcp-name': name };
    } else {
      headers = { ...headers, 'mcp-session-id': await sessionFor(token), 'mcp-protocol-version': generation };
    }
    const r = await post(gw.url, JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params }), headers);
    const json = r.json as { error?: { code: number }; result?: unknown } | undefined;
    const record = await vi.waitFor(() => {
      const found = gw.logs
        .map((l) => l.audit as Record<string, unknown> | undefined)
        .find((a) => a?.type === 'mcp.request' && a.requestId === String(id) && a.protocolVersion === generation);
      expect(found).toBeDefined();
      return found;
    });
    return {
      status: r.status,
      challenge: r.headers.get('www-authenticate'),
      answer: json?.error !== undefined ? json.error.code : 'ok',
      text: r.text,
      record,
    };
  }

  /** The parts of an outcome that must not depend on the generation. */
  function decided(o: Outcome): Record<string, unknown> {
    const r = o.record ?? {};
    return {
      status: o.status,
      challenge: o.challenge,
      answer: o.answer,
      decision: r.decision,
      rule: r.rule,
      reason: r.reason,
      outcome: r.outcome,
      errorCode: r.errorCode,
      arguments: r.arguments,
    };
  }

  const CASES: [string, string[], string, Record<string, unknown>, Record<string, unknown>][] = [
    [
      'allowed, arguments recorded redacted',
      ['fx:echo'],
      'fx__echo',
      { text: 'hi' },
      { answer: 'ok', rule: 'fx.echo' },
    ],
    ['denied by a deny rule, answered as unknown', ['fx:echo'], 'fx__env_report', {}, { reason: 'denied_by_rule' }],
    ['no rule allows it, answered as unknown', ['fx:echo'], 'fx__slow', { ms: 1 }, { reason: 'no_matching_rule' }],
    ['insufficient scope, the same 403 challenge', [], 'fx__echo', { text: 'hi' }, { reason: 'insufficient_scope' }],
    ['invalid arguments', ['fx:echo'], 'fx__echo', { text: 'x'.repeat(40) }, { reason: 'invalid_arguments' }],
    ['unknown tool', ['fx:echo'], 'fx__nope', {}, { reason: 'unknown_tool' }],
  ];

  it.each(CASES)('%s', async (_label, scopes, name, args, expected) => {
    const [a, b] = await Promise.all(GENERATIONS.map((g) => call(g, `case-${nextId}`, scopes, name, args)));
    expect(decided(a!)).toMatchObject(expected);
    expect(decided(b!)).toEqual(decided(a!));
  });

  it('applies the same rate budget per principal (each generation its own subject here)', async () => {
    for (const g of GENERATIONS) {
      const outcomes: (number | 'ok')[] = [];
      for (let i = 0; i < 3; i++)
        outcomes.push((await call(g, 'budget', ['fx:add'], 'fx__add', { a: 1, b: 2 })).answer);
      expect({ g, outcomes }).toEqual({ g, outcomes: ['ok', 'ok', -31000] });
    }
  });

  it('redacts a known upstream secret from the reply in both', async () => {
    for (const g of GENERATIONS) {
      const o = await call(g, 'leak', ['fx:echo'], 'lk__leak', {});
      expect(o.answer).toBe('ok');
      expect(o.text).toContain('[REDACTED]');
      expect(o.text).not.toContain(KEY);
    }
  });

  it('refuses the same resource subscription: 2025 resources/subscribe and 2026 subscriptions/listen', async () => {
    // No rule of this policy names a resource: default deny, in both generations, by the same decide.
    const uri = 'fixture://static/hello';
    const token = await tokenFor('subs-2025', ['fx:echo']);
    const r = await post(
      gw.url,
      JSON.stringify({ jsonrpc: '2.0', id: 9100, method: 'resources/subscribe', params: { uri } }),
      {
        authorization: `Bearer ${token}`,
        'mcp-session-id': await sessionFor(token),
        'mcp-protocol-version': '2025-11-25',
      },
    );
    expect((r.json as { error?: { code: number } }).error?.code).toBe(-32002);
    const legacy = await vi.waitFor(() => {
      const found = gw.logs
        .map((l) => l.audit as Record<string, unknown> | undefined)
        .find((a) => a?.type === 'mcp.request' && a.requestId === '9100');
      expect(found).toBeDefined();
      return found!;
    });
    expect(legacy).toMatchObject({ decision: 'deny', reason: 'no_matching_rule', resource: uri });
    // 2026: the URI is simply left out of the acknowledgement (never named as refused); the record says why.
    const s = await openListen(gw.url, await tokenFor('subs-2026', ['fx:echo']), 9101, {
      resourceSubscriptions: [uri],
    });
    const ack = await s.next();
    expect(ack).toMatchObject({ method: 'notifications/subscriptions/acknowledged', params: { notifications: {} } });
    s.close();
    await vi.waitFor(() => {
      const found = gw.logs
        .map((l) => l.audit as Record<string, unknown> | undefined)
        .find((a) => a?.method === 'subscriptions/listen' && a.requestId === '9101');
      expect(found?.detail).toEqual(expect.stringContaining(`${uri} (denied ${String(legacy.reason)})`));
    });
  });

  it('relays an upstream log message to a 2026 request only at or above the level its _meta asked for', async () => {
    const token = await tokenFor('logs-2026', ['fx:echo']);
    const leak = async (id: number, logLevel?: string): Promise<string> => {
      const meta: Record<string, unknown> = {
        'io.modelcontextprotocol/protocolVersion': '2026-07-28',
        'io.modelcontextprotocol/clientCapabilities': {},
      };
      if (logLevel !== undefined) meta['io.modelcontextprotocol/logLevel'] = logLevel;
      const r = await post(
        gw.url,
        JSON.stringify({
          jsonrpc: '2.0',
          id,
          method: 'tools/call',
          params: { name: 'lk__leak', arguments: {}, _meta: meta },
        }),
        {
          authorization: `Bearer ${token}`,
          'mcp-protocol-version': '2026-07-28',
          'mcp-method': 'tools/call',
          'mcp-name': 'lk__leak',
        },
      );
      expect(r.status).toBe(200);
      return r.text;
    };
    // The fixture logs at `info` during the call: relayed (redacted, named by upstream) when asked for `info`...
    const asked = await leak(9001, 'info');
    expect(asked).toContain('"method":"notifications/message"');
    expect(asked).toContain('"logger":"lk/leaky"');
    expect(asked).not.toContain(KEY);
    // ...and never above the level asked for, nor when no level was asked for (server/utilities/logging).
    expect(await leak(9002, 'error')).not.toContain('notifications/message');
    expect(await leak(9003)).not.toContain('notifications/message');
  });
});
