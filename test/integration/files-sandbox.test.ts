/**
 * The bundled files policy (policies/files.yaml, root `../examples/sandbox` relative to the policy folder) in
 * front of the real @modelcontextprotocol/server-filesystem over stdio, serving <repo>/examples/sandbox: an
 * allowed read reaches the server; traversal, encoded traversal, a prefix bypass and an option-like argument
 * are refused by the gateway with -32602 and never reach it (the audit record says the policy denied them).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initializeBody, post, startGateway, type TestGateway } from '../helpers/gateway.js';
import { REPO_ROOT } from '../helpers/spawn-server.js';

const SANDBOX = join(REPO_ROOT, 'examples/sandbox');
const SERVER = join(REPO_ROOT, 'node_modules/@modelcontextprotocol/server-filesystem/dist/index.js');
let gw: TestGateway;

beforeAll(async () => {
  const files = JSON.stringify({ name: 'files', transport: 'stdio', command: process.execPath, args: [SERVER, SANDBOX], cwd: REPO_ROOT, envAllow: ['PATH', 'HOME'] });
  gw = await startGateway([files], { top: `auth:\n  mode: dev\npolicy:\n  dir: ${JSON.stringify(join(REPO_ROOT, 'policies'))}\n` });
}, 30_000);

afterAll(async () => {
  await gw?.close();
});

async function session(scopes: string[]): Promise<(name: string, args: Record<string, unknown>) => Promise<{ status: number; json: unknown }>> {
  const auth = { authorization: `Bearer ${await gw.token({ sub: 'alice', scopes })}` };
  const init = await post(gw.url, initializeBody(), auth);
  const sid = init.headers.get('mcp-session-id');
  if (init.status !== 200 || sid === null) throw new Error(`initialize failed: ${init.status} ${init.text}`);
  const headers = { ...auth, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
  await post(gw.url, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), headers);
  let id = 10;
  return async (name, args) => post(gw.url, JSON.stringify({ jsonrpc: '2.0', id: id++, method: 'tools/call', params: { name, arguments: args } }), headers);
}

function policyDenials(): number {
  return gw.logs.filter((l) => (l.audit as { decision?: string; tool?: string } | undefined)?.decision === 'deny').length;
}

describe('the files sandbox behind the bundled policy', () => {
  it('lists the filesystem tools the policy allows, and reads a file inside the sandbox', async () => {
    const client = await gw.client({ transport: { requestInit: { headers: { Authorization: `Bearer ${await gw.token({ sub: 'alice', scopes: ['files:read'] })}` } } } });
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toContain('files__read_text_file');
    expect(names).not.toContain('files__read_file'); // denied by files.no-deprecated-read
    expect(names).not.toContain('files__write_file'); // needs files:write
    const call = await session(['files:read']);
    const r = await call('files__read_text_file', { path: join(SANDBOX, 'notes/hello.txt') });
    expect(r.status).toBe(200);
    expect(JSON.stringify(r.json)).toContain('Hello from the Gatehouse sandbox.');
  });

  it.each([
    ['traversal', 'files__read_text_file', { path: `${SANDBOX}/../../package.json` }],
    ['traversal out of the sandbox to the repo', 'files__read_text_file', { path: `${SANDBOX}/../package.json` }],
    ['encoded traversal', 'files__read_text_file', { path: `${SANDBOX}/%2e%2e/%2e%2e/package.json` }],
    ['encoded slash', 'files__read_text_file', { path: `${SANDBOX}/..%2f..%2fpackage.json` }],
    ['prefix bypass', 'files__read_text_file', { path: `${SANDBOX}_evil/x` }],
    ['a path with a leading -', 'files__read_text_file', { path: '-rf' }],
    ['a search pattern with a leading -', 'files__search_files', { path: SANDBOX, pattern: '--help' }],
  ])('refuses %s with -32602 before the upstream', async (_label, tool, args) => {
    const call = await session(['files:read']);
    const before = policyDenials();
    const r = await call(tool, args);
    expect(r.status).toBe(200);
    expect((r.json as { error?: { code: number; message: string } }).error).toEqual({ code: -32602, message: 'Invalid params' });
    expect(policyDenials()).toBe(before + 1);
  });
});
