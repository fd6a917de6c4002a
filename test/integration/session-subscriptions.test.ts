/**
 * `sessions.maxSubscriptions` (threat model #9): every `resources/subscribe` is held by the session on this replica
 * and by the upstream for the session's life, so one session could grow both without bound. Past the cap a new URI
 * is refused before the upstream is asked; a URI already held and room made by unsubscribing still work.
 * Real parts: the official server-everything over stdio (it supports subscriptions) and the SDK client.
 */
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { everythingStdioYaml, startGateway, type LogLine, type TestGateway } from '../helpers/gateway.js';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway([everythingStdioYaml('ev')], { top: 'sessions:\n  maxSubscriptions: 2\n' });
});
afterAll(async () => gw?.close());

async function refusal(p: Promise<unknown>): Promise<McpError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(McpError);
  return err as McpError;
}

describe('sessions.maxSubscriptions', () => {
  it('refuses a subscription past the cap before the upstream sees it; held URIs and unsubscribing still work', async () => {
    const client = await gw.client();
    const uris = (await client.listResources()).resources.map((r) => r.uri).slice(0, 3);
    expect(uris).toHaveLength(3);
    const [a, b, c] = uris as [string, string, string];

    await client.subscribeResource({ uri: a });
    await client.subscribeResource({ uri: b });
    const forwardedBefore = subscribesForwarded();

    const err = await refusal(client.subscribeResource({ uri: c }));
    expect(err.code).toBe(-32600);
    expect(err.message).toContain('Too many subscriptions');
    // Refused here: no audit record of a forwarded subscribe for it, and the detail names the cap.
    expect(subscribesForwarded()).toBe(forwardedBefore);
    const record = gw.logs.find((l) => audit(l)?.errorCode === 'GW_MCP_SUBSCRIPTION_LIMIT');
    expect(record && audit(record)).toMatchObject({
      resource: c,
      detail: expect.stringContaining('sessions.maxSubscriptions 2'),
    });

    // A URI the session already holds is not a new one.
    await client.subscribeResource({ uri: a });
    // Unsubscribing makes room.
    await client.unsubscribeResource({ uri: b });
    await client.subscribeResource({ uri: c });

    // The cap is per session: another session has its own.
    const other = await gw.client();
    await other.subscribeResource({ uri: b });
    await other.subscribeResource({ uri: c });
  });
});

type AuditFields = {
  type?: string;
  method?: string;
  outcome?: string;
  errorCode?: string;
  resource?: string;
  detail?: string;
};

function audit(line: LogLine): AuditFields | undefined {
  return line.audit as AuditFields | undefined;
}

function subscribesForwarded(): number {
  return gw.logs.filter((l) => {
    const a = audit(l);
    return a?.method === 'resources/subscribe' && a.outcome === 'ok';
  }).length;
}
