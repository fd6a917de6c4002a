/**
 * Policy `describe` in a running gateway (mcp/describe.ts): the listed description of a tool states the limits of
 * the rule that lets the caller through, so the agent can plan around them. Alice's rule has limits: she reads them.
 * Bob's rule describes but has none: he reads the plain description. Carol's rule does not describe. Pinning is on
 * (enforce) with every tool approved: the decorated copy exists only in what is listed, so nothing is quarantined
 * and the lock's hash is the hash of the upstream's own definition.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  emptyToolsLock,
  planApproval,
  readToolsLock,
  toolHash,
  writeToolsLock,
} from '../../src/policy/pinning/index.js';
import { startGateway, stdioFixtureYaml, type TestGateway } from '../helpers/gateway.js';

const POLICY = `version: 1
rules:
  - id: echo.alice
    effect: allow
    match: { tools: [fx__echo] }
    when: { subjects: [alice] }
    limits: { rate: { perMinute: 30 }, timeoutMs: 10000 }
    describe: { note: "Each call costs one credit." }
  - id: echo.bob
    effect: allow
    match: { tools: [fx__echo] }
    when: { subjects: [bob] }
    describe: true
  - id: everyone
    effect: allow
    match: { tools: ["*"] }
    when: { authenticated: true }
`;

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-describe-gw-'));
const policyDir = join(dir, 'policy');
const lockFile = join(policyDir, 'tools.lock');
const top = (pinning: boolean): string =>
  `auth:\n  mode: dev\npolicy:\n  dir: ${JSON.stringify(policyDir)}\n${pinning ? 'pinning:\n  mode: enforce\n' : ''}`;

let gw: TestGateway;

beforeAll(async () => {
  mkdirSync(policyDir);
  writeFileSync(join(policyDir, 'rules.yaml'), POLICY);
  // Approve what the fixture lists, the way `gatehouse tools approve --yes` does.
  const first = await startGateway([stdioFixtureYaml('fx')], { top: top(false) });
  try {
    const tools = await first.app.upstreams.get('fx')!.listAll('tools');
    const plan = planApproval({
      listings: [{ upstream: 'fx', tools }],
      lock: emptyToolsLock(),
      now: 0,
      approvedBy: 't',
    });
    writeToolsLock(lockFile, plan.lock);
  } finally {
    await first.close();
  }
  gw = await startGateway([stdioFixtureYaml('fx')], { top: top(true) });
}, 30_000);

afterAll(async () => {
  await gw?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function clientOf(sub: string): Promise<Client> {
  const token = await gw.token({ sub, scopes: [] });
  return gw.client({ transport: { requestInit: { headers: { Authorization: `Bearer ${token}` } } } });
}

async function echoDescription(client: Client): Promise<string | undefined> {
  return (await client.listTools()).tools.find((t) => t.name === 'fx__echo')?.description;
}

describe('policy describe', () => {
  it("states the limits of the caller's rule, and only to the principals that rule applies to", async () => {
    const alice = await clientOf('alice');
    const bob = await clientOf('bob');
    const carol = await clientOf('carol');
    const expected =
      'Returns its text. — Limited to 30 calls per minute per user; times out after 10 s. Each call costs one credit.';
    expect(await echoDescription(alice)).toBe(expected);
    expect(await echoDescription(bob)).toBe('Returns its text.');
    expect(await echoDescription(carol)).toBe('Returns its text.');
    // Each listing key keeps its own list: asking again (a cache hit) gives each the same words.
    expect(await echoDescription(bob)).toBe('Returns its text.');
    expect(await echoDescription(alice)).toBe(expected);
    // Other tools are not described.
    const other = (await alice.listTools()).tools.find((t) => t.name !== 'fx__echo' && t.description !== undefined);
    expect(other?.description).not.toContain('Limited to');
  });

  it('pinning still matches: nothing quarantined, the lock hash is the upstream definition, the tool is callable', async () => {
    const alice = await clientOf('alice');
    await echoDescription(alice);
    const statuses = gw.app.router.pins.statuses.filter((s) => s.upstream === 'fx');
    expect(statuses.length).toBeGreaterThan(0);
    expect(statuses.every((s) => s.status === 'approved')).toBe(true);
    const listed = await gw.app.upstreams.get('fx')!.listAll('tools');
    const pinned = readToolsLock(lockFile).tools.get('fx')!.get('echo')!.hash;
    expect(
      toolHash(
        listed.find((t) => t.name === 'echo')!,
        'echo',
      ),
    ).toBe(pinned);
    expect(statuses.find((s) => s.tool === 'echo')?.hash).toBe(pinned);
    // The catalogue's definition (what calls resolve) is the upstream's words.
    expect(gw.app.router.catalogue.tools.get('fx__echo')?.definition.description).toBe('Returns its text.');
    const r = await alice.callTool({ name: 'fx__echo', arguments: { text: 'hi' } });
    expect(r.isError).toBeFalsy();
    const logs = gw.logs.filter((l) => l.audit !== undefined).map((l) => l.audit as Record<string, unknown>);
    expect(logs.filter((a) => String(a.type).startsWith('tool.pin.'))).toEqual([]);
    // The SDK-built fixture's outputSchema (as the SDK writes it) compiles, and its result matches it (default warn).
    expect(logs.find((a) => a.tool === 'fx__echo' && a.outcome === 'ok')).toMatchObject({ outputValid: true });
    expect(gw.logs.filter((l) => String(l.msg).includes('outputSchema'))).toEqual([]);
  });
});
