/**
 * The pure half of speaking MCP 2026-07-28 to upstreams (src/upstream/era.ts, src/lib/param-headers.ts): the probe
 * classifier (docs/protocol-2026-07-28.md §2.1), the `_meta` envelope (§2.2), result checks (§2.8, §2.9), -32021 data
 * and the Mcp-Param-* values a client mirrors (§2.6).
 */
import { describe, expect, it } from 'vitest';
import type { JsonObject } from '../../src/lib/json-rpc.js';
import { annotationsOf, paramHeaderValues } from '../../src/lib/param-headers.js';
import {
  classifyProbe,
  modernResultProblem,
  requiredCapabilitiesOf,
  withEnvelope,
  withoutSubscriptionId,
  type ProbeOutcome,
} from '../../src/upstream/era.js';

const DISCOVER: JsonObject = {
  resultType: 'complete',
  supportedVersions: ['2026-07-28'],
  capabilities: { tools: { listChanged: true } },
  instructions: 'be nice',
  ttlMs: 0,
  cacheScope: 'public',
  _meta: { 'io.modelcontextprotocol/serverInfo': { name: 'up', version: '2' } },
};

describe('classifyProbe', () => {
  const verdictOf = (o: ProbeOutcome, transport: 'stdio' | 'http' = 'http') =>
    classifyProbe(o, '2026-07-28', transport);

  it('a DiscoverResult naming 2026-07-28 is modern, with its capabilities, serverInfo and instructions', () => {
    expect(verdictOf({ kind: 'result', result: DISCOVER })).toEqual({
      verdict: 'modern',
      info: {
        era: 'modern',
        protocolVersion: '2026-07-28',
        capabilities: { tools: { listChanged: true } },
        serverInfo: { name: 'up', version: '2' },
        instructions: 'be nice',
      },
    });
  });

  it.each<[string, JsonObject]>([
    ['lists only other revisions', { ...DISCOVER, supportedVersions: ['2027-01-01'] }],
    ['has no supportedVersions', { capabilities: {} }],
    ['has no capabilities', { supportedVersions: ['2026-07-28'] }],
    ['is an empty result', {}],
  ])('a result that %s is legacy', (_why, result) => {
    expect(verdictOf({ kind: 'result', result })).toMatchObject({ verdict: 'legacy' });
  });

  it('-32022 naming a revision we speak other than the one sent: probe again at it; the same one: legacy', () => {
    const at = (supported: unknown[], sent: string) =>
      classifyProbe({ kind: 'error', code: -32022, data: { supported, requested: sent } }, sent, 'http');
    expect(at(['2026-07-28', '2025-11-25'], '2027-01-01')).toEqual({ verdict: 'retry', version: '2026-07-28' });
    expect(at(['2026-07-28'], '2026-07-28')).toMatchObject({ verdict: 'legacy' });
    expect(at(['2025-11-25'], '2026-07-28')).toMatchObject({ verdict: 'legacy' });
    expect(classifyProbe({ kind: 'error', code: -32022 }, '2026-07-28', 'http')).toMatchObject({ verdict: 'legacy' });
  });

  it.each([-32601, -32600, -32602, -32603, -32000, -32001, -32020, -32021])(
    'any other JSON-RPC error (%i) is legacy: fallback is never keyed to one code, and -32020/-32021 are not evidence',
    (code) => {
      expect(verdictOf({ kind: 'error', code })).toMatchObject({ verdict: 'legacy' });
    },
  );

  it.each([400, 404, 405, 406, 415])('HTTP %i without a JSON-RPC answer is legacy', (status) => {
    expect(verdictOf({ kind: 'http', status })).toMatchObject({ verdict: 'legacy' });
  });

  it.each([401, 403, 500, 502, 503])('HTTP %i is not era evidence: the attempt fails', (status) => {
    expect(verdictOf({ kind: 'http', status })).toMatchObject({ verdict: 'unavailable' });
  });

  it('a timeout or a dead connection is legacy on stdio (with a fresh process) and a failure over HTTP', () => {
    expect(verdictOf({ kind: 'timeout' }, 'stdio')).toMatchObject({ verdict: 'legacy', restart: true });
    expect(verdictOf({ kind: 'failed', detail: 'exited' }, 'stdio')).toMatchObject({
      verdict: 'legacy',
      restart: true,
    });
    expect(verdictOf({ kind: 'timeout' }, 'http')).toMatchObject({ verdict: 'unavailable' });
    expect(verdictOf({ kind: 'failed', detail: 'ECONNREFUSED' }, 'http')).toMatchObject({ verdict: 'unavailable' });
  });
});

