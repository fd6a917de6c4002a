/**
 * `gatehouse audit verify` (the real CLI) on files written by real gateway processes (`gatehouse start`):
 * two runs appending to one file verify (the second run's chain continues the first's); after a rotation
 * (rename, SIGHUP) the two files verify in order; an edited, a deleted and a reordered record are each
 * reported at their line with a non-zero exit.
 */
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HashChain } from '../../src/audit/chain.js';
import { cli, finished, killAllCli, type CliRun } from '../helpers/cli.js';
import { stdioFixtureYaml } from '../helpers/gateway.js';
import { waitFor } from '../helpers/upstream-tools.js';

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-audit-verify-'));
const auditFile = join(dir, 'audit.jsonl');
const rotated = `${auditFile}.1`;
const config = join(dir, 'gatehouse.yaml');

async function startGatehouse(): Promise<{ run: CliRun; url: string }> {
  const run = cli(['start', '--config', config]);
  const url = await waitFor(
    'gatehouse listening',
    () => {
      if (run.proc.exitCode !== null) throw new Error(`gateway exited:\n${run.stderr.join('')}`);
      return /"address":"(http:\/\/[^"]+)"[^\n]*gatehouse listening/.exec(run.stdout.join(''))?.[1];
    },
    30_000,
  );
  return { run, url };
}

async function calls(url: string, n: number): Promise<void> {
  const client = new Client({ name: 'verify-test', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  for (let i = 0; i < n; i++) await client.callTool({ name: 'fx__echo', arguments: { text: `call ${i}` } });
  await client.close();
}

async function stop(run: CliRun): Promise<void> {
  run.proc.kill('SIGTERM');
  expect((await finished(run)).code).toBe(0);
}

async function verify(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return finished(cli(['audit', 'verify', ...args]));
}

function lineCount(file: string): number {
  return readFileSync(file, 'utf8').trim().split('\n').length;
}

beforeAll(async () => {
  writeFileSync(
    config,
    `server:\n  host: 127.0.0.1\n  port: 0\naudit:\n  sink: file\n  file: ${JSON.stringify(auditFile)}\nupstreams:\n  - ${stdioFixtureYaml('fx')}\n`,
  );
  // Run 1: a few calls, then a clean stop.
  const one = await startGatehouse();
  await calls(one.url, 3);
  await stop(one.run);
  // Run 2 appends to the same file (a restart), then the file is rotated under it.
  const two = await startGatehouse();
  await calls(two.url, 2);
  const before = lineCount(auditFile);
  renameSync(auditFile, rotated);
  two.run.proc.kill('SIGHUP');
  await calls(two.url, 2);
  await stop(two.run);
  expect(lineCount(rotated)).toBeGreaterThanOrEqual(before);
}, 90_000);

afterAll(() => {
  killAllCli();
  rmSync(dir, { recursive: true, force: true });
});

describe('gatehouse audit verify', () => {
  it('passes across a restart and a rotation (files in order), and prints a summary', async () => {
    const r = await verify(rotated, auditFile);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^OK: \d+ records in 2 files, 2 chains/m);
    // The restart: the rotated file holds both runs' chains, the second starting with chain.start.
    const starts = readFileSync(rotated, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { audit: { type: string; detail?: string } })
      .filter((r) => r.audit.type === 'chain.start');
    expect(starts).toHaveLength(2);
    expect(starts[1]!.audit.detail).toContain('continues chain');
    // The new file alone starts after a record it does not hold (noted, not failed); in the wrong order it fails.
    expect((await verify(auditFile)).code).toBe(0);
    expect((await verify(auditFile, rotated)).code).toBe(1);
  });

  it('reports an edited, a deleted and a reordered record at its line, exit 1', async () => {
    const lines = readFileSync(rotated, 'utf8').trim().split('\n');
    const edited = join(dir, 'edited.jsonl');
    writeFileSync(
      edited,
      `${lines.map((l, i) => (i === 4 ? l.replace('"outcome":"ok"', '"outcome":"error"').replace('"call', '"CALL') : l)).join('\n')}\n`,
    );
    expect(lines[4]).not.toBe(readFileSync(edited, 'utf8').split('\n')[4]);
    const deleted = join(dir, 'deleted.jsonl');
    writeFileSync(deleted, `${lines.filter((_, i) => i !== 4).join('\n')}\n`);
    const reordered = join(dir, 'reordered.jsonl');
    writeFileSync(reordered, `${[...lines.slice(0, 4), lines[5], lines[4], ...lines.slice(6)].join('\n')}\n`);

    const e = await verify(edited);
    expect(e.code).toBe(1);
    expect(e.stdout).toContain(`${edited}:5: record altered`);
    const d = await verify(deleted);
    expect(d.code).toBe(1);
    expect(d.stdout).toContain(`${deleted}:5: record missing`);
    const o = await verify(reordered);
    expect(o.code).toBe(1);
    expect(o.stdout).toContain(`${reordered}:5: record out of order`);
  });

  it('checks HMAC chains with the key from --key-env or --key-file, and names the missing key', async () => {
    const key = 'hmac-key-for-the-audit-chain-0123456789';
    const chain = new HashChain({ id: 'h', key });
    const hmacFile = join(dir, 'hmac.jsonl');
    writeFileSync(
      hmacFile,
      `${[0, 1, 2].map((i) => JSON.stringify(chain.seal({ level: 30, audit: { type: i === 0 ? 'chain.start' : 'config' } }))).join('\n')}\n`,
    );
    const keyFile = join(dir, 'hmac.key');
    writeFileSync(keyFile, `${key}\n`);
    const without = await verify(hmacFile);
    expect(without.code).toBe(1);
    expect(without.stdout).toContain('HMAC-SHA-256: pass the key');
    expect(
      (
        await finished(
          cli(['audit', 'verify', '--key-env', 'AUDIT_TEST_KEY', hmacFile], { env: { AUDIT_TEST_KEY: key } }),
        )
      ).code,
    ).toBe(0);
    expect((await verify('--key-file', keyFile, hmacFile)).code).toBe(0);
    expect(
      (
        await finished(
          cli(['audit', 'verify', '--key-env', 'AUDIT_TEST_KEY', hmacFile], {
            env: { AUDIT_TEST_KEY: 'another-key-another-key-another-key' },
          }),
        )
      ).code,
    ).toBe(1);
  });

  it('is a usage error without files', async () => {
    const r = await verify();
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('name at least one audit file');
  });

  it('says which file it cannot read, with exit 2 (1 is kept for a broken chain)', async () => {
    const missing = join(dir, 'no-such.jsonl');
    const r = await verify(missing);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`cannot read ${missing}: ENOENT`);
    const folder = await verify(dir);
    expect(folder.code).toBe(2);
    expect(folder.stderr).toContain('EISDIR');
  });
});
