/**
 * The GrantStore contract (docs/style.md habit 14), against memory and the real Redis, and grants at rest: the stored
 * bytes never contain the tokens (sealed by the provider's box, keyed by hashes).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { SealedJson } from '../../src/mcp/sealed-json.js';
import type { GrantStore } from '../../src/stores/grants/grant-store.js';
import { MemoryGrantStore } from '../../src/stores/grants/memory-grant-store.js';
import { RedisGrantStore } from '../../src/stores/grants/redis-grant-store.js';
import { describeRedis, probeRedis, redisClient } from '../helpers/redis.js';

function contract(name: string, make: () => GrantStore): void {
  describe(`GrantStore contract: ${name}`, () => {
    it('keeps one grant per binding, removes one or all of a subject', async () => {
      const s = make();
      await s.put('crm', 'subj', 'b1', 'sealed-1', 60);
      await s.put('crm', 'subj', 'b2', 'sealed-2', 60);
      await s.put('crm', 'other', 'b3', 'sealed-3', 60);
      expect(await s.get('crm', 'subj', 'b1')).toBe('sealed-1');
      expect(await s.get('erp', 'subj', 'b1')).toBeUndefined();
      expect(await s.delete('crm', 'subj', 'b1')).toBe(true);
      expect(await s.delete('crm', 'subj', 'b1')).toBe(false);
      expect((await s.takeSubject('crm', 'subj')).sort()).toEqual(['sealed-2']);
      expect(await s.get('crm', 'subj', 'b2')).toBeUndefined();
      expect(await s.get('crm', 'other', 'b3')).toBe('sealed-3');
      await s.takeSubject('crm', 'other');
      await s.close();
    });

    it('keeps the first client registration; a nonce is used once', async () => {
      const s = make();
      const u = `up${randomBytes(4).toString('hex')}`;
      expect(await s.putClientOnce(u, 'first')).toBe('first');
      expect(await s.putClientOnce(u, 'second')).toBe('first');
      await s.deleteClient(u);
      expect(await s.getClient(u)).toBeUndefined();
      const n = randomBytes(8).toString('hex');
      expect(await s.useOnce(n, 60)).toBe(true);
      expect(await s.useOnce(n, 60)).toBe(false);
      await s.close();
    });
  });
}

contract('memory', () => new MemoryGrantStore());

const available = await probeRedis();
let redis: Redis | undefined;
const prefix = `gatehouse:test:grants:${randomBytes(4).toString('hex')}:`;
describeRedis(available)('GrantStore on Redis', () => {
  beforeAll(() => {
    redis = redisClient();
  });
  afterAll(async () => {
    const keys = await redis!.keys(`${prefix}*`);
    if (keys.length > 0) await redis!.del(...keys);
    await redis!.quit();
  });
  contract('redis', () => new RedisGrantStore(redis!, { keyPrefix: prefix }));

  it('holds no token in the clear: the sealed grant is all Redis sees', async () => {
    const box = new SealedJson([new Uint8Array(randomBytes(32))], 'test grant key id', 16 * 1024);
    const rt = `refresh-${randomBytes(16).toString('hex')}`;
    const at = `access-${randomBytes(16).toString('hex')}`;
    const store = new RedisGrantStore(redis!, { keyPrefix: prefix });
    await store.put('crm', 'subjecthash', 'bindinghash', await box.seal({ t: 'grant', rt, at }), 60);
    const keys = await redis!.keys(`${prefix}*`);
    const dump = (
      await Promise.all(keys.map(async (k) => `${k} ${JSON.stringify(await redis!.hgetall(k).catch(() => ({})))}`))
    ).join('\n');
    expect(dump).toContain('bindinghash');
    expect(dump).not.toContain(rt);
    expect(dump).not.toContain(at);
    // And it opens again with the key (rotation: a second key opens what the first sealed).
    const sealed = (await store.get('crm', 'subjecthash', 'bindinghash'))!;
    const opened = await box.open(sealed);
    expect(opened.ok && opened.payload.rt).toBe(rt);
  });
});
