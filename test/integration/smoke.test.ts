import { describe, expect, it } from 'vitest';
import { startGateway, stdioFixtureYaml } from '../helpers/gateway.js';

describe('smoke', () => {
  it('lists and calls a tool through the gateway', async () => {
    await using gw = await startGateway([stdioFixtureYaml('fx')]);
    const client = await gw.client();
    const tools = await client.listTools();
    expect(tools.tools.map((t) => t.name)).toContain('fx__echo');
    const r = await client.callTool({ name: 'fx__echo', arguments: { text: 'hi' } });
    expect(r.content).toEqual([{ type: 'text', text: 'hi' }]);
  });
});
