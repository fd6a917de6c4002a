import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import util from 'node:util';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  CONFIG_DEFAULTS,
  ConfigError,
  defaultResource,
  describeConfig,
  isLoopbackHost,
  isSecretValue,
  loadConfig,
  parseConfigText,
  type ConfigProblem,
  type AuthConfig,
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
  // Owner-only, as secret files must be (a group- or world-readable secret file is refused).
  fs.writeFileSync(file, text, { mode: 0o600 });
  return file;
}

/**
 * Modes other than none need `policy.dir` (default deny); tests about other sections get an empty policy
 * folder appended, unless the text names a policy itself. `withPolicy` is for the tests of that rule.
 */
function withPolicy(text: string): string {
  if (/^policy:/m.test(text) || !/\bmode:\s*(dev|oauth|builtin)\b/.test(text)) return text;
  fs.mkdirSync(path.join(dir, 'policies'), { recursive: true });
  return `${text}${text.endsWith('\n') ? '' : '\n'}policy:\n  dir: ./policies\n`;
}

function load(text: string, env: NodeJS.ProcessEnv = {}): GatehouseConfig {
  return loadConfig(write('gatehouse.yaml', withPolicy(text)), { env });
}

/** Loads text that must fail; returns the problems and the printed message. */
function fail(
  text: string,
  env: NodeJS.ProcessEnv = {},
): { problems: readonly ConfigProblem[]; message: string; file: string } {
  const file = write('gatehouse.yaml', withPolicy(text));
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
  if (!found)
    throw new Error(`no problem at ${pointer}; got:\n${problems.map((p) => `${p.path}: ${p.message}`).join('\n')}`);
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
          if (typeof (prop as { description?: unknown }).description !== 'string')
            missing.push(`${at}/properties/${key}`);
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
    for (const section of [
      'server',
      'auth',
      'catalogue',
      'logging',
      'tls',
      'introspection',
      'devAuth',
      'pinning',
      'audit',
      'auditHashChain',
    ] as const) {
      for (const [key, value] of Object.entries(CONFIG_DEFAULTS[section])) {
        expect(defs[section]!.properties[key]!.default, `${section}.${key}`).toEqual(value);
      }
    }
    for (const [key, value] of Object.entries(CONFIG_DEFAULTS.auth.claims))
      expect(defs.claims!.properties[key]!.default, `claims.${key}`).toEqual(value);
    const upstream = defs.upstream!.properties;
    for (const key of [
      'required',
      'timeoutMs',
      'maxTotalTimeoutMs',
      'maxMessageBytes',
      'mode',
      'headers',
      'args',
      'cwd',
      'envAllow',
      'env',
      'shutdownGraceMs',
      'maxInFlight',
      'maxQueued',
      'queueTimeoutMs',
    ] as const) {
      expect(upstream[key]!.default, `upstream.${key}`).toEqual(CONFIG_DEFAULTS.upstream[key]);
    }
    for (const [key, value] of Object.entries(CONFIG_DEFAULTS.upstream.breaker))
      expect(defs.breaker!.properties[key]!.default, `breaker.${key}`).toEqual(value);
    for (const [key, value] of Object.entries(CONFIG_DEFAULTS.upstream.retry))
      expect(defs.retry!.properties[key]!.default, `retry.${key}`).toEqual(value);
    for (const [key, value] of Object.entries(CONFIG_DEFAULTS.upstream.restart))
      expect(defs.restart!.properties[key]!.default).toEqual(value);
    for (const [key, value] of Object.entries(CONFIG_DEFAULTS.upstream.expose))
      expect(defs.expose!.properties[key]!.default).toEqual(value);
  });
});

describe('loadConfig: valid files', () => {
  it('fills every default into a minimal stdio config and deep-freezes it', () => {
    const config = load(STDIO);
    expect(config.file).toBe(path.join(dir, 'gatehouse.yaml'));
    expect(config.server).toEqual(CONFIG_DEFAULTS.server);
    expect(config.auth).toEqual({
      mode: 'none',
      resource: 'http://127.0.0.1:8080/mcp',
      authorizationServers: [],
      scopesSupported: [],
      requiredScopes: [],
      algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'],
      clockSkewSeconds: 30,
      requireTokenType: false,
      claims: { scope: 'scope', groups: 'groups', clientId: 'client_id' },
    } satisfies AuthConfig);
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
        outputValidation: 'warn',
        protocol: 'auto',
        restart: { initialDelayMs: 500, maxDelayMs: 30_000 },
        expose: { tools: true, resources: true, prompts: true },
        maxInFlight: 64,
        maxQueued: 256,
        queueTimeoutMs: 10_000,
        breaker: { enabled: true, failureThreshold: 5, openMs: 30_000 },
        retry: { attempts: 1, backoffMs: 200, tools: [] },
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
      upstreams: [
        { headers: { 'X-API-Key': '[secret env:ORDERS_API_KEY]' } },
        { env: { API_TOKEN: `[secret file:${path.join(dir, 'token.txt')}]` } },
      ],
    });
  });
});

describe('loadConfig: schema problems', () => {
  it('names file, line, path and the unknown key at the top level', () => {
    const { problems, message, file } = fail(`${STDIO}loging: {}\n`);
    expect(problems).toEqual([
      { file, line: 5, path: '/loging', message: 'unknown key "loging" (did you mean "logging"?)' },
    ]);
    expect(message).toBe(`${file}:5: /loging: unknown key "loging" (did you mean "logging"?)`);
    // With no close match, a short list of known keys is the most useful hint.
    expect(fail(`${STDIO}metrics: {}\n`).problems[0]!.message).toBe(
      'unknown key "metrics"; known keys: server, auth, catalogue, logging, policy, pinning, audit, telemetry, sessions, redis, limits, cache, outbound, upstreams',
    );
  });

  it('names the nested unknown key and its line', () => {
    const { problems, message, file } = fail(`server:\n  port: 8080\n  bodyLimit: 10\n${STDIO}`);
    const p = problemAt(problems, '/server/bodyLimit');
    expect(p.line).toBe(3);
    expect(p.message).toMatch(/^unknown key "bodyLimit"/);
    expect(message).toContain(`${file}:3: /server/bodyLimit: unknown key "bodyLimit"`);

    const inUpstream = fail(`${STDIO}    comand: npx\n`).problems;
    expect(problemAt(inUpstream, '/upstreams/0/comand')).toMatchObject({
      line: 5,
      message: 'unknown key "comand" (did you mean "command"?)',
    });
  });

  it('lists the allowed values of an enum', () => {
    const { problems } = fail(`logging:\n  level: verbose\n${STDIO}`);
    expect(problemAt(problems, '/logging/level')).toMatchObject({
      line: 2,
      message: 'must be one of "fatal", "error", "warn", "info", "debug", "trace", "silent" (got "verbose")',
    });
    const transport = fail(`upstreams:\n  - name: a\n    transport: websocket\n`).problems;
    expect(transport).toHaveLength(1);
    expect(problemAt(transport, '/upstreams/0/transport').message).toBe(
      'must be one of "stdio", "http", "sse" (got "websocket")',
    );
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
    expect(problemAt(problems, '/upstreams/0/env/X/fromEnvv')).toMatchObject({
      line: 11,
      message: 'unknown key "fromEnvv" (did you mean "fromEnv"?)',
    });
    expect(problemAt(problems, '/upstreams/0/env/Y').message).toBe(
      'a secret reference takes exactly one key: { fromEnv: NAME } or { fromFile: PATH }',
    );
    // One message per mistake: the oneOf branches that did not apply stay quiet.
    expect(problems).toHaveLength(7);
  });
});

