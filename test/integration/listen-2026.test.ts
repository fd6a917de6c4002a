/**
 * MCP 2026-07-28 `subscriptions/listen` (basic/patterns/subscriptions; docs/protocol-2026-07-28.md §2.10) through the
 * gateway: the acknowledgement first with the subset honoured, every message tagged with the listen's id, only the
 * kinds asked for, list changes from an upstream and from a policy reload, resource updates for subscribed URIs (and
 * none for a URI the policy hides, however the upstream is subscribed), the upstream subscription released with the
 * last listener, the per-principal cap, the graceful end at shutdown and at token expiry, and the official v2
 * client's `listen()`. Real parts: a gateway on port 0 with dev tokens and a policy folder, the stdio fixture (its
 * `change_tools` changes its tool list) and the official server-everything over stdio (it serves resource
 * subscriptions, and `toggle-subscriber-updates` makes it send `resources/updated`), raw fetch reading the SSE.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  everythingStdioYaml,
  startGateway,
  startPolicyGateway,
  stdioFixtureYaml,
  type TestGateway,
} from '../helpers/gateway.js';
import { modernRequest, openListen, type ListenStream, type RpcMessage } from '../helpers/listen.js';

const SUB_ID = 'io.modelcontextprotocol/subscriptionId';
const TEXT_1 = 'demo://resource/dynamic/text/1';
const TEXT_2 = 'demo://resource/dynamic/text/2';

const RULES = `version: 1
rules:
  - id: tools
    effect: allow
    match: { tools: [fx__echo, fx__change_tools, "ev__toggle-subscriber-updates"] }
    when: { authenticated: true }
  - id: text-1
    effect: allow
    match: { resources: ["${TEXT_1}"] }
    when: { authenticated: true }
  - id: bob-reads-all
    effect: allow
    match: { resources: ["demo://**"] }
    when: { subjects: [bob] }
  - id: bob-tools
    effect: allow
    match: { tools: ["fx__*"] }
    when: { subjects: [bob] }
`;
/** The same, with fx__echo hidden from alice (bob still sees it by his own rule). */
const RULES_HIDE_ECHO = RULES.replace(
  'match: { tools: [fx__echo, fx__change_tools, "ev__toggle-subscriber-updates"] }',
  'match: { tools: [fx__change_tools, "ev__toggle-subscriber-updates"] }',
);

