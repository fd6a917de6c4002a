/**
 * The policy wired into a real gateway (docs/architecture.md §4): dev-mode tokens, a policy folder written here, and a
 * recording fixture upstream that shows which calls really reached it. Then the `gatehouse policy` CLI.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDACTED } from '../../src/policy/field-path.js';
import { cli, finished, killAllCli } from '../helpers/cli.js';
import {
  initializeBody,
  post,
  startGateway,
  startPolicyGateway,
  stdioFixtureYaml,
  type LogLine,
  type TestGateway,
} from '../helpers/gateway.js';
import { readRecord, toolCalls } from '../helpers/upstream-tools.js';
import { REPO_ROOT } from '../helpers/spawn-server.js';

const POLICY = `version: 1
rules:
  - id: fx.no-env
    description: Nobody reads the upstream's environment, whatever else allows it.
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
      required: [text]
      properties:
        text: { type: string, maxLength: 200, pattern: "^[A-Za-z0-9/._-]*$" }
      additionalProperties: false
      constraints:
        - { field: text, kind: noLeadingDash }
        - { field: text, kind: path, roots: [/data/ok] }
    redact: [text]

  - id: fx.add
    effect: allow
    match:
      tools: [fx__add]
    when:
      authenticated: true
      scopes: { allOf: ["fx:add"] }
    arguments:
      properties:
        a: { enum: [1, 2, 3] }
        b: { type: number }

  - id: fx.admin
    description: Only for the subject root; for everyone else this rule does not exist.
    effect: allow
    match:
      tools: ["fx__*"]
    when:
      subjects: [root]
      scopes: { allOf: ["fx:admin"] }

  - id: fx.prompts
    effect: allow
    match:
      prompts: [fx__greet]
    when:
      authenticated: true
      scopes: { allOf: ["fx:echo"] }

  - id: fx.static
    effect: allow
    match:
      resources: ["fixture://static/**"]
    when:
      authenticated: true
      scopes: { allOf: ["fx:echo"] }
`;

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-policy-gw-'));
const record = join(dir, 'record.jsonl');
let gw: TestGateway;

beforeAll(async () => {
  ({ gw } = await startPolicyGateway(dir, { 'fx.yaml': POLICY }, [
    stdioFixtureYaml('fx', { env: { FIXTURE_RECORD_FILE: record } }),
  ]));
}, 30_000);

afterAll(async () => {
  await gw?.close();
  killAllCli();
  rmSync(dir, { recursive: true, force: true });
});

const tokens = new Map<string, string>();
async function token(scopes: string[]): Promise<string> {
  const key = scopes.join(' ');
  let t = tokens.get(key);
  if (t === undefined) {
    t = await gw.token({ sub: scopes.includes('fx:admin') ? 'root' : `user-${key || 'none'}`, scopes });
    tokens.set(key, t);
  }
  return t;
}

async function sdkClient(scopes: string[]): ReturnType<TestGateway['client']> {
  return gw.client({ transport: { requestInit: { headers: { Authorization: `Bearer ${await token(scopes)}` } } } });
}

/** A raw session for wire-level checks: returns a poster that sends one JSON-RPC request on it. */
async function rawSession(
  scopes: string[],
): Promise<(method: string, params: Record<string, unknown>, id?: number) => ReturnType<typeof post>> {
  const auth = { authorization: `Bearer ${await token(scopes)}` };
  const init = await post(gw.url, initializeBody(), auth);
  const sid = init.headers.get('mcp-session-id');
  if (init.status !== 200 || sid === null) throw new Error(`initialize failed: ${init.status} ${init.text}`);
  const headers = { ...auth, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
  await post(gw.url, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), headers);
  return (method, params, id = 7) => post(gw.url, JSON.stringify({ jsonrpc: '2.0', id, method, params }), headers);
}

function audit(): Record<string, unknown>[] {
  return gw.logs.filter((l: LogLine) => l.audit !== undefined).map((l) => l.audit as Record<string, unknown>);
}