describe('loadConfig: YAML problems', () => {
  it('reports duplicate upstream names with both lines', () => {
    const { problems } = fail(`${STDIO}  - name: everything\n    transport: stdio\n    command: node\n`);
    expect(problems).toEqual([
      expect.objectContaining({
        line: 5,
        path: '/upstreams/1/name',
        message: 'duplicate upstream name "everything" (also used by /upstreams/0 at line 2)',
      }),
    ]);
  });

  it('rejects duplicate YAML keys', () => {
    const { problems, file } = fail(`server:\n  port: 8080\n  port: 9090\n${STDIO}`);
    expect(problems).toEqual([
      { file, line: 3, path: '/server/port', message: 'duplicate key "port" (first defined at line 2)' },
    ]);
  });

  it('gives the line of a syntax error without quoting the source', () => {
    const { problems, message } = fail(
      `upstreams:\n  - name: a\n    transport: "stdio\n    command: sk-live-not-to-be-shown-1234567890\n`,
    );
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
      message: expect.stringMatching(
        /^inline secret refused: reference it with \{ fromEnv: NAME \} or \{ fromFile: PATH \}/,
      ),
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
    expect(fail(text, { ORDERS_API_KEY: '' }).problems[0]!.message).toBe(
      'environment variable ORDERS_API_KEY is not set',
    );
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
    expect(problemAt(missing, '/upstreams/0/env/TOKEN/fromFile').message).toBe(
      `secret file ${path.join(dir, 'absent.key')} cannot be read (no such file)`,
    );
  });

  it('never shows a SecretValue in JSON, String() or util.inspect', () => {
    write('token.txt', 'file-secret-value\n');
    const config = load(
      `${STDIO}    env:\n      TOKEN: { fromFile: token.txt }\n      OTHER: { fromEnv: OTHER_SECRET }\n`,
      { OTHER_SECRET: 'env-secret-value' },
    );
    const env = (config.upstreams[0] as StdioUpstreamConfig).env;
    for (const shown of [
      JSON.stringify(config),
      util.inspect(config, { depth: Infinity }),
      String(env.TOKEN),
      `${String(env.OTHER)}`,
      JSON.stringify(describeConfig(config)),
    ]) {
      expect(shown).not.toContain('file-secret-value');
      expect(shown).not.toContain('env-secret-value');
    }
    expect(String(env.OTHER)).toBe('[secret env:OTHER_SECRET]');
    expect(util.inspect(env.TOKEN)).toBe(`[secret file:${path.join(dir, 'token.txt')}]`);
    expect(JSON.parse(JSON.stringify(env))).toEqual({
      TOKEN: `[secret file:${path.join(dir, 'token.txt')}]`,
      OTHER: '[secret env:OTHER_SECRET]',
    });
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
    for (const host of [
      '127.0.0.1',
      '127.1.2.3',
      '::1',
      '0:0:0:0:0:0:0:1',
      'localhost',
      'LOCALHOST',
      '::ffff:127.0.0.1',
    ])
      expect(isLoopbackHost(host), host).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.1', 'example.com', 'localhost.example.com', '128.0.0.1'])
      expect(isLoopbackHost(host), host).toBe(false);
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
      [
        '/upstreams/0/name',
        'upstream name "orders-db" contains the catalogue separator "-"; rename it or choose another catalogue.separator',
      ],
      [
        '/upstreams/0/url',
        'must not contain user:password@; send credentials in headers with { fromEnv: NAME } or { fromFile: PATH }',
      ],
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
    expect(problems.map((p) => p.path)).toEqual([
      '/upstreams/0/cwd',
      '/upstreams/1/headers/X-API-Key/fromEnv',
      '/upstreams/2/bogus',
    ]);
  });

  it('treats a "__proto__" key as data, not as a prototype', () => {
    const config = load(`${STDIO}    env:\n      __proto__: { fromEnv: K }\n      A: b\n`, { K: 'value-of-k' });
    const env = (config.upstreams[0] as StdioUpstreamConfig).env;
    expect(Object.getPrototypeOf(env)).toBe(Object.prototype);
    expect(Object.keys(env)).toEqual(['__proto__', 'A']);
  });

  it('reports an unreadable config file', () => {
    const file = path.join(dir, 'absent.yaml');
    expect(() => loadConfig(file)).toThrow(`${file}: /: cannot read the configuration file (no such file)`);
  });
});

