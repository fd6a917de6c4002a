/**
 * `auth.mode: dev` end to end (docs/architecture.md §6): `gatehouse token` as a real process mints a token with the
 * local key, and a gateway in dev mode — in-process (startGateway) and as `gatehouse start` — accepts it from the
 * official SDK client and refuses requests without a valid one with 401.
 */
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { loadOrCreateDevKey } from '../../src/auth/dev-keys.js';
import { initializeBody, permissivePolicyFor, post, startGateway, stdioFixtureYaml } from '../helpers/gateway.js';
import { cli, finished, killAllCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-devmode-'));
const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
/** The loader's default `auth.dev.issuer`. */
const DEV_ISSUER = 'urn:gatehouse:dev';
const RESOURCE = 'http://127.0.0.1:8080/mcp';
const posix = process.platform !== 'win32';

afterAll(() => {
  killAllCli();
  rmSync(dir, { recursive: true, force: true });
});

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return finished(cli(args));
}

let configs = 0;
/** A config file in its own folder (so its default key file `.gatehouse/dev-signing-key.json` is its own). */
function writeConfig(auth: string): { file: string; folder: string } {
  const folder = join(dir, `config-${++configs}`);
  mkdirSync(folder);
  const file = join(folder, 'gatehouse.yaml');
  writeFileSync(
    file,
    `server:\n  host: 127.0.0.1\n  port: 0\n${auth}${permissivePolicyFor(auth, folder)}upstreams:\n  - ${stdioFixtureYaml('fx')}\n`,
  );
  return { file, folder };
}

async function connect(url: string, token: string): Promise<Client> {
  const client = new Client({ name: 'dev-mode-test', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }),
  );
  return client;
}

describe('gatehouse token', () => {
  it('prints only a JWT on stdout, notes the expiry on stderr, creates the 0600 key beside the config and reuses it', async () => {
    const { file, folder } = writeConfig(`auth:\n  mode: dev\n  resource: ${RESOURCE}\n`);
    const first = await run([
      'token',
      '--config',
      file,
      '--sub',
      'alice',
      '--scope',
      'a b',
      '--client-id',
      'my-cli',
      '--ttl',
      '10m',
    ]);
    expect(first.stderr).toMatch(/expires \d{4}-\d\d-\d\dT/);
    expect(first.code).toBe(0);
    expect(first.stdout.endsWith('\n')).toBe(true);
    const token = first.stdout.trim();
    expect(token).toMatch(JWT);
    expect(first.stderr).toContain('created the dev signing key');

    const keyFile = join(folder, '.gatehouse', 'dev-signing-key.json');
    if (posix) expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const key = await loadOrCreateDevKey(keyFile);
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(key.publicJwks()), {
      issuer: DEV_ISSUER,
      audience: RESOURCE,
      typ: 'at+jwt',
      algorithms: ['ES256'],
    });
    expect(protectedHeader.kid).toBe(key.kid);
    expect(payload).toMatchObject({ sub: 'alice', scope: 'a b', client_id: 'my-cli' });
    expect(payload.exp! - payload.iat!).toBe(600);

    const second = await run(['token', '--config', file, '--sub', 'bob', '--scope', 'a']);
    expect(second.code).toBe(0);
    expect(second.stderr).not.toContain('created');
    expect(decodeProtectedHeader(second.stdout.trim()).kid).toBe(key.kid);
  });

  it('refuses a config whose auth.mode is not dev, with exit 1 and nothing on stdout', async () => {
    const { file } = writeConfig('auth:\n  mode: none\n');
    const r = await run(['token', '--config', file, '--sub', 'alice', '--scope', 'a']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/auth\.mode "none"; tokens can be minted only with auth\.mode "dev"/);
  });

  it('refuses a missing --sub (exit 2) and a ttl over 24 h (exit 1)', async () => {
    const { file } = writeConfig(`auth:\n  mode: dev\n  resource: ${RESOURCE}\n`);
    const noSub = await run(['token', '--config', file, '--scope', 'a']);
    expect(noSub.code).toBe(2);
    expect(noSub.stderr).toContain('--sub NAME is required');
    const long = await run(['token', '--config', file, '--sub', 'alice', '--ttl', '2d']);
    expect(long.code).toBe(1);
    expect(long.stderr).toMatch(/maximum of 86400 s/);
    expect(long.stdout).toBe('');
  });
});

