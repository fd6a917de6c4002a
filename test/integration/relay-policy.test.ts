/**
 * Requests an upstream sends the client (sampling, elicitation, roots) are a policy decision (threat model #19):
 * a real gateway in dev auth with a policy folder, the recording stdio fixture upstream, and official SDK clients
 * that declare every capability. Denied by default: the upstream gets a JSON-RPC error at once and the client
 * never sees the request; allowed by a rule: relayed as before. Either way one `mcp.relay` audit record names
 * the decision, the rule and the policy revision. Then server-everything and the example policy set: the gateway
 * declares to an upstream only the capabilities the policy could let it use.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  type CallToolResult,
} from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cli, finished, killAllCli } from '../helpers/cli.js';
import {
  everythingStdioYaml,
  startGateway,
  startPolicyGateway,
  stdioFixtureYaml,
  type LogLine,
  type TestGateway,
} from '../helpers/gateway.js';
import { readRecord } from '../helpers/upstream-tools.js';
import { REPO_ROOT } from '../helpers/spawn-server.js';

const POLICY = `version: 1
rules:
  - id: fx.tools
    effect: allow
    match: { tools: ["fx__*"] }
    when: { authenticated: true }

  - id: fx.sampling
    description: fx may ask for sampling, only for callers holding fx:sample.
    effect: allow
    match: { upstreams: [fx], requests: [sampling/createMessage] }
    when: { authenticated: true, scopes: { allOf: ["fx:sample"] } }

  - id: fx.forms
    effect: allow
    match: { upstreams: [fx], requests: [elicitation/create:form] }
    when: { authenticated: true, scopes: { allOf: ["fx:forms"] } }
`;

const ALL_CAPABILITIES = { sampling: {}, elicitation: { form: {}, url: {} }, roots: { listChanged: true } };

type RecordEntry = Record<string, unknown> & { method?: string; event?: string };

function textOf(r: unknown): string {
  const first = (r as CallToolResult).content[0];
  return first?.type === 'text' ? first.text : JSON.stringify(first);
}

/** Answers sampling, elicitation and roots, and notes every server→client request that reaches the client. */
function answerEverything(client: Client): string[] {
  const seen: string[] = [];
  client.setRequestHandler(CreateMessageRequestSchema, async () => {
    seen.push('sampling/createMessage');
    return { model: 'test-model', role: 'assistant', content: { type: 'text', text: 'sampled text' } };
  });
  client.setRequestHandler(ElicitRequestSchema, async () => {
    seen.push('elicitation/create');
    return { action: 'accept', content: { answer: 'secret answer' } };
  });
  client.setRequestHandler(ListRootsRequestSchema, async () => {
    seen.push('roots/list');
    return { roots: [{ uri: 'file:///home/alice/secret-project', name: 'secret' }] };
  });
  client.fallbackRequestHandler = async (request) => {
    seen.push(request.method);
    throw new Error('unexpected request');
  };
  return seen;
}