describe('auth', () => {
  const JWT = `auth:
  mode: oauth
  jwt:
    issuer: https://idp.example.com
    jwksUri: https://idp.example.com/jwks
`;

  it('derives resource from the listener and fills every auth default', () => {
    const config = load(STDIO);
    expect(config.auth.resource).toBe('http://127.0.0.1:8080/mcp');
    expect(config.auth.authorizationServers).toEqual([]);
    expect(config.server.trustedProxies).toEqual([]);
    expect(config.server).not.toHaveProperty('tls');
    expect(config.server).not.toHaveProperty('forwardedClientCertHeader');

    // IPv6 hosts get brackets (in the URL parser's shortest form); a trailing slash of the path is dropped.
    expect(load(`server: { host: "0:0:0:0:0:0:0:1", port: 9000, path: /a/mcp/ }\n${STDIO}`).auth.resource).toBe(
      'http://[::1]:9000/a/mcp',
    );
    // Port 0 stays 0: the real port is only known once listening (tests recompute it with defaultResource).
    const zero = load(`server: { host: localhost, port: 0 }\n${STDIO}`);
    expect(zero.auth.resource).toBe('http://localhost:0/mcp');
    expect(defaultResource({ ...zero.server, port: 43210 })).toBe('http://localhost:43210/mcp');
    // The default port of the scheme is left out, as in every canonical URL.
    expect(load(`server: { port: 80 }\n${STDIO}`).auth.resource).toBe('http://127.0.0.1/mcp');
    // A host that makes no URL is reported once, not thrown.
    expect(fail(`server: { host: "1:2:3" }\nauth: { mode: dev }\n${STDIO}`).problems.map((p) => p.message)).toEqual([
      'must be a valid IPv6 address (without brackets)',
      'auth.mode "dev" is only allowed on a loopback host; use auth.mode "oauth" to listen on 1:2:3',
    ]);
  });

  it('needs policy.dir in every mode but none (default deny), resolved against the config folder', () => {
    const file = write('gatehouse.yaml', `auth:\n  mode: dev\n${STDIO}`);
    expect(() => loadConfig(file, { env: {} })).toThrow(ConfigError);
    try {
      loadConfig(file, { env: {} });
    } catch (err) {
      expect((err as ConfigError).problems).toEqual([
        {
          file,
          line: 2,
          path: '/auth/mode',
          message: 'auth.mode "dev" needs policy.dir: with no policy every request would be denied (default deny)',
        },
      ]);
    }
    // Mode none keeps the permit-all engine without a policy; with one, it is used.
    expect(load(STDIO).policy).toBeUndefined();
    fs.mkdirSync(path.join(dir, 'rules'));
    expect(load(`auth:\n  mode: dev\npolicy:\n  dir: rules\n${STDIO}`).policy).toEqual({
      dir: path.join(dir, 'rules'),
    });
    expect(
      problemAt(fail(`auth:\n  mode: dev\npolicy:\n  dir: ./missing\n${STDIO}`).problems, '/policy/dir'),
    ).toMatchObject({
      line: 4,
      message: `folder ${path.join(dir, 'missing')} does not exist`,
    });
    expect(problemAt(fail(`policy: {}\n${STDIO}`).problems, '/policy').message).toMatch(/dir/);
  });

  it('normalises an explicit resource and refuses a fragment', () => {
    expect(load(`auth:\n  resource: HTTPS://GW.Example.COM:443/MCP/\n${STDIO}`).auth.resource).toBe(
      'https://gw.example.com/MCP',
    );
    expect(load(`auth:\n  resource: https://gw.example.com/\n${STDIO}`).auth.resource).toBe('https://gw.example.com/');
    expect(load(`auth:\n  resource: https://gw.example.com\n${STDIO}`).auth.resource).toBe('https://gw.example.com/');
    expect(
      problemAt(fail(`auth:\n  resource: https://gw.example.com/mcp#x\n${STDIO}`).problems, '/auth/resource'),
    ).toMatchObject({
      line: 2,
      message: 'must not contain a #fragment',
    });
    expect(problemAt(fail(`auth:\n  resource: gw.example.com/mcp\n${STDIO}`).problems, '/auth/resource').message).toBe(
      'must be an absolute http:// or https:// URL without spaces',
    );
  });

  it('reads a full oauth + jwt configuration', () => {
    const config = load(`server:
  host: 0.0.0.0
  trustedProxies: [10.0.0.0/8, "::1", 127.0.0.1]
  forwardedClientCertHeader: X-Forwarded-Client-Cert
auth:
  mode: oauth
  resource: https://gw.example.com/mcp
  scopesSupported: [mcp:read, mcp:write]
  requiredScopes: [mcp:read]
  algorithms: [ES256, RS512]
  clockSkewSeconds: 0
  requireTokenType: true
  claims: { groups: roles }
  jwt:
    issuer: https://idp.example.com/realms/corp
    jwksUri: https://idp.example.com/realms/corp/certs
${STDIO}`);
    expect(config.auth).toEqual({
      mode: 'oauth',
      resource: 'https://gw.example.com/mcp',
      authorizationServers: ['https://idp.example.com/realms/corp'],
      scopesSupported: ['mcp:read', 'mcp:write'],
      requiredScopes: ['mcp:read'],
      algorithms: ['ES256', 'RS512'],
      clockSkewSeconds: 0,
      requireTokenType: true,
      claims: { scope: 'scope', groups: 'roles', clientId: 'client_id' },
      // requireTokenType: true → RFC 9068 §2.2's iat, jti and client_id are required by default.
      jwt: {
        issuer: 'https://idp.example.com/realms/corp',
        jwksUri: 'https://idp.example.com/realms/corp/certs',
        requiredClaims: ['iat', 'jti', 'client_id'],
      },
    } satisfies AuthConfig);
    expect(config.server.trustedProxies).toEqual(['10.0.0.0/8', '::1', '127.0.0.1']);
    expect(config.server.forwardedClientCertHeader).toBe('x-forwarded-client-cert');
    expect(isDeepFrozen(config)).toBe(true);
  });

  it('reads jwt keys from a local JWKS file and checks it holds public keys only', () => {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    write('jwks.json', JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'k1' }] }));
    const text = (file: string): string => `auth:
  mode: oauth
  authorizationServers: [https://login.example.com]
  jwt:
    issuer: http://127.0.0.1:9999
    jwksFile: ${file}
${STDIO}`;
    const config = load(text('./jwks.json'));
    expect(config.auth.jwt).toEqual({
      issuer: 'http://127.0.0.1:9999',
      jwksFile: path.join(dir, 'jwks.json'),
      requiredClaims: [],
    });
    expect(config.auth.authorizationServers).toEqual(['https://login.example.com']);

    write('private.json', JSON.stringify({ keys: [privateKey.export({ format: 'jwk' })] }));
    write('not-jwks.json', '{"kty":"EC"}');
    expect(problemAt(fail(text('private.json')).problems, '/auth/jwt/jwksFile')).toMatchObject({
      line: 6,
      message: `file ${path.join(dir, 'private.json')} holds private or symmetric key material ("d" or "k" members); it must hold public keys only`,
    });
    expect(problemAt(fail(text('not-jwks.json')).problems, '/auth/jwt/jwksFile').message).toBe(
      `file ${path.join(dir, 'not-jwks.json')} is not a JWKS (a JSON object with a "keys" list of JWKs)`,
    );
    expect(problemAt(fail(text('absent.json')).problems, '/auth/jwt/jwksFile').message).toBe(
      `file ${path.join(dir, 'absent.json')} does not exist`,
    );
  });

  it('needs exactly one of jwksUri and jwksFile', () => {
    write('jwks.json', '{"keys":[]}');
    const neither = fail(`auth:\n  mode: oauth\n  jwt:\n    issuer: https://idp.example.com\n${STDIO}`).problems;
    expect(problemAt(neither, '/auth/jwt')).toMatchObject({
      line: 4,
      message: 'needs exactly one of jwksUri (keys fetched from the issuer) and jwksFile (keys from a local file)',
    });
    const both = fail(`${JWT}    jwksFile: jwks.json\n${STDIO}`).problems;
    expect(problemAt(both, '/auth/jwt/jwksFile').line).toBe(6);
  });

  it('reads jwt.requiredClaims and jwt.maxTokenAgeSeconds; requiredClaims defaults to RFC 9068 §2.2 with requireTokenType', () => {
    expect(load(`${JWT}${STDIO}`).auth.jwt).toMatchObject({ requiredClaims: [] });
    expect(load(`${JWT}${STDIO}`).auth.jwt).not.toHaveProperty('maxTokenAgeSeconds');
    const typed = load(`${JWT}  requireTokenType: true\n${STDIO}`).auth.jwt!;
    expect(typed.requiredClaims).toEqual(['iat', 'jti', 'client_id']);
    // An IdP that omits some of them: the deployment says what it needs, even with typed tokens.
    const own = load(
      `${JWT}    requiredClaims: [iat, azp]\n    maxTokenAgeSeconds: 3600\n  requireTokenType: true\n${STDIO}`,
    ).auth.jwt!;
    expect(own).toMatchObject({ requiredClaims: ['iat', 'azp'], maxTokenAgeSeconds: 3600 });
    expect(load(`${JWT}    requiredClaims: []\n  requireTokenType: true\n${STDIO}`).auth.jwt!.requiredClaims).toEqual(
      [],
    );

    expect(
      problemAt(fail(`${JWT}    maxTokenAgeSeconds: 0\n${STDIO}`).problems, '/auth/jwt/maxTokenAgeSeconds').line,
    ).toBe(6);
    expect(
      problemAt(fail(`${JWT}    maxTokenAgeSeconds: 1.5\n${STDIO}`).problems, '/auth/jwt/maxTokenAgeSeconds').line,
    ).toBe(6);
    expect(
      problemAt(fail(`${JWT}    requiredClaims: [iat, iat]\n${STDIO}`).problems, '/auth/jwt/requiredClaims/1').message,
    ).toMatch(/^repeats entry 0/);
    expect(
      problemAt(fail(`${JWT}    requiredClaims: [""]\n${STDIO}`).problems, '/auth/jwt/requiredClaims/0').line,
    ).toBe(6);
  });

  it('reads oauth + introspection with the client secret from the environment', () => {
    const text = `auth:
  mode: oauth
  introspection:
    endpoint: https://idp.example.com/oauth2/introspect
    issuer: https://idp.example.com
    clientId: gatehouse
    clientSecret: { fromEnv: INTROSPECTION_SECRET }
    cacheSeconds: 10
${STDIO}`;
    const config = load(text, { INTROSPECTION_SECRET: 'introspection-secret-value' });
    const introspection = config.auth.introspection!;
    expect(introspection).toMatchObject({
      endpoint: 'https://idp.example.com/oauth2/introspect',
      issuer: 'https://idp.example.com',
      clientId: 'gatehouse',
      cacheSeconds: 10,
      cacheMaxEntries: 10_000,
    });
    expect(introspection.clientSecret.reveal()).toBe('introspection-secret-value');
    expect(config.auth.authorizationServers).toEqual(['https://idp.example.com']);
    expect(config.auth).not.toHaveProperty('jwt');
    const described = JSON.stringify(describeConfig(config));
    expect(described).toContain('"clientSecret":"[secret env:INTROSPECTION_SECRET]"');
    expect(described).not.toContain('introspection-secret-value');
    expect(util.inspect(config, { depth: Infinity })).not.toContain('introspection-secret-value');

    expect(problemAt(fail(text).problems, '/auth/introspection/clientSecret/fromEnv')).toMatchObject({
      line: 7,
      message: 'environment variable INTROSPECTION_SECRET is not set',
    });
    // A secret written inline is a schema problem: only references are accepted.
    const inline = fail(text.replace('{ fromEnv: INTROSPECTION_SECRET }', 'hunter2-hunter2')).problems;
    expect(problemAt(inline, '/auth/introspection/clientSecret').message).toBe(
      'must be a mapping (key: value), not a string',
    );
  });

  it('advertises both issuers when jwt and introspection are configured', () => {
    const config = load(
      `${JWT}  introspection:
    endpoint: https://other.example.com/introspect
    issuer: https://other.example.com
    clientId: gatehouse
    clientSecret: { fromEnv: S }
${STDIO}`,
      { S: 'secret-s' },
    );
    expect(config.auth.authorizationServers).toEqual(['https://idp.example.com', 'https://other.example.com']);
  });

  it('fills dev defaults when mode is dev', () => {
    const config = load(`auth:\n  mode: dev\n${STDIO}`);
    expect(config.auth.dev).toEqual({
      keyFile: path.join(dir, '.gatehouse/dev-signing-key.json'),
      issuer: 'urn:gatehouse:dev',
    });
    expect(config.auth.authorizationServers).toEqual([]); // dev tokens come from `gatehouse token`: nothing to discover
    expect(config.auth.resource).toBe('http://127.0.0.1:8080/mcp');
    expect(fs.existsSync(path.join(dir, '.gatehouse'))).toBe(false);

    const custom = load(`auth:\n  mode: dev\n  dev: { keyFile: keys/dev.json, issuer: local-dev }\n${STDIO}`);
    expect(custom.auth.dev).toEqual({ keyFile: path.join(dir, 'keys/dev.json'), issuer: 'local-dev' });
    fs.mkdirSync(path.join(dir, 'keys'));
    expect(
      problemAt(fail(`auth:\n  mode: dev\n  dev: { keyFile: keys }\n${STDIO}`).problems, '/auth/dev/keyFile').message,
    ).toBe(`${path.join(dir, 'keys')} is a folder; name the key file inside it`);
  });

  it('allows none and dev on loopback hosts only', () => {
    const dev = fail(`server:\n  host: 0.0.0.0\nauth:\n  mode: dev\n${STDIO}`);
    expect(dev.problems).toEqual([
      expect.objectContaining({
        line: 4,
        path: '/auth/mode',
        message: 'auth.mode "dev" is only allowed on a loopback host; use auth.mode "oauth" to listen on 0.0.0.0',
      }),
    ]);
    expect(load(`server:\n  host: "::1"\nauth:\n  mode: dev\n${STDIO}`).auth.mode).toBe('dev');
  });

  it('needs a jwt or introspection block in mode oauth, and a resource on 0.0.0.0', () => {
    expect(fail(`auth:\n  mode: oauth\n${STDIO}`).problems).toEqual([
      expect.objectContaining({
        line: 2,
        path: '/auth/mode',
        message:
          'auth.mode "oauth" needs a "jwt" block (JWT access tokens), an "introspection" block (opaque tokens), or both',
      }),
    ]);
    expect(fail(`server:\n  host: 0.0.0.0\n${JWT}${STDIO}`).problems).toEqual([
      expect.objectContaining({
        path: '/auth/resource',
        message:
          'must be set to the URL clients use to reach the gateway; it cannot be derived from server.host "0.0.0.0"',
      }),
    ]);
    // Derived from a named host it would be http://gw.example.com:8080/mcp: bearer tokens in clear text, refused.
    expect(fail(`server:\n  host: gw.example.com\n${JWT}${STDIO}`).problems).toEqual([
      expect.objectContaining({
        path: '/server/host',
        message: expect.stringContaining('over plain HTTP to http://gw.example.com:8080/mcp'),
      }),
    ]);
  });

  it('refuses blocks that belong to another mode, naming the mode', () => {
    const jwtInDev = fail(`auth:
  mode: dev
  jwt: { issuer: https://idp.example.com, jwksUri: https://idp.example.com/jwks }
  introspection: {}
${STDIO}`).problems;
    expect(problemAt(jwtInDev, '/auth/jwt')).toMatchObject({
      line: 3,
      message: 'key "jwt" is only for auth.mode "oauth", and this one has mode "dev"',
    });
    expect(problemAt(jwtInDev, '/auth/introspection')).toMatchObject({
      line: 4,
      message: 'key "introspection" is only for auth.mode "oauth", and this one has mode "dev"',
    });
    const devInOauth = fail(`${JWT}  dev: { issuer: x }\n${STDIO}`).problems;
    expect(devInOauth).toEqual([
      expect.objectContaining({
        line: 6,
        path: '/auth/dev',
        message: 'key "dev" is only for auth.mode "dev", and this one has mode "oauth"',
      }),
    ]);
    const noMode = fail(
      `auth:\n  jwt: { issuer: https://idp.example.com, jwksUri: https://idp.example.com/jwks }\n${STDIO}`,
    ).problems;
    expect(problemAt(noMode, '/auth/jwt').message).toBe(
      'key "jwt" is only for auth.mode "oauth", and this file sets no auth.mode (the default is "none")',
    );
  });

  it('needs https for issuers and fetched URLs, except on loopback hosts', () => {
    const { problems } = fail(
      `auth:
  mode: oauth
  authorizationServers: [http://login.example.com]
  jwt:
    issuer: http://idp.example.com
    jwksUri: http://idp.example.com/jwks
  introspection:
    endpoint: http://idp.example.com/introspect?client_secret=Zx9fQ2lmR7tY4pW8kD3nB6vH1cJ5sG0a
    issuer: https://idp.example.com/?tenant=a
    clientId: gatehouse
    clientSecret: { fromEnv: S }
${STDIO}`,
      { S: 'secret-s' },
    );
    const https = 'must use https: (http: is accepted only for loopback hosts such as 127.0.0.1, [::1] or localhost)';
    expect(problems.map((p) => [p.line, p.path, p.message])).toEqual([
      [3, '/auth/authorizationServers/0', https],
      [5, '/auth/jwt/issuer', https],
      [6, '/auth/jwt/jwksUri', https],
      [
        8,
        '/auth/introspection/endpoint',
        expect.stringMatching(
          /^inline secret refused: .*\(the query parameter name "client_secret" marks a credential\)$/,
        ),
      ],
      [8, '/auth/introspection/endpoint', https],
      [9, '/auth/introspection/issuer', 'must not contain a ?query (issuer identifiers have none, RFC 8414)'],
    ]);
    expect(JSON.stringify(problems)).not.toContain('Zx9fQ2lm');

    const local = load(
      `auth:
  mode: oauth
  jwt: { issuer: "http://localhost:4000", jwksUri: "http://[::1]:4000/jwks" }
  introspection:
    endpoint: http://127.0.0.1:4000/introspect
    issuer: http://127.0.0.1:4000
    clientId: gatehouse
    clientSecret: { fromEnv: S }
${STDIO}`,
      { S: 'secret-s' },
    );
    expect(local.auth.authorizationServers).toEqual(['http://localhost:4000', 'http://127.0.0.1:4000']);
  });

  it('checks algorithms, scopes and ranges', () => {
    const { problems } = fail(`auth:
  algorithms: [RS256, HS256, none]
  scopesSupported: [read]
  requiredScopes: [write, "a b"]
  clockSkewSeconds: 600
  claims: { scope: "" }
${STDIO}`);
    expect(problems.map((p) => [p.path, p.message])).toEqual([
      [
        '/auth/algorithms/1',
        'must be one of "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA" (got "HS256")',
      ],
      [
        '/auth/algorithms/2',
        'must be one of "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA" (got "none")',
      ],
      ['/auth/requiredScopes/1', 'must be a scope: printable ASCII without spaces, \\ or " (RFC 6749 §3.3)'],
      ['/auth/clockSkewSeconds', 'must be at most 300'],
      ['/auth/claims/scope', 'must not be empty'],
    ]);
    expect(problemAt(fail(`auth:\n  algorithms: []\n${STDIO}`).problems, '/auth/algorithms').message).toBe(
      'must have at least 1 entry',
    );
    expect(
      problemAt(
        fail(`auth:\n  scopesSupported: [read]\n  requiredScopes: [write]\n${STDIO}`).problems,
        '/auth/requiredScopes/0',
      ),
    ).toMatchObject({
      line: 3,
      message: 'scope "write" is required but missing from auth.scopesSupported',
    });
  });

  it('rejects unknown keys under auth and its blocks', () => {
    const { problems } = fail(`auth:
  mode: oauth
  audience: https://gw.example.com/mcp
  jwt:
    issuer: https://idp.example.com
    jwksUrl: https://idp.example.com/jwks
${STDIO}`);
    expect(problemAt(problems, '/auth/audience')).toMatchObject({
      line: 3,
      message: expect.stringMatching(/^unknown key "audience"/),
    });
    expect(problemAt(problems, '/auth/jwt/jwksUrl')).toMatchObject({
      line: 6,
      message: 'unknown key "jwksUrl" (did you mean "jwksUri"?)',
    });
    expect(problemAt(fail(`auth:\n  mode: oidc\n${STDIO}`).problems, '/auth/mode').message).toBe(
      'must be one of "none", "dev", "oauth", "builtin" (got "oidc")',
    );
  });
});

