/**
 * Upstream secrets never reach a client, a log or the audit (threat model #17, OWASP MCP01). A legacy upstream
 * (test/fixtures/servers/leaky.ts) echoes the key the gateway injects — over stdio (a secret environment
 * variable) and over Streamable HTTP (an X-API-Key header; SSE answers written in 1–13 byte pieces, the key as
 * \uXXXX escapes) — in every kind of message and in raw, JSON-escaped, URL-encoded and base64 forms. A real SDK
 * client drives every kind through the gateway; then every byte the client received, every log line and the
 * audit file are searched for every form of both keys. The text around each leak must arrive intact.
 */
import { Buffer } from 'node:buffer';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  LoggingMessageNotificationSchema,
  McpError,
  type CallToolResult,
} from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { base64Holds, encodedSecrets } from '../helpers/secret-forms.js';
import { REPO_ROOT, spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';
import { startGateway, stdioFixtureYaml, type TestGateway } from '../helpers/gateway.js';

const LEAKY = join(REPO_ROOT, 'test/fixtures/servers/leaky.ts');
/** Characters that JSON, URL and base64 encoders each treat differently; the stdio key has a non-ASCII one too. */
const STDIO_KEY = 'stdio-canary/é+"Q" 4Lm8Rt2v';
const HTTP_KEY = 'http-canary/"Key"+ 7Hk2Zp0w';
const R = '[REDACTED]';

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-secret-redaction-'));
const auditFile = join(dir, 'audit.jsonl');
let web: SpawnedServer;
let gw: TestGateway;
let client: Client;
/** Every response body the client read, as it came off the wire (one entry per HTTP response). */
const wire: string[][] = [];
/** What the client's handlers and callbacks were given. */
const seen: Record<'logs' | 'progress' | 'sampling' | 'elicitation', unknown[]> = {
  logs: [],
  progress: [],
  sampling: [],
  elicitation: [],
};

/** fetch for the SDK transport that keeps a copy of every response body, chunk by chunk (open streams too). */
async function recordingFetch(url: string | URL, init?: RequestInit): Promise<Response> {
  const res = await fetch(url, init);
  if (res.body === null) return res;
  const [mine, theirs] = res.body.tee();
  const chunks: string[] = [];
  wire.push(chunks);
  const decoder = new TextDecoder();
  void (async () => {
    const reader = mine.getReader();
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      chunks.push(decoder.decode(r.value, { stream: true }));
    }
  })().catch(() => undefined);
  return new Response(theirs, { status: res.status, statusText: res.statusText, headers: res.headers });
}

beforeAll(async () => {
  web = await spawnServer(LEAKY, { args: ['--port', '0'] });
  gw = await startGateway(
    [
      stdioFixtureYaml('lk', {
        args: ['--import', 'tsx', LEAKY, '--stdio'],
        env: { LEAKY_KEY: { fromEnv: 'STDIO_KEY' } },
      }),
      JSON.stringify({
        name: 'web',
        transport: 'http',
        url: web.url,
        headers: { 'X-API-Key': { fromEnv: 'HTTP_KEY' } },
      }),
    ],
    {
      top: `audit:\n  sink: file\n  file: ${JSON.stringify(auditFile)}\n`,
      env: { ...process.env, STDIO_KEY, HTTP_KEY },
    },
  );
  client = await gw.client({ capabilities: { sampling: {}, elicitation: {} }, transport: { fetch: recordingFetch } });
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void seen.logs.push(n.params));
  client.setRequestHandler(CreateMessageRequestSchema, (request) => {
    seen.sampling.push(request.params);
    return { role: 'assistant', content: { type: 'text', text: 'ok' }, model: 'test' };
  });
  client.setRequestHandler(ElicitRequestSchema, (request) => {
    seen.elicitation.push(request.params);
    return { action: 'decline' };
  });
  await client.setLoggingLevel('debug');
}, 60_000);

afterAll(async () => {
  await gw?.close();
  await web?.close();
  rmSync(dir, { recursive: true, force: true });
});

function texts(result: CallToolResult): string[] {
  return result.content.flatMap((c) => (c.type === 'text' ? [c.text] : []));
}

