/**
 * Tool pinning in a running gateway (docs/architecture.md §4, §8; threat model #14, the rug pull): the fixture's tools
 * are approved into `tools.lock`, then `change_tools` rewrites the description of `mutable` and says list_changed.
 * Under `enforce` the changed tool disappears and answers like an unknown tool; under `warn` it stays callable.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  emptyToolsLock,
  planApproval,
  readToolsLock,
  TOOL_HASH_RE,
  toolHash,
  writeToolsLock,
} from '../../src/policy/pinning/index.js';
import { PERMISSIVE_POLICY, startGateway, stdioFixtureYaml, type TestGateway } from '../helpers/gateway.js';

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-pinning-gw-'));
const policyDir = join(dir, 'policy');
const lockFile = join(policyDir, 'tools.lock');
const top = (mode: string): string =>
  `auth:\n  mode: dev\npolicy:\n  dir: ${JSON.stringify(policyDir)}\n${mode === '' ? '' : `pinning:\n  mode: ${mode}\n`}`;

beforeAll(async () => {
  mkdirSync(policyDir);
  writeFileSync(join(policyDir, 'allow-all.yaml'), PERMISSIVE_POLICY);
  // Approve what the fixture lists, the way `gatehouse tools approve --yes` does.
  const gw = await startGateway([stdioFixtureYaml('fx')], { top: top('') });
  try {
    const tools = await gw.app.upstreams.get('fx')!.listAll('tools');
    const plan = planApproval({
      listings: [{ upstream: 'fx', tools }],
      lock: emptyToolsLock(),
      now: Date.now(),
      approvedBy: 'test',
    });
    expect(plan.problems).toEqual([]);
    writeToolsLock(lockFile, plan.lock);
  } finally {
    await gw.close();
  }
}, 30_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function clientOf(gw: TestGateway): Promise<Client> {
  const token = await gw.token({ sub: 'alice', scopes: [] });
  return gw.client({ transport: { requestInit: { headers: { Authorization: `Bearer ${token}` } } } });
}

async function eventually<T>(probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 5000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (ok(v) || Date.now() > until) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function callError(client: Client, name: string): Promise<{ code: unknown; message: string }> {
  try {
    const r = await client.callTool({ name, arguments: {} });
    return { code: 'none', message: JSON.stringify(r) };
  } catch (err) {
    const e = err as { code?: unknown; message: string };
    return { code: e.code, message: e.message.replaceAll(name, '<name>') };
  }
}

function audit(gw: TestGateway): Record<string, unknown>[] {
  return gw.logs.filter((l) => l.audit !== undefined).map((l) => l.audit as Record<string, unknown>);
}

describe('pinning: enforce', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway([stdioFixtureYaml('fx')], { top: top('enforce') });
  }, 30_000);
  afterAll(async () => {
    await gw?.close();
  });

  it('a rug pull quarantines the changed tool: hidden, refused like an unknown tool, audited with both hashes', async () => {
    const client = await clientOf(gw);
    const pinned = readToolsLock(lockFile).tools.get('fx')!.get('mutable')!.hash;
    // Every approved tool is listed and callable; nothing was recorded at start.
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('fx__mutable');
    expect(await client.callTool({ name: 'fx__mutable', arguments: {} })).toMatchObject({
      content: [{ type: 'text', text: 'mutable ok' }],
    });
    expect(audit(gw).filter((e) => String(e.type).startsWith('tool.pin.'))).toEqual([]);

    await client.callTool({ name: 'fx__change_tools', arguments: {} });
    const names = await eventually(
      async () => (await client.listTools()).tools.map((t) => t.name),
      (n) => !n.includes('fx__mutable'),
    );
    expect(names).not.toContain('fx__mutable');
    expect(names).not.toContain('fx__added_1'); // new since approval: quarantined too
    expect(names).toContain('fx__echo');

    const refused = await callError(client, 'fx__mutable');
    expect(refused.code).toBe(-32602);
    expect(refused).toEqual(await callError(client, 'fx__no_such_tool'));

    const event = audit(gw).find((e) => e.type === 'tool.pin.quarantined' && e.tool === 'mutable');
    expect(event).toMatchObject({ upstream: 'fx', oldHash: pinned, outcome: 'denied' });
    expect(event?.newHash).toMatch(TOOL_HASH_RE);
    expect(event?.newHash).not.toBe(pinned);
    // The new hash is the one of the definition the upstream lists now.
    const listed = await gw.app.upstreams.get('fx')!.listAll('tools');
    expect(event?.newHash).toBe(
      toolHash(
        listed.find((t) => t.name === 'mutable')!,
        'mutable',
      ),
    );
    expect(listed.find((t) => t.name === 'mutable')!.description).toBe('changed description 1');
    expect(audit(gw).find((e) => e.type === 'tool.pin.quarantined' && e.tool === 'added_1')).toMatchObject({
      detail: expect.stringContaining('new') as unknown,
    });
    // The refused call's decision record says why (the wire does not).
    expect(audit(gw).findLast((e) => e.tool === 'fx__mutable' && e.outcome === 'denied')?.detail).toContain(
      'quarantined',
    );
  });

  it('approving the change (a new lock in the policy folder) releases the tool without a restart', async () => {
    const client = await clientOf(gw);
    let listChanged = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      listChanged += 1;
    });
    await client.ping(); // the GET stream is open before the lock changes
    const plan = planApproval({
      listings: gw.app.router.toolListings(),
      lock: readToolsLock(lockFile),
      selection: { tool: 'mutable' },
      now: Date.now(),
      approvedBy: 'reviewer',
    });
    expect(plan.changes.map((c) => [c.tool, c.status])).toEqual([['mutable', 'changed']]);
    writeToolsLock(lockFile, plan.lock);
    const names = await eventually(
      async () => (await client.listTools()).tools.map((t) => t.name),
      (n) => n.includes('fx__mutable'),
    );
    expect(names).toContain('fx__mutable');
    expect(names).not.toContain('fx__added_1'); // not approved: still quarantined
    expect(await client.callTool({ name: 'fx__mutable', arguments: {} })).toMatchObject({
      content: [{ type: 'text', text: 'mutable ok' }],
    });
    expect(audit(gw).find((e) => e.type === 'tool.pin.released' && e.tool === 'mutable')).toMatchObject({
      upstream: 'fx',
      outcome: 'ok',
    });
    // Only the quarantine changed, not the upstream's list: the gateway announces it itself.
    expect(
      await eventually(
        async () => listChanged,
        (n) => n > 0,
      ),
    ).toBeGreaterThan(0);
  });
});

describe('pinning: warn', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway([stdioFixtureYaml('fx')], { top: top('warn') });
  }, 30_000);
  afterAll(async () => {
    await gw?.close();
  });

  it('the same change keeps the tool callable and records a warning', async () => {
    const client = await clientOf(gw);
    await client.callTool({ name: 'fx__change_tools', arguments: {} });
    const warned = await eventually(
      async () => audit(gw).find((e) => e.type === 'tool.pin.warn' && e.tool === 'mutable'),
      (e) => e !== undefined,
    );
    expect(warned).toMatchObject({
      upstream: 'fx',
      oldHash: readToolsLock(lockFile).tools.get('fx')!.get('mutable')!.hash,
    });
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('fx__mutable');
    expect(await client.callTool({ name: 'fx__mutable', arguments: {} })).toMatchObject({
      content: [{ type: 'text', text: 'mutable ok' }],
    });
  });
});
