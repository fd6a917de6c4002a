/**
 * Multi round-trip requests across generations (MCP 2026-07-28 basic/patterns/mrtr; docs/protocol-2026-07-28.md §2.9,
 * §3): a 2025 upstream that asks its client mid-call (elicitation, sampling) serves a 2026 client through an
 * `InputRequiredResult` and a retry, with the gateway's sealed `requestState` bound to the principal and the request.
 * Real gateway on port 0, the real stdio fixture upstream (SDK 1.x), raw HTTP as the 2026 client.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { post, startPolicyGateway, stdioFixtureYaml, type TestGateway } from '../helpers/gateway.js';

const POLICY = `version: 1
rules:
  - id: fx.tools
    effect: allow
    match: { tools: ["fx__*"] }
    when: { authenticated: true }
  - id: fx.forms
    effect: allow
    match: { upstreams: [fx], requests: [elicitation/create:form] }
    when: { authenticated: true, scopes: { allOf: ["fx:forms"] } }
  - id: fx.sampling
    effect: allow
    match: { upstreams: [fx], requests: [sampling/createMessage] }
    when: { authenticated: true, scopes: { allOf: ["fx:sample"] } }
`;

const V = '2026-07-28';
const FORMS = { elicitation: { form: {} } };

interface RpcReply {
  id?: unknown;
  result?: Record<string, unknown> & {
    resultType?: string;
    inputRequests?: Record<string, { method: string; params?: Record<string, unknown> }>;
    requestState?: string;
    content?: { type: string; text?: string }[];
    isError?: boolean;
  };
  error?: { code: number; message: string; data?: unknown };
}

/** The JSON-RPC response of a reply, whether it came as JSON or as the last event of an SSE stream. */
function responseOf(r: { text: string; json: unknown }): RpcReply {
  if (r.json !== undefined) return r.json as RpcReply;
  const events = r.text
    .split('\n')
    .filter((l) => l.startsWith('data: '))
    .map((l) => JSON.parse(l.slice(6)) as RpcReply & { method?: string });
  const response = events.find((e) => e.method === undefined);
  if (response === undefined) throw new Error(`no response in ${r.text}`);
  return response;
}