describe('withEnvelope', () => {
  const envelope = {
    protocolVersion: '2026-07-28',
    clientCapabilities: { elicitation: { form: {} } },
    clientInfo: { name: 'gatehouse', version: '0.1.0' },
  };

  it('adds the required keys to params without _meta (every modern request has one)', () => {
    expect(withEnvelope(undefined, envelope)).toEqual({
      _meta: {
        'io.modelcontextprotocol/protocolVersion': '2026-07-28',
        'io.modelcontextprotocol/clientCapabilities': { elicitation: { form: {} } },
        'io.modelcontextprotocol/clientInfo': { name: 'gatehouse', version: '0.1.0' },
      },
    });
  });

  it('keeps the other _meta keys and params, drops every reserved key a client sent, adds logLevel only if given', () => {
    const params: JsonObject = {
      name: 'echo',
      arguments: { text: 'x' },
      _meta: {
        progressToken: 7,
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01',
        'io.modelcontextprotocol/protocolVersion': '1999-01-01',
        'io.modelcontextprotocol/clientCapabilities': { sampling: {} },
        'io.modelcontextprotocol/clientInfo': { name: 'evil' },
        'io.modelcontextprotocol/logLevel': 'debug',
        'io.modelcontextprotocol/other': true,
      },
    };
    const out = withEnvelope(params, { ...envelope, logLevel: 'warning' });
    expect(out).toEqual({
      name: 'echo',
      arguments: { text: 'x' },
      _meta: {
        progressToken: 7,
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01',
        'io.modelcontextprotocol/protocolVersion': '2026-07-28',
        'io.modelcontextprotocol/clientCapabilities': { elicitation: { form: {} } },
        'io.modelcontextprotocol/clientInfo': { name: 'gatehouse', version: '0.1.0' },
        'io.modelcontextprotocol/logLevel': 'warning',
      },
    });
    // The caller's object is not changed.
    expect((params._meta as JsonObject)['io.modelcontextprotocol/protocolVersion']).toBe('1999-01-01');
    expect(withEnvelope(params, envelope)._meta).not.toHaveProperty(['io.modelcontextprotocol/logLevel']);
  });
});

describe('modernResultProblem', () => {
  it.each([
    ['tools/call', { content: [] }],
    ['tools/list', { resultType: 'complete', tools: [] }],
    ['tools/call', { resultType: 'input_required', inputRequests: { a: { method: 'roots/list' } } }],
    ['prompts/get', { resultType: 'input_required', requestState: 'x' }],
    ['resources/read', { resultType: 'input_required', requestState: 'x' }],
  ])('%s answering %j is kept as it is', (method, result) => {
    expect(modernResultProblem(method, result as JsonObject)).toBeUndefined();
  });

  it.each([
    ['tools/call', { resultType: 'task', taskId: 't' }, /unknown resultType "task"/],
    ['tools/call', { resultType: 7 }, /unknown resultType 7/],
    ['tools/list', { resultType: 'input_required', requestState: 'x' }, /only tools\/call, prompts\/get/],
    ['completion/complete', { resultType: 'input_required', requestState: 'x' }, /only tools\/call/],
    ['tools/call', { resultType: 'input_required' }, /without inputRequests or requestState/],
  ])('%s answering %j is a protocol error', (method, result, why) => {
    expect(modernResultProblem(method, result as JsonObject)).toMatch(why);
  });
});

describe('requiredCapabilitiesOf (-32021 data)', () => {
  it('keeps a ClientCapabilities object, drops anything else', () => {
    expect(requiredCapabilitiesOf({ requiredCapabilities: { sampling: {}, elicitation: { url: {} } } })).toEqual({
      sampling: {},
      elicitation: { url: {} },
    });
    expect(requiredCapabilitiesOf({ requiredCapabilities: ['sampling'] })).toBeUndefined();
    expect(requiredCapabilitiesOf({ requiredCapabilities: { sampling: true } })).toBeUndefined();
    expect(requiredCapabilitiesOf({})).toBeUndefined();
    expect(requiredCapabilitiesOf('sampling')).toBeUndefined();
    expect(requiredCapabilitiesOf({ requiredCapabilities: { big: { x: 'y'.repeat(5000) } } })).toBeUndefined();
  });
});

describe('withoutSubscriptionId', () => {
  it('strips the listen id and an emptied _meta, keeps the rest', () => {
    const id = 'io.modelcontextprotocol/subscriptionId';
    expect(withoutSubscriptionId({ uri: 'a://b', _meta: { [id]: 3 } })).toEqual({ uri: 'a://b' });
    expect(withoutSubscriptionId({ _meta: { [id]: 3, k: 1 } })).toEqual({ _meta: { k: 1 } });
    const untouched = { uri: 'a://b' };
    expect(withoutSubscriptionId(untouched)).toBe(untouched);
    expect(withoutSubscriptionId(undefined)).toBeUndefined();
  });
});

describe('paramHeaderValues (a client mirroring x-mcp-header)', () => {
  const tool: JsonObject = {
    name: 'q',
    inputSchema: {
      type: 'object',
      properties: {
        region: { type: 'string', 'x-mcp-header': 'Region' },
        limit: { type: 'integer', 'x-mcp-header': 'Limit' },
        options: { type: 'object', properties: { dryRun: { type: 'boolean', 'x-mcp-header': 'Dry-Run' } } },
      },
    },
  };

  it('strings as they are (encoded when not plain ASCII), integers in decimal, booleans; absent or null: none', () => {
    const a = annotationsOf(tool);
    expect(paramHeaderValues(a, { region: 'eu-west-1', limit: 10, options: { dryRun: false } })).toEqual({
      'mcp-param-region': 'eu-west-1',
      'mcp-param-limit': '10',
      'mcp-param-dry-run': 'false',
    });
    expect(paramHeaderValues(a, { region: 'Hello, 世界', limit: null })).toEqual({
      'mcp-param-region': '=?base64?SGVsbG8sIOS4lueVjA==?=',
    });
    // A number that is not an integer cannot be mirrored: no header rather than a guess.
    expect(paramHeaderValues(a, { limit: 1.5 })).toEqual({});
    expect(paramHeaderValues(a, undefined)).toEqual({});
    expect(annotationsOf(tool)).toBe(a);
  });
});