describe('server: tls and proxies', () => {
  const CERT = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n';
  let keyPem: string;
  beforeEach(() => {
    keyPem = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .privateKey.export({ format: 'pem', type: 'pkcs8' })
      .toString();
    fs.mkdirSync(path.join(dir, 'tls'));
    write('tls/server.crt', CERT);
    write('tls/server.key', keyPem);
    write('tls/clients-ca.pem', CERT);
  });

  it('reads tls with files relative to the config folder, and serves https resources', () => {
    const config = load(`server:
  tls:
    certFile: ./tls/server.crt
    key: { fromFile: ./tls/server.key }
    clientCaFile: tls/clients-ca.pem
    clientCertificates: require
    minVersion: TLSv1.3
  port: 8443
${STDIO}`);
    const tls = config.server.tls!;
    expect(tls).toMatchObject({
      certFile: path.join(dir, 'tls/server.crt'),
      clientCaFile: path.join(dir, 'tls/clients-ca.pem'),
      clientCertificates: 'require',
      minVersion: 'TLSv1.3',
    });
    expect(tls.key.reveal()).toBe(keyPem.replace(/\n$/, ''));
    expect(config.auth.resource).toBe('https://127.0.0.1:8443/mcp');
    expect(describeConfig(config)).toMatchObject({
      server: { tls: { key: `[secret file:${path.join(dir, 'tls/server.key')}]` } },
    });
    expect(JSON.stringify(describeConfig(config))).not.toContain('PRIVATE KEY');
    expect(isDeepFrozen(config)).toBe(true);

    const minimal = load(`server:\n  tls: { certFile: tls/server.crt, key: { fromEnv: TLS_KEY } }\n${STDIO}`, {
      TLS_KEY: keyPem,
    });
    expect(minimal.server.tls).toMatchObject({ clientCertificates: 'none', minVersion: 'TLSv1.2' });
    expect(minimal.server.tls).not.toHaveProperty('clientCaFile');
    expect(minimal.auth.resource).toBe('https://127.0.0.1:8080/mcp');
  });

  it('checks the certificate files, the key and the client CA', () => {
    write(
      'tls/encrypted.key',
      generateKeyPairSync('ec', { namedCurve: 'P-256' })
        .privateKey.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'x' })
        .toString(),
    );
    write('tls/combined.pem', `${CERT}${keyPem}`);
    const { problems, message } = fail(`server:
  tls:
    certFile: tls/missing.crt
    key: { fromFile: tls/server.crt }
    clientCertificates: request
upstreams:
  - name: a
    transport: stdio
    command: x
`);
    expect(problems.map((p) => [p.line, p.path, p.message])).toEqual([
      [3, '/server/tls/certFile', `file ${path.join(dir, 'tls/missing.crt')} does not exist`],
      [
        4,
        '/server/tls/key/fromFile',
        `the secret from file:${path.join(dir, 'tls/server.crt')} is not a PEM private key (-----BEGIN PRIVATE KEY-----)`,
      ],
      [
        5,
        '/server/tls/clientCertificates',
        '"request" needs tls.clientCaFile: client certificates are checked against that CA only, never against public roots',
      ],
    ]);
    expect(message).not.toContain('MIIB');

    const more = fail(`server:
  tls:
    certFile: tls/combined.pem
    key: { fromFile: tls/encrypted.key }
    clientCaFile: tls/server.key
${STDIO}`).problems;
    expect(more.map((p) => [p.line, p.path, p.message])).toEqual([
      [
        3,
        '/server/tls/certFile',
        `file ${path.join(dir, 'tls/combined.pem')} also holds a private key; keep the key in a file of its own and reference it from tls.key`,
      ],
      [
        4,
        '/server/tls/key/fromFile',
        `the secret from file:${path.join(dir, 'tls/encrypted.key')} is an encrypted private key; Gatehouse needs it unencrypted (protect the file's permissions instead)`,
      ],
      [
        5,
        '/server/tls/clientCaFile',
        `file ${path.join(dir, 'tls/server.key')} holds no PEM certificate (-----BEGIN CERTIFICATE-----); expected a CA certificate`,
      ],
      [
        5,
        '/server/tls/clientCaFile',
        `file ${path.join(dir, 'tls/server.key')} also holds a private key; keep the key in a file of its own and reference it from tls.key`,
      ],
      [
        5,
        '/server/tls/clientCaFile',
        'is unused while tls.clientCertificates is "none"; set clientCertificates to "request" or "require", or remove clientCaFile',
      ],
    ]);

    const escaped = fail(`server:\n  tls: { certFile: tls/server.crt, key: { fromEnv: TLS_KEY } }\n${STDIO}`, {
      TLS_KEY: keyPem.replace(/\n/g, '\\n'),
    });
    expect(escaped.problems[0]!.message).toBe(
      'the secret from env:TLS_KEY is not a PEM private key (-----BEGIN PRIVATE KEY-----) (it holds "\\n" escapes; the variable needs real line breaks)',
    );
    expect(escaped.message).not.toContain('MIG');
  });

  it('rejects unknown and missing keys under tls', () => {
    const { problems } = fail(
      `server:\n  tls:\n    certFile: tls/server.crt\n    keyFile: tls/server.key\n    minVersion: TLSv1.1\n${STDIO}`,
    );
    expect(problems.map((p) => [p.path, p.message])).toEqual([
      ['/server/tls', 'missing required key "key"'],
      [
        '/server/tls/keyFile',
        'unknown key "keyFile"; known keys: certFile, key, clientCaFile, clientCertificates, minVersion',
      ],
      ['/server/tls/minVersion', 'must be one of "TLSv1.2", "TLSv1.3" (got "TLSv1.1")'],
    ]);
  });

  it('checks trusted proxy addresses and ranges', () => {
    const { problems } = fail(`server:
  trustedProxies:
    - 10.0.0.0/33
    - 10.0.0.256
    - proxy.internal
    - "::/0"
    - 0.0.0.0/0
    - 10.0.0.0/8/1
    - 192.168.1.0/24
    - "fd00::/8"
${STDIO}`);
    const example = 'e.g. 10.0.0.0/8, 192.168.1.10 or ::1';
    expect(problems.map((p) => [p.line, p.message])).toEqual([
      [3, `is not an IP address or CIDR range (the prefix length must be 0-32); ${example}`],
      [4, `is not an IP address or CIDR range; ${example}`],
      [5, `is not an IP address or CIDR range; ${example}`],
      [
        6,
        "trusts every address, so any client could forge forwarded headers; list the proxies' own addresses or subnets",
      ],
      [
        7,
        "trusts every address, so any client could forge forwarded headers; list the proxies' own addresses or subnets",
      ],
      [8, `is not an IP address or CIDR range (the prefix length must be 0-32); ${example}`],
    ]);
  });

  it('believes a forwarded client certificate header only with trusted proxies', () => {
    expect(fail(`server:\n  forwardedClientCertHeader: Client-Cert\n${STDIO}`).problems).toEqual([
      expect.objectContaining({
        line: 2,
        path: '/server/forwardedClientCertHeader',
        message:
          'needs server.trustedProxies: a forwarded client certificate is only believed from listed proxy addresses, and the list is empty',
      }),
    ]);
    const config = load(`server:\n  forwardedClientCertHeader: Client-Cert\n  trustedProxies: [127.0.0.1]\n${STDIO}`);
    expect(config.server.forwardedClientCertHeader).toBe('client-cert');
    expect(
      problemAt(
        fail(`server:\n  forwardedClientCertHeader: "client cert"\n${STDIO}`).problems,
        '/server/forwardedClientCertHeader',
      ).message,
    ).toMatch(/^must be a header name/);
  });
});

