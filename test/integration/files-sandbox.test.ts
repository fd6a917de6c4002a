/**
 * The bundled files policy (policies/files.yaml, root `../examples/sandbox` relative to the policy folder) in
 * front of the real @modelcontextprotocol/server-filesystem over stdio, serving <repo>/examples/sandbox: an
 * allowed read reaches the server; traversal, encoded traversal, a prefix bypass and an option-like argument
 * are refused by the gateway with -32602 and never reach it (the audit record says the policy denied them).
 * Paths that are not canonical (`//`, `/./`, `..;`, trailing dots, invisible Unicode…) are refused too, not
 * normalised: the gateway forwards the text it decided on, byte for byte (threat model #8, #10).
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initializeBody, post, startGateway, type TestGateway } from '../helpers/gateway.js';
import { REPO_ROOT } from '../helpers/spawn-server.js';

const SANDBOX = join(REPO_ROOT, 'examples/sandbox');
/** A folder of this run's own inside the sandbox, for the writes (removed afterwards). */
const SCRATCH = join(SANDBOX, `.gatehouse-test-${process.pid}`);
const SERVER = join(REPO_ROOT, 'node_modules/@modelcontextprotocol/server-filesystem/dist/index.js');
let gw: TestGateway;

beforeAll(async () => {
  mkdirSync(join(SCRATCH, 'sub'), { recursive: true });
  const files = JSON.stringify({
    name: 'files',
    transport: 'stdio',
    command: process.execPath,
    args: [SERVER, SANDBOX],
    cwd: REPO_ROOT,
    envAllow: ['PATH', 'HOME'],
  });
  gw = await startGateway([files], {
    top: `auth:\n  mode: dev\npolicy:\n  dir: ${JSON.stringify(join(REPO_ROOT, 'policies'))}\n`,
  });
}, 30_000);

afterAll(async () => {
  await gw?.close();
  rmSync(SCRATCH, { recursive: true, force: true });
});

/** Every name under the scratch folder, recursively: what a write that reached the server would change. */
function scratchListing(): string[] {
  return (readdirSync(SCRATCH, { recursive: true }) as string[]).sort();
}

async function session(
  scopes: string[],
): Promise<(name: string, args: Record<string, unknown>) => Promise<{ status: number; json: unknown }>> {
  const auth = { authorization: `Bearer ${await gw.token({ sub: 'alice', scopes })}` };
  const init = await post(gw.url, initializeBody(), auth);
  const sid = init.headers.get('mcp-session-id');
  if (init.status !== 200 || sid === null) throw new Error(`initialize failed: ${init.status} ${init.text}`);
  const headers = { ...auth, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
  await post(gw.url, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), headers);
  let id = 10;
  return async (name, args) =>
    post(
      gw.url,
      JSON.stringify({ jsonrpc: '2.0', id: id++, method: 'tools/call', params: { name, arguments: args } }),
      headers,
    );
}

interface RpcReply {
  error?: { code: number; message: string };
  result?: { content?: { text?: string }[]; isError?: boolean };
}

function audits(): Record<string, unknown>[] {
  return gw.logs.filter((l) => l.audit !== undefined).map((l) => l.audit as Record<string, unknown>);
}

function policyDenials(): number {
  return gw.logs.filter((l) => (l.audit as { decision?: string; tool?: string } | undefined)?.decision === 'deny')
    .length;
}

describe('the files sandbox behind the bundled policy', () => {
  it('lists the filesystem tools the policy allows, and reads a file inside the sandbox', async () => {
    const client = await gw.client({
      transport: {
        requestInit: {
          headers: { Authorization: `Bearer ${await gw.token({ sub: 'alice', scopes: ['files:read'] })}` },
        },
      },
    });
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
    expect((r.json as { error?: { code: number; message: string } }).error).toEqual({
      code: -32602,
      message: 'Invalid params',
    });
    expect(policyDenials()).toBe(before + 1);
  });

  // Defect 7: each of these was normalised (or let through) by the check while the raw text was forwarded.
  it.each([
    ['a doubled slash inside the path', `${SCRATCH}//probe.txt`, 'empty_segment'],
    ['a doubled slash after a folder', `${SCRATCH}/sub//probe.txt`, 'empty_segment'],
    ['a "." segment', `${SCRATCH}/./probe.txt`, 'dot_segment'],
    ['a trailing dot (Windows trims it)', `${SCRATCH}/probe.txt.`, 'trailing_dot_or_space'],
    ['a trailing space', `${SCRATCH}/probe.txt `, 'trailing_dot_or_space'],
    ['a path parameter', `${SCRATCH}/sub/..;/probe.txt`, 'path_parameter'],
    ['a percent sign', `${SCRATCH}/probe%20x.txt`, 'encoded_character'],
    ['an NTFS stream', `${SCRATCH}/probe.txt::$DATA`, 'drive_or_stream'],
    ['a zero-width space', `${SCRATCH}/probe\u200b.txt`, 'format_character'],
    ['a bidi override', `${SCRATCH}/probe\u202etxt.exe`, 'bidi_control'],
    ['a combining mark on a dot', `${SCRATCH}/.\u0301.probe`, 'combining_mark'],
    ['a lone surrogate', `${SCRATCH}/probe\ud800.txt`, 'lone_surrogate'],
    ['a fullwidth dot pair', `${SCRATCH}/\uff0e\uff0e/probe.txt`, 'unicode_lookalike'],
    ['a shell character', `${SCRATCH}/probe$(id).txt`, 'disallowed_character'],
  ])('refuses %s: -32602, the reason in the audit record, nothing written', async (_, path, reason) => {
    const call = await session(['files:write']);
    const before = scratchListing();
    const denials = policyDenials();
    const r = await call('files__write_file', { path, content: 'written through the gateway' });
    expect(r.status).toBe(200);
    expect((r.json as RpcReply).error).toEqual({ code: -32602, message: 'Invalid params' });
    expect(policyDenials()).toBe(denials + 1);
    const detail = audits().findLast((a) => a.tool === 'files__write_file')?.detail;
    expect(detail).toBe(`denied invalid_arguments: rule files.write field /path constraint path:${reason}`);
    expect(scratchListing()).toEqual(before);
  });

  it('reads a folder written with a trailing slash, and forwards a legitimate unusual name byte for byte', async () => {
    const read = await session(['files:read']);
    const listed = await read('files__list_directory', { path: `${SANDBOX}/notes/` });
    expect(JSON.stringify(listed.json)).toContain('hello.txt');

    // NFD (as macOS writes names) with spaces and brackets: canonical, so admitted and sent exactly as written.
    const name = 're\u0301sume\u0301 (1) [draft].txt';
    const write = await session(['files:write']);
    const w = await write('files__write_file', { path: `${SCRATCH}/${name}`, content: 'forwarded as written' });
    expect((w.json as RpcReply).result?.isError ?? false).toBe(false);
    // On Linux names are bytes: had anything normalised the path to NFC on the way, this would be another name.
    expect(readdirSync(SCRATCH).filter((n) => n !== 'sub')).toEqual([name]);
    const r = await read('files__read_text_file', { path: `${SCRATCH}/${name}` });
    expect(JSON.stringify(r.json)).toContain('forwarded as written');
  });
});