describe('subscriptions/listen (2026-07-28)', () => {
  let dir: string;
  let policyDir: string;
  let gw: TestGateway;
  let alice: string;
  let bob: string;
  let nextId = 100;
  const streams: ListenStream[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-listen-'));
    ({ gw, policyDir } = await startPolicyGateway(dir, { 'rules.yaml': RULES }, [
      stdioFixtureYaml('fx'),
      everythingStdioYaml('ev'),
    ]));
    alice = await gw.token({ sub: 'alice', scopes: [] });
    bob = await gw.token({ sub: 'bob', scopes: [] });
  }, 60_000);

  afterAll(async () => {
    for (const s of streams) s.close();
    await gw?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function listen(token: string, filter: Parameters<typeof openListen>[3], id: number | string = nextId++) {
    const s = await openListen(gw.url, token, id, filter);
    streams.push(s);
    return s;
  }

  function call(token: string, name: string, args: Record<string, unknown> = {}): Promise<RpcMessage> {
    return modernRequest(gw.url, token, nextId++, 'tools/call', { name, arguments: args });
  }

  function auditOf(requestId: string | number): Record<string, unknown> | undefined {
    return gw.logs
      .map((l) => l.audit as Record<string, unknown> | undefined)
      .find(
        (a) => a?.type === 'mcp.request' && a.method === 'subscriptions/listen' && a.requestId === String(requestId),
      );
  }

  it('acknowledges first, with the subset honoured, tagged with the request id', async () => {
    const s = await listen(
      alice,
      {
        toolsListChanged: true,
        promptsListChanged: true,
        resourceSubscriptions: [TEXT_1, 'demo://nowhere/at-all'],
      },
      'ack-1',
    );
    expect(s.status).toBe(200);
    expect(s.contentType).toMatch(/^text\/event-stream/);
    const ack = await s.next();
    // server-everything serves prompts, so prompt-list changes are honoured; no upstream has that URI.
    expect(ack).toEqual({
      jsonrpc: '2.0',
      method: 'notifications/subscriptions/acknowledged',
      params: {
        _meta: { [SUB_ID]: 'ack-1' },
        notifications: { toolsListChanged: true, promptsListChanged: true, resourceSubscriptions: [TEXT_1] },
      },
    });
    s.close();
    await s.ended;
    // One record for the whole listen: cancelled by the client, with its duration and what was left out.
    const record = await vi.waitFor(() => {
      const r = auditOf('ack-1');
      expect(r).toBeDefined();
      return r!;
    });
    expect(record).toMatchObject({
      protocolVersion: '2026-07-28',
      subject: 'alice',
      outcome: 'cancelled',
      decision: 'allow',
      durationMs: expect.any(Number),
      detail: expect.stringContaining('demo://nowhere/at-all (unknown)'),
    });
  });

  it('sends an upstream tool-list change only to listeners that asked and whose view changed', async () => {
    const tools = await listen(bob, { toolsListChanged: true }, 7);
    const other = await listen(bob, { resourcesListChanged: true });
    const hidden = await listen(alice, { toolsListChanged: true });
    expect((await tools.next()).method).toBe('notifications/subscriptions/acknowledged');
    expect((await other.next()).params?.notifications).toEqual({ resourcesListChanged: true });
    await hidden.next();
    // fx__change_tools adds a tool and rewrites another: the upstream says tools/list_changed, the gateway re-lists.
    expect(await call(bob, 'fx__change_tools')).toMatchObject({ result: { resultType: 'complete' } });
    expect(await tools.next()).toEqual({
      jsonrpc: '2.0',
      method: 'notifications/tools/list_changed',
      params: { _meta: { [SUB_ID]: 7 } },
    });
    // Not asked for (resources only), and not seen (alice's policy shows none of the changed tools).
    expect(await other.collect(1000)).toEqual([]);
    expect(await hidden.collect(0)).toEqual([]);
    for (const s of [tools, other, hidden]) s.close();
  });

  it('sends tools/list_changed when a policy reload hides a tool from this principal, not to others', async () => {
    const a = await listen(alice, { toolsListChanged: true }, 'a');
    const b = await listen(bob, { toolsListChanged: true }, 'b');
    await a.next();
    await b.next();
    writeFileSync(join(policyDir, 'rules.yaml'), RULES_HIDE_ECHO);
    expect(gw.app.reloadPolicy('test')).toMatchObject({ ok: true, changed: true });
    expect(await a.next()).toEqual({
      jsonrpc: '2.0',
      method: 'notifications/tools/list_changed',
      params: { _meta: { [SUB_ID]: 'a' } },
    });
    // bob's view (fx__echo by the new rule, the rest as before) did not change: he is not told.
    expect(await b.collect(500)).toEqual([]);
    const listed = await modernRequest(gw.url, alice, nextId++, 'tools/list');
    expect((listed.result?.tools as { name: string }[]).map((t) => t.name)).not.toContain('fx__echo');
    writeFileSync(join(policyDir, 'rules.yaml'), RULES);
    gw.app.reloadPolicy('test');
    expect((await a.next()).method).toBe('notifications/tools/list_changed');
    a.close();
    b.close();
  });

  it('relays resources/updated for a subscribed URI; a URI the policy hides is neither acknowledged nor updated', async () => {
    // bob (who may read both) subscribes to both in a 2025 session, so the upstream sends updates for both.
    const legacy = await gw.client({ transport: { requestInit: { headers: { authorization: `Bearer ${bob}` } } } });
    await legacy.subscribeResource({ uri: TEXT_2 });
    // ATTACK: alice asks for a URI she may not read.
    const s = await listen(alice, { resourceSubscriptions: [TEXT_1, TEXT_2] }, 'res');
    const ack = await s.next();
    expect(ack.params?.notifications).toEqual({ resourceSubscriptions: [TEXT_1] });
    // server-everything sends an update for each subscribed URI at once, then every 5 s.
    await call(alice, 'ev__toggle-subscriber-updates');
    const seen = [await s.next(10_000), ...(await s.collect(1000))];
    await call(alice, 'ev__toggle-subscriber-updates');
    expect(seen).toContainEqual({
      jsonrpc: '2.0',
      method: 'notifications/resources/updated',
      params: { uri: TEXT_1, _meta: { [SUB_ID]: 'res' } },
    });
    expect(seen.every((m) => m.method === 'notifications/resources/updated' && m.params?.uri === TEXT_1)).toBe(true);
    expect(auditOf('res')).toBeUndefined(); // still open: the record is written when it ends
    s.close();
    await s.ended;
    await vi.waitFor(() =>
      expect(auditOf('res')?.detail).toEqual(expect.stringContaining(`${TEXT_2} (denied no_matching_rule)`)),
    );
    await legacy.unsubscribeResource({ uri: TEXT_2 });
    await legacy.close();
  });

  it('subscribes upstream once per URI and releases it with the last holder, 2025 sessions included', async () => {
    const subscribes = (method: string): number =>
      gw.logs.filter((l) => l.msg === 'upstream subscription' && l.method === method && l.uri === TEXT_1).length;
    // What earlier tests held is let go first (the unsubscribe goes out after the stream's record is written).
    await vi.waitFor(() => expect(gw.app.frontDoor.upstreamSubscriptionCount).toBe(0));
    await new Promise((r) => setTimeout(r, 300));
    const before = { sub: subscribes('resources/subscribe'), unsub: subscribes('resources/unsubscribe') };
    const one = await listen(alice, { resourceSubscriptions: [TEXT_1] });
    const two = await listen(bob, { resourceSubscriptions: [TEXT_1] });
    await one.next();
    await two.next();
    expect(subscribes('resources/subscribe')).toBe(before.sub + 1);
    // A 2025 session's unsubscribe does not take the subscription from the listeners.
    const legacy = await gw.client({ transport: { requestInit: { headers: { authorization: `Bearer ${bob}` } } } });
    await legacy.subscribeResource({ uri: TEXT_1 });
    await legacy.unsubscribeResource({ uri: TEXT_1 });
    one.close();
    await one.ended;
    await new Promise((r) => setTimeout(r, 200));
    expect(subscribes('resources/unsubscribe')).toBe(before.unsub);
    two.close();
    await two.ended;
    await vi.waitFor(() => expect(subscribes('resources/unsubscribe')).toBe(before.unsub + 1));
    expect(gw.app.frontDoor.upstreamSubscriptionCount).toBe(0);
    await vi.waitFor(() => expect(gw.app.frontDoor.listenCount).toBe(0));
    await legacy.close();
  });

  it('works with the official v2 client: honoured filter, list change handler, close', async () => {
    const client = new ClientV2(
      { name: 'v2-listen', version: '1.0.0' },
      { versionNegotiation: { mode: { pin: '2026-07-28' } } },
    );
    await client.connect(
      new TransportV2(new URL(gw.url), { requestInit: { headers: { authorization: `Bearer ${bob}` } } }),
    );
    const changed = vi.fn();
    client.setNotificationHandler('notifications/tools/list_changed', changed);
    const sub = await client.listen({ toolsListChanged: true, resourceSubscriptions: [TEXT_1] });
    expect(sub.honoredFilter).toEqual({ toolsListChanged: true, resourceSubscriptions: [TEXT_1] });
    await client.callTool({ name: 'fx__change_tools', arguments: {} });
    await vi.waitFor(() => expect(changed).toHaveBeenCalled(), { timeout: 10_000 });
    await sub.close();
    expect(await sub.closed).toBe('local');
    await client.close();
  });
});

describe('subscriptions/listen: cap, token expiry, shutdown', () => {
  let gw: TestGateway;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-listen-end-'));
    mkdirSync(join(dir, 'policy'));
    writeFileSync(join(dir, 'policy', 'rules.yaml'), RULES);
    gw = await startGateway([stdioFixtureYaml('fx')], {
      top: `auth:\n  mode: dev\npolicy:\n  dir: ${JSON.stringify(join(dir, 'policy'))}\nsessions:\n  maxListensPerPrincipal: 2\n`,
    });
  }, 60_000);

  afterAll(async () => {
    await gw?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a listen past the per-principal cap before any ack', async () => {
    const max = gw.app.config.sessions?.maxListensPerPrincipal ?? 0;
    expect(max).toBe(2);
    const token = await gw.token({ sub: 'carol', scopes: [] });
    const open = await Promise.all(Array.from({ length: max }, (_, i) => openListen(gw.url, token, i, {})));
    for (const s of open) expect((await s.next()).method).toBe('notifications/subscriptions/acknowledged');
    const refused = await openListen(gw.url, token, 'over', { toolsListChanged: true });
    expect(refused.status).toBe(200);
    expect(await refused.next()).toEqual({
      jsonrpc: '2.0',
      id: 'over',
      error: { code: -32603, message: 'Subscription limit reached' },
    });
    // Another principal has its own budget; closing one makes room.
    const dave = await openListen(gw.url, await gw.token({ sub: 'dave', scopes: [] }), 1, {});
    expect((await dave.next()).method).toBe('notifications/subscriptions/acknowledged');
    open[0]!.close();
    await vi.waitFor(async () => {
      const again = await openListen(gw.url, token, 'again', {});
      const first = await again.next();
      again.close();
      expect(first.method).toBe('notifications/subscriptions/acknowledged');
    });
    for (const s of [...open, dave]) s.close();
  });

  it('ends with the graceful result when the token expires', async () => {
    const token = await gw.token({ sub: 'erin', scopes: [], ttlSeconds: 2 });
    const s = await openListen(gw.url, token, 'exp', { toolsListChanged: true });
    expect((await s.next()).method).toBe('notifications/subscriptions/acknowledged');
    const end = await s.next(5000);
    expect(end).toMatchObject({
      jsonrpc: '2.0',
      id: 'exp',
      result: { resultType: 'complete', _meta: { [SUB_ID]: 'exp' } },
    });
    await s.ended;
  });

  it('keeps the stream alive with SSE comments', async () => {
    // The keep-alive period is the gateway's (25 s); here only its form is checked through the stream class.
    const { HttpRequestStream } = await import('../../src/edge/http-streams.js');
    const writes: string[] = [];
    const res = {
      destroyed: false,
      writableEnded: false,
      writeHead: () => undefined,
      write: (t: string) => writes.push(t),
    } as unknown as import('node:http').ServerResponse;
    const stream = new HttpRequestStream(res);
    expect(stream.comment('keep-alive')).toBe(false); // not a stream yet
    stream.sendRelated({ jsonrpc: '2.0', method: 'x' });
    expect(stream.comment('keep-alive\nevent: y')).toBe(true);
    expect(writes.at(-1)).toBe(': keep-alive event: y\n\n');
  });

  it('ends every listen with the graceful result at shutdown, without holding the drain', async () => {
    const token = await gw.token({ sub: 'frank', scopes: [] });
    const s = await openListen(gw.url, token, 42, { toolsListChanged: true });
    expect((await s.next()).method).toBe('notifications/subscriptions/acknowledged');
    const started = Date.now();
    const closing = gw.app.close(10_000);
    expect(await s.next(5000)).toEqual({
      jsonrpc: '2.0',
      id: 42,
      result: {
        resultType: 'complete',
        _meta: { [SUB_ID]: 42, 'io.modelcontextprotocol/serverInfo': expect.any(Object) },
      },
    });
    await s.ended;
    await closing;
    expect(Date.now() - started).toBeLessThan(5000);
    const record = gw.logs
      .map((l) => l.audit as Record<string, unknown> | undefined)
      .find((a) => a?.method === 'subscriptions/listen' && a.requestId === '42');
    expect(record).toMatchObject({ outcome: 'ok', detail: expect.stringContaining('ended: shutdown') });
  });
});
