/**
 * The request pipeline without a session (docs/architecture.md §1): a `RequestContext` with no session runs the whole
 * way — resolve, decide, limits, forward, shape — against a real upstream (our stdio fixture, a real process), with
 * one audit record per request. This is the path a stateless protocol generation builds on.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/audit-sink.js';
import { loadConfig } from '../../src/config/load.js';
import type { GatehouseConfig } from '../../src/config/types.js';
import type { Principal } from '../../src/identity/principal.js';
import { Cancellation } from '../../src/lib/cancellation.js';
import type { JsonRpcMessage, JsonRpcRequest, JsonRpcResponse } from '../../src/lib/json-rpc.js';
import { CallLimiter } from '../../src/mcp/limits.js';
import { ParkedCalls } from '../../src/mcp/parked-calls.js';
import { RequestStateCodec } from '../../src/mcp/request-state.js';
import { ListCache } from '../../src/mcp/list-cache.js';
import { Pipeline } from '../../src/mcp/pipeline.js';
import type { RequestStream } from '../../src/mcp/streams.js';
import { compilePolicy } from '../../src/policy/compile.js';
import { CompiledPolicyEngine } from '../../src/policy/engine.js';
import { Router } from '../../src/router/router.js';
import { MemoryLimiter } from '../../src/stores/rate-limits/memory-limiter.js';
import { UpstreamSet } from '../../src/upstream/upstream-set.js';
import { stdioFixtureYaml } from '../helpers/gateway.js';

const POLICY = `version: 1
rules:
  - id: echo.short
    effect: allow
    match: { tools: [fx__echo] }
    when: { scopes: { allOf: [echo:use] } }
    arguments:
      properties:
        text: { type: string, maxLength: 16 }
    limits:
      rate: { perMinute: 2, burst: 2 }
`;

const alice: Principal = Object.freeze({
  subject: 'alice',
  clientId: 'agent',
  scopes: new Set(['echo:use']),
  groups: [],
  anonymous: false,
});

/** A stream that keeps what the pipeline answers. */
function collecting(): RequestStream & { answers: JsonRpcResponse[]; related: JsonRpcMessage[] } {
  const answers: JsonRpcResponse[] = [];
  const related: JsonRpcMessage[] = [];
  return {
    answers,
    related,
    closed: false,
    finish: (r) => void answers.push(r),
    sendRelated: (m) => (related.push(m), true),
  };
}

