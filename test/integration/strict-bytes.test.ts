/**
 * Bytes the gateway must not repair or wait on (threat model #8, #18), end to end with real parts: raw HTTP and the
 * official SDK client in front, real fixture upstreams behind (stdio, Streamable HTTP with SSE and with JSON
 * answers, legacy HTTP+SSE) that answer with malformed bytes on demand (fixtures/servers/fixture-bad-replies.ts).
 *
 * - A request body that is not UTF-8 is a parse error (-32700, HTTP 400) and reaches no upstream.
 * - An upstream reply that is not UTF-8, not JSON, too deep or not JSON-RPC fails its call at once, with the
 *   tool named and the upstream's bytes nowhere in the answer. The upstream timeout here is 60 s and each test
 *   has 20 s: a call left waiting for its deadline fails the test.
 * - SSE sizes are bytes; bare-CR line endings are line endings.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_HTTP, rawSession, startGateway, stdioFixtureYaml, type TestGateway } from '../helpers/gateway.js';
import { spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';
import { readRecord, toolCalls, waitFor, type RecordLine } from '../helpers/upstream-tools.js';

const TEST_MS = 20_000;
/** Far longer than any test may take: a call that waits for it fails the test. */
const UPSTREAM_TIMEOUT_MS = 60_000;
const MAX_MESSAGE_BYTES = 200_000;
const VERSION = '2025-11-25';

const tmp = mkdtempSync(join(tmpdir(), 'gatehouse-strict-bytes-'));
const records = {
  fx: join(tmp, 'fx.jsonl'),
  fxshort: join(tmp, 'fxshort.jsonl'),
  web: join(tmp, 'web.jsonl'),
  webjson: join(tmp, 'webjson.jsonl'),
};
let web: SpawnedServer;
let webjson: SpawnedServer;
let gw: TestGateway;
let client: Client;

beforeAll(async () => {
  const bad = { FIXTURE_BAD_REPLIES: '1' };
  [web, webjson] = await Promise.all([
    spawnServer(FIXTURE_HTTP, { env: { ...bad, FIXTURE_RECORD_FILE: records.web } }),
    spawnServer(FIXTURE_HTTP, { env: { ...bad, FIXTURE_RECORD_FILE: records.webjson, FIXTURE_JSON_RESPONSE: '1' } }),
  ]);
  const limits = {
    timeoutMs: UPSTREAM_TIMEOUT_MS,
    maxTotalTimeoutMs: UPSTREAM_TIMEOUT_MS,
    maxMessageBytes: MAX_MESSAGE_BYTES,
  };
  gw = await startGateway([
    stdioFixtureYaml('fx', { ...limits, env: { ...bad, FIXTURE_RECORD_FILE: records.fx } }),
    // Only for what cannot be attributed: it must time out like any unanswered call, never fail another call.
    stdioFixtureYaml('fxshort', { ...limits, timeoutMs: 1500, env: { ...bad, FIXTURE_RECORD_FILE: records.fxshort } }),
    JSON.stringify({ name: 'web', transport: 'http', url: web.url, ...limits }),
    JSON.stringify({ name: 'webjson', transport: 'http', url: webjson.url, ...limits }),
    JSON.stringify({ name: 'legacy', transport: 'sse', url: new URL('/sse', web.url).href, ...limits }),
  ]);
  client = await gw.client();
}, 60_000);

afterAll(async () => {
  await gw?.close();
  await Promise.all([web?.close(), webjson?.close()]);
  rmSync(tmp, { recursive: true, force: true });
});

function textOf(r: unknown): string {
  const first = (r as CallToolResult).content[0];
  return first?.type === 'text' ? first.text : '';
}

async function failure(name: string, args: Record<string, unknown>): Promise<Error & { code?: number }> {
  try {
    const r = await client.callTool({ name, arguments: args });
    throw new Error(`expected ${name} to fail, got ${JSON.stringify(r)}`);
  } catch (err) {
    return err as Error & { code?: number };
  }
}

