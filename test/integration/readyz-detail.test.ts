/** `/readyz` tells probes only the status; its detail (upstream names, stores, revision) goes only where configured. */
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, stdioFixtureYaml, type TestGateway } from '../helpers/gateway.js';

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

describe('server.readinessDetail', () => {
  it('loopback (default): a loopback peer sees the detail', async () => {
    gw = await startGateway([stdioFixtureYaml('fx')]);
    const body = (await (await fetch(new URL('/readyz', gw.url))).json()) as {
      status: string;
      upstreams?: { name: string }[];
    };
    expect(body.status).toBe('ready');
    expect(body.upstreams?.map((u) => u.name)).toEqual(['fx']);
  });

  it('none: only the status, with the same status code', async () => {
    gw = await startGateway([stdioFixtureYaml('fx')], { server: { readinessDetail: 'none' } });
    const res = await fetch(new URL('/readyz', gw.url));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ready' });
  });
});
