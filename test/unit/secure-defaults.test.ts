/**
 * Secure defaults: the loader and the policy loader refuse a deployment that would be weak, each problem naming
 * the file or config path, what is wrong and the fix. Real files in a temp folder; the mode decisions that depend
 * on who owns a file (root, a user-private group) are checked on the pure functions, since a test cannot chown.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { readableBy, writableBy, type FileFacts } from '../../src/config/file-exposure.js';
import { ConfigError, loadConfig, type ConfigProblem } from '../../src/config/index.js';
import { loadPolicyDir } from '../../src/policy/compile.js';
import { emptyToolsLock } from '../../src/policy/pinning/lock-file.js';
import { readToolsLock, writeToolsLock } from '../../src/policy/pinning/lock-io.js';
import { useConfigFolder } from '../helpers/config-folder.js';
import { PERMISSIVE_POLICY } from '../helpers/gateway.js';

const folder = useConfigFolder('secure-defaults');
const DEMO_KEY = 'demo-orders-key-NOT-A-SECRET-change-me';
const STDIO = 'upstreams:\n  - { name: fx, transport: stdio, command: node }\n';
/** An https-fronted oauth gateway on every interface: a deployment that is otherwise fine. */
const PUBLIC = [
  'server: { host: 0.0.0.0 }',
  'auth:',
  '  mode: oauth',
  '  resource: https://mcp.example.com/mcp',
  '  jwt: { issuer: https://idp.example.com, jwksUri: https://idp.example.com/jwks }',
  'policy: { dir: ./policies }',
  '',
].join('\n');

function policies(mode = 0o755): string {
  const dir = path.join(folder.dir(), 'policies');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'allow.yaml'), PERMISSIVE_POLICY, { mode: 0o644 });
  fs.chmodSync(dir, mode);
  return dir;
}

function secret(name: string, value: string, mode: number): string {
  const file = path.join(folder.dir(), name);
  fs.writeFileSync(file, `${value}\n`, { mode });
  fs.chmodSync(file, mode); // the umask does not narrow what the test asks for
  return file;
}

const header = (ref: string): string =>
  'upstreams:\n  - { name: orders, transport: http, url: https://orders.example.com/mcp, ' +
  `headers: { X-API-Key: ${ref} } }\n`;
const messages = (problems: readonly ConfigProblem[]): string[][] => problems.map((p) => [p.path, p.message]);

describe('who may read or change a file (pure)', () => {
  const facts = (mode: number, uid = 1000, gid = 100, readOnly = false): FileFacts => ({ mode, uid, gid, readOnly });

  it('counts write bits for the group and others, except on a read-only mount or for a user-private group', () => {
    expect(writableBy(facts(0o644))).toBeUndefined();
    expect(writableBy(facts(0o666))).toBe('others');
    expect(writableBy(facts(0o1777))).toBe('others'); // sticky: others still add files (a policy folder)
    expect(writableBy(facts(0o664))).toBe('group');
    expect(writableBy(facts(0o664, 1000, 1000))).toBeUndefined(); // umask 002 checkout, group = the owner's own
    expect(writableBy(facts(0o664, 0, 0))).toBe('group'); // root's group is no private group
    expect(writableBy(facts(0o777, 0, 0, true))).toBeUndefined(); // a ConfigMap volume's folder (read-only mount)
  });

  it('counts read bits of secrets for others always, for the group unless root owns it or the group is private', () => {
    expect(readableBy(facts(0o600))).toBeUndefined();
    expect(readableBy(facts(0o644))).toBe('others');
    expect(readableBy(facts(0o444, 0, 10001, true))).toBe('others'); // Docker's default 0444 secrets: refused
    expect(readableBy(facts(0o640))).toBe('group');
    expect(readableBy(facts(0o440, 0, 10001, true))).toBeUndefined(); // a Kubernetes Secret volume with fsGroup
    expect(readableBy(facts(0o640, 1000, 1000))).toBeUndefined();
  });
});

