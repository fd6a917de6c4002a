/**
 * The CLI as an operator runs it — `node --import tsx src/main.ts …` as a real process: `check`, `tools list`,
 * `start` refusing a name collision, and a graceful SIGTERM with a call in flight.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, describe, expect, it } from 'vitest';
import { exposedName } from '../../src/router/naming.js';
import { stdioFixtureYaml, V2_MODERN_SERVER as V2_MODERN } from '../helpers/gateway.js';
import { cli, finished, killAllCli } from '../helpers/cli.js';
import { DUP_SERVER, isAlive, readRecord, waitFor } from '../helpers/upstream-tools.js';

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-cli-'));

afterAll(() => {
  killAllCli();
  rmSync(dir, { recursive: true, force: true });
});

function writeConfig(name: string, upstreams: string[], top = ''): string {
  const file = join(dir, name);
  writeFileSync(
    file,
    `server:\n  host: 127.0.0.1\n  port: 0\n${top}upstreams:\n${upstreams.map((u) => `  - ${u}`).join('\n')}\n`,
  );
  return file;
}

describe('gatehouse check', () => {
  it('exits 0 and says OK for a valid file', async () => {
    const file = writeConfig('ok.yaml', [
      stdioFixtureYaml('fx'),
      JSON.stringify({ name: 'orders', transport: 'http', url: 'http://127.0.0.1:9/mcp' }),
    ]);
    const r = await finished(cli(['check', '--config', file]));
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${file}: OK (2 upstreams: fx [stdio], orders [http])\n`);
    expect(r.code).toBe(0);
  });

  it('exits 1 and prints file:line: path: message for each problem of a bad file', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(
      file,
      [
        'server:',
        '  host: 127.0.0.1',
        'upstreams:',
        '  - name: Bad_Name',
        '    transport: stdio',
        '    command: node',
        '  - name: web',
        '    transport: http',
        '    url: ftp://example.com/mcp',
        '',
      ].join('\n'),
    );
    const r = await finished(cli(['check', '--config', file]));
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toBe('configuration invalid:');
    const problems = lines.slice(1);
    expect(problems.length).toBeGreaterThanOrEqual(2);
    for (const p of problems)
      expect(p).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+: /\\S+: .+`));
    expect(problems.some((p) => p.startsWith(`${file}:4: /upstreams/0/name: `))).toBe(true);
    expect(problems.some((p) => p.startsWith(`${file}:9: /upstreams/1/url: `))).toBe(true);
  });

  it('exits 1 for a missing file', async () => {
    const r = await finished(cli(['check', '--config', join(dir, 'nope.yaml')]));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('nope.yaml: /: cannot read the configuration file (no such file)');
  });
});

describe('gatehouse tools list', () => {
  it('prints each exposed name with its upstream and original tool', async () => {
    const file = writeConfig('tools.yaml', [stdioFixtureYaml('fx')]);
    const r = await finished(cli(['tools', 'list', '--config', file]));
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^EXPOSED NAME\s+UPSTREAM \/ TOOL\s+PROTOCOL$/);
    expect(lines).toContainEqual(expect.stringMatching(/^fx__echo\s+fx \/ echo\s+2025-11-25$/));
    expect(lines).toContainEqual(expect.stringMatching(/^fx__env_report\s+fx \/ env_report\s+2025-11-25$/));
    expect(lines.length).toBe(1 + 18);
  });

  it('--json gives the mapping and the unavailable upstreams', async () => {
    const file = writeConfig('tools-json.yaml', [
      stdioFixtureYaml('fx'),
      JSON.stringify({
        name: 'dead',
        transport: 'stdio',
        command: process.execPath,
        args: ['-e', 'process.exit(3)'],
        required: false,
      }),
    ]);
    const r = await finished(cli(['tools', 'list', '--json', '--config', file]));
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as {
      tools: { exposed: string; upstream: string; tool: string }[];
      unavailable: string[];
    };
    expect(out.tools).toContainEqual({ exposed: 'fx__add', upstream: 'fx', tool: 'add', protocol: '2025-11-25' });
    expect(out.unavailable).toEqual(['dead']);
  });

  it('lists a 2026-07-28-only upstream beside a 2025 one, each with the generation it speaks', async () => {
    const file = writeConfig('tools-2026.yaml', [
      stdioFixtureYaml('fx'),
      stdioFixtureYaml('modern', { args: ['--import', 'tsx', V2_MODERN, '--stdio'] }),
    ]);
    const r = await finished(cli(['tools', 'list', '--config', file]));
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toContainEqual(expect.stringMatching(/^modern__echo\s+modern \/ echo\s+2026-07-28$/));
    expect(lines).toContainEqual(expect.stringMatching(/^fx__echo\s+fx \/ echo\s+2025-11-25$/));
  });
});

describe('gatehouse tools list: policy warnings', () => {
  const POLICY = `version: 1
rules:
  - { id: fx.typo, effect: allow, match: { tools: [fx__ecoh] } }
  - { id: fx.none, effect: allow, match: { tools: ["fx__nothing_*"] } }
  - { id: dead.tools, effect: allow, match: { tools: ["dead__*"] } }
  - id: fx.echo
    effect: allow
    match: { tools: [fx__echo] }
    arguments:
      constraints:
        - { field: txt, kind: noLeadingDash }
        - { field: text, kind: noLeadingDash }
  - id: fx.some
    effect: allow
    match: { tools: [fx__echo, fx__add] }
    arguments:
      constraints:
        - { field: text, kind: noLeadingDash, optional: true }
        - { field: nope, kind: noLeadingDash, optional: true }
`;

  function policyConfig(name: string): string {
    const policyDir = join(dir, `${name}-policy`);
    mkdirSync(policyDir);
    writeFileSync(join(policyDir, 'fx.yaml'), POLICY);
    return writeConfig(
      `${name}.yaml`,
      [
        stdioFixtureYaml('fx'),
        JSON.stringify({
          name: 'dead',
          transport: 'stdio',
          command: process.execPath,
          args: ['-e', 'process.exit(3)'],
          required: false,
        }),
      ],
      `policy:\n  dir: ${JSON.stringify(policyDir)}\n`,
    );
  }

  it('lists rules that match no exposed tool and constraint fields the tools lack, under warnings:, and exits 0', async () => {
    const r = await finished(cli(['tools', 'list', '--config', policyConfig('warn')]));
    expect(r.code).toBe(0);
    const after = r.stdout
      .slice(r.stdout.indexOf('\nwarnings:\n') + 1)
      .trim()
      .split('\n');
    expect(after).toEqual([
      'warnings:',
      '  rule fx.typo (fx.yaml:3): tool pattern "fx__ecoh" matches no exposed tool',
      '  rule fx.none (fx.yaml:4): tool pattern "fx__nothing_*" matches no exposed tool',
      '  rule fx.echo (fx.yaml:6): constraint field "txt" is not a property of the inputSchema of fx__echo',
      '  rule fx.some (fx.yaml:13): constraint field "nope" is not a property of the inputSchema of any of fx__echo, fx__add',
    ]);
  });

  it('--json gives them as warnings', async () => {
    const r = await finished(cli(['tools', 'list', '--json', '--config', policyConfig('warn-json')]));
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { warnings: string[]; unavailable: string[] };
    expect(out.unavailable).toEqual(['dead']);
    expect(out.warnings).toHaveLength(4);
    expect(out.warnings[0]).toContain('fx__ecoh');
  });
});

describe('gatehouse start', () => {
  it('refuses a name collision: exits 1 naming both sources, leaving no child process', async () => {
    const pidFile = join(dir, 'dup.pid');
    const server = join(dir, 'dup-server.mjs');
    writeFileSync(server, DUP_SERVER);
    const literal = exposedName('dup', 'a b', { separator: '__', maxNameLength: 64, prefixed: true }).slice(
      'dup__'.length,
    );
    const file = writeConfig('collide.yaml', [
      JSON.stringify({
        name: 'dup',
        transport: 'stdio',
        command: process.execPath,
        args: [server, pidFile, 'a b', literal],
      }),
    ]);
    const r = await finished(cli(['start', '--config', file]), 15_000);
    expect(r.stderr).toContain('configuration invalid:');
    expect(r.stderr).toContain(`${file}: /upstreams: tool name "dup__${literal}"`);
    expect(r.code).toBe(1);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    await waitFor('dup server gone', () => !isAlive(pid), 5000);
  });

  it('on SIGTERM lets the call in flight finish, exits 0 and leaves no upstream process behind', async () => {
    const record = join(dir, 'sigterm.jsonl');
    const file = writeConfig(
      'start.yaml',
      [stdioFixtureYaml('fx', { env: { FIXTURE_RECORD_FILE: record } })],
      'logging:\n  level: info\n',
    );
    const run = cli(['start', '--config', file]);
    try {
      const listening = await waitFor(
        'gatehouse listening',
        () =>
          run.stdout
            .join('')
            .split('\n')
            .filter((l) => l.startsWith('{'))
            .map((l) => JSON.parse(l) as { msg: string; address?: string })
            .find((l) => l.msg === 'gatehouse listening'),
        20_000,
      );
      expect(listening.address).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
      const client = new Client({ name: 'sigterm-test', version: '1.0.0' });
      await client.connect(new StreamableHTTPClientTransport(new URL(listening.address!)));
      const childPid = readRecord(record).find((l) => l.method === 'initialize')!.pid;
      expect(isAlive(childPid)).toBe(true);

      const call = client.callTool({ name: 'fx__slow', arguments: { ms: 1500 } });
      await new Promise((r) => setTimeout(r, 300));
      run.proc.kill('SIGTERM');
      const result = (await call) as CallToolResult;
      expect(result.isError).toBeFalsy();
      expect(result.content[0]).toEqual({ type: 'text', text: 'done after 1500ms' });

      const r = await finished(run, 15_000);
      expect(r.code).toBe(0);
      const messages = r.stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => (JSON.parse(l) as { msg: string }).msg);
      expect(messages).toContain('shutting down');
      expect(messages).toContain('stopped');
      expect(isAlive(childPid)).toBe(false);
      await client.close().catch(() => undefined);
    } finally {
      run.proc.kill('SIGKILL');
    }
  });
});