describe('pipeline: a request without a session', () => {
  let dir: string;
  let config: GatehouseConfig;
  let upstreams: UpstreamSet;
  let pipeline: Pipeline;
  const records: AuditEvent[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-pipeline-'));
    const file = join(dir, 'gatehouse.yaml');
    writeFileSync(file, `server:\n  host: 127.0.0.1\n  port: 0\nupstreams:\n  - ${stdioFixtureYaml('fx')}\n`);
    config = loadConfig(file);
    const logger = pino({ level: 'silent' });
    upstreams = new UpstreamSet({
      configs: config.upstreams,
      logger,
      clientInfo: { name: 'gatehouse-test', version: '0' },
      hooks: {
        relay: () => Promise.reject(new Error('no relays in this test')),
        notification: () => undefined,
        ready: () => undefined,
        stateChanged: () => undefined,
        breakerChanged: () => undefined,
      },
    });
    const router = new Router(config, upstreams, logger);
    await upstreams.startAll();
    await router.initialLoad();
    const limiter = new CallLimiter({
      limits: { store: 'memory', onStoreError: 'closed', rules: [] },
      store: new MemoryLimiter(),
      logger,
    });
    pipeline = new Pipeline({
      config,
      router,
      policy: new CompiledPolicyEngine(compilePolicy([{ file: 'echo.yaml', text: POLICY }])),
      limits: limiter,
      lists: new ListCache(),
      logger,
      now: Date.now,
      maxSubscriptions: 10,
      serverInfo: { name: 'gatehouse', version: 'test' },
      requestState: RequestStateCodec.ephemeral(),
      parked: new ParkedCalls(),
      relay: {
        relay: () => Promise.reject(new Error('no relays in this test')),
        permitInput: () => undefined,
      },
      audit: { record: (e) => void records.push(e) },
      tracing: undefined,
    });
  }, 30_000);

  afterAll(async () => {
    await upstreams?.closeAll();
    rmSync(dir, { recursive: true, force: true });
  });

  async function send(method: string, params: Record<string, unknown>, id: number): Promise<JsonRpcResponse> {
    const stream = collecting();
    const message: JsonRpcRequest = { jsonrpc: '2.0', id, method, params };
    await pipeline.run({
      principal: alice,
      protocolVersion: '2026-07-28',
      clientCapabilities: {},
      session: undefined,
      message,
      stream,
      cancel: new Cancellation(),
    });
    expect(stream.answers).toHaveLength(1);
    return stream.answers[0]!;
  }

  it('forwards an allowed call to the real upstream and audits it without a session', async () => {
    const reply = await send('tools/call', { name: 'fx__echo', arguments: { text: 'hello' } }, 1);
    expect(reply).toMatchObject({ id: 1, result: { structuredContent: { text: 'hello' } } });
    const record = records.at(-1)!;
    expect(record).toMatchObject({
      type: 'mcp.request',
      method: 'tools/call',
      tool: 'fx__echo',
      upstream: 'fx',
      subject: 'alice',
      decision: 'allow',
      rule: 'echo.short',
      outcome: 'ok',
    });
    expect(record).not.toHaveProperty('session');
  });

  it('refuses what the policy refuses before anything is forwarded', async () => {
    const reply = await send('tools/call', { name: 'fx__echo', arguments: { text: 'far too long for the rule' } }, 2);
    expect(reply).toMatchObject({ id: 2, error: { code: -32602 } });
    expect(records.at(-1)).toMatchObject({ decision: 'deny', reason: 'invalid_arguments', outcome: 'denied' });
    // A tool no rule allows is answered exactly like one that does not exist; only the audit record tells them apart.
    const hidden = await send('tools/call', { name: 'fx__add', arguments: { a: 1, b: 2 } }, 3);
    expect(records.at(-1)).toMatchObject({ decision: 'deny', reason: 'no_matching_rule', upstream: 'fx' });
    const unknown = await send('tools/call', { name: 'fx__nope', arguments: {} }, 4);
    expect(records.at(-1)).toMatchObject({ decision: 'deny', reason: 'unknown_tool' });
    expect(hidden).toEqual({ jsonrpc: '2.0', id: 3, error: { code: -32602, message: 'Unknown tool: fx__add' } });
    expect(unknown).toEqual({ jsonrpc: '2.0', id: 4, error: { code: -32602, message: 'Unknown tool: fx__nope' } });
  });

  it('applies the rule limits and filters lists per principal', async () => {
    // The first test's call took one of two; this one takes the second; the next is over the budget.
    await send('tools/call', { name: 'fx__echo', arguments: { text: 'two' } }, 5);
    const limited = await send('tools/call', { name: 'fx__echo', arguments: { text: 'three' } }, 6);
    expect(limited).toMatchObject({ id: 6, error: { code: -31000 } });
    expect(records.at(-1)).toMatchObject({ decision: 'deny', outcome: 'denied', errorCode: 'rate_limited' });
    const list = await send('tools/list', {}, 7);
    const names = ((list as unknown as { result: { tools: { name: string }[] } }).result.tools ?? [])
      .map((t) => t.name)
      .sort();
    // fx__add and the fixture's other tools exist upstream, but no rule shows them to alice.
    expect(names).toEqual(['fx__echo']);
  });

  it('refuses what needs a session it does not have', async () => {
    const reply = await send('logging/setLevel', { level: 'info' }, 8);
    expect(reply).toMatchObject({ id: 8, error: { code: -32601 } });
  });
});
