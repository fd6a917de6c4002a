/**
 * The official v2 TypeScript client (`@modelcontextprotocol/client`, pinned) against the gateway, beside a 1.x client
 * on 2025-11-25, at the same time on one gateway: pinned to 2026-07-28 it must connect, list and call; in automatic
 * mode it must also end on 2026-07-28 (it probes with `server/discover`), not fall back to `initialize`. Real
 * gateway on port 0, real stdio fixture upstream, dev tokens.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PARAM_HEADERS_SERVER, startPolicyGateway, stdioFixtureYaml, type TestGateway } from '../helpers/gateway.js';

const POLICY = `version: 1
rules:
  - id: echo
    effect: allow
    match: { tools: [fx__echo] }
    when: { scopes: { allOf: ["fx:echo"] } }
  - id: query
    effect: allow
    match: { tools: [ph__query] }
    when: { scopes: { allOf: ["fx:echo"] } }
`;

describe('v2 SDK client on 2026-07-28 beside a 1.x client on 2025-11-25', () => {
  let dir: string;
  let gw: TestGateway;
  let token: string;
  const open: ClientV2[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-v2-'));
    ({ gw } = await startPolicyGateway(dir, { 'fx.yaml': POLICY }, [
      stdioFixtureYaml('fx'),
      stdioFixtureYaml('ph', { args: ['--import', 'tsx', PARAM_HEADERS_SERVER] }),
    ]));
    token = await gw.token({ sub: 'alice', scopes: ['fx:echo'] });
  }, 60_000);

  afterAll(async () => {
    await Promise.all(open.map((c) => c.close().catch(() => undefined)));
    await gw?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function v2(mode: 'auto' | { pin: string }): Promise<ClientV2> {
    const client = new ClientV2({ name: 'v2-test', version: '1.0.0' }, { versionNegotiation: { mode } });
    open.push(client);
    await client.connect(
      new TransportV2(new URL(gw.url), { requestInit: { headers: { authorization: `Bearer ${token}` } } }),
    );
    return client;
  }

  it.each([[{ pin: '2026-07-28' }], ['auto' as const]])(
    'connects on 2026-07-28 (%j), lists and calls',
    async (mode) => {
      const client = await v2(mode);
      expect(client.getNegotiatedProtocolVersion()).toBe('2026-07-28');
      expect(client.getProtocolEra()).toBe('modern');
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name)).toEqual(['fx__echo', 'ph__query']);
      const result = await client.callTool({ name: 'fx__echo', arguments: { text: 'from v2' } });
      expect(result.structuredContent).toEqual({ text: 'from v2' });
    },
  );

  it('serves a 1.x session and a v2 stateless client at the same time, each in its own wire format', async () => {
    const modern = await v2({ pin: '2026-07-28' });
    const legacy = await gw.client({
      transport: { requestInit: { headers: { authorization: `Bearer ${token}` } } },
    });
    const [a, b] = await Promise.all([
      modern.callTool({ name: 'fx__echo', arguments: { text: 'modern' } }),
      legacy.callTool({ name: 'fx__echo', arguments: { text: 'legacy' } }),
    ]);
    expect(a.structuredContent).toEqual({ text: 'modern' });
    expect(b.structuredContent).toEqual({ text: 'legacy' });
    expect(legacy.getServerVersion()?.name).toBe('gatehouse');
    // The 2025 result carries none of the 2026 fields.
    expect(b).not.toHaveProperty('resultType');
  });

  it('mirrors a marked parameter into Mcp-Param-* as the gateway checks it (the real client, not our guess)', async () => {
    const client = await v2({ pin: '2026-07-28' });
    await client.listTools(); // the client learns the x-mcp-header annotations from the list
    const args = { region: 'eu-central1', sql: 'select 1', limit: 5, options: { dryRun: false } };
    const result = await client.callTool({ name: 'ph__query', arguments: args });
    expect(result.content).toEqual([{ type: 'text', text: JSON.stringify(args) }]);
  });
});