describe('secret files', () => {
  it('refuses a secret file every user can read, naming the file, the mode and the fix', () => {
    const file = secret('orders.key', randomBytes(24).toString('hex'), 0o644);
    expect(messages(folder.problems(header('{ fromFile: ./orders.key }')))).toEqual([
      [
        '/upstreams/0/headers/X-API-Key/fromFile',
        `secret file ${file} can be read by every user (mode 0644); run \`chmod 600 ${file}\``,
      ],
    ]);
    fs.chmodSync(file, 0o600);
    expect(folder.load(header('{ fromFile: ./orders.key }')).upstreams).toHaveLength(1);
  });

  it('refuses a secret file other users can change, and a link into a folder other users can change', () => {
    const file = secret('writable.key', randomBytes(24).toString('hex'), 0o602);
    expect(messages(folder.problems(header('{ fromFile: ./writable.key }')))).toEqual([
      [
        '/upstreams/0/headers/X-API-Key/fromFile',
        `secret file ${file} can be changed by every user (mode 0602); run \`chmod go-w ${file}\``,
      ],
    ]);
    const open = path.join(folder.dir(), 'open');
    fs.mkdirSync(open);
    fs.chmodSync(open, 0o777);
    const target = path.join(open, 'real.key');
    fs.writeFileSync(target, randomBytes(24).toString('hex'), { mode: 0o600 });
    fs.symlinkSync(target, path.join(folder.dir(), 'linked.key'));
    const [problem] = folder.problems(header('{ fromFile: ./linked.key }'));
    expect(problem!.message).toBe(
      `secret file ${path.join(folder.dir(), 'linked.key')} links to ${target}, ` +
        `in the folder ${open} that every user can change (mode 0777); ` +
        `run \`chmod go-w ${open}\` or link to a file in a folder only its owner can change`,
    );
  });

  it("allows the bundled example's demo key on loopback only, whatever its file mode (git checks it out 0644)", () => {
    secret('demo.key', DEMO_KEY, 0o644);
    expect(folder.load(header('{ fromFile: ./demo.key }')).upstreams).toHaveLength(1);
    policies();
    const problems = folder.problems(`${PUBLIC}${header('{ fromFile: ./demo.key }')}`);
    expect(messages(problems)).toEqual([
      [
        '/upstreams/0/headers/X-API-Key/fromFile',
        `the secret from file:${path.join(folder.dir(), 'demo.key')} is the bundled example's demo value ` +
          '(published in this repository), allowed only while server.host is a loopback address; ' +
          'use a real secret, e.g. from `openssl rand -base64 32`',
      ],
    ]);
    // From the environment too: the value is what is public.
    expect(
      messages(folder.problems(`${PUBLIC}${header('{ fromEnv: ORDERS_KEY }')}`, { ORDERS_KEY: DEMO_KEY }))[0]![0],
    ).toBe('/upstreams/0/headers/X-API-Key/fromEnv');
  });

  it('refuses the placeholders of the manifests anywhere, loopback included, without quoting the value', () => {
    for (const [value, word] of [
      ['REPLACE-ME', 'REPLACE-ME'],
      ['Bearer REPLACE-ME', 'REPLACE-ME'],
      ['changeme', 'changeme'],
    ] as const) {
      const problems = folder.problems(header('{ fromEnv: ORDERS_KEY }'), { ORDERS_KEY: value });
      expect(messages(problems)).toEqual([
        [
          '/upstreams/0/headers/X-API-Key/fromEnv',
          `the secret from env:ORDERS_KEY is a placeholder (it contains "${word}"), ` +
            'not a secret; put the real value there',
        ],
      ]);
    }
    // A 32-byte HMAC key that is only a placeholder repeated passes the length rule, not this one.
    const hmac = folder.problems(`audit:\n  hashChain: { hmacKey: { fromEnv: H } }\n${STDIO}`, {
      H: 'change-me-change-me-change-me-change-me',
    });
    expect(messages(hmac)).toEqual([
      [
        '/audit/hashChain/hmacKey/fromEnv',
        'the secret from env:H is a placeholder (it contains "change-me"), not a secret; put the real value there',
      ],
    ]);
  });
});

describe('configuration and trust files', () => {
  // The configuration names the commands stdio upstreams run.
  it('refuses a configuration file other users can change, with its other problems', () => {
    const file = path.join(folder.dir(), 'gatehouse.yaml');
    fs.writeFileSync(file, `server: { port: 99999 }\n${STDIO}`);
    fs.chmodSync(file, 0o666);
    let problems: readonly ConfigProblem[] = [];
    try {
      loadConfig(file);
    } catch (err) {
      problems = (err as ConfigError).problems;
    }
    expect(messages(problems)).toEqual([
      ['', `configuration file ${file} can be changed by every user (mode 0666); run \`chmod go-w ${file}\``],
      ['/server/port', 'must be at most 65535'],
    ]);
    fs.chmodSync(file, 0o644);
    expect(() => loadConfig(file)).toThrow(ConfigError); // the port: the file itself is fine now
  });

  it('refuses a JWKS file other users can change (they would add their own signing key)', () => {
    policies();
    const jwks = path.join(folder.dir(), 'idp-jwks.json');
    fs.writeFileSync(
      jwks,
      JSON.stringify({
        keys: [
          {
            kty: 'EC',
            crv: 'P-256',
            x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU',
            y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0',
          },
        ],
      }),
    );
    fs.chmodSync(jwks, 0o666);
    const jwt = PUBLIC.replace('jwksUri: https://idp.example.com/jwks', 'jwksFile: ./idp-jwks.json');
    expect(messages(folder.problems(`${jwt}${STDIO}`))).toEqual([
      ['/auth/jwt/jwksFile', `file ${jwks} can be changed by every user (mode 0666); run \`chmod go-w ${jwks}\``],
    ]);
  });
});