describe('a gateway in dev mode', () => {
  it('accepts a token from `gatehouse token` (same key file) via the SDK client, and refuses no token or a wrong one with 401', async () => {
    const { file, folder } = writeConfig(`auth:\n  mode: dev\n  resource: ${RESOURCE}\n`);
    const minted = await run(['token', '--config', file, '--sub', 'alice', '--scope', 'a b']);
    expect(minted.code).toBe(0);
    const token = minted.stdout.trim();
    const keyFile = join(folder, '.gatehouse', 'dev-signing-key.json');

    await using gw = await startGateway([stdioFixtureYaml('fx')], {
      top: `auth:\n  mode: dev\n  resource: ${RESOURCE}\n  dev:\n    keyFile: ${JSON.stringify(keyFile)}\n`,
    });
    const client = await connect(gw.url, token);
    try {
      expect((await client.listTools()).tools.map((t) => t.name)).toContain('fx__echo');
      const r = await client.callTool({ name: 'fx__echo', arguments: { text: 'hi' } });
      expect(r.content).toEqual([{ type: 'text', text: 'hi' }]);
    } finally {
      await client.close();
    }

    const none = await post(gw.url, initializeBody());
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer\b/);

    // gw.token() mints with the gateway's own key: accepted; one from another dev key or for another audience: 401.
    const own = await gw.token({ sub: 'carol', scopes: ['a'] });
    expect((await post(gw.url, initializeBody(), { authorization: `Bearer ${own}` })).status).toBe(200);
    const stranger = await loadOrCreateDevKey(join(dir, 'stranger.json'));
    const foreign = await stranger.mint({ sub: 'mallory', scopes: ['a'], audience: RESOURCE, issuer: DEV_ISSUER });
    expect((await post(gw.url, initializeBody(), { authorization: `Bearer ${foreign}` })).status).toBe(401);
    const elsewhere = await gw.token({ sub: 'carol', scopes: ['a'], audience: 'http://127.0.0.1:9999/mcp' });
    expect((await post(gw.url, initializeBody(), { authorization: `Bearer ${elsewhere}` })).status).toBe(401);
    const expired = await gw.token({ sub: 'carol', scopes: ['a'], ttlSeconds: 60, now: Date.now() - 3_600_000 });
    expect((await post(gw.url, initializeBody(), { authorization: `Bearer ${expired}` })).status).toBe(401);

    // Every refusal is counted by reason and recorded, and no record holds a token.
    expect(gw.app.authFailures.snapshot()).toMatchObject({ missing_token: 1, expired: 1 });
    await new Promise((r) => setTimeout(r, 50));
    const records = gw.logs.filter((l) => (l.audit as { type?: string } | undefined)?.type === 'auth.failure');
    expect(records.map((l) => (l.audit as { reason: string }).reason)).toEqual(
      expect.arrayContaining(['missing_token', 'expired', 'wrong_audience']),
    );
    const everything = JSON.stringify(gw.logs);
    for (const t of [token, own, foreign, elsewhere, expired]) expect(everything).not.toContain(t);
  });

  it('`gatehouse start` in dev mode creates the key and accepts tokens minted by `gatehouse token` on the same config', async () => {
    const { file, folder } = writeConfig(`auth:\n  mode: dev\n  resource: ${RESOURCE}\n`);
    const gateway = cli(['start', '--config', file]);
    const address = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`gateway did not start:\n${gateway.stdout.join('')}${gateway.stderr.join('')}`)),
        20_000,
      );
      gateway.proc.stdout!.on('data', () => {
        const m = /"address":"(http:\/\/[^"]+)"[^\n]*gatehouse listening/.exec(gateway.stdout.join(''));
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      void gateway.exited.then((code) => reject(new Error(`gateway exited ${code}:\n${gateway.stderr.join('')}`)));
    });
    try {
      expect(gateway.stdout.join('')).toContain('auth.mode dev: accepting tokens');
      if (posix) expect(statSync(join(folder, '.gatehouse', 'dev-signing-key.json')).mode & 0o777).toBe(0o600);
      const minted = await run(['token', '--config', file, '--sub', 'alice', '--scope', 'a']);
      expect(minted.code).toBe(0);
      expect(minted.stderr).not.toContain('created'); // the gateway's key, not a new one
      const client = await connect(address, minted.stdout.trim());
      try {
        const r = await client.callTool({ name: 'fx__echo', arguments: { text: 'via start' } });
        expect(r.content).toEqual([{ type: 'text', text: 'via start' }]);
      } finally {
        await client.close();
      }
      expect((await post(address, initializeBody())).status).toBe(401);
    } finally {
      gateway.proc.kill('SIGTERM');
      await gateway.exited;
    }
  });
});
