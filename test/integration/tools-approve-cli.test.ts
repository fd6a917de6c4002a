/**
 * `gatehouse tools approve` (docs/architecture.md §8): lists the upstreams, shows what differs from `tools.lock`,
 * writes it with `--yes`; the gateway then starts in `enforce` with every approved tool callable.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readToolsLock } from '../../src/policy/pinning/index.js';
import { cli, finished, killAllCli } from '../helpers/cli.js';
import { PERMISSIVE_POLICY, startGateway, stdioFixtureYaml } from '../helpers/gateway.js';

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-approve-cli-'));
const policyDir = join(dir, 'policy');
const lockFile = join(policyDir, 'tools.lock');
const configFile = join(dir, 'gatehouse.yaml');
const top = `auth:\n  mode: dev\npolicy:\n  dir: ${JSON.stringify(policyDir)}\npinning:\n  mode: enforce\n`;

beforeAll(() => {
  mkdirSync(policyDir);
  writeFileSync(join(policyDir, 'allow-all.yaml'), PERMISSIVE_POLICY);
  writeFileSync(configFile, `server:\n  host: 127.0.0.1\n  port: 0\n${top}upstreams:\n  - ${stdioFixtureYaml('fx')}\n`);
});

afterAll(() => {
  killAllCli();
  rmSync(dir, { recursive: true, force: true });
});

describe('gatehouse tools approve', () => {
  it('without a lock, enforce refuses to start (check names the lock)', async () => {
    const r = await finished(cli(['check', '--config', configFile]));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `${lockFile}: /: cannot read the tools lock (no such file (create it with \`gatehouse tools approve\`))`,
    );
  }, 30_000);

  it('shows the diff and writes nothing without --yes', async () => {
    const r = await finished(cli(['tools', 'approve', '--config', configFile]), 30_000);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('mutable');
    expect(r.stdout).toContain('re-run with --yes');
    expect(existsSync(lockFile)).toBe(false);
  }, 40_000);

  it('an unknown --upstream is a problem: exit 1, nothing written', async () => {
    const r = await finished(cli(['tools', 'approve', '--config', configFile, '--upstream', 'nope', '--yes']), 30_000);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('upstream "nope" was not listed');
    expect(existsSync(lockFile)).toBe(false);
  }, 40_000);

  it('--yes writes a lock the gateway then accepts in enforce', async () => {
    const r = await finished(cli(['tools', 'approve', '--config', configFile, '--yes', '--by', 'alice']), 30_000);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`wrote ${lockFile}`);
    const pins = readToolsLock(lockFile).tools.get('fx')!;
    expect(pins.get('mutable')).toMatchObject({ approvedBy: 'alice' });
    expect(pins.has('echo')).toBe(true);

    // Approving again finds nothing to do.
    const again = await finished(cli(['tools', 'approve', '--config', configFile]), 30_000);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('nothing to approve');

    await using gw = await startGateway([stdioFixtureYaml('fx')], { top });
    const token = await gw.token({ sub: 'alice', scopes: [] });
    const client = await gw.client({ transport: { requestInit: { headers: { Authorization: `Bearer ${token}` } } } });
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['fx__echo', 'fx__mutable', 'fx__change_tools']));
    expect(gw.app.router.pins.quarantined.size).toBe(0);
    expect(await client.callTool({ name: 'fx__mutable', arguments: {} })).toMatchObject({
      content: [{ type: 'text', text: 'mutable ok' }],
    });
  }, 60_000);
});
