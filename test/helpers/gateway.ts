/**
 * Starts a real gateway in this process on 127.0.0.1:0 from a YAML text, the way `gatehouse start` does
 * (loadConfig → buildApp → start → listen), and connects official SDK clients to it.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  StreamableHTTPClientTransport,
  type StreamableHTTPClientTransportOptions,
} from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { ClientCapabilities } from '@modelcontextprotocol/sdk/types.js';
import { pino, type Logger } from 'pino';
import { parse as parseYaml } from 'yaml';
import { buildApp, type App, type AppDeps } from '../../src/app.js';
import { loadOrCreateDevKey, type DevKey, type MintOptions } from '../../src/auth/dev-keys.js';
import { loadConfig } from '../../src/config/load.js';
import type { GatehouseConfig } from '../../src/config/types.js';
import { REPO_ROOT } from './spawn-server.js';

export const FIXTURE_STDIO = join(REPO_ROOT, 'test/fixtures/servers/fixture-stdio.ts');
export const FIXTURE_HTTP = join(REPO_ROOT, 'test/fixtures/servers/fixture-http.ts');
export const ORDERS_SERVER = join(REPO_ROOT, 'examples/orders/server.ts');
/** A stdio upstream whose tool marks parameters with `x-mcp-header` (MCP 2026-07-28). */
export const PARAM_HEADERS_SERVER = join(REPO_ROOT, 'test/fixtures/servers/param-headers.ts');
/** A 2026-07-28-only server on the official v2 server SDK (HTTP, or stdio with `--stdio`). */
export const V2_MODERN_SERVER = join(REPO_ROOT, 'test/fixtures/servers/v2-modern.ts');
/** A stdio upstream whose tools declare outputSchemas and break them on demand (output validation). */
export const OUTPUT_SCHEMAS_SERVER = join(REPO_ROOT, 'test/fixtures/servers/output-schemas.ts');
export const EVERYTHING = join(REPO_ROOT, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');

/** YAML for a stdio upstream running one of our TypeScript fixtures through tsx. */
export function stdioFixtureYaml(name: string, extra: Record<string, unknown> = {}, file = FIXTURE_STDIO): string {
  return JSON.stringify({
    name,
    transport: 'stdio',
    command: process.execPath,
    args: ['--import', 'tsx', file],
    cwd: REPO_ROOT,
    envAllow: ['PATH', 'HOME'],
    ...extra,
  });
}

/** YAML for a stdio upstream running the official server-everything. */
export function everythingStdioYaml(name: string): string {
  return JSON.stringify({
    name,
    transport: 'stdio',
    command: process.execPath,
    args: [EVERYTHING, 'stdio'],
    envAllow: ['PATH', 'HOME'],
  });
}

export interface LogLine {
  level: number;
  /** Absent on audit records (they carry `audit`, `chain`, `hash` instead). */
  msg?: string;
  [key: string]: unknown;
}

export interface TestGateway extends AsyncDisposable {
  app: App;
  url: string;
  /** Every log line written, parsed (operational and audit). */
  logs: LogLine[];
  dir: string;
  /** `transport` options go to the SDK transport as they are (e.g. `requestInit` headers a real client would send). */
  client(opts?: {
    capabilities?: ClientCapabilities;
    name?: string;
    transport?: StreamableHTTPClientTransportOptions;
  }): Promise<Client>;
  /**
   * `auth: {mode: dev}` only: an access token for this gateway (its `auth.resource` and dev issuer), signed by
   * its dev key (created in `dir`, like `gatehouse token` does). Throws in other modes.
   */
  token(
    opts: { sub: string; scopes: readonly string[] } & Partial<Omit<MintOptions, 'sub' | 'scopes'>>,
  ): Promise<string>;
  close(): Promise<void>;
}

export async function startGateway(
  upstreamsYaml: string[],
  opts: {
    top?: string;
    env?: NodeJS.ProcessEnv;
    deps?: Partial<AppDeps>;
    /** Extra keys of the `server:` section (JSON values). */
    server?: Record<string, unknown>;
    /** Adjusts the loaded config before the app is built (e.g. a `server.tls` built from the types). */
    configure?: (config: GatehouseConfig) => GatehouseConfig;
    /** Listen on this port (default 0: any free one). Fixing it lets `auth.resource` default to the real URL. */
    port?: number;
  } = {},
): Promise<TestGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-test-'));
  const file = join(dir, 'gatehouse.yaml');
  const serverExtra = Object.entries(opts.server ?? {})
    .map(([k, v]) => `  ${k}: ${JSON.stringify(v)}\n`)
    .join('');
  writeFileSync(
    file,
    `server:\n  host: 127.0.0.1\n  port: ${opts.port ?? 0}\n${serverExtra}${opts.top ?? ''}\nlogging:\n  level: debug\n${permissivePolicyFor(opts.top ?? '', dir)}upstreams:\n${upstreamsYaml.map((u) => `  - ${u}`).join('\n')}\n`,
  );
  const loaded = loadConfig(file, opts.env ? { env: opts.env } : {});
  const config = opts.configure ? opts.configure(loaded) : loaded;
  const logs: LogLine[] = [];
  const logger: Logger = pino(
    { level: 'debug' },
    {
      write(line: string) {
        logs.push(JSON.parse(line) as LogLine);
      },
    },
  );
  // auth.mode dev: the key file defaults to .gatehouse/ beside the config, i.e. inside this temp dir.
  const devKey: DevKey | undefined =
    config.auth.mode === 'dev' && config.auth.dev ? await loadOrCreateDevKey(config.auth.dev.keyFile) : undefined;
  const app = buildApp(config, { logger, ...(devKey ? { devJwks: devKey.publicJwks() } : {}), ...opts.deps });
  await app.start();
  const address = await app.http.listen({ host: '127.0.0.1', port: config.server.port });
  // `https://…` when `server.tls` is set (fastify reports the scheme it listens with).
  const url = `${address}/mcp`;
  const clients: Client[] = [];
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await app.close(2000);
    rmSync(dir, { recursive: true, force: true });
  };
  return {
    app,
    url,
    logs,
    dir,
    async client(o = {}) {
      const client = new Client(
        { name: o.name ?? 'test-client', version: '1.0.0' },
        { capabilities: o.capabilities ?? {} },
      );
      await client.connect(new StreamableHTTPClientTransport(new URL(url), o.transport));
      clients.push(client);
      return client;
    },
    async token(o) {
      const { auth } = config;
      if (!devKey || !auth.dev) throw new Error(`gw.token() needs auth.mode dev (this gateway has ${auth.mode})`);
      return devKey.mint({
        audience: auth.resource,
        issuer: auth.dev.issuer,
        claimNames: { scope: auth.claims.scope, clientId: auth.claims.clientId },
        ...o,
      });
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/**
 * A gateway in dev auth deciding with its own policy folder: `<dir>/policy`, holding `files` (name → YAML). For
 * tests about the policy; close it (and remove `dir`) when done.
 */
export async function startPolicyGateway(
  dir: string,
  files: Record<string, string>,
  upstreamsYaml: string[],
): Promise<{ gw: TestGateway; policyDir: string }> {
  const policyDir = join(dir, 'policy');
  mkdirSync(policyDir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(policyDir, name), text);
  const gw = await startGateway(upstreamsYaml, {
    top: `auth:\n  mode: dev\npolicy:\n  dir: ${JSON.stringify(policyDir)}\n`,
  });
  return { gw, policyDir };
}

/** The one rule of the generated test policy: any authenticated principal may reach everything. */
export const PERMISSIVE_POLICY = `version: 1
rules:
  - id: test.allow-all
    effect: allow
    match:
      tools: ["*"]
      prompts: ["*"]
      resources: ["**"]
    when:
      authenticated: true
`;

/**
 * Every auth mode but none needs \`policy.dir\` (default deny). A test that authenticates but is not about policy
 * and names none gets a folder with \`PERMISSIVE_POLICY\` in \`dir\`; the \`policy:\` lines to add, or ''.
 */
export function permissivePolicyFor(top: string, dir: string): string {
  const mode = (parseYaml(top === '' ? '{}' : top) as { auth?: { mode?: unknown } } | null)?.auth?.mode;
  if (/^policy:/m.test(top) || mode === undefined || mode === 'none') return '';
  permissivePolicyDir(dir);
  return 'policy:\n  dir: ./test-policy\n';
}

/** Writes `PERMISSIVE_POLICY` into `<parent>/test-policy` (once) and returns that folder's path. */
export function permissivePolicyDir(parent: string): string {
  const policyDir = join(parent, 'test-policy');
  mkdirSync(policyDir, { recursive: true });
  writeFileSync(join(policyDir, 'allow-all.yaml'), PERMISSIVE_POLICY);
  return policyDir;
}

/** Raw POST helper for wire-level checks the SDK client would never send. */
export async function post(
  url: string,
  body: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; text: string; json: unknown }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body,
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/**
 * A 2026-07-28 `tools/call` with the headers a conforming client sends (no session): for tests about what reaches an
 * upstream, where the wire of the client is not the subject.
 */
export function modernToolCall(
  url: string,
  token: string,
  tool: string,
  args: Record<string, unknown> = {},
): Promise<{ status: number; headers: Headers; text: string; json: unknown }> {
  const body = JSON.stringify({
    jsonrpc: '2.0',
    id: 1,
    method: 'tools/call',
    params: {
      name: tool,
      arguments: args,
      _meta: {
        'io.modelcontextprotocol/protocolVersion': '2026-07-28',
        'io.modelcontextprotocol/clientCapabilities': {},
      },
    },
  });
  return post(url, body, {
    authorization: `Bearer ${token}`,
    'mcp-protocol-version': '2026-07-28',
    'mcp-method': 'tools/call',
    'mcp-name': tool,
  });
}

export function initializeBody(
  id: number | string = 1,
  version = '2025-11-25',
  capabilities: Record<string, unknown> = {},
): string {
  return JSON.stringify({
    jsonrpc: '2.0',
    id,
    method: 'initialize',
    params: { protocolVersion: version, capabilities, clientInfo: { name: 'raw', version: '1' } },
  });
}

/** Open a session with raw HTTP; returns the session id. `headers` go with both requests (e.g. a bearer token). */
export async function rawSession(
  url: string,
  version = '2025-11-25',
  capabilities: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<string> {
  const r = await post(url, initializeBody(1, version, capabilities), headers);
  const sid = r.headers.get('mcp-session-id');
  if (r.status !== 200 || sid === null) throw new Error(`initialize failed: ${r.status} ${r.text}`);
  await post(url, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), {
    ...headers,
    'mcp-session-id': sid,
    'mcp-protocol-version': version,
  });
  return sid;
}
