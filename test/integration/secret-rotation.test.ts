/**
 * Secrets that rotate without a restart (docs/configuration.md "Secrets that rotate"), with real parts: a running
 * gateway in front of the HTTP fixture, whose static key and audit HMAC key are files laid out as a Kubernetes
 * Secret volume (`api-key` → `..data/api-key`, `..data` → `..<timestamp>/`), swapped atomically (a rename of the
 * `..data` link) while a slow call is in flight.
 */
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditKeyId } from '../../src/audit/chain.js';
import { verifyAuditFiles } from '../../src/audit/verify.js';
import { FIXTURE_HTTP, startGateway, type TestGateway } from '../helpers/gateway.js';
import { spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';

const OLD_KEY = 'upstream-key-old-7f3a9c1e5b';
const NEW_KEY = 'upstream-key-new-2d8e4f6a0c';
const OLD_HMAC = 'audit-hmac-key-old-0123456789abcdef0123';
const NEW_HMAC = 'audit-hmac-key-new-fedcba9876543210fedc';

let dir: string;
let secrets: string;
let fixture: SpawnedServer;
let gw: TestGateway;
let auditFile: string;
let generation = 0;
let recordFile: string;

/** Writes a new `..<n>` folder with these files and swaps `..data` to it in one rename, as the kubelet does. */
function publish(files: Record<string, string>): void {
  const version = `..2026_${++generation}`;
  mkdirSync(join(secrets, version), { mode: 0o700 });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(secrets, version, name), text, { mode: 0o600 });
  symlinkSync(version, join(secrets, '..data_tmp'));
  renameSync(join(secrets, '..data_tmp'), join(secrets, '..data'));
}

async function until(what: string, ok: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function auditRecords(): { audit: Record<string, unknown>; kid?: string }[] {
  return readFileSync(auditFile, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { audit: Record<string, unknown>; kid?: string });
}

interface Recorded {
  method?: string;
  params?: { name?: string };
  headers?: Record<string, string>;
}

/** What reached the fixture, with the headers of each request (FIXTURE_RECORD_FILE: one JSON line per message). */
function recorded(): Recorded[] {
  return readFileSync(recordFile, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Recorded);
}

/** The key the upstream got with a fresh tools/call (the gateway redacts it from what the tool echoes back). */
async function keySeen(): Promise<string | undefined> {
  const client = await gw.client();
  try {
    await client.callTool({ name: 'web__headers_report', arguments: {} });
    const calls = recorded().filter((m) => m.method === 'tools/call' && m.params?.name === 'headers_report');
    return calls[calls.length - 1]?.headers?.['x-api-key'];
  } finally {
    await client.close();
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-rotation-'));
  secrets = join(dir, 'secrets');
  mkdirSync(secrets, { mode: 0o700 });
  publish({ 'api-key': `${OLD_KEY}\n`, 'audit-key': OLD_HMAC });
  symlinkSync('..data/api-key', join(secrets, 'api-key'));
  symlinkSync('..data/audit-key', join(secrets, 'audit-key'));
  auditFile = join(dir, 'audit.jsonl');
  recordFile = join(dir, 'record.jsonl');
  fixture = await spawnServer(FIXTURE_HTTP, { args: ['--port', '0'], env: { FIXTURE_RECORD_FILE: recordFile } });
  gw = await startGateway(
    [
      JSON.stringify({
        name: 'web',
        transport: 'http',
        url: fixture.url,
        headers: { 'X-Api-Key': { fromFile: join(secrets, 'api-key') } },
      }),
    ],
    {
      top: `audit:\n  sink: file\n  file: ${JSON.stringify(auditFile)}\n  hashChain:\n    hmacKey: { fromFile: ${JSON.stringify(join(secrets, 'audit-key'))} }\n`,
      deps: { secretRotation: { debounceMs: 50, intervalMs: 500 } },
    },
  );
}, 30_000);

afterAll(async () => {
  await gw?.close();
  await fixture?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('a secret file swapped under a running gateway', () => {
  it('lets the call in flight finish, sends the new key from the next call on, and records the rotation', async () => {
    expect(await keySeen()).toBe(OLD_KEY);
    const client = await gw.client();
    const slow = client.callTool({ name: 'web__slow', arguments: { ms: 1500 } });
    await new Promise((r) => setTimeout(r, 200));
    publish({ 'api-key': `${NEW_KEY}\n`, 'audit-key': NEW_HMAC });
    await until('the rotation record', () =>
      auditRecords().some((r) => r.audit.type === 'secret.rotated' && r.audit.outcome === 'ok'),
    );
    const done = (await slow) as { content: { text: string }[]; isError?: boolean };
    expect(done.isError).not.toBe(true);
    expect(done.content[0]!.text).toBe('done after 1500ms');
    await client.close();
    // It went out before the swap, with the old key.
    const slowCall = recorded().find((m) => m.method === 'tools/call' && m.params?.name === 'slow');
    expect(slowCall?.headers?.['x-api-key']).toBe(OLD_KEY);
    expect(await keySeen()).toBe(NEW_KEY);

    const rotations = auditRecords().filter((r) => r.audit.type === 'secret.rotated');
    expect(rotations.map((r) => r.audit.usedBy).sort()).toEqual([
      ['audit.hashChain.hmacKey'],
      ['upstreams[web].headers.X-Api-Key'],
    ]);
    expect(rotations.map((r) => r.audit.source)).toContain(`file:${join(secrets, 'api-key')}`);
    const text = readFileSync(auditFile, 'utf8');
    for (const value of [OLD_KEY, NEW_KEY, OLD_HMAC, NEW_HMAC]) expect(text).not.toContain(value);
    // The audit HMAC key rotated too: records after it carry the new key's id, and the file verifies with both keys.
    const kids = new Set(auditRecords().map((r) => r.kid));
    expect(kids).toEqual(new Set([auditKeyId(OLD_HMAC), auditKeyId(NEW_HMAC)]));
    await gw.app.auditLog?.flush();
    expect(verifyAuditFiles([auditFile], { keys: [OLD_HMAC, NEW_HMAC] })).toMatchObject({ ok: true });
    expect(verifyAuditFiles([auditFile], { keys: [OLD_HMAC] }).problem).toMatchObject({ kind: 'key' });
  });

  it('keeps the last good key when the new file is empty, warns, and shows it in /readyz while staying ready', async () => {
    publish({ 'api-key': '', 'audit-key': NEW_HMAC });
    await until('the warning', () => gw.logs.some((l) => l.msg?.startsWith('secret file changed but cannot be used')));
    const warning = gw.logs.find((l) => l.msg?.startsWith('secret file changed but cannot be used'))!;
    expect(warning).toMatchObject({
      source: `file:${join(secrets, 'api-key')}`,
      usedBy: ['upstreams[web].headers.X-Api-Key'],
    });
    expect(String(warning.reason)).toContain('is empty');
    expect(await keySeen()).toBe(NEW_KEY);
    const readiness = gw.app.readiness();
    expect(readiness.ready).toBe(true);
    expect(readiness.detail).toMatchObject({
      secrets: { watched: 2, problems: [{ usedBy: ['upstreams[web].headers.X-Api-Key'] }] },
    });
    // Fixed: usable again, and out of /readyz.
    publish({ 'api-key': OLD_KEY, 'audit-key': NEW_HMAC });
    await until(
      'the key back',
      () => (gw.app.readiness().detail as { secrets?: { problems?: unknown } }).secrets?.problems === undefined,
    );
    expect(await keySeen()).toBe(OLD_KEY);
  });
});