describe('input-required results (2026-07-28) over a 2025 upstream that asks mid-call', () => {
  let dir: string;
  let gw: TestGateway;
  let alice: string;
  let bob: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-mrtr-'));
    ({ gw } = await startPolicyGateway(dir, { 'fx.yaml': POLICY }, [stdioFixtureYaml('fx')]));
    alice = await gw.token({ sub: 'alice', scopes: ['fx:forms', 'fx:sample'] });
    bob = await gw.token({ sub: 'bob', scopes: ['fx:forms'] });
  }, 60_000);

  afterAll(async () => {
    await gw?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function audit(): Record<string, unknown>[] {
    return gw.logs.map((l) => l.audit as Record<string, unknown> | undefined).filter((a) => a !== undefined);
  }

  let nextId = 1;
  async function call(
    token: string,
    name: string,
    args: Record<string, unknown>,
    extra: Record<string, unknown> = {},
    capabilities: Record<string, unknown> = FORMS,
  ): Promise<{ status: number; reply: RpcReply; id: number }> {
    const id = nextId++;
    const body = {
      jsonrpc: '2.0',
      id,
      method: 'tools/call',
      params: {
        name,
        arguments: args,
        ...extra,
        _meta: {
          'io.modelcontextprotocol/protocolVersion': V,
          'io.modelcontextprotocol/clientCapabilities': capabilities,
        },
      },
    };
    const r = await post(gw.url, JSON.stringify(body), {
      authorization: `Bearer ${token}`,
      'mcp-protocol-version': V,
      'mcp-method': 'tools/call',
      'mcp-name': name,
    });
    return { status: r.status, reply: responseOf(r), id };
  }

  it('puts the upstream question to the client, and the retry answers it upstream', async () => {
    const first = await call(alice, 'fx__elicit', { message: 'Your name?' });
    expect(first.status).toBe(200);
    expect(first.reply.id).toBe(first.id);
    const r1 = first.reply.result!;
    expect(r1.resultType).toBe('input_required');
    const entries = Object.entries(r1.inputRequests ?? {});
    expect(entries).toHaveLength(1);
    const [key, question] = entries[0]!;
    expect(question).toMatchObject({ method: 'elicitation/create', params: { message: 'Your name?' } });
    expect(typeof r1.requestState).toBe('string');
    // Nothing cacheable about an interim answer (server/utilities/caching).
    expect(r1.ttlMs).toBeUndefined();

    const second = await call(
      alice,
      'fx__elicit',
      { message: 'Your name?' },
      { inputResponses: { [key]: { action: 'accept', content: { answer: 'Ada' } } }, requestState: r1.requestState },
    );
    expect(second.reply.result).toMatchObject({
      resultType: 'complete',
      content: [{ type: 'text', text: 'elicited: accept Ada' }],
    });
    // The question was decided and recorded like one relayed on a session.
    const relay = await vi.waitFor(() => {
      const r = audit().find((e) => e.type === 'mcp.relay' && e.subject === 'alice');
      if (!r) throw new Error('no relay record yet');
      return r;
    });
    expect(relay).toMatchObject({
      relay: 'elicitation/create:form',
      decision: 'allow',
      rule: 'fx.forms',
      outcome: 'ok',
    });
  });

  it('asks again for a question the retry left unanswered, and keeps the call', async () => {
    const first = await call(alice, 'fx__sample', { prompt: 'hello' }, {}, { sampling: {} });
    const r1 = first.reply.result!;
    expect(r1.resultType).toBe('input_required');
    const [key] = Object.keys(r1.inputRequests ?? {});
    const again = await call(
      alice,
      'fx__sample',
      { prompt: 'hello' },
      { inputResponses: {}, requestState: r1.requestState },
      {
        sampling: {},
      },
    );
    const r2 = again.reply.result!;
    expect(r2.resultType).toBe('input_required');
    expect(Object.keys(r2.inputRequests ?? {})).toEqual([key]);
    const done = await call(
      alice,
      'fx__sample',
      { prompt: 'hello' },
      {
        inputResponses: {
          [key!]: { role: 'assistant', model: 'm', content: { type: 'text', text: 'hi there' } },
        },
        requestState: r2.requestState,
      },
      { sampling: {} },
    );
    expect(done.reply.result).toMatchObject({ resultType: 'complete', content: [{ text: 'sampled: hi there' }] });
  });

  it('refuses a state that was altered, replayed by someone else, or moved to other arguments', async () => {
    const first = await call(alice, 'fx__elicit', { message: 'Secret?' });
    const state = first.reply.result!.requestState!;
    const [key] = Object.keys(first.reply.result!.inputRequests ?? {});
    const answer = { inputResponses: { [key!]: { action: 'accept', content: { answer: 'x' } } } };

    // Flip one character of the ciphertext.
    const parts = state.split('.');
    const ct = parts[3]!;
    parts[3] = (ct[0] === 'A' ? 'B' : 'A') + ct.slice(1);
    const tampered = await call(
      alice,
      'fx__elicit',
      { message: 'Secret?' },
      { ...answer, requestState: parts.join('.') },
    );
    expect(tampered.reply.error).toMatchObject({
      code: -32602,
      message: 'Invalid params: requestState failed verification',
    });
    expect(tampered.reply.id).toBe(tampered.id);

    // Bob holds every scope the call needs, but the state is alice's.
    const replayed = await call(bob, 'fx__elicit', { message: 'Secret?' }, { ...answer, requestState: state });
    expect(replayed.reply.error?.code).toBe(-32602);

    // The same state with other arguments is another request.
    const moved = await call(alice, 'fx__elicit', { message: 'Other?' }, { ...answer, requestState: state });
    expect(moved.reply.error?.code).toBe(-32602);

    // Audited with the reason, never with the state itself.
    const records = audit().filter((e) => e.errorCode === 'GW_MCP_REQUEST_STATE_INVALID');
    expect(records.map((r) => r.detail)).toEqual(
      expect.arrayContaining([
        'requestState refused: undecryptable',
        'requestState refused: wrong_principal',
        'requestState refused: wrong_request',
      ]),
    );
    expect(JSON.stringify(audit())).not.toContain(state);

    // The real owner can still finish it: refusals consume nothing.
    const done = await call(alice, 'fx__elicit', { message: 'Secret?' }, { ...answer, requestState: state });
    expect(done.reply.result).toMatchObject({ resultType: 'complete', content: [{ text: 'elicited: accept x' }] });
  });

  it('refuses malformed inputResponses with invalid params', async () => {
    const bad = await call(alice, 'fx__echo', { text: 'a' }, { inputResponses: { k: 12345 } });
    expect(bad.reply.error).toMatchObject({ code: -32602, message: 'Invalid params: malformed inputResponses' });
    const nul = await call(alice, 'fx__echo', { text: 'a' }, { inputResponses: null });
    expect(nul.reply.error?.code).toBe(-32602);
  });

  it('decides the question by policy and capability, as for a 2025 session', async () => {
    // Bob may not be asked for samples: the upstream hears a refusal, exactly as it would on a session.
    const denied = await call(bob, 'fx__sample', { prompt: 'x' }, {}, { sampling: {} });
    expect(denied.reply.result).toMatchObject({ resultType: 'complete', isError: true });
    expect(denied.reply.result!.inputRequests).toBeUndefined();
    // A client that did not declare elicitation is not asked either.
    const undeclared = await call(alice, 'fx__elicit', { message: 'x' }, {}, {});
    expect(undeclared.reply.result).toMatchObject({ resultType: 'complete', isError: true });
  });

  it('never passes a retry field upstream unverified: a 2026 call without state sends none', async () => {
    // fx__echo returns its arguments; a client-made requestState without the gateway's seal is refused outright.
    const forged = await call(alice, 'fx__echo', { text: 'a' }, { requestState: 'forged' });
    expect(forged.reply.error?.code).toBe(-32602);
  });
});