describe('listing and calling are decided by the same policy', () => {
  it('tools/list shows exactly the tools each token may call', async () => {
    const names = async (scopes: string[]): Promise<string[]> =>
      (await (await sdkClient(scopes)).listTools()).tools.map((t) => t.name).sort();
    expect(await names(['fx:echo'])).toEqual(['fx__echo']);
    expect(await names(['fx:add'])).toEqual(['fx__add']);
    expect(await names([])).toEqual([]);
    const admin = await names(['fx:admin']);
    expect(admin).toContain('fx__echo');
    expect(admin).toContain('fx__slow');
    // Deny beats allow: the admin rule covers fx__env_report, the deny rule hides it.
    expect(admin).not.toContain('fx__env_report');
  });

  it('prompts and resources are filtered the same way', async () => {
    const echo = await sdkClient(['fx:echo']);
    expect((await echo.listPrompts()).prompts.map((p) => p.name)).toEqual(['fx__greet']);
    expect((await echo.listResources()).resources.map((r) => r.uri)).toEqual(['fixture://static/hello']);
    expect((await echo.listResourceTemplates()).resourceTemplates).toEqual([]);
    const add = await sdkClient(['fx:add']);
    expect((await add.listPrompts()).prompts).toEqual([]);
    expect((await add.listResources()).resources).toEqual([]);
    // A resource of the upstream that no rule covers reads exactly like one nobody serves.
    const on = await rawSession(['fx:echo']);
    const hidden = await on('resources/read', { uri: 'fixture://items/42' });
    const missing = await on('resources/read', { uri: 'nothing://here' });
    expect(hidden.text.replace('fixture://items/42', 'URI')).toBe(missing.text.replace('nothing://here', 'URI'));
    expect((hidden.json as { error: { code: number } }).error.code).toBe(-32002);
    expect((await on('resources/read', { uri: 'fixture://static/hello' })).status).toBe(200);
    // A prompt whose rule holds for this principal but needs another scope: a step-up, as for tools.
    const stepUp = await (await rawSession(['fx:add']))('prompts/get', { name: 'fx__greet', arguments: { name: 'x' } });
    expect(stepUp.status).toBe(403);
    expect(stepUp.headers.get('www-authenticate')).toContain('scope="fx:add fx:echo"');
    const noPrompt = await on('prompts/get', { name: 'fx__nope', arguments: { name: 'x' } });
    expect(noPrompt.json).toEqual({
      jsonrpc: '2.0',
      id: 7,
      error: { code: -32602, message: 'Unknown prompt: fx__nope' },
    });
  });

  it('completion needs the prompt to be visible, and a hidden one completes like an unknown one', async () => {
    const params = (name: string): Record<string, unknown> => ({
      ref: { type: 'ref/prompt', name },
      argument: { name: 'name', value: '' },
    });
    const echo = await rawSession(['fx:echo']);
    const ok = await echo('completion/complete', params('fx__greet'));
    expect(
      (ok.json as { result?: { completion: { values: string[] } } }).result?.completion.values.length,
    ).toBeGreaterThan(0);
    const add = await rawSession(['fx:add']);
    const hidden = await add('completion/complete', params('fx__greet'));
    const missing = await add('completion/complete', params('fx__nope'));
    expect(hidden.json).toEqual({
      jsonrpc: '2.0',
      id: 7,
      error: { code: -32602, message: 'Unknown prompt: fx__greet' },
    });
    expect(hidden.text.replace('fx__greet', 'P')).toBe(missing.text.replace('fx__nope', 'P'));
  });

  it('a hidden tool answers byte for byte like a tool that does not exist', async () => {
    const call = await rawSession(['fx:echo']);
    const cases = [
      { scopes: ['fx:echo'], name: 'fx__slow' }, // no rule for this principal
      { scopes: ['fx:admin'], name: 'fx__env_report' }, // denied by rule, though an allow rule matches
    ];
    for (const c of cases) {
      const on = await rawSession(c.scopes);
      const hidden = await on('tools/call', { name: c.name, arguments: {} });
      const missing = await on('tools/call', { name: 'fx__does_not_exist', arguments: {} });
      expect(hidden.status).toBe(missing.status);
      expect(hidden.headers.get('content-type')).toBe(missing.headers.get('content-type'));
      expect(hidden.text.replace(c.name, 'NAME')).toBe(missing.text.replace('fx__does_not_exist', 'NAME'));
      expect(hidden.json).toEqual({
        jsonrpc: '2.0',
        id: 7,
        error: { code: -32602, message: `Unknown tool: ${c.name}` },
      });
    }
    await call('ping', {});
    expect(toolCalls(record, 'slow')).toEqual([]);
    expect(toolCalls(record, 'env_report')).toEqual([]);
  });

  it('a tool the principal may see with another scope answers 403 insufficient_scope naming the scopes to step up to', async () => {
    const call = await rawSession(['fx:echo']);
    const r = await call('tools/call', { name: 'fx__add', arguments: { a: 1, b: 2 } });
    expect(r.status).toBe(403);
    const challenge = r.headers.get('www-authenticate') ?? '';
    expect(challenge).toMatch(/^Bearer /);
    expect(challenge).toContain('error="insufficient_scope"');
    expect(challenge).toContain('scope="fx:echo fx:add"');
    expect(challenge).toMatch(
      /resource_metadata="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource\/mcp"/,
    );
    expect(r.json).toMatchObject({
      jsonrpc: '2.0',
      id: 7,
      error: { code: -32600, data: { requiredScopes: ['fx:add'] } },
    });
    expect(toolCalls(record, 'add')).toEqual([]);
  });
});

