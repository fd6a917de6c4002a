/**
 * An HTTP upstream that forgets our session (restarted on the same port: it answers 404 to the old
 * Mcp-Session-Id, MCP transports §Session Management) is re-initialised at once and the call is sent again:
 * the client sees its answer, never an opaque -32603.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_HTTP, startGateway, type TestGateway } from '../helpers/gateway.js';
import { spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';
import { freePort, readRecord } from '../helpers/upstream-tools.js';

let dir: string;
let port: number;
let fixture: SpawnedServer | undefined;
let gw: TestGateway;

const start = async (record: string): Promise<SpawnedServer> => spawnServer(FIXTURE_HTTP, { args: ['--port', String(port)], env: { FIXTURE_RECORD_FILE: record } });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-upstream-expiry-'));
  port = await freePort();
  fixture = await start(join(dir, 'first.jsonl'));
  // No retries of its own and a long reconnect backoff: only the session renewal can make the second call pass.
  const upstream = JSON.stringify({ name: 'fx', transport: 'http', url: `http://127.0.0.1:${port}/mcp`, restart: { initialDelayMs: 60_000, maxDelayMs: 60_000 } });
  gw = await startGateway([upstream]);
}, 60_000);

afterAll(async () => {
  await gw?.close();
  await fixture?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('HTTP upstream session expiry', () => {
  it('re-initialises the upstream and answers the call that met the 404', async () => {
    const client = await gw.client();
    expect((await client.callTool({ name: 'fx__add', arguments: { a: 1, b: 2 } })).isError).toBeFalsy();

    await fixture!.close();
    const second = join(dir, 'second.jsonl');
    fixture = await start(second);

    const result = await client.callTool({ name: 'fx__add', arguments: { a: 2, b: 3 } });
    expect(result.isError).toBeFalsy();
    expect(JSON.stringify(result.content)).toContain('5');
    // The restarted upstream refused the call under the old session (404, recorded before its session check),
    // then saw a new initialize and the call once more — exactly once.
    const lines = readRecord(second);
    const init = lines.findIndex((l) => l.method === 'initialize');
    expect(init).toBeGreaterThan(0);
    expect(lines.slice(0, init).filter((l) => l.method === 'tools/call')).toHaveLength(1);
    expect(lines.slice(init).filter((l) => l.method === 'tools/call')).toHaveLength(1);
    expect(gw.logs.some((l) => l.msg === 'upstream session expired; starting a new one')).toBe(true);
  }, 60_000);
});
