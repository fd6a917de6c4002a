/**
 * Canaries: an upstream's static key (a header from an environment secret), an stdio upstream's secret
 * environment variable and a client's access token are pushed through every path that writes something —
 * allowed, denied and failing calls, authentication failures, the token sent in the query string, the token
 * passed as a tool argument — and then searched for in ALL output: the audit file, the operational logs and
 * every answer the client got. None may appear. (The telemetry step extends the search to metrics and traces.)
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FIXTURE_HTTP,
  initializeBody,
  post,
  startGateway,
  stdioFixtureYaml,
  type TestGateway,
} from '../helpers/gateway.js';
import { spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';

const UPSTREAM_KEY = 'canary-upstream-key-7f3a9c2e51d84b06';
const STDIO_SECRET = 'canary-stdio-secret-0b1d2f3e4a5c6d7e';

const POLICY = `version: 1
rules:
  - id: canary.allow
    effect: allow
    match:
      tools: [fx__echo, fx__hang, fx__huge, web__echo, web__huge]
    when:
      authenticated: true
      scopes: { allOf: ["canary:use"] }
    redact: [password]
`;

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-audit-canary-'));
const auditFile = join(dir, 'audit.jsonl');
let web: SpawnedServer;
let gw: TestGateway;
let token: string;
/** Everything the client was answered (bodies and headers). */
const answers: string[] = [];

beforeAll(async () => {
  web = await spawnServer(FIXTURE_HTTP, { args: ['--port', '0'] });
  const policyDir = join(dir, 'policy');
  mkdirSync(policyDir);
  writeFileSync(join(policyDir, 'canary.yaml'), POLICY);
  gw = await startGateway(
    [
      stdioFixtureYaml('fx', {
        timeoutMs: 1000,
        maxMessageBytes: 65536,
        env: { CANARY_SECRET: { fromEnv: 'CANARY_STDIO_SECRET' } },
      }),
      JSON.stringify({
        name: 'web',
        transport: 'http',
        url: web.url,
        maxMessageBytes: 65536,
        headers: { 'X-Api-Key': { fromEnv: 'CANARY_UPSTREAM_KEY' } },
      }),
    ],
    {
      top: `auth:\n  mode: dev\npolicy:\n  dir: ${JSON.stringify(policyDir)}\naudit:\n  sink: file\n  file: ${JSON.stringify(auditFile)}\n`,
      env: { ...process.env, CANARY_UPSTREAM_KEY: UPSTREAM_KEY, CANARY_STDIO_SECRET: STDIO_SECRET },
    },
  );
  token = await gw.token({ sub: 'canary-user', scopes: ['canary:use'] });
}, 60_000);

afterAll(async () => {
  await gw?.close();
  await web?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function send(body: unknown, headers: Record<string, string>, url = gw.url, keepAnswer = true): Promise<void> {
  const r = await post(url, JSON.stringify(body), headers);
  if (keepAnswer) answers.push(r.text, JSON.stringify([...r.headers.entries()]));
}

describe('canaries never reach any output', () => {
  it('drives allowed, denied, failing and unauthenticated requests, then finds no canary anywhere', async () => {
    const auth = { authorization: `Bearer ${token}` };
    const init = await post(gw.url, initializeBody(), auth);
    answers.push(init.text);
    const sid = init.headers.get('mcp-session-id')!;
    expect(init.status).toBe(200);
    const h = { ...auth, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
    await send({ jsonrpc: '2.0', method: 'notifications/initialized' }, h);
    let id = 1;
    // `echoed`: the echo tool hands the client's own argument back; that answer is the client's data, not output.
    const call = (name: string, args: Record<string, unknown>, echoed = false): Promise<void> =>
      send({ jsonrpc: '2.0', id: id++, method: 'tools/call', params: { name, arguments: args } }, h, gw.url, !echoed);
    await call('fx__echo', { text: 'plain' });
    await call('web__echo', { text: 'plain' });
    // The token handed to a tool as an argument, under a secret-named key and inside text: redacted in the record.
    await call('fx__echo', { text: `my token is ${token}` }, true);
    await call('fx__echo', { password: token, text: 'x' }, true);
    await call('fx__huge', { bytes: 200_000 });
    await call('web__huge', { bytes: 200_000 });
    await call('fx__hang', {});
    await call('fx__nope', {});
    await call('fx__env_report', {});
    // Authentication failures: a token for another audience, a mangled one, the token in the query string.
    await send({ jsonrpc: '2.0', id: 99, method: 'ping' }, { ...h, authorization: `Bearer ${token.slice(0, -4)}AAAA` });
    await send(
      { jsonrpc: '2.0', id: 98, method: 'ping' },
      {
        ...h,
        authorization: `Bearer ${await gw.token({ sub: 'x', scopes: [], audience: 'https://elsewhere.example/mcp' })}`,
      },
    );
    await send(JSON.parse(initializeBody()), {}, `${gw.url}?access_token=${token}`);
    await new Promise((r) => setTimeout(r, 300));

    const audit = readFileSync(auditFile, 'utf8');
    const logs = JSON.stringify(gw.logs);
    const everything = [audit, logs, ...answers].join('\n');
    // The searches are real: the output holds the records these requests produced.
    expect(audit).toContain('"subject":"canary-user"');
    expect(audit).toContain('auth.failure');
    expect(audit).toContain('GW_UPSTREAM_RESPONSE_TOO_LARGE');
    // The token given as an argument was recorded — redacted by shape and by key name.
    expect(audit).toContain('"text":"my token is [REDACTED]"');
    expect(audit).toContain('"password":"[REDACTED]"');
    const signature = token.split('.')[2]!;
    for (const canary of [UPSTREAM_KEY, STDIO_SECRET, token, signature]) {
      const where = {
        audit: audit.includes(canary),
        logs: logs.includes(canary),
        answers: answers.filter((a) => a.includes(canary)).map((a) => a.slice(0, 200)),
      };
      expect(everything.includes(canary), `canary ${canary.slice(0, 12)}… found: ${JSON.stringify(where)}`).toBe(false);
    }
  });
});
