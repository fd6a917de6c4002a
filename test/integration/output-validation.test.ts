/**
 * Output validation end to end (mcp/steps/output.ts): a real gateway in front of three copies of a stdio upstream
 * whose tools declare an `outputSchema` and break it on demand, one per `outputValidation` mode. enforce refuses
 * with the generic -32603 and puts paths and keywords (never values) in the audit detail; warn passes and records
 * `outputValid: false`; off passes silently; `isError` results are never judged; a schema that does not compile
 * is a catalogue warning and its results are invalid; a resource read with another MIME type than listed.
 *
 * The SDK client validates structuredContent itself once it has listed the tools, so the calls below come from
 * clients that never listed them: what they receive is exactly what the gateway let through.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  OUTPUT_SCHEMAS_SERVER,
  startGateway,
  stdioFixtureYaml,
  type LogLine,
  type TestGateway,
} from '../helpers/gateway.js';

function audits(logs: LogLine[], tool: string): Record<string, unknown>[] {
  return logs
    .filter((l) => l.audit !== undefined)
    .map((l) => l.audit as Record<string, unknown>)
    .filter((a) => a.type === 'mcp.request' && (a.tool === tool || a.resource === tool) && a.outcome !== undefined);
}

async function refusal(p: Promise<unknown>): Promise<McpError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof McpError)) throw new Error(`expected an McpError, got ${String(err)}`);
  return err;
}

describe('output validation per upstream mode', () => {
  let gw: TestGateway;
  let client: Client;
  const upstream = (name: string, mode: string): string =>
    stdioFixtureYaml(name, {
      args: ['--import', 'tsx', OUTPUT_SCHEMAS_SERVER],
      env: { OUTPUT_FIXTURE: name },
      outputValidation: mode,
    });

  beforeAll(async () => {
    gw = await startGateway([upstream('enf', 'enforce'), upstream('wrn', 'warn'), upstream('off', 'off')]);
    client = await gw.client();
  });
  afterAll(async () => {
    await gw?.close();
  });

  const call = (name: string) => client.callTool({ name, arguments: {} }) as Promise<CallToolResult>;

  it('enforce: a result that breaks its outputSchema fails with the generic error; the audit says where, not what', async () => {
    const err = await refusal(call('enf__order_bad'));
    expect(err.code).toBe(-32603);
    expect(err.message).toContain('Upstream returned an invalid result');
    expect(JSON.stringify(err)).not.toContain('SECRET');
    const [record] = audits(gw.logs, 'enf__order_bad');
    expect(record).toMatchObject({ outcome: 'error', errorCode: 'GW_UPSTREAM_OUTPUT_INVALID', outputValid: false });
    expect(record!.detail).toContain('structuredContent: required (id)');
    expect(record!.detail).toContain('structuredContent/total: type');
    expect(JSON.stringify(record)).not.toContain('SECRET');
  });

  it('enforce: a declared outputSchema with no structuredContent is a violation', async () => {
    const err = await refusal(call('enf__order_missing'));
    expect(err.code).toBe(-32603);
    expect(audits(gw.logs, 'enf__order_missing')[0]!.detail).toContain('no structuredContent');
  });

  it('enforce: a valid result passes and is recorded as valid; a tool without outputSchema is not judged', async () => {
    const ok = await call('enf__order');
    expect(ok.structuredContent).toEqual({ id: 'o-1', total: 12.5 });
    expect(audits(gw.logs, 'enf__order')[0]).toMatchObject({ outcome: 'ok', outputValid: true });
    await call('enf__plain');
    expect(audits(gw.logs, 'enf__plain')[0]).not.toHaveProperty('outputValid');
  });

  it('isError results are not validated, even under enforce', async () => {
    const r = await call('enf__order_error');
    expect(r.isError).toBe(true);
    expect(audits(gw.logs, 'enf__order_error')[0]).toMatchObject({ outcome: 'ok', outputValid: true });
  });

  it('warn: the result passes as it is; the audit records outputValid false and the detail', async () => {
    const r = await call('wrn__order_bad');
    expect(r.structuredContent).toEqual({ total: 'SECRET-TOTAL-VALUE', note: 'SECRET-NOTE' });
    const [record] = audits(gw.logs, 'wrn__order_bad');
    expect(record).toMatchObject({ outcome: 'ok', outputValid: false });
    expect(record!.detail).toMatch(/^output invalid \(outputValidation warn\): .*required \(id\)/);
    expect(JSON.stringify(record)).not.toContain('SECRET');
  });

  it('off: passes silently', async () => {
    const r = await call('off__order_bad');
    expect(r.structuredContent).toEqual({ total: 'SECRET-TOTAL-VALUE', note: 'SECRET-NOTE' });
    const [record] = audits(gw.logs, 'off__order_bad');
    expect(record).toMatchObject({ outcome: 'ok' });
    expect(record).not.toHaveProperty('outputValid');
    expect(record).not.toHaveProperty('detail');
  });

  it('a schema that does not compile: a catalogue warning, and its results are invalid per the mode', async () => {
    const warned = gw.logs.filter(
      (l) => typeof l.msg === 'string' && l.msg.includes('"broken_schema"') && l.msg.includes('does not compile'),
    );
    expect(warned.length).toBeGreaterThanOrEqual(3);
    expect((await refusal(call('enf__broken_schema'))).code).toBe(-32603);
    expect((await call('wrn__broken_schema')).structuredContent).toEqual({ a: 1 });
    expect(audits(gw.logs, 'wrn__broken_schema')[0]).toMatchObject({ outputValid: false });
  });

  it("resources: contents read back with another mimeType than the listing's", async () => {
    const err = await refusal(client.readResource({ uri: 'doc://enf/json' }));
    expect(err.code).toBe(-32603);
    const [record] = audits(gw.logs, 'doc://enf/json');
    expect(record).toMatchObject({ errorCode: 'GW_UPSTREAM_OUTPUT_INVALID', outputValid: false });
    expect(record!.detail).toContain('text/plain where the listing declares application/json');
    const ok = await client.readResource({ uri: 'doc://enf/ok' });
    expect(ok.contents[0]).toMatchObject({ mimeType: 'text/plain' });
    expect(audits(gw.logs, 'doc://enf/ok')[0]).toMatchObject({ outcome: 'ok', outputValid: true });
    const warned = await client.readResource({ uri: 'doc://wrn/json' });
    expect(warned.contents[0]).toMatchObject({ text: 'not json' });
    expect(audits(gw.logs, 'doc://wrn/json')[0]).toMatchObject({ outcome: 'ok', outputValid: false });
  });
});
