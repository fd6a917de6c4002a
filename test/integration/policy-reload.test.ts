/**
 * Hot reload of `policy.dir` on a running gateway (docs/architecture.md §8): an edited rule takes effect without a
 * restart, a broken file keeps the previous policy serving and is reported (log, audit, `/readyz`), a fix clears it.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, stdioFixtureYaml, type TestGateway } from '../helpers/gateway.js';

const rule = (id: string, tools: string[]): string => `  - id: ${id}
    effect: allow
    match:
      tools: ${JSON.stringify(tools)}
    when:
      authenticated: true
`;
const policyText = (tools: string[]): string => `version: 1\nrules:\n${rule('fx.tools', tools)}`;

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-policy-reload-'));
const policyDir = join(dir, 'policy');
let gw: TestGateway;
let client: Client;
let listChanged = 0;

beforeAll(async () => {
  mkdirSync(policyDir);
  writeFileSync(join(policyDir, 'fx.yaml'), policyText(['fx__echo']));
  gw = await startGateway([stdioFixtureYaml('fx')], {
    top: `auth:\n  mode: dev\npolicy:\n  dir: ${JSON.stringify(policyDir)}\n`,
  });
  const token = await gw.token({ sub: 'alice', scopes: [] });
  client = await gw.client({ transport: { requestInit: { headers: { Authorization: `Bearer ${token}` } } } });
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
    listChanged += 1;
  });
}, 30_000);

afterAll(async () => {
  await gw?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function toolNames(): Promise<string[]> {
  return (await client.listTools()).tools.map((t) => t.name).sort();
}

async function readyz(): Promise<{ status: number; body: { policy?: { revision: string; lastError?: string } } }> {
  const res = await fetch(new URL('/readyz', gw.url));
  return { status: res.status, body: (await res.json()) as { policy?: { revision: string; lastError?: string } } };
}

async function eventually<T>(probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 3000): Promise<T> {
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

describe('policy hot reload', () => {
  it('an edited rule file takes effect without a restart, and sessions hear tools/list_changed', async () => {
    expect(await toolNames()).toEqual(['fx__echo']);
    const before = gw.app.policyReload!.revision;
    const heard = listChanged;

    writeFileSync(join(policyDir, 'fx.yaml'), policyText(['fx__echo', 'fx__add']));
    expect(await eventually(toolNames, (n) => n.includes('fx__add'))).toEqual(['fx__add', 'fx__echo']);
    const result = await client.callTool({ name: 'fx__add', arguments: { a: 2, b: 3 } });
    expect(result.isError).not.toBe(true);

    const after = gw.app.policyReload!.revision;
    expect(after).not.toBe(before);
    expect((await readyz()).body.policy).toEqual({ revision: after });
    expect(audit().some((e) => e.type === 'config' && e.outcome === 'ok' && e.policyRevision === after)).toBe(true);
    // The decision of the call names the new revision.
    expect(audit().findLast((e) => e.tool === 'fx__add')?.policyRevision).toBe(after);
    expect(
      await eventually(
        async () => listChanged,
        (n) => n > heard,
      ),
    ).toBeGreaterThan(heard);
  });

  it('a broken file keeps the previous policy serving and is reported; a fix clears the error', async () => {
    const serving = gw.app.policyReload!.revision;
    const failures = gw.app.policyReload!.failures;
    const bad = join(policyDir, 'zz-broken.yaml');
    writeFileSync(bad, 'version: 1\nrules:\n  - id: broken\n    effect: maybe\n    match:\n      tools: ["fx__*"]\n');

    const r = await eventually(readyz, (x) => x.body.policy?.lastError !== undefined);
    expect(r.status).toBe(200); // still ready: the old policy serves
    expect(r.body.policy?.revision).toBe(serving);
    expect(r.body.policy?.lastError).toContain(`${bad}:4:`);
    expect(gw.app.policyReload!.failures).toBeGreaterThan(failures);
    expect(
      audit().some((e) => e.type === 'config' && e.outcome === 'error' && String(e.detail).includes(`${bad}:4:`)),
    ).toBe(true);

    // What was allowed still works, and nothing the broken file says applies.
    expect(await toolNames()).toEqual(['fx__add', 'fx__echo']);
    const echo = await client.callTool({ name: 'fx__echo', arguments: { text: 'still here' } });
    expect(echo.isError).not.toBe(true);
    expect(audit().findLast((e) => e.tool === 'fx__echo')?.policyRevision).toBe(serving);

    writeFileSync(bad, policyText(['fx__slow']).replace('fx.tools', 'fx.slow'));
    const fixed = await eventually(readyz, (x) => x.body.policy?.lastError === undefined);
    expect(fixed.body.policy?.lastError).toBeUndefined();
    expect(fixed.body.policy?.revision).not.toBe(serving);
    expect(await eventually(toolNames, (n) => n.includes('fx__slow'))).toEqual(['fx__add', 'fx__echo', 'fx__slow']);
  });

  it('reloadPolicy (what SIGHUP calls) with nothing changed reports an unchanged revision', () => {
    const o = gw.app.reloadPolicy('SIGHUP');
    expect(o).toMatchObject({ ok: true, changed: false, trigger: 'SIGHUP' });
  });
});
