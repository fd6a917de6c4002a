/**
 * A real gateway whose audit file is /dev/full (every write fails with ENOSPC, like a full disk):
 * `audit.onFailure: closed` refuses calls with the documented error and takes the replica out of rotation;
 * `open` keeps serving and the loss counter rises (and is logged).
 */
import { describe, expect, it } from 'vitest';
import { initializeBody, post, startGateway, stdioFixtureYaml } from '../helpers/gateway.js';
import { waitFor } from '../helpers/upstream-tools.js';

const top = (onFailure: string): string => `audit:\n  sink: file\n  file: /dev/full\n  onFailure: ${onFailure}\n`;

describe('audit sink failing', () => {
  it('closed: calls are refused with GW_AUDIT_UNAVAILABLE (503 / -32603 "Audit log unavailable") and /readyz fails', async () => {
    await using gw = await startGateway([stdioFixtureYaml('fx')], { top: top('closed') });
    await waitFor('the sink fails', () => gw.app.auditLog?.status().failing);
    const r = await post(gw.url, initializeBody());
    expect(r.status).toBe(503);
    expect(r.json).toMatchObject({ error: { code: -32603, message: 'Audit log unavailable' } });
    const ready = await fetch(gw.url.replace(/\/mcp$/, '/readyz'));
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ audit: { sink: 'file', onFailure: 'closed', failing: true } });
    expect(
      gw.logs.some((l) => l.msg === 'audit sink failing: calls are refused until it recovers' && l.error === 'ENOSPC'),
    ).toBe(true);
  });

  it('open: calls go on and every record that cannot be kept is counted and logged', async () => {
    await using gw = await startGateway([stdioFixtureYaml('fx')], {
      top: top('open'),
      deps: { auditFile: { maxQueueBytes: 2048 } },
    });
    await waitFor('the sink fails', () => gw.app.auditLog?.status().failing);
    const client = await gw.client();
    const lostBefore = gw.app.auditLog!.lost;
    for (let i = 0; i < 10; i++) {
      const res = await client.callTool({ name: 'fx__echo', arguments: { text: `call ${i}` } });
      expect(res.isError).toBeFalsy();
    }
    expect(gw.app.auditLog!.lost).toBeGreaterThan(lostBefore);
    expect(gw.app.auditLog!.accepting()).toBe(true);
    expect(gw.logs.some((l) => l.msg === 'audit records lost' && typeof l.lost === 'number')).toBe(true);
    const ready = await fetch(gw.url.replace(/\/mcp$/, '/readyz'));
    expect(ready.status).toBe(200);
  });
});