describe('argument constraints', () => {
  const violations: [string, string, Record<string, unknown>][] = [
    ['an enum', 'fx__add', { a: 9, b: 1 }],
    ['a pattern', 'fx__echo', { text: '/data/ok/$(id)' }],
    ['a path traversal', 'fx__echo', { text: '/data/ok/../etc/passwd' }],
    ['a relative traversal', 'fx__echo', { text: '../etc/passwd' }],
    ['the prefix bypass of the root', 'fx__echo', { text: '/data/ok_evil/x' }],
    ['an option-like argument', 'fx__echo', { text: '-rf' }],
    ['an extra argument', 'fx__echo', { text: '/data/ok/a', force: true }],
  ];

  it.each(violations)(
    '%s is refused with a generic -32602 and never reaches the upstream',
    async (_what, name, args) => {
      const call = await rawSession(['fx:echo', 'fx:add']);
      const before = readRecord(record).filter((l) => l.method === 'tools/call').length;
      const r = await call('tools/call', { name, arguments: args });
      expect(r.status).toBe(200);
      expect(r.json).toEqual({ jsonrpc: '2.0', id: 7, error: { code: -32602, message: 'Invalid params' } });
      // The violation is in the audit record only.
      const event = audit().findLast((e) => e.tool === name && e.errorCode === 'GW_MCP_INVALID_PARAMS');
      expect(event).toMatchObject({
        decision: 'deny',
        outcome: 'denied',
        detail: expect.stringMatching(/^denied invalid_arguments: rule fx\.\S+ field \/\S* constraint \S+/),
      });
      expect(r.text).not.toContain('constraint');
      await call('ping', {});
      expect(readRecord(record).filter((l) => l.method === 'tools/call').length).toBe(before);
    },
  );

  it('the detail names the constraint that failed', async () => {
    const call = await rawSession(['fx:echo']);
    await call('tools/call', { name: 'fx__echo', arguments: { text: '/data/ok_evil/x' } });
    expect(audit().findLast((e) => e.tool === 'fx__echo')?.detail).toBe(
      'denied invalid_arguments: rule fx.echo field /text constraint path:outside_roots',
    );
    await call('tools/call', { name: 'fx__echo', arguments: { text: '-rf' } });
    expect(audit().findLast((e) => e.tool === 'fx__echo')?.detail).toBe(
      'denied invalid_arguments: rule fx.echo field /text constraint noLeadingDash:leading_dash',
    );
  });

  it('an allowed call reaches the upstream; its audit record names rule and revision and redacts what the rule marks', async () => {
    const client = await sdkClient(['fx:echo', 'fx:add']);
    const secret = '/data/ok/notes/secret-plan.txt';
    const echoed = await client.callTool({ name: 'fx__echo', arguments: { text: secret } });
    expect(echoed.structuredContent).toEqual({ text: secret });
    expect(
      toolCalls(record, 'echo').some((l) => (l.params?.arguments as { text?: string } | undefined)?.text === secret),
    ).toBe(true);
    const sum = await client.callTool({ name: 'fx__add', arguments: { a: 2, b: 3 } });
    expect(sum.structuredContent).toEqual({ sum: 5 });

    const revision = gw.app.frontDoor && audit().find((e) => e.policyRevision !== undefined)?.policyRevision;
    expect(revision).toMatch(/^[0-9a-f]{12}$/);
    const echoEvent = audit().findLast((e) => e.tool === 'fx__echo' && e.outcome === 'ok');
    expect(echoEvent).toMatchObject({
      decision: 'allow',
      rule: 'fx.echo',
      policyRevision: revision,
      arguments: { text: REDACTED },
    });
    const addEvent = audit().findLast((e) => e.tool === 'fx__add' && e.outcome === 'ok');
    expect(addEvent).toMatchObject({
      decision: 'allow',
      rule: 'fx.add',
      policyRevision: revision,
      arguments: { a: 2, b: 3 },
    });
    // No audit record anywhere holds the redacted value.
    expect(JSON.stringify(audit())).not.toContain('secret-plan');
  });
});

describe('auth.mode none without a policy (loopback development)', () => {
  it('keeps allowing everything, and records no arguments since nothing says which are secret', async () => {
    await using none = await startGateway([stdioFixtureYaml('fx')]);
    const client = await none.client();
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('fx__env_report');
    await client.callTool({ name: 'fx__echo', arguments: { text: 'top secret' } });
    const event = none.logs
      .map((l) => l.audit as Record<string, unknown> | undefined)
      .find((e) => e?.tool === 'fx__echo');
    expect(event).toMatchObject({ decision: 'allow', rule: 'permit-all', policyRevision: 'permit-all', outcome: 'ok' });
    expect(event).not.toHaveProperty('arguments');
  });
});