/** POST raw bytes (fetch would re-encode a string); node:http writes each part as it is given. */
function postBytes(
  url: string,
  parts: Buffer[],
  headers: Record<string, string>,
): Promise<{ status: number; text: string }> {
  const u = new URL(url);
  const length = parts.reduce((n, p) => n + p.length, 0);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: u.hostname,
        port: u.port,
        method: 'POST',
        path: u.pathname,
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'content-length': String(length),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    // Each part its own write, a tick apart: a multi-byte character can be split between TCP chunks.
    const writeFrom = (i: number): void => {
      if (i === parts.length) {
        req.end();
        return;
      }
      req.write(parts[i]);
      setTimeout(() => writeFrom(i + 1), 20);
    };
    writeFrom(0);
  });
}

function toolCall(id: number, name: string, text: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(`{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"${name}","arguments":{"text":"`),
    text,
    Buffer.from('"}}}'),
  ]);
}

describe('a request body that is not UTF-8 (threat model #8)', () => {
  let headers: Record<string, string>;
  beforeAll(async () => {
    headers = { 'mcp-session-id': await rawSession(gw.url, VERSION), 'mcp-protocol-version': VERSION };
  });

  it.each([
    ['C0 AF FF inside a string', [0xc0, 0xaf, 0xff]],
    ['an encoded surrogate (ED A0 80)', [0xed, 0xa0, 0x80]],
    ['an overlong "/" (E0 80 AF)', [0xe0, 0x80, 0xaf]],
  ])('%s: HTTP 400, -32700, and the upstream is never called', async (_what, bytes) => {
    const marker = `marker-${bytes.join('-')}`;
    const r = await postBytes(
      gw.url,
      [toolCall(7, 'fx__echo', Buffer.concat([Buffer.from(marker), Buffer.from(bytes)]))],
      headers,
    );
    expect(r.status).toBe(400);
    expect(JSON.parse(r.text)).toEqual({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } });
    // A call that does reach it proves the record is being written; the refused one never appears.
    expect(textOf(await client.callTool({ name: 'fx__echo', arguments: { text: `after-${marker}` } }))).toBe(
      `after-${marker}`,
    );
    const echoed = toolCalls(records.fx, 'echo').map((l) => JSON.stringify(l.params));
    expect(echoed.some((p) => p.includes(`after-${marker}`))).toBe(true);
    expect(echoed.some((p) => p.includes(`"${marker}`))).toBe(false);
  });

  it('a character cut short where one TCP write ends and the next begins is refused too', async () => {
    const r = await postBytes(
      gw.url,
      [
        Buffer.from([...Buffer.from('{"jsonrpc":"2.0","id":8,"method":"ping","params":{"x":"a'), 0xe6]),
        Buffer.from('"}}'),
      ],
      headers,
    );
    expect(r.status).toBe(400);
    expect(JSON.parse(r.text)).toMatchObject({ error: { code: -32700 } });
  });

  it('a character split between two TCP writes arrives whole', async () => {
    const body = toolCall(9, 'fx__echo', Buffer.from('grüße ✓'));
    const cut = body.indexOf(Buffer.from('ü')) + 1; // between the two bytes of "ü"
    const r = await postBytes(gw.url, [body.subarray(0, cut), body.subarray(cut)], headers);
    expect(r.status).toBe(200);
    expect(r.text).toContain('grüße ✓');
  });
});

const PROTOCOL_KINDS = ['not-utf8', 'not-json', 'too-deep', 'not-json-rpc'] as const;
const ALL_TRANSPORTS = ['fx', 'web', 'webjson', 'legacy'] as const;

function recordOf(upstream: (typeof ALL_TRANSPORTS)[number]): string {
  return upstream === 'legacy' ? records.web : records[upstream];
}