describe('examples/*.yaml', () => {
  const examplesDir = path.join(root, 'examples');
  const files = fs.existsSync(examplesDir)
    ? fs
        .readdirSync(examplesDir)
        .filter((f) => /\.ya?ml$/.test(f) && !f.endsWith('.test.yaml'))
        .sort()
    : [];
  // Examples reference credentials by name; any variable they ask for gets a stand-in value here (a signing key: a fresh private JWK).
  const signingKey = JSON.stringify(
    generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }),
  );
  const standIn = (name: string): string => (/SIGNING_KEY/.test(name) ? signingKey : `stand-in-for-${name}`);
  const env = new Proxy(
    { ...process.env },
    { get: (target, name) => (typeof name === 'string' ? (target[name] ?? standIn(name)) : undefined) },
  );
  // examples/gatehouse.mtls.yaml points at test certificates that are generated, not committed.
  beforeAll(() => {
    if (!fs.existsSync(path.join(examplesDir, 'tls/out')))
      execFileSync('bash', [path.join(examplesDir, 'tls/make-certs.sh')], { stdio: 'pipe' });
  });

  it('the bundled example is among them', () => {
    expect(files).toContain('gatehouse.yaml');
  });
  it.each(files)('%s validates', (name) => {
    expect(() => loadConfig(path.join(examplesDir, name), { env })).not.toThrow();
  });
  it('the bundled example validates in dev mode with the dev defaults', () => {
    const text = fs
      .readFileSync(path.join(examplesDir, 'gatehouse.yaml'), 'utf8')
      .replace(/^(\s*mode:)\s*none\b.*$/m, '$1 dev');
    const config = parseConfigText(text, path.join(examplesDir, 'gatehouse.yaml'), { env });
    expect(config.auth.mode).toBe('dev');
    expect(config.auth.dev).toEqual({
      keyFile: path.join(examplesDir, '.gatehouse/dev-signing-key.json'),
      issuer: 'urn:gatehouse:dev',
    });
  });
});