describe('plain HTTP off loopback', () => {
  it('refuses auth.mode oauth on a non-loopback host whose clients would send tokens over plain HTTP', () => {
    policies();
    const plain = PUBLIC.replace('https://mcp.example.com/mcp', 'http://mcp.example.com/mcp');
    expect(messages(folder.problems(`${plain}${STDIO}`))).toEqual([
      [
        '/auth/resource',
        'clients would send bearer tokens over plain HTTP to http://mcp.example.com/mcp ' +
          '(server.host 0.0.0.0 is not loopback); ' +
          'set server.tls, or, behind a TLS-terminating proxy, set auth.resource to the https URL clients use',
      ],
    ]);
    // Behind a TLS-terminating proxy (https resource), with or without trusted proxies: fine.
    expect(folder.load(`${PUBLIC}${STDIO}`).server.host).toBe('0.0.0.0');
  });
});

describe('server.allowedHosts', () => {
  it('takes host names as clients send them in Host, and refuses anything else', () => {
    expect(
      folder.load(`server:\n  allowedHosts: [gatehouse.gatehouse.svc, "10.0.0.5"]\n${STDIO}`).server.allowedHosts,
    ).toEqual(['gatehouse.gatehouse.svc', '10.0.0.5']);
    const problems = folder.problems(
      'server:\n  allowedHosts: [Gatehouse.example.com, "mcp.example.com:443", "https://mcp.example.com", "a b"]\n' +
        STDIO,
    );
    expect(messages(problems)).toEqual([
      ['/server/allowedHosts/0', 'must be written as clients send it in Host: "gatehouse.example.com"'],
      [
        '/server/allowedHosts/1',
        'is not a host name; write the name alone, without scheme, port or path (e.g. mcp.example.com)',
      ],
      [
        '/server/allowedHosts/2',
        'is not a host name; write the name alone, without scheme, port or path (e.g. mcp.example.com)',
      ],
      [
        '/server/allowedHosts/3',
        'is not a host name; write the name alone, without scheme, port or path (e.g. mcp.example.com)',
      ],
    ]);
  });
});

describe('policy folder and files', () => {
  const refused = (dir: string): string[] => {
    try {
      loadPolicyDir(dir);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as ConfigError).problems.map((p) => `${p.file}: ${p.message}`);
    }
    throw new Error('expected the policy to be refused');
  };

  it('refuses a folder other users can change (a file added there is a policy)', () => {
    const dir = policies(0o777);
    expect(refused(dir)).toEqual([
      `${dir}: policy folder ${dir} can be changed by every user (mode 0777); run \`chmod go-w ${dir}\``,
    ]);
    fs.chmodSync(dir, 0o1777);
    expect(refused(dir)).toHaveLength(1);
    fs.chmodSync(dir, 0o755);
    expect(loadPolicyDir(dir).rules).toHaveLength(1);
  });

  it('refuses a policy file other users can change, and a link to a file in a folder they can change', () => {
    const dir = policies();
    const file = path.join(dir, 'allow.yaml');
    fs.chmodSync(file, 0o666);
    expect(refused(dir)).toEqual([
      `${file}: policy file ${file} can be changed by every user (mode 0666); run \`chmod go-w ${file}\``,
    ]);
    fs.chmodSync(file, 0o644);
    const open = path.join(folder.dir(), 'shared');
    fs.mkdirSync(open);
    fs.chmodSync(open, 0o777);
    fs.writeFileSync(path.join(open, 'extra.yaml'), PERMISSIVE_POLICY.replace('test.allow-all', 'test.extra'), {
      mode: 0o644,
    });
    fs.symlinkSync(path.join(open, 'extra.yaml'), path.join(dir, 'extra.yaml'));
    expect(refused(dir)).toEqual([
      `${path.join(dir, 'extra.yaml')}: policy file ${path.join(dir, 'extra.yaml')} ` +
        `links to ${path.join(open, 'extra.yaml')}, in the folder ${open} that every user can change (mode 0777); ` +
        `run \`chmod go-w ${open}\` or link to a file in a folder only its owner can change`,
    ]);
  });

  it('refuses a tools lock other users can change (whoever writes it approves tools)', () => {
    const lock = path.join(policies(), 'tools.lock');
    writeToolsLock(lock, emptyToolsLock());
    expect(readToolsLock(lock)).toEqual(emptyToolsLock());
    fs.chmodSync(lock, 0o646);
    expect(() => readToolsLock(lock)).toThrow(
      `tools lock ${lock} can be changed by every user (mode 0646); run \`chmod go-w ${lock}\``,
    );
  });

  it('follows a ConfigMap layout (name -> ..data/name -> ..<ts>/name) whose files only the owner can change', () => {
    const dir = path.join(folder.dir(), 'configmap');
    const ts = path.join(dir, '..2026_01_01_00_00_00.000000001');
    fs.mkdirSync(ts, { recursive: true });
    fs.writeFileSync(path.join(ts, 'allow.yaml'), PERMISSIVE_POLICY, { mode: 0o644 });
    fs.symlinkSync('..2026_01_01_00_00_00.000000001', path.join(dir, '..data'));
    fs.symlinkSync(path.join('..data', 'allow.yaml'), path.join(dir, 'allow.yaml'));
    expect(loadPolicyDir(dir).rules).toHaveLength(1);
  });
});