describe('an upstream reply the gateway cannot use fails its call at once (threat model #18)', () => {
  it.each(ALL_TRANSPORTS.flatMap((u) => PROTOCOL_KINDS.map((k) => [u, k] as const)))(
    '%s answers %s: a generic error naming the tool; the call is cancelled upstream; the upstream stays usable',
    async (upstream, kind) => {
      const err = await failure(`${upstream}__bad_reply`, { kind });
      expect(err.code).toBe(-32603);
      expect(err.message).toBe(`MCP error -32603: Tool ${upstream}__bad_reply failed`);
      // The gateway says why in its log (the detail), never to the client.
      expect(
        gw.logs.some((l) => l.upstream === upstream && typeof l.reason === 'string' && l.msg?.includes('not JSON-RPC')),
      ).toBe(true);
      const call = toolCalls(recordOf(upstream), 'bad_reply').find(
        (l) =>
          (l.params?.arguments as { kind?: string } | undefined)?.kind === kind &&
          l.transport === transportOf(upstream),
      )!;
      expect(typeof call.id).toBe('number');
      const cancelled = await waitFor('notifications/cancelled at the upstream', () =>
        readRecord(recordOf(upstream)).find(
          (l: RecordLine) =>
            l.method === 'notifications/cancelled' &&
            l.params?.requestId === call.id &&
            l.transport === transportOf(upstream),
        ),
      );
      expect(cancelled.params?.reason).toBe('response unusable');
      expect(textOf(await client.callTool({ name: `${upstream}__echo`, arguments: { text: `after ${kind}` } }))).toBe(
        `after ${kind}`,
      );
    },
    TEST_MS,
  );

  it(
    'the audit record of such a call says why (the wire does not)',
    async () => {
      await failure('fx__bad_reply', { kind: 'not-utf8' });
      const audits = gw.logs.filter((l) => (l.audit as { tool?: string } | undefined)?.tool === 'fx__bad_reply');
      expect(audits.length).toBeGreaterThan(0);
      expect(JSON.stringify(audits.at(-1))).toMatch(/GW_UPSTREAM_PROTOCOL/);
      expect(JSON.stringify(audits.at(-1))).toMatch(/not valid UTF-8/);
    },
    TEST_MS,
  );

  it(
    'only the call it answered fails: a call in flight beside it on the same stdio upstream succeeds',
    async () => {
      const [bad, good] = await Promise.allSettled([
        client.callTool({ name: 'fx__bad_reply', arguments: { kind: 'not-utf8' } }),
        client.callTool({ name: 'fx__slow', arguments: { ms: 300 } }),
      ]);
      expect(bad.status).toBe('rejected');
      expect(good.status).toBe('fulfilled');
    },
    TEST_MS,
  );

  it.each(['web', 'webjson'] as const)(
    '%s: bytes with no id on the POST that carried them still fail that call (by its stream)',
    async (upstream) => {
      const err = await failure(`${upstream}__bad_reply`, { kind: 'no-id' });
      expect(err.message).toBe(`MCP error -32603: Tool ${upstream}__bad_reply failed`);
    },
    TEST_MS,
  );

  it(
    'stdio: bytes that name no call fail none — the call runs to its own deadline, its neighbour is unharmed',
    async () => {
      const [lost, good] = await Promise.allSettled([
        client.callTool({ name: 'fxshort__bad_reply', arguments: { kind: 'no-id' } }),
        client.callTool({ name: 'fxshort__echo', arguments: { text: 'neighbour' } }),
      ]);
      expect(lost.status === 'rejected' && String(lost.reason)).toContain(
        'Tool fxshort__bad_reply did not answer in time',
      );
      expect(good.status === 'fulfilled' && textOf(good.value)).toBe('neighbour');
      expect(
        gw.logs.some((l) => l.upstream === 'fxshort' && l.reason === 'not valid UTF-8' && l.call === undefined),
      ).toBe(true);
    },
    TEST_MS,
  );
});

describe('SSE framing and sizes (WHATWG HTML §9.2.6)', () => {
  it.each(['web', 'legacy'] as const)(
    '%s: an answer whose lines end with a bare CR is read',
    async (upstream) => {
      expect(textOf(await client.callTool({ name: `${upstream}__bad_reply`, arguments: { kind: 'cr' } }))).toBe(
        'framed with CR',
      );
    },
    TEST_MS,
  );

  it.each(['web', 'legacy'] as const)(
    '%s: an event under the cap in characters but over it in bytes is too large',
    async (upstream) => {
      const chars = Math.floor(MAX_MESSAGE_BYTES * 0.75); // 150,000 × "é": 300,000 bytes
      const err = await failure(`${upstream}__bad_reply`, { kind: 'oversized-utf8', chars });
      expect(err.message).toBe(`MCP error -32603: Tool ${upstream}__bad_reply returned a response that is too large`);
      expect(textOf(await client.callTool({ name: `${upstream}__echo`, arguments: { text: 'after oversized' } }))).toBe(
        'after oversized',
      );
    },
    TEST_MS,
  );
});

function transportOf(upstream: (typeof ALL_TRANSPORTS)[number]): RecordLine['transport'] {
  return upstream === 'fx' ? 'stdio' : upstream === 'legacy' ? 'sse' : 'streamable-http';
}