describe('known upstream secrets are redacted on every path', () => {
  const results: Record<string, unknown> = {};

  it.each(['lk', 'web'])(
    '%s: lists, calls, resources and prompts arrive without the key',
    async (up) => {
      const tools = (await client.listTools()).tools.filter((t) => t.name.startsWith(`${up}__`));
      const leak = tools.find((t) => t.name === `${up}__leak`)!;
      expect(leak.description).toBe(`Debug build: key <<${R}>>`);
      expect(JSON.stringify(leak.inputSchema)).toContain('default <<REDACTEDREDACTED');

      const progress: unknown[] = [];
      const onprogress = (p: unknown): void => void progress.push(p);
      const call = (await client.callTool({ name: `${up}__leak` }, undefined, { onprogress })) as CallToolResult;
      seen.progress.push(...progress);
      const [raw, json, url, form, base64] = texts(call);
      expect(raw).toBe(`raw <<${R}>> café ✓`);
      expect(json).toBe(`json <<{"apiKey":"${R}"}>>`);
      expect(url).toBe(`url <<${R}>> <<${R}>>`);
      expect(form).toBe(`form <<k=${R}>>`);
      // Base64 forms are filled with letters, so a blob stays base64 (the client checks a resource `blob`).
      expect(base64).toMatch(/^base64 (<<[A-Za-z0-9+/_=-]*REDACTEDREDACTED[A-Za-z0-9+/_=-]*>> ?){4}$/);
      expect(call.structuredContent).toEqual({ [R]: 'as a key', nested: { debug: `<<${R}>>` } });
      expect(progress).toEqual([expect.objectContaining({ progress: 1, total: 2, message: `progress <<${R}>>` })]);

      const failed = await client.callTool({ name: `${up}__leak_error`, arguments: {} }).catch((e: unknown) => e);
      expect(failed).toBeInstanceOf(McpError);
      const toolError = (await client.callTool({ name: `${up}__leak_is_error`, arguments: {} })) as CallToolResult;
      expect(toolError.isError).toBe(true);
      expect(texts(toolError)).toEqual([`401 for <<${R}>>`]);

      const scheme = up === 'lk' ? 'leaky-stdio' : 'leaky-http';
      const resources = (await client.listResources()).resources.filter((r) => r.uri.startsWith(`${scheme}://`));
      expect(resources.map((r) => r.description)).toContain(`doc for <<${R}>>`);
      const doc = await client.readResource({ uri: `${scheme}://doc` });
      expect(doc.contents[0]).toMatchObject({ text: `text resource <<${R}>> café ✓` });
      const blobs = await client.readResource({ uri: `${scheme}://blob` });
      expect(blobs.contents).toHaveLength(3);
      // Still base64, and only the key's bytes changed: the blob's own tail decodes as it was.
      for (const c of blobs.contents) {
        expect(Buffer.from('blob' in c ? c.blob : '', 'base64').toString('latin1')).toMatch(/tail$/);
      }
      const prompt = await client.getPrompt({ name: `${up}__leaky` });
      expect(prompt.messages[0]!.content).toEqual({ type: 'text', text: `prompt text <<${R}>>` });
      const prompts = await client.listPrompts();
      results[up] = { tools, call, failed: String(failed), toolError, resources, doc, blobs, prompt, prompts };
    },
    60_000,
  );

  it('relayed logging notifications, sampling and elicitation requests carry no key', () => {
    const containing = (fields: Record<string, unknown>): unknown =>
      expect.arrayContaining([expect.objectContaining(fields)]);
    expect(seen.logs).toEqual(containing({ data: { note: `<<${R}>>`, [R]: 'as a key' } }));
    const sampled = { role: 'user', content: { type: 'text', text: `sample <<${R}>>` } };
    expect(seen.sampling).toEqual(containing({ messages: [sampled] }));
    expect(seen.elicitation).toEqual(containing({ message: `confirm <<${R}>>` }));
  });

  it('no form of either key is in what the client received, the logs or the audit file', async () => {
    // Closing flushes the audit file and ends the client's open streams.
    await gw.close();
    const audit = readFileSync(auditFile, 'utf8');
    const logs = JSON.stringify(gw.logs);
    const received = [...wire.map((chunks) => chunks.join('')), JSON.stringify(results), JSON.stringify(seen)];
    // The searches are real: they hold the records and answers the leaks produced, redacted.
    expect(audit).toContain(`backend refused key ${R}`);
    expect(logs).toContain(`connecting with key ${R}`);
    expect(logs).toMatch(/"sample":"DEBUG x{185} \[REDACTED\]…"/);
    expect(wire.map((chunks) => chunks.join('')).join('\n')).toContain(`raw <<${R}>> café ✓`);
    const outputs: Record<string, string[]> = { audit: [audit], logs: [logs], client: received };
    for (const key of [STDIO_KEY, HTTP_KEY]) {
      for (const [where, list] of Object.entries(outputs)) {
        for (const text of list) {
          for (const form of encodedSecrets(key)) {
            expect(text.includes(form), `${where} holds ${JSON.stringify(form)}`).toBe(false);
          }
          expect(base64Holds(text, key), `${where} holds ${key} in base64`).toBe(false);
        }
      }
    }
  }, 30_000);
});
