/**
 * `gatehouse check` reports a weak deployment exactly as `gatehouse start` refuses it (the real CLI, a child
 * process): exit 1 and, per problem, file, path, what is wrong and the fix. The bundled example checks clean.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, finished, killAllCli } from '../helpers/cli.js';
import { PERMISSIVE_POLICY } from '../helpers/gateway.js';
import { REPO_ROOT } from '../helpers/spawn-server.js';

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-secure-cli-'));
afterAll(() => {
  killAllCli();
  rmSync(dir, { recursive: true, force: true });
});

/** A config folder of its own: `gatehouse.yaml`, a policy folder, and the named files with their modes. */
const FX = '{ name: fx, transport: stdio, command: node }';

function deployment(
  name: string,
  yaml: string,
  files: Record<string, { text: string; mode: number }> = {},
  policyMode = 0o755,
  upstream = FX,
): string {
  const base = join(dir, name);
  mkdirSync(join(base, 'policies'), { recursive: true });
  writeFileSync(join(base, 'policies', 'allow.yaml'), PERMISSIVE_POLICY, { mode: 0o644 });
  chmodSync(join(base, 'policies'), policyMode);
  for (const [file, { text, mode }] of Object.entries(files)) {
    writeFileSync(join(base, file), text, { mode });
    chmodSync(join(base, file), mode);
  }
  writeFileSync(join(base, 'gatehouse.yaml'), `${yaml}policy: { dir: ./policies }\nupstreams:\n  - ${upstream}\n`);
  return base;
}

async function check(
  config: string,
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return finished(cli(['check', '--config', config], { env }), 60_000);
}

const DEV = 'auth: { mode: dev }\n';
const PUBLIC =
  'server: { host: 0.0.0.0 }\nauth:\n  mode: oauth\n  resource: https://mcp.example.com/mcp\n' +
  '  jwt: { issuer: https://idp.example.com, jwksUri: https://idp.example.com/jwks }\n';

describe('gatehouse check refuses weak deployments', { timeout: 120_000 }, () => {
  it('a session key file every user can read', async () => {
    const base = deployment('readable', `${DEV}sessions:\n  keys: [{ fromFile: ./session.key }]\n`, {
      'session.key': { text: randomBytes(32).toString('base64url'), mode: 0o644 },
    });
    const r = await check(join(base, 'gatehouse.yaml'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `gatehouse.yaml:3: /sessions/keys/0/fromFile: secret file ${join(base, 'session.key')} ` +
        `can be read by every user (mode 0644); run \`chmod 600 ${join(base, 'session.key')}\``,
    );
  });

  it('a policy folder every user can change', async () => {
    const base = deployment('policy', DEV, {}, 0o777);
    const r = await check(join(base, 'gatehouse.yaml'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `policy folder ${join(base, 'policies')} can be changed by every user (mode 0777); ` +
        `run \`chmod go-w ${join(base, 'policies')}\``,
    );
  });

  it("the bundled example's demo key off loopback, and a placeholder audit HMAC key", async () => {
    const orders =
      '{ name: orders, transport: http, url: https://orders.example.com/mcp, ' +
      'headers: { X-API-Key: { fromFile: ./orders.key } } }';
    const base = deployment(
      'demo',
      `${PUBLIC}audit:\n  hashChain: { hmacKey: { fromEnv: GW_HMAC } }\n`,
      { 'orders.key': { text: 'demo-orders-key-NOT-A-SECRET-change-me\n', mode: 0o644 } },
      0o755,
      orders,
    );
    const r = await check(join(base, 'gatehouse.yaml'), { GW_HMAC: 'REPLACE-ME-REPLACE-ME-REPLACE-ME-REPLACE-ME' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      '/audit/hashChain/hmacKey/fromEnv: the secret from env:GW_HMAC is a placeholder (it contains "REPLACE-ME"), ' +
        'not a secret; put the real value there',
    );
    expect(r.stderr).toContain(
      `/upstreams/0/headers/X-API-Key/fromFile: the secret from file:${join(base, 'orders.key')} ` +
        "is the bundled example's demo value (published in this repository), " +
        'allowed only while server.host is a loopback address',
    );
    expect(r.stderr).not.toContain('REPLACE-ME-REPLACE-ME');
  });

  it('auth.mode oauth on every interface with a plain-http resource', async () => {
    const base = deployment('plain', PUBLIC.replace('https://mcp.example.com/mcp', 'http://mcp.example.com/mcp'));
    const r = await check(join(base, 'gatehouse.yaml'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      '/auth/resource: clients would send bearer tokens over plain HTTP to http://mcp.example.com/mcp ' +
        '(server.host 0.0.0.0 is not loopback)',
    );
  });

  // examples/orders/demo.key is checked out 0644 by git.
  it('passes the same deployments once fixed, and the bundled example as checked out', async () => {
    const base = deployment('fixed', `${PUBLIC}sessions:\n  keys: [{ fromFile: ./session.key }]\n`, {
      'session.key': { text: randomBytes(32).toString('base64url'), mode: 0o600 },
    });
    const fixed = await check(join(base, 'gatehouse.yaml'));
    expect({ code: fixed.code, stderr: fixed.stderr }).toEqual({ code: 0, stderr: '' });
    // examples/orders/demo.key is group/other-readable as git checks it out; its public value is what is allowed.
    const example = await check(join(REPO_ROOT, 'examples/gatehouse.yaml'));
    expect({ code: example.code, stderr: example.stderr }).toEqual({ code: 0, stderr: '' });
    expect(example.stdout).toContain('examples/gatehouse.yaml: OK');
  });
});