describe('auth.builtin', () => {
  const ecJwk = (kid?: string): Record<string, unknown> => ({
    ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }),
    ...(kid !== undefined ? { kid } : {}),
  });
  const SIGNING_KEY = JSON.stringify(ecJwk('k1'));
  const ENV = { SIGNING_KEY, IDP_SECRET: 'idp-client-secret-value-123' };
  /** A builtin config; `auth` lines go before the builtin block, `builtin` lines into it (4-space indent). */
  const text = (
    opts: { server?: string; auth?: string; builtin?: string; idp?: string } = {},
  ): string => `${opts.server ?? ''}auth:
  mode: builtin
  scopesSupported: [mcp:tools, mcp:read]
${opts.auth ?? ''}  builtin:
    signingKeys: [{ fromEnv: SIGNING_KEY }]
    idp:
      issuer: ${opts.idp ?? 'https://idp.example.com/realms/corp'}
      clientId: gatehouse
      clientSecret: { fromEnv: IDP_SECRET }
${opts.builtin ?? ''}${STDIO}`;

  it('fills the defaults, derives the issuer from the resource and advertises it', () => {
    const config = load(text(), ENV);
    const b = config.auth.builtin!;
    expect(config.auth.mode).toBe('builtin');
    expect(config.auth.resource).toBe('http://127.0.0.1:8080/mcp');
    expect(b.issuer).toBe('http://127.0.0.1:8080');
    expect(config.auth.authorizationServers).toEqual(['http://127.0.0.1:8080']);
    expect(b).toMatchObject({
      accessTokenTtlSeconds: 300,
      refreshTokenTtlSeconds: 2_592_000,
      codeTtlSeconds: 60,
      registration: { enabled: true },
      clientIdMetadataDocuments: true,
      idp: {
        issuer: 'https://idp.example.com/realms/corp',
        clientId: 'gatehouse',
        scopes: ['openid', 'profile', 'email'],
      },
      scopeMapping: [],
      clients: [],
      store: { kind: 'memory' },
    });
    expect(b.signingKeys.map((k) => k.reveal())).toEqual([SIGNING_KEY]);
    expect(b.idp.clientSecret!.reveal()).toBe('idp-client-secret-value-123');
    // Keys and secrets are shown by source only, never by value.
    const described = JSON.stringify(describeConfig(config));
    expect(described).toContain('[secret env:SIGNING_KEY]');
    expect(described).not.toContain(JSON.parse(SIGNING_KEY).d as string);
    expect(described).not.toContain('idp-client-secret-value-123');
    expect(isDeepFrozen(config)).toBe(true);
  });

  it('states the defaults in the schema too', () => {
    const defs = schema.$defs as Record<string, { properties: Record<string, { default?: unknown }> }>;
    for (const [key, value] of Object.entries(CONFIG_DEFAULTS.builtin))
      expect(defs.builtin!.properties[key]!.default, `builtin.${key}`).toEqual(value);
    for (const [key, value] of Object.entries(CONFIG_DEFAULTS.builtinRegistration))
      expect(defs.builtinRegistration!.properties[key]!.default).toEqual(value);
    for (const [key, value] of Object.entries(CONFIG_DEFAULTS.builtinIdp))
      expect(defs.builtinIdp!.properties[key]!.default).toEqual(value);
    for (const [key, value] of Object.entries(CONFIG_DEFAULTS.builtinStore))
      expect(defs.builtinStore!.properties[key]!.default).toEqual(value);
  });

  it('reads every key: explicit issuer, lifetimes, registration token, scope mapping, machine clients, redis', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    write('agent-jwks.json', JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'a1' }] }));
    const config = load(
      text({
        server: 'server:\n  host: 0.0.0.0\n  trustedProxies: [10.0.0.0/8]\n  forwardedClientCertHeader: client-cert\n',
        auth: '  resource: https://gw.example.com/mcp\n',
        builtin: `    issuer: https://gw.example.com
    accessTokenTtlSeconds: 600
    refreshTokenTtlSeconds: 86400
    codeTtlSeconds: 30
    registration: { enabled: false, initialAccessToken: { fromEnv: IAT } }
    clientIdMetadataDocuments: false
    scopeMapping:
      - { claim: groups, value: engineering, scopes: [mcp:tools, mcp:read] }
    clients:
      - { clientId: nightly-job, auth: private_key_jwt, jwksFile: agent-jwks.json, scopes: [mcp:read] }
      - { clientId: agent-1, auth: tls_client_auth, tlsSubject: "CN=agent-1,O=Example", scopes: [mcp:tools] }
    store: { kind: redis, url: { fromEnv: REDIS_URL } }
`,
      }),
      { ...ENV, IAT: 'initial-access-token-0123456789', REDIS_URL: 'redis://:pw@redis.internal:6379/0' },
    );
    const b = config.auth.builtin!;
    expect(config.auth.authorizationServers).toEqual(['https://gw.example.com']);
    expect(b).toMatchObject({
      issuer: 'https://gw.example.com',
      accessTokenTtlSeconds: 600,
      refreshTokenTtlSeconds: 86400,
      codeTtlSeconds: 30,
      registration: { enabled: false },
      clientIdMetadataDocuments: false,
      scopeMapping: [{ claim: 'groups', value: 'engineering', scopes: ['mcp:tools', 'mcp:read'] }],
      clients: [
        {
          clientId: 'nightly-job',
          auth: 'private_key_jwt',
          jwksFile: path.join(dir, 'agent-jwks.json'),
          scopes: ['mcp:read'],
        },
        { clientId: 'agent-1', auth: 'tls_client_auth', tlsSubject: 'CN=agent-1,O=Example', scopes: ['mcp:tools'] },
      ],
      store: { kind: 'redis', keyPrefix: 'gatehouse:as:' },
    });
    expect(b.registration.initialAccessToken!.reveal()).toBe('initial-access-token-0123456789');
    const store = b.store as { url: { reveal(): string } };
    expect(store.url.reveal()).toBe('redis://:pw@redis.internal:6379/0');
    expect(JSON.stringify(describeConfig(config))).not.toContain(':pw@');
  });

  it('the builtin block belongs to mode builtin, and mode builtin needs it', () => {
    const other = fail(
      `auth:\n  mode: dev\n  builtin:\n    signingKeys: [{ fromEnv: SIGNING_KEY }]\n    idp: { issuer: https://idp.example.com, clientId: gh }\n${STDIO}`,
      ENV,
    ).problems;
    expect(problemAt(other, '/auth/builtin')).toMatchObject({
      line: 3,
      message: 'key "builtin" is only for auth.mode "builtin", and this one has mode "dev"',
    });
    const missing = fail(`auth:\n  mode: builtin\n${STDIO}`).problems;
    expect(problemAt(missing, '/auth/mode').message).toMatch(/^auth\.mode "builtin" needs a "builtin" block/);
    expect(
      problemAt(
        fail(`auth:\n  mode: builtin\n  builtin: { idp: { issuer: https://idp.example.com, clientId: g } }\n${STDIO}`)
          .problems,
        '/auth/builtin',
      ).message,
    ).toBe('missing required key "signingKeys"');
  });

  it('checks the signing keys without ever printing them', () => {
    const { privateKey: rsa1024 } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const { publicKey: ecPublic } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const cases: [string, string][] = [
      ['not json at all, secret-ish-content', 'the secret from env:SIGNING_KEY is not a JSON Web Key (a JSON object)'],
      [
        generateKeyPairSync('ec', { namedCurve: 'P-256' })
          .privateKey.export({ format: 'pem', type: 'pkcs8' })
          .toString(),
        'the secret from env:SIGNING_KEY is not a JSON Web Key (a JSON object) (it holds a PEM key; convert it to a JWK)',
      ],
      [
        JSON.stringify(ecPublic.export({ format: 'jwk' })),
        'the secret from env:SIGNING_KEY is a public key; the signing key must be the private JWK (with "d")',
      ],
      [
        JSON.stringify(generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ format: 'jwk' })),
        'the secret from env:SIGNING_KEY is an EC key on another curve than P-256 (ES256 is the only EC algorithm supported)',
      ],
      [
        JSON.stringify(generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' })),
        'the secret from env:SIGNING_KEY is not an EC P-256 or RSA key (the only kinds the built-in authorization server signs with)',
      ],
      [
        JSON.stringify(rsa1024.export({ format: 'jwk' })),
        'the secret from env:SIGNING_KEY is an RSA key shorter than 2048 bits',
      ],
      [
        JSON.stringify({ ...ecJwk(), alg: 'ES384' }),
        'the secret from env:SIGNING_KEY names an "alg" other than ES256 for a P-256 key',
      ],
      [
        JSON.stringify({ ...ecJwk(), d: ecJwk().d }),
        'the secret from env:SIGNING_KEY is not a valid private key (its private and public members do not belong together)',
      ],
      [JSON.stringify({ ...ecJwk(), x: 'AAAA' }), 'the secret from env:SIGNING_KEY is not a valid private key'],
    ];
    for (const [value, message] of cases) {
      const { problems, message: printed } = fail(text(), { ...ENV, SIGNING_KEY: value });
      expect(problemAt(problems, '/auth/builtin/signingKeys/0/fromEnv')).toMatchObject({ line: 5, message });
      expect(printed).not.toContain(value.slice(0, 30));
    }
    // An RSA key of 2048 bits is fine; so are two keys (rotation) — unless they share a key id.
    const rsa = JSON.stringify(
      generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }),
    );
    expect(load(text(), { ...ENV, SIGNING_KEY: rsa }).auth.builtin!.signingKeys).toHaveLength(1);
    write('old-key.json', `${JSON.stringify(ecJwk('k0'))}\n`);
    const two = (file: string) =>
      text().replace('[{ fromEnv: SIGNING_KEY }]', `[{ fromEnv: SIGNING_KEY }, { fromFile: ${file} }]`);
    expect(load(two('old-key.json'), ENV).auth.builtin!.signingKeys.map((k) => k.source)).toEqual([
      'env:SIGNING_KEY',
      `file:${path.join(dir, 'old-key.json')}`,
    ]);
    write('same-kid.json', JSON.stringify(ecJwk('k1')));
    expect(problemAt(fail(two('same-kid.json'), ENV).problems, '/auth/builtin/signingKeys/1').message).toBe(
      'has the same key id as /auth/builtin/signingKeys/0; every signing key needs its own "kid" (and key)',
    );
    expect(
      problemAt(fail(text().replace('[{ fromEnv: SIGNING_KEY }]', '[]'), ENV).problems, '/auth/builtin/signingKeys')
        .message,
    ).toBe('must have at least 1 entry');
  });

  it('checks the issuer: https off loopback, written canonically', () => {
    expect(
      problemAt(fail(text({ builtin: '    issuer: http://gw.example.com\n' }), ENV).problems, '/auth/builtin/issuer')
        .message,
    ).toBe('must use https: (http: is accepted only for loopback hosts such as 127.0.0.1, [::1] or localhost)');
    expect(
      problemAt(
        fail(text({ builtin: '    issuer: https://GW.example.com:443/\n' }), ENV).problems,
        '/auth/builtin/issuer',
      ).message,
    ).toBe(
      'must be written exactly as "https://gw.example.com" (lower-case scheme and host, no default port, no trailing "/")',
    );
    expect(
      problemAt(
        fail(text({ builtin: '    issuer: https://gw.example.com?x=1\n' }), ENV).problems,
        '/auth/builtin/issuer',
      ).message,
    ).toBe('must not contain a ?query (issuer identifiers have none, RFC 8414)');
    // A path is allowed (the endpoints live under it), and the explicit issuer is what the metadata advertises.
    const withPath = load(
      text({ auth: '  resource: https://gw.example.com/mcp\n', builtin: '    issuer: https://gw.example.com/as\n' }),
      ENV,
    );
    expect(withPath.auth.authorizationServers).toEqual(['https://gw.example.com/as']);
    // The default issuer is the resource's origin: a plain-http public resource cannot give one.
    expect(
      problemAt(fail(text({ auth: '  resource: http://gw.example.com/mcp\n' }), ENV).problems, '/auth/resource')
        .message,
    ).toMatch(
      /^the built-in authorization server's issuer defaults to this URL's origin \(http:\/\/gw\.example\.com\), which must be https/,
    );
  });

  it('off loopback it needs HTTPS: server.tls or an https resource (TLS at a proxy)', () => {
    const problems = fail(text({ server: 'server:\n  host: 10.0.0.5\n' }), ENV).problems;
    expect(problemAt(problems, '/auth/mode').message).toBe(
      'auth.mode "builtin" on the non-loopback host 10.0.0.5 needs HTTPS: set server.tls, or, behind a TLS-terminating proxy, an https auth.resource',
    );
    expect(problems).toHaveLength(1);
    expect(
      problemAt(
        fail(text({ server: 'server:\n  host: 10.0.0.5\n', auth: '  resource: http://10.0.0.5:8080/mcp\n' }), ENV)
          .problems,
        '/auth/resource',
      ).message,
    ).toMatch(/needs HTTPS/);
    expect(
      problemAt(fail(text({ server: 'server:\n  host: 0.0.0.0\n' }), ENV).problems, '/auth/resource').message,
    ).toBe('must be set to the URL clients use to reach the gateway; it cannot be derived from server.host "0.0.0.0"');
    const behindProxy = load(
      text({ server: 'server:\n  host: 0.0.0.0\n', auth: '  resource: https://mcp.example.com/mcp\n' }),
      ENV,
    );
    expect(behindProxy.auth.builtin!.issuer).toBe('https://mcp.example.com');
    // The authorization server shares the listener: the MCP path must not be one of its routes.
    expect(problemAt(fail(text({ server: 'server:\n  path: /token\n' }), ENV).problems, '/server/path').message).toBe(
      '"/token" is a route of the built-in authorization server (issuer http://127.0.0.1:8080); choose another MCP path or issuer',
    );
  });

  it('checks the IdP: https (plain http only for a loopback development setup), openid, a clean secret', () => {
    // A loopback gateway on plain http may use a loopback IdP on plain http (local development) ...
    expect(load(text({ idp: 'http://127.0.0.1:9000' }), ENV).auth.builtin!.idp.issuer).toBe('http://127.0.0.1:9000');
    // ... an https one may not, and a public plain-http IdP is never accepted.
    const httpsGw = text({ auth: '  resource: https://gw.example.com/mcp\n', idp: 'http://127.0.0.1:9000' });
    expect(problemAt(fail(httpsGw, ENV).problems, '/auth/builtin/idp/issuer').message).toMatch(
      /^must use https: \(a plain-http IdP on a loopback host is accepted only while/,
    );
    expect(
      problemAt(fail(text({ idp: 'http://idp.example.com' }), ENV).problems, '/auth/builtin/idp/issuer').message,
    ).toMatch(/^must use https:/);
    // (Lines given as `builtin` follow the idp block: six spaces put them inside it.)
    expect(
      problemAt(fail(text({ builtin: '      scopes: [profile, email]\n' }), ENV).problems, '/auth/builtin/idp/scopes')
        .message,
    ).toBe('must include "openid" (the login is OpenID Connect)');
    expect(
      problemAt(fail(text(), { ...ENV, IDP_SECRET: 'line\nbreak' }).problems, '/auth/builtin/idp/clientSecret').message,
    ).toBe('the secret from env:IDP_SECRET contains line breaks or control characters');
    expect(problemAt(fail(text(), { SIGNING_KEY }).problems, '/auth/builtin/idp/clientSecret/fromEnv').message).toBe(
      'environment variable IDP_SECRET is not set',
    );
  });

  it('checks lifetimes, the registration token and the scope mapping', () => {
    expect(
      problemAt(fail(text({ builtin: '    codeTtlSeconds: 61\n' }), ENV).problems, '/auth/builtin/codeTtlSeconds')
        .message,
    ).toBe('must be at most 60');
    expect(
      problemAt(
        fail(text({ builtin: '    accessTokenTtlSeconds: 0\n' }), ENV).problems,
        '/auth/builtin/accessTokenTtlSeconds',
      ).message,
    ).toBe('must be at least 1');
    expect(
      problemAt(
        fail(text({ builtin: '    refreshTokenTtlSeconds: 31536001\n' }), ENV).problems,
        '/auth/builtin/refreshTokenTtlSeconds',
      ).message,
    ).toBe('must be at most 31536000');
    const iat = text({ builtin: '    registration: { initialAccessToken: { fromEnv: IAT } }\n' });
    expect(
      problemAt(fail(iat, { ...ENV, IAT: 'short-iat' }).problems, '/auth/builtin/registration/initialAccessToken')
        .message,
    ).toBe('the secret from env:IAT is shorter than 16 characters');
    const mapping = text({
      builtin: '    scopeMapping:\n      - { claim: groups, value: admins, scopes: [mcp:tools, mcp:admin] }\n',
    });
    expect(problemAt(fail(mapping, ENV).problems, '/auth/builtin/scopeMapping/0/scopes/1').message).toBe(
      'scope "mcp:admin" is missing from auth.scopesSupported, so no client could ever request it',
    );
    expect(
      problemAt(
        fail(text({ builtin: '    scopeMapping: [{ claim: groups, scopes: [mcp:tools] }]\n' }), ENV).problems,
        '/auth/builtin/scopeMapping/0',
      ).message,
    ).toBe('missing required key "value"');
  });

  it('checks machine clients: the key each auth method needs, public JWKS files, client certificates', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    write('private-jwks.json', JSON.stringify({ keys: [privateKey.export({ format: 'jwk' })] }));
    const clients = (lines: string) => text({ builtin: `    clients:\n${lines}` });
    expect(
      problemAt(
        fail(clients('      - { clientId: job, auth: private_key_jwt, scopes: [] }\n'), ENV).problems,
        '/auth/builtin/clients/0',
      ).message,
    ).toBe('missing required key "jwksFile" (auth "private_key_jwt" needs it)');
    expect(
      problemAt(
        fail(
          clients(
            '      - { clientId: job, auth: private_key_jwt, jwksFile: absent.json, tlsSubject: CN=x, scopes: [] }\n',
          ),
          ENV,
        ).problems,
        '/auth/builtin/clients/0/tlsSubject',
      ).message,
    ).toBe('key "tlsSubject" is only for clients with auth "tls_client_auth", and this one has auth "private_key_jwt"');
    expect(
      problemAt(
        fail(clients('      - { clientId: job, auth: private_key_jwt, jwksFile: absent.json, scopes: [] }\n'), ENV)
          .problems,
        '/auth/builtin/clients/0/jwksFile',
      ).message,
    ).toBe(`file ${path.join(dir, 'absent.json')} does not exist`);
    expect(
      problemAt(
        fail(
          clients('      - { clientId: job, auth: private_key_jwt, jwksFile: private-jwks.json, scopes: [] }\n'),
          ENV,
        ).problems,
        '/auth/builtin/clients/0/jwksFile',
      ).message,
    ).toMatch(/must hold public keys only$/);
    // tls_client_auth needs a client certificate source on this listener.
    expect(
      problemAt(
        fail(clients('      - { clientId: agent, auth: tls_client_auth, tlsSubject: CN=agent, scopes: [] }\n'), ENV)
          .problems,
        '/auth/builtin/clients/0/auth',
      ).message,
    ).toMatch(/^tls_client_auth needs client certificates/);
    const dup = fail(
      clients(
        '      - { clientId: https://x.example, auth: tls_client_auth, tlsSubject: CN=a, scopes: [] }\n      - { clientId: https://x.example, auth: tls_client_auth, tlsSubject: CN=b, scopes: [] }\n',
      ),
      ENV,
    ).problems;
    expect(problemAt(dup, '/auth/builtin/clients/1/clientId').message).toBe(
      'duplicate clientId "https://x.example" (also used by /auth/builtin/clients/0)',
    );
    expect(problemAt(dup, '/auth/builtin/clients/0/clientId').message).toBe(
      'must not be URL-shaped (such client ids name client ID metadata documents)',
    );
  });

  it('checks the store: redis needs a redis URL, a password only through a secret reference', () => {
    const store = (yaml: string) => text({ builtin: `    store: ${yaml}\n` });
    expect(load(store('{ kind: redis, url: "redis://127.0.0.1:6379" }'), ENV).auth.builtin!.store).toEqual({
      kind: 'redis',
      url: 'redis://127.0.0.1:6379',
      keyPrefix: 'gatehouse:as:',
    });
    expect(
      load(store('{ kind: redis, url: "rediss://r.example:6380/2", keyPrefix: "gw1:" }'), ENV).auth.builtin!.store,
    ).toMatchObject({ keyPrefix: 'gw1:' });
    const inline = fail(store('{ kind: redis, url: "redis://:hunter2hunter2@r.example:6379" }'), ENV);
    expect(problemAt(inline.problems, '/auth/builtin/store/url').message).toBe(
      'inline secret refused: reference it with { fromEnv: NAME } or { fromFile: PATH } (the URL carries credentials)',
    );
    expect(inline.message).not.toContain('hunter2');
    expect(problemAt(fail(store('{ kind: redis }'), ENV).problems, '/auth/builtin/store').message).toBe(
      'missing required key "url" (kind "redis" needs it)',
    );
    expect(
      problemAt(fail(store('{ kind: memory, url: "redis://x" }'), ENV).problems, '/auth/builtin/store/url').message,
    ).toBe('key "url" is only for store kind "redis", and this one has kind "memory"');
    expect(
      problemAt(fail(store('{ kind: redis, url: "http://r.example" }'), ENV).problems, '/auth/builtin/store/url')
        .message,
    ).toBe('must be a redis:// or rediss:// URL without spaces');
    const fromEnv = fail(store('{ kind: redis, url: { fromEnv: REDIS_URL } }'), {
      ...ENV,
      REDIS_URL: 'https://user:secretpw@r.example',
    });
    expect(problemAt(fromEnv.problems, '/auth/builtin/store/url/fromEnv').message).toBe(
      'the secret from env:REDIS_URL is not a redis:// or rediss:// URL',
    );
    expect(fromEnv.message).not.toContain('secretpw');
  });
});

