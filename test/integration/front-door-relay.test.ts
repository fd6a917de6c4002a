/**
 * The front door with official SDK clients: concurrent sessions, cancellation, progress, server→client relays
 * (sampling, elicitation) and list_changed — real gateway, real stdio fixture upstream whose record file shows
 * exactly what the upstream received.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ToolListChangedNotificationSchema,
  type CallToolResult,
  type Progress,
} from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { post, rawSession, startGateway, stdioFixtureYaml, type TestGateway } from '../helpers/gateway.js';
import { readRecord } from '../helpers/upstream-tools.js';

type RecordEntry = Record<string, unknown> & {
  method?: string;
  id?: unknown;
  params?: Record<string, unknown>;
  event?: string;
};

function textOf(r: unknown): string {
  const content = (r as CallToolResult).content;
  const first = content[0];
  return first?.type === 'text' ? first.text : JSON.stringify(first);
}

/** Calls a tool and returns the result, or the error as a value (for outcomes that may be either). */
async function settle(
  p: Promise<unknown>,
): Promise<{ ok: true; result: CallToolResult } | { ok: false; error: unknown }> {
  try {
    return { ok: true, result: (await p) as CallToolResult };
  } catch (error) {
    return { ok: false, error };
  }
}

/** Any server→client request the client has no handler for lands here; none should ever arrive. */
function trapUnexpectedRequests(client: Client): string[] {
  const seen: string[] = [];
  client.fallbackRequestHandler = async (request) => {
    seen.push(request.method);
    throw new Error('unexpected request');
  };
  return seen;
}

function samplingHandler(client: Client, seen: string[]): void {
  client.setRequestHandler(CreateMessageRequestSchema, async (request) => {
    const c = request.params.messages[0]?.content;
    const prompt = c && !Array.isArray(c) && c.type === 'text' ? c.text : '?';
    seen.push(prompt);
    return { model: 'test-model', role: 'assistant', content: { type: 'text', text: `re:${prompt}` } };
  });
}

