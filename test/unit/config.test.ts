import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import util from 'node:util';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CONFIG_DEFAULTS,
  ConfigError,
  describeConfig,
  isLoopbackHost,
  isSecretValue,
  loadConfig,
  type ConfigProblem,
  type GatehouseConfig,
  type HttpUpstreamConfig,
  type StdioUpstreamConfig,
} from '../../src/config/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const schemaFile = path.join(root, 'schemas/gatehouse.schema.json');
const schema = JSON.parse(fs.readFileSync(schemaFile, 'utf8')) as Record<string, unknown>;

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-config-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function write(name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

function load(text: string, env: NodeJS.ProcessEnv = {}): GatehouseConfig {
  return loadConfig(write('gatehouse.yaml', text), { env });
}

/** Loads text that must fail; returns the problems and the printed message. */
function fail(text: string, env: NodeJS.ProcessEnv = {}): { problems: readonly ConfigProblem[]; message: string; file: string } {
  const file = write('gatehouse.yaml', text);
  try {
    loadConfig(file, { env });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    expect(e.problems.length).toBeGreaterThan(0);
    for (const p of e.problems) expect(p.file).toBe(file);
    return { problems: e.problems, message: e.message, file };
  }
  throw new Error('expected a ConfigError');
}

function problemAt(problems: readonly ConfigProblem[], pointer: string): ConfigProblem {
  const found = problems.find((p) => p.path === pointer);
  if (!found) throw new Error(`no problem at ${pointer}; got:\n${problems.map((p) => `${p.path}: ${p.message}`).join('\n')}`);
  return found;
}

const STDIO = `upstreams:
  - name: everything
    transport: stdio
    command: npx
`;

function isDeepFrozen(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return true;
  return Object.isFrozen(value) && Object.values(value).every(isDeepFrozen);
}

describe('schemas/gatehouse.schema.json', () => {
  it('compiles under Ajv2020 strict mode', () => {
    const ajv = new Ajv2020({ strict: true, allErrors: true });
    expect(() => ajv.compile(schema)).not.toThrow();
    expect(schema.$id).toBe('https://gatehouse.dev/schemas/gatehouse.schema.json');
  });

  it('describes every property and rejects unknown keys in every object', () => {
    const missing: string[] = [];
    const open: string[] = [];
    const walk = (node: unknown, at: string): void => {
      if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${at}/${i}`));
      if (typeof node !== 'object' || node === null) return;
      const s = node as Record<string, unknown>;
      // Objects with named properties are closed; maps (headers, env) constrain their values instead.
      if (s.type === 'object' && s.properties !== undefined && s.additionalProperties !== false) open.push(at);
      if (s.properties && !at.includes('/if') && !at.includes('/then')) {
        for (const [key, prop] of Object.entries(s.properties as Record<string, unknown>)) {
          if (typeof (prop as { description?: unknown }).description !== 'string') missing.push(`${at}/properties/${key}`);
        }
      }
      for (const [k, v] of Object.entries(s)) walk(v, `${at}/${k}`);
    };
    walk(schema, '#');
    expect(missing).toEqual([]);
    expect(open).toEqual([]);
  });

  it("states the loader's defaults", () => {
    const defs = schema.$defs as Record<string, { properties: Record<string, { default?: unknown }> }>;
    for (const section of ['server', 'auth', 'catalogue', 'logging'] as const) {
      for (const [key, value] of Object.entries(CONFIG_DEFAULTS[section])) {
        expect(defs[section]!.properties[key]!.default, `${section}.${key}`).toEqual(value);
      }
    }
    const upstream = defs.upstream!.properties;
    for (const key of ['required', 'timeoutMs', 'maxTotalTimeoutMs', 'maxMessageBytes', 'mode', 'headers', 'args', 'cwd', 'envAllow', 'env', 'shutdownGraceMs'] as const) {
      expect(upstream[key]!.default, `upstream.${key}`).toEqual(CONFIG_DEFAULTS.upstream[key]);
    }
    for (const [key, value] of Object.entries(CONFIG_DEFAULTS.upstream.restart)) expect(defs.restart!.properties[key]!.default).toEqual(value);
    for (const [key, value] of Object.entries(CONFIG_DEFAULTS.upstream.expose)) expect(defs.expose!.properties[key]!.default).toEqual(value);
  });
});

describe('loadConfig: valid files', () => {
  it('fills every default into a minimal stdio config and deep-freezes it', () => {
    const config = load(STDIO);
    expect(config.file).toBe(path.join(dir, 'gatehouse.yaml'));
    expect(config.server).toEqual(CONFIG_DEFAULTS.server);
    expect(config.auth).toEqual({ mode: 'none' });
    expect(config.catalogue).toEqual({ separator: '__', maxNameLength: 64, unprefixedSingleUpstream: false });
    expect(config.logging).toEqual({ level: 'info' });
    expect(config.upstreams).toEqual([
      {
        name: 'everything',
        transport: 'stdio',
        command: 'npx',
        args: [],
        cwd: dir,
        envAllow: ['PATH', 'HOME', 'LANG', 'TZ'],
        env: {},
        shutdownGraceMs: 2000,
        required: true,
        timeoutMs: 60_000,
        maxTotalTimeoutMs: 300_000,
        maxMessageBytes: 4 * 1024 * 1024,
        mode: 'shared',
        restart: { initialDelayMs: 500, maxDelayMs: 30_000 },
        expose: { tools: true, resources: true, prompts: true },
      } satisfies StdioUpstreamConfig,
    ]);
    expect(isDeepFrozen(config)).toBe(true);
    expect(() => {
      (config.server as { port: number }).port = 1;
    }).toThrow(TypeError);
  });

  it('reads the full shape of the brief, with http and stdio upstreams', () => {
    write('token.txt', 'stdio-token\n');
    fs.mkdirSync(path.join(dir, 'work'));
    const config = load(
      `# yaml-language-server: $schema=../schemas/gatehouse.schema.json
server:
  host: localhost
  port: 0
  path: /gateway/mcp
  allowedOrigins: ["https://app.example.com"]
catalogue: { separator: ".", maxNameLength: 100, unprefixedSingleUpstream: true }
logging: { level: debug }
upstreams:
  - name: orders
    transport: http
    url: http://127.0.0.1:9101/mcp
    headers:
      X-API-Key: { fromEnv: ORDERS_API_KEY }
      Accept-Language: en
    timeoutMs: 400000
    restart: { initialDelayMs: 100 }
    expose: { prompts: false }
  - name: everything
    transport: stdio
    command: npx
    args: ["-y", "@modelcontextprotocol/server-everything", "stdio"]
    cwd: work
    envAllow: [PATH]
    env:
      API_TOKEN: { fromFile: ./token.txt }
      LOG_FORMAT: json
`,
      { ORDERS_API_KEY: 'orders-key-value' },
    );
    expect(config.server.host).toBe('localhost');
    expect(config.server.path).toBe('/gateway/mcp');
    const orders = config.upstreams[0] as HttpUpstreamConfig;
    // maxTotalTimeoutMs follows a timeoutMs above its default, so a long timeout alone stays valid.
    expect(orders.maxTotalTimeoutMs).toBe(400_000);
    expect(orders.restart).toEqual({ initialDelayMs: 100, maxDelayMs: 30_000 });
    expect(orders.expose).toEqual({ tools: true, resources: true, prompts: false });
    expect(orders.headers['Accept-Language']).toBe('en');
    const key = orders.headers['X-API-Key'];
    expect(isSecretValue(key) && key.reveal()).toBe('orders-key-value');
    const everything = config.upstreams[1] as StdioUpstreamConfig;
    expect(everything.cwd).toBe(path.join(dir, 'work'));
    expect(everything.env.LOG_FORMAT).toBe('json');
    expect(describeConfig(config)).toMatchObject({
      upstreams: [{ headers: { 'X-API-Key': '[secret env:ORDERS_API_KEY]' } }, { env: { API_TOKEN: `[secret file:${path.join(dir, 'token.txt')}]` } }],
    });
  });
});

describe('loadConfig: schema problems', () => {
  it('names file, line, path and the unknown key at the top level', () => {
    const { problems, message, file } = fail(`${STDIO}loging: {}\n`);
    expect(problems).toEqual([{ file, line: 5, path: '/loging', message: 'unknown key "loging" (did you mean "logging"?)' }]);
    expect(message).toBe(`${file}:5: /loging: unknown key "loging" (did you mean "logging"?)`);
    // With no close match, a short list of known keys is the most useful hint.
    expect(fail(`${STDIO}metrics: {}\n`).problems[0]!.message).toBe('unknown key "metrics"; known keys: server, auth, catalogue, logging, upstreams');
  });

  it('names the nested unknown key and its line', () => {
    const { problems, message, file } = fail(`server:\n  port: 8080\n  bodyLimit: 10\n${STDIO}`);
    const p = problemAt(problems, '/server/bodyLimit');
    expect(p.line).toBe(3);
    expect(p.message).toMatch(/^unknown key "bodyLimit"/);
    expect(message).toContain(`${file}:3: /server/bodyLimit: unknown key "bodyLimit"`);

    const inUpstream = fail(`${STDIO}    comand: npx\n`).problems;
    expect(problemAt(inUpstream, '/upstreams/0/comand')).toMatchObject({ line: 5, message: 'unknown key "comand" (did you mean "command"?)' });
  });

  it('lists the allowed values of an enum', () => {
    const { problems } = fail(`logging:\n  level: verbose\n${STDIO}`);
    expect(problemAt(problems, '/logging/level')).toMatchObject({
      line: 2,
      message: 'must be one of "fatal", "error", "warn", "info", "debug", "trace", "silent" (got "verbose")',
    });
    const transport = fail(`upstreams:\n  - name: a\n    transport: websocket\n`).problems;
    expect(transport).toHaveLength(1);
    expect(problemAt(transport, '/upstreams/0/transport').message).toBe('must be one of "stdio", "http", "sse" (got "websocket")');
  });

  it('requires upstreams', () => {
    const { problems, file } = fail('server:\n  port: 8080\n');
    expect(problems).toEqual([{ file, line: 1, path: '', message: 'missing required key "upstreams"' }]);
    expect(problemAt(fail('upstreams: []\n').problems, '/upstreams').message).toBe('must have at least 1 entry');
    expect(fail('').problems[0]!.message).toBe('the file must be a YAML mapping with at least an "upstreams:" list');
  });

  it('rejects stdio keys on an http upstream (and the reverse) with one clear message each', () => {
    const { problems } = fail(`upstreams:
  - name: orders
    transport: http
    url: http://127.0.0.1:9101/mcp
    command: node
    envAllow: [PATH]
  - name: local
    transport: stdio
    command: node
    url: http://127.0.0.1:1/mcp
  - name: missing
    transport: sse
`);
    expect(problems.map((p) => [p.line, p.path, p.message])).toEqual([
      [5, '/upstreams/0/command', 'key "command" is only for stdio upstreams, and this one has transport "http"'],
      [6, '/upstreams/0/envAllow', 'key "envAllow" is only for stdio upstreams, and this one has transport "http"'],
      [10, '/upstreams/1/url', 'key "url" is only for http and sse upstreams, and this one has transport "stdio"'],
      [11, '/upstreams/2', 'missing required key "url" (transport "sse" needs it)'],
    ]);
  });

  it('explains the type, range and pattern of values', () => {
    const { problems } = fail(`server:
  port: "8080"
  bodyLimitBytes: 10
  path: mcp
upstreams:
  - name: Orders_DB
    transport: stdio
    command: x
    env:
      DEBUG: 1
      X: { fromEnvv: Y }
      Y: {}
`);
    expect(problemAt(problems, '/server/port').message).toBe('must be a whole number, not a string');
    expect(problemAt(problems, '/server/bodyLimitBytes').message).toBe('must be at least 1024 (1 KiB)');
    expect(problemAt(problems, '/server/path').message).toMatch(/^must start with "\/"/);
    expect(problemAt(problems, '/upstreams/0/name').message).toMatch(/^must be 1-32 lowercase letters/);
    expect(problemAt(problems, '/upstreams/0/env/DEBUG').message).toBe(
      'must be a plain string or a secret reference ({ fromEnv: NAME } or { fromFile: PATH }), not a whole number (put plain values in quotes)',
    );
    expect(problemAt(problems, '/upstreams/0/env/X/fromEnvv')).toMatchObject({ line: 11, message: 'unknown key "fromEnvv" (did you mean "fromEnv"?)' });
    expect(problemAt(problems, '/upstreams/0/env/Y').message).toBe('a secret reference takes exactly one key: { fromEnv: NAME } or { fromFile: PATH }');
    // One message per mistake: the oneOf branches that did not apply stay quiet.
    expect(problems).toHaveLength(7);
  });
});

describe('loadConfig: YAML problems', () => {
  it('reports duplicate upstream names with both lines', () => {
    const { problems } = fail(`${STDIO}  - name: everything\n    transport: stdio\n    command: node\n`);
    expect(problems).toEqual([
      expect.objectContaining({ line: 5, path: '/upstreams/1/name', message: 'duplicate upstream name "everything" (also used by /upstreams/0 at line 2)' }),
    ]);
  });

  it('rejects duplicate YAML keys', () => {
    const { problems, file } = fail(`server:\n  port: 8080\n  port: 9090\n${STDIO}`);
    expect(problems).toEqual([{ file, line: 3, path: '/server/port', message: 'duplicate key "port" (first defined at line 2)' }]);
  });

  it('gives the line of a syntax error without quoting the source', () => {
    const { problems, message } = fail(`upstreams:\n  - name: a\n    transport: "stdio\n    command: sk-live-not-to-be-shown-1234567890\n`);
    expect(problems[0]!.line).toBeGreaterThanOrEqual(3);
    expect(problems[0]!.message).toMatch(/^invalid YAML: /);
    expect(message).not.toContain('sk-live');
  });
});

describe('secrets', () => {
  const SECRET = 'Zx9fQ2lmR7tY4pW8kD3nB6vH1cJ5sG0a';

  it('refuses an inline X-API-Key without printing it', () => {
    const { problems, message } = fail(`upstreams:
  - name: orders
    transport: http
    url: http://127.0.0.1:9101/mcp
    headers:
      X-API-Key: ${SECRET}
`);
    expect(problemAt(problems, '/upstreams/0/headers/X-API-Key')).toMatchObject({
      line: 6,
      message: expect.stringMatching(/^inline secret refused: reference it with \{ fromEnv: NAME \} or \{ fromFile: PATH \}/),
    });
    expect(message).not.toContain(SECRET);
  });

  it('refuses credential-shaped values under innocent names, in headers and env', () => {
    const { problems, message } = fail(`upstreams:
  - name: orders
    transport: http
    url: http://127.0.0.1:9101/mcp
    headers:
      Authorization: "Bearer abcdef"
      X-Custom: ${SECRET}
  - name: local
    transport: stdio
    command: node
    env:
      GITHUB: ghp_abcdefghijklmnopqrstuvwxyz0123456789
      API_TOKEN: short
      AWS: AKIAABCDEFGHIJKLMNOP
      NODE_OPTIONS: --max-old-space-size=4096
      SERVICE: my-service-name-v2-production
`);
    expect(problems.map((p) => p.path)).toEqual([
      '/upstreams/0/headers/Authorization',
      '/upstreams/0/headers/X-Custom',
      '/upstreams/1/env/GITHUB',
      '/upstreams/1/env/API_TOKEN',
      '/upstreams/1/env/AWS',
    ]);
    for (const p of problems) expect(p.message).toMatch(/^inline secret refused: /);
    for (const secret of ['abcdef', SECRET, 'ghp_', 'AKIA', 'short']) expect(message).not.toContain(secret);
  });

  it('reports a missing environment variable by name', () => {
    const text = `upstreams:
  - name: orders
    transport: http
    url: http://127.0.0.1:9101/mcp
    headers:
      X-API-Key: { fromEnv: ORDERS_API_KEY }
`;
    expect(problemAt(fail(text).problems, '/upstreams/0/headers/X-API-Key/fromEnv')).toMatchObject({
      line: 6,
      message: 'environment variable ORDERS_API_KEY is not set',
    });
    expect(fail(text, { ORDERS_API_KEY: '' }).problems[0]!.message).toBe('environment variable ORDERS_API_KEY is not set');
  });

  it('reads fromFile relative to the config folder and trims one trailing newline', () => {
    fs.mkdirSync(path.join(dir, 'keys'));
    write('keys/orders.key', 'file-secret-value\n');
    const config = load(`upstreams:
  - name: orders
    transport: http
    url: http://127.0.0.1:9101/mcp
    headers:
      X-API-Key: { fromFile: keys/orders.key }
`);
    const value = (config.upstreams[0] as HttpUpstreamConfig).headers['X-API-Key'];
    expect(isSecretValue(value)).toBe(true);
    if (!isSecretValue(value)) return;
    expect(value.reveal()).toBe('file-secret-value');
    expect(value.source).toBe(`file:${path.join(dir, 'keys/orders.key')}`);

    const missing = fail(`${STDIO}    env:\n      TOKEN: { fromFile: ./absent.key }\n`).problems;
    expect(problemAt(missing, '/upstreams/0/env/TOKEN/fromFile').message).toBe(`secret file ${path.join(dir, 'absent.key')} cannot be read (no such file)`);
  });

  it('never shows a SecretValue in JSON, String() or util.inspect', () => {
    write('token.txt', 'file-secret-value\n');
    const config = load(`${STDIO}    env:\n      TOKEN: { fromFile: token.txt }\n      OTHER: { fromEnv: OTHER_SECRET }\n`, { OTHER_SECRET: 'env-secret-value' });
    const env = (config.upstreams[0] as StdioUpstreamConfig).env;
    for (const shown of [JSON.stringify(config), util.inspect(config, { depth: Infinity }), String(env.TOKEN), `${String(env.OTHER)}`, JSON.stringify(describeConfig(config))]) {
      expect(shown).not.toContain('file-secret-value');
      expect(shown).not.toContain('env-secret-value');
    }
    expect(String(env.OTHER)).toBe('[secret env:OTHER_SECRET]');
    expect(util.inspect(env.TOKEN)).toBe(`[secret file:${path.join(dir, 'token.txt')}]`);
    expect(JSON.parse(JSON.stringify(env))).toEqual({ TOKEN: `[secret file:${path.join(dir, 'token.txt')}]`, OTHER: '[secret env:OTHER_SECRET]' });
  });
});

describe('loadConfig: semantic checks', () => {
  it('refuses auth.mode none on a non-loopback host', () => {
    const { problems } = fail(`server:\n  host: 0.0.0.0\nauth:\n  mode: none\n${STDIO}`);
    expect(problems).toEqual([
      expect.objectContaining({
        line: 4,
        path: '/auth/mode',
        message: 'auth.mode "none" is only allowed on a loopback host; configure authentication to listen on 0.0.0.0',
      }),
    ]);
    // Without an auth section the default (none) is refused just the same.
    expect(problemAt(fail(`server:\n  host: 10.0.0.5\n${STDIO}`).problems, '/server/host').line).toBe(2);
  });

  it('knows loopback hosts', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '0:0:0:0:0:0:0:1', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1']) expect(isLoopbackHost(host), host).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.1', 'example.com', 'localhost.example.com', '128.0.0.1']) expect(isLoopbackHost(host), host).toBe(false);
  });

  it('checks timeouts, URLs, origins, headers and the separator', () => {
    const { problems } = fail(`server:
  allowedOrigins: ["https://App.example.com:443"]
catalogue:
  separator: "-"
upstreams:
  - name: orders-db
    transport: http
    url: https://user:pw@example.com/mcp#top
    timeoutMs: 50000
    maxTotalTimeoutMs: 1000
    headers:
      Host: example.com
      X-Trace: a
      x-trace: b
`);
    expect(problems.map((p) => [p.path, p.message])).toEqual([
      ['/server/allowedOrigins/0', 'must be written exactly as browsers send it: "https://app.example.com"'],
      ['/upstreams/0/name', 'upstream name "orders-db" contains the catalogue separator "-"; rename it or choose another catalogue.separator'],
      ['/upstreams/0/url', 'must not contain user:password@; send credentials in headers with { fromEnv: NAME } or { fromFile: PATH }'],
      ['/upstreams/0/url', 'must not contain a #fragment'],
      ['/upstreams/0/maxTotalTimeoutMs', 'must be at least timeoutMs (50000)'],
      ['/upstreams/0/headers/Host', 'header "Host" is set by the gateway and cannot be configured'],
      ['/upstreams/0/headers/x-trace', 'header "x-trace" is already set as "X-Trace" (header names ignore case)'],
    ]);
    expect(problems.find((p) => p.path === '/upstreams/0/url')!.message).not.toContain('pw');
  });

  it('collects problems from every upstream instead of stopping at the first', () => {
    const { problems } = fail(`upstreams:
  - name: a
    transport: stdio
    command: x
    cwd: ./missing
  - name: b
    transport: http
    url: http://127.0.0.1:1/mcp
    headers: { X-API-Key: { fromEnv: B_KEY } }
  - name: c
    transport: stdio
    command: x
    bogus: 1
`);
    expect(problems.map((p) => p.path)).toEqual(['/upstreams/0/cwd', '/upstreams/1/headers/X-API-Key/fromEnv', '/upstreams/2/bogus']);
  });

  it('treats a "__proto__" key as data, not as a prototype', () => {
    const config = load(`${STDIO}    env:\n      __proto__: { fromEnv: K }\n      A: b\n`, { K: 'v' });
    const env = (config.upstreams[0] as StdioUpstreamConfig).env;
    expect(Object.getPrototypeOf(env)).toBe(Object.prototype);
    expect(Object.keys(env)).toEqual(['__proto__', 'A']);
  });

  it('reports an unreadable config file', () => {
    const file = path.join(dir, 'absent.yaml');
    expect(() => loadConfig(file)).toThrow(`${file}: /: cannot read the configuration file (no such file)`);
  });
});

describe('examples/*.yaml', () => {
  const examplesDir = path.join(root, 'examples');
  const files = fs.existsSync(examplesDir) ? fs.readdirSync(examplesDir).filter((f) => /\.ya?ml$/.test(f) && !f.endsWith('.test.yaml')).sort() : [];
  // Examples reference credentials by name; any variable they ask for gets a stand-in value here.
  const env = new Proxy({ ...process.env }, { get: (target, name) => (typeof name === 'string' ? (target[name] ?? `stand-in-for-${name}`) : undefined) });

  it('the bundled example is among them', () => {
    expect(files).toContain('gatehouse.yaml');
  });
  it.each(files)('%s validates', (name) => {
    expect(() => loadConfig(path.join(examplesDir, name), { env })).not.toThrow();
  });
});