describe('loadConfig: pinning', () => {
  it('is off by default; the lock defaults to tools.lock in policy.dir; a mode needs a lock', () => {
    expect(load(STDIO).pinning).toEqual({ mode: 'off' });
    fs.mkdirSync(path.join(dir, 'rules'));
    const withRules = load(
      `auth:\n  mode: dev\npolicy:\n  dir: rules\npinning:\n  mode: enforce\n${STDIO}    pinning: warn\n`,
    );
    expect(withRules.pinning).toEqual({ mode: 'enforce', lockFile: path.join(dir, 'rules', 'tools.lock') });
    expect(withRules.upstreams[0]!.pinning).toBe('warn');
    expect(load(`pinning:\n  mode: warn\n  lockFile: locks/tools.lock\n${STDIO}`).pinning).toEqual({
      mode: 'warn',
      lockFile: path.join(dir, 'locks', 'tools.lock'),
    });
    expect(problemAt(fail(`pinning:\n  mode: enforce\n${STDIO}`).problems, '/pinning/mode')).toMatchObject({
      line: 2,
      message: 'pinning.mode "enforce" needs pinning.lockFile (there is no policy.dir to default to)',
    });
    expect(problemAt(fail(`${STDIO}    pinning: warn\n`).problems, '/upstreams/0/pinning').message).toMatch(
      /needs pinning.lockFile/,
    );
    expect(problemAt(fail(`pinning:\n  mode: sometimes\n${STDIO}`).problems, '/pinning/mode').line).toBe(2);
  });
});