describe('the policy decides what an upstream may ask the client', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-relay-policy-'));
  const record = join(dir, 'record.jsonl');
  let gw: TestGateway;
  let policyDir: string;

  beforeAll(async () => {
    ({ gw, policyDir } = await startPolicyGateway(dir, { 'fx.yaml': POLICY }, [
      stdioFixtureYaml('fx', { env: { FIXTURE_RECORD_FILE: record } }),
    ]));
  }, 30_000);

  afterAll(async () => {
    await gw?.close();
    killAllCli();
    rmSync(dir, { recursive: true, force: true });
  });

  async function client(sub: string, scopes: string[]): Promise<Client> {
    const token = await gw.token({ sub, scopes });
    return gw.client({
      capabilities: ALL_CAPABILITIES,
      transport: { requestInit: { headers: { Authorization: `Bearer ${token}` } } },
    });
  }

  function relayRecords(subject: string): Record<string, unknown>[] {
    return gw.logs
      .filter((l: LogLine) => (l.audit as { type?: string } | undefined)?.type === 'mcp.relay')
      .map((l) => l.audit as Record<string, unknown>)
      .filter((a) => a.subject === subject);
  }

  it('denied: the upstream gets -32601 at once, the client never sees the request, the audit names the deny', async () => {
    const alice = await client('alice', []);
    const seen = answerEverything(alice);
    // roots/list: no rule names it (default deny); the gateway never declared roots to fx, which asks anyway.
    // elicitation: fx.forms applies, but alice lacks fx:forms.
    const cases = [
      ['fx__roots', {}, 'roots/list failed', 'roots/list', 'no_matching_rule', ''],
      [
        'fx__elicit',
        { message: 'what is your password?' },
        'elicitation failed',
        'elicitation/create:form',
        'insufficient_scope',
        'fx.forms',
      ],
    ] as const;
    for (const [tool, args, failed] of cases) {
      const r = (await alice.callTool({ name: tool, arguments: args })) as CallToolResult;
      // The fixture turns the gateway's JSON-RPC error into its own isError result, quoting code and message.
      expect(r.isError).toBe(true);
      expect(textOf(r)).toMatch(new RegExp(`^${failed}: .*-32601.*Client does not support this request`));
      // Nothing of the policy reaches the upstream.
      expect(textOf(r)).not.toMatch(/rule|polic|denied|no_matching/i);
    }
    expect(seen).toEqual([]);
    const records = relayRecords('alice');
    expect(records).toHaveLength(2);
    for (const [i, [, , , relay, reason, rule]] of cases.entries()) {
      expect(records[i]).toMatchObject({
        type: 'mcp.relay',
        upstream: 'fx',
        relay,
        decision: 'deny',
        reason,
        rule,
        outcome: 'denied',
        errorCode: 'GW_RELAY_DENIED',
        policyRevision: gw.app.frontDoor['opts'].policy.revision,
      });
      expect(typeof records[i]!.session).toBe('string');
    }
  });

  it('a rule that applies but a scope the caller lacks: denied too, insufficient_scope in the audit only', async () => {
    const bob = await client('bob', []);
    const seen = answerEverything(bob);
    const r = (await bob.callTool({
      name: 'fx__sample',
      arguments: { prompt: 'spend their budget' },
    })) as CallToolResult;
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/^sampling failed: .*-32601.*Client does not support this request/);
    expect(seen).toEqual([]);
    expect(relayRecords('bob')).toEqual([
      expect.objectContaining({
        method: 'sampling/createMessage',
        decision: 'deny',
        reason: 'insufficient_scope',
        rule: 'fx.sampling',
        outcome: 'denied',
        errorCode: 'GW_RELAY_DENIED',
      }),
    ]);
    expect(relayRecords('bob')[0]!.detail).toBe(
      'fx: sampling/createMessage denied insufficient_scope by rule fx.sampling: needs fx:sample',
    );
  });

  it('allowed by a rule: relayed to the client as before, and the audit records the allow and the outcome', async () => {
    const carol = await client('carol', ['fx:sample']);
    const seen = answerEverything(carol);
    const r = await carol.callTool({ name: 'fx__sample', arguments: { prompt: 'hello' } });
    expect(textOf(r)).toBe('sampled: sampled text');
    expect(seen).toEqual(['sampling/createMessage']);
    const [event] = relayRecords('carol');
    expect(event).toMatchObject({
      type: 'mcp.relay',
      upstream: 'fx',
      method: 'sampling/createMessage',
      relay: 'sampling/createMessage',
      decision: 'allow',
      rule: 'fx.sampling',
      outcome: 'ok',
    });
    expect(event!.policyRevision).toMatch(/^[0-9a-f]{12}$/);
    // What the client answered is not in the record.
    expect(JSON.stringify(event)).not.toContain('sampled text');
    // fx:sample grants sampling only: the same caller's elicitation is still refused.
    const refused = (await carol.callTool({
      name: 'fx__elicit',
      arguments: { message: 'and your name?' },
    })) as CallToolResult;
    expect(textOf(refused)).toMatch(/^elicitation failed: .*-32601.*Client does not support this request/);
    expect(seen).toEqual(['sampling/createMessage']);
    const dave = await client('dave', ['fx:forms']);
    const daveSeen = answerEverything(dave);
    expect(textOf(await dave.callTool({ name: 'fx__elicit', arguments: { message: 'favourite colour?' } }))).toBe(
      'elicited: accept secret answer',
    );
    expect(daveSeen).toEqual(['elicitation/create']);
    expect(relayRecords('dave')).toEqual([
      expect.objectContaining({ relay: 'elicitation/create:form', decision: 'allow', rule: 'fx.forms', outcome: 'ok' }),
    ]);
  });

  it('allowed by the policy but not declared by the client: still never sent, and the audit says why', async () => {
    const token = await gw.token({ sub: 'erin', scopes: ['fx:sample'] });
    const erin = await gw.client({ transport: { requestInit: { headers: { Authorization: `Bearer ${token}` } } } });
    // The SDK registers no handler for a capability the client did not declare: any request lands here.
    const seen: string[] = [];
    erin.fallbackRequestHandler = async (request) => {
      seen.push(request.method);
      throw new Error('unexpected request');
    };
    const r = (await erin.callTool({ name: 'fx__sample', arguments: { prompt: 'hello' } })) as CallToolResult;
    expect(textOf(r)).toMatch(/^sampling failed: .*-32601.*Client does not support this request/);
    expect(seen).toEqual([]);
    expect(relayRecords('erin')).toEqual([
      expect.objectContaining({
        decision: 'allow',
        rule: 'fx.sampling',
        outcome: 'error',
        errorCode: 'GW_RELAY_CAPABILITY_MISSING',
      }),
    ]);
  });

  it('the fixture upstream was declared only what the policy could allow from it: sampling and forms, not roots or URLs', () => {
    const init = readRecord<RecordEntry & { params?: { capabilities?: unknown } }>(record).find(
      (e) => e.method === 'initialize',
    );
    expect(init?.params?.capabilities).toEqual({ sampling: {}, elicitation: { form: {} } });
  });

  it('policy explain shows a request decision rule by rule', async () => {
    // Two CLI processes (tsx) at once: on a loaded machine each takes many seconds to start.
    const [r, url] = await Promise.all([
      finished(
        cli([
          'policy',
          'explain',
          '--dir',
          policyDir,
          '--sub',
          'bob',
          '--request',
          'sampling/createMessage',
          '--upstream',
          'fx',
        ]),
        80_000,
      ),
      finished(
        cli([
          'policy',
          'explain',
          '--dir',
          join(REPO_ROOT, 'policies'),
          '--sub',
          'alice',
          '--scope',
          'everything:use',
          '--request',
          'elicitation/create',
          '--mode',
          'url',
          '--upstream',
          'everything',
        ]),
        80_000,
      ),
    ]);
    expect([r.code, url.code]).toEqual([0, 0]);
    expect(r.stdout).toMatch(
      /^DENY insufficient_scope \(rule fx\.sampling\) requires scopes: fx:sample \(policy [0-9a-f]{12}\)/,
    );
    expect(url.stdout).toMatch(/^DENY denied_by_rule \(rule client-requests\.no-url-elicitation\)/);
  }, 90_000);
});