describe('concurrency, cancellation, progress and relays', () => {
  let gw: TestGateway;
  let recordDir: string;
  let recordFile: string;

  beforeAll(async () => {
    recordDir = mkdtempSync(join(tmpdir(), 'gatehouse-fd-relay-'));
    recordFile = join(recordDir, 'record.jsonl');
    gw = await startGateway([stdioFixtureYaml('fx', { env: { FIXTURE_RECORD_FILE: recordFile } })]);
  });

  afterAll(async () => {
    await gw?.close();
    rmSync(recordDir, { recursive: true, force: true });
  });

  it('keeps two clients with the same request ids apart', async () => {
    const a = await gw.client({ name: 'a' });
    const b = await gw.client({ name: 'b' });
    // Both SDK clients count ids from 0, so these calls carry equal ids at the gateway.
    const [slowA, slowB, echoA, echoB] = await Promise.all([
      a.callTool({ name: 'fx__slow', arguments: { ms: 400 } }),
      b.callTool({ name: 'fx__slow', arguments: { ms: 150 } }),
      a.callTool({ name: 'fx__echo', arguments: { text: 'from-a' } }),
      b.callTool({ name: 'fx__echo', arguments: { text: 'from-b' } }),
    ]);
    expect(textOf(slowA)).toBe('done after 400ms');
    expect(textOf(slowB)).toBe('done after 150ms');
    expect(textOf(echoA)).toBe('from-a');
    expect(textOf(echoB)).toBe('from-b');
    // Upstream, the gateway used its own ids: four distinct ones for the four calls.
    const calls = readRecord<RecordEntry>(recordFile).filter(
      (e) => e.method === 'tools/call' && ['slow', 'echo'].includes(String(e.params?.name)),
    );
    const ids = calls.slice(-4).map((e) => e.id);
    expect(new Set(ids).size).toBe(4);
  });

  it('forwards a client cancellation upstream under the gateway id of that call', async () => {
    const client = await gw.client();
    const ac = new AbortController();
    const call = client.callTool({ name: 'fx__hang', arguments: {} }, undefined, { signal: ac.signal });
    setTimeout(() => ac.abort('test abort'), 300);
    await expect(call).rejects.toThrow();

    const found = await vi.waitFor(
      () => {
        const rec = readRecord<RecordEntry>(recordFile);
        const hangCall = rec.filter((e) => e.method === 'tools/call' && e.params?.name === 'hang').at(-1);
        expect(hangCall).toBeDefined();
        const cancelled = rec.find(
          (e) => e.method === 'notifications/cancelled' && e.params?.requestId === hangCall!.id,
        );
        const observed = rec.find((e) => e.event === 'cancelled-observed' && e.requestId === hangCall!.id);
        expect(cancelled).toBeDefined();
        expect(observed).toBeDefined();
        return { hangCall: hangCall!, cancelled: cancelled! };
      },
      { timeout: 5000, interval: 50 },
    );
    expect(typeof found.hangCall.id).toBe('number');
    expect(found.cancelled.params?.reason).toBe('cancelled by client');
    // The session is still usable afterwards.
    expect(textOf(await client.callTool({ name: 'fx__echo', arguments: { text: 'after cancel' } }))).toBe(
      'after cancel',
    );
  });

  it('relays every progress step under the client token, increasing', async () => {
    const client = await gw.client();
    const seen: Progress[] = [];
    const r = await client.callTool({ name: 'fx__progress', arguments: { steps: 5, delayMs: 20 } }, undefined, {
      onprogress: (p) => seen.push(p),
    });
    expect(textOf(r)).toBe('finished 5 steps');
    expect(seen.map((p) => p.progress)).toEqual([1, 2, 3, 4, 5]);
    expect(seen.every((p) => p.total === 5)).toBe(true);
    expect(seen.map((p) => p.message)).toEqual(['step 1', 'step 2', 'step 3', 'step 4', 'step 5']);
  });

  it('re-emits progress on the POST stream (SSE) with the client token, not the upstream one', async () => {
    const sid = await rawSession(gw.url);
    const r = await post(
      gw.url,
      JSON.stringify({
        jsonrpc: '2.0',
        id: 'p1',
        method: 'tools/call',
        params: { name: 'fx__progress', arguments: { steps: 2 }, _meta: { progressToken: 'client-token' } },
      }),
      { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' },
    );
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const frames = r.text
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .map(
        (l) =>
          JSON.parse(l.slice(6)) as {
            method?: string;
            id?: unknown;
            params?: { progressToken?: unknown; progress?: number };
            result?: unknown;
          },
      );
    const progress = frames.filter((f) => f.method === 'notifications/progress');
    expect(progress.map((f) => f.params?.progressToken)).toEqual(['client-token', 'client-token']);
    expect(progress.map((f) => f.params?.progress)).toEqual([1, 2]);
    expect(frames.at(-1)?.id).toBe('p1');
    expect(frames.at(-1)?.result).toBeDefined();
    // Upstream saw the gateway's own token, which is its id for the call.
    const upstreamCall = readRecord<RecordEntry>(recordFile)
      .filter((e) => e.method === 'tools/call' && e.params?.name === 'progress')
      .at(-1);
    const meta = upstreamCall?.params?._meta as { progressToken?: unknown } | undefined;
    expect(meta?.progressToken).toBe(upstreamCall?.id);
  });

  it('relays sampling to a client that declared it', async () => {
    const client = await gw.client({ capabilities: { sampling: {} } });
    const prompts: string[] = [];
    samplingHandler(client, prompts);
    const r = await client.callTool({ name: 'fx__sample', arguments: { prompt: 'hello there' } });
    expect(textOf(r)).toBe('sampled: re:hello there');
    expect(prompts).toEqual(['hello there']);
  });

  it('never sends sampling to a client that did not declare it', async () => {
    const client = await gw.client();
    const unexpected = trapUnexpectedRequests(client);
    const r = (await client.callTool({ name: 'fx__sample', arguments: { prompt: 'secret prompt' } })) as CallToolResult;
    // The fixture turns the gateway's JSON-RPC refusal into its own isError result.
    expect(r.isError).toBe(true);
    // The gateway refused the relay with -32601 (GW_RELAY_CAPABILITY_MISSING); the fixture quotes that refusal.
    expect(textOf(r)).toMatch(/^sampling failed: .*-32601.*Client does not support this request/);
    expect(unexpected).toEqual([]);
  });

  it('relays elicitation to a client that declared it, and never to one that did not', async () => {
    const yes = await gw.client({ capabilities: { elicitation: {} } });
    const messages: string[] = [];
    yes.setRequestHandler(ElicitRequestSchema, async (request) => {
      messages.push(request.params.message);
      return { action: 'accept', content: { answer: 'forty-two' } };
    });
    const r = await yes.callTool({ name: 'fx__elicit', arguments: { message: 'what is the answer?' } });
    expect(textOf(r)).toBe('elicited: accept forty-two');
    expect(messages).toEqual(['what is the answer?']);

    const no = await gw.client();
    const unexpected = trapUnexpectedRequests(no);
    const refused = (await no.callTool({ name: 'fx__elicit', arguments: { message: 'tell me' } })) as CallToolResult;
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toMatch(/^elicitation failed: .*-32601.*Client does not support this request/);
    expect(unexpected).toEqual([]);
  });

  it('two clients sampling at once: nobody ever sees the other prompt', async () => {
    // Over one shared stdio upstream a sampling request carries no hint of which call caused it; RpcPeer.originOf
    // routes it only when every call in flight comes from one session, and otherwise refuses (threat model #19).
    const a = await gw.client({ name: 'a', capabilities: { sampling: {} } });
    const b = await gw.client({ name: 'b', capabilities: { sampling: {} } });
    const seenA: string[] = [];
    const seenB: string[] = [];
    samplingHandler(a, seenA);
    samplingHandler(b, seenB);
    for (let round = 0; round < 3; round++) {
      const [ra, rb] = await Promise.all([
        settle(a.callTool({ name: 'fx__sample', arguments: { prompt: `prompt-a-${round}` } })),
        settle(b.callTool({ name: 'fx__sample', arguments: { prompt: `prompt-b-${round}` } })),
      ]);
      for (const [r, mine] of [
        [ra, `prompt-a-${round}`],
        [rb, `prompt-b-${round}`],
      ] as const) {
        if (!r.ok) continue;
        const t = textOf(r.result);
        // Either its own answer, or a refusal — never the other client's.
        if (r.result.isError)
          expect(t).toMatch(/^sampling failed: .*-32603.*No client session to route this request to/);
        else expect(t).toBe(`sampled: re:${mine}`);
      }
    }
    expect(seenA.every((p) => p.startsWith('prompt-a-'))).toBe(true);
    expect(seenB.every((p) => p.startsWith('prompt-b-'))).toBe(true);
  });

  it('with another session in flight, sampling is refused rather than guessed', async () => {
    const a = await gw.client({ name: 'a', capabilities: { sampling: {} } });
    const b = await gw.client({ name: 'b', capabilities: { sampling: {} } });
    const seenA: string[] = [];
    const seenB: string[] = [];
    samplingHandler(a, seenA);
    samplingHandler(b, seenB);
    const slow = b.callTool({ name: 'fx__slow', arguments: { ms: 1000 } });
    // Let b's call reach the upstream first, so two sessions are in flight when the sampling request comes.
    await vi.waitFor(
      () =>
        expect(
          readRecord<RecordEntry>(recordFile).filter(
            (e) =>
              e.method === 'tools/call' &&
              e.params?.name === 'slow' &&
              (e.params.arguments as { ms?: number }).ms === 1000,
          ),
        ).toHaveLength(1),
      {
        timeout: 3000,
        interval: 20,
      },
    );
    const r = (await a.callTool({ name: 'fx__sample', arguments: { prompt: 'only for a' } })) as CallToolResult;
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/^sampling failed: .*-32603.*No client session to route this request to/);
    expect(seenA).toEqual([]);
    expect(seenB).toEqual([]);
    expect(textOf(await slow)).toBe('done after 1000ms');
    // With nothing else in flight, the same call is routed to a again.
    expect(textOf(await a.callTool({ name: 'fx__sample', arguments: { prompt: 'only for a' } }))).toBe(
      'sampled: re:only for a',
    );
    expect(seenA).toEqual(['only for a']);
    expect(seenB).toEqual([]);
  });
});

describe('list_changed (server/tools §List Changed Notification)', () => {
  it('tells a connected client on its GET stream and lists the new tool', async () => {
    await using gw = await startGateway([stdioFixtureYaml('fx')]);
    const client = await gw.client();
    const before = await client.listTools();
    expect(before.tools.map((t) => t.name)).not.toContain('fx__added_1');
    let notified = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
      notified += 1;
    });
    // The SDK client opens its GET stream right after `notifications/initialized`; give it a moment to be open.
    await vi.waitFor(
      () => expect([...gw.app.frontDoor['table'].values()].some((s) => s.getStream && !s.getStream.closed)).toBe(true),
      { timeout: 3000, interval: 20 },
    );
    expect(textOf(await client.callTool({ name: 'fx__change_tools', arguments: {} }))).toBe('changed');
    await vi.waitFor(() => expect(notified).toBeGreaterThan(0), { timeout: 5000, interval: 20 });
    const after = await client.listTools();
    expect(after.tools.map((t) => t.name)).toContain('fx__added_1');
    expect(after.tools.find((t) => t.name === 'fx__mutable')?.description).toBe('changed description 1');
  });
});
