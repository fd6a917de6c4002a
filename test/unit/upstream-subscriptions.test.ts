/**
 * The gateway's resource subscriptions at shared upstreams (src/mcp/upstream-subscriptions.ts): one upstream
 * subscription per URI whoever holds it, withdrawn only with the last holder, sent in the order decided, never for a
 * per-session upstream, nothing sent once shutting down.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { GatehouseConfig } from '../../src/config/types.js';
import type { Router, Target } from '../../src/router/router.js';
import { sessionHolder, UpstreamSubscriptions } from '../../src/mcp/upstream-subscriptions.js';

const target = (uri: string, upstream = 'ev'): Target => ({
  kind: 'resource',
  name: uri,
  upstream,
  original: uri,
  quarantined: false,
  definition: undefined,
});

function setup(refuse = false) {
  const sent: string[] = [];
  const router = {
    forward: (t: Target, method: string) => {
      sent.push(`${method} ${t.original}`);
      return refuse ? Promise.reject(new Error('no')) : Promise.resolve({});
    },
  } as unknown as Router;
  const config = {
    upstreams: [
      { name: 'ev', mode: 'shared' },
      { name: 'ps', mode: 'per-session' },
    ],
  } as unknown as GatehouseConfig;
  return { sent, subs: new UpstreamSubscriptions(config, router, pino({ level: 'silent' })) };
}

const settle = () => new Promise((r) => setTimeout(r, 0));

describe('UpstreamSubscriptions', () => {
  it('subscribes once per URI and unsubscribes with the last holder, sessions and listens alike', async () => {
    const { sent, subs } = setup();
    expect(await subs.acquire(target('a://1'), 'listen:1')).toBe(true);
    expect(await subs.acquire(target('a://1'), 'listen:2')).toBe(true);
    subs.hold(target('a://1'), sessionHolder('s1'));
    expect(sent).toEqual(['resources/subscribe a://1']);
    expect(subs.othersHold('ev', 'a://1', sessionHolder('s1'))).toBe(true);
    subs.release('ev', 'a://1', 'listen:1');
    subs.releaseAll(sessionHolder('s1'));
    await settle();
    expect(sent).toEqual(['resources/subscribe a://1']);
    subs.release('ev', 'a://1', 'listen:2');
    await settle();
    expect(sent).toEqual(['resources/subscribe a://1', 'resources/unsubscribe a://1']);
    expect(subs.size).toBe(0);
  });

  it('keeps the upstream in step when the last holder goes and a new one comes at once', async () => {
    const { sent, subs } = setup();
    await subs.acquire(target('a://1'), 'listen:1');
    subs.release('ev', 'a://1', 'listen:1');
    expect(await subs.acquire(target('a://1'), 'listen:2')).toBe(true);
    await settle();
    expect(sent).toEqual(['resources/subscribe a://1', 'resources/unsubscribe a://1', 'resources/subscribe a://1']);
  });

  it('holds nothing when the upstream refuses, and nothing for a per-session upstream', async () => {
    const refused = setup(true);
    expect(await refused.subs.acquire(target('a://1'), 'listen:1')).toBe(false);
    expect(refused.subs.size).toBe(0);
    const { sent, subs } = setup();
    expect(await subs.acquire(target('a://1', 'ps'), 'listen:1')).toBe(false);
    subs.hold(target('a://1', 'ps'), sessionHolder('s1'));
    expect(sent).toEqual([]);
    expect(subs.size).toBe(0);
  });

  it('sends nothing once stopped (shutdown: the upstream connections close next)', async () => {
    const { sent, subs } = setup();
    await subs.acquire(target('a://1'), 'listen:1');
    subs.stop();
    subs.release('ev', 'a://1', 'listen:1');
    await settle();
    expect(sent).toEqual(['resources/subscribe a://1']);
  });
});