describe('gatehouse policy', () => {
  it('policy test runs the fixtures of policies/ and exits 0', async () => {
    const r = await finished(cli(['policy', 'test', '--dir', join(REPO_ROOT, 'policies')]));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\d+ passed, 0 failed \(policy [0-9a-f]{12}\)$/m);
    expect(r.stdout).not.toMatch(/^FAIL /m);
  });

  it('policy test exits 1 and shows the mismatch when a fixture fails', async () => {
    const broken = join(dir, 'broken');
    mkdirSync(broken);
    writeFileSync(join(broken, 'fx.yaml'), POLICY);
    writeFileSync(
      join(broken, 'fx.test.yaml'),
      [
        'tests:',
        '  - name: echo is allowed',
        '    principal: { sub: a, scopes: ["fx:echo"] }',
        '    request: { method: tools/call, tool: fx__echo, args: { text: /data/ok/a } }',
        '    expect: { decision: allow, rule: fx.echo }',
        '  - name: wrongly expects env to be allowed',
        '    principal: { sub: a, scopes: ["fx:admin"] }',
        '    request: { method: tools/call, tool: fx__env_report }',
        '    expect: { decision: allow }',
        '',
      ].join('\n'),
    );
    const r = await finished(cli(['policy', 'test', '--dir', broken]));
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^PASS fx\.test\.yaml:2 echo is allowed/m);
    expect(r.stdout).toMatch(
      /^FAIL fx\.test\.yaml:6 wrongly expects env to be allowed → deny denied_by_rule, rule fx\.no-env$/m,
    );
    expect(r.stdout).toContain('expected allow, got deny');
    expect(r.stdout).toMatch(/^1 passed, 1 failed/m);
  });

  it('policy test reports a broken policy file as file:line: path: problem and exits 1', async () => {
    const bad = join(dir, 'bad');
    mkdirSync(bad);
    writeFileSync(
      join(bad, 'x.yaml'),
      'version: 1\nrules:\n  - id: x\n    effect: perhaps\n    match: { tools: [a] }\n',
    );
    const r = await finished(cli(['policy', 'test', '--dir', bad]));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(`${join(bad, 'x.yaml').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:4: /rules/0/effect: `),
    );
  });

  it('gatehouse check compiles the policy too: OK with its revision, or its problems and exit 1', async () => {
    const good = join(dir, 'check-good.yaml');
    writeFileSync(
      good,
      `server:\n  host: 127.0.0.1\nauth:\n  mode: dev\npolicy:\n  dir: ./policy\nupstreams:\n  - ${stdioFixtureYaml('fx')}\n`,
    );
    const ok = await finished(cli(['check', '--config', good]));
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/; policy [0-9a-f]{12}: 6 rules in 1 file\)\n$/);
    mkdirSync(join(dir, 'bad'), { recursive: true });
    writeFileSync(
      join(dir, 'bad', 'x.yaml'),
      'version: 1\nrules:\n  - id: x\n    effect: perhaps\n    match: { tools: [a] }\n',
    );
    const broken = join(dir, 'check-bad.yaml');
    writeFileSync(
      broken,
      `server:\n  host: 127.0.0.1\nauth:\n  mode: dev\npolicy:\n  dir: ./bad\nupstreams:\n  - ${stdioFixtureYaml('fx')}\n`,
    );
    const bad = await finished(cli(['check', '--config', broken]));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`${join(dir, 'bad', 'x.yaml')}:4: /rules/0/effect: `);
  });

  it('policy explain traces one decision, with the config the gateway uses', async () => {
    const r = await finished(
      cli([
        'policy',
        'explain',
        '--config',
        join(REPO_ROOT, 'examples/gatehouse.yaml'),
        '--sub',
        'alice',
        '--scope',
        'orders:write',
        '--tool',
        'orders__update_order_status',
        '--args',
        '{"order_id":"ord-1001","new_status":"refunded"}',
      ]),
    );
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(
      /^DENY invalid_arguments \(rule orders\.update-status\) violation: \/new_status schema:enum \(policy [0-9a-f]{12}\)$/,
    );
    expect(r.stdout).toContain('ALLOW orders.update-status');
    expect(r.stdout).toContain('scopes: satisfied');

    const allowed = await finished(
      cli([
        'policy',
        'explain',
        '--dir',
        join(REPO_ROOT, 'policies'),
        '--sub',
        'bob',
        '--scope',
        'orders:read',
        '--tool',
        'orders__get_order',
        '--args',
        '{"order_id":"ord-1001"}',
      ]),
    );
    expect(allowed.code).toBe(0);
    // orders.get-order names the decision of a get_order (exact name, listed first); orders.read grants it too.
    expect(allowed.stdout).toMatch(/^ALLOW by rule orders\.get-order /);
    expect(allowed.stdout).toContain('ALLOW orders.read');
  });
});