describe('server-everything under the example policy set', () => {
  let gw: TestGateway;
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-relay-everything-'));

  afterAll(async () => {
    await gw?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  beforeAll(async () => {
    gw = await startGateway([everythingStdioYaml('everything')], {
      top: `auth:\n  mode: dev\npolicy:\n  dir: ${JSON.stringify(join(REPO_ROOT, 'policies'))}\n`,
    });
  }, 30_000);

  it('is declared sampling, form elicitation and roots, not URL elicitation: its URL demo never exists', async () => {
    // server-everything registers its demos only for a client that declares the capability behind each.
    await vi.waitFor(
      () => expect(gw.app.router.catalogue.tools.has('everything__trigger-sampling-request')).toBe(true),
      { timeout: 10_000, interval: 50 },
    );
    const names = [...gw.app.router.catalogue.tools.keys()];
    expect(names).toEqual(
      expect.arrayContaining(['everything__trigger-elicitation-request', 'everything__get-roots-list']),
    );
    expect(names).not.toContain('everything__trigger-url-elicitation');
  });

  it('relays its sampling demo to an everything:use caller, and audits the allow', async () => {
    const token = await gw.token({ sub: 'alice', scopes: ['everything:use'] });
    const alice = await gw.client({
      capabilities: ALL_CAPABILITIES,
      transport: { requestInit: { headers: { Authorization: `Bearer ${token}` } } },
    });
    const seen = answerEverything(alice);
    const r = (await alice.callTool({
      name: 'everything__trigger-sampling-request',
      arguments: { prompt: 'a haiku', maxTokens: 20 },
    })) as CallToolResult;
    expect(r.isError).not.toBe(true);
    expect(JSON.stringify(r.content)).toContain('sampled text');
    expect(seen).toContain('sampling/createMessage');
    const event = gw.logs
      .map((l) => l.audit as Record<string, unknown> | undefined)
      .find((a) => a?.type === 'mcp.relay' && a.subject === 'alice' && a.relay === 'sampling/createMessage');
    expect(event).toMatchObject({
      decision: 'allow',
      rule: 'everything.asks-client',
      outcome: 'ok',
      upstream: 'everything',
    });
  });
});
