/**
 * The cache of exchanged tokens (src/outbound/token-exchange/exchange-cache.ts), on an injected clock: entries end
 * when their time is up, subjects and upstreams never share one, the size is bounded, concurrent misses share one
 * exchange and a failed exchange is not remembered.
 */
import { describe, expect, it } from 'vitest';
import type { Principal } from '../../src/identity/principal.js';
import { ExchangeCache, exchangeCacheKey } from '../../src/outbound/token-exchange/exchange-cache.js';

const who = (subject: string, scopes: string[] = ['mcp'], clientId = 'app'): Principal => ({
  subject,
  issuer: 'https://idp.example',
  clientId,
  scopes: new Set(scopes),
  groups: [],
  anonymous: false,
});

describe('exchange cache', () => {
  it('keys by issuer, subject, client, scopes (in any order) and upstream', () => {
    expect(exchangeCacheKey(who('alice', ['a', 'b']), 'crm')).toBe(exchangeCacheKey(who('alice', ['b', 'a']), 'crm'));
    const keys = new Set([
      exchangeCacheKey(who('alice'), 'crm'),
      exchangeCacheKey(who('bob'), 'crm'),
      exchangeCacheKey(who('alice'), 'wiki'),
      exchangeCacheKey(who('alice', ['mcp', 'admin']), 'crm'),
      exchangeCacheKey(who('alice', ['mcp'], 'other-app'), 'crm'),
    ]);
    expect(keys.size).toBe(5);
  });

  it('serves an entry until its time is up, then drops it', () => {
    let now = 1_000;
    const cache = new ExchangeCache(10, () => now);
    cache.set('k', { token: 't', usableUntil: 2_000 });
    expect(cache.get('k')?.token).toBe('t');
    now = 1_999;
    expect(cache.get('k')?.token).toBe('t');
    now = 2_000;
    expect(cache.get('k')).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('never stores an entry already expired, nor anything with maxEntries 0', () => {
    const cache = new ExchangeCache(10, () => 5_000);
    cache.set('k', { token: 't', usableUntil: 5_000 });
    expect(cache.size).toBe(0);
    const none = new ExchangeCache(0, () => 0);
    none.set('k', { token: 't', usableUntil: 10 });
    expect(none.size).toBe(0);
  });

  it('is bounded: the least recently used entry goes first', () => {
    const cache = new ExchangeCache(2, () => 0);
    cache.set('a', { token: 'a', usableUntil: 10 });
    cache.set('b', { token: 'b', usableUntil: 10 });
    cache.get('a');
    cache.set('c', { token: 'c', usableUntil: 10 });
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')?.token).toBe('a');
    expect(cache.get('c')?.token).toBe('c');
  });

  it('shares one fetch between concurrent misses, and forgets a failed one', async () => {
    const cache = new ExchangeCache(10, () => 0);
    let fetches = 0;
    const fetch = (): Promise<{ token: string; usableUntil: number }> => {
      fetches++;
      return Promise.resolve({ token: `t${fetches}`, usableUntil: 10 });
    };
    const [x, y] = await Promise.all([cache.getOrFetch('k', fetch), cache.getOrFetch('k', fetch)]);
    expect(fetches).toBe(1);
    expect(x.token).toBe('t1');
    expect(y.token).toBe('t1');
    expect((await cache.getOrFetch('k', fetch)).token).toBe('t1');

    await expect(cache.getOrFetch('f', () => Promise.reject(new Error('idp down')))).rejects.toThrow('idp down');
    expect((await cache.getOrFetch('f', fetch)).token).toBe('t2');
  });

  it('sweeps expired entries', () => {
    let now = 0;
    const cache = new ExchangeCache(10, () => now);
    cache.set('a', { token: 'a', usableUntil: 5 });
    cache.set('b', { token: 'b', usableUntil: 50 });
    now = 10;
    cache.sweep();
    expect(cache.size).toBe(1);
  });
});
