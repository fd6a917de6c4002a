/**
 * Filtered lists are cached per listing key (src/mcp/list-cache.ts, src/policy/visibility.ts) in a running
 * gateway with a policy folder and dev tokens: principals who may see different tools get their own lists, and
 * a policy reload, an upstream's list_changed, a lock change and a quarantine each show in the very next list.
 * `fx` is not pinned; `px` is pinned under `enforce`.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyToolsLock, planApproval, readToolsLock, writeToolsLock } from '../../src/policy/pinning/index.js';
import { startGateway, stdioFixtureYaml, type TestGateway } from '../helpers/gateway.js';

const policyText = (mathTools: string[]): string => `version: 1
rules:
  - id: everyone.echo
    effect: allow
    match: { tools: [fx__echo, px__echo] }
    when: { authenticated: true }
  - id: math
    effect: allow
    match: { tools: ${JSON.stringify(mathTools)} }
    when: { scopes: { allOf: [math] } }
  - id: ops
    effect: allow
    match: { tools: ["fx__*", "px__*"], prompts: ["fx__*"] }
    when: { groups: { anyOf: [ops] } }
`;

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-list-cache-'));
const policyDir = join(dir, 'policy');
const lockFile = join(policyDir, 'tools.lock');
let gw: TestGateway;
let alice: Client; // scope math
let bob: Client; // scope math too: the same rules hold, so the same list
let carol: Client; // no scope, no group
let ops: Client; // group ops

beforeAll(async () => {
  mkdirSync(policyDir);
  writeFileSync(join(policyDir, 'rules.yaml'), policyText(['fx__add']));
  writeToolsLock(lockFile, emptyToolsLock()); // nothing of px approved yet: all of it quarantined
  gw = await startGateway([stdioFixtureYaml('fx', { pinning: 'off' }), stdioFixtureYaml('px')], {
    top: `auth:\n  mode: dev\npolicy:\n  dir: ${JSON.stringify(policyDir)}\npinning:\n  mode: enforce\n`,
  });
  const client = async (sub: string, scopes: string[], groups: string[] = []): Promise<Client> => {
    const token = await gw.token({ sub, scopes, extra: { groups } });
    return gw.client({ transport: { requestInit: { headers: { Authorization: `Bearer ${token}` } } } });
  };
  [alice, bob, carol, ops] = await Promise.all([
    client('alice', ['math']),
    client('bob', ['math']),
    client('carol', []),
    client('olga', [], ['ops']),
  ]);
}, 30_000);

afterAll(async () => {
  await gw?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function names(c: Client): Promise<string[]> {
  return (await c.listTools()).tools.map((t) => t.name).sort();
}

async function eventually<T>(probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 5000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (ok(v) || Date.now() > until) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

function audit(): Record<string, unknown>[] {
  return gw.logs.filter((l) => l.audit !== undefined).map((l) => l.audit as Record<string, unknown>);
}

describe('tools/list cache', () => {
  it('gives principals with different scopes or groups their own lists, every time', async () => {
    for (let round = 0; round < 3; round++) {
      // Interleaved, so a list kept for one principal would be the next one's answer if keys were shared.
      expect(await names(alice)).toEqual(['fx__add', 'fx__echo']);
      expect(await names(ops)).toContain('fx__slow');
      expect(await names(carol)).toEqual(['fx__echo']);
      expect(await names(bob)).toEqual(['fx__add', 'fx__echo']);
    }
    const opsTools = await names(ops);
    expect(opsTools).toEqual(expect.arrayContaining(['fx__add', 'fx__echo', 'fx__mutable', 'fx__change_tools']));
    expect(opsTools.filter((n) => n.startsWith('px__'))).toEqual([]); // px: nothing approved, all quarantined
    // prompts/list goes through the same cache and the same policy.
    expect((await ops.listPrompts()).prompts.map((p) => p.name)).toEqual(['fx__greet']);
    expect((await alice.listPrompts()).prompts).toEqual([]);
    expect((await ops.listPrompts()).prompts.map((p) => p.name)).toEqual(['fx__greet']);
  });

  it('a policy reload that removes a tool: the very next list lacks it', async () => {
    expect(await names(alice)).toContain('fx__add');
    writeFileSync(join(policyDir, 'rules.yaml'), policyText(['fx__slow']));
    expect(gw.app.reloadPolicy('test')).toMatchObject({ ok: true });
    expect(await names(alice)).toEqual(['fx__echo', 'fx__slow']);
    expect(await names(bob)).toEqual(['fx__echo', 'fx__slow']);
    expect(await names(carol)).toEqual(['fx__echo']);
  });

  it("an upstream's list_changed adding a tool: the next list has it", async () => {
    expect(await names(ops)).not.toContain('fx__added_1');
    await ops.callTool({ name: 'fx__change_tools', arguments: {} });
    const listed = await eventually(
      () => names(ops),
      (n) => n.includes('fx__added_1'),
    );
    expect(listed).toContain('fx__added_1');
    expect(listed).toContain('fx__mutable'); // fx is not pinned: the changed description is shown
    expect(await names(alice)).toEqual(['fx__echo', 'fx__slow']); // no rule shows it to alice
  });

  it('a new lock releases, and a quarantine hides, in the next list', async () => {
    // Approve px as `gatehouse tools approve --upstream px --yes` would; the policy folder watcher re-reads the lock.
    const plan = planApproval({
      listings: gw.app.router.toolListings(),
      lock: readToolsLock(lockFile),
      selection: { upstream: 'px' },
      now: Date.now(),
      approvedBy: 'test',
    });
    writeToolsLock(lockFile, plan.lock);
    const released = await eventually(
      () => names(ops),
      (n) => n.includes('px__mutable'),
    );
    expect(released).toEqual(expect.arrayContaining(['px__echo', 'px__mutable', 'px__change_tools']));
    expect(await names(carol)).toEqual(['fx__echo', 'px__echo']);

    // The rug pull: px rewrites `mutable`. Once the router has quarantined it, the next list lacks it.
    // (px/mutable was quarantined once already, at start, as `new`: wait for the next such record.)
    const quarantines = (): number =>
      audit().filter((e) => e.type === 'tool.pin.quarantined' && e.upstream === 'px' && e.tool === 'mutable').length;
    const before = quarantines();
    await ops.callTool({ name: 'px__change_tools', arguments: {} });
    await eventually(
      async () => quarantines(),
      (n) => n > before,
    );
    expect(quarantines()).toBeGreaterThan(before);
    const after = await names(ops);
    expect(after).not.toContain('px__mutable');
    expect(after).not.toContain('px__added_1'); // new since approval: quarantined too
    expect(after).toContain('px__echo');
    expect(after).toContain('fx__mutable');
  });
});
