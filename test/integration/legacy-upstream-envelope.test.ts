/**
 * A 2026-07-28 call reaches a 2025 upstream session without the client's `_meta` envelope. The upstream is the
 * conformance fixture (v2 SDK, both generations on one URL, `isLegacyRequest` routing): given the envelope, it took
 * the gateway's sessionful request for a 2026 one and refused it with HTTP 400 (-32020), so every 2026 call failed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, startGateway, type TestGateway } from '../helpers/gateway.js';
import { spawnServer, type SpawnedServer } from '../helpers/spawn-server.js';

const V = '2026-07-28';

describe('2026 client, 2025 upstream session', () => {
  let fixture: SpawnedServer;
  let gw: TestGateway;

  beforeAll(async () => {
    fixture = await spawnServer('test/fixtures/servers/conformance.ts');
    gw = await startGateway([JSON.stringify({ name: 'conf', transport: 'http', url: fixture.url })], {
      top: 'catalogue:\n  unprefixedSingleUpstream: true\n',
    });
  }, 60_000);

  afterAll(async () => {
    await gw?.close();
    await fixture?.close();
  });

  it('calls a tool, reads a resource and completes an argument of a dual-era upstream, with progress relayed', async () => {
    const meta = {
      'io.modelcontextprotocol/protocolVersion': V,
      'io.modelcontextprotocol/clientCapabilities': {},
      progressToken: 'p1',
    };
    const call = await post(
      gw.url,
      JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'test_tool_with_progress', arguments: {}, _meta: meta },
      }),
      { 'mcp-protocol-version': V, 'mcp-method': 'tools/call', 'mcp-name': 'test_tool_with_progress' },
    );
    expect(call.status).toBe(200);
    // The progress token is still the upstream's to answer to (only the envelope keys were dropped).
    expect(call.text).toContain('"progressToken":"p1"');
    expect(call.text).toContain('Progress tool completed.');

    const read = await post(
      gw.url,
      JSON.stringify({
        jsonrpc: '2.0',
        id: 2,
        method: 'resources/read',
        params: { uri: 'test://static-text', _meta: meta },
      }),
      { 'mcp-protocol-version': V, 'mcp-method': 'resources/read', 'mcp-name': 'test://static-text' },
    );
    expect(read.status).toBe(200);

    const completion = await post(
      gw.url,
      JSON.stringify({
        jsonrpc: '2.0',
        id: 3,
        method: 'completion/complete',
        params: {
          ref: { type: 'ref/prompt', name: 'test_prompt_with_arguments' },
          argument: { name: 'arg1', value: 'par' },
          _meta: meta,
        },
      }),
      { 'mcp-protocol-version': V, 'mcp-method': 'completion/complete' },
    );
    expect(completion.json).toMatchObject({ id: 3, result: { completion: { values: ['paris', 'park', 'party'] } } });
    expect(read.json).toMatchObject({
      id: 2,
      result: { resultType: 'complete', contents: [{ text: 'This is the content of the static text resource.' }] },
    });
  });
});
